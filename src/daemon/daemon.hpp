// vireod as a whole: options, directories, logging, the single-instance
// lock, the driver, the sockets, the idle timer and signals.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "client/paths.hpp"

namespace vireo::daemon {

struct DaemonOptions {
    client::DaemonMode mode = client::DaemonMode::Session;
    bool daemonize = false;
    // Exit after this many seconds with no client and no running guest.
    // Default: 120 in session mode, never in system mode. 0 = never.
    std::optional<unsigned> timeout_s;
    // Overrides of the default locations (client/paths.hpp). config_dir and
    // run_dir are the driver's directories (definitions, runtime status).
    std::filesystem::path socket;
    std::filesystem::path ro_socket;
    std::filesystem::path config_dir;
    std::filesystem::path run_dir;
    std::filesystem::path log_file;
    // libvirt's remote protocol (docs/libvirt-protocol.md): extra sockets
    // given here, read-write and read-only; without them, and when the
    // daemon's directories are not overridden, libvirt's own paths for the
    // mode (when no libvirtd owns them). no_libvirt_sockets: none at all.
    std::filesystem::path libvirt_socket;
    std::filesystem::path libvirt_ro_socket;
    bool no_libvirt_sockets = false;
    bool verbose = false;
    // Which driver to serve: "qemu" (production) or "test" (the in-memory
    // test driver, for the daemon's own tests; hidden option).
    std::string driver = "qemu";
    // System mode: group owning the read-write socket (created when missing).
    std::string socket_group = "vireo";
    unsigned job_threads = 16;
};

// Run the daemon; returns the process exit code. With daemonize, the calling
// process exits once the daemon listens (0) or failed to start (1, message
// on stderr), and the daemon continues in a detached grandchild.
int run_daemon(const DaemonOptions& options);

}  // namespace vireo::daemon
