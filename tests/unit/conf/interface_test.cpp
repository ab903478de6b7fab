// The host interface XML model (iface-define / iface-dumpxml).
#include <gtest/gtest.h>

#include "conf/interface.hpp"

using namespace vireo::conf;

namespace {

InterfaceDef parse_ok(std::string_view xml) {
    auto def = parse_interface_xml(xml);
    EXPECT_TRUE(def) << (def ? "" : def.error().message);
    if (def) {
        const std::string once = format_interface_xml(*def);
        auto again = parse_interface_xml(once);
        EXPECT_TRUE(again) << once;
        if (again) {
            EXPECT_EQ(format_interface_xml(*again), once);
        }
    }
    return def ? *def : InterfaceDef{};
}

std::string parse_error(std::string_view xml) {
    auto def = parse_interface_xml(xml);
    EXPECT_FALSE(def) << xml;
    return def ? std::string() : def.error().message;
}

}  // namespace

TEST(InterfaceXml, BridgeWithPortsAndAddresses) {
    auto def = parse_ok(R"(<interface type='bridge' name='br0'>
  <start mode='onboot'/>
  <mtu size='1500'/>
  <protocol family='ipv4'>
    <ip address='192.0.2.10' prefix='24'/>
    <route gateway='192.0.2.1'/>
  </protocol>
  <protocol family='ipv6'>
    <autoconf/>
    <ip address='2001:db8::10' prefix='64'/>
  </protocol>
  <bridge stp='off' delay='0.01'>
    <interface type='ethernet' name='eth0'>
      <mac address='AB:BB:CC:DD:EE:FF'/>
    </interface>
    <interface type='vlan' name='eth1.42'>
      <vlan tag='42'><interface name='eth1'/></vlan>
    </interface>
  </bridge>
</interface>)");
    EXPECT_EQ(def.members.size(), 2u);
    EXPECT_EQ(format_interface_xml(def), R"(<interface type='bridge' name='br0'>
  <start mode='onboot'/>
  <mtu size='1500'/>
  <protocol family='ipv4'>
    <ip address='192.0.2.10' prefix='24'/>
    <route gateway='192.0.2.1'/>
  </protocol>
  <protocol family='ipv6'>
    <autoconf/>
    <ip address='2001:db8::10' prefix='64'/>
  </protocol>
  <bridge stp='off' delay='0.01'>
    <interface type='ethernet' name='eth0'>
      <mac address='ab:bb:cc:dd:ee:ff'/>
    </interface>
    <interface type='vlan' name='eth1.42'>
      <vlan tag='42'>
        <interface name='eth1'/>
      </vlan>
    </interface>
  </bridge>
</interface>
)");
}

TEST(InterfaceXml, EthernetBondAndVlan) {
    auto eth = parse_ok("<interface type='ethernet' name='eth2'><start mode='none'/><protocol family='ipv4'><dhcp peerdns='no'/></protocol></interface>");
    EXPECT_TRUE(eth.protocol("ipv4")->dhcp);
    auto bond = parse_ok(R"(<interface type='bond' name='bond0'>
  <bond mode='active-backup'>
    <miimon freq='100' updelay='10' carrier='ioctl'/>
    <interface type='ethernet' name='eth3'/>
    <interface type='ethernet' name='eth4'/>
  </bond>
</interface>)");
    EXPECT_EQ(bond.members.size(), 2u);
    auto vlan = parse_ok("<interface type='vlan'><vlan tag='7'><interface name='eth0'/></vlan></interface>");
    EXPECT_EQ(vlan.name, "eth0.7");
}

TEST(InterfaceXml, Refusals) {
    EXPECT_NE(parse_error("<interface type='bridge' name='br0'/>").find("missing <bridge>"), std::string::npos);
    EXPECT_NE(parse_error("<interface type='bond' name='b'><bond/></interface>").find("/interface/bond"), std::string::npos);
    EXPECT_NE(parse_error("<interface type='vlan' name='v'><vlan tag='5000'><interface name='eth0'/></vlan></interface>").find("/interface/vlan/@tag"),
              std::string::npos);
    EXPECT_NE(parse_error("<interface type='ethernet' name='e'><protocol family='ipv4'><ip address='fd00::1'/></protocol></interface>")
                  .find("/interface/protocol/ip/@address"), std::string::npos);
    EXPECT_NE(parse_error("<interface type='ethernet' name='e'>\n<foo/></interface>").find("line 2: /interface/foo"), std::string::npos);
    EXPECT_NE(parse_error("<interface type='bridge' name='b'><bridge><interface type='ethernet' name='x'><mtu size='1500'/></interface></bridge></interface>")
                  .find("/interface/bridge/interface/mtu"), std::string::npos);
    EXPECT_NE(parse_error("<interface type='ethernet'/>").find("/interface/@name"), std::string::npos);
}
