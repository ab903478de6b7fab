// The network verbs' text forms, byte for byte as virsh 9.0 printed them
// for the same objects (captured with `virsh -c qemu:///system`).
#include <gtest/gtest.h>

#include "cli/vireo/network_format.hpp"

namespace vireo::cli {
namespace {

driver::NetworkSummary net(std::string name, bool active, bool autostart, bool persistent) {
    return {.name = std::move(name),
            .uuid = *Uuid::parse("ef44a5be-294b-4d89-91f5-1bcc068fb822"),
            .active = active,
            .persistent = persistent,
            .autostart = autostart,
            .bridge = "vtndbr1"};
}

TEST(NetworkFormat, NetListAsVirsh) {
    EXPECT_EQ(format_network_table({}, true),
              " Name   State   Autostart   Persistent\n"
              "----------------------------------------\n");
    EXPECT_EQ(format_network_table({net("vtnd1", false, false, true)}, true),
              " Name    State      Autostart   Persistent\n"
              "--------------------------------------------\n"
              " vtnd1   inactive   no          yes\n");
    EXPECT_EQ(format_network_table({net("vtnd2", true, false, false)}, true),
              " Name    State    Autostart   Persistent\n"
              "------------------------------------------\n"
              " vtnd2   active   no          no\n");
    // -q: rows only, sized by the rows.
    EXPECT_EQ(format_network_table({net("vtnd4", false, false, true)}, false), " vtnd4   inactive   no   yes\n");
}

TEST(NetworkFormat, NetListFilters) {
    std::vector<driver::NetworkSummary> all{net("b", true, true, true), net("a", false, false, true), net("t", true, false, false)};
    auto names = [](const std::vector<driver::NetworkSummary>& v) {
        std::string out;
        for (const auto& n : v) out += n.name;
        return out;
    };
    EXPECT_EQ(names(select_networks(all, {})), "bt");
    EXPECT_EQ(names(select_networks(all, {.active = true, .inactive = true})), "abt");
    EXPECT_EQ(names(select_networks(all, {.active = false, .inactive = true})), "a");
    EXPECT_EQ(names(select_networks(all, {.active = true, .inactive = true, .persistent = true})), "ab");
    EXPECT_EQ(names(select_networks(all, {.active = true, .inactive = true, .transient = true})), "t");
    EXPECT_EQ(names(select_networks(all, {.active = true, .inactive = true, .autostart = true})), "b");
    EXPECT_EQ(names(select_networks(all, {.active = true, .inactive = true, .no_autostart = true})), "at");
}

TEST(NetworkFormat, NetInfoAsVirsh) {
    EXPECT_EQ(format_network_info(net("vtnd1", false, false, true)),
              "Name:           vtnd1\n"
              "UUID:           ef44a5be-294b-4d89-91f5-1bcc068fb822\n"
              "Active:         no\n"
              "Persistent:     yes\n"
              "Autostart:      no\n"
              "Bridge:         vtndbr1\n");
}

TEST(NetworkFormat, LeasesAsVirsh) {
    EXPECT_EQ(format_lease_table({}, true),
              " Expiry Time   MAC address   Protocol   IP address   Hostname   Client ID or DUID\n"
              "-----------------------------------------------------------------------------------\n");
    ::setenv("TZ", "UTC", 1);
    ::tzset();
    driver::NetworkDhcpLease b{.iface = "virbr0", .expiry_time = 1700000000, .ipv6 = false, .mac = "52:54:00:bb:00:02",
                               .iaid = "", .ip = "10.0.0.12", .prefix = 24, .hostname = "", .client_id = ""};
    driver::NetworkDhcpLease a = b;
    a.mac = "52:54:00:aa:00:01";
    a.ip = "10.0.0.11";
    a.hostname = "g1";
    a.client_id = "01:52:54:00:aa:00:01";
    EXPECT_EQ(format_lease_table({b, a}, true),
              " Expiry Time           MAC address         Protocol   IP address     Hostname   Client ID or DUID\n"
              "------------------------------------------------------------------------------------------------------\n"
              " 2023-11-14 22:13:20   52:54:00:aa:00:01   ipv4       10.0.0.11/24   g1         01:52:54:00:aa:00:01\n"
              " 2023-11-14 22:13:20   52:54:00:bb:00:02   ipv4       10.0.0.12/24   -          -\n");
}

TEST(NetworkFormat, EventsAsVirsh) {
    driver::NetworkEvent e{.type = driver::NetworkEventType::Undefined, .network = "vtnd2", .uuid = Uuid::generate(),
                           .when = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123))};
    EXPECT_EQ(format_network_event(e, false), "event 'lifecycle' for network vtnd2: Undefined");
    EXPECT_EQ(format_network_event(e, true), "2023-11-14 22:13:20.123+0000: event 'lifecycle' for network vtnd2: Undefined");
}

TEST(NetworkFormat, UpdateOutcomeAsVirsh) {
    EXPECT_EQ(network_update_outcome("n", true, true, true), "Updated network n persistent config and live state");
    EXPECT_EQ(network_update_outcome("n", false, true, true), "Updated network n persistent config");
    EXPECT_EQ(network_update_outcome("n", true, false, true), "Updated network n live state");
    EXPECT_EQ(network_update_outcome("n", false, false, true), "Updated network n live state");       // --current, active
    EXPECT_EQ(network_update_outcome("n", false, false, false), "Updated network n persistent config");  // --current, inactive
}

TEST(NetworkFormat, IfaceListAsVirsh) {
    EXPECT_EQ(format_interface_table({{.name = "eth0", .mac = "02:fc:00:00:00:01", .active = true},
                                      {.name = "ifb0", .mac = "62:ca:3d:00:3e:b0", .active = false}},
                                     true),
              " Name   State      MAC Address\n"
              "--------------------------------------\n"
              " eth0   active     02:fc:00:00:00:01\n"
              " ifb0   inactive   62:ca:3d:00:3e:b0\n");
}

}  // namespace
}  // namespace vireo::cli
