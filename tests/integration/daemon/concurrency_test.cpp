// 20 clients doing lifecycle operations on 10 domains at once through one
// vireod: no deadlock, no lost or garbled answer, a consistent final state,
// and queries answered while jobs run. Runs against the test driver (fast,
// every interleaving of the job model) and the QEMU driver (real processes,
// slow jobs) when the test guest is available.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "client/connect.hpp"
#include "daemon_process.hpp"
#include "support/support.hpp"

namespace vireo::test {
namespace {

constexpr int kDomains = 10;
constexpr int kClients = 20;

std::string name_of(int i) { return "conc" + std::to_string(i); }

// The domains of this test (the test driver also has its sample "test").
std::vector<driver::DomainSummary> ours(const std::vector<driver::DomainSummary>& all) {
    std::vector<driver::DomainSummary> out;
    for (const auto& s : all)
        if (s.name.starts_with("conc")) out.push_back(s);
    return out;
}

// Failures a lifecycle storm may legitimately produce (the domain was in
// another state than this client assumed, or a job held it).
bool expected_failure(const Error& e) {
    return e.code == ErrorCode::InvalidState || e.code == ErrorCode::Busy;
}

struct Tally {
    std::atomic<int> ok{0};
    std::atomic<int> refused{0};
    std::mutex m;
    std::vector<std::string> unexpected;
    void record(const std::string& what, const Status& s) {
        if (s) {
            ++ok;
        } else if (expected_failure(s.error())) {
            ++refused;
        } else {
            std::lock_guard lk(m);
            unexpected.push_back(what + ": " + std::string(to_string(s.error().code)) + ": " + s.error().message);
        }
    }
};

void storm(const std::string& uri, int client, int ops, bool slow_driver, Tally& tally) {
    auto c = client::connect(uri);
    if (!c) {
        tally.record("connect", std::unexpected(c.error()));
        return;
    }
    auto& d = **c;
    std::mt19937 rng(1000 + client);
    for (int i = 0; i < ops; ++i) {
        auto name = name_of(static_cast<int>(rng() % kDomains));
        switch (rng() % (slow_driver ? 6 : 8)) {
            case 0: tally.record("start " + name, d.start_domain(name, {})); break;
            case 1: tally.record("destroy " + name, d.destroy_domain(name, {})); break;
            case 2: tally.record("suspend " + name, d.suspend_domain(name)); break;
            case 3: tally.record("resume " + name, d.resume_domain(name)); break;
            case 4: {
                auto info = d.lookup_domain(name);
                tally.record("dominfo " + name, info ? Status{} : Status{std::unexpected(info.error())});
                break;
            }
            case 5: {
                auto list = d.list_domains();
                tally.record("list", list ? Status{} : Status{std::unexpected(list.error())});
                break;
            }
            case 6: tally.record("shutdown " + name, d.shutdown_domain(name, driver::ShutdownMode::Default)); break;
            default: {
                auto xml = d.domain_xml(name, true);
                if (!xml) {
                    tally.record("dumpxml " + name, std::unexpected(xml.error()));
                    break;
                }
                auto def = d.define_domain(*xml, true);
                tally.record("redefine " + name, def ? Status{} : Status{std::unexpected(def.error())});
            }
        }
    }
}

class Concurrency : public ::testing::TestWithParam<std::string> {};

TEST_P(Concurrency, TwentyClientsTenDomains) {
    const std::string driver_name = GetParam();
    const bool qemu = driver_name == "qemu";
    if (qemu && !std::filesystem::exists(guest_dir() / "vmlinuz")) VIREO_SKIP("test guest not built");
    TempDir dir;
    auto sock = dir / "sock";
    DaemonProcess daemon;
    std::string why;
    ASSERT_TRUE(daemon.start({"--driver=" + driver_name, "--timeout", "0", "--socket", sock.native(), "--config-dir",
                              (dir / "etc").native(), "--run-dir", (dir / "run").native(), "--log-file",
                              (dir / "vireod.log").native()},
                             sock, dir / "out", &why))
        << why;
    const std::string uri = "qemu+unix:///session?socket=" + sock.native();
    auto admin = client::connect(uri);
    ASSERT_TRUE(admin) << admin.error().message;
    for (int i = 0; i < kDomains; ++i) {
        auto def = (*admin)->define_domain(guest_domain_xml(name_of(i), 128), true);
        ASSERT_TRUE(def) << def.error().message;
    }

    // A watcher keeps asking while the storm runs: every query must be answered.
    std::atomic<bool> done{false};
    std::atomic<int> queries{0};
    std::atomic<int> failed_queries{0};
    std::thread watcher([&] {
        auto w = client::connect(uri);
        if (!w) {
            ++failed_queries;
            return;
        }
        while (!done) {
            auto list = (*w)->list_domains();
            if (!list || ours(*list).size() != static_cast<std::size_t>(kDomains)) ++failed_queries;
            ++queries;
        }
    });

    Tally tally;
    const int ops = qemu ? 6 : 60;
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) clients.emplace_back([&, c] { storm(uri, c, ops, qemu, tally); });
    for (auto& t : clients) t.join();
    done = true;
    watcher.join();

    EXPECT_TRUE(tally.unexpected.empty()) << tally.unexpected.size() << " unexpected failures, first: "
                                          << (tally.unexpected.empty() ? "" : tally.unexpected.front());
    EXPECT_GT(tally.ok.load(), 0);
    EXPECT_EQ(failed_queries.load(), 0);
    EXPECT_GT(queries.load(), 0);

    // Consistent final state: list and per-domain lookups agree, and a domain
    // has an id exactly when it is active.
    auto all = (*admin)->list_domains();
    ASSERT_TRUE(all);
    auto list = ours(*all);
    ASSERT_EQ(list.size(), static_cast<std::size_t>(kDomains));
    for (const auto& s : list) {
        auto one = (*admin)->lookup_domain(s.name);
        ASSERT_TRUE(one);
        EXPECT_EQ(one->state, s.state) << s.name;
        EXPECT_EQ(one->id, s.id) << s.name;
        EXPECT_EQ(s.id > 0, s.state != driver::DomainState::Shutoff) << s.name;
    }
    for (const auto& s : list) {
        if (s.state != driver::DomainState::Shutoff) {
            EXPECT_TRUE((*admin)->destroy_domain(s.name, {})) << s.name;
        }
    }
    admin->reset();
    EXPECT_EQ(daemon.stop(), 0);
}

INSTANTIATE_TEST_SUITE_P(Drivers, Concurrency, ::testing::Values("test", "qemu"));

}  // namespace
}  // namespace vireo::test
