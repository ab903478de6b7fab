// vireo host-validate: virt-host-validate's QEMU checks, plus the KVM
// finding that matters here (PVM / unusable KVM), in its PASS/WARN/FAIL
// format:
//   "  QEMU: Checking for hardware virtualization                 : PASS"
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "host/probe.hpp"

namespace vireo::host {

enum class CheckResult { Pass, Warn, Fail };
std::string_view to_string(CheckResult r);

struct HostCheck {
    std::string name;     // "Checking if device /dev/kvm exists"
    CheckResult result = CheckResult::Pass;
    std::string message;  // why it warns/fails and what to do ("" on PASS)
};

struct ValidateOptions {
    HostPaths paths;
    // The system daemon's socket, to test whether this user may reach it.
    std::filesystem::path system_socket = "/run/vireo/vireo-sock";
    DetectOptions detect;
};

std::vector<HostCheck> run_host_checks(const ValidateOptions& opts = {});

// virt-host-validate's layout, one line per check.
std::string format_host_checks(const std::vector<HostCheck>& checks);

// Overall exit status as virt-host-validate: 1 if any FAIL, else 0.
int host_checks_exit_code(const std::vector<HostCheck>& checks);

}  // namespace vireo::host
