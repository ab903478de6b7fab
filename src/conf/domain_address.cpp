// Device address assignment as libvirt's QEMU driver does it at define
// (x86: i440fx and q35): virtio-serial ports, PCI slots, USB ports.
//
// PCI follows libvirt's model, so that the addresses are libvirt's:
// - every PCI controller makes a bus that accepts some kinds of
//   connections (a pci-root accepts conventional PCI devices and bridges
//   with auto-assignment from slot 1; a pcie-root accepts PCIe devices only
//   at addresses given in the document, and pcie-root-ports; a root port has
//   one slot for a PCIe device or a pcie-to-pci-bridge; ...), and every
//   device connects as conventional PCI, PCIe (a virtio or e1000e device on
//   a machine with a pcie-root) or a kind of controller;
// - the chipset's own devices come first: the PIIX3 (slot 1, IDE at 1.1,
//   USB at 1.2) and the primary video at slot 2 on i440fx; the ICH9 SATA
//   controller at 1f.2, the primary video at slot 1 and ich9 sound at 1b.0
//   on q35;
// - then, in libvirt's order, PCI controllers, filesystems, NICs, sound
//   cards, other controllers (USB2 companions share a slot), virtio disks,
//   the balloon, RNGs, watchdogs, videos, virtio inputs and PCI serials each
//   take the first free slot of a bus that accepts them;
// - a first "dry run" finds which buses are missing and adds them as
//   controllers: a pcie-root-port for each PCIe device that finds no free
//   port, a root port plus a pcie-to-pci-bridge for conventional devices on
//   a PCIe machine, a pci-bridge when a PCI bus is full, and one spare root
//   port on a new q35 domain; root ports share slots (eight functions each,
//   'multifunction' on function 0);
// - a second pass assigns the addresses for real, PCI controllers first.
// Addresses the document gives are kept; two devices on one address, or a
// device on the chipset's addresses, are refused naming the device.
#include <algorithm>
#include <array>
#include <map>

#include <fmt/format.h>

#include "conf/domain.hpp"
#include "conf/domain_internal.hpp"

namespace vireo::conf {

namespace {

// ---- connection kinds (libvirt's virDomainPCIConnectFlags) -------------------

enum : unsigned {
    kHotplug = 1u << 0,
    kAutoassign = 1u << 1,
    kAggregate = 1u << 2,  // several may share a slot (pcie-root-ports)
    kIntegrated = 1u << 3,
    kPciDevice = 1u << 4,
    kPcieDevice = 1u << 5,
    kRootPort = 1u << 6,
    kSwitchUp = 1u << 7,
    kSwitchDown = 1u << 8,
    kDmiBridge = 1u << 9,
    kPcieToPciBridge = 1u << 10,
    kPciBridge = 1u << 11,
};
constexpr unsigned kTypes = kPciDevice | kPcieDevice | kRootPort | kSwitchUp | kSwitchDown | kDmiBridge | kPcieToPciBridge | kPciBridge;
constexpr unsigned kEndpoint = kPciDevice | kPcieDevice;

std::string pci_text(const DeviceAddress& a) {
    return fmt::format("{:04x}:{:02x}:{:02x}.{:x}", a.domain, a.bus, a.slot, a.function);
}

DeviceAddress pci_address(unsigned bus, unsigned slot, unsigned function) {
    DeviceAddress a;
    a.type = "pci";
    a.bus = bus;
    a.slot = slot;
    a.function = function;
    return a;
}

std::string_view connect_name(unsigned flags) {
    if (flags & kPciDevice) return "standard PCI device";
    if (flags & kPcieDevice) return "PCI Express device";
    if (flags & kRootPort) return "pcie-root-port";
    if (flags & kSwitchUp) return "pcie-switch-upstream-port";
    if (flags & kSwitchDown) return "pcie-switch-downstream-port";
    if (flags & kDmiBridge) return "dmi-to-pci-bridge";
    if (flags & kPcieToPciBridge) return "pcie-to-pci-bridge";
    if (flags & kPciBridge) return "pci-bridge";
    return "PCI device";
}

// How each device connects. `pcie` is the flags of a PCIe device on this
// machine (conventional PCI on a machine without a pcie-root).
struct ConnectFlags {
    unsigned pci = kPciDevice | kAutoassign;
    unsigned pcie = kPciDevice | kAutoassign;
    unsigned virtio = kPciDevice | kAutoassign;
};

unsigned pci_controller_flags(std::string_view model) {
    if (model == "pci-bridge") return kPciBridge;
    if (model == "dmi-to-pci-bridge") return kDmiBridge;
    if (model == "pcie-to-pci-bridge") return kPcieToPciBridge;
    if (model == "pcie-root-port") return kRootPort | kAggregate;
    if (model == "pcie-switch-upstream-port") return kSwitchUp;
    if (model == "pcie-switch-downstream-port") return kSwitchDown;
    return 0;  // pci-root, pcie-root: built into the machine
}

unsigned controller_flags(const Controller& c, const ConnectFlags& f) {
    if (c.type == "pci") return pci_controller_flags(c.model);
    if (c.type == "sata" || c.type == "ide") return f.pci;
    if (c.type == "usb") {
        if (c.model == "none") return 0;
        if (c.model == "qemu-xhci" || c.model == "nec-xhci") return f.pcie;
        return f.pci;
    }
    if (c.type == "scsi") {
        if (c.model == "virtio-scsi" || c.model == "virtio-non-transitional") return f.virtio;
        return f.pci;
    }
    if (c.type == "virtio-serial") return c.model == "virtio-transitional" ? f.pci : f.virtio;
    return 0;  // fdc
}

unsigned interface_flags(const Interface& n, const ConnectFlags& f) {
    if (n.model == "virtio") return f.virtio;
    if (n.model == "e1000e") return f.pcie;
    return f.pci;
}

unsigned sound_flags(const Sound& s, const ConnectFlags& f) {
    if (s.model == "es1370" || s.model == "ac97" || s.model == "ich6" || s.model == "ich9") return f.pci;
    return 0;
}

unsigned video_flags(const Video& v, const ConnectFlags& f) {
    if (v.model_type == "virtio") return f.virtio;
    if (v.model_type == "bochs") return f.pcie;
    if (v.model_type == "none" || v.model_type == "ramfb") return 0;
    return f.pci;
}

// A device's DeviceInfo with how it connects and how errors name it.
struct DeviceRef {
    DeviceInfo* info;
    unsigned flags;
    std::string what;
    const Controller* controller = nullptr;
};

std::string controller_name(const Controller& c) { return fmt::format("controller type='{}' index='{}'", c.type, c.index); }

// Every device with what it is, in libvirt's device iteration order.
std::vector<DeviceRef> all_devices(DomainDef& def, const ConnectFlags& f) {
    auto& d = def.devices;
    std::vector<DeviceRef> out;
    for (auto& x : d.disks) out.push_back({&x.info, x.target_bus == "virtio" ? f.virtio : 0u, fmt::format("disk '{}'", x.target_dev)});
    for (auto& x : d.interfaces) out.push_back({&x.info, interface_flags(x, f), fmt::format("interface '{}'", x.mac)});
    for (std::size_t i = 0; i < d.sounds.size(); ++i)
        out.push_back({&d.sounds[i].info, sound_flags(d.sounds[i], f), fmt::format("sound model='{}'", d.sounds[i].model)});
    for (std::size_t i = 0; i < d.videos.size(); ++i)
        out.push_back({&d.videos[i].info, video_flags(d.videos[i], f), fmt::format("video[{}] model='{}'", i + 1, d.videos[i].model_type)});
    for (auto& x : d.controllers) out.push_back({&x.info, controller_flags(x, f), controller_name(x), &x});
    for (std::size_t i = 0; i < d.serials.size(); ++i)
        out.push_back({&d.serials[i].info, d.serials[i].target_type == "pci-serial" ? f.pci : 0u, fmt::format("serial[{}]", i + 1)});
    for (std::size_t i = 0; i < d.parallels.size(); ++i) out.push_back({&d.parallels[i].info, 0u, fmt::format("parallel[{}]", i + 1)});
    for (std::size_t i = 0; i < d.channels.size(); ++i) out.push_back({&d.channels[i].info, 0u, fmt::format("channel[{}]", i + 1)});
    for (std::size_t i = 0; i < d.consoles.size(); ++i) out.push_back({&d.consoles[i].info, 0u, fmt::format("console[{}]", i + 1)});
    for (std::size_t i = 0; i < d.inputs.size(); ++i)
        out.push_back({&d.inputs[i].info, d.inputs[i].bus == "virtio" ? f.virtio : 0u,
                       fmt::format("input type='{}' bus='{}'", d.inputs[i].type, d.inputs[i].bus)});
    for (std::size_t i = 0; i < d.filesystems.size(); ++i)
        out.push_back({&d.filesystems[i].info, f.virtio, fmt::format("filesystem '{}'", d.filesystems[i].target_dir)});
    for (auto& x : d.watchdogs) out.push_back({&x.info, x.model == "i6300esb" ? f.pci : 0u, fmt::format("watchdog model='{}'", x.model)});
    if (d.memballoon) out.push_back({&d.memballoon->info, d.memballoon->model == "virtio" ? f.virtio : 0u, "memballoon"});
    for (std::size_t i = 0; i < d.rngs.size(); ++i) out.push_back({&d.rngs[i].info, f.virtio, fmt::format("rng[{}]", i + 1)});
    for (std::size_t i = 0; i < d.memories.size(); ++i)
        if (d.memories[i].model == "virtio-mem") out.push_back({&d.memories[i].info, f.virtio, fmt::format("memory[{}] model='virtio-mem'", i + 1)});
    for (std::size_t i = 0; i < d.hubs.size(); ++i) out.push_back({&d.hubs[i].info, 0u, fmt::format("hub[{}]", i + 1)});
    for (std::size_t i = 0; i < d.tpms.size(); ++i) out.push_back({&d.tpms[i].info, 0u, fmt::format("tpm[{}]", i + 1)});
    for (std::size_t i = 0; i < d.panics.size(); ++i) out.push_back({&d.panics[i].info, 0u, fmt::format("panic[{}]", i + 1)});
    for (std::size_t i = 0; i < d.redirdevs.size(); ++i) out.push_back({&d.redirdevs[i].info, 0u, fmt::format("redirdev[{}]", i + 1)});
    for (std::size_t i = 0; i < d.graphics.size(); ++i) out.push_back({&d.graphics[i].info, 0u, fmt::format("graphics[{}]", i + 1)});
    return out;
}

Error address_error(std::string_view what, std::string message) {
    return Error{ErrorCode::XmlError, fmt::format("XML error: {}: {}", what, message)};
}

// ---- the PCI address set -----------------------------------------------------------

struct PciBus {
    std::string model;
    unsigned flags = 0;  // what may connect to it
    unsigned min_slot = 0, max_slot = 31;
    std::array<std::uint8_t, 32> functions{};  // bit per function in use
    std::array<bool, 32> aggregate{};
};

void set_bus_model(PciBus& b, std::string_view model) {
    b.model = std::string(model);
    b.min_slot = 0;
    b.max_slot = 31;
    if (model == "pci-root" || model == "pci-bridge" || model == "pcie-to-pci-bridge") {
        b.flags = kAutoassign | kPciDevice | kPciBridge | kHotplug;
        b.min_slot = 1;
    } else if (model == "pcie-root") {
        b.flags = kPcieDevice | kRootPort | kDmiBridge;
        b.min_slot = 1;
    } else if (model == "dmi-to-pci-bridge") {
        b.flags = kPciDevice | kPciBridge;
    } else if (model == "pcie-root-port" || model == "pcie-switch-downstream-port") {
        b.flags = kAutoassign | kPcieDevice | kSwitchUp | kPcieToPciBridge | kHotplug;
        b.max_slot = 0;
    } else if (model == "pcie-switch-upstream-port") {
        b.flags = kSwitchDown;
    }
}

class PciSet {
public:
    explicit PciSet(bool dry_run) : dry_run_(dry_run) {}

    std::vector<PciBus> buses;

    [[nodiscard]] bool dry_run() const { return dry_run_; }
    [[nodiscard]] bool slot_in_use(unsigned bus, unsigned slot) const { return bus < buses.size() && buses[bus].functions[slot] != 0; }
    [[nodiscard]] bool fully_reserved() const {
        for (const auto& b : buses)
            for (unsigned s = b.min_slot; s <= b.max_slot; ++s)
                if (!b.functions[s]) return false;
        return true;
    }

    // Reserve one function. `from_config`: the document gave the address
    // (errors are the document's, and PCI/PCIe mismatches are allowed).
    Status reserve(DeviceAddress a, unsigned flags, bool from_config, std::string_view what) {
        if (dry_run_) VIREO_TRY(grow(a, flags));
        VIREO_TRY(validate(a, flags, from_config, what));
        PciBus& b = buses[a.bus];
        const unsigned key = (a.bus << 8) | (a.slot << 3) | a.function;
        if (b.functions[a.slot] & (1u << a.function)) {
            auto it = owners_.find(key);
            const std::string other = it == owners_.end() ? std::string("another device") : it->second;
            return std::unexpected(Error{ErrorCode::XmlError, fmt::format("XML error: PCI address {} is used twice: by {} and by {}", pci_text(a), other, what)});
        }
        if (!b.functions[a.slot] && (flags & kAggregate)) b.aggregate[a.slot] = true;
        b.functions[a.slot] |= static_cast<std::uint8_t>(1u << a.function);
        owners_.emplace(key, std::string(what));
        return {};
    }

    // The first free address for a device; in a dry run, buses are added
    // when none is free. `function` -1: any function of an aggregate slot.
    Result<DeviceAddress> next_address(unsigned flags, int function, std::string_view what) {
        DeviceAddress a = pci_address(0, 0, function < 0 ? 0 : static_cast<unsigned>(function));
        for (a.bus = 0; a.bus < buses.size(); ++a.bus) {
            a.slot = buses[a.bus].min_slot;
            a.function = function < 0 ? 0 : static_cast<unsigned>(function);
            if (find_on_bus(buses[a.bus], a, function, flags)) return a;
        }
        if (dry_run_) {
            VIREO_TRY(grow(a, flags));
            a.slot = buses[a.bus].min_slot;
            return a;
        }
        return std::unexpected(Error{ErrorCode::Unsupported, fmt::format("unsupported configuration: {}: no free PCI slot", what)});
    }

    Status reserve_next(DeviceInfo& info, unsigned flags, int function, std::string_view what) {
        auto a = next_address(flags, function, what);
        if (!a) return std::unexpected(a.error());
        VIREO_TRY(reserve(*a, flags, false, what));
        if (!dry_run_) {
            a->multifunction = info.address.multifunction;
            info.address = *a;
        }
        return {};
    }

private:
    static bool compatible(const DeviceAddress& a, unsigned bus_flags, unsigned dev_flags, bool from_config) {
        if (dev_flags & kIntegrated) {
            if (a.bus != 0) return false;
            bus_flags |= kAutoassign;
        }
        if (from_config) {
            if (bus_flags & kEndpoint) bus_flags |= kEndpoint;
            if (dev_flags & kPciBridge) dev_flags |= kPciDevice;
        } else if ((dev_flags & kAutoassign) && !(bus_flags & kAutoassign)) {
            return false;
        }
        return (dev_flags & bus_flags & kTypes) != 0;
    }

    Status validate(const DeviceAddress& a, unsigned flags, bool from_config, std::string_view what) const {
        const std::string at = pci_text(a);
        if (buses.empty()) return std::unexpected(address_error(what, "no PCI buses available"));
        if (a.domain != 0) return std::unexpected(address_error(what, fmt::format("invalid PCI address {}: only PCI domain 0 is available", at)));
        if (a.bus >= buses.size())
            return std::unexpected(address_error(what, fmt::format("invalid PCI address {}: only PCI buses up to {} are available", at, buses.size() - 1)));
        const PciBus& b = buses[a.bus];
        if (!compatible(a, b.flags, flags, from_config))
            return std::unexpected(address_error(
                what, fmt::format("the device at PCI address {} cannot be plugged into the PCI controller with index='{}': it needs a controller that accepts a {}", at,
                                  a.bus, connect_name(flags))));
        if (a.slot < b.min_slot) return std::unexpected(address_error(what, fmt::format("invalid PCI address {}: slot must be >= {}", at, b.min_slot)));
        if (a.slot > b.max_slot) return std::unexpected(address_error(what, fmt::format("invalid PCI address {}: slot must be <= {}", at, b.max_slot)));
        return {};
    }

    bool find_on_bus(const PciBus& b, DeviceAddress& a, int function, unsigned flags) const {
        if (!compatible(a, b.flags, flags, false)) return false;
        for (; a.slot <= b.max_slot; ++a.slot) {
            if (b.functions[a.slot] == 0) return true;
            if ((flags & kAggregate) && b.aggregate[a.slot]) {
                if (!(b.functions[a.slot] & (1u << a.function))) return true;
                if (function == -1) {
                    for (; a.function < 8; ++a.function)
                        if (!(b.functions[a.slot] & (1u << a.function))) return true;
                    a.function = 0;
                }
            }
        }
        return false;
    }

    // Add the buses `a` needs (libvirt's virDomainPCIAddressSetGrow): root
    // ports for PCIe devices, a pci-bridge for PCI devices, behind a root
    // port and a pcie-to-pci-bridge on a machine that has no PCI bus yet.
    Status grow(DeviceAddress& a, unsigned flags) {
        if (a.bus < buses.size()) return {};
        std::size_t add = a.bus - buses.size() + 1;
        std::string model;
        bool need_bridge = false;
        if (flags & kPciDevice) {
            model = "pci-bridge";
            need_bridge = std::none_of(buses.begin(), buses.end(), [](const PciBus& b) { return (b.flags & kPciBridge) != 0; });
            if (need_bridge && add == 1) {
                ++add;
                ++a.bus;
            }
        } else if (flags & (kPcieDevice | kSwitchUp)) {
            model = "pcie-root-port";
        } else {
            const unsigned kinds = flags & kTypes;
            return fail(ErrorCode::Unsupported, "unsupported configuration: a PCI slot is needed for a {}, but none is available and it cannot be added automatically",
                        connect_name(kinds));
        }
        std::size_t i = buses.size();
        buses.resize(buses.size() + add);
        if (need_bridge) {
            // the root port only takes the pcie-to-pci-bridge
            set_bus_model(buses[i], "pcie-root-port");
            buses[i].flags = kPcieToPciBridge;
            ++i;
            set_bus_model(buses[i++], "pcie-to-pci-bridge");
        }
        for (; i < buses.size(); ++i) set_bus_model(buses[i], model);
        return {};
    }

    bool dry_run_;
    std::map<unsigned, std::string> owners_;  // who uses each reserved address (for errors)
};

bool has_pcie_root(const DomainDef& def) {
    return std::any_of(def.devices.controllers.begin(), def.devices.controllers.end(),
                       [](const Controller& c) { return c.type == "pci" && c.model == "pcie-root"; });
}
bool has_pci_root(const DomainDef& def) {
    return std::any_of(def.devices.controllers.begin(), def.devices.controllers.end(),
                       [](const Controller& c) { return c.type == "pci" && c.model == "pci-root"; });
}

ConnectFlags connect_flags(const DomainDef& def) {
    ConnectFlags f;
    if (has_pcie_root(def)) f.pcie = kPcieDevice | kAutoassign;
    f.virtio = f.pcie;  // virtio devices are PCIe on a PCIe machine
    return f;
}

bool wanted(const DeviceInfo& info) { return info.address.empty(); }

// The address set of the domain's PCI controllers with its addresses in use.
Result<PciSet> make_pci_set(DomainDef& def, std::size_t nbuses, bool dry_run) {
    PciSet set(dry_run);
    set.buses.resize(nbuses);
    for (const auto& c : def.devices.controllers)
        if (c.type == "pci" && c.index < nbuses) set_bus_model(set.buses[c.index], c.model);
    if (nbuses > 0 && set.buses[0].model.empty()) set_bus_model(set.buses[0], "pci-root");
    const std::string_view missing = has_pcie_root(def) ? "pcie-root-port" : "pci-bridge";
    for (std::size_t i = 1; i < nbuses; ++i)
        if (set.buses[i].model.empty()) set_bus_model(set.buses[i], missing);
    const ConnectFlags f = connect_flags(def);
    const bool i440fx = machine_family(def.os.machine) == MachineFamily::I440fx;
    for (auto& ref : all_devices(def, f)) {
        const DeviceAddress& a = ref.info->address;
        if (a.type != "pci") continue;
        // The PIIX3's IDE and USB are reserved with the chipset.
        if (const Controller* c = ref.controller; i440fx && c && c->index == 0 && a.domain == 0 && a.bus == 0 && a.slot == 1 &&
                                                  ((c->type == "ide" && a.function == 1) ||
                                                   (c->type == "usb" && a.function == 2 && (c->model == "piix3-uhci" || c->model.empty()))))
            continue;
        VIREO_TRY(set.reserve(a, ref.flags ? ref.flags : kPciDevice, true, ref.what));
    }
    return set;
}

// The chipset's devices (qemuDomainValidateDevicePCISlotsPIIX3 / Q35).
Status place_chipset_devices(DomainDef& def, PciSet& set) {
    const MachineFamily fam = machine_family(def.os.machine);
    const ConnectFlags f = connect_flags(def);
    auto& d = def.devices;
    auto primary_video = [&](unsigned slot, unsigned flags) -> Status {
        if (d.videos.empty() || d.videos[0].model_type == "none" || d.videos[0].model_type == "ramfb" || !wanted(d.videos[0].info)) return {};
        Video& v = d.videos[0];
        if (set.slot_in_use(0, slot)) return set.reserve_next(v.info, video_flags(v, f), -1, "video[1]");
        VIREO_TRY(set.reserve(pci_address(0, slot, 0), flags, true, "video[1]"));
        v.info.address = pci_address(0, slot, 0);
        return {};
    };
    if (fam == MachineFamily::I440fx) {
        const unsigned flags = kAutoassign | kPciDevice;
        for (auto& c : d.controllers) {
            DeviceAddress want;
            if (c.type == "ide" && c.index == 0) want = pci_address(0, 1, 1);
            else if (c.type == "usb" && c.index == 0 && (c.model == "piix3-uhci" || c.model.empty())) want = pci_address(0, 1, 2);
            else continue;
            if (c.info.address.type == "pci") {
                if (c.info.address != want)
                    return std::unexpected(address_error(controller_name(c), fmt::format("the primary {} controller must have PCI address {} (the PIIX3's)",
                                                                                        c.type == "ide" ? "IDE" : "PIIX3 USB", pci_text(want))));
            } else {
                c.info.address = want;
            }
            VIREO_TRY(set.reserve(want, flags, true, controller_name(c)));
        }
        VIREO_TRY(set.reserve(pci_address(0, 1, 0), flags, true, "the PIIX3 ISA bridge (00:01.0)"));
        VIREO_TRY(set.reserve(pci_address(0, 1, 3), flags, true, "the PIIX3 power management (00:01.3)"));
        return primary_video(2, flags);
    }
    if (fam != MachineFamily::Q35) return {};
    const unsigned flags = kPcieDevice;
    for (auto& c : d.controllers) {
        if (c.type == "sata" && c.index == 0) {
            const DeviceAddress want = pci_address(0, 0x1f, 2);
            if (c.info.address.type == "pci") {
                if (c.info.address != want)
                    return std::unexpected(address_error(controller_name(c), "the primary SATA controller must have PCI address 0000:00:1f.2 (the ICH9's)"));
            } else {
                c.info.address = want;
            }
        } else if (c.type == "usb" && c.model == "ich9-uhci1" && wanted(c.info)) {
            // the first USB2 set at 1d, the second at 1a (as real ICH9s)
            for (unsigned slot : {0x1du, 0x1au}) {
                if (set.slot_in_use(0, slot)) continue;
                VIREO_TRY(set.reserve(pci_address(0, slot, 0), flags, true, controller_name(c)));
                c.info.address = pci_address(0, slot, 0);
                c.info.address.multifunction = "on";
                break;
            }
        } else if (c.type == "pci" && c.model == "dmi-to-pci-bridge" && wanted(c.info) && !set.slot_in_use(0, 0x1e)) {
            VIREO_TRY(set.reserve(pci_address(0, 0x1e, 0), flags, true, controller_name(c)));
            c.info.address = pci_address(0, 0x1e, 0);
        }
    }
    VIREO_TRY(set.reserve(pci_address(0, 0x1f, 0), flags, true, "the ICH9 LPC bridge (00:1f.0)"));
    VIREO_TRY(set.reserve(pci_address(0, 0x1f, 3), flags, true, "the ICH9 SMBus controller (00:1f.3)"));
    VIREO_TRY(primary_video(1, flags));
    if (!set.slot_in_use(0, 0x1b)) {
        for (auto& s : d.sounds) {
            if (s.model != "ich9" || !wanted(s.info)) continue;
            VIREO_TRY(set.reserve(pci_address(0, 0x1b, 0), flags, true, "sound model='ich9'"));
            s.info.address = pci_address(0, 0x1b, 0);
            break;
        }
    }
    return {};
}

bool is_usb2(const Controller& c) {
    return c.type == "usb" && (c.model == "ich9-ehci1" || c.model == "ich9-uhci1" || c.model == "ich9-uhci2" || c.model == "ich9-uhci3");
}

// Everything else, in libvirt's order (qemuDomainAssignDevicePCISlots).
Status place_devices(DomainDef& def, PciSet& set) {
    auto& d = def.devices;
    const ConnectFlags f = connect_flags(def);
    auto place = [&](DeviceInfo& info, unsigned flags, std::string_view what) -> Status {
        if (!flags || !wanted(info)) return {};
        return set.reserve_next(info, flags, -1, what);
    };
    for (std::size_t i = 0; i < d.controllers.size(); ++i) {
        Controller& c = d.controllers[i];
        if (c.type == "pci" && c.model != "pci-root" && c.model != "pcie-root")
            VIREO_TRY(place(c.info, pci_controller_flags(c.model), controller_name(c)));
    }
    for (auto& x : d.filesystems) VIREO_TRY(place(x.info, f.virtio, fmt::format("filesystem '{}'", x.target_dir)));
    for (auto& x : d.interfaces) VIREO_TRY(place(x.info, interface_flags(x, f), fmt::format("interface '{}'", x.mac)));
    for (auto& x : d.sounds) VIREO_TRY(place(x.info, sound_flags(x, f), fmt::format("sound model='{}'", x.model)));
    for (auto& c : d.controllers) {
        if (c.type == "pci" || c.type == "fdc" || (c.type == "ide" && c.index == 0)) continue;
        if (!wanted(c.info)) continue;
        const unsigned flags = controller_flags(c, f);
        if (!flags) continue;
        if (!is_usb2(c)) {
            VIREO_TRY(set.reserve_next(c.info, flags, -1, controller_name(c)));
            continue;
        }
        // USB2 companions share the slot of their set (same index).
        unsigned function = 0;
        std::string multi;
        if (c.model == "ich9-ehci1") function = 7;
        else if (c.model == "ich9-uhci1") multi = "on";
        else if (c.model == "ich9-uhci2") function = 1;
        else function = 2;
        const Controller* sibling = nullptr;
        for (const auto& o : d.controllers)
            if (&o != &c && is_usb2(o) && o.index == c.index && o.info.address.type == "pci") {
                sibling = &o;
                break;
            }
        if (sibling) {
            DeviceAddress a = pci_address(sibling->info.address.bus, sibling->info.address.slot, function);
            a.multifunction = multi;
            VIREO_TRY(set.reserve(a, flags, false, controller_name(c)));
            if (!set.dry_run()) c.info.address = a;
        } else {
            VIREO_TRY(set.reserve_next(c.info, flags, static_cast<int>(function), controller_name(c)));
            if (!set.dry_run()) c.info.address.multifunction = multi;
        }
    }
    for (auto& x : d.disks) {
        if (x.target_bus != "virtio") continue;
        if (x.info.address.type == "pci") continue;
        if (!x.info.address.empty())
            return fail(ErrorCode::Unsupported, "unsupported configuration: disk '{}': a virtio disk cannot have an address of type '{}'", x.target_dev,
                        x.info.address.type);
        VIREO_TRY(place(x.info, f.virtio, fmt::format("disk '{}'", x.target_dev)));
    }
    if (d.memballoon && d.memballoon->model == "virtio") VIREO_TRY(place(d.memballoon->info, f.virtio, "memballoon"));
    for (std::size_t i = 0; i < d.rngs.size(); ++i) VIREO_TRY(place(d.rngs[i].info, f.virtio, fmt::format("rng[{}]", i + 1)));
    for (auto& w : d.watchdogs)
        if (w.model == "i6300esb") VIREO_TRY(place(w.info, f.pci, "watchdog model='i6300esb'"));
    for (std::size_t i = 0; i < d.videos.size(); ++i)
        VIREO_TRY(place(d.videos[i].info, video_flags(d.videos[i], f), fmt::format("video[{}] model='{}'", i + 1, d.videos[i].model_type)));
    for (auto& in : d.inputs)
        if (in.bus == "virtio") VIREO_TRY(place(in.info, f.virtio, fmt::format("input type='{}' bus='virtio'", in.type)));
    for (std::size_t i = 0; i < d.serials.size(); ++i)
        if (d.serials[i].target_type == "pci-serial") VIREO_TRY(place(d.serials[i].info, f.pci, fmt::format("serial[{}]", i + 1)));
    for (std::size_t i = 0; i < d.memories.size(); ++i)
        if (d.memories[i].model == "virtio-mem") VIREO_TRY(place(d.memories[i].info, f.virtio, fmt::format("memory[{}] model='virtio-mem'", i + 1)));
    return {};
}

// A PCI controller of `model` at `index`, unless there is one.
bool maybe_add_pci_controller(DomainDef& def, unsigned index, std::string_view model) {
    for (const auto& c : def.devices.controllers)
        if (c.type == "pci" && c.index == index) return false;
    Controller c;
    c.type = "pci";
    c.index = index;
    c.model = std::string(model);
    def.devices.controllers.push_back(std::move(c));  // implicit controllers come last
    return true;
}

// The options libvirt gives PCI controllers once they have an address.
void fill_pci_controller_options(DomainDef& def) {
    for (auto& c : def.devices.controllers) {
        if (c.type != "pci") continue;
        if (c.model_name.empty()) {
            if (c.model == "pci-bridge") c.model_name = "pci-bridge";
            else if (c.model == "dmi-to-pci-bridge") c.model_name = "i82801b11-bridge";
            else if (c.model == "pcie-to-pci-bridge") c.model_name = "pcie-pci-bridge";
            else if (c.model == "pcie-root-port") c.model_name = "pcie-root-port";
            else if (c.model == "pcie-switch-upstream-port") c.model_name = "x3130-upstream";
            else if (c.model == "pcie-switch-downstream-port") c.model_name = "xio3130-downstream";
        }
        const DeviceAddress& a = c.info.address;
        if (c.model == "pci-bridge" && !c.target_chassis_nr) c.target_chassis_nr = c.index;
        if (c.model == "pcie-root-port") {
            if (!c.target_chassis) c.target_chassis = c.index;
            if (c.target_port.empty() && a.type == "pci") c.target_port = fmt::format("0x{:x}", (a.slot << 3) + a.function);
        }
        if (c.model == "pcie-switch-downstream-port") {
            if (!c.target_chassis) c.target_chassis = c.index;
            if (c.target_port.empty() && a.type == "pci") c.target_port = fmt::format("0x{:x}", a.slot);
        }
    }
}

// multifunction='on' on function 0 of every slot with other functions in
// use (unless the document said off).
void set_multifunction(DomainDef& def) {
    std::vector<DeviceInfo*> infos;
    for (auto& ref : all_devices(def, ConnectFlags{})) infos.push_back(ref.info);
    for (const DeviceInfo* i : infos) {
        const DeviceAddress& a = i->address;
        if (a.type != "pci" || a.function == 0) continue;
        for (DeviceInfo* j : infos) {
            DeviceAddress& b = j->address;
            if (b.type == "pci" && b.domain == a.domain && b.bus == a.bus && b.slot == a.slot && b.function == 0) {
                if (b.multifunction.empty()) b.multifunction = "on";
                break;
            }
        }
    }
}

Status assign_pci_addresses(DomainDef& def) {
    const MachineFamily fam = machine_family(def.os.machine);
    if (fam == MachineFamily::Microvm) return {};  // virtio-mmio: no PCI
    int max_idx = -1;
    for (const auto& c : def.devices.controllers)
        if (c.type == "pci") max_idx = std::max(max_idx, static_cast<int>(c.index));
    if (max_idx < 0) return {};
    std::size_t nbuses = static_cast<std::size_t>(max_idx) + 1;
    {
        // 1st pass: which buses are missing.
        auto set = make_pci_set(def, nbuses, true);
        if (!set) return std::unexpected(set.error());
        VIREO_TRY(place_chipset_devices(def, *set));
        if (has_pci_root(def) && !set->fully_reserved()) {
            // a slot kept free for a future bridge
            DeviceInfo spare;
            VIREO_TRY(set->reserve_next(spare, kAutoassign | kPciDevice, -1, "a spare PCI slot"));
        }
        VIREO_TRY(place_devices(def, *set));
        if (max_idx <= 0 && set->buses.size() > nbuses && has_pcie_root(def)) {
            // a new q35 domain gets one empty root port for hotplug
            DeviceInfo spare;
            VIREO_TRY(set->reserve_next(spare, kAutoassign | kPcieDevice, -1, "a spare PCIe root port"));
        }
        for (std::size_t i = 1; i < set->buses.size(); ++i) {
            if (!maybe_add_pci_controller(def, static_cast<unsigned>(i), set->buses[i].model)) continue;
            DeviceInfo placed;
            const std::string what = fmt::format("controller type='pci' index='{}'", i);
            VIREO_TRY(set->reserve_next(placed, pci_controller_flags(set->buses[i].model), -1, what));
        }
        nbuses = set->buses.size();
    }
    // 2nd pass: the addresses.
    auto set = make_pci_set(def, nbuses, false);
    if (!set) return std::unexpected(set.error());
    VIREO_TRY(place_chipset_devices(def, *set));
    VIREO_TRY(place_devices(def, *set));
    set_multifunction(def);
    fill_pci_controller_options(def);
    for (const auto& c : def.devices.controllers)
        if (c.type == "pci" && c.model == "pci-bridge" && c.info.address.type == "pci" && c.index <= c.info.address.bus)
            return fail(ErrorCode::Unsupported, "unsupported configuration: {}: a pci-bridge's index must be larger than the bus it is on ({})", controller_name(c),
                        c.info.address.bus);
    return {};
}

// ---- virtio-serial ------------------------------------------------------------------

Status assign_virtio_serial_ports(DomainDef& def) {
    auto& d = def.devices;
    // controller index -> ports in use
    std::map<unsigned, std::vector<bool>> ports;
    for (const auto& c : d.controllers) {
        if (c.type != "virtio-serial") continue;
        unsigned n = 31;
        if (auto v = xml_port(c.ports)) n = *v;
        ports[c.index].assign(n, false);
    }
    auto reserve = [&](const DeviceAddress& a, std::string_view what) -> Status {
        auto it = ports.find(a.controller);
        if (it == ports.end()) return std::unexpected(address_error(what, fmt::format("virtio-serial controller {} is missing", a.controller)));
        const unsigned port = static_cast<unsigned>(std::stoul(a.port));
        if (port >= it->second.size())
            return std::unexpected(address_error(what, fmt::format("virtio-serial controller {} does not have port {}", a.controller, port)));
        if (it->second[port])
            return std::unexpected(address_error(what, fmt::format("virtio-serial port {} on controller {} is already occupied", port, a.controller)));
        it->second[port] = true;
        return {};
    };
    auto complete = [](const DeviceInfo& i) { return i.address.type == "virtio-serial" && !i.address.port.empty() && i.address.port != "0"; };
    for (std::size_t i = 0; i < d.channels.size(); ++i)
        if (complete(d.channels[i].info)) VIREO_TRY(reserve(d.channels[i].info.address, fmt::format("channel[{}]", i + 1)));
    for (std::size_t i = 0; i < d.consoles.size(); ++i)
        if (complete(d.consoles[i].info)) VIREO_TRY(reserve(d.consoles[i].info.address, fmt::format("console[{}]", i + 1)));
    // A free port from `first`, on `controller` or on any controller.
    auto next = [&](std::optional<unsigned> controller, unsigned first, std::string_view what) -> Result<DeviceAddress> {
        for (auto& [idx, used] : ports) {
            if (controller && idx != *controller) continue;
            for (unsigned p = first; p < used.size(); ++p)
                if (!used[p]) {
                    used[p] = true;
                    DeviceAddress a;
                    a.type = "virtio-serial";
                    a.controller = idx;
                    a.port = std::to_string(p);
                    return a;
                }
        }
        if (controller) return std::unexpected(address_error(what, fmt::format("no free port on virtio-serial controller {}", *controller)));
        return std::unexpected(address_error(what, "no free virtio-serial port"));
    };
    // Virtio consoles take ports (from 0) without showing an address.
    for (std::size_t i = 0; i < d.consoles.size(); ++i) {
        const auto& con = d.consoles[i];
        if (con.target_type != "virtio" || complete(con.info)) continue;
        std::optional<unsigned> ctl;
        if (con.info.address.type == "virtio-serial") ctl = con.info.address.controller;
        auto a = next(ctl, 0, fmt::format("console[{}]", i + 1));
        if (!a) return std::unexpected(a.error());
    }
    for (std::size_t i = 0; i < d.channels.size(); ++i) {
        auto& ch = d.channels[i];
        if (ch.target_type != "virtio" || complete(ch.info)) continue;
        std::optional<unsigned> ctl;
        if (ch.info.address.type == "virtio-serial") ctl = ch.info.address.controller;
        auto a = next(ctl, 1, fmt::format("channel[{}]", i + 1));
        if (!a) return std::unexpected(a.error());
        ch.info.address = *a;
    }
    return {};
}

// ---- USB ------------------------------------------------------------------------------

constexpr unsigned kHubPorts = 8;
constexpr std::size_t kMaxUsbDepth = 4;

unsigned usb_controller_ports(const Controller& c) {
    if (c.model == "piix3-uhci" || c.model == "piix4-uhci" || c.model.empty()) return 2;
    if (c.model == "ehci" || c.model == "ich9-ehci1") return 6;
    if (c.model == "pci-ohci") return 3;
    if (c.model == "qemu-xhci" || c.model == "nec-xhci") {
        if (auto v = xml_port(c.ports)) return *v;
        return 4;
    }
    return 0;  // ich9-uhci companions (their EHCI has the ports), none
}

struct UsbHub {
    std::vector<bool> used;
    std::vector<std::unique_ptr<UsbHub>> hubs;  // per port
    explicit UsbHub(unsigned n) : used(n, false), hubs(n) {}
};

Result<std::vector<unsigned>> parse_usb_port(std::string_view text, std::string_view what) {
    std::vector<unsigned> path;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const std::size_t dot = text.find('.', pos);
        const std::string_view part = text.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos);
        auto v = xml_port(part);
        if (!v || *v == 0 || path.size() >= kMaxUsbDepth) return std::unexpected(address_error(what, fmt::format("invalid USB port '{}'", text)));
        path.push_back(*v);
        if (dot == std::string_view::npos) break;
        pos = dot + 1;
    }
    return path;
}

std::string usb_port_text(const std::vector<unsigned>& path) {
    std::string out;
    for (unsigned p : path) out += (out.empty() ? "" : ".") + std::to_string(p);
    return out;
}

class UsbSet {
public:
    std::map<unsigned, std::unique_ptr<UsbHub>> buses;

    // The hub a port path ends on, and the port's index there.
    Result<std::pair<UsbHub*, unsigned>> find(unsigned bus, const std::vector<unsigned>& path, std::string_view what) {
        auto it = buses.find(bus);
        if (it == buses.end() || !it->second) return std::unexpected(address_error(what, fmt::format("there is no USB bus {}", bus)));
        UsbHub* hub = it->second.get();
        const std::string text = usb_port_text(path);
        for (std::size_t i = 0; i + 1 < path.size(); ++i) {
            if (path[i] > hub->used.size())
                return std::unexpected(address_error(what, fmt::format("port {} out of range in USB address bus {} port {}", path[i], bus, text)));
            hub = hub->hubs[path[i] - 1].get();
            if (!hub) return std::unexpected(address_error(what, fmt::format("there is no hub at port {} in USB address bus {} port {}", path[i], bus, text)));
        }
        if (path.back() > hub->used.size())
            return std::unexpected(address_error(what, fmt::format("USB port {} is not present on USB bus {}", text, bus)));
        return std::pair{hub, path.back() - 1};
    }

    Status reserve(const DeviceAddress& a, std::string_view what) {
        auto path = parse_usb_port(a.port, what);
        if (!path) return std::unexpected(path.error());
        auto at = find(a.bus, *path, what);
        if (!at) return std::unexpected(at.error());
        auto [hub, idx] = *at;
        if (hub->used[idx]) return std::unexpected(address_error(what, fmt::format("USB address bus {} port {} is already in use", a.bus, a.port)));
        hub->used[idx] = true;
        return {};
    }

    Status add_hub(const DeviceAddress& a, std::string_view what) {
        auto path = parse_usb_port(a.port, what);
        if (!path) return std::unexpected(path.error());
        auto at = find(a.bus, *path, what);
        if (!at) return std::unexpected(at.error());
        auto [hub, idx] = *at;
        if (hub->hubs[idx]) return std::unexpected(address_error(what, fmt::format("a second USB hub on bus {} port {}", a.bus, a.port)));
        hub->used[idx] = true;
        hub->hubs[idx] = std::make_unique<UsbHub>(kHubPorts);
        return {};
    }

    // A free port: on the hub itself first, then behind its hubs.
    static bool free_port(UsbHub& hub, std::vector<unsigned>& path) {
        for (unsigned i = 0; i < hub.used.size(); ++i)
            if (!hub.used[i]) {
                path.push_back(i + 1);
                return true;
            }
        if (path.size() + 1 >= kMaxUsbDepth) return false;
        for (unsigned i = 0; i < hub.hubs.size(); ++i) {
            if (!hub.hubs[i]) continue;
            path.push_back(i + 1);
            if (free_port(*hub.hubs[i], path)) return true;
            path.pop_back();
        }
        return false;
    }

    Status assign(DeviceInfo& info, std::string_view what) {
        std::optional<unsigned> only;
        if (info.address.type == "usb") only = info.address.bus;
        for (auto& [bus, hub] : buses) {
            if (only && bus != *only) continue;
            if (!hub) continue;
            std::vector<unsigned> path;
            if (!free_port(*hub, path)) continue;
            info.address.type = "usb";
            info.address.bus = bus;
            info.address.port = usb_port_text(path);
            return reserve(info.address, what);
        }
        if (only && !buses.contains(*only))
            return std::unexpected(address_error(what, fmt::format("USB bus {} requested but no controller with that index is present", *only)));
        return fail(ErrorCode::Unsupported, "unsupported configuration: {}: no free USB port", what);
    }
};

// The devices that plug into USB, in libvirt's order.
std::vector<std::pair<DeviceInfo*, std::string>> usb_devices(DomainDef& def) {
    auto& d = def.devices;
    std::vector<std::pair<DeviceInfo*, std::string>> out;
    for (auto& x : d.disks)
        if (x.target_bus == "usb") out.emplace_back(&x.info, fmt::format("disk '{}'", x.target_dev));
    for (auto& x : d.inputs)
        if (x.bus == "usb") out.emplace_back(&x.info, fmt::format("input type='{}' bus='usb'", x.type));
    for (std::size_t i = 0; i < d.serials.size(); ++i)
        if (d.serials[i].target_type == "usb-serial") out.emplace_back(&d.serials[i].info, fmt::format("serial[{}]", i + 1));
    for (auto& x : d.sounds)
        if (x.model == "usb") out.emplace_back(&x.info, "sound model='usb'");
    for (std::size_t i = 0; i < d.redirdevs.size(); ++i) out.emplace_back(&d.redirdevs[i].info, fmt::format("redirdev[{}]", i + 1));
    return out;
}

bool usb_port_given(const DeviceInfo& info) { return info.address.type == "usb" && !info.address.port.empty(); }

Status assign_usb_addresses(DomainDef& def) {
    auto& d = def.devices;
    auto devices = usb_devices(def);
    const std::size_t count = devices.size() + d.hubs.size();
    unsigned available = 0;
    bool usb = false;
    for (const auto& c : d.controllers)
        if (c.type == "usb") {
            available += usb_controller_ports(c);
            usb = usb || c.model != "none";
        }
    available += static_cast<unsigned>(d.hubs.size()) * kHubPorts;
    if (count > 0 && !usb)
        return fail(ErrorCode::Unsupported, "unsupported configuration: {}: USB is disabled for this domain (no USB controller, or model='none')",
                    devices.empty() ? std::string("hub[1]") : devices.front().second);
    if (count > available) {
        const std::size_t needed = (count - available + 1 + kHubPorts - 2) / (kHubPorts - 1);
        for (std::size_t i = 0; i < needed; ++i) d.hubs.push_back(Hub{});
        devices = usb_devices(def);  // the vectors did not move, but stay safe
    }
    UsbSet set;
    for (const auto& c : d.controllers) {
        if (c.type != "usb") continue;
        const unsigned n = usb_controller_ports(c);
        if (n == 0) continue;
        if (set.buses.contains(c.index)) return std::unexpected(address_error(controller_name(c), fmt::format("a second USB controller with index {}", c.index)));
        set.buses[c.index] = std::make_unique<UsbHub>(n);
    }
    for (std::size_t i = 0; i < d.hubs.size(); ++i)
        if (usb_port_given(d.hubs[i].info)) VIREO_TRY(set.add_hub(d.hubs[i].info.address, fmt::format("hub[{}]", i + 1)));
    for (auto& [info, what] : devices)
        if (usb_port_given(*info)) VIREO_TRY(set.reserve(info->address, what));
    for (std::size_t i = 0; i < d.hubs.size(); ++i) {
        auto& h = d.hubs[i];
        if (usb_port_given(h.info)) continue;
        const std::string what = fmt::format("hub[{}]", i + 1);
        VIREO_TRY(set.assign(h.info, what));
        // assign() marked the port used; now it carries a hub
        auto path = parse_usb_port(h.info.address.port, what);
        if (!path) return std::unexpected(path.error());
        auto at = set.find(h.info.address.bus, *path, what);
        if (!at) return std::unexpected(at.error());
        at->first->hubs[at->second] = std::make_unique<UsbHub>(kHubPorts);
    }
    for (auto& [info, what] : devices)
        if (!usb_port_given(*info)) VIREO_TRY(set.assign(*info, what));
    return {};
}

}  // namespace

Status assign_device_addresses(DomainDef& def) {
    VIREO_TRY(assign_virtio_serial_ports(def));
    VIREO_TRY(assign_pci_addresses(def));
    if (machine_family(def.os.machine) != MachineFamily::Microvm) VIREO_TRY(assign_usb_addresses(def));
    return {};
}

}  // namespace vireo::conf
