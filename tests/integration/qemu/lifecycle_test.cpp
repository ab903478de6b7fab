// The QEMU driver with the real test guest under TCG: start to the boot
// marker, shutdown, destroy, suspend/resume, save/restore, crash detection
// and reattach after a driver restart.
#include <gtest/gtest.h>

#include <regex>

#include <signal.h>

#include <thread>

#include <fmt/format.h>

#include "helpers.hpp"
#include "support/guest.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::qemu::test;
using driver::DomainState;
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

using Fixture = GuestFixture;

// The first decimal number in a command's output (-1 when none).
double first_number(const std::string& text) {
    std::smatch m;
    static const std::regex number(R"(([0-9]+\.[0-9]+))");
    return std::regex_search(text, m, number) ? std::stod(m[1].str()) : -1;
}

TEST(QemuLifecycle, StartToBootMarkerThenDestroy) {
    VIREO_REQUIRE_GUEST();
    Fixture f;
    f.define_and_start("boot");
    auto d = f.info("boot");
    EXPECT_EQ(d.state, DomainState::Running);
    EXPECT_EQ(d.reason, "booted");
    EXPECT_GE(d.id, 1);
    int pid = f.drv->qemu_pid("boot");
    ASSERT_GT(pid, 0);
    EXPECT_EQ(qemu_pids_for("boot"), std::vector<int>{pid});
    auto environ_text = files::read(fmt::format("/proc/{}/environ", pid));
    ASSERT_TRUE(environ_text);
    EXPECT_NE(environ_text->find("glibc.malloc.hugetlb=1"), std::string::npos)
        << "QEMU's heap on huge pages (malloc_hugepages defaults to 1)";
    f.wait_ready("boot");
    // Booting under TCG costs QEMU real CPU time (at least a second here).
    const auto cpu = f.info("boot").cpu_time_ns;
    EXPECT_GT(cpu, 100'000'000u) << "CPU time of the running domain";
    std::this_thread::sleep_for(milliseconds(300));
    EXPECT_GE(f.info("boot").cpu_time_ns, cpu) << "CPU time only grows";

    auto log = files::read(f.drv->log_path("boot"));
    ASSERT_TRUE(log);
    EXPECT_NE(log->find("-name guest=boot,debug-threads=on"), std::string::npos) << "command line in the log";
    auto live = f.drv->domain_xml("boot", false);
    ASSERT_TRUE(live);
    EXPECT_NE(live->find("id='"), std::string::npos);
    EXPECT_NE(live->find("pc-i440fx"), std::string::npos) << "machine type canonicalised in the live XML";
    // The serial console's pty (QEMU's, from query-chardev), in the serial
    // and in its console, as libvirt shows them.
    const std::regex pty("<serial type='pty'>\\s*<source path='(/dev/pts/[0-9]+)'/>[\\s\\S]*<console type='pty' tty='(/dev/pts/[0-9]+)'>\\s*<source path='(/dev/pts/[0-9]+)'/>");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(*live, m, pty)) << *live;
    EXPECT_EQ(m[1], m[2]);
    EXPECT_EQ(m[1], m[3]);
    EXPECT_TRUE(fs::exists(m[1].str())) << m[1];

    ASSERT_TRUE(f.drv->destroy_domain("boot", {}));
    d = f.info("boot");
    EXPECT_EQ(d.state, DomainState::Shutoff);
    EXPECT_EQ(d.reason, "destroyed");
    EXPECT_EQ(d.cpu_time_ns, 0u);
    EXPECT_TRUE(qemu_pids_for("boot").empty());
    EXPECT_TRUE(files_starting_with(f.tmp / "run", "boot").empty());
    EXPECT_TRUE(f.events.wait_for("boot", "Stopped/Destroyed", seconds(1)));
    auto ev = f.events.for_domain("boot");
    EXPECT_NE(std::find(ev.begin(), ev.end(), "Started/Booted"), ev.end());
}

TEST(QemuLifecycle, GracefulShutdownReachesShutoff) {
    VIREO_REQUIRE_GUEST();
    Fixture f;
    f.define_and_start("down");
    f.wait_ready("down");
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(f.drv->shutdown_domain("down", driver::ShutdownMode::Default));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(2)) << "shutdown returns at once";
    auto w = f.drv->wait_for_state("down", DomainState::Shutoff, seconds(90));
    ASSERT_TRUE(w) << w.error().message;
    EXPECT_EQ(f.info("down").reason, "shutdown");
    EXPECT_TRUE(f.events.wait_for("down", "Shutdown/Finished", seconds(1)));
    EXPECT_TRUE(f.events.wait_for("down", "Stopped/Shutdown", seconds(1)));
    EXPECT_TRUE(qemu_pids_for("down").empty());
}

TEST(QemuLifecycle, SuspendResumeKeepsTheClockGoing) {
    VIREO_REQUIRE_GUEST();
    Fixture f;
    f.define_and_start("pause");
    f.wait_ready("pause");
    auto con = f.console("pause");
    auto before = con.run("cut -d' ' -f1 /proc/uptime", seconds(30));
    ASSERT_TRUE(before);
    ASSERT_TRUE(f.drv->suspend_domain("pause"));
    auto d = f.info("pause");
    EXPECT_EQ(d.state, DomainState::Paused);
    EXPECT_EQ(d.reason, "user");
    std::this_thread::sleep_for(milliseconds(300));
    ASSERT_TRUE(f.drv->resume_domain("pause"));
    d = f.info("pause");
    EXPECT_EQ(d.state, DomainState::Running);
    EXPECT_EQ(d.reason, "unpaused");
    std::this_thread::sleep_for(milliseconds(200));
    auto after = con.run("cut -d' ' -f1 /proc/uptime", seconds(30));
    ASSERT_TRUE(after);
    ASSERT_GT(first_number(*before), 0) << *before;
    EXPECT_GT(first_number(*after), first_number(*before)) << *before << " -> " << *after;
    EXPECT_TRUE(f.events.wait_for("pause", "Suspended/Paused", seconds(1)));
    EXPECT_TRUE(f.events.wait_for("pause", "Resumed/Unpaused", seconds(1)));
}

TEST(QemuLifecycle, SaveRestoreAndManagedSaveKeepShellState) {
    VIREO_REQUIRE_GUEST();
    Fixture f;
    f.define_and_start("saver");
    f.wait_ready("saver");
    {
        auto con = f.console("saver");
        auto w = con.run("echo kept-$((6*7)) > /tmp/state; cat /tmp/state", seconds(30));
        ASSERT_TRUE(w);
        EXPECT_NE(w->find("kept-42"), std::string::npos);
    }
    const fs::path image = f.tmp / "saver.save";
    auto s = f.drv->save_domain("saver", image.string());
    ASSERT_TRUE(s) << s.error().full_message();
    EXPECT_EQ(f.info("saver").state, DomainState::Shutoff);
    EXPECT_EQ(f.info("saver").reason, "saved");
    EXPECT_TRUE(qemu_pids_for("saver").empty());
    EXPECT_GT(fs::file_size(image), 1u << 20);

    auto r = f.drv->restore_domain(image.string(), false);
    ASSERT_TRUE(r) << r.error().full_message();
    EXPECT_EQ(r->state, DomainState::Running);
    EXPECT_EQ(r->reason, "restored");
    {
        auto con = f.console("saver");
        auto out = con.run("cat /tmp/state", seconds(30));
        ASSERT_TRUE(out);
        EXPECT_NE(out->find("kept-42"), std::string::npos) << *out;
        ASSERT_TRUE(con.run("echo managed > /tmp/state2", seconds(30)));
    }

    // managedsave, then start restores it.
    auto m = f.drv->managed_save("saver");
    ASSERT_TRUE(m) << m.error().full_message();
    auto d = f.info("saver");
    EXPECT_EQ(d.state, DomainState::Shutoff);
    EXPECT_TRUE(d.managed_save);
    ASSERT_TRUE(f.drv->start_domain("saver", {}));
    d = f.info("saver");
    EXPECT_EQ(d.reason, "restored");
    EXPECT_FALSE(d.managed_save) << "the image is consumed by the start";
    auto con = f.console("saver");
    auto out = con.run("cat /tmp/state /tmp/state2", seconds(30));
    ASSERT_TRUE(out);
    EXPECT_NE(out->find("kept-42"), std::string::npos) << *out;
    EXPECT_NE(out->find("managed"), std::string::npos) << *out;
    EXPECT_TRUE(f.events.wait_for("saver", "Stopped/Saved", seconds(1)));
    EXPECT_TRUE(f.events.wait_for("saver", "Started/Restored", seconds(1)));
}

TEST(QemuLifecycle, KilledQemuIsReportedCrashed) {
    VIREO_REQUIRE_GUEST();
    Fixture f;
    f.define_and_start("victim");
    f.wait_ready("victim");
    int pid = f.drv->qemu_pid("victim");
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    auto w = f.drv->wait_for_state("victim", DomainState::Shutoff, seconds(10));
    ASSERT_TRUE(w) << w.error().message;
    EXPECT_EQ(f.info("victim").reason, "crashed");
    EXPECT_TRUE(f.events.wait_for("victim", "Stopped/Failed", seconds(1)));
    EXPECT_TRUE(files_starting_with(f.tmp / "run", "victim").empty());
}

TEST(QemuLifecycle, DriverRestartReattachesRunningGuests) {
    VIREO_REQUIRE_GUEST();
    Fixture f;
    f.define_and_start("alpha");
    // A transient one too: it exists only as a running domain.
    auto t = f.drv->create_domain(guest_xml("beta"), {});
    ASSERT_TRUE(t) << t.error().full_message();
    f.wait_ready("alpha");
    f.wait_ready("beta");
    int alpha_pid = f.drv->qemu_pid("alpha"), beta_pid = f.drv->qemu_pid("beta");
    int alpha_id = f.info("alpha").id;

    f.close();  // the daemon goes away; the guests do not
    EXPECT_EQ(qemu_pids_for("alpha"), std::vector<int>{alpha_pid});
    f.open();

    auto a = f.info("alpha");
    EXPECT_EQ(a.state, DomainState::Running);
    EXPECT_EQ(a.id, alpha_id);
    EXPECT_EQ(f.drv->qemu_pid("alpha"), alpha_pid);
    auto b = f.info("beta");
    EXPECT_EQ(b.state, DomainState::Running);
    EXPECT_FALSE(b.persistent);
    EXPECT_EQ(f.drv->qemu_pid("beta"), beta_pid);

    // Both are controllable.
    ASSERT_TRUE(f.drv->suspend_domain("alpha"));
    EXPECT_EQ(f.info("alpha").state, DomainState::Paused);
    ASSERT_TRUE(f.drv->resume_domain("alpha"));
    auto con = f.console("beta");
    auto out = con.run("echo still-here", seconds(30));
    ASSERT_TRUE(out);
    EXPECT_NE(out->find("still-here"), std::string::npos);
    ASSERT_TRUE(f.drv->shutdown_domain("beta", driver::ShutdownMode::Acpi));

    // A guest that dies while no driver runs is found shut off.
    f.close();
    ASSERT_EQ(::kill(alpha_pid, SIGKILL), 0);
    f.open();
    EXPECT_EQ(f.info("alpha").state, DomainState::Shutoff);
    EXPECT_TRUE(files_starting_with(f.tmp / "run", "alpha").empty());
    // beta powered off (ACPI) meanwhile or soon: it ends up gone (transient).
    for (int i = 0; i < 600 && f.drv->lookup_domain("beta"); ++i) std::this_thread::sleep_for(milliseconds(100));
    EXPECT_FALSE(f.drv->lookup_domain("beta")) << "the transient guest is gone once it powered off";
    EXPECT_TRUE(qemu_pids_for("beta").empty());
}

}  // namespace

// The microvm machine under TCG: without ACPI (microvm's ACPI tables leave
// the TCG guest's timer uncalibrated: its clock never leaves 0.000000) and
// with the kernel told not to use the IO-APIC and given its loop calibration,
// the test guest boots.
TEST(QemuLifecycle, MicrovmGuestBoots) {
    VIREO_REQUIRE_GUEST();
    Fixture f;
    std::string xml = guest_xml("micro", "", "noapic lpj=4000000 tsc=reliable");
    xml.replace(xml.find("machine='pc'"), 12, "machine='microvm'");
    xml.replace(xml.find("<acpi/>"), 7, "");
    auto d = f.drv->define_domain(xml, true);
    ASSERT_TRUE(d) << d.error().full_message();
    auto st = f.drv->start_domain("micro", {});
    ASSERT_TRUE(st) << st.error().full_message();
    f.wait_ready("micro");
    auto out = f.console("micro").run("echo micro-$((6*7))", seconds(30));
    ASSERT_TRUE(out);
    EXPECT_NE(out->find("micro-42"), std::string::npos) << *out;
    auto log = files::read(f.drv->log_path("micro"));
    ASSERT_TRUE(log);
    EXPECT_NE(log->find("-machine microvm"), std::string::npos);
}
