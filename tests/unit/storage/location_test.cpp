// Image names beyond paths (storage/location.hpp, storage/nbd.hpp): what
// each form names, QEMU's canonical NBD names and its refusals; no server
// needed (the integration tests talk to a real qemu-nbd).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "storage/location.hpp"
#include "storage/nbd.hpp"

using namespace vireo::storage;

TEST(StorageLocation, NbdUrisAndTheirCanonicalNames) {
    struct Case {
        const char* name;
        const char* canonical;
    };
    const Case cases[] = {
        {"nbd+unix://?socket=/run/x.sock", "nbd+unix://?socket=/run/x.sock"},
        {"nbd+unix:///?socket=/run/x.sock", "nbd+unix://?socket=/run/x.sock"},
        {"nbd+unix:///disk0?socket=/run/x.sock", "nbd+unix:///disk0?socket=/run/x.sock"},
        {"nbd:unix:/run/x.sock", "nbd+unix://?socket=/run/x.sock"},
        {"nbd:unix:/run/x.sock:exportname=e", "nbd+unix:///e?socket=/run/x.sock"},
        {"nbd://127.0.0.1/e", "nbd://127.0.0.1:10809/e"},
        {"nbd://127.0.0.1:10810", "nbd://127.0.0.1:10810"},
        {"nbd+tcp://host:1/a%20b", "nbd://host:1/a b"},
        {"nbd:host:10811:exportname=x", "nbd://host:10811/x"},
    };
    for (const auto& c : cases) {
        auto a = parse_nbd_uri(c.name);
        ASSERT_TRUE(a) << c.name << ": " << a.error().message;
        EXPECT_EQ(nbd_canonical_name(*a), c.canonical) << c.name;
    }
    for (const char* bad : {"nbd+unix://", "nbd://", "nbd://h:p:q/", "nbd+unix:///e?socket=/x&foo=bar", "nbd://h/?x=1"}) {
        auto a = parse_nbd_uri(bad);
        ASSERT_FALSE(a) << bad;
        EXPECT_EQ(a.error().message, "No valid URL specified") << bad;
    }
    auto ssh = parse_nbd_uri("nbd+ssh://x");
    ASSERT_FALSE(ssh);
    EXPECT_EQ(ssh.error().message, "Unknown protocol 'nbd+ssh'");
}

TEST(StorageLocation, JsonAndImageOptsNames) {
    auto q = parse_location(R"(json:{"driver":"qcow2","file":{"driver":"file","filename":"/i/x.qcow2"}})");
    ASSERT_TRUE(q) << q.error().message;
    EXPECT_EQ(q->format, ImageFormat::Qcow2);
    EXPECT_EQ(q->path->string(), "/i/x.qcow2");
    auto dotted = parse_location(R"(json:{"file.filename":"x.qcow2","driver":"qcow2"})");
    ASSERT_TRUE(dotted);
    EXPECT_EQ(dotted->path->string(), "x.qcow2");
    auto nbd = parse_location(R"(json:{"driver":"nbd","server":{"type":"inet","host":"127.0.0.1","port":"10809"},"export":"e"})");
    ASSERT_TRUE(nbd);
    ASSERT_TRUE(nbd->nbd);
    EXPECT_EQ(nbd->label, "nbd");
    EXPECT_EQ(nbd_canonical_name(*nbd->nbd), "nbd://127.0.0.1:10809/e");
    auto file = parse_location("file:/i/y.raw");
    ASSERT_TRUE(file);
    EXPECT_EQ(file->path->string(), "/i/y.raw");
    EXPECT_FALSE(file->format);
    // Refusals, in QEMU's words.
    auto node = parse_location(R"(json:{"driver":"qcow2","file":"x.qcow2"})");
    ASSERT_FALSE(node);
    EXPECT_EQ(node.error().message, "Cannot find device='x.qcow2' nor node-name='x.qcow2'");
    auto extra = parse_location(R"(json:{"driver":"qcow2","file.filename":"x","foo":"1"})");
    ASSERT_FALSE(extra);
    EXPECT_EQ(extra.error().message, "Block format 'qcow2' does not support the option 'foo'");
    auto unknown = parse_location(R"(json:{"driver":"nosuch","filename":"x"})");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().message, "Unknown driver 'nosuch'");
    // --image-opts strings become the same json: names (",," a comma).
    auto j = image_opts_to_json("driver=qcow2,file.filename=a,,b.qcow2");
    ASSERT_TRUE(j);
    auto parsed = nlohmann::json::parse(j->substr(5));
    EXPECT_EQ(parsed["driver"], "qcow2");
    EXPECT_EQ(parsed["file.filename"], "a,b.qcow2");
    auto loc = parse_location(*j);
    ASSERT_TRUE(loc);
    EXPECT_EQ(loc->path->string(), "a,b.qcow2");
    EXPECT_TRUE(is_location_name("json:{}"));
    EXPECT_TRUE(is_location_name("nbd:unix:/x"));
    EXPECT_FALSE(is_location_name("/var/lib/x.qcow2"));
}
