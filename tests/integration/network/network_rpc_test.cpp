// Debian's virsh against a system vireod's libvirt socket (libvirt's remote
// protocol), inside a network namespace the test makes: the net-* verbs
// print what `vireo` prints over the HTTP API for the same network
// (net-list with its filters, net-info, net-dumpxml, net-uuid,
// net-dhcp-leases), the lifecycle verbs, net-autostart and net-update work,
// errors carry libvirt's text, the read-only socket refuses changes, and
// `virsh net-event` sees the lifecycle events.
#include <gtest/gtest.h>

#include <csignal>
#include <regex>
#include <thread>

#include <fmt/format.h>

#include "netns.hpp"
#include "ns_daemon.hpp"
#include "support/guest.hpp"
#include "util/files.hpp"

using namespace vireo;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kVirsh = "/usr/bin/virsh";

constexpr std::string_view kNet = R"(<network>
  <name>rpcnet</name>
  <forward mode='nat'/>
  <bridge name='vtrbr0'/>
  <ip address='10.213.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.213.0.10' end='10.213.0.99'/>
      <host mac='52:54:00:aa:bb:cc' name='g1' ip='10.213.0.5'/>
    </dhcp>
  </ip>
</network>
)";

class NetworkRpc : public ::testing::Test {
protected:
    void SetUp() override {
        if (!fs::exists(kVirsh)) VIREO_SKIP("virsh (libvirt-clients) is not installed");
        if (auto why = test::netns_unavailable(); !why.empty()) VIREO_SKIP(why);
        if (test::which("dnsmasq").empty() && !fs::exists("/usr/sbin/dnsmasq")) VIREO_SKIP("dnsmasq is not installed");
        ns_ = std::make_unique<test::NetNs>("rpc");
        ASSERT_TRUE(ns_->ok());
        fs::permissions(dir_.path(), fs::perms(0755));
        ASSERT_TRUE(files::write_atomic(dir_ / "net.xml", kNet));
        daemon_ = std::make_unique<test::NsDaemon>(*ns_, dir_.path());
        std::string why;
        ASSERT_TRUE(daemon_->start(&why)) << why;
    }
    void TearDown() override {
        if (daemon_) daemon_->stop();
        test::NsDaemon::kill_dnsmasq(dir_.path());
    }
    test::CommandResult virsh(std::vector<std::string> args, bool read_only = false) {
        args.insert(args.begin(), {kVirsh, "-c", daemon_->libvirt_uri(read_only)});
        return test::run(args);
    }
    std::string ok(const std::vector<std::string>& args) {
        auto r = virsh(args);
        EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
        return r.out;
    }
    // virsh (libvirt's protocol) and vireo (HTTP) print the same.
    void same(const std::vector<std::string>& args) {
        auto a = virsh(args);
        auto b = daemon_->vireo(args);
        std::string what;
        for (const auto& s : args) what += s + " ";
        EXPECT_EQ(a.exit_code, b.exit_code) << what << "\nvirsh: " << a.err << "\nvireo: " << b.err;
        if (a.exit_code == 0) {
            EXPECT_EQ(a.out, b.out) << what;
        }
        EXPECT_EQ(a.err, b.err) << what;
    }

    test::TempDir dir_;
    std::unique_ptr<test::NetNs> ns_;
    std::unique_ptr<test::NsDaemon> daemon_;
};

}  // namespace

TEST_F(NetworkRpc, VirshNetVerbsAsVireoPrintsThem) {
    const std::string file = (dir_ / "net.xml").native();
    EXPECT_EQ(ok({"net-define", file}), fmt::format("Network rpcnet defined from {}\n\n", file));
    for (auto filter : {"--all", "--inactive", "--persistent", "--transient", "--autostart", "--no-autostart"})
        same({"net-list", filter});
    same({"net-list"});
    same({"net-info", "rpcnet"});
    same({"net-dumpxml", "rpcnet"});
    same({"net-dumpxml", "--inactive", "rpcnet"});
    same({"net-uuid", "rpcnet"});
    const std::string uuid = ok({"net-uuid", "rpcnet"}).substr(0, 36);
    same({"net-info", uuid});  // by UUID
    same({"net-name", uuid});

    // Errors: libvirt's no-network text; the same start twice.
    auto none = virsh({"net-info", "nosuch"});
    EXPECT_EQ(none.exit_code, 1);
    EXPECT_EQ(none.err, "error: failed to get network 'nosuch'\n"
                        "error: Network not found: no network with matching name 'nosuch'\n");

    EXPECT_EQ(ok({"net-start", "rpcnet"}), "Network rpcnet started\n\n");
    EXPECT_NE(ns_->exec({"ip", "link", "show", "vtrbr0"}).out.find("vtrbr0"), std::string::npos);
    same({"net-start", "rpcnet"});
    same({"net-list"});
    same({"net-list", "--all"});
    same({"net-info", "rpcnet"});
    same({"net-dumpxml", "rpcnet"});
    same({"net-dhcp-leases", "rpcnet"});
    same({"net-dhcp-leases", "rpcnet", "--mac", "52:54:00:aa:bb:cc"});

    EXPECT_EQ(ok({"net-autostart", "rpcnet"}), "Network rpcnet marked as autostarted\n\n");
    same({"net-list", "--autostart"});
    same({"net-info", "rpcnet"});
    EXPECT_EQ(ok({"net-autostart", "--disable", "rpcnet"}), "Network rpcnet unmarked as autostarted\n\n");

    // net-update (section and command reach the driver the right way round).
    EXPECT_EQ(ok({"net-update", "rpcnet", "add", "ip-dhcp-host",
                  "<host mac='52:54:00:00:00:01' name='h1' ip='10.213.0.6'/>", "--live", "--config"}),
              "Updated network rpcnet persistent config and live state\n");  // virsh 9.0: one newline
    EXPECT_NE(files::read(daemon_->dnsmasq_dir() / "rpcnet.hostsfile")->find("52:54:00:00:00:01,10.213.0.6,h1"),
              std::string::npos);
    same({"net-dumpxml", "--inactive", "rpcnet"});
    EXPECT_EQ(ok({"net-update", "rpcnet", "delete", "ip-dhcp-host", "<host mac='52:54:00:00:00:01'/>", "--live",
                  "--config"}),
              "Updated network rpcnet persistent config and live state\n");  // virsh 9.0: one newline
    auto bad_section = virsh({"net-update", "rpcnet", "add", "ip", "<ip/>"});
    EXPECT_EQ(bad_section.exit_code, 1);
    EXPECT_NE(bad_section.err.find("can't update 'ip' section"), std::string::npos) << bad_section.err;

    // The read-only socket lists and refuses changes.
    auto ro_list = virsh({"net-list", "--all"}, true);
    EXPECT_EQ(ro_list.exit_code, 0) << ro_list.err;
    auto ro_destroy = virsh({"net-destroy", "rpcnet"}, true);
    EXPECT_EQ(ro_destroy.exit_code, 1);
    EXPECT_NE(ro_destroy.err.find("operation forbidden: read only access prevents network_destroy"), std::string::npos)
        << ro_destroy.err;

    // Undefine an active network: it keeps running, transient.
    EXPECT_EQ(ok({"net-undefine", "rpcnet"}), "Network rpcnet has been undefined\n\n");
    same({"net-list", "--transient"});
    EXPECT_EQ(ok({"net-destroy", "rpcnet"}), "Network rpcnet destroyed\n\n");
    same({"net-list", "--all"});

    // net-create: a transient network from XML.
    EXPECT_EQ(ok({"net-create", file}), fmt::format("Network rpcnet created from {}\n\n", file));
    same({"net-list", "--all"});
    EXPECT_EQ(ok({"net-destroy", "rpcnet"}), "Network rpcnet destroyed\n\n");
}

TEST_F(NetworkRpc, VirshNetEventSeesTheLifecycle) {
    const std::string file = (dir_ / "net.xml").native();
    ASSERT_EQ(virsh({"net-define", file}).exit_code, 0);
    // virsh prints nothing before an event comes: give it time to register its callback.
    auto listener = test::QemuProcess::start(
        {kVirsh, "-c", daemon_->libvirt_uri(), "net-event", "--loop", "--event", "lifecycle", "--timeout", "30"});
    ASSERT_TRUE(listener) << listener.error().full_message();
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(ok({"net-start", "rpcnet"}), "Network rpcnet started\n\n");
    EXPECT_EQ(ok({"net-destroy", "rpcnet"}), "Network rpcnet destroyed\n\n");
    EXPECT_EQ(ok({"net-undefine", "rpcnet"}), "Network rpcnet has been undefined\n\n");
    auto seen = listener->wait_for(std::regex("event 'lifecycle' for network rpcnet: Started\r?\n"
                                              "event 'lifecycle' for network rpcnet: Stopped\r?\n"
                                              "event 'lifecycle' for network rpcnet: Undefined\r?\n"),
                                   20s);
    EXPECT_TRUE(seen) << listener->output();
    listener->kill();
}
