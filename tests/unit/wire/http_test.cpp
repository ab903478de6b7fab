// The HTTP binding derived from the operation table: every operation's
// request survives client encoding + daemon routing and decoding, the
// targets and bodies are the ones curl users and older clients know, and
// malformed requests are refused with a clear InvalidArg.
#include "wire/http.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace vireo::wire::http {
namespace {

using nlohmann::json;
namespace ops = driver::ops;

// A request with every field set to something other than its default;
// strings need escaping on the way.
template <class Op>
typename Op::Request sample_request() {
    typename Op::Request r{};
    for_each_field<Op>([&](const auto& f) {
        auto& v = r.*(f.member);
        using T = std::remove_cvref_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>)
            v = f.document ? "<domain><name>a &amp; b</name></domain>" : fmt::format("{} x/y%?&=", f.name);
        else if constexpr (std::is_same_v<T, bool>)
            v = !v;
        else if constexpr (std::is_same_v<T, std::uint64_t>)
            v = (1ull << 40) + 7;
        else
            v = ops::EnumNames<T>::values.back().first;
    });
    return r;
}

template <class Op>
void expect_same_fields(const typename Op::Request& a, const typename Op::Request& b) {
    for_each_field<Op>([&](const auto& f) { EXPECT_EQ(a.*(f.member), b.*(f.member)) << Op::info.name << "." << f.name; });
}

TEST(HttpBinding, EveryOperationRoundTripsThroughTheRouter) {
    ops::for_each_op([&]<class Op>() {
        const auto sent = sample_request<Op>();
        auto req = encode_request<Op>(sent);
        ASSERT_TRUE(req) << Op::info.name << ": " << req.error().message;
        EXPECT_EQ(req->method, ops::method_name(Op::info.method));
        auto m = match(req->method, req->target);
        ASSERT_TRUE(m) << Op::info.name << ": " << m.error().message;
        ASSERT_TRUE(m->has_value()) << Op::info.name << ": no route for " << req->target;
        EXPECT_EQ((*m)->op, ops::index_of<Op>) << Op::info.name << " routed to " << ops::kInfos[(*m)->op]->name;
        auto got = decode_request<Op>(**m, req->body);
        ASSERT_TRUE(got) << Op::info.name << ": " << got.error().message;
        expect_same_fields<Op>(sent, *got);
    });
}

TEST(HttpBinding, DefaultRequestsRoundTripToo) {
    ops::for_each_op([&]<class Op>() {
        typename Op::Request sent{};
        // Path segments must not be empty; required fields must be given.
        for_each_field<Op>([&](const auto& f) {
            auto& v = sent.*(f.member);
            using T = std::remove_cvref_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string>) {
                if (in_path(Op::info.path, f.name) || f.required) v = "v";
            } else if constexpr (std::is_same_v<T, std::uint64_t>) {
                if (f.required) v = 1;
            }
        });
        auto req = encode_request<Op>(sent);
        ASSERT_TRUE(req) << Op::info.name;
        auto m = match(req->method, req->target);
        ASSERT_TRUE(m && m->has_value()) << Op::info.name;
        auto got = decode_request<Op>(**m, req->body);
        ASSERT_TRUE(got) << Op::info.name << ": " << got.error().message;
        expect_same_fields<Op>(sent, *got);
    });
}

TEST(HttpBinding, TargetsAndBodiesAreTheDocumentedOnes) {
    auto xml = encode_request<ops::DomainXml>({.ref = "my vm", .inactive = true});
    ASSERT_TRUE(xml);
    EXPECT_EQ(xml->method, "GET");
    EXPECT_EQ(xml->target, "/v1/domains/my%20vm/xml?inactive=1&security_info=0");
    EXPECT_TRUE(xml->body.empty());
    EXPECT_TRUE(xml->content_type.empty());

    auto undefine = encode_request<ops::DomainUndefine>({.ref = "x", .managed_save = true});
    EXPECT_EQ(undefine->method, "DELETE");
    EXPECT_EQ(undefine->target, "/v1/domains/x?managed_save=1&nvram=0&remove_all_storage=0&keep_nvram=0&tpm=0&keep_tpm=0&snapshots_metadata=0");

    EXPECT_EQ(encode_request<ops::HostDomainCapabilities>({})->target,
              "/v1/host/domcapabilities?emulator=&arch=&machine=&virttype=");

    auto start = encode_request<ops::DomainStart>({.ref = "web", .paused = true});
    EXPECT_EQ(start->target, "/v1/domains/web/start");
    EXPECT_EQ(start->content_type, kJson);
    EXPECT_EQ(json::parse(start->body), (json{{"paused", true}, {"force_boot", false}}));

    auto reset = encode_request<ops::DomainReset>({.ref = "web"});
    EXPECT_EQ(reset->target, "/v1/domains/web/reset");
    EXPECT_TRUE(reset->body.empty()) << "no fields, no body (as before)";
    EXPECT_TRUE(reset->content_type.empty());

    auto define = encode_request<ops::DomainDefine>({.xml = "<domain/>", .validate = false});
    EXPECT_EQ(define->target, "/v1/domains?validate=0");
    EXPECT_EQ(define->body, "<domain/>");
    EXPECT_EQ(define->content_type, kXml);

    auto shutdown = encode_request<ops::DomainShutdown>({.ref = "w", .mode = driver::ShutdownMode::Acpi});
    EXPECT_EQ(shutdown->body, R"({"mode":"acpi"})");

    auto from = encode_request<ops::VolumeCreateFrom>(
        {.pool = "p", .xml = "<volume/>", .source_pool = "src pool", .source_volume = "a.qcow2", .reflink = true});
    EXPECT_EQ(from->target,
              "/v1/pools/p/volumes:from?source_pool=src%20pool&source_volume=a.qcow2&prealloc_metadata=0&reflink=1");

    EXPECT_EQ(encode_request<ops::PoolLookup>({.pool = "my pool"})->target, "/v1/pools/my%20pool");
    EXPECT_EQ(encode_request<ops::VolumeLookup>({.pool = "p", .vol = "a/b.qcow2"})->target,
              "/v1/pools/p/volumes/a%2Fb.qcow2");
    EXPECT_EQ(encode_request<ops::VolumeLookupByKey>({.key = "/var/lib/x.img"})->target,
              "/v1/volumes/%2Fvar%2Flib%2Fx.img");
    EXPECT_EQ(encode_request<ops::VolumeDownload>({.pool = "p", .vol = "v", .offset = 5, .sparse = true})->target,
              "/v1/pools/p/volumes/v/download?offset=5&length=0&sparse=1");
    auto resize = encode_request<ops::VolumeResize>({.pool = "p", .vol = "v", .capacity = 1ull << 40, .shrink = true});
    EXPECT_EQ(json::parse(resize->body),
              (json{{"capacity", 1ull << 40}, {"delta", false}, {"shrink", true}, {"allocate", false}}));
}

TEST(HttpBinding, AnEmptyPathSegmentIsRefusedBeforeSending) {
    auto r = encode_request<ops::DomainLookup>({.ref = ""});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::InvalidArg);
    EXPECT_NE(r.error().message.find("domain.lookup"), std::string::npos) << r.error().message;
}

template <class Op>
Result<typename Op::Request> decode(std::string_view method, std::string_view target, std::string_view body = {}) {
    auto m = match(method, target);
    if (!m) return std::unexpected(m.error());
    if (!m->has_value()) return fail(ErrorCode::NotFound, "no route");
    if ((*m)->op != ops::index_of<Op>) return fail(ErrorCode::NotFound, "routed to {}", ops::kInfos[(*m)->op]->name);
    return decode_request<Op>(**m, body);
}

TEST(HttpRouter, RoutesByMethodAndPath) {
    EXPECT_TRUE(decode<ops::DomainList>("GET", "/v1/domains"));
    EXPECT_TRUE(decode<ops::DomainList>("GET", "/v1/domains/")) << "a trailing slash is the same path";
    EXPECT_TRUE(decode<ops::DomainDefine>("POST", "/v1/domains", "<domain/>"));
    EXPECT_TRUE(decode<ops::DomainManagedSave>("POST", "/v1/domains/x/managedsave"));
    EXPECT_TRUE(decode<ops::DomainManagedSaveRemove>("DELETE", "/v1/domains/x/managedsave"));
    EXPECT_TRUE(decode<ops::DomainCreate>("POST", "/v1/domains:create", "<domain/>"));
    auto escaped = decode<ops::DomainLookup>("GET", "/v1/domains/t%65st");
    ASSERT_TRUE(escaped);
    EXPECT_EQ(escaped->ref, "test");
    auto by_key = decode<ops::VolumeLookupByKey>("GET", "/v1/volumes/%2Fa%2Fb.img");
    ASSERT_TRUE(by_key);
    EXPECT_EQ(by_key->key, "/a/b.img");
    for (auto [method, target] : std::initializer_list<std::pair<std::string_view, std::string_view>>{
             {"GET", "/v2/domains"},
             {"GET", "/v1"},
             {"GET", "/v1/"},
             {"GET", "/v1/nothing"},
             {"POST", "/v1/domains/test/fly"},
             {"PATCH", "/v1/domains/test"},
             {"PUT", "/v1/domains/test/start"},
             {"GET", "/v1/domains/a/b/c/d"}}) {
        auto m = match(method, target);
        ASSERT_TRUE(m) << target;
        EXPECT_FALSE(m->has_value()) << method << " " << target;
    }
    auto bad = match("GET", "/v1/domains/%zz");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, ErrorCode::InvalidArg);
}

TEST(HttpRouter, QueryFlagsAndDefaults) {
    EXPECT_TRUE(decode<ops::DomainXml>("GET", "/v1/domains/x/xml?inactive=1")->inactive);
    EXPECT_TRUE(decode<ops::DomainXml>("GET", "/v1/domains/x/xml?inactive=true")->inactive);
    EXPECT_TRUE(decode<ops::DomainXml>("GET", "/v1/domains/x/xml?inactive=yes")->inactive);
    EXPECT_TRUE(decode<ops::DomainXml>("GET", "/v1/domains/x/xml?inactive")->inactive);
    EXPECT_FALSE(decode<ops::DomainXml>("GET", "/v1/domains/x/xml?inactive=0")->inactive);
    EXPECT_FALSE(decode<ops::DomainXml>("GET", "/v1/domains/x/xml")->inactive);
    // validate defaults to true when absent (curl users define without it).
    EXPECT_TRUE(decode<ops::DomainDefine>("POST", "/v1/domains", "<d/>")->validate);
    EXPECT_FALSE(decode<ops::DomainDefine>("POST", "/v1/domains?validate=0", "<d/>")->validate);
    auto dl = decode<ops::VolumeDownload>("GET", "/v1/pools/p/volumes/v/download?offset=10&length=&sparse=1");
    ASSERT_TRUE(dl) << dl.error().message;
    EXPECT_EQ(dl->offset, 10u);
    EXPECT_EQ(dl->length, 0u);
    EXPECT_TRUE(dl->sparse);
    auto bad = decode<ops::VolumeDownload>("GET", "/v1/pools/p/volumes/v/download?offset=ten");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, ErrorCode::InvalidArg);
    EXPECT_NE(bad.error().message.find("'offset'"), std::string::npos) << bad.error().message;
}

TEST(HttpRouter, BodiesAreChecked) {
    // No body is an empty object: every field keeps its default.
    auto start = decode<ops::DomainStart>("POST", "/v1/domains/x/start");
    ASSERT_TRUE(start);
    EXPECT_FALSE(start->paused);
    EXPECT_EQ(decode<ops::DomainStart>("POST", "/v1/domains/x/start", "not json").error().code, ErrorCode::InvalidArg);
    EXPECT_EQ(decode<ops::DomainStart>("POST", "/v1/domains/x/start", "[1]").error().code, ErrorCode::InvalidArg);
    auto wrong_type = decode<ops::DomainStart>("POST", "/v1/domains/x/start", R"({"paused":"yes"})");
    ASSERT_FALSE(wrong_type);
    EXPECT_NE(wrong_type.error().message.find("\"paused\""), std::string::npos) << wrong_type.error().message;

    auto mode = decode<ops::DomainShutdown>("POST", "/v1/domains/x/shutdown", R"({"mode":"telepathy"})");
    ASSERT_FALSE(mode);
    EXPECT_EQ(mode.error().message, "unknown shutdown mode 'telepathy' (known: default, acpi, agent)");
    EXPECT_EQ(decode<ops::DomainShutdown>("POST", "/v1/domains/x/shutdown", R"({"mode":"acpi"})")->mode,
              driver::ShutdownMode::Acpi);
    EXPECT_EQ(decode<ops::VolumeWipe>("POST", "/v1/pools/p/volumes/v/wipe")->algorithm, driver::WipeAlgorithm::Zero);

    // Required fields.
    auto save = decode<ops::DomainSave>("POST", "/v1/domains/x/save", "{}");
    ASSERT_FALSE(save);
    EXPECT_EQ(save.error().code, ErrorCode::InvalidArg);
    EXPECT_NE(save.error().message.find("\"path\""), std::string::npos) << save.error().message;
    EXPECT_FALSE(decode<ops::DomainSave>("POST", "/v1/domains/x/save", R"({"path":""})"));
    EXPECT_EQ(decode<ops::DomainSave>("POST", "/v1/domains/x/save", R"({"path":"/tmp/s"})")->path, "/tmp/s");
    EXPECT_FALSE(decode<ops::VolumeResize>("POST", "/v1/pools/p/volumes/v/resize", R"({"delta":true})"));
    EXPECT_FALSE(decode<ops::VolumeResize>("POST", "/v1/pools/p/volumes/v/resize", R"({"capacity":-1})"));
    auto from = decode<ops::VolumeCreateFrom>("POST", "/v1/pools/p/volumes:from?source_pool=q", "<volume/>");
    ASSERT_FALSE(from);
    EXPECT_NE(from.error().message.find("source_volume"), std::string::npos) << from.error().message;
    auto meta = decode<ops::DomainGetMetadata>("GET", "/v1/domains/x/metadata");
    ASSERT_FALSE(meta);
    EXPECT_NE(meta.error().message.find("kind"), std::string::npos) << meta.error().message;
    EXPECT_EQ(decode<ops::DomainGetMetadata>("GET", "/v1/domains/x/metadata?kind=description")->kind,
              driver::MetadataKind::Description);
}

TEST(HttpAnswers, EncodedAsBeforeAndDecodedBack) {
    auto none = encode_reply<ops::DomainReset>(Status{});
    EXPECT_EQ(none.status, 204u);
    EXPECT_TRUE(none.body.empty());

    auto host = encode_reply<ops::HostHostname>(std::string("box"));
    EXPECT_EQ(host.status, 200u);
    EXPECT_EQ(host.content_type, kJson);
    EXPECT_EQ(host.body, R"({"hostname":"box"})");
    EXPECT_EQ(decode_reply<ops::HostHostname>(host.body).value_or("?"), "box");
    EXPECT_EQ(decode_reply<ops::HostHostname>(R"({"name":"box"})").error().code, ErrorCode::Protocol);

    auto xml = encode_reply<ops::DomainXml>(std::string("<domain/>"));
    EXPECT_EQ(xml.content_type, kXml);
    EXPECT_EQ(xml.body, "<domain/>");

    driver::DomainSummary s;
    s.name = "web";
    s.uuid = *Uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193f");
    auto defined = encode_reply<ops::DomainDefine>(s);
    EXPECT_EQ(defined.status, 201u);
    EXPECT_EQ(decode_reply<ops::DomainDefine>(defined.body)->name, "web");

    auto list = encode_reply<ops::DomainList>(std::vector<driver::DomainSummary>{s, s});
    EXPECT_EQ(list.body, summaries_to_json({s, s}));
    EXPECT_EQ(decode_reply<ops::DomainList>(list.body)->size(), 2u);

    driver::PoolSummary p;
    p.name = "pool";
    auto pools = encode_reply<ops::PoolList>(std::vector<driver::PoolSummary>{p});
    EXPECT_EQ(json::parse(pools.body)[0]["name"], "pool");
    EXPECT_EQ(decode_reply<ops::PoolList>(pools.body)->at(0).name, "pool");

    auto err = encode_reply<ops::DomainLookup>(std::unexpected(Error{ErrorCode::NoDomain, "no such domain"}));
    EXPECT_EQ(err.status, 404u);
    EXPECT_EQ(json::parse(err.body)["code"], "no-domain");
}

}  // namespace
}  // namespace vireo::wire::http
