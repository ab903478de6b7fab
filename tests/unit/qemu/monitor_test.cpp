// The typed monitor (qemu/monitor.hpp) against a scripted QMP peer: typed
// replies and events, QEMU's errors, a reply that comes too late, a
// descriptor handed over with getfd.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <mutex>

#include "qemu/monitor.hpp"
#include "support/fake_qmp.hpp"

namespace vireo::qemu {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using test::FakeQmpServer;

// A monitor connected to a FakeQmpServer whose handler the test gives.
struct Pair {
    std::unique_ptr<FakeQmpServer> server;
    std::shared_ptr<Monitor> monitor;
    std::mutex m;
    std::vector<MonitorEvent> events;

    explicit Pair(FakeQmpServer::Handler handler, milliseconds timeout = milliseconds(2000)) {
        int sv[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        server = FakeQmpServer::serve(UniqueFd(sv[1]), std::move(handler));
        auto mon = Monitor::open(
            UniqueFd(sv[0]), milliseconds(2000),
            [this](const MonitorEvent& ev) {
                std::lock_guard lk(m);
                events.push_back(ev);
            },
            {}, timeout);
        EXPECT_TRUE(mon) << mon.error().full_message();
        if (mon) monitor = *mon;
    }
    ~Pair() {
        if (monitor) monitor->close();
    }
};

TEST(Monitor, QueryMigrateIsTyped) {
    Pair p([](FakeQmpServer& s, FakeQmpServer::Command& c) {
        s.reply(c, {{"status", "active"},
                    {"ram", {{"transferred", 1000}, {"remaining", 3000}, {"total", 4000}, {"mbps", 268.5}}}});
    });
    auto info = p.monitor->query_migrate();
    ASSERT_TRUE(info) << info.error().full_message();
    EXPECT_EQ(info->status, MigrationStatus::Active);
    EXPECT_EQ(info->ram_transferred, 1000u);
    EXPECT_EQ(info->ram_remaining, 3000u);
    EXPECT_EQ(info->ram_total, 4000u);
    EXPECT_DOUBLE_EQ(info->mbps, 268.5);
    EXPECT_TRUE(info->in_progress());
    EXPECT_FALSE(info->ended());
}

TEST(Monitor, QueryMigrateBeforeAnyMigrationIsNoneAndAFailureSaysWhy) {
    int calls = 0;
    Pair p([&](FakeQmpServer& s, FakeQmpServer::Command& c) {
        if (calls++ == 0) s.reply(c, json::object());
        else s.reply(c, {{"status", "failed"}, {"error-desc", "Unable to write to file: No space left on device"}});
    });
    auto none = p.monitor->query_migrate();
    ASSERT_TRUE(none);
    EXPECT_EQ(none->status, MigrationStatus::None);
    EXPECT_FALSE(none->in_progress());
    auto failed = p.monitor->query_migrate();
    ASSERT_TRUE(failed);
    EXPECT_EQ(failed->status, MigrationStatus::Failed);
    EXPECT_TRUE(failed->ended());
    EXPECT_EQ(failed->error_desc, "Unable to write to file: No space left on device");
}

TEST(Monitor, QueryStatusIsTyped) {
    Pair p([](FakeQmpServer& s, FakeQmpServer::Command& c) {
        s.reply(c, {{"status", "guest-panicked"}, {"running", false}, {"singlestep", false}});
    });
    auto st = p.monitor->query_status();
    ASSERT_TRUE(st);
    EXPECT_EQ(st->state, RunState::GuestPanicked);
    EXPECT_FALSE(st->running);
    EXPECT_EQ(parse_run_state("finish-migrate"), RunState::FinishMigrate);
    EXPECT_EQ(parse_run_state("something-new"), RunState::Unknown);
    EXPECT_EQ(run_state_name(RunState::PostMigrate), "postmigrate");
}

// domblkstat / domblkinfo / blockresize: QEMU's counters per device (the
// file node's highest written offset from "parent"), the image's sizes from
// query-block, block_resize on a node.
TEST(Monitor, BlockStatsSizesAndResizeAreTyped) {
    json resize_args;
    Pair p([&](FakeQmpServer& s, FakeQmpServer::Command& c) {
        if (c.name == "query-blockstats") {
            s.reply(c, json::array({{{"device", ""},
                                     {"qdev", "/machine/peripheral/virtio-disk0/virtio-backend"},
                                     {"node-name", "libvirt-1-format"},
                                     {"stats", {{"rd_bytes", 4096}, {"wr_bytes", 1536}, {"rd_operations", 12},
                                                {"wr_operations", 3}, {"flush_operations", 2}, {"rd_total_time_ns", 1000},
                                                {"wr_total_time_ns", 2000}, {"flush_total_time_ns", 300},
                                                {"wr_highest_offset", 77}}},
                                     {"parent", {{"node-name", "libvirt-1-storage"}, {"stats", {{"wr_highest_offset", 262144}}}}}},
                                    {{"device", ""}, {"qdev", "/machine/peripheral/ide0-1-0"}, {"stats", {{"rd_bytes", 0}}}}}));
        } else if (c.name == "query-block") {
            s.reply(c, json::array({{{"device", ""},
                                     {"qdev", "/machine/peripheral/virtio-disk0/virtio-backend"},
                                     {"inserted",
                                      {{"node-name", "libvirt-1-format"}, {"file", "/images/a.qcow2"}, {"drv", "qcow2"},
                                       {"ro", false},
                                       {"image", {{"virtual-size", 16777216}, {"actual-size", 200704}}}}}}}));
        } else {
            resize_args = c.arguments;
            s.reply(c, json::object());
        }
    });
    auto stats = p.monitor->query_blockstats();
    ASSERT_TRUE(stats) << stats.error().full_message();
    ASSERT_EQ(stats->size(), 2u);
    const BlockStatsInfo& s = stats->front();
    EXPECT_EQ(s.qdev, "/machine/peripheral/virtio-disk0/virtio-backend");
    EXPECT_EQ(s.node, "libvirt-1-format");
    EXPECT_EQ(s.rd_bytes, 4096u);
    EXPECT_EQ(s.wr_bytes, 1536u);
    EXPECT_EQ(s.rd_operations, 12u);
    EXPECT_EQ(s.wr_operations, 3u);
    EXPECT_EQ(s.flush_operations, 2u);
    EXPECT_EQ(s.rd_total_time_ns, 1000u);
    EXPECT_EQ(s.wr_total_time_ns, 2000u);
    EXPECT_EQ(s.flush_total_time_ns, 300u);
    EXPECT_EQ(s.file_wr_highest_offset.value_or(0), 262144u) << "the file node's, not the format node's";
    EXPECT_FALSE(stats->back().file_wr_highest_offset);

    auto blocks = p.monitor->query_block();
    ASSERT_TRUE(blocks) << blocks.error().full_message();
    const BlockDeviceInfo* b = block_of(*blocks, "virtio-disk0");
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->virtual_size, 16777216u);
    EXPECT_EQ(b->actual_size.value_or(0), 200704u);

    ASSERT_TRUE(p.monitor->block_resize("libvirt-1-format", 33554432));
    EXPECT_EQ(resize_args, json({{"node-name", "libvirt-1-format"}, {"size", 33554432}}));
}

TEST(Monitor, QemuErrorsCarryQemuWords) {
    Pair p([](FakeQmpServer& s, FakeQmpServer::Command& c) {
        s.reply_error(c, "Resetting the Virtual Machine is required");
    });
    auto r = p.monitor->cont();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::Hypervisor);
    EXPECT_EQ(r.error().full_message(), "QEMU command 'cont' failed: Resetting the Virtual Machine is required");
}

TEST(Monitor, AReplyThatNeverComesTimesOutAndALateOneIsDropped) {
    int calls = 0;
    Pair p(
        [&](FakeQmpServer& s, FakeQmpServer::Command& c) {
            if (calls++ == 0) s.reply(c, json::object(), milliseconds(300));  // too late
            else s.reply(c, {{"status", "running"}, {"running", true}});
        },
        milliseconds(100));
    auto r = p.monitor->stop();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::Timeout);
    std::this_thread::sleep_for(milliseconds(350));  // the late reply arrives, for nobody
    auto st = p.monitor->query_status();
    ASSERT_TRUE(st) << st.error().full_message();
    EXPECT_EQ(st->state, RunState::Running) << "the late reply is not taken for the next command's";
}

TEST(Monitor, EventsAreTyped) {
    Pair p([](FakeQmpServer& s, FakeQmpServer::Command& c) {
        s.event("SHUTDOWN", {{"guest", true}, {"reason", "guest-reset"}});
        s.event("SHUTDOWN", {{"guest", false}});  // QEMU before 4.0: no reason
        s.event("GUEST_PANICKED", {{"action", "pause"}});
        s.event("RESET", {{"guest", false}, {"reason", "host-qmp-system-reset"}});
        s.event("MIGRATION", {{"status", "completed"}});
        s.event("BLOCK_JOB_READY", {{"device", "drive0"}});
        s.reply(c, json::object());
    });
    ASSERT_TRUE(p.monitor->system_reset());
    std::this_thread::sleep_for(milliseconds(100));
    std::lock_guard lk(p.m);
    ASSERT_EQ(p.events.size(), 6u);
    EXPECT_EQ(p.events[0].kind, EventKind::Shutdown);
    EXPECT_TRUE(p.events[0].guest);
    EXPECT_EQ(p.events[0].reason, "guest-reset");
    EXPECT_EQ(p.events[1].kind, EventKind::Shutdown);
    EXPECT_FALSE(p.events[1].guest);
    EXPECT_EQ(p.events[1].reason, "host-signal");
    EXPECT_EQ(p.events[2].kind, EventKind::GuestPanicked);
    EXPECT_EQ(p.events[2].action, "pause");
    EXPECT_EQ(p.events[3].kind, EventKind::Reset);
    EXPECT_EQ(p.events[3].reason, "host-qmp-system-reset");
    EXPECT_EQ(p.events[4].kind, EventKind::Migration);
    EXPECT_EQ(p.events[4].migration, MigrationStatus::Completed);
    EXPECT_EQ(p.events[5].kind, EventKind::Other);
    EXPECT_EQ(p.events[5].name, "BLOCK_JOB_READY");
    EXPECT_GT(p.events[0].timestamp, 0);
}

// A DEVICE_DELETED a detach waits for is the detach's; one that comes
// after the detach gave up (or for an id nobody asked about) goes to the
// event handler; one of a device's child (no id) goes nowhere.
TEST(Monitor, DeviceDeletedGoesToTheWaitingDetachElseToTheHandler) {
    Pair p([](FakeQmpServer& s, FakeQmpServer::Command& c) {
        const std::string id = c.arguments.is_object() ? c.arguments.value("id", "") : "";
        s.reply(c, json::object());
        if (id == "now") s.event("DEVICE_DELETED", {{"device", "now"}, {"path", "/machine/peripheral/now"}});
        if (id == "trigger") {  // the guest lets "late" go after its detach gave up
            s.event("DEVICE_DELETED", {{"path", "/machine/unattached/device[3]/lapic"}});
            s.event("DEVICE_DELETED", {{"device", "late"}, {"path", "/machine/peripheral/late"}});
        }
    });
    p.monitor->forget_device_deleted("now");
    ASSERT_TRUE(p.monitor->device_del("now"));
    EXPECT_TRUE(p.monitor->wait_device_deleted("now", milliseconds(2000)));

    p.monitor->forget_device_deleted("late");
    ASSERT_TRUE(p.monitor->device_del("late"));
    EXPECT_FALSE(p.monitor->wait_device_deleted("late", milliseconds(50)));
    p.monitor->keep_late_node("late", "vireo-late-1-format");
    ASSERT_TRUE(p.monitor->device_del("trigger"));
    std::this_thread::sleep_for(milliseconds(100));
    {
        std::lock_guard lk(p.m);
        ASSERT_EQ(p.events.size(), 1u);
        EXPECT_EQ(p.events[0].kind, EventKind::DeviceDeleted);
        EXPECT_EQ(p.events[0].device, "late");
    }
    EXPECT_EQ(p.monitor->take_late_node("late"), "vireo-late-1-format");
    EXPECT_EQ(p.monitor->take_late_node("late"), "");
}

TEST(Monitor, GetfdHandsTheDescriptorOver) {
    std::string received;
    Pair p([&](FakeQmpServer& s, FakeQmpServer::Command& c) {
        if (c.name == "getfd" && c.fds.size() == 1 && c.arguments.value("fdname", "") == "vireo-save") {
            char buf[16] = {};
            ssize_t n = ::read(c.fds.front().get(), buf, sizeof(buf) - 1);
            received.assign(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
            s.reply(c, json::object());
        } else {
            s.reply_error(c, "unexpected " + c.name);
        }
    });
    int pipefd[2];
    ASSERT_EQ(::pipe(pipefd), 0);
    UniqueFd rd(pipefd[0]), wr(pipefd[1]);
    ASSERT_EQ(::write(wr.get(), "hello", 5), 5);
    wr.reset();
    auto r = p.monitor->getfd("vireo-save", rd.get());
    ASSERT_TRUE(r) << r.error().full_message();
    EXPECT_EQ(received, "hello");
}

TEST(Monitor, ProbeAnswersAreTyped) {
    Pair p([](FakeQmpServer& s, FakeQmpServer::Command& c) {
        if (c.name == "query-version")
            s.reply(c, {{"qemu", {{"major", 7}, {"minor", 2}, {"micro", 11}}}, {"package", "Debian 1:7.2+dfsg-7"}});
        else if (c.name == "query-machines")
            s.reply(c, json::array({{{"name", "pc-i440fx-7.2"}, {"alias", "pc"}, {"is-default", true}, {"cpu-max", 255}},
                                    {{"name", "none"}, {"cpu-max", 1}}}));
        else if (c.name == "qom-list-types")
            s.reply(c, json::array({{{"name", "tcg-accel"}}, {{"name", "kvm-accel"}}}));
        else if (c.name == "query-qmp-schema")
            s.reply(c, json::array({{{"name", "cont"}, {"meta-type", "command"}},
                                    {{"name", "STOP"}, {"meta-type", "event"}},
                                    {{"name", "int"}, {"meta-type", "builtin"}}}));
        else
            s.reply_error(c, "unexpected " + c.name);
    });
    auto v = p.monitor->query_version();
    ASSERT_TRUE(v);
    EXPECT_EQ(v->micro, 11);
    EXPECT_EQ(v->package, "Debian 1:7.2+dfsg-7");
    auto machines = p.monitor->query_machines();
    ASSERT_TRUE(machines);
    ASSERT_EQ(machines->size(), 2u);
    EXPECT_EQ((*machines)[0].alias, "pc");
    EXPECT_TRUE((*machines)[0].is_default);
    EXPECT_EQ((*machines)[1].alias, "");
    auto types = p.monitor->qom_list_types("accel");
    ASSERT_TRUE(types);
    EXPECT_EQ(*types, (std::vector<std::string>{"tcg-accel", "kvm-accel"}));
    auto schema = p.monitor->query_qmp_schema();
    ASSERT_TRUE(schema);
    EXPECT_EQ(schema->commands, std::set<std::string>{"cont"});
    EXPECT_EQ(schema->events, std::set<std::string>{"STOP"});
    EXPECT_EQ(schema->entries.size(), 3u);
}

}  // namespace
}  // namespace vireo::qemu
