// Guest NICs under the QEMU driver, with real taps, bridges, macvtaps and a
// TCG guest. Each test runs in network and mount namespaces of its own
// (made by unshare() before the driver's threads exist, so every thread and
// every process it starts is inside), plus a peer namespace joined by a veth
// pair: no packet leaves what the test made, on addresses it chose.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <regex>
#include <thread>

#include <fmt/format.h>

#include "../network/netns.hpp"
#include "driver/ops/domain.hpp"
#include "helpers.hpp"
#include "network/netlink.hpp"
#include "network/tap.hpp"
#include "support/guest.hpp"
#include "util/files.hpp"

namespace fs = std::filesystem;
using namespace vireo;
using namespace vireo::qemu::test;
namespace ops = vireo::driver::ops;

namespace {

// Leave the machine's network: a private network namespace and a mount
// namespace with a sysfs of it (macvtaps are found through /sys/class/net).
std::string isolate() {
    if (auto why = vireo::test::netns_unavailable(); !why.empty()) return why;
    if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) return "unshare(CLONE_NEWNET | CLONE_NEWNS) failed";
    if (::mount("", "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0 || ::mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0)
        return "cannot mount a sysfs of the test's namespace";
    vireo::test::run({"ip", "link", "set", "lo", "up"});
    return "";
}

#define VIREO_ISOLATE()                                       \
    do {                                                      \
        if (auto why_ = isolate(); !why_.empty()) VIREO_SKIP(why_); \
    } while (0)

bool link_exists(const std::string& name) {
    auto l = network::find_link(name);
    return l && *l;
}

std::vector<std::string> links_starting_with(const std::string& prefix) {
    std::vector<std::string> out;
    if (auto all = network::list_links())
        for (const auto& l : *all)
            if (l.name.starts_with(prefix)) out.push_back(l.name);
    return out;
}

// A bridge in the test's namespace and a peer namespace on it (veth), the
// peer at 10.77.0.1/24, the bridge itself at 10.77.0.254/24.
struct Lan {
    vireo::test::NetNs peer{"peer"};
    bool ok = false;
    explicit Lan(const std::string& bridge) {
        if (!peer.ok()) return;
        if (!network::create_bridge(bridge, {.stp = false, .delay_seconds = 0, .mtu = std::nullopt, .mac = std::nullopt})) return;
        if (!network::create_veth("vh0", "vp0") || !network::set_master("vh0", bridge)) return;
        if (!network::move_to_netns("vp0", peer.fd())) return;
        if (!network::set_link_up("vh0", true) || !network::set_link_up(bridge, true)) return;
        if (!network::add_address(bridge, *conf::IpAddr::parse("10.77.0.254"), 24)) return;
        ok = peer.exec({"ip", "addr", "add", "10.77.0.1/24", "dev", "vp0"}).exit_code == 0 &&
             peer.exec({"ip", "link", "set", "vp0", "up"}).exit_code == 0;
    }
};

// A NetworkPorts of the test's own: one network "testnet" on a bridge the
// test made, its plugs and unplugs recorded, one lease per MAC it is given.
class TestPorts final : public driver::NetworkPorts {
public:
    std::string bridge;
    bool active = true;
    std::map<std::string, std::string> leases;  // mac -> ip
    std::vector<std::string> log;

    Result<driver::NetworkPort> plug(const driver::NetworkPortRequest& r) override {
        std::lock_guard lk(mu_);
        log.push_back("plug " + r.network + " " + r.domain + " " + r.mac);
        if (r.network != "testnet" || !active)
            return fail(ErrorCode::InvalidState, "network '{}' is not active", r.network);
        return driver::NetworkPort{r.network, bridge, 0};
    }
    void unplug(std::string_view network, std::string_view domain, std::string_view mac) override {
        std::lock_guard lk(mu_);
        log.push_back(fmt::format("unplug {} {} {}", network, domain, mac));
    }
    std::vector<driver::NetworkLease> leases_for(const std::vector<std::string>& macs) override {
        std::vector<driver::NetworkLease> out;
        for (const auto& m : macs)
            if (auto it = leases.find(m); it != leases.end()) out.push_back({"testnet", m, it->second, 24, "guest", 0});
        return out;
    }
    std::vector<std::string> calls() {
        std::lock_guard lk(mu_);
        return log;
    }

private:
    std::mutex mu_;
};

std::string live_xml(GuestFixture& f, const std::string& name) {
    auto x = f.drv->domain_xml(name, false);
    EXPECT_TRUE(x) << x.error().full_message();
    return x ? *x : "";
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

// A TCG guest on a host bridge (type='bridge') talks to a namespace on it;
// domifstat grows, domif-setlink down cuts it off, domifaddr --source arp
// finds it; the tap goes with the guest.
TEST(QemuNics, BridgeGuestReachesANamespaceOnTheBridge) {
    VIREO_REQUIRE_GUEST();
    VIREO_ISOLATE();
    Lan lan("vbr0");
    ASSERT_TRUE(lan.ok) << "cannot build the test LAN";
    GuestFixture f;
    f.define_and_start("nic", "<interface type='bridge'><source bridge='vbr0'/><model type='virtio'/></interface>",
                       "vireo.ip=eth0=10.77.0.2/24");
    f.wait_ready("nic");
    auto console_log = files::read(f.drv->console_log_path("nic"));
    ASSERT_TRUE(console_log);
    auto ready = vireo::test::parse_guest_ready(*console_log);
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->addrs, std::vector<std::string>{"eth0=10.77.0.2/24"}) << *console_log;

    // The live XML names the tap, the alias, and says vhost-net is not used
    // where /dev/vhost-net does not exist.
    const std::string xml = live_xml(f, "nic");
    EXPECT_TRUE(contains(xml, "<target dev='vnet0'/>")) << xml;
    EXPECT_TRUE(contains(xml, "<alias name='net0'/>")) << xml;
    if (::access("/dev/vhost-net", F_OK) != 0) {
        EXPECT_TRUE(contains(xml, "<driver name='qemu'/>")) << xml;
    }
    auto tap = network::find_link("vnet0");
    ASSERT_TRUE(tap && *tap);
    auto br = network::find_link("vbr0");
    EXPECT_EQ((*tap)->master, (*br)->index) << "the tap joined the bridge";
    EXPECT_EQ((*tap)->mac->str().substr(0, 3), "fe:") << "the host side of the tap has libvirt's fe: MAC";

    auto con = f.console("nic");
    auto ping = con.run("ping -c 2 -W 3 10.77.0.1", std::chrono::seconds(40));
    ASSERT_TRUE(ping);
    EXPECT_TRUE(contains(*ping, "2 packets received")) << *ping;

    // TCP to a listener in the peer namespace.
    vireo::test::TempDir tmp;
    const fs::path got = tmp.path() / "got";
    {
        vireo::test::Background server(
            {"ip", "netns", "exec", lan.peer.name(), "sh", "-c", "busybox nc -l -p 7777 > " + got.string()});
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        auto sent = con.run("echo vireo-over-tcp | nc 10.77.0.1 7777; echo sent", std::chrono::seconds(30));
        ASSERT_TRUE(sent);
        EXPECT_TRUE(wait_file(got, std::regex("vireo-over-tcp"), std::chrono::seconds(10)))
            << "the peer namespace did not receive the guest's TCP data";
    }

    // domifstat: the guest's view of the tap's counters, by name or MAC.
    auto before = f.drv->call<ops::DomainInterfaceStats>({.ref = "nic", .device = "vnet0"});
    ASSERT_TRUE(before) << before.error().full_message();
    EXPECT_EQ(before->name, "vnet0");
    EXPECT_GT(before->tx_packets, 0u);
    EXPECT_GT(before->rx_packets, 0u);
    ASSERT_TRUE(con.run("ping -c 3 -W 3 10.77.0.1", std::chrono::seconds(40)));
    auto after = f.drv->call<ops::DomainInterfaceStats>({.ref = "nic", .device = "vnet0"});
    ASSERT_TRUE(after);
    EXPECT_GE(after->tx_packets, before->tx_packets + 3) << "the guest sent 3 echo requests";
    EXPECT_GE(after->rx_packets, before->rx_packets + 3) << "and got 3 replies";
    EXPECT_GT(after->tx_bytes, before->tx_bytes);
    auto unknown = f.drv->call<ops::DomainInterfaceStats>({.ref = "nic", .device = "vnet9"});
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().message, "invalid argument: invalid path, 'vnet9' is not a known interface");

    // domifaddr --source arp: the host's neighbour table once the host talked to it.
    EXPECT_EQ(vireo::test::run({"busybox", "ping", "-c", "1", "-W", "5", "10.77.0.2"}).exit_code, 0);
    auto arp = f.drv->call<ops::DomainInterfaceAddresses>({.ref = "nic", .source = driver::AddressSource::Arp});
    ASSERT_TRUE(arp) << arp.error().full_message();
    ASSERT_EQ(arp->size(), 1u);
    EXPECT_EQ((*arp)[0].name, "vnet0");
    EXPECT_EQ((*arp)[0].address, "10.77.0.2");
    EXPECT_EQ((*arp)[0].type, "ipv4");

    // domif-setlink down: no carrier in the guest, no traffic; up again: traffic.
    ASSERT_TRUE(f.drv->call<ops::DomainSetInterfaceLink>({.ref = "nic", .device = "vnet0", .state = driver::LinkState::Down}));
    EXPECT_EQ(f.drv->call<ops::DomainInterfaceLink>({.ref = "nic", .device = "vnet0"}).value_or("?"), "down");
    // The persistent definition has no tap name: virsh names the NIC by MAC there.
    const std::string mac = (*tap)->mac ? "52" + (*tap)->mac->str().substr(2) : "";
    EXPECT_EQ(f.drv->call<ops::DomainInterfaceLink>({.ref = "nic", .device = mac, .config = true}).value_or("?"), "up")
        << "a live change leaves the persistent definition";
    EXPECT_TRUE(contains(live_xml(f, "nic"), "<link state='down'/>"));
    auto down = con.run("ping -c 2 -W 2 10.77.0.1; cat /sys/class/net/eth0/carrier", std::chrono::seconds(40));
    ASSERT_TRUE(down);
    EXPECT_TRUE(contains(*down, "0 packets received")) << *down;
    ASSERT_TRUE(f.drv->call<ops::DomainSetInterfaceLink>({.ref = "nic", .device = "vnet0", .state = driver::LinkState::Up}));
    auto up = con.run("sleep 1; ping -c 2 -W 3 10.77.0.1", std::chrono::seconds(40));
    ASSERT_TRUE(up);
    EXPECT_TRUE(contains(*up, "2 packets received")) << *up;

    // update-device with the NIC's document: its link state changes live,
    // anything else is refused and changes nothing.
    const std::string nic_doc = "<interface type='bridge'><mac address='" + mac +
                                "'/><source bridge='vbr0'/><model type='virtio'/><link state='{}'/></interface>";
    auto update = [&](const std::string& doc) {
        return f.drv->call<ops::DomainUpdateDevice>({.ref = "nic", .xml = doc, .live = true});
    };
    ASSERT_TRUE(update(fmt::format(fmt::runtime(nic_doc), "down")));
    EXPECT_TRUE(contains(live_xml(f, "nic"), "<link state='down'/>"));
    auto carrier = con.run("cat /sys/class/net/eth0/carrier", std::chrono::seconds(20));
    EXPECT_TRUE(carrier && contains(*carrier, "0")) << carrier.value_or("<no answer>");
    auto model = update("<interface type='bridge'><mac address='" + mac + "'/><source bridge='vbr0'/><model type='e1000'/></interface>");
    ASSERT_FALSE(model);
    EXPECT_TRUE(contains(model.error().full_message(), "cannot change the model of interface")) << model.error().full_message();
    EXPECT_TRUE(contains(live_xml(f, "nic"), "<link state='down'/>")) << "a refused update changes nothing";
    ASSERT_TRUE(update(fmt::format(fmt::runtime(nic_doc), "up")));
    carrier = con.run("sleep 1; cat /sys/class/net/eth0/carrier", std::chrono::seconds(20));
    EXPECT_TRUE(carrier && contains(*carrier, "1")) << carrier.value_or("<no answer>");

    ASSERT_TRUE(f.drv->destroy_domain("nic", {}));
    for (int i = 0; i < 100 && link_exists("vnet0"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(link_exists("vnet0")) << "the tap goes with QEMU";
}

// NIC hotplug: a bridge NIC attached to the running guest gets a tap on the
// bridge, the guest sees it and reaches the namespace on the bridge; a
// detach by MAC waits for the guest, then the tap goes. A refused attach
// (no such bridge) changes neither definition and leaves no tap.
TEST(QemuNics, HotpluggedBridgeNicReachesTheLanAndDetaches) {
    VIREO_REQUIRE_GUEST();
    VIREO_ISOLATE();
    Lan lan("vbr2");
    ASSERT_TRUE(lan.ok) << "cannot build the test LAN";
    GuestFixture f;
    f.define_and_start("hpn");
    f.wait_ready("hpn");
    auto con = f.console("hpn");
    const std::string live_before = live_xml(f, "hpn");
    const std::string config_before = f.drv->domain_xml("hpn", true).value_or("");
    ASSERT_FALSE(contains(live_before, "<interface")) << "the test guest starts without a NIC";

    auto missing = f.drv->call<ops::DomainAttachDevice>(
        {.ref = "hpn", .xml = "<interface type='bridge'><source bridge='nobr'/><model type='virtio'/></interface>",
         .live = true, .config = true});
    ASSERT_FALSE(missing);
    EXPECT_TRUE(contains(missing.error().full_message(), "bridge 'nobr' does not exist")) << missing.error().full_message();
    EXPECT_EQ(live_xml(f, "hpn"), live_before);
    EXPECT_EQ(f.drv->domain_xml("hpn", true).value_or(""), config_before);
    EXPECT_TRUE(links_starting_with("vnet").empty());

    // Live attach: a tap on the bridge, the alias and address a define gives.
    auto attached = f.drv->call<ops::DomainAttachDevice>(
        {.ref = "hpn", .xml = "<interface type='bridge'><mac address='52:54:00:77:02:01'/><source bridge='vbr2'/>"
                              "<model type='virtio'/></interface>",
         .live = true});
    ASSERT_TRUE(attached) << attached.error().full_message();
    const std::string xml = live_xml(f, "hpn");
    EXPECT_TRUE(contains(xml, "<mac address='52:54:00:77:02:01'/>")) << xml;
    EXPECT_TRUE(contains(xml, "<target dev='vnet0'/>")) << xml;
    EXPECT_TRUE(contains(xml, "<alias name='net0'/>")) << xml;
    EXPECT_TRUE(contains(xml, "<address type='pci'")) << xml;
    EXPECT_FALSE(contains(f.drv->domain_xml("hpn", true).value_or(""), "<interface")) << "--live leaves the persistent definition";
    auto tap = network::find_link("vnet0");
    ASSERT_TRUE(tap && *tap);
    EXPECT_EQ((*tap)->master, (*network::find_link("vbr2"))->index) << "the tap joined the bridge";

    // The guest sees the NIC and talks through it.
    auto seen = con.run("for i in $(seq 1 30); do [ -e /sys/class/net/eth0 ] && echo FOU''ND && break; sleep 1; done",
                        std::chrono::seconds(60));
    ASSERT_TRUE(seen && contains(*seen, "FOUND")) << (seen ? *seen : "no console");
    auto ping = con.run("ip link set eth0 up; ip addr add 10.77.0.3/24 dev eth0; ping -c 2 -W 3 10.77.0.1",
                        std::chrono::seconds(40));
    ASSERT_TRUE(ping);
    EXPECT_TRUE(contains(*ping, "2 packets received")) << *ping;

    // A second attach of the same MAC is refused.
    auto twice = f.drv->call<ops::DomainAttachDevice>(
        {.ref = "hpn", .xml = "<interface type='bridge'><mac address='52:54:00:77:02:01'/><source bridge='vbr2'/></interface>",
         .live = true});
    ASSERT_FALSE(twice);
    EXPECT_TRUE(contains(twice.error().full_message(), "already has an interface with MAC address 52:54:00:77:02:01"))
        << twice.error().full_message();

    // Detach by MAC: the guest lets it go, the device-removed event, the tap goes.
    auto detached = f.drv->call<ops::DomainDetachDevice>(
        {.ref = "hpn", .xml = "<interface type='bridge'><mac address='52:54:00:77:02:01'/></interface>", .live = true});
    ASSERT_TRUE(detached) << detached.error().full_message();
    EXPECT_TRUE(f.events.wait_for("hpn", "DeviceRemoved/net0", std::chrono::seconds(5)));
    EXPECT_FALSE(contains(live_xml(f, "hpn"), "<interface"));
    for (int i = 0; i < 100 && link_exists("vnet0"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(link_exists("vnet0")) << "the tap goes with the NIC";
    auto gone = con.run("[ -e /sys/class/net/eth0 ] && echo STILL''THERE || echo GO''NE", std::chrono::seconds(20));
    ASSERT_TRUE(gone);
    EXPECT_TRUE(contains(*gone, "GONE")) << *gone;
    auto again = f.drv->call<ops::DomainDetachDevice>(
        {.ref = "hpn", .xml = "<interface type='bridge'><mac address='52:54:00:77:02:01'/></interface>", .live = true});
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, ErrorCode::NotFound);

    // --config: only the persistent definition, with a generated MAC.
    ASSERT_TRUE(f.drv->call<ops::DomainAttachDevice>(
        {.ref = "hpn", .xml = "<interface type='bridge'><source bridge='vbr2'/></interface>", .config = true}));
    const std::string cfg = f.drv->domain_xml("hpn", true).value_or("");
    EXPECT_TRUE(contains(cfg, "<mac address='52:54:00:")) << cfg;
    EXPECT_FALSE(contains(live_xml(f, "hpn"), "<interface"));
    ASSERT_TRUE(f.drv->call<ops::DomainDetachDevice>(
        {.ref = "hpn", .xml = "<interface type='bridge'/>", .config = true}));
    EXPECT_FALSE(contains(f.drv->domain_xml("hpn", true).value_or(""), "<interface"));
}

// type='network' through a NetworkPorts: the port's bridge, vnetN names,
// leases for domifaddr, unplug at the end; an inactive network refuses the
// start with nothing left behind. (The network driver's own ports and real
// dnsmasq leases are tested once it is joined to the QEMU driver.)
TEST(QemuNics, NetworkInterfacesJoinThePortsBridge) {
    VIREO_REQUIRE_GUEST();
    VIREO_ISOLATE();
    ASSERT_TRUE(network::create_bridge("tnbr0", {.stp = false, .delay_seconds = 0, .mtu = std::nullopt, .mac = std::nullopt}));
    ASSERT_TRUE(network::set_link_up("tnbr0", true));
    // A name already taken: the guests get the next free ones.
    auto squatter = network::create_tap({.name = "vnet0", .queues = 1, .vnet_hdr = true, .persistent = false, .exclusive = true});
    ASSERT_TRUE(squatter);
    TestPorts ports;
    ports.bridge = "tnbr0";
    ports.leases["52:54:00:77:00:01"] = "10.78.0.5";
    GuestFixture f;
    f.open([&](qemu::QemuDriverConfig& c) { c.networks = &ports; });
    const std::string nic = "<interface type='network'><mac address='52:54:00:77:00:01'/><source network='testnet'/>"
                            "<model type='virtio'/><driver queues='2'/></interface>"
                            "<interface type='network'><source network='testnet'/><model type='virtio'/><link state='down'/></interface>";
    f.define_and_start("netg", nic);
    const std::string xml = live_xml(f, "netg");
    EXPECT_TRUE(contains(xml, "<source network='testnet' bridge='tnbr0'/>")) << xml;
    EXPECT_TRUE(contains(xml, "<target dev='vnet1'/>")) << xml;
    EXPECT_TRUE(contains(xml, "<target dev='vnet2'/>")) << xml;
    for (const char* t : {"vnet1", "vnet2"}) {
        auto l = network::find_link(t);
        ASSERT_TRUE(l && *l) << t;
        EXPECT_EQ((*l)->master, (*network::find_link("tnbr0"))->index) << t;
    }
    EXPECT_EQ(f.drv->call<ops::DomainInterfaceLink>({.ref = "netg", .device = "vnet2"}).value_or("?"), "down");
    auto leases = f.drv->call<ops::DomainInterfaceAddresses>({.ref = "netg", .source = driver::AddressSource::Lease});
    ASSERT_TRUE(leases) << leases.error().full_message();
    ASSERT_EQ(leases->size(), 1u);
    EXPECT_EQ((*leases)[0].name, "vnet1");
    EXPECT_EQ((*leases)[0].address, "10.78.0.5");
    EXPECT_EQ((*leases)[0].prefix, 24u);
    // The generated MAC of the second NIC is not the first's.
    auto ifaces = f.drv->domain_interfaces("netg", false);
    ASSERT_TRUE(ifaces);
    ASSERT_EQ(ifaces->size(), 2u);
    EXPECT_TRUE((*ifaces)[1].mac.starts_with("52:54:00:"));
    const std::string mac2 = (*ifaces)[1].mac;

    // A daemon restart keeps the taps (QEMU holds them) and tells the ports again.
    f.close();
    f.open([&](qemu::QemuDriverConfig& c) { c.networks = &ports; });
    EXPECT_TRUE(link_exists("vnet1"));
    EXPECT_EQ(f.info("netg").state, driver::DomainState::Running);

    ASSERT_TRUE(f.drv->destroy_domain("netg", {}));
    const auto calls = ports.calls();
    EXPECT_EQ(std::count(calls.begin(), calls.end(), "unplug testnet netg 52:54:00:77:00:01"), 1) << fmt::format("{}", fmt::join(calls, "\n"));
    EXPECT_EQ(std::count(calls.begin(), calls.end(), "unplug testnet netg " + mac2), 1);
    EXPECT_EQ(std::count(calls.begin(), calls.end(), "plug testnet netg 52:54:00:77:00:01"), 2) << "start and reattach";

    // An inactive network: the start fails naming the interface; no tap, no port left.
    ports.active = false;
    auto st = f.drv->start_domain("netg", {});
    ASSERT_FALSE(st);
    EXPECT_TRUE(contains(st.error().full_message(), "interface 'net0' (52:54:00:77:00:01, type 'network')"))
        << st.error().full_message();
    EXPECT_TRUE(contains(st.error().full_message(), "network 'testnet' is not active")) << st.error().full_message();
    for (int i = 0; i < 100 && links_starting_with("vnet").size() > 1; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(links_starting_with("vnet"), std::vector<std::string>{"vnet0"}) << "only the test's own tap is left";
    EXPECT_TRUE(files_starting_with(f.tmp.path() / "run", "netg").empty());
}

// Without virtual networks (a session daemon), type='network' is refused at
// start with the interface named, and nothing is made.
TEST(QemuNics, WithoutNetworksTypeNetworkIsRefused) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    auto d = f.drv->define_domain(
        guest_xml("nonet", "<interface type='network'><mac address='52:54:00:77:00:09'/><source network='default'/></interface>"), true);
    ASSERT_TRUE(d) << d.error().full_message();
    auto st = f.drv->start_domain("nonet", {});
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().full_message(),
              "failed to start domain 'nonet': interface 'net0' (52:54:00:77:00:09, type 'network'): this session "
              "daemon has no virtual networks, so network 'default' cannot be joined (use qemu:///system, or "
              "type='user' for a session guest)");
    EXPECT_TRUE(files_starting_with(f.tmp.path() / "run", "nonet").empty());
    EXPECT_TRUE(qemu_pids_for("nonet").empty());
}

// type='direct' (macvtap) and type='ethernet' (a tap of the user's, or one
// vireo makes with the <target dev> name): what vireo made goes at the end,
// also when the end is seen by a restarted daemon; what it did not make stays.
TEST(QemuNics, MacvtapAndEthernetTapsAreCleanedUpExactly) {
    VIREO_REQUIRE_GUEST();
    VIREO_ISOLATE();
    ASSERT_TRUE(network::create_veth("vlow0", "vlow1"));
    ASSERT_TRUE(network::set_link_up("vlow0", true));
    {
        auto own = network::create_tap({.name = "usertap0", .queues = 1, .vnet_hdr = true, .persistent = true, .exclusive = true});
        ASSERT_TRUE(own) << own.error().full_message();
    }
    GuestFixture f;
    const std::string nics =
        "<interface type='direct'><source dev='vlow0' mode='bridge'/><model type='virtio'/></interface>"
        "<interface type='ethernet'><target dev='usertap0' managed='no'/><model type='virtio'/></interface>"
        "<interface type='ethernet'><target dev='madetap0'/><model type='virtio'/></interface>";
    auto d = f.drv->define_domain(guest_xml("dir", nics), true);
    ASSERT_TRUE(d) << d.error().full_message();
    auto st = f.drv->start_domain("dir", {});
    if (!st && contains(st.error().full_message(), "macvtap"))
        VIREO_SKIP("this kernel has no macvtap: " + st.error().full_message());
    ASSERT_TRUE(st) << st.error().full_message();
    const std::string xml = live_xml(f, "dir");
    EXPECT_TRUE(contains(xml, "<target dev='macvtap0'/>")) << xml;
    EXPECT_TRUE(contains(xml, "<target dev='usertap0' managed='no'/>")) << xml;
    EXPECT_TRUE(contains(xml, "<target dev='madetap0'/>")) << xml;
    EXPECT_EQ((*network::find_link("macvtap0"))->kind, "macvtap");
    auto stats = f.drv->call<ops::DomainInterfaceStats>({.ref = "dir", .device = "macvtap0"});
    EXPECT_TRUE(stats) << stats.error().full_message();

    // The guest dies while no daemon watches: the next daemon removes the macvtap.
    const int pid = f.drv->qemu_pid("dir");
    ASSERT_GT(pid, 0);
    f.close();
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    // Its command line empties when its memory goes, before its descriptors
    // are closed: wait until it is a zombie or gone.
    auto exited = [pid] {
        auto stat = files::read(fmt::format("/proc/{}/stat", pid));
        if (!stat) return true;
        const auto paren = stat->rfind(')');
        return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] == 'Z';
    };
    for (int i = 0; i < 200 && !exited(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(exited());
    f.open();
    EXPECT_EQ(f.info("dir").state, driver::DomainState::Shutoff);
    EXPECT_FALSE(link_exists("macvtap0")) << "the macvtap of a guest found dead is removed";
    EXPECT_FALSE(link_exists("madetap0")) << "a tap vireo made goes with QEMU";
    EXPECT_TRUE(link_exists("usertap0")) << "managed='no': the user's tap stays";

    // And at a plain destroy (right away: the kernel may still be releasing
    // the user's tap from the dead QEMU; the start waits for it).
    auto restarted = f.drv->start_domain("dir", {});
    ASSERT_TRUE(restarted) << restarted.error().full_message();
    EXPECT_TRUE(link_exists("macvtap0"));
    ASSERT_TRUE(f.drv->destroy_domain("dir", {}));
    EXPECT_FALSE(link_exists("macvtap0"));
    EXPECT_TRUE(link_exists("usertap0"));
    (void)network::unpersist_tap("usertap0");

    // A bridge that does not exist: refused before anything is made.
    ASSERT_TRUE(f.drv->define_domain(guest_xml("nobr", "<interface type='bridge'><source bridge='nosuchbr'/></interface>"), true));
    auto nobr = f.drv->start_domain("nobr", {});
    ASSERT_FALSE(nobr);
    EXPECT_TRUE(contains(nobr.error().full_message(), "bridge 'nosuchbr' does not exist")) << nobr.error().full_message();
    EXPECT_TRUE(links_starting_with("vnet").empty());
}

// A user NIC on passt (Debian's passt, QEMU 7.2's -netdev stream), what a
// session guest without privileges uses: passt's DHCP gives the guest the
// address of the namespace's interface, and the guest's TCP connections go
// out through passt's sockets to a server in the peer namespace.
TEST(QemuNics, PasstGivesAGuestTheNamespacesNetwork) {
    VIREO_REQUIRE_GUEST();
    if (vireo::test::which("passt").empty()) VIREO_SKIP("passt is not installed (apt-get install passt)");
    VIREO_ISOLATE();
    Lan lan("vbr0");
    ASSERT_TRUE(lan.ok) << "cannot build the test LAN";
    // passt copies the host's addresses and default route; the gateway
    // (10.77.0.1) it maps to the host itself, so the server listens on .3.
    ASSERT_EQ(vireo::test::run({"ip", "route", "add", "default", "via", "10.77.0.1"}).exit_code, 0);
    ASSERT_EQ(lan.peer.exec({"ip", "addr", "add", "10.77.0.3/24", "dev", "vp0"}).exit_code, 0);
    GuestFixture f;
    f.define_and_start("pst", "<interface type='user'><backend type='passt'/><model type='virtio'/></interface>",
                       "vireo.dhcp=1");
    f.wait_ready("pst");
    auto console_log = files::read(f.drv->console_log_path("pst"));
    ASSERT_TRUE(console_log);
    auto ready = vireo::test::parse_guest_ready(*console_log);
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->addrs, std::vector<std::string>{"eth0=10.77.0.254/24"}) << *console_log;

    vireo::test::TempDir tmp;
    const fs::path got = tmp.path() / "got";
    {
        vireo::test::Background server(
            {"ip", "netns", "exec", lan.peer.name(), "sh", "-c", "busybox nc -l -p 7777 > " + got.string()});
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        auto con = f.console("pst");
        auto sent = con.run("echo vireo-over-passt | nc 10.77.0.3 7777; echo sent", std::chrono::seconds(30));
        ASSERT_TRUE(sent);
        EXPECT_TRUE(wait_file(got, std::regex("vireo-over-passt"), std::chrono::seconds(10)))
            << "the peer namespace did not receive the guest's TCP data";
    }
    ASSERT_TRUE(f.drv->destroy_domain("pst", {}));
    EXPECT_TRUE(files_starting_with(f.tmp.path() / "run", "pst.passt").empty());
}
