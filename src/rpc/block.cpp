// The disk procedures of libvirt's remote program: what virsh's domblkstat,
// domblkinfo and blockresize call (virDomainBlockStats,
// virDomainBlockStatsFlags, virDomainGetBlockInfo, virDomainBlockResize),
// and its block job verbs (virDomainBlockCommit, virDomainBlockPull,
// virDomainBlockRebase, virDomainGetBlockJobInfo, virDomainBlockJobAbort,
// virDomainBlockJobSetSpeed),
// each run as the operation the vireo CLI runs for the same verb. Layouts
// are the public protocol's; the code is ours.
#include <algorithm>
#include <array>
#include <cstdlib>
#include <limits>
#include <string_view>
#include <utility>

#include "driver/ops/all.hpp"
#include "rpc/events.hpp"
#include "rpc/handlers.hpp"

namespace vireo::rpc {

namespace ops = driver::ops;
using Call = Connection::Call;

namespace {

using namespace handlers;

// REMOTE_DOMAIN_BLOCK_STATS_PARAMETERS_MAX.
constexpr std::int32_t kBlockStatsParametersMax = 16;
// VIR_TYPED_PARAM_STRING_OKAY: the client reads string parameters (none here).
constexpr std::uint32_t kTypedParamStringOkay = 4;
// VIR_DOMAIN_BLOCK_RESIZE_BYTES: the size is in bytes, else KiB.
constexpr std::uint32_t kResizeBytes = 1;

// virDomainBlockStats: rd_req, rd_bytes, wr_req, wr_bytes, errs (QEMU
// counts no errors: -1, "unknown", as libvirt answers).
Status block_stats(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(path, call.args.string());
    return run<ops::DomainBlockStats>(c, call, [ref = dom.ref(), path](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(s, d.call<ops::DomainBlockStats>({.ref = ref, .device = path}));
        XdrWriter w;
        w.i64(static_cast<std::int64_t>(s.rd_req));
        w.i64(static_cast<std::int64_t>(s.rd_bytes));
        w.i64(static_cast<std::int64_t>(s.wr_req));
        w.i64(static_cast<std::int64_t>(s.wr_bytes));
        w.i64(-1);
        return w.take();
    });
}

// virDomainBlockStatsFlags: the counters as typed parameters (llong), in
// the order libvirt's QEMU driver gives them; nparams 0 asks how many.
Status block_stats_flags(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(path, call.args.string());
    VIREO_RPC_GET(nparams, call.args.i32());
    VIREO_RPC_GET(flags, call.args.u32());
    if (nparams < 0 || nparams > kBlockStatsParametersMax)
        return fail(ErrorCode::InvalidArg, "nparams {} is outside the protocol's bounds (0..{})", nparams,
                    kBlockStatsParametersMax);
    if (flags & ~kTypedParamStringOkay) return fail(ErrorCode::Unsupported, "block statistics flags {:#x}", flags);
    return run<ops::DomainBlockStats>(c, call, [ref = dom.ref(), path, nparams](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(s, d.call<ops::DomainBlockStats>({.ref = ref, .device = path}));
        const std::array<std::pair<std::string_view, std::uint64_t>, 8> params{{{"wr_bytes", s.wr_bytes},
                                                                                 {"wr_operations", s.wr_req},
                                                                                 {"rd_bytes", s.rd_bytes},
                                                                                 {"rd_operations", s.rd_req},
                                                                                 {"flush_operations", s.flush_operations},
                                                                                 {"wr_total_times", s.wr_total_times},
                                                                                 {"rd_total_times", s.rd_total_times},
                                                                                 {"flush_total_times", s.flush_total_times}}};
        constexpr std::int32_t kLlong = 3;  // VIR_TYPED_PARAM_LLONG
        const auto n = nparams == 0 ? std::size_t{0} : std::min(params.size(), static_cast<std::size_t>(nparams));
        XdrWriter w;
        w.u32(static_cast<std::uint32_t>(n));
        for (std::size_t i = 0; i < n; ++i) {
            w.string(params[i].first);
            w.i32(kLlong);
            w.i64(static_cast<std::int64_t>(params[i].second));
        }
        w.i32(nparams == 0 ? static_cast<std::int32_t>(params.size()) : static_cast<std::int32_t>(n));
        return w.take();
    });
}

// virDomainGetBlockInfo: allocation, capacity, physical (in that order on the wire).
Status get_block_info(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(path, call.args.string());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags != 0) return fail(ErrorCode::Unsupported, "block info flags {:#x}", flags);
    return run<ops::DomainBlockInfo>(c, call, [ref = dom.ref(), path](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(b, d.call<ops::DomainBlockInfo>({.ref = ref, .device = path}));
        XdrWriter w;
        w.u64(b.allocation);
        w.u64(b.capacity);
        w.u64(b.physical);
        return w.take();
    });
}

// virDomainBlockResize: the size in KiB, or bytes with VIR_DOMAIN_BLOCK_RESIZE_BYTES.
Status block_resize(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(disk, call.args.string());
    VIREO_RPC_GET(size, call.args.u64());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~kResizeBytes) return fail(ErrorCode::Unsupported, "block resize flags {:#x}", flags);
    if (!(flags & kResizeBytes)) {
        if (size > std::numeric_limits<std::uint64_t>::max() / 1024)
            return fail(ErrorCode::InvalidArg, "invalid argument: size must be less than {}",
                        std::numeric_limits<std::uint64_t>::max() / 1024);
        size *= 1024;
    }
    return run_empty<ops::DomainBlockResize>(c, call, {.ref = dom.ref(), .path = disk, .size = size});
}

// --- block jobs ----------------------------------------------------------------------
// Bandwidths travel in MiB/s unless the call's BANDWIDTH_BYTES flag says bytes/s.

// virDomainBlockCommitFlags.
constexpr std::uint32_t kCommitShallow = 1, kCommitDelete = 2, kCommitActive = 4, kCommitBytes = 16;
// virDomainBlockRebaseFlags.
constexpr std::uint32_t kRebaseShallow = 1, kRebaseReuseExt = 2, kRebaseCopyRaw = 4, kRebaseCopy = 8, kRebaseBytes = 64;
// VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES.
constexpr std::uint32_t kPullBytes = 64;
// virDomainBlockJobAbortFlags.
constexpr std::uint32_t kAbortAsync = 1, kAbortPivot = 2;
// VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES, VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES.
constexpr std::uint32_t kInfoBytes = 1, kSpeedBytes = 1;

Result<std::uint64_t> bandwidth_bytes(std::uint64_t value, bool bytes) {
    if (bytes) return value;
    if (value > (std::numeric_limits<std::uint64_t>::max() >> 20))
        return fail(ErrorCode::InvalidArg, "invalid argument: bandwidth must be less than {}", std::numeric_limits<std::uint64_t>::max() >> 20);
    return value << 20;
}

// virDomainBlockJobType of vireo's job types.
std::int32_t job_type_number(std::string_view type) {
    if (type == "pull") return 1;
    if (type == "copy") return 2;
    if (type == "commit") return 3;
    if (type == "active_commit") return 4;
    return 0;
}

// virDomainBlockCommit: base and top may be null (the bottom, the active layer).
Status block_commit(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(disk, call.args.string());
    VIREO_RPC_GET(base, call.args.optional_string());
    VIREO_RPC_GET(top, call.args.optional_string());
    VIREO_RPC_GET(bandwidth, call.args.u64());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~(kCommitShallow | kCommitDelete | kCommitActive | kCommitBytes))
        return fail(ErrorCode::Unsupported, "block commit flags {:#x}", flags);
    VIREO_RPC_GET(bw, bandwidth_bytes(bandwidth, (flags & kCommitBytes) != 0));
    return run_empty<ops::DomainBlockCommit>(c, call,
                                             {.ref = dom.ref(), .path = disk, .base = base.value_or(""), .top = top.value_or(""),
                                              .active = (flags & kCommitActive) != 0, .shallow = (flags & kCommitShallow) != 0,
                                              .delete_images = (flags & kCommitDelete) != 0, .bandwidth = bw});
}

// virDomainBlockPull: every backing image into the disk.
Status block_pull(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(disk, call.args.string());
    VIREO_RPC_GET(bandwidth, call.args.u64());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~kPullBytes) return fail(ErrorCode::Unsupported, "block pull flags {:#x}", flags);
    VIREO_RPC_GET(bw, bandwidth_bytes(bandwidth, (flags & kPullBytes) != 0));
    return run_empty<ops::DomainBlockPull>(c, call, {.ref = dom.ref(), .path = disk, .bandwidth = bw});
}

// virDomainBlockRebase: a pull down to `base`, or with the COPY flag a copy
// to the file `base` (what virsh blockcopy calls without --xml).
Status block_rebase(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(disk, call.args.string());
    VIREO_RPC_GET(base, call.args.optional_string());
    VIREO_RPC_GET(bandwidth, call.args.u64());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~(kRebaseShallow | kRebaseReuseExt | kRebaseCopyRaw | kRebaseCopy | kRebaseBytes))
        return fail(ErrorCode::Unsupported, "block rebase flags {:#x}", flags);
    VIREO_RPC_GET(bw, bandwidth_bytes(bandwidth, (flags & kRebaseBytes) != 0));
    if (!(flags & kRebaseCopy)) {
        if (flags & (kRebaseShallow | kRebaseReuseExt | kRebaseCopyRaw))
            return fail(ErrorCode::InvalidArg, "invalid argument: block rebase flags {:#x} need VIR_DOMAIN_BLOCK_REBASE_COPY", flags);
        return run_empty<ops::DomainBlockPull>(c, call, {.ref = dom.ref(), .path = disk, .base = base.value_or(""), .bandwidth = bw});
    }
    if (!base || base->empty()) return fail(ErrorCode::InvalidArg, "invalid argument: a block copy needs a destination");
    return run_empty<ops::DomainBlockCopy>(c, call,
                                           {.ref = dom.ref(), .path = disk, .dest = *base,
                                            .format = (flags & kRebaseCopyRaw) ? "raw" : "", .shallow = (flags & kRebaseShallow) != 0,
                                            .reuse_external = (flags & kRebaseReuseExt) != 0, .bandwidth = bw});
}

// virDomainGetBlockJobInfo: found (1, or 0 without a running job), type,
// bandwidth, cur, end.
Status get_block_job_info(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(disk, call.args.string());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~kInfoBytes) return fail(ErrorCode::Unsupported, "block job info flags {:#x}", flags);
    const bool bytes = (flags & kInfoBytes) != 0;
    return run<ops::DomainBlockJobInfo>(c, call, [ref = dom.ref(), disk, bytes](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(params, d.call<ops::DomainBlockJobInfo>({.ref = ref, .path = disk}));
        std::string type, state;
        std::uint64_t cur = 0, end = 0, bandwidth = 0;
        auto number = [](const std::string& text) { return std::strtoull(text.c_str(), nullptr, 10); };
        for (const auto& p : params) {
            if (p.field == "type") type = p.value;
            else if (p.field == "state") state = p.value;
            else if (p.field == "cur") cur = number(p.value);
            else if (p.field == "end") end = number(p.value);
            else if (p.field == "bandwidth") bandwidth = number(p.value);
        }
        const bool found = state == "running" || state == "ready";
        XdrWriter w;
        w.i32(found ? 1 : 0);
        w.i32(found ? job_type_number(type) : 0);
        w.u64(found ? (bytes ? bandwidth : bandwidth >> 20) : 0);
        w.u64(found ? cur : 0);
        w.u64(found ? end : 0);
        return w.take();
    });
}

// virDomainBlockJobAbort: cancel, or pivot a ready job; ASYNC: do not wait.
Status block_job_abort(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(disk, call.args.string());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~(kAbortAsync | kAbortPivot)) return fail(ErrorCode::Unsupported, "block job abort flags {:#x}", flags);
    return run_empty<ops::DomainBlockJobAbort>(
        c, call, {.ref = dom.ref(), .path = disk, .pivot = (flags & kAbortPivot) != 0, .async_end = (flags & kAbortAsync) != 0});
}

// virDomainBlockJobSetSpeed.
Status block_job_set_speed(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(disk, call.args.string());
    VIREO_RPC_GET(bandwidth, call.args.u64());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~kSpeedBytes) return fail(ErrorCode::Unsupported, "block job speed flags {:#x}", flags);
    VIREO_RPC_GET(bw, bandwidth_bytes(bandwidth, (flags & kSpeedBytes) != 0));
    return run_empty<ops::DomainBlockJobSetSpeed>(c, call, {.ref = dom.ref(), .path = disk, .bandwidth = bw});
}

#define VIREO_OP(T) op_of(Tag<ops::T>{})

const std::array kProcedures = std::to_array<ProcDef>({
    {Proc::DomainBlockStats, "domain_block_stats", VIREO_OP(DomainBlockStats), block_stats},
    {Proc::DomainBlockStatsFlags, "domain_block_stats_flags", VIREO_OP(DomainBlockStats), block_stats_flags},
    {Proc::DomainGetBlockInfo, "domain_get_block_info", VIREO_OP(DomainBlockInfo), get_block_info},
    {Proc::DomainBlockResize, "domain_block_resize", VIREO_OP(DomainBlockResize), block_resize},
    {Proc::DomainBlockCommit, "domain_block_commit", VIREO_OP(DomainBlockCommit), block_commit},
    {Proc::DomainBlockPull, "domain_block_pull", VIREO_OP(DomainBlockPull), block_pull},
    {Proc::DomainBlockRebase, "domain_block_rebase", VIREO_OP(DomainBlockCopy), block_rebase},
    {Proc::DomainGetBlockJobInfo, "domain_get_block_job_info", VIREO_OP(DomainBlockJobInfo), get_block_job_info},
    {Proc::DomainBlockJobAbort, "domain_block_job_abort", VIREO_OP(DomainBlockJobAbort), block_job_abort},
    {Proc::DomainBlockJobSetSpeed, "domain_block_job_set_speed", VIREO_OP(DomainBlockJobSetSpeed), block_job_set_speed},
});
#undef VIREO_OP

}  // namespace

std::span<const ProcDef> block_procedures() { return kProcedures; }

}  // namespace vireo::rpc
