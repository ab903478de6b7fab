// SnapshotStore: snapshot metadata per domain, the current marker, loading
// that skips bad files, the tree derived from parent names, removal.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "driver/snapshot_store.hpp"
#include "support/support.hpp"

using namespace vireo;
using namespace vireo::driver;
namespace fs = std::filesystem;

namespace {

conf::SnapshotDef snap(std::string name, std::string parent, std::string state = "shutoff") {
    conf::SnapshotDef d;
    d.name = std::move(name);
    d.parent = std::move(parent);
    d.state = std::move(state);
    d.creation_time = 1765000000;
    d.memory = d.state == "running" ? "internal" : "no";
    d.disks_present = true;
    d.disks.push_back({.name = "vda", .snapshot = "internal"});
    return d;
}

}  // namespace

TEST(SnapshotStore, SavedSnapshotsLoadAgainWithTreeAndCurrent) {
    test::TempDir dir;
    SnapshotStore store(dir.path() / "snapshot");
    ASSERT_TRUE(store.save("web", snap("a", "")));
    ASSERT_TRUE(store.save("web", snap("b", "a", "running")));
    ASSERT_TRUE(store.save("web", snap("c", "a")));
    ASSERT_TRUE(store.set_current("web", "b"));
    ASSERT_TRUE(store.save("db", snap("x", "")));

    // A new store over the same directory: what a restarted daemon sees.
    SnapshotStore again(dir.path() / "snapshot");
    auto web = again.load("web");
    EXPECT_TRUE(web.skipped.empty());
    ASSERT_EQ(web.snapshots.size(), 3u);
    EXPECT_EQ(web.current, "b");
    EXPECT_EQ(web.snapshots.at("b").state, "running");
    EXPECT_EQ(web.snapshots.at("b").memory, "internal");
    EXPECT_EQ(web.tree().children("a"), (std::vector<std::string>{"b", "c"}));
    EXPECT_TRUE(fs::exists(dir.path() / "snapshot" / "web" / "b.xml"));
    EXPECT_EQ(again.load("db").snapshots.size(), 1u);
    EXPECT_TRUE(again.load("other").snapshots.empty());
    EXPECT_TRUE(again.has_any("web"));
    EXPECT_FALSE(again.has_any("other"));

    auto missing = web.find("nope");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::NotFound);
    EXPECT_NE(missing.error().message.find("no domain snapshot with matching name 'nope'"), std::string::npos);
}

TEST(SnapshotStore, CurrentMarkerOfAMissingSnapshotMeansNone) {
    test::TempDir dir;
    SnapshotStore store(dir.path());
    ASSERT_TRUE(store.save("web", snap("a", "")));
    ASSERT_TRUE(store.set_current("web", "a"));
    ASSERT_TRUE(store.remove("web", "a"));
    EXPECT_EQ(store.load("web").current, "");
    ASSERT_TRUE(store.save("web", snap("a", "")));
    ASSERT_TRUE(store.set_current("web", ""));
    EXPECT_EQ(store.load("web").current, "");
}

TEST(SnapshotStore, BadFilesAreSkippedAndLeftInPlace) {
    test::TempDir dir;
    SnapshotStore store(dir.path());
    ASSERT_TRUE(store.save("web", snap("good", "")));
    std::ofstream(dir.path() / "web" / "torn.xml") << "<domainsnapshot><name>torn</na";
    std::ofstream(dir.path() / "web" / "renamed.xml") << "<domainsnapshot><name>other</name><state>shutoff</state></domainsnapshot>";
    auto web = store.load("web");
    EXPECT_EQ(web.snapshots.size(), 1u);
    ASSERT_EQ(web.skipped.size(), 2u);
    EXPECT_NE(web.skipped[0].find("named 'other'"), std::string::npos) << web.skipped[0];
    EXPECT_TRUE(fs::exists(dir.path() / "web" / "torn.xml"));
    // remove_all refuses rather than leaving files it cannot account for.
    EXPECT_FALSE(store.remove_all("web"));
}

TEST(SnapshotStore, RemoveAllLeavesNothing) {
    test::TempDir dir;
    SnapshotStore store(dir.path());
    ASSERT_TRUE(store.save("web", snap("a", "")));
    ASSERT_TRUE(store.save("web", snap("b", "a")));
    ASSERT_TRUE(store.set_current("web", "b"));
    ASSERT_TRUE(store.remove_all("web"));
    EXPECT_FALSE(fs::exists(dir.path() / "web"));
    EXPECT_FALSE(store.has_any("web"));
}

TEST(SnapshotStore, NamesThatAreNotOneFileAreRefused) {
    test::TempDir dir;
    SnapshotStore store(dir.path());
    EXPECT_FALSE(store.save("web", snap("../x", "")));
    EXPECT_FALSE(store.save("web", snap(".hidden", "")));
    EXPECT_TRUE(store.load("../etc").snapshots.empty());
}
