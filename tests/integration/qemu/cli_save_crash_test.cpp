// A save cut short by the daemon's death, as a user meets it: `vireo save`
// of a guest with enough memory in use that the save takes a while, the
// session daemon SIGKILLed while QEMU writes the image, then the next
// `vireo` command (which starts a new daemon). The new daemon finds the
// save in the runtime status, cancels QEMU's migration, deletes the partial
// file and lets the guest run again: the same QEMU, its memory intact.
#include <gtest/gtest.h>

#include <signal.h>

#include <fstream>
#include <thread>

#include "helpers.hpp"
#include "support/guest.hpp"
#include "support/session_cli.hpp"
#include "util/files.hpp"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class QemuCliSaveCrash : public ::testing::Test {
protected:
    void SetUp() override {
        if (!fs::exists(bin_dir() / "vireod")) VIREO_SKIP("vireod is not built");
        fs::create_directories(images_);
        in_use_ = true;
    }
    void TearDown() override {
        if (!in_use_) return;
        cli_.destroy_guests();
        cli_.stop_daemon();
    }

    // Run `command` on the guest's console until `expect` (a regex) shows.
    bool on_console(const std::string& name, const std::string& command, const std::string& expect,
                    std::chrono::seconds timeout = 180s) {
        return cli_.on_console(name, command, expect, timeout, &console_output_);
    }

    int daemon_pid() const {
        auto text = files::read(cli_.runtime_dir() / "vireod.pid");
        return text ? std::atoi(text->c_str()) : -1;
    }

    // The save's temporary file in the target directory, once it exists.
    std::optional<fs::path> partial_image() const {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(images_, ec))
            if (e.path().filename().string().ends_with(".vireo-part")) return e.path();
        return std::nullopt;
    }

    TempDir dir_;
    SessionCli cli_{dir_.path()};
    fs::path images_ = dir_.path() / "images";
    bool in_use_ = false;
    std::string console_output_;  // of the last on_console()
};

TEST_F(QemuCliSaveCrash, DaemonKilledMidSaveLeavesTheGuestRunningAndNoFile) {
    VIREO_REQUIRE_GUEST();
    std::string xml = qemu::test::guest_xml("big");
    const std::string small = "<memory unit='MiB'>160</memory>";
    ASSERT_NE(xml.find(small), std::string::npos);
    xml.replace(xml.find(small), small.size(), "<memory unit='MiB'>640</memory>");
    const fs::path xml_file = dir_.path() / "big.xml";
    std::ofstream(xml_file) << xml;
    ASSERT_EQ(cli_({"define", xml_file.string()}).exit_code, 0);
    ASSERT_EQ(cli_({"start", "big"}).exit_code, 0);
    const auto pids = qemu::test::qemu_pids_for("big");
    ASSERT_EQ(pids.size(), 1u);

    // 128 MiB of guest memory in use (the guest's /tmp is in RAM), so that
    // the save takes a while: 1 MiB of text doubled 7 times (cat is fast
    // under TCG where a pipe of small writes is not).
    ASSERT_TRUE(on_console("big",
                           "yes vireo-memory-in-use | head -c 1048576 > /tmp/fill; for i in 1 2 3 4 5 6 7; do "
                           "cat /tmp/fill /tmp/fill > /tmp/next && mv /tmp/next /tmp/fill; done; echo filled-$((6*7))",
                           "filled-42\r?\n", 300s))
        << console_output_;

    const fs::path image = images_ / "big.save";
    auto save = QemuProcess::start(cli_.argv({"save", "big", image.string()}));
    ASSERT_TRUE(save) << save.error().message;
    std::optional<fs::path> partial;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!(partial = partial_image()) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(2ms);
    ASSERT_TRUE(partial) << "the save never started writing: " << save->output();
    const int daemon = daemon_pid();
    ASSERT_GT(daemon, 1);
    ASSERT_EQ(::kill(daemon, SIGKILL), 0);
    EXPECT_TRUE(fs::exists(*partial)) << "killed while the image was being written";
    EXPECT_FALSE(fs::exists(image));
    auto code = save->wait_exit(30s);
    ASSERT_TRUE(code);
    EXPECT_NE(*code, 0) << "the save was not acknowledged: " << save->output();
    for (int i = 0; i < 100 && ::kill(daemon, 0) == 0; ++i) std::this_thread::sleep_for(50ms);

    // The next command starts a daemon, which reattaches and undoes the save.
    auto state = cli_({"domstate", "big", "--reason"});
    ASSERT_EQ(state.exit_code, 0) << state.err;
    EXPECT_EQ(state.out, "running (save canceled)\n\n");
    EXPECT_TRUE(fs::is_empty(images_)) << "neither the partial image nor a final one";
    EXPECT_EQ(qemu::test::qemu_pids_for("big"), pids) << "the same QEMU runs on";
    EXPECT_TRUE(on_console("big", "wc -c < /tmp/fill", "134217728\r?\n")) << "its memory intact:\n"
                                                                           << console_output_;
}

}  // namespace
}  // namespace vireo::test
