// vCPUs and memory of a running guest through the CLI, as virsh's verbs
// (vcpucount, vcpuinfo, setvcpus, vcpupin, emulatorpin, setmem, setmaxmem,
// dommemstat): a session daemon running the test guest under QEMU/TCG with
// two vCPU slots (one present) and a virtio balloon; the guest's own view
// (its online CPUs, its memory) is checked on its console.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <thread>

#include "helpers.hpp"
#include "support/guest.hpp"
#include "support/session_cli.hpp"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;

std::string replaced(std::string text, const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

class QemuCliResources : public SessionGuestTest {
protected:
    // stdout of a command that must succeed.
    std::string ok(const std::vector<std::string>& args) {
        auto r = vireo(args);
        EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
        return r.out;
    }
    // The value of `tag` in dommemstat, polled until `pred` holds (or 60 s).
    std::optional<std::uint64_t> memstat(const std::string& tag, const std::function<bool(std::uint64_t)>& pred) {
        std::optional<std::uint64_t> last;
        for (int i = 0; i < 120; ++i) {
            std::smatch m;
            const std::string out = vireo({"dommemstat", "res"}).out;
            if (std::regex_search(out, m, std::regex("(^|\n)" + tag + " (\\d+)\n"))) {
                last = std::stoull(m[2]);
                if (pred(*last)) return last;
            }
            std::this_thread::sleep_for(500ms);
        }
        return last;
    }

    // The guest's MemTotal in MiB, from its console.
    std::optional<unsigned> guest_mem_mib() {
        std::string said;
        if (!cli_.on_console("res", "echo MEM=$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)", "MEM=\\d+\\s", 60s, &said))
            return std::nullopt;
        std::smatch m;
        std::optional<unsigned> last;
        for (auto it = said.cbegin(); std::regex_search(it, said.cend(), m, std::regex("MEM=(\\d+)\\s")); it = m.suffix().first)
            last = static_cast<unsigned>(std::stoul(m[1]));
        return last;
    }

};

TEST_F(QemuCliResources, VcpusAndMemoryAsVirshShowsThem) {
    std::string xml = qemu::test::guest_xml("res");
    xml = replaced(xml, "<vcpu>1</vcpu>", "<vcpu current='1'>2</vcpu>");
    xml = replaced(xml, "<memballoon model='none'/>", "<memballoon model='virtio'><stats period='1'/></memballoon>");
    const std::string file = (dir_ / "res.xml").string();
    std::ofstream(file) << xml;
    ASSERT_EQ(vireo({"define", file}).exit_code, 0);
    // Shut off: the persistent counts only, vcpuinfo without a host side.
    EXPECT_EQ(ok({"vcpucount", "res"}), "maximum      config         2\ncurrent      config         1\n\n");
    EXPECT_TRUE(contains(ok({"vcpuinfo", "res"}), "CPU:            N/A\n"));
    ASSERT_EQ(vireo({"start", "res"}).exit_code, 0);
    std::string said;
    ASSERT_TRUE(cli_.on_console("res", "echo CPUS=$(grep -c ^processor /proc/cpuinfo)", "CPUS=1", 180s, &said)) << said;

    EXPECT_EQ(ok({"vcpucount", "res"}),
              "maximum      config         2\nmaximum      live           2\ncurrent      config         1\ncurrent      live           1\n\n");
    EXPECT_EQ(ok({"vcpucount", "res", "--maximum", "--live"}), "2\n\n");
    const std::string info = ok({"vcpuinfo", "res"});
    EXPECT_TRUE(std::regex_search(info, std::regex("^VCPU:           0\nCPU:            \\d+\nState:          running\n"
                                                   "CPU time:       \\d+\\.\\ds\nCPU Affinity:   [y-]+\n\n$")))
        << info;

    // Bad input changes nothing: setvcpus above the maximum, setvcpu of
    // vCPU 0 or of an id the domain does not have, setvcpu without a state.
    const std::string live_xml = ok({"dumpxml", "res"}), config_xml = ok({"dumpxml", "res", "--inactive"});
    auto too_many = vireo({"setvcpus", "res", "3", "--live"});
    EXPECT_EQ(too_many.exit_code, 1);
    EXPECT_TRUE(contains(too_many.err, "requested vcpus is greater than max allowable vcpus for the live domain: 3 > 2"))
        << too_many.err;
    const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
        {{"setvcpus", "res", "3", "--config"}, "max allowable vcpus for the persistent domain: 3 > 2"},
        {{"setvcpu", "res", "0", "--disable", "--live"}, "error: invalid argument: vCPU '0' can't be modified\n"},
        {{"setvcpu", "res", "0", "--enable", "--config"}, "error: invalid argument: vCPU '0' can't be modified\n"},
        {{"setvcpu", "res", "2", "--enable", "--live"}, "error: invalid argument: vcpu 2 is not present in live config\n"},
        {{"setvcpu", "res", "1-2", "--enable", "--config"}, "error: invalid argument: vcpu 2 is not present in persistent config\n"},
        {{"setvcpu", "res", "1"}, "error: one of --enable, --disable is required\n"},
        {{"setvcpu", "res", "1", "--enable", "--disable"}, "error: Options --enable and --disable are mutually exclusive\n"},
    };
    for (const auto& [args, said_err] : refused) {
        auto r = vireo(args);
        EXPECT_EQ(r.exit_code, 1) << args[2];
        EXPECT_TRUE(contains(r.err, said_err)) << r.err;
    }
    EXPECT_EQ(ok({"dumpxml", "res"}), live_xml) << "refusals leave the live definition";
    EXPECT_EQ(ok({"dumpxml", "res", "--inactive"}), config_xml) << "refusals leave the persistent definition";

    // vCPU hotplug: the guest brings the second CPU online by itself (its
    // uevent helper, a distribution's udev rule); the live XML lists the
    // vCPUs one by one, as libvirt's does after a hotplug.
    EXPECT_EQ(ok({"setvcpus", "res", "2", "--live"}), "");
    EXPECT_EQ(ok({"vcpucount", "res", "--live"}), "2\n\n");
    EXPECT_EQ(ok({"vcpucount", "res", "--config"}), "1\n\n") << "--live leaves the persistent definition";
    // The guest's online CPUs once they are `want` (or after 30 s).
    auto online_is = [](const std::string& want) {
        return "for i in $(seq 1 120); do [ \"$(cat /sys/devices/system/cpu/online)\" = " + want +
               " ] && break; usleep 250000; done; echo ONLINE=$(cat /sys/devices/system/cpu/online)";
    };
    ASSERT_TRUE(cli_.on_console("res", online_is("0-1"), "ONLINE=0-1\\s", 120s, &said)) << said;
    EXPECT_TRUE(contains(ok({"dumpxml", "res"}), "<vcpu placement='static'>2</vcpu>\n  <vcpus>\n"
                                                 "    <vcpu id='0' enabled='yes' hotpluggable='no' order='1'/>\n"
                                                 "    <vcpu id='1' enabled='yes' hotpluggable='yes' order='2'/>\n  </vcpus>\n"))
        << ok({"dumpxml", "res"});
    EXPECT_FALSE(contains(ok({"dumpxml", "res", "--inactive"}), "<vcpus>"));
    EXPECT_EQ(std::count(info.begin(), info.end(), '\n') * 2, std::ranges::count(ok({"vcpuinfo", "res"}), '\n'))
        << "vcpuinfo shows both vCPUs";

    // Pinning, live: the threads' affinity, the live definition, the tables.
    EXPECT_EQ(ok({"vcpupin", "res", "1", "0", "--live"}), "");
    EXPECT_TRUE(std::regex_search(ok({"vcpuinfo", "res", "--pretty"}), std::regex("VCPU:           1\n(.*\n){3}CPU Affinity:   0\n")));
    EXPECT_TRUE(contains(ok({"vcpupin", "res"}), " VCPU   CPU Affinity\n----------------------\n 0      0-1\n 1      0\n\n"))
        << ok({"vcpupin", "res"});
    EXPECT_TRUE(contains(ok({"dumpxml", "res"}), "<vcpupin vcpu='1' cpuset='0'/>"));
    EXPECT_FALSE(contains(ok({"dumpxml", "res", "--inactive"}), "<vcpupin"));
    auto bad_cpu = vireo({"vcpupin", "res", "0", "7", "--live"});
    EXPECT_EQ(bad_cpu.exit_code, 1);
    EXPECT_TRUE(contains(bad_cpu.err, "CPU 7 is not one of this host's online CPUs")) << bad_cpu.err;
    EXPECT_EQ(ok({"emulatorpin", "res", "1", "--live"}), "");
    EXPECT_EQ(ok({"emulatorpin", "res"}), "emulator: CPU Affinity\n----------------------------------\n       *: 1\n\n");
    EXPECT_EQ(ok({"emulatorpin", "res", "r", "--live"}), "");
    EXPECT_EQ(ok({"emulatorpin", "res"}), "emulator: CPU Affinity\n----------------------------------\n       *: 0-1\n\n");

    // Unplug under TCG is refused before anything is sent: QEMU 7.2 damages
    // its heap removing a TCG vCPU, and the next vCPU plug or device hotplug
    // crashes it. Nothing changes, the guest keeps both CPUs.
    const std::string plugged_xml = ok({"dumpxml", "res"});
    for (const auto& args : {std::vector<std::string>{"setvcpus", "res", "1", "--live"},
                             std::vector<std::string>{"setvcpu", "res", "1", "--disable", "--live"}}) {
        auto unplug = vireo(args);
        EXPECT_EQ(unplug.exit_code, 1);
        EXPECT_TRUE(contains(unplug.err, "vCPU unplug under TCG (domain type 'qemu') with QEMU 7.")) << unplug.err;
        EXPECT_TRUE(contains(unplug.err, "its next vCPU plug or device hotplug crashes the guest")) << unplug.err;
    }
    EXPECT_EQ(ok({"dumpxml", "res"}), plugged_xml);
    EXPECT_EQ(ok({"vcpucount", "res", "--live"}), "2\n\n");
    ASSERT_TRUE(cli_.on_console("res", online_is("0-1"), "ONLINE=0-1\\s", 60s, &said)) << said;
    // setvcpu --config: vCPU 1 enabled, then disabled, in <vcpus>.
    EXPECT_EQ(ok({"setvcpu", "res", "1", "--enable", "--config"}), "");
    EXPECT_TRUE(contains(ok({"dumpxml", "res", "--inactive"}), "<vcpu placement='static'>2</vcpu>\n  <vcpus>\n"
                                                               "    <vcpu id='0' enabled='yes'/>\n"
                                                               "    <vcpu id='1' enabled='yes' hotpluggable='yes'/>\n  </vcpus>\n"))
        << ok({"dumpxml", "res", "--inactive"});
    EXPECT_EQ(ok({"vcpucount", "res", "--config"}), "2\n\n");
    EXPECT_EQ(ok({"setvcpu", "res", "1", "--disable", "--config"}), "");
    EXPECT_EQ(ok({"vcpucount", "res", "--config"}), "1\n\n");
    EXPECT_TRUE(contains(ok({"dumpxml", "res", "--inactive"}), "<vcpu placement='static' current='1'>2</vcpu>\n  <vcpus>\n"))
        << ok({"dumpxml", "res", "--inactive"});
    EXPECT_EQ(ok({"dumpxml", "res"}), plugged_xml) << "--config leaves the live definition";
    EXPECT_EQ(ok({"setvcpus", "res", "2", "--config"}), "");
    EXPECT_EQ(ok({"vcpucount", "res", "--config"}), "2\n\n");
    auto max_live = vireo({"setvcpus", "res", "4", "--maximum", "--live"});
    EXPECT_EQ(max_live.exit_code, 1);

    // The balloon: the guest gives memory back, dommemstat follows, the
    // guest reports its statistics (period 1 s).
    auto actual = memstat("actual", [](std::uint64_t) { return true; });
    ASSERT_TRUE(actual);
    EXPECT_EQ(*actual, 160u * 1024);
    const auto mem_before = guest_mem_mib();
    ASSERT_TRUE(mem_before);
    EXPECT_EQ(ok({"setmem", "res", "128M", "--live"}), "");
    EXPECT_EQ(memstat("actual", [](std::uint64_t v) { return v == 128u * 1024; }).value_or(0), 128u * 1024);
    EXPECT_TRUE(memstat("rss", [](std::uint64_t v) { return v > 0; }));
    EXPECT_TRUE(memstat("usable", [](std::uint64_t v) { return v > 0; })) << ok({"dommemstat", "res"});
    EXPECT_TRUE(contains(ok({"dumpxml", "res"}), "<currentMemory unit='KiB'>131072</currentMemory>"));
    // The guest's MemTotal shrinks by what the balloon took (32 MiB).
    std::optional<unsigned> mem_after;
    for (int i = 0; i < 30 && (!mem_after || *mem_after + 31 > *mem_before); ++i) {
        mem_after = guest_mem_mib();
        std::this_thread::sleep_for(500ms);
    }
    ASSERT_TRUE(mem_after);
    EXPECT_NEAR(static_cast<double>(*mem_before - *mem_after), 32.0, 1.0) << *mem_before << " MiB before, " << *mem_after << " after";
    auto higher = vireo({"setmem", "res", "200M", "--live"});
    EXPECT_EQ(higher.exit_code, 1);
    EXPECT_TRUE(contains(higher.err, "cannot set memory higher than max memory")) << higher.err;
    auto max_running = vireo({"setmaxmem", "res", "192M", "--live"});
    EXPECT_EQ(max_running.exit_code, 1);
    EXPECT_TRUE(contains(max_running.err, "cannot resize the maximum memory on an active domain")) << max_running.err;
    EXPECT_EQ(ok({"setmaxmem", "res", "192M", "--config"}), "");
    EXPECT_TRUE(contains(ok({"dumpxml", "res", "--inactive"}), "<memory unit='KiB'>196608</memory>"));
    EXPECT_EQ(ok({"dommemstat", "res", "--period", "0", "--live"}), "");
    EXPECT_FALSE(contains(ok({"dumpxml", "res"}), "<stats period"));
}

}  // namespace
}  // namespace vireo::test
