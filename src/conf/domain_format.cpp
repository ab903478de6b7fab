// format_domain_xml: DomainDef -> libvirt domain XML, in libvirt's element
// order and spelling (memory in KiB, PCI addresses in hex).
#include <fmt/format.h>

#include "conf/domain.hpp"
#include "conf/domain_internal.hpp"
#include "conf/xml_writer.hpp"

namespace vireo::conf {

using xml::Node;

namespace {

std::string num(unsigned v) { return std::to_string(v); }
std::string opt_num(const std::optional<unsigned>& v) { return v ? std::to_string(*v) : std::string(); }

void format_address(Node& dev, const DeviceAddress& a) {
    if (a.empty()) return;
    Node& n = dev.add("address");
    n.attr("type", a.type);
    if (a.type == "pci") {
        n.attr("domain", fmt::format("0x{:04x}", a.domain));
        n.attr("bus", fmt::format("0x{:02x}", a.bus));
        n.attr("slot", fmt::format("0x{:02x}", a.slot));
        n.attr("function", fmt::format("0x{:x}", a.function));
        n.attr("multifunction", a.multifunction);
    } else if (a.type == "drive") {
        n.attr("controller", num(a.controller));
        n.attr("bus", num(a.bus));
        n.attr("target", num(a.target));
        n.attr("unit", num(a.unit));
    } else if (a.type == "virtio-serial") {
        n.attr("controller", num(a.controller));
        n.attr("bus", num(a.bus));
        n.attr("port", a.port);
    } else if (a.type == "usb") {
        n.attr("bus", num(a.bus));
        n.attr("port", a.port);
    } else if (a.type == "isa") {
        n.attr("iobase", a.iobase);
        n.attr("irq", a.irq);
    } else if (a.type == "dimm") {
        n.attr("slot", num(a.slot));
        n.attr("base", a.base);
    }
}

// <alias> (live, or user aliases always), <address>; boot is placed by callers
// because libvirt writes it before the alias.
void format_boot(Node& dev, const DeviceInfo& info) {
    if (info.boot_order) dev.add("boot").attr("order", num(*info.boot_order));
}
void format_info(Node& dev, const DeviceInfo& info, const FormatFlags& flags, std::string_view master_startport = {}) {
    if (!info.alias.empty() && (flags.live || info.alias.starts_with("ua-"))) dev.add("alias").attr("name", info.alias);
    if (!master_startport.empty()) dev.add("master").attr("startport", master_startport);
    format_address(dev, info.address);
}

void format_disk_source(Node& parent, const std::string& type, const DiskSource& s, bool always, bool live) {
    Node src("source");
    if (type == "file") src.attr("file", s.file);
    else if (type == "block") src.attr("dev", s.dev);
    else if (type == "volume") src.attr("pool", s.pool).attr("volume", s.volume).attr("mode", s.mode);
    else if (type == "network") src.attr("protocol", s.protocol).attr("name", s.name);
    src.attr("startupPolicy", s.startup_policy);
    if (live) src.attr("index", s.index);  // the backing chain numbering is live
    for (const auto& h : s.hosts) src.add("host").attr("name", h.name).attr("port", h.port).attr("transport", h.transport).attr("socket", h.socket);
    if (!src.empty() || always) parent.children.push_back(std::move(src));
}

void format_backing(Node& parent, const BackingStore& b, bool live) {
    if (!b.present) return;
    Node& n = parent.add("backingStore");
    n.attr("type", b.type).attr("index", live ? b.index : std::string());
    if (!b.format.empty()) n.add("format").attr("type", b.format);
    format_disk_source(n, b.type, b.source, false, live);
    for (const auto& inner : b.chain) format_backing(n, inner, live);
}

Node format_disk(const Disk& d, const FormatFlags& flags) {
    Node n("disk");
    n.attr("type", d.type).attr("device", d.device).attr("snapshot", d.snapshot);
    Node drv("driver");
    drv.attr("name", d.driver_name).attr("type", d.driver_type).attr("cache", d.cache).attr("error_policy", d.error_policy)
        .attr("rerror_policy", d.rerror_policy).attr("io", d.io).attr("discard", d.discard).attr("detect_zeroes", d.detect_zeroes)
        .attr("iothread", d.driver_iothread).attr("queues", d.driver_queues);
    n.add_if_nonempty(std::move(drv));
    format_disk_source(n, d.type, d.source, false, flags.live);
    format_backing(n, d.backing, flags.live);
    n.add("target").attr("dev", d.target_dev).attr("bus", d.target_bus).attr("tray", d.target_tray).attr("removable", d.target_removable);
    if (d.readonly) n.add("readonly");
    if (d.shareable) n.add("shareable");
    if (d.transient) n.add("transient");
    n.add_text("serial", d.serial);
    n.add_text("wwn", d.wwn);
    format_boot(n, d.info);
    format_info(n, d.info, flags);
    return n;
}

Node format_controller(const Controller& c, const FormatFlags& flags) {
    Node n("controller");
    n.attr("type", c.type).attr("index", num(c.index)).attr("model", c.model).attr("ports", c.ports).attr("vectors", c.vectors);
    if (!c.model_name.empty()) n.add("model").attr("name", c.model_name);
    Node tgt("target");
    tgt.attr("chassisNr", opt_num(c.target_chassis_nr)).attr("chassis", opt_num(c.target_chassis)).attr("port", c.target_port).attr("busNr", c.target_busnr);
    n.add_if_nonempty(std::move(tgt));
    Node drv("driver");
    drv.attr("queues", c.driver_queues).attr("iothread", c.driver_iothread);
    n.add_if_nonempty(std::move(drv));
    format_info(n, c.info, flags, c.master_startport);
    return n;
}

Node format_interface(const Interface& i, const FormatFlags& flags) {
    Node n("interface");
    n.attr("type", i.type);
    if (!i.mac.empty()) n.add("mac").attr("address", i.mac);
    Node src("source");
    if (i.type == "network") src.attr("network", i.source_network).attr("portgroup", i.source_portgroup)
            .attr("portid", flags.live ? i.source_portid : "").attr("bridge", flags.live ? i.source_bridge : "");
    else if (i.type == "bridge") src.attr("bridge", i.source_bridge);
    else if (i.type == "direct") src.attr("dev", i.source_dev).attr("mode", i.source_mode);
    n.add_if_nonempty(std::move(src));
    if (!i.target_dev.empty() && (flags.live || i.type == "ethernet"))
        n.add("target").attr("dev", i.target_dev).attr("managed", i.target_managed);
    if (!i.model.empty()) n.add("model").attr("type", i.model);
    if (!i.backend_type.empty()) n.add("backend").attr("type", i.backend_type);
    Node drv("driver");
    drv.attr("name", i.driver_name).attr("queues", i.driver_queues);
    n.add_if_nonempty(std::move(drv));
    if (!i.link_state.empty()) n.add("link").attr("state", i.link_state);
    if (!i.mtu.empty()) n.add("mtu").attr("size", i.mtu);
    format_boot(n, i.info);
    format_info(n, i.info, flags);
    return n;
}

Node format_chardev(const CharDev& c, const FormatFlags& flags) {
    Node n(c.kind);
    n.attr("type", c.type);
    if (c.kind == "console" && c.type == "pty" && flags.live) n.attr("tty", c.source_path);
    if (c.type == "udp") {
        // libvirt writes the local end first, then the remote one.
        if (!c.source_bind_host.empty() || !c.source_bind_service.empty())
            n.add("source").attr("mode", "bind").attr("host", c.source_bind_host).attr("service", c.source_bind_service);
        if (!c.source_host.empty() || !c.source_service.empty())
            n.add("source").attr("mode", "connect").attr("host", c.source_host).attr("service", c.source_service);
    } else {
        Node src("source");
        // A pty's path only exists while running.
        src.attr("mode", c.source_mode);
        if (c.type != "pty" || flags.live) src.attr("path", c.source_path);
        if (!c.vdagent_copypaste.empty()) src.add("clipboard").attr("copypaste", c.vdagent_copypaste);
        if (!c.vdagent_mouse.empty()) src.add("mouse").attr("mode", c.vdagent_mouse);
        src.attr("host", c.source_host).attr("service", c.source_service).attr("append", c.source_append);
        n.add_if_nonempty(std::move(src));
    }
    if (!c.protocol_type.empty()) n.add("protocol").attr("type", c.protocol_type);
    if (!c.log_file.empty()) n.add("log").attr("file", c.log_file).attr("append", c.log_append);
    Node tgt("target");
    tgt.attr("type", c.target_type).attr("address", c.target_address).attr("port", c.target_guestfwd_port);
    tgt.attr("port", opt_num(c.target_port)).attr("name", c.target_name);
    if (flags.live) tgt.attr("state", c.target_state);
    if (!c.target_model.empty()) tgt.add("model").attr("name", c.target_model);
    n.add_if_nonempty(std::move(tgt));
    format_info(n, c.info, flags);
    return n;
}

Node format_graphics(const Graphics& g, const FormatFlags& flags) {
    Node n("graphics");
    n.attr("type", g.type);
    // Inactive XML keeps ports only when fixed; autoport picks them at start
    // (libvirt writes port='-1' for VNC, nothing for SPICE).
    const bool auto_port = g.autoport == "yes";
    if (g.type == "vnc") {
        n.attr("port", (auto_port && !flags.live) ? std::string("-1") : g.port);
    } else {
        n.attr("port", (auto_port && !flags.live) ? std::string() : g.port);
        n.attr("tlsPort", (auto_port && !flags.live) ? std::string() : g.tls_port);
    }
    // SPICE says autoport='no' only beside a port
    if (g.type == "vnc" || g.autoport == "yes" || !g.port.empty() || !g.tls_port.empty()) n.attr("autoport", g.autoport);
    n.attr("websocket", g.websocket).attr("listen", g.listen).attr("passwd", g.passwd)
        .attr("passwdValidTo", g.passwd_valid_to).attr("keymap", g.keymap).attr("sharePolicy", g.share_policy)
        .attr("connected", g.connected).attr("defaultMode", g.default_mode);
    for (const auto& l : g.listens) n.add("listen").attr("type", l.type).attr("address", l.address).attr("network", l.network).attr("socket", l.socket);
    if (!g.image_compression.empty()) n.add("image").attr("compression", g.image_compression);
    Node gl("gl");
    gl.attr("enable", g.gl_enable).attr("rendernode", g.gl_rendernode);
    n.add_if_nonempty(std::move(gl));
    format_info(n, g.info, flags);
    return n;
}

Node format_video(const Video& v, const FormatFlags& flags) {
    Node n("video");
    Node m("model");
    m.attr("type", v.model_type).attr("ram", v.ram).attr("vram", v.vram).attr("vram64", v.vram64).attr("vgamem", v.vgamem)
        .attr("heads", v.heads).attr("primary", v.primary);
    if (!v.accel3d.empty()) m.add("acceleration").attr("accel3d", v.accel3d);
    n.add_if_nonempty(std::move(m));
    format_info(n, v.info, flags);
    return n;
}

void format_feature(Node& parent, const Feature& f) {
    Node& n = parent.add(f.name);
    for (const auto& [k, v] : f.attrs) n.attrs.emplace_back(k, v);
    for (const auto& c : f.children) format_feature(n, c);
}

void format_sysinfo(Node& root, const Sysinfo& si) {
    if (!si.present) return;
    Node& n = root.add("sysinfo");
    n.attr("type", si.type);
    auto block = [&](std::string_view name, const std::vector<SysinfoEntry>& entries) {
        if (entries.empty()) return;
        Node& b = n.add(std::string(name));
        for (const auto& e : entries) b.add("entry").attr("name", e.name).set_text(e.value);
    };
    block("bios", si.bios);
    block("system", si.system);
    for (const auto& bb : si.base_boards) block("baseBoard", bb);
    block("chassis", si.chassis);
    if (!si.oem_strings.empty()) {
        Node& o = n.add("oemStrings");
        for (const auto& s : si.oem_strings) o.add("entry").set_text(s);
    }
}

void format_os(Node& root, const OsDef& os) {
    Node& n = root.add("os");
    n.attr("firmware", os.firmware);
    n.add("type").attr("arch", os.arch).attr("machine", os.machine).set_text(os.type);
    if (!os.firmware_features.empty()) {
        Node& fw = n.add("firmware");
        for (const auto& [name, enabled] : os.firmware_features) fw.add("feature").attr("enabled", enabled).attr("name", name);
    }
    if (!os.loader.empty() || !os.loader_type.empty() || !os.loader_readonly.empty() || !os.loader_secure.empty()) {
        n.add("loader").attr("readonly", os.loader_readonly).attr("secure", os.loader_secure).attr("type", os.loader_type).set_text(os.loader);
    }
    if (!os.nvram.empty() || !os.nvram_template.empty()) n.add("nvram").attr("template", os.nvram_template).set_text(os.nvram);
    n.add_text("kernel", os.kernel);
    n.add_text("initrd", os.initrd);
    n.add_text("cmdline", os.cmdline);
    n.add_text("dtb", os.dtb);
    for (const auto& b : os.boot_devs) n.add("boot").attr("dev", b);
    Node menu("bootmenu");
    menu.attr("enable", os.bootmenu_enable).attr("timeout", os.bootmenu_timeout);
    n.add_if_nonempty(std::move(menu));
    Node bios("bios");
    bios.attr("useserial", os.bios_useserial).attr("rebootTimeout", os.bios_reboot_timeout);
    n.add_if_nonempty(std::move(bios));
    if (!os.smbios_mode.empty()) n.add("smbios").attr("mode", os.smbios_mode);
}

void format_cpu(Node& root, const CpuDef& cpu) {
    if (!cpu.present) return;
    Node& n = root.add("cpu");
    n.attr("mode", cpu.mode).attr("match", cpu.match).attr("check", cpu.check).attr("migratable", cpu.migratable);
    if (!cpu.model.empty() || !cpu.model_fallback.empty()) n.add("model").attr("fallback", cpu.model_fallback).set_text(cpu.model);
    n.add_text("vendor", cpu.vendor);
    Node topo("topology");
    topo.attr("sockets", opt_num(cpu.sockets)).attr("dies", opt_num(cpu.dies)).attr("clusters", opt_num(cpu.clusters))
        .attr("cores", opt_num(cpu.cores)).attr("threads", opt_num(cpu.threads));
    n.add_if_nonempty(std::move(topo));
    if (!cpu.cache_mode.empty()) n.add("cache").attr("level", cpu.cache_level).attr("mode", cpu.cache_mode);
    for (const auto& f : cpu.features) n.add("feature").attr("policy", f.policy).attr("name", f.name);
    if (!cpu.numa.empty()) {
        Node& numa = n.add("numa");
        for (const auto& c : cpu.numa)
            numa.add("cell").attr("id", c.id).attr("cpus", c.cpus).attr("memory", c.memory_kib).attr("unit", "KiB").attr("memAccess", c.memAccess)
                .attr("discard", c.discard);
    }
}

void format_devices(Node& root, const Devices& d, const FormatFlags& flags) {
    Node& n = root.add("devices");
    n.add_text("emulator", d.emulator);
    for (const auto& x : d.disks) n.children.push_back(format_disk(x, flags));
    for (const auto& x : d.controllers) n.children.push_back(format_controller(x, flags));
    for (const auto& f : d.filesystems) {
        Node& fs = n.add("filesystem");
        fs.attr("type", f.type).attr("accessmode", f.accessmode);
        Node drv("driver");
        drv.attr("type", f.driver_type).attr("queue", f.driver_queue);
        fs.add_if_nonempty(std::move(drv));
        if (!f.binary_path.empty()) fs.add("binary").attr("path", f.binary_path);
        if (!f.source_dir.empty()) fs.add("source").attr("dir", f.source_dir);
        fs.add("target").attr("dir", f.target_dir);
        if (f.readonly) fs.add("readonly");
        format_info(fs, f.info, flags);
    }
    for (const auto& x : d.interfaces) n.children.push_back(format_interface(x, flags));
    for (const auto& x : d.serials) n.children.push_back(format_chardev(x, flags));
    for (const auto& x : d.parallels) n.children.push_back(format_chardev(x, flags));
    for (std::size_t i = 0; i < d.consoles.size(); ++i) {
        const CharDev& con = d.consoles[i];
        if ((con.target_type.empty() || con.target_type == "serial") && i < d.serials.size()) {
            // A serial console is its serial port (libvirt writes it from it,
            // so that the live pty path shows in both).
            CharDev mirror = d.serials[i];
            mirror.kind = "console";
            mirror.target_type = "serial";
            mirror.target_model.clear();
            mirror.info.address = {};
            if (!con.info.alias.empty()) mirror.info.alias = con.info.alias;
            n.children.push_back(format_chardev(mirror, flags));
        } else {
            n.children.push_back(format_chardev(con, flags));
        }
    }
    for (const auto& x : d.channels) n.children.push_back(format_chardev(x, flags));
    for (const auto& in : d.inputs) {
        Node& i = n.add("input");
        i.attr("type", in.type).attr("bus", in.bus).attr("model", in.model);
        format_info(i, in.info, flags);
    }
    for (const auto& t : d.tpms) {
        Node& tn = n.add("tpm");
        tn.attr("model", t.model);
        Node& be = tn.add("backend");
        be.attr("type", t.backend_type).attr("version", t.backend_version);
        if (!t.backend_device.empty()) be.add("device").attr("path", t.backend_device);
        format_info(tn, t.info, flags);
    }
    for (const auto& x : d.graphics) n.children.push_back(format_graphics(x, flags));
    for (const auto& s : d.sounds) {
        Node& sn = n.add("sound");
        sn.attr("model", s.model);
        if (!s.audio_id.empty()) sn.add("audio").attr("id", s.audio_id);
        format_info(sn, s.info, flags);
    }
    for (const auto& a : d.audios) n.add("audio").attr("id", a.id).attr("type", a.type);
    for (const auto& x : d.videos) n.children.push_back(format_video(x, flags));
    for (const auto& r : d.redirdevs) {
        Node& rn = n.add("redirdev");
        rn.attr("bus", r.bus).attr("type", r.type);
        Node src("source");
        src.attr("mode", r.source_mode).attr("host", r.source_host).attr("service", r.source_service);
        rn.add_if_nonempty(std::move(src));
        if (!r.protocol.empty()) rn.add("protocol").attr("type", r.protocol);
        format_boot(rn, r.info);
        format_info(rn, r.info, flags);
    }
    for (const auto& h : d.hubs) {
        Node& hn = n.add("hub");
        hn.attr("type", h.type);
        format_info(hn, h.info, flags);
    }
    for (const auto& w : d.watchdogs) {
        Node& wn = n.add("watchdog");
        wn.attr("model", w.model).attr("action", w.action);
        format_info(wn, w.info, flags);
    }
    if (d.memballoon) {
        const auto& m = *d.memballoon;
        Node& mn = n.add("memballoon");
        mn.attr("model", m.model).attr("autodeflate", m.autodeflate).attr("freePageReporting", m.free_page_reporting);
        if (!m.stats_period.empty()) mn.add("stats").attr("period", m.stats_period);
        format_info(mn, m.info, flags);
    }
    for (const auto& r : d.rngs) {
        Node& rn = n.add("rng");
        rn.attr("model", r.model);
        Node rate("rate");
        rate.attr("bytes", r.rate_bytes).attr("period", r.rate_period);
        rn.add_if_nonempty(std::move(rate));
        rn.add("backend").attr("model", r.backend_model).set_text(r.backend_path);
        format_info(rn, r.info, flags);
    }
    for (const auto& p : d.panics) {
        Node& pn = n.add("panic");
        pn.attr("model", p.model);
        format_info(pn, p.info, flags);
    }
    for (const auto& m : d.memories)
        format_memory_device(n, m, [&flags](Node& dev, const DeviceInfo& info) { format_info(dev, info, flags); });
}

}  // namespace

std::string format_domain_xml(const DomainDef& def, FormatFlags flags) {
    Node root("domain");
    root.attr("type", def.type);
    if (flags.live) {
        const std::optional<int> id = flags.id ? flags.id : def.id;
        if (id) root.attr("id", std::to_string(*id));
    }
    for (const auto& [k, v] : def.root_namespaces) root.attrs.emplace_back(k, v);
    root.add_text("name", def.name);
    root.add_text("uuid", def.uuid.str());
    if (!def.genid.empty()) root.add_text("genid", def.genid);
    root.add_text("title", def.title);
    root.add_text("description", def.description);
    if (def.metadata_present) {
        Node& md = root.add("metadata");
        md.raw = def.metadata_xml;
    }
    if (def.max_memory_kib)
        root.add("maxMemory").attr("slots", opt_num(def.max_memory_slots)).attr("unit", "KiB").set_text(std::to_string(*def.max_memory_kib));
    root.add("memory").attr("unit", "KiB").set_text(std::to_string(def.memory_kib));
    root.add("currentMemory").attr("unit", "KiB").set_text(std::to_string(def.current_memory_kib.value_or(def.memory_kib)));
    format_memory_backing(root, def.memory_backing);
    Node& vcpu = root.add("vcpu");
    vcpu.attr("placement", def.vcpu_placement.empty() ? std::string("static") : def.vcpu_placement).attr("cpuset", def.vcpu_cpuset);
    if (def.vcpus_current && *def.vcpus_current != def.vcpus) vcpu.attr("current", std::to_string(*def.vcpus_current));
    vcpu.set_text(std::to_string(def.vcpus));
    format_vcpus(root, def);
    format_iothreads(root, def, true);
    format_cputune(root, def.cputune);
    format_numatune(root, def.numatune);
    if (!def.resource_partition.empty()) root.add("resource").add("partition").set_text(def.resource_partition);
    format_sysinfo(root, def.sysinfo);
    format_os(root, def.os);
    if (def.features_present) {
        Node& f = root.add("features");
        for (const auto& feat : def.features) format_feature(f, feat);
    }
    format_cpu(root, def.cpu);
    if (!def.clock.offset.empty()) {
        Node& clk = root.add("clock");
        clk.attr("offset", def.clock.offset).attr("timezone", def.clock.timezone).attr("adjustment", def.clock.adjustment).attr("basis", def.clock.basis);
        for (const auto& t : def.clock.timers)
            clk.add("timer").attr("name", t.name).attr("present", t.present).attr("tickpolicy", t.tickpolicy).attr("track", t.track)
                .attr("frequency", t.frequency).attr("mode", t.mode);
    }
    root.add_text("on_poweroff", def.on_poweroff);
    root.add_text("on_reboot", def.on_reboot);
    root.add_text("on_crash", def.on_crash);
    if (!def.pm.suspend_to_mem.empty() || !def.pm.suspend_to_disk.empty()) {
        Node& pm = root.add("pm");
        if (!def.pm.suspend_to_mem.empty()) pm.add("suspend-to-mem").attr("enabled", def.pm.suspend_to_mem);
        if (!def.pm.suspend_to_disk.empty()) pm.add("suspend-to-disk").attr("enabled", def.pm.suspend_to_disk);
    }
    format_devices(root, def.devices, flags);
    for (const auto& l : def.seclabels) {
        Node& sl = root.add("seclabel");
        sl.attr("type", l.type).attr("model", l.model).attr("relabel", l.relabel);
        // a dynamic label is chosen at start: live only
        if (l.type != "dynamic" || flags.live) {
            sl.add_text("label", l.label);
            sl.add_text("imagelabel", l.imagelabel);
        }
        sl.add_text("baselabel", l.baselabel);
    }
    return root.str();
}

}  // namespace vireo::conf
