// Volume work as async jobs on the one copy engine: vol-clone runs
// storage::convert (the engine of vireo-img convert), reports progress to
// its AsyncJob, and an abort through the job handle stops the copy and
// removes the half-made volume. Volumes a QEMU process holds (a running
// guest's disk) are refused by resize, wipe, delete, upload and clone.
#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "cli/img/common.hpp"
#include "pool/pool_manager.hpp"
#include "storage/convert.hpp"
#include "storage/lock.hpp"
#include "support/guest.hpp"
#include "support/support.hpp"

namespace vireo::pool {
namespace {

using namespace std::chrono_literals;
using test::TempDir;

class VolumeJobs : public ::testing::Test {
protected:
    void SetUp() override {
        if (test::which("qemu-img").empty() || test::which("qemu-io").empty()) GTEST_SKIP() << "SKIPPED: qemu-img/qemu-io not installed";
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
    static void qemu_io(const std::filesystem::path& p, const std::string& cmd) {
        auto r = test::run({"qemu-io", "-f", "qcow2", "-c", cmd, p.string()});
        ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    }
    // A sparse qcow2 source volume with `mib` MiB of data in two runs.
    void make_source(const std::string& name, int mib) {
        ASSERT_TRUE(mgr_->create_volume("default", xml(name, 1ULL << 30, "qcow2"), {}));
        qemu_io(path(name), "write -P 0x11 4M " + std::to_string(mib / 2) + "M");
        qemu_io(path(name), "write -P 0x22 600M " + std::to_string(mib - mib / 2) + "M");
        ASSERT_TRUE(mgr_->refresh_pool("default"));
    }
    bool has_volume(const std::string& name) {
        auto vols = mgr_->list_volumes("default");
        if (!vols) return false;
        for (const auto& v : *vols)
            if (v.name == name) return true;
        return false;
    }
    // The first running job of `op` (waiting for it up to `timeout`).
    std::shared_ptr<driver::AsyncJob> wait_job(driver::JobOperation op, std::chrono::milliseconds timeout) {
        auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            for (const auto& j : mgr_->jobs().list())
                if (j.operation == op)
                    if (auto h = mgr_->jobs().find(j.id)) return *h;
            std::this_thread::sleep_for(100us);
        }
        return nullptr;
    }

    TempDir dir_;
    std::unique_ptr<PoolManager> mgr_;
};

// vol-clone aborted through its job handle: the copy stops, the target
// volume is gone (no file, not listed), the job says Cancelled, and the pool
// clones the same source afterwards.
TEST_F(VolumeJobs, CloneAbortedThroughJobLeavesNoTarget) {
    make_source("src.qcow2", 512);
    Result<driver::VolumeSummary> result = std::unexpected(Error{});
    std::thread clone([&] {
        result = mgr_->create_volume_from("default", xml("clone.qcow2", 0, "qcow2"), "default", "src.qcow2", {});
    });
    auto job = wait_job(driver::JobOperation::VolumeClone, 30s);
    ASSERT_NE(job, nullptr) << "no clone job seen";
    EXPECT_EQ(job->info().phase, "copying");
    EXPECT_NE(job->info().object.find("clone.qcow2"), std::string::npos);
    ASSERT_TRUE(job->request_abort());
    clone.join();
    ASSERT_FALSE(result) << "the clone finished before the abort reached it";
    EXPECT_NE(result.error().full_message().find("operation aborted: job 'volume clone' canceled by client"),
              std::string::npos)
        << result.error().full_message();
    EXPECT_EQ(job->info().status, driver::JobStatus::Cancelled);
    EXPECT_LT(job->info().data_processed, job->info().data_total) << "stopped before the end";
    EXPECT_FALSE(std::filesystem::exists(path("clone.qcow2")));
    EXPECT_FALSE(has_volume("clone.qcow2"));
    EXPECT_TRUE(mgr_->jobs().list().empty());

    // The pool stays usable: the same clone runs to the end.
    auto again = mgr_->create_volume_from("default", xml("clone.qcow2", 0, "qcow2"), "default", "src.qcow2", {});
    ASSERT_TRUE(again) << again.error().full_message();
    auto cmp = test::run({"qemu-img", "compare", path("src.qcow2").string(), path("clone.qcow2").string()});
    EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
}

// vireo-img convert and vol-clone run one engine: each goes through
// storage::convert exactly once, and the clone's job reports convert's own
// byte accounting (what a progress callback on storage::convert sees).
TEST_F(VolumeJobs, CloneAndImgConvertRunOneEngine) {
    make_source("src.qcow2", 256);
    const std::string src = path("src.qcow2").string();

    // What the engine reports for this source, called directly.
    std::uint64_t engine_total = 0, engine_done = 0;
    storage::ConvertOptions direct;
    direct.sources = {{src, "qcow2", {}}};
    direct.target = (dir_ / "direct.raw").string();
    direct.progress = [&](std::uint64_t done, std::uint64_t total) {
        engine_done = done;
        engine_total = total;
        return true;
    };
    ASSERT_TRUE(storage::convert(direct));
    EXPECT_EQ(engine_total, 256ULL << 20);
    EXPECT_EQ(engine_done, engine_total);

    // vireo-img convert, in this process: one run of the engine.
    const std::uint64_t before_img = storage::convert_runs();
    std::string out = (dir_ / "img.qcow2").string();
    std::vector<std::string> args{"convert", "-O", "qcow2", src, out};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    EXPECT_EQ(img::cmd_convert(static_cast<int>(argv.size()), argv.data()), 0);
    EXPECT_EQ(storage::convert_runs(), before_img + 1);

    // vol-clone: one run of the same engine, its job fed by the engine's
    // progress callback.
    std::shared_ptr<driver::AsyncJob> job;
    std::atomic<bool> done{false};
    std::thread watch([&] {
        while (!done && !job) job = wait_job(driver::JobOperation::VolumeClone, 10ms);
    });
    const std::uint64_t before_clone = storage::convert_runs();
    auto clone = mgr_->create_volume_from("default", xml("clone.qcow2", 0, "qcow2"), "default", "src.qcow2", {});
    done = true;
    watch.join();
    ASSERT_TRUE(clone) << clone.error().full_message();
    EXPECT_EQ(storage::convert_runs(), before_clone + 1);
    ASSERT_NE(job, nullptr) << "the clone's job was not seen while it ran";
    auto info = job->info();
    EXPECT_EQ(info.status, driver::JobStatus::Completed);
    EXPECT_EQ(info.operation, driver::JobOperation::VolumeClone);
    EXPECT_EQ(info.data_total, engine_total);
    EXPECT_EQ(info.data_processed, engine_total);
    for (const auto& copy : {out, path("clone.qcow2").string()}) {
        auto cmp = test::run({"qemu-img", "compare", src, copy});
        EXPECT_EQ(cmp.exit_code, 0) << copy << ": " << cmp.out << cmp.err;
    }
}

// A volume that a QEMU process holds as a read-write drive (a running
// guest's disk) is refused by resize, wipe, delete, upload and clone with a
// clear error and left as it was; download reads it (as qemu-img -U).
// Once QEMU is gone, the same operations work.
TEST_F(VolumeJobs, VolumeInUseByQemuIsRefused) {
    if (test::which("qemu-system-x86_64").empty()) GTEST_SKIP() << "SKIPPED: qemu-system-x86_64 not installed";
    ASSERT_TRUE(mgr_->create_volume("default", xml("disk.qcow2", 64 << 20, "qcow2"), {}));
    qemu_io(path("disk.qcow2"), "write -P 0x5a 0 1M");
    ASSERT_TRUE(mgr_->refresh_pool("default"));
    auto qemu = test::QemuProcess::start({"qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-nodefaults",
                                          "-no-user-config", "-display", "none", "-S", "-drive",
                                          "file=" + path("disk.qcow2").string() + ",format=qcow2,if=virtio"});
    ASSERT_TRUE(qemu) << qemu.error().message;
    bool held = false;
    for (int i = 0; i < 600 && !held; ++i) {
        auto st = storage::check_image_lock(path("disk.qcow2"), storage::default_lock_perms(false, false));
        held = !st && st.error().code == ErrorCode::Busy;
        if (!held) std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(held) << qemu->output();

    // qemu-img's words for the same refusal: a writer cannot get the write
    // lock, a reader (the clone's source) cannot share QEMU's writing.
    auto refused = [](const Status& st, const char* what, const char* words = "Failed to get \"write\" lock") {
        ASSERT_FALSE(st) << what << " went through under QEMU";
        const std::string msg = st.error().full_message();
        EXPECT_EQ(st.error().code, ErrorCode::Busy) << what << ": " << msg;
        EXPECT_NE(msg.find("volume 'disk.qcow2' is in use by another process"), std::string::npos) << what << ": " << msg;
        EXPECT_NE(msg.find(words), std::string::npos) << what << ": " << msg;
    };
    refused(mgr_->resize_volume("default", "disk.qcow2", 128 << 20, {}), "vol-resize");
    refused(mgr_->wipe_volume("default", "disk.qcow2", driver::WipeAlgorithm::Zero), "vol-wipe");
    refused(mgr_->delete_volume("default", "disk.qcow2"), "vol-delete");
    std::string data(65536, 'x');
    refused(mgr_->upload_volume("default", "disk.qcow2", {}, [&, sent = false]() mutable -> Result<driver::StreamChunk> {
        if (sent) return driver::StreamChunk{};
        sent = true;
        return driver::StreamChunk{false, data.size(), std::span<const char>(data.data(), data.size())};
    }), "vol-upload");
    auto clone = mgr_->create_volume_from("default", xml("copy.qcow2", 0, "qcow2"), "default", "disk.qcow2", {});
    refused(clone ? Status{} : Status(std::unexpected(clone.error())), "vol-clone", "Failed to get shared \"write\" lock");
    EXPECT_FALSE(std::filesystem::exists(path("copy.qcow2")));
    EXPECT_TRUE(std::filesystem::exists(path("disk.qcow2")));
    std::uint64_t got = 0;
    EXPECT_TRUE(mgr_->download_volume("default", "disk.qcow2", {}, [&](const driver::StreamChunk& c) -> Status {
        got += c.length;
        return {};
    }));
    EXPECT_EQ(got, 64u << 20);

    qemu->kill();
    EXPECT_TRUE(mgr_->resize_volume("default", "disk.qcow2", 128 << 20, {}));
    EXPECT_TRUE(mgr_->wipe_volume("default", "disk.qcow2", driver::WipeAlgorithm::Zero));
    EXPECT_TRUE(mgr_->delete_volume("default", "disk.qcow2"));
    EXPECT_FALSE(has_volume("disk.qcow2"));
}

}  // namespace
}  // namespace vireo::pool
