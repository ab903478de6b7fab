#include "pool/command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "util/fd.hpp"
#include "util/path_search.hpp"

extern char** environ;

namespace vireo::pool {

Result<std::string> find_tool(const std::string& name, const std::string& package) {
    // $PATH, then the system directories (a daemon may run with a short PATH).
    std::vector<std::string> dirs = path_dirs();
    for (const char* d : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) dirs.emplace_back(d);
    if (auto found = find_executable(name, dirs)) return found->string();
    return fail(ErrorCode::NotFound, "'{}' is not installed on this host (install the '{}' package)", name, package);
}

namespace {

// Read both pipes until EOF without blocking on one while the other fills.
void drain(int out_fd, int err_fd, std::string& out, std::string& err) {
    pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    int open_count = 2;
    char buf[4096];
    while (open_count > 0) {
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                (i == 0 ? out : err).append(buf, static_cast<std::size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                fds[i].fd = -1;
                --open_count;
            }
        }
    }
}

std::string join(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) {
        if (!s.empty()) s += ' ';
        s += a;
    }
    return s;
}

}  // namespace

Result<CommandOutput> run_command(const std::vector<std::string>& argv) {
    if (argv.empty()) return fail(ErrorCode::Internal, "run_command: empty argv");
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) return fail_errno("pipe");
    UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) return fail_errno("pipe");
    UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
    posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    int rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return std::unexpected(errno_error(fmt::format("cannot run '{}'", argv[0]), rc));
    out_w.reset();
    err_w.reset();

    CommandOutput result;
    drain(out_r.get(), err_r.get(), result.out, result.err);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return fail_errno(fmt::format("waitpid for '{}'", argv[0]));
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

Result<CommandOutput> run_checked(const std::vector<std::string>& argv) {
    auto r = run_command(argv);
    if (!r) return r;
    if (r->exit_code != 0) {
        std::string why = r->err.empty() ? r->out : r->err;
        while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
        return fail(ErrorCode::OperationFailed, "'{}' failed (exit {}): {}", join(argv), r->exit_code, why);
    }
    return r;
}

}  // namespace vireo::pool
