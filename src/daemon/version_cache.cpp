#include "daemon/version_cache.hpp"

#include <sys/stat.h>

#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

namespace vireo::daemon {

namespace {

void append_dir_stamp(std::string& out, std::string_view dir) {
    std::string path(dir.empty() ? "." : dir);  // an empty $PATH entry means the cwd
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
        fmt::format_to(std::back_inserter(out), "{}:-;", path);
        return;
    }
    fmt::format_to(std::back_inserter(out), "{}:{}:{}:{}.{};", path, st.st_dev, st.st_ino, st.st_mtim.tv_sec,
                   st.st_mtim.tv_nsec);
}

}  // namespace

std::string VersionCache::search_dirs_stamp() {
    std::string stamp;
    if (const char* path = std::getenv("PATH")) {
        std::string_view p(path);
        for (;;) {
            auto colon = p.find(':');
            append_dir_stamp(stamp, p.substr(0, colon));
            if (colon == std::string_view::npos) break;
            p.remove_prefix(colon + 1);
        }
    }
    for (std::string_view d : {"/usr/bin", "/usr/local/bin", "/usr/libexec"}) append_dir_stamp(stamp, d);
    return stamp;
}

Result<driver::VersionInfo> VersionCache::get(const Fetch& fetch) {
    std::string stamp = search_dirs_stamp();
    auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    if (cached_ && stamp == stamp_ && now - taken_ < kMaxAge) return *cached_;
    auto v = fetch();
    if (!v) return v;
    cached_ = *v;
    stamp_ = std::move(stamp);
    taken_ = now;
    return v;
}

}  // namespace vireo::daemon
