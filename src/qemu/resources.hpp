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

// vCPU hotplug. QEMU's slots (query-hotpluggable-cpus) in vCPU id order:
// libvirt's vCPU N is the N-th slot by socket, die, core and thread.
std::vector<HotpluggableCpu> vcpu_slots_by_id(std::vector<HotpluggableCpu> slots);

// What a change of the running vCPUs sends: device_add arguments (each
// plugs vCPU N as "vcpu<N>"), then the device ids to device_del.
struct VcpuChange {
    std::vector<nlohmann::json> plug;
    std::vector<std::string> unplug;
};
// setvcpus: to `wanted` vCPUs, plugging the lowest empty slots or
// unplugging the highest hotplugged vCPUs; an error when there are not
// enough slots, or when a vCPU QEMU created at start would have to go.
Result<VcpuChange> vcpu_change_to_count(const std::vector<HotpluggableCpu>& slots, unsigned wanted);
// setvcpu: the vCPUs `ids` plugged (enable) or unplugged; those already
// in that state are left alone. A vCPU QEMU created at start cannot go.
Result<VcpuChange> vcpu_change_of_ids(const std::vector<HotpluggableCpu>& slots, const std::vector<unsigned>& ids, bool enable);

// Whether this QEMU can unplug a vCPU of a domain of type `domain_type`
// without harm. QEMU 7.2 under TCG cannot: seen here, with every guest,
// vCPU and device id, a removed TCG vCPU leaves QEMU's heap damaged; the
// next vCPU plug aborts QEMU ("malloc(): largebin double linked list
// corrupted") and the next device hotplug crashes it (SIGSEGV); with
// single-threaded TCG the unplug itself aborts. Refused before anything is
// sent; QEMU 8.0 and later are let through (not measured here).
Status vcpu_unplug_safe(std::string_view domain_type, unsigned qemu_version, std::string_view qemu_version_string);

// The live definition's vCPUs as QEMU has them: <vcpus> with each vCPU's
// state (enabled = its slot is filled; hotpluggable unless QEMU created it
// at start), the order kept for those that stay and the next one given to
// those that came, and the current count.
void apply_vcpu_slots(conf::DomainDef& live, const std::vector<HotpluggableCpu>& slots);

// Wait at most `timeout` for the hotplugged vCPU `id` to leave its slot
// (the guest ejected it). Polled: QEMU 7.2 announces the removal of a vCPU
// only as DEVICE_DELETED of its lapic child, without the vCPU's id.
Status wait_vcpu_unplugged(Monitor& mon, const std::string& id, std::chrono::milliseconds timeout);

}  // namespace vireo::qemu
