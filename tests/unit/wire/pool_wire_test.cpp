// The storage API on the wire: pools, volumes, transfer ranges and the
// control messages of volume streams survive a round trip, and malformed
// input is a Protocol error naming what is wrong.
#include <gtest/gtest.h>

#include "wire/http.hpp"
#include "wire/pool_wire.hpp"
#include "wire/wire.hpp"

namespace vireo::wire {
namespace {

using nlohmann::json;

driver::PoolSummary sample_pool() {
    driver::PoolSummary p;
    p.name = "images";
    p.uuid = *Uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193f");
    p.type = "dir";
    p.state = driver::PoolState::Running;
    p.persistent = true;
    p.autostart = true;
    p.capacity = 1ull << 40;  // beyond 32 bits on purpose
    p.allocation = 123456789012ull;
    p.available = (1ull << 40) - 123456789012ull;
    p.target_path = "/var/lib/vireo/images";
    return p;
}

TEST(PoolWire, PoolRoundTrip) {
    auto p = sample_pool();
    auto back = pool_from_json(to_json(p));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->name, p.name);
    EXPECT_EQ(back->uuid, p.uuid);
    EXPECT_EQ(back->type, "dir");
    EXPECT_EQ(back->state, driver::PoolState::Running);
    EXPECT_TRUE(back->persistent);
    EXPECT_TRUE(back->autostart);
    EXPECT_EQ(back->capacity, p.capacity);
    EXPECT_EQ(back->allocation, p.allocation);
    EXPECT_EQ(back->available, p.available);
    EXPECT_EQ(back->target_path, p.target_path);
}

TEST(PoolWire, EveryPoolStateHasAWireName) {
    for (auto s : {driver::PoolState::Inactive, driver::PoolState::Building, driver::PoolState::Running,
                   driver::PoolState::Degraded, driver::PoolState::Inaccessible}) {
        auto name = pool_state_wire_name(s);
        EXPECT_NE(name, "unknown");
        EXPECT_EQ(pool_state_from_wire(name), s) << name;
    }
    EXPECT_EQ(to_json(sample_pool())["state"], "running");
}

TEST(PoolWire, VolumeRoundTrip) {
    driver::VolumeSummary v;
    v.name = "disk 1.qcow2";
    v.pool = "images";
    v.key = "/var/lib/vireo/images/disk 1.qcow2";
    v.path = v.key;
    v.type = driver::VolumeType::Block;
    v.format = "qcow2";
    v.capacity = 10ull << 30;
    v.allocation = 196608;
    v.physical = 200704;
    auto back = volume_from_json(to_json(v));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->name, v.name);
    EXPECT_EQ(back->pool, v.pool);
    EXPECT_EQ(back->key, v.key);
    EXPECT_EQ(back->path, v.path);
    EXPECT_EQ(back->type, driver::VolumeType::Block);
    EXPECT_EQ(back->format, "qcow2");
    EXPECT_EQ(back->capacity, v.capacity);
    EXPECT_EQ(back->allocation, v.allocation);
    EXPECT_EQ(back->physical, v.physical);
}

TEST(PoolWire, MalformedPoolNamesTheField) {
    json j = to_json(sample_pool());
    j["state"] = "exploded";
    auto r = pool_from_json(j);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::Protocol);
    EXPECT_NE(r.error().message.find("'state'"), std::string::npos) << r.error().message;

    j = to_json(sample_pool());
    j.erase("uuid");
    r = pool_from_json(j);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("'uuid'"), std::string::npos) << r.error().message;

    EXPECT_FALSE(pool_from_json(json::array()));
}

TEST(PoolWire, MalformedVolumeNamesTheField) {
    auto r = volume_from_json(json{{"name", "a"}, {"pool", "p"}, {"type", "teleport"}});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::Protocol);
    EXPECT_NE(r.error().message.find("'type'"), std::string::npos) << r.error().message;
    // A negative capacity is not silently wrapped around.
    auto v = volume_from_json(json{{"name", "a"}, {"pool", "p"}, {"type", "file"}, {"capacity", -1}});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->capacity, 0u);
}

TEST(PoolWire, WipeAlgorithms) {
    for (auto a : {driver::WipeAlgorithm::Zero, driver::WipeAlgorithm::Random, driver::WipeAlgorithm::Trim})
        EXPECT_EQ(wipe_algorithm_from_name(wipe_algorithm_name(a)), a);
    EXPECT_FALSE(wipe_algorithm_from_name("dod"));
}

TEST(PoolWire, TransferRangeRoundTrip) {
    driver::TransferRange r{.offset = 5ull << 32, .length = 4096, .sparse = true};
    auto q = parse_query(transfer_query(r));
    ASSERT_TRUE(q);
    auto back = transfer_from_query(*q);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->offset, r.offset);
    EXPECT_EQ(back->length, r.length);
    EXPECT_TRUE(back->sparse);

    auto empty = transfer_from_query({});
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->offset, 0u);
    EXPECT_EQ(empty->length, 0u);
    EXPECT_FALSE(empty->sparse);
}

TEST(PoolWire, TransferRangeRefusesGarbage) {
    auto q = parse_query("offset=12abc");
    ASSERT_TRUE(q);
    auto r = transfer_from_query(*q);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::InvalidArg);
    EXPECT_NE(r.error().message.find("offset"), std::string::npos);
    q = parse_query("length=-5");
    ASSERT_TRUE(q);
    EXPECT_FALSE(transfer_from_query(*q));
}

TEST(PoolWire, StreamControlMessages) {
    auto hole = parse_stream_control(stream_hole(1ull << 33));
    ASSERT_TRUE(hole);
    EXPECT_EQ(hole->kind, StreamControl::Kind::Hole);
    EXPECT_EQ(hole->hole, 1ull << 33);

    auto end = parse_stream_control(stream_end());
    ASSERT_TRUE(end);
    EXPECT_EQ(end->kind, StreamControl::Kind::End);

    auto done = parse_stream_control(stream_done());
    ASSERT_TRUE(done);
    EXPECT_EQ(done->kind, StreamControl::Kind::Done);

    auto err = parse_stream_control(stream_error(Error{ErrorCode::NoVolume, "Storage volume not found: 'x'"}));
    ASSERT_TRUE(err);
    EXPECT_EQ(err->kind, StreamControl::Kind::Error);
    EXPECT_EQ(err->error.code, ErrorCode::NoVolume);
    EXPECT_EQ(err->error.message, "Storage volume not found: 'x'");

    auto abort = parse_stream_control(stream_abort("read error on disk.img"));
    ASSERT_TRUE(abort);
    EXPECT_EQ(abort->kind, StreamControl::Kind::Abort);
    EXPECT_NE(abort->error.message.find("read error on disk.img"), std::string::npos);
}

TEST(PoolWire, StreamControlRefusesGarbage) {
    for (const char* text : {"", "nope", "[]", R"({"hole":0})", R"({"hole":-3})", R"({"hole":"big"})",
                             R"({"end":true,"hole":5})", R"({"what":1})"}) {
        auto c = parse_stream_control(text);
        ASSERT_FALSE(c) << text;
        EXPECT_EQ(c.error().code, ErrorCode::Protocol) << text;
    }
}

TEST(PoolWire, PathsEncodeNamesAndKeys) {
    EXPECT_EQ(http::encode_request<driver::ops::PoolLookup>({.pool = "my pool"})->target, "/v1/pools/my%20pool");
    // A volume key is a path: its slashes must stay inside one segment.
    EXPECT_EQ(http::encode_request<driver::ops::VolumeLookup>({.pool = "p", .vol = "a/b.qcow2"})->target,
              "/v1/pools/p/volumes/a%2Fb.qcow2");
}

}  // namespace
}  // namespace vireo::wire
