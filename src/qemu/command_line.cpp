#include "qemu/command_line.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "qemu/probe.hpp"
#include "qemu/swtpm.hpp"
#include "util/number.hpp"

namespace vireo::qemu {

using ojson = nlohmann::ordered_json;

std::string qemu_opt_escape(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        out += c;
        if (c == ',') out += ',';
    }
    return out;
}

std::string serial_socket_path(const std::string& runtime_prefix, const std::string& alias) {
    return fmt::format("{}.{}.sock", runtime_prefix, alias);
}

bool nic_uses_tap(const conf::Interface& nic) {
    return nic.type == "network" || nic.type == "bridge" || nic.type == "ethernet" || nic.type == "direct";
}

unsigned nic_queues(const conf::Interface& nic) {
    if (nic.driver_queues.empty()) return 1;
    const unsigned long n = std::strtoul(nic.driver_queues.c_str(), nullptr, 10);
    return n == 0 ? 1 : static_cast<unsigned>(n);
}

std::string nic_tap_fd_name(const std::string& alias, unsigned queue) { return fmt::format("{}-tap{}", alias, queue); }

std::string nic_netdev_id(const std::string& alias) { return "host" + alias; }

std::string nic_vhost_fd_name(const std::string& alias, unsigned queue) {
    return fmt::format("{}-vhost{}", alias, queue);
}

std::string passt_socket_path(const std::string& runtime_prefix, const std::string& alias) {
    return fmt::format("{}.passt-{}.sock", runtime_prefix, alias);
}

bool graphics_needs_port(const conf::Graphics& g) {
    if (g.autoport != "yes") return false;
    for (const auto& l : g.listens)
        if (l.type == "socket" || l.type == "none") return false;
    return true;
}

std::string graphics_secret_fd_name(std::size_t index) { return fmt::format("graphics{}-secret", index); }

Result<std::string> accelerator_for(const conf::DomainDef& def) {
    if (def.type == "kvm") return std::string("kvm");
    if (def.type == "qemu") return std::string("tcg");
    return fail(ErrorCode::Unsupported, "domain type '{}' is not supported by the QEMU driver (use 'kvm' or 'qemu')",
                def.type);
}

namespace {

enum class MachineKind { Pc, Q35, Microvm, Other };

MachineKind machine_kind(std::string_view machine) {
    if (conf::is_q35_machine(machine)) return MachineKind::Q35;
    if (machine == "pc" || machine.starts_with("pc-i440fx") || machine.starts_with("pc-")) return MachineKind::Pc;
    if (machine == "microvm") return MachineKind::Microvm;
    return MachineKind::Other;
}

// Builds argv piece by piece; the first error sticks and ends the build.
class Builder {
public:
    Builder(const conf::DomainDef& def, const CommandLineOptions& opts)
        : def_(def), opts_(opts), kind_(machine_kind(def.os.machine)) {}

    Result<std::vector<std::string>> build();
    // Only the -blockdev and -device arguments of one disk (hotplug), its
    // nodes named "<node_prefix><n>-storage|format".
    Result<std::vector<std::string>> build_disk(const conf::Disk& disk, std::string node_prefix);
    // Only the -netdev and -device arguments of one NIC (hotplug).
    Result<std::vector<std::string>> build_nic(const conf::Interface& nic);
    // Only the -object, -device and -action arguments of one <rng>, <input>
    // or <watchdog> (hotplug).
    Result<std::vector<std::string>> build_device(const conf::PluggableDevice& dev);

private:
    void add(std::string a) { argv_.push_back(std::move(a)); }
    void add(std::string a, std::string b) {
        argv_.push_back(std::move(a));
        argv_.push_back(std::move(b));
    }
    template <class... Args>
    void unsupported(fmt::format_string<Args...> f, Args&&... args) {
        if (!error_) error_ = Error{ErrorCode::Unsupported, fmt::format(f, std::forward<Args>(args)...)};
    }
    bool has_spice() const {
        return std::ranges::any_of(def_.devices.graphics, [](const conf::Graphics& g) { return g.type == "spice"; });
    }
    bool device_known(std::string_view driver) {
        if (!opts_.caps || opts_.caps->has_device(driver)) return true;
        unsupported("this QEMU binary has no device '{}'", driver);
        return false;
    }

    std::string iothread_option(const std::string& iothread, const std::string& what);
    std::string pci_bus_name(unsigned bus) const;
    std::string address_opts(const conf::DeviceInfo& info) const;
    std::string device_suffix(const conf::DeviceInfo& info) const;

    void identity();
    void machine();
    void cpu_memory();
    void monitor();
    void clock_and_lifecycle();
    void boot();
    void controllers();
    void disks();
    void one_disk(const conf::Disk& disk);
    std::string blockdev_layer(const std::string& type, const std::string& format, const conf::DiskSource& src,
                               const conf::BackingStore* backing, bool readonly, const conf::Disk& disk);
    void disk_device(const conf::Disk& disk, const std::string& format_node);
    std::string netdev(const conf::Interface& nic, const std::string& alias, const std::string& id);
    void interfaces();
    void one_nic(const conf::Interface& nic);
    std::optional<std::string> chardev_backend(const conf::CharDev& c, const std::string& id, bool first_serial);
    void chardevs();
    void channel(const conf::CharDev& ch);
    void tpms();
    void inputs_graphics_video();
    void input(const conf::Input& in);
    void rng(const conf::Rng& r);
    void watchdog(const conf::Watchdog& w);
    void one_device(const conf::Input& in) { input(in); }
    void one_device(const conf::Rng& r) { rng(r); }
    void one_device(const conf::CharDev& ch) { channel(ch); }
    void one_device(const conf::Watchdog& w) { watchdog(w); }
    std::string usb_bus_opts(const conf::DeviceInfo& info) const;
    std::string graphics_password(const conf::Graphics& g, std::size_t index);
    void vnc(const conf::Graphics& g, std::size_t index);
    void spice(const conf::Graphics& g, std::size_t index);
    void audio_backends();
    void videos();
    void sounds();
    void redirdevs();
    void misc_devices();
    void smbios();
    void sandbox();

    const conf::DomainDef& def_;
    const CommandLineOptions& opts_;
    MachineKind kind_;
    std::optional<MemoryArgs> memory_;  // memory backends, NUMA, dimms, iothreads
    std::vector<std::string> argv_;
    std::optional<Error> error_;
    int next_node_ = 1;
    std::string node_prefix_ = "vireo-";
};

// ",iothread=iothreadN" of a virtio disk or controller's <driver iothread='N'>,
// which must name one of the domain's iothreads.
std::string Builder::iothread_option(const std::string& iothread, const std::string& what) {
    if (iothread.empty()) return "";
    const unsigned id = static_cast<unsigned>(std::strtoul(iothread.c_str(), nullptr, 10));
    if (std::ranges::count(conf::domain_iothread_ids(def_), id) == 0) {
        unsupported("{}: iothread '{}' not defined in iothreadid", what, iothread);
        return "";
    }
    return ",iothread=" + iothread_object_id(id);
}

std::string Builder::pci_bus_name(unsigned bus) const {
    for (const auto& c : def_.devices.controllers) {
        if (c.type != "pci" || c.index != bus) continue;
        if (!c.info.alias.empty()) return c.info.alias;
        if (c.model == "pcie-root") return "pcie.0";
        return fmt::format("pci.{}", bus);
    }
    if (bus == 0) return kind_ == MachineKind::Q35 ? "pcie.0" : "pci.0";
    return fmt::format("pci.{}", bus);
}

std::string Builder::address_opts(const conf::DeviceInfo& info) const {
    const auto& a = info.address;
    if (a.type != "pci" || kind_ == MachineKind::Microvm) return "";  // microvm: virtio-mmio, no PCI
    std::string out = fmt::format(",bus={},addr={:#x}", pci_bus_name(a.bus), a.slot);
    if (a.function != 0) out += fmt::format(".{:#x}", a.function);
    if (a.multifunction == "on") out += ",multifunction=on";
    return out;
}

// id, address and boot index of a device.
std::string Builder::device_suffix(const conf::DeviceInfo& info) const {
    std::string out;
    if (!info.alias.empty()) out += ",id=" + qemu_opt_escape(info.alias);
    out += address_opts(info);
    if (info.boot_order) out += fmt::format(",bootindex={}", *info.boot_order);
    return out;
}

void Builder::identity() {
    add("-name", fmt::format("guest={},debug-threads=on", qemu_opt_escape(def_.name)));
    add("-uuid", def_.uuid.str());
    add("-msg", "timestamp=on");
    add("-S");
    add("-no-user-config");
    add("-nodefaults");
}

bool has_feature(const conf::DomainDef& def, std::string_view name, const conf::Feature** out = nullptr) {
    for (const auto& f : def.features)
        if (f.name == name) {
            if (out) *out = &f;
            return true;
        }
    return false;
}

std::string feature_attr(const conf::Feature& f, std::string_view key) {
    for (const auto& [k, v] : f.attrs)
        if (k == key) return v;
    return "";
}

void Builder::machine() {
    std::string m = def_.os.machine.empty() ? "pc" : def_.os.machine;
    if (kind_ == MachineKind::Other) {
        unsupported("machine type '{}' is not supported (use q35, pc or microvm)", m);
        return;
    }
    if (opts_.caps && !opts_.caps->find_machine(m)) {
        unsupported("machine type '{}' is not known to {}", m, opts_.emulator.string());
        return;
    }
    std::string opts = qemu_opt_escape(m);
    if (kind_ != MachineKind::Microvm) opts += ",usb=off";
    opts += ",dump-guest-core=off";
    if (!has_feature(def_, "acpi")) opts += ",acpi=off";
    for (const auto& f : def_.features) {
        std::string state = feature_attr(f, "state");
        if (f.name == "acpi" || f.name == "apic" || f.name == "pae") continue;
        if (f.name == "vmport" && kind_ != MachineKind::Microvm) {
            opts += fmt::format(",vmport={}", state == "off" ? "off" : "on");
        } else if (f.name == "smm" && kind_ != MachineKind::Microvm) {
            opts += fmt::format(",smm={}", state == "off" ? "off" : "on");
        } else if (f.name == "pmu") {
            // A CPU property; handled with -cpu.
        } else {
            unsupported("feature '{}' is not supported by the QEMU driver", f.name);
        }
    }
    if (def_.memory_backing.nosharepages) opts += ",mem-merge=off";
    if (memory_ && !memory_->machine_backend.empty()) opts += ",memory-backend=" + memory_->machine_backend;
    for (const auto& t : def_.clock.timers)
        if (t.name == "hpet" && t.present == "no" && kind_ != MachineKind::Microvm) opts += ",hpet=off";
    if (!def_.os.loader.empty() && def_.os.loader_type == "pflash") {
        opts += ",pflash0=vireo-pflash0-format";
        if (!def_.os.nvram.empty()) opts += ",pflash1=vireo-pflash1-format";
    }
    add("-machine", opts);

    auto accel = accelerator_for(def_);
    if (!accel) {
        if (!error_) error_ = accel.error();
        return;
    }
    if (*accel == "tcg") add("-accel", "tcg,thread=multi");
    else add("-accel", "kvm");
}

void Builder::cpu_memory() {
    const auto& cpu = def_.cpu;
    bool tcg = def_.type == "qemu";
    std::string model;
    if (cpu.mode == "host-passthrough") {
        if (tcg) unsupported("CPU mode 'host-passthrough' needs KVM; use mode='maximum' for a domain of type 'qemu'");
        model = "host";
    } else if (cpu.mode == "host-model") {
        model = tcg ? "max" : "host";
    } else if (cpu.mode == "maximum") {
        model = "max";
    } else if (!cpu.model.empty()) {
        model = cpu.model;
        if (opts_.caps && !opts_.caps->cpu_models.empty() && !opts_.caps->cpu_models.contains(model))
            unsupported("CPU model '{}' is not known to this QEMU", model);
    }
    std::string features;
    for (const auto& f : cpu.features) {
        bool on = f.policy != "disable" && f.policy != "forbid";
        features += fmt::format(",{}={}", f.name, on ? "on" : "off");
    }
    const conf::Feature* pmu = nullptr;
    if (has_feature(def_, "pmu", &pmu)) features += fmt::format(",pmu={}", feature_attr(*pmu, "state") == "off" ? "off" : "on");
    if (!model.empty()) add("-cpu", model + features);
    else if (!features.empty()) add("-cpu", (tcg ? "qemu64" : "host") + features);
    // A secure-boot firmware keeps its variable store writable only from SMM.
    if (def_.os.loader_type == "pflash" && def_.os.loader_secure == "yes")
        add("-global", "driver=cfi.pflash01,property=secure,value=on");

    std::string mem = fmt::format("size={}k", memory_ ? memory_->initial_kib : def_.memory_kib);
    if (def_.max_memory_kib)
        mem += fmt::format(",slots={},maxmem={}k", def_.max_memory_slots.value_or(1), *def_.max_memory_kib);
    add("-m", mem);
    if (memory_)
        for (const auto& a : memory_->ram) add(a);
    add("-overcommit", def_.memory_backing.locked ? "mem-lock=on" : "mem-lock=off");

    unsigned maxcpus = def_.vcpus;
    unsigned current = def_.vcpus_current.value_or(maxcpus);
    unsigned threads = cpu.threads.value_or(1), cores = cpu.cores.value_or(1);
    unsigned dies = cpu.dies.value_or(1);
    unsigned sockets = cpu.sockets.value_or(std::max(1u, maxcpus / std::max(1u, threads * cores * dies)));
    std::string smp = fmt::format("{},maxcpus={},sockets={}", current, maxcpus, sockets);
    if (cpu.dies) smp += fmt::format(",dies={}", dies);
    smp += fmt::format(",cores={},threads={}", cores, threads);
    add("-smp", smp);
    // iothreads, guest NUMA cells and memory modules follow -smp, as in libvirt.
    if (memory_) {
        for (const auto* part : {&memory_->iothreads, &memory_->numa, &memory_->dimms})
            for (const auto& a : *part) add(a);
    }
}

void Builder::monitor() {
    add("-chardev", fmt::format("socket,id=charmonitor,fd={},server=on,wait=off", opts_.monitor_fd));
    add("-mon", "chardev=charmonitor,id=monitor,mode=control");
}

void Builder::clock_and_lifecycle() {
    const auto& clock = def_.clock;
    std::string rtc;
    if (clock.offset.empty() || clock.offset == "utc") rtc = "base=utc";
    else if (clock.offset == "localtime") rtc = "base=localtime";
    else unsupported("clock offset '{}' is not supported", clock.offset);
    for (const auto& t : clock.timers) {
        if (t.name == "rtc") {
            if (t.tickpolicy == "catchup") rtc += ",driftfix=slew";
            if (t.track == "guest") rtc += ",clock=vm";
            else if (t.track == "wall") rtc += ",clock=rt";
        } else if (t.name == "hpet" || t.name == "pit" || t.name == "kvmclock" || t.name == "tsc") {
            // hpet: -machine; pit/kvmclock/tsc: KVM tuning with no TCG meaning.
        } else {
            unsupported("timer '{}' is not supported", t.name);
        }
    }
    if (!rtc.empty() && kind_ != MachineKind::Microvm) add("-rtc", rtc);

    // QEMU stops instead of exiting on guest poweroff so the driver sees the
    // SHUTDOWN event and applies on_poweroff itself (and can fake a reboot).
    add("-no-shutdown");
    if (def_.on_reboot == "destroy") add("-no-reboot");
    for (const auto* action : {&def_.on_poweroff, &def_.on_reboot, &def_.on_crash}) {
        const std::string& a = *action;
        if (!a.empty() && a != "destroy" && a != "restart" && a != "preserve" && a != "rename-restart" &&
            a != "coredump-destroy" && a != "coredump-restart")
            unsupported("lifecycle action '{}' is not supported", a);
    }
}

void Builder::boot() {
    const auto& os = def_.os;
    if (os.type != "hvm") unsupported("OS type '{}' is not supported (only hvm)", os.type);
    if (!os.loader.empty()) {
        if (os.loader_type == "pflash") {
            ojson code = {{"driver", "file"}, {"filename", os.loader}, {"node-name", "vireo-pflash0-storage"},
                          {"auto-read-only", true}, {"discard", "unmap"}};
            add("-blockdev", code.dump());
            ojson codefmt = {{"node-name", "vireo-pflash0-format"}, {"read-only", os.loader_readonly != "no"},
                             {"driver", "raw"}, {"file", "vireo-pflash0-storage"}};
            add("-blockdev", codefmt.dump());
            if (!os.nvram.empty()) {
                ojson vars = {{"driver", "file"}, {"filename", os.nvram}, {"node-name", "vireo-pflash1-storage"},
                              {"auto-read-only", true}, {"discard", "unmap"}};
                add("-blockdev", vars.dump());
                ojson varsfmt = {{"node-name", "vireo-pflash1-format"}, {"read-only", false}, {"driver", "raw"},
                                 {"file", "vireo-pflash1-storage"}};
                add("-blockdev", varsfmt.dump());
            }
        } else {
            add("-bios", os.loader);
        }
    } else if (os.firmware == "efi") {
        // The driver resolves it at start (qemu/firmware.hpp); a definition
        // that reaches here unresolved is a bug in the caller.
        unsupported("firmware autoselection (firmware='efi') was not resolved before building the command line");
    }

    bool any_bootindex = false;
    for (const auto& d : def_.devices.disks) any_bootindex |= d.info.boot_order.has_value();
    for (const auto& n : def_.devices.interfaces) any_bootindex |= n.info.boot_order.has_value();
    for (const auto& r : def_.devices.redirdevs) any_bootindex |= r.info.boot_order.has_value();
    std::string boot;
    if (!any_bootindex && !os.boot_devs.empty() && os.kernel.empty()) {
        std::string order;
        for (const auto& dev : os.boot_devs) {
            if (dev == "hd") order += 'c';
            else if (dev == "cdrom") order += 'd';
            else if (dev == "network") order += 'n';
            else if (dev == "fd") order += 'a';
        }
        boot = "order=" + order;
    }
    if (os.bootmenu_enable == "yes") {
        boot += std::string(boot.empty() ? "" : ",") + "menu=on";
        if (!os.bootmenu_timeout.empty()) boot += ",splash-time=" + os.bootmenu_timeout;
    }
    if (any_bootindex || !boot.empty()) boot += std::string(boot.empty() ? "" : ",") + "strict=on";
    if (!boot.empty()) add("-boot", boot);
    if (!os.kernel.empty()) add("-kernel", os.kernel);
    if (!os.initrd.empty()) add("-initrd", os.initrd);
    if (!os.cmdline.empty()) add("-append", os.cmdline);
    if (!os.dtb.empty()) add("-dtb", os.dtb);
}

void Builder::controllers() {
    // PCI controllers first, by index: a device can only name a bus that
    // already exists on the command line.
    std::vector<const conf::Controller*> ordered;
    for (const auto& c : def_.devices.controllers)
        if (c.type == "pci") ordered.push_back(&c);
    std::ranges::stable_sort(ordered, {}, &conf::Controller::index);
    for (const auto& c : def_.devices.controllers)
        if (c.type != "pci") ordered.push_back(&c);
    for (const conf::Controller* cp : ordered) {
        const conf::Controller& c = *cp;
        if (kind_ == MachineKind::Microvm && (c.type == "ide" || c.type == "fdc" || c.type == "usb" || c.type == "sata"))
            continue;  // implicit controllers of PC machines; microvm has none
        std::string suffix = device_suffix(c.info);
        if (c.type == "pci") {
            if (c.model == "pci-root" || c.model == "pcie-root") continue;  // built into the machine
            std::string driver = c.model_name.empty() ? c.model : c.model_name;
            if (c.model == "pcie-root-port" || c.model == "pci-bridge" || c.model == "pcie-to-pci-bridge") {
                if (!device_known(driver)) continue;
                std::string args = driver;
                if (c.model == "pcie-root-port") {
                    if (!c.target_port.empty()) args += ",port=" + c.target_port;
                    args += fmt::format(",chassis={}", c.target_chassis.value_or(c.index));
                } else if (c.model == "pci-bridge") {
                    args += fmt::format(",chassis_nr={}", c.target_chassis_nr.value_or(c.index));
                }
                add("-device", args + suffix);
            } else {
                unsupported("PCI controller model '{}' is not supported", c.model);
            }
        } else if (c.type == "usb") {
            static const std::map<std::string, std::string, std::less<>> usb = {
                {"qemu-xhci", "qemu-xhci"}, {"nec-xhci", "nec-usb-xhci"}, {"piix3-uhci", "piix3-usb-uhci"},
                {"piix4-uhci", "piix4-usb-uhci"}, {"ich9-ehci1", "ich9-usb-ehci1"}, {"ich9-uhci1", "ich9-usb-uhci1"},
                {"ich9-uhci2", "ich9-usb-uhci2"}, {"ich9-uhci3", "ich9-usb-uhci3"}};
            if (c.model == "none") continue;
            std::string model = c.model.empty() ? (kind_ == MachineKind::Q35 ? "qemu-xhci" : "piix3-uhci") : c.model;
            auto it = usb.find(model);
            if (it == usb.end()) {
                unsupported("USB controller model '{}' is not supported", model);
                continue;
            }
            if (!device_known(it->second)) continue;
            std::string args = it->second;
            if (!c.ports.empty()) args += ",p2=" + c.ports + ",p3=" + c.ports;
            if (!c.master_startport.empty()) args += ",masterbus=usb.0,firstport=" + c.master_startport;
            add("-device", args + suffix);
        } else if (c.type == "sata") {
            // q35 has its AHCI (ide.0-5) built in at 00:1f.2.
            if (kind_ == MachineKind::Q35 && c.index == 0) continue;
            if (device_known("ich9-ahci")) add("-device", "ich9-ahci" + suffix);
        } else if (c.type == "ide") {
            if (kind_ == MachineKind::Pc && c.index == 0) continue;  // PIIX IDE built in
            unsupported("an IDE controller is only available built into the pc machine type");
        } else if (c.type == "scsi") {
            std::string model = c.model.empty() ? "virtio-scsi" : c.model;
            if (model == "virtio-scsi") {
                std::string drv = kind_ == MachineKind::Microvm ? "virtio-scsi-device" : "virtio-scsi-pci";
                if (device_known(drv)) add("-device", drv + iothread_option(c.driver_iothread, "controller") + suffix);
            } else if (model == "lsilogic") {
                if (device_known("lsi")) add("-device", "lsi" + suffix);
            } else {
                unsupported("SCSI controller model '{}' is not supported", model);
            }
        } else if (c.type == "virtio-serial") {
            std::string drv = kind_ == MachineKind::Microvm ? "virtio-serial-device" : "virtio-serial-pci";
            std::string args = drv;
            if (!c.ports.empty()) args += ",max_ports=" + c.ports;
            if (!c.vectors.empty()) args += ",vectors=" + c.vectors;
            if (device_known(drv)) add("-device", args + suffix);
        } else if (c.type == "fdc") {
            // the pc machine's floppy controller is built in
        } else {
            unsupported("controller type '{}' is not supported", c.type);
        }
    }
}

// Cache modes as (direct, no-flush, write-cache).
struct CacheMode {
    bool direct, no_flush, writeback;
};
std::optional<CacheMode> cache_mode(std::string_view mode) {
    if (mode.empty() || mode == "default" || mode == "writeback") return CacheMode{false, false, true};
    if (mode == "none") return CacheMode{true, false, true};
    if (mode == "writethrough") return CacheMode{false, false, false};
    if (mode == "directsync") return CacheMode{true, false, false};
    if (mode == "unsafe") return CacheMode{false, true, true};
    return std::nullopt;
}

bool format_has_backing(std::string_view fmt) { return fmt == "qcow2" || fmt == "qed" || fmt == "vmdk" || fmt == "qcow"; }

// One layer of a disk's chain: its storage node then its format node (after
// the layers it is backed by). Returns the format node name.
std::string Builder::blockdev_layer(const std::string& type, const std::string& format, const conf::DiskSource& src,
                                    const conf::BackingStore* backing, bool readonly, const conf::Disk& disk) {
    std::string fmt_name = format.empty() ? "raw" : format;
    std::optional<std::string> backing_node;  // nullopt: let QEMU follow the image header
    bool backing_none = false;
    if (backing && backing->present) {
        if (backing->type.empty()) {
            backing_none = true;
        } else {
            const conf::BackingStore* next = backing->chain.empty() ? nullptr : &backing->chain.front();
            backing_node = blockdev_layer(backing->type, backing->format, backing->source, next, true, disk);
        }
    }
    int n = next_node_++;
    std::string storage = fmt::format("{}{}-storage", node_prefix_, n);
    std::string format_node = fmt::format("{}{}-format", node_prefix_, n);
    auto cache = cache_mode(disk.cache).value_or(CacheMode{false, false, true});

    ojson s;
    if (type == "file") {
        s = {{"driver", "file"}, {"filename", src.file}};
    } else if (type == "block") {
        s = {{"driver", disk.device == "cdrom" ? "host_cdrom" : "host_device"}, {"filename", src.dev}};
    } else if (type == "network" && src.protocol == "nbd") {
        if (src.hosts.empty()) {
            unsupported("nbd disk '{}' has no host", disk.target_dev);
            return format_node;
        }
        const auto& h = src.hosts.front();
        ojson server = h.transport == "unix" ? ojson{{"type", "unix"}, {"path", h.socket}}
                                             : ojson{{"type", "inet"}, {"host", h.name},
                                                     {"port", h.port.empty() ? "10809" : h.port}};
        s = {{"driver", "nbd"}, {"server", server}};
        if (!src.name.empty()) s["export"] = src.name;
    } else if (type == "network" && (src.protocol == "http" || src.protocol == "https")) {
        if (src.hosts.empty()) {
            unsupported("{} disk '{}' has no host", src.protocol, disk.target_dev);
            return format_node;
        }
        const auto& h = src.hosts.front();
        std::string url = fmt::format("{}://{}{}{}", src.protocol, h.name, h.port.empty() ? "" : ":" + h.port,
                                      src.name.starts_with('/') ? src.name : "/" + src.name);
        s = {{"driver", src.protocol}, {"url", url}};
    } else {
        unsupported("disk '{}': source type '{}'{} is not supported", disk.target_dev, type,
                    src.protocol.empty() ? "" : " protocol '" + src.protocol + "'");
        return format_node;
    }
    s["node-name"] = storage;
    s["auto-read-only"] = true;
    if (disk.discard == "unmap") s["discard"] = "unmap";
    if (cache.direct || cache.no_flush) s["cache"] = {{"direct", cache.direct}, {"no-flush", cache.no_flush}};
    add("-blockdev", s.dump());

    ojson f = {{"node-name", format_node}, {"read-only", readonly}};
    if (disk.discard == "unmap") f["discard"] = "unmap";
    if (cache.direct || cache.no_flush) f["cache"] = {{"direct", cache.direct}, {"no-flush", cache.no_flush}};
    if (!disk.detect_zeroes.empty()) f["detect-zeroes"] = disk.detect_zeroes;
    f["driver"] = fmt_name;
    f["file"] = storage;
    if (format_has_backing(fmt_name)) {
        if (backing_node) f["backing"] = *backing_node;
        else if (backing_none) f["backing"] = nullptr;
    }
    add("-blockdev", f.dump());
    return format_node;
}

void Builder::disk_device(const conf::Disk& disk, const std::string& format_node) {
    const std::string& bus = disk.target_bus;
    const auto& addr = disk.info.address;
    bool cdrom = disk.device == "cdrom";
    std::string args;
    if (bus == "virtio") {
        if (cdrom) {
            unsupported("disk '{}': a cdrom cannot be on the virtio bus", disk.target_dev);
            return;
        }
        std::string drv = kind_ == MachineKind::Microvm ? "virtio-blk-device" : "virtio-blk-pci";
        if (!device_known(drv)) return;
        args = drv + iothread_option(disk.driver_iothread, "disk '" + disk.target_dev + "'");
    } else if (bus == "sata" || bus == "ide") {
        if (kind_ == MachineKind::Microvm) {
            unsupported("disk '{}': the microvm machine has no {} bus", disk.target_dev, bus);
            return;
        }
        args = cdrom ? "ide-cd" : "ide-hd";
        if (bus == "sata") args += fmt::format(",bus=ide.{}", addr.unit);
        else args += fmt::format(",bus=ide.{},unit={}", addr.bus, addr.unit);
    } else if (bus == "scsi") {
        args = cdrom ? "scsi-cd" : "scsi-hd";
        args += fmt::format(",bus=scsi{}.0,channel={},scsi-id={},lun={}", addr.controller, addr.bus, addr.target,
                            addr.unit);
    } else if (bus == "usb") {
        // On its controller's port, as the USB address says (live XML = QEMU).
        args = "usb-storage" + usb_bus_opts(disk.info);
    } else if (bus == "fdc") {
        unsupported("floppy disks are not supported");
        return;
    } else {
        unsupported("disk '{}': bus '{}' is not supported", disk.target_dev, bus);
        return;
    }
    if (bus != "virtio" && !disk.driver_iothread.empty())
        unsupported("disk '{}': IOThreads only available for virtio pci and virtio ccw disk", disk.target_dev);
    if (!format_node.empty()) args += ",drive=" + format_node;
    if (!disk.serial.empty()) args += ",serial=" + qemu_opt_escape(disk.serial);
    if (disk.shareable) args += ",share-rw=on";
    if (!disk.cache.empty() && bus != "usb") {
        auto cache = cache_mode(disk.cache);
        if (!cache) unsupported("disk '{}': cache mode '{}' is not supported", disk.target_dev, disk.cache);
        else args += fmt::format(",write-cache={}", cache->writeback ? "on" : "off");
    }
    add("-device", args + device_suffix(disk.info));
}

void Builder::disks() {
    for (const auto& disk : def_.devices.disks) one_disk(disk);
}

void Builder::one_disk(const conf::Disk& disk) {
    if (disk.transient) unsupported("disk '{}': transient disks are not supported", disk.target_dev);
    if (disk.type == "volume") {
        unsupported("disk '{}': storage pool volumes must be resolved to a path before start", disk.target_dev);
        return;
    }
    if (disk.device == "lun" || disk.device == "floppy") {
        unsupported("disk '{}': device '{}' is not supported", disk.target_dev, disk.device);
        return;
    }
    std::string format_node;
    if (!disk.source.empty()) {
        bool readonly = disk.readonly || disk.device == "cdrom";
        format_node = blockdev_layer(disk.type, disk.driver_type, disk.source, &disk.backing, readonly, disk);
    } else if (disk.device != "cdrom") {
        unsupported("disk '{}' has no source", disk.target_dev);
        return;
    }
    disk_device(disk, format_node);
}

Result<std::vector<std::string>> Builder::build_disk(const conf::Disk& disk, std::string node_prefix) {
    node_prefix_ = std::move(node_prefix);
    one_disk(disk);
    if (error_) return std::unexpected(*error_);
    return std::move(argv_);
}

// The -netdev of one NIC (see nic_uses_tap in command_line.hpp); empty after
// an error.
std::string Builder::netdev(const conf::Interface& nic, const std::string& alias, const std::string& id) {
    if (nic.type == "user") {
        if (nic.backend_type != "passt") return "user,id=" + id;
        return fmt::format("stream,id={},server=off,addr.type=unix,addr.path={}", id,
                           qemu_opt_escape(passt_socket_path(opts_.runtime_prefix, alias)));
    }
    if (!nic_uses_tap(nic)) {
        unsupported("interface '{}': type '{}' is not supported by the QEMU driver", nic.mac, nic.type);
        return "";
    }
    // Descriptor numbers by name; every queue must have one.
    auto numbers = [&](auto name_of) -> std::optional<std::vector<std::string>> {
        std::vector<std::string> out;
        for (unsigned q = 0; q < nic_queues(nic); ++q) {
            auto it = opts_.passed_fds.find(name_of(alias, q));
            if (it == opts_.passed_fds.end()) return std::nullopt;
            out.push_back(opts_.fds_by_name ? it->first : std::to_string(it->second));
        }
        return out;
    };
    auto taps = numbers(nic_tap_fd_name);
    if (!taps) {
        unsupported("interface '{}' (type '{}'): no tap descriptor was prepared for it", nic.mac, nic.type);
        return "";
    }
    const bool multi = taps->size() > 1;
    std::string out = fmt::format("tap,id={},{}={}", id, multi ? "fds" : "fd", fmt::join(*taps, ":"));
    if (opts_.passed_fds.contains(nic_vhost_fd_name(alias, 0))) {
        if (!nic.model.empty() && nic.model != "virtio") {
            unsupported("interface '{}': vhost-net is only supported for model 'virtio'", nic.mac);
            return "";
        }
        auto vhost = numbers(nic_vhost_fd_name);
        if (!vhost) {
            unsupported("interface '{}': a vhost-net descriptor is missing for one of its queues", nic.mac);
            return "";
        }
        out += fmt::format(",vhost=on,{}={}", multi ? "vhostfds" : "vhostfd", fmt::join(*vhost, ":"));
    }
    return out;
}

void Builder::interfaces() {
    for (const auto& nic : def_.devices.interfaces) one_nic(nic);
}

Result<std::vector<std::string>> Builder::build_nic(const conf::Interface& nic) {
    one_nic(nic);
    if (error_) return std::unexpected(*error_);
    return std::move(argv_);
}

void Builder::one_nic(const conf::Interface& nic) {
    std::string alias = nic.info.alias.empty() ? "net0" : nic.info.alias;
    std::string netdev_id = nic_netdev_id(alias);
    std::string model = nic.model.empty() ? "virtio" : nic.model;
    std::string drv;
    if (model == "virtio") drv = kind_ == MachineKind::Microvm ? "virtio-net-device" : "virtio-net-pci";
    else if (model == "e1000" || model == "e1000e" || model == "rtl8139") drv = model;
    else {
        unsupported("interface model '{}' is not supported", model);
        return;
    }
    const unsigned queues = nic_queues(nic);
    if (queues > 1 && model != "virtio") {
        unsupported("interface '{}': multiqueue (<driver queues='{}'>) needs model 'virtio'", nic.mac, queues);
        return;
    }
    if (queues > 1 && !nic_uses_tap(nic)) {
        unsupported("interface '{}': multiqueue needs a tap (type network, bridge, ethernet or direct), not type '{}'",
                    nic.mac, nic.type);
        return;
    }
    if (!nic.mtu.empty() && model != "virtio") {
        unsupported("interface '{}': setting the MTU is only supported with model 'virtio'", nic.mac);
        return;
    }
    std::string backend = netdev(nic, alias, netdev_id);
    if (backend.empty()) return;
    add("-netdev", backend);
    if (!device_known(drv)) return;
    std::string args = fmt::format("{},netdev={}", drv, netdev_id);
    // virtio-net: one vector per rx and tx queue, plus config and control.
    if (queues > 1) args += fmt::format(",mq=on,vectors={}", 2 * queues + 2);
    if (!nic.mac.empty()) args += ",mac=" + nic.mac;
    if (!nic.mtu.empty()) args += ",host_mtu=" + nic.mtu;
    // <link state='down'>: QEMU has no option for it; the driver sends
    // set_link before the vCPUs run.
    add("-device", args + device_suffix(nic.info));
}

std::optional<std::string> Builder::chardev_backend(const conf::CharDev& c, const std::string& id, bool first_serial) {
    std::string out;
    if (c.type == "pty") {
        // QEMU opens the pty; the driver reads its path with query-chardev
        // for the live XML, and the console attaches to it.
        out = fmt::format("pty,id={}", id);
    } else if (c.type == "file") {
        out = fmt::format("file,id={},path={}", id, qemu_opt_escape(c.source_path));
        if (c.source_append == "on") out += ",append=on";
    } else if (c.type == "unix") {
        std::string path = c.source_path.empty() ? serial_socket_path(opts_.runtime_prefix, c.info.alias) : c.source_path;
        out = fmt::format("socket,id={},path={}", id, qemu_opt_escape(path));
        if (c.source_mode != "connect") out += ",server=on,wait=off";
    } else if (c.type == "tcp") {
        out = fmt::format("socket,id={},host={},port={}", id, qemu_opt_escape(c.source_host), c.source_service);
        if (c.source_mode == "bind") out += ",server=on,wait=off";
        if (c.protocol_type == "telnet") out += ",telnet=on";
    } else if (c.type == "udp") {
        out = fmt::format("udp,id={},host={},port={}", id, qemu_opt_escape(c.source_host), c.source_service);
        if (!c.source_bind_host.empty()) out += ",localaddr=" + qemu_opt_escape(c.source_bind_host);
        if (!c.source_bind_service.empty()) out += ",localport=" + c.source_bind_service;
    } else if (c.type == "null") {
        out = fmt::format("null,id={}", id);
    } else if (c.type == "spicevmc" && c.kind == "channel") {
        // The SPICE agent's channel (the target name is checked by chardevs()).
        if (!has_spice()) {
            unsupported("a spicevmc channel needs SPICE graphics (<graphics type='spice'>)");
            return std::nullopt;
        }
        out = fmt::format("spicevmc,id={},name=vdagent", id);
    } else if (c.type == "qemu-vdagent" && c.kind == "channel") {
        // QEMU's own agent: clipboard and absolute mouse for VNC clients.
        out = fmt::format("qemu-vdagent,id={},name=vdagent", id);
        if (!c.vdagent_copypaste.empty()) out += fmt::format(",clipboard={}", c.vdagent_copypaste == "yes" ? "on" : "off");
        if (!c.vdagent_mouse.empty()) out += fmt::format(",mouse={}", c.vdagent_mouse == "client" ? "on" : "off");
    } else {
        unsupported("character device type '{}' is not supported by the QEMU driver", c.type);
        return std::nullopt;
    }
    if (!c.log_file.empty()) {
        out += ",logfile=" + qemu_opt_escape(c.log_file);
        out += c.log_append == "off" ? ",logappend=off" : ",logappend=on";
    } else if (first_serial && !opts_.console_log.empty()) {
        out += ",logfile=" + qemu_opt_escape(opts_.console_log.string()) + ",logappend=on";
    }
    return out;
}

// One <channel>: its -chardev and its virtserialport.
void Builder::channel(const conf::CharDev& ch) {
    if (ch.target_type != "virtio") {
        unsupported("channel target type '{}' is not supported", ch.target_type);
        return;
    }
    if ((ch.type == "spicevmc" || ch.type == "qemu-vdagent") && ch.target_name != "com.redhat.spice.0") {
        unsupported("a {} channel must be named 'com.redhat.spice.0' (found '{}')", ch.type, ch.target_name);
        return;
    }
    std::string id = channel_chardev_id(ch);
    auto backend = chardev_backend(ch, id, false);
    if (!backend) return;
    add("-chardev", *backend);
    std::string args = "virtserialport";
    if (ch.info.address.type == "virtio-serial")
        args += fmt::format(",bus=virtio-serial{}.{},nr={}", ch.info.address.controller, ch.info.address.bus,
                            ch.info.address.port.empty() ? "1" : ch.info.address.port);
    args += fmt::format(",chardev={},id={}", id, ch.info.alias);
    if (!ch.target_name.empty()) args += ",name=" + qemu_opt_escape(ch.target_name);
    add("-device", args);
}

void Builder::chardevs() {
    bool first = true;
    for (const auto& s : def_.devices.serials) {
        std::string alias = s.info.alias.empty() ? fmt::format("serial{}", s.target_port.value_or(0)) : s.info.alias;
        std::string id = "char" + alias;
        auto backend = chardev_backend(s, id, first);
        first = false;
        if (!backend) continue;
        std::string model = !s.target_model.empty() ? s.target_model
                            : s.target_type == "pci-serial" ? "pci-serial"
                            : s.target_type == "usb-serial" ? "usb-serial"
                                                            : "isa-serial";
        if (!device_known(model)) continue;
        add("-chardev", *backend);
        std::string args = fmt::format("{},chardev={}", model, id);
        if (model == "isa-serial" && s.target_port) args += fmt::format(",index={}", *s.target_port);
        add("-device", args + device_suffix(s.info));
    }
    for (std::size_t i = 0; i < def_.devices.consoles.size(); ++i) {
        const auto& c = def_.devices.consoles[i];
        bool serial_alias = c.target_type.empty() || c.target_type == "serial";
        if (serial_alias) {
            // The first console is the first serial port itself (libvirt).
            if (i == 0 && !def_.devices.serials.empty()) continue;
            unsupported("a serial console needs a <serial> device");
            continue;
        }
        if (c.target_type != "virtio") {
            unsupported("console target type '{}' is not supported", c.target_type);
            continue;
        }
        std::string alias = c.info.alias.empty() ? fmt::format("console{}", i) : c.info.alias;
        std::string id = "char" + alias;
        auto backend = chardev_backend(c, id, def_.devices.serials.empty() && first);
        first = false;
        if (!backend) continue;
        add("-chardev", *backend);
        std::string args = fmt::format("virtconsole,chardev={},id={}", id, alias);
        if (c.info.address.type == "virtio-serial")
            args += fmt::format(",bus=virtio-serial{}.{},nr={}", c.info.address.controller, c.info.address.bus,
                                c.info.address.port.empty() ? "0" : c.info.address.port);
        add("-device", args);
    }
    for (const auto& ch : def_.devices.channels) channel(ch);
    if (!def_.devices.parallels.empty()) unsupported("parallel ports are not supported");
}

// ",bus=usb.0,port=N" of a USB device: the controller by its alias (libvirt's
// usb, usb1, ...) and the port the address gives.
std::string Builder::usb_bus_opts(const conf::DeviceInfo& info) const {
    std::string bus = "usb.0";
    if (info.address.type == "usb") {
        for (const auto& c : def_.devices.controllers)
            if (c.type == "usb" && c.index == info.address.bus && !c.info.alias.empty()) bus = c.info.alias + ".0";
    }
    std::string out = ",bus=" + bus;
    if (info.address.type == "usb" && !info.address.port.empty()) out += ",port=" + info.address.port;
    return out;
}

void Builder::input(const conf::Input& in) {
    if (in.bus == "ps2" || (in.bus.empty() && in.type != "tablet")) return;  // built into pc/q35
    std::string drv;
    if (in.bus == "usb") drv = in.type == "tablet" ? "usb-tablet" : in.type == "mouse" ? "usb-mouse" : "usb-kbd";
    else if (in.bus == "virtio")
        drv = in.type == "tablet" ? "virtio-tablet-pci" : in.type == "mouse" ? "virtio-mouse-pci" : "virtio-keyboard-pci";
    else {
        unsupported("input type '{}' on bus '{}' is not supported", in.type, in.bus);
        return;
    }
    std::string args = drv + device_suffix(in.info);
    if (in.bus == "usb") args += usb_bus_opts(in.info);
    add("-device", args);
}

void Builder::inputs_graphics_video() {
    // USB hubs first (libvirt adds them when the USB devices outnumber the
    // controller's ports): the devices behind them name ports like 1.2.
    for (const auto& h : def_.devices.hubs) {
        if (h.type != "usb") {
            unsupported("hub type '{}' is not supported", h.type);
            continue;
        }
        if (device_known("usb-hub")) add("-device", fmt::format("usb-hub,id={}", h.info.alias) + usb_bus_opts(h.info));
    }
    for (const auto& in : def_.devices.inputs) input(in);
    audio_backends();
    const auto& gs = def_.devices.graphics;
    for (std::size_t i = 0; i < gs.size(); ++i) {
        if (gs[i].type == "vnc") vnc(gs[i], i);
        else if (gs[i].type == "spice") spice(gs[i], i);
        else unsupported("graphics type '{}' is not supported (only vnc and spice)", gs[i].type);
    }
    if (gs.empty()) add("-display", "none");
    videos();
    sounds();
    redirdevs();
}

// The secret object holding a graphics password (read by QEMU from the
// descriptor the driver passes); its id, "" when there is no password.
std::string Builder::graphics_password(const conf::Graphics& g, std::size_t index) {
    if (g.passwd.empty()) return "";
    if (!g.passwd_valid_to.empty()) {
        unsupported("graphics passwdValidTo is not supported");
        return "";
    }
    auto fd = opts_.passed_fds.find(graphics_secret_fd_name(index));
    if (fd == opts_.passed_fds.end()) {
        unsupported("{} graphics: no descriptor was prepared for its password", g.type);
        return "";
    }
    std::string id = fmt::format("graphics{}-secret", index);
    ojson o = {{"qom-type", "secret"}, {"id", id}, {"format", "raw"}, {"file", fmt::format("/dev/fd/{}", fd->second)}};
    add("-object", o.dump());
    return id;
}

// Listen address of a graphics device (libvirt's default: 127.0.0.1), in
// QEMU's spelling ([::1] for IPv6).
std::string listen_host(const conf::Graphics& g, bool brackets) {
    std::string listen = g.listen.empty() ? "127.0.0.1" : g.listen;
    for (const auto& l : g.listens)
        if (l.type == "address" && !l.address.empty()) listen = l.address;
    if (brackets && listen.find(':') != std::string::npos) return "[" + listen + "]";
    return listen;
}

// What neither VNC nor SPICE implement here, refused by name.
std::optional<std::string> unsupported_graphics_setting(const conf::Graphics& g) {
    if (!g.gl_enable.empty() || !g.gl_rendernode.empty()) return "<gl>";
    if (!g.websocket.empty()) return "websocket";
    for (const auto& l : g.listens)
        if (l.type == "network") return "<listen type='network'>";
    return std::nullopt;
}

void Builder::vnc(const conf::Graphics& g, std::size_t index) {
    if (auto what = unsupported_graphics_setting(g)) {
        unsupported("VNC graphics: {} is not supported", *what);
        return;
    }
    const std::string secret = graphics_password(g, index);
    if (!g.passwd.empty() && secret.empty()) return;
    std::string args;
    const bool socket = !g.listens.empty() && g.listens.front().type == "socket";
    const bool none = !g.listens.empty() && g.listens.front().type == "none";
    if (socket) {
        args = "unix:" + qemu_opt_escape(g.listens.front().socket);
    } else if (none) {
        args = "none";
    } else if (g.autoport == "yes" && util::parse_number<int>(g.port).value_or(0) < 5900) {
        args = fmt::format("{}:0,to=100", listen_host(g, true));  // no port chosen: QEMU picks a free display
    } else {
        const int port = util::parse_number<int>(g.port).value_or(0);
        if (port < 5900) {
            unsupported("VNC port {} is below 5900", g.port);
            return;
        }
        args = fmt::format("{}:{}", listen_host(g, true), port - 5900);
    }
    if (!g.share_policy.empty()) args += ",share=" + g.share_policy;
    if (!secret.empty()) args += ",password-secret=" + secret;
    add("-vnc", args);
    if (!g.keymap.empty()) add("-k", g.keymap);
}

void Builder::spice(const conf::Graphics& g, std::size_t index) {
    if (auto what = unsupported_graphics_setting(g)) {
        unsupported("SPICE graphics: {} is not supported", *what);
        return;
    }
    if (!g.tls_port.empty() && g.tls_port != "-1") {
        unsupported("spice TLS port set in XML configuration, but TLS is disabled in qemu.conf");
        return;
    }
    if (g.default_mode == "secure") {
        unsupported("spice defaultMode secure requested in XML configuration, but TLS connection is not available");
        return;
    }
    if (!g.listens.empty() && (g.listens.front().type == "socket" || g.listens.front().type == "none")) {
        unsupported("SPICE graphics: <listen type='{}'> is not supported (give it a port or autoport='yes')", g.listens.front().type);
        return;
    }
    if (!g.share_policy.empty()) {
        unsupported("SPICE graphics: sharePolicy is not supported");
        return;
    }
    const int port = util::parse_number<int>(g.port).value_or(0);
    if (port <= 0) {
        unsupported("SPICE graphics: no port was chosen for it (autoport)");
        return;
    }
    const std::string secret = graphics_password(g, index);
    if (!g.passwd.empty() && secret.empty()) return;
    std::string args = fmt::format("port={},addr={}", port, listen_host(g, false));
    args += secret.empty() ? ",disable-ticketing=on" : ",password-secret=" + secret;
    if (!g.image_compression.empty()) args += ",image-compression=" + g.image_compression;
    args += ",seamless-migration=on";
    add("-spice", args);
    if (!g.keymap.empty()) add("-k", g.keymap);
}

// The <audio> backends (-audiodev, id audio<N>), when something plays on
// them: a sound device, or SPICE (it carries the guest's audio).
void Builder::audio_backends() {
    const auto& d = def_.devices;
    if (d.sounds.empty() && !has_spice()) return;
    for (const auto& a : d.audios) {
        if (a.type != "none" && a.type != "spice") {
            unsupported("audio backend type '{}' is not supported (only none and spice)", a.type);
            continue;
        }
        if (a.type == "spice" && !has_spice()) {
            unsupported("Spice audio is not supported without spice graphics");
            continue;
        }
        add("-audiodev", ojson{{"id", "audio" + a.id}, {"driver", a.type}}.dump());
    }
}

void Builder::videos() {
    const auto& vs = def_.devices.videos;
    for (std::size_t i = 0; i < vs.size(); ++i) {
        const auto& v = vs[i];
        std::string drv;
        if (v.model_type == "none") continue;
        if (v.model_type == "vga") drv = "VGA";
        else if (v.model_type == "cirrus") drv = "cirrus-vga";
        else if (v.model_type == "virtio") drv = i == 0 ? "virtio-vga" : "virtio-gpu-pci";
        else if (v.model_type == "qxl") drv = i == 0 ? "qxl-vga" : "qxl";
        else if (v.model_type == "bochs") drv = "bochs-display";
        else if (v.model_type == "ramfb") drv = "ramfb";
        else {
            unsupported("video model '{}' is not supported", v.model_type);
            continue;
        }
        if (v.accel3d == "yes") {
            unsupported("video model '{}': 3D acceleration is not supported", v.model_type);
            continue;
        }
        if (!device_known(drv)) continue;
        auto kib = [](const std::string& s) { return std::strtoull(s.c_str(), nullptr, 10); };
        std::string args = drv + device_suffix(v.info);
        if (v.model_type == "qxl") {
            // Sizes in bytes (ram, vram), MiB (vram64, vgamem), as libvirt gives them.
            if (!v.heads.empty()) args += ",max_outputs=" + v.heads;
            if (!v.ram.empty()) args += fmt::format(",ram_size={}", kib(v.ram) * 1024);
            if (!v.vram.empty()) args += fmt::format(",vram_size={}", kib(v.vram) * 1024);
            args += fmt::format(",vram64_size_mb={}", kib(v.vram64) / 1024);
            if (!v.vgamem.empty() && i == 0) args += fmt::format(",vgamem_mb={}", kib(v.vgamem) / 1024);
        } else if (v.model_type == "vga" && !v.vram.empty()) {
            args += fmt::format(",vgamem_mb={}", kib(v.vram) / 1024);
        } else if (v.model_type == "bochs" && !v.vram.empty()) {
            args += fmt::format(",vgamem={}", kib(v.vram) * 1024);
        } else if (v.model_type == "virtio" && !v.heads.empty() && v.heads != "1") {
            args += ",max_outputs=" + v.heads;
        }
        add("-device", args);
    }
}

// Sound cards; HDA controllers get one duplex codec, as libvirt's. Each
// plays on its <audio> backend (the first one when it names none).
void Builder::sounds() {
    const auto& d = def_.devices;
    for (const auto& s : d.sounds) {
        std::string audio = s.audio_id.empty() ? (d.audios.empty() ? "" : d.audios.front().id) : s.audio_id;
        if (audio.empty() || std::ranges::none_of(d.audios, [&](const conf::Audio& a) { return a.id == audio; })) {
            unsupported("sound model '{}': no audio backend with id '{}'", s.model, audio);
            continue;
        }
        const std::string audiodev = "audio" + audio;
        if (s.model == "ich9" || s.model == "ich6") {
            const std::string drv = s.model == "ich9" ? "ich9-intel-hda" : "intel-hda";
            if (!device_known(drv) || !device_known("hda-duplex")) continue;
            add("-device", drv + device_suffix(s.info));
            add("-device", fmt::format("hda-duplex,id={}-codec0,bus={}.0,cad=0,audiodev={}", s.info.alias, s.info.alias, audiodev));
        } else if (s.model == "ac97" || s.model == "es1370") {
            const std::string drv = s.model == "ac97" ? "AC97" : "ES1370";
            if (!device_known(drv)) continue;
            add("-device", fmt::format("{},audiodev={}", drv, audiodev) + device_suffix(s.info));
        } else {
            unsupported("sound model '{}' is not supported (ich9, ich6, ac97 and es1370 are)", s.model);
        }
    }
}

// USB redirection: a spicevmc channel of the SPICE session, or a tcp socket.
void Builder::redirdevs() {
    for (const auto& r : def_.devices.redirdevs) {
        const std::string id = "char" + r.info.alias;
        if (r.type == "spicevmc") {
            if (!has_spice()) {
                unsupported("USB redirection over spicevmc needs SPICE graphics (<graphics type='spice'>)");
                continue;
            }
            add("-chardev", fmt::format("spicevmc,id={},name=usbredir", id));
        } else if (r.type == "tcp") {
            if (r.protocol == "telnets" || r.protocol == "tls") {
                unsupported("redirdev protocol '{}' is not supported", r.protocol);
                continue;
            }
            std::string args = fmt::format("socket,id={},host={},port={}", id, qemu_opt_escape(r.source_host), r.source_service);
            if (r.source_mode == "bind") args += ",server=on,wait=off";
            if (r.protocol == "telnet") args += ",telnet=on";
            add("-chardev", args);
        } else {
            unsupported("redirdev type '{}' is not supported", r.type);
            continue;
        }
        if (!device_known("usb-redir")) continue;
        std::string args = fmt::format("usb-redir,chardev={},id={}", id, r.info.alias) + usb_bus_opts(r.info);
        if (r.info.boot_order) args += fmt::format(",bootindex={}", *r.info.boot_order);
        add("-device", args);
    }
}

// SMBIOS tables from <sysinfo> (with <smbios mode='sysinfo'/>), as -smbios
// type=0 (BIOS), 1 (system), 2 (base boards), 3 (chassis), 11 (OEM strings).
void Builder::smbios() {
    const std::string& mode = def_.os.smbios_mode;
    if (mode.empty() || mode == "emulate") return;
    if (mode == "host") {
        unsupported("smbios mode 'host' is not supported");
        return;
    }
    const auto& si = def_.sysinfo;
    if (!si.present) {
        unsupported("Domain '{}' sysinfo are not available", def_.name);
        return;
    }
    auto table = [&](int type, const std::vector<conf::SysinfoEntry>& entries) {
        if (entries.empty()) return;
        std::string args = fmt::format("type={}", type);
        for (const auto& e : entries) args += fmt::format(",{}={}", e.name, qemu_opt_escape(e.value));
        add("-smbios", args);
    };
    table(0, si.bios);
    table(1, si.system);
    for (const auto& bb : si.base_boards) table(2, bb);
    table(3, si.chassis);
    for (const auto& s : si.oem_strings) add("-smbios", "type=11,value=" + qemu_opt_escape(s));
}

void Builder::rng(const conf::Rng& r) {
    const std::string obj = rng_object_id(r);
    ojson o;
    if (r.backend_model == "random") {
        o = {{"qom-type", "rng-random"}, {"id", obj}, {"filename", r.backend_path.empty() ? "/dev/urandom" : r.backend_path}};
    } else if (r.backend_model == "builtin") {
        o = {{"qom-type", "rng-builtin"}, {"id", obj}};
    } else {
        unsupported("RNG backend '{}' is not supported", r.backend_model);
        return;
    }
    add("-object", o.dump());
    std::string args = fmt::format("{},rng={}", kind_ == MachineKind::Microvm ? "virtio-rng-device" : "virtio-rng-pci", obj);
    if (!r.rate_bytes.empty())
        args += fmt::format(",max-bytes={},period={}", r.rate_bytes, r.rate_period.empty() ? "1000" : r.rate_period);
    add("-device", args + device_suffix(r.info));
}

void Builder::watchdog(const conf::Watchdog& w) {
    if (w.model != "i6300esb" && w.model != "ib700") {
        unsupported("watchdog model '{}' is not supported", w.model);
        return;
    }
    add("-device", w.model + device_suffix(w.info));
    const std::string action = w.action.empty() ? "reset" : w.action;
    if (action == "dump") unsupported("watchdog action 'dump' is not supported");
    else add("-action", "watchdog=" + action);
}

Result<std::vector<std::string>> Builder::build_device(const conf::PluggableDevice& dev) {
    std::visit([this](const auto& d) { one_device(d); }, dev);
    if (error_) return std::unexpected(*error_);
    return std::move(argv_);
}

void Builder::misc_devices() {
    const auto& d = def_.devices;
    bool mmio = kind_ == MachineKind::Microvm;
    if (d.memballoon && d.memballoon->model == "virtio") {
        std::string args = mmio ? "virtio-balloon-device" : "virtio-balloon-pci";
        args += device_suffix(d.memballoon->info);
        if (d.memballoon->autodeflate == "on") args += ",deflate-on-oom=on";
        if (d.memballoon->free_page_reporting == "on") args += ",free-page-reporting=on";
        add("-device", args);
    } else if (d.memballoon && d.memballoon->model != "none") {
        unsupported("memballoon model '{}' is not supported", d.memballoon->model);
    }
    for (const auto& r : d.rngs) rng(r);
    for (const auto& p : d.panics) {
        if (p.model.empty() || p.model == "isa") {
            std::string args = "pvpanic" + device_suffix(p.info);
            if (p.info.address.type == "isa" && !p.info.address.iobase.empty())
                args += fmt::format(",ioport={}", std::strtoul(p.info.address.iobase.c_str(), nullptr, 0));
            if (device_known("pvpanic")) add("-device", args);
        } else if (p.model == "pvpanic") {
            if (device_known("pvpanic-pci")) add("-device", "pvpanic-pci" + device_suffix(p.info));
        } else {
            unsupported("panic model '{}' is not supported", p.model);
        }
    }
    for (const auto& w : d.watchdogs) watchdog(w);
    if (!d.filesystems.empty()) unsupported("filesystem passthrough is not supported yet");
}

// An emulated TPM: swtpm (started by the driver, qemu/swtpm.hpp) listens on
// its control socket beside the other runtime sockets.
void Builder::tpms() {
    for (const auto& t : def_.devices.tpms) {
        if (t.backend_type != "emulator") {
            unsupported("TPM backend type '{}' is not supported (use <backend type='emulator'/>)", t.backend_type);
            continue;
        }
        const std::string alias = t.info.alias.empty() ? "tpm0" : t.info.alias;
        for (auto& a : tpm_arguments(t, swtpm_socket_path(opts_.runtime_prefix, alias))) add(std::move(a));
    }
}

void Builder::sandbox() {
    add("-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    if (opts_.incoming_defer) add("-incoming", "defer");
}

Result<std::vector<std::string>> Builder::build() {
    add(opts_.emulator.string());
    if (auto m = memory_args(def_, opts_.memory_host)) memory_ = std::move(*m);
    else error_ = m.error();
    identity();
    machine();
    cpu_memory();
    monitor();
    clock_and_lifecycle();
    boot();
    controllers();
    disks();
    interfaces();
    chardevs();
    tpms();
    inputs_graphics_video();
    misc_devices();
    if (memory_)  // virtio-mem devices sit on PCI buses the controllers made
        for (const auto& a : memory_->virtio_mems) add(a);
    smbios();
    sandbox();
    if (error_) return std::unexpected(*error_);
    return std::move(argv_);
}

}  // namespace

namespace {

// -smp brings up the first vCPUs: the enabled ones of <vcpus> must be those.
Status check_vcpus_startable(const conf::DomainDef& def) {
    const auto& states = def.vcpu_states;
    const auto disabled = std::ranges::find(states, false, &conf::VcpuState::enabled);
    const auto later = std::find_if(disabled, states.end(), [](const conf::VcpuState& st) { return st.enabled; });
    if (later == states.end()) return {};
    return fail(ErrorCode::Unsupported,
                "unsupported configuration: vCPU {} is enabled after the disabled vCPU {}: vireo starts the first vCPUs of <vcpus>; "
                "enable vCPUs in id order (setvcpu --config) or plug this one after the start (setvcpu --live)",
                later - states.begin(), disabled - states.begin());
}

}  // namespace

Result<std::vector<std::string>> build_command_line(const conf::DomainDef& def, const CommandLineOptions& opts) {
    VIREO_TRY(check_vcpus_startable(def));
    Builder b(def, opts);
    return b.build();
}

namespace {

// "a,b=c,,d" split at single commas (",," is an escaped comma).
std::vector<std::string> split_qemu_opts(std::string_view opts) {
    std::vector<std::string> parts(1);
    for (std::size_t i = 0; i < opts.size(); ++i) {
        if (opts[i] != ',') parts.back() += opts[i];
        else if (i + 1 < opts.size() && opts[i + 1] == ',') parts.back() += opts[i++];
        else parts.emplace_back();
    }
    return parts;
}

// QMP wants typed properties where the command line has text: the integer
// and boolean properties of the disk devices disk_device writes and of the
// NIC devices one_nic writes.
nlohmann::json device_property(std::string_view key, const std::string& value) {
    static constexpr std::array<std::string_view, 8> ints{"bootindex", "scsi-id", "lun", "channel", "unit", "vectors", "host_mtu", "nr"};
    static constexpr std::array<std::string_view, 3> bools{"share-rw", "multifunction", "mq"};
    if (std::ranges::find(ints, key) != ints.end()) return std::strtoll(value.c_str(), nullptr, 10);
    if (std::ranges::find(bools, key) != bools.end()) return value == "on";
    return value;
}

}  // namespace

Result<nlohmann::json> device_json(std::string_view opts) {
    const auto parts = split_qemu_opts(opts);
    nlohmann::json out = nlohmann::json::object();
    out["driver"] = parts.front();
    for (std::size_t i = 1; i < parts.size(); ++i) {
        const auto eq = parts[i].find('=');
        if (eq == std::string::npos) return fail(ErrorCode::Internal, "device option '{}' has no value", parts[i]);
        const std::string key = parts[i].substr(0, eq);
        out[key] = device_property(key, parts[i].substr(eq + 1));
    }
    return out;
}

namespace {

// One device's command line arguments as QMP arguments: the JSON values of
// `json_flag` (-blockdev, -object) in order, its -device as device_add
// arguments, and the other flag/value pairs.
struct HotplugPieces {  // NOLINT(bugprone-exception-escape): as DiskHotplug
    std::vector<nlohmann::json> json;
    nlohmann::json device;
    std::vector<std::pair<std::string, std::string>> rest;
};
Result<HotplugPieces> hotplug_pieces(const std::vector<std::string>& argv, std::string_view json_flag) {
    HotplugPieces out;
    for (std::size_t i = 0; i + 1 < argv.size(); i += 2) {
        const std::string& flag = argv[i];
        const std::string& value = argv[i + 1];
        if (flag == json_flag) {
            auto j = nlohmann::json::parse(value, nullptr, false);
            if (j.is_discarded()) return fail(ErrorCode::Internal, "{} arguments are not JSON: {}", flag, value);
            out.json.push_back(std::move(j));
        } else if (flag == "-device") {
            auto j = device_json(value);
            if (!j) return std::unexpected(j.error());
            out.device = std::move(*j);
        } else {
            out.rest.emplace_back(flag, value);
        }
    }
    return out;
}

}  // namespace

Result<DiskHotplug> disk_hotplug_args(const conf::DomainDef& def, const conf::Disk& disk, const CommandLineOptions& opts,
                                      std::string node_prefix) {
    Builder b(def, opts);
    auto argv = b.build_disk(disk, std::move(node_prefix));
    if (!argv) return std::unexpected(argv.error());
    auto pieces = hotplug_pieces(*argv, "-blockdev");
    if (!pieces) return std::unexpected(pieces.error());
    if (pieces->device.is_null()) return fail(ErrorCode::Internal, "disk '{}' made no device", disk.target_dev);
    return DiskHotplug{.nodes = std::move(pieces->json), .device = std::move(pieces->device)};
}

namespace {

// A -netdev option string of a tap or user NIC ("tap,id=hostnet1,fd=net1-tap0,
// vhost=on,vhostfd=...") as netdev_add arguments: "type", then each
// property; vhost is QMP's only boolean among them.
nlohmann::json netdev_json(std::string_view opts) {
    nlohmann::json out = nlohmann::json::object();
    std::size_t pos = 0;
    bool first = true;
    while (pos <= opts.size()) {
        const std::size_t comma = std::min(opts.find(',', pos), opts.size());
        const std::string_view item = opts.substr(pos, comma - pos);
        pos = comma + 1;
        if (first) {
            out["type"] = std::string(item);
            first = false;
            continue;
        }
        const std::size_t eq = item.find('=');
        const std::string key(item.substr(0, eq));
        const std::string value(eq == std::string_view::npos ? "" : item.substr(eq + 1));
        if (key == "vhost") out[key] = value == "on";
        else out[key] = value;
    }
    return out;
}

}  // namespace

Status nic_hotpluggable(const conf::Interface& nic) {
    if (nic.type == "user" && nic.backend_type == "passt")
        return fail(ErrorCode::Unsupported,
                    "interface '{}': the passt backend cannot be hotplugged (QEMU connects to passt only at start)", nic.mac);
    return {};
}

Result<NicHotplug> nic_hotplug_args(const conf::DomainDef& def, const conf::Interface& nic, CommandLineOptions opts) {
    VIREO_TRY(nic_hotpluggable(nic));
    opts.fds_by_name = true;
    Builder b(def, opts);
    auto argv = b.build_nic(nic);
    if (!argv) return std::unexpected(argv.error());
    NicHotplug out;
    for (const auto& [name, fd] : opts.passed_fds) out.fd_names.push_back(name);
    for (std::size_t i = 0; i + 1 < argv->size(); i += 2) {
        const std::string& flag = (*argv)[i];
        const std::string& value = (*argv)[i + 1];
        if (flag == "-netdev") {
            out.netdev = netdev_json(value);
        } else if (flag == "-device") {
            auto j = device_json(value);
            if (!j) return std::unexpected(j.error());
            out.device = std::move(*j);
        }
    }
    if (out.netdev.is_null() || out.device.is_null())
        return fail(ErrorCode::Internal, "interface '{}' made no netdev or device", nic.mac);
    return out;
}

Result<nlohmann::json> chardev_json(std::string_view opts) {
    const auto parts = split_qemu_opts(opts);
    const std::string& type = parts.front();
    std::map<std::string, std::string> p;
    for (std::size_t i = 1; i < parts.size(); ++i) {
        const auto eq = parts[i].find('=');
        if (eq == std::string::npos) return fail(ErrorCode::Internal, "chardev option '{}' has no value", parts[i]);
        p[parts[i].substr(0, eq)] = parts[i].substr(eq + 1);
    }
    auto take = [&](const std::string& key) {
        auto it = p.find(key);
        if (it == p.end()) return std::string();
        std::string v = std::move(it->second);
        p.erase(it);
        return v;
    };
    auto on = [](const std::string& v) { return v == "on"; };
    const std::string id = take("id");
    if (id.empty()) return fail(ErrorCode::Internal, "chardev '{}' has no id", opts);
    nlohmann::json data = nlohmann::json::object();
    std::string qtype = type;
    if (type == "pty" || type == "null") {
        // no properties
    } else if (type == "file") {
        data["out"] = take("path");
        if (p.contains("append")) data["append"] = on(take("append"));
    } else if (type == "socket") {
        if (p.contains("path")) {
            data["addr"] = {{"type", "unix"}, {"data", {{"path", take("path")}}}};
        } else {
            data["addr"] = {{"type", "inet"}, {"data", {{"host", take("host")}, {"port", take("port")}}}};
        }
        data["server"] = p.contains("server") && on(take("server"));
        if (p.contains("wait")) data["wait"] = on(take("wait"));
        if (p.contains("telnet")) data["telnet"] = on(take("telnet"));
    } else if (type == "udp") {
        data["remote"] = {{"type", "inet"}, {"data", {{"host", take("host")}, {"port", take("port")}}}};
        if (p.contains("localaddr") || p.contains("localport"))
            data["local"] = {{"type", "inet"}, {"data", {{"host", take("localaddr")}, {"port", take("localport")}}}};
    } else if (type == "spicevmc") {
        data["type"] = take("name");
    } else if (type == "qemu-vdagent") {
        take("name");
        if (p.contains("clipboard")) data["clipboard"] = on(take("clipboard"));
        if (p.contains("mouse")) data["mouse"] = on(take("mouse"));
    } else {
        return fail(ErrorCode::Unsupported, "a character device of backend '{}' cannot be hotplugged", type);
    }
    if (p.contains("logfile")) data["logfile"] = take("logfile");
    if (p.contains("logappend")) data["logappend"] = on(take("logappend"));
    if (!p.empty()) return fail(ErrorCode::Internal, "chardev option '{}' has no QMP form", p.begin()->first);
    return nlohmann::json{{"id", id}, {"backend", {{"type", qtype}, {"data", data}}}};
}

Result<DeviceHotplug> device_hotplug_args(const conf::DomainDef& def, const conf::PluggableDevice& dev, const CommandLineOptions& opts) {
    Builder b(def, opts);
    auto argv = b.build_device(dev);
    if (!argv) return std::unexpected(argv.error());
    auto pieces = hotplug_pieces(*argv, "-object");
    if (!pieces) return std::unexpected(pieces.error());
    if (pieces->device.is_null())
        return fail(ErrorCode::Unsupported, "this device cannot be hotplugged (it has no device of its own in QEMU)");
    DeviceHotplug out{.objects = std::move(pieces->json), .chardev = nullptr, .device = std::move(pieces->device), .watchdog_action = {}};
    for (const auto& [flag, value] : pieces->rest) {
        if (flag == "-action" && value.starts_with("watchdog=")) out.watchdog_action = value.substr(std::string_view("watchdog=").size());
        if (flag == "-chardev") {
            auto j = chardev_json(value);
            if (!j) return std::unexpected(j.error());
            out.chardev = std::move(*j);
        }
    }
    return out;
}

std::string channel_chardev_id(const conf::CharDev& ch) { return "char" + ch.info.alias; }

std::string rng_object_id(const conf::Rng& r) { return "obj" + (r.info.alias.empty() ? std::string("rng0") : r.info.alias); }

std::vector<std::pair<std::string, std::string>> qemu_environment(bool malloc_hugepages,
                                                                  const char* inherited_tunables) {
    std::vector<std::pair<std::string, std::string>> env;
    if (!malloc_hugepages) return env;
    const std::string inherited = inherited_tunables ? inherited_tunables : "";
    // The user's own choice wins.
    if (inherited.find("glibc.malloc.hugetlb=") != std::string::npos) return env;
    const std::string hugetlb = "glibc.malloc.hugetlb=1";
    env.emplace_back("GLIBC_TUNABLES", inherited.empty() ? hugetlb : inherited + ":" + hugetlb);
    return env;
}

}  // namespace vireo::qemu
