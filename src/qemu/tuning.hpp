// Host-side tuning of a running QEMU, as libvirt does after it starts the
// process and before the vCPUs run:
//   - thread affinity (<cputune> vcpupin / emulatorpin / iothreadpin, with
//     <vcpu cpuset> as the default of every thread): the vCPU and iothread
//     host threads come from query-cpus-fast and query-iothreads, the other
//     threads of the process are the emulator's; each is pinned with
//     sched_setaffinity (libvirt pins through cgroups where it has them and
//     the same way without);
//   - the live addresses of the memory modules (query-memory-devices: the
//     base address the guest sees each dimm at, <address type='dimm' base>).
// check_cpusets() runs at prepare: a cpuset naming a CPU this host does not
// have is refused, naming the element, before anything is created.
#pragma once

#include <sys/types.h>

#include <set>

#include "conf/domain.hpp"
#include "qemu/monitor.hpp"
#include "util/error.hpp"

namespace vireo::qemu {

// The host CPUs online (/sys/devices/system/cpu/online).
std::set<unsigned> host_online_cpus();

Status check_cpusets(const conf::DomainDef& def, const std::set<unsigned>& host_cpus);

// Whether the definition asks for any thread affinity.
bool wants_thread_affinity(const conf::DomainDef& def);

Status apply_thread_affinity(Monitor& mon, const conf::DomainDef& def, pid_t qemu_pid);

// One thread's affinity (sched_setaffinity); `what` names it in errors; a
// thread gone meanwhile is no error when `may_be_gone`.
Status set_affinity(pid_t tid, const std::string& cpuset, std::string_view what, bool may_be_gone = false);
// Every thread of QEMU but `guest_threads` (the vCPUs and iothreads): the emulator's.
Status pin_other_threads(pid_t qemu_pid, const std::set<int>& guest_threads, const std::string& cpuset);
// Live vcpupin / emulatorpin.
Status pin_vcpu(Monitor& mon, unsigned vcpu, const std::string& cpuset);
Status pin_emulator(Monitor& mon, pid_t qemu_pid, const std::string& cpuset);

// The dimms' base addresses and the virtio-mems' plugged sizes (<current>)
// from QEMU, written into `live`.
Status refresh_memory_devices(Monitor& mon, conf::DomainDef& live);

}  // namespace vireo::qemu
