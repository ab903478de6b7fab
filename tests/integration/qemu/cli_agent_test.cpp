// The guest agent through the CLI, as virsh's verbs: the test guest runs
// Debian's qemu-ga on the virtio-serial channel org.qemu.guest_agent.0; the
// channel's state follows the guest (connected once qemu-ga opened it,
// disconnected when it is gone), qemu-agent-command, domtime, domhostname
// and domifaddr --source agent answer from the guest, an agent that is gone
// is an error at once (never a hang), and shutdown --mode agent powers the
// guest off from inside.
#include <gtest/gtest.h>

#include <ctime>
#include <fstream>
#include <regex>
#include <thread>

#include "helpers.hpp"
#include "support/guest.hpp"
#include "support/session_cli.hpp"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kAgentChannel =
    "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>";

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

class QemuCliAgent : public SessionGuestTest {
protected:
    std::string ok(const std::vector<std::string>& args) {
        auto r = vireo(args);
        EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
        return r.out;
    }
    // The live XML shows the agent's channel in `state` within `timeout`.
    bool channel_state(const std::string& state, std::chrono::seconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        const std::string want = "name='org.qemu.guest_agent.0' state='" + state + "'";
        while (std::chrono::steady_clock::now() < deadline) {
            if (contains(vireo({"dumpxml", "ag"}).out, want)) return true;
            std::this_thread::sleep_for(200ms);
        }
        return false;
    }
    static std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }
    // The seconds domtime prints.
    std::optional<std::int64_t> guest_time() {
        std::smatch m;
        const std::string out = ok({"domtime", "ag"});
        if (!std::regex_search(out, m, std::regex("^Time: (\\d+)\n$"))) return std::nullopt;
        return std::stoll(m[1]);
    }
};

TEST_F(QemuCliAgent, AgentVerbsAnswerFromTheGuest) {
    const std::string file = (dir_ / "ag.xml").string();
    std::ofstream(file) << qemu::test::guest_xml("ag", kAgentChannel, "vireo.hostname=agentguest");
    ASSERT_EQ(vireo({"define", file}).exit_code, 0);
    auto events = QemuProcess::start(cli_.argv({"event", "--domain", "ag", "--event", "agent-lifecycle", "--loop"}));
    ASSERT_TRUE(events) << events.error().full_message();
    ASSERT_EQ(vireo({"start", "ag"}).exit_code, 0);
    // The socket QEMU listens on is in the live XML; the guest's qemu-ga opens the port.
    EXPECT_TRUE(std::regex_search(ok({"dumpxml", "ag"}), std::regex("<source mode='bind' path='[^']+/org.qemu.guest_agent.0'/>")));
    ASSERT_TRUE(channel_state("connected", 180s)) << ok({"dumpxml", "ag"});
    EXPECT_TRUE(events->wait_for(std::regex("event 'agent-lifecycle' for domain 'ag': state: 'connected' reason: 'channel event'"),
                                 10s))
        << events->output();

    // qemu-agent-command: the agent's reply as it sent it; its errors as errors.
    EXPECT_EQ(ok({"qemu-agent-command", "ag", R"({"execute":"guest-ping"})"}), "{\"return\":{}}\n");
    const std::string info = ok({"qemu-agent-command", "ag", "--pretty", R"({"execute":"guest-info"})"});
    EXPECT_TRUE(contains(info, "\"version\":")) << info;
    EXPECT_TRUE(contains(info, "\n  \"return\": {")) << info;
    auto unknown = vireo({"qemu-agent-command", "ag", R"({"execute":"guest-no-such-command"})"});
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_TRUE(contains(unknown.err, "unable to execute QEMU agent command 'guest-no-such-command'")) << unknown.err;
    auto garbage = vireo({"qemu-agent-command", "ag", "{not json"});
    EXPECT_EQ(garbage.exit_code, 1);
    EXPECT_TRUE(contains(garbage.err, "must be a JSON object")) << garbage.err;
    auto both = vireo({"qemu-agent-command", "ag", "--async", "--block", R"({"execute":"guest-ping"})"});
    EXPECT_EQ(both.exit_code, 1);
    EXPECT_TRUE(contains(both.err, "Options --async and --block are mutually exclusive")) << both.err;

    // domtime: the guest's clock (its RTC is the host's at boot); set and read back.
    auto t = guest_time();
    ASSERT_TRUE(t);
    EXPECT_LT(std::abs(*t - now()), 120) << *t;
    EXPECT_EQ(ok({"domtime", "ag", "--time", "1700000000"}), "");
    t = guest_time();
    ASSERT_TRUE(t);
    EXPECT_GE(*t, 1700000000);
    EXPECT_LT(*t, 1700000000 + 60);
    EXPECT_TRUE(std::regex_search(ok({"domtime", "ag", "--pretty"}), std::regex("^Time: 2023-11-14 22:\\d\\d:\\d\\d\n$")));
    EXPECT_EQ(ok({"domtime", "ag", "--now"}), "");
    t = guest_time();
    ASSERT_TRUE(t);
    EXPECT_LT(std::abs(*t - now()), 60) << *t;

    EXPECT_EQ(ok({"domhostname", "ag"}), "agentguest\n\n");
    const std::string addrs = ok({"domifaddr", "ag", "--source", "agent"});
    EXPECT_TRUE(std::regex_search(addrs, std::regex("\n lo +00:00:00:00:00:00 +ipv4 +127\\.0\\.0\\.1/8\n"))) << addrs;

    // The agent goes away: the channel says so, and a call fails at once.
    std::string said;
    EXPECT_TRUE(cli_.on_console("ag", "killall qemu-ga; echo KILLED-$((1+1))", "KILLED-2", 60s, &said)) << said;
    ASSERT_TRUE(channel_state("disconnected", 30s)) << ok({"dumpxml", "ag"});
    EXPECT_TRUE(events->wait_for(std::regex("state: 'disconnected' reason: 'channel event'"), 10s)) << events->output();
    auto gone = vireo({"qemu-agent-command", "ag", R"({"execute":"guest-ping"})"});
    EXPECT_EQ(gone.exit_code, 1);
    EXPECT_TRUE(contains(gone.err, "Guest agent is not responding: QEMU guest agent is not connected")) << gone.err;
    auto no_time = vireo({"domtime", "ag"});
    EXPECT_EQ(no_time.exit_code, 1);
    EXPECT_TRUE(contains(no_time.err, "QEMU guest agent is not connected")) << no_time.err;

    // Back (the guest's /init starts it the same way), then shutdown --mode agent.
    EXPECT_TRUE(cli_.on_console("ag", "start-qemu-ga; echo STARTED-$((1+1))", "STARTED-2", 60s, &said)) << said;
    ASSERT_TRUE(channel_state("connected", 60s)) << ok({"dumpxml", "ag"});
    EXPECT_EQ(ok({"shutdown", "ag", "--mode", "agent"}), "Domain 'ag' is being shutdown\n\n");
    bool off = false;
    for (int i = 0; i < 300 && !off; ++i) {
        off = vireo({"domstate", "ag"}).out == "shut off\n\n";
        if (!off) std::this_thread::sleep_for(200ms);
    }
    EXPECT_TRUE(off) << vireo({"domstate", "ag"}).out;
}

// A domain without the agent's channel: every agent verb says it is not configured.
TEST_F(QemuCliAgent, WithoutTheChannelTheAgentIsNotConfigured) {
    const std::string file = (dir_ / "ag.xml").string();
    std::ofstream(file) << qemu::test::guest_xml("ag");
    ASSERT_EQ(vireo({"define", file}).exit_code, 0);
    auto stopped = vireo({"domtime", "ag"});
    EXPECT_EQ(stopped.exit_code, 1);
    EXPECT_TRUE(contains(stopped.err, "is not running")) << stopped.err;
    ASSERT_EQ(vireo({"start", "--paused", "ag"}).exit_code, 0);  // no need to boot it
    for (const auto& args : std::vector<std::vector<std::string>>{{"qemu-agent-command", "ag", R"({"execute":"guest-ping"})"},
                                                                   {"domtime", "ag"},
                                                                   {"domhostname", "ag"},
                                                                   {"shutdown", "ag", "--mode", "agent"},
                                                                   {"domifaddr", "ag", "--source", "agent"}}) {
        auto r = vireo(args);
        EXPECT_EQ(r.exit_code, 1) << args[0];
        EXPECT_TRUE(contains(r.err, "QEMU guest agent is not configured")) << args[0] << ": " << r.err;
    }
}

}  // namespace
}  // namespace vireo::test
