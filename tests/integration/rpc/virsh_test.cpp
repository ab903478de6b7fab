// Real virsh (/usr/bin/virsh, libvirt-clients 9.0) against vireod serving
// libvirt's remote protocol on a socket of its own, running the test guest
// under QEMU/TCG: each verb's output and exit code compared with what vireo
// prints for the same domain over vireod's HTTP API.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <thread>

#include "libvirt_clients.hpp"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;

bool accepts(const std::filesystem::path& p) { return std::filesystem::exists(p); }

class VirshAgainstVireod : public LibvirtClientsTest {
protected:
    void SetUp() override {
        VIREO_REQUIRE_GUEST();
        LibvirtClientsTest::SetUp();
        if (HasFatalFailure() || IsSkipped()) return;
        ASSERT_TRUE(accepts(dir_ / "libvirt-ro.sock"));
    }

    void TearDown() override {
        if (!daemon_) return;
        auto list = virsh({"list", "--name"});
        for (const auto& line : split(list.out))
            if (!line.empty()) virsh({"destroy", line});
        LibvirtClientsTest::TearDown();
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

    // `virsh console` (the console stream of libvirt's protocol) reaches the
    // guest's shell: virsh wants a terminal, script(1) gives it a pty.
    bool guest_answers(const std::string& name) {
        const std::string cmd = std::string(kVirsh) + " -c qemu+unix:///session?socket=" +
                                (dir_ / "libvirt.sock").string() + " console " + name;
        auto console = QemuProcess::start({"script", "-qfc", cmd, "/dev/null"});
        if (!console) return false;
        const auto deadline = std::chrono::steady_clock::now() + 180s;
        while (std::chrono::steady_clock::now() < deadline) {
            console->send("echo VIREO-RPC-$((40+2))\r");
            if (console->wait_for(std::regex("VIREO-RPC-42"), 5s)) {
                console->send("\x1d");  // ^]: virsh detaches
                return true;
            }
        }
        ADD_FAILURE() << console->output();
        return false;
    }
};

TEST_F(VirshAgainstVireod, DomainLifecycleAsVireoPrintsIt) {
    const std::string xml = (dir_ / "web.xml").string();
    // A free vCPU slot and a balloon, for the vCPU and memory verbs; the
    // guest agent's channel (the test guest runs qemu-ga).
    std::string def = guest_domain_xml("web");
    def.replace(def.find("<vcpu>1</vcpu>"), 14, "<vcpu current='1'>2</vcpu>");
    const std::string no_balloon = "<memballoon model='none'/>";
    def.replace(def.find(no_balloon), no_balloon.size(),
                "<memballoon model='virtio'><stats period='1'/></memballoon>"
                "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
                "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='" +
                    (dir_ / "data.qcow2").string() +
                    "'/><target dev='vda' bus='virtio'/></disk>"
                    "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='hdc' bus='ide'/>"
                    "<readonly/></disk>");
    std::ofstream(xml) << def;
    // The data disk of the disk verbs (domblkstat, domblkinfo, blockresize).
    auto img = run({"qemu-img", "create", "-q", "-f", "qcow2", (dir_ / "data.qcow2").string(), "16M"});
    ASSERT_EQ(img.exit_code, 0) << img.err;

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
    // Disks of the shut-off domain: sizes from the image itself; the
    // running-only verbs refused as libvirt refuses them.
    EXPECT_EQ(ok({"domblkinfo", "web", "vda"}).substr(0, 32), "Capacity:       16777216\nAllocat");
    same({"domblkinfo", "web", "vda"});
    same({"domblkinfo", "web", "--all"});
    same({"domblkinfo", "web", "--all", "--human"});
    same({"domblkinfo", "web", "hdc"});  // the empty cdrom
    same({"domblkinfo", "web"});
    same({"domblkstat", "web", "vda"});
    same({"blockresize", "web", "vda", "32M"});

    EXPECT_EQ(ok({"start", "web"}), "Domain 'web' started\n\n");
    same({"list"});
    same({"dominfo", "web"});
    EXPECT_EQ(ok({"domstate", "web"}), "running\n\n");
    same({"domstate", "--reason", "web"});
    same({"dumpxml", "web"});
    // The guest virsh started really boots: its shell answers on the serial
    // console, through `virsh console`.
    EXPECT_TRUE(guest_answers("web"));

    // Disks of the running domain: QEMU's counters and sizes
    // (virDomainBlockStatsFlags, virDomainGetBlockInfo), the same resize
    // through virDomainBlockResize (KiB, and bytes) and vireo's API.
    same({"domblkstat", "web", "vda"});
    same({"domblkstat", "web", "vda", "--human"});
    same({"domblkstat", "web"});
    same({"domblkstat", "web", (dir_ / "data.qcow2").string()});
    same({"domblkstat", "web", "vdz"});
    same({"domblkinfo", "web", "vda"});
    same({"domblkinfo", "web", "--all"});
    same({"domblkinfo", "web", "vdz"});
    EXPECT_EQ(ok({"blockresize", "web", "vda", "20M"}), "Block device 'vda' is resized\n");
    EXPECT_EQ(ok({"domblkinfo", "web", "vda"}).substr(0, 32), "Capacity:       20971520\nAllocat");
    EXPECT_EQ(vireo({"blockresize", "web", "vda", "24M"}).out, "Block device 'vda' is resized\n");
    same({"domblkinfo", "web", "vda", "--human"});
    EXPECT_EQ(ok({"domblkinfo", "web", "vda"}).substr(0, 32), "Capacity:       25165824\nAllocat");
    same({"blockresize", "web", "vda", "25166337b"});  // bytes, rounded up to 512 for qcow2
    EXPECT_EQ(ok({"domblkinfo", "web", "vda"}).substr(0, 32), "Capacity:       25166848\nAllocat");
    same({"blockresize", "web", "vdz", "32M"});
    same({"blockresize", "web", "vda", "12X"});
    same({"blockresize", "web", "vda", "abc"});
    same({"blockresize", "web", "vda", "18446744073709551615"});

    // vCPUs and memory through libvirt's vCPU and memory procedures.
    same({"vcpucount", "web"});
    same({"vcpucount", "web", "--maximum", "--live"});
    same({"vcpupin", "web"});
    same({"emulatorpin", "web"});
    // virDomainSetVcpu (setvcpu): vCPU 0, an id beyond the maximum and an
    // unplug under TCG are refused as vireo refuses them, nothing changed.
    const std::string live_before = ok({"dumpxml", "web"}), config_before = ok({"dumpxml", "--inactive", "web"});
    same({"setvcpu", "web", "0", "--disable", "--live"});
    EXPECT_NE(virsh({"setvcpu", "web", "0", "--disable", "--live"}).err.find("vCPU '0' can't be modified"), std::string::npos);
    same({"setvcpu", "web", "2", "--enable", "--live"});
    same({"setvcpu", "web", "3", "--enable", "--config"});
    EXPECT_EQ(virsh({"setvcpus", "web", "3", "--live"}).exit_code, 1);
    EXPECT_EQ(ok({"dumpxml", "web"}), live_before);
    EXPECT_EQ(ok({"dumpxml", "--inactive", "web"}), config_before);
    EXPECT_EQ(ok({"setvcpu", "web", "1", "--enable", "--config"}), "\n");
    same({"dumpxml", "--inactive", "web"});
    EXPECT_NE(ok({"dumpxml", "--inactive", "web"}).find("<vcpu id='1' enabled='yes' hotpluggable='yes'/>"), std::string::npos);
    same({"vcpucount", "web"});
    EXPECT_EQ(ok({"setvcpu", "web", "1", "--disable", "--config"}), "\n");
    // setvcpu --live plugs vCPU 1; the live XML lists it as vireo does.
    EXPECT_EQ(ok({"setvcpu", "web", "1", "--enable", "--live"}), "\n");
    same({"vcpucount", "web"});
    same({"dumpxml", "web"});
    EXPECT_NE(ok({"dumpxml", "web"}).find("<vcpu id='1' enabled='yes' hotpluggable='yes' order='2'/>"), std::string::npos);
    same({"setvcpu", "web", "1", "--disable", "--live"});  // TCG: refused before anything is sent
    EXPECT_TRUE(std::regex_search(ok({"vcpuinfo", "web"}),
                                  std::regex("VCPU:           1\nCPU:            [0-9]+\nState:          running\n")));
    EXPECT_EQ(ok({"vcpupin", "web", "1", "0", "--live"}), "\n");
    same({"vcpupin", "web"});
    same({"vcpupin", "web", "--config"});
    // (virsh leaves out the CPU time of a vCPU that never ran: the
    // hotplugged one may not be online yet.)
    const std::string pinned = ok({"vcpuinfo", "web"});
    EXPECT_TRUE(std::regex_search(pinned, std::regex("VCPU:           1\n(.*\n){2,3}CPU Affinity:   y-*\n"))) << pinned;
    EXPECT_EQ(ok({"emulatorpin", "web", "0", "--live"}), "\n");
    same({"emulatorpin", "web"});
    same({"vcpupin", "web", "7", "0", "--live"});  // no such vCPU: the same refusal
    EXPECT_EQ(ok({"setmem", "web", "131072", "--live"}), "\n");
    EXPECT_NE(ok({"dumpxml", "web"}).find("<currentMemory unit='KiB'>131072</currentMemory>"), std::string::npos);
    // The balloon inflates at the guest's pace.
    std::string stats;
    for (int i = 0; i < 60 && stats.find("actual 131072\n") == std::string::npos; ++i) {
        if (i > 0) std::this_thread::sleep_for(500ms);
        stats = ok({"dommemstat", "web"});
    }
    EXPECT_NE(stats.find("actual 131072\n"), std::string::npos) << stats;
    EXPECT_TRUE(std::regex_search(stats, std::regex("\nrss [1-9][0-9]*\n"))) << stats;
    EXPECT_EQ(ok({"dommemstat", "web", "--period", "2", "--live"}), "\n");
    same({"setmaxmem", "web", "262144"});  // running: refused, as libvirt
    same({"dumpxml", "web"});

    // The guest agent: virDomainGetTime / SetTime, virDomainGetHostname, ...
    bool connected = false;
    for (int i = 0; i < 300 && !connected; ++i) {
        connected = ok({"dumpxml", "web"}).find("name='org.qemu.guest_agent.0' state='connected'") != std::string::npos;
        if (!connected) std::this_thread::sleep_for(200ms);
    }
    ASSERT_TRUE(connected) << ok({"dumpxml", "web"});
    const std::string time = ok({"domtime", "web"});
    EXPECT_TRUE(std::regex_search(time, std::regex("^Time: [0-9]{10}\n$"))) << time;
    EXPECT_EQ(ok({"domtime", "web", "--time", "1700000000"}), "\n");
    const std::string set = ok({"domtime", "web"});
    EXPECT_TRUE(std::regex_search(set, std::regex("^Time: 17000000[0-5][0-9]\n$"))) << set;
    same({"domhostname", "web"});
    // virDomainAgentSetResponseTimeout: a bound of 10 s, then the default again.
    EXPECT_EQ(ok({"guest-agent-timeout", "web", "--timeout", "10"}), "\n");
    same({"domhostname", "web"});
    same({"guest-agent-timeout", "web", "--timeout", "-3"});
    EXPECT_EQ(ok({"guest-agent-timeout", "web", "--timeout", "-1"}), "\n");
    // virDomainGetGuestVcpus / SetGuestVcpus: the guest onlined the vCPU
    // hotplugged above (the test guest's uevent helper); the agent takes it
    // offline and brings it back.
    EXPECT_EQ(ok({"guestvcpus", "web", "--cpulist", "1", "--disable"}), "\n");
    EXPECT_EQ(ok({"guestvcpus", "web"}), "vcpus          : 0-1\nonline         : 0\nofflinable     : 1\n\n");
    same({"guestvcpus", "web"});
    EXPECT_EQ(ok({"guestvcpus", "web", "--cpulist", "1", "--enable"}), "\n");
    EXPECT_EQ(ok({"guestvcpus", "web"}), "vcpus          : 0-1\nonline         : 0-1\nofflinable     : 1\n\n");
    same({"guestvcpus", "web", "--cpulist", "0", "--disable"});  // the refusal reads the same
    // virDomainGetVcpusFlags / SetVcpusFlags with VIR_DOMAIN_VCPU_GUEST.
    EXPECT_EQ(ok({"vcpucount", "web", "--guest"}), "2\n\n");
    EXPECT_EQ(ok({"setvcpus", "web", "1", "--guest"}), "\n");
    same({"vcpucount", "web", "--guest"});
    EXPECT_EQ(ok({"vcpucount", "web", "--guest"}), "1\n\n");
    EXPECT_EQ(ok({"setvcpus", "web", "2", "--guest"}), "\n");
    EXPECT_EQ(ok({"vcpucount", "web", "--guest"}), "2\n\n");
    // virDomainGetFSInfo, virDomainFSFreeze / FSThaw: the guest runs from
    // its initramfs, which the agent does not list: none, and 0 frozen.
    same({"domfsinfo", "web"});
    EXPECT_EQ(ok({"domfsfreeze", "web"}), "Froze 0 filesystem(s)\n\n");
    same({"domfsthaw", "web"});
    same({"domfsthaw", "web", "/"});  // refused, as libvirt refuses it
    // virDomainGetGuestInfo: the typed parameters as vireo prints them.
    same({"guestinfo", "web"});
    same({"guestinfo", "web", "--os", "--hostname"});
    // virDomainSetUserPassword: the guest's chpasswd sets /etc/shadow.
    EXPECT_EQ(ok({"set-user-password", "web", "root", "rpc-s3cret"}), "Password set successfully for root in web\n");
    same({"set-user-password", "web", "root", "$6$rpc$hash", "--encrypted"});
    EXPECT_EQ(virsh({"set-user-password", "web", "nosuchuser", "pw"}).exit_code, 1);

    // NIC hotplug through virDomainAttachDeviceFlags / DetachDeviceFlags.
    const std::string nic = (dir_ / "nic.xml").string();
    std::ofstream(nic) << "<interface type='user'><mac address='52:54:00:7e:00:01'/><model type='virtio'/></interface>";
    EXPECT_EQ(ok({"attach-device", "web", nic, "--live"}), "Device attached successfully\n\n");
    same({"domiflist", "web"});
    EXPECT_NE(ok({"domiflist", "web"}).find("52:54:00:7e:00:01"), std::string::npos);
    // virDomainUpdateDeviceFlags: the NIC's link state, live.
    const std::string nic_down = (dir_ / "nic-down.xml").string();
    std::ofstream(nic_down) << "<interface type='user'><mac address='52:54:00:7e:00:01'/><model type='virtio'/>"
                               "<link state='down'/></interface>";
    EXPECT_EQ(ok({"update-device", "web", nic_down, "--live"}), "Device updated successfully\n\n");
    EXPECT_EQ(ok({"domif-getlink", "web", "52:54:00:7e:00:01"}), "52:54:00:7e:00:01 down\n");
    same({"domif-getlink", "web", "52:54:00:7e:00:01"});
    EXPECT_EQ(ok({"detach-device", "web", nic, "--live"}), "Device detached successfully\n\n");
    EXPECT_EQ(ok({"domiflist", "web"}).find("52:54:00:7e:00:01"), std::string::npos);

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
    // The agent-lifecycle callback (virConnectDomainEventAgentLifecycleCallback)
    // told virsh when the guest's qemu-ga opened its channel.
    EXPECT_NE(events->output().find("event 'agent-lifecycle' for domain 'web': state: 'connected' reason: 'channel event'"),
              std::string::npos)
        << events->output();
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
    // A session daemon lists no networks, as vireo does
    // (tests/integration/network/network_rpc_test.cpp drives a system one).
    same({"net-list", "--all"});
    // Verbs vireod does not serve over libvirt's protocol yet (host
    // interfaces) fail cleanly with libvirt's "not supported" (and the
    // connection keeps serving).
    auto ifaces = virsh({"iface-list", "--all"});
    EXPECT_NE(ifaces.exit_code, 0);
    EXPECT_NE(ifaces.err.find("not supported"), std::string::npos) << ifaces.err;
    EXPECT_EQ(virsh({"list", "--all"}).exit_code, 0);
}

// The block job verbs through libvirt's procedures (virDomainBlockCommit,
// virDomainBlockRebase for blockcopy and a partial pull, virDomainBlockPull,
// virDomainGetBlockJobInfo, virDomainBlockJobAbort,
// virDomainBlockJobSetSpeed). vireod sends no BLOCK_JOB events: virsh's
// --wait falls back to polling the job's info, as it does against a
// libvirtd that cannot register them.
TEST_F(VirshAgainstVireod, BlockJobs) {
    auto img = run({"qemu-img", "create", "-q", "-f", "qcow2", (dir_ / "data.qcow2").string(), "16M"});
    ASSERT_EQ(img.exit_code, 0) << img.err;
    std::string def = guest_domain_xml("bj");
    def.replace(def.find("</devices>"), 10,
                "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='" + (dir_ / "data.qcow2").string() +
                    "'/><target dev='vda' bus='virtio'/></disk></devices>");
    const std::string xml = (dir_ / "bj.xml").string();
    std::ofstream(xml) << def;
    ok({"define", xml});
    ok({"start", "bj"});
    auto snapshot = [&](const std::string& name) {
        auto r = vireo({"snapshot-create-as", "bj", name, "--disk-only", "--diskspec",
                        "vda,file=" + (dir_ / (name + ".qcow2")).string()});
        EXPECT_EQ(r.exit_code, 0) << r.err;
    };
    // The file name of vda's image in the live definition.
    auto source = [&] {
        const std::string out = ok({"dumpxml", "bj"});
        const auto target = out.find("<target dev='vda'");
        if (target == std::string::npos) return std::string();
        const auto at = out.find("<source file='", out.rfind("<disk ", target));
        if (at == std::string::npos) return std::string();
        const auto from = at + 14;
        return std::filesystem::path(out.substr(from, out.find('\'', from) - from)).filename().string();
    };

    snapshot("s1");
    ASSERT_EQ(source(), "s1.qcow2");
    auto r = virsh({"blockcommit", "bj", "vda"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("commit of 'vda' active layer requires active flag"), std::string::npos) << r.err;
    r = virsh({"blockcommit", "bj", "vda", "--active", "--pivot"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Successfully pivoted"), std::string::npos) << r.out;
    EXPECT_EQ(source(), "data.qcow2");
    same({"blockjob", "bj", "vda", "--info"});  // No current block job for vda

    r = virsh({"blockcopy", "bj", "vda", (dir_ / "copy.raw").string(), "--format", "raw", "--pivot"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Successfully pivoted"), std::string::npos) << r.out;
    EXPECT_EQ(source(), "copy.raw");

    r = virsh({"blockcopy", "bj", "vda", (dir_ / "c2.raw").string(), "--format", "raw", "--wait"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Now in mirroring phase"), std::string::npos) << r.out;
    r = virsh({"blockjob", "bj", "vda", "--info"});
    EXPECT_NE(r.err.find("Block Copy: [100 %]"), std::string::npos) << r.out << r.err;
    EXPECT_EQ(vireo({"blockjob", "bj", "vda", "--raw"}).out.substr(0, 16), " type=Block Copy");
    same({"blockjob", "bj", "vda", "--raw"});
    ok({"blockjob", "bj", "vda", "--bandwidth", "3"});
    EXPECT_NE(ok({"blockjob", "bj", "vda", "--raw"}).find(" bandwidth=3\n"), std::string::npos);
    ok({"blockjob", "bj", "vda", "--abort"});
    EXPECT_NE(ok({"blockjob", "bj", "vda"}).find("No current block job for vda"), std::string::npos);
    EXPECT_EQ(source(), "copy.raw");

    snapshot("s2");
    snapshot("s3");
    r = virsh({"blockpull", "bj", "vda", "--base", (dir_ / "s2.qcow2").string(), "--wait"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Pull complete"), std::string::npos) << r.out;
    r = virsh({"blockpull", "bj", "vda", "--wait"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Pull complete"), std::string::npos) << r.out;
    auto chain = run({"qemu-img", "info", "-U", "--backing-chain", (dir_ / "s3.qcow2").string()});
    EXPECT_EQ(chain.out.find("backing file:"), std::string::npos) << chain.out;
    EXPECT_EQ(ok({"dumpxml", "bj"}).find("s2.qcow2"), std::string::npos);
    same({"blockjob", "bj", "vdz"});
    ok({"destroy", "bj"});
}

}  // namespace
}  // namespace vireo::test
