// The host side of virtual networks, for real, inside network namespaces
// these tests create: netlink devices and addresses, taps, dnsmasq with a
// DHCP client and DNS lookups, and the nftables rules of each forward mode
// checked with TCP connections between namespaces.
#include <gtest/gtest.h>

#include <sched.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "conf/network.hpp"
#include "netns.hpp"
#include "network/dnsmasq.hpp"
#include "network/firewall.hpp"
#include "network/host_network.hpp"
#include "network/leases.hpp"
#include "network/netlink.hpp"
#include "network/tap.hpp"

using namespace vireo;
using namespace vireo::network;
using conf::IpAddr;
using conf::MacAddr;

namespace {

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

bool has_address(std::string_view link, const char* addr, unsigned prefix) {
    auto addrs = list_addresses(link);
    if (!addrs) return false;
    for (const auto& a : *addrs)
        if (a.address == ip(addr) && a.prefix == prefix) return true;
    return false;
}

conf::NetworkDef make_network(std::string_view xml) {
    auto def = conf::parse_network_xml(xml);
    EXPECT_TRUE(def) << def.error().full_message();
    if (!def) return {};
    EXPECT_TRUE(conf::assign_network_defaults(*def, {}));
    return *def;
}

std::string ruleset() {
    auto r = nft_run("list ruleset\n");
    EXPECT_TRUE(r) << r.error().full_message();
    return r ? *r : std::string("<error>");
}

// A veth pair whose `inner` end is moved into `ns` (the outer end stays in
// the calling thread's namespace), both up.
void link_namespace(const std::string& outer, const std::string& inner, const test::NetNs& ns) {
    ASSERT_TRUE(create_veth(outer, inner));
    ASSERT_TRUE(move_to_netns(inner, ns.fd()));
    ASSERT_TRUE(set_link_up(outer, true));
    ASSERT_EQ(ns.exec({"ip", "link", "set", inner, "up"}).exit_code, 0);
}

class NetworkHost : public ::testing::Test {
protected:
    void SetUp() override {
        if (auto why = test::netns_unavailable(); !why.empty()) VIREO_SKIP(why);
        host_ = std::make_unique<test::NetNs>("host");
        ASSERT_TRUE(host_->ok());
    }
    std::unique_ptr<test::NetNs> host_;
};

using NetworkNetlink = NetworkHost;
using NetworkDhcp = NetworkHost;
using NetworkFirewall = NetworkHost;

}  // namespace

TEST_F(NetworkNetlink, BridgePortsAddressesAndNamespaces) {
    test::NetNs other("other");
    test::EnterNs in(*host_);
    ASSERT_TRUE(in.ok());
    BridgeOptions o;
    o.stp = true;
    o.delay_seconds = 0;
    o.mtu = 1400;
    o.mac = MacAddr::parse("52:54:00:12:34:56");
    ASSERT_TRUE(create_bridge("vtbr0", o));
    auto again = create_bridge("vtbr0", o);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().full_message(), "cannot create bridge 'vtbr0': File exists");
    auto br = find_link("vtbr0");
    ASSERT_TRUE(br && *br);
    EXPECT_EQ((*br)->kind, "bridge");
    EXPECT_EQ((*br)->mtu, 1400u);
    EXPECT_EQ((*br)->mac->str(), "52:54:00:12:34:56");
    EXPECT_EQ(host_->exec({"cat", "/sys/class/net/vtbr0/bridge/stp_state"}).out, "1\n");

    ASSERT_TRUE(add_address("vtbr0", ip("10.99.0.1"), 24));
    ASSERT_TRUE(add_address("vtbr0", ip("fd00:99::1"), 64, true));
    ASSERT_TRUE(set_link_up("vtbr0", true));
    EXPECT_TRUE(has_address("vtbr0", "10.99.0.1", 24));
    EXPECT_TRUE(has_address("vtbr0", "fd00:99::1", 64));
    auto dup = add_address("vtbr0", ip("10.99.0.1"), 24);
    ASSERT_FALSE(dup);
    EXPECT_NE(dup.error().full_message().find("cannot add address 10.99.0.1/24 to interface 'vtbr0'"), std::string::npos);

    ASSERT_TRUE(create_veth("vth0", "vtg0"));
    ASSERT_TRUE(set_master("vth0", "vtbr0"));
    ASSERT_TRUE(set_mtu("vth0", 1400));
    ASSERT_TRUE(set_mac("vth0", *MacAddr::parse("fe:54:00:00:00:01")));
    ASSERT_TRUE(set_link_up("vth0", true));
    auto port = find_link("vth0");
    ASSERT_TRUE(port && *port);
    EXPECT_EQ((*port)->master, (*br)->index);
    EXPECT_EQ((*port)->kind, "veth");
    EXPECT_TRUE((*port)->up);
    EXPECT_EQ((*port)->mac->str(), "fe:54:00:00:00:01");
    ASSERT_TRUE(set_master("vth0", ""));
    EXPECT_EQ((*find_link("vth0"))->master, 0);

    // Statistics count what crosses a link.
    ASSERT_TRUE(set_link_up("vtg0", true));
    ASSERT_TRUE(add_address("vth0", ip("10.98.7.1"), 30));
    ASSERT_TRUE(add_address("vtg0", ip("10.98.7.2"), 30));
    auto before = (*find_link("vtg0"))->stats;
    host_->exec({"ping", "-c", "2", "-W", "1", "-i", "0.2", "10.98.7.2"});
    host_->exec({"busybox", "ping", "-c", "2", "-W", "1", "10.98.7.2"});
    auto after = (*find_link("vtg0"))->stats;
    EXPECT_GT(after.rx_packets, before.rx_packets);
    EXPECT_GT(after.tx_packets, before.tx_packets);

    ASSERT_TRUE(remove_address("vtbr0", ip("10.99.0.1"), 24));
    EXPECT_FALSE(has_address("vtbr0", "10.99.0.1", 24));
    ASSERT_TRUE(delete_link("vth0"));
    EXPECT_FALSE(*find_link("vtg0")) << "deleting one end of a veth removes both";

    ASSERT_TRUE(create_veth("vth1", "vtg1"));
    ASSERT_TRUE(move_to_netns("vtg1", other.fd()));
    EXPECT_FALSE(*find_link("vtg1"));
    EXPECT_EQ(other.exec({"ip", "link", "show", "vtg1"}).exit_code, 0);

    ASSERT_TRUE(delete_link("vtbr0"));
    auto gone = delete_link("vtbr0");
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, ErrorCode::NotFound);
    EXPECT_NE(gone.error().full_message().find("no network interface 'vtbr0'"), std::string::npos) << gone.error().full_message();
}

TEST_F(NetworkNetlink, TapsAndMacvtap) {
    test::EnterNs in(*host_);
    ASSERT_TRUE(in.ok());
    {
        auto tap = create_tap({.name = "vnet%d", .queues = 2, .vnet_hdr = true, .persistent = false, .exclusive = true});
        ASSERT_TRUE(tap) << tap.error().full_message();
        EXPECT_EQ(tap->name, "vnet0");
        EXPECT_EQ(tap->fds.size(), 2u);
        auto l = find_link("vnet0");
        ASSERT_TRUE(l && *l);
        EXPECT_EQ((*l)->kind, "tun");
        auto second = create_tap({.name = "vnet%d", .queues = 1, .vnet_hdr = true, .persistent = false, .exclusive = true});
        ASSERT_TRUE(second);
        EXPECT_EQ(second->name, "vnet1");
        auto clash = create_tap({.name = "vnet0", .queues = 1, .vnet_hdr = true, .persistent = false, .exclusive = true});
        ASSERT_FALSE(clash);
        EXPECT_NE(clash.error().full_message().find("cannot create tap device 'vnet0'"), std::string::npos);
    }
    EXPECT_FALSE(*find_link("vnet0")) << "a tap owned by its fds goes away with them";
    {
        auto tap = create_tap({.name = "vtpersist", .queues = 1, .vnet_hdr = false, .persistent = true, .exclusive = true});
        ASSERT_TRUE(tap) << tap.error().full_message();
    }
    EXPECT_TRUE(*find_link("vtpersist"));
    ASSERT_TRUE(unpersist_tap("vtpersist"));
    EXPECT_FALSE(*find_link("vtpersist"));

    ASSERT_TRUE(create_veth("vmv-a", "vmv-b"));
    ASSERT_TRUE(set_link_up("vmv-a", true));
    auto mv = create_macvtap("vmvtap0", "vmv-a", MacvtapMode::Bridge, MacAddr::parse("52:54:00:ab:cd:01"));
    if (!mv) VIREO_SKIP("this kernel has no macvtap: " + mv.error().full_message());
    EXPECT_EQ((*find_link("vmvtap0"))->kind, "macvtap");
    // /sys shows the namespace that mounted it: the fd is opened in a child
    // with its own mount namespace and a fresh sysfs, as `ip netns exec` does.
    const pid_t child = fork();
    if (child == 0) {
        if (::unshare(CLONE_NEWNS) != 0 || ::mount("", "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0 ||
            ::mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0)
            _exit(2);
        auto fds = open_macvtap("vmvtap0", 2);
        _exit(fds && fds->size() == 2 ? 0 : 1);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "open_macvtap failed in the child";
    ASSERT_TRUE(delete_link("vmvtap0"));
}

// The forwarding sysctls are those of the calling thread's namespace: a
// change in one namespace is seen neither in another nor on the machine.
// A new namespace's IPv4 value is not assumed: the kernel copies it from the
// machine's (net.core.devconf_inherit_init_net=0, the default), so on a
// host with ip_forward=1 it starts on. Each namespace sets its own baseline.
TEST_F(NetworkNetlink, IpForwardingIsPerNamespace) {
    auto host_value = ip_forwarding(false);
    ASSERT_TRUE(host_value);
    auto host_value6 = ip_forwarding(true);
    ASSERT_TRUE(host_value6);
    test::NetNs other("fwd");
    ASSERT_TRUE(other.ok());
    for (bool v6 : {false, true}) {
        SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
        {
            test::EnterNs in(*host_);
            ASSERT_TRUE(in.ok());
            ASSERT_TRUE(set_ip_forwarding(v6, false));
            EXPECT_FALSE(*ip_forwarding(v6));
        }
        {
            test::EnterNs in(other);
            ASSERT_TRUE(in.ok());
            ASSERT_TRUE(set_ip_forwarding(v6, true));
            EXPECT_TRUE(*ip_forwarding(v6));
        }
        {
            test::EnterNs in(*host_);
            ASSERT_TRUE(in.ok());
            EXPECT_FALSE(*ip_forwarding(v6)) << "another namespace's change is not seen here";
            ASSERT_TRUE(set_ip_forwarding(v6, true));
            EXPECT_TRUE(*ip_forwarding(v6));
        }
    }
    EXPECT_EQ(*ip_forwarding(false), *host_value) << "the machine's own setting is untouched";
    EXPECT_EQ(*ip_forwarding(true), *host_value6) << "the machine's own setting is untouched";
}

TEST_F(NetworkDhcp, LeaseDnsAndAdoptionAfterRestart) {
    if (test::which("busybox").empty()) VIREO_SKIP("busybox (busybox-static) is not installed");
    test::NetNs client("client");
    test::TempDir state;
    std::filesystem::permissions(state.path(), std::filesystem::perms(0755));  // dnsmasq reads its hosts files unprivileged
    HostNetworkOptions options;
    options.state_dir = state.path();
    options.dnsmasq.lease_helper = test::bin_dir() / "vireo-lease-helper";
    // The daemon's wake-up socket (leases.hpp).
    options.dnsmasq.notify_socket = (state / "notify.sock").string();
    UniqueFd notify(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, options.dnsmasq.notify_socket.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(notify.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    const auto def = make_network(R"(<network>
  <name>dhcptest</name>
  <bridge name='vtbr1'/>
  <domain name='lab.test'/>
  <dns><host ip='10.98.0.50'><hostname>printer</hostname></host></dns>
  <ip address='10.98.0.1' prefix='24'>
    <dhcp>
      <range start='10.98.0.100' end='10.98.0.120'/>
      <host mac='52:54:00:98:00:07' name='seven' ip='10.98.0.7'/>
    </dhcp>
  </ip>
</network>)");
    test::EnterNs in(*host_);
    ASSERT_TRUE(in.ok());
    const std::string rules_before = ruleset();
    auto started = start_host_network(def, options);
    ASSERT_TRUE(started) << started.error().full_message();
    EXPECT_TRUE(started->bridge);
    EXPECT_TRUE(started->firewall);
    ASSERT_TRUE(started->dnsmasq);

    link_namespace("vtc-h", "vtc-g", client);
    ASSERT_TRUE(set_master("vtc-h", "vtbr1"));
    ASSERT_EQ(client.exec({"ip", "link", "set", "vtc-g", "address", "52:54:00:98:00:07"}).exit_code, 0);
    auto dhcp = client.exec({"busybox", "udhcpc", "-i", "vtc-g", "-n", "-q", "-f", "-t", "10", "-T", "1", "-s", "/bin/true"});
    EXPECT_NE((dhcp.out + dhcp.err).find("lease of 10.98.0.7 obtained"), std::string::npos) << dhcp.out << dhcp.err;

    // The lease helper recorded it in the status file.
    const auto files = DnsmasqFiles::in(state.path(), "dhcptest");
    std::vector<Lease> leases;
    for (int i = 0; i < 50 && leases.empty(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        auto r = read_leases(files.status);
        ASSERT_TRUE(r) << r.error().full_message();
        leases = *r;
    }
    ASSERT_EQ(leases.size(), 1u);
    EXPECT_EQ(leases[0].ip, "10.98.0.7");
    EXPECT_EQ(leases[0].mac, "52:54:00:98:00:07");
    EXPECT_EQ(leases[0].interface, "vtbr1");
    EXPECT_GT(leases[0].expiry_time, 0);
    pollfd pfd{notify.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 5000), 1) << "no wake-up datagram from the lease helper";
    char msg[1024] = {};
    ASSERT_GT(::recv(notify.get(), msg, sizeof msg - 1, 0), 0);
    EXPECT_NE(std::string(msg).find(R"("ip-address":"10.98.0.7")"), std::string::npos) << msg;
    EXPECT_NE(std::string(msg).find(R"("network":"dhcptest")"), std::string::npos) << msg;

    // DNS on the bridge address: a <dns><host> record and the DHCP host's name.
    ASSERT_EQ(client.exec({"ip", "addr", "add", "10.98.0.7/24", "dev", "vtc-g"}).exit_code, 0);
    auto printer = client.exec({"busybox", "nslookup", "printer", "10.98.0.1"});
    EXPECT_NE(printer.out.find("10.98.0.50"), std::string::npos) << printer.out << printer.err;
    auto seven = client.exec({"busybox", "nslookup", "seven.lab.test", "10.98.0.1"});
    EXPECT_NE(seven.out.find("10.98.0.7"), std::string::npos) << seven.out << seven.err;

    // A restarted daemon finds all of it again, and a second start is refused
    // without touching what runs.
    auto found = find_host_network(def, options);
    ASSERT_TRUE(found);
    EXPECT_TRUE(found->bridge);
    EXPECT_TRUE(found->firewall);
    EXPECT_EQ(found->dnsmasq, started->dnsmasq);
    auto twice = start_host_network(def, options);
    ASSERT_FALSE(twice);
    EXPECT_NE(twice.error().full_message().find("bridge name 'vtbr1' is already in use"), std::string::npos) << twice.error().full_message();
    auto dns_twice = start_dnsmasq(def, files, options.dnsmasq);
    ASSERT_FALSE(dns_twice);
    EXPECT_EQ(dns_twice.error().code, ErrorCode::Exists);
    EXPECT_EQ(find_host_network(def, options)->dnsmasq, started->dnsmasq);
    EXPECT_EQ(list_firewalls()->size(), 1u);

    ASSERT_TRUE(stop_host_network(def, options));
    found = find_host_network(def, options);
    ASSERT_TRUE(found);
    EXPECT_FALSE(found->bridge);
    EXPECT_FALSE(found->firewall);
    EXPECT_FALSE(found->dnsmasq);
    auto cmdline = test::run({"cat", fmt::format("/proc/{}/cmdline", *started->dnsmasq)});
    EXPECT_TRUE(cmdline.out.empty()) << "dnsmasq is gone (at most a zombie of its new parent)";
    EXPECT_EQ(ruleset(), rules_before);
}

TEST_F(NetworkDhcp, FailedStartLeavesNothingBehind) {
    test::TempDir state;
    std::filesystem::permissions(state.path(), std::filesystem::perms(0755));
    HostNetworkOptions options;
    options.state_dir = state.path();
    options.dnsmasq.binary = "/bin/false";  // dnsmasq "fails" after bridge and rules exist
    const auto def = make_network("<network><name>broken</name><forward mode='nat'/><bridge name='vtbr2'/>"
                             "<ip address='10.97.0.1' prefix='24'><dhcp><range start='10.97.0.10' end='10.97.0.20'/></dhcp></ip></network>");
    test::EnterNs in(*host_);
    ASSERT_TRUE(in.ok());
    const std::string rules_before = ruleset();
    auto started = start_host_network(def, options);
    ASSERT_FALSE(started);
    EXPECT_NE(started.error().full_message().find("cannot start network 'broken': dnsmasq for network 'broken' failed to start"), std::string::npos)
        << started.error().full_message();
    EXPECT_FALSE(*find_link("vtbr2"));
    EXPECT_EQ(ruleset(), rules_before);
}

TEST_F(NetworkFirewall, NatRouteAndIsolatedSeenFromOutside) {
    if (test::which("python3").empty()) VIREO_SKIP("python3 is not installed (the test's TCP server)");
    if (test::which("busybox").empty()) VIREO_SKIP("busybox (busybox-static) is not installed");
    test::NetNs guest("guest");
    test::NetNs outside("outside");
    test::EnterNs in(*host_);
    ASSERT_TRUE(in.ok());
    // Something of someone else's that must survive untouched.
    ASSERT_TRUE(nft_run("table inet keepme {\n chain c {\n  type filter hook forward priority 10; policy accept;\n  meta mark 0x1234 accept\n }\n}\n"));
    const std::string rules_before = ruleset();

    // guest (10.77.0.10) -- bridge vtbr3 (10.77.0.1) [host] 198.18.0.1 -- 198.18.0.2 (outside)
    ASSERT_TRUE(create_bridge("vtbr3", {.stp = false, .delay_seconds = 0, .mtu = std::nullopt, .mac = std::nullopt}));
    ASSERT_TRUE(add_address("vtbr3", ip("10.77.0.1"), 24));
    ASSERT_TRUE(set_link_up("vtbr3", true));
    link_namespace("vtgu-h", "vtgu-g", guest);
    ASSERT_TRUE(set_master("vtgu-h", "vtbr3"));
    ASSERT_EQ(guest.exec({"ip", "addr", "add", "10.77.0.10/24", "dev", "vtgu-g"}).exit_code, 0);
    ASSERT_EQ(guest.exec({"ip", "route", "add", "default", "via", "10.77.0.1"}).exit_code, 0);
    link_namespace("vtou-h", "vtou-o", outside);
    ASSERT_TRUE(add_address("vtou-h", ip("198.18.0.1"), 24));
    ASSERT_EQ(outside.exec({"ip", "addr", "add", "198.18.0.2/24", "dev", "vtou-o"}).exit_code, 0);
    ASSERT_TRUE(set_ip_forwarding(false, true));

    // The server answers each connection with the address it sees.
    test::Background server({"ip", "netns", "exec", outside.name(), "python3", "-c",
                             "import socket\n"
                             "s = socket.socket()\n"
                             "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                             "s.bind(('198.18.0.2', 8080))\n"
                             "s.listen(8)\n"
                             "while True:\n"
                             "    c, a = s.accept()\n"
                             "    c.sendall((a[0] + '\\n').encode())\n"
                             "    c.close()\n"});
    auto seen_by_server = [&]() {
        auto r = guest.exec({"busybox", "nc", "-w", "2", "198.18.0.2", "8080"});
        return r.exit_code == 0 ? r.out : std::string("failed: ") + r.err;
    };
    for (int i = 0; i < 50 && outside.exec({"busybox", "nc", "-w", "1", "198.18.0.2", "8080"}).exit_code != 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));

    const std::string base = "<name>fwtest</name><bridge name='vtbr3'/><ip address='10.77.0.1' prefix='24'/>";
    const auto nat = make_network("<network><forward mode='nat'/>" + base + "</network>");
    ASSERT_TRUE(apply_firewall(nat));
    EXPECT_EQ(seen_by_server(), "198.18.0.1\n") << "masqueraded behind the host's outside address";
    ASSERT_TRUE(apply_firewall(nat));  // applying again replaces, never duplicates
    EXPECT_EQ(list_firewalls()->size(), 1u);

    const auto route = make_network("<network><forward mode='route'/>" + base + "</network>");
    ASSERT_TRUE(apply_firewall(route));
    ASSERT_EQ(outside.exec({"ip", "route", "add", "10.77.0.0/24", "via", "198.18.0.1"}).exit_code, 0);
    EXPECT_EQ(seen_by_server(), "10.77.0.10\n") << "routed: the guest's own address";

    const auto isolated = make_network("<network>" + base + "</network>");
    ASSERT_TRUE(apply_firewall(isolated));
    EXPECT_NE(seen_by_server().rfind("failed", 0), std::string::npos) << "isolated: forwarding is rejected";
    auto names = list_firewalls();
    ASSERT_TRUE(names);
    EXPECT_EQ(*names, std::vector<std::string>{"fwtest"});

    ASSERT_TRUE(remove_firewall("fwtest"));
    ASSERT_TRUE(remove_firewall("fwtest")) << "removing twice is harmless";
    EXPECT_EQ(ruleset(), rules_before);
    EXPECT_TRUE(list_firewalls()->empty());
}
