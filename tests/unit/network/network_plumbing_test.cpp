// The generated texts of a running network (nftables ruleset, dnsmasq
// configuration and hosts files) and the lease status contract, without
// touching the host.
#include <gtest/gtest.h>

#include "conf/network.hpp"
#include "network/dnsmasq.hpp"
#include "network/firewall.hpp"
#include "network/leases.hpp"
#include "support/support.hpp"

#include <map>

using namespace vireo;
using namespace vireo::network;

namespace {

conf::NetworkDef net(std::string_view xml) {
    auto d = conf::parse_network_xml(xml);
    EXPECT_TRUE(d) << d.error().message;
    return d ? *d : conf::NetworkDef{};
}

}  // namespace

TEST(Firewall, TableNamesEncodeAnyNetworkName) {
    EXPECT_EQ(firewall_table("default"), "vireo_net_default");
    EXPECT_EQ(firewall_table("my net_1"), "vireo_net_my_20net_5f1");
    for (std::string name : {"default", "my net_1", "a.b-c", "ünï", "x_y"}) EXPECT_EQ(network_of_table(firewall_table(name)), name);
    EXPECT_FALSE(network_of_table("filter"));
    EXPECT_FALSE(network_of_table("vireo_net_bad_z"));
    EXPECT_FALSE(network_of_table("vireo_net_bad_4"));
}

TEST(Firewall, NatRules) {
    auto def = net(R"(<network><name>default</name><forward mode='nat'/><bridge name='virbr0'/>
      <ip address='192.168.122.1' netmask='255.255.255.0'/><ip family='ipv6' address='fd00:1::1' prefix='64'/></network>)");
    const std::string r = firewall_ruleset(def);
    EXPECT_EQ(r.rfind("add table inet vireo_net_default\ndelete table inet vireo_net_default\ntable inet vireo_net_default {\n", 0), 0u) << r;
    EXPECT_NE(r.find("iifname \"virbr0\" udp dport { 53, 67, 547 } accept"), std::string::npos) << r;
    EXPECT_NE(r.find("iifname \"virbr0\" ip saddr 192.168.122.0/24 accept"), std::string::npos) << r;
    EXPECT_NE(r.find("oifname \"virbr0\" ip daddr 192.168.122.0/24 ct state established,related accept"), std::string::npos) << r;
    EXPECT_NE(r.find("oifname \"virbr0\" ip6 daddr fd00:1::/64 accept"), std::string::npos) << r;
    EXPECT_NE(r.find("ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 meta l4proto tcp masquerade to :1024-65535"), std::string::npos) << r;
    EXPECT_NE(r.find("ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 masquerade\n"), std::string::npos) << r;
    EXPECT_EQ(r.find("ip6 saddr fd00:1::/64 ip6 daddr != fd00:1::/64 masquerade"), std::string::npos) << "IPv6 is routed unless <nat ipv6='yes'>";
    EXPECT_NE(r.find("iifname \"virbr0\" oifname \"virbr0\" accept\n    iifname \"virbr0\" reject\n    oifname \"virbr0\" reject\n"), std::string::npos);
    EXPECT_TRUE(needs_ip_forwarding(def, false));
    EXPECT_TRUE(needs_ip_forwarding(def, true));
}

TEST(Firewall, NatAddressRangeAndDevice) {
    auto def = net(R"(<network><name>n</name><forward mode='nat' dev='eth9'><nat><address start='198.51.100.5' end='198.51.100.9'/>
      <port start='2000' end='3000'/></nat></forward><bridge name='vbr1'/><ip address='10.1.0.1' prefix='24'/></network>)");
    const std::string r = firewall_ruleset(def);
    EXPECT_NE(r.find("oifname \"eth9\" ip saddr 10.1.0.0/24 ip daddr != 10.1.0.0/24 meta l4proto udp snat ip to 198.51.100.5-198.51.100.9:2000-3000"),
              std::string::npos) << r;
    EXPECT_NE(r.find("iifname \"vbr1\" oifname \"eth9\" ip saddr 10.1.0.0/24 accept"), std::string::npos) << r;
}

TEST(Firewall, RouteIsolatedOpenBridge) {
    auto route = net("<network><name>r</name><forward mode='route'/><bridge name='vbr2'/><ip address='10.2.0.1' prefix='24'/></network>");
    std::string r = firewall_ruleset(route);
    EXPECT_NE(r.find("oifname \"vbr2\" ip daddr 10.2.0.0/24 accept"), std::string::npos) << r;
    EXPECT_EQ(r.find("postrouting"), std::string::npos) << r;
    auto iso = net("<network><name>i</name><bridge name='vbr3'/><ip address='10.3.0.1' prefix='24'/></network>");
    r = firewall_ruleset(iso);
    EXPECT_EQ(r.find("saddr"), std::string::npos) << r;
    EXPECT_NE(r.find("iifname \"vbr3\" reject"), std::string::npos) << r;
    EXPECT_FALSE(needs_ip_forwarding(iso, false));
    auto open = net("<network><name>o</name><forward mode='open'/><bridge name='vbr4'/><ip address='10.4.0.1' prefix='24'/></network>");
    EXPECT_EQ(firewall_ruleset(open), "");
    EXPECT_TRUE(needs_ip_forwarding(open, false)) << "open is routed (without rules): libvirt turns forwarding on for it too";
    EXPECT_FALSE(needs_ip_forwarding(open, true)) << "no IPv6 address";
    EXPECT_EQ(firewall_ruleset(net("<network><name>b</name><forward mode='bridge'/><bridge name='br0'/></network>")), "");
}

TEST(Dnsmasq, ConfigurationOfTheDefaultNetwork) {
    auto def = net(conf::kDefaultNetworkXml);
    const auto files = DnsmasqFiles::in("/run/vireo/network", "default");
    EXPECT_TRUE(needs_dnsmasq(def));
    const std::string c = dnsmasq_config(def, files, "/usr/libexec/vireo-lease-helper");
    const std::string body = c.substr(c.find("strict-order"));
    EXPECT_EQ(body, "strict-order\n"
                    "pid-file=/run/vireo/network/default.pid\n"
                    "except-interface=lo\n"
                    "bind-dynamic\n"
                    "interface=virbr0\n"
                    "dhcp-range=192.168.122.2,192.168.122.254,255.255.255.0\n"
                    "dhcp-no-override\n"
                    "dhcp-authoritative\n"
                    "no-ping\n"
                    "dhcp-lease-max=253\n"
                    "dhcp-hostsfile=/run/vireo/network/default.hostsfile\n"
                    "dhcp-leasefile=/run/vireo/network/default.leases\n"
                    "dhcp-script=/usr/libexec/vireo-lease-helper\n"
                    "script-on-renewal\n"
                    "addn-hosts=/run/vireo/network/default.addnhosts\n");
}

TEST(Dnsmasq, DnsHostsAndStaticLeases) {
    auto def = net(R"(<network><name>d</name><bridge name='vbr5'/><domain name='lab.test' localOnly='yes'/>
      <dns forwardPlainNames='no'><forwarder addr='192.0.2.53'/><forwarder domain='corp.test' addr='192.0.2.54'/>
        <txt name='t' value='say "hi"'/><srv service='ldap' protocol='tcp' target='ldap.lab.test' port='389'/>
        <host ip='10.5.0.7'><hostname>seven</hostname><hostname>sept</hostname></host></dns>
      <ip address='10.5.0.1' prefix='24'><dhcp><range start='10.5.0.100' end='10.5.0.109'><lease expiry='2' unit='hours'/></range>
        <host mac='52:54:00:00:00:07' name='guest7' ip='10.5.0.7'><lease expiry='0'/></host></dhcp></ip>
      <ip family='ipv6' address='fd00:5::1' prefix='64'><dhcp><host id='0:1:2:3' name='six' ip='fd00:5::6'/></dhcp></ip></network>)");
    const auto files = DnsmasqFiles::in("/tmp/x", "d");
    const std::string c = dnsmasq_config(def, files, "");
    for (const char* line : {"domain=lab.test\n", "expand-hosts\n", "local=/lab.test/\n", "domain-needed\nlocal=//\n", "server=192.0.2.53\n",
                             "server=/corp.test/192.0.2.54\n", "no-resolv\n", "srv-host=_ldap._tcp,ldap.lab.test,389\n", "txt-record=t,\"say \\\"hi\\\"\"\n",
                             "dhcp-range=10.5.0.100,10.5.0.109,255.255.255.0,7200\n", "dhcp-range=fd00:5::,static,64\n", "dhcp-lease-max=12\n", "enable-ra\n"})
        EXPECT_NE(c.find(line), std::string::npos) << line << "\n" << c;
    EXPECT_EQ(c.find("dhcp-script"), std::string::npos);
    EXPECT_EQ(dnsmasq_hostsfile(def), "52:54:00:00:00:07,10.5.0.7,guest7,infinite\nid:0:1:2:3,six,[fd00:5::6]\n");
    EXPECT_EQ(dnsmasq_addnhosts(def), "10.5.0.7\tseven sept\n");

    auto nodns = net("<network><name>n</name><dns enable='no'/><ip address='10.6.0.1' prefix='24'/></network>");
    EXPECT_TRUE(needs_dnsmasq(nodns) == false);
    auto dhcp_only = net("<network><name>n</name><dns enable='no'/><ip address='10.6.0.1' prefix='24'><dhcp><range start='10.6.0.5' end='10.6.0.6'/></dhcp></ip></network>");
    EXPECT_TRUE(needs_dnsmasq(dhcp_only));
    EXPECT_NE(dnsmasq_config(dhcp_only, files, "").find("port=0\n"), std::string::npos);
}

TEST(Leases, DnsmasqEventsMaintainTheStatusFile) {
    test::TempDir dir;
    const auto status = dir / "net.status";
    static std::map<std::string, std::string> env;
    env = {{"DNSMASQ_LEASE_EXPIRES", "2000"}, {"DNSMASQ_INTERFACE", "virbr0"}, {"DNSMASQ_CLIENT_ID", "01:52:54:00:00:00:01"}};
    EnvLookup lookup = [](const char* n) -> const char* {
        auto it = env.find(n);
        return it == env.end() ? nullptr : it->second.c_str();
    };
    auto ev = lease_event_from_dnsmasq({"add", "52:54:00:00:00:01", "10.0.0.5", "alpha"}, lookup, 1000);
    ASSERT_TRUE(ev && *ev);
    ASSERT_TRUE(apply_lease_event(status, **ev, 1000));
    env = {{"DNSMASQ_TIME_REMAINING", "60"}, {"DNSMASQ_IAID", "77"}, {"DNSMASQ_MAC", "52:54:00:00:00:02"}};
    ev = lease_event_from_dnsmasq({"add", "00:01:00:01:aa", "fd00::5"}, lookup, 1000);
    ASSERT_TRUE(ev && *ev);
    ASSERT_TRUE(apply_lease_event(status, **ev, 1000));
    auto leases = read_leases(status);
    ASSERT_TRUE(leases);
    ASSERT_EQ(leases->size(), 2u);
    EXPECT_EQ((*leases)[0].ip, "10.0.0.5");
    EXPECT_EQ((*leases)[0].mac, "52:54:00:00:00:01");
    EXPECT_EQ((*leases)[0].hostname, "alpha");
    EXPECT_EQ((*leases)[0].expiry_time, 2000);
    EXPECT_EQ((*leases)[0].interface, "virbr0");
    EXPECT_EQ((*leases)[1].client_id, "00:01:00:01:aa");
    EXPECT_EQ((*leases)[1].iaid, "77");
    EXPECT_EQ((*leases)[1].expiry_time, 1060);

    // Renewal replaces, del removes, expired leases are dropped.
    env = {{"DNSMASQ_LEASE_EXPIRES", "5000"}};
    ev = lease_event_from_dnsmasq({"old", "52:54:00:00:00:01", "10.0.0.5", "alpha"}, lookup, 1500);
    ASSERT_TRUE(apply_lease_event(status, **ev, 1500));  // the IPv6 lease (expiry 1060) is gone now
    leases = read_leases(status);
    ASSERT_EQ(leases->size(), 1u);
    EXPECT_EQ((*leases)[0].expiry_time, 5000);
    ev = lease_event_from_dnsmasq({"del", "52:54:00:00:00:01", "10.0.0.5"}, lookup, 1500);
    ASSERT_TRUE(apply_lease_event(status, **ev, 1500));
    EXPECT_TRUE(read_leases(status)->empty());

    ev = lease_event_from_dnsmasq({"tftp", "1234", "10.0.0.5", "/file"}, lookup, 0);
    ASSERT_TRUE(ev);
    EXPECT_FALSE(*ev) << "tftp events change no lease";
    EXPECT_FALSE(lease_event_from_dnsmasq({"add", "52:54:00:00:00:01"}, lookup, 0));
    EXPECT_NE(lease_event_json("default", LeaseEvent{"add", Lease{"10.0.0.9", "52:54:00:00:00:09", "h", "", "", "", 7}}).find("\"network\":\"default\""),
              std::string::npos);
}
