// The guest agent's procedures of libvirt's remote program: virsh domtime
// (virDomainGetTime, virDomainSetTime) and domhostname
// (virDomainGetHostname, from the agent), each run as the operation the
// vireo CLI runs. shutdown/reboot --mode agent travel in the flags of the
// lifecycle procedures (procedures.cpp). Layouts are the public protocol's;
// the code is ours.
#include <array>

#include "driver/ops/all.hpp"
#include "rpc/events.hpp"
#include "rpc/handlers.hpp"

namespace vireo::rpc {

namespace ops = driver::ops;
using Call = Connection::Call;

namespace {

using namespace handlers;

constexpr std::uint32_t kTimeSync = 1;  // VIR_DOMAIN_TIME_SYNC
// virDomainGetHostnameFlags.
constexpr std::uint32_t kHostnameLease = 1, kHostnameAgent = 2;

Status get_time(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags != 0) return fail(ErrorCode::Unsupported, "time flags {:#x}", flags);
    return run<ops::DomainGetTime>(c, call, [ref = dom.ref()](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(t, d.call<ops::DomainGetTime>({.ref = ref}));
        XdrWriter w;
        w.i64(t.seconds);
        w.u32(static_cast<std::uint32_t>(t.nseconds));
        return w.take();
    });
}

Status set_time(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(seconds, call.args.i64());
    VIREO_RPC_GET(nseconds, call.args.u32());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~kTimeSync) return fail(ErrorCode::Unsupported, "time flags {:#x}", flags);
    if (seconds < 0 || nseconds >= 1'000'000'000U)
        return fail(ErrorCode::InvalidArg, "invalid time {} s {} ns", seconds, nseconds);
    return run_empty<ops::DomainSetTime>(c, call, {.ref = dom.ref(), .seconds = static_cast<std::uint64_t>(seconds),
                                                   .nseconds = nseconds, .sync = (flags & kTimeSync) != 0});
}

// The agent answers (the default, and VIR_DOMAIN_GET_HOSTNAME_AGENT); DHCP
// leases as a source are not served.
Status get_hostname(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(flags, call.args.u32());
    if ((flags & kHostnameLease) || (flags & ~(kHostnameLease | kHostnameAgent)))
        return fail(ErrorCode::Unsupported, "hostname flags {:#x} (only the guest agent is a source)", flags);
    return run<ops::DomainHostname>(c, call, [ref = dom.ref()](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(name, d.call<ops::DomainHostname>({.ref = ref}));
        XdrWriter w;
        w.string(name);
        return w.take();
    });
}

#define VIREO_OP(T) op_of(Tag<ops::T>{})

const std::array kProcedures = std::to_array<ProcDef>({
    {Proc::DomainGetTime, "domain_get_time", VIREO_OP(DomainGetTime), get_time},
    {Proc::DomainSetTime, "domain_set_time", VIREO_OP(DomainSetTime), set_time},
    {Proc::DomainGetHostname, "domain_get_hostname", VIREO_OP(DomainHostname), get_hostname},
});
#undef VIREO_OP

}  // namespace

std::span<const ProcDef> agent_procedures() { return kProcedures; }

}  // namespace vireo::rpc
