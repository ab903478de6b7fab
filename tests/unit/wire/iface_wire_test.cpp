// The wire shapes of domifstat and domifaddr replies.
#include <gtest/gtest.h>

#include "wire/wire.hpp"

using namespace vireo;

TEST(IfaceWire, StatsRoundTrip) {
    driver::InterfaceStats s{"vnet0", 1, 2, 3, 4, 5, 6, 7, 8};
    const auto j = wire::to_json(s);
    EXPECT_EQ(j["name"], "vnet0");
    EXPECT_EQ(j["rx_bytes"], 1);
    EXPECT_EQ(j["tx_drop"], 8);
    auto back = wire::interface_stats_from_json(j);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->rx_packets, 2u);
    EXPECT_EQ(back->tx_bytes, 5u);
    EXPECT_FALSE(wire::interface_stats_from_json(nlohmann::json::object())) << "name is required";
}

TEST(IfaceWire, AddressRoundTrip) {
    driver::InterfaceAddress a{"vnet0", "52:54:00:00:00:01", "ipv4", "192.168.122.5", 24};
    auto back = wire::interface_address_from_json(wire::to_json(a));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->name, "vnet0");
    EXPECT_EQ(back->mac, "52:54:00:00:00:01");
    EXPECT_EQ(back->type, "ipv4");
    EXPECT_EQ(back->address, "192.168.122.5");
    EXPECT_EQ(back->prefix, 24u);
}
