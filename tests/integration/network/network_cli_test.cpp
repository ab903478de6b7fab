// vireo's net-* and iface-* verbs against a system vireod running inside a
// network namespace these tests create: the whole life of a network through
// the CLI with virsh's output, net-destroy leaving the ruleset as it was,
// vireod SIGKILLed and restarted with the network still running and its
// rules not duplicated, autostart across a daemon restart, libvirt's
// default network, net-event, and the host interface verbs on devices the
// tests make.
#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include <fmt/format.h>

#include "netns.hpp"
#include "ns_daemon.hpp"
#include "util/files.hpp"

using namespace vireo;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kNet = R"(<network>
  <name>clinet</name>
  <forward mode='nat'/>
  <bridge name='vtcbr0'/>
  <ip address='10.212.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.212.0.10' end='10.212.0.99'/>
      <host mac='52:54:00:aa:bb:cc' name='g1' ip='10.212.0.5'/>
    </dhcp>
  </ip>
</network>
)";

class NetworkCli : public ::testing::Test {
protected:
    void SetUp() override {
        if (auto why = test::netns_unavailable(); !why.empty()) VIREO_SKIP(why);
        if (test::which("dnsmasq").empty() && !fs::exists("/usr/sbin/dnsmasq")) VIREO_SKIP("dnsmasq is not installed");
        ns_ = std::make_unique<test::NetNs>("cli");
        ASSERT_TRUE(ns_->ok());
        fs::permissions(dir_.path(), fs::perms(0755));
        ASSERT_TRUE(files::write_atomic(dir_ / "net.xml", kNet));
    }
    void TearDown() override {
        if (daemon_) daemon_->stop();
        test::NsDaemon::kill_dnsmasq(dir_.path());
    }
    void start_daemon(bool default_network = false) {
        if (!daemon_) daemon_ = std::make_unique<test::NsDaemon>(*ns_, dir_.path(), default_network);
        std::string why;
        ASSERT_TRUE(daemon_->start(&why)) << why;
    }
    test::CommandResult vireo(const std::vector<std::string>& args) { return daemon_->vireo(args); }
    std::string ns_out(const std::vector<std::string>& argv) { return ns_->exec(argv).out; }

    test::TempDir dir_;
    std::unique_ptr<test::NetNs> ns_;
    std::unique_ptr<test::NsDaemon> daemon_;
};

std::string without_uuid_and_mac(std::string xml) {
    xml = std::regex_replace(xml, std::regex("<uuid>[0-9a-f-]+</uuid>"), "<uuid/>");
    return std::regex_replace(xml, std::regex("<mac address='[0-9a-f:]+'/>"), "<mac/>");
}

}  // namespace

TEST_F(NetworkCli, LifeOfANetworkAsVirshPrintsIt) {
    start_daemon();
    const std::string rules_before = ns_out({"nft", "list", "ruleset"});
    const std::string file = (dir_ / "net.xml").native();

    auto r = vireo({"net-define", file});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, fmt::format("Network clinet defined from {}\n\n", file));
    r = vireo({"net-list"});
    EXPECT_EQ(r.out, " Name   State   Autostart   Persistent\n----------------------------------------\n\n");
    r = vireo({"net-list", "--all"});
    EXPECT_EQ(r.out,
              " Name     State      Autostart   Persistent\n"
              "---------------------------------------------\n"
              " clinet   inactive   no          yes\n\n");
    r = vireo({"net-info", "clinet"});
    EXPECT_TRUE(std::regex_match(r.out, std::regex("Name:           clinet\n"
                                                   "UUID:           [0-9a-f-]{36}\n"
                                                   "Active:         no\n"
                                                   "Persistent:     yes\n"
                                                   "Autostart:      no\n"
                                                   "Bridge:         vtcbr0\n\n")))
        << r.out;
    // libvirt's net-dumpxml of the same document (uuid and mac are random).
    r = vireo({"net-dumpxml", "clinet"});
    EXPECT_EQ(without_uuid_and_mac(r.out), R"(<network>
  <name>clinet</name>
  <uuid/>
  <forward mode='nat'/>
  <bridge name='vtcbr0' stp='on' delay='0'/>
  <mac/>
  <ip address='10.212.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.212.0.10' end='10.212.0.99'/>
      <host mac='52:54:00:aa:bb:cc' name='g1' ip='10.212.0.5'/>
    </dhcp>
  </ip>
</network>

)");
    r = vireo({"net-start", "clinet"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "Network clinet started\n\n");
    r = vireo({"net-start", "clinet"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "error: Failed to start network clinet\nerror: Requested operation is not valid: network is already active\n");
    r = vireo({"net-list"});
    EXPECT_EQ(r.out,
              " Name     State    Autostart   Persistent\n"
              "-------------------------------------------\n"
              " clinet   active   no          yes\n\n");
    EXPECT_NE(ns_out({"ip", "link", "show", "vtcbr0"}).find("vtcbr0"), std::string::npos);
    EXPECT_NE(ns_out({"nft", "list", "tables"}).find("vireo_net_clinet"), std::string::npos);
    r = vireo({"net-dhcp-leases", "clinet"});
    EXPECT_EQ(r.out,
              " Expiry Time   MAC address   Protocol   IP address   Hostname   Client ID or DUID\n"
              "-----------------------------------------------------------------------------------\n\n");
    r = vireo({"net-list", "--all", "--json"});
    EXPECT_NE(r.out.find("\"active\": true"), std::string::npos) << r.out;

    r = vireo({"net-update", "clinet", "add", "ip-dhcp-host", "<host mac='52:54:00:00:00:01' name='h1' ip='10.212.0.6'/>",
               "--live", "--config"});
    EXPECT_EQ(r.out, "Updated network clinet persistent config and live state\n") << r.err;  // as virsh 9.0: one newline
    EXPECT_NE(files::read(dir_ / "run/dnsmasq/clinet.hostsfile")->find("52:54:00:00:00:01,10.212.0.6,h1"), std::string::npos);
    r = vireo({"net-update", "clinet", "delete", "ip-dhcp-host", "<host mac='52:54:00:00:00:01'/>"});
    EXPECT_EQ(r.out, "Updated network clinet live state\n") << r.err;
    r = vireo({"net-update", "clinet", "add", "bogus", "<host/>"});
    EXPECT_EQ(r.err, "error: unrecognized section name 'bogus'\n");

    r = vireo({"net-destroy", "clinet"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "Network clinet destroyed\n\n");
    EXPECT_EQ(ns_out({"nft", "list", "ruleset"}), rules_before);
    EXPECT_EQ(ns_out({"ip", "link", "show", "vtcbr0"}), "");
    EXPECT_EQ(ns_->exec({"pgrep", "-f", "clinet.conf"}).out, "");
    r = vireo({"net-destroy", "clinet"});
    EXPECT_EQ(r.err, "error: Failed to destroy network clinet\nerror: Requested operation is not valid: network 'clinet' is not active\n");

    r = vireo({"net-autostart", "clinet"});
    EXPECT_EQ(r.out, "Network clinet marked as autostarted\n\n");
    r = vireo({"net-list", "--autostart", "--all", "--name"});
    EXPECT_EQ(r.out, "clinet\n\n");
    r = vireo({"net-undefine", "clinet"});
    EXPECT_EQ(r.out, "Network clinet has been undefined\n\n");
    r = vireo({"net-info", "clinet"});
    EXPECT_EQ(r.err, "error: failed to get network 'clinet'\nerror: Network not found: no network with matching name 'clinet'\n");
    EXPECT_FALSE(fs::exists(dir_ / "conf/network/clinet.xml"));
}

TEST_F(NetworkCli, SigkilledDaemonRestartsWithTheNetworkRunningAndRulesUnduplicated) {
    start_daemon();
    ASSERT_EQ(vireo({"net-define", (dir_ / "net.xml").native()}).exit_code, 0);
    ASSERT_EQ(vireo({"net-start", "clinet"}).exit_code, 0);
    const std::string rules = ns_out({"nft", "list", "ruleset"});
    const std::string dnsmasq = ns_->exec({"pgrep", "-f", "clinet.conf"}).out;
    ASSERT_FALSE(dnsmasq.empty());

    daemon_->kill();
    EXPECT_NE(ns_out({"ip", "link", "show", "vtcbr0"}).find("vtcbr0"), std::string::npos) << "the network outlives the daemon";
    start_daemon();
    auto r = vireo({"net-list"});
    EXPECT_NE(r.out.find(" clinet   active   no          yes"), std::string::npos) << r.out << daemon_->log();
    EXPECT_EQ(ns_out({"nft", "list", "ruleset"}), rules);
    EXPECT_EQ(ns_->exec({"pgrep", "-f", "clinet.conf"}).out, dnsmasq) << "the same dnsmasq, no second one";
    ASSERT_EQ(vireo({"net-destroy", "clinet"}).exit_code, 0);
}

TEST_F(NetworkCli, AutostartAcrossADaemonRestartAndTheDefaultNetwork) {
    start_daemon(true);
    // The system daemon made libvirt's default network in this namespace.
    auto r = vireo({"net-list", "--all"});
    EXPECT_EQ(r.out,
              " Name      State    Autostart   Persistent\n"
              "--------------------------------------------\n"
              " default   active   yes         yes\n\n")
        << daemon_->log();
    EXPECT_NE(ns_out({"ip", "-4", "addr", "show", "virbr0"}).find("192.168.122.1/24"), std::string::npos);
    ASSERT_EQ(vireo({"net-destroy", "default"}).exit_code, 0);

    ASSERT_EQ(vireo({"net-define", (dir_ / "net.xml").native()}).exit_code, 0);
    ASSERT_EQ(vireo({"net-autostart", "clinet"}).exit_code, 0);
    daemon_->stop();
    start_daemon(true);
    r = vireo({"net-list", "--all"});
    EXPECT_EQ(r.out,
              " Name      State    Autostart   Persistent\n"
              "--------------------------------------------\n"
              " clinet    active   yes         yes\n"
              " default   active   yes         yes\n\n")
        << daemon_->log();
    ASSERT_EQ(vireo({"net-destroy", "clinet"}).exit_code, 0);
    ASSERT_EQ(vireo({"net-destroy", "default"}).exit_code, 0);
}

TEST_F(NetworkCli, NetEventPrintsLifecycleEvents) {
    start_daemon();
    const std::string uri = daemon_->uri();
    test::CommandResult events;
    std::thread watcher([&] {
        events = test::run({(test::bin_dir() / "vireo").native(), "-c", uri, "net-event", "--event", "lifecycle", "--loop",
                            "--timeout", "8"});
    });
    std::this_thread::sleep_for(std::chrono::seconds(1));  // subscribed
    const std::string file = (dir_ / "net.xml").native();
    ASSERT_EQ(vireo({"net-define", file}).exit_code, 0);
    ASSERT_EQ(vireo({"net-start", "clinet"}).exit_code, 0);
    ASSERT_EQ(vireo({"net-destroy", "clinet"}).exit_code, 0);
    ASSERT_EQ(vireo({"net-undefine", "clinet"}).exit_code, 0);
    watcher.join();
    EXPECT_EQ(events.out,
              "event 'lifecycle' for network clinet: Defined\n"
              "event 'lifecycle' for network clinet: Started\n"
              "event 'lifecycle' for network clinet: Stopped\n"
              "event 'lifecycle' for network clinet: Undefined\n"
              "event loop timed out\n"
              "events received: 4\n\n")
        << events.err;
    auto r = vireo({"net-event"});
    EXPECT_EQ(r.err, "error: either --list or --event <type> is required\n");
}

TEST_F(NetworkCli, HostInterfacesThroughNetlink) {
    start_daemon();
    // A veth pair in the namespace stands for the host's NIC.
    ASSERT_EQ(ns_->exec({"ip", "link", "add", "vteth0", "type", "veth", "peer", "name", "vteth1"}).exit_code, 0);
    ASSERT_EQ(ns_->exec({"ip", "link", "set", "vteth0", "address", "52:54:00:10:20:30"}).exit_code, 0);
    ASSERT_EQ(ns_->exec({"ip", "addr", "add", "10.214.0.2/24", "dev", "vteth0"}).exit_code, 0);
    ASSERT_EQ(ns_->exec({"ip", "link", "set", "vteth0", "up"}).exit_code, 0);
    ASSERT_EQ(ns_->exec({"ip", "link", "set", "vteth1", "up"}).exit_code, 0);

    auto r = vireo({"iface-list"});
    EXPECT_NE(r.out.find(" vteth0   active   52:54:00:10:20:30\n"), std::string::npos) << r.out << r.err;
    r = vireo({"iface-dumpxml", "vteth0"});
    EXPECT_NE(r.out.find("<interface type='ethernet' name='vteth0'>"), std::string::npos) << r.out << r.err;
    EXPECT_NE(r.out.find("<ip address='10.214.0.2' prefix='24'/>"), std::string::npos) << r.out;
    r = vireo({"iface-name", "52:54:00:10:20:30"});
    EXPECT_EQ(r.out, "vteth0\n\n");

    // iface-bridge moves the address to a new bridge with vteth0 as its port.
    r = vireo({"iface-bridge", "vteth0", "vtbr9", "--no-stp"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "Created bridge vtbr9 with attached device vteth0\nBridge interface vtbr9 started\n\n");
    EXPECT_NE(ns_out({"ip", "-4", "addr", "show", "vtbr9"}).find("10.214.0.2/24"), std::string::npos);
    EXPECT_EQ(ns_out({"ip", "-4", "addr", "show", "vteth0"}), "");
    EXPECT_NE(ns_out({"ip", "link", "show", "vteth0"}).find("master vtbr9"), std::string::npos);
    r = vireo({"iface-dumpxml", "vtbr9"});
    EXPECT_NE(r.out.find("<bridge stp='off' delay='0'>\n    <interface type='ethernet' name='vteth0'>"), std::string::npos) << r.out;
    r = vireo({"iface-list"});
    EXPECT_EQ(r.out.find("vteth0"), std::string::npos) << "a bridge's port is listed under it: " << r.out;

    r = vireo({"iface-unbridge", "vtbr9"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "Device vteth0 un-attached from bridge vtbr9\nInterface vteth0 started\n\n");
    EXPECT_EQ(ns_out({"ip", "link", "show", "vtbr9"}), "");
    EXPECT_NE(ns_out({"ip", "-4", "addr", "show", "vteth0"}).find("10.214.0.2/24"), std::string::npos);

    // A bridge defined from XML, started and destroyed.
    ASSERT_TRUE(files::write_atomic(dir_ / "br.xml", "<interface type='bridge' name='vtbr8'><start mode='onboot'/>"
                                                     "<protocol family='ipv4'><ip address='10.215.0.1' prefix='24'/></protocol>"
                                                     "<bridge stp='on' delay='0'><interface type='ethernet' name='vteth1'/></bridge>"
                                                     "</interface>"));
    r = vireo({"iface-define", (dir_ / "br.xml").native()});
    EXPECT_EQ(r.out, fmt::format("Interface vtbr8 defined from {}\n\n", (dir_ / "br.xml").native())) << r.err;
    r = vireo({"iface-list", "--inactive"});
    EXPECT_NE(r.out.find(" vtbr8 "), std::string::npos) << r.out;
    r = vireo({"iface-start", "vtbr8"});
    EXPECT_EQ(r.out, "Interface vtbr8 started\n\n") << r.err;
    EXPECT_NE(ns_out({"ip", "link", "show", "vteth1"}).find("master vtbr8"), std::string::npos);
    EXPECT_NE(ns_out({"ip", "-4", "addr", "show", "vtbr8"}).find("10.215.0.1/24"), std::string::npos);
    r = vireo({"iface-destroy", "vtbr8"});
    EXPECT_EQ(r.out, "Interface vtbr8 destroyed\n\n") << r.err;
    EXPECT_EQ(ns_out({"ip", "link", "show", "vtbr8"}), "");
    r = vireo({"iface-undefine", "vtbr8"});
    EXPECT_EQ(r.out, "Interface vtbr8 undefined\n\n") << r.err;

    // VLAN and bond devices where the kernel has the modules.
    ASSERT_TRUE(files::write_atomic(dir_ / "vlan.xml", "<interface type='vlan' name='vteth1.42'><vlan tag='42'>"
                                                       "<interface name='vteth1'/></vlan></interface>"));
    ASSERT_EQ(vireo({"iface-define", (dir_ / "vlan.xml").native()}).exit_code, 0);
    r = vireo({"iface-start", "vteth1.42"});
    if (r.exit_code != 0) {
        std::cout << "SKIPPED part: VLAN devices: " << r.err;  // no 8021q module here
    } else {
        EXPECT_NE(ns_out({"ip", "-d", "link", "show", "vteth1.42"}).find("vlan protocol 802.1Q id 42"), std::string::npos);
        ASSERT_EQ(vireo({"iface-destroy", "vteth1.42"}).exit_code, 0);
    }
    ASSERT_TRUE(files::write_atomic(dir_ / "bond.xml", "<interface type='bond' name='vtbond0'><bond mode='active-backup'>"
                                                       "<miimon freq='100'/><interface type='ethernet' name='vteth1'/></bond>"
                                                       "</interface>"));
    ASSERT_EQ(vireo({"iface-define", (dir_ / "bond.xml").native()}).exit_code, 0);
    r = vireo({"iface-start", "vtbond0"});
    if (r.exit_code != 0) {
        std::cout << "SKIPPED part: bond devices: " << r.err;  // no bonding module here
    } else {
        EXPECT_NE(ns_out({"ip", "link", "show", "vteth1"}).find("master vtbond0"), std::string::npos);
        ASSERT_EQ(vireo({"iface-destroy", "vtbond0"}).exit_code, 0);
    }
}

TEST_F(NetworkCli, SessionDaemonHasNoNetworks) {
    daemon_ = std::make_unique<test::NsDaemon>(*ns_, dir_.path());
    std::string why;
    ASSERT_TRUE(daemon_->start(&why, true)) << why;
    auto r = vireo({"net-list", "--all"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, " Name   State   Autostart   Persistent\n----------------------------------------\n\n");
    r = vireo({"net-define", (dir_ / "net.xml").native()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, fmt::format("error: Failed to define network from {}\n"
                                 "error: virtual networks and host interfaces are managed by the system daemon: connect to "
                                 "qemu:///system (the session daemon cannot create bridges, firewall rules or DHCP servers)\n",
                                 (dir_ / "net.xml").native()));
    r = vireo({"iface-list"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("managed by the system daemon"), std::string::npos) << r.err;
}
