// Image engine: round trips, backing chains, snapshots, compression,
// consistency after writes, and robustness against damaged images.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "storage/endian.hpp"
#include "storage/image.hpp"
#include "storage/qcow2.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

using namespace vireo::storage;
using vireo::test::TempDir;

namespace {

ImagePtr make(const std::filesystem::path& p, CreateOptions o, bool writable = true) {
    auto st = create_image(p, o);
    EXPECT_TRUE(st) << st.error().message;
    OpenOptions oo;
    oo.writable = writable;
    auto img = open_image(p, oo);
    EXPECT_TRUE(img) << img.error().message;
    return img ? std::move(*img) : nullptr;
}

std::vector<char> pattern(size_t n, unsigned seed) {
    std::vector<char> v(n);
    std::mt19937 rng(seed);
    for (auto& c : v) c = static_cast<char>(rng() & 0xff);
    return v;
}

std::vector<char> read_all(Image& img, uint64_t off, size_t n) {
    std::vector<char> v(n);
    auto st = img.read(off, v.data(), n);
    EXPECT_TRUE(st) << st.error().message;
    return v;
}

void expect_clean(const std::filesystem::path& p) {
    OpenOptions oo;
    oo.repair_dirty = false;
    auto img = open_image(p, oo);
    ASSERT_TRUE(img) << img.error().message;
    auto* q = qcow2_cast(img->get());
    ASSERT_NE(q, nullptr);
    auto r = q->check(qcow2::RepairMode::None);
    ASSERT_TRUE(r) << r.error().message;
    std::string msgs;
    for (auto& m : r->messages) msgs += m + "\n";
    EXPECT_EQ(r->corruptions, 0) << msgs;
    EXPECT_EQ(r->leaks, 0) << msgs;
}

}  // namespace

TEST(HumanSize, MatchesQemuFormatting) {
    EXPECT_EQ(human_size(0), "0 B");
    EXPECT_EQ(human_size(1073741824), "1 GiB");
    EXPECT_EQ(human_size(200704), "196 KiB");
    EXPECT_EQ(human_size(1536 * 1024), "1.5 MiB");
    EXPECT_EQ(human_size(1000 * 1024), "0.977 MiB");
}

TEST(Raw, WriteReadRoundTrip) {
    TempDir d;
    CreateOptions o;
    o.format = ImageFormat::Raw;
    o.size = 1 << 20;
    auto img = make(d / "r.raw", o);
    auto data = pattern(5000, 1);
    ASSERT_TRUE(img->write(1234, data.data(), data.size()));
    EXPECT_EQ(read_all(*img, 1234, data.size()), data);
    EXPECT_FALSE(img->write((1 << 20) - 10, data.data(), 100)) << "writes past the end must fail";
}

class Qcow2Variants : public ::testing::TestWithParam<std::tuple<uint32_t, int, bool, int>> {};

TEST_P(Qcow2Variants, RandomWritesReadBackAndStayConsistent) {
    auto [cluster, refbits, ext_l2, version] = GetParam();
    TempDir d;
    CreateOptions o;
    o.size = 8 << 20;
    o.cluster_size = cluster;
    o.refcount_bits = refbits;
    o.extended_l2 = ext_l2;
    o.version = version;
    auto img = make(d / "t.qcow2", o);
    std::vector<char> model(o.size, 0);
    std::mt19937 rng(42);
    for (int i = 0; i < 200; ++i) {
        uint64_t len = 1 + rng() % 20000;
        uint64_t off = rng() % (o.size - len);
        int op = static_cast<int>(rng() % 10);
        if (op < 7) {
            auto data = pattern(len, static_cast<unsigned>(i));
            ASSERT_TRUE(img->write(off, data.data(), len));
            std::copy(data.begin(), data.end(), model.begin() + static_cast<long>(off));
        } else if (op < 9) {
            ASSERT_TRUE(img->write_zeroes(off, len, op == 8));
            std::fill(model.begin() + static_cast<long>(off), model.begin() + static_cast<long>(off + len), 0);
        } else {
            ASSERT_TRUE(img->discard(off, len));
            // discard may drop whole clusters only: re-read the model from the image for them
            auto now = read_all(*img, off, len);
            for (uint64_t k = 0; k < len; ++k)
                if (now[k] != model[off + k]) {
                    ASSERT_EQ(now[k], 0) << "discard left data that is neither old nor zero";
                    model[off + k] = 0;
                }
        }
    }
    EXPECT_EQ(read_all(*img, 0, o.size), model);
    ASSERT_TRUE(img->close());
    img.reset();
    expect_clean(d / "t.qcow2");
    OpenOptions oo;
    auto again = open_image(d / "t.qcow2", oo);
    ASSERT_TRUE(again);
    EXPECT_EQ(read_all(**again, 0, o.size), model);
}

INSTANTIATE_TEST_SUITE_P(Layouts, Qcow2Variants,
                         ::testing::Values(std::make_tuple(65536u, 16, false, 3), std::make_tuple(512u, 16, false, 3),
                                           std::make_tuple(4096u, 1, false, 3), std::make_tuple(4096u, 64, false, 3),
                                           std::make_tuple(65536u, 16, false, 2), std::make_tuple(2u << 20, 8, false, 3),
                                           std::make_tuple(65536u, 16, true, 3), std::make_tuple(16384u, 4, true, 3)));

TEST(Qcow2, BackingChainCopyOnWrite) {
    TempDir d;
    CreateOptions o;
    o.size = 4 << 20;
    auto base = make(d / "base.qcow2", o);
    auto bdata = pattern(o.size, 7);
    ASSERT_TRUE(base->write(0, bdata.data(), bdata.size()));
    ASSERT_TRUE(base->close());
    base.reset();
    CreateOptions ov;
    ov.backing_file = "base.qcow2";  // relative: resolved against the overlay's directory
    ov.backing_format = "qcow2";
    auto top = make(d / "top.qcow2", ov);
    ASSERT_EQ(top->size(), o.size);
    auto w = pattern(1000, 9);
    ASSERT_TRUE(top->write(70000, w.data(), w.size()));
    std::copy(w.begin(), w.end(), bdata.begin() + 70000);
    ASSERT_TRUE(top->write_zeroes(1 << 20, 65536, false));
    std::fill(bdata.begin() + (1 << 20), bdata.begin() + (1 << 20) + 65536, 0);
    EXPECT_EQ(read_all(*top, 0, o.size), bdata);
    auto st = top->block_status(0, 65536);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->kind, ExtentKind::Unallocated);
    ASSERT_TRUE(top->close());
    expect_clean(d / "top.qcow2");
}

TEST(Qcow2, CompressedClustersBothKinds) {
    for (auto type : {CompressionType::Zlib, CompressionType::Zstd}) {
        TempDir d;
        CreateOptions o;
        o.size = 1 << 20;
        o.compression = type;
        auto img = make(d / "c.qcow2", o);
        std::vector<char> data(65536);
        for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i / 100);
        ASSERT_TRUE(img->write_compressed(65536, data.data(), data.size()));
        auto st = img->block_status(65536, 65536);
        ASSERT_TRUE(st);
        EXPECT_EQ(st->kind, ExtentKind::Compressed);
        EXPECT_EQ(read_all(*img, 65536, data.size()), data);
        // Overwriting part of a compressed cluster decompresses it (COW).
        char x = 'x';
        ASSERT_TRUE(img->write(65536 + 5, &x, 1));
        data[5] = 'x';
        EXPECT_EQ(read_all(*img, 65536, data.size()), data);
        ASSERT_TRUE(img->close());
        expect_clean(d / "c.qcow2");
    }
}

TEST(Qcow2, SnapshotsKeepOldContents) {
    TempDir d;
    CreateOptions o;
    o.size = 2 << 20;
    auto img = make(d / "s.qcow2", o);
    auto v1 = pattern(o.size, 1);
    ASSERT_TRUE(img->write(0, v1.data(), v1.size()));
    auto* q = qcow2_cast(img.get());
    ASSERT_TRUE(q->snapshot_create("one"));
    auto v2 = pattern(100000, 2);
    ASSERT_TRUE(img->write(5000, v2.data(), v2.size()));
    auto snap = q->open_snapshot("one");
    ASSERT_TRUE(snap);
    EXPECT_EQ(read_all(**snap, 0, o.size), v1);
    snap->reset();
    ASSERT_TRUE(q->snapshot_apply("one"));
    EXPECT_EQ(read_all(*img, 0, o.size), v1);
    EXPECT_FALSE(q->snapshot_create("one")) << "duplicate names are refused";
    ASSERT_TRUE(q->snapshot_delete("one"));
    EXPECT_TRUE(q->snapshots().empty());
    ASSERT_TRUE(img->close());
    expect_clean(d / "s.qcow2");
}

TEST(Qcow2, ResizeGrowAndShrink) {
    TempDir d;
    CreateOptions o;
    o.size = 1 << 20;
    o.cluster_size = 512;  // small L2 coverage: growing needs a bigger L1
    auto img = make(d / "g.qcow2", o);
    auto v = pattern(1000, 3);
    ASSERT_TRUE(img->write(0, v.data(), v.size()));
    ASSERT_TRUE(img->resize(64 << 20, false, Preallocation::Off));
    ASSERT_TRUE(img->write((64 << 20) - 1000, v.data(), v.size()));
    EXPECT_EQ(read_all(*img, 0, 1000), v);
    EXPECT_FALSE(img->resize(1 << 20, false, Preallocation::Off)) << "shrinking needs --shrink";
    ASSERT_TRUE(img->resize(1 << 20, true, Preallocation::Off));
    EXPECT_EQ(img->size(), 1u << 20);
    ASSERT_TRUE(img->close());
    expect_clean(d / "g.qcow2");
}

TEST(Qcow2, UnknownIncompatibleFeatureIsRefused) {
    TempDir d;
    CreateOptions o;
    o.size = 1 << 20;
    make(d / "u.qcow2", o).reset();
    {
        std::fstream f(d / "u.qcow2", std::ios::in | std::ios::out | std::ios::binary);
        char b[8];
        store_be64(b, 1ULL << 30);
        f.seekp(72);
        f.write(b, 8);
    }
    auto img = open_image(d / "u.qcow2");
    ASSERT_FALSE(img);
    EXPECT_NE(img.error().message.find("Unknown incompatible feature"), std::string::npos);
}

// Damaged images: flip bytes all over the metadata and make sure open,
// read, write and check return errors instead of crashing.
TEST(Qcow2, DamagedImagesNeverCrash) {
    TempDir d;
    CreateOptions o;
    o.size = 4 << 20;
    o.cluster_size = 4096;
    {
        auto img = make(d / "good.qcow2", o);
        auto v = pattern(o.size, 5);
        ASSERT_TRUE(img->write(0, v.data(), v.size()));
        auto* q = qcow2_cast(img.get());
        ASSERT_TRUE(q->snapshot_create("s"));
        ASSERT_TRUE(img->write_compressed(0, v.data(), 4096));
        ASSERT_TRUE(img->close());
    }
    auto good_r = vireo::files::read(d / "good.qcow2");
    ASSERT_TRUE(good_r);
    std::string good = *good_r;
    std::mt19937 rng(1234);
    std::vector<char> buf(65536);
    for (int round = 0; round < 150; ++round) {
        std::string bad = good;
        int flips = 1 + static_cast<int>(rng() % 8);
        for (int k = 0; k < flips; ++k) {
            // Mostly metadata: header cluster and the first clusters.
            size_t pos = round % 3 == 0 ? rng() % 512 : rng() % std::min<size_t>(bad.size(), 64 * 4096);
            bad[pos] = static_cast<char>(rng() & 0xff);
        }
        auto path = d / "bad.qcow2";
        {
            std::ofstream out(path, std::ios::binary | std::ios::trunc);
            out.write(bad.data(), static_cast<long>(bad.size()));
        }
        OpenOptions oo;
        oo.writable = true;
        oo.repair_dirty = false;
        auto img = open_image(path, oo);
        if (!img) continue;
        // A flipped magic makes it probe as raw: fine, nothing to check then.
        if (auto* q = qcow2_cast(img->get())) (void)q->check(qcow2::RepairMode::None);
        uint64_t size = std::min<uint64_t>((*img)->size(), 64ULL << 20);
        for (uint64_t off = 0; off + buf.size() <= size; off += 65536 * 7) (void)(*img)->read(off, buf.data(), buf.size());
        if (size > 8192) (void)(*img)->write(4096, buf.data(), 4096);
        (void)(*img)->close();
        auto f = std::filesystem::file_size(path);
        EXPECT_LT(f, good.size() + (64ULL << 20)) << "a damaged image must not make the engine write far outside it";
    }
}

TEST(Qcow2, DirtyLazyRefcountImageIsRepairedOnOpen) {
    TempDir d;
    CreateOptions o;
    o.size = 1 << 20;
    o.lazy_refcounts = true;
    {
        auto img = make(d / "l.qcow2", o);
        auto v = pattern(200000, 4);
        ASSERT_TRUE(img->write(0, v.data(), v.size()));
        ASSERT_TRUE(img->close());
    }
    // Simulate a crash with lazy refcounts: dirty bit set, refcounts of the
    // data clusters never written (zero the refcount block's data entries).
    {
        std::fstream f(d / "l.qcow2", std::ios::in | std::ios::out | std::ios::binary);
        char b[8];
        f.seekg(72);
        f.read(b, 8);
        store_be64(b, load_be64(b) | 1);
        f.seekp(72);
        f.write(b, 8);
        char zero[8] = {};
        f.seekp(0x20000 + 2 * 5);
        f.write(zero, 8);
    }
    OpenOptions oo;
    oo.writable = true;
    auto img = open_image(d / "l.qcow2", oo);
    ASSERT_TRUE(img) << img.error().message;
    ASSERT_TRUE((*img)->close());
    img->reset();
    expect_clean(d / "l.qcow2");
}

// A batch of compressed and incompressible clusters (what a compressing
// convert writes) reads back exactly, and the image stays consistent.
TEST(Qcow2, CompressedBatchMixesPackedAndRawClusters) {
    for (auto type : {CompressionType::Zlib, CompressionType::Zstd}) {
        TempDir d;
        CreateOptions o;
        o.size = 8 * 65536 + 4096;  // a short tail cluster too
        o.compression = type;
        auto img = make(d / "b.qcow2", o);
        std::vector<char> data(o.size);
        auto noise = pattern(o.size, 7);
        for (size_t i = 0; i < data.size(); ++i) data[i] = (i / 65536) % 2 ? noise[i] : static_cast<char>(i / 300);
        std::vector<char> packed(data.size());
        std::vector<PackedCluster> batch;
        for (uint64_t off = 0; off < o.size; off += 65536) {
            size_t len = std::min<uint64_t>(65536, o.size - off);
            auto n = img->compress_cluster_into(data.data() + off, len, packed.data() + off, 65536);
            ASSERT_TRUE(n) << n.error().message;
            EXPECT_EQ(*n == 0, (off / 65536) % 2 == 1) << "noise stays raw, text is packed";
            batch.push_back({off, packed.data() + off, *n, data.data() + off, len});
        }
        ASSERT_TRUE(img->write_compressed_batch(batch));
        EXPECT_EQ(read_all(*img, 0, data.size()), data);
        auto st = img->block_status(0, 65536);
        ASSERT_TRUE(st);
        EXPECT_EQ(st->kind, ExtentKind::Compressed);
        ASSERT_TRUE(img->close());
        expect_clean(d / "b.qcow2");
    }
}

// Big writes into unallocated space take one contiguous host run.
TEST(Qcow2, LargeWriteAllocatesContiguously) {
    TempDir d;
    CreateOptions o;
    o.size = 4 << 20;
    auto img = make(d / "w.qcow2", o);
    auto v = pattern(1 << 20, 4);
    ASSERT_TRUE(img->write(1 << 20, v.data(), v.size()));
    auto e = img->map_range(1 << 20, 1 << 20);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, ExtentKind::Data);
    EXPECT_EQ(e->length, 1u << 20) << "one extent: the clusters are contiguous on the host";
    EXPECT_EQ(read_all(*img, 1 << 20, v.size()), v);
    ASSERT_TRUE(img->close());
    expect_clean(d / "w.qcow2");
}

// Refcount width changes keep every refcount (snapshots share clusters)
// and refuse widths the refcounts do not fit in.
TEST(Qcow2, RefcountWidthChanges) {
    TempDir d;
    CreateOptions o;
    o.size = 2 << 20;
    auto img = make(d / "r.qcow2", o);
    auto v = pattern(o.size, 5);
    ASSERT_TRUE(img->write(0, v.data(), v.size()));
    auto* q = qcow2_cast(img.get());
    ASSERT_TRUE(q->snapshot_create("s"));
    EXPECT_FALSE(q->change_refcount_bits(1)) << "shared clusters have refcount 2";
    for (int bits : {2, 64, 8}) {
        ASSERT_TRUE(q->change_refcount_bits(bits)) << bits;
        auto w = pattern(70000, static_cast<unsigned>(bits));
        ASSERT_TRUE(img->write(100000, w.data(), w.size()));
        std::copy(w.begin(), w.end(), v.begin() + 100000);
    }
    EXPECT_EQ(read_all(*img, 0, v.size()), v);
    ASSERT_TRUE(img->close());
    expect_clean(d / "r.qcow2");
}
