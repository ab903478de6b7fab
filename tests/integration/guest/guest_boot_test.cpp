// The test guest booted directly by qemu-system-x86_64 (TCG): what every
// other guest-based test relies on.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

#include "support/support.hpp"
#include "support/guest.hpp"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;

// Generous: TCG on a loaded 2-core machine can be many times slower than idle.
constexpr auto kBootTimeout = 180s;
constexpr auto kShutdownTimeout = 120s;

bool contains(const std::vector<std::string>& items, const std::string& item) {
    return std::find(items.begin(), items.end(), item) != items.end();
}

// A small qcow2 made by the real qemu-img.
std::filesystem::path make_qcow2(const TempDir& tmp) {
    auto path = tmp / "disk.qcow2";
    auto r = run({"qemu-img", "create", "-q", "-f", "qcow2", path.string(), "64M"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return path;
}

TEST(GuestBoot, FindsVirtioDiskAndNicAndGivesAShell) {
    VIREO_REQUIRE_GUEST();
    TempDir tmp;
    GuestOptions opt;
    opt.cpus = 2;
    opt.extra = virtio_disk_args(make_qcow2(tmp), "qcow2");
    auto nic = virtio_user_nic_args();
    opt.extra.insert(opt.extra.end(), nic.begin(), nic.end());

    auto qemu = QemuProcess::start(guest_qemu_argv(opt));
    ASSERT_TRUE(qemu) << qemu.error().message;
    auto ready = wait_guest_ready(*qemu, kBootTimeout);
    ASSERT_TRUE(ready) << "no marker line; console output:\n" << qemu->output();
    EXPECT_EQ(ready->cpus, 2);
    EXPECT_TRUE(contains(ready->disks, "vda")) << qemu->output();
    EXPECT_TRUE(contains(ready->nics, "eth0")) << qemu->output();

    // The console shell works and sees the disk at its real size (64 MiB).
    auto sectors = guest_shell(*qemu, "cat /sys/block/vda/size", 60s);
    ASSERT_TRUE(sectors) << qemu->output();
    EXPECT_EQ(*sectors, "131072\n");
}

TEST(GuestBoot, PowerButtonOverQmpShutsDownCleanly) {
    VIREO_REQUIRE_GUEST();
    TempDir tmp;
    GuestOptions opt;
    opt.machine = "q35";
    opt.qmp_socket = tmp / "qmp.sock";

    auto qemu = QemuProcess::start(guest_qemu_argv(opt));
    ASSERT_TRUE(qemu) << qemu.error().message;
    auto qmp = QmpClient::connect(opt.qmp_socket);
    ASSERT_TRUE(qmp) << qmp.error().full_message() << "\n" << qemu->output();
    EXPECT_TRUE(qmp->version().contains("qemu"));
    ASSERT_TRUE(wait_guest_ready(*qemu, kBootTimeout)) << qemu->output();

    auto status = qmp->execute("query-status");
    ASSERT_TRUE(status) << status.error().full_message();
    EXPECT_EQ(status->value("status", ""), "running");

    ASSERT_TRUE(qmp->execute("system_powerdown")) << qemu->output();
    EXPECT_TRUE(qemu->wait_for(kGuestPoweroffMarker, kShutdownTimeout)) << qemu->output();
    auto shutdown = qmp->wait_event("SHUTDOWN", kShutdownTimeout);
    ASSERT_TRUE(shutdown) << shutdown.error().full_message() << "\n" << qemu->output();
    EXPECT_EQ((*shutdown)["data"].value("guest", false), true) << shutdown->dump();
    EXPECT_EQ(qemu->wait_exit(kShutdownTimeout), 0) << qemu->output();
}

// The guest has the pvpanic driver, so a kernel panic reaches QEMU (what
// on_crash handling builds on).
TEST(GuestBoot, KernelPanicIsReportedThroughPvpanic) {
    VIREO_REQUIRE_GUEST();
    TempDir tmp;
    GuestOptions opt;
    opt.qmp_socket = tmp / "qmp.sock";
    opt.extra = {"-device", "pvpanic", "-action", "panic=pause"};

    auto qemu = QemuProcess::start(guest_qemu_argv(opt));
    ASSERT_TRUE(qemu) << qemu.error().message;
    auto qmp = QmpClient::connect(opt.qmp_socket);
    ASSERT_TRUE(qmp) << qmp.error().full_message() << "\n" << qemu->output();
    ASSERT_TRUE(qemu->wait_for(kGuestPrompt, kBootTimeout)) << qemu->output();

    ASSERT_TRUE(qemu->send("echo c > /proc/sysrq-trigger\n"));
    auto panicked = qmp->wait_event("GUEST_PANICKED", kShutdownTimeout);
    ASSERT_TRUE(panicked) << panicked.error().full_message() << "\n" << qemu->output();
    EXPECT_EQ((*panicked)["data"].value("action", ""), "pause") << panicked->dump();
}

TEST(GuestBoot, PoweroffFlagMakesQemuExitOnItsOwn) {
    VIREO_REQUIRE_GUEST();
    GuestOptions opt;
    opt.cmdline_extra = "vireo.poweroff=1";

    auto qemu = QemuProcess::start(guest_qemu_argv(opt));
    ASSERT_TRUE(qemu) << qemu.error().message;
    EXPECT_EQ(qemu->wait_exit(kBootTimeout + kShutdownTimeout), 0) << qemu->output();
    auto ready = parse_guest_ready(qemu->output());
    ASSERT_TRUE(ready) << qemu->output();
    EXPECT_TRUE(ready->disks.empty());
    auto marker = qemu->output().find("VIREO-GUEST-READY");
    EXPECT_NE(qemu->output().find(kGuestPoweroffMarker, marker), std::string::npos) << qemu->output();
}

}  // namespace
}  // namespace vireo::test
