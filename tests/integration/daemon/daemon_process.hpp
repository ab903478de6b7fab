// A vireod process for tests: started in the foreground with the given
// options, stopped with SIGTERM or killed with SIGKILL.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace vireo::test {

class DaemonProcess {
public:
    DaemonProcess() = default;
    ~DaemonProcess();
    DaemonProcess(const DaemonProcess&) = delete;
    DaemonProcess& operator=(const DaemonProcess&) = delete;

    // Start `vireod args...` (stdout/stderr to `log`) and wait until `socket`
    // accepts connections. False (with the log's tail in *why) on failure.
    bool start(const std::vector<std::string>& args, const std::filesystem::path& socket,
               const std::filesystem::path& log, std::string* why = nullptr,
               std::chrono::milliseconds wait = std::chrono::seconds(60));
    // SIGTERM and wait; exit code (or 128+signal).
    int stop();
    // SIGKILL and reap.
    void kill();
    // Wait for the process to exit by itself; -1 on timeout.
    int wait_exit(std::chrono::milliseconds timeout);
    [[nodiscard]] pid_t pid() const { return pid_; }
    [[nodiscard]] bool running() const { return pid_ > 0; }

private:
    pid_t pid_ = -1;
};

// Can a client connect to this unix socket right now?
bool socket_accepts(const std::filesystem::path& socket);

// A minimal valid domain of the test guest's shape (direct kernel boot).
std::string guest_domain_xml(const std::string& name, unsigned memory_mib = 128, const std::string& description = {});

}  // namespace vireo::test
