// The guest agent's procedures of libvirt's remote program: virsh domtime
// (virDomainGetTime, virDomainSetTime), domhostname (virDomainGetHostname,
// from the agent), domfsinfo (virDomainGetFSInfo), domfsfreeze/domfsthaw
// (virDomainFSFreeze/FSThaw), set-user-password (virDomainSetUserPassword)
// guestvcpus (virDomainGetGuestVcpus/SetGuestVcpus), guestinfo
// (virDomainGetGuestInfo) and guest-agent-timeout
// (virDomainAgentSetResponseTimeout), each run as the operation the
// vireo CLI runs. shutdown/reboot --mode agent travel in the flags of the
// lifecycle procedures (procedures.cpp). Layouts are the public protocol's;
// the code is ours.
#include <array>
#include <charconv>
#include <ranges>
#include <string_view>
#include <vector>

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

// REMOTE_DOMAIN_FSFREEZE_MOUNTPOINTS_MAX: mount points in one call.
constexpr std::uint32_t kMountpointsMax = 256;

// virDomainFSFreeze / virDomainFSThaw: the mount points (none: all), one a
// line as the operation takes them; no flags.
template <class Op>
Status fs_freeze(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(n, call.args.count(kMountpointsMax));
    std::string mountpoints;
    for (std::uint32_t i = 0; i < n; ++i) {
        VIREO_RPC_GET(m, call.args.string());
        if (m.empty() || m.find('\n') != std::string::npos) return fail(ErrorCode::InvalidArg, "invalid mount point '{}'", m);
        mountpoints += m + "\n";
    }
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags != 0) return fail(ErrorCode::Unsupported, "filesystem freeze flags {:#x}", flags);
    return run<Op>(c, call, [ref = dom.ref(), mountpoints](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(count, d.call<Op>({.ref = ref, .mountpoints = mountpoints}));
        XdrWriter w;
        w.i32(static_cast<std::int32_t>(count.filesystems));
        return w.take();
    });
}

// virDomainGetFSInfo: per filesystem its mount point, name, type and the
// domain's disks under it, then the count.
Status get_fs_info(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags != 0) return fail(ErrorCode::Unsupported, "filesystem info flags {:#x}", flags);
    return run<ops::DomainFsInfo>(c, call, [ref = dom.ref()](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(fs, d.call<ops::DomainFsInfo>({.ref = ref}));
        XdrWriter w;
        w.u32(static_cast<std::uint32_t>(fs.size()));
        for (const auto& f : fs) {
            w.string(f.mountpoint);
            w.string(f.name);
            w.string(f.type);
            std::vector<std::string_view> targets;
            for (auto t : std::views::split(std::string_view(f.targets), ','))
                if (!t.empty()) targets.emplace_back(t.begin(), t.end());
            w.u32(static_cast<std::uint32_t>(targets.size()));
            for (auto t : targets) w.string(t);
        }
        w.u32(static_cast<std::uint32_t>(fs.size()));
        return w.take();
    });
}

constexpr std::uint32_t kPasswordEncrypted = 1;  // VIR_DOMAIN_PASSWORD_ENCRYPTED

Status set_user_password(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(user, call.args.optional_string());
    VIREO_RPC_GET(password, call.args.optional_string());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~kPasswordEncrypted) return fail(ErrorCode::Unsupported, "password flags {:#x}", flags);
    if (!user || !password) return fail(ErrorCode::InvalidArg, "invalid argument: a user and a password are required");
    return run_empty<ops::DomainSetUserPassword>(
        c, call, {.ref = dom.ref(), .user = *user, .password = *password, .encrypted = (flags & kPasswordEncrypted) != 0});
}

// The value of a typed parameter of type VIR_TYPED_PARAM_STRING.
void string_value(XdrWriter& w, std::string_view value) {
    constexpr std::int32_t kTypedParamString = 7;
    w.i32(kTypedParamString);
    w.string(value);
}

void string_param(XdrWriter& w, std::string_view field, std::string_view value) {
    w.string(field);
    string_value(w, value);
}

// virDomainGetGuestVcpus: "vcpus", "online", "offlinable" as CPU lists.
Status get_guest_vcpus(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags != 0) return fail(ErrorCode::Unsupported, "guest vCPU flags {:#x}", flags);
    return run<ops::DomainGuestVcpus>(c, call, [ref = dom.ref()](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(v, d.call<ops::DomainGuestVcpus>({.ref = ref}));
        XdrWriter w;
        w.u32(3);
        string_param(w, "vcpus", v.vcpus);
        string_param(w, "online", v.online);
        string_param(w, "offlinable", v.offlinable);
        return w.take();
    });
}

// virDomainSetGuestVcpus: state 1 brings the CPUs of `cpumap` online, 0 offline.
Status set_guest_vcpus(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(cpumap, call.args.string());
    VIREO_RPC_GET(state, call.args.i32());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags != 0) return fail(ErrorCode::Unsupported, "guest vCPU flags {:#x}", flags);
    return run_empty<ops::DomainSetGuestVcpus>(c, call, {.ref = dom.ref(), .cpulist = cpumap, .enable = state != 0});
}

// A typed parameter as libvirt's wire has it (remote_typed_param), from
// its text form.
void typed_param(XdrWriter& w, const driver::TypedParam& p) {
    constexpr std::int32_t kInt = 1, kUint = 2, kUllong = 4, kBoolean = 6;
    w.string(p.field);
    std::uint64_t n = 0;
    std::from_chars(p.value.data(), p.value.data() + p.value.size(), n);
    if (p.type == "int") {
        std::int64_t v = 0;
        std::from_chars(p.value.data(), p.value.data() + p.value.size(), v);
        w.i32(kInt);
        w.i32(static_cast<std::int32_t>(v));
    } else if (p.type == "uint") {
        w.i32(kUint);
        w.u32(static_cast<std::uint32_t>(n));
    } else if (p.type == "ullong") {
        w.i32(kUllong);
        w.u64(n);
    } else if (p.type == "boolean") {
        w.i32(kBoolean);
        w.i32(p.value == "yes" ? 1 : 0);
    } else {
        string_value(w, p.value);
    }
}

// virDomainGetGuestInfo: the groups of `types` (none: all), libvirt's typed parameters.
Status get_guest_info(Connection& c, Call& call) {
    namespace gi = driver::guest_info;
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(types, call.args.u32());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags != 0) return fail(ErrorCode::Unsupported, "guest info flags {:#x}", flags);
    if (types & ~gi::kAll) return fail(ErrorCode::Unsupported, "guest info types {:#x}", types);
    ops::DomainGuestInfo::Request req{.ref = dom.ref(), .users = (types & gi::kUsers) != 0, .os = (types & gi::kOs) != 0,
                                      .timezone = (types & gi::kTimezone) != 0, .hostname = (types & gi::kHostname) != 0,
                                      .filesystem = (types & gi::kFilesystem) != 0, .disks = (types & gi::kDisks) != 0,
                                      .interfaces = (types & gi::kInterfaces) != 0};
    return run<ops::DomainGuestInfo>(c, call, [req](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(params, d.call<ops::DomainGuestInfo>(req));
        XdrWriter w;
        w.u32(static_cast<std::uint32_t>(params.size()));
        for (const auto& p : params) typed_param(w, p);
        return w.take();
    });
}

// virDomainAgentSetResponseTimeout: libvirt's values (-2 block, -1 default,
// 0 no wait, seconds); answers 0.
Status agent_set_response_timeout(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(timeout, call.args.i32());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags != 0) return fail(ErrorCode::Unsupported, "agent timeout flags {:#x}", flags);
    return run<ops::DomainAgentTimeout>(c, call, [ref = dom.ref(), timeout](driver::Driver& d) -> Result<std::string> {
        VIREO_TRY(d.call<ops::DomainAgentTimeout>({.ref = ref, .timeout = std::to_string(timeout)}));
        XdrWriter w;
        w.i32(0);
        return w.take();
    });
}

#define VIREO_OP(T) op_of(Tag<ops::T>{})

const std::array kProcedures = std::to_array<ProcDef>({
    {Proc::DomainGetTime, "domain_get_time", VIREO_OP(DomainGetTime), get_time},
    {Proc::DomainSetTime, "domain_set_time", VIREO_OP(DomainSetTime), set_time},
    {Proc::DomainGetHostname, "domain_get_hostname", VIREO_OP(DomainHostname), get_hostname},
    {Proc::DomainFsFreeze, "domain_fsfreeze", VIREO_OP(DomainFsFreeze), fs_freeze<ops::DomainFsFreeze>},
    {Proc::DomainFsThaw, "domain_fsthaw", VIREO_OP(DomainFsThaw), fs_freeze<ops::DomainFsThaw>},
    {Proc::DomainGetFsInfo, "domain_get_fsinfo", VIREO_OP(DomainFsInfo), get_fs_info},
    {Proc::DomainSetUserPassword, "domain_set_user_password", VIREO_OP(DomainSetUserPassword), set_user_password},
    {Proc::DomainGetGuestVcpus, "domain_get_guest_vcpus", VIREO_OP(DomainGuestVcpus), get_guest_vcpus},
    {Proc::DomainSetGuestVcpus, "domain_set_guest_vcpus", VIREO_OP(DomainSetGuestVcpus), set_guest_vcpus},
    {Proc::DomainGetGuestInfo, "domain_get_guest_info", VIREO_OP(DomainGuestInfo), get_guest_info},
    {Proc::DomainAgentSetResponseTimeout, "domain_agent_set_response_timeout", VIREO_OP(DomainAgentTimeout),
     agent_set_response_timeout},
});
#undef VIREO_OP

}  // namespace

std::span<const ProcDef> agent_procedures() { return kProcedures; }

}  // namespace vireo::rpc
