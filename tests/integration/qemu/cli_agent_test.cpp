// The guest agent through the CLI, as virsh's verbs: the test guest runs
// Debian's qemu-ga on the virtio-serial channel org.qemu.guest_agent.0; the
// channel's state follows the guest (connected once qemu-ga opened it,
// disconnected when it is gone), qemu-agent-command, domtime, domhostname
// domifaddr --source agent, domfsinfo, domfsfreeze/domfsthaw, guestvcpus,
// setvcpus/vcpucount --guest, guestinfo and set-user-password answer from (and change) the guest, an agent that is
// gone is an error at once (never a hang), guest-agent-timeout bounds every
// call (across a daemon restart), and shutdown --mode agent powers the guest
// off from inside.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <iostream>
#include <fstream>
#include <regex>
#include <thread>

#include "helpers.hpp"
#include "support/guest.hpp"
#include "support/session_cli.hpp"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kAgentChannel =
    "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>";

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

class QemuCliAgent : public SessionGuestTest {
protected:
    std::string ok(const std::vector<std::string>& args) {
        auto r = vireo(args);
        EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
        return r.out;
    }
    // The live XML shows the agent's channel in `state` within `timeout`.
    bool channel_state(const std::string& state, std::chrono::seconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        const std::string want = "name='org.qemu.guest_agent.0' state='" + state + "'";
        while (std::chrono::steady_clock::now() < deadline) {
            if (contains(vireo({"dumpxml", "ag"}).out, want)) return true;
            std::this_thread::sleep_for(200ms);
        }
        return false;
    }
    static std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }
    // The seconds domtime prints.
    std::optional<std::int64_t> guest_time() {
        std::smatch m;
        const std::string out = ok({"domtime", "ag"});
        if (!std::regex_search(out, m, std::regex("^Time: (\\d+)\n$"))) return std::nullopt;
        return std::stoll(m[1]);
    }
};

TEST_F(QemuCliAgent, AgentVerbsAnswerFromTheGuest) {
    // Two vCPUs (for guestvcpus) and an ext4 disk the guest mounts (for
    // domfsinfo, domfsfreeze and domfsthaw: the guest's own root is its
    // initramfs, which the agent does not list).
    const auto data = dir_ / "data.img";
    std::ofstream(data.string()).close();
    std::filesystem::resize_file(data, 32 << 20);
    if (std::system(("mkfs.ext4 -q -F " + data.string() + " >/dev/null 2>&1").c_str()) != 0) VIREO_SKIP("no mkfs.ext4");
    const std::string file = (dir_ / "ag.xml").string();
    std::string xml = qemu::test::guest_xml(
        "ag",
        std::string(kAgentChannel) + "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='" +
            data.string() + "'/><target dev='vda' bus='virtio'/></disk>",
        "vireo.hostname=agentguest");
    xml.replace(xml.find("<vcpu>1</vcpu>"), 14, "<vcpu>2</vcpu>");
    std::ofstream(file) << xml;
    ASSERT_EQ(vireo({"define", file}).exit_code, 0);
    auto events = QemuProcess::start(cli_.argv({"event", "--domain", "ag", "--event", "agent-lifecycle", "--loop"}));
    ASSERT_TRUE(events) << events.error().full_message();
    ASSERT_EQ(vireo({"start", "ag"}).exit_code, 0);
    // The socket QEMU listens on is in the live XML; the guest's qemu-ga opens the port.
    EXPECT_TRUE(std::regex_search(ok({"dumpxml", "ag"}), std::regex("<source mode='bind' path='[^']+/org.qemu.guest_agent.0'/>")));
    ASSERT_TRUE(channel_state("connected", 180s)) << ok({"dumpxml", "ag"});
    EXPECT_TRUE(events->wait_for(std::regex("event 'agent-lifecycle' for domain 'ag': state: 'connected' reason: 'channel event'"),
                                 10s))
        << events->output();

    // qemu-agent-command: the agent's reply as it sent it; its errors as errors.
    EXPECT_EQ(ok({"qemu-agent-command", "ag", R"({"execute":"guest-ping"})"}), "{\"return\":{}}\n");
    const std::string info = ok({"qemu-agent-command", "ag", "--pretty", R"({"execute":"guest-info"})"});
    EXPECT_TRUE(contains(info, "\"version\":")) << info;
    EXPECT_TRUE(contains(info, "\n  \"return\": {")) << info;
    auto unknown = vireo({"qemu-agent-command", "ag", R"({"execute":"guest-no-such-command"})"});
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_TRUE(contains(unknown.err, "unable to execute QEMU agent command 'guest-no-such-command'")) << unknown.err;
    auto garbage = vireo({"qemu-agent-command", "ag", "{not json"});
    EXPECT_EQ(garbage.exit_code, 1);
    EXPECT_TRUE(contains(garbage.err, "must be a JSON object")) << garbage.err;
    auto both = vireo({"qemu-agent-command", "ag", "--async", "--block", R"({"execute":"guest-ping"})"});
    EXPECT_EQ(both.exit_code, 1);
    EXPECT_TRUE(contains(both.err, "Options --async and --block are mutually exclusive")) << both.err;

    // domtime: the guest's clock (its RTC is the host's at boot); set and read back.
    auto t = guest_time();
    ASSERT_TRUE(t);
    EXPECT_LT(std::abs(*t - now()), 120) << *t;
    EXPECT_EQ(ok({"domtime", "ag", "--time", "1700000000"}), "");
    t = guest_time();
    ASSERT_TRUE(t);
    EXPECT_GE(*t, 1700000000);
    EXPECT_LT(*t, 1700000000 + 60);
    EXPECT_TRUE(std::regex_search(ok({"domtime", "ag", "--pretty"}), std::regex("^Time: 2023-11-14 22:\\d\\d:\\d\\d\n$")));
    EXPECT_EQ(ok({"domtime", "ag", "--now"}), "");
    t = guest_time();
    ASSERT_TRUE(t);
    EXPECT_LT(std::abs(*t - now()), 60) << *t;

    EXPECT_EQ(ok({"domhostname", "ag"}), "agentguest\n\n");
    const std::string addrs = ok({"domifaddr", "ag", "--source", "agent"});
    EXPECT_TRUE(std::regex_search(addrs, std::regex("\n lo +00:00:00:00:00:00 +ipv4 +127\\.0\\.0\\.1/8\n"))) << addrs;

    // domfsinfo: the guest's filesystems on disks, as its /proc/mounts has them.
    std::string said;
    ASSERT_TRUE(cli_.on_console("ag", "mkdir -p /mnt/data && mount -t ext4 /dev/vda /mnt/data && echo MOUNTED-$((1+1))",
                                "MOUNTED-2", 60s, &said))
        << said;
    ASSERT_TRUE(cli_.on_console("ag", "grep '^/dev/' /proc/mounts | while read d m t r; do echo \"MNT:$d:$m:$t\"; done; echo LISTED-$((1+1))",
                                "LISTED-2", 60s, &said))
        << said;
    std::string expected_rows;
    const std::regex mount_line("MNT:/dev/(\\w+):(/[^:]*):(\\w+)");
    for (auto it = std::sregex_iterator(said.begin(), said.end(), mount_line); it != std::sregex_iterator(); ++it)
        expected_rows += (*it)[2].str() + " " + (*it)[1].str() + " " + (*it)[3].str() + " " + (*it)[1].str() + "\n";
    EXPECT_EQ(expected_rows, "/mnt/data vda ext4 vda\n") << said;  // what the guest has mounted
    const std::string fsinfo = ok({"domfsinfo", "ag"});
    EXPECT_EQ(fsinfo,
              " Mountpoint   Name   Type   Target\n"
              "------------------------------------\n"
              " /mnt/data    vda    ext4   vda\n\n");

    // guestinfo: libvirt's typed parameters, each group alone and all of
    // them in libvirt's order.
    EXPECT_EQ(ok({"guestinfo", "ag", "--hostname"}), "hostname            : agentguest\n\n");
    const std::string os = ok({"guestinfo", "ag", "--os"});
    EXPECT_TRUE(contains(os, "os.id               : vireo-test-guest\nos.name             : vireo test guest\n"
                             "os.pretty-name      : vireo test guest 1 (busybox initramfs)\nos.version          : 1\n"
                             "os.version-id       : 1\nos.machine          : x86_64\n"))
        << os;
    EXPECT_TRUE(std::regex_search(os, std::regex("\nos.kernel-release   : 6\\.[0-9.]+-[0-9]+-cloud-amd64\n"))) << os;
    const std::string fsi = ok({"guestinfo", "ag", "--filesystem"});
    EXPECT_TRUE(contains(fsi, "fs.count            : 1\nfs.0.name           : vda\nfs.0.mountpoint     : /mnt/data\n"
                              "fs.0.fstype         : ext4\n"))
        << fsi;
    EXPECT_TRUE(std::regex_search(fsi, std::regex("fs.0.total-bytes    : [1-9][0-9]+\nfs.0.used-bytes     : [0-9]+\n"
                                                  "fs.0.disk.count     : 1\n(fs.0.disk.0.serial  : .*\n)?"
                                                  "fs.0.disk.0.alias   : vda\nfs.0.disk.0.device  : /dev/vda\n")))
        << fsi;
    const std::string ifs = ok({"guestinfo", "ag", "--interface"});
    EXPECT_TRUE(contains(ifs, "if.0.name           : lo\nif.0.hwaddr         : 00:00:00:00:00:00\n")) << ifs;
    EXPECT_TRUE(contains(ifs, "if.0.addr.0.type    : ipv4\nif.0.addr.0.addr    : 127.0.0.1\nif.0.addr.0.prefix  : 8\n")) << ifs;
    const std::string all = ok({"guestinfo", "ag"});
    std::size_t last = 0;
    for (const char* field : {"user.count", "os.id", "timezone.offset", "hostname", "fs.count", "disk.count", "if.count"}) {
        const std::string line = std::string(field) + " ";
        const auto pos = all.starts_with(line) ? 0 : all.find("\n" + line);
        EXPECT_NE(pos, std::string::npos) << field << " in\n" << all;
        EXPECT_GE(pos, last) << field << " in\n" << all;
        if (pos != std::string::npos) last = pos;
    }
    std::cerr << "guestinfo:\n" << all;

    // domfsfreeze/domfsthaw with the agent's counts; the frozen agent
    // refuses a second freeze, as virsh reports it.
    EXPECT_EQ(ok({"domfsfreeze", "ag"}), "Froze 1 filesystem(s)\n\n");
    auto twice = vireo({"domfsfreeze", "ag"});
    EXPECT_EQ(twice.exit_code, 1);
    EXPECT_TRUE(contains(twice.err, "error: Unable to freeze filesystems\nerror: ")) << twice.err;
    EXPECT_TRUE(contains(twice.err, "frozen")) << twice.err;
    auto some = vireo({"domfsthaw", "ag", "--mountpoint", "/mnt/data"});
    EXPECT_EQ(some.exit_code, 1);
    EXPECT_EQ(some.err, "error: Unable to thaw filesystems\nerror: argument unsupported: specifying mountpoints is not supported\n");
    EXPECT_EQ(ok({"domfsthaw", "ag"}), "Thawed 1 filesystem(s)\n\n");
    const auto thaw_again = vireo({"domfsthaw", "ag"});
    std::cerr << "domfsthaw when not frozen: exit " << thaw_again.exit_code << " out '" << thaw_again.out << "' err '" << thaw_again.err << "'\n";
    EXPECT_EQ(ok({"domfsfreeze", "ag", "--mountpoint", "/mnt/data"}), "Froze 1 filesystem(s)\n\n");
    EXPECT_EQ(ok({"domfsthaw", "ag"}), "Thawed 1 filesystem(s)\n\n");
    // A mount point the guest does not have: qemu-ga freezes none of it.
    EXPECT_EQ(ok({"domfsfreeze", "ag", "/no/such/mount"}), "Froze 0 filesystem(s)\n\n");
    EXPECT_EQ(ok({"domfsthaw", "ag"}), "Thawed 0 filesystem(s)\n\n");
    // The guest writes to the thawed disk again.
    EXPECT_TRUE(cli_.on_console("ag", "echo hi >/mnt/data/f && sync && echo WROTE-$((1+1))", "WROTE-2", 60s, &said)) << said;

    // guestvcpus: the guest's two vCPUs; the second one offline and back,
    // as the guest's sysfs shows it.
    EXPECT_EQ(ok({"guestvcpus", "ag"}), "vcpus          : 0-1\nonline         : 0-1\nofflinable     : 1\n\n");
    EXPECT_EQ(ok({"guestvcpus", "ag", "--cpulist", "1", "--disable"}), "\n");
    EXPECT_EQ(ok({"guestvcpus", "ag"}), "vcpus          : 0-1\nonline         : 0\nofflinable     : 1\n\n");
    EXPECT_TRUE(cli_.on_console("ag", "echo ONLINE=$(cat /sys/devices/system/cpu/online)", "ONLINE=0\r?\n", 60s, &said)) << said;
    auto cpu0 = vireo({"guestvcpus", "ag", "--cpulist", "0", "--disable"});
    EXPECT_EQ(cpu0.exit_code, 1);
    EXPECT_EQ(cpu0.err, "error: Operation not supported: vCPU '0' is not offlinable\n");
    auto cpu7 = vireo({"guestvcpus", "ag", "--cpulist", "7", "--enable"});
    EXPECT_EQ(cpu7.exit_code, 1);
    EXPECT_EQ(cpu7.err, "error: invalid argument: guest is missing vCPUs '7'\n");
    EXPECT_EQ(ok({"guestvcpus", "ag", "--cpulist", "1", "--enable"}), "\n");
    EXPECT_TRUE(cli_.on_console("ag", "echo ONLINE=$(cat /sys/devices/system/cpu/online)", "ONLINE=0-1", 60s, &said)) << said;
    // setvcpus --guest / vcpucount --guest: how many the guest has online.
    EXPECT_EQ(ok({"vcpucount", "ag", "--guest"}), "2\n\n");
    EXPECT_EQ(ok({"setvcpus", "ag", "1", "--guest"}), "");
    EXPECT_EQ(ok({"vcpucount", "ag", "--guest"}), "1\n\n");
    EXPECT_EQ(ok({"vcpucount", "ag", "--guest", "--maximum"}), "2\n\n");
    EXPECT_TRUE(cli_.on_console("ag", "echo ONLINE=$(cat /sys/devices/system/cpu/online)", "ONLINE=0\r?\n", 60s, &said)) << said;
    auto three = vireo({"setvcpus", "ag", "3", "--guest"});
    EXPECT_EQ(three.exit_code, 1);
    EXPECT_TRUE(contains(three.err, "guest agent reports less cpu than requested")) << three.err;
    EXPECT_EQ(ok({"setvcpus", "ag", "2", "--guest"}), "");
    EXPECT_EQ(ok({"vcpucount", "ag", "--guest"}), "2\n\n");
    EXPECT_EQ(vireo({"guestvcpus", "ag", "--enable"}).err, "error: Option --cpulist is required by option --enable\n");
    EXPECT_EQ(vireo({"guestvcpus", "ag", "--cpulist", "1"}).err,
              "error: One of options --enable or --disable is required by option --cpulist\n");

    // set-user-password: /etc/shadow in the guest holds the new password's
    // hash (checked with the guest's own mkpasswd), or the hash as given.
    EXPECT_EQ(ok({"set-user-password", "ag", "root", "vireo-s3cret"}), "Password set successfully for root in ag\n");
    EXPECT_TRUE(cli_.on_console("ag",
                                "h=$(grep '^root:' /etc/shadow | cut -d: -f2); s=$(echo \"$h\" | cut -d'$' -f3); "
                                "[ \"$(printf %s vireo-s3cret | mkpasswd -m sha512 -S \"$s\" -P 0)\" = \"$h\" ] && echo PW-OK-$((1+1))",
                                "PW-OK-2", 60s, &said))
        << said;
    EXPECT_EQ(ok({"set-user-password", "ag", "root", "$6$vireo$fixedhash", "--encrypted"}),
              "Password set successfully for root in ag\n");
    EXPECT_TRUE(cli_.on_console("ag", "grep -q '^root:$6$vireo$fixedhash:' /etc/shadow && echo HASH-OK-$((1+1))", "HASH-OK-2",
                                60s, &said))
        << said;
    auto nobody = vireo({"set-user-password", "ag", "nosuchuser", "pw"});
    EXPECT_EQ(nobody.exit_code, 1);
    EXPECT_TRUE(contains(nobody.err, "guest-set-user-password")) << nobody.err;

    // The agent goes away: the channel says so, and a call fails at once.
    EXPECT_TRUE(cli_.on_console("ag", "killall qemu-ga; echo KILLED-$((1+1))", "KILLED-2", 60s, &said)) << said;
    ASSERT_TRUE(channel_state("disconnected", 30s)) << ok({"dumpxml", "ag"});
    EXPECT_TRUE(events->wait_for(std::regex("state: 'disconnected' reason: 'channel event'"), 10s)) << events->output();
    auto gone = vireo({"qemu-agent-command", "ag", R"({"execute":"guest-ping"})"});
    EXPECT_EQ(gone.exit_code, 1);
    EXPECT_TRUE(contains(gone.err, "Guest agent is not responding: QEMU guest agent is not connected")) << gone.err;
    auto no_time = vireo({"domtime", "ag"});
    EXPECT_EQ(no_time.exit_code, 1);
    EXPECT_TRUE(contains(no_time.err, "QEMU guest agent is not connected")) << no_time.err;
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"domfsinfo", "ag"}, {"domfsfreeze", "ag"}, {"guestvcpus", "ag"}, {"guestinfo", "ag"},
             {"set-user-password", "ag", "root", "x"}}) {
        const auto t0 = std::chrono::steady_clock::now();
        auto r = vireo(args);
        EXPECT_EQ(r.exit_code, 1) << args[0];
        EXPECT_TRUE(contains(r.err, "QEMU guest agent is not connected")) << args[0] << ": " << r.err;
        EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s) << args[0];
    }

    // Back (the guest's /init starts it the same way), then shutdown --mode agent.
    EXPECT_TRUE(cli_.on_console("ag", "start-qemu-ga; echo STARTED-$((1+1))", "STARTED-2", 60s, &said)) << said;
    ASSERT_TRUE(channel_state("connected", 60s)) << ok({"dumpxml", "ag"});

    // guest-agent-timeout: 0 ("nowait") gives the agent no time, so calls
    // fail at once, and still after a daemon restart; -1 is the default again.
    EXPECT_EQ(ok({"guest-agent-timeout", "ag", "--timeout", "0"}), "\n");
    auto nowait = vireo({"domtime", "ag"});
    EXPECT_EQ(nowait.exit_code, 1) << nowait.out;
    cli_.stop_daemon();
    ASSERT_EQ(vireo({"domstate", "ag"}).out, "running\n\n");  // a new daemon, the guest reattached
    auto nowait_again = vireo({"domtime", "ag"});
    EXPECT_EQ(nowait_again.exit_code, 1) << nowait_again.out;
    EXPECT_EQ(ok({"guest-agent-timeout", "ag", "--timeout", "-1"}), "\n");
    EXPECT_TRUE(guest_time());
    EXPECT_EQ(ok({"guest-agent-timeout", "ag", "--timeout", "10"}), "\n");
    EXPECT_EQ(ok({"domhostname", "ag"}), "agentguest\n\n");
    EXPECT_EQ(vireo({"guest-agent-timeout", "ag", "--timeout", "-3"}).err,
              "error: invalid argument: guest agent timeout '-3' is less than the minimum '-2'\n");
    EXPECT_EQ(vireo({"guest-agent-timeout", "ag", "--timeout", "soon"}).err,
              "error: Numeric value 'soon' for <timeout> option is malformed or out of range\n");

    EXPECT_EQ(ok({"shutdown", "ag", "--mode", "agent"}), "Domain 'ag' is being shutdown\n\n");
    bool off = false;
    for (int i = 0; i < 300 && !off; ++i) {
        off = vireo({"domstate", "ag"}).out == "shut off\n\n";
        if (!off) std::this_thread::sleep_for(200ms);
    }
    EXPECT_TRUE(off) << vireo({"domstate", "ag"}).out;
}

// A domain without the agent's channel: every agent verb says it is not configured.
TEST_F(QemuCliAgent, WithoutTheChannelTheAgentIsNotConfigured) {
    const std::string file = (dir_ / "ag.xml").string();
    std::ofstream(file) << qemu::test::guest_xml("ag");
    ASSERT_EQ(vireo({"define", file}).exit_code, 0);
    auto stopped = vireo({"domtime", "ag"});
    EXPECT_EQ(stopped.exit_code, 1);
    EXPECT_TRUE(contains(stopped.err, "is not running")) << stopped.err;
    ASSERT_EQ(vireo({"start", "--paused", "ag"}).exit_code, 0);  // no need to boot it
    for (const auto& args : std::vector<std::vector<std::string>>{{"qemu-agent-command", "ag", R"({"execute":"guest-ping"})"},
                                                                   {"domtime", "ag"},
                                                                   {"domhostname", "ag"},
                                                                   {"shutdown", "ag", "--mode", "agent"},
                                                                   {"domifaddr", "ag", "--source", "agent"},
                                                                   {"domfsinfo", "ag"},
                                                                   {"domfsfreeze", "ag"},
                                                                   {"domfsthaw", "ag"},
                                                                   {"guestvcpus", "ag"},
                                                                   {"guestvcpus", "ag", "--cpulist", "1", "--enable"},
                                                                   {"set-user-password", "ag", "root", "x"},
                                                                   {"guestinfo", "ag"},
                                                                   {"vcpucount", "ag", "--guest"},
                                                                   {"setvcpus", "ag", "1", "--guest"}}) {
        auto r = vireo(args);
        EXPECT_EQ(r.exit_code, 1) << args[0];
        EXPECT_TRUE(contains(r.err, "QEMU guest agent is not configured")) << args[0] << ": " << r.err;
    }
}

}  // namespace
}  // namespace vireo::test
