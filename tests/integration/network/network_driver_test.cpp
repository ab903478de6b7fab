// The network driver (src/netdrv) on the real host side, inside network
// namespaces these tests create: net-start and net-destroy leave exactly
// what was there, a second driver on the same directories (a restarted
// daemon) adopts what runs without duplicating it, refusals change
// nothing, autostart, net-update --live reaching dnsmasq (a DHCP client
// gets the new static address), leases through the lease helper, the
// guests' ports, orphan tables, and libvirt's default network.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <thread>

#include <fmt/format.h>

#include "conf/network.hpp"
#include "netdrv/network_driver.hpp"
#include "netns.hpp"
#include "network/dnsmasq.hpp"
#include "network/firewall.hpp"
#include "network/netlink.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::netdrv;
namespace fs = std::filesystem;

namespace {

std::string ruleset() {
    auto r = network::nft_run("list ruleset\n");
    return r ? *r : std::string("<error: ") + r.error().full_message() + ">";
}

bool link_exists(const std::string& name) {
    auto l = network::find_link(name);
    return l && l->has_value();
}

// A process that exited (at most a zombie of whoever adopted dnsmasq) has
// no command line any more.
// The process has exited and let go of its files (sockets): no longer in
// /proc, or a zombie. An empty cmdline is not enough: the kernel drops a
// dying process's memory (cmdline reads empty) before it closes its files,
// and a dnsmasq started in that window finds its ports still bound.
bool gone(pid_t pid) {
    auto stat = files::read(fmt::format("/proc/{}/stat", pid));
    if (!stat) return true;
    const auto paren = stat->rfind(')');
    return paren == std::string::npos || paren + 2 >= stat->size() || (*stat)[paren + 2] == 'Z' || (*stat)[paren + 2] == 'X';
}

std::optional<pid_t> dnsmasq_of(const fs::path& state, const std::string& network) {
    auto pid = network::find_dnsmasq(network::DnsmasqFiles::in(state, network));
    return pid ? *pid : std::nullopt;
}

constexpr std::string_view kNat = R"(<network>
  <name>natnet</name>
  <forward mode='nat'/>
  <bridge name='vtnbr0'/>
  <ip address='10.211.0.1' prefix='24'>
    <dhcp>
      <range start='10.211.0.100' end='10.211.0.120'/>
    </dhcp>
  </ip>
</network>)";

class NetworkDriverHost : public ::testing::Test {
protected:
    void SetUp() override {
        if (auto why = test::netns_unavailable(); !why.empty()) VIREO_SKIP(why);
        if (test::which("dnsmasq").empty() && !fs::exists("/usr/sbin/dnsmasq")) VIREO_SKIP("dnsmasq is not installed");
        host_ = std::make_unique<test::NetNs>("host");
        ASSERT_TRUE(host_->ok());
        fs::permissions(dir_.path(), fs::perms(0755));  // dnsmasq reads its files unprivileged
        in_ = std::make_unique<test::EnterNs>(*host_);
        ASSERT_TRUE(in_->ok());
    }
    void TearDown() override {
        driver_.reset();
        // dnsmasq outlives drivers by design: stop what a failed test left.
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(dir_ / "dnsmasq", ec))
            if (e.path().extension() == ".conf")
                (void)network::stop_dnsmasq(network::DnsmasqFiles::in(dir_ / "dnsmasq", e.path().stem().native()));
        in_.reset();
    }
    NetworkDriverConfig config(bool default_network = false) const {
        NetworkDriverConfig c;
        c.confdir = dir_ / "network";
        c.rundir = dir_ / "run";
        c.state_dir = dir_ / "dnsmasq";
        c.lease_helper = test::bin_dir() / "vireo-lease-helper";
        c.default_network = default_network;
        return c;
    }
    // A driver on the test's directories: what a (re)started daemon opens.
    void open(bool default_network = false) {
        driver_.reset();
        auto d = NetworkDriver::open(config(default_network));
        ASSERT_TRUE(d) << d.error().full_message();
        driver_ = std::move(*d);
    }
    std::string error_of(const Status& st) { return st ? std::string("<success>") : st.error().full_message(); }

    test::TempDir dir_;
    std::unique_ptr<test::NetNs> host_;
    std::unique_ptr<test::EnterNs> in_;
    std::unique_ptr<NetworkDriver> driver_;
};

}  // namespace

TEST_F(NetworkDriverHost, StartAndDestroyLeaveExactlyWhatWasThere) {
    open();
    const std::string before = ruleset();
    ASSERT_TRUE(driver_->define(kNat));
    ASSERT_TRUE(driver_->start("natnet")) << error_of(driver_->start("natnet"));
    EXPECT_TRUE(link_exists("vtnbr0"));
    EXPECT_NE(ruleset().find("table inet vireo_net_natnet"), std::string::npos);
    const auto pid = dnsmasq_of(dir_ / "dnsmasq", "natnet");
    ASSERT_TRUE(pid);
    EXPECT_TRUE(driver_->lookup("natnet")->active);
    EXPECT_TRUE(fs::exists(dir_ / "run/natnet.xml"));
    EXPECT_EQ(error_of(driver_->start("natnet")), "Requested operation is not valid: network is already active");

    ASSERT_TRUE(driver_->destroy("natnet"));
    EXPECT_FALSE(link_exists("vtnbr0"));
    EXPECT_FALSE(dnsmasq_of(dir_ / "dnsmasq", "natnet"));
    EXPECT_TRUE(gone(*pid)) << "dnsmasq is gone";
    EXPECT_EQ(ruleset(), before);
    EXPECT_FALSE(fs::exists(dir_ / "run/natnet.xml"));
    EXPECT_FALSE(driver_->lookup("natnet")->active);

    // A transient network is gone with its net-destroy.
    std::string transient = std::regex_replace(std::string(kNat), std::regex("natnet"), "tnet");
    transient = std::regex_replace(transient, std::regex("vtnbr0"), "vtnbr7");
    transient = std::regex_replace(transient, std::regex("10\\.211\\.0\\."), "10.211.7.");
    auto created = driver_->create(transient);
    ASSERT_TRUE(created) << created.error().full_message();
    EXPECT_FALSE(created->persistent);
    EXPECT_TRUE(created->active);
    ASSERT_TRUE(driver_->destroy("tnet"));
    EXPECT_FALSE(driver_->lookup("tnet"));
    EXPECT_EQ(ruleset(), before);
}

// mode='open' is routed without rules: forwarding on (as libvirt does),
// and no firewall table.
TEST_F(NetworkDriverHost, AnOpenNetworkForwardsWithoutRules) {
    open();
    ASSERT_TRUE(network::set_ip_forwarding(false, false));  // the namespace's baseline (it may inherit the host's)
    const std::string before = ruleset();
    ASSERT_TRUE(driver_->define("<network><name>opennet</name><forward mode='open'/><bridge name='vtobr0'/>"
                                "<ip address='10.211.9.1' prefix='24'/></network>"));
    ASSERT_TRUE(driver_->start("opennet")) << error_of(driver_->start("opennet"));
    EXPECT_TRUE(network::ip_forwarding(false).value_or(false));
    EXPECT_EQ(ruleset(), before);
    ASSERT_TRUE(driver_->destroy("opennet"));
}

TEST_F(NetworkDriverHost, ARestartedDriverAdoptsWithoutDuplicates) {
    open();
    ASSERT_TRUE(driver_->define(kNat));
    ASSERT_TRUE(driver_->start("natnet"));
    const std::string rules = ruleset();
    const auto pid = dnsmasq_of(dir_ / "dnsmasq", "natnet");
    ASSERT_TRUE(pid);

    open();  // the daemon restarted (the old driver did nothing on its way out)
    EXPECT_TRUE(driver_->lookup("natnet")->active);
    EXPECT_EQ(dnsmasq_of(dir_ / "dnsmasq", "natnet"), pid) << "the same dnsmasq, not a second one";
    EXPECT_EQ(ruleset(), rules) << "the table replaced in place, never duplicated";
    EXPECT_EQ(network::list_firewalls()->size(), 1u);

    // dnsmasq died while the daemon was away: only it is started again.
    ASSERT_EQ(::kill(*pid, SIGKILL), 0);
    for (int i = 0; i < 100 && !gone(*pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    open();
    const auto again = dnsmasq_of(dir_ / "dnsmasq", "natnet");
    ASSERT_TRUE(again);
    EXPECT_NE(*again, *pid);
    EXPECT_EQ(ruleset(), rules);

    // The bridge went (deleted by hand): the network is started afresh.
    ASSERT_TRUE(network::delete_link("vtnbr0"));
    open();
    EXPECT_TRUE(driver_->lookup("natnet")->active);
    EXPECT_TRUE(link_exists("vtnbr0"));
    EXPECT_EQ(ruleset(), rules);
    ASSERT_TRUE(driver_->destroy("natnet"));
}

TEST_F(NetworkDriverHost, RefusalsChangeNothingOnTheHost) {
    open();
    ASSERT_TRUE(driver_->define(kNat));
    const std::string before = ruleset();
    // Overlapping subnets are refused at define.
    auto overlap = driver_->define("<network><name>other</name><bridge name='vtnbr1'/><ip address='10.211.0.129' prefix='25'/></network>");
    ASSERT_FALSE(overlap);
    EXPECT_NE(overlap.error().full_message().find("overlaps subnet 10.211.0.0/24 of network 'natnet'"), std::string::npos)
        << overlap.error().full_message();
    // A bridge name a host interface took after the definition: start refused.
    ASSERT_TRUE(network::create_bridge("vtnbr0", {}));
    auto st = driver_->start("natnet");
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().full_message().find("bridge name 'vtnbr0' is already in use by a host interface"), std::string::npos)
        << st.error().full_message();
    EXPECT_EQ(ruleset(), before);
    EXPECT_FALSE(dnsmasq_of(dir_ / "dnsmasq", "natnet"));
    EXPECT_FALSE(driver_->lookup("natnet")->active);
    EXPECT_FALSE(fs::exists(dir_ / "run/natnet.xml"));
    ASSERT_TRUE(network::delete_link("vtnbr0"));
    // The subnet used by a host interface: start refused, naming it.
    ASSERT_TRUE(network::create_bridge("vtother", {}));
    ASSERT_TRUE(network::add_address("vtother", *conf::IpAddr::parse("10.211.0.77"), 16));
    st = driver_->start("natnet");
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().full_message().find("cannot start network 'natnet': its subnet is already in use by interface 'vtother'"),
              std::string::npos)
        << st.error().full_message();
    EXPECT_FALSE(link_exists("vtnbr0"));
    EXPECT_EQ(ruleset(), before);
}

TEST_F(NetworkDriverHost, AutostartOnTheNextOpen) {
    open();
    ASSERT_TRUE(driver_->define(kNat));
    ASSERT_TRUE(driver_->set_autostart("natnet", true));
    EXPECT_FALSE(driver_->lookup("natnet")->active);
    open();
    EXPECT_TRUE(driver_->lookup("natnet")->active);
    EXPECT_TRUE(link_exists("vtnbr0"));
    ASSERT_TRUE(driver_->destroy("natnet"));
}

TEST_F(NetworkDriverHost, OrphanTablesAndDnsmasqAreRemoved) {
    open();
    ASSERT_TRUE(driver_->define(kNat));
    ASSERT_TRUE(driver_->start("natnet"));
    // The status is lost (a crash between the host change and its record):
    // the next driver removes what belongs to no active network.
    ASSERT_TRUE(files::remove_durable(dir_ / "run/natnet.xml"));
    ASSERT_TRUE(network::nft_run("add table inet vireo_net_ghost\n"));
    open();
    EXPECT_FALSE(driver_->lookup("natnet")->active);
    EXPECT_TRUE(network::list_firewalls()->empty());
    EXPECT_FALSE(dnsmasq_of(dir_ / "dnsmasq", "natnet"));
    ASSERT_TRUE(network::delete_link("vtnbr0"));
}

TEST_F(NetworkDriverHost, PortsForGuestNics) {
    open();
    std::string xml(kNat);
    xml.replace(xml.find("<bridge"), 0, "<mtu size='1400'/>\n  ");
    ASSERT_TRUE(driver_->define(xml));
    ASSERT_TRUE(driver_->start("natnet"));
    auto port = driver_->plug({.network = "natnet", .domain = "vm1", .mac = "52:54:00:00:00:01"});
    ASSERT_TRUE(port) << port.error().full_message();
    EXPECT_EQ(port->bridge, "vtnbr0");
    EXPECT_EQ(port->mtu, 1400u);
    EXPECT_TRUE(driver_->plug({.network = "natnet", .domain = "vm1", .mac = "52:54:00:00:00:01"}));  // idempotent
    EXPECT_TRUE(driver_->xml("natnet", false)->starts_with("<network connections='1'>\n"));
    EXPECT_TRUE(driver_->xml("natnet", true)->starts_with("<network>\n"));
    driver_->unplug("natnet", "vm1", "52:54:00:00:00:01");
    EXPECT_TRUE(driver_->xml("natnet", false)->starts_with("<network>\n"));
    ASSERT_TRUE(driver_->destroy("natnet"));
}

TEST_F(NetworkDriverHost, UpdateLiveReachesDnsmasqAndLeasesAreListed) {
    if (test::which("busybox").empty()) VIREO_SKIP("busybox (busybox-static) is not installed");
    test::NetNs client("client");
    open();
    ASSERT_TRUE(driver_->define(kNat));
    ASSERT_TRUE(driver_->start("natnet"));
    // A static host added to the running network and to its definition.
    ASSERT_TRUE(driver_->update("natnet", {.command = driver::NetworkUpdateCommand::AddLast,
                                           .section = driver::NetworkUpdateSection::IpDhcpHost,
                                           .xml = "<host mac='52:54:00:21:00:07' name='seven' ip='10.211.0.7'/>",
                                           .live = true,
                                           .config = true}));
    EXPECT_NE(driver_->xml("natnet", true)->find("name='seven'"), std::string::npos);

    ASSERT_TRUE(network::create_veth("vtc-h", "vtc-g"));
    ASSERT_TRUE(network::move_to_netns("vtc-g", client.fd()));
    ASSERT_TRUE(network::set_master("vtc-h", "vtnbr0"));
    ASSERT_TRUE(network::set_link_up("vtc-h", true));
    ASSERT_EQ(client.exec({"ip", "link", "set", "vtc-g", "address", "52:54:00:21:00:07", "up"}).exit_code, 0);
    auto dhcp = client.exec({"busybox", "udhcpc", "-i", "vtc-g", "-n", "-q", "-f", "-t", "10", "-T", "1", "-s", "/bin/true"});
    EXPECT_NE((dhcp.out + dhcp.err).find("lease of 10.211.0.7 obtained"), std::string::npos) << dhcp.out << dhcp.err;

    std::vector<driver::NetworkDhcpLease> leases;
    for (int i = 0; i < 50 && leases.empty(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        auto r = driver_->dhcp_leases("natnet", "52:54:00:21:00:07");
        ASSERT_TRUE(r) << r.error().full_message();
        leases = *r;
    }
    ASSERT_EQ(leases.size(), 1u);
    EXPECT_EQ(leases[0].ip, "10.211.0.7");
    EXPECT_EQ(leases[0].prefix, 24u);
    EXPECT_EQ(leases[0].iface, "vtnbr0");
    EXPECT_TRUE(driver_->dhcp_leases("natnet", "52:54:00:ff:ff:ff")->empty());
    auto mine = driver_->leases_for({"52:54:00:21:00:07"});
    ASSERT_EQ(mine.size(), 1u);
    EXPECT_EQ(mine[0].network, "natnet");
    EXPECT_EQ(mine[0].ip, "10.211.0.7");

    // A new DHCP range restarts dnsmasq with it.
    const auto pid = dnsmasq_of(dir_ / "dnsmasq", "natnet");
    ASSERT_TRUE(driver_->update("natnet", {.command = driver::NetworkUpdateCommand::AddLast,
                                           .section = driver::NetworkUpdateSection::IpDhcpRange,
                                           .xml = "<range start='10.211.0.200' end='10.211.0.210'/>",
                                           .live = true}));
    EXPECT_NE(dnsmasq_of(dir_ / "dnsmasq", "natnet"), pid);
    EXPECT_NE(files::read(dir_ / "dnsmasq/natnet.conf")->find("10.211.0.200"), std::string::npos);
    EXPECT_EQ(driver_->xml("natnet", true)->find("10.211.0.200"), std::string::npos) << "--live only";
    ASSERT_TRUE(driver_->destroy("natnet"));
}

TEST_F(NetworkDriverHost, DefaultNetworkOnceWhereTheHostAllows) {
    open(true);
    auto def = driver_->lookup("default");
    ASSERT_TRUE(def) << def.error().full_message();
    EXPECT_TRUE(def->active);
    EXPECT_TRUE(def->autostart);
    EXPECT_EQ(def->bridge, "virbr0");
    EXPECT_TRUE(link_exists("virbr0"));
    ASSERT_TRUE(driver_->destroy("default"));
    ASSERT_TRUE(driver_->undefine("default"));
    open(true);
    EXPECT_FALSE(driver_->lookup("default")) << "net-undefine default is for good";

    // Where the subnet is taken, no default network (logged, not an error).
    ASSERT_TRUE(files::remove_durable(dir_ / "network/.default-network"));
    ASSERT_TRUE(network::create_bridge("vtbusy", {}));
    ASSERT_TRUE(network::add_address("vtbusy", *conf::IpAddr::parse("192.168.122.5"), 24));
    open(true);
    EXPECT_FALSE(driver_->lookup("default"));
    EXPECT_FALSE(link_exists("virbr0"));
}
