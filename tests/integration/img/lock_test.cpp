// Image locking against the real thing: a QEMU (qemu-system-x86_64 under
// TCG, with the image as a read-write drive; no OS needed) and qemu-io hold
// images as a running guest does. vireo-img refuses every write under them
// with qemu-img's message (compared with real qemu-img on the same image),
// reads with -U, and holds QEMU and qemu-io off in turn while it writes.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "img_support.hpp"
#include "storage/image.hpp"
#include "storage/lock.hpp"
#include "support/guest.hpp"

using vireo::test::run;
using vireo::test::TempDir;
using namespace vireo::test::img;
using namespace std::chrono_literals;

namespace {

// What follows the program name in the first line of stderr, and the rest.
std::string after_prog(const std::string& err) {
    auto c = err.find(": ");
    return c == std::string::npos ? err : err.substr(c);
}

// Wait until another process holds `path` as a writer (QEMU starting up).
bool wait_until_held(const std::string& path, std::chrono::seconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        auto st = vireo::storage::check_image_lock(path, vireo::storage::default_lock_perms(false, false));
        if (!st && st.error().code == vireo::ErrorCode::Busy) return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

std::vector<std::string> qemu_with_drive(const std::string& img) {
    return {"qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-nodefaults", "-no-user-config",
            "-display", "none", "-S", "-drive", "file=" + img + ",format=qcow2,if=virtio"};
}

}  // namespace

// Every vireo-img subcommand that writes is refused on a running guest's
// disk with qemu-img's words, readers need -U as with qemu-img, and
// nothing was changed.
TEST(ImgLock, RunningGuestDiskRefusesWritesLikeQemuImg) {
    NEED_QEMU();
    if (vireo::test::which("qemu-system-x86_64").empty()) VIREO_SKIP("qemu-system-x86_64 not installed");
    TempDir d;
    auto p = [&](const std::string& n) { return (d / n).string(); };
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("base.qcow2"), "64M"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", p("disk.qcow2")});
    qemu_io(p("disk.qcow2"), {"write -P 9 0 1M"});
    ok({"qemu-img", "snapshot", "-c", "s1", p("disk.qcow2")});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("other.qcow2"), "64M"});
    ok({"qemu-img", "create", "-q", "-f", "raw", p("src.raw"), "1M"});
    const std::string before = slurp(d / "disk.qcow2");

    auto qemu = vireo::test::QemuProcess::start(qemu_with_drive(p("disk.qcow2")));
    ASSERT_TRUE(qemu) << qemu.error().message;
    ASSERT_TRUE(wait_until_held(p("disk.qcow2"), 60s)) << qemu->output();

    const std::string disk = p("disk.qcow2");
    const std::vector<std::vector<std::string>> writes = {
        {"resize", disk, "+1M"},
        {"resize", "--shrink", disk, "32M"},
        {"snapshot", "-c", "s2", disk},
        {"snapshot", "-a", "s1", disk},
        {"snapshot", "-d", "s1", disk},
        {"amend", "-o", "lazy_refcounts=on", disk},
        {"commit", disk},
        {"commit", "-d", disk},
        {"rebase", "-b", p("other.qcow2"), "-F", "qcow2", disk},
        {"rebase", "-u", "-b", p("other.qcow2"), "-F", "qcow2", disk},
        {"create", "-f", "qcow2", disk, "1M"},
        {"convert", "-n", "-O", "qcow2", p("src.raw"), disk},
        {"convert", "-O", "qcow2", p("src.raw"), disk},
        {"check", "-r", "all", disk},
        {"bench", "-w", "-c", "1", disk},
        {"dd", "if=" + p("src.raw"), "of=" + disk},
    };
    for (const auto& args : writes) {
        std::vector<std::string> q{"qemu-img"}, v{vimg()};
        q.insert(q.end(), args.begin(), args.end());
        v.insert(v.end(), args.begin(), args.end());
        auto rq = run(q);
        auto rv = run(v);
        EXPECT_NE(rq.exit_code, 0) << args[0];
        EXPECT_EQ(rv.exit_code, rq.exit_code) << ::testing::PrintToString(args) << ": " << rv.err;
        EXPECT_NE(rv.err.find("Failed to get \"write\" lock"), std::string::npos) << rv.err;
        EXPECT_EQ(after_prog(rv.err), after_prog(rq.err)) << ::testing::PrintToString(args);
    }
    // Readers: refused without -U, as qemu-img; fine with it.
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"info", disk}, {"check", disk}, {"map", disk}, {"convert", "-O", "raw", disk, p("copy.raw")},
             {"compare", disk, disk}, {"measure", "-O", "qcow2", disk}, {"snapshot", "-l", disk}}) {
        std::vector<std::string> q{"qemu-img"}, v{vimg()};
        q.insert(q.end(), args.begin(), args.end());
        v.insert(v.end(), args.begin(), args.end());
        auto rq = run(q);
        auto rv = run(v);
        EXPECT_EQ(rv.exit_code, rq.exit_code) << ::testing::PrintToString(args);
        EXPECT_EQ(after_prog(rv.err), after_prog(rq.err)) << ::testing::PrintToString(args);
        v.insert(v.begin() + 2, "-U");
        q.insert(q.begin() + 2, "-U");
        rq = run(q);
        rv = run(v);
        EXPECT_EQ(rq.exit_code, 0) << ::testing::PrintToString(q) << rq.err;
        EXPECT_EQ(rv.exit_code, 0) << ::testing::PrintToString(v) << rv.err;
        if (args[0] != "convert") {
            EXPECT_EQ(rv.out, rq.out) << ::testing::PrintToString(args);
        }
    }
    // -U on a write: refused as qemu-img refuses it.
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"check", "-U", "-r", "all", disk}, {"bench", "-U", "-w", "-c", "1", disk},
             {"snapshot", "-U", "-c", "s3", disk}, {"commit", "-U", disk}, {"amend", "-U", "-o", "lazy_refcounts=on", disk},
             {"resize", "-U", disk, "+1M"}, {"create", "-U", "-f", "qcow2", p("x.qcow2"), "1M"},
             {"resize", "--force-share", disk, "+1M"}}) {
        std::vector<std::string> q{"qemu-img"}, v{vimg()};
        q.insert(q.end(), args.begin(), args.end());
        v.insert(v.end(), args.begin(), args.end());
        auto rq = run(q);
        auto rv = run(v);
        EXPECT_EQ(rv.exit_code, rq.exit_code) << ::testing::PrintToString(args);
        auto norm = [](std::string s) {
            for (auto pos = s.find("qemu-img"); pos != std::string::npos; pos = s.find("qemu-img", pos)) s.replace(pos, 8, "vireo-img");
            return s;
        };
        EXPECT_EQ(rv.err, norm(rq.err)) << ::testing::PrintToString(args);
    }
    qemu->kill();
    EXPECT_TRUE(slurp(d / "disk.qcow2") == before) << "a refused command changed the image";
    EXPECT_FALSE(std::filesystem::exists(p("x.qcow2")));
}

// While vireo-img (or vireo's engine in this process) writes an image, QEMU
// and qemu-io cannot open it for writing, and qemu-img readers need -U.
TEST(ImgLock, VireoWritesHoldQemuOff) {
    NEED_QEMU();
    if (vireo::test::which("qemu-system-x86_64").empty()) VIREO_SKIP("qemu-system-x86_64 not installed");
    TempDir d;
    const std::string img = (d / "img.qcow2").string();
    ok({"qemu-img", "create", "-q", "-f", "qcow2", img, "256M"});
    {
        // An image held open for writing by the engine.
        auto held = vireo::storage::open_image(img, {.writable = true});
        ASSERT_TRUE(held) << held.error().message;
        auto io = run({"qemu-io", "-c", "write 0 4k", img});
        EXPECT_NE(io.exit_code, 0);
        EXPECT_NE(io.err.find("Failed to get \"write\" lock"), std::string::npos) << io.err;
        auto info = run({"qemu-img", "info", img});
        EXPECT_NE(info.exit_code, 0);
        EXPECT_NE(info.err.find("Failed to get shared \"write\" lock"), std::string::npos) << info.err;
        EXPECT_EQ(run({"qemu-img", "info", "-U", img}).exit_code, 0);
        auto qemu = vireo::test::QemuProcess::start(qemu_with_drive(img));
        ASSERT_TRUE(qemu) << qemu.error().message;
        auto code = qemu->wait_exit(60s);
        ASSERT_TRUE(code.has_value()) << "QEMU started on an image vireo holds";
        EXPECT_NE(*code, 0);
        EXPECT_NE(qemu->output().find("Failed to get \"write\" lock"), std::string::npos) << qemu->output();
    }
    // A long vireo-img bench -w, run as its own process (stopped once seen).
    auto bench = vireo::test::QemuProcess::start({vimg(), "bench", "-w", "-q", "-c", "1000000000", img});
    ASSERT_TRUE(bench) << bench.error().message;
    bool refused = false;
    for (int i = 0; i < 200 && !refused; ++i) {
        std::this_thread::sleep_for(50ms);
        auto io = run({"qemu-io", "-c", "write 0 4k", img});
        refused = io.exit_code != 0 && io.err.find("Failed to get \"write\" lock") != std::string::npos;
    }
    bench->kill();
    EXPECT_TRUE(refused) << "qemu-io wrote while vireo-img bench -w ran: " << bench->output();
    // Once vireo-img is gone, QEMU's tools may write again.
    EXPECT_EQ(run({"qemu-io", "-c", "write 0 4k", img}).exit_code, 0);
}

// In one process, users of one file share its lock: a writer and readers of
// the same image (vireo-img commit opens its base twice) do not refuse each
// other, and the bytes go when the last user does.
TEST(ImgLock, OneProcessSharesItsLock) {
    NEED_QEMU();
    TempDir d;
    const std::string img = (d / "a.qcow2").string();
    ok({"qemu-img", "create", "-q", "-f", "qcow2", img, "16M"});
    {
        auto r = vireo::storage::open_image(img);
        ASSERT_TRUE(r);
        auto w = vireo::storage::open_image(img, {.writable = true});
        ASSERT_TRUE(w) << w.error().message;
        EXPECT_NE(run({"qemu-io", "-r", "-c", "read 0 4k", img}).exit_code, 0);
    }
    EXPECT_EQ(run({"qemu-io", "-c", "write 0 4k", img}).exit_code, 0);
}
