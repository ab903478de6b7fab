// PoolManager's persistence through the shared ObjectStore: the on-disk
// layout an older daemon wrote is found, bad files are skipped and kept,
// and an autostart pool never loses its link while autostart is re-enabled.
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "pool/pool_manager.hpp"
#include "support/support.hpp"

namespace vireo::pool {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

std::string dir_pool_xml(const std::string& name, const fs::path& target,
                         const std::string& uuid = "8f1e4c6a-3b2d-4e5f-9a0b-1c2d3e4f5a6b") {
    return "<pool type='dir'><name>" + name + "</name><uuid>" + uuid + "</uuid><target><path>" + target.string() +
           "</path></target></pool>";
}

std::unique_ptr<PoolManager> open_manager(const TempDir& dir) {
    PoolManagerConfig cfg;
    cfg.confdir = dir / "storage";
    cfg.rundir = dir / "run";
    auto m = PoolManager::open(cfg);
    EXPECT_TRUE(m) << m.error().full_message();
    return m ? std::move(*m) : nullptr;
}

void write_file(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary);
    out << text;
}

TEST(PoolStore, AutostartLinkNeverMissingWhileItStaysEnabled) {
    TempDir dir;
    auto m = open_manager(dir);
    ASSERT_TRUE(m);
    ASSERT_TRUE(m->define_pool(dir_pool_xml("p", dir / "p")));
    ASSERT_TRUE(m->set_pool_autostart("p", true));
    const fs::path link = dir / "storage" / "autostart" / "p.xml";
    ASSERT_TRUE(fs::is_symlink(link));

    std::atomic<bool> stop{false};
    std::atomic<long> checks{0}, missing{0};
    std::thread reader([&] {
        char buf[256];
        while (!stop.load()) {
            if (::readlink(link.c_str(), buf, sizeof buf) < 0) ++missing;
            ++checks;
        }
    });
    for (int i = 0; i < 300; ++i) ASSERT_TRUE(m->set_pool_autostart("p", true));  // enable -> enable
    stop = true;
    reader.join();
    EXPECT_GT(checks.load(), 0);
    EXPECT_EQ(missing.load(), 0) << "the autostart link was absent " << missing << " times in " << checks << " checks";
    EXPECT_EQ(fs::read_symlink(link), fs::path("../p.xml"));

    ASSERT_TRUE(m->set_pool_autostart("p", false));
    EXPECT_FALSE(fs::is_symlink(link));
    auto s = m->lookup_pool("p");
    ASSERT_TRUE(s);
    EXPECT_FALSE(s->autostart);
}

TEST(PoolStore, FindsTheLayoutAnOlderDaemonWrote) {
    TempDir dir;
    fs::create_directories(dir / "storage" / "autostart");
    write_file(dir / "storage" / "old.xml", dir_pool_xml("old", dir / "old"));
    fs::create_symlink("../old.xml", dir / "storage" / "autostart" / "old.xml");
    fs::create_directories(dir / "old");
    auto m = open_manager(dir);
    ASSERT_TRUE(m);
    auto s = m->lookup_pool("old");
    ASSERT_TRUE(s) << s.error().full_message();
    EXPECT_TRUE(s->persistent);
    EXPECT_TRUE(s->autostart);
    EXPECT_EQ(s->state, driver::PoolState::Running);  // autostarted
    EXPECT_TRUE(fs::exists(dir / "run" / "old.xml"));  // its state, where it always was

    ASSERT_TRUE(m->destroy_pool("old"));
    EXPECT_FALSE(fs::exists(dir / "run" / "old.xml"));
    ASSERT_TRUE(m->undefine_pool("old"));
    EXPECT_FALSE(fs::exists(dir / "storage" / "old.xml"));
    EXPECT_FALSE(fs::is_symlink(dir / "storage" / "autostart" / "old.xml"));
}

TEST(PoolStore, BadFilesAreSkippedAndKept) {
    TempDir dir;
    fs::create_directories(dir / "storage");
    write_file(dir / "storage" / "good.xml", dir_pool_xml("good", dir / "good"));
    write_file(dir / "storage" / "torn.xml", dir_pool_xml("torn", dir / "torn").substr(0, 30));
    write_file(dir / "storage" / "alias.xml",
               dir_pool_xml("real", dir / "real", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"));
    auto m = open_manager(dir);
    ASSERT_TRUE(m);
    auto list = m->list_pools();
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 1u);
    EXPECT_EQ((*list)[0].name, "good");
    EXPECT_TRUE(fs::exists(dir / "storage" / "torn.xml"));
    EXPECT_TRUE(fs::exists(dir / "storage" / "alias.xml"));
}

TEST(PoolStore, DefinitionsRoundTripThroughARestart) {
    TempDir dir;
    {
        auto m = open_manager(dir);
        ASSERT_TRUE(m);
        ASSERT_TRUE(m->define_pool(dir_pool_xml("keep", dir / "keep")));
        ASSERT_TRUE(m->set_pool_autostart("keep", true));
        ASSERT_TRUE(m->set_pool_autostart("keep", false));
        ASSERT_TRUE(m->set_pool_autostart("keep", true));
    }
    fs::create_directories(dir / "keep");
    auto m = open_manager(dir);
    ASSERT_TRUE(m);
    auto s = m->lookup_pool("keep");
    ASSERT_TRUE(s) << s.error().full_message();
    EXPECT_TRUE(s->autostart);
    EXPECT_EQ(s->state, driver::PoolState::Running);
}

}  // namespace
}  // namespace vireo::pool
