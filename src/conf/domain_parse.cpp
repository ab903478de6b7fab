// parse_domain_xml: libvirt domain XML -> DomainDef (see domain.hpp).
//
// Every parse_* function consumes the attributes and children it models and
// ends with finish(), which refuses whatever is left: a valid libvirt element
// vireo does not implement is an "unsupported configuration" error naming it,
// never silently dropped.
#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <pugixml.hpp>

#include "conf/device_hotplug.hpp"
#include "conf/domain.hpp"
#include "conf/domain_internal.hpp"
#include "conf/memory_device.hpp"
#include "conf/network_addr.hpp"
#include "conf/units.hpp"
#include "conf/xml_reader.hpp"
#include "util/assign.hpp"

namespace vireo::conf {

using xml::XmlElement;

namespace {

// <child .../> that must exist alone with no attributes/children of its own
// (<readonly/>, <acpi/>): checks it and reports presence.
Result<bool> parse_flag_element(XmlElement& parent, std::string_view name) {
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, parent.child(name));
    if (!c) return false;
    VIREO_TRY(c->finish());
    return true;
}

// Text of an optional single child (<name>web</name>).
Result<std::string> parse_text_child(XmlElement& parent, std::string_view name) {
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, parent.child(name));
    if (!c) return std::string();
    std::string t = c->text();
    VIREO_TRY(c->finish());
    return t;
}

// A count attribute (queues='4', iothread='1'): kept as written, but only
// when it is a non-negative integer ("" when absent).
Result<std::string> attr_count(XmlElement& e, std::string_view name) {
    std::optional<unsigned> v;
    VIREO_ASSIGN(v, e.attr_uint(name));
    return v ? std::to_string(*v) : std::string();
}

// Memory-like element: <memory unit='GiB'>4</memory> -> KiB.
Result<std::uint64_t> parse_memory_value(XmlElement& e) {
    const std::string unit = e.attr_or_empty("unit");
    const std::string text = e.text();
    auto value = xml::parse_uint(text);
    if (!value) return std::unexpected(e.xml_error("", fmt::format("invalid memory size '{}': expected a non-negative integer", text)));
    auto kib = scale_to_kib(*value, unit, "KiB");
    if (!kib) {
        return std::unexpected(e.xml_error(unit.empty() ? "" : "@unit", kib.error().message));
    }
    return *kib;
}

Status parse_address(XmlElement& e, DeviceAddress& a) {
    VIREO_ASSIGN(a.type, e.attr_enum("type", {"pci", "drive", "virtio-serial", "usb", "isa", "dimm"}, "address type",
                                 {"ccw", "virtio-mmio", "spapr-vio", "ccid", "unassigned", "virtio-s390"}));
    if (a.type.empty()) return std::unexpected(e.xml_error("@type", "missing address type"));
    auto get = [&](std::string_view name, unsigned& out, unsigned max) -> Status {
        std::optional<unsigned> v;
        VIREO_ASSIGN(v, e.attr_uint(name));
        if (v) {
            if (*v > max) return std::unexpected(e.xml_error(fmt::format("@{}", name), fmt::format("value {} out of range (max {})", *v, max)));
            out = *v;
        }
        return {};
    };
    if (a.type == "pci") {
        VIREO_TRY(get("domain", a.domain, 0xffff));
        VIREO_TRY(get("bus", a.bus, 0xff));
        VIREO_TRY(get("slot", a.slot, 0x1f));
        VIREO_TRY(get("function", a.function, 7));
        VIREO_ASSIGN(a.multifunction, e.attr_onoff("multifunction"));
        // <address type='pci'/> (or all zeros: the host bridge's address)
        // asks for an address to be assigned, as in libvirt.
        if (a.domain == 0 && a.bus == 0 && a.slot == 0 && a.function == 0) a = DeviceAddress{};
    } else if (a.type == "drive") {
        VIREO_TRY(get("controller", a.controller, 0xffff));
        VIREO_TRY(get("bus", a.bus, 0xffff));
        VIREO_TRY(get("target", a.target, 0xffff));
        VIREO_TRY(get("unit", a.unit, 0xffff));
    } else if (a.type == "virtio-serial") {
        VIREO_TRY(get("controller", a.controller, 0xffff));
        VIREO_TRY(get("bus", a.bus, 0xffff));
        unsigned port = 0;
        auto p = e.attr("port");
        if (p) {
            VIREO_TRY(get("port", port, 0xffff));
            a.port = std::to_string(port);
        }
    } else if (a.type == "usb") {
        VIREO_TRY(get("bus", a.bus, 0xffff));
        a.port = e.attr_or_empty("port");
        for (char c : a.port)
            if (!(c == '.' || (c >= '0' && c <= '9')))
                return std::unexpected(e.xml_error("@port", fmt::format("invalid USB port '{}' (expected e.g. 1 or 1.2)", a.port)));
    } else if (a.type == "isa") {
        a.iobase = e.attr_or_empty("iobase");
        a.irq = e.attr_or_empty("irq");
    } else if (a.type == "dimm") {
        VIREO_TRY(get("slot", a.slot, 0xffff));
        if (auto base = e.attr("base")) {
            auto v = xml::parse_uint(*base);
            if (!v) return std::unexpected(e.xml_error("@base", fmt::format("invalid dimm base address '{}'", *base)));
            a.base = fmt::format("{:#x}", *v);
        }
    }
    return e.finish();
}

// <alias>, <address>, and (when allowed) <boot order=.../> of any device.
Status parse_device_info(XmlElement& dev, DeviceInfo& info, bool allow_boot) {
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, dev.child("alias"));
    if (c) {
        info.alias = c->attr_or_empty("name");
        if (info.alias.empty()) return std::unexpected(c->xml_error("@name", "missing alias name"));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, dev.child("address"));
    if (c) VIREO_TRY(parse_address(*c, info.address));
    if (allow_boot) {
        VIREO_ASSIGN(c, dev.child("boot"));
        if (c) {
            std::optional<unsigned> order;
            VIREO_ASSIGN(order, c->attr_uint("order"));
            if (!order || *order == 0) return std::unexpected(c->xml_error("@order", "boot order must be a positive integer"));
            info.boot_order = order;
            VIREO_TRY(c->finish());
        }
    }
    return {};
}

Status parse_disk_source(XmlElement& e, const std::string& disk_type, DiskSource& s) {
    if (disk_type == "file") {
        s.file = e.attr_or_empty("file");
    } else if (disk_type == "block") {
        s.dev = e.attr_or_empty("dev");
    } else if (disk_type == "volume") {
        s.pool = e.attr_or_empty("pool");
        s.volume = e.attr_or_empty("volume");
        VIREO_ASSIGN(s.mode, e.attr_enum("mode", {"host", "direct"}, "volume mode"));
    } else if (disk_type == "network") {
        VIREO_ASSIGN(s.protocol, e.attr_enum("protocol", {"nbd", "iscsi", "rbd", "http", "https", "ftp", "ftps", "tftp", "ssh", "gluster", "sheepdog", "vxhs", "nfs"}, "network protocol"));
        if (s.protocol.empty()) return std::unexpected(e.xml_error("@protocol", "missing network disk protocol"));
        s.name = e.attr_or_empty("name");
        for (auto& h : e.children("host")) {
            DiskSource::Host host;
            host.name = h.attr_or_empty("name");
            host.port = h.attr_or_empty("port");
            VIREO_ASSIGN(host.transport, h.attr_enum("transport", {"tcp", "unix", "rdma"}, "transport"));
            host.socket = h.attr_or_empty("socket");
            VIREO_TRY(h.finish());
            s.hosts.push_back(std::move(host));
        }
    }
    VIREO_ASSIGN(s.startup_policy, e.attr_enum("startupPolicy", {"mandatory", "requisite", "optional"}, "startup policy"));
    s.index = e.attr_or_empty("index");
    return e.finish();
}

Status parse_backing_store(XmlElement& e, BackingStore& b) {
    b.present = true;
    VIREO_ASSIGN(b.type, e.attr_enum("type", {"file", "block", "network", "volume"}, "backing store type"));
    b.index = e.attr_or_empty("index");
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("format"));
    if (c) {
        b.format = c->attr_or_empty("type");
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("source"));
    if (c) VIREO_TRY(parse_disk_source(*c, b.type, b.source));
    VIREO_ASSIGN(c, e.child("backingStore"));
    if (c) {
        BackingStore inner;
        VIREO_TRY(parse_backing_store(*c, inner));
        b.chain.push_back(std::move(inner));
    }
    return e.finish();
}

Status parse_disk(XmlElement& e, Disk& d) {
    VIREO_ASSIGN(d.type, e.attr_enum("type", {"file", "block", "volume", "network"}, "disk type", {"dir", "nvme", "vhostuser"}));
    if (d.type.empty()) d.type = "file";
    VIREO_ASSIGN(d.device, e.attr_enum("device", {"disk", "cdrom", "floppy", "lun"}, "disk device"));
    if (d.device.empty()) d.device = "disk";
    VIREO_ASSIGN(d.snapshot, e.attr_enum("snapshot", {"internal", "external", "no", "manual"}, "snapshot mode"));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("driver"));
    if (c) {
        VIREO_ASSIGN(d.driver_name, c->attr_enum("name", {"qemu"}, "driver name"));
        VIREO_ASSIGN(d.driver_type, c->attr_enum("type", {"raw", "qcow2", "vmdk", "qcow", "vdi", "vpc", "qed"}, "disk format",
                                             {"iso", "luks", "bochs", "cloop", "dmg", "fat", "vhd", "ploop", "cow", "dir"}));
        VIREO_ASSIGN(d.cache, c->attr_enum("cache", {"default", "none", "writethrough", "writeback", "directsync", "unsafe"}, "cache mode"));
        VIREO_ASSIGN(d.io, c->attr_enum("io", {"threads", "native", "io_uring"}, "io mode"));
        VIREO_ASSIGN(d.discard, c->attr_enum("discard", {"unmap", "ignore"}, "discard mode"));
        VIREO_ASSIGN(d.detect_zeroes, c->attr_enum("detect_zeroes", {"off", "on", "unmap"}, "detect_zeroes mode"));
        VIREO_ASSIGN(d.error_policy, c->attr_enum("error_policy", {"stop", "report", "ignore", "enospace"}, "error policy"));
        VIREO_ASSIGN(d.rerror_policy, c->attr_enum("rerror_policy", {"stop", "report", "ignore"}, "read error policy"));
        VIREO_ASSIGN(d.driver_iothread, attr_count(*c, "iothread"));
        VIREO_ASSIGN(d.driver_queues, attr_count(*c, "queues"));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("source"));
    if (c) VIREO_TRY(parse_disk_source(*c, d.type, d.source));
    VIREO_ASSIGN(c, e.child("backingStore"));
    if (c) VIREO_TRY(parse_backing_store(*c, d.backing));
    VIREO_ASSIGN(c, e.child("target"));
    if (!c) return std::unexpected(e.xml_error("", "missing <target> (e.g. <target dev='vda' bus='virtio'/>)"));
    d.target_dev = c->attr_or_empty("dev");
    if (d.target_dev.empty()) return std::unexpected(c->xml_error("@dev", "missing target device name"));
    VIREO_ASSIGN(d.target_bus, c->attr_enum("bus", {"virtio", "sata", "scsi", "ide", "usb", "fdc"}, "bus", {"xen", "sd", "uml"}));
    VIREO_ASSIGN(d.target_tray, c->attr_enum("tray", {"open", "closed"}, "tray state"));
    VIREO_ASSIGN(d.target_removable, c->attr_onoff("removable"));
    VIREO_TRY(c->finish());
    VIREO_ASSIGN(d.readonly, parse_flag_element(e, "readonly"));
    VIREO_ASSIGN(d.shareable, parse_flag_element(e, "shareable"));
    VIREO_ASSIGN(d.transient, parse_flag_element(e, "transient"));
    VIREO_ASSIGN(d.serial, parse_text_child(e, "serial"));
    VIREO_ASSIGN(d.wwn, parse_text_child(e, "wwn"));
    VIREO_TRY(parse_device_info(e, d.info, true));
    return e.finish();
}

Status parse_redirdev(XmlElement& e, Redirdev& r) {
    VIREO_ASSIGN(r.bus, e.attr_enum("bus", {"usb"}, "redirdev bus"));
    if (r.bus.empty()) r.bus = "usb";
    VIREO_ASSIGN(r.type, e.attr_enum("type", {"spicevmc", "tcp"}, "redirdev type"));
    if (r.type.empty()) return std::unexpected(e.xml_error("@type", "missing redirdev type"));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("source"));
    if (c) {
        VIREO_ASSIGN(r.source_mode, c->attr_enum("mode", {"bind", "connect"}, "source mode"));
        r.source_host = c->attr_or_empty("host");
        r.source_service = c->attr_or_empty("service");
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("protocol"));
    if (c) {
        VIREO_ASSIGN(r.protocol, c->attr_enum("type", {"raw", "telnet", "telnets", "tls"}, "protocol"));
        VIREO_TRY(c->finish());
    }
    VIREO_TRY(parse_device_info(e, r.info, true));
    return e.finish();
}

Status parse_controller(XmlElement& e, Controller& ctl) {
    VIREO_ASSIGN(ctl.type, e.attr_enum("type", {"pci", "usb", "sata", "scsi", "ide", "virtio-serial", "fdc"}, "controller type", {"ccid", "xenbus", "isa"}));
    if (ctl.type.empty()) return std::unexpected(e.xml_error("@type", "missing controller type"));
    std::optional<unsigned> index;
    VIREO_ASSIGN(index, e.attr_uint("index"));
    ctl.index = index.value_or(kAutoIndex);
    if (ctl.type == "pci") {
        VIREO_ASSIGN(ctl.model, e.attr_enum("model", {"pci-root", "pcie-root", "pcie-root-port", "pci-bridge", "dmi-to-pci-bridge", "pcie-to-pci-bridge",
                                                  "pcie-switch-upstream-port", "pcie-switch-downstream-port"},
                                        "PCI controller model", {"pci-expander-bus", "pcie-expander-bus"}));
        if (ctl.model.empty()) return std::unexpected(e.xml_error("@model", "a PCI controller needs a model (pci-root, pcie-root, pcie-root-port, ...)"));
    } else if (ctl.type == "usb") {
        VIREO_ASSIGN(ctl.model, e.attr_enum("model", {"piix3-uhci", "piix4-uhci", "ehci", "ich9-ehci1", "ich9-uhci1", "ich9-uhci2", "ich9-uhci3",
                                                  "pci-ohci", "nec-xhci", "qemu-xhci", "none"},
                                        "USB controller model", {"vt82c686b-uhci", "qusb1", "qusb2"}));
        ctl.ports = e.attr_or_empty("ports");
    } else if (ctl.type == "scsi") {
        VIREO_ASSIGN(ctl.model, e.attr_enum("model", {"virtio-scsi", "lsilogic", "lsisas1068", "lsisas1078", "virtio-transitional", "virtio-non-transitional"},
                                        "SCSI controller model", {"vmpvscsi", "ibmvscsi", "buslogic", "ncr53c90", "am53c974", "dc390"}));
    } else if (ctl.type == "virtio-serial") {
        VIREO_ASSIGN(ctl.model, e.attr_enum("model", {"virtio", "virtio-transitional", "virtio-non-transitional"}, "virtio-serial model"));
        ctl.ports = e.attr_or_empty("ports");
        ctl.vectors = e.attr_or_empty("vectors");
    }
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("model"));
    if (c) {
        ctl.model_name = c->attr_or_empty("name");
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("target"));
    if (c) {
        VIREO_ASSIGN(ctl.target_chassis_nr, c->attr_uint("chassisNr"));
        VIREO_ASSIGN(ctl.target_chassis, c->attr_uint("chassis"));
        ctl.target_port = c->attr_or_empty("port");
        ctl.target_busnr = c->attr_or_empty("busNr");
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("driver"));
    if (c) {
        VIREO_ASSIGN(ctl.driver_queues, attr_count(*c, "queues"));
        VIREO_ASSIGN(ctl.driver_iothread, attr_count(*c, "iothread"));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("master"));
    if (c) {
        ctl.master_startport = c->attr_or_empty("startport");
        VIREO_TRY(c->finish());
    }
    VIREO_TRY(parse_device_info(e, ctl.info, false));
    return e.finish();
}

bool is_valid_mac(std::string_view mac) {
    if (mac.size() != 17) return false;
    for (std::size_t i = 0; i < 17; ++i) {
        const char ch = mac[i];
        if (i % 3 == 2) {
            if (ch != ':') return false;
        } else if (!std::isxdigit(static_cast<unsigned char>(ch))) {
            return false;
        }
    }
    return true;
}

std::string lower_ascii(std::string s) {
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

Status parse_interface(XmlElement& e, Interface& nic) {
    VIREO_ASSIGN(nic.type, e.attr_enum("type", {"network", "bridge", "user", "ethernet", "direct"}, "interface type",
                                   {"hostdev", "vhostuser", "server", "client", "mcast", "udp", "vdpa", "null", "vds", "internal"}));
    if (nic.type.empty()) return std::unexpected(e.xml_error("@type", "missing interface type"));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("mac"));
    if (c) {
        nic.mac = lower_ascii(c->attr_or_empty("address"));
        if (!is_valid_mac(nic.mac)) return std::unexpected(c->xml_error("@address", fmt::format("invalid MAC address '{}' (expected aa:bb:cc:dd:ee:ff)", nic.mac)));
        const unsigned first = static_cast<unsigned>(std::stoul(nic.mac.substr(0, 2), nullptr, 16));
        if (first & 1) return std::unexpected(c->xml_error("@address", fmt::format("expected unicast MAC address, found multicast '{}'", nic.mac)));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("source"));
    if (c) {
        if (nic.type == "network") {
            nic.source_network = c->attr_or_empty("network");
            nic.source_portgroup = c->attr_or_empty("portgroup");
            nic.source_portid = c->attr_or_empty("portid");
            // live XML of a network interface also names the bridge
            nic.source_bridge = c->attr_or_empty("bridge");
        } else if (nic.type == "bridge") {
            nic.source_bridge = c->attr_or_empty("bridge");
        } else if (nic.type == "direct") {
            nic.source_dev = c->attr_or_empty("dev");
            VIREO_ASSIGN(nic.source_mode, c->attr_enum("mode", {"vepa", "bridge", "private", "passthrough"}, "macvtap mode"));
        }
        VIREO_TRY(c->finish());
    }
    if (nic.type == "direct" && nic.source_dev.empty())
        return std::unexpected(e.xml_error("source/@dev", "an interface of type 'direct' needs <source dev='HOST-INTERFACE'/>"));
    if (nic.type == "network" && nic.source_network.empty())
        return std::unexpected(e.xml_error("source/@network", "an interface of type 'network' needs <source network='NAME'/>"));
    if (nic.type == "bridge" && nic.source_bridge.empty())
        return std::unexpected(e.xml_error("source/@bridge", "an interface of type 'bridge' needs <source bridge='NAME'/>"));
    VIREO_ASSIGN(c, e.child("target"));
    if (c) {
        nic.target_dev = c->attr_or_empty("dev");
        VIREO_ASSIGN(nic.target_managed, c->attr_enum("managed", {"yes", "no"}, "target managed"));
        if (nic.target_managed == "no" && nic.type != "ethernet")
            return std::unexpected(c->xml_error("@managed", "managed='no' is only supported for interfaces of type 'ethernet'"));
        if (nic.target_managed == "no" && nic.target_dev.empty())
            return std::unexpected(c->xml_error("@dev", "managed='no' needs the name of the existing tap in <target dev=.../>"));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("backend"));
    if (c) {
        VIREO_ASSIGN(nic.backend_type, c->attr_enum("type", {"default", "passt"}, "interface backend"));
        if (nic.backend_type == "passt" && nic.type != "user")
            return std::unexpected(c->xml_error("@type", "the passt backend is only supported for interfaces of type 'user'"));
        if (nic.backend_type == "default") nic.backend_type.clear();
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("model"));
    if (c) {
        VIREO_ASSIGN(nic.model, c->attr_enum("type", {"virtio", "e1000e", "e1000", "rtl8139"}, "NIC model",
                                         {"ne2k_pci", "pcnet", "i82559er", "virtio-transitional", "virtio-non-transitional", "vmxnet3", "usb-net"}));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("driver"));
    if (c) {
        VIREO_ASSIGN(nic.driver_name, c->attr_enum("name", {"qemu", "vhost"}, "interface driver"));
        std::optional<unsigned> queues;
        VIREO_ASSIGN(queues, c->attr_uint("queues"));
        if (queues && (*queues == 0 || *queues > 256))
            return std::unexpected(c->xml_error("@queues", fmt::format("invalid number of queues {} (expected 1 to 256)", *queues)));
        if (queues) nic.driver_queues = std::to_string(*queues);
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("link"));
    if (c) {
        VIREO_ASSIGN(nic.link_state, c->attr_enum("state", {"up", "down"}, "link state"));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("mtu"));
    if (c) {
        std::optional<unsigned> mtu;
        VIREO_ASSIGN(mtu, c->attr_uint("size"));
        if (!mtu || *mtu < 68 || *mtu > 65535)
            return std::unexpected(c->xml_error("@size", "invalid MTU (expected <mtu size='68..65535'/>)"));
        nic.mtu = std::to_string(*mtu);
        VIREO_TRY(c->finish());
    }
    VIREO_TRY(parse_device_info(e, nic.info, true));
    return e.finish();
}

Status parse_chardev(XmlElement& e, CharDev& ch) {
    ch.kind = std::string(e.name());
    VIREO_ASSIGN(ch.type, e.attr_enum("type", {"pty", "file", "unix", "tcp", "udp", "spicevmc", "qemu-vdagent", "null", "stdio", "vc"},
                                  "character device type", {"dev", "pipe", "spiceport", "nmdm", "dbus"}));
    if (ch.type.empty()) ch.type = "pty";
    auto tty = e.attr("tty");  // live <console tty='/dev/pts/N'>
    std::optional<XmlElement> c;
    if (ch.type == "udp") {
        // Two sources: the remote end (mode='connect', the default) and
        // optionally the local one (mode='bind').
        for (auto& src : e.children("source")) {
            std::string mode;
            VIREO_ASSIGN(mode, src.attr_enum("mode", {"bind", "connect"}, "source mode"));
            auto& host = mode == "bind" ? ch.source_bind_host : ch.source_host;
            auto& service = mode == "bind" ? ch.source_bind_service : ch.source_service;
            if (!host.empty() || !service.empty())
                return std::unexpected(src.xml_error("@mode", fmt::format("a second <source mode='{}'> for a udp character device", mode.empty() ? "connect" : mode)));
            host = src.attr_or_empty("host");
            service = src.attr_or_empty("service");
            VIREO_TRY(src.finish());
        }
    } else {
        VIREO_ASSIGN(c, e.child("source"));
    }
    if (c && ch.type == "qemu-vdagent") {
        // <source><clipboard copypaste='yes'/><mouse mode='client'/></source>
        std::optional<XmlElement> opt;
        VIREO_ASSIGN(opt, c->child("clipboard"));
        if (opt) {
            VIREO_ASSIGN(ch.vdagent_copypaste, opt->attr_yesno("copypaste"));
            VIREO_TRY(opt->finish());
        }
        VIREO_ASSIGN(opt, c->child("mouse"));
        if (opt) {
            VIREO_ASSIGN(ch.vdagent_mouse, opt->attr_enum("mode", {"client", "server"}, "mouse mode"));
            VIREO_TRY(opt->finish());
        }
        VIREO_TRY(c->finish());
        c.reset();
    }
    if (c) {
        ch.source_path = c->attr_or_empty("path");
        VIREO_ASSIGN(ch.source_mode, c->attr_enum("mode", {"bind", "connect"}, "source mode"));
        ch.source_host = c->attr_or_empty("host");
        ch.source_service = c->attr_or_empty("service");
        VIREO_ASSIGN(ch.source_append, c->attr_onoff("append"));
        VIREO_TRY(c->finish());
    }
    if (tty && ch.source_path.empty()) ch.source_path = *tty;
    VIREO_ASSIGN(c, e.child("protocol"));
    if (c) {
        VIREO_ASSIGN(ch.protocol_type, c->attr_enum("type", {"raw", "telnet", "telnets", "tls"}, "protocol"));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("target"));
    if (c) {
        if (ch.kind == "serial")
            VIREO_ASSIGN(ch.target_type, c->attr_enum("type", {"isa-serial", "usb-serial", "pci-serial", "system-serial"}, "serial target type",
                                                  {"spapr-vio-serial", "sclp-serial", "isa-debug"}));
        else if (ch.kind == "console")
            VIREO_ASSIGN(ch.target_type, c->attr_enum("type", {"serial", "virtio"}, "console target type", {"xen", "uml", "lxc", "openvz", "sclp", "sclplm"}));
        else if (ch.kind == "channel")
            VIREO_ASSIGN(ch.target_type, c->attr_enum("type", {"virtio", "guestfwd"}, "channel target type", {"xen"}));
        if (ch.kind == "channel" && ch.target_type == "guestfwd") {
            ch.target_address = c->attr_or_empty("address");
            ch.target_guestfwd_port = c->attr_or_empty("port");
        } else {
            VIREO_ASSIGN(ch.target_port, c->attr_uint("port"));
        }
        ch.target_name = c->attr_or_empty("name");
        VIREO_ASSIGN(ch.target_state, c->attr_enum("state", {"connected", "disconnected"}, "channel state"));
        std::optional<XmlElement> m;
        VIREO_ASSIGN(m, c->child("model"));
        if (m) {
            VIREO_ASSIGN(ch.target_model, m->attr_enum("name", {"isa-serial", "usb-serial", "pci-serial", "16550a"}, "serial model",
                                                   {"spapr-vty", "pl011", "sclpconsole", "sclplmconsole"}));
            VIREO_TRY(m->finish());
        }
        VIREO_TRY(c->finish());
    }
    if (ch.kind == "channel" && ch.target_type.empty())
        return std::unexpected(e.xml_error("target/@type", "a channel needs <target type='virtio' name='...'/>"));
    VIREO_ASSIGN(c, e.child("log"));
    if (c) {
        ch.log_file = c->attr_or_empty("file");
        VIREO_ASSIGN(ch.log_append, c->attr_onoff("append"));
        VIREO_TRY(c->finish());
    }
    VIREO_TRY(parse_device_info(e, ch.info, false));
    return e.finish();
}

Status parse_input(XmlElement& e, Input& in) {
    VIREO_ASSIGN(in.type, e.attr_enum("type", {"tablet", "mouse", "keyboard"}, "input type", {"evdev", "passthrough"}));
    if (in.type.empty()) return std::unexpected(e.xml_error("@type", "missing input type"));
    VIREO_ASSIGN(in.bus, e.attr_enum("bus", {"usb", "ps2", "virtio"}, "input bus", {"xen", "parallels", "none"}));
    in.model = e.attr_or_empty("model");
    VIREO_TRY(parse_device_info(e, in.info, false));
    return e.finish();
}

Status parse_graphics(XmlElement& e, Graphics& g) {
    VIREO_ASSIGN(g.type, e.attr_enum("type", {"vnc", "spice"}, "graphics type", {"sdl", "rdp", "desktop", "egl-headless", "dbus"}));
    if (g.type.empty()) return std::unexpected(e.xml_error("@type", "missing graphics type"));
    g.port = e.attr_or_empty("port");
    if (g.type == "spice") g.tls_port = e.attr_or_empty("tlsPort");
    VIREO_ASSIGN(g.autoport, e.attr_yesno("autoport"));
    g.listen = e.attr_or_empty("listen");
    g.passwd = e.attr_or_empty("passwd");
    g.passwd_valid_to = e.attr_or_empty("passwdValidTo");
    g.keymap = e.attr_or_empty("keymap");
    VIREO_ASSIGN(g.connected, e.attr_enum("connected", {"keep", "disconnect", "fail"}, "connected policy"));
    if (g.type == "spice") VIREO_ASSIGN(g.default_mode, e.attr_enum("defaultMode", {"any", "secure", "insecure"}, "default mode"));
    if (g.type == "vnc") {
        g.websocket = e.attr_or_empty("websocket");
        VIREO_ASSIGN(g.share_policy, e.attr_enum("sharePolicy", {"allow-exclusive", "force-shared", "ignore"}, "share policy"));
    }
    for (auto& l : e.children("listen")) {
        Graphics::Listen li;
        VIREO_ASSIGN(li.type, l.attr_enum("type", {"address", "network", "none", "socket"}, "listen type"));
        li.address = l.attr_or_empty("address");
        li.network = l.attr_or_empty("network");
        li.socket = l.attr_or_empty("socket");
        VIREO_TRY(l.finish());
        g.listens.push_back(std::move(li));
    }
    std::optional<XmlElement> c;
    if (g.type == "spice") {
        VIREO_ASSIGN(c, e.child("image"));
        if (c) {
            VIREO_ASSIGN(g.image_compression, c->attr_enum("compression", {"auto_glz", "auto_lz", "quic", "glz", "lz", "off"}, "image compression"));
            VIREO_TRY(c->finish());
        }
    }
    VIREO_ASSIGN(c, e.child("gl"));
    if (c) {
        VIREO_ASSIGN(g.gl_enable, c->attr_yesno("enable"));
        g.gl_rendernode = c->attr_or_empty("rendernode");
        VIREO_TRY(c->finish());
    }
    VIREO_TRY(parse_device_info(e, g.info, false));
    return e.finish();
}

Status parse_video(XmlElement& e, Video& v) {
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("model"));
    if (c) {
        VIREO_ASSIGN(v.model_type, c->attr_enum("type", {"virtio", "qxl", "vga", "bochs", "cirrus", "ramfb", "none"}, "video model",
                                            {"vmvga", "xen", "vbox", "gop", "parallels"}));
        v.vram = c->attr_or_empty("vram");
        v.ram = c->attr_or_empty("ram");
        v.vgamem = c->attr_or_empty("vgamem");
        v.vram64 = c->attr_or_empty("vram64");
        v.heads = c->attr_or_empty("heads");
        VIREO_ASSIGN(v.primary, c->attr_yesno("primary"));
        std::optional<XmlElement> acc;
        VIREO_ASSIGN(acc, c->child("acceleration"));
        if (acc) {
            VIREO_ASSIGN(v.accel3d, acc->attr_yesno("accel3d"));
            VIREO_TRY(acc->finish());
        }
        VIREO_TRY(c->finish());
    }
    VIREO_TRY(parse_device_info(e, v.info, false));
    return e.finish();
}

Status parse_sound(XmlElement& e, Sound& s) {
    VIREO_ASSIGN(s.model, e.attr_enum("model", {"ich9", "ich6", "ich7", "ac97", "es1370", "sb16", "usb", "pcspk"}, "sound model"));
    if (s.model.empty()) return std::unexpected(e.xml_error("@model", "missing sound model"));
    std::optional<XmlElement> audio;
    VIREO_ASSIGN(audio, e.child("audio"));
    if (audio) {
        s.audio_id = audio->attr_or_empty("id");
        VIREO_TRY(audio->finish());
    }
    VIREO_TRY(parse_device_info(e, s.info, false));
    return e.finish();
}

Status parse_audio(XmlElement& e, Audio& a) {
    a.id = e.attr_or_empty("id");
    if (!xml::parse_uint(a.id) || a.id == "0") return std::unexpected(e.xml_error("@id", fmt::format("invalid audio id '{}' (expected 1, 2, ...)", a.id)));
    VIREO_ASSIGN(a.type, e.attr_enum("type", {"none", "spice", "pulseaudio", "alsa", "sdl", "oss", "file", "jack", "coreaudio", "dbus"}, "audio type"));
    if (a.type.empty()) return std::unexpected(e.xml_error("@type", "missing audio type"));
    return e.finish();
}

Status parse_seclabel(XmlElement& e, SecLabel& l) {
    VIREO_ASSIGN(l.type, e.attr_enum("type", {"dynamic", "static", "none"}, "seclabel type"));
    l.model = e.attr_or_empty("model");
    VIREO_ASSIGN(l.relabel, e.attr_yesno("relabel"));
    VIREO_ASSIGN(l.label, parse_text_child(e, "label"));
    VIREO_ASSIGN(l.imagelabel, parse_text_child(e, "imagelabel"));
    VIREO_ASSIGN(l.baselabel, parse_text_child(e, "baselabel"));
    return e.finish();
}

Status parse_memballoon(XmlElement& e, Memballoon& m) {
    VIREO_ASSIGN(m.model, e.attr_enum("model", {"virtio", "none"}, "memballoon model", {"xen", "virtio-transitional", "virtio-non-transitional"}));
    if (m.model.empty()) return std::unexpected(e.xml_error("@model", "missing memballoon model"));
    VIREO_ASSIGN(m.autodeflate, e.attr_onoff("autodeflate"));
    VIREO_ASSIGN(m.free_page_reporting, e.attr_onoff("freePageReporting"));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("stats"));
    if (c) {
        m.stats_period = c->attr_or_empty("period");
        VIREO_TRY(c->finish());
    }
    VIREO_TRY(parse_device_info(e, m.info, false));
    return e.finish();
}

Status parse_rng(XmlElement& e, Rng& r) {
    VIREO_ASSIGN(r.model, e.attr_enum("model", {"virtio"}, "rng model", {"virtio-transitional", "virtio-non-transitional"}));
    if (r.model.empty()) return std::unexpected(e.xml_error("@model", "missing rng model"));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("rate"));
    if (c) {
        r.rate_bytes = c->attr_or_empty("bytes");
        r.rate_period = c->attr_or_empty("period");
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("backend"));
    if (!c) return std::unexpected(e.xml_error("", "missing <backend model='random'>/dev/urandom</backend>"));
    VIREO_ASSIGN(r.backend_model, c->attr_enum("model", {"random", "builtin"}, "rng backend", {"egd"}));
    if (r.backend_model == "random") r.backend_path = c->text();
    VIREO_TRY(c->finish());
    VIREO_TRY(parse_device_info(e, r.info, false));
    return e.finish();
}

Status parse_watchdog(XmlElement& e, Watchdog& w) {
    VIREO_ASSIGN(w.model, e.attr_enum("model", {"i6300esb", "ib700"}, "watchdog model", {"diag288"}));
    if (w.model.empty()) return std::unexpected(e.xml_error("@model", "missing watchdog model"));
    VIREO_ASSIGN(w.action, e.attr_enum("action", {"reset", "shutdown", "poweroff", "pause", "none", "dump", "inject-nmi"}, "watchdog action"));
    VIREO_TRY(parse_device_info(e, w.info, false));
    return e.finish();
}

Status parse_panic(XmlElement& e, Panic& p) {
    VIREO_ASSIGN(p.model, e.attr_enum("model", {"isa", "hyperv"}, "panic model", {"pseries", "s390"}));
    VIREO_TRY(parse_device_info(e, p.info, false));
    return e.finish();
}

Status parse_tpm(XmlElement& e, Tpm& t) {
    VIREO_ASSIGN(t.model, e.attr_enum("model", {"tpm-tis", "tpm-crb"}, "TPM model", {"tpm-spapr", "spapr-tpm-proxy"}));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("backend"));
    if (!c) return std::unexpected(e.xml_error("", "missing <backend type='emulator' version='2.0'/>"));
    VIREO_ASSIGN(t.backend_type, c->attr_enum("type", {"emulator", "passthrough"}, "TPM backend", {"external"}));
    VIREO_ASSIGN(t.backend_version, c->attr_enum("version", {"1.2", "2.0"}, "TPM version"));
    if (t.backend_type == "passthrough") {
        std::optional<XmlElement> dev;
        VIREO_ASSIGN(dev, c->child("device"));
        if (dev) {
            t.backend_device = dev->attr_or_empty("path");
            VIREO_TRY(dev->finish());
        }
    }
    VIREO_TRY(c->finish());
    VIREO_TRY(parse_device_info(e, t.info, false));
    return e.finish();
}

Status parse_filesystem(XmlElement& e, Filesystem& f) {
    VIREO_ASSIGN(f.type, e.attr_enum("type", {"mount"}, "filesystem type", {"template", "file", "block", "ram", "bind", "volume"}));
    if (f.type.empty()) f.type = "mount";
    VIREO_ASSIGN(f.accessmode, e.attr_enum("accessmode", {"passthrough", "mapped", "squash"}, "access mode"));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("driver"));
    if (c) {
        VIREO_ASSIGN(f.driver_type, c->attr_enum("type", {"virtiofs", "path", "handle"}, "filesystem driver", {"loop", "nbd", "ploop"}));
        f.driver_queue = c->attr_or_empty("queue");
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("binary"));
    if (c) {
        f.binary_path = c->attr_or_empty("path");
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("source"));
    if (c) {
        f.source_dir = c->attr_or_empty("dir");
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("target"));
    if (!c) return std::unexpected(e.xml_error("", "missing <target dir='TAG'/>"));
    f.target_dir = c->attr_or_empty("dir");
    VIREO_TRY(c->finish());
    VIREO_ASSIGN(f.readonly, parse_flag_element(e, "readonly"));
    VIREO_TRY(parse_device_info(e, f.info, false));
    return e.finish();
}

// The <entry name='...'>value</entry> children of one <sysinfo> block,
// each name one of `names` (libvirt's schema).
Status parse_sysinfo_entries(XmlElement& block, std::initializer_list<std::string_view> names, std::vector<SysinfoEntry>& out) {
    for (auto& en : block.children("entry")) {
        SysinfoEntry entry;
        VIREO_ASSIGN(entry.name, en.attr_enum("name", names, "sysinfo entry"));
        if (entry.name.empty()) return std::unexpected(en.xml_error("@name", "missing sysinfo entry name"));
        entry.value = en.text();
        VIREO_TRY(en.finish());
        out.push_back(std::move(entry));
    }
    return block.finish();
}

Status parse_sysinfo(XmlElement& e, Sysinfo& si) {
    VIREO_ASSIGN(si.type, e.attr_enum("type", {"smbios"}, "sysinfo type", {"fwcfg"}));
    if (si.type.empty()) return std::unexpected(e.xml_error("@type", "missing sysinfo type"));
    si.present = true;
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("bios"));
    if (c) VIREO_TRY(parse_sysinfo_entries(*c, {"vendor", "version", "date", "release"}, si.bios));
    VIREO_ASSIGN(c, e.child("system"));
    if (c) VIREO_TRY(parse_sysinfo_entries(*c, {"manufacturer", "product", "version", "serial", "uuid", "sku", "family"}, si.system));
    for (auto& b : e.children("baseBoard"))
        VIREO_TRY(parse_sysinfo_entries(b, {"manufacturer", "product", "version", "serial", "asset", "location"}, si.base_boards.emplace_back()));
    VIREO_ASSIGN(c, e.child("chassis"));
    if (c) VIREO_TRY(parse_sysinfo_entries(*c, {"manufacturer", "version", "serial", "asset", "sku"}, si.chassis));
    VIREO_ASSIGN(c, e.child("oemStrings"));
    if (c) {
        for (auto& en : c->children("entry")) {
            si.oem_strings.push_back(en.text());
            VIREO_TRY(en.finish());
        }
        VIREO_TRY(c->finish());
    }
    return e.finish();  // <processor>, <memory>: refused by name
}

Status parse_devices(XmlElement& e, Devices& d) {
    for (auto& c : e.all_children()) {
        const std::string_view n = c.name();
        if (n == "emulator") {
            if (!d.emulator.empty()) return std::unexpected(c.xml_error("", "element 'emulator' may appear only once"));
            d.emulator = c.text();
            VIREO_TRY(c.finish());
        } else if (n == "disk") {
            VIREO_TRY(parse_disk(c, d.disks.emplace_back()));
        } else if (n == "controller") {
            VIREO_TRY(parse_controller(c, d.controllers.emplace_back()));
        } else if (n == "interface") {
            VIREO_TRY(parse_interface(c, d.interfaces.emplace_back()));
        } else if (n == "serial") {
            VIREO_TRY(parse_chardev(c, d.serials.emplace_back()));
        } else if (n == "parallel") {
            VIREO_TRY(parse_chardev(c, d.parallels.emplace_back()));
        } else if (n == "console") {
            VIREO_TRY(parse_chardev(c, d.consoles.emplace_back()));
        } else if (n == "channel") {
            VIREO_TRY(parse_chardev(c, d.channels.emplace_back()));
        } else if (n == "input") {
            VIREO_TRY(parse_input(c, d.inputs.emplace_back()));
        } else if (n == "graphics") {
            VIREO_TRY(parse_graphics(c, d.graphics.emplace_back()));
        } else if (n == "video") {
            VIREO_TRY(parse_video(c, d.videos.emplace_back()));
        } else if (n == "sound") {
            VIREO_TRY(parse_sound(c, d.sounds.emplace_back()));
        } else if (n == "memballoon") {
            if (d.memballoon) return std::unexpected(c.xml_error("", "only one <memballoon> is allowed"));
            VIREO_TRY(parse_memballoon(c, d.memballoon.emplace()));
        } else if (n == "rng") {
            VIREO_TRY(parse_rng(c, d.rngs.emplace_back()));
        } else if (n == "audio") {
            VIREO_TRY(parse_audio(c, d.audios.emplace_back()));
        } else if (n == "redirdev") {
            VIREO_TRY(parse_redirdev(c, d.redirdevs.emplace_back()));
        } else if (n == "hub") {
            Hub& h = d.hubs.emplace_back();
            VIREO_ASSIGN(h.type, c.attr_enum("type", {"usb"}, "hub type"));
            if (h.type.empty()) return std::unexpected(c.xml_error("@type", "missing hub type"));
            VIREO_TRY(parse_device_info(c, h.info, false));
            VIREO_TRY(c.finish());
        } else if (n == "watchdog") {
            VIREO_TRY(parse_watchdog(c, d.watchdogs.emplace_back()));
        } else if (n == "panic") {
            VIREO_TRY(parse_panic(c, d.panics.emplace_back()));
        } else if (n == "memory") {
            VIREO_TRY(parse_memory_device(c, d.memories.emplace_back(),
                                          [](XmlElement& dev, DeviceInfo& info) { return parse_device_info(dev, info, false); }));
        } else if (n == "tpm") {
            VIREO_TRY(parse_tpm(c, d.tpms.emplace_back()));
        } else if (n == "filesystem") {
            VIREO_TRY(parse_filesystem(c, d.filesystems.emplace_back()));
        } else {
            return std::unexpected(c.unsupported("", fmt::format("device <{}> is not supported by vireo", n)));
        }
    }
    return e.finish();
}

Status parse_os(XmlElement& e, OsDef& os) {
    VIREO_ASSIGN(os.firmware, e.attr_enum("firmware", {"efi", "bios"}, "firmware"));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("type"));
    if (!c) return std::unexpected(e.xml_error("", "missing <type>hvm</type>"));
    os.arch = c->attr_or_empty("arch");
    os.machine = c->attr_or_empty("machine");
    os.type = c->text();
    if (os.type != "hvm") return std::unexpected(c->unsupported("", fmt::format("OS type '{}' is not supported by vireo (only 'hvm')", os.type)));
    VIREO_TRY(c->finish());
    VIREO_ASSIGN(c, e.child("firmware"));
    if (c) {
        for (auto& f : c->children("feature")) {
            std::string enabled;
            VIREO_ASSIGN(enabled, f.attr_yesno("enabled"));
            os.firmware_features.emplace_back(f.attr_or_empty("name"), enabled);
            VIREO_TRY(f.finish());
        }
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("loader"));
    if (c) {
        VIREO_ASSIGN(os.loader_readonly, c->attr_yesno("readonly"));
        VIREO_ASSIGN(os.loader_type, c->attr_enum("type", {"rom", "pflash"}, "loader type"));
        VIREO_ASSIGN(os.loader_secure, c->attr_yesno("secure"));
        os.loader = c->text();
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("nvram"));
    if (c) {
        os.nvram_template = c->attr_or_empty("template");
        os.nvram = c->text();
        VIREO_TRY(c->finish());
    }
    for (auto& b : e.children("boot")) {
        std::string dev;
        VIREO_ASSIGN(dev, b.attr_enum("dev", {"hd", "cdrom", "network", "fd"}, "boot device"));
        if (dev.empty()) return std::unexpected(b.xml_error("@dev", "missing boot device"));
        os.boot_devs.push_back(dev);
        VIREO_TRY(b.finish());
    }
    VIREO_ASSIGN(c, e.child("bootmenu"));
    if (c) {
        VIREO_ASSIGN(os.bootmenu_enable, c->attr_yesno("enable"));
        std::optional<unsigned> timeout;
        VIREO_ASSIGN(timeout, c->attr_uint("timeout"));
        if (timeout && *timeout > 65535)
            return std::unexpected(c->xml_error("@timeout", fmt::format("invalid boot menu timeout {} (expected 0 to 65535 milliseconds)", *timeout)));
        if (timeout) os.bootmenu_timeout = std::to_string(*timeout);
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(os.kernel, parse_text_child(e, "kernel"));
    VIREO_ASSIGN(os.initrd, parse_text_child(e, "initrd"));
    VIREO_ASSIGN(os.cmdline, parse_text_child(e, "cmdline"));
    VIREO_ASSIGN(os.dtb, parse_text_child(e, "dtb"));
    VIREO_ASSIGN(c, e.child("smbios"));
    if (c) {
        VIREO_ASSIGN(os.smbios_mode, c->attr_enum("mode", {"emulate", "host", "sysinfo"}, "smbios mode"));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("bios"));
    if (c) {
        VIREO_ASSIGN(os.bios_useserial, c->attr_yesno("useserial"));
        os.bios_reboot_timeout = c->attr_or_empty("rebootTimeout");
        VIREO_TRY(c->finish());
    }
    return e.finish();
}

// Known <features> children; their attributes are kept as given.
bool is_known_feature(std::string_view parent, std::string_view name) {
    static constexpr std::string_view top[] = {"acpi", "apic", "pae", "hap", "viridian", "privnet", "hyperv", "kvm", "pvspinlock",
                                               "pmu", "vmport", "smm", "ioapic", "vmcoreinfo", "htm", "nested-hv", "msrs", "gic",
                                               "ccf-assist", "cfpc", "sbbc", "ibs", "xen"};
    static constexpr std::string_view hyperv[] = {"relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic", "stimer", "reset",
                                                  "vendor_id", "frequencies", "reenlightenment", "tlbflush", "ipi", "evmcs", "avic"};
    static constexpr std::string_view kvm[] = {"hidden", "hint-dedicated", "poll-control", "pv-ipi", "dirty-ring"};
    static constexpr std::string_view stimer[] = {"direct"};
    auto in = [&](auto& list) { return std::find(std::begin(list), std::end(list), name) != std::end(list); };
    if (parent == "features") return in(top);
    if (parent == "hyperv") return in(hyperv);
    if (parent == "kvm") return in(kvm);
    if (parent == "stimer") return in(stimer);
    return false;
}

Status parse_feature(XmlElement& e, std::string_view parent, Feature& f) {
    f.name = std::string(e.name());
    if (!is_known_feature(parent, f.name)) return std::unexpected(e.unsupported("", fmt::format("feature <{}> is not supported by vireo", f.name)));
    for (auto a : e.node().attributes()) f.attrs.emplace_back(a.name(), a.value());
    for (auto& c : e.all_children()) {
        if (f.name != "hyperv" && f.name != "kvm" && f.name != "stimer")
            return std::unexpected(c.unsupported("", fmt::format("element <{}> in feature <{}> is not supported by vireo", c.name(), f.name)));
        VIREO_TRY(parse_feature(c, f.name, f.children.emplace_back()));
    }
    (void)e.text();
    e.consume_all();
    return {};
}

Status parse_cpu(XmlElement& e, CpuDef& cpu) {
    cpu.present = true;
    VIREO_ASSIGN(cpu.mode, e.attr_enum("mode", {"host-passthrough", "host-model", "custom", "maximum"}, "CPU mode"));
    VIREO_ASSIGN(cpu.match, e.attr_enum("match", {"exact", "minimum", "strict"}, "CPU match"));
    VIREO_ASSIGN(cpu.check, e.attr_enum("check", {"none", "partial", "full"}, "CPU check"));
    VIREO_ASSIGN(cpu.migratable, e.attr_onoff("migratable"));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("model"));
    if (c) {
        VIREO_ASSIGN(cpu.model_fallback, c->attr_enum("fallback", {"allow", "forbid"}, "model fallback"));
        cpu.model = c->text();
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(cpu.vendor, parse_text_child(e, "vendor"));
    VIREO_ASSIGN(c, e.child("topology"));
    if (c) {
        VIREO_ASSIGN(cpu.sockets, c->attr_uint("sockets"));
        VIREO_ASSIGN(cpu.dies, c->attr_uint("dies"));
        VIREO_ASSIGN(cpu.cores, c->attr_uint("cores"));
        VIREO_ASSIGN(cpu.threads, c->attr_uint("threads"));
        for (auto v : {cpu.sockets, cpu.dies, cpu.clusters, cpu.cores, cpu.threads})
            if (v && *v == 0) return std::unexpected(c->xml_error("", "CPU topology values must be at least 1"));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("cache"));
    if (c) {
        VIREO_ASSIGN(cpu.cache_mode, c->attr_enum("mode", {"emulate", "passthrough", "disable"}, "cache mode"));
        cpu.cache_level = c->attr_or_empty("level");
        VIREO_TRY(c->finish());
    }
    for (auto& f : e.children("feature")) {
        CpuDef::Feature feat;
        VIREO_ASSIGN(feat.policy, f.attr_enum("policy", {"force", "require", "optional", "disable", "forbid"}, "feature policy"));
        feat.name = f.attr_or_empty("name");
        if (feat.name.empty()) return std::unexpected(f.xml_error("@name", "missing CPU feature name"));
        VIREO_TRY(f.finish());
        cpu.features.push_back(std::move(feat));
    }
    VIREO_ASSIGN(c, e.child("numa"));
    if (c) {
        for (auto& cell : c->children("cell")) {
            CpuDef::NumaCell nc;
            nc.id = cell.attr_or_empty("id");
            nc.cpus = cell.attr_or_empty("cpus");
            std::uint64_t kib = 0;
            const std::string unit = cell.attr_or_empty("unit");
            auto mem = cell.attr("memory");
            if (!mem) return std::unexpected(cell.xml_error("@memory", "missing NUMA cell memory"));
            auto value = xml::parse_uint(*mem);
            if (!value) return std::unexpected(cell.xml_error("@memory", fmt::format("invalid memory size '{}'", *mem)));
            auto scaled = scale_to_kib(*value, unit, "KiB");
            if (!scaled) return std::unexpected(cell.xml_error("@unit", scaled.error().message));
            kib = *scaled;
            nc.memory_kib = std::to_string(kib);
            VIREO_ASSIGN(nc.memAccess, cell.attr_enum("memAccess", {"shared", "private"}, "memory access"));
            VIREO_ASSIGN(nc.discard, cell.attr_yesno("discard"));
            VIREO_TRY(cell.finish());
            cpu.numa.push_back(std::move(nc));
        }
        VIREO_TRY(c->finish());
    }
    return e.finish();
}

Status parse_clock(XmlElement& e, ClockDef& clk) {
    VIREO_ASSIGN(clk.offset, e.attr_enum("offset", {"utc", "localtime", "timezone", "variable", "absolute"}, "clock offset"));
    if (clk.offset.empty()) clk.offset = "utc";
    clk.timezone = e.attr_or_empty("timezone");
    clk.adjustment = e.attr_or_empty("adjustment");
    VIREO_ASSIGN(clk.basis, e.attr_enum("basis", {"utc", "localtime"}, "clock basis"));
    for (auto& t : e.children("timer")) {
        Timer tm;
        VIREO_ASSIGN(tm.name, t.attr_enum("name", {"platform", "rtc", "pit", "hpet", "kvmclock", "hypervclock", "tsc"}, "timer", {"armvtimer"}));
        if (tm.name.empty()) return std::unexpected(t.xml_error("@name", "missing timer name"));
        VIREO_ASSIGN(tm.present, t.attr_yesno("present"));
        VIREO_ASSIGN(tm.tickpolicy, t.attr_enum("tickpolicy", {"delay", "catchup", "merge", "discard"}, "tick policy"));
        VIREO_ASSIGN(tm.track, t.attr_enum("track", {"boot", "guest", "wall", "realtime"}, "timer track"));
        tm.frequency = t.attr_or_empty("frequency");
        VIREO_ASSIGN(tm.mode, t.attr_enum("mode", {"auto", "native", "emulate", "paravirt", "smpsafe"}, "timer mode"));
        VIREO_TRY(t.finish());
        clk.timers.push_back(std::move(tm));
    }
    return e.finish();
}

Status parse_pm(XmlElement& e, PmDef& pm) {
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("suspend-to-mem"));
    if (c) {
        VIREO_ASSIGN(pm.suspend_to_mem, c->attr_yesno("enabled"));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("suspend-to-disk"));
    if (c) {
        VIREO_ASSIGN(pm.suspend_to_disk, c->attr_yesno("enabled"));
        VIREO_TRY(c->finish());
    }
    return e.finish();
}

// Inner XML of <metadata> as libvirt writes it back (libxml2's
// serialisation, re-indented: children at depth 2, double-quoted
// attributes, '>' escaped too), so that formatting is a fixed point and
// matches libvirt's dumpxml.
std::string metadata_escape(std::string_view s, bool attribute) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += attribute ? "&quot;" : "\""; break;
            default: out += c;
        }
    }
    return out;
}

void write_metadata_element(std::string& out, pugi::xml_node n, int depth) {
    const std::string indent(static_cast<std::size_t>(depth) * 2, ' ');
    out += indent + "<" + n.name();
    for (auto a : n.attributes()) out += fmt::format(" {}=\"{}\"", a.name(), metadata_escape(a.value(), true));
    bool elements = false;
    std::string text;
    for (auto c : n.children()) {
        if (c.type() == pugi::node_element) elements = true;
        else if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) text += c.value();
    }
    if (elements) {
        out += ">\n";
        for (auto c : n.children())
            if (c.type() == pugi::node_element) write_metadata_element(out, c, depth + 1);
        out += indent + "</" + n.name() + ">\n";
    } else if (!text.empty()) {
        out += ">" + metadata_escape(text, false) + "</" + n.name() + ">\n";
    } else {
        out += "/>\n";
    }
}

std::string metadata_inner_xml(pugi::xml_node node) {
    std::string out;
    for (auto c : node.children())
        if (c.type() == pugi::node_element) write_metadata_element(out, c, 2);
    return out;
}

Result<std::string> parse_lifecycle_action(XmlElement& parent, std::string_view name, bool crash) {
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, parent.child(name));
    if (!c) return std::string();
    std::string v = c->text();
    VIREO_TRY(c->finish());
    static constexpr std::string_view common[] = {"destroy", "restart", "preserve", "rename-restart"};
    if (std::find(std::begin(common), std::end(common), v) != std::end(common)) return v;
    if (crash && (v == "coredump-destroy" || v == "coredump-restart")) return v;
    return std::unexpected(c->xml_error("", fmt::format("unsupported action '{}' (expected one of destroy, restart, preserve, rename-restart{})", v,
                                                        crash ? ", coredump-destroy, coredump-restart" : "")));
}

Status parse_domain_element(XmlElement& e, DomainDef& def) {
    VIREO_ASSIGN(def.type, e.attr_enum("type", {"kvm", "qemu"}, "domain type",
                                   {"kqemu", "xen", "lxc", "uml", "openvz", "test", "vmware", "hyperv", "vbox", "phyp", "vz", "bhyve", "ch", "hvf"}));
    if (def.type.empty()) return std::unexpected(e.xml_error("@type", "missing domain type (expected 'kvm' or 'qemu')"));
    auto id = e.attr("id");
    if (id) {
        auto n = xml::parse_uint(*id);
        if (n && *n <= 0x7fffffff) def.id = static_cast<int>(*n);
        else if (*id != "-1") return std::unexpected(e.xml_error("@id", fmt::format("invalid domain id '{}'", *id)));
    }
    for (auto a : e.node().attributes()) {
        std::string_view an = a.name();
        if (an.starts_with("xmlns:")) {
            def.root_namespaces.emplace_back(std::string(an), a.value());
            (void)e.attr(an);
        } else if (an == "xmlns") {
            if (std::string_view(a.value()) != "http://libvirt.org/schemas/domain/1.0" && std::string_view(a.value()) != "")
                return std::unexpected(e.xml_error("@xmlns", fmt::format("unexpected namespace '{}'", a.value())));
            (void)e.attr(an);
        }
    }

    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("name"));
    if (!c) return std::unexpected(e.xml_error("", "missing <name>: a domain needs a name"));
    def.name = c->text();
    VIREO_TRY(c->finish());

    VIREO_ASSIGN(c, e.child("uuid"));
    if (c) {
        const std::string text = c->text();
        auto uuid = Uuid::parse(text);
        if (!uuid) return std::unexpected(c->xml_error("", fmt::format("malformed uuid '{}'", text)));
        def.uuid = *uuid;
        VIREO_TRY(c->finish());
    }
    const bool uuid_given = c.has_value();
    if (!uuid_given) def.uuid = Uuid::generate();
    VIREO_ASSIGN(c, e.child("genid"));
    if (c) {
        const std::string text = c->text();
        if (text.empty()) {
            def.genid = Uuid::generate().str();
        } else {
            auto g = Uuid::parse(text);
            if (!g) return std::unexpected(c->xml_error("", fmt::format("malformed genid '{}'", text)));
            def.genid = g->str();
        }
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(def.title, parse_text_child(e, "title"));
    if (def.title.find('\n') != std::string::npos) return std::unexpected(e.xml_error("title", "the title must be a single line"));
    VIREO_ASSIGN(def.description, parse_text_child(e, "description"));
    VIREO_ASSIGN(c, e.child("metadata"));
    if (c) {
        def.metadata_present = true;
        def.metadata_xml = metadata_inner_xml(c->node());
        c->consume_all();
    }

    VIREO_ASSIGN(c, e.child("memory"));
    if (!c) return std::unexpected(e.xml_error("", "missing <memory>: a domain needs a memory size"));
    VIREO_ASSIGN(def.memory_kib, parse_memory_value(*c));
    VIREO_TRY(c->finish());
    VIREO_ASSIGN(c, e.child("currentMemory"));
    if (c) {
        VIREO_ASSIGN(def.current_memory_kib, parse_memory_value(*c));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("maxMemory"));
    if (c) {
        VIREO_ASSIGN(def.max_memory_slots, c->attr_uint("slots"));
        VIREO_ASSIGN(def.max_memory_kib, parse_memory_value(*c));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("memoryBacking"));
    if (c) VIREO_TRY(parse_memory_backing(*c, def.memory_backing));

    VIREO_ASSIGN(c, e.child("vcpu"));
    if (c) {
        VIREO_ASSIGN(def.vcpu_placement, c->attr_enum("placement", {"static", "auto"}, "vcpu placement"));
        def.vcpu_cpuset = c->attr_or_empty("cpuset");
        VIREO_ASSIGN(def.vcpus_current, c->attr_uint("current"));
        const std::string text = c->text();
        auto n = xml::parse_uint(text);
        if (!n || *n == 0 || *n > 4096) return std::unexpected(c->xml_error("", fmt::format("invalid vcpu count '{}' (expected 1 to 4096)", text)));
        def.vcpus = static_cast<unsigned>(*n);
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("vcpus"));
    if (c) {
        VIREO_TRY(parse_vcpus(*c, def.vcpus, def.vcpu_states));
        sync_vcpus_current(def);
    }
    VIREO_ASSIGN(c, e.child("iothreads"));
    if (c) {
        const std::string text = c->text();
        auto n = xml::parse_uint(text);
        if (!n || *n > 1024) return std::unexpected(c->xml_error("", fmt::format("invalid iothreads count '{}'", text)));
        def.iothreads = static_cast<unsigned>(*n);
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("iothreadids"));
    if (c) VIREO_TRY(parse_iothreadids(*c, def.iothread_ids));
    VIREO_ASSIGN(c, e.child("cputune"));
    if (c) VIREO_TRY(parse_cputune(*c, def.cputune));
    VIREO_ASSIGN(c, e.child("numatune"));
    if (c) VIREO_TRY(parse_numatune(*c, def.numatune, def.vcpu_placement));
    VIREO_ASSIGN(c, e.child("resource"));
    if (c) {
        VIREO_ASSIGN(def.resource_partition, parse_text_child(*c, "partition"));
        VIREO_TRY(c->finish());
    }
    for (auto& si : e.children("sysinfo")) {
        if (def.sysinfo.present) return std::unexpected(si.unsupported("", "a second <sysinfo> is not supported by vireo"));
        VIREO_TRY(parse_sysinfo(si, def.sysinfo));
        // The system UUID is the domain's (taken from it when <uuid> is absent).
        for (const auto& entry : def.sysinfo.system) {
            if (entry.name != "uuid") continue;
            auto u = Uuid::parse(entry.value);
            if (!u) return std::unexpected(si.xml_error("system/entry", fmt::format("malformed uuid '{}'", entry.value)));
            if (!uuid_given) def.uuid = *u;
            else if (!(*u == def.uuid)) return std::unexpected(si.xml_error("system/entry", "UUID mismatch between <uuid> and <sysinfo>"));
        }
    }
    VIREO_ASSIGN(c, e.child("os"));
    if (!c) return std::unexpected(e.xml_error("", "missing <os> (e.g. <os><type arch='x86_64' machine='q35'>hvm</type></os>)"));
    VIREO_TRY(parse_os(*c, def.os));
    VIREO_ASSIGN(c, e.child("features"));
    if (c) {
        def.features_present = true;
        for (auto& f : c->all_children()) VIREO_TRY(parse_feature(f, "features", def.features.emplace_back()));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("cpu"));
    if (c) VIREO_TRY(parse_cpu(*c, def.cpu));
    VIREO_ASSIGN(c, e.child("clock"));
    if (c) VIREO_TRY(parse_clock(*c, def.clock));
    VIREO_ASSIGN(def.on_poweroff, parse_lifecycle_action(e, "on_poweroff", false));
    VIREO_ASSIGN(def.on_reboot, parse_lifecycle_action(e, "on_reboot", false));
    VIREO_ASSIGN(def.on_crash, parse_lifecycle_action(e, "on_crash", true));
    VIREO_ASSIGN(c, e.child("pm"));
    if (c) VIREO_TRY(parse_pm(*c, def.pm));
    VIREO_ASSIGN(c, e.child("devices"));
    if (c) VIREO_TRY(parse_devices(*c, def.devices));
    for (auto& l : e.children("seclabel")) VIREO_TRY(parse_seclabel(l, def.seclabels.emplace_back()));
    return e.finish();
}

// A validation problem as an Error naming the line of the node its path
// points at (found with XPath in the parsed document).
Error located_problem(const ValidationProblem& p, const pugi::xml_document& doc, const xml::SourceText& src) {
    const char* prefix = p.code == ErrorCode::Unsupported ? "unsupported configuration" : "XML error";
    std::string xpath = p.path;
    pugi::xml_node node;
    // Walk up the path until a node exists (an attribute may be absent).
    while (!xpath.empty()) {
        try {
            auto found = doc.select_node(xpath.c_str());
            node = found.attribute() ? found.parent() : found.node();
        } catch (const std::exception&) {
            node = {};
        }
        if (node) break;
        auto slash = xpath.rfind('/');
        if (slash == std::string::npos || slash == 0) break;
        xpath.resize(slash);
    }
    if (!node) return Error{p.code, fmt::format("{}: {}: {}", prefix, p.path, p.message)};
    return Error{p.code, fmt::format("{}: line {}: {}: {}", prefix, src.line_of(node.offset_debug()), p.path, p.message)};
}

}  // namespace

Result<std::string> device_xml_kind(std::string_view text) {
    xml::Document d;
    auto root = xml::open_document(d, text, {});
    if (!root) return std::unexpected(root.error());
    return std::string(root->name());
}

Result<Disk> parse_disk_xml(std::string_view text) {
    xml::Document d;
    auto el = xml::open_document(d, text, "disk");
    if (!el) return std::unexpected(el.error());
    Disk disk;
    VIREO_TRY(parse_disk(*el, disk));
    return disk;
}

Result<MemoryDevice> parse_memory_device_xml(std::string_view text) {
    xml::Document d;
    auto el = xml::open_document(d, text, "memory");
    if (!el) return std::unexpected(el.error());
    MemoryDevice mem;
    VIREO_TRY(parse_memory_device(*el, mem, [](XmlElement& dev, DeviceInfo& info) { return parse_device_info(dev, info, false); }));
    return mem;
}

bool is_pluggable_kind(std::string_view element) {
    return element == "rng" || element == "input" || element == "watchdog" || element == "channel";
}

Result<PluggableDevice> parse_pluggable_device_xml(std::string_view text) {
    xml::Document d;
    auto el = xml::open_document(d, text, {});
    if (!el) return std::unexpected(el.error());
    const std::string_view n = el->name();
    if (n == "rng") {
        Rng r;
        VIREO_TRY(parse_rng(*el, r));
        return r;
    }
    if (n == "input") {
        Input in;
        VIREO_TRY(parse_input(*el, in));
        return in;
    }
    if (n == "watchdog") {
        Watchdog w;
        VIREO_TRY(parse_watchdog(*el, w));
        return w;
    }
    if (n == "channel") {
        CharDev ch;
        VIREO_TRY(parse_chardev(*el, ch));
        return ch;
    }
    return fail(ErrorCode::Unsupported, "device <{}> cannot be attached or detached by vireo yet", n);
}

Result<Interface> parse_domain_interface_xml(std::string_view text) {
    xml::Document d;
    auto el = xml::open_document(d, text, "interface");
    if (!el) return std::unexpected(el.error());
    Interface nic;
    VIREO_TRY(parse_interface(*el, nic));
    return nic;
}

Result<InterfaceSelector> parse_interface_selector_xml(std::string_view text) {
    xml::Document d;
    auto el = xml::open_document(d, text, "interface");
    if (!el) return std::unexpected(el.error());
    InterfaceSelector out;
    out.type = el->attr_or_empty("type");
    auto mac = el->child("mac");
    if (!mac) return std::unexpected(mac.error());
    if (*mac) {
        auto parsed = MacAddr::parse((*mac)->attr_or_empty("address"));
        if (!parsed) return std::unexpected((*mac)->xml_error("@address", "invalid MAC address"));
        out.mac = parsed->str();
    }
    return out;
}

Result<DomainDef> parse_domain_xml(std::string_view text, ParseFlags flags) {
    xml::Document d;
    auto el = xml::open_document(d, text, "domain");
    if (!el) return std::unexpected(el.error());
    DomainDef def;
    VIREO_TRY(parse_domain_element(*el, def));
    // libvirt clamps currentMemory to memory
    if (def.current_memory_kib && *def.current_memory_kib > def.memory_kib) def.current_memory_kib = def.memory_kib;
    if (!flags.no_validate) {
        if (auto problem = find_validation_problem(def)) return std::unexpected(located_problem(*problem, d.doc, *d.src));
    }
    order_devices_like_libvirt(def.devices);
    return def;
}

}  // namespace vireo::conf
