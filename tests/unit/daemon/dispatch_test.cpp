// The dispatcher over a real Server on a unix socket: a handler that throws
// is an Internal error naming the operation and the daemon keeps serving;
// destroy and queries never wait behind jobs that occupy every job thread;
// an operation no sub-driver handles answers Unsupported naming it.
#include "daemon/server.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "client/connect.hpp"
#include "daemon/api.hpp"
#include "support/support.hpp"
#include "testdrv/test_driver.hpp"

namespace vireo::daemon {
namespace {

namespace ops = driver::ops;
using namespace std::chrono_literals;

// A latch a handler waits on until the test opens it.
class Gate {
public:
    void wait() {
        std::unique_lock lk(m_);
        entered_ = true;
        cv_.notify_all();
        cv_.wait(lk, [&] { return open_; });
    }
    bool wait_entered(std::chrono::milliseconds timeout) {
        std::unique_lock lk(m_);
        return cv_.wait_for(lk, timeout, [&] { return entered_; });
    }
    void open() {
        std::lock_guard lk(m_);
        open_ = true;
        cv_.notify_all();
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    bool entered_ = false;
    bool open_ = false;
};

class DispatchTest : public ::testing::Test {
protected:
    void serve(unsigned job_threads) {
        server = std::make_unique<Server>(*drv, job_threads);
        ASSERT_TRUE(server->listen({.path = sock, .read_only = false, .mode = 0600, .group = {}}));
        loop = std::thread([this] { server->run(); });
    }
    void TearDown() override {
        if (!server) return;
        server->stop();
        loop.join();
        server.reset();
    }
    std::unique_ptr<driver::Driver> open() {
        auto d = client::connect("qemu+unix:///session?socket=" + sock.native());
        EXPECT_TRUE(d) << d.error().full_message();
        return d ? std::move(*d) : nullptr;
    }

    test::TempDir dir;
    std::filesystem::path sock = dir / "sock";
    std::unique_ptr<driver::Driver> drv = testdrv::make_test_driver();
    std::unique_ptr<Server> server;
    std::thread loop;
};

TEST_F(DispatchTest, AThrowingHandlerIsAnErrorAndTheDaemonKeepsServing) {
    drv->on<ops::DomainReset>([](const ops::DomainReset::Request&) -> Status { throw std::runtime_error("boom"); });
    // An Inline query throws on the event loop itself.
    drv->on<ops::DomainList>([](const auto&) -> Result<std::vector<driver::DomainSummary>> {
        throw std::logic_error("list broke");
    });
    serve(2);
    auto c = open();
    ASSERT_TRUE(c);
    for (int round = 0; round < 2; ++round) {
        auto reset = c->reset_domain("test");
        ASSERT_FALSE(reset);
        EXPECT_EQ(reset.error().code, ErrorCode::Internal);
        EXPECT_NE(reset.error().message.find("domain.reset"), std::string::npos) << reset.error().message;
        EXPECT_NE(reset.error().message.find("boom"), std::string::npos) << reset.error().message;
        auto list = c->list_domains();
        ASSERT_FALSE(list);
        EXPECT_EQ(list.error().code, ErrorCode::Internal);
        EXPECT_NE(list.error().message.find("domain.list"), std::string::npos) << list.error().message;
        // The next request on the same connection is served.
        auto found = c->lookup_domain("test");
        ASSERT_TRUE(found) << found.error().full_message();
        EXPECT_EQ(found->name, "test");
    }
    // And on a new connection.
    auto again = open();
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->lookup_domain("test"));
}

TEST_F(DispatchTest, DestroyAndQueriesNeverWaitBehindJobs) {
    Gate gate;
    // Every job thread (one) is taken by a start that does not end.
    auto start = drv->handler<ops::DomainStart>();
    drv->on<ops::DomainStart>([&gate, start](const ops::DomainStart::Request& r) {
        gate.wait();
        return start(r);
    });
    serve(1);
    auto stuck = open();
    ASSERT_TRUE(stuck);
    auto started = std::async(std::launch::async, [&] { return stuck->start_domain("test", {}); });
    ASSERT_TRUE(gate.wait_entered(10s)) << "the start never reached the driver";

    // Another job queues behind it...
    auto second = open();
    ASSERT_TRUE(second);
    auto suspended = std::async(std::launch::async, [&] { return second->suspend_domain("test"); });
    EXPECT_EQ(suspended.wait_for(300ms), std::future_status::timeout) << "the job lane has one thread";

    // ...but queries and destroy do not.
    auto c = open();
    ASSERT_TRUE(c);
    auto disks = std::async(std::launch::async, [&] { return c->domain_disks("test", false); });
    ASSERT_EQ(disks.wait_for(10s), std::future_status::ready) << "a query waited behind a job";
    EXPECT_TRUE(disks.get());
    auto killer = open();
    ASSERT_TRUE(killer);
    auto destroyed = std::async(std::launch::async, [&] { return killer->destroy_domain("test", {}); });
    ASSERT_EQ(destroyed.wait_for(10s), std::future_status::ready) << "destroy waited behind a job";
    EXPECT_TRUE(destroyed.get());

    gate.open();
    ASSERT_EQ(started.wait_for(10s), std::future_status::ready);
    EXPECT_TRUE(started.get()) << "the domain was shut off, so the start could run";
    ASSERT_EQ(suspended.wait_for(10s), std::future_status::ready);
    EXPECT_TRUE(suspended.get());
}

TEST_F(DispatchTest, AnOperationWithoutHandlerIsUnsupportedNamingIt) {
    // A connection whose sub-drivers leave one operation out.
    drv->on<ops::DomainAbortJob>(nullptr);
    serve(2);
    auto c = open();
    ASSERT_TRUE(c);
    auto r = c->call<ops::DomainAbortJob>({.ref = "test"});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::Unsupported);
    EXPECT_NE(r.error().message.find("domain.abort_job"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(drv->uri()), std::string::npos)
        << "names the daemon's connection: " << r.error().message;
    // In process, the same answer.
    auto local = drv->call<ops::DomainAbortJob>({.ref = "test"});
    ASSERT_FALSE(local);
    EXPECT_EQ(local.error().code, ErrorCode::Unsupported);
    EXPECT_EQ(local.error().message, r.error().message);
}

TEST(ApiHandle, ExceptionsAreCaughtToo) {
    auto drv = testdrv::make_test_driver();
    drv->on<ops::HostNodeInfo>([](const auto&) -> Result<driver::NodeInfo> { throw std::runtime_error("no cpus"); });
    Api api(*drv);
    auto r = api.handle({"GET", "/v1/host/nodeinfo", "", ""});
    EXPECT_EQ(r.status, 500u);
    EXPECT_NE(r.body.find("host.nodeinfo"), std::string::npos) << r.body;
    EXPECT_EQ(api.handle({"GET", "/v1/domains/test", "", ""}).status, 200u);
}

}  // namespace
}  // namespace vireo::daemon
