// The whole HTTP path in one process: Server (serving the test driver) on a
// unix socket in a temp dir, RemoteDriver from client::connect() on the other
// side. What a CLI user sees must be what the driver said.
#include "daemon/server.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "client/connect.hpp"
#include "testdrv/test_driver.hpp"
#include "support/support.hpp"

namespace vireo::daemon {
namespace {

constexpr const char* kVm = R"(<domain type='qemu'>
  <name>vm1</name>
  <memory unit='KiB'>131072</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
</domain>)";

class ServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(server.listen({.path = rw, .read_only = false, .mode = 0600, .group = {}}));
        ASSERT_TRUE(server.listen({.path = ro, .read_only = true, .mode = 0666, .group = {}}));
        loop = std::thread([this] { server.run(); });
    }
    void TearDown() override {
        server.stop();
        loop.join();
    }
    std::unique_ptr<driver::Driver> open(const std::filesystem::path& socket) {
        auto d = client::connect("qemu+unix:///session?socket=" + socket.native());
        EXPECT_TRUE(d) << d.error().full_message();
        return d ? std::move(*d) : nullptr;
    }

    test::TempDir dir;
    std::filesystem::path rw = dir / "sock";
    std::filesystem::path ro = dir / "sock-ro";
    std::unique_ptr<driver::Driver> drv = testdrv::make_test_driver();
    Server server{*drv, 4};
    std::thread loop;
};

TEST_F(ServerTest, HostInformationTravels) {
    auto c = open(rw);
    ASSERT_TRUE(c);
    auto v = c->version();
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_FALSE(v->daemon.empty());
    EXPECT_EQ(v->hypervisor, drv->version()->hypervisor);
    auto n = c->node_info();
    ASSERT_TRUE(n);
    EXPECT_EQ(n->cpus, 8u);
    EXPECT_EQ(c->hostname().value_or("?"), drv->hostname().value_or("!"));
    auto caps = c->capabilities_xml();
    ASSERT_TRUE(caps);
    EXPECT_EQ(*caps, *drv->capabilities_xml());
}

TEST_F(ServerTest, LifecycleOverTheWire) {
    auto c = open(rw);
    ASSERT_TRUE(c);
    auto def = c->define_domain(kVm, true);
    ASSERT_TRUE(def) << def.error().message;
    EXPECT_EQ(def->state, driver::DomainState::Shutoff);
    ASSERT_TRUE(c->start_domain("vm1", {}));
    auto info = c->lookup_domain("vm1");
    ASSERT_TRUE(info);
    EXPECT_EQ(info->state, driver::DomainState::Running);
    EXPECT_GT(info->id, 0);
    // The same object by uuid and by id.
    EXPECT_EQ(c->lookup_domain(info->uuid.str())->name, "vm1");
    EXPECT_EQ(c->lookup_domain(std::to_string(info->id))->name, "vm1");
    ASSERT_TRUE(c->suspend_domain("vm1"));
    ASSERT_TRUE(c->resume_domain("vm1"));
    ASSERT_TRUE(c->shutdown_domain("vm1", driver::ShutdownMode::Default));
    auto list = c->list_domains();
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 2u);
    EXPECT_EQ(c->domain_xml("vm1", true).value_or("?"), drv->domain_xml("vm1", true).value_or("!"));
    ASSERT_TRUE(c->undefine_domain("vm1", {}));
    EXPECT_EQ(c->list_domains()->size(), 1u);
}

TEST_F(ServerTest, DaemonErrorsReachTheClientUnchanged) {
    auto c = open(rw);
    ASSERT_TRUE(c);
    auto remote = c->start_domain("test", {});
    auto local = drv->start_domain("test", {});
    ASSERT_FALSE(remote);
    ASSERT_FALSE(local);
    EXPECT_EQ(remote.error().code, local.error().code);
    EXPECT_EQ(remote.error().message, local.error().full_message());
    auto missing = c->lookup_domain("no such/domain");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::NoDomain);
    EXPECT_NE(missing.error().message.find("no such/domain"), std::string::npos);
}

TEST_F(ServerTest, ReadOnlySocketAnswersQueriesAndRefusesChanges) {
    auto c = open(ro);
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->list_domains());
    EXPECT_TRUE(c->lookup_domain("test"));
    for (auto status : {c->destroy_domain("test", {}), c->suspend_domain("test"),
                        c->undefine_domain("test", {}), c->set_autostart("test", true)}) {
        ASSERT_FALSE(status);
        EXPECT_EQ(status.error().code, ErrorCode::PermissionDenied);
        EXPECT_NE(status.error().message.find("read only"), std::string::npos);
    }
    EXPECT_FALSE(c->define_domain(kVm, true));
    auto console = c->open_console("test", "");
    ASSERT_FALSE(console);
    EXPECT_EQ(console.error().code, ErrorCode::PermissionDenied);
    // Nothing changed.
    EXPECT_EQ(drv->lookup_domain("test")->state, driver::DomainState::Running);
}

TEST_F(ServerTest, EventsReachSubscribers) {
    auto c = open(rw);
    ASSERT_TRUE(c);
    std::mutex m;
    std::condition_variable cv;
    std::vector<driver::DomainEvent> seen;
    auto sub = c->subscribe([&](const driver::DomainEvent& e) {
        std::lock_guard lk(m);
        seen.push_back(e);
        cv.notify_all();
    });
    ASSERT_TRUE(sub) << sub.error().message;
    // A second connection makes the changes.
    auto actor = open(rw);
    ASSERT_TRUE(actor->define_domain(kVm, true));
    ASSERT_TRUE(actor->start_domain("vm1", {}));
    ASSERT_TRUE(actor->destroy_domain("vm1", {}));
    std::unique_lock lk(m);
    ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(10), [&] { return seen.size() >= 3; }))
        << "events received: " << seen.size();
    EXPECT_EQ(seen[0].type, driver::EventType::Defined);
    EXPECT_EQ(seen[1].type, driver::EventType::Started);
    EXPECT_EQ(seen[2].type, driver::EventType::Stopped);
    EXPECT_EQ(seen[2].domain, "vm1");
    EXPECT_EQ(seen[2].detail, "Destroyed");
}

TEST_F(ServerTest, ConsoleIsABidirectionalByteStream) {
    auto c = open(rw);
    ASSERT_TRUE(c);
    auto fd = c->open_console("test", "");
    ASSERT_TRUE(fd) << fd.error().message;
    std::string line = "hello over websocket\n";
    ASSERT_EQ(::write(fd->get(), line.data(), line.size()), static_cast<ssize_t>(line.size()));
    std::string got;
    char buf[256];
    timeval tv{10, 0};
    ::setsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (got.find("hello over websocket\n") == std::string::npos) {
        ssize_t n = ::read(fd->get(), buf, sizeof buf);
        ASSERT_GT(n, 0) << "console closed or timed out; got so far: '" << got << "'";
        got.append(buf, static_cast<std::size_t>(n));
    }
    EXPECT_NE(got.find("test console: hello over websocket"), std::string::npos) << got;
}

TEST_F(ServerTest, CurlIsEnough) {
    if (test::which("curl").empty()) VIREO_SKIP("curl is not installed");
    auto r = test::run({"curl", "-sS", "--unix-socket", rw.native(), "http://localhost/v1/domains"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("\"name\":\"test\""), std::string::npos) << r.out;
    auto e = test::run({"curl", "-sS", "-w", "%{http_code}", "--unix-socket", rw.native(),
                        "http://localhost/v1/domains/nope"});
    EXPECT_NE(e.out.find("\"code\":\"no-domain\""), std::string::npos) << e.out;
    EXPECT_NE(e.out.find("404"), std::string::npos) << e.out;
}

TEST_F(ServerTest, ManyRequestsOnOneKeptAliveConnection) {
    auto c = open(rw);
    ASSERT_TRUE(c);
    for (int i = 0; i < 200; ++i) ASSERT_TRUE(c->lookup_domain("test")) << i;
    EXPECT_EQ(server.connection_count(), 1u);
}

}  // namespace
}  // namespace vireo::daemon
