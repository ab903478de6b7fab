// Where vireod keeps its sockets and state, shared by the daemon (which
// creates them) and the client (which connects and auto-starts the session
// daemon). Every location can be overridden from the environment so tests
// never touch the real user's directories:
//   VIREO_RUNTIME_DIR   sockets, pid/lock files, runtime status
//   VIREO_CONFIG_DIR    persistent definitions
//   VIREO_CACHE_DIR     logs and caches (default <VIREO_RUNTIME_DIR>/cache
//                       when only VIREO_RUNTIME_DIR is set)
//
//                 session (per user)                    system (root)
//   runtime       $XDG_RUNTIME_DIR/vireo                /run/vireo
//                 (fallback /tmp/vireo-<uid>)
//   config        $XDG_CONFIG_HOME/vireo (~/.config/vireo)   /etc/vireo
//   cache         $XDG_CACHE_HOME/vireo                 /var/cache/vireo
//   log           <cache>/vireod.log                    /var/log/vireo/vireod.log
//   socket        <runtime>/vireo-sock                  <runtime>/vireo-sock (0660 root:vireo)
//   read-only     -                                     <runtime>/vireo-sock-ro (0666)
#pragma once

#include <filesystem>

namespace vireo::client {

enum class DaemonMode { Session, System };

struct DaemonPaths {
    std::filesystem::path runtime_dir;
    std::filesystem::path config_dir;
    std::filesystem::path cache_dir;  // logs and caches
    std::filesystem::path log_file;
    std::filesystem::path socket;
    std::filesystem::path ro_socket;
    // Held (flock) by the running daemon; a second daemon refuses to start.
    std::filesystem::path pid_file;
    // Serializes clients that auto-start the session daemon.
    std::filesystem::path spawn_lock;
};

DaemonPaths default_paths(DaemonMode mode);

// True when VIREO_RUNTIME_DIR, VIREO_CONFIG_DIR or VIREO_CACHE_DIR is set
// (tests): the daemon then keeps every file it writes under those.
bool paths_overridden();

}  // namespace vireo::client
