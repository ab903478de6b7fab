#include "qemu/process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string_view>
#include <utility>
#include <thread>

#include "security/dac.hpp"
#include "security/mount_ns.hpp"
#include "util/fd.hpp"
#include "util/files.hpp"

namespace vireo::qemu {

namespace {

// Parse /proc/<pid>/stat: the command may contain spaces and parentheses,
// so fields are counted from the last ')'.
struct StatFields {
    char state = '?';
    std::uint64_t utime = 0;       // field 14, clock ticks in user mode (all threads)
    std::uint64_t stime = 0;       // field 15, clock ticks in kernel mode
    std::uint64_t start_time = 0;  // field 22
};

std::optional<StatFields> read_stat(pid_t pid) {
    auto text = files::read(fmt::format("/proc/{}/stat", pid));
    if (!text) return std::nullopt;
    auto close = text->rfind(')');
    if (close == std::string::npos || close + 2 >= text->size()) return std::nullopt;
    StatFields out;
    out.state = (*text)[close + 2];
    // After ')': field 3 (state) is token 0, so field N is token N-3.
    std::size_t pos = close + 2;
    for (int token = 0; token < 19; ++token) {
        pos = text->find(' ', pos);
        if (pos == std::string::npos) return std::nullopt;
        ++pos;
        if (token == 10) out.utime = std::strtoull(text->c_str() + pos, nullptr, 10);
        if (token == 11) out.stime = std::strtoull(text->c_str() + pos, nullptr, 10);
    }
    out.start_time = std::strtoull(text->c_str() + pos, nullptr, 10);
    return out;
}


// Read exactly len bytes; returns bytes read (less at EOF).
std::size_t read_full(int fd, void* data, std::size_t len) {
    char* p = static_cast<char*>(data);
    std::size_t got = 0;
    while (got < len) {
        ssize_t n = ::read(fd, p + got, len - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    return got;
}

// What the grandchild reports on the exec-error pipe when it fails: the
// errno, the stage, and for a namespace failure the step's text (a string
// of the caller's MountSetup: the same address in the parent).
struct ChildFailure {
    enum Stage : int { Exec = 0, Namespace = 1, Credentials = 2 };
    int err = 0;
    int stage = Exec;
    const char* step = nullptr;
};

// The isolation of the child (its mount namespace, its credentials), in
// this order (making the namespace needs root). Async-signal-safe.
bool isolate_child(const SpawnSpec& spec, ChildFailure& failure) {
    if (spec.mounts) {
        const char* step = "";
        if (int err = spec.mounts->enter(&step); err != 0) {
            failure = {err, ChildFailure::Namespace, step};
            return false;
        }
    }
    if (spec.run_as) {
        const security::Identity& id = *spec.run_as;
        if (::setgroups(id.groups.size(), id.groups.data()) != 0 || ::setgid(id.gid) != 0 || ::setuid(id.uid) != 0 ||
            ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::chdir("/") != 0) {
            failure = {errno, ChildFailure::Credentials, nullptr};
            return false;
        }
    }
    return true;
}

// Runs in the grandchild between fork and exec: async-signal-safe calls only.
[[noreturn]] void exec_child(const SpawnSpec& spec, char* const* argv, char* const* envp, int devnull, int logfd,
                             const std::vector<int>& pass, const std::vector<InheritedFd>& remap, int report) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s = 1; s < NSIG; ++s) signal(s, SIG_DFL);
    dup2(devnull, STDIN_FILENO);
    dup2(logfd, STDOUT_FILENO);
    dup2(logfd, STDERR_FILENO);
    // Everything else the daemon had open must not leak into QEMU.
    close_range(3, UINT_MAX, CLOSE_RANGE_CLOEXEC);
    for (int fd : pass) fcntl(fd, F_SETFD, 0);
    // Remapped descriptors: first out of the way (above every number in
    // play, close-on-exec), then onto their numbers (dup2 clears the flag),
    // so that a source that is another one's target is not clobbered; the
    // exec-error pipe moves away too, its number may be a target.
    int above = 3;
    for (const auto& r : remap) above = std::max({above, r.fd + 1, r.number + 1});
    for (int fd : pass) above = std::max(above, fd + 1);
    above = std::max(above, report + 1);
    if (!remap.empty()) {
        int moved_report = fcntl(report, F_DUPFD_CLOEXEC, above);
        if (moved_report >= 0) report = moved_report;
    }
    int moved[64];
    std::size_t n = std::min<std::size_t>(remap.size(), 64);
    for (std::size_t i = 0; i < n; ++i) moved[i] = fcntl(remap[i].fd, F_DUPFD_CLOEXEC, above);
    for (std::size_t i = 0; i < n; ++i)
        if (moved[i] >= 0) dup2(moved[i], remap[i].number);
    fcntl(report, F_SETFD, FD_CLOEXEC);
    ChildFailure failure;
    if (isolate_child(spec, failure)) {
        execve(argv[0], argv, envp);
        failure = {errno, ChildFailure::Exec, nullptr};
    }
    write_fully(report, &failure, sizeof(failure));
    _exit(127);
}

// Write "<pid>\n" to `path` durably (temp file, fsync, rename). Only
// async-signal-safe calls: it runs in a forked child of the multi-threaded
// daemon. Returns 0 or an errno value.
int write_pid_file_in_child(pid_t pid, const char* path, const char* tmp_path, const char* dir) {
    char text[24];
    char* end = text + sizeof(text);
    char* p = end;
    *--p = '\n';
    do {
        *--p = static_cast<char>('0' + pid % 10);
        pid /= 10;
    } while (pid > 0);
    int fd = ::open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return errno;
    bool ok = write_fully(fd, p, static_cast<std::size_t>(end - p)) && ::fsync(fd) == 0;
    int err = ok ? 0 : errno;
    ::close(fd);
    if (ok && ::rename(tmp_path, path) != 0) err = errno;
    if (err != 0) {
        ::unlink(tmp_path);
        return err;
    }
    if (int dfd = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return 0;
}

// Close every descriptor but those in `keep` (sorted, no duplicates). In
// the launcher child, so that it does not hold the daemon's descriptors
// (its listening sockets above all: a daemon killed while a launcher runs
// would leave a socket that accepts and never answers). Async-signal-safe.
void close_all_except(const std::vector<int>& keep) {
    unsigned from = 0;
    for (int fd : keep) {
        if (static_cast<unsigned>(fd) > from) ::close_range(from, static_cast<unsigned>(fd) - 1, 0);
        from = static_cast<unsigned>(fd) + 1;
    }
    ::close_range(from, UINT_MAX, 0);
}

// The caller's environment with `set` applied, as "KEY=VALUE" strings.
std::vector<std::string> environment_with(const std::vector<std::pair<std::string, std::string>>& set) {
    std::vector<std::string> out;
    for (char** e = environ; e && *e; ++e) {
        std::string_view entry(*e);
        std::string_view key = entry.substr(0, entry.find('='));
        bool replaced = false;
        for (const auto& [k, v] : set) replaced = replaced || key == k;
        if (!replaced) out.emplace_back(entry);
    }
    for (const auto& [k, v] : set) out.push_back(k + "=" + v);
    return out;
}

}  // namespace

std::optional<std::uint64_t> process_start_time(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    auto st = read_stat(pid);
    if (!st || st->state == 'Z' || st->state == 'X') return std::nullopt;
    return st->start_time;
}

std::optional<std::uint64_t> process_cpu_time_ns(const ProcessId& id) {
    if (id.pid <= 0) return std::nullopt;
    auto st = read_stat(id.pid);
    if (!st || st->state == 'Z' || st->state == 'X' || st->start_time != id.start_time) return std::nullopt;
    static const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
    if (ticks_per_second <= 0) return std::nullopt;
    return (st->utime + st->stime) * (1'000'000'000ULL / static_cast<std::uint64_t>(ticks_per_second));
}

bool process_alive(const ProcessId& id) {
    auto st = process_start_time(id.pid);
    return st && *st == id.start_time;
}

Result<ProcessId> spawn_detached(const SpawnSpec& spec) {
    if (spec.argv.empty()) return fail(ErrorCode::InvalidArg, "no program to run");
    // Everything the children need is prepared before fork: after it only
    // async-signal-safe calls are allowed (the daemon is multi-threaded).
    std::vector<char*> argv;
    for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const std::vector<std::string> env = environment_with(spec.set_env);
    std::vector<char*> envp;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!devnull) return fail_errno("open /dev/null");
    UniqueFd logfd(::open(spec.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!logfd) return fail_errno(fmt::format("open log file '{}'", spec.log_path.string()));
    // The pid file is written by the launcher child, not by us after it
    // reports: if the daemon is killed in between, the file still names the
    // QEMU, so the next daemon can find and reap the unfinished start.
    const std::string pid_path = spec.pid_path.string();
    const std::string pid_tmp = pid_path + ".tmp";
    const std::string pid_dir = spec.pid_path.has_parent_path() ? spec.pid_path.parent_path().string() : ".";
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return fail_errno("pipe");
    UniqueFd rd(pipefd[0]), wr(pipefd[1]);
    // The grandchild's own pipe for what failed before or at exec, so that
    // a failure reported early never mixes with the launcher's pid.
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return fail_errno("pipe");
    UniqueFd exec_rd(pipefd[0]), exec_wr(pipefd[1]);

    std::vector<int> keep = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, devnull.get(), logfd.get(), wr.get(),
                             exec_wr.get()};
    keep.insert(keep.end(), spec.pass_fds.begin(), spec.pass_fds.end());
    for (const auto& r : spec.fds) keep.push_back(r.fd);
    std::sort(keep.begin(), keep.end());
    keep.erase(std::unique(keep.begin(), keep.end()), keep.end());

    pid_t child = ::fork();
    if (child < 0) return fail_errno("fork");
    if (child == 0) {
        close_all_except(keep);
        ::setsid();
        pid_t grandchild = ::fork();
        if (grandchild == 0)
            exec_child(spec, argv.data(), envp.data(), devnull.get(), logfd.get(), spec.pass_fds, spec.fds,
                       exec_wr.get());
        ::close(exec_wr.get());
        int pid_or_err = grandchild < 0 ? -errno : grandchild;
        if (grandchild > 0 && !pid_path.empty()) {
            if (int err = write_pid_file_in_child(grandchild, pid_path.c_str(), pid_tmp.c_str(), pid_dir.c_str())) {
                ::kill(grandchild, SIGKILL);
                pid_or_err = -err;
            }
        }
        write_fully(wr.get(), &pid_or_err, sizeof(pid_or_err));
        _exit(0);
    }
    wr.reset();
    exec_wr.reset();
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    int pid_or_err = 0;
    if (read_full(rd.get(), &pid_or_err, sizeof(pid_or_err)) != sizeof(pid_or_err))
        return fail(ErrorCode::System, "failed to start '{}': the launcher process died", spec.argv[0]);
    if (pid_or_err < 0)
        return std::unexpected(errno_error(fmt::format("failed to start '{}': fork or write pid file '{}'", spec.argv[0], pid_path), -pid_or_err));
    ChildFailure failure;
    if (read_full(exec_rd.get(), &failure, sizeof(failure)) == sizeof(failure)) {
        switch (failure.stage) {
        case ChildFailure::Namespace:
            return std::unexpected(errno_error(
                fmt::format("cannot make the mount namespace of '{}': {}", spec.argv[0], failure.step ? failure.step : "?"),
                failure.err));
        case ChildFailure::Credentials:
            return std::unexpected(errno_error(
                fmt::format("cannot run '{}' as {}", spec.argv[0], spec.run_as ? security::label_text(*spec.run_as) : "?"),
                failure.err));
        default:
            return std::unexpected(errno_error(fmt::format("cannot execute '{}'", spec.argv[0]), failure.err));
        }
    }
    ProcessId id{pid_or_err, 0};
    auto start = process_start_time(id.pid);
    if (!start) {
        // It already exited (e.g. bad arguments): still report its pid so the
        // caller can read its log; start time 0 never matches a live process.
        return id;
    }
    id.start_time = *start;
    return id;
}

bool wait_process_exit(const ProcessId& id, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto step = std::chrono::milliseconds(2);
    while (process_alive(id)) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(step);
        step = std::min(step * 2, std::chrono::milliseconds(50));
    }
    return true;
}

Status signal_process(const ProcessId& id, int sig) {
    if (!process_alive(id)) return {};
    if (::kill(id.pid, sig) != 0 && errno != ESRCH)
        return fail_errno(fmt::format("send signal {} to process {}", sig, id.pid));
    return {};
}

Status terminate_process(const ProcessId& id, std::chrono::milliseconds grace, bool graceful) {
    VIREO_TRY(signal_process(id, SIGTERM));
    if (wait_process_exit(id, grace)) return {};
    if (graceful)
        return fail(ErrorCode::Timeout, "process {} did not exit within {} ms of SIGTERM", id.pid, grace.count());
    VIREO_TRY(signal_process(id, SIGKILL));
    if (wait_process_exit(id, std::chrono::seconds(10))) return {};
    return fail(ErrorCode::Timeout, "process {} survived SIGKILL", id.pid);
}

namespace {

class HostProcesses final : public ProcessControl {
public:
    Result<ProcessId> spawn(const SpawnSpec& spec) override { return spawn_detached(spec); }
    bool alive(const ProcessId& id) override { return process_alive(id); }
    bool wait_exit(const ProcessId& id, std::chrono::milliseconds timeout) override {
        return wait_process_exit(id, timeout);
    }
    Status signal(const ProcessId& id, int sig) override { return signal_process(id, sig); }
    Status terminate(const ProcessId& id, std::chrono::milliseconds grace, bool graceful) override {
        return terminate_process(id, grace, graceful);
    }
};

}  // namespace

std::shared_ptr<ProcessControl> host_processes() {
    static const auto host = std::make_shared<HostProcesses>();
    return host;
}

std::string shell_join(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& a : argv) {
        if (!out.empty()) out += ' ';
        bool plain = !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                        "0123456789-_=.,/:@+%") == std::string::npos;
        if (plain) {
            out += a;
            continue;
        }
        out += '\'';
        for (char c : a) {
            if (c == '\'') out += "'\\''";
            else out += c;
        }
        out += '\'';
    }
    return out;
}

}  // namespace vireo::qemu
