#include "daemon/daemon.hpp"
#include "daemon/heap.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pthread.h>

#include <csignal>
#include <cstring>
#include <cstdlib>
#include <thread>
#include <vector>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "daemon/driver_factory.hpp"
#include "daemon/server.hpp"
#include "util/fd.hpp"
#include "util/files.hpp"
#include "util/number.hpp"

namespace vireo::daemon {

namespace fs = std::filesystem;

namespace {

// The daemon's view of where things are: defaults with options on top.
struct Layout {
    client::DaemonPaths paths;
    DriverDirs driver;
};

Layout make_layout(const DaemonOptions& o) {
    Layout l;
    l.paths = client::default_paths(o.mode);
    if (!o.socket.empty()) l.paths.socket = o.socket;
    if (!o.ro_socket.empty()) l.paths.ro_socket = o.ro_socket;
    if (!o.log_file.empty()) l.paths.log_file = o.log_file;
    // With an explicit socket, keep the pid lock beside it so that several
    // test daemons can run at once.
    if (!o.socket.empty()) l.paths.pid_file = l.paths.socket.native() + ".pid";
    l.driver.confdir = o.config_dir.empty() ? l.paths.config_dir / "qemu" : o.config_dir;
    l.driver.rundir = o.run_dir.empty() ? l.paths.runtime_dir / "qemu" : o.run_dir;
    l.driver.cachedir = l.paths.cache_dir;
    l.driver.logdir = l.paths.cache_dir / "qemu" / "log";
    l.driver.isolated = client::paths_overridden() || !o.config_dir.empty() || !o.run_dir.empty();
    if (l.driver.isolated && !o.run_dir.empty() && !client::paths_overridden()) {
        l.driver.cachedir = o.run_dir / "cache";
        l.driver.logdir = o.run_dir / "log";
    }
    return l;
}

// Daemonize with a readiness pipe: the original process waits for the
// daemon's "ok" (or its error message) and exits with the outcome, so the
// caller knows the socket listens when we return.
class Readiness {
public:
    // In the daemon: report success or failure to the waiting parent.
    void ok() { send("ok"); }
    void failed(std::string_view message) { send(message); }
    [[nodiscard]] bool active() const { return static_cast<bool>(fd_); }
    void adopt(int fd) { fd_.reset(fd); }

private:
    void send(std::string_view text) {
        if (!fd_) return;
        [[maybe_unused]] auto n = ::write(fd_.get(), text.data(), text.size());
        fd_.reset();
    }
    UniqueFd fd_;
};

// Returns only in the daemon process (or on fork failure, with an error).
Status daemonize(Readiness& ready) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("pipe");
    pid_t pid = ::fork();
    if (pid < 0) return fail_errno("fork");
    if (pid > 0) {
        ::close(p[1]);
        std::string answer;
        char buf[512];
        ssize_t n;
        while ((n = ::read(p[0], buf, sizeof buf)) != 0) {
            if (n < 0) {
                if (errno == EINTR) continue;
                break;
            }
            answer.append(buf, static_cast<std::size_t>(n));
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (answer == "ok") ::_exit(0);
        if (answer.empty()) answer = "vireod exited during start-up";
        answer += '\n';
        [[maybe_unused]] auto w = ::write(2, answer.data(), answer.size());
        ::_exit(1);
    }
    ::close(p[0]);
    ::setsid();
    pid_t second = ::fork();
    if (second < 0) ::_exit(1);
    if (second > 0) ::_exit(0);
    // The daemon: no controlling terminal, stdio on /dev/null.
    if (::chdir("/") != 0) {
    }
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        ::dup2(devnull, 0);
        ::dup2(devnull, 1);
        ::dup2(devnull, 2);
        if (devnull > 2) ::close(devnull);
    }
    ready.adopt(p[1]);
    return {};
}

void setup_logging(const DaemonOptions& o, const fs::path& log_file, bool foreground) {
    std::vector<spdlog::sink_ptr> sinks;
    std::error_code ec;
    fs::create_directories(log_file.parent_path(), ec);
    try {
        sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file.native()));
    } catch (const spdlog::spdlog_ex&) {
        // Ignored: no log file (read-only home, ...): stderr only; said below.
    }
    if (foreground) sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
    auto logger = std::make_shared<spdlog::logger>("vireod", sinks.begin(), sinks.end());
    logger->set_level(o.verbose ? spdlog::level::debug : spdlog::level::info);
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %P %^%l%$: %v");
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
    if (sinks.empty() || (foreground && sinks.size() == 1))
        spdlog::warn("cannot open log file {}; logging to stderr only", log_file.native());
}

// Hold an exclusive lock on the pid file for the daemon's lifetime.
Result<UniqueFd> lock_pid_file(const fs::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd) return fail_errno(fmt::format("cannot open pid file {}", path.native()));
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        char buf[32] = {};
        const auto n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
        std::string_view text(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
        while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
        const std::string pid = util::parse_number<long>(text) ? std::string(text) : std::string("unknown");
        return fail(ErrorCode::Busy, "another vireod (pid {}) already runs with {}", pid, path.native());
    }
    auto text = fmt::format("{}\n", ::getpid());
    if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), text.data(), text.size(), 0) < 0)
        return fail_errno(fmt::format("cannot write pid file {}", path.native()));
    return fd;
}

// The gid of the socket group, creating the group (system mode, root) when missing.
Result<gid_t> socket_group(const std::string& name) {
    if (const group* g = ::getgrnam(name.c_str())) return g->gr_gid;
    if (::geteuid() != 0)
        return fail(ErrorCode::NotFound, "group '{}' does not exist and only root can create it", name);
    spdlog::info("creating system group '{}'", name);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::execlp("groupadd", "groupadd", "--system", name.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(ErrorCode::OperationFailed, "cannot create group '{}' with groupadd", name);
    if (const group* g = ::getgrnam(name.c_str())) return g->gr_gid;
    return fail(ErrorCode::NotFound, "group '{}' still missing after groupadd", name);
}

// Does a live server (a libvirtd) answer on this unix socket?
bool socket_is_live(const fs::path& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.native().size() >= sizeof addr.sun_path) return false;
    std::memcpy(addr.sun_path, path.c_str(), path.native().size());
    return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
}

// The sockets where vireod speaks libvirt's remote protocol: the configured
// ones, else libvirt's paths for the mode unless the daemon runs on
// overridden directories (tests, several daemons at once).
struct LibvirtSocket {
    fs::path path;
    bool read_only = false;
    bool configured = false;  // given by the user: failing to listen is fatal
};

std::vector<LibvirtSocket> libvirt_sockets(const DaemonOptions& o, const Layout& l) {
    std::vector<LibvirtSocket> out;
    if (o.no_libvirt_sockets) return out;
    if (!o.libvirt_socket.empty()) out.push_back({o.libvirt_socket, false, true});
    if (!o.libvirt_ro_socket.empty()) out.push_back({o.libvirt_ro_socket, true, true});
    if (!out.empty() || l.driver.isolated) return out;
    if (o.mode == client::DaemonMode::System) {
        out.push_back({"/run/libvirt/libvirt-sock", false, false});
        out.push_back({"/run/libvirt/libvirt-sock-ro", true, false});
    } else if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) {
        out.push_back({fs::path(xdg) / "libvirt" / "libvirt-sock", false, false});
    } else {
        spdlog::info("XDG_RUNTIME_DIR is not set: no libvirt session socket");
    }
    return out;
}

// Listen on libvirt's sockets; a socket a live libvirtd answers on is left
// to it (logged). Only configured sockets are fatal when they fail. Adds
// the sockets listened on to `bound` (removed at exit).
Status listen_libvirt(Server& server, const DaemonOptions& o, const Layout& l, std::optional<gid_t> gid,
                      std::vector<fs::path>& bound) {
    const bool system = o.mode == client::DaemonMode::System;
    for (const auto& s : libvirt_sockets(o, l)) {
        if (socket_is_live(s.path)) {
            spdlog::warn("{}: another server (libvirtd?) listens there; libvirt clients reach it, not vireod",
                         s.path.native());
            continue;
        }
        if (auto d = files::make_dirs(s.path.parent_path(), system ? 0755 : 0700); !d) {
            if (s.configured) return d;
            spdlog::warn("no libvirt socket {}: {}", s.path.native(), d.error().message);
            continue;
        }
        const unsigned mode = s.read_only ? 0666u : (system ? 0660u : 0600u);
        auto r = server.listen({.path = s.path, .protocol = Protocol::Libvirt, .read_only = s.read_only,
                                .mode = mode, .group = s.read_only ? std::nullopt : gid});
        if (!r) {
            if (s.configured) return r;
            spdlog::warn("no libvirt socket {}: {}", s.path.native(), r.error().message);
            continue;
        }
        bound.push_back(s.path);
    }
    return {};
}

bool has_running_guest(driver::Driver& d) {
    auto list = d.list_domains();
    if (!list) return true;  // when in doubt, stay
    for (const auto& s : *list)
        if (s.state != driver::DomainState::Shutoff) return true;
    return false;
}

Status serve(const DaemonOptions& o, const Layout& l, Readiness& ready) {
    const bool system = o.mode == client::DaemonMode::System;
    VIREO_TRY(files::make_dirs(l.paths.runtime_dir, system ? 0755 : 0700));
    VIREO_TRY(files::make_dirs(l.paths.socket.parent_path(), system ? 0755 : 0700));
    auto pid_lock = lock_pid_file(l.paths.pid_file);
    if (!pid_lock) return std::unexpected(pid_lock.error());

    std::optional<gid_t> gid;
    if (system) {
        auto g = socket_group(o.socket_group);
        if (g) gid = *g;
        else spdlog::warn("{}; the socket stays root-only", g.error().message);
    }

    auto drv = make_driver(o.driver, o.mode, l.driver);
    if (!drv) return std::unexpected(drv.error());
    release_free_heap();  // what loading the definitions parsed and dropped
    spdlog::info("vireod {} ({} mode, {} driver) pid {}", VIREO_VERSION, system ? "system" : "session", o.driver,
                 ::getpid());

    Server server(**drv, o.job_threads);
    VIREO_TRY(server.listen({.path = l.paths.socket, .read_only = false, .mode = system ? 0660u : 0600u,
                             .group = gid}));
    if (system && !l.paths.ro_socket.empty())
        VIREO_TRY(server.listen({.path = l.paths.ro_socket, .read_only = true, .mode = 0666, .group = {}}));
    std::vector<fs::path> libvirt_bound;
    VIREO_TRY(listen_libvirt(server, o, l, gid, libvirt_bound));

    unsigned timeout = o.timeout_s.value_or(system ? 0 : 120);
    if (timeout > 0) {
        auto idle_since = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
        server.every(std::chrono::milliseconds(1000), [&server, &d = **drv, idle_since, timeout] {
            auto now = std::chrono::steady_clock::now();
            if (server.connection_count() > 0 || has_running_guest(d)) {
                *idle_since = now;
                return;
            }
            if (now - *idle_since >= std::chrono::seconds(timeout)) {
                spdlog::info("idle for {} s with no client and no running guest: exiting", timeout);
                server.stop();
            }
        });
    }

    // SIGTERM/SIGINT end the loop; guests keep running (reattached next start).
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    std::thread signal_thread([&server, set] {
        int sig = 0;
        sigwait(&set, &sig);
        if (sig != 0) {
            spdlog::info("signal {} received: shutting down", sig);
            server.stop();
        }
    });
    ready.ok();
    server.run();
    // Wake the signal thread if the loop ended for another reason.
    ::kill(::getpid(), SIGTERM);
    signal_thread.join();

    std::error_code ec;
    fs::remove(l.paths.socket, ec);
    if (!l.paths.ro_socket.empty() && system) fs::remove(l.paths.ro_socket, ec);
    for (const auto& p : libvirt_bound) fs::remove(p, ec);
    spdlog::info("vireod stopped");
    return {};
}

}  // namespace

int run_daemon(const DaemonOptions& options) {
    Layout layout = make_layout(options);
    Readiness ready;
    if (options.daemonize) {
        if (auto d = daemonize(ready); !d) {
            fmt::print(stderr, "vireod: {}\n", d.error().full_message());
            return 1;
        }
    }
    // Before any thread starts: signals for sigwait, no SIGPIPE on dead
    // peers, the heap's arenas.
    limit_heap_arenas();
    std::signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    setup_logging(options, layout.paths.log_file, !options.daemonize);
    auto served = serve(options, layout, ready);
    if (!served) {
        spdlog::error("{}", served.error().full_message());
        ready.failed(fmt::format("vireod: {}", served.error().full_message()));
        return 1;
    }
    return 0;
}

}  // namespace vireo::daemon
