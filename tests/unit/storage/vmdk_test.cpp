// vmdk subformats through the Image interface: unaligned writes and reads
// against a plain copy, across extent boundaries, reopened; zeroed grains;
// a parent (interop with QEMU is in tests/integration/img/formats_test.cpp).
#include <gtest/gtest.h>

#include <random>

#include "storage/image.hpp"
#include "storage/vmdk.hpp"
#include "support/support.hpp"

using namespace vireo::storage;
using vireo::test::TempDir;

namespace {

std::vector<char> noise(size_t n, unsigned seed) {
    std::vector<char> v(n);
    std::mt19937 rng(seed);
    for (auto& c : v) c = static_cast<char>(rng() & 0xff);
    return v;
}

ImagePtr open_rw(const std::filesystem::path& p) {
    OpenOptions o;
    o.writable = true;
    auto img = open_image(p, o);
    EXPECT_TRUE(img) << img.error().message;
    return img ? std::move(*img) : nullptr;
}

}  // namespace

TEST(Vmdk, SubformatsReadBackWhatWasWritten) {
    TempDir d;
    const uint64_t size = (6ULL << 20) + 512;  // not a whole number of grains
    for (auto sub : {VmdkSubformat::MonolithicSparse, VmdkSubformat::MonolithicFlat, VmdkSubformat::TwoGbSparse,
                     VmdkSubformat::TwoGbFlat}) {
        auto p = d / fmt::format("s{}.vmdk", static_cast<int>(sub));
        CreateOptions c;
        c.format = ImageFormat::Vmdk;
        c.size = size;
        c.vmdk_subformat = sub;
        ASSERT_TRUE(create_image(p, c));
        std::vector<char> model(size, 0);
        {
            auto img = open_rw(p);
            ASSERT_TRUE(img);
            EXPECT_EQ(img->size(), size);
            std::mt19937 rng(static_cast<unsigned>(sub) + 1);
            for (int i = 0; i < 50; ++i) {
                uint64_t len = 1 + rng() % 200000;
                uint64_t off = rng() % (size - len);
                auto data = noise(len, static_cast<unsigned>(i));
                ASSERT_TRUE(img->write(off, data.data(), len));
                std::copy(data.begin(), data.end(), model.begin() + static_cast<long>(off));
            }
            auto tail = noise(512, 99);
            ASSERT_TRUE(img->write(size - 512, tail.data(), 512));
            std::copy(tail.begin(), tail.end(), model.end() - 512);
            ASSERT_TRUE(img->write_zeroes(65536, 3 * 65536, true));
            std::fill(model.begin() + 65536, model.begin() + 4 * 65536, 0);
            ASSERT_TRUE(img->close());
        }
        OpenOptions ro;
        auto img = open_image(p, ro);
        ASSERT_TRUE(img) << img.error().message;
        std::vector<char> back(size);
        ASSERT_TRUE((*img)->read(0, back.data(), size));
        EXPECT_TRUE(back == model) << "subformat " << static_cast<int>(sub);
        auto* v = vmdk_cast(img->get());
        ASSERT_TRUE(v);
        auto chk = v->check();
        ASSERT_TRUE(chk);
        EXPECT_EQ(chk->corruptions, 0);
    }
}

TEST(Vmdk, StreamOptimizedWritesEachGrainOnce) {
    TempDir d;
    auto p = d / "s.vmdk";
    CreateOptions c;
    c.format = ImageFormat::Vmdk;
    c.size = 1 << 20;
    c.vmdk_subformat = VmdkSubformat::StreamOptimized;
    ASSERT_TRUE(create_image(p, c));
    auto img = open_rw(p);
    ASSERT_TRUE(img);
    auto data = noise(200000, 3);
    ASSERT_TRUE(img->write(1000, data.data(), data.size()));
    auto again = img->write(1000, data.data(), 10);
    ASSERT_FALSE(again);  // a compressed grain is written once
    ASSERT_TRUE(img->close());
    img.reset();
    auto ro = open_image(p);
    ASSERT_TRUE(ro);
    std::vector<char> back(data.size());
    ASSERT_TRUE((*ro)->read(1000, back.data(), back.size()));
    EXPECT_TRUE(back == data);
    auto e = (*ro)->block_status(0, 1 << 20);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, ExtentKind::Compressed);
    auto info = (*ro)->info();
    ASSERT_TRUE(info && info->vmdk);
    EXPECT_EQ(info->vmdk->create_type, "streamOptimized");
    EXPECT_TRUE(info->vmdk->extents.at(0).compressed);
}

TEST(Vmdk, ZeroedGrainsAndParent) {
    TempDir d;
    CreateOptions c;
    c.format = ImageFormat::Vmdk;
    c.size = 1 << 20;
    ASSERT_TRUE(create_image(d / "base.vmdk", c));
    auto fill = noise(1 << 20, 8);
    {
        auto b = open_rw(d / "base.vmdk");
        ASSERT_TRUE(b);
        ASSERT_TRUE(b->write(0, fill.data(), fill.size()));
        ASSERT_TRUE(b->close());
    }
    c.backing_file = "base.vmdk";
    c.size = 0;
    c.vmdk_zeroed_grain = true;
    ASSERT_TRUE(create_image(d / "top.vmdk", c));
    auto top = open_rw(d / "top.vmdk");
    ASSERT_TRUE(top);
    ASSERT_EQ(top->size(), 1U << 20);
    ASSERT_TRUE(top->backing());
    // A partial grain write keeps the parent's bytes around it; a zeroed
    // grain hides the parent.
    ASSERT_TRUE(top->write(100, "xyz", 3));
    ASSERT_TRUE(top->write_zeroes(65536, 65536, true));
    auto e = top->block_status(65536, 65536);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, ExtentKind::Zero);
    std::vector<char> back(1 << 20);
    ASSERT_TRUE(top->read(0, back.data(), back.size()));
    std::memcpy(fill.data() + 100, "xyz", 3);
    std::fill(fill.begin() + 65536, fill.begin() + 131072, 0);
    EXPECT_TRUE(back == fill);
}
