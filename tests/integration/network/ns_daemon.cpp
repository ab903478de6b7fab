#include "ns_daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "util/files.hpp"

namespace vireo::test {

namespace fs = std::filesystem;

namespace {

bool accepts(const fs::path& socket) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
    const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

}  // namespace

NsDaemon::NsDaemon(const NetNs& ns, fs::path root, bool default_network) : ns_(ns), root_(std::move(root)) {
    for (const char* d : {"conf/qemu", "conf/network", "run/qemu"}) fs::create_directories(root_ / d);
    for (const char* d : {"", "conf", "run"}) fs::permissions(root_ / d, fs::perms(0755));
    if (!default_network) (void)files::write_atomic(root_ / "conf/network/.default-network", "tests\n");
}

NsDaemon::~NsDaemon() {
    if (pid_ > 0) stop();
}

std::string NsDaemon::uri() const { return "qemu+unix:///system?socket=" + (root_ / "sock").native(); }


std::string NsDaemon::log() const {
    auto text = files::read(root_ / "vireod.log");
    return text ? *text : std::string();
}

bool NsDaemon::start(std::string* why, bool session) {
    const fs::path socket = root_ / "sock";
    std::vector<std::string> full{"ip",
                                  "netns",
                                  "exec",
                                  ns_.name(),
                                  (bin_dir() / "vireod").native(),
                                  "--system",
                                  "--socket",
                                  socket.native(),
                                  "--ro-socket",
                                  (root_ / "sock-ro").native(),
                                  "--config-dir",
                                  (root_ / "conf/qemu").native(),
                                  "--run-dir",
                                  (root_ / "run/qemu").native(),
                                  "--log-file",
                                  (root_ / "vireod.log").native(),
                                  "--socket-group",
                                  "root",
                                  "--libvirt-socket",
                                  (root_ / "libvirt-sock").native(),
                                  "--libvirt-ro-socket",
                                  (root_ / "libvirt-sock-ro").native()};
    if (session) {
        full[5] = "--session";
        full.erase(full.begin() + 8, full.begin() + 10);  // --ro-socket
        const auto group = std::find(full.begin(), full.end(), "--socket-group");
        full.erase(group, group + 2);
    }
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    const fs::path out = root_ / "vireod.out";
    pid_ = ::fork();
    if (pid_ == 0) {
        int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0) ::dup2(devnull, 0);
        ::execvp("ip", argv.data());  // ip netns exec replaces itself with vireod: pid_ is vireod's
        ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        if (accepts(socket)) return true;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (why) {
        auto text = files::read(out);
        *why = "vireod did not come up: " + (text ? *text : std::string()) + log();
    }
    if (pid_ > 0) kill();
    return false;
}

void NsDaemon::stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 3000; ++i) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill();
}

void NsDaemon::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

void NsDaemon::kill_dnsmasq(const std::filesystem::path& root) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(root / "run/dnsmasq", ec))
        if (e.path().extension() == ".pid")
            if (auto pid = files::read(e.path())) run({"kill", "-9", pid->substr(0, pid->find('\n'))});
}

CommandResult NsDaemon::vireo(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{(bin_dir() / "vireo").native(), "-c", uri()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

}  // namespace vireo::test
