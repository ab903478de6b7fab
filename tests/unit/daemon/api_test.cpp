// The HTTP API's routing and error mapping, without sockets.
#include "daemon/api.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "testdrv/test_driver.hpp"

namespace vireo::daemon {
namespace {

using nlohmann::json;

constexpr const char* kVm = R"(<domain type='qemu'>
  <name>vm1</name>
  <memory unit='KiB'>131072</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
</domain>)";

class ApiTest : public ::testing::Test {
protected:
    ApiResponse call(std::string method, std::string target, std::string body = {}) {
        return api.handle(ApiRequest{std::move(method), std::move(target), std::move(body), {}});
    }
    std::unique_ptr<driver::Driver> drv = testdrv::make_test_driver();
    Api api{*drv};
};

TEST_F(ApiTest, ListsDomainsWithStatesInOneCall) {
    auto r = call("GET", "/v1/domains");
    ASSERT_EQ(r.status, 200u);
    auto j = json::parse(r.body);
    ASSERT_TRUE(j.is_array());
    ASSERT_EQ(j.size(), 1u);
    EXPECT_EQ(j[0]["name"], "test");
    EXPECT_EQ(j[0]["state"], "running");
}

TEST_F(ApiTest, DefineThenLifecycleThenUndefine) {
    auto def = call("POST", "/v1/domains", kVm);
    ASSERT_EQ(def.status, 201u) << def.body;
    EXPECT_EQ(json::parse(def.body)["state"], "shut off");
    EXPECT_EQ(call("POST", "/v1/domains/vm1/start").status, 204u);
    EXPECT_EQ(json::parse(call("GET", "/v1/domains/vm1").body)["state"], "running");
    EXPECT_EQ(call("POST", "/v1/domains/vm1/suspend").status, 204u);
    EXPECT_EQ(json::parse(call("GET", "/v1/domains/vm1").body)["state"], "paused");
    EXPECT_EQ(call("POST", "/v1/domains/vm1/destroy", R"({"graceful":false})").status, 204u);
    auto xml = call("GET", "/v1/domains/vm1/xml?inactive=1");
    EXPECT_EQ(xml.status, 200u);
    EXPECT_EQ(xml.content_type, "application/xml");
    EXPECT_NE(xml.body.find("<name>vm1</name>"), std::string::npos);
    EXPECT_EQ(call("DELETE", "/v1/domains/vm1").status, 204u);
    EXPECT_EQ(call("GET", "/v1/domains/vm1").status, 404u);
}

TEST_F(ApiTest, ErrorsCarryTheDriversCodeAndMessage) {
    auto direct = drv->lookup_domain("nope");
    ASSERT_FALSE(direct);
    auto r = call("GET", "/v1/domains/nope");
    EXPECT_EQ(r.status, 404u);
    auto j = json::parse(r.body);
    EXPECT_EQ(j["code"], "no-domain");
    EXPECT_EQ(j["message"], direct.error().full_message());
}

TEST_F(ApiTest, InvalidStateIsConflict) {
    auto r = call("POST", "/v1/domains/test/start");
    EXPECT_EQ(r.status, 409u);
    EXPECT_EQ(json::parse(r.body)["code"], "invalid-state");
}

TEST_F(ApiTest, MalformedXmlIsBadRequest) {
    auto r = call("POST", "/v1/domains", "<domain");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(json::parse(r.body)["code"], "xml-error");
}

TEST_F(ApiTest, UnknownRoutesAndBadBodiesAreRefusedCleanly) {
    EXPECT_EQ(call("GET", "/v2/domains").status, 404u);
    EXPECT_EQ(call("GET", "/v1/nothing").status, 404u);
    EXPECT_EQ(call("POST", "/v1/domains/test/fly").status, 404u);
    EXPECT_EQ(call("POST", "/v1/domains/test/shutdown", "not json").status, 400u);
    EXPECT_EQ(call("POST", "/v1/domains/test/shutdown", R"({"mode":"telepathy"})").status, 400u);
    EXPECT_EQ(call("GET", "/v1/domains/%zz").status, 400u);
}

TEST_F(ApiTest, EscapedReferencesAreDecoded) {
    auto r = call("GET", "/v1/domains/6695eb01-f6a4-8304-79aa-97f2502e193f");
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(json::parse(r.body)["name"], "test");
    EXPECT_EQ(call("GET", "/v1/domains/t%65st").status, 200u);
}

TEST_F(ApiTest, HostRoutes) {
    auto v = json::parse(call("GET", "/v1/host/version").body);
    EXPECT_FALSE(v["daemon"].get<std::string>().empty());
    auto n = json::parse(call("GET", "/v1/host/nodeinfo").body);
    EXPECT_EQ(n["cpus"], 8);
    auto caps = call("GET", "/v1/host/capabilities");
    EXPECT_EQ(caps.content_type, "application/xml");
    EXPECT_NE(caps.body.find("<capabilities>"), std::string::npos);
}

TEST_F(ApiTest, MetadataAndAutostart) {
    ASSERT_EQ(call("POST", "/v1/domains", kVm).status, 201u);
    EXPECT_EQ(call("PUT", "/v1/domains/vm1/metadata", R"({"kind":"title","text":"hello","config":true})").status,
              204u);
    auto m = json::parse(call("GET", "/v1/domains/vm1/metadata?kind=title").body);
    EXPECT_EQ(m["text"], "hello");
    EXPECT_EQ(call("PUT", "/v1/domains/vm1/autostart", R"({"enabled":true})").status, 204u);
    EXPECT_EQ(json::parse(call("GET", "/v1/domains/vm1").body)["autostart"], true);
}

TEST(ApiClassify, MutatingAndStreams) {
    EXPECT_FALSE(classify("GET", "/v1/domains").mutating);
    EXPECT_EQ(classify("GET", "/v1/domains").kind, RouteKind::MemoryQuery);
    EXPECT_EQ(classify("GET", "/v1/domains/x").kind, RouteKind::MemoryQuery);
    EXPECT_EQ(classify("GET", "/v1/domains/x/xml?inactive=1").kind, RouteKind::MemoryQuery);
    EXPECT_EQ(classify("GET", "/v1/host/capabilities").kind, RouteKind::Query);
    EXPECT_EQ(classify("GET", "/v1/domains/x/disks").kind, RouteKind::Query);
    EXPECT_TRUE(classify("POST", "/v1/domains/x/start").mutating);
    EXPECT_EQ(classify("POST", "/v1/domains/x/start").kind, RouteKind::Job);
    EXPECT_TRUE(classify("DELETE", "/v1/domains/x").mutating);
    EXPECT_EQ(classify("GET", "/v1/events").kind, RouteKind::EventStream);
    EXPECT_FALSE(classify("GET", "/v1/events").mutating);
    auto c = classify("GET", "/v1/domains/my%20vm/console?device=serial0");
    EXPECT_EQ(c.kind, RouteKind::Console);
    EXPECT_TRUE(c.mutating);
    EXPECT_EQ(c.domain, "my vm");
    EXPECT_EQ(c.device, "serial0");
}

TEST(ApiClassify, ReadOnlyRefusalIsPermissionDenied) {
    auto r = read_only_refusal("POST", "/v1/domains/x/start?y=1");
    EXPECT_EQ(r.status, 403u);
    auto j = json::parse(r.body);
    EXPECT_EQ(j["code"], "permission-denied");
    EXPECT_NE(j["message"].get<std::string>().find("read only"), std::string::npos);
}

}  // namespace
}  // namespace vireo::daemon
