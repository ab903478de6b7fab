// vireod as a real process serving the test driver: how clients find and
// start it, how it ends, and the system-mode sockets.
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "client/connect.hpp"
#include "client/paths.hpp"
#include "client/transport.hpp"
#include "daemon_process.hpp"
#include "support/support.hpp"

namespace vireo::test {
namespace {

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Environment that points every vireo location into a temp dir and makes
// auto-started daemons serve the test driver.
class SessionEnv {
public:
    explicit SessionEnv(const TempDir& dir) {
        set("VIREO_RUNTIME_DIR", (dir / "run").native());
        set("VIREO_CONFIG_DIR", (dir / "config").native());
        set("VIREO_DAEMON_PATH", (bin_dir() / "vireod").native());
        set("VIREO_DAEMON_DRIVER", "test");
    }
    ~SessionEnv() {
        for (const auto& n : names_) ::unsetenv(n.c_str());
    }
    SessionEnv(const SessionEnv&) = delete;
    SessionEnv& operator=(const SessionEnv&) = delete;

private:
    void set(const std::string& name, const std::string& value) {
        ::setenv(name.c_str(), value.c_str(), 1);
        names_.push_back(name);
    }
    std::vector<std::string> names_;
};

pid_t daemon_pid(const client::DaemonPaths& paths) { return std::atoi(slurp(paths.pid_file).c_str()); }

void terminate_session_daemon(const client::DaemonPaths& paths) {
    pid_t pid = daemon_pid(paths);
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 500 && ::kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

TEST(DaemonProcess, SessionDaemonIsStartedOnFirstUse) {
    TempDir dir;
    SessionEnv env(dir);
    auto paths = client::default_paths(client::DaemonMode::Session);
    ASSERT_FALSE(socket_accepts(paths.socket));
    auto c = client::connect("qemu:///session");
    ASSERT_TRUE(c) << c.error().full_message();
    EXPECT_EQ((*c)->uri(), "qemu:///session");
    auto list = (*c)->list_domains();
    ASSERT_TRUE(list) << list.error().message;
    EXPECT_TRUE(socket_accepts(paths.socket));
    struct stat st{};
    ASSERT_EQ(::stat(paths.socket.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // The daemon logs to the cache dir under the overridden runtime dir.
    EXPECT_TRUE(std::filesystem::exists(paths.log_file)) << paths.log_file;
    c->reset();
    terminate_session_daemon(paths);
}

TEST(DaemonProcess, RacingClientsStartOneDaemon) {
    TempDir dir;
    SessionEnv env(dir);
    auto paths = client::default_paths(client::DaemonMode::Session);
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int i = 0; i < 6; ++i)
        threads.emplace_back([&] {
            auto c = client::connect("qemu:///session");
            if (c && (*c)->list_domains()) ++ok;
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok.load(), 6);
    // Exactly one daemon: the pid file's owner, and its log says it started once.
    auto log = slurp(paths.log_file);
    std::size_t starts = 0;
    for (auto pos = log.find("vireod 0"); pos != std::string::npos; pos = log.find("vireod 0", pos + 1)) ++starts;
    EXPECT_EQ(starts, 1u) << log;
    terminate_session_daemon(paths);
}

TEST(DaemonProcess, NoAutostartWhenAskedNot) {
    TempDir dir;
    SessionEnv env(dir);
    auto c = client::connect("qemu:///session", {.read_only = false, .autostart_daemon = false});
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, ErrorCode::Connection);
    EXPECT_NE(c.error().full_message().find("failed to connect to the hypervisor"), std::string::npos);
}

TEST(DaemonProcess, SecondDaemonOnTheSameSocketRefuses) {
    TempDir dir;
    auto sock = dir / "sock";
    DaemonProcess first;
    std::string why;
    ASSERT_TRUE(first.start({"--driver=test", "--socket", sock.native(), "--log-file", (dir / "1.log").native()},
                            sock, dir / "1.out", &why))
        << why;
    auto r = run({(bin_dir() / "vireod").native(), "--driver=test", "--socket", sock.native(), "--log-file",
                  (dir / "2.log").native()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("already runs"), std::string::npos) << r.err;
    EXPECT_TRUE(socket_accepts(sock));  // the first one still serves
    EXPECT_EQ(first.stop(), 0);
    EXPECT_FALSE(std::filesystem::exists(sock));
}

TEST(DaemonProcess, SessionDaemonExitsWhenIdle) {
    TempDir dir;
    auto sock = dir / "sock";
    DaemonProcess d;
    std::string why;
    ASSERT_TRUE(d.start({"--driver=test", "--timeout", "1", "--socket", sock.native(), "--log-file",
                         (dir / "d.log").native()},
                        sock, dir / "d.out", &why))
        << why;
    {
        // A connected client keeps it alive ...
        auto c = client::connect("qemu+unix:///session?socket=" + sock.native());
        ASSERT_TRUE(c) << c.error().message;
        std::this_thread::sleep_for(std::chrono::milliseconds(2500));
        EXPECT_TRUE((*c)->list_domains());
    }
    // ... but the test driver's "test" domain runs, so it must stay.
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    ASSERT_TRUE(socket_accepts(sock));
    {
        auto c = client::connect("qemu+unix:///session?socket=" + sock.native());
        ASSERT_TRUE(c);
        ASSERT_TRUE((*c)->destroy_domain("test", {}));
    }
    // No client and no running guest: gone within a few seconds.
    EXPECT_EQ(d.wait_exit(std::chrono::seconds(30)), 0);
    EXPECT_NE(slurp(dir / "d.log").find("idle for 1 s"), std::string::npos);
}

// --- system mode ---------------------------------------------------------

constexpr uid_t kNobody = 65534;

// Run f as user nobody (optionally with an extra group) in a child process;
// its return value is the child's exit code.
template <class F>
int as_nobody(std::optional<gid_t> extra_group, F f) {
    pid_t pid = ::fork();
    if (pid == 0) {
        std::vector<gid_t> groups;
        if (extra_group) groups.push_back(*extra_group);
        if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(65534) != 0 || ::setuid(kNobody) != 0)
            ::_exit(99);
        ::_exit(f());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class SystemMode : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED: system mode needs root";
        const group* g = ::getgrnam("users");
        if (!g) GTEST_SKIP() << "SKIPPED: no 'users' group to own the socket";
        gid = g->gr_gid;
        // Let other users reach the sockets in the temp dir.
        std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));
        std::string why;
        ASSERT_TRUE(daemon.start({"--system", "--driver=test", "--socket", rw.native(), "--ro-socket", ro.native(),
                                  "--socket-group", "users", "--log-file", log.native(), "--config-dir",
                                  (dir / "etc").native(), "--run-dir", (dir / "run").native()},
                                 rw, dir / "out", &why))
            << why;
        for (int i = 0; i < 500 && !socket_accepts(ro); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }

    TempDir dir;
    std::filesystem::path rw = dir / "vireo-sock";
    std::filesystem::path ro = dir / "vireo-sock-ro";
    std::filesystem::path log = dir / "vireod.log";
    gid_t gid = 0;
    DaemonProcess daemon;
};

TEST_F(SystemMode, SocketPermissions) {
    struct stat st{};
    ASSERT_EQ(::stat(rw.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0660u);
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_EQ(st.st_gid, gid);
    ASSERT_EQ(::stat(ro.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0666u);
}

TEST_F(SystemMode, OnlyRootAndTheGroupReachTheReadWriteSocket) {
    auto try_connect = [this] {
        int err = 0;
        auto fd = client::connect_unix(rw, &err);
        return fd ? 0 : (err == EACCES ? 13 : 1);
    };
    EXPECT_EQ(as_nobody(std::nullopt, try_connect), 13);
    EXPECT_EQ(as_nobody(gid, try_connect), 0);
    // The daemon logs the peer after it accepted the connection, on its own
    // thread: the line may come a moment after connect() returned.
    auto log_text = slurp(log);
    for (int i = 0; i < 500 && log_text.find("uid 65534") == std::string::npos; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        log_text = slurp(log);
    }
    EXPECT_NE(log_text.find("uid 65534"), std::string::npos) << "peer not logged: " << log_text;
}

TEST_F(SystemMode, ReadOnlySocketServesQueriesToAnyoneAndRefusesChanges) {
    int rc = as_nobody(std::nullopt, [this] {
        auto c = client::connect("qemu+unix:///system?socket=" + ro.native());
        if (!c) return 10;
        auto list = (*c)->list_domains();
        if (!list || list->empty()) return 11;
        if (!(*c)->domain_xml("test", false)) return 12;
        auto destroyed = (*c)->destroy_domain("test", {});
        if (destroyed || destroyed.error().code != ErrorCode::PermissionDenied) return 13;
        auto defined = (*c)->define_domain("<domain type='qemu'><name>x</name></domain>", true);
        if (defined || defined.error().code != ErrorCode::PermissionDenied) return 14;
        auto console = (*c)->open_console("test", "");
        if (console || console.error().code != ErrorCode::PermissionDenied) return 15;
        return 0;
    });
    EXPECT_EQ(rc, 0);
    // Nothing changed, and the refusals were logged with the peer.
    auto c = client::connect("qemu+unix:///system?socket=" + rw.native());
    ASSERT_TRUE(c);
    EXPECT_EQ((*c)->lookup_domain("test")->state, driver::DomainState::Running);
    EXPECT_NE(slurp(log).find("read-only socket): refused POST"), std::string::npos);
}

TEST_F(SystemMode, RootUsesTheReadWriteSocket) {
    auto c = client::connect("qemu+unix:///system?socket=" + rw.native());
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_TRUE((*c)->suspend_domain("test"));
    EXPECT_EQ((*c)->lookup_domain("test")->state, driver::DomainState::Paused);
}

}  // namespace
}  // namespace vireo::test
