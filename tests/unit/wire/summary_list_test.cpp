// The domain list codec (wire/summary_list.hpp): the text is exactly what
// the generic JSON encoder writes, it decodes back to the same summaries,
// and malformed answers are Protocol errors naming the field.
#include <gtest/gtest.h>

#include "wire/summary_list.hpp"
#include "wire/wire.hpp"

namespace vireo::wire {
namespace {

using nlohmann::json;

std::vector<driver::DomainSummary> samples() {
    driver::DomainSummary a;
    a.name = "web";
    a.uuid = *Uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193f");
    a.id = 7;
    a.state = driver::DomainState::Running;
    a.reason = "booted";
    a.autostart = true;
    a.max_memory_kib = 1ull << 40;  // beyond 32 bits on purpose
    a.memory_kib = 524288;
    a.vcpus = 4;
    a.cpu_time_ns = 123456789012345ull;
    driver::DomainSummary b;
    b.name = "odd \"name\" \\ with\ttab\x01 and ütf-8";
    b.uuid = *Uuid::parse("c7a5fdbd-cdaf-9455-926a-d65c16db1809");
    b.persistent = false;
    b.managed_save = true;
    b.title = "line\nbreak\r\b\f";
    b.os_type = "xen";
    return {a, b};
}

TEST(SummaryList, TextIsWhatTheJsonEncoderWrites) {
    json arr = json::array();
    for (const auto& s : samples()) arr.push_back(to_json(s));
    EXPECT_EQ(summaries_to_json(samples()), arr.dump());
    EXPECT_EQ(summaries_to_json({}), "[]");
}

TEST(SummaryList, RoundTrip) {
    auto back = summaries_from_json(summaries_to_json(samples()));
    ASSERT_TRUE(back) << back.error().message;
    ASSERT_EQ(back->size(), 2u);
    const auto want = samples();
    for (std::size_t i = 0; i < want.size(); ++i) {
        const auto& w = want[i];
        const auto& g = (*back)[i];
        EXPECT_EQ(g.name, w.name);
        EXPECT_EQ(g.uuid, w.uuid);
        EXPECT_EQ(g.id, w.id);
        EXPECT_EQ(g.state, w.state);
        EXPECT_EQ(g.reason, w.reason);
        EXPECT_EQ(g.persistent, w.persistent);
        EXPECT_EQ(g.autostart, w.autostart);
        EXPECT_EQ(g.managed_save, w.managed_save);
        EXPECT_EQ(g.title, w.title);
        EXPECT_EQ(g.max_memory_kib, w.max_memory_kib);
        EXPECT_EQ(g.memory_kib, w.memory_kib);
        EXPECT_EQ(g.vcpus, w.vcpus);
        EXPECT_EQ(g.cpu_time_ns, w.cpu_time_ns);
        EXPECT_EQ(g.os_type, w.os_type);
    }
}

TEST(SummaryList, UnknownKeysAreIgnored) {
    auto back = summaries_from_json(
        R"([{"name":"a","id":-1,"uuid":"6695eb01-f6a4-8304-79aa-97f2502e193f","state":"shut off",)"
        R"("future":{"nested":[1,{"x":-2}]},"other":[true,null,-5,1.5]}])");
    ASSERT_TRUE(back) << back.error().message;
    ASSERT_EQ(back->size(), 1u);
    EXPECT_EQ((*back)[0].name, "a");
    EXPECT_EQ((*back)[0].id, -1);
    EXPECT_EQ((*back)[0].state, driver::DomainState::Shutoff);
}

TEST(SummaryList, MalformedAnswersAreProtocolErrors) {
    const char* uuid = R"("uuid":"6695eb01-f6a4-8304-79aa-97f2502e193f")";
    struct Case {
        std::string text;
        std::string names;  // expected in the message
    } cases[] = {
        {"not json", "malformed JSON"},
        {"{}", "(array)"},
        {"[1]", "(object)"},
        {"[[]]", "(object)"},
        {fmt::format(R"([{{"id":1,{},"state":"running"}}])", uuid), "'name'"},
        {fmt::format(R"([{{"name":"a",{},"state":"running"}}])", uuid), "'id'"},
        {R"([{"name":"a","id":1,"state":"running"}])", "'uuid'"},
        {fmt::format(R"([{{"name":"a","id":1,{}}}])", uuid), "'state'"},
        {fmt::format(R"([{{"name":"a","id":1,{},"state":"sleepy"}}])", uuid), "'state'"},
        {fmt::format(R"([{{"name":7,"id":1,{},"state":"running"}}])", uuid), "'name'"},
        {fmt::format(R"([{{"name":"a","id":"1",{},"state":"running"}}])", uuid), "'id'"},
        {fmt::format(R"([{{"name":"a","id":1,{},"state":"running","vcpus":[1]}}])", uuid), "'vcpus'"},
        {R"([{"name":"a","id":1,"uuid":"nope","state":"running"}])", "'uuid'"},
    };
    for (const auto& c : cases) {
        auto r = summaries_from_json(c.text);
        ASSERT_FALSE(r) << c.text;
        EXPECT_EQ(r.error().code, ErrorCode::Protocol) << c.text;
        EXPECT_NE(r.error().message.find(c.names), std::string::npos) << c.text << ": " << r.error().message;
    }
}

}  // namespace
}  // namespace vireo::wire
