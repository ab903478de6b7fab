// Processes that outlive the daemon: spawning QEMU detached, and telling
// later whether a recorded pid is still the same process.
//
// A pid alone is not an identity: after QEMU exits its pid may be reused by
// an unrelated process. A process is identified by (pid, start time), the
// start time being field 22 of /proc/<pid>/stat (clock ticks since boot),
// which the kernel never changes for the life of the process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/error.hpp"

namespace vireo::qemu {

struct ProcessId {
    pid_t pid = -1;
    std::uint64_t start_time = 0;  // /proc/<pid>/stat field 22
};

// Start time of a live process; nullopt when the pid does not exist or is a
// zombie (an exited process nobody reaped yet counts as gone).
std::optional<std::uint64_t> process_start_time(pid_t pid);

// CPU time used so far by every thread of the process `id` (user + system,
// /proc/<pid>/stat fields 14 and 15), in nanoseconds with the kernel's clock
// tick resolution; nullopt when `id` is gone. This is what libvirt reports
// as a QEMU domain's CPU time.
std::optional<std::uint64_t> process_cpu_time_ns(const ProcessId& id);

// True while the very process `id` names is alive.
bool process_alive(const ProcessId& id);

struct SpawnSpec {
    std::vector<std::string> argv;  // argv[0] is the program path
    // stdout and stderr of the process are appended to this file.
    std::filesystem::path log_path;
    // Descriptors the process inherits under the same numbers (all others
    // are closed at exec).
    std::vector<int> pass_fds;
    // Written with the pid once the process runs (crash-safe write).
    std::filesystem::path pid_path;
    // Environment variables set (or replaced) for the process; the rest of
    // its environment is the caller's.
    std::vector<std::pair<std::string, std::string>> set_env;
};

// Start a process fully detached from the caller (double fork + setsid):
// its own session, no controlling terminal, parent pid 1, stdin /dev/null,
// signal mask and dispositions reset. It keeps running when the caller
// exits. Errors: NotFound when the program cannot be executed, System for
// fork/pipe failures.
Result<ProcessId> spawn_detached(const SpawnSpec& spec);

// Wait until `id` is gone; false when it is still alive after `timeout`.
bool wait_process_exit(const ProcessId& id, std::chrono::milliseconds timeout);

// Send `sig` to `id` if it is still that process (no-op when gone).
Status signal_process(const ProcessId& id, int sig);

// SIGTERM, wait up to `grace`, then (unless graceful) SIGKILL and wait.
// Error Timeout when the process survives (graceful, or unkillable).
Status terminate_process(const ProcessId& id, std::chrono::milliseconds grace, bool graceful);

// Render argv as a shell-safe command line (for logs).
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace vireo::qemu
