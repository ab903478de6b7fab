// Persistent dirty bitmaps stored and read back by the engine (what
// convert --bitmaps relies on; the interop with QEMU is in
// tests/integration/img).
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "storage/image.hpp"
#include "storage/qcow2.hpp"
#include "support/support.hpp"

using namespace vireo::storage;
using vireo::test::TempDir;

namespace {

ImagePtr make_qcow2(const std::filesystem::path& p, uint64_t size, uint32_t cluster, int version = 3) {
    CreateOptions o;
    o.size = size;
    o.cluster_size = cluster;
    o.version = version;
    auto st = create_image(p, o);
    EXPECT_TRUE(st) << st.error().message;
    OpenOptions oo;
    oo.writable = true;
    auto img = open_image(p, oo);
    EXPECT_TRUE(img) << img.error().message;
    return img ? std::move(*img) : nullptr;
}

qcow2::Bitmap random_bitmap(const std::string& name, uint64_t size, uint32_t gran_bits, unsigned seed) {
    qcow2::Bitmap b;
    b.name = name;
    b.granularity_bits = gran_bits;
    b.auto_enabled = seed % 2 == 0;
    uint64_t nbits = (size + (1ULL << gran_bits) - 1) >> gran_bits;
    b.bits.assign((nbits + 7) / 8, 0);
    std::mt19937 rng(seed);
    // Dirty runs with clean stretches between them, so that some bitmap
    // clusters are all zero (left unallocated) and others are not.
    for (uint64_t i = 0; i < nbits; i += 1 + rng() % 5000)
        for (uint64_t k = i; k < std::min(nbits, i + rng() % 64); ++k) b.bits[k / 8] |= static_cast<uint8_t>(1U << (k % 8));
    std::fill(b.bits.begin() + static_cast<long>(b.bits.size() / 2), b.bits.begin() + static_cast<long>(b.bits.size() * 3 / 4), 0);
    return b;
}

}  // namespace

// Bitmaps whose data spans many clusters (512-byte clusters), with clean
// stretches, read back bit for bit after reopening; `check` stays clean;
// a second add keeps the first ones; names must be new.
TEST(Qcow2Bitmaps, StoredBitmapsReadBackAndCheckClean) {
    TempDir d;
    auto path = d / "bm.qcow2";
    const uint64_t size = 64ULL << 20;
    std::vector<qcow2::Bitmap> want{random_bitmap("a", size, 9, 1), random_bitmap("b", size, 16, 2)};
    {
        auto img = make_qcow2(path, size, 512);
        ASSERT_TRUE(img);
        std::vector<char> data(1 << 20, 'x');
        ASSERT_TRUE(img->write(3 << 20, data.data(), data.size()));
        auto* q = qcow2_cast(img.get());
        auto st = q->add_bitmaps({want[0]});
        ASSERT_TRUE(st) << st.error().message;
        ASSERT_TRUE(q->add_bitmaps({want[1]}));
        auto again = q->add_bitmaps({want[0]});
        ASSERT_FALSE(again);
        EXPECT_NE(again.error().message.find("Bitmap already exists: a"), std::string::npos);
        ASSERT_TRUE(img->close());
    }
    OpenOptions oo;
    oo.writable = true;
    auto img = open_image(path, oo);
    ASSERT_TRUE(img) << img.error().message;
    auto* q = qcow2_cast(img->get());
    auto got = q->read_bitmaps();
    ASSERT_TRUE(got) << got.error().message;
    ASSERT_EQ(got->size(), 2U);
    for (size_t i = 0; i < 2; ++i) {
        EXPECT_EQ((*got)[i].name, want[i].name);
        EXPECT_EQ((*got)[i].granularity_bits, want[i].granularity_bits);
        EXPECT_EQ((*got)[i].auto_enabled, want[i].auto_enabled);
        EXPECT_FALSE((*got)[i].in_use);
        EXPECT_TRUE((*got)[i].bits == want[i].bits) << want[i].name;
    }
    auto info = (*img)->info();
    ASSERT_TRUE(info);
    ASSERT_EQ(info->bitmaps.size(), 2U);
    EXPECT_EQ(info->bitmaps[1].granularity, 65536U);
    auto chk = q->check(qcow2::RepairMode::None);
    ASSERT_TRUE(chk) << chk.error().message;
    EXPECT_EQ(chk->corruptions, 0);
    EXPECT_EQ(chk->leaks, 0);
    for (const auto& m : chk->messages) ADD_FAILURE() << m;
}

// Writes, zeroes and discards set the bits of enabled bitmaps only; while
// the image is open they read as in use on disk (a crash leaves them
// inconsistent, never stale); close() stores them consistent again, and
// the refcounts stay exact.
TEST(Qcow2Bitmaps, EnabledBitmapsFollowWrites) {
    TempDir d;
    auto path = d / "track.qcow2";
    const uint64_t size = 4ULL << 20;
    auto clean = [&](const std::string& name, uint32_t gran_bits, bool enabled) {
        qcow2::Bitmap b;
        b.name = name;
        b.granularity_bits = gran_bits;
        b.auto_enabled = enabled;
        b.bits.assign(((size >> gran_bits) + 7) / 8, 0);
        return b;
    };
    {
        auto img = make_qcow2(path, size, 65536);
        ASSERT_TRUE(img);
        ASSERT_TRUE(qcow2_cast(img.get())->add_bitmaps({clean("on", 16, true), clean("off", 16, false), clean("fine", 12, true)}));
        ASSERT_TRUE(img->close());
    }
    {
        OpenOptions oo;
        oo.writable = true;
        auto img = open_image(path, oo);
        ASSERT_TRUE(img);
        std::vector<char> data(4096, 'x');
        ASSERT_TRUE((*img)->write(70000, data.data(), data.size()));  // granules 1 (64k), 17..18 (4k)
        ASSERT_TRUE((*img)->write_zeroes(1 << 20, 65536, false));      // 16 / 256..271
        ASSERT_TRUE((*img)->discard(3 << 20, 131072));                  // 48..49 / 768..799
        OpenOptions ro;
        auto peek = open_image(path, ro);
        ASSERT_TRUE(peek);
        auto during = (*peek)->info();
        ASSERT_TRUE(during);
        for (const auto& b : during->bitmaps) EXPECT_TRUE(b.in_use) << b.name;
        ASSERT_TRUE((*img)->close());
    }
    OpenOptions oo;
    auto img = open_image(path, oo);
    ASSERT_TRUE(img);
    auto* q = qcow2_cast(img->get());
    auto got = q->read_bitmaps();
    ASSERT_TRUE(got) << got.error().message;
    ASSERT_EQ(got->size(), 3U);
    auto set = [](const qcow2::Bitmap& b) {
        std::vector<uint64_t> out;
        for (uint64_t i = 0; i < b.bits.size() * 8; ++i)
            if (b.bits[i / 8] & (1U << (i % 8))) out.push_back(i);
        return out;
    };
    EXPECT_FALSE((*got)[0].in_use);
    EXPECT_EQ(set((*got)[0]), (std::vector<uint64_t>{1, 16, 48, 49}));
    EXPECT_TRUE(set((*got)[1]).empty());
    std::vector<uint64_t> fine{17, 18};
    for (uint64_t i = 256; i < 272; ++i) fine.push_back(i);
    for (uint64_t i = 768; i < 800; ++i) fine.push_back(i);
    EXPECT_EQ(set((*got)[2]), fine);
    auto chk = q->check(qcow2::RepairMode::None);
    ASSERT_TRUE(chk) << chk.error().message;
    EXPECT_EQ(chk->corruptions, 0);
    EXPECT_EQ(chk->leaks, 0);
    for (const auto& m : chk->messages) ADD_FAILURE() << m;
}

// Version 2 images have no room for bitmaps; bad input is refused.
TEST(Qcow2Bitmaps, RefusedWhereTheyCannotBeStored) {
    TempDir d;
    auto v2 = make_qcow2(d / "v2.qcow2", 1 << 20, 65536, 2);
    ASSERT_TRUE(v2);
    auto st = qcow2_cast(v2.get())->add_bitmaps({random_bitmap("x", 1 << 20, 16, 3)});
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find("v2"), std::string::npos);
    auto v3 = make_qcow2(d / "v3.qcow2", 1 << 20, 65536);
    ASSERT_TRUE(v3);
    auto wrong_size = random_bitmap("y", 2 << 20, 16, 4);
    EXPECT_FALSE(qcow2_cast(v3.get())->add_bitmaps({wrong_size}));
    auto no_name = random_bitmap("", 1 << 20, 16, 5);
    EXPECT_FALSE(qcow2_cast(v3.get())->add_bitmaps({no_name}));
    auto listed = qcow2_cast(v3.get())->read_bitmaps();
    ASSERT_TRUE(listed);
    EXPECT_TRUE(listed->empty());
}

namespace {

// Offset of the bitmap directory, from the image's bitmaps header extension.
uint64_t bitmap_dir_offset(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::string h(65536, '\0');
    f.read(h.data(), static_cast<std::streamsize>(h.size()));
    auto be = [&](size_t o, int n) {
        uint64_t v = 0;
        for (int k = 0; k < n; ++k) v = (v << 8) | static_cast<unsigned char>(h[o + static_cast<size_t>(k)]);
        return v;
    };
    for (size_t off = be(100, 4); off + 8 <= h.size();) {
        uint64_t type = be(off, 4), len = be(off + 4, 4);
        if (type == 0) break;
        if (type == 0x23852875) return be(off + 8 + 16, 8);
        off += 8 + ((len + 7) & ~7ULL);
    }
    return 0;
}

void patch(const std::filesystem::path& p, uint64_t off, const std::string& bytes) {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(off));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

// A damaged bitmap directory or table gives an error naming the problem,
// never a crash or a read outside the file.
TEST(Qcow2Bitmaps, DamagedBitmapsAreRefusedCleanly) {
    TempDir d;
    const uint64_t size = 8ULL << 20;
    struct Damage {
        uint64_t at;  // offset inside the directory entry
        std::string bytes;
    };
    const std::vector<Damage> damages = {
        {0, std::string("\x00\x7f\xff\xff\xff\xff\x00\x00", 8)},  // table far past EOF
        {0, std::string("\x00\x00\x00\x00\x00\x00\x02\x00", 8)},  // table not cluster aligned
        {8, std::string("\x7f\xff\xff\xff", 4)},                  // table size absurd
        {16, std::string("\x07", 1)},                             // unknown type
        {17, std::string("\xc8", 1)},                             // granularity 2^200
        {18, std::string("\xff\xff", 2)},                         // name past the directory
    };
    for (size_t i = 0; i < damages.size(); ++i) {
        auto path = d / ("bad" + std::to_string(i) + ".qcow2");
        {
            auto img = make_qcow2(path, size, 65536);
            ASSERT_TRUE(img);
            auto st = qcow2_cast(img.get())->add_bitmaps({random_bitmap("b", size, 9, 7)});
            ASSERT_TRUE(st) << st.error().message;
            ASSERT_TRUE(img->close());
        }
        uint64_t dir = bitmap_dir_offset(path);
        ASSERT_NE(dir, 0U);
        patch(path, dir + damages[i].at, damages[i].bytes);
        auto img = open_image(path);
        if (!img) continue;  // refused at open: fine
        auto got = qcow2_cast(img->get())->read_bitmaps();
        EXPECT_FALSE(got) << "damage " << i << " was not noticed";
        if (!got) {
            EXPECT_NE(got.error().message.find("bitmap"), std::string::npos) << got.error().message;
        }
    }
}
