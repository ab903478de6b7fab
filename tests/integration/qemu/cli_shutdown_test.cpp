// `vireo shutdown --wait [--timeout]` end to end: the CLI against a real
// session daemon (auto-started on temporary directories) running the test
// guest under QEMU/TCG.
#include <gtest/gtest.h>

#include <fstream>

#include "helpers.hpp"
#include "support/guest.hpp"
#include "support/session_cli.hpp"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;

class QemuCliShutdown : public SessionGuestTest {
protected:
    std::vector<std::string> vireo_argv(const std::vector<std::string>& args) { return cli_.argv(args); }

    // True once the guest's shell answers on `vireo console`.
    bool guest_answers(const std::string& name) {
        auto console = QemuProcess::start(vireo_argv({"console", name}));
        if (!console) return false;
        const auto deadline = std::chrono::steady_clock::now() + 180s;
        while (std::chrono::steady_clock::now() < deadline) {
            console->send("echo VIREO-WAIT-$((40+2))\n");
            if (console->wait_for(std::regex("VIREO-WAIT-42"), 5s)) return true;
        }
        return false;
    }
};

TEST_F(QemuCliShutdown, WaitReturnsOnceShutOffAndTimesOutClearly) {
    const std::string xml = (dir_ / "waiter.xml").string();
    std::ofstream(xml) << qemu::test::guest_xml("waiter");
    ASSERT_EQ(vireo({"define", xml}).exit_code, 0);

    // --timeout without --wait is a usage error.
    auto usage = vireo({"shutdown", "waiter", "--timeout", "5"});
    EXPECT_EQ(usage.exit_code, 1);
    EXPECT_NE(usage.err.find("--timeout requires --wait"), std::string::npos) << usage.err;

    // A paused guest cannot act on the power button: the wait times out.
    ASSERT_EQ(vireo({"start", "waiter", "--paused"}).exit_code, 0);
    const auto t0 = std::chrono::steady_clock::now();
    auto late = vireo({"shutdown", "waiter", "--wait", "--timeout", "2"});
    EXPECT_EQ(late.exit_code, 1);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s);
    EXPECT_NE(late.err.find("error: Domain 'waiter' did not shut off within 2 seconds (it is paused)"),
              std::string::npos)
        << late.err;
    ASSERT_EQ(vireo({"destroy", "waiter"}).exit_code, 0);

    // A running guest powers off; the command returns when it is shut off.
    ASSERT_EQ(vireo({"start", "waiter"}).exit_code, 0);
    ASSERT_TRUE(guest_answers("waiter"));
    auto done = vireo({"shutdown", "waiter", "--wait", "--timeout", "120"});
    EXPECT_EQ(done.exit_code, 0) << done.err;
    EXPECT_EQ(done.out, "Domain 'waiter' is being shutdown\nDomain 'waiter' is shut off\n\n");
    auto state = vireo({"domstate", "waiter"});
    EXPECT_EQ(state.out, "shut off\n\n") << state.err;
}

}  // namespace
}  // namespace vireo::test
