// libvirt's modification impact rule (driver/impact.hpp).
#include <gtest/gtest.h>

#include "driver/impact.hpp"

using namespace vireo;
using driver::Impact;
using driver::ImpactFlags;
using driver::resolve_impact;

namespace {

Impact ok(ImpactFlags f, bool running, bool persistent = true) {
    auto r = resolve_impact(f, running, persistent);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
    return r.value_or(Impact{});
}

}  // namespace

TEST(Impact, CurrentIsLiveWhenRunningElseConfig) {
    auto a = ok({}, true);
    EXPECT_TRUE(a.live);
    EXPECT_FALSE(a.config);
    auto b = ok({.current = true}, false);
    EXPECT_FALSE(b.live);
    EXPECT_TRUE(b.config);
}

TEST(Impact, ExplicitLiveAndConfig) {
    auto a = ok({.live = true, .config = true}, true);
    EXPECT_TRUE(a.live && a.config);
    auto b = ok({.config = true}, true);
    EXPECT_FALSE(b.live);
    EXPECT_TRUE(b.config);
}

TEST(Impact, LiveOnShutOffDomainIsAnError) {
    auto r = resolve_impact({.live = true}, false, true);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::InvalidState);
    EXPECT_NE(r.error().message.find("domain is not running"), std::string::npos);
    auto n = resolve_impact({.live = true}, false, true, "network");
    ASSERT_FALSE(n);
    EXPECT_NE(n.error().message.find("network is not running"), std::string::npos);
}

TEST(Impact, PersistentIsConfigPlusLiveWhenRunning) {
    auto a = ok({.persistent = true}, true);
    EXPECT_TRUE(a.live && a.config);
    auto b = ok({.persistent = true}, false);
    EXPECT_FALSE(b.live);
    EXPECT_TRUE(b.config);
}

TEST(Impact, ConfigOfTransientIsAnError) {
    auto r = resolve_impact({.config = true}, true, false);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("transient domain"), std::string::npos);
    // --current of a running transient domain: live only, allowed.
    auto a = ok({}, true, false);
    EXPECT_TRUE(a.live);
    EXPECT_FALSE(a.config);
}

TEST(Impact, CurrentWithLiveOrConfigIsAnError) {
    EXPECT_FALSE(resolve_impact({.live = true, .current = true}, true, true));
    EXPECT_FALSE(resolve_impact({.config = true, .current = true}, true, true));
}
