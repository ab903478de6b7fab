// assign_addresses_and_aliases: the defaults libvirt's QEMU driver fills in
// when a domain is defined (libvirt 9.0, x86), so that vireo's dumpxml is
// libvirt's and stays stable across dumpxml / define (everything assigned
// is kept). Every rule here was measured against libvirtd's own dumpxml; the
// golden files in tests/data/conf/libvirt are those measurements.
//
// In libvirt's order (its post-parse callbacks):
// 1. per-domain: arch x86_64, machine 'pc', emulator, clock utc, lifecycle
//    actions, <boot dev='hd'/> unless a device has <boot order>, the default
//    CPU (custom qemu64 / qemu32, check='none'), the check/migratable/
//    fallback values of the CPU modes, topology dies='1', NUMA cells getting
//    the vCPUs no cell names (into cell 0);
// 2. per-device: disk bus from the target name, <driver name='qemu'
//    type='raw'/>, drive addresses; NIC model rtl8139; video model cirrus
//    and its memory sizes, the primary video first; serial target types and
//    models; tcp chardevs' raw protocol; USB/SCSI controller models and USB2
//    companions' start ports; graphics ports and listens; watchdog action
//    reset; rng /dev/random;
// 3. default devices: a USB controller, the q35 SATA controller, the PCI
//    root, the memballoon, an <audio> backend, PS/2 mouse and keyboard;
// 4. implicit devices: the console of the first serial (and the serial of a
//    console), the controllers disks and virtio chardevs need, a video card
//    for graphics;
// 5. addresses (domain_address.cpp): virtio-serial ports, PCI slots (adding
//    pcie-root-ports and bridges), USB ports (adding hubs);
// 6. aliases: virtio-disk0, sata0-0-0, net0, serial0, channel0, input0,
//    video0, sound0, balloon0, rng0, usb, pci.1, virtio-serial0, hub0, ...
#include <algorithm>
#include <array>
#include <cstdint>
#include <set>
#include <string_view>
#include <tuple>

#include <fmt/format.h>

#include "conf/device_hotplug.hpp"
#include "conf/domain.hpp"
#include "conf/domain_internal.hpp"
#include "conf/memory_device.hpp"
#include "util/random.hpp"

namespace vireo::conf {

bool is_q35_machine(std::string_view machine) {
    return machine == "q35" || machine.starts_with("pc-q35");
}

MachineFamily machine_family(std::string_view machine) {
    if (is_q35_machine(machine)) return MachineFamily::Q35;
    if (machine == "pc" || machine.starts_with("pc-i440fx") || machine.starts_with("pc-0.") || machine.starts_with("pc-1."))
        return MachineFamily::I440fx;
    if (machine == "microvm") return MachineFamily::Microvm;
    return MachineFamily::Other;
}

const Disk* find_disk_by_target(const DomainDef& def, std::string_view target_dev) {
    for (const auto& d : def.devices.disks)
        if (d.target_dev == target_dev) return &d;
    return nullptr;
}

int disk_name_index(std::string_view dev) {
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
        if (idx > 1000000) return -1;
    }
    return idx - 26;
}

// ---- libvirt's device order ----------------------------------------------

namespace {

// A parsed controller goes before the first one of its type with a higher
// index, else just past the last one of its type, else at the end (libvirt's
// virDomainControllerInsertPreAlloced).
void insert_controller(std::vector<Controller>& v, Controller c) {
    std::optional<std::size_t> at;
    for (std::size_t k = v.size(); k-- > 0;) {
        const Controller& cur = v[k];
        if (cur.type != c.type) continue;
        if (c.index == kAutoIndex) {
            at = k + 1;
            break;
        }
        if (cur.index != kAutoIndex && cur.index > c.index) at = k;
        else if (!at) at = k + 1;
    }
    v.insert(at ? v.begin() + static_cast<std::ptrdiff_t>(*at) : v.end(), std::move(c));
}

void insert_disk(std::vector<Disk>& v, Disk d) {
    const int idx = disk_name_index(d.target_dev);
    std::optional<std::size_t> at;
    for (std::size_t k = v.size(); k-- > 0;) {
        if (v[k].target_bus != d.target_bus) continue;
        if (disk_name_index(v[k].target_dev) > idx) at = k;
        else if (!at) at = k + 1;
    }
    v.insert(at ? v.begin() + static_cast<std::ptrdiff_t>(*at) : v.end(), std::move(d));
}

unsigned smallest_free_index(const std::vector<Controller>& ctls, std::string_view type) {
    unsigned idx = 0;
    while (std::any_of(ctls.begin(), ctls.end(), [&](const Controller& c) { return c.type == type && c.index == idx; })) ++idx;
    return idx;
}

}  // namespace

bool is_usb_companion(const Controller& c) {
    return c.type == "usb" && (c.model == "ich9-uhci1" || c.model == "ich9-uhci2" || c.model == "ich9-uhci3");
}

void order_devices_like_libvirt(Devices& d) {
    std::vector<Controller> ctls;
    ctls.reserve(d.controllers.size());
    for (auto& c : d.controllers) insert_controller(ctls, std::move(c));
    for (std::size_t i = 0; i < ctls.size(); ++i) {
        Controller& c = ctls[i];
        if (c.index != kAutoIndex) continue;
        // A USB1 companion belongs to the USB2 controller before it.
        if (is_usb_companion(c) && i > 0 && ctls[i - 1].type == "usb" && ctls[i - 1].index != kAutoIndex) c.index = ctls[i - 1].index;
        else c.index = smallest_free_index(ctls, c.type);
    }
    d.controllers = std::move(ctls);
    std::vector<Disk> disks;
    disks.reserve(d.disks.size());
    for (auto& disk : d.disks) insert_disk(disks, std::move(disk));
    d.disks = std::move(disks);
}

// ---- CPU lists ----------------------------------------------------------------

std::optional<std::vector<unsigned>> parse_cpu_list(std::string_view text) {
    std::set<unsigned> cpus;
    auto number = [](std::string_view s) -> std::optional<unsigned> {
        if (s.empty() || s.size() > 5) return std::nullopt;
        unsigned v = 0;
        for (char c : s) {
            if (c < '0' || c > '9') return std::nullopt;
            v = v * 10 + static_cast<unsigned>(c - '0');
        }
        return v;
    };
    std::size_t pos = 0;
    while (pos <= text.size()) {
        std::size_t comma = text.find(',', pos);
        std::string_view item = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
        const bool negate = item.starts_with('^');
        if (negate) item.remove_prefix(1);
        const std::size_t dash = item.find('-');
        auto lo = number(item.substr(0, dash));
        auto hi = dash == std::string_view::npos ? lo : number(item.substr(dash + 1));
        if (!lo || !hi || *hi < *lo) return std::nullopt;
        for (unsigned c = *lo; c <= *hi; ++c) {
            if (negate) cpus.erase(c);
            else cpus.insert(c);
        }
        if (comma == std::string_view::npos) break;
        pos = comma + 1;
    }
    return std::vector<unsigned>(cpus.begin(), cpus.end());
}

std::string format_cpu_list(const std::vector<unsigned>& cpus) {
    std::string out;
    for (std::size_t i = 0; i < cpus.size();) {
        std::size_t j = i;
        while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
        if (!out.empty()) out += ',';
        out += std::to_string(cpus[i]);
        if (j > i) out += fmt::format("-{}", cpus[j]);
        i = j + 1;
    }
    return out;
}

std::string vcpu_pinning(const DomainDef& def, unsigned id) {
    for (const auto& p : def.cputune.vcpupins)
        if (p.id == id) return p.cpuset;
    return def.vcpu_cpuset;
}

std::string emulator_pinning(const DomainDef& def) {
    return def.cputune.emulatorpin.empty() ? def.vcpu_cpuset : def.cputune.emulatorpin;
}

namespace {

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

// libvirt's virDomainDefMaybeAddController: a controller of this type and
// index unless there is one, appended (implicit controllers come last).
void maybe_add_controller(DomainDef& def, std::string_view type, unsigned index, std::string_view model) {
    if (find_controller(def, type, index)) return;
    Controller c;
    c.type = std::string(type);
    c.index = index;
    c.model = std::string(model);
    def.devices.controllers.push_back(std::move(c));
}

bool any_device_boot_order(const DomainDef& def) {
    const auto& d = def.devices;
    auto has = [](const auto& vec) { return std::any_of(vec.begin(), vec.end(), [](const auto& x) { return x.info.boot_order.has_value(); }); };
    return has(d.disks) || has(d.interfaces) || has(d.redirdevs);
}

// ---- 1. per-domain defaults ------------------------------------------------

void fill_cpu_defaults(DomainDef& def) {
    CpuDef& cpu = def.cpu;
    if (cpu.mode.empty() && (cpu.present || !cpu.model.empty())) cpu.mode = "custom";
    if (!cpu.present || (cpu.mode == "custom" && cpu.model.empty())) {
        // The emulator's default CPU, spelled out (qemuDomainDefSetDefaultCPU).
        cpu.present = true;
        cpu.mode = "custom";
        if (cpu.match.empty()) cpu.match = "exact";
        if (cpu.check.empty()) cpu.check = "none";
        cpu.model = def.os.arch == "i686" ? "qemu32" : "qemu64";
        if (cpu.model_fallback.empty()) cpu.model_fallback = "forbid";
    }
    if (cpu.mode == "custom") {
        if (cpu.match.empty()) cpu.match = "exact";
        if (cpu.check.empty()) cpu.check = def.type == "qemu" ? "none" : "partial";
        if (cpu.model_fallback.empty()) cpu.model_fallback = "allow";
    } else if (cpu.mode == "host-passthrough") {
        if (cpu.check.empty()) cpu.check = "none";
        if (cpu.migratable.empty()) cpu.migratable = "on";
    } else if (cpu.mode == "host-model") {
        if (cpu.check.empty()) cpu.check = "partial";
    } else if (cpu.mode == "maximum") {
        if (cpu.check.empty()) cpu.check = "none";
    }
    if ((cpu.sockets || cpu.cores || cpu.threads) && !cpu.dies) cpu.dies = 1;
    // vCPUs no cell names go to the first cell.
    if (!cpu.numa.empty()) {
        std::set<unsigned> named;
        for (const auto& cell : cpu.numa)
            if (auto l = parse_cpu_list(cell.cpus)) named.insert(l->begin(), l->end());
        std::vector<unsigned> rest;
        for (unsigned v = 0; v < def.vcpus; ++v)
            if (!named.contains(v)) rest.push_back(v);
        if (!rest.empty()) {
            auto first = parse_cpu_list(cpu.numa[0].cpus).value_or(std::vector<unsigned>{});
            first.insert(first.end(), rest.begin(), rest.end());
            std::sort(first.begin(), first.end());
            cpu.numa[0].cpus = format_cpu_list(first);
        }
    }
}

void fill_basic_defaults(DomainDef& def) {
    if (def.os.arch.empty()) def.os.arch = "x86_64";
    if (def.os.machine.empty()) def.os.machine = "pc";
    if (def.devices.emulator.empty())
        def.devices.emulator = def.os.arch == "i686" ? "/usr/bin/qemu-system-i386" : "/usr/bin/qemu-system-" + def.os.arch;
    if (def.clock.offset.empty()) def.clock.offset = "utc";
    if (def.on_poweroff.empty()) def.on_poweroff = "destroy";
    if (def.on_reboot.empty()) def.on_reboot = "restart";
    if (def.on_crash.empty()) def.on_crash = "destroy";
    if (def.vcpu_placement.empty()) def.vcpu_placement = "static";
    if (def.os.boot_devs.empty() && !any_device_boot_order(def)) def.os.boot_devs.push_back("hd");
    if (!def.os.loader.empty() && def.os.loader_type == "pflash" && def.os.nvram.empty() && def.os.nvram_template.empty()) {
        // libvirt derives the per-domain NVRAM file name.
        def.os.nvram = fmt::format("/var/lib/libvirt/qemu/nvram/{}_VARS.fd", def.name);
    }
    fill_cpu_defaults(def);
}

// ---- 2. per-device defaults ------------------------------------------------

std::string default_disk_bus(std::string_view dev) {
    if (dev.starts_with("hd")) return "ide";
    if (dev.starts_with("fd")) return "fdc";
    if (dev.starts_with("vd")) return "virtio";
    if (dev.starts_with("ub")) return "usb";
    return "scsi";
}

// virDomainDiskDefAssignAddress: the drive address a target name implies.
void assign_drive_address(Disk& disk) {
    if (!disk.info.address.empty()) return;
    const int idx = disk_name_index(disk.target_dev);
    if (idx < 0) return;
    const auto u = static_cast<unsigned>(idx);
    DeviceAddress a;
    a.type = "drive";
    if (disk.target_bus == "ide") {
        a.controller = u / 4;
        a.bus = (u % 4) / 2;
        a.unit = u % 2;
    } else if (disk.target_bus == "sata") {
        a.controller = u / 6;
        a.unit = u % 6;
    } else if (disk.target_bus == "scsi") {
        // wide SCSI: 15 units per controller, unit 7 is the controller
        a.controller = u / 15;
        a.unit = u % 15;
        if (a.unit >= 7) ++a.unit;
    } else if (disk.target_bus == "fdc") {
        a.controller = u / 2;
        a.unit = u % 2;
    } else {
        return;
    }
    disk.info.address = a;
}

void fill_disk_defaults(Disk& disk) {
    if (disk.target_bus.empty()) disk.target_bus = default_disk_bus(disk.target_dev);
    if (disk.type != "volume") {
        if (disk.driver_name.empty()) disk.driver_name = "qemu";
        if (disk.driver_type.empty()) disk.driver_type = "raw";
    } else if (disk.driver_name.empty() && !disk.driver_type.empty()) {
        disk.driver_name = "qemu";
    }
    if (disk.device == "cdrom") disk.readonly = true;
    assign_drive_address(disk);
}

void fill_serial_defaults(Devices& d) {
    std::set<unsigned> ports;
    for (const auto& s : d.serials)
        if (s.target_port) ports.insert(*s.target_port);
    for (auto& s : d.serials) {
        if (s.target_type.empty()) s.target_type = "isa-serial";
        if (s.target_model.empty() && (s.target_type == "isa-serial" || s.target_type == "pci-serial" || s.target_type == "usb-serial"))
            s.target_model = s.target_type;
        if (!s.target_port) {
            unsigned p = 0;
            while (ports.contains(p)) ++p;
            s.target_port = p;
            ports.insert(p);
        }
    }
}

// A unix channel's path as libvirt's and vireo's drivers make them at start
// (.../channel/target/domain-<id>-<name>/<target name>), not the user's.
bool is_generated_channel_path(const CharDev& c) {
    const std::string& p = c.source_path;
    if (c.target_name.empty() || !p.ends_with("/" + c.target_name)) return false;
    const std::string dir = p.substr(0, p.size() - c.target_name.size() - 1);
    const auto slash = dir.rfind('/');
    if (slash == std::string::npos || dir.compare(slash + 1, 7, "domain-") != 0) return false;
    return std::string_view(dir).substr(0, slash).ends_with("/channel/target");
}

// A port a running display listens on (not -1, 0 or absent).
bool is_display_port(const std::string& port) {
    return !port.empty() && port != "-1" && port != "0" && port.find_first_not_of("0123456789") == std::string::npos;
}

// Graphics ports and listens as libvirt stores them (inactive XML).
void fill_graphics_defaults(Graphics& g) {
    if (g.type == "vnc") {
        if (g.autoport.empty()) g.autoport = (g.port.empty() || g.port == "-1") ? "yes" : "no";
        // autoport: the port is chosen at start; a live document keeps the
        // chosen one (the inactive XML writes port='-1' for it).
        if (g.autoport == "yes" && !is_display_port(g.port)) g.port = "-1";
        else if (g.autoport != "yes" && g.port == "-1") g.port.clear();
        if (g.listens.empty()) g.listens.push_back(Graphics::Listen{"address", g.listen, "", ""});
        if (g.listens[0].type == "address" && !g.listens[0].address.empty()) g.listen = g.listens[0].address;
        return;
    }
    // spice
    if (g.autoport == "yes") {
        if (!is_display_port(g.port)) g.port.clear();
        if (!is_display_port(g.tls_port)) g.tls_port.clear();
    } else if (g.autoport.empty() && (!g.port.empty() || !g.tls_port.empty())) {
        g.autoport = "no";
    }
    if (g.autoport != "yes" && g.port.empty() && g.tls_port.empty() && g.listens.empty()) {
        // No port to listen on: libvirt says so (and drops a listen='...').
        g.listens.push_back(Graphics::Listen{"none", "", "", ""});
        g.listen.clear();
    }
    if (g.listens.empty()) g.listens.push_back(Graphics::Listen{"address", g.listen, "", ""});
    // listen='...' mirrors the first listen address
    if (g.listens[0].type == "address" && !g.listens[0].address.empty()) g.listen = g.listens[0].address;
}

void fill_video_defaults(Devices& d) {
    // The primary video comes first.
    for (std::size_t i = 1; i < d.videos.size(); ++i)
        if (d.videos[i].primary == "yes") {
            std::rotate(d.videos.begin(), d.videos.begin() + static_cast<std::ptrdiff_t>(i), d.videos.begin() + static_cast<std::ptrdiff_t>(i) + 1);
            break;
        }
    for (std::size_t i = 0; i < d.videos.size(); ++i) {
        auto& v = d.videos[i];
        if (v.model_type.empty()) v.model_type = "cirrus";
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
}

void fill_controller_defaults(DomainDef& def) {
    const MachineFamily fam = machine_family(def.os.machine);
    for (auto& c : def.devices.controllers) {
        if (c.type == "usb" && c.model.empty()) c.model = fam == MachineFamily::Q35 ? "qemu-xhci" : "piix3-uhci";
        if (c.type == "usb" && c.master_startport.empty()) {
            if (c.model == "ich9-uhci1") c.master_startport = "0";
            else if (c.model == "ich9-uhci2") c.master_startport = "2";
            else if (c.model == "ich9-uhci3") c.master_startport = "4";
        }
        if (c.type == "scsi" && c.model.empty()) c.model = "lsilogic";
    }
}

void fill_device_defaults(DomainDef& def) {
    auto& d = def.devices;
    const MachineFamily fam = machine_family(def.os.machine);
    for (auto& disk : d.disks) fill_disk_defaults(disk);
    for (auto& nic : d.interfaces) {
        if (nic.mac.empty()) nic.mac = random_mac();
        if (nic.model.empty() && fam != MachineFamily::Microvm) nic.model = "rtl8139";
    }
    fill_serial_defaults(d);
    for (auto* list : {&d.serials, &d.parallels, &d.channels, &d.consoles})
        for (auto& c : *list) {
            if (c.type == "tcp" && c.protocol_type.empty()) c.protocol_type = "raw";
            // A path libvirt (or vireo) made for a channel is made again at
            // start: <channel target dir>/domain-<id>-<name>/<target name>.
            // (A live document, <domain id=...>, keeps the one its run uses.)
            if (c.type == "unix" && c.source_mode == "bind" && !def.id && is_generated_channel_path(c)) c.source_path.clear();
            // A unix socket without a path is made at start (bind is all it can be).
            if (c.type == "unix" && c.source_path.empty() && c.source_mode == "bind") c.source_mode.clear();
        }
    // The SPICE agent's port (spicevmc, qemu-vdagent) has a fixed name.
    for (auto& ch : d.channels)
        if ((ch.type == "spicevmc" || ch.type == "qemu-vdagent") && ch.target_type == "virtio" && ch.target_name.empty())
            ch.target_name = "com.redhat.spice.0";
    for (auto& r : d.redirdevs)
        if (r.type == "tcp" && r.protocol.empty()) r.protocol = "raw";
    for (auto& in : d.inputs)
        if (in.bus.empty()) in.bus = in.type == "tablet" ? "usb" : "ps2";
    for (auto& g : d.graphics) fill_graphics_defaults(g);
    fill_video_defaults(d);
    fill_controller_defaults(def);
    for (auto& r : d.rngs)
        if (r.backend_model == "random" && r.backend_path.empty()) r.backend_path = "/dev/random";
    for (auto& w : d.watchdogs)
        if (w.action.empty()) w.action = "reset";
    for (auto& t : d.tpms)
        if (t.backend_type == "emulator" && t.backend_version.empty()) t.backend_version = "2.0";
}

// ---- 3. default devices (qemuDomainDefAddDefaultDevices) ---------------------------

void add_default_devices(DomainDef& def) {
    auto& d = def.devices;
    const MachineFamily fam = machine_family(def.os.machine);
    const bool pc_like = fam == MachineFamily::I440fx || fam == MachineFamily::Q35;
    if (pc_like) maybe_add_controller(def, "usb", 0, fam == MachineFamily::Q35 ? "qemu-xhci" : "piix3-uhci");
    if (fam == MachineFamily::Q35) maybe_add_controller(def, "sata", 0, "");
    if (pc_like) maybe_add_controller(def, "pci", 0, fam == MachineFamily::Q35 ? "pcie-root" : "pci-root");
    if (!d.memballoon) d.memballoon = Memballoon{};
    if (d.audios.empty()) {
        // The last graphics decides: SPICE carries audio, VNC does not.
        Audio a{"1", "none"};
        for (const auto& g : d.graphics) a.type = g.type == "spice" ? "spice" : "none";
        d.audios.push_back(std::move(a));
    }
    if (pc_like) {
        auto has_input = [&](std::string_view type) {
            return std::any_of(d.inputs.begin(), d.inputs.end(), [&](const Input& in) { return in.type == type && in.bus == "ps2"; });
        };
        if (!has_input("mouse")) d.inputs.push_back(Input{"mouse", "ps2", "", {}});
        if (!has_input("keyboard")) d.inputs.push_back(Input{"keyboard", "ps2", "", {}});
    }
}

// ---- 4. implicit devices (virDomainDefAddImplicitDevices) -----------------------

// The console of the first serial port and the serial port of a serial
// console (libvirt's console compatibility).
void add_console_compat(Devices& d) {
    if (!d.consoles.empty() && d.consoles[0].target_type.empty()) d.consoles[0].target_type = "serial";
    if (d.consoles.empty()) {
        if (d.serials.empty()) return;
        const auto& s = d.serials[0];
        if (s.target_type != "isa-serial") return;
        CharDev con = s;
        con.kind = "console";
        con.target_type = "serial";
        con.target_model.clear();
        con.info = {};
        d.consoles.push_back(std::move(con));
        return;
    }
    auto& con = d.consoles[0];
    if (con.target_type != "serial") return;
    if (d.serials.empty()) {
        CharDev s = con;
        s.kind = "serial";
        s.target_type = "isa-serial";
        s.target_model = "isa-serial";
        s.target_port = 0;
        s.info = {};
        d.serials.push_back(std::move(s));
    }
    // The console is the first serial port (libvirt formats it from it).
    const auto& s = d.serials[0];
    const auto info = con.info;
    con = s;
    con.kind = "console";
    con.target_type = "serial";
    con.target_model.clear();
    con.info = info;
}

void add_disk_controllers(DomainDef& def, std::string_view type, std::string_view bus) {
    std::optional<unsigned> max;
    for (const auto& disk : def.devices.disks)
        if (disk.target_bus == bus && disk.info.address.type == "drive") max = std::max(max.value_or(0), disk.info.address.controller);
    if (!max) return;
    for (unsigned i = 0; i <= *max; ++i) maybe_add_controller(def, type, i, type == "scsi" ? "lsilogic" : "");
}

void add_implicit_devices(DomainDef& def) {
    auto& d = def.devices;
    for (std::size_t i = 1; i < d.consoles.size(); ++i)
        if (d.consoles[i].target_type.empty()) d.consoles[i].target_type = "virtio";
    add_console_compat(d);
    for (std::size_t i = 0; i < d.consoles.size(); ++i)
        if (!d.consoles[i].target_port) d.consoles[i].target_port = static_cast<unsigned>(i);
    add_disk_controllers(def, "scsi", "scsi");
    add_disk_controllers(def, "fdc", "fdc");
    add_disk_controllers(def, "ide", "ide");
    add_disk_controllers(def, "sata", "sata");
    // virtio-serial controllers the virtio channels and consoles name
    for (const auto& ch : d.channels)
        if (ch.target_type == "virtio")
            maybe_add_controller(def, "virtio-serial", ch.info.address.type == "virtio-serial" ? ch.info.address.controller : 0, "");
    for (const auto& con : d.consoles)
        if (con.target_type == "virtio")
            maybe_add_controller(def, "virtio-serial", con.info.address.type == "virtio-serial" ? con.info.address.controller : 0, "");
    if (!d.graphics.empty() && d.videos.empty()) {
        Video v;
        v.model_type = "cirrus";
        v.vram = "16384";
        v.heads = "1";
        v.primary = "yes";
        d.videos.push_back(std::move(v));
    }
}

// The PCI root a machine has at index 0.
Status check_pci_root(const DomainDef& def) {
    const MachineFamily fam = machine_family(def.os.machine);
    if (fam != MachineFamily::I440fx && fam != MachineFamily::Q35) return {};
    const std::string_view want = fam == MachineFamily::Q35 ? "pcie-root" : "pci-root";
    for (const auto& c : def.devices.controllers) {
        if (c.type != "pci") continue;
        if (c.index == 0 && c.model != want)
            return fail(ErrorCode::XmlError,
                        "XML error: controller type='pci' index='0': the PCI controller with index='0' must be model='{}' for this machine type, but model='{}' was found instead",
                        want, c.model);
        if (c.index != 0 && (c.model == "pci-root" || c.model == "pcie-root"))
            return fail(ErrorCode::XmlError, "XML error: controller type='pci' index='{}': a PCI controller of model '{}' must have index 0", c.index, c.model);
    }
    return {};
}

// ---- 6. aliases ----------------------------------------------------------------

template <class F>
void for_each_info(Devices& d, F&& f) {
    auto each = [&](auto& vec) {
        for (auto& x : vec) f(x.info);
    };
    each(d.disks), each(d.controllers), each(d.filesystems), each(d.interfaces), each(d.serials), each(d.parallels), each(d.consoles),
        each(d.channels), each(d.inputs), each(d.tpms), each(d.graphics), each(d.sounds), each(d.videos), each(d.redirdevs), each(d.hubs),
        each(d.watchdogs), each(d.rngs), each(d.panics);
    if (d.memballoon) f(d.memballoon->info);
}

void assign_aliases(DomainDef& def) {
    auto& d = def.devices;
    // Aliases already present (user or live documents) are never reused.
    std::set<std::string> taken;
    for_each_info(d, [&](DeviceInfo& info) {
        if (!info.alias.empty()) taken.insert(info.alias);
    });
    auto set = [&taken](DeviceInfo& info, std::string alias) {
        if (!info.alias.empty() || taken.contains(alias)) return;
        info.alias = alias;
        taken.insert(std::move(alias));
    };
    unsigned virtio_disk = 0;
    for (auto& disk : d.disks) {
        const auto& a = disk.info.address;
        const int idx = disk_name_index(disk.target_dev);
        if (disk.target_bus == "virtio") set(disk.info, fmt::format("virtio-disk{}", idx >= 0 ? static_cast<unsigned>(idx) : virtio_disk));
        else if (disk.target_bus == "sata" || disk.target_bus == "ide") set(disk.info, fmt::format("{}{}-{}-{}", disk.target_bus, a.controller, a.bus, a.unit));
        else if (disk.target_bus == "scsi") set(disk.info, fmt::format("scsi{}-{}-{}-{}", a.controller, a.bus, a.target, a.unit));
        else if (disk.target_bus == "fdc") set(disk.info, fmt::format("fdc{}-{}-{}", a.controller, a.bus, a.unit));
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
        if (d.consoles[i].target_type == "serial" && i < d.serials.size()) {
            // The console is its serial port, alias included.
            if (d.consoles[i].info.alias.empty()) d.consoles[i].info.alias = d.serials[i].info.alias;
        } else {
            set(d.consoles[i].info, fmt::format("console{}", i));
        }
    }
    for (std::size_t i = 0; i < d.channels.size(); ++i) set(d.channels[i].info, fmt::format("channel{}", i));
    for (std::size_t i = 0; i < d.inputs.size(); ++i) set(d.inputs[i].info, fmt::format("input{}", i));
    for (std::size_t i = 0; i < d.tpms.size(); ++i) set(d.tpms[i].info, fmt::format("tpm{}", i));
    for (std::size_t i = 0; i < d.sounds.size(); ++i) set(d.sounds[i].info, fmt::format("sound{}", i));
    for (std::size_t i = 0; i < d.videos.size(); ++i) set(d.videos[i].info, fmt::format("video{}", i));
    for (std::size_t i = 0; i < d.watchdogs.size(); ++i) set(d.watchdogs[i].info, fmt::format("watchdog{}", i));
    for (std::size_t i = 0; i < d.redirdevs.size(); ++i) set(d.redirdevs[i].info, fmt::format("redir{}", i));
    for (std::size_t i = 0; i < d.hubs.size(); ++i) set(d.hubs[i].info, fmt::format("hub{}", i));
    if (d.memballoon && d.memballoon->model != "none") set(d.memballoon->info, "balloon0");
    for (std::size_t i = 0; i < d.rngs.size(); ++i) set(d.rngs[i].info, fmt::format("rng{}", i));
}

Status check_architecture(const DomainDef& def) {
    if (def.os.arch.empty() || def.os.arch == "x86_64" || def.os.arch == "i686") return {};
    return fail(ErrorCode::Unsupported, "unsupported configuration: guest architecture '{}' is not supported by vireo (only x86_64 and i686)", def.os.arch);
}

}  // namespace

Status apply_define_host(DomainDef& def, const DefineHost& host) {
    const std::string arch = def.os.arch.empty() ? std::string("x86_64") : def.os.arch;
    if (def.devices.emulator.empty()) {
        std::string emulator = host.emulator_for ? host.emulator_for(arch) : std::string();
        if (emulator.empty()) return fail(ErrorCode::Unsupported, "unsupported configuration: No emulator found for arch '{}'", arch);
        def.devices.emulator = std::move(emulator);
    }
    VIREO_TRY(check_architecture(def));
    def.os.arch = arch;
    if (host.canonical_machine) {
        auto machine = host.canonical_machine(def.devices.emulator, def.os.machine);
        if (!machine) return std::unexpected(machine.error());
        def.os.machine = std::move(*machine);
    }
    return {};
}

Status assign_addresses_and_aliases(DomainDef& def) {
    VIREO_TRY(check_architecture(def));
    fill_basic_defaults(def);
    fill_tuning_defaults(def);
    fill_device_defaults(def);
    add_default_devices(def);
    add_implicit_devices(def);
    fill_controller_defaults(def);
    VIREO_TRY(check_pci_root(def));
    VIREO_TRY(assign_device_addresses(def));
    assign_aliases(def);
    return {};
}

// ---- 7. one device attached (attach-device, attach-disk) -------------------------

Result<DomainDef> with_disk_attached(const DomainDef& def, Disk disk) {
    if (find_disk_by_target(def, disk.target_dev))
        return fail(ErrorCode::InvalidArg, "Requested operation is not valid: target {} already exists", disk.target_dev);
    DomainDef out = def;
    insert_disk(out.devices.disks, std::move(disk));
    // Before: the document's own address and alias against the domain's;
    // after: what assignment gave it (a drive address from the target name).
    VIREO_TRY(validate_domain(out));
    VIREO_TRY(assign_addresses_and_aliases(out));
    VIREO_TRY(validate_domain(out));
    return out;
}

Result<std::size_t> find_disk_for_detach(const DomainDef& def, std::string_view target_or_source) {
    const auto& disks = def.devices.disks;
    for (std::size_t i = 0; i < disks.size(); ++i)
        if (disks[i].target_dev == target_or_source) return i;
    for (std::size_t i = 0; i < disks.size(); ++i) {
        const auto& s = disks[i].source;
        if (!target_or_source.empty() && (s.file == target_or_source || s.dev == target_or_source)) return i;
    }
    return fail(ErrorCode::NotFound, "No disk found whose source path or target is {}", target_or_source);
}

Result<std::size_t> find_disk_by_alias(const DomainDef& def, std::string_view alias) {
    const auto& disks = def.devices.disks;
    for (std::size_t i = 0; i < disks.size(); ++i)
        if (!alias.empty() && disks[i].info.alias == alias) return i;
    return fail(ErrorCode::NotFound, "Device not found: no device found with alias {}", alias);
}

Result<DomainDef> with_interface_attached(const DomainDef& def, Interface nic) {
    if (nic.mac.empty()) return fail(ErrorCode::Internal, "the interface to attach has no MAC address");
    for (const auto& other : def.devices.interfaces)
        if (other.mac == nic.mac)
            return fail(ErrorCode::InvalidArg, "Requested operation is not valid: the domain already has an interface with MAC address {}",
                        nic.mac);
    DomainDef out = def;
    out.devices.interfaces.push_back(std::move(nic));
    VIREO_TRY(validate_domain(out));
    VIREO_TRY(assign_addresses_and_aliases(out));
    VIREO_TRY(validate_domain(out));
    return out;
}

namespace {

// The fields that say which device of its kind a detach document means.
bool same_device(const Rng& have, const Rng& want) {
    return have.model == want.model && have.backend_model == want.backend_model &&
           (want.backend_path.empty() || have.backend_path == want.backend_path);
}
bool same_device(const Input& have, const Input& want) {
    return have.type == want.type && (want.bus.empty() || have.bus == want.bus);
}
bool same_device(const Watchdog& have, const Watchdog& want) {
    return have.model == want.model && (want.action.empty() || have.action == want.action);
}
// A channel: its target (a virtio port by its name), and its source when
// the document gives one.
bool same_device(const CharDev& have, const CharDev& want) {
    return have.type == want.type && have.target_type == want.target_type && have.target_name == want.target_name &&
           // (a persistent definition has no path for a socket made at start)
           (want.source_path.empty() || have.source_path.empty() || want.type == "pty" || have.source_path == want.source_path) &&
           (want.source_host.empty() || have.source_host == want.source_host) &&
           (want.source_service.empty() || have.source_service == want.source_service);
}

std::string not_found_message(const Rng& r) {
    return fmt::format("device not found: model '{}' RNG device not present in domain configuration", r.backend_model);
}
std::string not_found_message(const Input&) { return "device not found: matching input device not found"; }
std::string not_found_message(const Watchdog&) { return "device not found: watchdog device not present in domain configuration"; }
std::string not_found_message(const CharDev&) { return "device not found: device not present in domain configuration"; }

Status attachable(const DomainDef& def, const Watchdog&) {
    if (!def.devices.watchdogs.empty())
        return fail(ErrorCode::InvalidArg, "Requested operation is not valid: domain already has a watchdog");
    return {};
}
Status attachable(const DomainDef&, const Rng&) { return {}; }
Status attachable(const DomainDef&, const Input&) { return {}; }
// One virtio port per name: a second agent channel could never be told apart.
Status attachable(const DomainDef& def, const CharDev& ch) {
    if (ch.target_type != "virtio")
        return fail(ErrorCode::Unsupported, "Operation not supported: only virtio channels can be attached (target type '{}')",
                    ch.target_type.empty() ? std::string("none") : ch.target_type);
    for (const auto& have : def.devices.channels)
        if (have.target_type == "virtio" && !ch.target_name.empty() && have.target_name == ch.target_name)
            return fail(ErrorCode::InvalidArg, "Requested operation is not valid: chardev already exists (virtio port '{}')",
                        ch.target_name);
    return {};
}

}  // namespace

Result<DomainDef> with_device_attached(const DomainDef& def, PluggableDevice dev) {
    return std::visit(
        [&]<class Device>(Device& d) -> Result<DomainDef> {
            VIREO_TRY(attachable(def, d));
            DomainDef out = def;
            (out.devices.*PluggableKind<Device>::list).push_back(std::move(d));
            // Before: the document's own address and alias against the
            // domain's; after: what assignment gave it.
            VIREO_TRY(validate_domain(out));
            VIREO_TRY(assign_addresses_and_aliases(out));
            VIREO_TRY(validate_domain(out));
            return out;
        },
        dev);
}

Result<std::size_t> find_device_for_detach(const DomainDef& def, const PluggableDevice& dev) {
    return std::visit(
        [&]<class Device>(const Device& want) -> Result<std::size_t> {
            const auto& have = def.devices.*PluggableKind<Device>::list;
            for (std::size_t i = 0; i < have.size(); ++i) {
                if (!same_device(have[i], want)) continue;
                if (!want.info.alias.empty() && have[i].info.alias != want.info.alias) continue;
                if (!want.info.address.type.empty() && have[i].info.address != want.info.address) continue;
                return i;
            }
            return fail(ErrorCode::NotFound, "{}", not_found_message(want));
        },
        dev);
}

Result<DomainDef> with_memory_attached(const DomainDef& def, MemoryDevice mem) {
    if (!def.max_memory_kib)
        return fail(ErrorCode::Unsupported,
                    "unsupported configuration: cannot use/hotplug a memory device when domain 'maxMemory' is not defined");
    if (def.memory_kib + mem.target_size_kib > *def.max_memory_kib)
        return fail(ErrorCode::Unsupported,
                    "unsupported configuration: Attaching memory device with size '{}' would exceed domain's maxMemory config size '{}'",
                    mem.target_size_kib, *def.max_memory_kib);
    const auto dimms = static_cast<std::size_t>(std::ranges::count(def.devices.memories, std::string("dimm"), &MemoryDevice::model));
    if (mem.model == "dimm" && def.max_memory_slots && dimms >= *def.max_memory_slots)
        return fail(ErrorCode::OperationFailed, "internal error: no free memory device slot available (all {} <maxMemory slots> are taken)",
                    *def.max_memory_slots);
    const bool whole = def.current_memory_kib.value_or(def.memory_kib) == def.memory_kib;
    if (!mem.info.alias.starts_with("ua-")) mem.info.alias.clear();  // the domain names it
    mem.current_kib.reset();  // what the guest plugged: QEMU says it
    DomainDef out = def;
    out.devices.memories.push_back(std::move(mem));
    VIREO_TRY(validate_domain(out));
    VIREO_TRY(assign_addresses_and_aliases(out));
    if (whole) out.current_memory_kib = out.memory_kib;
    VIREO_TRY(validate_domain(out));
    return out;
}

Result<std::size_t> find_memory_for_detach(const DomainDef& def, const MemoryDevice& mem) {
    const auto& mems = def.devices.memories;
    const auto& want = mem.info.address;
    for (std::size_t i = 0; i < mems.size(); ++i) {
        const auto& m = mems[i];
        if (m.model != mem.model || m.target_size_kib != mem.target_size_kib || m.target_node != mem.target_node) continue;
        if (want.type == "dimm" && (m.info.address.slot != want.slot || (!want.base.empty() && m.info.address.base != want.base)))
            continue;
        if (!mem.info.alias.empty() && m.info.alias != mem.info.alias) continue;
        return i;
    }
    return fail(ErrorCode::NotFound, "operation failed: matching memory device was not found");
}

Result<std::size_t> find_memory_by_alias(const DomainDef& def, std::string_view alias) {
    const auto& mems = def.devices.memories;
    for (std::size_t i = 0; i < mems.size(); ++i)
        if (!alias.empty() && mems[i].info.alias == alias) return i;
    return fail(ErrorCode::NotFound, "Device not found: no device found with alias {}", alias);
}

Status check_memory_unpluggable(const MemoryDevice& mem) {
    if (mem.model == "virtio-mem")
        return fail(ErrorCode::Unsupported, "Operation not supported: detach of memory device of model 'virtio-mem' is not supported: "
                                            "a virtio-mem device cannot be unplugged (lower its <requested> with update-device instead)");
    return {};
}

namespace {

Result<std::size_t> find_memory_for_update(const DomainDef& def, const MemoryDevice& mem) {
    const auto& mems = def.devices.memories;
    for (std::size_t i = 0; i < mems.size(); ++i) {
        const auto& m = mems[i];
        if (!mem.info.alias.empty()) {
            if (m.info.alias == mem.info.alias) return i;
        } else if (mem.info.address.type == "pci") {
            const auto& a = m.info.address;
            const auto& b = mem.info.address;
            if (a.type == "pci" && a.domain == b.domain && a.bus == b.bus && a.slot == b.slot && a.function == b.function) return i;
        } else if (m.model == mem.model && m.target_size_kib == mem.target_size_kib && m.target_node == mem.target_node) {
            return i;
        }
    }
    return fail(ErrorCode::InvalidArg, "invalid argument: memory device not present in the domain configuration");
}

// Only <requested> of a virtio-mem may change, as libvirt 9.0 allows.
Status check_memory_update(const MemoryDevice& old, const MemoryDevice& update) {
    if (old.model != "virtio-mem") return fail(ErrorCode::Unsupported, "unsupported configuration: cannot modify memory of model '{}'", old.model);
    if (update.model != old.model)
        return fail(ErrorCode::Unsupported, "unsupported configuration: cannot modify memory model from '{}' to '{}'", old.model, update.model);
    if (update.access != old.access)
        return fail(ErrorCode::Unsupported, "unsupported configuration: cannot modify memory access from '{}' to '{}'", old.access, update.access);
    if (update.target_node != old.target_node)
        return fail(ErrorCode::Unsupported, "unsupported configuration: cannot modify memory targetNode from '{}' to '{}'",
                    old.target_node ? static_cast<int>(*old.target_node) : -1, update.target_node ? static_cast<int>(*update.target_node) : -1);
    if (update.target_size_kib != old.target_size_kib)
        return fail(ErrorCode::Unsupported, "unsupported configuration: cannot modify memory size from '{}' to '{}'", old.target_size_kib,
                    update.target_size_kib);
    if (update.block_kib != old.block_kib)
        return fail(ErrorCode::Unsupported, "unsupported configuration: cannot modify memory block size from '{}' to '{}'", old.block_kib,
                    update.block_kib);
    return {};
}

}  // namespace

Result<DomainDef> with_memory_updated(const DomainDef& def, const MemoryDevice& update) {
    auto i = find_memory_for_update(def, update);
    if (!i) return std::unexpected(i.error());
    VIREO_TRY(check_memory_update(def.devices.memories[*i], update));
    DomainDef out = def;
    out.devices.memories[*i].requested_kib = update.requested_kib;
    VIREO_TRY(validate_domain(out));
    return out;
}

DomainDef with_memory_detached(const DomainDef& def, std::size_t index) {
    DomainDef out = def;
    const std::uint64_t size = out.devices.memories[index].target_size_kib;
    out.devices.memories.erase(out.devices.memories.begin() + static_cast<std::ptrdiff_t>(index));
    out.memory_kib = out.memory_kib > size ? out.memory_kib - size : out.memory_kib;
    if (out.current_memory_kib && *out.current_memory_kib > out.memory_kib) out.current_memory_kib = out.memory_kib;
    return out;
}

namespace {

Result<std::size_t> find_interface_for_update(const DomainDef& def, std::string_view mac) {
    const auto& nics = def.devices.interfaces;
    if (mac.empty()) {
        if (nics.size() == 1) return 0;
        return fail(ErrorCode::InvalidArg, "invalid argument: the domain has {} interfaces: name the one to update by its <mac address>",
                    nics.size());
    }
    for (std::size_t i = 0; i < nics.size(); ++i)
        if (nics[i].mac == mac) return i;
    return fail(ErrorCode::NotFound, "operation failed: no interface found with MAC address {}", mac);
}

// Live, a field the document sets must keep its value.
Status check_unchanged_live(const Interface& old, const Interface& update) {
    const std::array<std::tuple<std::string_view, const std::string*, const std::string*>, 11> fields{{
        {"model", &old.model, &update.model},
        {"source network", &old.source_network, &update.source_network},
        {"source bridge", &old.source_bridge, &update.source_bridge},
        {"source portgroup", &old.source_portgroup, &update.source_portgroup},
        {"source dev", &old.source_dev, &update.source_dev},
        {"source mode", &old.source_mode, &update.source_mode},
        {"target dev", &old.target_dev, &update.target_dev},
        {"backend type", &old.backend_type, &update.backend_type},
        {"driver name", &old.driver_name, &update.driver_name},
        {"driver queues", &old.driver_queues, &update.driver_queues},
        {"mtu", &old.mtu, &update.mtu},
    }};
    for (const auto& [what, was, wanted] : fields)
        if (!wanted->empty() && *wanted != *was)
            return fail(ErrorCode::Unsupported,
                        "Operation not supported: cannot change the {} of interface {} of a running domain ('{}' to '{}'): "
                        "only its link state can be updated live",
                        what, old.mac, *was, *wanted);
    if (!update.info.alias.empty() && update.info.alias != old.info.alias)
        return fail(ErrorCode::Unsupported, "Operation not supported: cannot change the alias of interface {}", old.mac);
    return {};
}

}  // namespace

Result<DomainDef> with_interface_updated(const DomainDef& def, Interface update, bool live) {
    auto index = find_interface_for_update(def, update.mac);
    if (!index) return std::unexpected(index.error());
    const Interface& old = def.devices.interfaces[*index];
    if (update.type != old.type)
        return fail(ErrorCode::Unsupported, "Operation not supported: cannot change the type of interface {} from '{}' to '{}'",
                    old.mac, old.type, update.type);
    DomainDef out = def;
    if (live) {
        VIREO_TRY(check_unchanged_live(old, update));
        out.devices.interfaces[*index].link_state = update.link_state;
        return out;
    }
    update.mac = old.mac;
    if (update.info.alias.empty()) update.info.alias = old.info.alias;
    if (update.info.address.type.empty()) update.info.address = old.info.address;
    out.devices.interfaces.erase(out.devices.interfaces.begin() + static_cast<std::ptrdiff_t>(*index));
    auto replaced = with_interface_attached(out, std::move(update));
    if (!replaced) return std::unexpected(replaced.error());
    // Back in its place: the order of <interface> elements is the guest's NIC order.
    auto& nics = replaced->devices.interfaces;
    std::rotate(nics.begin() + static_cast<std::ptrdiff_t>(*index), nics.end() - 1, nics.end());
    return std::move(*replaced);
}

Result<std::size_t> find_interface_for_detach(const DomainDef& def, std::string_view mac, std::string_view type) {
    const auto& nics = def.devices.interfaces;
    std::optional<std::size_t> found;
    std::size_t matches = 0;
    for (std::size_t i = 0; i < nics.size(); ++i) {
        if (!mac.empty() && nics[i].mac != mac) continue;
        if (!type.empty() && nics[i].type != type) continue;
        if (!found) found = i;
        ++matches;
    }
    if (!found) {
        if (!mac.empty()) return fail(ErrorCode::NotFound, "operation failed: no interface found with MAC address {}", mac);
        return fail(ErrorCode::NotFound, "operation failed: no interface{}{} found", type.empty() ? "" : " of type ", type);
    }
    if (matches > 1)
        return fail(ErrorCode::InvalidArg, "Domain has {} interfaces. Please specify which one to detach using --mac", matches);
    return *found;
}

Result<std::size_t> find_interface_by_alias(const DomainDef& def, std::string_view alias) {
    const auto& nics = def.devices.interfaces;
    for (std::size_t i = 0; i < nics.size(); ++i)
        if (!alias.empty() && nics[i].info.alias == alias) return i;
    return fail(ErrorCode::NotFound, "Device not found: no device found with alias {}", alias);
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
