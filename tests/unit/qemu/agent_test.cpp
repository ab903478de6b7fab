// The guest agent client (qemu/agent.cpp) against a scripted peer on a unix
// socket, for what the real qemu-ga in the guest tests cannot stage: a
// stale reply left by an earlier command that timed out must never be
// taken for this command's (guest-sync-delimited), an agent that never
// answers costs one timeout, an error reply is an error.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "qemu/agent.hpp"
#include "qemu/qmp.hpp"
#include "support/support.hpp"

namespace vireo::qemu {
namespace {

using namespace std::chrono_literals;

// Accept one client, read its lines, answer each through `script` (a line
// -> what to write back, "" for nothing).
class Peer {
public:
    using Script = std::function<std::string(const std::string& line)>;
    Peer(const std::filesystem::path& path, Script script) : listener_(*listen_unix(path)) {
        thread_ = std::thread([this, script = std::move(script)] {
            UniqueFd c(::accept(listener_.get(), nullptr, nullptr));
            if (!c) return;
            std::string buf;
            char chunk[512];
            for (;;) {
                const ssize_t n = ::read(c.get(), chunk, sizeof chunk);
                if (n <= 0) return;
                buf.append(chunk, static_cast<std::size_t>(n));
                std::size_t nl;
                while ((nl = buf.find('\n')) != std::string::npos) {
                    std::string line = buf.substr(0, nl);
                    buf.erase(0, nl + 1);
                    if (!line.empty() && line.front() == '\xff') line.erase(0, 1);
                    const std::string out = script(line);
                    if (!out.empty() && !write_fully(c.get(), out.data(), out.size())) return;
                }
            }
        });
    }
    ~Peer() {
        ::shutdown(listener_.get(), SHUT_RDWR);
        thread_.join();
    }
private:
    UniqueFd listener_;
    std::thread thread_;
};

// The id a guest-sync-delimited line carries.
std::string sync_id(const std::string& line) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    return j.is_object() && j.value("execute", "") == "guest-sync-delimited" ? j["arguments"]["id"].dump() : "";
}

TEST(GuestAgent, StaleRepliesBeforeTheSyncAreDropped) {
    test::TempDir dir;
    const auto sock = dir.path() / "qga.sock";
    Peer peer(sock, [](const std::string& line) -> std::string {
        if (auto id = sync_id(line); !id.empty())
            // A reply of a command that timed out earlier, then the sync's
            // 0xFF and an old sync's answer, then ours.
            return "{\"return\": \"stale\"}\n\xff{\"return\": 7}\n{\"return\": " + id + "}\n";
        if (line.find("guest-get-host-name") != std::string::npos) return "{\"return\": {\"host-name\": \"g1\"}}\n";
        return "";
    });
    auto r = agent::execute(sock, "guest-get-host-name", nullptr, 5s);
    ASSERT_TRUE(r) << r.error().full_message();
    EXPECT_EQ((*r)["host-name"], "g1");
}

TEST(GuestAgent, ErrorsAndSilenceAreErrors) {
    test::TempDir dir;
    const auto sock = dir.path() / "qga.sock";
    {
        Peer peer(sock, [](const std::string& line) -> std::string {
            if (auto id = sync_id(line); !id.empty()) return "\xff{\"return\": " + id + "}\n";
            return "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command guest-x has not been found\"}}\n";
        });
        auto r = agent::execute_text(sock, R"({"execute":"guest-x"})", 5s);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, ErrorCode::Unsupported);  // the agent lacks the command
        EXPECT_EQ(r.error().message,
                  "internal error: unable to execute QEMU agent command 'guest-x': The command guest-x has not been found");
    }
    {
        Peer failing(sock, [](const std::string& line) -> std::string {
            if (auto id = sync_id(line); !id.empty()) return "\xff{\"return\": " + id + "}\n";
            return "{\"error\": {\"class\": \"GenericError\", \"desc\": \"failed to open /x\"}}\n";
        });
        auto r = agent::execute_text(sock, R"({"execute":"guest-file-open"})", 5s);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, ErrorCode::OperationFailed);  // the command ran and failed
    }
    {
        // The sync waits the default bound even when the call asks for less.
        Peer silent(sock, [](const std::string&) { return std::string(); });
        auto r = agent::execute(sock, "guest-ping", nullptr, 300ms);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, ErrorCode::Timeout);
        EXPECT_EQ(r.error().message, "Guest agent is not responding: QEMU guest agent is not connected");
    }
    auto bad = agent::execute_text(sock, "[1,2]", 1s);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, ErrorCode::InvalidArg);
}

}  // namespace
}  // namespace vireo::qemu
