// The answer to GET /v1/host/version, kept between calls.
//
// A driver's version() may be costly: the QEMU driver looks for the
// emulator in every $PATH directory (reading /usr/bin twice) on each call.
// What it finds only changes when a binary is installed, removed or
// upgraded, and each of those renames or unlinks an entry of one of those
// directories, changing its mtime. So the answer is kept while the mtimes
// (and identities) of the search directories stay the same, and at most
// kMaxAge in any case (an emulator rewritten in place changes no directory).
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "driver/driver.hpp"

namespace vireo::daemon {

class VersionCache {
public:
    static constexpr auto kMaxAge = std::chrono::seconds(30);

    using Fetch = std::function<Result<driver::VersionInfo>()>;

    // The version `fetch` gives (the driver's version()), from the cache
    // while still valid. Errors are returned as they are and not kept.
    // Thread-safe; concurrent misses fetch once.
    Result<driver::VersionInfo> get(const Fetch& fetch);

    // A fingerprint of the directories binaries are looked up in: $PATH,
    // then /usr/bin, /usr/local/bin and /usr/libexec (device, inode and
    // mtime of each; missing ones count too).
    static std::string search_dirs_stamp();

private:
    std::mutex mutex_;
    std::optional<driver::VersionInfo> cached_;
    std::string stamp_;
    std::chrono::steady_clock::time_point taken_;
};

}  // namespace vireo::daemon
