// Random bytes from the kernel's CSPRNG (getrandom(2)).
//
// std::random_device does the same on Linux, but each construction first
// probes the CPU (cpuid for RDRAND/RDSEED), and cpuid traps to the
// hypervisor in a VM: it was visible in vireod's profile of define, which
// makes a UUID per domain.
#pragma once

#include <cstdint>
#include <span>

namespace vireo {

// Fill `out` with random bytes (/dev/urandom where the kernel has no
// getrandom()). Before the kernel's pool is seeded, at early boot, it waits.
void random_bytes(std::span<std::uint8_t> out);

}  // namespace vireo
