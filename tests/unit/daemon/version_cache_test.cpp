// The daemon's cache of the version answer: kept while the directories
// binaries are looked up in stay the same, refreshed when one changes.
#include "daemon/version_cache.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "support/support.hpp"

namespace vireo::daemon {
namespace {

// Puts a private directory first on $PATH for the test's lifetime.
class PathDirFirst {
public:
    explicit PathDirFirst(const std::filesystem::path& dir) {
        const char* old = std::getenv("PATH");
        if (old) old_ = old;
        ::setenv("PATH", (dir.native() + ":" + old_).c_str(), 1);
    }
    ~PathDirFirst() { ::setenv("PATH", old_.c_str(), 1); }
    PathDirFirst(const PathDirFirst&) = delete;
    PathDirFirst& operator=(const PathDirFirst&) = delete;

private:
    std::string old_;
};

struct CountingFetch {
    int calls = 0;
    std::string hypervisor = "QEMU 7.2.0";
    VersionCache::Fetch fn() {
        return [this]() -> Result<driver::VersionInfo> {
            ++calls;
            return driver::VersionInfo{"1.0", "1.0", hypervisor};
        };
    }
};

TEST(VersionCache, AnswersRepeatedCallsFromTheCache) {
    VersionCache cache;
    CountingFetch fetch;
    auto first = cache.get(fetch.fn());
    auto second = cache.get(fetch.fn());
    ASSERT_TRUE(first && second);
    EXPECT_EQ(second->hypervisor, "QEMU 7.2.0");
    EXPECT_EQ(fetch.calls, 1);
}

TEST(VersionCache, AsksAgainOnceABinaryIsAddedToADirectoryOnPath) {
    test::TempDir dir;
    // Back-date the directory: its mtime must change visibly below (mtimes
    // have the kernel's tick as resolution).
    std::filesystem::last_write_time(dir.path(),
                                     std::filesystem::file_time_type::clock::now() - std::chrono::hours(1));
    PathDirFirst on_path(dir.path());
    VersionCache cache;
    CountingFetch fetch;
    ASSERT_TRUE(cache.get(fetch.fn()));
    // An upgrade: a new emulator appears in a PATH directory.
    std::ofstream(dir.path() / "qemu-system-x86_64") << "#!/bin/sh\n";
    fetch.hypervisor = "QEMU 8.0.0";
    auto after = cache.get(fetch.fn());
    ASSERT_TRUE(after);
    EXPECT_EQ(after->hypervisor, "QEMU 8.0.0");
    EXPECT_EQ(fetch.calls, 2);
}

TEST(VersionCache, DoesNotKeepErrors) {
    VersionCache cache;
    int calls = 0;
    auto failing = [&calls]() -> Result<driver::VersionInfo> {
        ++calls;
        return fail(ErrorCode::Hypervisor, "no QEMU binary found");
    };
    EXPECT_FALSE(cache.get(failing));
    EXPECT_FALSE(cache.get(failing));
    EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace vireo::daemon
