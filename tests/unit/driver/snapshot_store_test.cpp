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

// The record of a snapshot being taken: invisible to load() until
// committed, found again by a restarted daemon, gone with remove_all.
TEST(SnapshotStore, PendingRecordIsListedOnlyOnceCommitted) {
    test::TempDir dir;
    SnapshotStore store(dir.path());
    ASSERT_TRUE(store.save("web", snap("a", "")));
    ASSERT_TRUE(store.set_current("web", "a"));
    ASSERT_TRUE(store.save_pending("web", snap("b", "a", "running")));
    ASSERT_TRUE(store.save_pending("web", snap("c", "a")));

    SnapshotStore again(dir.path());
    auto loaded = again.load("web");
    EXPECT_EQ(loaded.snapshots.size(), 1u) << "a pending snapshot is not a snapshot yet";
    EXPECT_EQ(loaded.current, "a");
    auto pending = again.pending("web");
    ASSERT_EQ(pending.size(), 2u);
    EXPECT_EQ(pending[0].name, "b");
    EXPECT_EQ(pending[0].parent, "a");
    EXPECT_EQ(pending[0].state, "running");
    EXPECT_EQ(pending[1].name, "c");

    ASSERT_TRUE(again.commit_pending("web", pending[0]));
    ASSERT_TRUE(again.remove_pending("web", "c"));
    EXPECT_TRUE(again.pending("web").empty());
    loaded = again.load("web");
    EXPECT_EQ(loaded.snapshots.size(), 2u);
    EXPECT_EQ(loaded.current, "b");
    EXPECT_EQ(loaded.tree().parent("b"), "a");
    EXPECT_TRUE(again.remove_pending("web", "c")) << "a missing record is fine";

    ASSERT_TRUE(again.save_pending("web", snap("d", "b")));
    ASSERT_TRUE(again.remove_all("web"));
    EXPECT_FALSE(fs::exists(dir.path() / "web"));
}

TEST(SnapshotStore, UnreadablePendingRecordIsSkipped) {
    test::TempDir dir;
    SnapshotStore store(dir.path());
    fs::create_directories(dir.path() / "web");
    std::ofstream(dir.path() / "web" / "x.pending") << "<domainsnapshot><name>y</name></domainsnapshot>";
    std::ofstream(dir.path() / "web" / "z.pending") << "not xml";
    EXPECT_TRUE(store.pending("web").empty());
}
