// vireod (system mode, every path under one test directory) running inside
// a network namespace the test made, started with `ip netns exec` so that
// it also sees that namespace's /sys; and the vireo CLI talking to it over
// its socket from outside (libvirt's clients on its libvirt sockets).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "netns.hpp"
#include "support/support.hpp"

namespace vireo::test {

class NsDaemon {
public:
    // Directories under `root` (made mode 0755: dnsmasq reads its files
    // unprivileged): conf/qemu, run/qemu, and so conf/network, run/network,
    // run/dnsmasq. With `default_network` false a marker keeps the daemon
    // from making libvirt's default network.
    NsDaemon(const NetNs& ns, std::filesystem::path root, bool default_network = false);
    ~NsDaemon();
    NsDaemon(const NsDaemon&) = delete;
    NsDaemon& operator=(const NsDaemon&) = delete;

    // Start and wait for the socket; false with the log's tail in *why.
    // `session`: a session daemon instead of the system one.
    bool start(std::string* why, bool session = false);
    // SIGTERM and wait; SIGKILL and reap.
    void stop();
    void kill();
    [[nodiscard]] pid_t pid() const { return pid_; }

    // `vireo -c <uri> args...`
    CommandResult vireo(const std::vector<std::string>& args) const;
    [[nodiscard]] std::string uri() const;
    // libvirt's clients: the remote protocol's sockets (libvirt-sock, libvirt-sock-ro).
    [[nodiscard]] std::string libvirt_uri(bool read_only = false) const {
        return "qemu+unix:///system?socket=" + (root_ / (read_only ? "libvirt-sock-ro" : "libvirt-sock")).native();
    }
    [[nodiscard]] const std::filesystem::path& root() const { return root_; }
    [[nodiscard]] std::filesystem::path dnsmasq_dir() const { return root_ / "run/dnsmasq"; }
    // dnsmasq outlives the daemon by design: a test's teardown stops what
    // the daemon under `root` left running, so nothing keeps its namespace alive.
    static void kill_dnsmasq(const std::filesystem::path& root);
    [[nodiscard]] std::string log() const;

private:
    const NetNs& ns_;
    std::filesystem::path root_;
    pid_t pid_ = -1;
};

}  // namespace vireo::test
