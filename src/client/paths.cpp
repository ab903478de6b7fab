#include "client/paths.hpp"

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

namespace vireo::client {

namespace {

std::filesystem::path env_path(const char* name) {
    const char* v = std::getenv(name);
    return (v && *v) ? std::filesystem::path(v) : std::filesystem::path{};
}

// The home directory of `uid` in /etc/passwd (empty when not listed).
// Read directly rather than through getpwuid(): the CLI is linked statically
// (src/cli/vireo/standalone.cmake), where NSS lookups would need the shared
// glibc of the build machine at run time.
std::filesystem::path passwd_home(uid_t uid) {
    std::ifstream in("/etc/passwd");
    std::string line;
    while (std::getline(in, line)) {
        // name:password:uid:gid:gecos:home:shell
        std::string_view rest(line);
        std::string_view field[7];
        int n = 0;
        for (; n < 7; ++n) {
            auto colon = rest.find(':');
            field[n] = rest.substr(0, colon);
            if (colon == std::string_view::npos) break;
            rest.remove_prefix(colon + 1);
        }
        if (n < 5) continue;
        unsigned long id = 0;
        auto [end, ec] = std::from_chars(field[2].data(), field[2].data() + field[2].size(), id);
        if (ec == std::errc{} && end == field[2].data() + field[2].size() && id == uid && !field[5].empty())
            return std::filesystem::path(field[5]);
    }
    return {};
}

std::filesystem::path home_dir() {
    if (auto h = env_path("HOME"); !h.empty()) return h;
    if (auto h = passwd_home(::getuid()); !h.empty()) return h;
    return "/";
}

// $VAR/vireo, else ~/<fallback>/vireo.
std::filesystem::path xdg_dir(const char* var, const char* fallback) {
    if (auto d = env_path(var); !d.empty()) return d / "vireo";
    return home_dir() / fallback / "vireo";
}

}  // namespace

DaemonPaths default_paths(DaemonMode mode) {
    DaemonPaths p;
    const bool session = mode == DaemonMode::Session;
    p.runtime_dir = env_path("VIREO_RUNTIME_DIR");
    if (p.runtime_dir.empty()) {
        if (!session)
            p.runtime_dir = "/run/vireo";
        else if (auto xdg = env_path("XDG_RUNTIME_DIR"); !xdg.empty())
            p.runtime_dir = xdg / "vireo";
        else
            p.runtime_dir = "/tmp/vireo-" + std::to_string(::getuid());
    }
    p.config_dir = env_path("VIREO_CONFIG_DIR");
    if (p.config_dir.empty()) p.config_dir = session ? xdg_dir("XDG_CONFIG_HOME", ".config") : "/etc/vireo";
    p.cache_dir = env_path("VIREO_CACHE_DIR");
    if (p.cache_dir.empty() && !env_path("VIREO_RUNTIME_DIR").empty()) p.cache_dir = p.runtime_dir / "cache";
    if (p.cache_dir.empty()) p.cache_dir = session ? xdg_dir("XDG_CACHE_HOME", ".cache") : "/var/cache/vireo";
    p.log_file = (session || !env_path("VIREO_CACHE_DIR").empty() || !env_path("VIREO_RUNTIME_DIR").empty())
                     ? p.cache_dir / "vireod.log"
                     : std::filesystem::path("/var/log/vireo/vireod.log");
    p.socket = p.runtime_dir / "vireo-sock";
    if (!session) p.ro_socket = p.runtime_dir / "vireo-sock-ro";
    p.pid_file = p.runtime_dir / "vireod.pid";
    p.spawn_lock = p.runtime_dir / "vireod-spawn.lock";
    return p;
}

bool paths_overridden() {
    return !env_path("VIREO_RUNTIME_DIR").empty() || !env_path("VIREO_CONFIG_DIR").empty() ||
           !env_path("VIREO_CACHE_DIR").empty();
}

}  // namespace vireo::client
