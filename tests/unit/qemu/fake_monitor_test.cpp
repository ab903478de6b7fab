// The QEMU driver's real code (start phases, the instance machine and the
// code that applies its actions, the typed monitor, save and restore as
// async jobs, reattach) against a fake QEMU (fake_qemu.hpp): a scripted QMP
// peer on the monitor socket the driver created, and fake processes. Each
// test is one interleaving of QEMU's events and replies with the driver's
// requests, named after it; none needs QEMU, all run in well under a second.
#include <gtest/gtest.h>

#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <future>
#include <thread>

#include <spdlog/spdlog.h>

#include "driver/persistence.hpp"
#include "fake_qemu.hpp"
#include "qemu/qemu_driver_impl.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

namespace vireo::qemu::test {
namespace {

namespace fs = std::filesystem;
using driver::DomainState;
using driver::JobStatus;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::string domain_xml(const std::string& name, const std::string& extra_top = "") {
    return fmt::format(
        "<domain type='qemu'><name>{}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os>{}<devices></devices></domain>",
        name, extra_top);
}

// Lifecycle events, "Type/Detail" per domain.
class Events {
public:
    void add(const driver::DomainEvent& e) {
        std::lock_guard lk(m_);
        seen_.emplace_back(e.domain, fmt::format("{}/{}", driver::event_name(e.type), e.detail));
        cv_.notify_all();
    }
    std::vector<std::string> of(const std::string& domain) const {
        std::lock_guard lk(m_);
        std::vector<std::string> out;
        for (const auto& [d, what] : seen_)
            if (d == domain) out.push_back(what);
        return out;
    }
    bool wait_for(const std::string& domain, const std::string& what, milliseconds timeout) const {
        std::unique_lock lk(m_);
        return cv_.wait_for(lk, timeout, [&] {
            for (const auto& [d, w] : seen_)
                if (d == domain && w == what) return true;
            return false;
        });
    }

private:
    mutable std::mutex m_;
    mutable std::condition_variable cv_;
    std::vector<std::pair<std::string, std::string>> seen_;
};

class FakeMonitor : public ::testing::Test {
protected:
    void SetUp() override {
        if (std::getenv("VIREO_TEST_DEBUG")) spdlog::set_level(spdlog::level::debug);
        emulator_ = tmp_ / "qemu-system-x86_64";
        ASSERT_TRUE(files::write_atomic(emulator_, "#!/bin/sh\nexit 1\n", 0755));
        fs::create_directories(tmp_ / "images");
        open();
    }
    void TearDown() override { close(); }

    void open() {
        QemuDriverConfig c;
        c.confdir = tmp_ / "conf";
        c.rundir = tmp_ / "run";
        c.cachedir = tmp_ / "cache";
        c.logdir = tmp_ / "log";
        c.savedir = tmp_ / "save";
        c.qemu_binary = emulator_;
        c.autostart = false;
        c.destroy_grace = milliseconds(300);
        c.start_timeout = seconds(5);
        c.monitor_timeout = monitor_timeout_;
        auto impl = std::make_unique<QemuDriverImpl>(c);
        impl->processes = host_;
        impl->caps.remember(fake_caps());
        impl_ = impl.get();
        auto d = make_qemu_driver(std::move(impl));
        ASSERT_TRUE(d) << d.error().full_message();
        drv_ = std::move(*d);
        auto s = drv_->subscribe([this](const driver::DomainEvent& e) { events_.add(e); });
        ASSERT_TRUE(s);
        sub_ = std::move(*s);
    }
    // The daemon goes away; its QEMUs (fakes) keep running.
    void close() {
        sub_.reset();
        drv_.reset();
        impl_ = nullptr;
    }

    std::shared_ptr<const QemuCaps> fake_caps() const {
        auto caps = std::make_shared<QemuCaps>();
        caps->binary = *identify_binary(emulator_);
        caps->arch = "x86_64";
        caps->major = qemu_major_;
        caps->minor = 2;
        caps->machines = {{"pc-i440fx-7.2", "pc", true, 255, false}};
        caps->accelerators = {"tcg"};
        caps->devices = {"piix3-usb-uhci", "usb-tablet", "virtio-balloon-pci", "VGA", "cirrus-vga", "isa-serial",
                         "virtio-serial-pci", "virtconsole", "pvpanic", "virtio-blk-pci", "virtio-net-pci"};
        return caps;
    }

    void define(const std::string& name, const std::string& extra_top = "") {
        auto d = drv_->define_domain(domain_xml(name, extra_top), true);
        ASSERT_TRUE(d) << d.error().full_message();
    }
    void define_and_start(const std::string& name, const std::string& extra_top = "") {
        define(name, extra_top);
        auto s = drv_->start_domain(name, {});
        ASSERT_TRUE(s) << s.error().full_message();
    }
    driver::DomainSummary info(const std::string& name) {
        auto d = drv_->lookup_domain(name);
        EXPECT_TRUE(d) << d.error().full_message();
        return d ? *d : driver::DomainSummary{};
    }
    std::shared_ptr<FakeQemu> qemu(const std::string& name) { return host_->find(name); }
    std::shared_ptr<driver::DomainObject> object(const std::string& name) {
        return impl_->registry.find_by_name(name);
    }
    // Wait until the domain shows `state` (it changes on the driver's threads).
    bool wait_state(const std::string& name, DomainState state, milliseconds timeout = seconds(3)) {
        return static_cast<bool>(drv_->wait_for_state(name, state, timeout));
    }
    std::vector<std::string> files_in(const fs::path& dir) const {
        std::vector<std::string> out;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }
    // Runtime files of the domain left in the run directory.
    std::vector<std::string> runtime_files(const std::string& name) const {
        std::vector<std::string> out;
        for (const auto& f : files_in(tmp_ / "run"))
            if (f.starts_with(name + ".")) out.push_back(f);
        return out;
    }
    static std::string joined(const std::vector<std::string>& v) {
        std::string out;
        for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
        return out;
    }

    // Generous (the machine may be loaded); tests of a QEMU that stops
    // answering shorten it.
    void use_monitor_timeout(milliseconds t) {
        close();
        monitor_timeout_ = t;
        open();
    }

    vireo::test::TempDir tmp_;
    int qemu_major_ = 7;
    milliseconds monitor_timeout_{3000};
    fs::path emulator_;
    std::shared_ptr<FakeQemuHost> host_ = std::make_shared<FakeQemuHost>();
    std::unique_ptr<QemuDriver> drv_;
    QemuDriverImpl* impl_ = nullptr;
    Events events_;
    std::unique_ptr<driver::Subscription> sub_;
};

// --- start ------------------------------------------------------------------------------

TEST_F(FakeMonitor, StartWhoseResumeEventArrivesBeforeTheContReply) {
    define_and_start("vm");
    auto d = info("vm");
    EXPECT_EQ(d.state, DomainState::Running);
    EXPECT_EQ(d.reason, "booted");
    const std::vector<std::string> want{"Defined/Added", "Started/Booted"};
    EXPECT_EQ(events_.of("vm"), want);
    EXPECT_EQ(joined(qemu("vm")->commands()), "qmp_capabilities, cont");
    EXPECT_EQ(runtime_files("vm"), (std::vector<std::string>{"vm.monitor", "vm.pid", "vm.xml"}));
}

// Define asks the host (the driver's emulators and their machine types): the
// machine type is canonicalised, and an architecture no emulator here runs
// is refused at define, naming it.
TEST_F(FakeMonitor, DefineCanonicalisesTheMachineAndRefusesForeignArchitectures) {
    define("vm");
    auto xml = drv_->domain_xml("vm", true);
    ASSERT_TRUE(xml);
    EXPECT_NE(xml->find("machine='pc-i440fx-7.2'"), std::string::npos) << *xml;
    EXPECT_NE(xml->find("<emulator>" + emulator_.string() + "</emulator>"), std::string::npos) << *xml;
    auto arm = drv_->define_domain(
        "<domain type='qemu'><name>arm</name><memory unit='MiB'>64</memory><os><type arch='aarch64' machine='virt'>hvm</type></os></domain>", true);
    ASSERT_FALSE(arm);
    EXPECT_EQ(arm.error().code, ErrorCode::Unsupported);
    EXPECT_NE(arm.error().message.find("'aarch64'"), std::string::npos) << arm.error().message;
    EXPECT_FALSE(drv_->lookup_domain("arm"));
}

// A pty serial: QEMU opens the pty; its path, from query-chardev, is in the
// live XML of the serial and of its console (libvirt's tty= too), not in
// the inactive one.
TEST_F(FakeMonitor, LiveXmlHasTheSerialConsolesPtyFromQueryChardev) {
    auto d = drv_->define_domain(
        "<domain type='qemu'><name>tty</name><memory unit='MiB'>64</memory><os><type arch='x86_64' machine='pc'>hvm</type></os>"
        "<devices><serial type='pty'/><console type='pty'/></devices></domain>",
        true);
    ASSERT_TRUE(d) << d.error().full_message();
    auto s = drv_->start_domain("tty", {});
    ASSERT_TRUE(s) << s.error().full_message();
    EXPECT_EQ(qemu("tty")->pty_chardevs, std::vector<std::string>{"charserial0"});
    auto live = drv_->domain_xml("tty", false);
    ASSERT_TRUE(live);
    EXPECT_NE(live->find("<serial type='pty'>\n      <source path='/dev/pts/90'/>"), std::string::npos) << *live;
    EXPECT_NE(live->find("<console type='pty' tty='/dev/pts/90'>\n      <source path='/dev/pts/90'/>"), std::string::npos) << *live;
    auto inactive = drv_->domain_xml("tty", true);
    ASSERT_TRUE(inactive);
    EXPECT_EQ(inactive->find("/dev/pts"), std::string::npos) << *inactive;
    // after a daemon restart, from the runtime status
    close();
    open();
    auto again = drv_->domain_xml("tty", false);
    ASSERT_TRUE(again);
    EXPECT_NE(again->find("<source path='/dev/pts/90'/>"), std::string::npos) << *again;
}

TEST_F(FakeMonitor, StartWhoseContReplyComesBeforeItsResumeEvent) {
    host_->on_spawn = [](FakeQemu& q) { q.on("cont", FakeQemu::reply_then_event(milliseconds(150))); };
    define_and_start("vm");
    EXPECT_EQ(info("vm").state, DomainState::Running);
    std::this_thread::sleep_for(milliseconds(300));  // the RESUME arrives now
    EXPECT_EQ(info("vm").state, DomainState::Running);
    EXPECT_EQ(info("vm").reason, "booted");
    const std::vector<std::string> want{"Defined/Added", "Started/Booted"};
    EXPECT_EQ(events_.of("vm"), want) << "the late RESUME is the start's, not a resume";
}

TEST_F(FakeMonitor, StartLeftPausedNeverSendsCont) {
    define("vm");
    driver::StartFlags flags;
    flags.paused = true;
    ASSERT_TRUE(drv_->start_domain("vm", flags));
    EXPECT_EQ(info("vm").state, DomainState::Paused);
    EXPECT_EQ(info("vm").reason, "user");
    EXPECT_EQ(joined(qemu("vm")->commands()), "qmp_capabilities");
    const std::vector<std::string> want{"Defined/Added", "Started/Booted", "Suspended/Paused"};
    EXPECT_EQ(events_.of("vm"), want);
}

TEST_F(FakeMonitor, ShutdownDuringStartFailsTheStartAndLeavesNothing) {
    // Someone else's SIGTERM reaches QEMU as the start resumes it.
    host_->on_spawn = [](FakeQemu& q) {
        q.on("cont", [](FakeQemu& f, FakeQemu::Command&) {
            f.event("SHUTDOWN", {{"guest", false}, {"reason", "host-signal"}});
            f.die();
            return true;
        });
    };
    define("vm");
    auto s = drv_->start_domain("vm", {});
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().full_message().find("failed to start domain 'vm'"), std::string::npos) << s.error().full_message();
    ASSERT_TRUE(wait_state("vm", DomainState::Shutoff));
    EXPECT_EQ(info("vm").reason, "failed");
    EXPECT_TRUE(runtime_files("vm").empty()) << joined(runtime_files("vm"));
    EXPECT_FALSE(qemu("vm")->alive());
    EXPECT_TRUE(events_.wait_for("vm", "Stopped/Failed", seconds(1)));
    EXPECT_FALSE(events_.wait_for("vm", "Started/Booted", milliseconds(0)));
}

TEST_F(FakeMonitor, QemuExitingBeforeItsMonitorAnswersFailsTheStart) {
    host_->on_spawn = [](FakeQemu& q) { q.die(); };
    define("vm");
    auto s = drv_->start_domain("vm", {});
    ASSERT_FALSE(s);
    EXPECT_EQ(info("vm").state, DomainState::Shutoff);
    EXPECT_TRUE(runtime_files("vm").empty()) << joined(runtime_files("vm"));
    EXPECT_TRUE(events_.of("vm").size() == 1) << "no Started, no Stopped: it never ran: " << joined(events_.of("vm"));
}

TEST_F(FakeMonitor, ContReplyThatNeverComesFailsTheStartAfterTheMonitorTimeout) {
    use_monitor_timeout(milliseconds(400));
    host_->on_spawn = [](FakeQemu& q) { q.on("cont", FakeQemu::never()); };
    define("vm");
    const auto t0 = std::chrono::steady_clock::now();
    auto s = drv_->start_domain("vm", {});
    ASSERT_FALSE(s);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(3));
    EXPECT_NE(s.error().full_message().find("did not answer 'cont'"), std::string::npos) << s.error().full_message();
    EXPECT_EQ(info("vm").state, DomainState::Shutoff);
    EXPECT_FALSE(qemu("vm")->alive()) << "the QEMU that stopped answering is killed";
    EXPECT_TRUE(runtime_files("vm").empty());
}

TEST_F(FakeMonitor, DestroyDuringStartCancelsTheStart) {
    host_->on_spawn = [](FakeQemu& q) { q.on("cont", FakeQemu::never()); };
    define("vm");
    auto start = std::async(std::launch::async, [&] { return drv_->start_domain("vm", {}); });
    for (int i = 0; i < 200 && !host_->find("vm"); ++i) std::this_thread::sleep_for(milliseconds(5));
    ASSERT_TRUE(host_->find("vm"));
    ASSERT_TRUE(qemu("vm")->wait_for_command("cont", seconds(2)));
    auto d = drv_->destroy_domain("vm", {});
    ASSERT_TRUE(d) << d.error().full_message();
    auto s = start.get();
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().full_message().find("destroyed while it was starting"), std::string::npos)
        << s.error().full_message();
    EXPECT_EQ(info("vm").state, DomainState::Shutoff);
    EXPECT_EQ(info("vm").reason, "destroyed");
    EXPECT_TRUE(events_.wait_for("vm", "Stopped/Destroyed", seconds(1)));
}

// --- pause and resume ------------------------------------------------------------------

TEST_F(FakeMonitor, PauseWhoseStopEventArrivesBeforeItsReply) {
    define_and_start("vm");
    ASSERT_TRUE(drv_->suspend_domain("vm"));
    EXPECT_EQ(info("vm").state, DomainState::Paused);
    EXPECT_EQ(info("vm").reason, "user");
    ASSERT_TRUE(drv_->resume_domain("vm"));
    EXPECT_EQ(info("vm").reason, "unpaused");
    const std::vector<std::string> want{"Defined/Added", "Started/Booted", "Suspended/Paused", "Resumed/Unpaused"};
    EXPECT_EQ(events_.of("vm"), want);
}

TEST_F(FakeMonitor, PauseWhoseReplyComesBeforeItsStopEvent) {
    host_->on_spawn = [](FakeQemu& q) { q.on("stop", FakeQemu::reply_then_event(milliseconds(100))); };
    define_and_start("vm");
    ASSERT_TRUE(drv_->suspend_domain("vm"));
    EXPECT_EQ(info("vm").reason, "user");
    std::this_thread::sleep_for(milliseconds(250));
    EXPECT_EQ(info("vm").state, DomainState::Paused);
    EXPECT_EQ(info("vm").reason, "user");
    const std::vector<std::string> want{"Defined/Added", "Started/Booted", "Suspended/Paused"};
    EXPECT_EQ(events_.of("vm"), want) << "one pause, reported once";
}

TEST_F(FakeMonitor, LateStopAfterAPauseTimedOutIsStillSeen) {
    use_monitor_timeout(milliseconds(400));
    host_->on_spawn = [](FakeQemu& q) { q.on("stop", FakeQemu::delay(milliseconds(900))); };
    define_and_start("vm");
    auto s = drv_->suspend_domain("vm");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, ErrorCode::Timeout) << s.error().full_message();
    EXPECT_EQ(info("vm").state, DomainState::Running);
    // QEMU did pause in the end; its late reply is dropped, its event counts.
    ASSERT_TRUE(wait_state("vm", DomainState::Paused));
    EXPECT_EQ(info("vm").reason, "unknown");
    EXPECT_TRUE(drv_->resume_domain("vm")) << "the monitor still works after a lost reply";
    EXPECT_EQ(info("vm").state, DomainState::Running);
}

TEST_F(FakeMonitor, StopNobodyAskedForIsReportedAsAPause) {
    define_and_start("vm");
    qemu("vm")->event("STOP");
    ASSERT_TRUE(wait_state("vm", DomainState::Paused));
    EXPECT_EQ(info("vm").reason, "unknown");
    EXPECT_TRUE(events_.wait_for("vm", "Suspended/Paused", seconds(1)));
}

// --- power and lifecycle policies ------------------------------------------------------------

TEST_F(FakeMonitor, GuestPoweroffEndsTheDomainAsShutdown) {
    define_and_start("vm");
    ASSERT_TRUE(drv_->shutdown_domain("vm", driver::ShutdownMode::Default));
    ASSERT_TRUE(wait_state("vm", DomainState::Shutoff));
    EXPECT_EQ(info("vm").reason, "shutdown");
    EXPECT_TRUE(events_.wait_for("vm", "Stopped/Shutdown", seconds(1)));
    EXPECT_TRUE(events_.wait_for("vm", "Shutdown/Finished", seconds(1)));
    EXPECT_TRUE(qemu("vm")->wait_dead(seconds(1)));
    EXPECT_TRUE(runtime_files("vm").empty());
}

TEST_F(FakeMonitor, RebootResetsTheGuestInsteadOfPoweringOff) {
    define_and_start("vm");
    ASSERT_TRUE(drv_->reboot_domain("vm", driver::ShutdownMode::Default));
    auto q = qemu("vm");
    ASSERT_TRUE(q->wait_for_command("cont", seconds(2), 2)) << joined(q->commands());
    std::this_thread::sleep_for(milliseconds(100));  // the STOP, RESET and RESUME are handled
    EXPECT_EQ(info("vm").state, DomainState::Running);
    EXPECT_TRUE(q->alive());
    EXPECT_EQ(q->runstate(), "running");
    const std::vector<std::string> want{"Defined/Added", "Started/Booted"};
    EXPECT_EQ(events_.of("vm"), want) << "a reboot is no pause, no stop";
    // One reboot per request: the next poweroff ends it.
    q->guest_powers_off();
    ASSERT_TRUE(wait_state("vm", DomainState::Shutoff));
}

TEST_F(FakeMonitor, GuestResetDuringAPowerdownChangesNothing) {
    host_->on_spawn = [](FakeQemu& q) { q.on_power_button = FakeQemu::Guest::Ignores; };
    define_and_start("vm");
    ASSERT_TRUE(drv_->shutdown_domain("vm", driver::ShutdownMode::Acpi));
    auto q = qemu("vm");
    q->event("RESET", {{"guest", true}, {"reason", "guest-reset"}});
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_EQ(info("vm").state, DomainState::Running);
    q->guest_powers_off();
    ASSERT_TRUE(wait_state("vm", DomainState::Shutoff));
    EXPECT_EQ(info("vm").reason, "shutdown");
}

TEST_F(FakeMonitor, PanicWhilePausedIsKeptWithOnCrashPreserve) {
    define_and_start("vm", "<on_crash>preserve</on_crash>");
    ASSERT_TRUE(drv_->suspend_domain("vm"));
    qemu("vm")->guest_panics();
    ASSERT_TRUE(wait_state("vm", DomainState::Crashed));
    EXPECT_EQ(info("vm").reason, "panicked");
    EXPECT_TRUE(qemu("vm")->alive());
    ASSERT_TRUE(drv_->destroy_domain("vm", {}));
    EXPECT_EQ(info("vm").reason, "destroyed");
}

TEST_F(FakeMonitor, GuestPanicRestartsTheGuestWithOnCrashRestart) {
    define_and_start("vm", "<on_crash>restart</on_crash>");
    auto q = qemu("vm");
    q->guest_panics();
    ASSERT_TRUE(q->wait_for_command("cont", seconds(2), 2));
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_EQ(info("vm").state, DomainState::Running);
    EXPECT_EQ(q->runstate(), "running");
    EXPECT_TRUE(events_.wait_for("vm", "Crashed/Panicked", seconds(1)));
    EXPECT_FALSE(events_.wait_for("vm", "Suspended/Paused", milliseconds(0)));
}

// --- destroy and QEMU's death -----------------------------------------------------------------

TEST_F(FakeMonitor, ShutdownEventCausedByDestroysSigtermIsNoShutdown) {
    define_and_start("vm");
    ASSERT_TRUE(drv_->destroy_domain("vm", {}));
    EXPECT_EQ(info("vm").state, DomainState::Shutoff);
    EXPECT_EQ(info("vm").reason, "destroyed");
    std::this_thread::sleep_for(milliseconds(100));
    const std::vector<std::string> want{"Defined/Added", "Started/Booted", "Stopped/Destroyed"};
    EXPECT_EQ(events_.of("vm"), want);
    EXPECT_TRUE(runtime_files("vm").empty());
}

TEST_F(FakeMonitor, GracefulDestroyOfAQemuIgnoringSigtermFailsAndKeepsIt) {
    host_->on_spawn = [](FakeQemu& q) { q.on_sigterm = FakeQemu::Sigterm::Ignored; };
    define_and_start("vm");
    driver::DestroyFlags graceful;
    graceful.graceful = true;
    auto d = drv_->destroy_domain("vm", graceful);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, ErrorCode::Timeout) << d.error().full_message();
    EXPECT_TRUE(qemu("vm")->alive());
    ASSERT_TRUE(drv_->destroy_domain("vm", {})) << "a forced destroy still works";
    EXPECT_EQ(info("vm").reason, "destroyed");
    EXPECT_FALSE(qemu("vm")->alive());
}

TEST_F(FakeMonitor, QemuDyingUnexpectedlyIsACrash) {
    define_and_start("vm");
    qemu("vm")->die();
    ASSERT_TRUE(wait_state("vm", DomainState::Shutoff));
    EXPECT_EQ(info("vm").reason, "crashed");
    EXPECT_TRUE(events_.wait_for("vm", "Stopped/Failed", seconds(1)));
    EXPECT_TRUE(runtime_files("vm").empty());
}

// --- save ---------------------------------------------------------------------------------------

TEST_F(FakeMonitor, SaveShowsPausedSavingWithProgressThenShutOffSaved) {
    host_->on_spawn = [](FakeQemu& q) {
        q.migration_bytes = 1 << 20;
        q.migration_duration = milliseconds(600);
    };
    define_and_start("vm");
    const fs::path image = tmp_ / "images" / "vm.save";
    auto save = std::async(std::launch::async, [&] { return drv_->save_domain("vm", image.string()); });
    ASSERT_TRUE(qemu("vm")->wait_for_command("query-migrate", seconds(2), 3));
    auto d = info("vm");
    EXPECT_EQ(d.state, DomainState::Paused) << "as libvirt: paused while saving";
    EXPECT_EQ(d.reason, "saving");
    auto job = object("vm")->async_job();
    ASSERT_TRUE(job);
    auto ji = job->info();
    EXPECT_EQ(ji.operation, driver::JobOperation::Save);
    EXPECT_EQ(ji.phase, "writing");
    EXPECT_EQ(ji.mem_total, 1u << 20);
    EXPECT_EQ(ji.data_total, 1u << 20) << "a save's data is the guest's memory, as libvirt's";
    EXPECT_EQ(ji.status, JobStatus::Unbounded) << "as libvirt reports a save";
    EXPECT_FALSE(fs::exists(image)) << "never a partial image under the final name";
    auto s = save.get();
    ASSERT_TRUE(s) << s.error().full_message();
    EXPECT_EQ(info("vm").state, DomainState::Shutoff);
    EXPECT_EQ(info("vm").reason, "saved");
    EXPECT_EQ(files_in(tmp_ / "images"), std::vector<std::string>{"vm.save"}) << "no temporary file left";
    auto opened = open_save_file(image);
    ASSERT_TRUE(opened) << opened.error().full_message();
    EXPECT_EQ(fs::file_size(image), opened->first.data_offset + (1u << 20));
    auto done = object("vm")->completed_job();
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, JobStatus::Completed);
    const std::vector<std::string> want{"Defined/Added", "Started/Booted", "Suspended/Paused", "Stopped/Saved"};
    EXPECT_EQ(events_.of("vm"), want);
}

TEST_F(FakeMonitor, SavedStreamIsRestoredThroughIncomingMigration) {
    define_and_start("vm");
    const fs::path image = tmp_ / "images" / "vm.save";
    ASSERT_TRUE(drv_->save_domain("vm", image.string()));
    auto r = drv_->restore_domain(image.string(), false);
    ASSERT_TRUE(r) << r.error().full_message();
    EXPECT_EQ(r->state, DomainState::Running);
    EXPECT_EQ(r->reason, "restored");
    auto q = qemu("vm");
    const std::string commands = joined(q->commands());
    EXPECT_TRUE(commands.starts_with("qmp_capabilities, getfd, migrate-incoming, query-migrate"));
    EXPECT_TRUE(commands.ends_with("query-migrate, cont")) << commands;
    EXPECT_EQ(object("vm")->completed_job()->operation, driver::JobOperation::Restore);
    EXPECT_EQ(object("vm")->completed_job()->status, JobStatus::Completed);
    EXPECT_TRUE(events_.wait_for("vm", "Started/Restored", seconds(1)));
}

TEST_F(FakeMonitor, QemuDyingDuringSaveLeavesNoFile) {
    host_->on_spawn = [](FakeQemu& q) { q.migration_stall_at = 64 * 1024; };
    define_and_start("vm");
    auto save = std::async(std::launch::async, [&] { return drv_->save_domain("vm", (tmp_ / "images" / "vm.save").string()); });
    ASSERT_TRUE(qemu("vm")->wait_for_command("query-migrate", seconds(2)));
    qemu("vm")->die();
    auto s = save.get();
    ASSERT_FALSE(s);
    ASSERT_TRUE(wait_state("vm", DomainState::Shutoff));
    EXPECT_EQ(info("vm").reason, "crashed");
    EXPECT_TRUE(files_in(tmp_ / "images").empty()) << joined(files_in(tmp_ / "images"));
    EXPECT_EQ(object("vm")->completed_job()->status, JobStatus::Failed);
}

TEST_F(FakeMonitor, DestroyDuringSaveDoesNotWaitForItAndLeavesNoFile) {
    host_->on_spawn = [](FakeQemu& q) { q.migration_stall_at = 64 * 1024; };
    define_and_start("vm");
    auto save = std::async(std::launch::async, [&] { return drv_->save_domain("vm", (tmp_ / "images" / "vm.save").string()); });
    ASSERT_TRUE(qemu("vm")->wait_for_command("query-migrate", seconds(2)));
    const auto t0 = std::chrono::steady_clock::now();
    auto d = drv_->destroy_domain("vm", {});
    ASSERT_TRUE(d) << d.error().full_message();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(2)) << "destroy is allowed during the save";
    auto s = save.get();
    ASSERT_FALSE(s);
    EXPECT_EQ(info("vm").state, DomainState::Shutoff);
    EXPECT_EQ(info("vm").reason, "destroyed");
    EXPECT_TRUE(files_in(tmp_ / "images").empty()) << joined(files_in(tmp_ / "images"));
    EXPECT_EQ(object("vm")->completed_job()->status, JobStatus::Failed);
}

TEST_F(FakeMonitor, AbortDuringSaveCancelsTheMigrationAndTheGuestRunsAgain) {
    host_->on_spawn = [](FakeQemu& q) { q.migration_stall_at = 64 * 1024; };
    define_and_start("vm");
    auto save = std::async(std::launch::async, [&] { return drv_->save_domain("vm", (tmp_ / "images" / "vm.save").string()); });
    auto q = qemu("vm");
    ASSERT_TRUE(q->wait_for_command("query-migrate", seconds(2)));
    auto job = object("vm")->async_job();
    ASSERT_TRUE(job);
    ASSERT_TRUE(job->request_abort());
    auto s = save.get();
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().full_message(), "operation aborted: job 'domain save' canceled by client");
    EXPECT_TRUE(q->wait_for_command("migrate_cancel", milliseconds(0)));
    EXPECT_EQ(q->migration_status(), "cancelled");
    EXPECT_EQ(info("vm").state, DomainState::Running);
    EXPECT_EQ(info("vm").reason, "save canceled");
    EXPECT_EQ(q->runstate(), "running");
    EXPECT_TRUE(files_in(tmp_ / "images").empty()) << joined(files_in(tmp_ / "images"));
    EXPECT_EQ(object("vm")->completed_job()->status, JobStatus::Cancelled);
    const std::vector<std::string> want{"Defined/Added", "Started/Booted", "Suspended/Paused", "Resumed/Unpaused"};
    EXPECT_EQ(events_.of("vm"), want);
}

// The same through the connection's operations, as vireod serves them:
// domain.jobinfo reports the save while it runs, job.list lists it,
// domain.abort_job stops it, job.abort finds nothing left to stop.
TEST_F(FakeMonitor, JobOperationsReportAndAbortTheSave) {
    namespace ops = driver::ops;
    host_->on_spawn = [](FakeQemu& q) { q.migration_stall_at = 64 * 1024; };
    define_and_start("vm");
    EXPECT_EQ(drv_->call<ops::DomainJobInfo>({.ref = "vm"})->status, JobStatus::None);
    auto save = std::async(std::launch::async,
                           [&] { return drv_->save_domain("vm", (tmp_ / "images" / "vm.save").string()); });
    ASSERT_TRUE(qemu("vm")->wait_for_command("query-migrate", seconds(2)));
    auto running = drv_->call<ops::DomainJobInfo>({.ref = "vm"});
    ASSERT_TRUE(running) << running.error().full_message();
    EXPECT_EQ(running->status, JobStatus::Unbounded);
    EXPECT_EQ(running->operation, driver::JobOperation::Save);
    EXPECT_EQ(running->object, "domain 'vm'");
    auto jobs = drv_->call<ops::JobList>({});
    ASSERT_TRUE(jobs);
    ASSERT_EQ(jobs->size(), 1u);
    EXPECT_EQ((*jobs)[0].id, running->id);

    ASSERT_TRUE(drv_->call<ops::DomainAbortJob>({.ref = "vm"}));
    auto s = save.get();
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message, "operation aborted: job 'domain save' canceled by client");
    EXPECT_EQ(info("vm").reason, "save canceled");
    auto done = drv_->call<ops::DomainJobInfo>({.ref = "vm", .completed = true});
    EXPECT_EQ(done->status, JobStatus::Cancelled);
    EXPECT_EQ(done->error, "operation aborted: job 'domain save' canceled by client");
    EXPECT_TRUE(drv_->call<ops::JobList>({})->empty());
    auto again = drv_->call<ops::JobAbort>({.id = std::to_string(done->id)});
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, ErrorCode::NotFound);
    auto none = drv_->call<ops::DomainAbortJob>({.ref = "vm"});
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().message, "Requested operation is not valid: no job is active on the domain");
}

TEST_F(FakeMonitor, SaveOfAQemuThatStopsAnsweringEndsAtTheDeadline) {
    use_monitor_timeout(milliseconds(400));
    host_->on_spawn = [](FakeQemu& q) { q.on("query-migrate", FakeQemu::never()); };
    define_and_start("vm");
    const auto t0 = std::chrono::steady_clock::now();
    auto s = drv_->save_domain("vm", (tmp_ / "images" / "vm.save").string());
    ASSERT_FALSE(s);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(3));
    EXPECT_NE(s.error().full_message().find("did not answer 'query-migrate'"), std::string::npos)
        << s.error().full_message();
    EXPECT_EQ(info("vm").state, DomainState::Running) << "the guest runs again";
    EXPECT_TRUE(files_in(tmp_ / "images").empty()) << joined(files_in(tmp_ / "images"));
}

TEST_F(FakeMonitor, SaveOfAPausedGuestThatFailsLeavesItPaused) {
    host_->on_spawn = [](FakeQemu& q) { q.on("migrate", FakeQemu::fail("fake: no space left")); };
    define_and_start("vm");
    ASSERT_TRUE(drv_->suspend_domain("vm"));
    auto s = drv_->save_domain("vm", (tmp_ / "images" / "vm.save").string());
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().full_message().find("fake: no space left"), std::string::npos);
    EXPECT_EQ(info("vm").state, DomainState::Paused);
    EXPECT_EQ(info("vm").reason, "user");
    const auto commands = qemu("vm")->commands();
    EXPECT_EQ(std::count(commands.begin(), commands.end(), "cont"), 1) << "only the start's cont";
    EXPECT_TRUE(files_in(tmp_ / "images").empty());
}

TEST_F(FakeMonitor, OtherJobsWaitForTheSaveButQueriesDoNot) {
    host_->on_spawn = [](FakeQemu& q) {
        q.migration_bytes = 1 << 20;
        q.migration_duration = milliseconds(500);
    };
    define_and_start("vm");
    auto save = std::async(std::launch::async, [&] { return drv_->save_domain("vm", (tmp_ / "images" / "vm.save").string()); });
    ASSERT_TRUE(qemu("vm")->wait_for_command("query-migrate", seconds(2)));
    EXPECT_EQ(info("vm").reason, "saving");
    auto suspended = drv_->suspend_domain("vm");  // waits until the save ended
    ASSERT_TRUE(save.get());
    ASSERT_FALSE(suspended);
    EXPECT_NE(suspended.error().message.find("not running"), std::string::npos) << suspended.error().full_message();
}

// --- reattach ---------------------------------------------------------------------------------

TEST_F(FakeMonitor, EofDuringReattachEndsTheDomain) {
    define_and_start("vm");
    close();
    // The restarted daemon asks QEMU its state; QEMU dies instead of answering.
    qemu("vm")->on("query-status", [](FakeQemu& q, FakeQemu::Command&) {
        q.die();
        return true;
    });
    open();
    ASSERT_TRUE(wait_state("vm", DomainState::Shutoff));
    EXPECT_EQ(info("vm").reason, "crashed");
    EXPECT_TRUE(runtime_files("vm").empty()) << joined(runtime_files("vm"));
}

TEST_F(FakeMonitor, ReattachKeepsARunningGuestAndItsMonitorWorks) {
    define_and_start("vm");
    close();
    open();
    EXPECT_EQ(info("vm").state, DomainState::Running);
    EXPECT_EQ(info("vm").reason, "booted");
    ASSERT_TRUE(drv_->suspend_domain("vm"));
    EXPECT_EQ(qemu("vm")->runstate(), "paused");
}

// The status a daemon killed mid-save leaves, as the save wrote it.
void make_status_mid_save(const fs::path& run, const std::string& name, const fs::path& temp, const fs::path& target,
                          bool written) {
    driver::Persistence p(run.parent_path() / "conf", run);
    auto st = p.read_status(name);
    ASSERT_TRUE(st) << st.error().full_message();
    st->set("state", "paused");
    st->set("reason", "saving");
    st->set("phase", "saving");
    st->set("save_file", temp.string());
    st->set("save_target", target.string());
    st->set("save_was_running", static_cast<std::int64_t>(1));
    st->set("save_prior_reason", "booted");
    st->set("save_written", static_cast<std::int64_t>(written));
    ASSERT_TRUE(p.write_status(name, *st));
}

TEST_F(FakeMonitor, DaemonKilledMidSaveIsUndoneAtReattach) {
    host_->on_spawn = [](FakeQemu& q) { q.migration_stall_at = 64 * 1024; };
    define_and_start("vm");
    auto q = qemu("vm");
    close();
    // QEMU still migrates into the partial file the dead daemon created.
    const fs::path temp = tmp_ / "images" / ".vm.save.0123.vireo-part";
    const fs::path target = tmp_ / "images" / "vm.save";
    {
        UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
        ASSERT_TRUE(fd);
        q->begin_outgoing_migration(std::move(fd));
    }
    make_status_mid_save(tmp_ / "run", "vm", temp, target, false);
    open();
    EXPECT_EQ(info("vm").state, DomainState::Running);
    EXPECT_EQ(info("vm").reason, "save canceled");
    EXPECT_EQ(q->migration_status(), "cancelled");
    EXPECT_EQ(q->runstate(), "running");
    EXPECT_TRUE(files_in(tmp_ / "images").empty()) << joined(files_in(tmp_ / "images"));
    auto done = object("vm")->completed_job();
    ASSERT_TRUE(done);
    EXPECT_EQ(done->operation, driver::JobOperation::Save);
    EXPECT_EQ(done->status, JobStatus::Failed);
    EXPECT_EQ(done->error, "the daemon stopped during the save");
}

TEST_F(FakeMonitor, DaemonKilledAfterTheImageWasWrittenFinishesTheSaveAtReattach) {
    define_and_start("vm");
    auto q = qemu("vm");
    close();
    const fs::path temp = tmp_ / "images" / ".vm.save.0123.vireo-part";
    const fs::path target = tmp_ / "images" / "vm.save";
    ASSERT_TRUE(files::write_atomic(temp, "complete image"));
    make_status_mid_save(tmp_ / "run", "vm", temp, target, true);
    open();
    EXPECT_EQ(info("vm").state, DomainState::Shutoff);
    EXPECT_EQ(info("vm").reason, "saved");
    EXPECT_FALSE(q->alive());
    EXPECT_EQ(files_in(tmp_ / "images"), std::vector<std::string>{"vm.save"});
    EXPECT_EQ(object("vm")->completed_job()->status, JobStatus::Completed);
}

TEST_F(FakeMonitor, StartThatNeverCompletedIsKilledAtReattach) {
    define_and_start("vm");
    auto q = qemu("vm");
    close();
    // As a daemon killed between connecting QEMU's monitor and resuming it
    // leaves the status.
    driver::Persistence p(tmp_ / "conf", tmp_ / "run");
    auto st = p.read_status("vm");
    ASSERT_TRUE(st);
    st->set("state", "paused");
    st->set("reason", "starting up");
    st->set("phase", "starting");
    ASSERT_TRUE(p.write_status("vm", *st));
    open();
    EXPECT_EQ(info("vm").state, DomainState::Shutoff);
    EXPECT_EQ(info("vm").reason, "failed");
    EXPECT_FALSE(q->alive());
    EXPECT_TRUE(runtime_files("vm").empty()) << joined(runtime_files("vm"));
}

// --- vCPU hotplug ------------------------------------------------------------------------

// QEMU's two vCPU slots of <vcpu current='1'>2</vcpu> (query-hotpluggable-cpus,
// highest first), filled by device_add; device_del empties a slot when the
// guest gives the CPU up, as QEMU 7.2 does it: DEVICE_DELETED only for the
// vCPU's lapic child.
struct VcpuSlots {
    std::mutex m;
    std::string plugged;  // qom path of slot 1, "" empty
    std::atomic<bool> guest_gives_up = true;

    void serve(FakeQemu& q) {
        q.on("query-hotpluggable-cpus", [this](FakeQemu& fq, FakeQemu::Command& c) {
            std::lock_guard lk(m);
            auto slot = [](int socket, const std::string& path) {
                nlohmann::json j = {{"type", "qemu64-x86_64-cpu"}, {"vcpus-count", 1},
                                    {"props", {{"socket-id", socket}, {"core-id", 0}, {"thread-id", 0}}}};
                if (!path.empty()) j["qom-path"] = path;
                return j;
            };
            fq.server().reply(c, nlohmann::json::array({slot(1, plugged), slot(0, "/machine/unattached/device[0]")}));
            return true;
        });
        q.on("device_add", [this](FakeQemu& fq, FakeQemu::Command& c) {
            std::lock_guard lk(m);
            plugged = "/machine/peripheral/" + c.arguments.value("id", std::string());
            fq.server().reply(c);
            return true;
        });
        q.on("device_del", [this](FakeQemu& fq, FakeQemu::Command& c) {
            fq.server().reply(c);
            if (!guest_gives_up) return true;
            std::lock_guard lk(m);
            fq.event("DEVICE_DELETED", {{"path", plugged + "/lapic"}});
            plugged.clear();
            return true;
        });
    }
};

// "vm" with <vcpu current='1'>2</vcpu> started on `slots`, vCPU 1 plugged
// (setvcpus 2 --live); its live XML then.
std::string start_with_vcpu1_plugged(QemuDriver& drv, const std::function<std::shared_ptr<FakeQemu>()>& qemu, VcpuSlots& slots) {
    const std::string xml = "<domain type='qemu'><name>vm</name><memory unit='MiB'>64</memory><vcpu current='1'>2</vcpu>"
                            "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices></devices></domain>";
    EXPECT_TRUE(drv.define_domain(xml, true));
    EXPECT_TRUE(drv.start_domain("vm", {}));
    slots.serve(*qemu());
    EXPECT_TRUE(drv.call<driver::ops::DomainSetVcpus>({.ref = "vm", .count = 2, .live = true}));
    return drv.domain_xml("vm", false).value_or("");
}

TEST_F(FakeMonitor, VcpuUnplugConfirmedFromQemusCpuListAndAGuestKeepingItChangesNothing) {
    namespace ops = driver::ops;
    qemu_major_ = 8;  // QEMU 7.2 under TCG is refused (the next test)
    close();
    open();
    VcpuSlots slots;
    const std::string plugged = start_with_vcpu1_plugged(*drv_, [this] { return qemu("vm"); }, slots);
    EXPECT_NE(plugged.find("<vcpu placement='static'>2</vcpu>\n  <vcpus>\n"
                           "    <vcpu id='0' enabled='yes' hotpluggable='no' order='1'/>\n"
                           "    <vcpu id='1' enabled='yes' hotpluggable='yes' order='2'/>\n"),
              std::string::npos)
        << plugged;

    // The guest keeps its CPU: an error after virsh's 5 s, the domain as it was.
    slots.guest_gives_up = false;
    auto kept = drv_->call<ops::DomainSetVcpu>({.ref = "vm", .vcpulist = "1", .enable = false, .live = true});
    ASSERT_FALSE(kept);
    EXPECT_NE(kept.error().full_message().find("the guest did not release vcpu1 within 5000 ms"), std::string::npos)
        << kept.error().full_message();
    EXPECT_EQ(*drv_->domain_xml("vm", false), plugged);

    // It gives it up: confirmed from query-hotpluggable-cpus, not from an event.
    slots.guest_gives_up = true;
    ASSERT_TRUE(drv_->call<ops::DomainSetVcpus>({.ref = "vm", .count = 1, .live = true}));
    const std::string unplugged = *drv_->domain_xml("vm", false);
    EXPECT_NE(unplugged.find("<vcpu placement='static' current='1'>2</vcpu>\n  <vcpus>\n"
                             "    <vcpu id='0' enabled='yes' hotpluggable='no' order='1'/>\n"
                             "    <vcpu id='1' enabled='no' hotpluggable='yes'/>\n"),
              std::string::npos)
        << unplugged;
    // And plugged again by its id.
    ASSERT_TRUE(drv_->call<ops::DomainSetVcpu>({.ref = "vm", .vcpulist = "1", .enable = true, .live = true}));
    EXPECT_NE(drv_->domain_xml("vm", false)->find("<vcpu id='1' enabled='yes' hotpluggable='yes' order='2'/>"), std::string::npos);
}

TEST_F(FakeMonitor, VcpuUnplugUnderTcgWithQemu72IsRefusedBeforeAnythingIsSent) {
    namespace ops = driver::ops;
    VcpuSlots slots;
    const std::string plugged = start_with_vcpu1_plugged(*drv_, [this] { return qemu("vm"); }, slots);
    auto refused = drv_->call<ops::DomainSetVcpus>({.ref = "vm", .count = 1, .live = true});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::Unsupported);
    EXPECT_NE(refused.error().message.find("with QEMU 7.2.0: this QEMU damages its own memory"), std::string::npos)
        << refused.error().message;
    const auto sent = qemu("vm")->commands();
    EXPECT_EQ(std::ranges::count(sent, std::string("device_del")), 0);
    EXPECT_EQ(*drv_->domain_xml("vm", false), plugged);
}

}  // namespace
}  // namespace vireo::qemu::test
