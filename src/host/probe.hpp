// What this host can run: CPU, memory, NUMA cells, and which accelerators
// really work.
//
// Accelerator detection measures instead of assuming (see ARCHITECTURE.md):
//  1. CPU flags: vmx (Intel VT-x) or svm (AMD-V) in /proc/cpuinfo.
//  2. /dev/kvm exists and this process can open it read-write.
//  3. Which module backs it, from /sys/module: kvm_intel, kvm_amd, or
//     kvm_pvm (PVM, paravirtualized KVM for guests running inside a VM).
//     PVM only runs specially built PVM guest kernels; an ordinary guest
//     kernel hangs, so kvm_pvm makes KVM unusable for standard guests and
//     it is never probed (a probe could hang as well).
//  4. With kvm_intel / kvm_amd (or an unidentified module) and
//     DetectOptions::probe, a real run: in a forked child, create a VM with
//     one vCPU, load a few real-mode instructions (add, out to 0x3f8, hlt)
//     and KVM_RUN them; KVM is usable only if the expected I/O exit and
//     HLT come back within the time limit.
// TCG is always usable when the QEMU binary exists.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "driver/driver.hpp"
#include "util/error.hpp"

namespace vireo::host {

// Roots of the files consulted, overridable so tests can fake a host.
struct HostPaths {
    std::filesystem::path proc = "/proc";
    std::filesystem::path sys = "/sys";
    std::filesystem::path dev = "/dev";
};

struct CpuInfo {
    std::string arch = "x86_64";
    std::string vendor;      // "Intel", "AMD" (libvirt spelling)
    std::string model_name;  // /proc/cpuinfo "model name"
    unsigned family = 0, model = 0;
    std::vector<std::string> flags;
    unsigned mhz = 0;
    unsigned cpus = 0;       // logical CPUs online
    unsigned sockets = 1, cores = 1, threads = 1;
    [[nodiscard]] bool has_flag(std::string_view f) const;
};

struct NumaCell {
    unsigned id = 0;
    std::uint64_t memory_kib = 0;
    std::vector<unsigned> cpus;
};

struct KvmStatus {
    bool cpu_virt_flags = false;   // vmx or svm
    bool device_exists = false;    // /dev/kvm
    bool device_accessible = false;
    std::string module;            // kvm_intel, kvm_amd, kvm_pvm, or ""
    bool probed = false;           // a KVM_RUN probe was made
    bool usable = false;           // a standard guest can run with KVM
    std::string reason;            // why not (or how it was confirmed)
};

struct AcceleratorInfo {
    KvmStatus kvm;
    bool tcg = true;
};

struct DetectOptions {
    bool probe = true;  // run the KVM_RUN probe when it is safe to
    std::chrono::milliseconds probe_timeout{3000};
};

Result<CpuInfo> read_cpu_info(const HostPaths& paths = {});
std::vector<NumaCell> read_numa_cells(const HostPaths& paths = {});
std::uint64_t read_memory_kib(const HostPaths& paths = {});

AcceleratorInfo detect_accelerators(const HostPaths& paths = {}, DetectOptions opts = {});

// Run the KVM_RUN probe on `kvm_device` (see the comment at the top).
// Ok(reason) when the instructions ran; an error naming what failed.
Result<std::string> probe_kvm_run(const std::filesystem::path& kvm_device, std::chrono::milliseconds timeout);

// The error for <domain type='kvm'> on a host where KVM is unusable, or
// success. Message: "KVM is not usable on this host: <reason>; use <domain
// type='qemu'> (TCG emulation) instead".
Status check_domain_type(std::string_view domain_type, const AcceleratorInfo& accel);

// virsh nodeinfo, measured (the struct is shared with the Driver API).
using NodeInfo = driver::NodeInfo;
NodeInfo read_node_info(const HostPaths& paths = {});

}  // namespace vireo::host
