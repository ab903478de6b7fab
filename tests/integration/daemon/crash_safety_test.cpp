// Crash safety of vireod with the QEMU driver: SIGKILL at random moments
// during a loop of define / undefine (and now and then start / destroy) on
// many domains, 100 times. After every restart: no definition is torn or
// lost (each acknowledged change is there, an unacknowledged one is either
// fully there or not at all), and the running guests are reattached.
#include <dirent.h>

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "client/connect.hpp"
#include "daemon_process.hpp"
#include "driver/persistence.hpp"
#include "support/support.hpp"

namespace vireo::test {
namespace {

constexpr int kKills = 100;
constexpr int kNames = 30;

std::string name_of(int i) { return "crash" + std::to_string(i); }

// What the test knows about one domain.
struct Known {
    bool defined = false;
    int version = 0;  // <description>v<version></description> of the definition
};

// An operation sent but not acknowledged when the daemon died.
struct InFlight {
    std::string name;
    bool define = false;  // else undefine
    int version = 0;
};

std::optional<int> version_in(const std::string& xml) {
    auto pos = xml.find("<description>v");
    if (pos == std::string::npos) return std::nullopt;
    return std::atoi(xml.c_str() + pos + 14);
}

// Processes whose command line mentions `needle` (left-over QEMUs).
std::vector<int> processes_mentioning(const std::string& needle) {
    std::vector<int> out;
    DIR* d = ::opendir("/proc");
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        int pid = std::atoi(e->d_name);
        if (pid <= 0 || pid == ::getpid()) continue;
        std::ifstream in(std::string("/proc/") + e->d_name + "/cmdline");
        std::stringstream ss;
        ss << in.rdbuf();
        if (ss.str().find(needle) != std::string::npos) out.push_back(pid);
    }
    ::closedir(d);
    return out;
}

class CrashSafety : public ::testing::Test {
protected:
    void SetUp() override {
        if (!std::filesystem::exists(guest_dir() / "vmlinuz")) GTEST_SKIP() << "SKIPPED: test guest not built";
        args = {"--driver=qemu", "--timeout", "0", "--socket", sock.native(), "--config-dir", etc.native(),
                "--run-dir", run.native(), "--log-file", (dir / "vireod.log").native()};
    }
    void start_daemon() {
        // The killed daemon's socket file may still accept for a moment: a
        // child it forked to launch QEMU (not yet exec'd) holds a copy of the
        // listening socket. Without the stale file, "accepts" means the new
        // daemon listens.
        std::error_code ec;
        std::filesystem::remove(sock, ec);
        std::string why;
        ASSERT_TRUE(daemon.start(args, sock, dir / "out", &why)) << why;
    }
    std::unique_ptr<driver::Driver> connect() {
        auto c = client::connect("qemu+unix:///session?socket=" + sock.native());
        EXPECT_TRUE(c) << c.error().full_message() << "\ndaemon log (tail):\n" << tail(dir / "vireod.log");
        return c ? std::move(*c) : nullptr;
    }
    static std::string tail(const std::filesystem::path& file) {
        std::ifstream in(file);
        std::stringstream ss;
        ss << in.rdbuf();
        std::string text = ss.str();
        return text.substr(text.size() > 3000 ? text.size() - 3000 : 0);
    }

    // However the test ended (a failed ASSERT returns early, before the
    // test's own clean-up), none of its guests may outlive it.
    void TearDown() override {
        daemon.stop();
        for (int pid : processes_mentioning(run.native())) ::kill(pid, SIGKILL);
    }

    TempDir dir;
    std::filesystem::path sock = dir / "sock";
    std::filesystem::path etc = dir / "etc";
    std::filesystem::path run = dir / "run";
    std::vector<std::string> args;
    DaemonProcess daemon;
};

TEST_F(CrashSafety, HundredKillsDuringDefineUndefineAndStart) {
    start_daemon();
    // Two guests that run through every kill and must be reattached each time.
    std::map<std::string, int> keep;  // name -> id
    {
        auto c = connect();
        ASSERT_TRUE(c);
        for (const char* name : {"keep0", "keep1"}) {
            ASSERT_TRUE(c->define_domain(guest_domain_xml(name), true));
            auto started = c->start_domain(name, {});
            ASSERT_TRUE(started) << started.error().message;
            keep[name] = c->lookup_domain(name)->id;
        }
    }

    std::map<std::string, Known> known;
    std::optional<InFlight> doubt;
    std::mt19937 rng(4242);
    int next_version = 1;
    int flips = 0;

    for (int kill = 0; kill < kKills; ++kill) {
        // --- a worker hammers define / undefine until the daemon dies -----
        std::mutex m;  // guards known/doubt/next_version between worker and checker
        std::atomic<bool> stop{false};
        std::thread worker([&, seed = rng()] {
            std::mt19937 wrng(seed);
            auto c = client::connect("qemu+unix:///session?socket=" + sock.native());
            if (!c) return;
            if (kill % 20 == 5) {
                // Now and then a real start / destroy of a guest during the kills.
                ++flips;
                {
                    // Until acknowledged, keep1's fate is in doubt.
                    std::lock_guard lk(m);
                    keep.erase("keep1");
                }
                auto info = (*c)->lookup_domain("keep1");
                if (!info) return;
                if (info->state == driver::DomainState::Running) {
                    if (!(*c)->destroy_domain("keep1", {})) return;
                } else {
                    if (!(*c)->start_domain("keep1", {})) return;
                    auto after = (*c)->lookup_domain("keep1");
                    if (!after) return;
                    std::lock_guard lk(m);
                    keep["keep1"] = after->id;
                }
            }
            while (!stop) {
                std::string name = name_of(static_cast<int>(wrng() % kNames));
                InFlight op;
                {
                    std::lock_guard lk(m);
                    op.name = name;
                    op.define = !known[name].defined || wrng() % 3 == 0;  // redefine sometimes
                    op.version = op.define ? next_version++ : 0;
                    doubt = op;
                }
                Status s;
                if (op.define) {
                    auto r = (*c)->define_domain(guest_domain_xml(name, 128, "v" + std::to_string(op.version)), true);
                    s = r ? Status{} : Status{std::unexpected(r.error())};
                } else {
                    s = (*c)->undefine_domain(name, {});
                }
                if (!s) return;  // the daemon died under us: the op stays in doubt
                std::lock_guard lk(m);
                known[name] = op.define ? Known{true, op.version} : Known{false, 0};
                doubt.reset();
            }
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 120));
        daemon.kill();
        stop = true;
        worker.join();

        // --- restart and check ---------------------------------------------
        // No torn file: every definition on disk parses.
        driver::Persistence persistence(etc, run);
        auto report = persistence.load_configs();
        ASSERT_TRUE(report.skipped.empty()) << "kill " << kill << ": " << report.skipped.front();

        start_daemon();
        auto c = connect();
        ASSERT_TRUE(c);
        for (int i = 0; i < kNames; ++i) {
            std::string name = name_of(i);
            auto xml = c->domain_xml(name, true);
            bool exists = xml.has_value();
            std::optional<int> version = exists ? version_in(*xml) : std::nullopt;
            Known& k = known[name];
            if (doubt && doubt->name == name) {
                // Either the old state or the new one, never something else.
                bool old_state = exists == k.defined && (!exists || version == k.version);
                bool new_state = doubt->define ? (exists && version == doubt->version) : !exists;
                ASSERT_TRUE(old_state || new_state)
                    << "kill " << kill << ": " << name << " exists=" << exists << " version=" << version.value_or(-1)
                    << " expected " << k.version << " or " << doubt->version;
                k = exists ? Known{true, *version} : Known{false, 0};
                continue;
            }
            ASSERT_EQ(exists, k.defined) << "kill " << kill << ": definition of " << name
                                         << (k.defined ? " lost" : " resurrected")
                                         << (exists ? std::string{} : " (" + xml.error().message + ")")
                                         << "\ndaemon log (tail):\n" << tail(dir / "vireod.log");
            if (exists) {
                ASSERT_EQ(version, k.version) << "kill " << kill << ": " << name << " has a stale definition";
            }
        }
        doubt.reset();
        for (const auto& [name, id] : keep) {
            auto info = c->lookup_domain(name);
            ASSERT_TRUE(info) << "kill " << kill << ": " << name << " lost";
            ASSERT_EQ(info->state, driver::DomainState::Running) << "kill " << kill << ": " << name << " not reattached";
            ASSERT_EQ(info->id, id) << "kill " << kill << ": " << name << " came back with another id";
        }
        // A start/destroy that was cut short leaves keep1 running or not: learn which.
        if (!keep.contains("keep1")) {
            auto info = c->lookup_domain("keep1");
            ASSERT_TRUE(info);
            if (info->state == driver::DomainState::Running) keep["keep1"] = info->id;
        }
    }
    EXPECT_GE(flips, 4);

    // Clean up: every guest destroyed, and no QEMU of ours left behind.
    auto c = connect();
    ASSERT_TRUE(c);
    auto list = c->list_domains();
    ASSERT_TRUE(list);
    for (const auto& s : *list) {
        if (s.state != driver::DomainState::Shutoff) {
            EXPECT_TRUE(c->destroy_domain(s.name, {})) << s.name;
        }
    }
    c.reset();
    EXPECT_EQ(daemon.stop(), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    // A QEMU left behind means a start cut short by the kill was never
    // recorded (nor reaped at the next start) by the driver: an orphaned
    // guest nobody manages any more.
    auto leftovers = processes_mentioning(run.native());
    for (int pid : leftovers) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
        std::stringstream ss;
        ss << in.rdbuf();
        std::string cmd = ss.str();
        for (auto& ch : cmd)
            if (ch == '\0') ch = ' ';
        ADD_FAILURE() << "orphaned QEMU pid " << pid << " left running after the kills: " << cmd.substr(0, 300);
    }
    for (int pid : leftovers) ::kill(pid, SIGKILL);
}

}  // namespace
}  // namespace vireo::test
