// Guest NUMA cells, memory backends, dimm memory modules (at boot and
// hotplugged) and thread affinity (<cputune>) on the real test guest under
// TCG: what the guest sees and what the host threads are pinned to.
#include <gtest/gtest.h>

#include <fstream>

#include <fmt/ranges.h>

#include "driver/ops/domain.hpp"
#include "helpers.hpp"
#include "support/guest.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::qemu::test;
using std::chrono::seconds;
namespace ops = driver::ops;

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

// A module of `mib` (a multiple of the guest's 128 MiB memory blocks: Linux
// adds no partial block), optionally at `slot`.
std::string dimm_doc(unsigned mib, int slot = -1) {
    return fmt::format("<memory model='dimm'><target><size unit='MiB'>{}</size><node>0</node></target>{}</memory>", mib,
                       slot < 0 ? "" : fmt::format("<address type='dimm' slot='{}'/>", slot));
}

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// A virtio-mem of `mib` on node 0 with `block_kib` blocks, asking for `requested_kib`.
std::string virtio_mem_doc(unsigned mib, unsigned block_kib, unsigned requested_kib) {
    return fmt::format("<memory model='virtio-mem'><target><size unit='MiB'>{}</size><node>0</node><block unit='KiB'>{}</block>"
                       "<requested unit='KiB'>{}</requested></target></memory>",
                       mib, block_kib, requested_kib);
}

// The guest's MemTotal in KiB (/proc/meminfo), 0 when it did not answer.
long guest_mem_total(Console& c) {
    auto out = c.run("grep MemTotal /proc/meminfo", seconds(30));
    if (!out) return 0;
    const auto at = out->find("MemTotal:");
    return at == std::string::npos ? 0 : std::stol(out->substr(at + 9));
}

// Wait until the guest's MemTotal passes `kib` (the kernel onlines a new
// module's blocks as it adds them: memhp_default_state=online_movable, the
// movable zone, so the kernel keeps its own allocations out of a module and
// can give it back on detach; a plain "online" lets it land there and the
// guest may then keep the module for good).
long wait_mem_total_above(Console& c, long kib, seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    long now = 0;
    while ((now = guest_mem_total(c)) <= kib && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return now;
}

// Wait until the guest's MemTotal falls below `kib` (virtio-mem blocks unplugged).
long wait_mem_total_below(Console& c, long kib, seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    long now = 0;
    while (((now = guest_mem_total(c)) >= kib || now == 0) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return now;
}

struct Definitions {
    std::string live, config;
    bool operator==(const Definitions&) const = default;
};
Definitions definitions(GuestFixture& f, const std::string& name) {
    return {f.drv->domain_xml(name, false).value_or("<none>"), f.drv->domain_xml(name, true).value_or("<none>")};
}

// The dimm test's guest (memhp_default_state=online) gets a virtio-mem of
// 128 MiB (one Linux memory block) asking for nothing: bad sizes are refused
// first (both definitions as they were), then raising <requested> live
// grows the guest's MemTotal and <current> follows QEMU's
// MEMORY_DEVICE_SIZE_CHANGE; it cannot be detached; lowering it shrinks the
// guest again.
void virtio_mem_steps(GuestFixture& f, Console& c) {
    const Definitions start = definitions(f, "memhp");
    const std::pair<std::string, std::string> bad[] = {
        {virtio_mem_doc(128, 2048, 262144), "requested size must be smaller than or equal to @size (131072KiB)"},
        {virtio_mem_doc(128, 2048, 1024), "requested size must be an integer multiple of block size"},
        {virtio_mem_doc(128, 3072, 0), "block size must be a power of two"},
        {virtio_mem_doc(128, 1024, 0), "block size too small, must be at least 2048KiB"},
    };
    for (const auto& [doc, message] : bad) {
        auto st = f.drv->call<ops::DomainAttachDevice>({.ref = "memhp", .xml = doc, .live = true, .config = true});
        ASSERT_FALSE(st) << doc;
        EXPECT_TRUE(has(st.error().full_message(), message)) << st.error().full_message();
        EXPECT_EQ(definitions(f, "memhp"), start);
    }
    auto st = f.drv->call<ops::DomainAttachDevice>({.ref = "nomax", .xml = virtio_mem_doc(128, 2048, 0), .config = true});
    ASSERT_FALSE(st);
    EXPECT_TRUE(has(st.error().full_message(), "'maxMemory' is not defined")) << st.error().full_message();

    st = f.drv->call<ops::DomainAttachDevice>({.ref = "memhp", .xml = virtio_mem_doc(128, 2048, 0), .live = true, .config = true});
    ASSERT_TRUE(st) << st.error().full_message();
    Definitions now = definitions(f, "memhp");
    EXPECT_TRUE(has(now.live, "<alias name='virtiomem0'/>")) << now.live;
    EXPECT_TRUE(has(now.live, "<requested unit='KiB'>0</requested>")) << now.live;
    EXPECT_TRUE(has(now.live, "<current unit='KiB'>0</current>")) << now.live;
    EXPECT_TRUE(has(now.config, "<block unit='KiB'>2048</block>")) << now.config;
    const auto vmem_at = now.live.find("model='virtio-mem'");
    ASSERT_NE(vmem_at, std::string::npos) << now.live;
    EXPECT_NE(now.live.find("<address type='pci'", vmem_at), std::string::npos) << now.live;
    const long before = guest_mem_total(c);

    // Bad updates: refused, nothing changes.
    const Definitions plugged = now;
    st = f.drv->call<ops::DomainUpdateDevice>({.ref = "memhp", .xml = virtio_mem_doc(128, 2048, 3072), .live = true});
    ASSERT_FALSE(st);
    EXPECT_TRUE(has(st.error().full_message(), "requested size must be an integer multiple of block size")) << st.error().full_message();
    st = f.drv->call<ops::DomainUpdateDevice>({.ref = "memhp", .xml = virtio_mem_doc(128, 4096, 131072), .live = true});
    ASSERT_FALSE(st);
    EXPECT_TRUE(has(st.error().full_message(), "cannot modify memory block size from '2048' to '4096'")) << st.error().full_message();
    // It cannot be detached, as libvirt refuses it.
    st = f.drv->call<ops::DomainDetachDevice>({.ref = "memhp", .xml = virtio_mem_doc(128, 2048, 0), .live = true, .timeout_ms = 5000});
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ErrorCode::Unsupported) << st.error().full_message();
    EXPECT_TRUE(has(st.error().full_message(), "cannot be unplugged")) << st.error().full_message();
    EXPECT_EQ(definitions(f, "memhp"), plugged);

    // Raise <requested> live: the guest plugs the blocks, <current> follows.
    auto current_is = [&](unsigned kib) {
        const auto deadline = std::chrono::steady_clock::now() + seconds(60);
        std::string live;
        while (!has(live = definitions(f, "memhp").live, fmt::format("<current unit='KiB'>{}</current>", kib)) &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
        return has(live, fmt::format("<current unit='KiB'>{}</current>", kib));
    };
    st = f.drv->call<ops::DomainUpdateDevice>({.ref = "memhp", .xml = virtio_mem_doc(128, 2048, 131072), .live = true});
    ASSERT_TRUE(st) << st.error().full_message();
    now = definitions(f, "memhp");
    EXPECT_TRUE(has(now.live, "<requested unit='KiB'>131072</requested>")) << now.live;
    EXPECT_TRUE(has(now.config, "<requested unit='KiB'>0</requested>")) << now.config;
    const long grown = wait_mem_total_above(c, before + 120 * 1024, seconds(90));
    EXPECT_GT(grown, before + 120 * 1024) << "MemTotal " << before << " KiB before" << log_of(f, "memhp");
    EXPECT_TRUE(current_is(131072)) << definitions(f, "memhp").live;
    // virsh's memory-device-size-change event told the new size.
    EXPECT_TRUE(f.events.wait_for("memhp", "MemoryDeviceSizeChange/virtiomem0/131072", seconds(5)))
        << fmt::format("{}", fmt::join(f.events.for_domain("memhp"), " "));

    // Lower it: the guest gives the blocks back.
    st = f.drv->call<ops::DomainUpdateDevice>({.ref = "memhp", .xml = virtio_mem_doc(128, 2048, 0), .live = true});
    ASSERT_TRUE(st) << st.error().full_message();
    const long shrunk = wait_mem_total_below(c, grown - 120 * 1024, seconds(90));
    testing::Test::RecordProperty("virtio_mem_total_kib", fmt::format("{} -> {} -> {}", before, grown, shrunk));
    EXPECT_LT(shrunk, grown - 120 * 1024) << log_of(f, "memhp");
    EXPECT_TRUE(current_is(0)) << definitions(f, "memhp").live;
    EXPECT_TRUE(f.events.wait_for("memhp", "MemoryDeviceSizeChange/virtiomem0/0", seconds(5)))
        << fmt::format("{}", fmt::join(f.events.for_domain("memhp"), " "));
}

// One guest for every step: refusals first (each leaves both definitions as
// they were), then a dimm hotplugged live grows the guest's MemTotal and the
// live XML (alias, slot and base address, memory total), a second one live
// and persistent, a third finds no slot, detaching what the domain lacks is
// NotFound, and detaching a module asks the guest.
TEST(QemuMemory, DimmHotplugGrowsGuestMemory) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    // Without <maxMemory>: refused, as libvirt.
    ASSERT_TRUE(f.drv->define_domain(guest_xml("nomax"), true));
    const Definitions nomax = definitions(f, "nomax");
    auto st = f.drv->call<ops::DomainAttachDevice>({.ref = "nomax", .xml = dimm_doc(128), .config = true});
    ASSERT_FALSE(st);
    EXPECT_TRUE(has(st.error().full_message(), "cannot use/hotplug a memory device when domain 'maxMemory' is not defined"))
        << st.error().full_message();
    EXPECT_EQ(definitions(f, "nomax"), nomax);

    f.define_and_start("memhp", "", "memhp_default_state=online_movable",
                       "<maxMemory slots='2' unit='MiB'>640</maxMemory>"
                       "<cpu><numa><cell id='0' cpus='0' memory='160' unit='MiB'/></numa></cpu>");
    f.wait_ready("memhp");
    auto c = f.console("memhp");
    const long before = guest_mem_total(c);
    ASSERT_GT(before, 0) << log_of(f, "memhp");
    const Definitions booted = definitions(f, "memhp");

    // Beyond maxMemory (160 + 512 > 640 MiB): refused, nothing changes.
    st = f.drv->call<ops::DomainAttachDevice>({.ref = "memhp", .xml = dimm_doc(512), .live = true, .config = true});
    ASSERT_FALSE(st);
    EXPECT_TRUE(has(st.error().full_message(), "Attaching memory device with size '524288' would exceed domain's maxMemory config size '655360'"))
        << st.error().full_message();
    EXPECT_EQ(definitions(f, "memhp"), booted);

    // Live (current = live on a running domain): the guest's memory grows.
    st = f.drv->call<ops::DomainAttachDevice>({.ref = "memhp", .xml = dimm_doc(128)});
    ASSERT_TRUE(st) << st.error().full_message();
    Definitions now = definitions(f, "memhp");
    EXPECT_TRUE(has(now.live, "<alias name='dimm0'/>")) << now.live;
    EXPECT_TRUE(has(now.live, "<address type='dimm' slot='0' base='0x100000000'/>")) << now.live;
    EXPECT_TRUE(has(now.live, "<memory unit='KiB'>294912</memory>")) << now.live;
    EXPECT_TRUE(has(now.live, "<currentMemory unit='KiB'>294912</currentMemory>")) << now.live;
    EXPECT_EQ(now.config, booted.config);
    const long grown = wait_mem_total_above(c, before + 120 * 1024, seconds(60));
    EXPECT_GT(grown, before + 120 * 1024) << "MemTotal " << before << " KiB before the hotplug" << log_of(f, "memhp");

    // A second one, live and persistent: slot 1 live, the persistent
    // definition's first module.
    st = f.drv->call<ops::DomainAttachDevice>({.ref = "memhp", .xml = dimm_doc(128), .live = true, .config = true});
    ASSERT_TRUE(st) << st.error().full_message();
    now = definitions(f, "memhp");
    EXPECT_TRUE(has(now.live, "<alias name='dimm1'/>")) << now.live;
    EXPECT_TRUE(has(now.live, "<address type='dimm' slot='1' base='0x108000000'/>")) << now.live;
    EXPECT_TRUE(has(now.live, "<memory unit='KiB'>425984</memory>")) << now.live;
    EXPECT_TRUE(has(now.config, "<memory unit='KiB'>294912</memory>")) << now.config;
    EXPECT_TRUE(has(now.config, "<address type='dimm' slot='0'/>")) << now.config;
    EXPECT_GT(wait_mem_total_above(c, grown + 120 * 1024, seconds(60)), grown + 120 * 1024) << log_of(f, "memhp");

    // Both slots are taken; a module the domain lacks: errors, nothing changes.
    const Definitions full = now;
    st = f.drv->call<ops::DomainAttachDevice>({.ref = "memhp", .xml = dimm_doc(32), .live = true});
    ASSERT_FALSE(st);
    EXPECT_TRUE(has(st.error().full_message(), "no free memory device slot available")) << st.error().full_message();
    st = f.drv->call<ops::DomainDetachDevice>({.ref = "memhp", .xml = dimm_doc(32), .live = true, .config = true});
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ErrorCode::NotFound) << st.error().full_message();
    EXPECT_TRUE(has(st.error().full_message(), "matching memory device was not found")) << st.error().full_message();
    EXPECT_EQ(definitions(f, "memhp"), full);

    // Detach asks the guest: it offlines and releases the module (both
    // definitions lose it, device-removed), or keeps it (nothing changes,
    // device-removal-failed).
    st = f.drv->call<ops::DomainDetachDevice>(
        {.ref = "memhp", .xml = dimm_doc(128, 1), .live = true, .config = true, .timeout_ms = 30000});
    RecordProperty("detach", st ? "released by the guest" : "kept by the guest");
    RecordProperty("mem_total_kib", fmt::format("{} -> {} -> {}", before, grown, guest_mem_total(c)));
    if (st) {
        EXPECT_TRUE(f.events.wait_for("memhp", "DeviceRemoved/dimm1", seconds(5)));
        now = definitions(f, "memhp");
        EXPECT_FALSE(has(now.live, "<alias name='dimm1'/>")) << now.live;
        EXPECT_TRUE(has(now.live, "<memory unit='KiB'>294912</memory>")) << now.live;
        EXPECT_TRUE(has(now.config, "<memory unit='KiB'>163840</memory>")) << now.config;
        // Its slot is free again; detach-device-alias takes the new module out.
        st = f.drv->call<ops::DomainAttachDevice>({.ref = "memhp", .xml = dimm_doc(128), .live = true});
        ASSERT_TRUE(st) << st.error().full_message();
        EXPECT_TRUE(has(definitions(f, "memhp").live, "<address type='dimm' slot='1'")) << definitions(f, "memhp").live;
        st = f.drv->call<ops::DomainDetachDeviceAlias>({.ref = "memhp", .alias = "dimm1", .live = true, .timeout_ms = 30000});
        ASSERT_TRUE(st) << st.error().full_message();
        EXPECT_TRUE(has(definitions(f, "memhp").live, "<memory unit='KiB'>294912</memory>")) << definitions(f, "memhp").live;
    } else {
        EXPECT_TRUE(has(st.error().full_message(), "did not release device 'dimm1'")) << st.error().full_message();
        EXPECT_TRUE(f.events.wait_for("memhp", "DeviceRemovalFailed/dimm1", seconds(5)));
        EXPECT_EQ(definitions(f, "memhp"), full);
    }
    virtio_mem_steps(f, c);
}

// A virtio-mem in the definition at boot: the guest plugs what it asks for
// (MemTotal holds it) and the live XML's <current> says so.
TEST(QemuMemory, VirtioMemAtBootIsPluggedByTheGuest) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    f.define_and_start("vmemboot", virtio_mem_doc(256, 2048, 131072), "memhp_default_state=online",
                       "<maxMemory slots='1' unit='MiB'>512</maxMemory>"
                       "<cpu><numa><cell id='0' cpus='0' memory='160' unit='MiB'/></numa></cpu>");
    f.wait_ready("vmemboot");
    auto log = files::read(f.drv->log_path("vmemboot")).value_or("");
    EXPECT_TRUE(has(log, R"("driver":"virtio-mem-pci","node":0,"block-size":2097152,"requested-size":134217728)")) << log;
    auto c = f.console("vmemboot");
    const long total = guest_mem_total(c);
    ASSERT_GT(total, 128 * 1024) << log_of(f, "vmemboot");
    const auto deadline = std::chrono::steady_clock::now() + seconds(30);
    std::string live;
    while (!has(live = definitions(f, "vmemboot").live, "<current unit='KiB'>131072</current>") &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_TRUE(has(live, "<current unit='KiB'>131072</current>")) << live;
    // The 128 MiB were the guest's: asking for nothing takes them out of MemTotal.
    auto st = f.drv->call<ops::DomainUpdateDevice>({.ref = "vmemboot", .xml = virtio_mem_doc(256, 2048, 0), .live = true});
    ASSERT_TRUE(st) << st.error().full_message();
    const long shrunk = wait_mem_total_below(c, total - 120 * 1024, seconds(90));
    RecordProperty("mem_total_kib", fmt::format("{} -> {}", total, shrunk));
    EXPECT_LT(shrunk, total - 120 * 1024) << log_of(f, "vmemboot");
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
