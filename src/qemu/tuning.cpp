#include "qemu/tuning.hpp"

#include <sched.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "qemu/memory_backends.hpp"
#include "util/number.hpp"

namespace vireo::qemu {

namespace fs = std::filesystem;

Status set_affinity(pid_t tid, const std::string& cpuset, std::string_view what, bool may_be_gone) {
    cpu_set_t mask;
    CPU_ZERO(&mask);
    for (unsigned c : id_list(cpuset))
        if (c < CPU_SETSIZE) CPU_SET(c, &mask);
    if (sched_setaffinity(tid, sizeof(mask), &mask) != 0) {
        if (errno == ESRCH && may_be_gone) return {};
        return fail(ErrorCode::System, "cannot set CPU affinity of {} (thread {}) to {}: {}", what, tid, cpuset, std::strerror(errno));
    }
    return {};
}

std::set<unsigned> host_online_cpus() {
    std::ifstream in("/sys/devices/system/cpu/online");
    std::string text;
    in >> text;
    auto l = id_list(text);
    return {l.begin(), l.end()};
}

Status check_cpusets(const conf::DomainDef& def, const std::set<unsigned>& host_cpus) {
    auto check = [&](const std::string& cpuset, const std::string& where) -> Status {
        for (unsigned c : id_list(cpuset))
            if (!host_cpus.contains(c))
                return fail(ErrorCode::Unsupported, "{} cpuset='{}': CPU {} is not one of this host's online CPUs ({})", where, cpuset, c,
                            fmt::join(host_cpus, ","));
        return {};
    };
    VIREO_TRY(check(def.vcpu_cpuset, "<vcpu>"));
    for (const auto& p : def.cputune.vcpupins) VIREO_TRY(check(p.cpuset, fmt::format("<cputune><vcpupin vcpu='{}'>", p.id)));
    VIREO_TRY(check(def.cputune.emulatorpin, "<cputune><emulatorpin>"));
    for (const auto& p : def.cputune.iothreadpins)
        VIREO_TRY(check(p.cpuset, fmt::format("<cputune><iothreadpin iothread='{}'>", p.id)));
    return {};
}

bool wants_thread_affinity(const conf::DomainDef& def) {
    const auto& ct = def.cputune;
    return !def.vcpu_cpuset.empty() || !ct.vcpupins.empty() || !ct.emulatorpin.empty() || !ct.iothreadpins.empty();
}

Status apply_thread_affinity(Monitor& mon, const conf::DomainDef& def, pid_t qemu_pid) {
    if (!wants_thread_affinity(def)) return {};
    const auto& ct = def.cputune;
    std::set<int> guest_threads;
    auto vcpus = mon.query_cpus_fast();
    if (!vcpus) return std::unexpected(vcpus.error());
    for (const auto& v : *vcpus) {
        guest_threads.insert(v.thread_id);
        std::string cpuset = def.vcpu_cpuset;
        for (const auto& p : ct.vcpupins)
            if (p.id == v.index) cpuset = p.cpuset;
        if (!cpuset.empty()) VIREO_TRY(set_affinity(v.thread_id, cpuset, fmt::format("vCPU {}", v.index)));
    }
    auto iothreads = mon.query_iothreads();
    if (!iothreads) return std::unexpected(iothreads.error());
    for (const auto& t : *iothreads) {
        guest_threads.insert(t.thread_id);
        std::string cpuset = def.vcpu_cpuset;
        for (const auto& p : ct.iothreadpins)
            if (iothread_object_id(p.id) == t.id) cpuset = p.cpuset;
        if (!cpuset.empty()) VIREO_TRY(set_affinity(t.thread_id, cpuset, t.id));
    }
    const std::string emulator = !ct.emulatorpin.empty() ? ct.emulatorpin : def.vcpu_cpuset;
    if (emulator.empty()) return {};
    return pin_other_threads(qemu_pid, guest_threads, emulator);
}

Status pin_other_threads(pid_t qemu_pid, const std::set<int>& guest_threads, const std::string& cpuset) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::path("/proc") / std::to_string(qemu_pid) / "task", ec)) {
        const int tid = util::parse_number<int>(e.path().filename().native()).value_or(0);
        if (tid <= 0 || guest_threads.contains(tid)) continue;
        // A thread may end meanwhile (QEMU's short-lived workers): ESRCH is no failure.
        VIREO_TRY(set_affinity(tid, cpuset, "the emulator", true));
    }
    if (ec) return fail(ErrorCode::System, "cannot list the threads of QEMU (pid {}): {}", qemu_pid, ec.message());
    return {};
}

Status pin_emulator(Monitor& mon, pid_t qemu_pid, const std::string& cpuset) {
    std::set<int> guest_threads;
    auto vcpus = mon.query_cpus_fast();
    if (!vcpus) return std::unexpected(vcpus.error());
    for (const auto& v : *vcpus) guest_threads.insert(v.thread_id);
    auto iothreads = mon.query_iothreads();
    if (!iothreads) return std::unexpected(iothreads.error());
    for (const auto& t : *iothreads) guest_threads.insert(t.thread_id);
    return pin_other_threads(qemu_pid, guest_threads, cpuset);
}

Status pin_vcpu(Monitor& mon, unsigned vcpu, const std::string& cpuset) {
    auto vcpus = mon.query_cpus_fast();
    if (!vcpus) return std::unexpected(vcpus.error());
    for (const auto& v : *vcpus)
        if (v.index == vcpu) return set_affinity(v.thread_id, cpuset, fmt::format("vCPU {}", vcpu));
    return fail(ErrorCode::InvalidArg, "invalid argument: vcpu {} is not present in the running domain", vcpu);
}

Status refresh_memory_devices(Monitor& mon, conf::DomainDef& live) {
    if (live.devices.memories.empty()) return {};
    auto devs = mon.query_memory_devices();
    if (!devs) return std::unexpected(devs.error());
    for (auto& m : live.devices.memories)
        for (const auto& d : *devs)
            if (d.id == m.info.alias && d.type == "virtio-mem") {
                m.current_kib = d.size / 1024;
            } else if (d.id == m.info.alias) {
                m.info.address.type = "dimm";
                m.info.address.slot = d.slot;
                m.info.address.base = fmt::format("{:#x}", d.addr);
            }
    return {};
}

}  // namespace vireo::qemu
