// The wire shapes of domblkstat and domblkinfo replies.
#include <gtest/gtest.h>

#include "wire/wire.hpp"

using namespace vireo;

TEST(BlockWire, StatsRoundTrip) {
    driver::BlockStats s{"vda", 1, 2, 3, 4, 5, 6, 7, 8};
    const auto j = wire::to_json(s);
    EXPECT_EQ(j["device"], "vda");
    EXPECT_EQ(j["rd_req"], 1);
    EXPECT_EQ(j["wr_bytes"], 4);
    EXPECT_EQ(j["flush_total_times"], 8);
    auto back = wire::block_stats_from_json(j);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->device, "vda");
    EXPECT_EQ(back->rd_bytes, 2u);
    EXPECT_EQ(back->wr_req, 3u);
    EXPECT_EQ(back->flush_operations, 5u);
    EXPECT_EQ(back->rd_total_times, 6u);
    EXPECT_EQ(back->wr_total_times, 7u);
    // The sum over every disk has no device.
    auto sum = wire::block_stats_from_json(wire::to_json(driver::BlockStats{"", 9, 0, 0, 0, 0, 0, 0, 0}));
    ASSERT_TRUE(sum) << sum.error().message;
    EXPECT_EQ(sum->device, "");
    EXPECT_EQ(sum->rd_req, 9u);
    EXPECT_FALSE(wire::block_stats_from_json(nlohmann::json::array())) << "an object is expected";
}

TEST(BlockWire, InfoRoundTrip) {
    driver::BlockInfo b{"vdb", 16777216, 200704, 200704};
    const auto j = wire::to_json(b);
    EXPECT_EQ(j["capacity"], 16777216);
    auto back = wire::block_info_from_json(j);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->device, "vdb");
    EXPECT_EQ(back->capacity, 16777216u);
    EXPECT_EQ(back->allocation, 200704u);
    EXPECT_EQ(back->physical, 200704u);
    EXPECT_FALSE(wire::block_info_from_json(nlohmann::json::object())) << "device is required";
}
