// Guests on virtual networks, end to end: a system vireod (the real network
// driver joined to the QEMU driver) running inside a network namespace the
// test makes ("host"), the vireo CLI, dnsmasq, nftables, and two TCG test
// guests booted once for the whole suite:
//
//   g1: eth0 on e2enat (nat), eth1 on e2eroute (route), eth2 on e2eiso (isolated)
//   g2: eth0 on e2enat (nat), eth1 on e2eopen (open)
//
// A second namespace ("out") plays the outside world: joined to "host" by a
// veth pair (host 10.231.0.1, out 10.231.0.2), with a route back to the
// guests' subnets 10.230.0.0/16, and a TCP listener of the test in it.
// Every address is one the test assigns; nothing leaves the two namespaces.
//
// Registered as one CTest test (NetworkGuests) so that the guests boot once:
// the cases run in the order written, the daemon's SIGKILL last.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "netns.hpp"
#include "ns_daemon.hpp"
#include "support/guest.hpp"
#include "util/fd.hpp"
#include "util/files.hpp"

using namespace vireo;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kOutside = "10.231.0.2";  // the TCP server in "out"
constexpr const char* kHostOutside = "10.231.0.1";  // "host"'s end of the veth

// The networks: name, forward element, bridge, third octet of 10.230.N.0/24.
struct NetSpec {
    const char* name;
    const char* forward;
    const char* bridge;
    int octet;
};
constexpr NetSpec kNets[] = {
    {"e2enat", "<forward mode='nat'/>", "vtebr1", 1},
    {"e2eroute", "<forward mode='route'/>", "vtebr2", 2},
    {"e2eiso", "", "vtebr3", 3},
    {"e2eopen", "<forward mode='open'/>", "vtebr4", 4},
};

std::string network_xml(const NetSpec& n) {
    // The NAT network names its domain: guests are found as g2 and g2.e2e.test.
    const std::string domain = n.octet == 1 ? "\n  <domain name='e2e.test' localOnly='yes'/>" : "";
    return fmt::format(R"(<network>
  <name>{}</name>
  {}
  <bridge name='{}'/>{}
  <ip address='10.230.{}.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.230.{}.10' end='10.230.{}.99'/>
    </dhcp>
  </ip>
</network>
)",
                       n.name, n.forward, n.bridge, domain, n.octet, n.octet, n.octet);
}

std::string nic(const std::string& mac, const std::string& network) {
    return fmt::format("<interface type='network'><mac address='{}'/><source network='{}'/><model type='virtio'/></interface>",
                       mac, network);
}

const std::map<std::string, std::string> kMacs = {
    {"g1/eth0", "52:54:00:e2:01:01"}, {"g1/eth1", "52:54:00:e2:01:02"}, {"g1/eth2", "52:54:00:e2:01:03"},
    {"g2/eth0", "52:54:00:e2:02:01"}, {"g2/eth1", "52:54:00:e2:02:04"},
};

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// A shell on a guest's serial console through `vireo console`.
class GuestShell {
public:
    GuestShell(const test::NsDaemon& daemon, const std::string& name) {
        auto p = test::QemuProcess::start({(test::bin_dir() / "vireo").native(), "-c", daemon.uri(), "console", name});
        if (p) proc_.emplace(std::move(*p));
    }
    // The command's output; nullopt on timeout (the console's output in *log).
    std::optional<std::string> run(const std::string& command, std::chrono::milliseconds timeout = 40s) {
        if (!proc_) return std::nullopt;
        if (!prompted_) {
            // The prompt was printed before we attached: ask for another.
            prompted_ = proc_->send("\n");
        }
        return test::guest_shell(*proc_, command, timeout);
    }
    [[nodiscard]] std::string output() const { return proc_ ? proc_->output() : "(no console)"; }

private:
    std::optional<test::QemuProcess> proc_;
    bool prompted_ = false;
};

// A TCP listener of the test in a namespace: the first connection's peer
// address and what it sent.
class Listener {
public:
    Listener(const test::NetNs& ns, const std::string& address, int port) {
        test::EnterNs in(ns);  // the socket belongs to the namespace it is made in
        if (!in.ok()) return;
        fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const int one = 1;
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
        if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_.get(), 4) != 0) fd_.reset();
    }
    [[nodiscard]] bool ok() const { return static_cast<bool>(fd_); }

    struct Accepted {
        std::string peer;
        std::string data;
    };
    // Accept within `timeout`, read until EOF (at most 5 s), close.
    std::future<std::optional<Accepted>> accept_one(std::chrono::milliseconds timeout) {
        return std::async(std::launch::async, [this, timeout]() -> std::optional<Accepted> {
            pollfd p{fd_.get(), POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
            sockaddr_in peer{};
            socklen_t len = sizeof peer;
            UniqueFd c(::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
            if (!c) return std::nullopt;
            char text[INET_ADDRSTRLEN] = {};
            ::inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
            Accepted out{text, ""};
            const auto deadline = std::chrono::steady_clock::now() + 5s;
            while (std::chrono::steady_clock::now() < deadline) {
                pollfd q{c.get(), POLLIN, 0};
                if (::poll(&q, 1, 200) <= 0) continue;
                char buf[512];
                const ssize_t n = ::read(c.get(), buf, sizeof buf);
                if (n <= 0) break;
                out.data.append(buf, static_cast<std::size_t>(n));
            }
            return out;
        });
    }

private:
    UniqueFd fd_;
};

// Names of the links of the calling namespace ("host" when run through it).
std::set<std::string> link_names(const test::NetNs& ns) {
    std::set<std::string> out;
    const auto r = ns.exec({"ip", "-o", "link", "show"});
    static const std::regex name(R"(^\d+: ([^:@]+))");
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line))
        if (std::smatch m; std::regex_search(line, m, name)) out.insert(m[1]);
    return out;
}

// `nft list ruleset` with its tables in name order. A restarted daemon
// replaces each network's table in one transaction (delete and add), which
// moves it to the end of nft's listing: the order of tables means nothing
// (each is evaluated through its own base chains), their content must not
// change and none may appear twice.
std::string tables_sorted(const std::string& ruleset) {
    std::vector<std::string> tables;
    std::istringstream in(ruleset);
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with("table ")) tables.emplace_back();
        if (!tables.empty()) tables.back() += line + "\n";
    }
    std::sort(tables.begin(), tables.end());
    std::string out;
    for (const auto& t : tables) out += t;
    return out;
}

// The suite's world: namespaces, the daemon, networks and running guests.
struct World {
    test::TempDir dir;
    std::unique_ptr<test::NetNs> host, out;
    std::unique_ptr<test::NsDaemon> daemon;
    std::map<std::string, std::string> addr;  // "g1/eth0" -> "10.230.1.23"
    std::string error;                        // why the world could not be made

    test::CommandResult vireo(const std::vector<std::string>& args) const { return daemon->vireo(args); }

    bool fail(std::string why) {
        error = std::move(why);
        return false;
    }

    bool make() {
        host = std::make_unique<test::NetNs>("gh");
        out = std::make_unique<test::NetNs>("go");
        if (!host->ok() || !out->ok()) return fail("cannot make the namespaces");
        fs::permissions(dir.path(), fs::perms(0755));
        // The outside world: a veth pair between "host" and "out".
        for (const auto& argv : std::vector<std::vector<std::string>>{
                 {"ip", "link", "add", "vteo0", "type", "veth", "peer", "name", "vteo1", "netns", out->name()},
                 {"ip", "addr", "add", std::string(kHostOutside) + "/24", "dev", "vteo0"},
                 {"ip", "link", "set", "vteo0", "up"}})
            if (auto r = host->exec(argv); r.exit_code != 0) return fail(fmt::format("{}: {}", fmt::join(argv, " "), r.err));
        for (const auto& argv : std::vector<std::vector<std::string>>{
                 {"ip", "addr", "add", std::string(kOutside) + "/24", "dev", "vteo1"},
                 {"ip", "link", "set", "vteo1", "up"},
                 {"ip", "route", "add", "10.230.0.0/16", "via", kHostOutside}})
            if (auto r = out->exec(argv); r.exit_code != 0) return fail(fmt::format("{}: {}", fmt::join(argv, " "), r.err));

        daemon = std::make_unique<test::NsDaemon>(*host, dir.path());
        if (std::string why; !daemon->start(&why)) return fail(why);
        for (const auto& n : kNets) {
            const fs::path file = dir / (std::string(n.name) + ".xml");
            if (!files::write_atomic(file, network_xml(n))) return fail("cannot write " + file.native());
            if (auto r = vireo({"net-define", file.native()}); r.exit_code != 0) return fail(r.err);
            if (auto r = vireo({"net-start", n.name}); r.exit_code != 0) return fail(r.err + daemon->log());
        }
        // Defined, never started: for the refusals.
        const fs::path off = dir / "e2eoff.xml";
        (void)files::write_atomic(off, network_xml({"e2eoff", "<forward mode='nat'/>", "vtebr9", 9}));
        if (auto r = vireo({"net-define", off.native()}); r.exit_code != 0) return fail(r.err);

        const std::map<std::string, std::string> nics = {
            {"g1", nic(kMacs.at("g1/eth0"), "e2enat") + nic(kMacs.at("g1/eth1"), "e2eroute") + nic(kMacs.at("g1/eth2"), "e2eiso")},
            {"g2", nic(kMacs.at("g2/eth0"), "e2enat") + nic(kMacs.at("g2/eth1"), "e2eopen")},
        };
        for (const auto& [name, devices] : nics) {
            const fs::path file = dir / (name + ".xml");
            (void)files::write_atomic(file, test::guest_domain_xml(name, devices, "vireo.dhcp=1 vireo.hostname=" + name));
            if (auto r = vireo({"define", file.native()}); r.exit_code != 0) return fail(r.err);
            if (auto r = vireo({"start", name}); r.exit_code != 0) return fail(r.err + daemon->log());
        }
        // Both boot at once; their marker lines carry the leased addresses.
        for (const char* name : {"g1", "g2"}) {
            const fs::path log = dir / "run/qemu/log" / (std::string(name) + "-console.log");
            std::optional<test::GuestReady> ready;
            const auto deadline = std::chrono::steady_clock::now() + 150s;
            std::string text;
            while (!ready && std::chrono::steady_clock::now() < deadline) {
                auto t = files::read(log);
                text = t ? *t : "";
                ready = test::parse_guest_ready(text);
                if (!ready) std::this_thread::sleep_for(100ms);
            }
            if (!ready) return fail(fmt::format("no boot marker from {}:\n{}", name, text));
            for (const auto& a : ready->addrs) {
                const auto eq = a.find('='), slash = a.find('/');
                addr[fmt::format("{}/{}", name, a.substr(0, eq))] = a.substr(eq + 1, slash - eq - 1);
            }
            for (const auto& [key, mac] : kMacs)
                if (key.starts_with(std::string(name) + "/") && !addr.contains(key))
                    return fail(fmt::format("{} got no DHCP lease on {}:\n{}\n{}", name, key, text, diagnostics()));
        }
        return true;
    }

    // What the network side looks like, for a failure's message.
    std::string diagnostics() const {
        std::string out = "dnsmasq: " + test::run({"pgrep", "-af", (dir / "run/dnsmasq/").native()}).out;
        out += "links:\n" + host->exec({"ip", "-br", "link"}).out + host->exec({"ip", "-br", "addr"}).out;
        out += "ruleset:\n" + host->exec({"nft", "list", "ruleset"}).out;
        for (const auto& n : kNets)
            if (auto t = files::read(dir / "run/dnsmasq" / (std::string(n.name) + ".status"))) out += n.name + std::string(" leases: ") + *t + "\n";
        return out + "vireod's log:\n" + daemon->log();
    }

    // Whatever the cases left: every process in the namespaces (guests,
    // dnsmasq) ends with them.
    ~World() {
        if (daemon) {
            for (const char* g : {"g1", "g2"}) (void)vireo({"destroy", g});
            for (const auto& n : kNets) (void)vireo({"net-destroy", n.name});
            daemon->stop();
        }
        for (const auto* ns : {host.get(), out.get()}) {
            if (!ns) continue;
            const auto pids = test::run({"ip", "netns", "pids", ns->name()}).out;
            std::istringstream in(pids);
            for (std::string pid; in >> pid;) test::run({"kill", "-9", pid});
        }
    }
};

class NetworkGuests : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (auto why = test::netns_unavailable(); !why.empty()) {
            skip_ = why;
            return;
        }
        if (auto why = test::guest_unavailable_reason(); !why.empty()) {
            skip_ = why;
            return;
        }
        if (test::which("dnsmasq").empty() && !fs::exists("/usr/sbin/dnsmasq")) {
            skip_ = "dnsmasq is not installed";
            return;
        }
        if (test::which("nft").empty()) {
            skip_ = "nft (nftables) is not installed";
            return;
        }
        world_ = std::make_unique<World>();
        if (!world_->make()) {
            error_ = world_->error;
            world_.reset();
        }
    }
    static void TearDownTestSuite() {
        shells_.clear();  // the consoles first, while their daemon still runs
        world_.reset();
    }

    void SetUp() override {
        if (!skip_.empty()) VIREO_SKIP(skip_);
        ASSERT_TRUE(world_) << "the guests' world could not be made: " << error_;
    }

    static World& w() { return *world_; }
    static test::CommandResult vireo(const std::vector<std::string>& args) { return world_->vireo(args); }
    static const std::string& addr(const std::string& key) { return world_->addr.at(key); }
    static GuestShell& shell(const std::string& name) {
        auto& s = shells_[name];
        if (!s) s = std::make_unique<GuestShell>(*world_->daemon, name);
        return *s;
    }
    static void drop_shells() { shells_.clear(); }

    // The guest connects to the listener in "out" on `port` through the
    // route `via` on `dev`; what the listener saw (nullopt: nothing came).
    static std::optional<Listener::Accepted> connect_out(const std::string& guest, const std::string& dev, const std::string& via,
                                                         int port, std::string* guest_said,
                                                         std::chrono::milliseconds wait = 10s) {
        Listener l(*world_->out, kOutside, port);
        EXPECT_TRUE(l.ok());
        auto accepted = l.accept_one(wait);
        auto said = shell(guest).run(fmt::format("ip route replace {}/32 via {} dev {} && echo vireo-e2e | nc -w 5 {} {}; echo rc=$?",
                                                 kOutside, via, dev, kOutside, port));
        if (guest_said) *guest_said = said ? *said : "(console timed out) " + shell(guest).output();
        return accepted.get();
    }

    static inline std::unique_ptr<World> world_;
    static inline std::string skip_, error_;
    static inline std::map<std::string, std::unique_ptr<GuestShell>> shells_;
};

}  // namespace

// A domain whose network is missing or inactive, or that has one good NIC
// and one on an inactive network, is refused with the interface and the
// network named; nothing is left: no tap, no port, no QEMU. A session
// daemon refuses a guest asking for a system network.
TEST_F(NetworkGuests, RefusalsLeaveNothingBehind) {
    const auto links_before = link_names(*w().host);
    auto xml_before = vireo({"net-dumpxml", "e2enat"}).out;
    ASSERT_TRUE(contains(xml_before, "<network connections='2'>")) << xml_before;

    struct Case {
        const char* name;
        std::string devices;
        std::string message;
    };
    const Case cases[] = {
        {"nomissing", nic("52:54:00:e2:09:01", "e2emissing"),
         "interface 'net0' (52:54:00:e2:09:01, type 'network'): Network not found: no network with matching name 'e2emissing'"},
        {"noinactive", nic("52:54:00:e2:09:02", "e2eoff"),
         "interface 'net0' (52:54:00:e2:09:02, type 'network'): Requested operation is not valid: network 'e2eoff' is not active"},
        // The first NIC plugs (a tap on e2enat), the second fails: the first is undone.
        {"nohalf", nic("52:54:00:e2:09:03", "e2enat") + nic("52:54:00:e2:09:04", "e2eoff"),
         "interface 'net1' (52:54:00:e2:09:04, type 'network'): Requested operation is not valid: network 'e2eoff' is not active"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const fs::path file = w().dir / (std::string(c.name) + ".xml");
        ASSERT_TRUE(files::write_atomic(file, test::guest_domain_xml(c.name, c.devices)));
        ASSERT_EQ(vireo({"define", file.native()}).exit_code, 0);
        auto r = vireo({"start", c.name});
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_TRUE(contains(r.err, fmt::format("error: Failed to start domain '{}'", c.name))) << r.err;
        EXPECT_TRUE(contains(r.err, c.message)) << r.err;
        EXPECT_TRUE(contains(vireo({"domstate", c.name}).out, "shut off"));
        EXPECT_EQ(test::run({"pgrep", "-f", fmt::format("guest={},", c.name)}).out, "");
        // A tap goes when its last descriptor closes; give the kernel a moment.
        for (int i = 0; i < 30 && link_names(*w().host) != links_before; ++i) std::this_thread::sleep_for(100ms);
        EXPECT_EQ(link_names(*w().host), links_before) << "no tap left";
        EXPECT_TRUE(contains(vireo({"net-dumpxml", "e2enat"}).out, "<network connections='2'>")) << "no port left on e2enat";
        EXPECT_TRUE(contains(vireo({"net-info", "e2eoff"}).out, "Active:         no"));
        EXPECT_EQ(vireo({"undefine", c.name}).exit_code, 0);
    }

    // A session daemon (no virtual networks) in the same namespace.
    test::TempDir session_dir;
    fs::permissions(session_dir.path(), fs::perms(0755));
    test::NsDaemon session(*w().host, session_dir.path());
    std::string why;
    ASSERT_TRUE(session.start(&why, true)) << why;
    const fs::path file = session_dir / "sess.xml";
    ASSERT_TRUE(files::write_atomic(file, test::guest_domain_xml("sess", nic("52:54:00:e2:09:05", "e2enat"))));
    ASSERT_EQ(session.vireo({"define", file.native()}).exit_code, 0);
    auto r = session.vireo({"start", "sess"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(contains(r.err, "interface 'net0' (52:54:00:e2:09:05, type 'network'): this session daemon has no virtual "
                                "networks, so network 'e2enat' cannot be joined"))
        << r.err;
    EXPECT_TRUE(contains(session.vireo({"domstate", "sess"}).out, "shut off"));
    EXPECT_EQ(link_names(*w().host), links_before);
    session.stop();
}

// Both guests leased addresses from e2enat's dnsmasq (net-dhcp-leases and
// domifaddr --source lease show them, with the hostnames they sent), ping
// each other and the gateway, and find each other by name through the
// network's DNS.
TEST_F(NetworkGuests, LeasesPingAndNamesOnANatNetwork) {
    const std::string& a1 = addr("g1/eth0");
    const std::string& a2 = addr("g2/eth0");
    EXPECT_TRUE(a1.starts_with("10.230.1.")) << a1;
    EXPECT_TRUE(a2.starts_with("10.230.1.")) << a2;

    // The lease helper writes the status file after dnsmasq's reply: wait for it.
    test::CommandResult leases;
    for (int i = 0; i < 100; ++i) {
        leases = vireo({"net-dhcp-leases", "e2enat"});
        if (contains(leases.out, kMacs.at("g1/eth0")) && contains(leases.out, kMacs.at("g2/eth0"))) break;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(leases.exit_code, 0) << leases.err;
    EXPECT_TRUE(std::regex_search(leases.out, std::regex(fmt::format(R"({}\s+ipv4\s+{}/24\s+g1\s)", kMacs.at("g1/eth0"), a1))))
        << leases.out;
    EXPECT_TRUE(std::regex_search(leases.out, std::regex(fmt::format(R"({}\s+ipv4\s+{}/24\s+g2\s)", kMacs.at("g2/eth0"), a2))))
        << leases.out;
    auto one = vireo({"net-dhcp-leases", "e2enat", "--mac", kMacs.at("g2/eth0")});
    EXPECT_FALSE(contains(one.out, kMacs.at("g1/eth0"))) << one.out;
    EXPECT_TRUE(contains(one.out, a2 + "/24")) << one.out;

    auto ifaddr = vireo({"domifaddr", "g1", "--source", "lease"});
    EXPECT_EQ(ifaddr.exit_code, 0) << ifaddr.err;
    for (const char* dev : {"eth0", "eth1", "eth2"}) {
        const std::string key = std::string("g1/") + dev;
        EXPECT_TRUE(std::regex_search(ifaddr.out, std::regex(fmt::format(R"(vnet\d+\s+{}\s+ipv4\s+{}/24)", kMacs.at(key), addr(key)))))
            << key << "\n" << ifaddr.out;
    }

    auto& g1 = shell("g1");
    auto ping = g1.run(fmt::format("ping -c 2 -W 3 {}; ping -c 2 -W 3 10.230.1.1", a2));
    ASSERT_TRUE(ping) << g1.output();
    const std::regex received("2 packets received");
    EXPECT_EQ(std::distance(std::sregex_iterator(ping->begin(), ping->end(), received), std::sregex_iterator()), 2) << *ping;

    auto names = g1.run("nslookup g2 10.230.1.1");
    ASSERT_TRUE(names) << g1.output();
    EXPECT_TRUE(std::regex_search(*names, std::regex(fmt::format(R"(Name:\s+g2(\.e2e\.test)?\s+Address:\s+{}\b)", a2))))
        << *names;
    auto& g2 = shell("g2");
    auto back = g2.run("nslookup g1.e2e.test 10.230.1.1");
    ASSERT_TRUE(back) << g2.output();
    EXPECT_TRUE(std::regex_search(*back, std::regex(fmt::format(R"(Name:\s+g1\.e2e\.test\s+Address:\s+{}\b)", a1)))) << *back;
}

// NAT: the outside world sees the host's address, not the guest's.
TEST_F(NetworkGuests, NatShowsTheOutsideTheHostsAddress) {
    std::string said;
    auto got = connect_out("g1", "eth0", "10.230.1.1", 7101, &said);
    ASSERT_TRUE(got) << "nothing reached the outside; the guest said:\n" << said;
    EXPECT_EQ(got->peer, kHostOutside);
    EXPECT_EQ(got->data, "vireo-e2e\n");
    EXPECT_TRUE(contains(said, "rc=0")) << said;
}

// Routed: the outside world sees the guest's own address.
TEST_F(NetworkGuests, RoutedShowsTheOutsideTheGuestsAddress) {
    std::string said;
    auto got = connect_out("g1", "eth1", "10.230.2.1", 7102, &said);
    ASSERT_TRUE(got) << "nothing reached the outside; the guest said:\n" << said;
    EXPECT_EQ(got->peer, addr("g1/eth1"));
    EXPECT_EQ(got->data, "vireo-e2e\n");
}

// Isolated: nothing gets out (rejected at once, so nc fails quickly).
TEST_F(NetworkGuests, IsolatedCannotReachTheOutside) {
    std::string said;
    // The listener waits while the guest tries (and a little longer).
    auto got = connect_out("g1", "eth2", "10.230.3.1", 7103, &said, 4s);
    EXPECT_FALSE(got) << "an isolated guest reached the outside from " << got->peer;
    EXPECT_FALSE(contains(said, "rc=0")) << said;
    // But inside its network it talks to the host's side.
    auto ping = shell("g1").run("ping -c 1 -W 3 10.230.3.1");
    ASSERT_TRUE(ping);
    EXPECT_TRUE(contains(*ping, "1 packets received")) << *ping;
}

// Open: vireo adds no firewall table for it, and the outside sees the guest's address.
TEST_F(NetworkGuests, OpenAddsNoRules) {
    const auto tables = w().host->exec({"nft", "list", "tables"}).out;
    EXPECT_TRUE(contains(tables, "vireo_net_e2enat")) << tables;
    EXPECT_TRUE(contains(tables, "vireo_net_e2eroute")) << tables;
    EXPECT_TRUE(contains(tables, "vireo_net_e2eiso")) << tables;
    EXPECT_FALSE(contains(tables, "e2eopen")) << tables;
    EXPECT_FALSE(contains(w().host->exec({"nft", "list", "ruleset"}).out, "vtebr4")) << "no rule names the open network's bridge";
    std::string said;
    auto got = connect_out("g2", "eth1", "10.230.4.1", 7104, &said);
    ASSERT_TRUE(got) << "nothing reached the outside; the guest said:\n" << said;
    EXPECT_EQ(got->peer, addr("g2/eth1"));
}

// NIC hotplug through the CLI: attach-interface puts a NIC on e2eopen into
// the running g2 (a port of the network, a tap on its bridge); the guest
// sees it and gets a lease from the network's dnsmasq; detach-interface
// refuses to guess between NICs of one type, then removes the one --mac
// names, its port with it.
TEST_F(NetworkGuests, HotpluggedNicJoinsANetworkAndLeaves) {
    const std::string mac = "52:54:00:e2:02:09";
    EXPECT_TRUE(contains(vireo({"net-dumpxml", "e2eopen"}).out, "<network connections='1'>"));
    auto attach = vireo({"attach-interface", "g2", "network", "e2eopen", "--mac", mac, "--model", "virtio", "--live"});
    ASSERT_EQ(attach.exit_code, 0) << attach.err << w().daemon->log();
    EXPECT_EQ(attach.out, "Interface attached successfully\n\n");
    auto list = vireo({"domiflist", "g2"});
    EXPECT_TRUE(std::regex_search(list.out, std::regex(fmt::format(R"(vnet\d+\s+network\s+e2eopen\s+virtio\s+{})", mac))))
        << list.out;
    EXPECT_TRUE(contains(vireo({"net-dumpxml", "e2eopen"}).out, "<network connections='2'>")) << "the NIC took a port";
    EXPECT_FALSE(contains(vireo({"dumpxml", "g2", "--inactive"}).out, mac)) << "--live only";

    auto& g2 = shell("g2");
    auto seen = g2.run("for i in $(seq 1 30); do [ -e /sys/class/net/eth2 ] && echo FOU''ND && break; sleep 1; done");
    ASSERT_TRUE(seen && contains(*seen, "FOUND")) << g2.output();
    auto lease = g2.run("ip link set eth2 up; udhcpc -i eth2 -s /etc/udhcpc.script -n -q -t 10 -T 3 >/dev/null 2>&1; "
                        "ip -o -4 addr show dev eth2",
                        std::chrono::seconds(90));
    ASSERT_TRUE(lease) << g2.output();
    std::smatch m;
    ASSERT_TRUE(std::regex_search(*lease, m, std::regex(R"(inet (10\.230\.4\.\d+)/24)"))) << *lease;
    const std::string ip = m[1];
    test::CommandResult leases;
    for (int i = 0; i < 100; ++i) {
        leases = vireo({"net-dhcp-leases", "e2eopen", "--mac", mac});
        if (contains(leases.out, ip + "/24")) break;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(contains(leases.out, ip + "/24")) << leases.out;

    auto ambiguous = vireo({"detach-interface", "g2", "network"});
    EXPECT_EQ(ambiguous.exit_code, 1);
    EXPECT_TRUE(contains(ambiguous.err, "Domain has 3 interfaces. Please specify which one to detach using --mac"))
        << ambiguous.err;
    auto detach = vireo({"detach-interface", "g2", "network", "--mac", mac});
    ASSERT_EQ(detach.exit_code, 0) << detach.err << w().daemon->log();
    EXPECT_EQ(detach.out, "Interface detached successfully\n\n");
    EXPECT_FALSE(contains(vireo({"domiflist", "g2"}).out, mac));
    EXPECT_TRUE(contains(vireo({"net-dumpxml", "e2eopen"}).out, "<network connections='1'>")) << "its port went with it";
    auto gone = g2.run("[ -e /sys/class/net/eth2 ] && echo STILL''THERE || echo GO''NE");
    ASSERT_TRUE(gone) << g2.output();
    EXPECT_TRUE(contains(*gone, "GONE")) << *gone;
    EXPECT_TRUE(contains(*g2.run("ping -c 1 -W 3 10.230.4.1"), "1 packets received")) << "eth1 is untouched";
}

// vireod SIGKILLed and started again: the guests stay connected, the
// networks are adopted with their ruleset unchanged (no duplicates), the
// same dnsmasq instances, and the ports of the running guests plugged again.
TEST_F(NetworkGuests, DaemonSigkillKeepsGuestsConnectedAndRulesUnduplicated) {
    const std::string rules = tables_sorted(w().host->exec({"nft", "list", "ruleset"}).out);
    const std::vector<std::string> pgrep = {"pgrep", "-f", (w().dir / "run/dnsmasq/").native()};
    const std::string dnsmasq = test::run(pgrep).out;
    ASSERT_FALSE(dnsmasq.empty());
    drop_shells();  // their consoles go with the daemon
    w().daemon->kill();

    // Without a daemon the guests are still on their networks.
    for (const char* key : {"g1/eth0", "g2/eth0", "g1/eth1", "g2/eth1"})
        EXPECT_EQ(w().host->exec({"busybox", "ping", "-c", "1", "-W", "3", addr(key)}).exit_code, 0) << key;
    std::string why;
    ASSERT_TRUE(w().daemon->start(&why)) << why;
    auto list = vireo({"list"});
    EXPECT_TRUE(std::regex_search(list.out, std::regex(R"(g1\s+running)"))) << list.out << w().daemon->log();
    EXPECT_TRUE(std::regex_search(list.out, std::regex(R"(g2\s+running)"))) << list.out;
    auto nets = vireo({"net-list", "--all"});
    for (const auto& n : kNets) EXPECT_TRUE(std::regex_search(nets.out, std::regex(fmt::format(R"({}\s+active)", n.name)))) << nets.out;
    EXPECT_EQ(tables_sorted(w().host->exec({"nft", "list", "ruleset"}).out), rules) << "the ruleset after the restart differs";
    EXPECT_EQ(test::run(pgrep).out, dnsmasq) << "the same dnsmasq instances, no second ones";
    EXPECT_TRUE(contains(vireo({"net-dumpxml", "e2enat"}).out, "<network connections='2'>")) << "the guests' ports plugged again";

    auto ping = shell("g1").run(fmt::format("ping -c 2 -W 3 {}", addr("g2/eth0")));
    ASSERT_TRUE(ping) << shell("g1").output();
    EXPECT_TRUE(contains(*ping, "2 packets received")) << *ping;
    std::string said;
    auto got = connect_out("g1", "eth0", "10.230.1.1", 7105, &said);
    ASSERT_TRUE(got) << said;
    EXPECT_EQ(got->peer, kHostOutside);
    auto leases = vireo({"domifaddr", "g2", "--source", "lease"});
    EXPECT_TRUE(contains(leases.out, addr("g2/eth0") + "/24")) << leases.out << leases.err;
}
