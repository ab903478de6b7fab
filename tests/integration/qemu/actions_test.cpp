// on_poweroff / on_reboot / on_crash and guest panics, on the real test guest
// under TCG: what the driver does when the guest powers off, reboots or
// panics (pvpanic), and what it reports.
#include <gtest/gtest.h>

#include "helpers.hpp"
#include "support/guest.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::qemu::test;
using driver::DomainState;
using std::chrono::seconds;

namespace {

constexpr const char* kPanicDevice = "<panic model='isa'/>";
constexpr const char* kPanicCommand = "echo c > /proc/sysrq-trigger";

// The guest's kernel command line has panic=-1 (reboot at once on panic):
// the panic must still be seen, through pvpanic, before the reboot.
TEST(QemuActions, GuestPanicEndsShutOffCrashed) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    f.define_and_start("panic", kPanicDevice);
    f.wait_ready("panic");
    ASSERT_TRUE(f.console("panic").send(kPanicCommand));
    auto w = f.drv->wait_for_state("panic", DomainState::Shutoff, seconds(60));
    ASSERT_TRUE(w) << w.error().message << "; events: " << testing::PrintToString(f.events.for_domain("panic"))
                   << "\nconsole:\n" << files::read(f.drv->console_log_path("panic")).value_or("")
                   << "\nlog:\n" << files::read(f.drv->log_path("panic")).value_or("");
    EXPECT_EQ(f.info("panic").reason, "crashed");
    EXPECT_TRUE(f.events.wait_for("panic", "Crashed/Panicked", seconds(1)));
    EXPECT_TRUE(f.events.wait_for("panic", "Stopped/Crashed", seconds(1)));
    EXPECT_TRUE(qemu_pids_for("panic").empty());
    EXPECT_TRUE(files_starting_with(f.tmp / "run", "panic").empty());
}

TEST(QemuActions, OnCrashPreserveKeepsTheCrashedGuest) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    f.define_and_start("keep", kPanicDevice, "", "<on_crash>preserve</on_crash>");
    f.wait_ready("keep");
    ASSERT_TRUE(f.console("keep").send(kPanicCommand));
    auto w = f.drv->wait_for_state("keep", DomainState::Crashed, seconds(60));
    ASSERT_TRUE(w) << w.error().message << "; events: " << testing::PrintToString(f.events.for_domain("keep"));
    EXPECT_EQ(f.info("keep").reason, "panicked");
    EXPECT_TRUE(f.events.wait_for("keep", "Crashed/Panicked", seconds(1)));
    EXPECT_EQ(qemu_pids_for("keep").size(), 1u) << "QEMU is kept for inspection";
    ASSERT_TRUE(f.drv->destroy_domain("keep", {}));
    EXPECT_EQ(f.info("keep").state, DomainState::Shutoff);
    EXPECT_EQ(f.info("keep").reason, "destroyed");
}

TEST(QemuActions, OnCrashRestartBootsAgain) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    f.define_and_start("phoenix", kPanicDevice, "", "<on_crash>restart</on_crash>");
    f.wait_ready("phoenix");
    ASSERT_TRUE(f.console("phoenix").send(kPanicCommand));
    f.wait_ready("phoenix", 2);
    EXPECT_EQ(f.info("phoenix").state, DomainState::Running);
    EXPECT_TRUE(f.events.wait_for("phoenix", "Crashed/Panicked", seconds(1)));
    auto out = f.console("phoenix").run("echo alive-again", seconds(30));
    ASSERT_TRUE(out);
    EXPECT_NE(out->find("alive-again"), std::string::npos);
}

// vireo reboot (ACPI power button, then a reset instead of the poweroff),
// then a reboot from inside the guest: the guest boots again each time.
TEST(QemuActions, RebootBootsAgain) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    f.define_and_start("again");
    f.wait_ready("again");
    ASSERT_TRUE(f.drv->reboot_domain("again", driver::ShutdownMode::Default));
    f.wait_ready("again", 2);
    EXPECT_EQ(f.info("again").state, DomainState::Running);
    ASSERT_TRUE(f.console("again").send("reboot -f"));
    f.wait_ready("again", 3);
    EXPECT_EQ(f.info("again").state, DomainState::Running);
    const std::vector<std::string> expected{"Defined/Added", "Started/Booted"};
    EXPECT_EQ(f.events.for_domain("again"), expected) << "a reboot is not a stop";
}

TEST(QemuActions, OnRebootDestroyEndsShutOff) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    f.define_and_start("once", "", "", "<on_reboot>destroy</on_reboot>");
    f.wait_ready("once");
    ASSERT_TRUE(f.console("once").send("reboot -f"));
    auto w = f.drv->wait_for_state("once", DomainState::Shutoff, seconds(60));
    ASSERT_TRUE(w) << w.error().message;
    // As libvirt: a reboot turned into a stop by on_reboot=destroy is a destroy.
    EXPECT_EQ(f.info("once").reason, "destroyed");
    EXPECT_TRUE(f.events.wait_for("once", "Stopped/Destroyed", seconds(1)));
    EXPECT_TRUE(qemu_pids_for("once").empty());
}

TEST(QemuActions, OnPoweroffPreserveSurvivesADriverRestart) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    f.define_and_start("kept", "", "", "<on_poweroff>preserve</on_poweroff>");
    f.wait_ready("kept");
    const int pid = f.drv->qemu_pid("kept");
    ASSERT_TRUE(f.drv->shutdown_domain("kept", driver::ShutdownMode::Acpi));
    auto w = f.drv->wait_for_state("kept", DomainState::Shutdown, seconds(90));
    ASSERT_TRUE(w) << w.error().message;

    const auto events_before = f.events.for_domain("kept").size();
    f.close();  // the daemon goes away and comes back
    f.open();
    auto d = f.info("kept");
    EXPECT_EQ(d.state, DomainState::Shutdown) << "the preserved domain is still shown";
    EXPECT_EQ(d.reason, "user");
    EXPECT_EQ(f.drv->qemu_pid("kept"), pid);
    EXPECT_EQ(qemu_pids_for("kept"), std::vector<int>{pid});
    EXPECT_EQ(f.events.for_domain("kept").size(), events_before) << "nothing is applied again after the restart";
    ASSERT_TRUE(f.drv->destroy_domain("kept", {}));
    EXPECT_EQ(f.info("kept").state, DomainState::Shutoff);
    EXPECT_TRUE(qemu_pids_for("kept").empty());
}

TEST(QemuActions, OnPoweroffRestartBootsAgain) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    f.define_and_start("undying", "", "", "<on_poweroff>restart</on_poweroff>");
    f.wait_ready("undying");
    ASSERT_TRUE(f.drv->shutdown_domain("undying", driver::ShutdownMode::Default));
    f.wait_ready("undying", 2);
    EXPECT_EQ(f.info("undying").state, DomainState::Running);
    EXPECT_EQ(f.drv->qemu_pid("undying"), qemu_pids_for("undying").front()) << "the same QEMU, reset";
}

}  // namespace
