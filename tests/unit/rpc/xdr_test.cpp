// The XDR codec and the packet framing of libvirt's remote protocol.
#include <gtest/gtest.h>

#include "rpc/events.hpp"
#include "rpc/packet.hpp"
#include "rpc/protocol.hpp"
#include "rpc/xdr.hpp"

namespace vireo::rpc {
namespace {

TEST(Xdr, EncodesBigEndianWordsHypersAndPaddedStrings) {
    XdrWriter w;
    w.u32(0x01020304);
    w.i32(-2);
    w.u64(0x1122334455667788ull);
    w.string("abcde");
    w.optional_string(std::nullopt);
    w.optional_string("x");
    const std::uint8_t uuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    w.fixed_opaque(uuid);
    const std::string expected = std::string("\x01\x02\x03\x04\xff\xff\xff\xfe", 8) +
                                 std::string("\x11\x22\x33\x44\x55\x66\x77\x88", 8) +
                                 std::string("\0\0\0\x05" "abcde\0\0\0", 12) + std::string("\0\0\0\0", 4) +
                                 std::string("\0\0\0\x01\0\0\0\x01x\0\0\0", 12) +
                                 std::string(reinterpret_cast<const char*>(uuid), 16);
    EXPECT_EQ(w.data(), expected);

    XdrReader r(w.data());
    EXPECT_EQ(*r.u32(), 0x01020304u);
    EXPECT_EQ(*r.i32(), -2);
    EXPECT_EQ(*r.u64(), 0x1122334455667788ull);
    EXPECT_EQ(*r.string(), "abcde");
    EXPECT_EQ(*r.optional_string(), std::nullopt);
    EXPECT_EQ(*r.optional_string(), std::optional<std::string>("x"));
    EXPECT_EQ(r.fixed_opaque(16)->size(), 16u);
    EXPECT_EQ(r.remaining(), 0u);
}

TEST(Xdr, TruncatedAndOversizedDataAreErrorsNeverOverreads) {
    XdrReader empty("");
    EXPECT_FALSE(empty.u32());
    XdrReader three(std::string_view("\0\0\0", 3));
    EXPECT_FALSE(three.i32());
    XdrReader half_hyper(std::string_view("\0\0\0\0\0\0", 6));
    EXPECT_FALSE(half_hyper.u64());
    // A string that claims more bytes than there are.
    XdrReader long_string(std::string_view("\0\0\0\x10" "abc", 7));
    auto s = long_string.string();
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, ErrorCode::Protocol);
    // A string over the bound is refused before any allocation.
    XdrReader huge(std::string_view("\x7f\xff\xff\xff", 4));
    EXPECT_FALSE(huge.string());
    // Missing padding.
    XdrReader no_pad(std::string_view("\0\0\0\x01" "a", 5));
    EXPECT_FALSE(no_pad.string());
    XdrReader bad_bool(std::string_view("\0\0\0\x02", 4));
    EXPECT_FALSE(bad_bool.boolean());
    XdrReader many(std::string_view("\0\x01\0\0", 4));
    EXPECT_FALSE(many.count(16384));
}

TEST(Packet, RoundTripsAndCutsAStreamIntoPackets) {
    Header h{kRemoteProgram, 1, 273, MessageType::Call, 7, MessageStatus::Ok};
    const std::string p = encode_packet(h, std::string("\0\0\0\x01\0\0\0\0", 8));
    ASSERT_EQ(p.size(), 28u + 8u);
    EXPECT_EQ(p.substr(0, 8), std::string("\0\0\0\x24\x20\x00\x80\x86", 8));
    FrameDecoder d;
    // Byte by byte, then two packets in one read.
    for (std::size_t i = 0; i + 1 < p.size(); ++i) EXPECT_TRUE(d.feed(p.substr(i, 1))->empty());
    auto one = d.feed(p.substr(p.size() - 1));
    ASSERT_TRUE(one);
    ASSERT_EQ(one->size(), 1u);
    EXPECT_EQ((*one)[0].header.procedure, 273);
    EXPECT_EQ((*one)[0].header.serial, 7u);
    EXPECT_EQ((*one)[0].body.size(), 8u);
    auto two = d.feed(p + p);
    ASSERT_TRUE(two);
    EXPECT_EQ(two->size(), 2u);
}

TEST(Packet, BadLengthsAndHeadersAreFatal) {
    FrameDecoder short_one;
    EXPECT_FALSE(short_one.feed(std::string("\0\0\0\x1b", 4) + std::string(23, '\0')));  // 27 < 28
    FrameDecoder zero;
    EXPECT_FALSE(zero.feed(std::string("\0\0\0\0", 4)));
    FrameDecoder huge;
    EXPECT_FALSE(huge.feed(std::string("\x02\0\0\x01", 4)));  // 32 MiB + 1
    Header h{kRemoteProgram, 1, 1, MessageType::Call, 1, MessageStatus::Ok};
    std::string bad_type = encode_packet(h, "");
    bad_type[4 + 12 + 3] = 9;  // type 9
    FrameDecoder d;
    EXPECT_FALSE(d.feed(bad_type));
    std::string bad_status = encode_packet(h, "");
    bad_status[4 + 20 + 3] = 7;
    FrameDecoder d2;
    EXPECT_FALSE(d2.feed(bad_status));
}

// The agent-lifecycle and memory-device-size-change callbacks carry what
// libvirt's clients decode: the callback id, the domain, then the state and
// reason, or the device's alias and size; other event IDs skip them.
TEST(RpcEvents, AgentLifecycleAndMemoryDeviceSizeChangeBodies) {
    driver::DomainEvent agent;
    agent.type = driver::EventType::AgentLifecycle;
    agent.detail = "disconnected";
    agent.domain = "web";
    auto m = encode_event(kEventIdAgentLifecycle, 7, agent);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->first, 348);
    XdrReader r(m->second);
    EXPECT_EQ(*r.i32(), 7);
    EXPECT_EQ(*r.string(), "web");
    ASSERT_TRUE(r.fixed_opaque(16));
    EXPECT_EQ(*r.i32(), -1);
    EXPECT_EQ(*r.i32(), kAgentDisconnected);
    EXPECT_EQ(*r.i32(), kAgentReasonChannel);
    EXPECT_EQ(r.remaining(), 0u);
    EXPECT_FALSE(encode_event(kEventIdLifecycle, 7, agent));
    EXPECT_FALSE(encode_event(kEventIdMemoryDeviceSizeChange, 7, agent));

    driver::DomainEvent size;
    size.type = driver::EventType::MemoryDeviceSizeChange;
    size.detail = "virtiomem0";
    size.domain = "web";
    size.size_kib = 131072;
    m = encode_event(kEventIdMemoryDeviceSizeChange, 3, size);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->first, 438);
    XdrReader s(m->second);
    EXPECT_EQ(*s.i32(), 3);
    EXPECT_EQ(*s.string(), "web");
    ASSERT_TRUE(s.fixed_opaque(16));
    EXPECT_EQ(*s.i32(), -1);
    EXPECT_EQ(*s.string(), "virtiomem0");
    EXPECT_EQ(*s.u64(), 131072u);
    EXPECT_EQ(s.remaining(), 0u);
    EXPECT_FALSE(encode_event(kEventIdAgentLifecycle, 3, size));
    EXPECT_TRUE(event_id_served(kEventIdAgentLifecycle) && event_id_served(kEventIdMemoryDeviceSizeChange));
}

}  // namespace
}  // namespace vireo::rpc
