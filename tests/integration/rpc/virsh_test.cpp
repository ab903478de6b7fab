// Real virsh (/usr/bin/virsh, libvirt-clients 9.0) against vireod serving
// libvirt's remote protocol on a socket of its own, running the test guest
// under QEMU/TCG: each verb's output and exit code compared with what vireo
// prints for the same domain over vireod's HTTP API.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <regex>

#include "support/guest.hpp"
#include "support/support.hpp"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kVirsh = "/usr/bin/virsh";

bool accepts(const std::filesystem::path& p) { return std::filesystem::exists(p); }

class VirshAgainstVireod : public ::testing::Test {
protected:
    void SetUp() override {
        VIREO_REQUIRE_GUEST();
        if (!std::filesystem::exists(kVirsh)) VIREO_SKIP("virsh (libvirt-clients) is not installed");
        if (!std::filesystem::exists(bin_dir() / "vireod")) VIREO_SKIP("vireod is not built");
        auto d = QemuProcess::start({(bin_dir() / "vireod").string(), "--socket", (dir_ / "vireo.sock").string(),
                                     "--libvirt-socket", (dir_ / "libvirt.sock").string(), "--libvirt-ro-socket",
                                     (dir_ / "libvirt-ro.sock").string(), "--config-dir", (dir_ / "config").string(),
                                     "--run-dir", (dir_ / "run").string(), "--log-file", (dir_ / "vireod.log").string(),
                                     "-t", "0"});
        ASSERT_TRUE(d) << d.error().full_message();
        daemon_.emplace(std::move(*d));
        ASSERT_TRUE(daemon_->wait_for(std::regex("listening on .*libvirt-ro.sock"), 60s)) << daemon_->output();
        ASSERT_TRUE(accepts(dir_ / "libvirt-ro.sock"));
    }

    void TearDown() override {
        if (!daemon_) return;
        auto list = virsh({"list", "--name"});
        for (const auto& line : split(list.out))
            if (!line.empty()) virsh({"destroy", line});
        ::kill(daemon_->pid(), SIGTERM);
        EXPECT_EQ(daemon_->wait_exit(30s), 0) << daemon_->output();
    }

    static std::vector<std::string> split(const std::string& text) {
        std::vector<std::string> out;
        std::string line;
        for (char ch : text) {
            if (ch == '\n') out.push_back(std::exchange(line, {}));
            else line += ch;
        }
        return out;
    }

    CommandResult virsh(std::vector<std::string> args, const std::string& socket = "libvirt.sock") {
        args.insert(args.begin(), {kVirsh, "-c", "qemu+unix:///session?socket=" + (dir_ / socket).string()});
        return run(args);
    }
    CommandResult vireo(std::vector<std::string> args) {
        args.insert(args.begin(),
                    {(bin_dir() / "vireo").string(), "-c", "qemu+unix:///session?socket=" + (dir_ / "vireo.sock").string()});
        return run(args);
    }
    // virsh and vireo print the same (stdout, stderr, exit code) for `args`.
    // A failing virsh command also prints an empty line on stdout, which
    // vireo does not: failures compare stderr and the exit code.
    void same(const std::vector<std::string>& args) {
        auto a = virsh(args);
        auto b = vireo(args);
        std::string what;
        for (const auto& s : args) what += s + " ";
        EXPECT_EQ(a.exit_code, b.exit_code) << what << "\nvirsh: " << a.err << "\nvireo: " << b.err;
        if (a.exit_code == 0) EXPECT_EQ(a.out, b.out) << what;
        else EXPECT_EQ(a.out, "\n") << what;
        EXPECT_EQ(a.err, b.err) << what;
    }
    std::string ok(const std::vector<std::string>& args) {
        auto r = virsh(args);
        EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
        return r.out;
    }

    bool guest_answers(const std::string& name) {
        auto console = QemuProcess::start({(bin_dir() / "vireo").string(), "-c",
                                           "qemu+unix:///session?socket=" + (dir_ / "vireo.sock").string(), "console",
                                           name});
        if (!console) return false;
        const auto deadline = std::chrono::steady_clock::now() + 180s;
        while (std::chrono::steady_clock::now() < deadline) {
            console->send("echo VIREO-RPC-$((40+2))\n");
            if (console->wait_for(std::regex("VIREO-RPC-42"), 5s)) return true;
        }
        ADD_FAILURE() << console->output();
        return false;
    }

    TempDir dir_;
    std::optional<QemuProcess> daemon_;
};

TEST_F(VirshAgainstVireod, DomainLifecycleAsVireoPrintsIt) {
    const std::string xml = (dir_ / "web.xml").string();
    std::ofstream(xml) << guest_domain_xml("web");

    // Lifecycle events, from a second virsh, as `virsh event --loop --all`.
    auto events = QemuProcess::start({kVirsh, "-c", "qemu+unix:///session?socket=" + (dir_ / "libvirt.sock").string(),
                                      "event", "--loop", "--all"});
    ASSERT_TRUE(events) << events.error().full_message();

    EXPECT_EQ(ok({"define", xml}), "Domain 'web' defined from " + xml + "\n\n");
    same({"list", "--all"});
    same({"dominfo", "web"});
    same({"domstate", "web"});
    same({"dumpxml", "web"});
    same({"dumpxml", "--inactive", "web"});

    EXPECT_EQ(ok({"start", "web"}), "Domain 'web' started\n\n");
    same({"list"});
    same({"dominfo", "web"});
    EXPECT_EQ(ok({"domstate", "web"}), "running\n\n");
    same({"domstate", "--reason", "web"});
    same({"dumpxml", "web"});
    // The guest virsh started really boots: its shell answers on the serial
    // console (vireo console: streams are not served over libvirt's protocol yet).
    EXPECT_TRUE(guest_answers("web"));

    EXPECT_EQ(ok({"suspend", "web"}), "Domain 'web' suspended\n\n");
    EXPECT_EQ(ok({"domstate", "web"}), "paused\n\n");
    same({"domstate", "--reason", "web"});
    EXPECT_EQ(ok({"resume", "web"}), "Domain 'web' resumed\n\n");
    EXPECT_EQ(ok({"domstate", "web"}), "running\n\n");

    EXPECT_EQ(ok({"destroy", "web"}), "Domain 'web' destroyed\n\n");
    same({"domstate", "--reason", "web"});
    same({"list", "--all"});

    // Errors read as vireo's (and libvirt's).
    same({"dominfo", "nosuch"});
    EXPECT_NE(virsh({"dominfo", "nosuch"}).err.find("error: failed to get domain 'nosuch'"), std::string::npos);
    same({"start", "nosuch"});
    same({"suspend", "web"});  // not running: invalid operation

    // The read-only socket answers queries and refuses every change.
    auto ro_list = virsh({"list", "--all"}, "libvirt-ro.sock");
    EXPECT_EQ(ro_list.exit_code, 0) << ro_list.err;
    EXPECT_NE(ro_list.out.find("web"), std::string::npos) << ro_list.out;
    auto ro_define = virsh({"define", xml}, "libvirt-ro.sock");
    EXPECT_EQ(ro_define.exit_code, 1);
    EXPECT_NE(ro_define.err.find("operation forbidden: read only access prevents"), std::string::npos)
        << ro_define.err;
    auto ro_start = virsh({"start", "web"}, "libvirt-ro.sock");
    EXPECT_EQ(ro_start.exit_code, 1);
    EXPECT_NE(ro_start.err.find("operation forbidden"), std::string::npos) << ro_start.err;

    EXPECT_EQ(ok({"undefine", "web"}), "Domain 'web' has been undefined\n\n");
    same({"list", "--all"});

    // Every lifecycle step reached the event loop, in order.
    const std::string expected =
        "Defined Added[\\s\\S]*Started Booted[\\s\\S]*Suspended Paused[\\s\\S]*Resumed Unpaused[\\s\\S]*"
        "Stopped Destroyed[\\s\\S]*Undefined Removed";
    EXPECT_TRUE(events->wait_for(std::regex(expected), 30s)) << events->output();
    events->kill();
}

TEST_F(VirshAgainstVireod, HostVerbs) {
    auto version = virsh({"version"});
    EXPECT_EQ(version.exit_code, 0) << version.err;
    EXPECT_NE(version.out.find("Running hypervisor: QEMU "), std::string::npos) << version.out;
    same({"hostname"});
    auto node = virsh({"nodeinfo"});
    EXPECT_EQ(node.exit_code, 0) << node.err;
    EXPECT_NE(node.out.find("CPU model:"), std::string::npos) << node.out;
    auto caps = virsh({"capabilities"});
    EXPECT_EQ(caps.exit_code, 0) << caps.err;
    EXPECT_NE(caps.out.find("<capabilities>"), std::string::npos) << caps.out;
    // Verbs vireod does not serve over libvirt's protocol yet fail cleanly
    // with libvirt's "not supported" (and the connection keeps serving).
    auto pools = virsh({"pool-list", "--all"});
    EXPECT_NE(pools.exit_code, 0);
    EXPECT_NE(pools.err.find("not supported"), std::string::npos) << pools.err;
    EXPECT_EQ(virsh({"list", "--all"}).exit_code, 0);
}

}  // namespace
}  // namespace vireo::test
