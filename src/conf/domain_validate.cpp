// validate_domain: semantic checks on a parsed DomainDef. Problems are
// reported with the XPath-like path of the offending node; parse_domain_xml
// adds the line number from the document.
#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "conf/domain.hpp"
#include "conf/domain_internal.hpp"
#include "util/files.hpp"

namespace vireo::conf {

namespace {

std::string indexed(std::string_view base, std::size_t i, std::size_t n) {
    return n > 1 ? fmt::format("{}[{}]", base, i + 1) : std::string(base);
}

// Largest memory size libvirt accepts: LLONG_MAX bytes, in KiB.
constexpr std::uint64_t kMaxMemoryKib = 0x7fffffffffffffffULL / 1024;

std::optional<ValidationProblem> check_memory(const DomainDef& def) {
    if (def.memory_kib == 0) return ValidationProblem{ErrorCode::XmlError, "/domain/memory", "memory size must be greater than zero"};
    if (def.memory_kib > kMaxMemoryKib)
        return ValidationProblem{ErrorCode::XmlError, "/domain/memory", fmt::format("memory size {} KiB is too large (maximum {} KiB)", def.memory_kib, kMaxMemoryKib)};
    if (def.max_memory_kib) {
        if (!def.max_memory_slots)
            return ValidationProblem{ErrorCode::XmlError, "/domain/maxMemory/@slots", "both maximum memory size and memory slot count must be specified"};
        if (*def.max_memory_kib < def.memory_kib)
            return ValidationProblem{ErrorCode::XmlError, "/domain/maxMemory",
                                     fmt::format("maximum memory size ({} KiB) must be equal or greater than the memory size ({} KiB)", *def.max_memory_kib, def.memory_kib)};
        if (*def.max_memory_kib > kMaxMemoryKib)
            return ValidationProblem{ErrorCode::XmlError, "/domain/maxMemory", "maximum memory size is too large"};
        if (def.cpu.numa.empty())
            return ValidationProblem{ErrorCode::Unsupported, "/domain/maxMemory",
                                     "memory hotplug (<maxMemory>) needs at least one guest NUMA cell (<cpu><numa><cell .../></numa></cpu>)"};
    }
    if (def.current_memory_kib && *def.current_memory_kib == 0)
        return ValidationProblem{ErrorCode::XmlError, "/domain/currentMemory", "current memory size must be greater than zero"};
    return std::nullopt;
}

std::optional<ValidationProblem> check_vcpus(const DomainDef& def) {
    if (def.vcpus == 0) return ValidationProblem{ErrorCode::XmlError, "/domain/vcpu", "a domain needs at least one vCPU"};
    if (def.vcpus_current && (*def.vcpus_current == 0 || *def.vcpus_current > def.vcpus))
        return ValidationProblem{ErrorCode::XmlError, "/domain/vcpu/@current",
                                 fmt::format("current vCPU count {} must be between 1 and the maximum {}", *def.vcpus_current, def.vcpus)};
    if (!def.vcpu_states.empty()) {
        if (def.vcpu_states.size() != def.vcpus)
            return ValidationProblem{ErrorCode::XmlError, "/domain/vcpus",
                                     fmt::format("<vcpus> has {} vCPUs but <vcpu> is {}", def.vcpu_states.size(), def.vcpus)};
        if (!def.vcpu_states[0].enabled)
            return ValidationProblem{ErrorCode::Unsupported, "/domain/vcpus/vcpu", "vcpu 0 can't be offline"};
        if (def.vcpu_states[0].hotpluggable == "yes")
            return ValidationProblem{ErrorCode::Unsupported, "/domain/vcpus/vcpu", "vcpu0 can't be hotpluggable"};
    }
    const auto& c = def.cpu;
    if (c.sockets || c.cores || c.threads || c.dies || c.clusters) {
        const std::uint64_t total = std::uint64_t{c.sockets.value_or(1)} * c.dies.value_or(1) * c.clusters.value_or(1) * c.cores.value_or(1) * c.threads.value_or(1);
        if (total != def.vcpus)
            return ValidationProblem{ErrorCode::XmlError, "/domain/cpu/topology",
                                     fmt::format("CPU topology gives {} vCPUs but <vcpu> is {}", total, def.vcpus)};
    }
    if (c.mode == "custom" && c.model.empty() && !c.features.empty())
        return ValidationProblem{ErrorCode::XmlError, "/domain/cpu/model", "a custom CPU with features needs a <model>"};
    return std::nullopt;
}

std::optional<ValidationProblem> check_disks(const DomainDef& def) {
    const auto& disks = def.devices.disks;
    std::map<std::string, std::size_t> targets;
    std::map<std::string, std::size_t> drive_addresses;  // per bus type: ide 0:0:0:0 and fdc 0:0:0:0 differ
    for (std::size_t i = 0; i < disks.size(); ++i) {
        const Disk& d = disks[i];
        const std::string path = indexed("/domain/devices/disk", i, disks.size());
        if (const auto& a = d.info.address; a.type == "drive") {
            const std::string key = fmt::format("{} drive {}:{}:{}:{}", d.target_bus, a.controller, a.bus, a.target, a.unit);
            auto [it, ok] = drive_addresses.emplace(key, i);
            if (!ok)
                return ValidationProblem{ErrorCode::XmlError, path + "/address",
                                         fmt::format("address {} is already used by {}", key, indexed("disk", it->second, disks.size()))};
        }
        auto [it, inserted] = targets.emplace(d.target_dev, i);
        if (!inserted)
            return ValidationProblem{ErrorCode::XmlError, path + "/target/@dev",
                                     fmt::format("target '{}' is already used by {}", d.target_dev, indexed("disk", it->second, disks.size()))};
        if ((d.device == "cdrom" || d.device == "floppy") && d.target_bus == "virtio")
            return ValidationProblem{ErrorCode::XmlError, path + "/target/@bus",
                                     fmt::format("a {} cannot use bus 'virtio' (use sata or ide for cdrom, fdc for floppy)", d.device)};
        if (d.device == "floppy" && !d.target_bus.empty() && d.target_bus != "fdc")
            return ValidationProblem{ErrorCode::XmlError, path + "/target/@bus", "a floppy needs bus 'fdc'"};
        if (d.device == "lun" && d.target_bus != "scsi" && d.target_bus != "virtio")
            return ValidationProblem{ErrorCode::XmlError, path + "/target/@bus", "a lun disk needs bus 'scsi' or 'virtio'"};
        const bool removable = d.device == "cdrom" || d.device == "floppy";
        if (!removable) {
            if (d.type == "file" && d.source.file.empty())
                return ValidationProblem{ErrorCode::XmlError, path + "/source/@file", fmt::format("disk '{}' needs a source file", d.target_dev)};
            if (d.type == "block" && d.source.dev.empty())
                return ValidationProblem{ErrorCode::XmlError, path + "/source/@dev", fmt::format("disk '{}' needs a source device", d.target_dev)};
            if (d.type == "volume" && (d.source.pool.empty() || d.source.volume.empty()))
                return ValidationProblem{ErrorCode::XmlError, path + "/source", fmt::format("disk '{}' needs a source pool and volume", d.target_dev)};
        }
        if (d.type == "network" && d.source.protocol.empty())
            return ValidationProblem{ErrorCode::XmlError, path + "/source/@protocol", fmt::format("network disk '{}' needs a source protocol", d.target_dev)};
        for (char ch : d.target_dev)
            if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
                return ValidationProblem{ErrorCode::XmlError, path + "/target/@dev", fmt::format("invalid target device name '{}'", d.target_dev)};
    }
    return std::nullopt;
}

// Every DeviceInfo with its path, for cross-device checks.
struct InfoRef {
    std::string path;
    const DeviceInfo* info;
};

template <class T>
void collect(std::vector<InfoRef>& out, const std::vector<T>& devs, std::string_view name) {
    for (std::size_t i = 0; i < devs.size(); ++i) out.push_back({fmt::format("/domain/devices/{}", indexed(name, i, devs.size())), &devs[i].info});
}

std::vector<InfoRef> all_device_infos(const DomainDef& def) {
    std::vector<InfoRef> out;
    const auto& d = def.devices;
    collect(out, d.disks, "disk");
    collect(out, d.controllers, "controller");
    collect(out, d.filesystems, "filesystem");
    collect(out, d.interfaces, "interface");
    collect(out, d.serials, "serial");
    collect(out, d.parallels, "parallel");
    collect(out, d.channels, "channel");
    collect(out, d.inputs, "input");
    collect(out, d.tpms, "tpm");
    collect(out, d.graphics, "graphics");
    collect(out, d.sounds, "sound");
    collect(out, d.videos, "video");
    collect(out, d.redirdevs, "redirdev");
    collect(out, d.hubs, "hub");
    collect(out, d.watchdogs, "watchdog");
    if (d.memballoon) out.push_back({"/domain/devices/memballoon", &d.memballoon->info});
    collect(out, d.rngs, "rng");
    collect(out, d.panics, "panic");
    return out;
}

std::optional<ValidationProblem> check_device_infos(const DomainDef& def) {
    const auto infos = all_device_infos(def);
    std::map<unsigned, std::string> boot_orders;
    std::map<std::string, std::string> aliases;
    std::map<std::string, std::string> addresses;
    for (const auto& ref : infos) {
        const DeviceInfo& info = *ref.info;
        if (info.boot_order) {
            if (!def.os.boot_devs.empty())
                return ValidationProblem{ErrorCode::XmlError, ref.path + "/boot",
                                         "per-device boot elements cannot be used together with <os><boot dev=.../> elements"};
            auto [it, ok] = boot_orders.emplace(*info.boot_order, ref.path);
            if (!ok)
                return ValidationProblem{ErrorCode::XmlError, ref.path + "/boot/@order",
                                         fmt::format("boot order {} is already used by {}", *info.boot_order, it->second)};
        }
        if (!info.alias.empty()) {
            auto [it, ok] = aliases.emplace(info.alias, ref.path);
            if (!ok) return ValidationProblem{ErrorCode::XmlError, ref.path + "/alias/@name", fmt::format("alias '{}' is already used by {}", info.alias, it->second)};
        }
        const DeviceAddress& a = info.address;
        std::string key;
        if (a.type == "pci") key = fmt::format("pci {:04x}:{:02x}:{:02x}.{:x}", a.domain, a.bus, a.slot, a.function);
        else if (a.type == "virtio-serial" && !a.port.empty()) key = fmt::format("virtio-serial {}:{}:{}", a.controller, a.bus, a.port);
        else if (a.type == "usb" && !a.port.empty()) key = fmt::format("usb {}:{}", a.bus, a.port);
        if (!key.empty()) {
            auto [it, ok] = addresses.emplace(key, ref.path);
            if (!ok) return ValidationProblem{ErrorCode::XmlError, ref.path + "/address", fmt::format("address {} is already used by {}", key, it->second)};
        }
    }
    // One controller per type and index, except a USB2 set (ich9-ehci1 and
    // its ich9-uhci companions), which shares its index, one of each model.
    const auto& ctls = def.devices.controllers;
    auto usb2 = [](const Controller& c) {
        return c.type == "usb" && (c.model == "ich9-ehci1" || c.model == "ich9-uhci1" || c.model == "ich9-uhci2" || c.model == "ich9-uhci3");
    };
    std::map<std::pair<std::string, unsigned>, std::size_t> seen;
    std::set<std::pair<unsigned, std::string>> usb2_models;
    for (std::size_t i = 0; i < ctls.size(); ++i) {
        const Controller& c = ctls[i];
        if (c.index == kAutoIndex) continue;
        const bool set_member = usb2(c) && usb2_models.emplace(c.index, c.model).second;
        auto [it, first] = seen.emplace(std::pair{c.type, c.index}, i);
        if (first || (set_member && usb2(ctls[it->second]))) continue;
        return ValidationProblem{ErrorCode::XmlError, fmt::format("/domain/devices/{}/@index", indexed("controller", i, ctls.size())),
                                 fmt::format("duplicate controller type '{}' index {}", c.type, c.index)};
    }
    return std::nullopt;
}

std::optional<ValidationProblem> check_graphics(const DomainDef& def) {
    const auto& gs = def.devices.graphics;
    for (std::size_t i = 0; i < gs.size(); ++i) {
        const auto& g = gs[i];
        if (g.port.empty() || g.port == "-1" || g.autoport == "yes") continue;
        auto p = xml_port(g.port);
        const std::string path = fmt::format("/domain/devices/{}/@port", indexed("graphics", i, gs.size()));
        if (!p || *p > 65535) return ValidationProblem{ErrorCode::XmlError, path, fmt::format("invalid port '{}'", g.port)};
        if (g.type == "vnc" && *p < 5900) return ValidationProblem{ErrorCode::XmlError, path, fmt::format("VNC port {} must be in range [5900,65535]", *p)};
    }
    return std::nullopt;
}

std::optional<ValidationProblem> check_interfaces(const DomainDef& def) {
    const auto& nics = def.devices.interfaces;
    std::map<std::string, std::size_t> macs;
    for (std::size_t i = 0; i < nics.size(); ++i) {
        if (nics[i].mac.empty()) continue;
        auto [it, ok] = macs.emplace(nics[i].mac, i);
        if (!ok)
            return ValidationProblem{ErrorCode::XmlError, fmt::format("/domain/devices/{}/mac/@address", indexed("interface", i, nics.size())),
                                     fmt::format("MAC address {} is already used by {}", nics[i].mac, indexed("interface", it->second, nics.size()))};
    }
    return std::nullopt;
}

// One primary video at most; the ones that can only be primary (bochs,
// ramfb) are not secondary.
std::optional<ValidationProblem> check_videos(const DomainDef& def) {
    const auto& vs = def.devices.videos;
    std::optional<std::size_t> primary;
    for (std::size_t i = 0; i < vs.size(); ++i) {
        if (vs[i].primary != "yes") continue;
        if (primary)
            return ValidationProblem{ErrorCode::XmlError, fmt::format("/domain/devices/{}/model/@primary", indexed("video", i, vs.size())),
                                     fmt::format("only one primary video device is supported ({} is primary already)", indexed("video", *primary, vs.size()))};
        primary = i;
    }
    for (std::size_t i = 0; i < vs.size(); ++i) {
        if (i == primary.value_or(0)) continue;
        if (vs[i].model_type == "bochs" || vs[i].model_type == "ramfb")
            return ValidationProblem{ErrorCode::XmlError, fmt::format("/domain/devices/{}/model/@type", indexed("video", i, vs.size())),
                                     fmt::format("video type '{}' is only valid as the primary video device", vs[i].model_type)};
    }
    return std::nullopt;
}

// What the machine type and the firmware allow (libvirt's checks).
std::optional<ValidationProblem> check_machine(const DomainDef& def) {
    const MachineFamily fam = machine_family(def.os.machine.empty() ? "pc" : def.os.machine);
    const auto& os = def.os;
    if (os.loader.empty() && (!os.loader_type.empty() || !os.loader_readonly.empty() || !os.loader_secure.empty()) && os.firmware != "efi")
        return ValidationProblem{ErrorCode::XmlError, "/domain/os/loader",
                                 "no loader path is given and firmware autoselection is not asked for (<os firmware='efi'>)"};
    if (os.firmware == "efi") {
        // autoselection picks the loader: the document cannot also name it
        if (!os.loader_readonly.empty())
            return ValidationProblem{ErrorCode::XmlError, "/domain/os/loader/@readonly",
                                     "loader attribute 'readonly' cannot be given with firmware autoselection (<os firmware='efi'>)"};
        if (!os.loader_type.empty() || !os.loader.empty())
            return ValidationProblem{ErrorCode::XmlError, os.loader_type.empty() ? "/domain/os/loader" : "/domain/os/loader/@type",
                                     "a loader type or path cannot be given with firmware autoselection (<os firmware='efi'>)"};
    }
    const bool x86 = os.arch.empty() || os.arch == "x86_64" || os.arch == "i686";
    if (x86 && (os.firmware == "efi" || os.loader_type == "pflash") &&
        std::none_of(def.features.begin(), def.features.end(), [](const Feature& f) { return f.name == "acpi"; }))
        return ValidationProblem{ErrorCode::Unsupported, "/domain/features/acpi",
                                 "UEFI requires ACPI on this architecture (<features><acpi/></features>)"};
    if (os.loader_secure == "yes") {
        if (fam != MachineFamily::Q35)
            return ValidationProblem{ErrorCode::Unsupported, "/domain/os/loader/@secure", "secure boot is supported with q35 machine types only"};
        const bool smm = std::any_of(def.features.begin(), def.features.end(), [](const Feature& f) {
            if (f.name != "smm") return false;
            for (const auto& [k, v] : f.attrs)
                if (k == "state") return v == "on";
            return true;
        });
        if (!smm)
            return ValidationProblem{ErrorCode::Unsupported, "/domain/os/loader/@secure",
                                     "secure boot requires the SMM feature to be enabled (<features><smm state='on'/></features>)"};
    }
    if (fam == MachineFamily::Q35) {
        const auto& disks = def.devices.disks;
        for (std::size_t i = 0; i < disks.size(); ++i) {
            const std::string& bus = disks[i].target_bus;
            if (bus == "ide" || (bus.empty() && disks[i].target_dev.starts_with("hd")))
                return ValidationProblem{ErrorCode::Unsupported, fmt::format("/domain/devices/{}/target/@bus", indexed("disk", i, disks.size())),
                                         "IDE controllers are unsupported for the q35 machine type (use bus='sata')"};
        }
        const auto& ctls = def.devices.controllers;
        for (std::size_t i = 0; i < ctls.size(); ++i)
            if (ctls[i].type == "ide")
                return ValidationProblem{ErrorCode::Unsupported, fmt::format("/domain/devices/{}/@type", indexed("controller", i, ctls.size())),
                                         "IDE controllers are unsupported for the q35 machine type"};
    }
    return std::nullopt;
}

std::optional<ValidationProblem> check_audio(const DomainDef& def) {
    const auto& d = def.devices;
    std::set<std::string> ids;
    for (std::size_t i = 0; i < d.audios.size(); ++i)
        if (!ids.insert(d.audios[i].id).second)
            return ValidationProblem{ErrorCode::XmlError, fmt::format("/domain/devices/{}/@id", indexed("audio", i, d.audios.size())),
                                     fmt::format("audio id {} is used twice", d.audios[i].id)};
    for (std::size_t i = 0; i < d.sounds.size(); ++i)
        if (!d.sounds[i].audio_id.empty() && !ids.contains(d.sounds[i].audio_id))
            return ValidationProblem{ErrorCode::XmlError, fmt::format("/domain/devices/{}/audio/@id", indexed("sound", i, d.sounds.size())),
                                     fmt::format("no <audio id='{}'> backend is defined", d.sounds[i].audio_id)};
    return std::nullopt;
}

}  // namespace

std::optional<unsigned> xml_port(std::string_view text) {
    unsigned v = 0;
    if (text.empty() || text.size() > 6) return std::nullopt;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    return v;
}

std::optional<ValidationProblem> find_validation_problem(const DomainDef& def) {
    if (def.name.empty()) return ValidationProblem{ErrorCode::XmlError, "/domain/name", "the domain name must not be empty"};
    if (!files::is_safe_name(def.name))
        return ValidationProblem{ErrorCode::XmlError, "/domain/name",
                                 fmt::format("invalid domain name '{}': names may not be '.' or '..', contain '/' or control characters, or exceed 255 bytes",
                                             def.name.substr(0, 64))};
    if (def.type != "kvm" && def.type != "qemu")
        return ValidationProblem{ErrorCode::Unsupported, "/domain/@type", fmt::format("domain type '{}' is not supported (expected kvm or qemu)", def.type)};
    if (def.uuid.is_null()) return ValidationProblem{ErrorCode::XmlError, "/domain/uuid", "the domain UUID must not be all zeros"};
    for (auto check : {check_memory, check_vcpus, check_disks, check_device_infos, check_graphics, check_interfaces, check_videos, check_machine, check_audio, find_tuning_problem})
        if (auto p = check(def)) return p;
    if (!def.os.loader.empty() && !def.os.kernel.empty() && def.os.loader_type == "rom")
        return ValidationProblem{ErrorCode::XmlError, "/domain/os/loader", "a ROM loader cannot be combined with direct kernel boot"};
    if (def.os.kernel.empty() && (!def.os.initrd.empty() || !def.os.cmdline.empty() || !def.os.dtb.empty()))
        return ValidationProblem{ErrorCode::XmlError, "/domain/os/kernel", "<initrd>, <cmdline> and <dtb> need a <kernel>"};
    return std::nullopt;
}

Status validate_domain(const DomainDef& def) {
    auto p = find_validation_problem(def);
    if (!p) return {};
    const char* prefix = p->code == ErrorCode::Unsupported ? "unsupported configuration" : "XML error";
    return fail(p->code, "{}: {}: {}", prefix, p->path, p->message);
}

}  // namespace vireo::conf
