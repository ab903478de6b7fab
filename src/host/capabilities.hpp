// libvirt's <capabilities> and <domainCapabilities> documents for this host,
// built from measured facts (probe.hpp) and the real QEMU binary.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "host/probe.hpp"
#include "util/error.hpp"

namespace vireo::host {

// One line of `qemu-system-<arch> -machine help`.
struct MachineType {
    std::string name;       // pc-q35-7.2
    std::string canonical;  // for aliases: q35 -> pc-q35-7.2
    bool is_default = false;
    bool deprecated = false;
};

// Parse the text printed by `qemu-system-x86_64 -machine help`.
std::vector<MachineType> parse_machine_help(std::string_view text);

// Machine types of a QEMU binary (runs it with -machine help; cached per
// binary path and modification time).
Result<std::vector<MachineType>> query_machine_types(const std::filesystem::path& qemu_binary);

// One guest architecture QEMU can emulate here.
struct GuestArch {
    std::string arch;       // x86_64, i686
    unsigned wordsize = 64;
    std::string emulator;   // /usr/bin/qemu-system-x86_64
    std::vector<MachineType> machines;
};

// Known guest arches whose emulator exists on this host (x86_64, i686).
std::vector<GuestArch> discover_guest_arches();

// Firmware images usable as <loader> for UEFI (OVMF code files found).
std::vector<std::string> find_uefi_firmware(const std::filesystem::path& root = "/usr/share");

struct HostFacts {
    CpuInfo cpu;
    std::vector<NumaCell> cells;
    AcceleratorInfo accel;
    std::vector<GuestArch> guests;
    std::vector<std::string> uefi_loaders;
    std::string host_uuid;  // from /etc/machine-id
    bool iommu = false;
    // <secmodel>: the security model the driver applies to guests ("dac" for
    // the system daemon, "none" otherwise; this host has no SELinux or
    // AppArmor driver), and the base label when every guest has one.
    std::string secmodel = "none";
    std::string secmodel_baselabel;
};

// Gather everything from the real host (runs the KVM probe when safe).
Result<HostFacts> gather_host_facts(const HostPaths& paths = {});

// libvirt's CPU model name closest to the host CPU (for <host><cpu><model>).
std::string host_cpu_model(const CpuInfo& cpu);

// virsh capabilities. <domain type='kvm'/> is listed only when KVM can run
// a standard guest here.
std::string capabilities_xml(const HostFacts& facts);

// virsh domcapabilities. Empty arguments take the defaults (x86_64, the
// default machine, type qemu, the arch's emulator). virttype 'kvm' on a host
// where KVM is unusable is an error saying why and what to use instead.
Result<std::string> domain_capabilities_xml(const HostFacts& facts, std::string_view emulator, std::string_view arch,
                                            std::string_view machine, std::string_view virttype);

}  // namespace vireo::host
