// Facts about this host the QEMU driver needs, measured once per process by
// src/host (accelerator detection): can KVM run a standard guest here?
#pragma once

#include "host/probe.hpp"
#include "util/error.hpp"

namespace vireo::qemu {

// The host's accelerators, detected on first use and cached.
const host::AcceleratorInfo& host_accelerators();

// Ok when KVM can run standard guests; otherwise Unsupported with a message
// saying why (no /dev/kvm, no access, PVM, the probe failed) and to use
// type='qemu' (TCG).
Status check_kvm_usable();

}  // namespace vireo::qemu
