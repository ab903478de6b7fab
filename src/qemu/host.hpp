// Facts about this host the QEMU driver needs: can KVM run a guest here?
#pragma once

#include "util/error.hpp"

namespace vireo::qemu {

// Ok when KVM can run standard guests; otherwise Unsupported with a message
// saying why and to use type='qemu' (TCG): /dev/kvm missing or not usable,
// or KVM is a paravirtual implementation (PVM) that cannot run ordinary
// guests.
Status check_kvm_usable();

}  // namespace vireo::qemu
