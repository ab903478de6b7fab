// What the tests of libvirt's clients against vireod share: a session vireod
// of the test's own (every path in one temporary directory) serving vireo's
// HTTP API on vireo.sock and libvirt's remote protocol on libvirt.sock and
// libvirt-ro.sock; real virsh and vireo run against it, and compared.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/guest.hpp"
#include "support/support.hpp"

namespace vireo::test {

inline constexpr const char* kVirsh = "/usr/bin/virsh";

class LibvirtClientsTest : public ::testing::Test {
protected:
    // Skips when virsh or vireod is missing; fails when vireod does not listen.
    void SetUp() override;
    // SIGTERM; the daemon must exit 0.
    void TearDown() override;

    [[nodiscard]] std::string uri(const std::string& socket = "libvirt.sock") const {
        return "qemu+unix:///session?socket=" + (dir_ / socket).string();
    }
    // virsh over libvirt's protocol (`socket` libvirt-ro.sock: read-only).
    CommandResult virsh(std::vector<std::string> args, const std::string& socket = "libvirt.sock") const;
    // vireo over vireod's HTTP API.
    CommandResult vireo(std::vector<std::string> args) const;
    // virsh's stdout; a failure is a test failure.
    std::string ok(const std::vector<std::string>& args) const;
    // virsh and vireo print the same (stdout, stderr, exit code) for `args`.
    // A failing virsh command also prints an empty line on stdout, which
    // vireo does not: failures compare stderr and the exit code.
    void same(const std::vector<std::string>& args) const;

    TempDir dir_;
    std::optional<QemuProcess> daemon_;
};

}  // namespace vireo::test
