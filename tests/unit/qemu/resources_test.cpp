// vCPU and memory helpers of the QEMU driver (qemu/resources.hpp): /proc
// parsing, the balloon's statistics as libvirt's tags, which vCPU slots a
// setvcpus plugs or unplugs.
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
    // QEMU lists the slots highest first.
    const std::vector<HotpluggableCpu> slots = {slot(3, ""), slot(2, ""), slot(1, "/machine/peripheral/vcpu1"),
                                                slot(0, "/machine/unattached/device[0]")};
    auto plug = vcpu_plug_args(slots, 4);
    ASSERT_TRUE(plug) << plug.error().message;
    ASSERT_EQ(plug->size(), 2u);
    EXPECT_EQ((*plug)[0]["id"], "vcpu2");
    EXPECT_EQ((*plug)[0]["core-id"], 2);
    EXPECT_EQ((*plug)[0]["driver"], "qemu64-x86_64-cpu");
    EXPECT_EQ((*plug)[1]["id"], "vcpu3");
    EXPECT_TRUE(vcpu_plug_args(slots, 2)->empty());
    EXPECT_FALSE(vcpu_plug_args(slots, 5));

    auto unplug = vcpu_unplug_ids(slots, 1);
    ASSERT_TRUE(unplug) << unplug.error().message;
    EXPECT_EQ(*unplug, std::vector<std::string>{"vcpu1"});
    auto boot = vcpu_unplug_ids(slots, 0);
    ASSERT_FALSE(boot) << "the vCPU present since the start cannot go";
    EXPECT_NE(boot.error().message.find("only hotplugged vCPUs"), std::string::npos);
}
