// The network API on the wire: networks, leases, events and host interfaces
// survive a round trip (through the HTTP binding's answers too), and
// malformed input is a Protocol error naming the field.
#include <gtest/gtest.h>

#include "wire/http.hpp"
#include "wire/network_wire.hpp"

namespace vireo::wire {
namespace {

namespace ops = driver::ops;

TEST(NetworkWire, NetworkRoundTripThroughTheAnswer) {
    driver::NetworkSummary n{.name = "default",
                             .uuid = *Uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193f"),
                             .active = true,
                             .persistent = false,
                             .autostart = true,
                             .bridge = "virbr0"};
    auto answer = http::encode_reply<ops::NetworkList>(std::vector<driver::NetworkSummary>{n});
    EXPECT_EQ(answer.status, 200u);
    auto back = http::decode_reply<ops::NetworkList>(answer.body);
    ASSERT_TRUE(back) << back.error().message;
    ASSERT_EQ(back->size(), 1u);
    EXPECT_EQ((*back)[0].name, "default");
    EXPECT_EQ((*back)[0].uuid, n.uuid);
    EXPECT_TRUE((*back)[0].active);
    EXPECT_FALSE((*back)[0].persistent);
    EXPECT_TRUE((*back)[0].autostart);
    EXPECT_EQ((*back)[0].bridge, "virbr0");
    EXPECT_EQ(http::encode_reply<ops::NetworkDefine>(n).status, 201u);
}

TEST(NetworkWire, LeaseEventAndInterfaceRoundTrip) {
    driver::NetworkDhcpLease l{.iface = "virbr0", .expiry_time = 4102444800, .ipv6 = false, .mac = "52:54:00:aa:bb:cc",
                               .iaid = "", .ip = "192.168.122.10", .prefix = 24, .hostname = "g1", .client_id = "01:52"};
    auto lb = network_lease_from_json(to_json(l));
    ASSERT_TRUE(lb) << lb.error().message;
    EXPECT_EQ(lb->expiry_time, 4102444800);
    EXPECT_EQ(lb->ip, "192.168.122.10");
    EXPECT_EQ(lb->prefix, 24u);
    EXPECT_EQ(lb->hostname, "g1");
    EXPECT_EQ(lb->client_id, "01:52");

    driver::NetworkEvent e{.type = driver::NetworkEventType::Stopped, .network = "n1", .uuid = Uuid::generate(),
                           .when = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123))};
    auto eb = network_event_from_json(to_json(e));
    ASSERT_TRUE(eb) << eb.error().message;
    EXPECT_EQ(eb->type, driver::NetworkEventType::Stopped);
    EXPECT_EQ(eb->network, "n1");
    EXPECT_EQ(eb->uuid, e.uuid);
    EXPECT_EQ(eb->when, e.when);

    driver::HostInterface i{.name = "eth0", .mac = "02:fc:00:00:00:01", .active = true};
    auto ib = host_interface_from_json(to_json(i));
    ASSERT_TRUE(ib) << ib.error().message;
    EXPECT_EQ(ib->name, "eth0");
    EXPECT_EQ(ib->mac, i.mac);
    EXPECT_TRUE(ib->active);
}

TEST(NetworkWire, MalformedInputNamesTheField) {
    auto n = network_from_json(nlohmann::json{{"name", "x"}, {"active", true}, {"uuid", "nope"}});
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error().code, ErrorCode::Protocol);
    EXPECT_NE(n.error().message.find("'uuid'"), std::string::npos) << n.error().message;
    auto e = network_event_from_json(nlohmann::json{{"type", "Exploded"}, {"network", "x"}});
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message.find("'type'"), std::string::npos) << e.error().message;
    auto l = network_lease_from_json(nlohmann::json{{"mac", "52:54:00:00:00:01"}});
    ASSERT_FALSE(l);
    EXPECT_NE(l.error().message.find("'ip'"), std::string::npos) << l.error().message;
}

TEST(NetworkWire, UpdateRequestsTravelWithTheirEnumNames) {
    ops::NetworkUpdate::Request r{.network = "default",
                                  .command = driver::NetworkUpdateCommand::Delete,
                                  .section = driver::NetworkUpdateSection::DnsHost,
                                  .xml = "<host ip='192.168.122.9'/>",
                                  .parent_index = driver::kAnyParentIndex,
                                  .live = true,
                                  .config = false};
    auto out = http::encode_request<ops::NetworkUpdate>(r);
    ASSERT_TRUE(out);
    EXPECT_EQ(out->target, "/v1/networks/default/update");
    auto body = nlohmann::json::parse(out->body);
    EXPECT_EQ(body["command"], "delete");
    EXPECT_EQ(body["section"], "dns-host");
    EXPECT_EQ(body["parent_index"], driver::kAnyParentIndex);
    auto m = http::match("POST", out->target);
    ASSERT_TRUE(m && *m);
    auto back = http::decode_request<ops::NetworkUpdate>(**m, out->body);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->section, driver::NetworkUpdateSection::DnsHost);
    EXPECT_EQ(back->command, driver::NetworkUpdateCommand::Delete);
    EXPECT_EQ(back->parent_index, driver::kAnyParentIndex);
    EXPECT_TRUE(back->live);
}

}  // namespace
}  // namespace vireo::wire
