// One libvirt client connection against the in-memory test driver: the
// handshake, errors as libvirt's codes, the read-only socket, keepalive,
// pipelined calls answered out of order, events, and bad packets.
#include <gtest/gtest.h>

#include <deque>
#include <mutex>

#include "rpc/connection.hpp"
#include "rpc/events.hpp"
#include "testdrv/test_driver.hpp"

namespace vireo::rpc {
namespace {

struct Capture : Transport {
    void send(std::string packet) override {
        std::lock_guard lock(mutex);
        packets.push_back(std::move(packet));
    }
    std::mutex mutex;
    std::vector<std::string> packets;
};

class RpcConnection : public ::testing::Test {
protected:
    void SetUp() override { make(false); }

    void make(bool read_only) {
        conn = std::make_shared<Connection>(
            *drv, read_only, tx,
            [this](const driver::ops::OpInfo&, std::string, std::function<std::string()> work,
                   std::function<std::string(const Error&)>) {
                if (defer) deferred.push_back(std::move(work));
                else work();
            });
    }

    // Send a call; the packets that came back (decoded).
    std::vector<Packet> call(Proc proc, const std::string& body = {}, std::uint32_t serial = 1,
                             std::uint32_t program = kRemoteProgram) {
        tx->packets.clear();
        EXPECT_TRUE(conn->feed(encode_packet(Header{program, 1, static_cast<int>(proc), MessageType::Call, serial,
                                                    MessageStatus::Ok},
                                             body)));
        return received();
    }
    std::vector<Packet> received() {
        std::vector<Packet> out;
        for (const auto& p : tx->packets) out.push_back(*decode_packet(std::string_view(p).substr(4)));
        tx->packets.clear();
        return out;
    }
    void open() {
        XdrWriter w;
        w.optional_string("test:///default");
        w.u32(0);
        auto r = call(Proc::ConnectOpen, w.data());
        ASSERT_EQ(r.size(), 1u);
        ASSERT_EQ(r[0].header.status, MessageStatus::Ok);
    }
    // The (code, domain, message) of an error reply.
    static std::tuple<int, int, std::string> error_of(const Packet& p) {
        EXPECT_EQ(p.header.status, MessageStatus::Error);
        XdrReader r(p.body);
        const int code = *r.i32();
        const int domain = *r.i32();
        auto msg = *r.optional_string();
        return {code, domain, msg.value_or("")};
    }
    static std::string by_name(const std::string& name) {
        XdrWriter w;
        w.string(name);
        return w.take();
    }

    std::unique_ptr<driver::Driver> drv = testdrv::make_test_driver();
    std::shared_ptr<Capture> tx = std::make_shared<Capture>();
    std::shared_ptr<Connection> conn;
    bool defer = false;
    std::deque<std::function<std::string()>> deferred;
};

TEST_F(RpcConnection, HandshakeAndHostQueries) {
    auto auth = call(Proc::AuthList);
    ASSERT_EQ(auth.size(), 1u);
    EXPECT_EQ(auth[0].header.type, MessageType::Reply);
    EXPECT_EQ(auth[0].body, std::string("\0\0\0\x01\0\0\0\0", 8));  // [REMOTE_AUTH_NONE]
    open();
    XdrWriter f;
    f.i32(kFeatureProgramKeepalive);
    EXPECT_EQ(call(Proc::ConnectSupportsFeature, f.data())[0].body, std::string("\0\0\0\x01", 4));
    XdrWriter f2;
    f2.i32(kFeatureRemoteCloseCallback);
    EXPECT_EQ(call(Proc::ConnectSupportsFeature, f2.data())[0].body, std::string("\0\0\0\0", 4));
    auto info = call(Proc::NodeGetInfo);
    ASSERT_EQ(info[0].header.status, MessageStatus::Ok);
    EXPECT_EQ(info[0].body.size(), 32u * 4 + 8 + 6 * 4);
    auto host = call(Proc::ConnectGetHostname);
    EXPECT_EQ(host[0].header.status, MessageStatus::Ok);
}

TEST_F(RpcConnection, CallsBeforeOpenAreRefusedAndTheConnectionKeepsServing) {
    auto r = call(Proc::ConnectListAllDomains, std::string("\0\0\0\x01\0\0\0\0", 8));
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(std::get<0>(error_of(r[0])), static_cast<int>(ErrNum::Rpc));
    open();
    EXPECT_EQ(call(Proc::ConnectListAllDomains, std::string("\0\0\0\x01\0\0\0\0", 8))[0].header.status,
              MessageStatus::Ok);
}

TEST_F(RpcConnection, UnknownProceduresAndProgramsAreErrorsNotDisconnects) {
    open();
    auto unknown = call(static_cast<Proc>(9999), {}, 5);
    ASSERT_EQ(unknown.size(), 1u);
    EXPECT_EQ(unknown[0].header.serial, 5u);
    EXPECT_EQ(std::get<0>(error_of(unknown[0])), static_cast<int>(ErrNum::NoSupport));
    // A procedure of libvirt's we do not serve (storage pools) falls back the same way.
    EXPECT_EQ(std::get<0>(error_of(call(static_cast<Proc>(72))[0])), static_cast<int>(ErrNum::NoSupport));
    auto program = call(Proc::ConnectGetType, {}, 6, 0x12345678);
    EXPECT_EQ(std::get<0>(error_of(program[0])), static_cast<int>(ErrNum::Rpc));
    // Truncated arguments: an error answer, and the next call is served.
    auto truncated = call(Proc::DomainLookupByName, std::string("\0\0\0\x09te", 6));
    EXPECT_EQ(std::get<0>(error_of(truncated[0])), static_cast<int>(ErrNum::Rpc));
    EXPECT_EQ(call(Proc::DomainLookupByName, by_name("test"))[0].header.status, MessageStatus::Ok);
}

TEST_F(RpcConnection, ABadLengthClosesOnlyThisConnection) {
    EXPECT_FALSE(conn->feed(std::string("\0\0\0\x05", 4)));
    EXPECT_FALSE(conn->last_error().empty());
    // Another connection on the same driver is unaffected.
    make(false);
    open();
}

TEST_F(RpcConnection, DriverErrorsCarryLibvirtCodesAndDomains) {
    open();
    auto r = call(Proc::DomainLookupByName, by_name("nosuch"));
    auto [code, domain, message] = error_of(r[0]);
    EXPECT_EQ(code, static_cast<int>(ErrNum::NoDomain));
    EXPECT_EQ(domain, static_cast<int>(driver::ops::LibvirtDomain::Domain));
    EXPECT_EQ(message, "Domain not found: no domain with matching name 'nosuch'");
}

TEST_F(RpcConnection, TheReadOnlySocketRefusesChangesWithOperationDenied) {
    make(true);
    open();
    XdrWriter w;
    w.string("<domain type='qemu'><name>x</name><memory>65536</memory></domain>");
    w.u32(0);
    auto r = call(Proc::DomainDefineXmlFlags, w.data());
    auto [code, domain, message] = error_of(r[0]);
    EXPECT_EQ(code, static_cast<int>(ErrNum::OperationDenied));
    EXPECT_NE(message.find("read only access prevents"), std::string::npos) << message;
    // Queries are served.
    EXPECT_EQ(call(Proc::DomainLookupByName, by_name("test"))[0].header.status, MessageStatus::Ok);
}

TEST_F(RpcConnection, AClientMayOpenReadOnly) {
    XdrWriter o;
    o.optional_string(std::nullopt);
    o.u32(1);  // VIR_CONNECT_RO
    ASSERT_EQ(call(Proc::ConnectOpen, o.data())[0].header.status, MessageStatus::Ok);
    XdrWriter dom;
    put_domain(dom, "test", *Uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193f"), 1);
    EXPECT_EQ(std::get<0>(error_of(call(Proc::DomainSuspend, dom.data())[0])),
              static_cast<int>(ErrNum::OperationDenied));
}

TEST_F(RpcConnection, KeepaliveIsAnsweredWhileCallsRunAndRepliesGoOutOfOrder) {
    open();
    defer = true;
    auto dom = call(Proc::DomainLookupByName, by_name("test"));  // Inline in the daemon; deferred here
    EXPECT_TRUE(dom.empty());
    for (std::uint32_t serial = 10; serial < 13; ++serial) call(Proc::ConnectGetHostname, {}, serial);
    // A ping while four calls are still running: the pong comes at once.
    tx->packets.clear();
    ASSERT_TRUE(conn->feed(encode_packet(
        Header{kKeepaliveProgram, 1, kKeepalivePing, MessageType::Message, 0, MessageStatus::Ok}, {})));
    auto pong = received();
    ASSERT_EQ(pong.size(), 1u);
    EXPECT_EQ(pong[0].header.program, kKeepaliveProgram);
    EXPECT_EQ(pong[0].header.procedure, kKeepalivePong);
    // The calls end in reverse order; each reply carries its own serial.
    while (!deferred.empty()) {
        deferred.back()();
        deferred.pop_back();
    }
    auto replies = received();
    ASSERT_EQ(replies.size(), 4u);
    EXPECT_EQ(replies[0].header.serial, 12u);
    EXPECT_EQ(replies[1].header.serial, 11u);
    EXPECT_EQ(replies[2].header.serial, 10u);
    EXPECT_EQ(replies[3].header.serial, 1u);
}

TEST_F(RpcConnection, LifecycleEventsArriveAsCallbackMessages) {
    open();
    XdrWriter reg;
    reg.i32(kEventIdLifecycle);
    reg.boolean(false);
    auto r = call(Proc::ConnectDomainEventCallbackRegisterAny, reg.data());
    ASSERT_EQ(r[0].header.status, MessageStatus::Ok);
    const int id = *XdrReader(r[0].body).i32();
    XdrWriter other;
    other.i32(5);  // another event: not served, so virsh event --all carries on
    other.boolean(false);
    EXPECT_EQ(std::get<0>(error_of(call(Proc::ConnectDomainEventCallbackRegisterAny, other.data())[0])),
              static_cast<int>(ErrNum::NoSupport));

    tx->packets.clear();
    XdrWriter dom;
    put_domain(dom, "test", *Uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193f"), 1);
    auto destroyed = call(Proc::DomainDestroy, dom.data(), 3);
    bool seen = false;
    for (const auto& p : destroyed) {
        if (p.header.type != MessageType::Message) continue;
        EXPECT_EQ(p.header.procedure, static_cast<int>(Proc::DomainEventCallbackLifecycle));
        XdrReader m(p.body);
        EXPECT_EQ(*m.i32(), id);
        auto d = get_domain(m);
        ASSERT_TRUE(d);
        EXPECT_EQ(d->name, "test");
        EXPECT_EQ(*m.i32(), 5);  // VIR_DOMAIN_EVENT_STOPPED
        EXPECT_EQ(*m.i32(), 1);  // VIR_DOMAIN_EVENT_STOPPED_DESTROYED
        seen = true;
    }
    EXPECT_TRUE(seen);
    XdrWriter dereg;
    dereg.i32(id);
    EXPECT_EQ(call(Proc::ConnectDomainEventCallbackDeregisterAny, dereg.data())[0].header.status, MessageStatus::Ok);
}

TEST_F(RpcConnection, ListAllDomainsFiltersByFlags) {
    open();
    XdrWriter w;
    w.i32(1);
    w.u32(list_flags::Active);
    auto r = call(Proc::ConnectListAllDomains, w.data());
    XdrReader b(r[0].body);
    ASSERT_EQ(*b.u32(), 1u);
    EXPECT_EQ(get_domain(b)->name, "test");
    EXPECT_EQ(*b.u32(), 1u);
    XdrWriter i;
    i.i32(1);
    i.u32(list_flags::Inactive);
    auto inactive = call(Proc::ConnectListAllDomains, i.data());  // the reader views this reply: keep it
    XdrReader none(inactive[0].body);
    EXPECT_EQ(*none.u32(), 0u);
}

}  // namespace
}  // namespace vireo::rpc
