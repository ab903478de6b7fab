// Host side of guest NICs: device names, the guest's view of tap counters.
#include <gtest/gtest.h>

#include "qemu/nics.hpp"

using namespace vireo;

TEST(QemuNics, TapNamesTakeTheFirstFreeIndex) {
    EXPECT_EQ(qemu::first_free_name("vnet", {}), "vnet0");
    EXPECT_EQ(qemu::first_free_name("vnet", {"vnet0", "vnet1", "eth0"}), "vnet2");
    EXPECT_EQ(qemu::first_free_name("vnet", {"vnet0", "vnet2"}), "vnet1") << "a freed index is taken again";
    EXPECT_EQ(qemu::first_free_name("macvtap", {"vnet0", "macvtap0"}), "macvtap1");
    EXPECT_EQ(qemu::first_free_name("vnet", {"vnet00", "vnet01"}), "vnet0") << "only the exact names count";
}

TEST(QemuNics, GeneratedNamePrefixesAreLibvirts) {
    EXPECT_TRUE(qemu::is_generated_nic_name("vnet3"));
    EXPECT_TRUE(qemu::is_generated_nic_name("macvtap0"));
    EXPECT_FALSE(qemu::is_generated_nic_name("mytap"));
    EXPECT_FALSE(qemu::is_generated_nic_name("tap0"));
}

TEST(QemuNics, TapCountersAreSwappedToTheGuestsView) {
    network::LinkStats host;
    host.rx_bytes = 100, host.rx_packets = 2, host.rx_errors = 3, host.rx_dropped = 4;
    host.tx_bytes = 500, host.tx_packets = 6, host.tx_errors = 7, host.tx_dropped = 8;
    const auto g = qemu::guest_view(host, true);
    EXPECT_EQ(g.rx_bytes, 500u);
    EXPECT_EQ(g.rx_packets, 6u);
    EXPECT_EQ(g.rx_errors, 7u);
    EXPECT_EQ(g.rx_dropped, 8u);
    EXPECT_EQ(g.tx_bytes, 100u);
    EXPECT_EQ(g.tx_packets, 2u);
    EXPECT_EQ(g.tx_errors, 3u);
    EXPECT_EQ(g.tx_dropped, 4u);
    EXPECT_EQ(qemu::guest_view(host, false).rx_bytes, 100u) << "macvtap counters are the guest's already";
}
