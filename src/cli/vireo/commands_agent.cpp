// Verbs on the guest agent, as virsh's: qemu-agent-command (a raw command
// of the agent's protocol), domtime (the guest's clock), domhostname. The
// daemon finds the agent's channel and bounds every call by a timeout;
// shutdown/reboot --mode agent and domifaddr --source agent are with their
// own verbs.
#include <ctime>

#include <nlohmann/json.hpp>

#include "cli/vireo/commands.hpp"
#include "cli/vireo/session.hpp"
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
}

}  // namespace vireo::cli
