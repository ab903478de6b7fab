// `vireo event --loop` over a daemon connection: when the daemon dies the
// command must not keep waiting for events that can never come; it ends
// with virsh's kind of error and exit code 1.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "daemon_process.hpp"
#include "support/support.hpp"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A command running in the background with stdout and stderr in files.
class Background {
public:
    Background(std::vector<std::string> argv, const std::filesystem::path& out, const std::filesystem::path& err) {
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ == 0) {
            int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            int in = ::open("/dev/null", O_RDONLY);
            if (o < 0 || e < 0 || in < 0) ::_exit(126);
            ::dup2(o, 1);
            ::dup2(e, 2);
            ::dup2(in, 0);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
    }
    ~Background() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    Background(const Background&) = delete;
    Background& operator=(const Background&) = delete;

    // Exit code once it ended by itself, -1 if it still runs after `timeout`.
    int wait_exit(std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(20ms);
        }
        return -1;
    }

private:
    pid_t pid_ = -1;
};

bool wait_for_text(const std::filesystem::path& file, const std::string& text, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (slurp(file).find(text) != std::string::npos) return true;
        std::this_thread::sleep_for(20ms);
    }
    return false;
}

TEST(EventStream, EventLoopEndsWithAnErrorWhenTheDaemonDies) {
    TempDir dir;
    const auto sock = dir / "sock";
    DaemonProcess daemon;
    std::string why;
    ASSERT_TRUE(daemon.start({"--driver=test", "--timeout", "0", "--socket", sock.native(), "--config-dir",
                              (dir / "etc").native(), "--run-dir", (dir / "run").native()},
                             sock, dir / "vireod.log", &why))
        << why;
    const std::string uri = "qemu+unix:///session?socket=" + sock.native();
    const std::string vireo = (bin_dir() / "vireo").native();

    Background events({vireo, "-c", uri, "event", "--loop"}, dir / "out", dir / "err");
    // Show that the stream is live before the daemon goes: an event arrives.
    const auto xml = dir / "ev.xml";
    std::ofstream(xml) << "<domain type='qemu'><name>ev</name><memory unit='MiB'>64</memory>"
                          "<os><type arch='x86_64'>hvm</type></os></domain>";
    bool seen = false;
    for (int i = 0; i < 50 && !seen; ++i) {  // the subscription may not be up yet: retry
        auto def = run({vireo, "-c", uri, "define", xml.native()});
        ASSERT_EQ(def.exit_code, 0) << def.err;
        seen = wait_for_text(dir / "out", "event 'lifecycle' for domain 'ev': Defined", 200ms);
        if (!seen) {
            ASSERT_EQ(run({vireo, "-c", uri, "undefine", "ev"}).exit_code, 0);
        }
    }
    ASSERT_TRUE(seen) << "no event before the daemon died; stdout: " << slurp(dir / "out");

    daemon.kill();
    const int rc = events.wait_exit(20s);
    ASSERT_NE(rc, -1) << "vireo event --loop kept running after the daemon died";
    EXPECT_EQ(rc, 1);
    const std::string err = slurp(dir / "err");
    EXPECT_NE(err.find("error: connection to the daemon was lost\n"), std::string::npos) << err;
}

}  // namespace
}  // namespace vireo::test
