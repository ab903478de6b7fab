// Probing QEMU binaries and the QMP client, against the real QEMU.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "qemu/probe.hpp"
#include "qemu/process.hpp"
#include "qemu/qmp.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

using namespace vireo;
namespace fs = std::filesystem;

namespace {

fs::path qemu_binary() {
    auto b = qemu::find_qemu_binary("x86_64");
    return b ? *b : fs::path();
}

#define REQUIRE_QEMU()                                                       \
    do {                                                                     \
        if (qemu_binary().empty()) VIREO_SKIP("qemu-system-x86_64 not installed"); \
    } while (0)

// QEMU with no guest, its QMP on a unix socket we listen on.
struct BareQemu {
    qemu::ProcessId proc;
    fs::path sock;
    explicit BareQemu(const fs::path& dir) {
        sock = dir / "qmp.sock";
        auto l = qemu::listen_unix(sock);
        EXPECT_TRUE(l);
        qemu::SpawnSpec spec;
        spec.argv = {qemu_binary().string(), "-S", "-nodefaults", "-no-user-config", "-display", "none",
                     "-machine", "none", "-chardev", fmt::format("socket,id=m,fd={},server=on,wait=off", l->get()),
                     "-mon", "chardev=m,mode=control"};
        spec.log_path = dir / "qemu.log";
        spec.pass_fds = {l->get()};
        auto p = qemu::spawn_detached(spec);
        EXPECT_TRUE(p);
        if (p) proc = *p;
    }
    ~BareQemu() { (void)qemu::terminate_process(proc, std::chrono::seconds(2), false); }
};

TEST(Probe, AsksTheBinaryAndCachesTheAnswerOnDisk) {
    REQUIRE_QEMU();
    test::TempDir tmp;
    qemu::CapsCache first(tmp / "cache");
    auto caps = first.get(qemu_binary());
    ASSERT_TRUE(caps) << caps.error().full_message();
    EXPECT_EQ(first.probes_run(), 1u);
    EXPECT_GE((*caps)->major, 2);
    EXPECT_EQ((*caps)->arch, "x86_64");
    EXPECT_TRUE((*caps)->accelerators.contains("tcg"));
    EXPECT_NE((*caps)->find_machine("q35"), nullptr);
    EXPECT_NE((*caps)->find_machine("pc"), nullptr);
    EXPECT_NE((*caps)->find_machine("microvm"), nullptr);
    EXPECT_NE((*caps)->find_machine(""), nullptr) << "a default machine";
    EXPECT_TRUE((*caps)->has_device("virtio-blk-pci"));
    EXPECT_TRUE((*caps)->has_command("blockdev-add"));
    EXPECT_TRUE((*caps)->cpu_models.contains("qemu64"));

    // A second cache (a daemon restart) answers from disk without probing.
    qemu::CapsCache second(tmp / "cache");
    auto again = second.get(qemu_binary());
    ASSERT_TRUE(again);
    EXPECT_EQ(second.probes_run(), 0u);
    EXPECT_EQ((*again)->version_string(), (*caps)->version_string());
    EXPECT_EQ((*again)->devices, (*caps)->devices);
}

TEST(Probe, AChangedBinaryIsProbedAgain) {
    REQUIRE_QEMU();
    test::TempDir tmp;
    qemu::CapsCache cache(tmp / "cache");
    ASSERT_TRUE(cache.get(qemu_binary()));
    // The entry on disk describes another version of the file (other
    // mtime): it must not be used.
    fs::path entry;
    for (const auto& e : fs::directory_iterator(tmp / "cache" / "capabilities")) entry = e.path();
    auto j = nlohmann::json::parse(*files::read(entry));
    j["binary"]["mtime_ns"] = j["binary"]["mtime_ns"].get<std::int64_t>() - 1000;
    j["version"]["major"] = 1;
    ASSERT_TRUE(files::write_atomic(entry, j.dump()));
    qemu::CapsCache after(tmp / "cache");
    auto caps = after.get(qemu_binary());
    ASSERT_TRUE(caps);
    EXPECT_EQ(after.probes_run(), 1u) << "a changed binary identity must invalidate the cache entry";
    EXPECT_NE((*caps)->major, 1);
}

TEST(Probe, MissingBinaryIsAClearError) {
    test::TempDir tmp;
    qemu::CapsCache cache(tmp / "cache");
    auto r = cache.get("/nonexistent/qemu-system-x86_64");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::NotFound);
}

TEST(Qmp, CommandsRepliesErrorsAndEvents) {
    REQUIRE_QEMU();
    test::TempDir tmp;
    BareQemu q(tmp.path());
    std::atomic<int> stops{0};
    std::atomic<bool> closed{false};
    auto client = qemu::QmpClient::connect(
        q.sock, std::chrono::seconds(10), [&](const qemu::QmpEvent& ev) { if (ev.name == "STOP") ++stops; },
        [&](const Error&) { closed = true; });
    ASSERT_TRUE(client) << client.error().full_message();
    EXPECT_TRUE((*client)->greeting().contains("version"));

    auto v = (*client)->execute("query-version");
    ASSERT_TRUE(v);
    EXPECT_TRUE(v->contains("qemu"));

    auto bad = (*client)->execute("no-such-command");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, ErrorCode::Hypervisor);
    EXPECT_NE(bad.error().full_message().find("no-such-command"), std::string::npos);

    // Concurrent callers each get their own reply.
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&] {
            for (int j = 0; j < 10; ++j)
                if (auto r = (*client)->execute("query-status"); r && r->contains("status")) ++ok;
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok, 40);

    // QEMU going away: the close handler runs and later commands fail cleanly.
    ::kill(q.proc.pid, SIGKILL);
    for (int i = 0; i < 200 && !closed; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_TRUE(closed);
    EXPECT_TRUE((*client)->closed());
    auto after = (*client)->execute("query-status");
    ASSERT_FALSE(after);
    EXPECT_EQ(after.error().code, ErrorCode::Connection);
}

TEST(Qmp, ANonQmpPeerTimesOutOrIsRejected) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    UniqueFd ours(sv[0]), theirs(sv[1]);
    auto silent = qemu::QmpClient::open(std::move(ours), std::chrono::milliseconds(200));
    ASSERT_FALSE(silent);
    EXPECT_EQ(silent.error().code, ErrorCode::Timeout);

    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    UniqueFd a(sv[0]), b(sv[1]);
    ASSERT_GT(::write(b.get(), "HTTP/1.1 400 Bad\r\n\n", 19), 0);
    auto wrong = qemu::QmpClient::open(std::move(a), std::chrono::seconds(2));
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().code, ErrorCode::Protocol);
}

}  // namespace
