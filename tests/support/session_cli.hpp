// The vireo CLI against a session daemon of its own: qemu:///session with
// every XDG-style directory under one temporary root, so a test never touches
// the user's ~/.config and the daemon is auto-started by the first call, as
// it is for a user.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/support.hpp"

namespace vireo::test {

class SessionCli {
public:
    // Directories go below `root` (run/, config/, cache/).
    explicit SessionCli(std::filesystem::path root);

    // argv that runs `vireo args...` in this session (through env(1));
    // `extra_env` ("NAME=value", e.g. EDITOR=...) is added to the environment.
    [[nodiscard]] std::vector<std::string> argv(const std::vector<std::string>& args,
                                                const std::string& extra_env = {}) const;
    CommandResult operator()(const std::vector<std::string>& args, const std::string& input = {}) const;

    // Type `command` on domain `name`'s serial console (`vireo console`)
    // once the test guest's shell prompt answers, and wait until `expect` (a
    // regex) shows or `timeout` passes. `output`, when given, receives what
    // the console printed (for a failure's message).
    bool on_console(const std::string& name, const std::string& command, const std::string& expect,
                    std::chrono::seconds timeout = std::chrono::seconds(180), std::string* output = nullptr) const;

    // Destroy every running domain.
    void destroy_guests() const;
    // Stop the session daemon (SIGTERM, then wait up to 5 s for it to exit).
    void stop_daemon() const;

    [[nodiscard]] std::filesystem::path runtime_dir() const { return root_ / "run"; }

private:
    std::filesystem::path root_;
    std::vector<std::string> env_;
};

// A test of the CLI against a session daemon of its own running the test
// guest: skipped, with the reason, without the guest or vireod; every
// guest destroyed and the daemon stopped at the end.
class SessionGuestTest : public ::testing::Test {
protected:
    void SetUp() override;
    void TearDown() override;
    CommandResult vireo(const std::vector<std::string>& args) { return cli_(args); }

    TempDir dir_;
    SessionCli cli_{dir_.path()};
    bool in_use_ = false;  // SetUp did not skip: stop what the test started
};

// The lines of `text` (each without its '\n'; a last line without one is dropped).
std::vector<std::string> split_lines(const std::string& text);

}  // namespace vireo::test
