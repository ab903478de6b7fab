#include "qemu/resources.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "conf/domain.hpp"
#include "util/files.hpp"

namespace vireo::qemu {

namespace {

std::string affinity_of(pid_t tid) {
    cpu_set_t mask;
    CPU_ZERO(&mask);
    if (::sched_getaffinity(tid, sizeof(mask), &mask) != 0) return "";
    std::vector<unsigned> cpus;
    for (unsigned c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &mask)) cpus.push_back(c);
    return conf::format_cpu_list(cpus);
}

constexpr std::string_view kPeripheral = "/machine/peripheral/";

}  // namespace

std::optional<TaskStat> parse_task_stat(std::string_view line) {
    // The command name (field 2) may hold spaces and ')': fields resume
    // after its last ')', with field 3 (state) as token 0.
    const auto close = line.rfind(')');
    if (close == std::string_view::npos) return std::nullopt;
    std::vector<std::string_view> tokens;
    std::size_t pos = close + 1;
    while (pos < line.size()) {
        while (pos < line.size() && line[pos] == ' ') ++pos;
        const std::size_t end = std::min(line.find(' ', pos), line.size());
        if (end > pos) tokens.push_back(line.substr(pos, end - pos));
        pos = end;
    }
    auto number = [&](std::size_t field) -> std::optional<std::int64_t> {
        if (field - 3 >= tokens.size()) return std::nullopt;
        std::int64_t v = 0;
        const auto t = tokens[field - 3];
        if (std::from_chars(t.data(), t.data() + t.size(), v).ec != std::errc{}) return std::nullopt;
        return v;
    };
    auto utime = number(14), stime = number(15), cpu = number(39);
    if (!utime || !stime || !cpu) return std::nullopt;
    return TaskStat{static_cast<int>(*cpu), static_cast<std::uint64_t>(*utime + *stime)};
}

Result<std::vector<driver::VcpuInfo>> vcpu_info(Monitor& mon, pid_t qemu_pid) {
    auto threads = mon.query_cpus_fast();
    if (!threads) return std::unexpected(threads.error());
    static const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
    const std::uint64_t ns_per_tick = ticks_per_second > 0 ? 1'000'000'000ULL / static_cast<std::uint64_t>(ticks_per_second) : 0;
    std::vector<driver::VcpuInfo> out;
    for (const auto& t : *threads) {
        driver::VcpuInfo v;
        v.id = t.index;
        v.state = "running";
        auto text = files::read(fmt::format("/proc/{}/task/{}/stat", qemu_pid, t.thread_id));
        if (!text) return std::unexpected(text.error().context(fmt::format("cannot read the thread of vCPU {}", t.index)));
        auto st = parse_task_stat(*text);
        if (!st) return fail(ErrorCode::Internal, "cannot parse /proc/{}/task/{}/stat", qemu_pid, t.thread_id);
        v.cpu = st->cpu;
        v.cpu_time_ns = st->ticks * ns_per_tick;
        v.affinity = affinity_of(t.thread_id);
        out.push_back(std::move(v));
    }
    std::ranges::sort(out, {}, &driver::VcpuInfo::id);
    return out;
}

std::vector<driver::MemoryStat> balloon_guest_stats(const nlohmann::json& guest_stats) {
    // QEMU's name, libvirt's tag, whether QEMU gives bytes (shown in KiB).
    static constexpr std::array<std::tuple<std::string_view, std::string_view, bool>, 10> kStats{{
        {"stat-swap-in", "swap_in", true},
        {"stat-swap-out", "swap_out", true},
        {"stat-major-faults", "major_fault", false},
        {"stat-minor-faults", "minor_fault", false},
        {"stat-free-memory", "unused", true},
        {"stat-total-memory", "available", true},
        {"stat-available-memory", "usable", true},
        {"stat-disk-caches", "disk_caches", true},
        {"stat-htlb-pgalloc", "hugetlb_pgalloc", false},
        {"stat-htlb-pgfail", "hugetlb_pgfail", false},
    }};
    std::vector<driver::MemoryStat> out;
    if (!guest_stats.is_object() || !guest_stats.contains("stats") || !guest_stats["stats"].is_object()) return out;
    const auto& stats = guest_stats["stats"];
    for (const auto& [name, tag, bytes] : kStats) {
        auto it = stats.find(std::string(name));
        if (it == stats.end() || !it->is_number_integer() || it->get<std::int64_t>() < 0) continue;
        const auto v = it->get<std::uint64_t>();
        out.push_back({std::string(tag), bytes ? v / 1024 : v});
        // virsh shows last_update after usable.
        if (tag == "usable" && guest_stats.contains("last-update") && guest_stats["last-update"].is_number_integer() &&
            guest_stats["last-update"].get<std::int64_t>() > 0)
            out.push_back({"last_update", guest_stats["last-update"].get<std::uint64_t>()});
    }
    return out;
}

Result<std::uint64_t> process_rss_kib(pid_t pid) {
    auto text = files::read(fmt::format("/proc/{}/status", pid));
    if (!text) return std::unexpected(text.error());
    const auto at = text->find("\nVmRSS:");
    if (at == std::string::npos) return fail(ErrorCode::Internal, "no VmRSS in /proc/{}/status", pid);
    std::size_t pos = at + 7;
    while (pos < text->size() && ((*text)[pos] == ' ' || (*text)[pos] == '\t')) ++pos;
    std::uint64_t kib = 0;
    if (std::from_chars(text->data() + pos, text->data() + text->size(), kib).ec != std::errc{})
        return fail(ErrorCode::Internal, "cannot parse VmRSS of /proc/{}/status", pid);
    return kib;
}

std::string balloon_qom_path(const std::string& alias) { return std::string(kPeripheral) + alias; }

Status apply_balloon_period(Monitor& mon, const conf::DomainDef& def) {
    const auto& b = def.devices.memballoon;
    if (!b || b->model == "none") return {};
    std::uint64_t seconds = 0;
    if (!b->stats_period.empty() &&
        std::from_chars(b->stats_period.data(), b->stats_period.data() + b->stats_period.size(), seconds).ec != std::errc{})
        return fail(ErrorCode::InvalidArg, "invalid balloon statistics period '{}'", b->stats_period);
    return mon.qom_set(balloon_qom_path(b->info.alias), "guest-stats-polling-interval", seconds);
}

std::vector<HotpluggableCpu> vcpu_slots_by_id(std::vector<HotpluggableCpu> slots) {
    auto key = [](const HotpluggableCpu& c) {
        auto id = [&](const char* name) { return c.props.is_object() ? c.props.value(name, 0) : 0; };
        return std::array{id("node-id"), id("socket-id"), id("die-id"), id("core-id"), id("thread-id")};
    };
    std::ranges::stable_sort(slots, {}, key);
    return slots;
}

namespace {

nlohmann::json plug_args(const HotpluggableCpu& slot, unsigned id) {
    nlohmann::json args = slot.props;
    args["driver"] = slot.type;
    args["id"] = fmt::format("vcpu{}", id);
    return args;
}

bool plugged_by_us(const HotpluggableCpu& slot) { return slot.qom_path.starts_with(kPeripheral); }

std::string device_id(const HotpluggableCpu& slot) { return slot.qom_path.substr(kPeripheral.size()); }

}  // namespace

Result<VcpuChange> vcpu_change_to_count(const std::vector<HotpluggableCpu>& slots, unsigned wanted) {
    const auto by_id = vcpu_slots_by_id(slots);
    unsigned present = 0;
    for (const auto& s : by_id)
        if (!s.qom_path.empty()) present += s.vcpus_count;
    VcpuChange out;
    for (unsigned id = 0; id < by_id.size() && present < wanted; ++id) {
        if (!by_id[id].qom_path.empty()) continue;
        out.plug.push_back(plug_args(by_id[id], id));
        present += by_id[id].vcpus_count;
    }
    if (present < wanted)
        return fail(ErrorCode::InvalidArg, "invalid argument: requested vcpus is greater than max allowable vcpus for the live domain: {} > {}",
                    wanted, present);
    for (auto it = by_id.rbegin(); it != by_id.rend() && present > wanted; ++it) {
        if (!plugged_by_us(*it)) continue;
        out.unplug.push_back(device_id(*it));
        present -= it->vcpus_count;
    }
    if (present > wanted)
        return fail(ErrorCode::Unsupported,
                    "Operation not supported: only hotplugged vCPUs can be unplugged: {} vCPUs were present at start", present);
    return out;
}

Result<VcpuChange> vcpu_change_of_ids(const std::vector<HotpluggableCpu>& slots, const std::vector<unsigned>& ids, bool enable) {
    const auto by_id = vcpu_slots_by_id(slots);
    VcpuChange out;
    for (unsigned id : ids) {
        if (id >= by_id.size()) return fail(ErrorCode::InvalidArg, "invalid argument: vcpu {} is not present in live config", id);
        const HotpluggableCpu& s = by_id[id];
        if (s.qom_path.empty() != enable) continue;  // already so
        if (enable) out.plug.push_back(plug_args(s, id));
        else if (!plugged_by_us(s)) return fail(ErrorCode::InvalidArg, "invalid argument: vcpu '{}' can't be hotunplugged", id);
        else out.unplug.push_back(device_id(s));
    }
    return out;
}

Status vcpu_unplug_safe(std::string_view domain_type, unsigned qemu_version, std::string_view qemu_version_string) {
    // Measured on QEMU 7.2 (Debian 12's); 8.0 and later are let through
    // unmeasured (8.0 reordered how a vCPU's TCG state is freed).
    if (domain_type == "qemu" && qemu_version < 8000000)
        return fail(ErrorCode::Unsupported,
                    "Operation not supported: vCPU unplug under TCG (domain type 'qemu') with QEMU {}: this QEMU damages its own "
                    "memory when it removes a TCG vCPU, and its next vCPU plug or device hotplug crashes the guest; lower the "
                    "count with --config and restart the domain",
                    qemu_version_string);
    return {};
}

void apply_vcpu_slots(conf::DomainDef& live, const std::vector<HotpluggableCpu>& slots) {
    const auto by_id = vcpu_slots_by_id(slots);
    if (by_id.size() != live.vcpus) {
        // Slots of several vCPUs each (not on x86): the count only.
        unsigned present = 0;
        for (const auto& s : by_id)
            if (!s.qom_path.empty()) present += s.vcpus_count;
        live.vcpu_states.clear();
        live.vcpus_current = present == live.vcpus ? std::nullopt : std::optional<unsigned>(present);
        return;
    }
    auto& states = live.vcpu_states;
    if (states.size() != by_id.size()) states.assign(by_id.size(), conf::VcpuState{});
    unsigned last_order = 0;
    for (const auto& st : states) last_order = std::max(last_order, st.order);
    for (std::size_t id = 0; id < by_id.size(); ++id) {
        conf::VcpuState& st = states[id];
        if (by_id[id].qom_path.empty()) {
            st = {.enabled = false, .hotpluggable = "yes", .order = 0};
            continue;
        }
        st.hotpluggable = plugged_by_us(by_id[id]) ? "yes" : "no";
        if (!st.enabled || st.order == 0) st.order = ++last_order;
        st.enabled = true;
    }
    conf::sync_vcpus_current(live);
}

Status wait_vcpu_unplugged(Monitor& mon, const std::string& id, std::chrono::milliseconds timeout) {
    const std::string path = std::string(kPeripheral) + id;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto slots = mon.query_hotpluggable_cpus();
        if (!slots) return std::unexpected(slots.error());
        if (std::ranges::none_of(*slots, [&](const HotpluggableCpu& s) { return s.qom_path == path; })) return {};
        if (std::chrono::steady_clock::now() >= deadline)
            return fail(ErrorCode::OperationFailed, "operation failed: the guest did not release {} within {} ms", id, timeout.count());
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

}  // namespace vireo::qemu
