// Volume contents in a dir pool: clone with format conversion (sparse),
// upload / download with offsets and holes, wipe, resize. qemu-img is the
// oracle: `qemu-img compare` / `info` / `check` on what the pool made.
#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "pool/pool_manager.hpp"
#include "support/support.hpp"

namespace vireo::pool {
namespace {

using test::TempDir;

class DirVolumes : public ::testing::Test {
protected:
    void SetUp() override {
        PoolManagerConfig cfg;
        cfg.default_pool_path = dir_ / "pool";
        auto m = PoolManager::open(cfg);
        ASSERT_TRUE(m) << m.error().full_message();
        mgr_ = std::move(*m);
    }
    std::filesystem::path path(const std::string& vol) const { return dir_ / "pool" / vol; }
    static std::string xml(const std::string& name, std::uint64_t capacity, const std::string& format) {
        return "<volume><name>" + name + "</name><capacity>" + std::to_string(capacity) +
               "</capacity><target><format type='" + format + "'/></target></volume>";
    }
    static nlohmann::json info(const std::filesystem::path& p) {
        auto r = test::run({"qemu-img", "info", "--output=json", "-U", p.string()});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return nlohmann::json::parse(r.out.empty() ? "{}" : r.out);
    }
    static void qemu_io(const std::filesystem::path& p, const std::string& fmt, const std::string& cmd) {
        auto r = test::run({"qemu-io", "-f", fmt, "-c", cmd, p.string()});
        ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    }
    static std::uint64_t allocated(const std::filesystem::path& p) {
        struct stat st{};
        ::stat(p.c_str(), &st);
        return static_cast<std::uint64_t>(st.st_blocks) * 512;
    }
    Status upload(const std::string& vol, driver::TransferRange range, const std::vector<driver::StreamChunk>& chunks) {
        std::size_t i = 0;
        return mgr_->upload_volume("default", vol, range, [&]() -> Result<driver::StreamChunk> {
            if (i == chunks.size()) return driver::StreamChunk{};
            return chunks[i++];
        });
    }

    TempDir dir_;
    std::unique_ptr<PoolManager> mgr_;
};

TEST_F(DirVolumes, CloneConvertsFormatAndKeepsHoles) {
    const std::uint64_t size = 64 << 20;
    ASSERT_TRUE(mgr_->create_volume("default", xml("base.qcow2", size, "qcow2"), {}));
    qemu_io(path("base.qcow2"), "qcow2", "write -P 0x5a 1M 2M");
    qemu_io(path("base.qcow2"), "qcow2", "write -P 0x33 40M 64k");
    ASSERT_TRUE(mgr_->refresh_pool("default"));

    auto raw = mgr_->create_volume_from("default", xml("copy.img", size, "raw"), "default", "base.qcow2", {});
    ASSERT_TRUE(raw) << raw.error().full_message();
    EXPECT_EQ(info(path("copy.img"))["format"], "raw");
    auto cmp = test::run({"qemu-img", "compare", "-f", "qcow2", "-F", "raw", path("base.qcow2").string(), path("copy.img").string()});
    EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
    EXPECT_LT(allocated(path("copy.img")), 8u << 20) << "zeros are not written: the raw copy stays sparse";

    // vol-clone: same format as the source
    auto clone = mgr_->create_volume_from("default", "<volume><name>clone.qcow2</name><capacity>0</capacity></volume>",
                                          "default", "base.qcow2", {});
    ASSERT_TRUE(clone) << clone.error().full_message();
    EXPECT_EQ(clone->format, "qcow2");
    EXPECT_EQ(clone->capacity, size);
    EXPECT_EQ(test::run({"qemu-img", "check", path("clone.qcow2").string()}).exit_code, 0);
    cmp = test::run({"qemu-img", "compare", path("base.qcow2").string(), path("clone.qcow2").string()});
    EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
}

TEST_F(DirVolumes, CloneOfOverlayFlattensBackingChain) {
    ASSERT_TRUE(mgr_->create_volume("default", xml("base.qcow2", 16 << 20, "qcow2"), {}));
    qemu_io(path("base.qcow2"), "qcow2", "write -P 0x11 0 1M");
    ASSERT_TRUE(mgr_->create_volume("default",
                                    "<volume><name>top.qcow2</name><target><format type='qcow2'/></target>"
                                    "<backingStore><path>base.qcow2</path></backingStore></volume>",
                                    {}));
    qemu_io(path("top.qcow2"), "qcow2", "write -P 0x22 8M 1M");
    auto flat = mgr_->create_volume_from("default", xml("flat.qcow2", 16 << 20, "qcow2"), "default", "top.qcow2", {});
    ASSERT_TRUE(flat) << flat.error().full_message();
    EXPECT_FALSE(info(path("flat.qcow2")).contains("backing-filename")) << "a clone is standalone";
    auto cmp = test::run({"qemu-img", "compare", path("top.qcow2").string(), path("flat.qcow2").string()});
    EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
}

TEST_F(DirVolumes, UploadDownloadWithOffsetsAndHoles) {
    const std::uint64_t size = 32 << 20;
    ASSERT_TRUE(mgr_->create_volume("default", xml("u.qcow2", size, "qcow2"), {}));
    std::string a(1 << 20, 'a'), b(65536, 'b');
    auto st = upload("u.qcow2", {.offset = 1 << 20, .sparse = true},
                     {{false, a.size(), std::span<const char>(a.data(), a.size())},
                      {true, 4u << 20, {}},
                      {false, b.size(), std::span<const char>(b.data(), b.size())}});
    ASSERT_TRUE(st) << st.error().full_message();
    auto r = test::run({"qemu-io", "-f", "qcow2", "-c", "read -P 0x61 1M 1M", "-c", "read -P 0 2M 4M", "-c",
                        "read -P 0x62 6M 64k", path("u.qcow2").string()});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out.find("Pattern verification failed"), std::string::npos) << r.out;

    std::uint64_t holes = 0, data = 0;
    std::string bytes;
    auto down = mgr_->download_volume("default", "u.qcow2", {.offset = 0, .length = 8 << 20, .sparse = true},
                                      [&](const driver::StreamChunk& c) -> Status {
                                          if (c.hole) {
                                              holes += c.length;
                                              bytes.append(c.length, '\0');
                                          } else {
                                              data += c.length;
                                              bytes.append(c.data.data(), c.data.size());
                                          }
                                          return {};
                                      });
    ASSERT_TRUE(down) << down.error().full_message();
    ASSERT_EQ(bytes.size(), 8u << 20);
    EXPECT_EQ(bytes.substr(1 << 20, a.size()), a);
    EXPECT_EQ(bytes.substr(6 << 20, b.size()), b);
    EXPECT_EQ(data, a.size() + b.size()) << "only allocated data travels as data";
    EXPECT_EQ(holes, (8u << 20) - data);

    auto past_end = upload("u.qcow2", {.offset = size - 10}, {{false, a.size(), std::span<const char>(a.data(), a.size())}});
    ASSERT_FALSE(past_end);
    EXPECT_NE(past_end.error().full_message().find("larger than"), std::string::npos) << past_end.error().full_message();
}

TEST_F(DirVolumes, NonSparseUploadOfZerosStaysSparse) {
    ASSERT_TRUE(mgr_->create_volume("default", xml("z.img", 16 << 20, "raw"), {}));
    std::string zeros(4 << 20, '\0');
    ASSERT_TRUE(upload("z.img", {}, {{false, zeros.size(), std::span<const char>(zeros.data(), zeros.size())}}));
    EXPECT_EQ(allocated(path("z.img")), 0u);
}

TEST_F(DirVolumes, WipeAlgorithms) {
    ASSERT_TRUE(mgr_->create_volume("default", xml("w.qcow2", 8 << 20, "qcow2"), {}));
    ASSERT_TRUE(mgr_->create_volume("default", xml("w.img", 8 << 20, "raw"), {}));
    qemu_io(path("w.qcow2"), "qcow2", "write -P 0x77 0 8M");
    qemu_io(path("w.img"), "raw", "write -P 0x77 0 8M");
    ASSERT_TRUE(mgr_->wipe_volume("default", "w.qcow2", driver::WipeAlgorithm::Zero));
    ASSERT_TRUE(mgr_->wipe_volume("default", "w.img", driver::WipeAlgorithm::Trim));
    for (auto [vol, fmt] : {std::pair{"w.qcow2", "qcow2"}, std::pair{"w.img", "raw"}}) {
        auto r = test::run({"qemu-io", "-f", fmt, "-c", "read -P 0 0 8M", path(vol).string()});
        EXPECT_EQ(r.out.find("Pattern verification failed"), std::string::npos) << vol << ": " << r.out;
    }
    EXPECT_EQ(test::run({"qemu-img", "check", path("w.qcow2").string()}).exit_code, 0) << "wipe keeps a valid qcow2";
    ASSERT_TRUE(mgr_->wipe_volume("default", "w.img", driver::WipeAlgorithm::Random));
    auto r = test::run({"qemu-io", "-f", "raw", "-c", "read -P 0 0 64k", path("w.img").string()});
    EXPECT_NE(r.out.find("Pattern verification failed"), std::string::npos) << "random wipe leaves non-zero data";
}

TEST_F(DirVolumes, ResizeDeltaShrinkAllocate) {
    ASSERT_TRUE(mgr_->create_volume("default", xml("r.qcow2", 16 << 20, "qcow2"), {}));
    ASSERT_TRUE(mgr_->resize_volume("default", "r.qcow2", 16 << 20, {.delta = true}));
    EXPECT_EQ(info(path("r.qcow2"))["virtual-size"], 32u << 20);
    auto shrink = mgr_->resize_volume("default", "r.qcow2", 8 << 20, {});
    ASSERT_FALSE(shrink);
    EXPECT_NE(shrink.error().full_message().find("--shrink"), std::string::npos) << shrink.error().full_message();
    ASSERT_TRUE(mgr_->create_volume("default", xml("r.img", 1 << 20, "raw"), {}));
    ASSERT_TRUE(mgr_->resize_volume("default", "r.img", 4 << 20, {.allocate = true}));
    EXPECT_EQ(info(path("r.img"))["virtual-size"], 4u << 20);
    EXPECT_GE(allocated(path("r.img")), 3u << 20) << "--allocate allocates the new space";
    ASSERT_TRUE(mgr_->resize_volume("default", "r.img", 2 << 20, {.shrink = true}));
    auto v = mgr_->lookup_volume("default", "r.img");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->capacity, 2u << 20);
    auto huge = mgr_->resize_volume("default", "r.img", 1ull << 50, {.allocate = true});
    ASSERT_FALSE(huge) << "allocating more than the pool has is refused";
}

TEST_F(DirVolumes, PreallocatedVolumeThatDoesNotFitIsRefused) {
    auto r = mgr_->create_volume("default",
                                 "<volume><name>huge.img</name><capacity unit='P'>1</capacity>"
                                 "<allocation unit='P'>1</allocation></volume>", {});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().full_message().find("not enough space"), std::string::npos) << r.error().full_message();
    EXPECT_FALSE(std::filesystem::exists(path("huge.img")));
    auto sparse = mgr_->create_volume("default", "<volume><name>sparse.img</name><capacity unit='T'>1</capacity></volume>", {});
    EXPECT_TRUE(sparse) << "a sparse volume may be larger than the free space, as libvirt";
}

TEST_F(DirVolumes, ListDoesNotWaitBehindAnUpload) {
    ASSERT_TRUE(mgr_->create_volume("default", xml("slow.img", 1 << 20, "raw"), {}));
    std::mutex mu;
    std::condition_variable cv;
    bool in_upload = false, release = false;
    std::string data(4096, 'q');
    std::thread uploader([&] {
        int calls = 0;
        auto st = mgr_->upload_volume("default", "slow.img", {}, [&]() -> Result<driver::StreamChunk> {
            if (calls++ > 0) return driver::StreamChunk{};
            std::unique_lock lk(mu);
            in_upload = true;
            cv.notify_all();
            cv.wait(lk, [&] { return release; });
            return driver::StreamChunk{false, data.size(), std::span<const char>(data.data(), data.size())};
        });
        EXPECT_TRUE(st) << st.error().full_message();
    });
    {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return in_upload; });
    }
    // the upload is parked inside the transfer: these must answer now
    auto list = mgr_->list_volumes("default");
    EXPECT_TRUE(list);
    EXPECT_TRUE(mgr_->list_pools());
    EXPECT_TRUE(mgr_->create_volume("default", xml("other.img", 4096, "raw"), {}));
    auto busy = mgr_->delete_volume("default", "slow.img");
    EXPECT_FALSE(busy) << "a volume being written cannot be deleted";
    auto destroy = mgr_->destroy_pool("default");
    EXPECT_FALSE(destroy) << "a pool with a transfer in progress cannot be destroyed";
    {
        std::lock_guard lk(mu);
        release = true;
    }
    cv.notify_all();
    uploader.join();
    EXPECT_TRUE(mgr_->delete_volume("default", "slow.img"));
}

TEST_F(DirVolumes, PreallocationAsAsked) {
    auto meta = mgr_->create_volume("default", xml("m.qcow2", 64 << 20, "qcow2"), {.prealloc_metadata = true});
    ASSERT_TRUE(meta) << meta.error().full_message();
    EXPECT_EQ(test::run({"qemu-img", "check", path("m.qcow2").string()}).exit_code, 0);
    auto map = test::run({"qemu-img", "map", "--output=json", path("m.qcow2").string()});
    EXPECT_NE(map.out.find("\"data\": true"), std::string::npos) << "metadata preallocation maps the clusters: " << map.out;
    auto raw_meta = mgr_->create_volume("default", xml("m.img", 1 << 20, "raw"), {.prealloc_metadata = true});
    ASSERT_FALSE(raw_meta) << "metadata preallocation of a raw volume is refused, not ignored";
    auto full = mgr_->create_volume("default",
                                    "<volume><name>f.img</name><capacity unit='MiB'>8</capacity>"
                                    "<allocation unit='MiB'>8</allocation></volume>", {});
    ASSERT_TRUE(full) << full.error().full_message();
    EXPECT_GE(allocated(path("f.img")), 8u << 20) << "allocation == capacity allocates the file";
    EXPECT_EQ(full->format, "raw") << "raw is the dir pool's default format";
}

TEST_F(DirVolumes, ConcurrentCreateDeleteAndList) {
    std::vector<std::thread> workers;
    std::atomic<int> failures{0};
    for (int t = 0; t < 4; ++t)
        workers.emplace_back([&, t] {
            for (int i = 0; i < 15; ++i) {
                const std::string name = "t" + std::to_string(t) + "-" + std::to_string(i) + ".qcow2";
                if (!mgr_->create_volume("default", xml(name, 1 << 20, "qcow2"), {})) ++failures;
                if (!mgr_->list_volumes("default")) ++failures;
                if (!mgr_->delete_volume("default", name)) ++failures;
            }
        });
    for (int i = 0; i < 20; ++i) {
        EXPECT_TRUE(mgr_->list_pools());
        EXPECT_TRUE(mgr_->refresh_pool("default"));
    }
    for (auto& w : workers) w.join();
    EXPECT_EQ(failures, 0);
    EXPECT_TRUE(mgr_->list_volumes("default")->empty());
}

}  // namespace
}  // namespace vireo::pool
