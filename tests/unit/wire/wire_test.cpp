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
}

}  // namespace
}  // namespace vireo::wire
