// Shared helpers of the QEMU driver integration tests.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
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
// serial console). `extra_devices` is inserted into <devices>, `extra_top`
// (e.g. "<on_crash>preserve</on_crash>") after <os>.
std::string guest_xml(const std::string& name, const std::string& extra_devices = "",
                      const std::string& cmdline_extra = "", const std::string& extra_top = "");

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
    // Type `command` and Enter, and wait only until the shell has read it
    // (its echo), for commands that never return (panic, reboot). Close the
    // console soon after: a connected console that is not read stalls the
    // guest's serial output (QEMU writes each byte to the socket separately,
    // so a few hundred unread bytes fill its buffer), and with it the guest.
    bool send(const std::string& command);

private:
    bool wait_for(const std::string& needle, std::chrono::milliseconds timeout);
    // Press Enter until the shell prompt answers: what is typed before the
    // guest's shell runs may be dropped (the boot marker precedes the shell).
    bool wait_shell(std::chrono::milliseconds timeout);
    UniqueFd fd_;
    std::string buf_;
    bool shell_ready_ = false;
};

// How many times the guest's boot marker appears in `text`.
int count_boot_markers(const std::string& text);

// Records events ("Started/Booted", "DeviceRemoved/dimm1",
// "MemoryDeviceSizeChange/virtiomem0/131072", ...).
class EventLog {
public:
    void add(const driver::DomainEvent& e);
    std::vector<std::string> for_domain(const std::string& name) const;
    bool wait_for(const std::string& name, const std::string& what, std::chrono::milliseconds timeout) const;

private:
    mutable std::mutex mutex_;
    std::vector<std::pair<std::string, std::string>> events_;
};

// A driver on a temp dir, its events recorded; destroys every guest left
// running when it goes away.
struct GuestFixture {
    static constexpr std::chrono::seconds kBoot{120};
    vireo::test::TempDir tmp;
    std::unique_ptr<QemuDriver> drv;
    EventLog events;
    std::unique_ptr<driver::Subscription> sub;

    GuestFixture() { open(); }
    ~GuestFixture();
    GuestFixture(const GuestFixture&) = delete;
    GuestFixture& operator=(const GuestFixture&) = delete;

    // (Re)create the driver on tmp and subscribe to its events;
    // `configure` may change the configuration first.
    void open(const std::function<void(QemuDriverConfig&)>& configure = {});
    // Drop the driver (its guests keep running).
    void close();
    // Define guest_xml(name, extra, cmdline_extra, extra_top) and start it.
    void define_and_start(const std::string& name, const std::string& extra = "",
                          const std::string& cmdline_extra = "", const std::string& extra_top = "");
    // Wait until the console log holds the boot marker `count` times.
    void wait_ready(const std::string& name, int count = 1);
    driver::DomainSummary info(const std::string& name);
    Console console(const std::string& name);
};

// qemu-img's backing chain of `image` (info -U --backing-chain): each
// layer's file name, top first; empty (with a test failure) when qemu-img fails.
std::vector<std::string> backing_chain(const std::filesystem::path& image);

}  // namespace vireo::qemu::test
