#include "wire/wire.hpp"

#include <gtest/gtest.h>

namespace vireo::wire {
namespace {

TEST(Wire, PercentEncodingRoundTripsAnyName) {
    std::string name = "web server/01?a=b&c%d";
    auto encoded = percent_encode(name);
    EXPECT_EQ(encoded.find('/'), std::string::npos);
    EXPECT_EQ(encoded.find('?'), std::string::npos);
    EXPECT_EQ(percent_decode(encoded), name);
}

TEST(Wire, PercentDecodeRejectsBrokenEscapes) {
    EXPECT_FALSE(percent_decode("abc%"));
    EXPECT_FALSE(percent_decode("abc%4"));
    EXPECT_FALSE(percent_decode("%zz"));
    EXPECT_EQ(percent_decode("%41b"), "Ab");
}

TEST(Wire, QueryFlagsAndValues) {
    auto q = parse_query("inactive=1&kind=title&x=%20y&bare");
    ASSERT_TRUE(q);
    EXPECT_TRUE(query_flag(*q, "inactive"));
    EXPECT_TRUE(query_flag(*q, "bare"));
    EXPECT_FALSE(query_flag(*q, "missing"));
    EXPECT_EQ(q->at("x"), " y");
    EXPECT_EQ(q->at("kind"), "title");
}

TEST(Wire, DomainSummaryRoundTrip) {
    driver::DomainSummary s;
    s.name = "web";
    s.uuid = *Uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193f");
    s.id = 3;
    s.state = driver::DomainState::Paused;
    s.reason = "user";
    s.persistent = false;
    s.autostart = true;
    s.max_memory_kib = 1024;
    s.memory_kib = 512;
    s.vcpus = 2;
    s.cpu_time_ns = 123456789012ULL;
    s.title = "the web";
    auto back = summary_from_json(to_json(s));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->name, "web");
    EXPECT_EQ(back->uuid, s.uuid);
    EXPECT_EQ(back->id, 3);
    EXPECT_EQ(back->state, driver::DomainState::Paused);
    EXPECT_EQ(back->reason, "user");
    EXPECT_FALSE(back->persistent);
    EXPECT_TRUE(back->autostart);
    EXPECT_EQ(back->cpu_time_ns, 123456789012ULL);
    EXPECT_EQ(back->title, "the web");
}

TEST(Wire, MalformedSummaryIsAProtocolErrorNamingTheField) {
    auto r = summary_from_json(nlohmann::json{{"name", "x"}});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::Protocol);
    EXPECT_NE(r.error().message.find("uuid"), std::string::npos);
}

TEST(Wire, ErrorsTravelWithCodeAndMessage) {
    Error e{ErrorCode::NoDomain, "Domain not found: no domain with matching name 'x'"};
    auto body = to_json(e).dump();
    Error back = error_from_body(http_status_for(e.code), body);
    EXPECT_EQ(back.code, ErrorCode::NoDomain);
    EXPECT_EQ(back.message, e.message);
    EXPECT_EQ(http_status_for(ErrorCode::NoDomain), 404u);
    EXPECT_EQ(http_status_for(ErrorCode::Busy), 409u);
    EXPECT_EQ(http_status_for(ErrorCode::PermissionDenied), 403u);
}

TEST(Wire, UnreadableErrorBodyQuotesIt) {
    Error back = error_from_body(502, "<html>bad gateway</html>");
    EXPECT_EQ(back.code, ErrorCode::Protocol);
    EXPECT_NE(back.message.find("502"), std::string::npos);
    EXPECT_NE(back.message.find("bad gateway"), std::string::npos);
}

TEST(Wire, EventRoundTrip) {
    driver::DomainEvent e;
    e.type = driver::EventType::PmSuspended;
    e.detail = "Memory";
    e.domain = "vm1";
    auto back = event_from_json(to_json(e));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->type, driver::EventType::PmSuspended);
    EXPECT_EQ(back->detail, "Memory");
    EXPECT_EQ(back->domain, "vm1");
    e.type = driver::EventType::MemoryDeviceSizeChange;
    e.detail = "virtiomem0";
    e.size_kib = 262144;
    back = event_from_json(to_json(e));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->type, driver::EventType::MemoryDeviceSizeChange);
    EXPECT_EQ(back->size_kib, 262144u);
}

// The guest agent's answers (domfsinfo, domfsfreeze, guestvcpus, guestinfo) travel whole.
TEST(Wire, GuestAgentRepliesRoundTrip) {
    const driver::FsInfo fs{"/mnt/data", "vda", "ext4", "vda,vdb"};
    auto f = fs_info_from_json(to_json(fs));
    ASSERT_TRUE(f);
    EXPECT_EQ(f->mountpoint, fs.mountpoint);
    EXPECT_EQ(f->name, fs.name);
    EXPECT_EQ(f->type, fs.type);
    EXPECT_EQ(f->targets, fs.targets);
    auto n = fs_count_from_json(to_json(driver::FsCount{3}));
    ASSERT_TRUE(n);
    EXPECT_EQ(n->filesystems, 3U);
    auto v = guest_vcpus_from_json(to_json(driver::GuestVcpus{"0-3", "0-1,3", "1-3"}));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->vcpus, "0-3");
    EXPECT_EQ(v->online, "0-1,3");
    EXPECT_EQ(v->offlinable, "1-3");
    auto p = typed_param_from_json(to_json(driver::TypedParam{"fs.0.total-bytes", "ullong", "1024"}));
    ASSERT_TRUE(p);
    EXPECT_EQ(p->field, "fs.0.total-bytes");
    EXPECT_EQ(p->type, "ullong");
    EXPECT_EQ(p->value, "1024");
    auto missing = typed_param_from_json(nlohmann::json{{"field", "os.id"}});
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::Protocol);
}

}  // namespace
}  // namespace vireo::wire
