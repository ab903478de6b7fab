// net-update on a definition: libvirt's matching rules and messages for
// DHCP hosts, DHCP ranges and DNS hosts; the element is checked as strictly
// as net-define checks it, and nothing changes on a refusal.
#include <gtest/gtest.h>

#include "netdrv/network_update.hpp"

using namespace vireo;
using namespace vireo::netdrv;
using driver::NetworkUpdateCommand;
using driver::NetworkUpdateSection;

namespace {

conf::NetworkDef net() {
    auto def = conf::parse_network_xml(R"(<network><name>lab</name><forward mode='nat'/><bridge name='vbr9'/>
  <ip address='10.9.0.1' prefix='24'><dhcp><range start='10.9.0.10' end='10.9.0.99'/>
    <host mac='52:54:00:00:00:01' name='g1' ip='10.9.0.5'/></dhcp></ip>
  <ip family='ipv6' address='fd00:9::1' prefix='64'/></network>)");
    EXPECT_TRUE(def) << def.error().message;
    return *def;
}

std::string update_error(conf::NetworkDef& def, NetworkUpdateCommand c, NetworkUpdateSection s, std::string xml,
                         std::uint64_t parent = driver::kAnyParentIndex) {
    const std::string before = conf::format_network_xml(def);
    auto r = apply_network_update(def, {c, s, std::move(xml), parent});
    EXPECT_FALSE(r);
    EXPECT_EQ(conf::format_network_xml(def), before) << "a refused update changed the definition";
    return r ? std::string() : r.error().message;
}

}  // namespace

TEST(NetworkUpdate, DhcpHostsAddModifyDelete) {
    auto def = net();
    auto r = apply_network_update(def, {NetworkUpdateCommand::AddLast, NetworkUpdateSection::IpDhcpHost,
                                        "<host mac='52:54:00:00:00:02' name='h2' ip='10.9.0.6'/>", driver::kAnyParentIndex});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, UpdateEffect::HostsFiles);
    ASSERT_EQ(def.ips[0].hosts.size(), 2u);
    EXPECT_EQ(def.ips[0].hosts[1].name, "h2");

    ASSERT_TRUE(apply_network_update(def, {NetworkUpdateCommand::AddFirst, NetworkUpdateSection::IpDhcpHost,
                                           "<host mac='52:54:00:00:00:03' ip='10.9.0.7'/>", driver::kAnyParentIndex}));
    EXPECT_EQ(def.ips[0].hosts[0].mac, "52:54:00:00:00:03");

    ASSERT_TRUE(apply_network_update(def, {NetworkUpdateCommand::Modify, NetworkUpdateSection::IpDhcpHost,
                                           "<host mac='52:54:00:00:00:02' name='h2' ip='10.9.0.8'/>", driver::kAnyParentIndex}));
    EXPECT_EQ(def.ips[0].hosts[2].ip->str(), "10.9.0.8");

    // A delete needs only what identifies the entry.
    ASSERT_TRUE(apply_network_update(def, {NetworkUpdateCommand::Delete, NetworkUpdateSection::IpDhcpHost,
                                           "<host mac='52:54:00:00:00:02'/>", driver::kAnyParentIndex}));
    EXPECT_EQ(def.ips[0].hosts.size(), 2u);
    EXPECT_NE(conf::format_network_xml(def).find("<host mac='52:54:00:00:00:03' ip='10.9.0.7'/>"), std::string::npos);
}

TEST(NetworkUpdate, DhcpHostRefusalsAreLibvirts) {
    auto def = net();
    EXPECT_EQ(update_error(def, NetworkUpdateCommand::AddLast, NetworkUpdateSection::IpDhcpHost,
                           "<host mac='52:54:00:00:00:01' name='other' ip='10.9.0.9'/>"),
              "Requested operation is not valid: there is an existing dhcp host entry in network 'lab' that matches "
              "\"<host mac='52:54:00:00:00:01' name='other' ip='10.9.0.9'/>\"");
    EXPECT_EQ(update_error(def, NetworkUpdateCommand::Delete, NetworkUpdateSection::IpDhcpHost, "<host mac='52:54:00:00:00:99'/>"),
              "Requested operation is not valid: couldn't locate a matching dhcp host entry in network 'lab'");
    EXPECT_EQ(update_error(def, NetworkUpdateCommand::Modify, NetworkUpdateSection::IpDhcpHost,
                           "<host mac='52:54:00:00:00:99' ip='10.9.0.9'/>"),
              "Requested operation is not valid: couldn't locate an existing dhcp host entry with \"mac='52:54:00:00:00:99'\" "
              "in network 'lab'");
    EXPECT_EQ(update_error(def, NetworkUpdateCommand::AddLast, NetworkUpdateSection::IpDhcpHost,
                           "<host mac='52:54:00:00:00:09' ip='10.9.0.6'/>", 3),
              "Requested operation is not valid: couldn't update dhcp host entry - no <ip> element found at index 3 in "
              "network 'lab'");
    // As strict as net-define: the address must be in the subnet.
    auto e = update_error(def, NetworkUpdateCommand::AddLast, NetworkUpdateSection::IpDhcpHost,
                          "<host mac='52:54:00:00:00:09' ip='10.8.0.6'/>");
    EXPECT_NE(e.find("/network/ip/dhcp/host/@ip: static host address 10.8.0.6 is not within the subnet 10.9.0.0/24"),
              std::string::npos)
        << e;
    e = update_error(def, NetworkUpdateCommand::AddLast, NetworkUpdateSection::IpDhcpHost, "<range start='10.9.0.1' end='10.9.0.2'/>");
    EXPECT_NE(e.find("the ip-dhcp-host section takes one <host> element, not <range>"), std::string::npos) << e;
    e = update_error(def, NetworkUpdateCommand::AddLast, NetworkUpdateSection::IpDhcpHost, "<host");
    EXPECT_NE(e.find("cannot parse the ip-dhcp-host element"), std::string::npos) << e;
}

TEST(NetworkUpdate, DhcpRangesAddAndDeleteOnly) {
    auto def = net();
    auto r = apply_network_update(def, {NetworkUpdateCommand::AddLast, NetworkUpdateSection::IpDhcpRange,
                                        "<range start='10.9.0.100' end='10.9.0.120'/>", driver::kAnyParentIndex});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, UpdateEffect::DhcpConfig);
    EXPECT_EQ(def.ips[0].ranges.size(), 2u);
    EXPECT_EQ(update_error(def, NetworkUpdateCommand::AddLast, NetworkUpdateSection::IpDhcpRange,
                           "<range start='10.9.0.100' end='10.9.0.120'/>"),
              "Requested operation is not valid: there is an existing dhcp range entry in network 'lab' that matches "
              "\"<range start='10.9.0.100' end='10.9.0.120'/>\"");
    EXPECT_EQ(update_error(def, NetworkUpdateCommand::Modify, NetworkUpdateSection::IpDhcpRange,
                           "<range start='10.9.0.100' end='10.9.0.120'/>"),
              "Operation not supported: dhcp ranges cannot be modified, only added or deleted");
    ASSERT_TRUE(apply_network_update(def, {NetworkUpdateCommand::Delete, NetworkUpdateSection::IpDhcpRange,
                                           "<range start='10.9.0.100' end='10.9.0.120'/>", driver::kAnyParentIndex}));
    EXPECT_EQ(def.ips[0].ranges.size(), 1u);
    // An IPv6 range goes to the IPv6 <ip>, which gains its <dhcp>.
    ASSERT_TRUE(apply_network_update(def, {NetworkUpdateCommand::AddLast, NetworkUpdateSection::IpDhcpRange,
                                           "<range start='fd00:9::10' end='fd00:9::ff'/>", driver::kAnyParentIndex}));
    EXPECT_TRUE(def.ips[1].dhcp);
    auto e = update_error(def, NetworkUpdateCommand::AddLast, NetworkUpdateSection::IpDhcpRange, "<range start='10.9.1.1' end='10.9.1.9'/>");
    EXPECT_NE(e.find("is not within the subnet 10.9.0.0/24"), std::string::npos) << e;
}

TEST(NetworkUpdate, DnsHosts) {
    auto def = net();
    ASSERT_TRUE(apply_network_update(def, {NetworkUpdateCommand::AddLast, NetworkUpdateSection::DnsHost,
                                           "<host ip='10.9.0.50'><hostname>foo</hostname></host>", driver::kAnyParentIndex}));
    EXPECT_NE(conf::format_network_xml(def).find("<dns>\n    <host ip='10.9.0.50'>\n      <hostname>foo</hostname>"),
              std::string::npos);
    EXPECT_EQ(update_error(def, NetworkUpdateCommand::AddLast, NetworkUpdateSection::DnsHost,
                           "<host ip='10.9.0.51'><hostname>foo</hostname></host>"),
              "Requested operation is not valid: there is already at least one DNS HOST record with a matching field in "
              "network lab");
    EXPECT_EQ(update_error(def, NetworkUpdateCommand::Modify, NetworkUpdateSection::DnsHost,
                           "<host ip='10.9.0.50'><hostname>bar</hostname></host>"),
              "Operation not supported: DNS HOST records cannot be modified, only added or deleted");
    EXPECT_EQ(update_error(def, NetworkUpdateCommand::Delete, NetworkUpdateSection::DnsHost, "<host ip='10.9.0.99'/>"),
              "Requested operation is not valid: couldn't locate a matching DNS HOST record in network lab");
    ASSERT_TRUE(apply_network_update(def, {NetworkUpdateCommand::Delete, NetworkUpdateSection::DnsHost,
                                           "<host ip='10.9.0.50'/>", driver::kAnyParentIndex}));
    EXPECT_TRUE(def.dns.hosts.empty());
}

TEST(NetworkUpdate, OtherSectionsAreRefusedByName) {
    auto def = net();
    auto e = update_error(def, NetworkUpdateCommand::Modify, NetworkUpdateSection::Bridge, "<bridge name='x'/>");
    EXPECT_NE(e.find("can't update 'bridge' section of network 'lab'"), std::string::npos) << e;
}
