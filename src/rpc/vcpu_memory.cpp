// The vCPU and memory procedures of libvirt's remote program: what virsh's
// vcpucount, vcpuinfo, setvcpus, setvcpu, vcpupin, emulatorpin, setmem, setmaxmem and
// dommemstat call (virDomainGetVcpusFlags, virDomainGetVcpus,
// virDomainPinVcpuFlags, virDomainSetMemoryFlags, virDomainMemoryStats, ...),
// each run as the operation the vireo CLI runs for the same verb. Layouts are
// the public protocol's; the code is ours.
#include <array>
#include <optional>

#include "conf/domain.hpp"
#include "driver/ops/all.hpp"
#include "rpc/events.hpp"
#include "rpc/handlers.hpp"

namespace vireo::rpc {

namespace ops = driver::ops;
using Call = Connection::Call;

namespace {

using namespace handlers;

// virDomainModificationImpact, virDomainVcpuFlags, virDomainMemoryModFlags.
constexpr std::uint32_t kAffectLive = 1, kAffectConfig = 2;
constexpr std::uint32_t kVcpuMaximum = 4, kVcpuGuest = 8, kVcpuHotpluggable = 16;
constexpr std::uint32_t kMemMaximum = 4;
constexpr int kVcpuRunning = 1;  // virVcpuState
// Bounds of the protocol (REMOTE_CPUMAP_MAX, REMOTE_VCPUINFO_MAX, REMOTE_CPUMAPS_MAX).
constexpr std::uint32_t kCpumapMax = 2048, kVcpuinfoMax = 16384, kCpumapsMax = 8388608;

// The live/config/current request fields of a change, from its flags; the
// daemon resolves them as for the vireo CLI (driver/impact.hpp).
struct Impact {
    bool live = false, config = false, current = false;
};
Impact impact_of(std::uint32_t flags) {
    const bool live = (flags & kAffectLive) != 0, config = (flags & kAffectConfig) != 0;
    return {.live = live, .config = config, .current = !live && !config};
}

// A cpumap (one bit per host CPU, CPU 0 in the low bit of the first byte) as
// a CPU list ("0-1,3").
Result<std::string> cpulist_of(const std::string& map) {
    std::vector<unsigned> cpus;
    for (std::size_t byte = 0; byte < map.size(); ++byte)
        for (unsigned bit = 0; bit < 8; ++bit)
            if ((static_cast<unsigned char>(map[byte]) >> bit) & 1U) cpus.push_back(static_cast<unsigned>(byte * 8 + bit));
    if (cpus.empty()) return fail(ErrorCode::InvalidArg, "Invalid value of 0 for cpumap: no host CPU is set");
    return conf::format_cpu_list(cpus);
}

// A CPU list as a cpumap of `maplen` bytes; "" is every CPU of the host's `cpus`.
std::string cpumap_of(const std::string& list, unsigned cpus, std::size_t maplen) {
    std::string map(maplen, '\0');
    std::vector<unsigned> set;
    if (list.empty()) {
        for (unsigned c = 0; c < cpus; ++c) set.push_back(c);
    } else if (auto l = conf::parse_cpu_list(list)) {
        set = std::move(*l);
    }
    for (unsigned c : set)
        if (c / 8 < maplen) map[c / 8] = static_cast<char>(static_cast<unsigned char>(map[c / 8]) | (1U << (c % 8)));
    return map;
}

// The definition a query reads, as libvirt's: the live one of a running
// domain unless `flags` say config, the persistent one otherwise; a live
// query of a domain that is not running is refused.
Result<conf::DomainDef> definition(driver::Driver& d, const std::string& ref, std::uint32_t flags) {
    if ((flags & kAffectLive) && (flags & kAffectConfig))
        return fail(ErrorCode::InvalidArg, "flags 'live' and 'config' are mutually exclusive");
    VIREO_RPC_GET(s, d.call<ops::DomainLookup>({.ref = ref}));
    const bool running = s.id >= 0;
    if ((flags & kAffectLive) && !running) return fail(ErrorCode::InvalidState, "domain is not running");
    VIREO_RPC_GET(xml, d.call<ops::DomainXml>({.ref = ref, .inactive = (flags & kAffectConfig) || !running}));
    conf::ParseFlags pf;
    pf.no_validate = true;
    return conf::parse_domain_xml(xml, pf);
}

Result<unsigned> host_cpus(driver::Driver& d) {
    VIREO_RPC_GET(n, d.call<ops::HostNodeInfo>({}));
    return n.cpus;
}

// --- vCPU counts ---------------------------------------------------------------------------

Status get_vcpus_flags(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & kVcpuGuest) {  // the guest's count, from its agent: online ones, or all with maximum
        return run<ops::DomainGuestVcpus>(c, call, [ref = dom.ref(), flags](driver::Driver& d) -> Result<std::string> {
            VIREO_RPC_GET(v, d.call<ops::DomainGuestVcpus>({.ref = ref}));
            const auto cpus = conf::parse_cpu_list((flags & kVcpuMaximum) ? v.vcpus : v.online);
            return one_int(static_cast<std::int32_t>(cpus ? cpus->size() : 0));
        });
    }
    return run<ops::DomainXml>(c, call, [ref = dom.ref(), flags](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(def, definition(d, ref, flags & (kAffectLive | kAffectConfig)));
        const unsigned n = (flags & kVcpuMaximum) ? def.vcpus : def.vcpus_current.value_or(def.vcpus);
        return one_int(static_cast<std::int32_t>(n));
    });
}

// virDomainGetMaxVcpus: the maximum of the live definition, or of the
// persistent one when the domain is not running.
Status get_max_vcpus(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    return run<ops::DomainXml>(c, call, [ref = dom.ref()](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(def, definition(d, ref, 0));
        return one_int(static_cast<std::int32_t>(def.vcpus));
    });
}

Status set_vcpus_with(Connection& c, Call& call, const DomainRef& dom, std::uint32_t nvcpus, std::uint32_t flags) {
    if (flags & ~(kAffectLive | kAffectConfig | kVcpuMaximum | kVcpuHotpluggable | kVcpuGuest))
        return fail(ErrorCode::Unsupported, "vCPU flags {:#x}", flags);
    const auto im = impact_of(flags);
    ops::DomainSetVcpus::Request req{.ref = dom.ref(), .count = nvcpus, .maximum = (flags & kVcpuMaximum) != 0,
                                     .live = im.live, .config = im.config, .current = im.current,
                                     .guest = (flags & kVcpuGuest) != 0};
    return run_empty<ops::DomainSetVcpus>(c, call, std::move(req));
}

// virDomainSetVcpus: the running domain (VIR_DOMAIN_AFFECT_LIVE).
Status set_vcpus(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(nvcpus, call.args.u32());
    return set_vcpus_with(c, call, dom, nvcpus, kAffectLive);
}

Status set_vcpus_flags(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(nvcpus, call.args.u32());
    VIREO_RPC_GET(flags, call.args.u32());
    return set_vcpus_with(c, call, dom, nvcpus, flags);
}

// virDomainSetVcpu: the vCPUs of a list ("1,3-4") enabled (state 1) or
// disabled (0) one by one.
Status set_vcpu(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(vcpulist, call.args.string());
    VIREO_RPC_GET(state, call.args.i32());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~(kAffectLive | kAffectConfig)) return fail(ErrorCode::Unsupported, "vCPU flags {:#x}", flags);
    const auto im = impact_of(flags);
    ops::DomainSetVcpu::Request req{.ref = dom.ref(), .vcpulist = std::move(vcpulist), .enable = state != 0,
                                    .live = im.live, .config = im.config, .current = im.current};
    return run_empty<ops::DomainSetVcpu>(c, call, std::move(req));
}

// --- vCPU threads and pinning --------------------------------------------------------------

// virDomainGetVcpus: each vCPU's state, time and host CPU, and its affinity
// as `maplen` bytes per vCPU (opaque arrays are XDR strings on the wire).
Status get_vcpus(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(maxinfo, call.args.i32());
    VIREO_RPC_GET(maplen, call.args.i32());
    if (maxinfo < 0 || maplen < 0 || static_cast<std::uint32_t>(maxinfo) > kVcpuinfoMax ||
        static_cast<std::uint64_t>(maxinfo) * static_cast<std::uint64_t>(maplen) > kCpumapsMax)
        return fail(ErrorCode::InvalidArg, "maxinfo {} and maplen {} exceed the protocol's bounds", maxinfo, maplen);
    return run<ops::DomainVcpuInfo>(c, call, [ref = dom.ref(), maxinfo, maplen](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(vcpus, d.call<ops::DomainVcpuInfo>({.ref = ref}));
        VIREO_RPC_GET(cpus, host_cpus(d));
        const std::size_t n = std::min(vcpus.size(), static_cast<std::size_t>(maxinfo));
        XdrWriter w;
        w.u32(static_cast<std::uint32_t>(n));
        for (std::size_t i = 0; i < n; ++i) {
            w.u32(static_cast<std::uint32_t>(vcpus[i].id));
            w.i32(kVcpuRunning);
            w.u64(vcpus[i].cpu_time_ns);
            w.i32(static_cast<std::int32_t>(vcpus[i].cpu));
        }
        std::string maps;
        for (std::size_t i = 0; i < n; ++i) maps += cpumap_of(vcpus[i].affinity, cpus, static_cast<std::size_t>(maplen));
        w.string(maps);
        return w.take();
    });
}

// virDomainGetVcpuPinInfo: the affinity each vCPU's definition gives it.
Status get_vcpu_pin_info(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(ncpumaps, call.args.i32());
    VIREO_RPC_GET(maplen, call.args.i32());
    VIREO_RPC_GET(flags, call.args.u32());
    if (ncpumaps < 0 || maplen <= 0 || static_cast<std::uint32_t>(maplen) > kCpumapMax ||
        static_cast<std::uint64_t>(ncpumaps) * static_cast<std::uint64_t>(maplen) > kCpumapsMax)
        return fail(ErrorCode::InvalidArg, "ncpumaps {} and maplen {} exceed the protocol's bounds", ncpumaps, maplen);
    return run<ops::DomainXml>(c, call, [ref = dom.ref(), ncpumaps, maplen, flags](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(def, definition(d, ref, flags));
        VIREO_RPC_GET(cpus, host_cpus(d));
        const unsigned n = std::min(def.vcpus, static_cast<unsigned>(ncpumaps));
        std::string maps;
        for (unsigned id = 0; id < n; ++id)
            maps += cpumap_of(conf::vcpu_pinning(def, id), cpus, static_cast<std::size_t>(maplen));
        XdrWriter w;
        w.string(maps);
        w.i32(static_cast<std::int32_t>(n));
        return w.take();
    });
}

Status pin_with(Connection& c, Call& call, const DomainRef& dom, std::string thread, std::uint32_t vcpu,
                const std::string& map, std::uint32_t flags) {
    if (flags & ~(kAffectLive | kAffectConfig)) return fail(ErrorCode::Unsupported, "pinning flags {:#x}", flags);
    const auto im = impact_of(flags);
    ops::DomainPinThread::Request req{.ref = dom.ref(), .thread = std::move(thread), .vcpu = vcpu, .cpulist = {},
                                      .live = im.live, .config = im.config, .current = im.current};
    return run<ops::DomainPinThread>(c, call, [req, map](driver::Driver& d) mutable -> Result<std::string> {
        VIREO_RPC_GET(list, cpulist_of(map));  // an empty map: libvirt's invalid argument
        req.cpulist = std::move(list);
        VIREO_TRY(d.call<ops::DomainPinThread>(req));
        return empty();
    });
}

// virDomainPinVcpu: the running domain's vCPU.
Status pin_vcpu(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(vcpu, call.args.u32());
    VIREO_RPC_GET(map, call.args.string(kCpumapMax));
    return pin_with(c, call, dom, "vcpu", vcpu, map, kAffectLive);
}

Status pin_vcpu_flags(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(vcpu, call.args.u32());
    VIREO_RPC_GET(map, call.args.string(kCpumapMax));
    VIREO_RPC_GET(flags, call.args.u32());
    return pin_with(c, call, dom, "vcpu", vcpu, map, flags);
}

Status pin_emulator(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(map, call.args.string(kCpumapMax));
    VIREO_RPC_GET(flags, call.args.u32());
    return pin_with(c, call, dom, "emulator", 0, map, flags);
}

Status get_emulator_pin_info(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(maplen, call.args.i32());
    VIREO_RPC_GET(flags, call.args.u32());
    if (maplen <= 0 || static_cast<std::uint32_t>(maplen) > kCpumapMax)
        return fail(ErrorCode::InvalidArg, "maplen {} is outside the protocol's bounds", maplen);
    return run<ops::DomainXml>(c, call, [ref = dom.ref(), maplen, flags](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(def, definition(d, ref, flags));
        VIREO_RPC_GET(cpus, host_cpus(d));
        XdrWriter w;
        w.string(cpumap_of(conf::emulator_pinning(def), cpus, static_cast<std::size_t>(maplen)));
        w.i32(1);  // one map: the emulator threads share it
        return w.take();
    });
}

// virNodeGetCPUMap: the host's CPUs, all online (virsh sizes its maps by it).
Status node_cpu_map(Connection& c, Call& call) {
    VIREO_RPC_GET(need_map, call.args.i32());
    VIREO_RPC_GET(need_online, call.args.i32());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags != 0) return fail(ErrorCode::Unsupported, "node CPU map flags {:#x}", flags);
    return run<ops::HostNodeInfo>(c, call, [need_map, need_online](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(cpus, host_cpus(d));
        XdrWriter w;
        w.string(need_map ? cpumap_of("", cpus, (cpus + 7) / 8) : std::string{});
        w.u32(need_online ? cpus : 0);
        w.i32(static_cast<std::int32_t>(cpus));
        return w.take();
    });
}

// --- memory --------------------------------------------------------------------------------

Status set_memory_with(Connection& c, Call& call, const DomainRef& dom, std::uint64_t kib, std::uint32_t flags) {
    if (flags & ~(kAffectLive | kAffectConfig | kMemMaximum)) return fail(ErrorCode::Unsupported, "memory flags {:#x}", flags);
    const auto im = impact_of(flags);
    ops::DomainSetMemory::Request req{.ref = dom.ref(), .kib = kib, .maximum = (flags & kMemMaximum) != 0,
                                      .live = im.live, .config = im.config, .current = im.current};
    return run_empty<ops::DomainSetMemory>(c, call, std::move(req));
}

// virDomainSetMemory: the balloon of the running domain.
Status set_memory(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(kib, call.args.u64());
    return set_memory_with(c, call, dom, kib, kAffectLive);
}

// virDomainSetMaxMemory: the maximum, of the current state's definition.
Status set_max_memory(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(kib, call.args.u64());
    return set_memory_with(c, call, dom, kib, kMemMaximum);
}

Status set_memory_flags(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(kib, call.args.u64());
    VIREO_RPC_GET(flags, call.args.u32());
    return set_memory_with(c, call, dom, kib, flags);
}

// virDomainMemoryStatTags, by the names vireo's statistics carry.
std::optional<std::int32_t> memory_stat_tag(std::string_view name) {
    static constexpr std::array<std::string_view, 13> kTags{
        "swap_in", "swap_out",    "major_fault", "minor_fault", "unused",          "available",      "actual",
        "rss",     "usable",      "last_update", "disk_caches", "hugetlb_pgalloc", "hugetlb_pgfail"};
    for (std::size_t i = 0; i < kTags.size(); ++i)
        if (kTags[i] == name) return static_cast<std::int32_t>(i);
    return std::nullopt;
}

Status memory_stats(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(max_stats, call.args.u32());
    VIREO_RPC_GET(flags, call.args.u32());
    constexpr std::uint32_t kMemoryStatsMax = 1024;  // REMOTE_DOMAIN_MEMORY_STATS_MAX
    if (max_stats > kMemoryStatsMax) return fail(ErrorCode::InvalidArg, "maxStats {} is over {}", max_stats, kMemoryStatsMax);
    if (flags != 0) return fail(ErrorCode::Unsupported, "memory statistics flags {:#x}", flags);
    return run<ops::DomainMemoryStats>(c, call, [ref = dom.ref(), max_stats](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(stats, d.call<ops::DomainMemoryStats>({.ref = ref}));
        std::vector<std::pair<std::int32_t, std::uint64_t>> out;
        for (const auto& s : stats)
            if (auto tag = memory_stat_tag(s.tag); tag && out.size() < max_stats) out.emplace_back(*tag, s.value);
        XdrWriter w;
        w.u32(static_cast<std::uint32_t>(out.size()));
        for (const auto& [tag, value] : out) {
            w.i32(tag);
            w.u64(value);
        }
        return w.take();
    });
}

Status set_memory_stats_period(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(period, call.args.i32());
    VIREO_RPC_GET(flags, call.args.u32());
    if (period < 0) return fail(ErrorCode::InvalidArg, "Invalid collection period value '{}'", period);
    if (flags & ~(kAffectLive | kAffectConfig)) return fail(ErrorCode::Unsupported, "memory statistics flags {:#x}", flags);
    const auto im = impact_of(flags);
    ops::DomainSetMemoryStatsPeriod::Request req{.ref = dom.ref(), .seconds = static_cast<std::uint64_t>(period),
                                                 .live = im.live, .config = im.config, .current = im.current};
    return run_empty<ops::DomainSetMemoryStatsPeriod>(c, call, std::move(req));
}

#define VIREO_OP(T) op_of(Tag<ops::T>{})

const std::array kProcedures = std::to_array<ProcDef>({
    {Proc::DomainGetMaxVcpus, "domain_get_max_vcpus", VIREO_OP(DomainXml), get_max_vcpus},
    {Proc::DomainGetVcpusFlags, "domain_get_vcpus_flags", VIREO_OP(DomainXml), get_vcpus_flags},
    {Proc::DomainSetVcpus, "domain_set_vcpus", VIREO_OP(DomainSetVcpus), set_vcpus},
    {Proc::DomainSetVcpusFlags, "domain_set_vcpus_flags", VIREO_OP(DomainSetVcpus), set_vcpus_flags},
    {Proc::DomainSetVcpu, "domain_set_vcpu", VIREO_OP(DomainSetVcpu), set_vcpu},
    {Proc::DomainGetVcpus, "domain_get_vcpus", VIREO_OP(DomainVcpuInfo), get_vcpus},
    {Proc::DomainGetVcpuPinInfo, "domain_get_vcpu_pin_info", VIREO_OP(DomainXml), get_vcpu_pin_info},
    {Proc::DomainPinVcpu, "domain_pin_vcpu", VIREO_OP(DomainPinThread), pin_vcpu},
    {Proc::DomainPinVcpuFlags, "domain_pin_vcpu_flags", VIREO_OP(DomainPinThread), pin_vcpu_flags},
    {Proc::DomainPinEmulator, "domain_pin_emulator", VIREO_OP(DomainPinThread), pin_emulator},
    {Proc::DomainGetEmulatorPinInfo, "domain_get_emulator_pin_info", VIREO_OP(DomainXml), get_emulator_pin_info},
    {Proc::NodeGetCpuMap, "node_get_cpu_map", VIREO_OP(HostNodeInfo), node_cpu_map},
    {Proc::DomainSetMemory, "domain_set_memory", VIREO_OP(DomainSetMemory), set_memory},
    {Proc::DomainSetMaxMemory, "domain_set_max_memory", VIREO_OP(DomainSetMemory), set_max_memory},
    {Proc::DomainSetMemoryFlags, "domain_set_memory_flags", VIREO_OP(DomainSetMemory), set_memory_flags},
    {Proc::DomainMemoryStats, "domain_memory_stats", VIREO_OP(DomainMemoryStats), memory_stats},
    {Proc::DomainSetMemoryStatsPeriod, "domain_set_memory_stats_period", VIREO_OP(DomainSetMemoryStatsPeriod),
     set_memory_stats_period},
});
#undef VIREO_OP

}  // namespace

std::span<const ProcDef> vcpu_memory_procedures() { return kProcedures; }

}  // namespace vireo::rpc
