#include "qemu/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <thread>

#include "util/fd.hpp"
#include "util/files.hpp"

namespace vireo::qemu {

namespace {

// Parse /proc/<pid>/stat: the command may contain spaces and parentheses,
// so fields are counted from the last ')'.
struct StatFields {
    char state = '?';
    std::uint64_t start_time = 0;
};

std::optional<StatFields> read_stat(pid_t pid) {
    auto text = files::read(fmt::format("/proc/{}/stat", pid));
    if (!text) return std::nullopt;
    auto close = text->rfind(')');
    if (close == std::string::npos || close + 2 >= text->size()) return std::nullopt;
    StatFields out;
    out.state = (*text)[close + 2];
    // After ')': field 3 (state) is token 0, so field 22 is token 19.
    std::size_t pos = close + 2;
    for (int token = 0; token < 19; ++token) {
        pos = text->find(' ', pos);
        if (pos == std::string::npos) return std::nullopt;
        ++pos;
    }
    out.start_time = std::strtoull(text->c_str() + pos, nullptr, 10);
    return out;
}

bool write_full(int fd, const void* data, std::size_t len) {
    const char* p = static_cast<const char*>(data);
    while (len > 0) {
        ssize_t n = ::write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= static_cast<std::size_t>(n);
    }
    return true;
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

// Runs in the grandchild between fork and exec: async-signal-safe calls only.
[[noreturn]] void exec_child(char* const* argv, int devnull, int logfd, const std::vector<int>& pass, int report) {
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
    fcntl(report, F_SETFD, FD_CLOEXEC);
    execv(argv[0], argv);
    int err = errno;
    write_full(report, &err, sizeof(err));
    _exit(127);
}

}  // namespace

std::optional<std::uint64_t> process_start_time(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    auto st = read_stat(pid);
    if (!st || st->state == 'Z' || st->state == 'X') return std::nullopt;
    return st->start_time;
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

    UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!devnull) return fail_errno("open /dev/null");
    UniqueFd logfd(::open(spec.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!logfd) return fail_errno(fmt::format("open log file '{}'", spec.log_path.string()));
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return fail_errno("pipe");
    UniqueFd rd(pipefd[0]), wr(pipefd[1]);

    pid_t child = ::fork();
    if (child < 0) return fail_errno("fork");
    if (child == 0) {
        ::setsid();
        pid_t grandchild = ::fork();
        if (grandchild == 0) exec_child(argv.data(), devnull.get(), logfd.get(), spec.pass_fds, wr.get());
        int pid_or_err = grandchild < 0 ? -errno : grandchild;
        write_full(wr.get(), &pid_or_err, sizeof(pid_or_err));
        _exit(0);
    }
    wr.reset();
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    int pid_or_err = 0;
    if (read_full(rd.get(), &pid_or_err, sizeof(pid_or_err)) != sizeof(pid_or_err))
        return fail(ErrorCode::System, "failed to start '{}': the launcher process died", spec.argv[0]);
    if (pid_or_err < 0) return std::unexpected(errno_error("fork", -pid_or_err));
    int exec_err = 0;
    if (read_full(rd.get(), &exec_err, sizeof(exec_err)) == sizeof(exec_err)) {
        Error e = errno_error(fmt::format("cannot execute '{}'", spec.argv[0]), exec_err);
        return std::unexpected(e);
    }
    ProcessId id{pid_or_err, 0};
    auto start = process_start_time(id.pid);
    if (!start) {
        // It already exited (e.g. bad arguments): still report its pid so the
        // caller can read its log; start time 0 never matches a live process.
        return id;
    }
    id.start_time = *start;
    if (!spec.pid_path.empty()) {
        auto w = files::write_atomic(spec.pid_path, fmt::format("{}\n", id.pid), 0600);
        if (!w) {
            ::kill(id.pid, SIGKILL);
            return std::unexpected(w.error());
        }
    }
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
