#include "netns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

extern char** environ;

namespace vireo::test {

std::string netns_unavailable() {
    if (::geteuid() != 0) return "network namespace tests need root";
    if (which("ip").empty()) return "ip (iproute2) is not installed";
    NetNs probe("probe");
    if (!probe.ok()) return "cannot create a network namespace (ip netns add)";
    return "";
}

NetNs::NetNs(const std::string& role) : name_(fmt::format("vireo-t{}-{}", ::getpid(), role)) {
    run({"ip", "netns", "del", name_});  // a leftover of a crashed run with a reused pid
    if (run({"ip", "netns", "add", name_}).exit_code != 0) return;
    fd_.reset(::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC));
    exec({"ip", "link", "set", "lo", "up"});
}

NetNs::~NetNs() {
    fd_.reset();
    run({"ip", "netns", "del", name_});
}

CommandResult NetNs::exec(const std::vector<std::string>& argv) const {
    std::vector<std::string> full = {"ip", "netns", "exec", name_};
    full.insert(full.end(), argv.begin(), argv.end());
    return run(full);
}

EnterNs::EnterNs(const NetNs& ns) : original_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
    ok_ = original_ && ns.ok() && ::setns(ns.fd(), CLONE_NEWNET) == 0;
}

EnterNs::~EnterNs() {
    if (ok_) ::setns(original_.get(), CLONE_NEWNET);
}

Background::Background(const std::vector<std::string>& argv) {
    std::vector<std::string> copy = argv;
    std::vector<char*> args;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    if (posix_spawnp(&pid_, args[0], &actions, &attr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
}

Background::~Background() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);  // its process group: ip netns exec and what it runs
    int status = 0;
    ::waitpid(pid_, &status, 0);
}

}  // namespace vireo::test
