// The disk procedures of libvirt's remote program: what virsh's domblkstat,
// domblkinfo and blockresize call (virDomainBlockStats,
// virDomainBlockStatsFlags, virDomainGetBlockInfo, virDomainBlockResize),
// each run as the operation the vireo CLI runs for the same verb. Layouts
// are the public protocol's; the code is ours.
#include <algorithm>
#include <array>
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

#define VIREO_OP(T) op_of(Tag<ops::T>{})

const std::array kProcedures = std::to_array<ProcDef>({
    {Proc::DomainBlockStats, "domain_block_stats", VIREO_OP(DomainBlockStats), block_stats},
    {Proc::DomainBlockStatsFlags, "domain_block_stats_flags", VIREO_OP(DomainBlockStats), block_stats_flags},
    {Proc::DomainGetBlockInfo, "domain_get_block_info", VIREO_OP(DomainBlockInfo), get_block_info},
    {Proc::DomainBlockResize, "domain_block_resize", VIREO_OP(DomainBlockResize), block_resize},
});
#undef VIREO_OP

}  // namespace

std::span<const ProcDef> block_procedures() { return kProcedures; }

}  // namespace vireo::rpc
