// vCPUs and memory of a running guest as the host sees them, for vcpuinfo,
// vcpupin, emulatorpin, setvcpus, setmem and dommemstat: pure parsers of
// /proc and QMP answers, and the reading of them. The driver's verbs
// (qemu_driver.cpp) decide what changes; tuning.cpp pins the threads.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "conf/domain.hpp"
#include "driver/types.hpp"
#include "qemu/monitor.hpp"
#include "util/error.hpp"

namespace vireo::qemu {

// One line of /proc/<pid>/task/<tid>/stat: the CPU the thread last ran on
// (field 39) and its user + system time in clock ticks (fields 14, 15).
struct TaskStat {
    int cpu = -1;
    std::uint64_t ticks = 0;
};
std::optional<TaskStat> parse_task_stat(std::string_view line);

// vcpuinfo's rows: each vCPU thread's host CPU, time and affinity.
Result<std::vector<driver::VcpuInfo>> vcpu_info(Monitor& mon, pid_t qemu_pid);

// The balloon's guest statistics (qom-get of its "guest-stats": bytes and
// counters under QEMU's names) as libvirt's dommemstat tags, in virsh's
// order; statistics the guest does not report (absent or -1) are left out.
std::vector<driver::MemoryStat> balloon_guest_stats(const nlohmann::json& guest_stats);

// VmRSS of /proc/<pid>/status in KiB (dommemstat's rss).
Result<std::uint64_t> process_rss_kib(pid_t pid);

// The QOM path of the balloon device with alias `alias` ("balloon0").
std::string balloon_qom_path(const std::string& alias);

// The balloon's statistics period (<memballoon><stats period>) on the
// running QEMU; 0 or none turns them off. Nothing without a balloon.
Status apply_balloon_period(Monitor& mon, const conf::DomainDef& def);

// vCPU hotplug: the empty slots to fill to go from `present` plugged vCPUs
// to `wanted`, in QEMU's order, each with the device_add arguments that
// plug it as "vcpu<N>" (N = the vCPU's number); an error when there are
// not enough slots.
Result<std::vector<nlohmann::json>> vcpu_plug_args(const std::vector<HotpluggableCpu>& slots, unsigned wanted);
// The vCPUs to unplug to go down to `wanted`: the device ids of vCPUs that
// were hotplugged (/machine/peripheral/vcpuN), highest first; an error when
// that would need a vCPU present since the start (QEMU created it).
Result<std::vector<std::string>> vcpu_unplug_ids(const std::vector<HotpluggableCpu>& slots, unsigned wanted);

// Wait at most `timeout` for the hotplugged vCPU `id` to leave its slot
// (the guest ejected it). Polled: QEMU 7.2 announces the removal of a vCPU
// only as DEVICE_DELETED of its lapic child, without the vCPU's id.
Status wait_vcpu_unplugged(Monitor& mon, const std::string& id, std::chrono::milliseconds timeout);

}  // namespace vireo::qemu
