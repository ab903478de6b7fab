// Auto-start of the per-user session daemon (qemu:///session), as libvirt's
// client does: when its socket is missing or refuses connections, spawn
// `vireod --session --daemonize` and wait until it listens. A lock file
// serializes clients racing to do the same, and the daemon itself refuses to
// run twice (pid file lock), so at most one session daemon runs per user.
#pragma once

#include <filesystem>

#include "util/error.hpp"

namespace vireo::client {

// The vireod program: $VIREO_DAEMON_PATH, else next to the running program
// (/proc/self/exe's directory), else on PATH.
Result<std::filesystem::path> find_daemon_program();

// Make sure a session daemon listens on `socket` (default session paths);
// start one if needed. Returns once the socket accepts connections.
Status ensure_session_daemon();

}  // namespace vireo::client
