// Image locks (QEMU's bytes, QEMU's words) seen from another open file, and
// the copy engine's progress and cancellation.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <vector>

#include "storage/convert.hpp"
#include "storage/image.hpp"
#include "storage/lock.hpp"
#include "support/support.hpp"
#include "util/fd.hpp"

using namespace vireo;
using namespace vireo::storage;

namespace {

// Another open file description on `path`, as another process would have.
struct Other {
    explicit Other(const std::filesystem::path& path) : fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
    void hold(off_t byte) {
        struct flock fl{};
        fl.l_type = F_RDLCK;
        fl.l_whence = SEEK_SET;
        fl.l_start = byte;
        fl.l_len = 1;
        ASSERT_EQ(::fcntl(fd.get(), F_OFD_SETLK, &fl), 0);
    }
    // Whether someone else holds `byte`.
    bool sees(off_t byte) const {
        struct flock fl{};
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        fl.l_start = byte;
        fl.l_len = 1;
        EXPECT_EQ(::fcntl(fd.get(), F_OFD_GETLK, &fl), 0);
        return fl.l_type != F_UNLCK;
    }
    UniqueFd fd;
};

std::filesystem::path make_file(const test::TempDir& d, const std::string& name, uint64_t size) {
    auto p = d / name;
    CreateOptions co;
    co.format = ImageFormat::Raw;
    co.size = size;
    EXPECT_TRUE(create_image(p, co));
    return p;
}

}  // namespace

TEST(ImageLock, LocksQemusBytes) {
    test::TempDir d;
    auto p = make_file(d, "a.raw", 1 << 20);
    Other other(p);
    {
        auto w = ImageLock::acquire(p, default_lock_perms(true, false));
        ASSERT_TRUE(w) << w.error().message;
        // consistent read, write, resize held; write and resize not shared
        for (off_t b : {100, 101, 103, 201, 203}) EXPECT_TRUE(other.sees(b)) << b;
        for (off_t b : {102, 200, 202}) EXPECT_FALSE(other.sees(b)) << b;
    }
    for (off_t b : {100, 101, 103, 201, 203}) EXPECT_FALSE(other.sees(b)) << "released: " << b;
    auto r = ImageLock::acquire(p, default_lock_perms(false, true));
    ASSERT_TRUE(r);
    EXPECT_TRUE(other.sees(100));
    EXPECT_FALSE(other.sees(201)) << "-U shares write";
}

TEST(ImageLock, RefusesWhatAnotherUserHoldsInQemusWords) {
    test::TempDir d;
    auto p = make_file(d, "a.raw", 1 << 20);
    Other guest(p);
    guest.hold(101);  // holds write
    guest.hold(201);  // does not share write
    auto w = ImageLock::acquire(p, default_lock_perms(true, false));
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code, ErrorCode::Busy);
    EXPECT_EQ(w.error().message, "Failed to get \"write\" lock\nIs another process using the image [" + p.string() + "]?");
    auto r = ImageLock::acquire(p, default_lock_perms(false, false));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message,
              "Failed to get shared \"write\" lock\nIs another process using the image [" + p.string() + "]?");
    EXPECT_TRUE(ImageLock::acquire(p, default_lock_perms(false, true))) << "-U reads";
    // A refused user leaves nothing behind.
    Other probe(p);
    EXPECT_FALSE(probe.sees(100));
    // open_image says it the same way.
    auto img = open_image(p, {.writable = true});
    ASSERT_FALSE(img);
    EXPECT_EQ(img.error().code, ErrorCode::Busy);
    auto fs = open_image(p, {.writable = true, .force_share = true});
    ASSERT_FALSE(fs);
    EXPECT_EQ(fs.error().message, "force-share=on can only be used with read-only images");
}

namespace {

// A raw source with `mib` MiB of data after a 1 MiB hole.
std::filesystem::path make_source(const test::TempDir& d, int mib) {
    auto p = make_file(d, "src.raw", (static_cast<uint64_t>(mib) + 2) << 20);
    auto img = open_image(p, {.format = ImageFormat::Raw, .writable = true});
    EXPECT_TRUE(img);
    std::vector<char> buf(1 << 20, 'v');
    for (int i = 0; i < mib; ++i) EXPECT_TRUE((*img)->write(static_cast<uint64_t>(i + 1) << 20, buf.data(), buf.size()));
    return p;
}

}  // namespace

TEST(ConvertEngine, ReportsDataBytesInOrderUpToTheTotal) {
    test::TempDir d;
    auto src = make_source(d, 9);
    std::vector<std::pair<uint64_t, uint64_t>> seen;
    ConvertOptions o;
    o.sources = {{src, "raw", {}}};
    o.target = d / "out.qcow2";
    o.target_format = "qcow2";
    o.progress = [&](uint64_t done, uint64_t total) {
        seen.emplace_back(done, total);
        return true;
    };
    const uint64_t runs = convert_runs();
    ASSERT_TRUE(convert(o));
    EXPECT_EQ(convert_runs(), runs + 1);
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back().first, 9ULL << 20);
    for (size_t i = 0; i < seen.size(); ++i) {
        EXPECT_EQ(seen[i].second, 9ULL << 20);
        if (i) {
            EXPECT_GT(seen[i].first, seen[i - 1].first);
        }
        EXPECT_LE(seen[i].first - (i ? seen[i - 1].first : 0), 2ULL << 20) << "qemu-img's 2 MiB requests";
    }
}

TEST(ConvertEngine, CancelStopsAndRemovesTheTargetItMade) {
    test::TempDir d;
    auto src = make_source(d, 9);
    int calls = 0;
    ConvertOptions o;
    o.sources = {{src, "raw", {}}};
    o.target = d / "out.raw";
    o.progress = [&](uint64_t, uint64_t) { return ++calls < 2; };
    auto st = convert(o);
    ASSERT_FALSE(st);
    EXPECT_TRUE(is_cancelled(st.error())) << st.error().message;
    EXPECT_EQ(calls, 2) << "stopped at once";
    EXPECT_FALSE(std::filesystem::exists(o.target)) << "a half-made target is removed";

    // -n: the target was there before; it stays (as qemu-img would leave it).
    make_file(d, "existing.raw", 16 << 20);
    o.target = d / "existing.raw";
    o.no_create = true;
    calls = 0;
    st = convert(o);
    ASSERT_FALSE(st);
    EXPECT_TRUE(is_cancelled(st.error()));
    EXPECT_TRUE(std::filesystem::exists(o.target));
}
