// Storage pools and volumes through a real vireod serving the QEMU driver,
// called with RemoteDriver::pools() as the CLI does: pool lifecycle, volume
// work, streamed upload/download of a sparse file (compared by hash and
// allocation), read-only socket refusals, and domains with
// <disk type='volume'>.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "client/connect.hpp"
#include "daemon_process.hpp"
#include "support/support.hpp"
#include "util/fd.hpp"

namespace vireo::test {
namespace {

namespace fs = std::filesystem;
using driver::PoolState;

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string dir_pool_xml(const std::string& name, const fs::path& target) {
    return fmt::format("<pool type='dir'><name>{}</name><target><path>{}</path></target></pool>", name,
                       target.native());
}

std::string volume_xml(const std::string& name, const std::string& format, std::uint64_t bytes) {
    return fmt::format("<volume><name>{}</name><capacity unit='bytes'>{}</capacity>"
                       "<target><format type='{}'/></target></volume>",
                       name, bytes, format);
}

std::string sha256_of(const fs::path& p) {
    auto r = run({"sha256sum", p.native()});
    return r.out.substr(0, 64);
}

// Bytes the file really occupies on disk.
std::uint64_t allocated(const fs::path& p) {
    struct stat st{};
    if (::stat(p.c_str(), &st) != 0) return 0;
    return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

// A sparse file of `size` bytes with a few data extents (and a hole at the end).
void make_sparse_file(const fs::path& p, std::uint64_t size) {
    UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::ftruncate(fd.get(), static_cast<off_t>(size)), 0);
    std::string block(1 << 20, '\0');
    for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>((i * 31 + 7) & 0xff);
    for (std::uint64_t off : {std::uint64_t{0}, size / 3, size / 2 + 12345}) {
        ASSERT_EQ(::pwrite(fd.get(), block.data(), block.size(), static_cast<off_t>(off)),
                  static_cast<ssize_t>(block.size()));
    }
}

// Streams a local file as upload chunks: data in 1 MiB pieces, holes
// (SEEK_DATA/SEEK_HOLE) as hole chunks.
class FileSource {
public:
    explicit FileSource(const fs::path& p) : fd_(::open(p.c_str(), O_RDONLY)), buf_(1 << 20) {
        struct stat st{};
        ::fstat(fd_.get(), &st);
        size_ = static_cast<std::uint64_t>(st.st_size);
    }
    Result<driver::StreamChunk> operator()() {
        if (pos_ >= size_) return driver::StreamChunk{};
        off_t data = ::lseek(fd_.get(), static_cast<off_t>(pos_), SEEK_DATA);
        if (data < 0) data = static_cast<off_t>(size_);  // only a hole is left
        if (static_cast<std::uint64_t>(data) > pos_) {
            std::uint64_t len = static_cast<std::uint64_t>(data) - pos_;
            pos_ += len;
            return driver::StreamChunk{true, len, {}};
        }
        off_t hole = ::lseek(fd_.get(), static_cast<off_t>(pos_), SEEK_HOLE);
        std::uint64_t len = std::min<std::uint64_t>(buf_.size(), static_cast<std::uint64_t>(hole) - pos_);
        ssize_t n = ::pread(fd_.get(), buf_.data(), len, static_cast<off_t>(pos_));
        if (n <= 0) return fail(ErrorCode::Io, "read error");
        pos_ += static_cast<std::uint64_t>(n);
        return driver::StreamChunk{false, static_cast<std::uint64_t>(n),
                                   std::span<const char>(buf_.data(), static_cast<std::size_t>(n))};
    }

private:
    UniqueFd fd_;
    std::vector<char> buf_;
    std::uint64_t size_ = 0, pos_ = 0;
};

// Writes download chunks to a local file, leaving holes unwritten.
class FileSink {
public:
    explicit FileSink(const fs::path& p) : fd_(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644)) {}
    Status operator()(const driver::StreamChunk& c) {
        if (!c.hole &&
            ::pwrite(fd_.get(), c.data.data(), c.data.size(), static_cast<off_t>(pos_)) !=
                static_cast<ssize_t>(c.data.size()))
            return fail(ErrorCode::Io, "write error");
        pos_ += c.length;
        chunks_.push_back(c.hole);
        return {};
    }
    void finish() { ASSERT_EQ(::ftruncate(fd_.get(), static_cast<off_t>(pos_)), 0); }
    [[nodiscard]] std::uint64_t size() const { return pos_; }
    [[nodiscard]] bool saw_hole() const { return std::find(chunks_.begin(), chunks_.end(), true) != chunks_.end(); }

private:
    UniqueFd fd_;
    std::uint64_t pos_ = 0;
    std::vector<bool> chunks_;
};

// One system-mode vireod (QEMU driver) with a read-write and a read-only
// socket, everything under a temp dir.
class RemotePools : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED: the system-mode daemon (read-only socket) needs root";
        std::string why;
        ASSERT_TRUE(daemon.start({"--system", "--driver=qemu", "--timeout", "0", "--socket", rw.native(),
                                  "--ro-socket", ro.native(), "--socket-group", "root", "--log-file", log.native(),
                                  "--config-dir", (dir / "etc").native(), "--run-dir", (dir / "run").native()},
                                 rw, dir / "out", &why))
            << why;
        auto c = client::connect("qemu+unix:///system?socket=" + rw.native());
        ASSERT_TRUE(c) << c.error().full_message();
        conn = std::move(*c);
    }
    void TearDown() override {
        if (conn) {
            if (auto list = conn->list_domains())
                for (const auto& d : *list) (void)conn->destroy_domain(d.name, {});
        }
        conn.reset();
    }
    driver::PoolApi& pools() { return conn->pools(); }

    TempDir dir;
    fs::path rw = dir / "vireo-sock";
    fs::path ro = dir / "vireo-sock-ro";
    fs::path log = dir / "vireod.log";
    DaemonProcess daemon;
    std::unique_ptr<driver::Driver> conn;
};

TEST_F(RemotePools, DefaultPoolExistsAndRuns) {
    auto p = pools().lookup_pool("default");
    ASSERT_TRUE(p) << p.error().full_message();
    EXPECT_EQ(p->state, PoolState::Running);
    EXPECT_EQ(p->type, "dir");
    EXPECT_TRUE(p->autostart);
    EXPECT_EQ(fs::path(p->target_path), dir / "images");
    EXPECT_TRUE(fs::is_directory(dir / "images"));
}

TEST_F(RemotePools, DirPoolLifecycle) {
    const fs::path target = dir / "pool-a";
    auto defined = pools().define_pool(dir_pool_xml("a", target));
    ASSERT_TRUE(defined) << defined.error().full_message();
    EXPECT_EQ(defined->name, "a");
    EXPECT_EQ(defined->state, PoolState::Inactive);
    EXPECT_TRUE(defined->persistent);

    ASSERT_TRUE(pools().build_pool("a", {})) << "build";
    EXPECT_TRUE(fs::is_directory(target));
    ASSERT_TRUE(pools().start_pool("a", false, {}));
    auto by_uuid = pools().lookup_pool(defined->uuid.str());
    ASSERT_TRUE(by_uuid) << by_uuid.error().full_message();
    EXPECT_EQ(by_uuid->name, "a");
    EXPECT_EQ(by_uuid->state, PoolState::Running);
    EXPECT_GT(by_uuid->capacity, 0u);

    auto list = pools().list_pools();
    ASSERT_TRUE(list) << list.error().full_message();
    std::vector<std::string> names;
    for (const auto& p : *list) names.push_back(p.name);
    EXPECT_NE(std::find(names.begin(), names.end(), "a"), names.end());
    EXPECT_NE(std::find(names.begin(), names.end(), "default"), names.end());

    auto xml = pools().pool_xml("a", false);
    ASSERT_TRUE(xml) << xml.error().full_message();
    EXPECT_NE(xml->find("<name>a</name>"), std::string::npos) << *xml;
    EXPECT_NE(xml->find(target.native()), std::string::npos) << *xml;

    ASSERT_TRUE(pools().set_pool_autostart("a", true));
    EXPECT_TRUE(pools().lookup_pool("a")->autostart);
    ASSERT_TRUE(pools().refresh_pool("a"));

    // Only an inactive pool can be deleted.
    auto busy = pools().delete_pool("a");
    EXPECT_FALSE(busy);
    ASSERT_TRUE(pools().destroy_pool("a"));
    EXPECT_EQ(pools().lookup_pool("a")->state, PoolState::Inactive);
    ASSERT_TRUE(pools().delete_pool("a"));
    EXPECT_FALSE(fs::exists(target));
    ASSERT_TRUE(pools().undefine_pool("a"));
    auto gone = pools().lookup_pool("a");
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, ErrorCode::NoPool) << gone.error().full_message();
}

TEST_F(RemotePools, TransientPoolIsGoneAfterDestroy) {
    auto created = pools().create_pool(dir_pool_xml("t", dir / "pool-t"), true, {});
    ASSERT_TRUE(created) << created.error().full_message();
    EXPECT_EQ(created->state, PoolState::Running);
    EXPECT_FALSE(created->persistent);
    ASSERT_TRUE(pools().destroy_pool("t"));
    EXPECT_FALSE(pools().lookup_pool("t"));
}

TEST_F(RemotePools, VolumeCreateCloneResizeDelete) {
    auto v = pools().create_volume("default", volume_xml("a.qcow2", "qcow2", 64 << 20), {});
    ASSERT_TRUE(v) << v.error().full_message();
    EXPECT_EQ(v->name, "a.qcow2");
    EXPECT_EQ(v->pool, "default");
    EXPECT_EQ(v->format, "qcow2");
    EXPECT_EQ(v->capacity, 64u << 20);
    EXPECT_EQ(fs::path(v->path), dir / "images" / "a.qcow2");
    // qemu-img is the oracle for what was made.
    auto info = run({"qemu-img", "info", "--output=json", v->path});
    EXPECT_NE(info.out.find("\"virtual-size\": 67108864"), std::string::npos) << info.out;

    // Same name again: refused, the first one untouched.
    auto again = pools().create_volume("default", volume_xml("a.qcow2", "raw", 1 << 20), {});
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, ErrorCode::Exists) << again.error().full_message();

    // By key alone (vol-info /path).
    auto by_key = pools().lookup_volume("", v->key);
    ASSERT_TRUE(by_key) << by_key.error().full_message();
    EXPECT_EQ(by_key->name, "a.qcow2");

    auto xml = pools().volume_xml("default", "a.qcow2");
    ASSERT_TRUE(xml) << xml.error().full_message();
    EXPECT_NE(xml->find("<name>a.qcow2</name>"), std::string::npos) << *xml;

    auto clone = pools().create_volume_from("default", volume_xml("b.raw", "raw", 64 << 20), "default", "a.qcow2", {});
    ASSERT_TRUE(clone) << clone.error().full_message();
    EXPECT_EQ(clone->format, "raw");

    ASSERT_TRUE(pools().resize_volume("default", "b.raw", 32 << 20, {.delta = true}));
    EXPECT_EQ(pools().lookup_volume("default", "b.raw")->capacity, 96u << 20);
    auto shrink = pools().resize_volume("default", "b.raw", 1 << 20, {});
    EXPECT_FALSE(shrink) << "shrinking without the flag must be refused";
    ASSERT_TRUE(pools().wipe_volume("default", "b.raw", driver::WipeAlgorithm::Zero));

    auto list = pools().list_volumes("default");
    ASSERT_TRUE(list) << list.error().full_message();
    EXPECT_EQ(list->size(), 2u);

    ASSERT_TRUE(pools().delete_volume("default", "a.qcow2"));
    ASSERT_TRUE(pools().delete_volume("default", "b.raw"));
    EXPECT_FALSE(fs::exists(dir / "images" / "a.qcow2"));
    auto gone = pools().lookup_volume("default", "a.qcow2");
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, ErrorCode::NoVolume) << gone.error().full_message();

    // Names that escape the pool are refused before anything is made.
    auto evil = pools().create_volume("default", volume_xml("../evil", "raw", 1 << 20), {});
    EXPECT_FALSE(evil);
    EXPECT_FALSE(fs::exists(dir / "evil"));
}

TEST_F(RemotePools, UploadAndDownloadASparseFile) {
    constexpr std::uint64_t kSize = 256u << 20;
    const fs::path src = dir / "src.img", back = dir / "back.img";
    make_sparse_file(src, kSize);
    ASSERT_TRUE(pools().create_volume("default", volume_xml("up.raw", "raw", kSize), {}));

    FileSource source(src);
    auto up = pools().upload_volume("default", "up.raw", {.offset = 0, .length = 0, .sparse = true},
                                    [&] { return source(); });
    ASSERT_TRUE(up) << up.error().full_message();
    const fs::path vol = dir / "images" / "up.raw";
    EXPECT_EQ(sha256_of(vol), sha256_of(src));
    EXPECT_LT(allocated(vol), 16u << 20) << "holes were written as zeros";

    FileSink sink(back);
    auto down = pools().download_volume("default", "up.raw", {.offset = 0, .length = 0, .sparse = true},
                                        [&](const driver::StreamChunk& c) { return sink(c); });
    ASSERT_TRUE(down) << down.error().full_message();
    sink.finish();
    EXPECT_EQ(sink.size(), kSize);
    EXPECT_TRUE(sink.saw_hole());
    EXPECT_EQ(sha256_of(back), sha256_of(src));
    EXPECT_LT(allocated(back), 16u << 20);

    // A range: 1 MiB from the middle extent.
    FileSink part(dir / "part.img");
    auto ranged = pools().download_volume("default", "up.raw", {.offset = kSize / 3, .length = 1 << 20},
                                          [&](const driver::StreamChunk& c) { return part(c); });
    ASSERT_TRUE(ranged) << ranged.error().full_message();
    part.finish();
    EXPECT_EQ(part.size(), 1u << 20);
    auto cmp = run({"cmp", "-n", "1048576", "-i", fmt::format("{}:0", kSize / 3), src.native(),
                    (dir / "part.img").native()});
    EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
}

TEST_F(RemotePools, StreamErrorsReachTheCaller) {
    // No such volume: a clear error, before anything is sent.
    auto down = pools().download_volume("default", "nope.raw", {}, [](const driver::StreamChunk&) -> Status {
        return {};
    });
    ASSERT_FALSE(down);
    EXPECT_EQ(down.error().code, ErrorCode::NoVolume) << down.error().full_message();

    // The sink failing stops the download with the sink's error.
    ASSERT_TRUE(pools().create_volume("default", volume_xml("s.raw", "raw", 8 << 20), {}));
    auto stopped = pools().download_volume("default", "s.raw", {}, [](const driver::StreamChunk&) -> Status {
        return fail(ErrorCode::Io, "disk full");
    });
    ASSERT_FALSE(stopped);
    EXPECT_EQ(stopped.error().message, "disk full");

    // The source failing aborts the upload with the source's error.
    auto aborted = pools().upload_volume("default", "s.raw", {}, []() -> Result<driver::StreamChunk> {
        return fail(ErrorCode::Io, "cannot read the local file");
    });
    ASSERT_FALSE(aborted);
    EXPECT_EQ(aborted.error().message, "cannot read the local file");
    // The connection still works afterwards.
    EXPECT_TRUE(pools().lookup_volume("default", "s.raw"));
}

TEST_F(RemotePools, ReadOnlySocketRefusesEveryChange) {
    ASSERT_TRUE(pools().create_volume("default", volume_xml("r.raw", "raw", 1 << 20), {}));
    auto c = client::connect("qemu+unix:///system?socket=" + ro.native());
    ASSERT_TRUE(c) << c.error().full_message();
    driver::PoolApi& p = (*c)->pools();
    EXPECT_TRUE(p.list_pools());
    EXPECT_TRUE(p.lookup_volume("default", "r.raw"));
    EXPECT_TRUE(p.pool_xml("default", false));
    auto denied = [](const auto& s) { return !s && s.error().code == ErrorCode::PermissionDenied; };
    EXPECT_TRUE(denied(p.define_pool(dir_pool_xml("x", dir / "x"))));
    EXPECT_TRUE(denied(p.destroy_pool("default")));
    EXPECT_TRUE(denied(p.set_pool_autostart("default", false)));
    EXPECT_TRUE(denied(p.create_volume("default", volume_xml("w.raw", "raw", 1 << 20), {})));
    EXPECT_TRUE(denied(p.delete_volume("default", "r.raw")));
    EXPECT_TRUE(denied(p.wipe_volume("default", "r.raw", driver::WipeAlgorithm::Zero)));
    EXPECT_TRUE(denied(p.resize_volume("default", "r.raw", 2 << 20, {})));
    EXPECT_TRUE(denied(p.upload_volume("default", "r.raw", {}, [] { return Result<driver::StreamChunk>{}; })));
    // Downloads only read: allowed.
    std::uint64_t got = 0;
    EXPECT_TRUE(p.download_volume("default", "r.raw", {}, [&](const driver::StreamChunk& ch) -> Status {
        got += ch.length;
        return {};
    }));
    EXPECT_EQ(got, 1u << 20);
    // Nothing changed.
    EXPECT_EQ(pools().lookup_pool("default")->state, PoolState::Running);
    EXPECT_TRUE(pools().lookup_volume("default", "r.raw"));
    EXPECT_NE(slurp(log).find("read-only socket): refused"), std::string::npos);
}

std::string volume_disk(const std::string& pool, const std::string& vol) {
    return fmt::format("<disk type='volume' device='disk'><source pool='{}' volume='{}'/>"
                       "<target dev='vda' bus='virtio'/></disk>",
                       pool, vol);
}

std::string with_disk(const std::string& domain_xml, const std::string& disk) {
    std::string xml = domain_xml;
    auto pos = xml.find("<devices>");
    xml.insert(pos + 9, disk);
    return xml;
}

TEST_F(RemotePools, DomainStartsFromAVolume) {
    if (!fs::exists(guest_dir() / "vmlinuz")) VIREO_SKIP("the test guest is not built");
    ASSERT_TRUE(pools().create_volume("default", volume_xml("root.qcow2", "qcow2", 64 << 20), {}));
    auto def = conn->define_domain(with_disk(guest_domain_xml("volguest"), volume_disk("default", "root.qcow2")), true);
    ASSERT_TRUE(def) << def.error().full_message();
    auto started = conn->start_domain("volguest", {});
    ASSERT_TRUE(started) << started.error().full_message();
    // In use: cannot be deleted under the guest.
    auto del = pools().delete_volume("default", "root.qcow2");
    EXPECT_FALSE(del) << "deleting a volume a running domain uses must be refused";
    EXPECT_TRUE(fs::exists(dir / "images" / "root.qcow2"));
    // QEMU got the file, with its format.
    auto qemu_log = slurp(dir / "run" / "log" / "volguest.log");
    EXPECT_NE(qemu_log.find((dir / "images" / "root.qcow2").native()), std::string::npos) << qemu_log;
    EXPECT_NE(qemu_log.find("qcow2"), std::string::npos) << qemu_log;
    // The live XML keeps the volume as libvirt's does.
    auto live = conn->domain_xml("volguest", false);
    ASSERT_TRUE(live) << live.error().full_message() << slurp(dir / "out");
    EXPECT_NE(live->find("type='volume'"), std::string::npos) << *live;
    EXPECT_NE(live->find("volume='root.qcow2'"), std::string::npos) << *live;
    auto destroyed = conn->destroy_domain("volguest", {});
    ASSERT_TRUE(destroyed) << destroyed.error().full_message() << slurp(dir / "out");
    auto freed = pools().delete_volume("default", "root.qcow2");
    EXPECT_TRUE(freed) << freed.error().full_message();
}

TEST_F(RemotePools, MissingPoolOrVolumeIsAClearStartError) {
    if (!fs::exists(guest_dir() / "vmlinuz")) VIREO_SKIP("the test guest is not built");
    ASSERT_TRUE(conn->define_domain(with_disk(guest_domain_xml("nopool"), volume_disk("nope", "x.qcow2")), true));
    auto r = conn->start_domain("nopool", {});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::NoPool) << r.error().full_message();
    EXPECT_NE(r.error().full_message().find("failed to start domain 'nopool'"), std::string::npos)
        << r.error().full_message();
    EXPECT_NE(r.error().full_message().find("'nope'"), std::string::npos) << r.error().full_message();

    ASSERT_TRUE(conn->define_domain(with_disk(guest_domain_xml("novol"), volume_disk("default", "x.qcow2")), true));
    r = conn->start_domain("novol", {});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::NoVolume) << r.error().full_message();
    EXPECT_NE(r.error().full_message().find("'x.qcow2'"), std::string::npos) << r.error().full_message();

    // Nothing left behind: both shut off, no runtime files.
    EXPECT_EQ(conn->lookup_domain("nopool")->state, driver::DomainState::Shutoff);
    EXPECT_EQ(conn->lookup_domain("novol")->state, driver::DomainState::Shutoff);
    for (const auto& e : fs::directory_iterator(dir / "run")) {
        auto name = e.path().filename().string();
        EXPECT_FALSE(name.starts_with("nopool") || name.starts_with("novol")) << name;
    }
}

}  // namespace
}  // namespace vireo::test
