// Guest NUMA cells, memory backends, dimm memory modules and thread
// affinity (<cputune>) on the real test guest under TCG: what the guest sees
// and what the host threads are pinned to.
#include <gtest/gtest.h>

#include <fstream>

#include "helpers.hpp"
#include "support/guest.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::qemu::test;
using std::chrono::seconds;

namespace {

namespace fs = std::filesystem;

std::string log_of(GuestFixture& f, const std::string& name) {
    return "\nconsole:\n" + files::read(f.drv->console_log_path(name)).value_or("") + "\nlog:\n" +
           files::read(f.drv->log_path(name)).value_or("");
}

// Cpus_allowed_list of each thread of `pid`, by thread name (QEMU names
// them with debug-threads=on: "CPU 0/TCG", "IO iothread1", ...).
std::map<std::string, std::string> thread_affinities(int pid) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::directory_iterator(fs::path("/proc") / std::to_string(pid) / "task")) {
        std::ifstream in(e.path() / "status");
        std::string line, name, cpus;
        while (std::getline(in, line)) {
            if (line.starts_with("Name:")) name = line.substr(line.find_first_not_of(" \t", 5));
            if (line.starts_with("Cpus_allowed_list:")) cpus = line.substr(line.find_first_not_of(" \t", 18));
        }
        out[name + "#" + e.path().filename().string()] = cpus;
    }
    return out;
}

TEST(QemuMemory, GuestSeesItsNumaNodes) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    f.define_and_start("numa", "", "",
                       "<cpu><numa><cell id='0' cpus='0' memory='96' unit='MiB'/>"
                       "<cell id='1' memory='64' unit='MiB'/></numa></cpu>"
                       "<numatune><memory mode='strict' nodeset='0'/><memnode cellid='1' mode='preferred' nodeset='0'/></numatune>");
    f.wait_ready("numa");
    auto c = f.console("numa");
    auto nodes = c.run("ls -d /sys/devices/system/node/node*", seconds(60));
    ASSERT_TRUE(nodes) << log_of(f, "numa");
    EXPECT_NE(nodes->find("/sys/devices/system/node/node0"), std::string::npos) << *nodes << log_of(f, "numa");
    EXPECT_NE(nodes->find("/sys/devices/system/node/node1"), std::string::npos) << *nodes << log_of(f, "numa");
    EXPECT_EQ(nodes->find("/sys/devices/system/node/node2"), std::string::npos) << *nodes << log_of(f, "numa");
    auto mem1 = c.run("grep MemTotal /sys/devices/system/node/node1/meminfo", seconds(30));
    ASSERT_TRUE(mem1);
    // 64 MiB, less what the kernel keeps for itself.
    const auto at = mem1->find("MemTotal:");
    ASSERT_NE(at, std::string::npos) << *mem1;
    const long kib = std::stol(mem1->substr(at + 9));
    EXPECT_GT(kib, 16 * 1024) << *mem1;
    EXPECT_LE(kib, 64 * 1024) << *mem1;
    auto log = files::read(f.drv->log_path("numa")).value_or("");
    EXPECT_NE(log.find(R"({"qom-type":"memory-backend-ram","id":"ram-node1","size":67108864,"host-nodes":[0],"policy":"preferred"})"),
              std::string::npos) << log;
}

TEST(QemuMemory, DimmModuleIsGuestMemoryAndHasItsLiveAddress) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    f.define_and_start("dimm", "<memory model='dimm'><target><size unit='MiB'>128</size><node>0</node></target></memory>",
                       "memhp_default_state=online",
                       "<maxMemory slots='2' unit='MiB'>1024</maxMemory>"
                       "<cpu><numa><cell id='0' cpus='0' memory='160' unit='MiB'/></numa></cpu>");
    f.wait_ready("dimm");
    auto live = f.drv->domain_xml("dimm", false);
    ASSERT_TRUE(live);
    EXPECT_NE(live->find("<address type='dimm' slot='0' base='0x100000000'/>"), std::string::npos) << *live;
    EXPECT_NE(live->find("<alias name='dimm0'/>"), std::string::npos) << *live;
    EXPECT_NE(live->find("<memory unit='KiB'>294912</memory>"), std::string::npos) << *live;
    auto c = f.console("dimm");
    // The module at 4 GiB is the guest's memory block 32 (128 MiB blocks), online.
    auto online = c.run("cat /sys/devices/system/memory/memory32/online /sys/devices/system/memory/memory32/valid_zones", seconds(60));
    ASSERT_TRUE(online) << log_of(f, "dimm");
    EXPECT_NE(online->find("\n1\n"), std::string::npos) << *online << log_of(f, "dimm");
}

TEST(QemuMemory, MemfdSharedBackingBoots) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    f.define_and_start("memfd", "", "",
                       "<memoryBacking><source type='memfd'/><access mode='shared'/><nosharepages/></memoryBacking>");
    f.wait_ready("memfd");
    auto log = files::read(f.drv->log_path("memfd")).value_or("");
    EXPECT_NE(log.find("memory-backend=pc.ram"), std::string::npos) << log;
    EXPECT_NE(log.find(R"("qom-type":"memory-backend-memfd","id":"pc.ram","share":true)"), std::string::npos) << log;
}

TEST(QemuMemory, HugepagesWithoutHugetlbfsAreRefusedClearly) {
    VIREO_REQUIRE_GUEST();
    auto mounts = files::read("/proc/mounts").value_or("");
    if (mounts.find(" hugetlbfs ") != std::string::npos) GTEST_SKIP() << "this host has a hugetlbfs mount";
    GuestFixture f;
    auto d = f.drv->define_domain(guest_xml("huge", "", "", "<memoryBacking><hugepages/></memoryBacking>"), true);
    ASSERT_TRUE(d) << d.error().full_message();
    auto st = f.drv->start_domain("huge", {});
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().full_message().find("hugetlbfs filesystem is not mounted"), std::string::npos) << st.error().full_message();
    EXPECT_TRUE(qemu_pids_for("huge").empty());
}

TEST(QemuMemory, CputunePinsVcpuIothreadAndEmulatorThreads) {
    VIREO_REQUIRE_GUEST();
    const auto cpus = std::thread::hardware_concurrency();
    if (cpus < 2) GTEST_SKIP() << "needs 2 host CPUs";
    GuestFixture f;
    f.define_and_start("pinned", "", "",
                       "<iothreads>1</iothreads><cputune><vcpupin vcpu='0' cpuset='1'/><emulatorpin cpuset='0'/>"
                       "<iothreadpin iothread='1' cpuset='0-1'/></cputune>");
    f.wait_ready("pinned");
    auto pids = qemu_pids_for("pinned");
    ASSERT_EQ(pids.size(), 1u);
    auto threads = thread_affinities(pids[0]);
    int vcpu = 0, io = 0, other = 0;
    for (const auto& [name, list] : threads) {
        if (name.starts_with("CPU 0/")) {
            ++vcpu;
            EXPECT_EQ(list, "1") << name;
        } else if (name.starts_with("IO iothread1")) {
            ++io;
            EXPECT_EQ(list, "0-1") << name;
        } else if (name.starts_with("qemu-system")) {
            ++other;
            EXPECT_EQ(list, "0") << name;
        }
    }
    EXPECT_EQ(vcpu, 1) << testing::PrintToString(threads);
    EXPECT_EQ(io, 1) << testing::PrintToString(threads);
    EXPECT_GE(other, 1) << testing::PrintToString(threads);
}

TEST(QemuMemory, CpusetBeyondTheHostIsRefused) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    auto d = f.drv->define_domain(guest_xml("far", "", "", "<cputune><vcpupin vcpu='0' cpuset='4095'/></cputune>"), true);
    ASSERT_TRUE(d) << d.error().full_message();
    auto st = f.drv->start_domain("far", {});
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().full_message().find("<cputune><vcpupin vcpu='0'> cpuset='4095': CPU 4095 is not one of this host's online CPUs"),
              std::string::npos)
        << st.error().full_message();
}

}  // namespace
