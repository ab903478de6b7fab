// Shared helpers of the QEMU driver integration tests.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "driver/driver.hpp"
#include "qemu/qemu_driver.hpp"
#include "support/support.hpp"
#include "util/fd.hpp"

namespace vireo::qemu::test {

// A driver on fresh directories below `root` (autostart off).
QemuDriverConfig config_in(const std::filesystem::path& root);
std::unique_ptr<QemuDriver> make_driver(const std::filesystem::path& root);

// The test guest as a domain definition (type qemu, direct kernel boot,
// serial console). `extra_devices` is inserted into <devices>.
std::string guest_xml(const std::string& name, const std::string& extra_devices = "",
                      const std::string& cmdline_extra = "");

// Wait until `file` contains a match of `pattern`.
std::optional<std::smatch> wait_file(const std::filesystem::path& file, const std::regex& pattern,
                                     std::chrono::milliseconds timeout, std::string* content = nullptr);

// Pids of live qemu processes whose command line names guest=<name>.
std::vector<int> qemu_pids_for(const std::string& name);

// Files in `dir` whose names start with `prefix`.
std::vector<std::string> files_starting_with(const std::filesystem::path& dir, const std::string& prefix);

// An interactive session on a domain's serial console.
class Console {
public:
    explicit Console(UniqueFd fd) : fd_(std::move(fd)) {}
    // Run a shell command; its output (without echo and prompt).
    std::optional<std::string> run(const std::string& command, std::chrono::milliseconds timeout);

private:
    bool wait_for(const std::string& needle, std::chrono::milliseconds timeout);
    UniqueFd fd_;
    std::string buf_;
};

// Records lifecycle events ("Started/Booted", ...).
class EventLog {
public:
    void add(const driver::DomainEvent& e);
    std::vector<std::string> for_domain(const std::string& name) const;
    bool wait_for(const std::string& name, const std::string& what, std::chrono::milliseconds timeout) const;

private:
    mutable std::mutex mutex_;
    std::vector<std::pair<std::string, std::string>> events_;
};

}  // namespace vireo::qemu::test
