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
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/error.hpp"

namespace vireo::security {
struct Identity;
class MountSetup;
}  // namespace vireo::security

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

// A descriptor handed to the process under a number of our choosing, so
// that its command line can name it before the descriptor exists
// ("fd=3" for the monitor, the taps after it).
struct InheritedFd {
    int fd = -1;       // ours
    int number = -1;   // the process's (>= 3)
    std::string name;  // what it is ("monitor", "tap0", ...), for fakes and logs
};

struct SpawnSpec {
    std::vector<std::string> argv;  // argv[0] is the program path
    // stdout and stderr of the process are appended to this file.
    std::filesystem::path log_path;
    // Descriptors the process inherits under the same numbers (all others
    // are closed at exec).
    std::vector<int> pass_fds;
    // Descriptors the process inherits under other numbers (dup2 in the
    // child; numbers must not collide with pass_fds).
    std::vector<InheritedFd> fds;
    // Written with the pid once the process runs (crash-safe write).
    std::filesystem::path pid_path;
    // Environment variables set (or replaced) for the process; the rest of
    // its environment is the caller's.
    std::vector<std::pair<std::string, std::string>> set_env;
    // The process's own mount namespace (private /dev and /tmp), made in
    // the child before exec; null: the caller's.
    const security::MountSetup* mounts = nullptr;
    // Credentials the process runs as (setgroups, setgid, setuid before
    // exec, then no_new_privs: no capability is left and none can be
    // regained through a setuid program); null: the caller's.
    const security::Identity* run_as = nullptr;
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

// How the QEMU driver acts on processes. The host's implementation
// (host_processes()) is the functions above; unit tests give a fake whose
// "QEMU" is a scripted QMP peer (tests/unit/qemu/fake_qemu.hpp), so the
// driver's state handling runs without QEMU.
class ProcessControl {
public:
    virtual ~ProcessControl() = default;
    virtual Result<ProcessId> spawn(const SpawnSpec& spec) = 0;
    virtual bool alive(const ProcessId& id) = 0;
    virtual bool wait_exit(const ProcessId& id, std::chrono::milliseconds timeout) = 0;
    virtual Status signal(const ProcessId& id, int sig) = 0;
    virtual Status terminate(const ProcessId& id, std::chrono::milliseconds grace, bool graceful) = 0;
};
std::shared_ptr<ProcessControl> host_processes();

// Render argv as a shell-safe command line (for logs).
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace vireo::qemu
