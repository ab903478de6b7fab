// The test:///default driver's storage half: a running "default-pool" in a
// private temp dir that goes away with the driver.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "testdrv/test_driver.hpp"

namespace vireo::driver {
using testdrv::TestDriver;
namespace {

TEST(TestDriverPools, DefaultPoolRunsInAPrivateDirRemovedWithTheDriver) {
    std::filesystem::path target;
    {
        TestDriver d;
        auto p = d.pools().lookup_pool("default-pool");
        ASSERT_TRUE(p) << p.error().full_message();
        EXPECT_EQ(p->state, PoolState::Running);
        EXPECT_EQ(p->type, "dir");
        target = p->target_path;
        EXPECT_TRUE(std::filesystem::is_directory(target));
        auto v = d.pools().create_volume(
            "default-pool", "<volume><name>a.raw</name><capacity>1048576</capacity></volume>", {});
        ASSERT_TRUE(v) << v.error().full_message();
        EXPECT_TRUE(std::filesystem::exists(v->path));
    }
    EXPECT_FALSE(std::filesystem::exists(target));
}

TEST(TestDriverPools, EachConnectionHasItsOwnPools) {
    TestDriver a, b;
    ASSERT_TRUE(a.pools().create_volume("default-pool", "<volume><name>x.raw</name><capacity>4096</capacity></volume>",
                                        {}));
    EXPECT_TRUE(a.pools().lookup_volume("default-pool", "x.raw"));
    EXPECT_FALSE(b.pools().lookup_volume("default-pool", "x.raw"));
}

// A process killed with its connection open (a daemon after SIGKILL) leaves
// its pool dir behind; the next test driver of the user removes it, and
// leaves alone the dir of a process that still runs.
TEST(TestDriverPools, DirsOfKilledProcessesAreRemoved) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) ::_exit(0);
    ASSERT_EQ(::waitpid(child, nullptr, 0), child);  // a pid that no longer runs
    const auto tmp = std::filesystem::temp_directory_path();
    const auto orphan = tmp / ("vireo-test-pools-" + std::to_string(child) + "-Orphan");
    const auto alive = tmp / ("vireo-test-pools-" + std::to_string(::getppid()) + "-Alive");
    std::filesystem::create_directories(orphan / "default-pool");
    std::filesystem::create_directories(alive / "default-pool");
    {
        TestDriver d;
        ASSERT_TRUE(d.pools().lookup_pool("default-pool"));
    }
    EXPECT_FALSE(std::filesystem::exists(orphan));
    EXPECT_TRUE(std::filesystem::exists(alive));
    std::filesystem::remove_all(alive);
}

}  // namespace
}  // namespace vireo::driver
