// One libvirt client connection against the in-memory test driver: the
// handshake, errors as libvirt's codes, the read-only socket, keepalive,
// pipelined calls answered out of order, events, and bad packets.
#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <mutex>
#include <thread>

#include "rpc/connection.hpp"
#include "rpc/events.hpp"
#include "rpc/protocol.hpp"
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
    EXPECT_EQ(call(Proc::ConnectSupportsFeature, f2.data())[0].body, std::string("\0\0\0\x01", 4));
    // Close callbacks register and unregister (the client runs them itself).
    EXPECT_EQ(call(Proc::ConnectRegisterCloseCallback)[0].header.status, MessageStatus::Ok);
    EXPECT_EQ(call(Proc::ConnectUnregisterCloseCallback)[0].header.status, MessageStatus::Ok);
    auto info = call(Proc::NodeGetInfo);
    ASSERT_EQ(info[0].header.status, MessageStatus::Ok);
    EXPECT_EQ(info[0].body.size(), 32u * 4 + 8 + 6 * 4);
    auto host = call(Proc::ConnectGetHostname);
    EXPECT_EQ(host[0].header.status, MessageStatus::Ok);
}

// virConnectGetDomainCapabilities: four optional strings and flags, the
// driver's document back; a virt type the driver refuses is its error.
TEST_F(RpcConnection, DomainCapabilities) {
    open();
    auto args = [](std::optional<std::string> virttype, std::uint32_t flags) {
        XdrWriter w;
        w.optional_string(std::nullopt);  // emulator
        w.optional_string("x86_64");
        w.optional_string(std::nullopt);  // machine
        w.optional_string(std::move(virttype));
        w.u32(flags);
        return w.take();
    };
    auto r = call(Proc::ConnectGetDomainCapabilities, args(std::nullopt, 0));
    ASSERT_EQ(r.size(), 1u);
    ASSERT_EQ(r[0].header.status, MessageStatus::Ok);
    XdrReader body(r[0].body);
    auto xml = body.string();
    ASSERT_TRUE(xml);
    EXPECT_NE(xml->find("<domainCapabilities>"), std::string::npos) << *xml;
    EXPECT_EQ(std::get<0>(error_of(call(Proc::ConnectGetDomainCapabilities, args("kvm", 0))[0])),
              static_cast<int>(ErrNum::NoSupport));
    EXPECT_EQ(std::get<0>(error_of(call(Proc::ConnectGetDomainCapabilities, args(std::nullopt, 1))[0])),
              static_cast<int>(ErrNum::NoSupport));
    // Truncated arguments are an RPC error, not a crash.
    EXPECT_EQ(std::get<0>(error_of(call(Proc::ConnectGetDomainCapabilities, std::string("\0\0\0\x01", 4))[0])),
              static_cast<int>(ErrNum::Rpc));
}

// The network procedures decode their arguments and run the network
// operations; a driver without networks (the test driver) answers each
// with its error, never a disconnect; unknown flags are refused.
TEST_F(RpcConnection, NetworkProceduresOnADriverWithoutNetworks) {
    open();
    auto all = call(Proc::ConnectListAllNetworks, std::string("\0\0\0\x01\0\0\0\0", 8));
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].header.status, MessageStatus::Error);
    auto by_name_reply = call(Proc::NetworkLookupByName, by_name("default"));
    ASSERT_EQ(by_name_reply.size(), 1u);
    EXPECT_EQ(by_name_reply[0].header.status, MessageStatus::Error);
    EXPECT_EQ(std::get<0>(error_of(call(Proc::ConnectListAllNetworks, std::string("\0\0\0\x01\0\0\x01\0", 8))[0])),
              static_cast<int>(ErrNum::NoSupport));
    XdrWriter ev;
    ev.i32(1);  // VIR_NETWORK_EVENT_ID_METADATA_CHANGE: not served
    ev.boolean(false);
    EXPECT_EQ(std::get<0>(error_of(call(Proc::ConnectNetworkEventRegisterAny, ev.data())[0])),
              static_cast<int>(ErrNum::NoSupport));
    EXPECT_EQ(call(Proc::ConnectGetType)[0].header.status, MessageStatus::Ok);
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
    // A procedure of libvirt's we do not serve (list all host interfaces) falls back the same way.
    EXPECT_EQ(std::get<0>(error_of(call(static_cast<Proc>(284))[0])), static_cast<int>(ErrNum::NoSupport));
    auto program = call(Proc::ConnectGetType, {}, 6, 0x12345678);
    EXPECT_EQ(std::get<0>(error_of(program[0])), static_cast<int>(ErrNum::Rpc));
    // Truncated arguments: an error answer, and the next call is served.
    auto truncated = call(Proc::DomainLookupByName, std::string("\0\0\0\x09te", 6));
    EXPECT_EQ(std::get<0>(error_of(truncated[0])), static_cast<int>(ErrNum::Rpc));
    EXPECT_EQ(call(Proc::DomainLookupByName, by_name("test"))[0].header.status, MessageStatus::Ok);
}

TEST_F(RpcConnection, StreamPacketsForNoStreamAreDroppedOrAnswered) {
    open();
    // Data of a stream that does not exist (or ended): dropped.
    tx->packets.clear();
    ASSERT_TRUE(conn->feed(encode_packet(
        Header{kRemoteProgram, 1, static_cast<int>(Proc::StorageVolUpload), MessageType::Stream, 77,
               MessageStatus::Continue},
        "bytes")));
    EXPECT_TRUE(received().empty());
    // A final word (finish or abort) waits for an answer: it gets an error, not silence.
    for (auto status : {MessageStatus::Ok, MessageStatus::Error}) {
        ASSERT_TRUE(conn->feed(encode_packet(
            Header{kRemoteProgram, 1, static_cast<int>(Proc::StorageVolUpload), MessageType::Stream, 77, status},
            {})));
        auto r = received();
        ASSERT_EQ(r.size(), 1u);
        EXPECT_EQ(r[0].header.type, MessageType::Stream);
        EXPECT_EQ(r[0].header.serial, 77u);
        EXPECT_EQ(std::get<0>(error_of(r[0])), static_cast<int>(ErrNum::Rpc));
    }
    EXPECT_EQ(call(Proc::ConnectGetType)[0].header.status, MessageStatus::Ok);
}

// The test driver's real pools (its "default-pool" in a private directory):
// the storage procedures and the two volume streams, packet by packet as
// libvirt's client sends and expects them.
class RpcStorage : public RpcConnection {
protected:
    // The remote_nonnull_storage_pool of `name` (looked up).
    std::string pool(const std::string& name) {
        auto r = call(Proc::StoragePoolLookupByName, by_name(name));
        EXPECT_EQ(r[0].header.status, MessageStatus::Ok);
        return r[0].body;
    }
    std::string volume(const std::string& pool_body, const std::string& name) {
        auto r = call(Proc::StorageVolLookupByName, pool_body + by_name(name));
        EXPECT_EQ(r[0].header.status, MessageStatus::Ok);
        return r[0].body;
    }
    void packet(MessageType type, MessageStatus status, std::uint32_t serial, Proc proc, std::string_view body) {
        ASSERT_TRUE(conn->feed(encode_packet(Header{kRemoteProgram, 1, static_cast<int>(proc), type, serial, status},
                                             body)));
    }
    // Packets sent to the client until `done` says the last one came (at most 10 s).
    std::vector<Packet> collect(const std::function<bool(const std::vector<Packet>&)>& done) {
        std::vector<Packet> all;
        for (int i = 0; i < 1000 && !done(all); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            std::lock_guard lock(tx->mutex);
            for (const auto& p : tx->packets) all.push_back(*decode_packet(std::string_view(p).substr(4)));
            tx->packets.clear();
        }
        return all;
    }
    // Run the deferred work of the last call on its own thread (a job lane).
    std::thread run_deferred() {
        EXPECT_EQ(deferred.size(), 1u);
        auto work = std::move(deferred.front());
        deferred.clear();
        return std::thread([work = std::move(work)] { (void)work(); });
    }
    static std::string transfer_args(const std::string& vol, std::uint32_t flags) {
        XdrWriter w;
        w.u64(0);
        w.u64(0);
        w.u32(flags);
        return vol + w.data();
    }
};

TEST_F(RpcStorage, PoolsAndVolumesAsVirshCallsThem) {
    open();
    auto all = call(Proc::ConnectListAllStoragePools, std::string("\0\0\0\x01\0\0\0\0", 8));
    ASSERT_EQ(all[0].header.status, MessageStatus::Ok);
    XdrReader lr(all[0].body);
    ASSERT_EQ(*lr.u32(), 1u);
    EXPECT_EQ(*lr.string(), "default-pool");
    const std::string p = pool("default-pool");
    auto info = call(Proc::StoragePoolGetInfo, p);
    ASSERT_EQ(info[0].header.status, MessageStatus::Ok);
    EXPECT_EQ(*XdrReader(info[0].body).u32(), 2u);  // VIR_STORAGE_POOL_RUNNING

    XdrWriter create;
    create.string("<volume><name>v.img</name><capacity unit='bytes'>1048576</capacity>"
                  "<target><format type='raw'/></target></volume>");
    create.u32(0);
    auto made = call(Proc::StorageVolCreateXml, p + create.data());
    ASSERT_EQ(made[0].header.status, MessageStatus::Ok) << std::get<2>(error_of(made[0]));
    const std::string v = volume(p, "v.img");
    auto vinfo = call(Proc::StorageVolGetInfo, v);
    ASSERT_EQ(vinfo[0].header.status, MessageStatus::Ok);
    XdrReader vr(vinfo[0].body);
    EXPECT_EQ(*vr.i32(), 0);  // VIR_STORAGE_VOL_FILE
    EXPECT_EQ(*vr.u64(), 1048576u);
    auto vols = call(Proc::StoragePoolListAllVolumes, p + std::string("\0\0\0\x01\0\0\0\0", 8));
    ASSERT_EQ(vols[0].header.status, MessageStatus::Ok);
    EXPECT_EQ(*XdrReader(vols[0].body).u32(), 1u);
    auto by_path = call(Proc::StorageVolLookupByPath, call(Proc::StorageVolGetPath, v)[0].body);
    EXPECT_EQ(by_path[0].body, v);

    // Errors: libvirt's codes for a pool and a volume that do not exist.
    auto no_pool = call(Proc::StoragePoolLookupByName, by_name("nosuch"));
    EXPECT_EQ(std::get<0>(error_of(no_pool[0])), static_cast<int>(ErrNum::NoStoragePool));
    EXPECT_EQ(std::get<1>(error_of(no_pool[0])), static_cast<int>(driver::ops::LibvirtDomain::Storage));
    auto no_vol = call(Proc::StorageVolLookupByName, p + by_name("nosuch"));
    EXPECT_EQ(std::get<0>(error_of(no_vol[0])), static_cast<int>(ErrNum::NoStorageVol));
    XdrWriter validate;
    validate.string("<pool/>");
    validate.u32(1);  // VIR_STORAGE_POOL_DEFINE_VALIDATE: refused, not dropped
    EXPECT_EQ(std::get<0>(error_of(call(Proc::StoragePoolDefineXml, validate.data())[0])),
              static_cast<int>(ErrNum::NoSupport));

    auto del = call(Proc::StorageVolDelete, v + std::string("\0\0\0\0", 4));
    EXPECT_EQ(del[0].header.status, MessageStatus::Ok);
    EXPECT_EQ(std::get<0>(error_of(call(Proc::StorageVolGetInfo, v)[0])), static_cast<int>(ErrNum::NoStorageVol));
}

TEST_F(RpcStorage, UploadAndSparseDownloadStreams) {
    open();
    const std::string p = pool("default-pool");
    XdrWriter create;
    create.string("<volume><name>s.img</name><capacity unit='bytes'>1048576</capacity>"
                  "<target><format type='raw'/></target></volume>");
    create.u32(0);
    ASSERT_EQ(call(Proc::StorageVolCreateXml, p + create.data())[0].header.status, MessageStatus::Ok);
    const std::string v = volume(p, "s.img");

    // Upload, sparse: 4 KiB of data, a hole to 512 KiB, 4 KiB more, the rest a hole.
    defer = true;
    auto reply = call(Proc::StorageVolUpload, transfer_args(v, kVolStreamSparse), 40);
    EXPECT_TRUE(reply.empty());  // answered by the job, once the volume is found
    std::thread job = run_deferred();
    auto r = collect([](const std::vector<Packet>& ps) { return !ps.empty(); });
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].header.type, MessageType::Reply);
    EXPECT_EQ(r[0].header.status, MessageStatus::Ok);
    const std::string data(4096, 'x');
    XdrWriter hole1, hole2;
    hole1.i64(512 * 1024 - 4096);
    hole1.u32(0);
    hole2.i64(1048576 - 512 * 1024 - 4096);
    hole2.u32(0);
    packet(MessageType::Stream, MessageStatus::Continue, 40, Proc::StorageVolUpload, data);
    packet(MessageType::StreamHole, MessageStatus::Continue, 40, Proc::StorageVolUpload, hole1.data());
    packet(MessageType::Stream, MessageStatus::Continue, 40, Proc::StorageVolUpload, data);
    packet(MessageType::StreamHole, MessageStatus::Continue, 40, Proc::StorageVolUpload, hole2.data());
    packet(MessageType::Stream, MessageStatus::Ok, 40, Proc::StorageVolUpload, {});  // finish
    auto done = collect([](const std::vector<Packet>& ps) { return !ps.empty(); });
    job.join();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].header.type, MessageType::Stream);
    EXPECT_EQ(done[0].header.status, MessageStatus::Ok);  // the finish confirmed

    // Download, sparse: data, holes, the same again; an empty data packet ends it.
    call(Proc::StorageVolDownload, transfer_args(v, kVolStreamSparse), 41);
    job = run_deferred();
    auto down = collect([](const std::vector<Packet>& ps) {
        return !ps.empty() && ps.back().header.type == MessageType::Stream && ps.back().body.empty();
    });
    job.join();
    ASSERT_FALSE(down.empty());
    EXPECT_EQ(down[0].header.type, MessageType::Reply);
    std::string bytes;
    std::uint64_t holes = 0;
    for (std::size_t i = 1; i < down.size(); ++i) {
        EXPECT_EQ(down[i].header.serial, 41u);
        EXPECT_EQ(down[i].header.status, MessageStatus::Continue);
        if (down[i].header.type == MessageType::StreamHole) {
            XdrReader hr(down[i].body);
            const auto n = static_cast<std::uint64_t>(*hr.i64());
            holes += n;
            bytes.append(n, '\0');
        } else {
            bytes += down[i].body;
        }
    }
    ASSERT_EQ(bytes.size(), 1048576u);
    EXPECT_EQ(bytes.substr(0, 4096), data);
    EXPECT_EQ(bytes.substr(512 * 1024, 4096), data);
    EXPECT_GE(holes, 1048576u - 2 * 4096 - 2 * 4096);  // the holes travelled as holes (block-rounded)
    packet(MessageType::Stream, MessageStatus::Ok, 41, Proc::StorageVolDownload, {});  // the client's finish
    auto fin = received();
    ASSERT_EQ(fin.size(), 1u);
    EXPECT_EQ(fin[0].header.type, MessageType::Stream);
    EXPECT_EQ(fin[0].header.status, MessageStatus::Ok);

    // A stream of a volume that does not exist: the call's own error, no stream.
    auto bad = v;
    bad.replace(bad.find("s.img"), 5, "n.img");
    call(Proc::StorageVolDownload, transfer_args(bad, 0), 42);
    job = run_deferred();
    job.join();
    auto err = received();
    ASSERT_EQ(err.size(), 1u);
    EXPECT_EQ(err[0].header.type, MessageType::Reply);
    EXPECT_EQ(std::get<0>(error_of(err[0])), static_cast<int>(ErrNum::NoStorageVol));
}

// The console as one stream both ways, against the test driver's fake
// guest shell (it answers each line with "test console: <line>").
TEST_F(RpcStorage, ConsoleStreamBothWays) {
    open();
    auto dom = call(Proc::DomainLookupByName, by_name("test"));
    ASSERT_EQ(dom[0].header.status, MessageStatus::Ok);
    XdrWriter args;
    args.optional_string(std::nullopt);
    args.u32(0);
    defer = true;
    call(Proc::DomainOpenConsole, dom[0].body + args.data(), 50);
    std::thread job = run_deferred();
    job.join();
    auto r = received();
    ASSERT_EQ(r.size(), 1u);
    ASSERT_EQ(r[0].header.status, MessageStatus::Ok) << std::get<2>(error_of(r[0]));
    packet(MessageType::Stream, MessageStatus::Continue, 50, Proc::DomainOpenConsole, "hello\n");
    std::string out;
    collect([&out](const std::vector<Packet>& ps) {
        out.clear();
        for (const auto& p : ps)
            if (p.header.type == MessageType::Stream && p.header.serial == 50) out += p.body;
        return out.find("test console: hello") != std::string::npos;
    });
    EXPECT_NE(out.find("test console: hello"), std::string::npos) << out;
    // The client aborts (virsh's ^]): confirmed, the console detached.
    packet(MessageType::Stream, MessageStatus::Error, 50, Proc::DomainOpenConsole, {});
    auto end = collect([](const std::vector<Packet>& ps) {
        return !ps.empty() && ps.back().header.status == MessageStatus::Ok;
    });
    ASSERT_FALSE(end.empty());
    EXPECT_EQ(end.back().header.type, MessageType::Stream);
    EXPECT_TRUE(end.back().body.empty());
    // Flags vireo does not serve (--force) are refused.
    defer = false;
    XdrWriter force;
    force.optional_string(std::nullopt);
    force.u32(1);
    auto refused = call(Proc::DomainOpenConsole, dom[0].body + force.data(), 51);
    EXPECT_EQ(std::get<0>(error_of(refused[0])), static_cast<int>(ErrNum::NoSupport));
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

// The vCPU procedures: a count and the host's CPU map answered; bounds
// beyond the protocol's and an empty cpumap refused with libvirt's codes.
TEST_F(RpcConnection, VcpuProceduresAnswerAndRefuseBadArguments) {
    open();
    const Uuid uuid = *Uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193f");
    XdrWriter count;
    put_domain(count, "test", uuid, 1);
    count.u32(2 | 4);  // VIR_DOMAIN_AFFECT_CONFIG | VIR_DOMAIN_VCPU_MAXIMUM
    auto n = call(Proc::DomainGetVcpusFlags, count.data());
    ASSERT_EQ(n[0].header.status, MessageStatus::Ok) << std::get<2>(error_of(n[0]));
    EXPECT_GT(*XdrReader(n[0].body).i32(), 0);

    XdrWriter map;
    map.i32(1);
    map.i32(1);
    map.u32(0);
    auto m = call(Proc::NodeGetCpuMap, map.data());
    ASSERT_EQ(m[0].header.status, MessageStatus::Ok);
    XdrReader mr(m[0].body);
    const auto bits = *mr.string();
    const auto online = *mr.u32();
    EXPECT_EQ(*mr.i32(), static_cast<std::int32_t>(online));
    EXPECT_EQ(bits.size(), (online + 7) / 8);
    EXPECT_EQ(static_cast<unsigned char>(bits[0]) & 1U, 1U);

    XdrWriter vcpus;
    put_domain(vcpus, "test", uuid, 1);
    vcpus.i32(-1);  // maxinfo
    vcpus.i32(1);
    EXPECT_EQ(std::get<0>(error_of(call(Proc::DomainGetVcpus, vcpus.data())[0])), static_cast<int>(ErrNum::Rpc));

    XdrWriter pin;
    put_domain(pin, "test", uuid, 1);
    pin.u32(0);                          // vCPU 0
    pin.string(std::string(1, '\0'));  // no host CPU
    pin.u32(1);
    auto [code, domain, message] = error_of(call(Proc::DomainPinVcpuFlags, pin.data())[0]);
    EXPECT_EQ(code, static_cast<int>(ErrNum::InvalidArg)) << message;
    EXPECT_NE(message.find("cpumap"), std::string::npos) << message;
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
