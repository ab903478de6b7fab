#include "qemu/host.hpp"

#include <mutex>

#include "host/probe.hpp"

namespace vireo::qemu {

const host::AcceleratorInfo& host_accelerators() {
    // Detection may run a KVM_RUN probe in a child process: do it once per
    // process. The answer cannot change while the daemon runs short of a
    // kernel module being swapped, which needs a daemon restart anyway.
    static std::once_flag once;
    static host::AcceleratorInfo info;
    std::call_once(once, [] { info = host::detect_accelerators(); });
    return info;
}

Status check_kvm_usable() { return host::check_domain_type("kvm", host_accelerators()); }

}  // namespace vireo::qemu
