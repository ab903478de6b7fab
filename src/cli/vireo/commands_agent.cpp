// Verbs on the guest agent, as virsh's: qemu-agent-command (a raw command
// of the agent's protocol), domtime (the guest's clock), domhostname,
// domfsinfo, domfsfreeze/domfsthaw, set-user-password, guestvcpus,
// guest-agent-timeout, guestinfo. The
// daemon finds the agent's channel and bounds every call by a timeout;
// shutdown/reboot --mode agent and domifaddr --source agent are with their
// own verbs.
#include <charconv>
#include <ctime>

#include <nlohmann/json.hpp>

#include "cli/vireo/commands.hpp"
#include "cli/vireo/session.hpp"
#include "cli/vireo/text.hpp"
#include "driver/ops/domain.hpp"

namespace vireo::cli {

namespace ops = driver::ops;

namespace {

// Two options a verb cannot take together, refused as virsh does.
bool exclusive(Session& s, const Args& a, std::string_view one, std::string_view other) {
    if (!a.has(one) || !a.has(other)) return true;
    s.error(fmt::format("Options --{} and --{} are mutually exclusive", one, other));
    return false;
}

int cmd_qemu_agent_command(Session& s, const Args& a) {
    if (!exclusive(s, a, "timeout", "async") || !exclusive(s, a, "timeout", "block") || !exclusive(s, a, "async", "block"))
        return 1;
    const auto timeout = a.number("timeout");
    if (a.has("timeout") && (!timeout || *timeout == 0)) {
        s.error("timeout value must be positive");
        return 1;
    }
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    std::string command;
    for (const auto& word : a.rest) command += (command.empty() ? "" : " ") + word;
    auto reply = s.conn()->call<ops::DomainAgentCommand>(
        {.ref = dom->name, .command = command, .timeout_s = timeout.value_or(0), .block = a.has("block"), .async = a.has("async")});
    if (!reply) {
        s.error(reply.error().full_message());  // virsh prints the reason alone
        return 1;
    }
    if (reply->empty()) return 0;  // --async: nothing to show
    if (a.has("pretty")) {
        auto j = nlohmann::json::parse(*reply, nullptr, false);
        if (!j.is_discarded()) {
            s.out("{}\n", j.dump(2));
            return 0;
        }
    }
    s.out("{}\n", *reply);
    return 0;
}

int cmd_domtime(Session& s, const Args& a) {
    if (!exclusive(s, a, "now", "time") || !exclusive(s, a, "now", "sync") || !exclusive(s, a, "time", "sync")) return 1;
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const bool set = a.has("now") || a.has("time") || a.has("sync");
    if (!set) {
        auto t = s.conn()->call<ops::DomainGetTime>({.ref = dom->name});
        if (!t) {
            s.error(t.error().full_message());
            return 1;
        }
        if (!a.has("pretty")) {
            s.out("Time: {}\n", t->seconds);
            return 0;
        }
        const std::time_t secs = t->seconds;
        std::tm tm{};
        gmtime_r(&secs, &tm);
        char buf[32];
        std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
        s.out("Time: {}\n", buf);
        return 0;
    }
    ops::DomainSetTime::Request req{.ref = dom->name, .sync = a.has("sync")};
    if (a.has("now")) {
        timespec now{};
        ::clock_gettime(CLOCK_REALTIME, &now);
        req.seconds = static_cast<std::uint64_t>(now.tv_sec);
        req.nseconds = static_cast<std::uint64_t>(now.tv_nsec);
    } else if (a.has("time")) {
        auto t = a.number("time");
        if (!t) {
            s.error(fmt::format("Unable to parse time '{}'", a.get("time")));
            return 1;
        }
        req.seconds = *t;
    }
    auto st = s.conn()->call<ops::DomainSetTime>(req);
    if (!st) {
        s.error(st.error().full_message());
        return 1;
    }
    return 0;
}

int cmd_domhostname(Session& s, const Args& a) {
    if (a.has("source") && a.get("source") != "agent") {
        s.error(fmt::format("domhostname --source {}: only 'agent' is supported (the guest agent tells its hostname)",
                            a.get("source")));
        return 1;
    }
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto name = s.conn()->call<ops::DomainHostname>({.ref = dom->name});
    if (!name) {
        s.error("failed to get hostname", name.error());
        return 1;
    }
    s.out("{}\n\n", *name);  // virsh's blank line after it
    return 0;
}

int cmd_domfsinfo(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto fs = s.conn()->call<ops::DomainFsInfo>({.ref = dom->name});
    if (!fs) {
        s.error("Unable to get filesystem information", fs.error());
        return 1;
    }
    if (fs->empty()) {
        s.out("No filesystems are mounted in the domain\n");  // virsh says it and succeeds
        return 0;
    }
    Table table({"Mountpoint", "Name", "Type", "Target"});
    for (const auto& f : *fs) table.add_row({f.mountpoint, f.name, f.type, f.targets});
    s.out("{}\n", table.render(!s.quiet()));
    return 0;
}

// domfsfreeze / domfsthaw: the mount points as virsh takes them (words, or
// --mountpoint repeated), one a line on the wire.
template <class Op>
int fs_freeze_verb(Session& s, const Args& a, std::string_view failed, std::string_view done) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    std::string mountpoints;
    for (const auto& m : a.rest) mountpoints += m + "\n";
    auto n = s.conn()->call<Op>({.ref = dom->name, .mountpoints = mountpoints});
    if (!n) {
        s.error(failed, n.error());
        return 1;
    }
    s.out("{} {} filesystem(s)\n\n", done, n->filesystems);
    return 0;
}

int cmd_domfsfreeze(Session& s, const Args& a) {
    return fs_freeze_verb<ops::DomainFsFreeze>(s, a, "Unable to freeze filesystems", "Froze");
}

int cmd_domfsthaw(Session& s, const Args& a) {
    return fs_freeze_verb<ops::DomainFsThaw>(s, a, "Unable to thaw filesystems", "Thawed");
}

int cmd_set_user_password(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::string user = a.get("user");
    auto st = s.conn()->call<ops::DomainSetUserPassword>(
        {.ref = dom->name, .user = user, .password = a.get("password"), .encrypted = a.has("encrypted")});
    if (!st) {
        s.error(st.error().full_message());
        return 1;
    }
    s.out("Password set successfully for {} in {}\n", user, dom->name);
    return 0;
}

// Without --cpulist: the guest's vCPUs as virsh prints typed parameters;
// with it, --enable or --disable brings them online or offline.
int cmd_guestvcpus(Session& s, const Args& a) {
    if (!exclusive(s, a, "enable", "disable")) return 1;
    for (const char* opt : {"enable", "disable"}) {
        if (a.has(opt) && !a.has("cpulist")) {
            s.error(fmt::format("Option --cpulist is required by option --{}", opt));
            return 1;
        }
    }
    if (a.has("cpulist") && !a.has("enable") && !a.has("disable")) {
        s.error("One of options --enable or --disable is required by option --cpulist");
        return 1;
    }
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    if (a.has("cpulist")) {
        auto st = s.conn()->call<ops::DomainSetGuestVcpus>({.ref = dom->name, .cpulist = a.get("cpulist"), .enable = a.has("enable")});
        if (!st) {
            s.error(st.error().full_message());
            return 1;
        }
        s.out("\n");
        return 0;
    }
    auto v = s.conn()->call<ops::DomainGuestVcpus>({.ref = dom->name});
    if (!v) {
        s.error(v.error().full_message());
        return 1;
    }
    s.out("{:<15}: {}\n{:<15}: {}\n{:<15}: {}\n\n", "vcpus", v->vcpus, "online", v->online, "offlinable", v->offlinable);
    return 0;
}

// Each parameter as virsh prints typed parameters.
int cmd_guestinfo(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto params = s.conn()->call<ops::DomainGuestInfo>(
        {.ref = dom->name, .users = a.has("user"), .os = a.has("os"), .timezone = a.has("timezone"),
         .hostname = a.has("hostname"), .filesystem = a.has("filesystem"), .disks = a.has("disk"),
         .interfaces = a.has("interface")});
    if (!params) {
        s.error(params.error().full_message());
        return 1;
    }
    for (const auto& p : *params) s.out("{:<20}: {}\n", p.field, p.value);
    s.out("\n");
    return 0;
}

// Without --timeout virsh asks for "block" (-2), as libvirt names it.
int cmd_guest_agent_timeout(Session& s, const Args& a) {
    const std::string timeout = a.get("timeout", "-2");
    int value = 0;
    const auto* end = timeout.data() + timeout.size();
    if (auto [p, ec] = std::from_chars(timeout.data(), end, value); ec != std::errc{} || p != end || timeout.empty()) {
        s.error(fmt::format("Numeric value '{}' for <timeout> option is malformed or out of range", timeout));
        return 1;
    }
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto st = s.conn()->call<ops::DomainAgentTimeout>({.ref = dom->name, .timeout = std::to_string(value)});
    if (!st) {
        s.error(st.error().full_message());
        return 1;
    }
    s.out("\n");
    return 0;
}

}  // namespace

void add_agent_commands(std::vector<CommandSpec>& t) {
    constexpr std::string_view group = "Domain Management";
    t.push_back({"qemu-agent-command", group, "QEMU Guest Agent Command",
                 "Run an arbitrary qemu guest agent command; UNSUPPORTED (as virsh says: for debugging)",
                 {kDomainOpt,
                  {"timeout", OptType::Number, "timeout seconds. must be positive."},
                  {"async", OptType::Bool, "execute command without waiting for timeout"},
                  {"block", OptType::Bool, "execute command without timeout"},
                  {"pretty", OptType::Bool, "pretty-print the output"},
                  {"cmd", OptType::Argv, "command", true, true}},
                 cmd_qemu_agent_command, true, true});
    t.push_back({"domtime", group, "domain time", "Gets or sets the domain's system time (through the guest agent)",
                 {kDomainOpt,
                  {"now", OptType::Bool, "set to the time of the host running virsh"},
                  {"pretty", OptType::Bool, "print domain's time in human readable form"},
                  {"sync", OptType::Bool, "instead of setting given time, synchronize from domain's RTC"},
                  {"time", OptType::Number, "time to set"}},
                 cmd_domtime, true, true});
    t.push_back({"domhostname", group, "print the domain's hostname", "Print the domain's hostname (from the guest agent).",
                 {kDomainOpt, {"source", OptType::String, "address source: 'agent'"}}, cmd_domhostname, true, true});
    t.push_back({"guest-agent-timeout", group, "Set the guest agent timeout",
                 "Set the number of seconds to wait for a response from the guest agent.",
                 {kDomainOpt, {"timeout", OptType::String, "timeout seconds."}}, cmd_guest_agent_timeout, true, true});
    t.push_back({"guestinfo", group, "query information about the guest (via agent)",
                 "Use the guest agent to query various information from guest's point of view",
                 {kDomainOpt,
                  {"user", OptType::Bool, "report active users"},
                  {"os", OptType::Bool, "report operating system information"},
                  {"timezone", OptType::Bool, "report timezone information"},
                  {"hostname", OptType::Bool, "report hostname"},
                  {"filesystem", OptType::Bool, "report filesystem information"},
                  {"disk", OptType::Bool, "report disk information"},
                  {"interface", OptType::Bool, "report interface information"}},
                 cmd_guestinfo, true, true});
    t.push_back({"domfsinfo", group, "Get information of domain's mounted filesystems.",
                 "Get information of domain's mounted filesystems.", {kDomainOpt}, cmd_domfsinfo, true, true});
    t.push_back({"domfsfreeze", group, "Freeze domain's mounted filesystems.",
                 "Freeze domain's mounted filesystems.",
                 {kDomainOpt, {"mountpoint", OptType::Argv, "mountpoint path to be frozen", false, true}},
                 cmd_domfsfreeze, true, true});
    t.push_back({"domfsthaw", group, "Thaw domain's mounted filesystems.", "Thaw domain's mounted filesystems.",
                 {kDomainOpt, {"mountpoint", OptType::Argv, "mountpoint path to be thawed", false, true}},
                 cmd_domfsthaw, true, true});
    t.push_back({"set-user-password", group, "set the user password inside the domain",
                 "changes the password of the specified user inside the domain",
                 {kDomainOpt,
                  {"user", OptType::String, "the username", true, true},
                  {"password", OptType::String, "the new password", true, true},
                  {"encrypted", OptType::Bool, "the password is already encrypted"}},
                 cmd_set_user_password, true, true});
    t.push_back({"guestvcpus", group, "query or modify state of vcpu in the guest (via agent)",
                 "Use the guest agent to query or set cpu state from guest's point of view",
                 {kDomainOpt,
                  {"cpulist", OptType::String, "list of cpus to enable or disable"},
                  {"enable", OptType::Bool, "enable cpus specified by cpulist"},
                  {"disable", OptType::Bool, "disable cpus specified by cpulist"}},
                 cmd_guestvcpus, true, true});
}

}  // namespace vireo::cli
