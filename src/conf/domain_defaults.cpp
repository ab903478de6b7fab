// assign_addresses_and_aliases: the defaults libvirt's QEMU driver fills in
// when a domain is defined, so that vireo's dumpxml looks like libvirt's and
// stays stable across dumpxml / define (everything assigned is kept).
//
// What is filled in (x86_64; the rules follow libvirt's documented behaviour):
// - os: arch x86_64, machine 'pc'; emulator /usr/bin/qemu-system-<arch>
// - clock offset utc, on_poweroff destroy / on_reboot restart / on_crash destroy
// - MAC addresses 52:54:00:xx:xx:xx
// - consoles: a serial gets a console (target serial port 0) and vice versa
// - implicit controllers: pci-root (pc) / pcie-root (q35), a USB controller
//   (piix3-uhci on pc, qemu-xhci on q35), the q35 SATA controller, IDE on pc,
//   virtio-serial when virtio channels/consoles exist, SCSI/SATA/FDC when a
//   disk needs one
// - ps2 mouse and keyboard with graphics; a video device with graphics;
//   a virtio memballoon
// - addresses: drive addresses for ide/sata/scsi/fdc disks, virtio-serial
//   ports for channels, USB ports for USB devices, and PCI slots:
//   pc:  slot 1 = PIIX3 (IDE 1.1, USB 1.2), primary video slot 2, then every
//        other PCI device from slot 3 in libvirt's order (filesystems, NICs,
//        sound, controllers, virtio disks, memballoon, rng, watchdog)
//   q35: primary video 0:1.0, SATA 0:1f.2, ich9 sound 0:1b.0; every PCIe
//        endpoint gets its own pcie-root-port (added on bus 0 from slot 2,
//        eight functions per slot) and sits at slot 0 on the port's bus;
//        conventional-PCI devices go behind a pcie-to-pci-bridge
// - aliases: virtio-disk0, sata0-0-0, net0, serial0, channel0, input0,
//   video0, sound0, balloon0, rng0, usb, pci.1, virtio-serial0, ...
#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <set>

#include <fmt/format.h>

#include "conf/domain.hpp"
#include "util/random.hpp"

namespace vireo::conf {

bool is_q35_machine(std::string_view machine) {
    return machine == "q35" || machine.starts_with("pc-q35");
}

const Disk* find_disk_by_target(const DomainDef& def, std::string_view target_dev) {
    for (const auto& d : def.devices.disks)
        if (d.target_dev == target_dev) return &d;
    return nullptr;
}

namespace {

// "vda" -> 0, "sdb" -> 1, "hdaa" -> 26 (libvirt's virDiskNameToIndex).
int disk_index(std::string_view dev) {
    std::size_t i = 0;
    while (i < dev.size() && i < 2 && !(dev[i] >= 'a' && dev[i] <= 'z' && i == 2)) ++i;
    // prefixes: vd, sd, hd, fd, xvd, ubd
    static constexpr std::string_view prefixes[] = {"xvd", "ubd", "vd", "sd", "hd", "fd"};
    std::string_view rest;
    for (auto p : prefixes)
        if (dev.starts_with(p)) {
            rest = dev.substr(p.size());
            break;
        }
    if (rest.empty()) return -1;
    int idx = 0;
    for (char c : rest) {
        if (c < 'a' || c > 'z') return -1;
        idx = (idx + 1) * 26 + (c - 'a');
        if (idx > 100000) return -1;
    }
    return idx - 26;
}

std::string random_mac() {
    std::array<std::uint8_t, 3> b{};
    random_bytes(b);
    return fmt::format("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]);
}

std::array<std::uint8_t, 3> random_triplet() {
    std::array<std::uint8_t, 3> b{};
    random_bytes(b);
    return b;
}

Controller* find_controller(DomainDef& def, std::string_view type, unsigned index) {
    for (auto& c : def.devices.controllers)
        if (c.type == type && c.index == index) return &c;
    return nullptr;
}

Controller& ensure_controller(DomainDef& def, std::string_view type, unsigned index, std::string_view model) {
    if (Controller* c = find_controller(def, type, index)) return *c;
    Controller c;
    c.type = std::string(type);
    c.index = index;
    c.model = std::string(model);
    def.devices.controllers.push_back(std::move(c));
    return def.devices.controllers.back();
}

void fill_basic_defaults(DomainDef& def) {
    if (def.os.arch.empty()) def.os.arch = "x86_64";
    if (def.os.machine.empty()) def.os.machine = "pc";
    if (def.devices.emulator.empty()) def.devices.emulator = "/usr/bin/qemu-system-" + def.os.arch;
    if (def.clock.offset.empty()) def.clock.offset = "utc";
    if (def.on_poweroff.empty()) def.on_poweroff = "destroy";
    if (def.on_reboot.empty()) def.on_reboot = "restart";
    if (def.on_crash.empty()) def.on_crash = "destroy";
    if (def.vcpu_placement.empty()) def.vcpu_placement = "static";
    if (def.os.firmware == "efi" && def.os.loader.empty() && def.os.loader_type.empty()) {
        // Resolved at start from the firmware descriptors; nothing to store.
    }
    if (!def.os.loader.empty() && def.os.loader_type == "pflash" && def.os.nvram.empty() && def.os.nvram_template.empty()) {
        // libvirt derives the per-domain NVRAM file name.
        def.os.nvram = fmt::format("/var/lib/libvirt/qemu/nvram/{}_VARS.fd", def.name);
    }
}

void fill_device_defaults(DomainDef& def) {
    auto& d = def.devices;
    for (auto& nic : d.interfaces)
        if (nic.mac.empty()) nic.mac = random_mac();
    for (auto& disk : d.disks) {
        if (disk.target_bus.empty()) {
            if (disk.target_dev.starts_with("vd")) disk.target_bus = "virtio";
            else if (disk.target_dev.starts_with("sd")) disk.target_bus = is_q35_machine(def.os.machine) ? "sata" : "scsi";
            else if (disk.target_dev.starts_with("hd")) disk.target_bus = "ide";
            else if (disk.target_dev.starts_with("fd")) disk.target_bus = "fdc";
        }
        if (disk.driver_name.empty() && !disk.driver_type.empty()) disk.driver_name = "qemu";
        if (disk.device == "cdrom" || disk.device == "floppy") disk.readonly = disk.readonly || disk.device == "cdrom";
    }
    // serial <-> console pairing
    for (std::size_t i = 0; i < d.serials.size(); ++i) {
        auto& s = d.serials[i];
        if (!s.target_port) s.target_port = static_cast<unsigned>(i);
        if (s.target_type.empty()) s.target_type = "isa-serial";
        if (s.target_model.empty() && s.target_type == "isa-serial") s.target_model = "isa-serial";
    }
    if (!d.consoles.empty()) {
        auto& con = d.consoles[0];
        if (con.target_type.empty()) con.target_type = "serial";
        if (con.target_type == "serial") {
            if (d.serials.empty()) {
                CharDev s = con;
                s.kind = "serial";
                s.target_type = "isa-serial";
                s.target_model = "isa-serial";
                s.target_port = 0;
                s.info = {};
                d.serials.push_back(std::move(s));
            }
            if (!con.target_port) con.target_port = 0;
        }
    } else if (!d.serials.empty()) {
        CharDev con = d.serials[0];
        con.kind = "console";
        con.target_type = "serial";
        con.target_model.clear();
        con.target_port = 0;
        con.info = {};
        d.consoles.push_back(std::move(con));
    }
    for (std::size_t i = 1; i < d.consoles.size(); ++i) {
        if (d.consoles[i].target_type.empty()) d.consoles[i].target_type = "virtio";
        if (!d.consoles[i].target_port) d.consoles[i].target_port = static_cast<unsigned>(i);
    }
    for (auto& ch : d.channels)
        if (ch.type == "unix" && ch.source_path.empty() && ch.source_mode.empty()) ch.source_mode = "bind";
    // inputs
    for (auto& in : d.inputs)
        if (in.bus.empty()) in.bus = in.type == "tablet" ? "usb" : "ps2";
    if (!d.graphics.empty()) {
        auto has_input = [&](std::string_view type, std::string_view bus) {
            return std::any_of(d.inputs.begin(), d.inputs.end(), [&](const Input& in) { return in.type == type && in.bus == bus; });
        };
        if (!has_input("mouse", "ps2")) d.inputs.push_back(Input{"mouse", "ps2", "", {}});
        if (!has_input("keyboard", "ps2")) d.inputs.push_back(Input{"keyboard", "ps2", "", {}});
        if (d.videos.empty()) {
            Video v;
            v.model_type = d.graphics[0].type == "spice" ? "qxl" : "vga";
            d.videos.push_back(std::move(v));
        }
    }
    for (auto& g : d.graphics) {
        if (g.port.empty() || g.port == "-1") {
            if (g.autoport.empty()) g.autoport = "yes";
            g.port = "-1";
        } else if (g.autoport.empty()) {
            g.autoport = "no";
        }
        if (g.type == "spice" && g.autoport == "yes" && g.tls_port.empty()) g.tls_port = "-1";
        if (g.listens.empty()) g.listens.push_back(Graphics::Listen{"address", g.listen, "", ""});
    }
    for (std::size_t i = 0; i < d.videos.size(); ++i) {
        auto& v = d.videos[i];
        if (v.model_type.empty()) v.model_type = "vga";
        if (v.model_type == "none") continue;
        if (v.heads.empty()) v.heads = "1";
        if (i == 0 && v.primary.empty()) v.primary = "yes";
        if ((v.model_type == "vga" || v.model_type == "cirrus" || v.model_type == "bochs") && v.vram.empty()) v.vram = "16384";
        if (v.model_type == "qxl") {
            if (v.ram.empty()) v.ram = "65536";
            if (v.vram.empty()) v.vram = "65536";
            if (v.vgamem.empty()) v.vgamem = "16384";
        }
    }
    if (!d.memballoon) d.memballoon = Memballoon{};
    for (auto& r : d.rngs)
        if (r.backend_model == "random" && r.backend_path.empty()) r.backend_path = "/dev/urandom";
    for (auto& w : d.watchdogs)
        if (w.action.empty()) w.action = "reset";
    for (auto& t : d.tpms)
        if (t.backend_type == "emulator" && t.backend_version.empty()) t.backend_version = "2.0";
}

void add_implicit_controllers(DomainDef& def) {
    const bool q35 = is_q35_machine(def.os.machine);
    auto& d = def.devices;
    if (!find_controller(def, "pci", 0)) {
        Controller root;
        root.type = "pci";
        root.index = 0;
        root.model = q35 ? "pcie-root" : "pci-root";
        d.controllers.insert(d.controllers.begin(), std::move(root));
    }
    if (!find_controller(def, "usb", 0)) ensure_controller(def, "usb", 0, q35 ? "qemu-xhci" : "piix3-uhci");
    if (Controller* usb = find_controller(def, "usb", 0); usb && usb->model == "qemu-xhci" && usb->ports.empty()) usb->ports = "15";
    if (q35) ensure_controller(def, "sata", 0, "");
    else ensure_controller(def, "ide", 0, "");
    for (const auto& disk : d.disks) {
        if (disk.target_bus == "scsi") ensure_controller(def, "scsi", 0, "virtio-scsi");
        if (disk.target_bus == "sata") ensure_controller(def, "sata", 0, "");
        if (disk.target_bus == "fdc") ensure_controller(def, "fdc", 0, "");
    }
    const bool needs_vserial =
        std::any_of(d.channels.begin(), d.channels.end(), [](const CharDev& c) { return c.target_type == "virtio"; }) ||
        std::any_of(d.consoles.begin(), d.consoles.end(), [](const CharDev& c) { return c.target_type == "virtio"; });
    if (needs_vserial) ensure_controller(def, "virtio-serial", 0, "");
}

void assign_drive_addresses(DomainDef& def) {
    for (auto& disk : def.devices.disks) {
        if (!disk.info.address.empty()) continue;
        const int idx = disk_index(disk.target_dev);
        if (idx < 0) continue;
        DeviceAddress a;
        a.type = "drive";
        const auto u = static_cast<unsigned>(idx);
        if (disk.target_bus == "ide") {
            a.controller = u / 4;
            a.bus = (u % 4) / 2;
            a.unit = u % 2;
        } else if (disk.target_bus == "sata") {
            a.controller = u / 6;
            a.unit = u % 6;
        } else if (disk.target_bus == "scsi") {
            a.controller = u / 7;
            a.unit = u % 7;
        } else if (disk.target_bus == "fdc") {
            a.unit = u % 2;
        } else {
            continue;
        }
        disk.info.address = a;
    }
}

void assign_virtio_serial_ports(DomainDef& def) {
    std::set<unsigned> used;
    std::vector<CharDev*> devs;
    for (auto& c : def.devices.channels)
        if (c.target_type == "virtio") devs.push_back(&c);
    for (std::size_t i = 0; i < def.devices.consoles.size(); ++i)
        if (def.devices.consoles[i].target_type == "virtio" && i > 0) devs.push_back(&def.devices.consoles[i]);
    for (auto* c : devs)
        if (c->info.address.type == "virtio-serial" && !c->info.address.port.empty()) used.insert(static_cast<unsigned>(std::stoul(c->info.address.port)));
    unsigned next = 1;
    for (auto* c : devs) {
        if (c->kind == "console") continue;  // virtio consoles take virtconsole ports, no address in libvirt
        if (!c->info.address.empty()) continue;
        while (used.contains(next)) ++next;
        c->info.address.type = "virtio-serial";
        c->info.address.port = std::to_string(next);
        used.insert(next);
    }
}

void assign_usb_ports(DomainDef& def) {
    std::set<std::string> used;
    std::vector<DeviceInfo*> devs;
    for (auto& in : def.devices.inputs)
        if (in.bus == "usb") devs.push_back(&in.info);
    for (auto& disk : def.devices.disks)
        if (disk.target_bus == "usb") devs.push_back(&disk.info);
    for (auto& s : def.devices.sounds)
        if (s.model == "usb") devs.push_back(&s.info);
    for (auto& r : def.devices.redirdevs) devs.push_back(&r.info);
    for (auto* i : devs)
        if (i->address.type == "usb") used.insert(i->address.port);
    const Controller* usb = find_controller(def, "usb", 0);
    if (!usb || usb->model == "none") return;
    unsigned next = 1;
    for (auto* i : devs) {
        if (!i->address.empty()) continue;
        while (used.contains(std::to_string(next))) ++next;
        i->address.type = "usb";
        i->address.bus = 0;
        i->address.port = std::to_string(next);
        used.insert(i->address.port);
    }
}

// ---- PCI ----

// A device that needs a PCI address, and whether it is a PCI Express
// endpoint (goes on a root port on q35) or conventional PCI. The device is
// reached through a getter because placing devices on q35 appends root
// ports to the controller vector, which would invalidate pointers.
struct PciDevice {
    std::function<DeviceInfo&()> info;
    bool pcie;
};

bool is_conventional_pci_model(std::string_view model) {
    static constexpr std::string_view conventional[] = {"e1000", "rtl8139", "ich6", "ich7", "ac97", "es1370", "i6300esb",
                                                        "lsilogic", "lsisas1068", "lsisas1078", "piix3-uhci", "piix4-uhci",
                                                        "ehci", "ich9-ehci1", "ich9-uhci1", "ich9-uhci2", "ich9-uhci3", "pci-ohci",
                                                        "cirrus", "qxl-secondary"};
    return std::find(std::begin(conventional), std::end(conventional), model) != std::end(conventional);
}

// In libvirt's order: filesystems, NICs, sound, controllers, virtio disks,
// non-primary video, memballoon, rng, watchdog, virtio input.
std::vector<PciDevice> devices_needing_pci(DomainDef& def, bool q35) {
    std::vector<PciDevice> out;
    auto& d = def.devices;
    auto add_vec = [&](auto member, std::size_t i, bool pcie) {
        DeviceInfo& info = (d.*member)[i].info;
        if (!info.address.empty()) return;
        out.push_back({[&d, member, i]() -> DeviceInfo& { return (d.*member)[i].info; }, pcie});
    };
    for (std::size_t i = 0; i < d.filesystems.size(); ++i) add_vec(&Devices::filesystems, i, true);
    for (std::size_t i = 0; i < d.interfaces.size(); ++i) {
        const auto& n = d.interfaces[i];
        add_vec(&Devices::interfaces, i, !is_conventional_pci_model(n.model.empty() ? (q35 ? "e1000e" : "rtl8139") : n.model));
    }
    for (std::size_t i = 0; i < d.sounds.size(); ++i) {
        const auto& s = d.sounds[i];
        if (s.model == "usb" || s.model == "pcspk" || s.model == "sb16") continue;
        if (q35 && s.model == "ich9") continue;  // integrated at 0:1b.0, handled separately
        add_vec(&Devices::sounds, i, !is_conventional_pci_model(s.model));
    }
    for (std::size_t i = 0; i < d.controllers.size(); ++i) {
        const auto& c = d.controllers[i];
        if (c.type == "pci" || c.type == "ide" || c.type == "fdc") continue;
        if (c.type == "sata" && q35 && c.index == 0) continue;
        if (c.type == "usb" && c.model == "none") continue;
        add_vec(&Devices::controllers, i, !is_conventional_pci_model(c.model));
    }
    for (std::size_t i = 0; i < d.disks.size(); ++i)
        if (d.disks[i].target_bus == "virtio") add_vec(&Devices::disks, i, true);
    for (std::size_t i = 1; i < d.videos.size(); ++i)
        if (d.videos[i].model_type != "none") add_vec(&Devices::videos, i, d.videos[i].model_type == "virtio");
    if (d.memballoon && d.memballoon->model == "virtio" && d.memballoon->info.address.empty())
        out.push_back({[&d]() -> DeviceInfo& { return d.memballoon->info; }, true});
    for (std::size_t i = 0; i < d.rngs.size(); ++i) add_vec(&Devices::rngs, i, true);
    for (std::size_t i = 0; i < d.watchdogs.size(); ++i)
        if (d.watchdogs[i].model == "i6300esb") add_vec(&Devices::watchdogs, i, false);
    for (std::size_t i = 0; i < d.inputs.size(); ++i)
        if (d.inputs[i].bus == "virtio") add_vec(&Devices::inputs, i, true);
    return out;
}

class PciAllocator {
public:
    explicit PciAllocator(DomainDef& def) : def_(def) {
        for (const auto& ref : all_infos())
            if (ref->address.type == "pci") mark(ref->address);
    }

    void mark(const DeviceAddress& a) { used_.insert(key(a.bus, a.slot, a.function)); }
    bool is_used(unsigned bus, unsigned slot, unsigned fn) const { return used_.contains(key(bus, slot, fn)); }

    // A whole free slot on `bus` from `first_slot`.
    std::optional<unsigned> free_slot(unsigned bus, unsigned first_slot, unsigned last_slot = 31) const {
        for (unsigned s = first_slot; s <= last_slot; ++s) {
            bool any = false;
            for (unsigned f = 0; f < 8; ++f) any = any || is_used(bus, s, f);
            if (!any) return s;
        }
        return std::nullopt;
    }

    std::vector<DeviceInfo*> all_infos() {
        std::vector<DeviceInfo*> out;
        auto& d = def_.devices;
        auto add = [&](auto& vec) {
            for (auto& x : vec) out.push_back(&x.info);
        };
        add(d.disks), add(d.controllers), add(d.filesystems), add(d.interfaces), add(d.serials), add(d.parallels), add(d.consoles),
            add(d.channels), add(d.inputs), add(d.tpms), add(d.graphics), add(d.sounds), add(d.videos), add(d.redirdevs), add(d.watchdogs), add(d.rngs), add(d.panics);
        if (d.memballoon) out.push_back(&d.memballoon->info);
        return out;
    }

    static DeviceAddress pci(unsigned bus, unsigned slot, unsigned fn) {
        DeviceAddress a;
        a.type = "pci";
        a.bus = bus;
        a.slot = slot;
        a.function = fn;
        return a;
    }

    void place(DeviceInfo& info, unsigned bus, unsigned slot, unsigned fn) {
        info.address = pci(bus, slot, fn);
        mark(info.address);
    }

private:
    static unsigned key(unsigned bus, unsigned slot, unsigned fn) { return (bus << 8) | (slot << 3) | fn; }
    DomainDef& def_;
    std::set<unsigned> used_;
};

void place_primary_video(DomainDef& def, PciAllocator& pci, bool q35) {
    if (def.devices.videos.empty()) return;
    auto& v = def.devices.videos[0];
    if (v.model_type == "none" || v.model_type == "ramfb" || !v.info.address.empty()) return;
    const unsigned slot = q35 ? 1 : 2;
    if (!pci.is_used(0, slot, 0)) pci.place(v.info, 0, slot, 0);
}

void assign_pci_pc(DomainDef& def, PciAllocator& pci) {
    // PIIX3 at slot 1: ISA bridge 1.0, IDE 1.1, USB 1.2, PM 1.3 (unless the
    // user put something else there).
    if (Controller* ide = find_controller(def, "ide", 0); ide && ide->info.address.empty() && !pci.is_used(0, 1, 1))
        pci.place(ide->info, 0, 1, 1);
    if (Controller* usb = find_controller(def, "usb", 0); usb && usb->model == "piix3-uhci" && usb->info.address.empty() && !pci.is_used(0, 1, 2))
        pci.place(usb->info, 0, 1, 2);
    for (unsigned f = 0; f < 4; ++f) pci.mark(PciAllocator::pci(0, 1, f));
    place_primary_video(def, pci, false);
    if (!def.devices.videos.empty() && def.devices.videos[0].info.address.empty()) pci.mark(PciAllocator::pci(0, 2, 0));
    for (auto& dev : devices_needing_pci(def, false)) {
        auto slot = pci.free_slot(0, 3);
        if (!slot) return;  // bus full: left unassigned; QEMU will report it
        pci.place(dev.info(), 0, *slot, 0);
    }
}

// q35: a new pcie-root-port for each PCIe endpoint; ports are packed eight
// functions per slot on bus 0 starting at slot 2, as libvirt does.
class RootPortAllocator {
public:
    RootPortAllocator(DomainDef& def, PciAllocator& pci) : def_(def), pci_(pci) {}

    // Bus number of a root port with nothing behind it (existing or new).
    std::optional<unsigned> free_port_bus(std::set<unsigned>& taken_buses) {
        for (const auto& c : def_.devices.controllers)
            if (c.type == "pci" && c.model == "pcie-root-port" && !taken_buses.contains(c.index) && !bus_has_device(c.index)) return c.index;
        return add_root_port();
    }

    std::optional<unsigned> add_root_port() {
        unsigned index = next_pci_index();
        Controller c;
        c.type = "pci";
        c.index = index;
        c.model = "pcie-root-port";
        c.model_name = "pcie-root-port";
        c.target_chassis = index;
        // Place it: find a free function on bus 0 starting at slot 2.
        for (unsigned s = 2; s < 32; ++s) {
            if (s == 0x1f || s == 0x1b || s == 1) continue;
            for (unsigned f = 0; f < 8; ++f) {
                if (pci_.is_used(0, s, f)) continue;
                if (f > 0 && !slot_is_root_ports(s)) break;
                c.target_port = fmt::format("0x{:x}", 0x10 + (s - 2) * 8 + f);
                c.info.address = PciAllocator::pci(0, s, f);
                pci_.mark(c.info.address);
                if (f > 0) set_multifunction(s);
                def_.devices.controllers.push_back(std::move(c));
                return index;
            }
        }
        return std::nullopt;
    }

    bool bus_has_device(unsigned bus) {
        for (auto* info : pci_.all_infos())
            if (info->address.type == "pci" && info->address.bus == bus) return true;
        return false;
    }

private:
    unsigned next_pci_index() const {
        unsigned max = 0;
        for (const auto& c : def_.devices.controllers)
            if (c.type == "pci") max = std::max(max, c.index);
        return max + 1;
    }
    bool slot_is_root_ports(unsigned slot) const {
        for (const auto& c : def_.devices.controllers)
            if (c.model == "pcie-root-port" && c.info.address.type == "pci" && c.info.address.bus == 0 && c.info.address.slot == slot) return true;
        return false;
    }
    void set_multifunction(unsigned slot) {
        for (auto& c : def_.devices.controllers)
            if (c.model == "pcie-root-port" && c.info.address.type == "pci" && c.info.address.bus == 0 && c.info.address.slot == slot &&
                c.info.address.function == 0 && c.info.address.multifunction.empty())
                c.info.address.multifunction = "on";
    }
    DomainDef& def_;
    PciAllocator& pci_;
};

void assign_pci_q35(DomainDef& def, PciAllocator& pci) {
    pci.mark(PciAllocator::pci(0, 0x1f, 0));  // LPC
    pci.mark(PciAllocator::pci(0, 0x1f, 3));  // SMBus
    if (Controller* sata = find_controller(def, "sata", 0); sata && sata->info.address.empty() && !pci.is_used(0, 0x1f, 2))
        pci.place(sata->info, 0, 0x1f, 2);
    pci.mark(PciAllocator::pci(0, 0x1f, 2));
    place_primary_video(def, pci, true);
    pci.mark(PciAllocator::pci(0, 1, 0));
    for (auto& s : def.devices.sounds)
        if (s.model == "ich9" && s.info.address.empty() && !pci.is_used(0, 0x1b, 0)) pci.place(s.info, 0, 0x1b, 0);
    // Existing root ports and bridges without an address first.
    RootPortAllocator ports(def, pci);
    for (std::size_t i = 0; i < def.devices.controllers.size(); ++i) {
        auto& c = def.devices.controllers[i];
        if (c.type != "pci" || c.model != "pcie-root-port" || !c.info.address.empty()) continue;
        if (c.model_name.empty()) c.model_name = "pcie-root-port";
        if (!c.target_chassis) c.target_chassis = c.index;
        Controller copy = c;
        def.devices.controllers.erase(def.devices.controllers.begin() + static_cast<std::ptrdiff_t>(i));
        // Re-place through the allocator (appends at the end), then restore order.
        const auto before = def.devices.controllers.size();
        auto idx = ports.add_root_port();
        if (idx && def.devices.controllers.size() > before) {
            Controller placed = std::move(def.devices.controllers.back());
            def.devices.controllers.pop_back();
            copy.info.address = placed.info.address;
            if (copy.target_port.empty()) copy.target_port = placed.target_port;
        }
        def.devices.controllers.insert(def.devices.controllers.begin() + static_cast<std::ptrdiff_t>(i), std::move(copy));
    }
    std::set<unsigned> taken;
    std::optional<unsigned> bridge_bus;
    unsigned bridge_slot = 1;
    for (auto& dev : devices_needing_pci(def, true)) {
        if (dev.pcie) {
            auto bus = ports.free_port_bus(taken);
            if (!bus) return;
            taken.insert(*bus);
            pci.place(dev.info(), *bus, 0, 0);
        } else {
            if (!bridge_bus) {
                auto port = ports.free_port_bus(taken);
                if (!port) return;
                taken.insert(*port);
                Controller bridge;
                bridge.type = "pci";
                unsigned max = 0;
                for (const auto& c : def.devices.controllers)
                    if (c.type == "pci") max = std::max(max, c.index);
                bridge.index = max + 1;
                bridge.model = "pcie-to-pci-bridge";
                bridge.model_name = "pcie-pci-bridge";
                pci.place(bridge.info, *port, 0, 0);
                bridge_bus = bridge.index;
                def.devices.controllers.push_back(std::move(bridge));
            }
            while (bridge_slot < 32 && pci.is_used(*bridge_bus, bridge_slot, 0)) ++bridge_slot;
            if (bridge_slot >= 32) return;
            pci.place(dev.info(), *bridge_bus, bridge_slot, 0);
        }
    }
}

void sort_controllers(DomainDef& def) {
    // libvirt lists controllers grouped by type in a fixed order, by index.
    static constexpr std::string_view order[] = {"ide", "fdc", "scsi", "sata", "virtio-serial", "ccid", "usb", "pci"};
    auto rank = [](const Controller& c) {
        auto it = std::find(std::begin(order), std::end(order), c.type);
        return static_cast<int>(it - std::begin(order));
    };
    std::stable_sort(def.devices.controllers.begin(), def.devices.controllers.end(),
                     [&](const Controller& a, const Controller& b) { return std::pair(rank(a), a.index) < std::pair(rank(b), b.index); });
}

// ---- aliases ----

void assign_aliases(DomainDef& def) {
    auto& d = def.devices;
    // Aliases already present (user or live documents) are never reused.
    std::set<std::string> taken;
    PciAllocator all(def);
    for (auto* info : all.all_infos())
        if (!info->alias.empty()) taken.insert(info->alias);
    auto set = [&taken](DeviceInfo& info, std::string alias) {
        if (!info.alias.empty() || taken.contains(alias)) return;
        info.alias = alias;
        taken.insert(std::move(alias));
    };
    unsigned virtio_disk = 0;
    for (auto& disk : d.disks) {
        const auto& a = disk.info.address;
        const int idx = disk_index(disk.target_dev);
        if (disk.target_bus == "virtio") set(disk.info, fmt::format("virtio-disk{}", idx >= 0 ? static_cast<unsigned>(idx) : virtio_disk));
        else if (disk.target_bus == "sata" || disk.target_bus == "ide") set(disk.info, fmt::format("{}{}-{}-{}", disk.target_bus, a.controller, a.bus, a.unit));
        else if (disk.target_bus == "scsi") set(disk.info, fmt::format("scsi{}-{}-{}-{}", a.controller, a.bus, a.target, a.unit));
        else if (disk.target_bus == "fdc") set(disk.info, fmt::format("fdc0-0-{}", a.unit));
        else if (disk.target_bus == "usb") set(disk.info, fmt::format("usb-disk{}", idx >= 0 ? static_cast<unsigned>(idx) : 0));
        ++virtio_disk;
    }
    const bool q35 = is_q35_machine(def.os.machine);
    for (auto& c : d.controllers) {
        if (c.type == "pci") set(c.info, c.index == 0 ? (c.model == "pcie-root" ? "pcie.0" : "pci.0") : fmt::format("pci.{}", c.index));
        else if (c.type == "usb") set(c.info, c.index == 0 ? std::string("usb") : fmt::format("usb{}", c.index));
        else if (c.type == "ide") set(c.info, c.index == 0 ? std::string("ide") : fmt::format("ide{}", c.index));
        else if (c.type == "sata") set(c.info, (q35 && c.index == 0) ? std::string("ide") : fmt::format("sata{}", c.index));
        else set(c.info, fmt::format("{}{}", c.type, c.index));
    }
    for (std::size_t i = 0; i < d.filesystems.size(); ++i) set(d.filesystems[i].info, fmt::format("fs{}", i));
    for (std::size_t i = 0; i < d.interfaces.size(); ++i) set(d.interfaces[i].info, fmt::format("net{}", i));
    for (std::size_t i = 0; i < d.serials.size(); ++i) set(d.serials[i].info, fmt::format("serial{}", i));
    for (std::size_t i = 0; i < d.parallels.size(); ++i) set(d.parallels[i].info, fmt::format("parallel{}", i));
    for (std::size_t i = 0; i < d.consoles.size(); ++i) {
        if (i == 0 && d.consoles[0].target_type == "serial" && !d.serials.empty()) {
            if (d.consoles[0].info.alias.empty()) d.consoles[0].info.alias = d.serials[0].info.alias;
        }
        else set(d.consoles[i].info, fmt::format("console{}", i));
    }
    for (std::size_t i = 0; i < d.channels.size(); ++i) set(d.channels[i].info, fmt::format("channel{}", i));
    for (std::size_t i = 0; i < d.inputs.size(); ++i) set(d.inputs[i].info, fmt::format("input{}", i));
    for (std::size_t i = 0; i < d.tpms.size(); ++i) set(d.tpms[i].info, fmt::format("tpm{}", i));
    for (std::size_t i = 0; i < d.sounds.size(); ++i) set(d.sounds[i].info, fmt::format("sound{}", i));
    for (std::size_t i = 0; i < d.videos.size(); ++i) set(d.videos[i].info, fmt::format("video{}", i));
    for (std::size_t i = 0; i < d.watchdogs.size(); ++i) set(d.watchdogs[i].info, fmt::format("watchdog{}", i));
    for (std::size_t i = 0; i < d.redirdevs.size(); ++i) set(d.redirdevs[i].info, fmt::format("redir{}", i));
    if (d.memballoon && d.memballoon->model != "none") set(d.memballoon->info, "balloon0");
    for (std::size_t i = 0; i < d.rngs.size(); ++i) set(d.rngs[i].info, fmt::format("rng{}", i));
}

}  // namespace

void assign_addresses_and_aliases(DomainDef& def) {
    fill_basic_defaults(def);
    fill_device_defaults(def);
    add_implicit_controllers(def);
    assign_drive_addresses(def);
    assign_virtio_serial_ports(def);
    assign_usb_ports(def);
    PciAllocator pci(def);
    if (is_q35_machine(def.os.machine)) assign_pci_q35(def, pci);
    else assign_pci_pc(def, pci);
    sort_controllers(def);
    assign_aliases(def);
}

void assign_unique_macs(DomainDef& def, const std::function<bool(std::string_view)>& in_use,
                        const std::function<std::array<std::uint8_t, 3>()>& random) {
    std::set<std::string> own;
    for (const auto& nic : def.devices.interfaces)
        if (!nic.mac.empty()) own.insert(nic.mac);
    for (auto& nic : def.devices.interfaces) {
        if (!nic.mac.empty()) continue;
        // 2^24 candidates: a bounded number of draws always finds a free one
        // unless the connection has millions of NICs.
        for (int attempt = 0; attempt < 4096 && nic.mac.empty(); ++attempt) {
            const auto b = random ? random() : random_triplet();
            std::string mac = fmt::format("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]);
            if (own.contains(mac) || (in_use && in_use(mac))) continue;
            nic.mac = std::move(mac);
        }
        if (!nic.mac.empty()) own.insert(nic.mac);
    }
}

}  // namespace vireo::conf
