#include "client/session_daemon.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "client/paths.hpp"
#include "client/transport.hpp"
#include "util/files.hpp"

namespace vireo::client {

namespace {

bool is_executable(const std::filesystem::path& p) {
    return !p.empty() && ::access(p.c_str(), X_OK) == 0 && std::filesystem::is_regular_file(p);
}

bool daemon_listens(const std::filesystem::path& socket) { return connect_unix(socket).has_value(); }

struct SpawnResult {
    int exit_code = -1;
    std::string err;
};

// Run `program --session --daemonize`, collecting its stderr until it exits
// (the daemonizing parent exits once the daemon listens or failed to start).
Result<SpawnResult> spawn_and_wait(const std::filesystem::path& program) {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return fail_errno("pipe");
    std::string prog = program.native();
    std::vector<char*> argv{prog.data(), const_cast<char*>("--session"), const_cast<char*>("--daemonize"), nullptr};
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(pipefd[0]);
        ::close(pipefd[1]);
        return fail_errno("fork");
    }
    if (pid == 0) {
        // Child: only async-signal-safe calls until exec.
        int devnull = ::open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            ::dup2(devnull, 0);
            ::dup2(devnull, 1);
        }
        ::dup2(pipefd[1], 2);
        ::execv(prog.c_str(), argv.data());
        static const char msg[] = "cannot execute vireod\n";
        [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
        ::_exit(127);
    }
    ::close(pipefd[1]);
    SpawnResult out;
    char buf[1024];
    for (;;) {
        ssize_t n = ::read(pipefd[0], buf, sizeof buf);
        if (n > 0) {
            out.err.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    ::close(pipefd[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    while (!out.err.empty() && (out.err.back() == '\n' || out.err.back() == ' ')) out.err.pop_back();
    return out;
}

}  // namespace

Result<std::filesystem::path> find_daemon_program() {
    if (const char* env = std::getenv("VIREO_DAEMON_PATH"); env && *env) {
        if (is_executable(env)) return std::filesystem::path(env);
        return fail(ErrorCode::NotFound, "VIREO_DAEMON_PATH names '{}', which is not an executable program", env);
    }
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        auto beside = self.parent_path() / "vireod";
        if (is_executable(beside)) return beside;
    }
    if (const char* path = std::getenv("PATH")) {
        std::string_view rest(path);
        while (!rest.empty()) {
            auto colon = rest.find(':');
            auto dir = rest.substr(0, colon);
            rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
            if (dir.empty()) continue;
            auto candidate = std::filesystem::path(dir) / "vireod";
            if (is_executable(candidate)) return candidate;
        }
    }
    return fail(ErrorCode::NotFound,
                "cannot find the vireod program next to '{}' nor on PATH; install vireo or set VIREO_DAEMON_PATH",
                self.native());
}

Status ensure_session_daemon() {
    auto paths = default_paths(DaemonMode::Session);
    if (daemon_listens(paths.socket)) return {};
    VIREO_TRY(files::make_dirs(paths.runtime_dir, 0700));

    UniqueFd lock(::open(paths.spawn_lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock) return fail_errno(fmt::format("cannot open {}", paths.spawn_lock.native()));
    while (::flock(lock.get(), LOCK_EX) != 0) {
        if (errno != EINTR) return fail_errno(fmt::format("cannot lock {}", paths.spawn_lock.native()));
    }
    // Another client may have started it while we waited for the lock.
    if (daemon_listens(paths.socket)) return {};

    auto program = find_daemon_program();
    if (!program) return std::unexpected(program.error());
    auto spawned = spawn_and_wait(*program);
    if (!spawned) return std::unexpected(spawned.error().context("cannot start the session daemon"));
    if (spawned->exit_code != 0)
        return fail(ErrorCode::Connection, "the session daemon {} failed to start (exit {}): {}", program->native(),
                    spawned->exit_code, spawned->err.empty() ? "no message" : spawned->err);
    // The daemonizing parent exits once the socket listens; allow for a
    // slow machine all the same.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int err = 0;
    while (!connect_unix(paths.socket, &err)) {
        if (std::chrono::steady_clock::now() > deadline)
            return fail(ErrorCode::Connection, "the session daemon started but does not answer on {}",
                        paths.socket.native());
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return {};
}

}  // namespace vireo::client
