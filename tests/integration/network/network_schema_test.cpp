// libvirt's own schemas as the oracle: every network and interface document
// vireo formats passes virt-xml-validate (libvirt-clients) against
// network.rng / interface.rng.
#include <gtest/gtest.h>

#include <fstream>

#include <fmt/format.h>

#include "conf/interface.hpp"
#include "conf/network.hpp"
#include "support/support.hpp"

using namespace vireo;

namespace {

const char* const kNetworks[] = {
    nullptr,  // kDefaultNetworkXml
    R"(<network><name>nat-ranges</name><forward mode='nat'><nat><address start='198.51.100.10' end='198.51.100.20'/>
       <port start='2000' end='3000'/></nat></forward><ip address='10.10.0.1' netmask='255.255.0.0'/></network>)",
    R"(<network><name>routed</name><forward mode='route' dev='eth1'/><bridge name='virbr7' stp='off' delay='2'/><mtu size='9000'/>
       <ip address='192.168.70.1' prefix='24'/><route address='192.168.80.0' prefix='24' gateway='192.168.70.2' metric='3'/></network>)",
    R"(<network><name>isolated</name><ip address='10.11.0.1' prefix='24'><dhcp><range start='10.11.0.10' end='10.11.0.99'/></dhcp></ip></network>)",
    R"(<network><name>open</name><forward mode='open'/><ip address='10.12.0.1' prefix='24'/></network>)",
    R"(<network><name>host-bridge</name><forward mode='bridge'/><bridge name='br0'/></network>)",
    R"(<network ipv6='yes'><name>v6</name><forward mode='nat'><nat ipv6='yes'/></forward><ip family='ipv6' address='fd00:13::1' prefix='64'>
       <dhcp><range start='fd00:13::100' end='fd00:13::1ff'><lease expiry='2' unit='hours'/></range>
       <host id='0:4:7e:7d:f0:7d:a8:bc:c5:d2:13:32:11:ed:16:ea:84:63' name='six' ip='fd00:13::6'/></dhcp></ip></network>)",
    R"(<network><name>dns</name><forward mode='nat'/><domain name='lab.test' localOnly='yes'/>
       <dns forwardPlainNames='no'><forwarder addr='192.0.2.53'/><forwarder domain='corp.test' addr='192.0.2.54'/><forwarder domain='x.test'/>
       <txt name='example' value='some text'/><srv service='ldap' protocol='tcp' domain='lab.test' target='ldap.lab.test' port='389' priority='1' weight='5'/>
       <host ip='10.14.0.7'><hostname>seven</hostname><hostname>sept</hostname></host></dns>
       <ip address='10.14.0.1' prefix='24'><dhcp><range start='10.14.0.10' end='10.14.0.20'/>
       <host mac='52:54:00:14:00:07' name='seven' ip='10.14.0.7'><lease expiry='0'/></host><host name='named' ip='10.14.0.8'/></dhcp></ip></network>)",
    R"(<network><name>nodns</name><dns enable='no'/><ip address='10.15.0.1' prefix='24'><dhcp><range start='10.15.0.5' end='10.15.0.9'/></dhcp></ip></network>)",
    R"(<network trustGuestRxFilters='no'><name>shaped</name><forward mode='nat'/><bandwidth><inbound average='1000' peak='5000' burst='1024'/>
       <outbound average='2000'/></bandwidth><mac address='52:54:00:16:00:01'/><ip address='10.16.0.1' prefix='24'/></network>)",
    R"(<network><name>pxe</name><forward mode='nat' dev='eth0'/><ip address='10.17.0.1' netmask='255.255.255.0' localPtr='yes'><tftp root='/srv/tftp'/>
       <dhcp><range start='10.17.0.10' end='10.17.0.50'/><bootp file='pxelinux.0' server='10.17.0.1'/></dhcp></ip></network>)",
    R"(<network><name>dual</name><forward mode='route'/><bridge name='vbr%d'/><ip address='10.18.0.1' prefix='24'/>
       <ip family='ipv6' address='2001:db8:18::1' prefix='64'/></network>)",
};

const char* const kInterfaces[] = {
    R"(<interface type='bridge' name='br0'><start mode='onboot'/><mtu size='1500'/><protocol family='ipv4'><ip address='192.0.2.10' prefix='24'/>
       <route gateway='192.0.2.1'/></protocol><protocol family='ipv6'><autoconf/><ip address='2001:db8::10' prefix='64'/></protocol>
       <bridge stp='off' delay='0.01'><interface type='ethernet' name='eth0'><mac address='52:54:00:aa:bb:cc'/></interface></bridge></interface>)",
    R"(<interface type='ethernet' name='eth1'><start mode='hotplug'/><mac address='52:54:00:aa:bb:cd'/><protocol family='ipv4'><dhcp peerdns='yes'/></protocol></interface>)",
    R"(<interface type='bond' name='bond0'><start mode='none'/><protocol family='ipv4'><dhcp/></protocol><bond mode='active-backup'>
       <miimon freq='100' updelay='10' carrier='ioctl'/><interface type='ethernet' name='eth2'/><interface type='ethernet' name='eth3'/></bond></interface>)",
    R"(<interface type='bond' name='bond1'><bond mode='balance-xor'><arpmon interval='100' target='192.0.2.1' validate='active'/>
       <interface type='ethernet' name='eth4'/></bond></interface>)",
    R"(<interface type='vlan' name='eth0.42'><protocol family='ipv6'><ip address='2001:db8:42::2' prefix='64'/><route gateway='2001:db8:42::1'/></protocol>
       <vlan tag='42'><interface name='eth0'/></vlan></interface>)",
    R"(<interface type='bridge' name='br1'><bridge><interface type='vlan' name='eth5.7'><vlan tag='7'><interface name='eth5'/></vlan></interface>
       <interface type='bond' name='bond2'><bond><interface type='ethernet' name='eth6'/></bond></interface></bridge></interface>)",
};

class NetworkSchema : public ::testing::Test {
protected:
    void SetUp() override {
        if (test::which("virt-xml-validate").empty()) VIREO_SKIP("virt-xml-validate (Debian package libvirt-clients) is not installed");
    }
    // "" when valid, else the validator's report and the document.
    std::string schema_errors(const std::string& xml, const char* schema) {
        const auto p = dir_ / fmt::format("doc{}.xml", n_++);
        std::ofstream(p) << xml;
        auto r = test::run({"virt-xml-validate", p.string(), schema});
        return r.exit_code == 0 ? std::string() : r.out + r.err + "\n" + xml;
    }
    test::TempDir dir_;
    int n_ = 0;
};

}  // namespace

TEST_F(NetworkSchema, FormattedNetworksValidate) {
    for (const char* doc : kNetworks) {
        auto def = conf::parse_network_xml(doc ? std::string_view(doc) : conf::kDefaultNetworkXml);
        ASSERT_TRUE(def) << def.error().full_message() << "\n" << (doc ? doc : "default");
        ASSERT_TRUE(conf::assign_network_defaults(*def, {.bridges = {"virbr0"}, .macs = {}}));
        const std::string out = conf::format_network_xml(*def);
        EXPECT_EQ(schema_errors(out, "network"), "");
        auto again = conf::parse_network_xml(out);
        ASSERT_TRUE(again) << again.error().full_message();
        EXPECT_EQ(conf::format_network_xml(*again), out) << "not a fixed point";
    }
}

TEST_F(NetworkSchema, FormattedInterfacesValidate) {
    for (const char* doc : kInterfaces) {
        auto def = conf::parse_interface_xml(doc);
        ASSERT_TRUE(def) << def.error().full_message() << "\n" << doc;
        const std::string out = conf::format_interface_xml(*def);
        EXPECT_EQ(schema_errors(out, "interface"), "");
        auto again = conf::parse_interface_xml(out);
        ASSERT_TRUE(again) << again.error().full_message();
        EXPECT_EQ(conf::format_interface_xml(*again), out) << "not a fixed point";
    }
}
