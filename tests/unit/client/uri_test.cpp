#include "client/uri.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

#include "client/connect.hpp"
#include "client/paths.hpp"
#include "client/transport.hpp"

namespace vireo::client {
namespace {

TEST(Uri, SessionAndSystem) {
    auto s = parse_uri("qemu:///session");
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->driver, "qemu");
    EXPECT_EQ(s->transport, "");
    EXPECT_TRUE(s->is_session());
    auto y = parse_uri("qemu:///system");
    ASSERT_TRUE(y);
    EXPECT_TRUE(y->is_system());
}

TEST(Uri, UnixWithSocketParameter) {
    auto u = parse_uri("qemu+unix:///system?socket=/tmp/x%20y.sock");
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_EQ(u->transport, "unix");
    EXPECT_EQ(u->param("socket"), "/tmp/x y.sock");
}

TEST(Uri, RemoteForms) {
    auto u = parse_uri("qemu+ssh://root@host.example:2222/system");
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_EQ(u->transport, "ssh");
    EXPECT_EQ(u->user, "root");
    EXPECT_EQ(u->host, "host.example");
    EXPECT_EQ(u->port, 2222u);
}

TEST(Uri, TestDriver) {
    auto u = parse_uri("test:///default");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->driver, "test");
}

TEST(Uri, RejectsWhatLibvirtRejects) {
    for (const char* bad : {"qemu", "qemu:///nope", "xen:///system", "qemu+carrier-pigeon:///system",
                            "qemu://host/system", "qemu+ssh:///system", "test:///other", "qemu+ssh://h:99999/system"}) {
        auto u = parse_uri(bad);
        ASSERT_FALSE(u) << bad;
        EXPECT_EQ(u.error().code, ErrorCode::InvalidArg);
        EXPECT_NE(u.error().message.find(bad), std::string::npos) << u.error().message;
    }
}

TEST(Uri, DefaultUriFromEnvironment) {
    ::unsetenv("VIREO_DEFAULT_URI");
    ::unsetenv("LIBVIRT_DEFAULT_URI");
    EXPECT_EQ(default_uri(), "qemu:///session");
    ::setenv("LIBVIRT_DEFAULT_URI", "qemu:///system", 1);
    EXPECT_EQ(default_uri(), "qemu:///system");
    ::setenv("VIREO_DEFAULT_URI", "test:///default", 1);
    EXPECT_EQ(default_uri(), "test:///default");
    ::unsetenv("VIREO_DEFAULT_URI");
    ::unsetenv("LIBVIRT_DEFAULT_URI");
}

TEST(Uri, TestUriGivesTheInProcessDriver) {
    auto d = connect("test:///default");
    ASSERT_TRUE(d) << d.error().message;
    auto list = (*d)->list_domains();
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 1u);
    EXPECT_EQ((*list)[0].name, "test");
}

TEST(Uri, SshIsNotSupportedYetAndSaysSo) {
    auto d = connect("qemu+ssh://root@h/system");
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, ErrorCode::Unsupported);
}

TEST(Uri, UnreachableExplicitSocketNamesIt) {
    auto d = connect("qemu+unix:///system?socket=/nonexistent/vireo-sock");
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, ErrorCode::Connection);
    EXPECT_NE(d.error().full_message().find("/nonexistent/vireo-sock"), std::string::npos)
        << d.error().full_message();
}

TEST(Paths, EnvironmentOverridesKeepTestsAway) {
    ::setenv("VIREO_RUNTIME_DIR", "/tmp/rt", 1);
    ::setenv("VIREO_CONFIG_DIR", "/tmp/cf", 1);
    auto p = default_paths(DaemonMode::System);
    EXPECT_EQ(p.socket, "/tmp/rt/vireo-sock");
    EXPECT_EQ(p.ro_socket, "/tmp/rt/vireo-sock-ro");
    EXPECT_EQ(p.config_dir, "/tmp/cf");
    EXPECT_EQ(p.log_file, "/tmp/rt/cache/vireod.log");
    ::unsetenv("VIREO_RUNTIME_DIR");
    ::unsetenv("VIREO_CONFIG_DIR");
    auto s = default_paths(DaemonMode::System);
    EXPECT_EQ(s.socket, "/run/vireo/vireo-sock");
    EXPECT_EQ(s.config_dir, "/etc/vireo");
}

}  // namespace
}  // namespace vireo::client
