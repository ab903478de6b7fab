// fs and disk pools on loop devices made by the test: pool-build runs mkfs /
// writes a partition table, start mounts, volumes live in the filesystem or
// are partitions. Skipped (with the reason) where loop devices are not allowed.
#include <unistd.h>

#include <fstream>
#include <regex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "loop_device.hpp"
#include "pool/pool_manager.hpp"
#include "support/support.hpp"

namespace vireo::pool {
namespace {

using test::TempDir;
using test_support::LoopDevice;
using test_support::MountGuard;

std::unique_ptr<PoolManager> open_manager(const TempDir& dir) {
    PoolManagerConfig cfg;
    cfg.confdir = dir / "conf";
    cfg.rundir = dir / "run";
    auto m = PoolManager::open(cfg);
    EXPECT_TRUE(m) << m.error().full_message();
    return m ? std::move(*m) : nullptr;
}

std::string blkid(const std::string& dev, const std::string& tag) {
    auto r = test::run({"blkid", "-p", "-o", "value", "-s", tag, dev});
    return r.out.substr(0, r.out.find('\n'));
}

std::string vol_xml(const std::string& name, std::uint64_t capacity, const std::string& format) {
    return "<volume><name>" + name + "</name><capacity>" + std::to_string(capacity) + "</capacity><target><format type='" +
           format + "'/></target></volume>";
}

TEST(FsPool, BuildMountsVolumesUnmountAndDelete) {
    if (::geteuid() != 0) VIREO_SKIP("fs pools need root (losetup, mkfs, mount)");
    TempDir dir;
    LoopDevice loop(dir / "fs.img", 64 << 20, false);
    if (!loop.ok()) VIREO_SKIP(loop.why());
    const auto target = dir / "mnt";
    MountGuard guard(target);
    auto m = open_manager(dir);
    const std::string xml = "<pool type='fs'><name>fsp</name><source><device path='" + loop.device() +
                            "'/><format type='ext4'/></source><target><path>" + target.string() + "</path></target></pool>";
    ASSERT_TRUE(m->define_pool(xml));
    auto unbuilt = m->start_pool("fsp", false, {});
    ASSERT_FALSE(unbuilt);
    ASSERT_TRUE(m->build_pool("fsp", {})) << "pool-build runs mkfs.ext4";
    EXPECT_EQ(blkid(loop.device(), "TYPE"), "ext4");
    ASSERT_TRUE(m->start_pool("fsp", false, {}));
    EXPECT_EQ(test::run({"mountpoint", "-q", target.string()}).exit_code, 0) << "started fs pool is mounted";
    auto info = m->lookup_pool("fsp");
    ASSERT_TRUE(info);
    EXPECT_GT(info->capacity, 50u << 20);
    EXPECT_LT(info->capacity, 70u << 20) << "capacity is the filesystem's, not the host's";

    auto v = m->create_volume("fsp", vol_xml("disk.qcow2", 1 << 30, "qcow2"), {});
    ASSERT_TRUE(v) << v.error().full_message();
    EXPECT_EQ(v->path, (target / "disk.qcow2").string());
    EXPECT_EQ(test::run({"qemu-img", "check", v->path}).exit_code, 0);
    // a preallocated volume larger than the filesystem is refused
    auto big = m->create_volume("fsp", "<volume><name>big.img</name><capacity unit='M'>200</capacity>"
                                       "<allocation unit='M'>200</allocation></volume>", {});
    ASSERT_FALSE(big);
    EXPECT_NE(big.error().full_message().find("not enough space"), std::string::npos) << big.error().full_message();

    ASSERT_TRUE(m->destroy_pool("fsp"));
    EXPECT_NE(test::run({"mountpoint", "-q", target.string()}).exit_code, 0) << "destroy unmounts";
    auto rebuild = m->build_pool("fsp", {.no_overwrite = true});
    ASSERT_FALSE(rebuild) << "--no-overwrite refuses a device that has a filesystem";
    EXPECT_NE(rebuild.error().full_message().find("--overwrite"), std::string::npos) << rebuild.error().full_message();
    ASSERT_TRUE(m->build_pool("fsp", {})) << "plain build keeps an ext4 filesystem";

    ASSERT_TRUE(m->start_pool("fsp", false, {}));
    auto again = m->lookup_volume("fsp", "disk.qcow2");
    EXPECT_TRUE(again) << "the volume is still there after a remount";
    ASSERT_TRUE(m->destroy_pool("fsp"));
    ASSERT_TRUE(m->start_pool("fsp", true, {.overwrite = true})) << "--overwrite formats";
    EXPECT_FALSE(m->lookup_volume("fsp", "disk.qcow2")) << "a fresh filesystem has no volumes";
    ASSERT_TRUE(m->destroy_pool("fsp"));
    ASSERT_TRUE(m->delete_pool("fsp"));
    EXPECT_EQ(blkid(loop.device(), "TYPE"), "") << "pool-delete wipes the filesystem signature";
    EXPECT_FALSE(std::filesystem::exists(target)) << "pool-delete removes the empty mount point";
    ASSERT_TRUE(m->undefine_pool("fsp"));
}

TEST(FsPool, ImageFileSourceSurvivesRestart) {
    if (::geteuid() != 0) VIREO_SKIP("fs pools need root (mkfs, mount)");
    TempDir dir;
    const auto image = dir / "fs.img";
    std::ofstream(image).close();
    std::filesystem::resize_file(image, 32 << 20);
    const auto target = dir / "mnt";
    MountGuard guard(target);
    const std::string xml = "<pool type='fs'><name>img</name><source><device path='" + image.string() +
                            "'/><format type='ext4'/></source><target><path>" + target.string() + "</path></target></pool>";
    {
        auto m = open_manager(dir);
        auto made = m->create_pool(xml, true, {});
        ASSERT_TRUE(made) << made.error().full_message();
        if (test::run({"mountpoint", "-q", target.string()}).exit_code != 0) VIREO_SKIP("loop mounts are not possible here");
        ASSERT_TRUE(m->create_volume("img", vol_xml("a.img", 1 << 20, "raw"), {}));
    }
    // a new manager (daemon restart) finds the running transient pool and its volume
    auto m = open_manager(dir);
    auto p = m->lookup_pool("img");
    ASSERT_TRUE(p) << "active pools are recorded in the rundir";
    EXPECT_EQ(p->state, driver::PoolState::Running);
    EXPECT_TRUE(m->lookup_volume("img", "a.img"));
    ASSERT_TRUE(m->destroy_pool("img"));
    EXPECT_NE(test::run({"mountpoint", "-q", target.string()}).exit_code, 0);
    EXPECT_FALSE(m->lookup_pool("img")) << "a destroyed transient pool is gone";
}

// A started gpt disk pool "dp" on a fresh 64 MiB loop device with partition
// scanning. SetUp skips (with the reason) where that is impossible; TearDown
// stops and undefines the pool and detaches the loop device even when the
// test failed half-way.
class DiskPool : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) VIREO_SKIP("disk pools need root (losetup, parted)");
        if (test::which("parted").empty() && !std::filesystem::exists("/usr/sbin/parted")) VIREO_SKIP("parted is not installed");
        dir_ = std::make_unique<TempDir>();
        loop_ = std::make_unique<LoopDevice>(*dir_ / "disk.img", 64 << 20, true);
        if (!loop_->ok()) VIREO_SKIP(loop_->why());
        manager_ = open_manager(*dir_);
        ASSERT_NE(manager_, nullptr);
        const std::string xml = "<pool type='disk'><name>dp</name><source><device path='" + loop_->device() +
                                "'/><format type='gpt'/></source><target><path>/dev</path></target></pool>";
        ASSERT_TRUE(manager_->define_pool(xml));
        ASSERT_TRUE(manager_->start_pool("dp", true, {})) << "pool-start --build writes the label";
    }

    void TearDown() override {
        if (manager_) {
            // Best effort: the test may have stopped or undefined the pool already.
            auto pool = manager_->lookup_pool("dp");
            if (pool && pool->state != driver::PoolState::Inactive) (void)manager_->destroy_pool("dp");
            if (manager_->lookup_pool("dp")) (void)manager_->undefine_pool("dp");
        }
        // Reverse order of SetUp: the manager before its loop device, the loop
        // device before the directory holding its image.
        manager_.reset();
        loop_.reset();
        dir_.reset();
    }

    PoolManager& m() { return *manager_; }
    const LoopDevice& loop() const { return *loop_; }
    const TempDir& dir() const { return *dir_; }

private:
    std::unique_ptr<TempDir> dir_;
    std::unique_ptr<LoopDevice> loop_;
    std::unique_ptr<PoolManager> manager_;
};

TEST_F(DiskPool, PartitionsAsVolumes) {
    EXPECT_EQ(blkid(loop().device(), "PTTYPE"), "gpt");

    const std::string p1 = loop().name() + "p1";
    auto wrong = m().create_volume("dp", vol_xml("data", 16 << 20, "none"), {});
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().full_message().find("'" + p1 + "'"), std::string::npos) << wrong.error().full_message();
    auto v = m().create_volume("dp", vol_xml(p1, 16 << 20, "none"), {});
    ASSERT_TRUE(v) << v.error().full_message();
    EXPECT_EQ(v->path, "/dev/" + p1);
    EXPECT_EQ(v->type, driver::VolumeType::Block);
    EXPECT_EQ(v->capacity, 16u << 20);
    auto too_big = m().create_volume("dp", vol_xml(loop().name() + "p2", 100 << 20, "none"), {});
    ASSERT_FALSE(too_big);

    // bytes written through the pool land in the partition
    std::string payload(8192, 'x');
    bool sent = false;
    auto up = m().upload_volume("dp", p1, {.offset = 4096}, [&]() -> Result<driver::StreamChunk> {
        if (sent) return driver::StreamChunk{};
        sent = true;
        return driver::StreamChunk{false, payload.size(), std::span<const char>(payload.data(), payload.size())};
    });
    ASSERT_TRUE(up) << up.error().full_message();
    std::string back;
    auto down = m().download_volume("dp", p1, {.offset = 4096, .length = 8192}, [&](const driver::StreamChunk& c) -> Status {
        back.append(c.data.data(), c.data.size());
        return {};
    });
    ASSERT_TRUE(down) << down.error().full_message();
    EXPECT_EQ(back, payload);

    auto list = m().list_volumes("dp");
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 1u);
    EXPECT_EQ((*list)[0].name, p1);
    ASSERT_TRUE(m().delete_volume("dp", p1));
    ASSERT_TRUE(m().refresh_pool("dp"));
    EXPECT_TRUE(m().list_volumes("dp")->empty());
    ASSERT_TRUE(m().destroy_pool("dp"));
    ASSERT_TRUE(m().delete_pool("dp"));
    EXPECT_EQ(blkid(loop().device(), "PTTYPE"), "") << "pool-delete removes the partition table";
}

// The free ranges of the disk as parted lists them, [start, end) in bytes.
std::vector<std::pair<std::uint64_t, std::uint64_t>> free_extents_of(const std::string& xml) {
    static const std::regex extent("<freeExtent start='([0-9]+)' end='([0-9]+)'");
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    for (auto it = std::sregex_iterator(xml.begin(), xml.end(), extent); it != std::sregex_iterator(); ++it)
        out.emplace_back(std::stoull((*it)[1]), std::stoull((*it)[2]));
    return out;
}

TEST_F(DiskPool, DumpXmlListsFreeExtents) {
    auto empty = m().pool_xml("dp", false);
    ASSERT_TRUE(empty);
    auto all_free = free_extents_of(*empty);
    ASSERT_FALSE(all_free.empty()) << *empty;
    EXPECT_GE(all_free.back().second - all_free.back().first, 60u << 20) << "an empty disk is (nearly) all free:\n" << *empty;

    const std::string p1 = loop().name() + "p1";
    ASSERT_TRUE(m().create_volume("dp", vol_xml(p1, 16 << 20, "none"), {}));
    auto dumped = m().pool_xml("dp", false);
    ASSERT_TRUE(dumped);
    auto extents = free_extents_of(*dumped);
    ASSERT_FALSE(extents.empty()) << *dumped;
    // The partition (first aligned MiB, 16 MiB long) is in no free extent;
    // the free space after it is one extent up to the backup GPT.
    const std::uint64_t part_start = 1 << 20, part_end = 17 << 20;
    for (const auto& [start, end] : extents) {
        EXPECT_LT(start, end);
        EXPECT_TRUE(end <= part_start || start >= part_end) << start << "-" << end << " overlaps the partition";
    }
    EXPECT_EQ(extents.back().first, part_end) << *dumped;
    EXPECT_GT(extents.back().second, 63u << 20) << *dumped;
    EXPECT_LE(extents.back().second, 64u << 20) << *dumped;
    EXPECT_NE(dumped->find("<device path='" + loop().device() + "'>"), std::string::npos) << *dumped;

    if (!test::which("virt-xml-validate").empty()) {
        std::ofstream(dir() / "pool.xml") << *dumped;
        auto r = test::run({"virt-xml-validate", (dir() / "pool.xml").string(), "storagepool"});
        EXPECT_EQ(r.exit_code, 0) << *dumped << r.out << r.err;
    }
    // What pool-dumpxml shows defines the same pool again (the extents are live figures).
    ASSERT_TRUE(m().destroy_pool("dp"));
    ASSERT_TRUE(m().undefine_pool("dp"));
    auto again = m().define_pool(*dumped);
    EXPECT_TRUE(again) << again.error().full_message();
    auto inactive = m().pool_xml("dp", true);
    ASSERT_TRUE(inactive);
    EXPECT_EQ(inactive->find("freeExtent"), std::string::npos) << *inactive;
}

}  // namespace
}  // namespace vireo::pool
