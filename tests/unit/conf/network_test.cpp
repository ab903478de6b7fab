// The network XML model: libvirt's documents parse, format in net-dumpxml's
// order with libvirt's defaults, round-trip as a fixed point, and every
// refusal names the field (and line) it is about.
#include <gtest/gtest.h>

#include <filesystem>

#include "conf/network.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::conf;

namespace {

NetworkDef parse_ok(std::string_view xml) {
    auto def = parse_network_xml(xml);
    EXPECT_TRUE(def) << (def ? "" : def.error().message) << "\n" << xml;
    return def ? *def : NetworkDef{};
}

std::string parse_error(std::string_view xml) {
    auto def = parse_network_xml(xml);
    EXPECT_FALSE(def) << "accepted:\n" << xml;
    return def ? std::string() : def.error().message;
}

// format(parse(format(parse(x)))) == format(parse(x))
void expect_fixed_point(const NetworkDef& def) {
    const std::string once = format_network_xml(def);
    auto again = parse_network_xml(once);
    ASSERT_TRUE(again) << again.error().message << "\n" << once;
    EXPECT_EQ(format_network_xml(*again), once);
}

}  // namespace

TEST(NetworkXml, DefaultNetworkAsLibvirtDumpsIt) {
    NetworkDef def = parse_ok(kDefaultNetworkXml);
    ASSERT_TRUE(assign_network_defaults(def, {}));
    ASSERT_TRUE(def.mac);
    EXPECT_EQ(def.mac->str().substr(0, 9), "52:54:00:");
    EXPECT_EQ(format_network_xml(def), fmt::format(R"(<network>
  <name>default</name>
  <uuid>{}</uuid>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='{}'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
)", def.uuid.str(), def.mac->str()));
    expect_fixed_point(def);
}

// libvirt's own net-dumpxml output (tests/data/conf/network-libvirt) comes
// back byte for byte: every forward mode, <forward mode='nat'/> without a
// port range, a childless <ip> as two tags.
TEST(NetworkXml, LibvirtDumpsAreReproducedByteForByte) {
    std::size_t seen = 0;
    for (const auto& e : std::filesystem::directory_iterator(test::source_dir() / "tests/data/conf/network-libvirt")) {
        if (e.path().extension() != ".xml") continue;
        ++seen;
        auto text = files::read(e.path());
        ASSERT_TRUE(text) << e.path();
        NetworkDef def = parse_ok(*text);
        EXPECT_EQ(format_network_xml(def) + "\n", *text) << e.path();  // virsh adds a blank line
    }
    EXPECT_EQ(seen, 6u);
}

TEST(NetworkXml, NatWithoutPortRangeMasqueradesToLibvirtsDefault) {
    NetworkDef def = parse_ok("<network><name>n</name><forward mode='nat'/><ip address='10.4.0.1' prefix='24'/></network>");
    EXPECT_EQ(def.forward.nat.port_start, 0u);
    EXPECT_NE(format_network_xml(def).find("<forward mode='nat'/>\n"), std::string::npos);
    EXPECT_NE(format_network_xml(def).find("<ip address='10.4.0.1' prefix='24'>\n  </ip>\n"), std::string::npos);
}

TEST(NetworkXml, BridgeNameAndMacAreGeneratedAvoidingNamesInUse) {
    NetworkDef def = parse_ok("<network><name>n1</name><forward mode='route'/><ip address='10.1.0.1' prefix='24'/></network>");
    EXPECT_TRUE(def.bridge.name.empty());
    EXPECT_FALSE(def.uuid.is_null());
    NetworkNamesInUse in_use;
    in_use.bridges = {"virbr0", "virbr1", "eth0"};
    ASSERT_TRUE(assign_network_defaults(def, in_use));
    EXPECT_EQ(def.bridge.name, "virbr2");
    ASSERT_TRUE(def.mac);
    const auto mac = *def.mac;
    ASSERT_TRUE(assign_network_defaults(def, in_use));  // idempotent
    EXPECT_EQ(def.bridge.name, "virbr2");
    EXPECT_EQ(*def.mac, mac);

    NetworkDef tmpl = parse_ok("<network><name>t</name><bridge name='vbr%d'/></network>");
    ASSERT_TRUE(assign_network_defaults(tmpl, {.bridges = {"vbr0"}, .macs = {}}));
    EXPECT_EQ(tmpl.bridge.name, "vbr1");

    NetworkDef host_bridge = parse_ok("<network><name>hb</name><forward mode='bridge'/><bridge name='br0'/></network>");
    ASSERT_TRUE(assign_network_defaults(host_bridge, {}));
    EXPECT_FALSE(host_bridge.mac) << "no MAC for a bridge vireo does not create";
}

TEST(NetworkXml, RoutedWithDevListsTheInterface) {
    NetworkDef def = parse_ok(R"(<network>
  <name>routed</name>
  <uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
  <forward mode='route' dev='eth1'/>
  <bridge name='virbr9' stp='off' delay='2'/>
  <mtu size='9000'/>
  <mac address='52:54:00:AA:BB:CC'/>
  <ip address='192.168.10.1' prefix='24'/>
  <route address='192.168.20.0' prefix='24' gateway='192.168.10.2' metric='5'/>
</network>)");
    EXPECT_EQ(format_network_xml(def), R"(<network>
  <name>routed</name>
  <uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
  <forward dev='eth1' mode='route'>
    <interface dev='eth1'/>
  </forward>
  <bridge name='virbr9' stp='off' delay='2'/>
  <mtu size='9000'/>
  <mac address='52:54:00:aa:bb:cc'/>
  <ip address='192.168.10.1' prefix='24'>
  </ip>
  <route address='192.168.20.0' prefix='24' gateway='192.168.10.2' metric='5'/>
</network>
)");
    expect_fixed_point(def);
}

TEST(NetworkXml, NatWithAddressAndPortRanges) {
    NetworkDef def = parse_ok(R"(<network>
  <name>natted</name>
  <forward mode='nat'>
    <nat ipv6='no'>
      <address start='198.51.100.10' end='198.51.100.20'/>
      <port start='20000' end='30000'/>
    </nat>
  </forward>
  <ip address='10.20.0.1' netmask='255.255.0.0'/>
</network>)");
    EXPECT_EQ(def.forward.nat.port_start, 20000u);
    const std::string out = format_network_xml(def);
    EXPECT_NE(out.find("<nat ipv6='no'>\n      <address start='198.51.100.10' end='198.51.100.20'/>\n      <port start='20000' end='30000'/>\n    </nat>"),
              std::string::npos) << out;
    expect_fixed_point(def);
}

TEST(NetworkXml, IsolatedOpenAndHostBridge) {
    NetworkDef iso = parse_ok("<network><name>iso</name><bridge name='vbr-iso'/><ip address='10.9.0.1' prefix='24'/></network>");
    EXPECT_EQ(iso.forward.mode, ForwardMode::None);
    EXPECT_NE(format_network_xml(iso).find("<bridge name='vbr-iso' stp='on' delay='0'/>"), std::string::npos);
    EXPECT_EQ(format_network_xml(iso).find("<forward"), std::string::npos);
    expect_fixed_point(iso);

    NetworkDef open = parse_ok("<network><name>o</name><forward mode='open'/><ip address='10.8.0.1' prefix='24'/></network>");
    EXPECT_NE(format_network_xml(open).find("<forward mode='open'/>"), std::string::npos);
    expect_fixed_point(open);

    NetworkDef hb = parse_ok("<network><name>hb</name><forward mode='bridge'/><bridge name='br0'/></network>");
    const std::string out = format_network_xml(hb);
    EXPECT_NE(out.find("<forward mode='bridge'/>\n  <bridge name='br0'/>"), std::string::npos) << out;
    expect_fixed_point(hb);
}

TEST(NetworkXml, Ipv6DhcpDnsDomainAndBandwidth) {
    NetworkDef def = parse_ok(R"(<network ipv6='yes'>
  <name>full</name>
  <forward mode='nat'/>
  <domain name='example.test' localOnly='yes'/>
  <dns forwardPlainNames='no'>
    <forwarder addr='192.0.2.53'/>
    <forwarder domain='corp.test' addr='192.0.2.54'/>
    <forwarder domain='local.test'/>
    <txt name='example' value='example value'/>
    <srv service='name' protocol='tcp' domain='test-domain-name' target='.' port='1024' priority='10' weight='10'/>
    <host ip='192.168.122.2'>
      <hostname>myhost</hostname>
      <hostname>myhostalias</hostname>
    </host>
  </dns>
  <bandwidth>
    <inbound average='1000' peak='5000' burst='1024'/>
    <outbound average='2000'/>
  </bandwidth>
  <ip address='192.168.122.1' netmask='255.255.255.0' localPtr='yes'>
    <tftp root='/srv/tftp'/>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'>
        <lease expiry='1' unit='hours'/>
      </range>
      <host mac='00:16:3E:77:E2:ED' name='a.example.com' ip='192.168.122.10'/>
      <host name='b' ip='192.168.122.11'>
        <lease expiry='30'/>
      </host>
      <bootp file='pxelinux.0' server='192.168.122.1'/>
    </dhcp>
  </ip>
  <ip family='ipv6' address='2001:db8:ca2:2::1' prefix='64'>
    <dhcp>
      <range start='2001:db8:ca2:2:1::10' end='2001:db8:ca2:2:1::ff'/>
      <host id='0:4:7e:7d:f0:7d:a8:bc:c5:d2:13:32:11:ed:16:ea:84:63' name='paul' ip='2001:db8:ca2:2:3::4'/>
    </dhcp>
  </ip>
</network>)");
    ASSERT_EQ(def.ips.size(), 2u);
    EXPECT_EQ(def.ips[0].hosts[0].mac, "00:16:3e:77:e2:ed");
    EXPECT_EQ(def.ips[0].hosts[1].lease->unit, "minutes");
    EXPECT_TRUE(def.dhcp_ip(true));
    const std::string out = format_network_xml(def);
    EXPECT_NE(out.find("<network ipv6='yes'>"), std::string::npos);
    EXPECT_NE(out.find("<domain name='example.test' localOnly='yes'/>\n  <dns forwardPlainNames='no'>\n    <forwarder addr='192.0.2.53'/>\n"
                       "    <forwarder domain='corp.test' addr='192.0.2.54'/>"), std::string::npos) << out;
    EXPECT_NE(out.find("<lease expiry='30' unit='minutes'/>"), std::string::npos) << out;
    EXPECT_NE(out.find("</dns>\n  <bandwidth>\n    <inbound average='1000' peak='5000' burst='1024'/>"), std::string::npos) << out;
    EXPECT_NE(out.find("<ip family='ipv6' address='2001:db8:ca2:2::1' prefix='64'>"), std::string::npos) << out;
    expect_fixed_point(def);
}

TEST(NetworkXml, DnsDisabled) {
    NetworkDef def = parse_ok("<network><name>nodns</name><dns enable='no'/><ip address='10.3.0.1' prefix='24'><dhcp><range start='10.3.0.10' end='10.3.0.20'/></dhcp></ip></network>");
    EXPECT_NE(format_network_xml(def).find("<dns enable='no'/>"), std::string::npos);
    expect_fixed_point(def);
    EXPECT_NE(parse_error("<network><name>x</name><dns enable='no'><host ip='10.0.0.5'><hostname>a</hostname></host></dns></network>")
                  .find("/network/dns"), std::string::npos);
}

TEST(NetworkXml, RefusalsNameTheFieldAndLine) {
    std::string e = parse_error(R"(<network>
  <name>overlap</name>
  <ip address='10.0.0.1' prefix='16'/>
  <ip address='10.0.5.1' prefix='24'/>
</network>)");
    EXPECT_NE(e.find("line 4: /network/ip[2]/@address: subnet 10.0.5.0/24 overlaps subnet 10.0.0.0/16"), std::string::npos) << e;

    e = parse_error(R"(<network>
  <name>range</name>
  <ip address='192.168.1.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.1.2' end='192.168.2.9'/>
    </dhcp>
  </ip>
</network>)");
    EXPECT_NE(e.find("line 5: /network/ip/dhcp/range/@end: DHCP range 192.168.1.2 - 192.168.2.9 is not within the subnet 192.168.1.0/24"),
              std::string::npos) << e;

    e = parse_error("<network><name>h</name><ip address='10.0.0.1' prefix='24'><dhcp><host mac='52:54:00:00:00:01' ip='10.0.1.5'/></dhcp></ip></network>");
    EXPECT_NE(e.find("/network/ip/dhcp/host/@ip: static host address 10.0.1.5 is not within the subnet 10.0.0.0/24"), std::string::npos) << e;

    e = parse_error("<network><name>h</name><ip address='10.0.0.1' prefix='24'><dhcp><host mac='52:54:00:00:00:01' ip='10.0.0.5'/>"
                    "<host mac='52:54:00:00:00:01' ip='10.0.0.6'/></dhcp></ip></network>");
    EXPECT_NE(e.find("/network/ip/dhcp/host[2]/@mac: MAC address 52:54:00:00:00:01 is already used"), std::string::npos) << e;

    e = parse_error("<network><name>p</name>\n<portgroup name='x'/></network>");
    EXPECT_NE(e.find("unsupported configuration: line 2: /network/portgroup"), std::string::npos) << e;

    e = parse_error("<network><name>p</name><forward mode='hostdev'/></network>");
    EXPECT_NE(e.find("/network/forward/@mode: forward mode 'hostdev' is not supported by vireo"), std::string::npos) << e;

    e = parse_error("<network><name>p</name><bridge name='br0' colour='red'/></network>");
    EXPECT_NE(e.find("/network/bridge/@colour"), std::string::npos) << e;

    e = parse_error("<network><name>p</name><forward mode='bridge'/></network>");
    EXPECT_NE(e.find("/network/bridge/@name"), std::string::npos) << e;

    e = parse_error("<network><name>p</name><forward mode='bridge'/><bridge name='br0' stp='on'/></network>");
    EXPECT_NE(e.find("/network/bridge/@stp"), std::string::npos) << e;

    e = parse_error("<network><name>p</name><ip family='ipv6' address='fd00::1' prefix='64'><dhcp><host mac='52:54:00:00:00:01' ip='fd00::5'/></dhcp></ip></network>");
    EXPECT_NE(e.find("/network/ip/dhcp/host/@mac"), std::string::npos) << e;

    e = parse_error("<network><name>p</name><ip address='10.0.0.1' prefix='24'><dhcp/></ip><ip address='10.1.0.1' prefix='24'><dhcp/></ip></network>");
    EXPECT_NE(e.find("/network/ip[2]/dhcp: only one IPv4 <ip> of a network may have <dhcp>"), std::string::npos) << e;

    e = parse_error("<network><name>p</name><ip address='10.0.0.1' prefix='24'><dhcp><range start='10.0.0.9' end='10.0.0.3'/></dhcp></ip></network>");
    EXPECT_NE(e.find("/network/ip/dhcp/range/@end: DHCP range end 10.0.0.3 is before its start 10.0.0.9"), std::string::npos) << e;

    e = parse_error("<network><name>p</name><forward mode='nat'><nat><port start='3000' end='2000'/></nat></forward></network>");
    EXPECT_NE(e.find("/network/forward/nat/port/@end"), std::string::npos) << e;

    e = parse_error("<network><name>p</name><ip address='10.0.0.1' prefix='24'/><ip address='10.0.0.300' prefix='24'/></network>");
    EXPECT_NE(e.find("/network/ip[2]/@address: invalid IP address '10.0.0.300'"), std::string::npos) << e;

    e = parse_error("<network><name>p</name><ip family='ipv4' address='fd00::1'/></network>");
    EXPECT_NE(e.find("/network/ip/@address"), std::string::npos) << e;

    e = parse_error("<network><name>a/b</name></network>");
    EXPECT_NE(e.find("/network/name"), std::string::npos) << e;

    e = parse_error("<network><name>p</name><bridge name='averyveryverylongname0'/></network>");
    EXPECT_NE(e.find("/network/bridge/@name: invalid interface name"), std::string::npos) << e;

    e = parse_error("<network><name>p</name><mac address='01:00:5e:00:00:01'/></network>");
    EXPECT_NE(e.find("/network/mac/@address"), std::string::npos) << e;

    e = parse_error("<network><name>p</name><bandwidth><inbound peak='10'/></bandwidth></network>");
    EXPECT_NE(e.find("/network/bandwidth/inbound/@average"), std::string::npos) << e;

    e = parse_error("<domain/>");
    EXPECT_NE(e.find("expected root element <network>"), std::string::npos) << e;
}

TEST(NetworkXml, ConflictsWithOtherNetworksAndTheHost) {
    NetworkDef a = parse_ok("<network><name>a</name><bridge name='virbr5'/><ip address='10.50.0.1' prefix='16'/></network>");
    NetworkDef b = parse_ok("<network><name>b</name><bridge name='virbr6'/><ip address='10.50.7.1' prefix='24'/></network>");
    NetworkDef c = parse_ok("<network><name>c</name><bridge name='virbr5'/><ip address='10.60.0.1' prefix='24'/></network>");
    auto r = check_network_conflicts(b, {a}, {});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("/network/ip/@address: subnet 10.50.7.0/24 overlaps subnet 10.50.0.0/16 of network 'a'"), std::string::npos)
        << r.error().message;
    r = check_network_conflicts(c, {a}, {});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("/network/bridge/@name: bridge name 'virbr5' is already used by network 'a'"), std::string::npos);
    r = check_network_conflicts(a, {}, {"eth0", "virbr5"});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("/network/bridge/@name: bridge name 'virbr5' is already in use by a host interface"), std::string::npos);
    EXPECT_TRUE(check_network_conflicts(a, {a}, {})) << "a network does not conflict with itself";
    EXPECT_TRUE(check_network_conflicts(c, {b}, {"eth0"}));
}

TEST(NetworkAddr, SubnetArithmetic) {
    auto a = *IpAddr::parse("192.168.122.77");
    EXPECT_EQ(a.network(24).str(), "192.168.122.0");
    EXPECT_EQ(a.last(24).str(), "192.168.122.255");
    EXPECT_EQ(a.network(20).str(), "192.168.112.0");
    EXPECT_TRUE(a.contains(*IpAddr::parse("192.168.122.1"), 24));
    EXPECT_FALSE(a.contains(*IpAddr::parse("192.168.123.1"), 24));
    EXPECT_EQ(*netmask_prefix(*IpAddr::parse("255.255.240.0")), 20u);
    EXPECT_FALSE(netmask_prefix(*IpAddr::parse("255.0.255.0")));
    EXPECT_EQ(prefix_netmask_v4(24).str(), "255.255.255.0");
    EXPECT_EQ(range_size(*IpAddr::parse("192.168.122.2"), *IpAddr::parse("192.168.122.254")), 253u);
    auto v6 = *IpAddr::parse("2001:DB8:0:0::1");
    EXPECT_EQ(v6.str(), "2001:db8::1");
    EXPECT_EQ(v6.network(32).str(), "2001:db8::");
    EXPECT_TRUE(subnets_overlap(v6, 64, *IpAddr::parse("2001:db8::"), 32));
    EXPECT_FALSE(subnets_overlap(a, 8, v6, 8));
    EXPECT_EQ(*classful_prefix(*IpAddr::parse("10.1.2.3")), 8u);
    EXPECT_EQ(MacAddr::parse("52-54-00-AB-cd-0f")->str(), "52:54:00:ab:cd:0f");
    EXPECT_FALSE(MacAddr::parse("52:54:00:ab:cd"));
    EXPECT_FALSE(MacAddr::parse("52:54:00:ab:cd:0f:"));
}
