// The test:///default driver's storage half: a running "default-pool" in a
// private temp dir that goes away with the driver.
#include <gtest/gtest.h>

#include <filesystem>

#include "driver/test_driver.hpp"

namespace vireo::driver {
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

}  // namespace
}  // namespace vireo::driver
