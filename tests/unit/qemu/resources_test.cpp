// vCPU and memory helpers of the QEMU driver (qemu/resources.hpp): /proc
// parsing, the balloon's statistics as libvirt's tags, which vCPU slots a
// setvcpus or setvcpu plugs or unplugs, and the live <vcpus> that follows.
#include <gtest/gtest.h>

#include "qemu/resources.hpp"

using namespace vireo;
using namespace vireo::qemu;

TEST(QemuResources, TaskStatGivesCpuAndTime) {
    // A command name with a space and a ')' must not shift the fields.
    const std::string line =
        "4242 (CPU 0/TCG) x) R 4200 4200 4200 0 -1 4194368 100 0 0 0 1234 56 0 0 20 0 5 0 900 1000000 300 "
        "18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 -1 1 0 0 0 0 0";
    auto st = parse_task_stat(line);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->ticks, 1290u);
    EXPECT_EQ(st->cpu, 1);
    EXPECT_FALSE(parse_task_stat("4242 (short) R 1 2 3"));
    EXPECT_FALSE(parse_task_stat("no parenthesis"));
}

TEST(QemuResources, BalloonStatsAsVirshNamesThem) {
    const auto stats = balloon_guest_stats(nlohmann::json::parse(R"({
        "stats": {"stat-swap-in": 0, "stat-swap-out": 2048, "stat-major-faults": 7, "stat-minor-faults": 99,
                  "stat-free-memory": 1048576, "stat-total-memory": 2097152, "stat-available-memory": 1572864,
                  "stat-disk-caches": 4096, "stat-htlb-pgalloc": -1, "stat-htlb-pgfail": -1},
        "last-update": 1700000000})"));
    std::vector<std::pair<std::string, std::uint64_t>> got;
    for (const auto& s : stats) got.emplace_back(s.tag, s.value);
    const std::vector<std::pair<std::string, std::uint64_t>> want = {
        {"swap_in", 0},         {"swap_out", 2},           {"major_fault", 7},         {"minor_fault", 99},
        {"unused", 1024},       {"available", 2048},       {"usable", 1536},           {"last_update", 1700000000},
        {"disk_caches", 4}};
    EXPECT_EQ(got, want) << "bytes shown in KiB, counters as they are, -1 (not reported) left out";
    EXPECT_TRUE(balloon_guest_stats(nlohmann::json::parse(R"({"stats": {}, "last-update": 0})")).empty());
    EXPECT_TRUE(balloon_guest_stats(nlohmann::json()).empty());
}

namespace {

HotpluggableCpu slot(int core, std::string qom) {
    HotpluggableCpu c;
    c.type = "qemu64-x86_64-cpu";
    c.props = {{"socket-id", 0}, {"core-id", core}, {"thread-id", 0}};
    c.qom_path = std::move(qom);
    return c;
}

}  // namespace

TEST(QemuResources, VcpuSlotsToPlugAndUnplug) {
    // QEMU lists the slots highest first; vCPU N is the N-th from the lowest.
    const std::vector<HotpluggableCpu> slots = {slot(3, ""), slot(2, ""), slot(1, "/machine/peripheral/vcpu1"),
                                                slot(0, "/machine/unattached/device[0]")};
    EXPECT_EQ(vcpu_slots_by_id(slots)[0].qom_path, "/machine/unattached/device[0]");
    auto plug = vcpu_change_to_count(slots, 4);
    ASSERT_TRUE(plug) << plug.error().message;
    ASSERT_EQ(plug->plug.size(), 2u);
    EXPECT_TRUE(plug->unplug.empty());
    EXPECT_EQ(plug->plug[0]["id"], "vcpu2");
    EXPECT_EQ(plug->plug[0]["core-id"], 2);
    EXPECT_EQ(plug->plug[0]["driver"], "qemu64-x86_64-cpu");
    EXPECT_EQ(plug->plug[1]["id"], "vcpu3");
    auto same = vcpu_change_to_count(slots, 2);
    EXPECT_TRUE(same->plug.empty() && same->unplug.empty());
    EXPECT_FALSE(vcpu_change_to_count(slots, 5));

    auto unplug = vcpu_change_to_count(slots, 1);
    ASSERT_TRUE(unplug) << unplug.error().message;
    EXPECT_EQ(unplug->unplug, std::vector<std::string>{"vcpu1"});
    auto boot = vcpu_change_to_count(slots, 0);
    ASSERT_FALSE(boot) << "the vCPU present since the start cannot go";
    EXPECT_NE(boot.error().message.find("only hotplugged vCPUs"), std::string::npos);
}

TEST(QemuResources, IndividualVcpusPluggedByTheirIds) {
    const std::vector<HotpluggableCpu> slots = {slot(3, ""), slot(2, ""), slot(1, "/machine/peripheral/vcpu1"),
                                                slot(0, "/machine/unattached/device[0]")};
    auto three = vcpu_change_of_ids(slots, {3, 1}, true);
    ASSERT_TRUE(three) << three.error().message;
    ASSERT_EQ(three->plug.size(), 1u) << "vCPU 1 is there already";
    EXPECT_EQ(three->plug[0]["id"], "vcpu3");
    EXPECT_EQ(three->plug[0]["core-id"], 3);
    auto off = vcpu_change_of_ids(slots, {1, 2}, false);
    ASSERT_TRUE(off) << off.error().message;
    EXPECT_EQ(off->unplug, std::vector<std::string>{"vcpu1"});
    EXPECT_TRUE(off->plug.empty());
    auto first = vcpu_change_of_ids(slots, {0}, false);
    ASSERT_FALSE(first);
    EXPECT_EQ(first.error().message, "invalid argument: vcpu '0' can't be hotunplugged");
    auto beyond = vcpu_change_of_ids(slots, {4}, true);
    ASSERT_FALSE(beyond);
    EXPECT_EQ(beyond.error().message, "invalid argument: vcpu 4 is not present in live config");
}

TEST(QemuResources, VcpuUnplugRefusedWhereQemuBreaks) {
    auto tcg = vcpu_unplug_safe("qemu", 7002022, "7.2.22");
    ASSERT_FALSE(tcg);
    EXPECT_EQ(tcg.error().code, ErrorCode::Unsupported);
    EXPECT_NE(tcg.error().message.find("vCPU unplug under TCG (domain type 'qemu') with QEMU 7.2.22"), std::string::npos)
        << tcg.error().message;
    EXPECT_TRUE(vcpu_unplug_safe("kvm", 7002022, "7.2.22"));
    EXPECT_TRUE(vcpu_unplug_safe("qemu", 8002000, "8.2.0"));
}

TEST(QemuResources, LiveVcpusAsLibvirtListsThem) {
    conf::DomainDef live;
    live.vcpus = 4;
    live.vcpus_current = 1;
    // The first hotplug: the vCPUs of the start in id order, then the new one.
    std::vector<HotpluggableCpu> slots = {slot(3, ""), slot(2, ""), slot(1, "/machine/peripheral/vcpu1"),
                                          slot(0, "/machine/unattached/device[0]")};
    apply_vcpu_slots(live, slots);
    ASSERT_EQ(live.vcpu_states.size(), 4u);
    EXPECT_EQ(live.vcpus_current, 2u);
    EXPECT_EQ(live.vcpu_states[0], (conf::VcpuState{.enabled = true, .hotpluggable = "no", .order = 1}));
    EXPECT_EQ(live.vcpu_states[1], (conf::VcpuState{.enabled = true, .hotpluggable = "yes", .order = 2}));
    EXPECT_EQ(live.vcpu_states[2], (conf::VcpuState{.enabled = false, .hotpluggable = "yes", .order = 0}));
    // vCPU 3 comes, vCPU 1 goes: the order goes on from the highest.
    slots[0].qom_path = "/machine/peripheral/vcpu3";
    slots[2].qom_path = "";
    apply_vcpu_slots(live, slots);
    EXPECT_EQ(live.vcpus_current, 2u);
    EXPECT_EQ(live.vcpu_states[1], (conf::VcpuState{.enabled = false, .hotpluggable = "yes", .order = 0}));
    EXPECT_EQ(live.vcpu_states[3], (conf::VcpuState{.enabled = true, .hotpluggable = "yes", .order = 3}));
    slots[2].qom_path = "/machine/peripheral/vcpu1";
    slots[1].qom_path = "/machine/peripheral/vcpu2";
    apply_vcpu_slots(live, slots);
    EXPECT_FALSE(live.vcpus_current) << "all four there";
}
