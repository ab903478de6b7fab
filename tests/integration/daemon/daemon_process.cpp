#include "daemon_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "client/transport.hpp"
#include "support/support.hpp"

namespace vireo::test {

DaemonProcess::~DaemonProcess() {
    if (pid_ > 0) stop();
}

bool DaemonProcess::start(const std::vector<std::string>& args, const std::filesystem::path& socket,
                          const std::filesystem::path& log, std::string* why, std::chrono::milliseconds wait) {
    std::string program = (bin_dir() / "vireod").native();
    std::vector<std::string> full{program};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0) ::dup2(devnull, 0);
        ::execv(program.c_str(), argv.data());
        ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < deadline) {
        if (socket_accepts(socket)) return true;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (why) {
        std::ifstream in(log);
        std::stringstream ss;
        ss << in.rdbuf();
        std::string text = ss.str();
        *why = "vireod did not come up; log tail: " + text.substr(text.size() > 2000 ? text.size() - 2000 : 0);
    }
    if (pid_ > 0) kill();
    return false;
}

int DaemonProcess::stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int rc = wait_exit(std::chrono::seconds(30));
    if (rc < 0) {
        kill();
        return 128 + SIGKILL;
    }
    return rc;
}

void DaemonProcess::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

int DaemonProcess::wait_exit(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return -1;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (std::chrono::steady_clock::now() > deadline) return -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

bool socket_accepts(const std::filesystem::path& socket) { return client::connect_unix(socket).has_value(); }

std::string guest_domain_xml(const std::string& name, unsigned memory_mib, const std::string& description) {
    auto g = guest_dir();
    return fmt::format(R"(<domain type='qemu'>
  <name>{}</name>
  <description>{}</description>
  <memory unit='MiB'>{}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{}</kernel>
    <initrd>{}</initrd>
    <cmdline>console=ttyS0 quiet</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
  </devices>
</domain>
)",
                       name, description, memory_mib, (g / "vmlinuz").native(), (g / "initrd.img").native());
}

}  // namespace vireo::test
