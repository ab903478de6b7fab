// The volume copy engine reads and writes a volume in its own image
// format: a vmdk volume's guest data, not its file's bytes.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "pool/volume_io.hpp"
#include "storage/image.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

namespace vireo::pool {
namespace {

using test::TempDir;

VolumeDef file_volume(const std::filesystem::path& p, const std::string& format, std::uint64_t size) {
    VolumeDef v;
    v.name = p.filename().string();
    v.path = v.key = p.string();
    v.format = format;
    v.capacity = size;
    return v;
}

TEST(VolumeIo, VmdkVolumesAreCopiedAsVmdk) {
    TempDir d;
    const std::uint64_t size = 4u << 20;
    storage::CreateOptions co;
    co.format = storage::ImageFormat::Vmdk;
    co.size = size;
    ASSERT_TRUE(storage::create_image(d / "src.vmdk", co));
    {
        storage::OpenOptions oo;
        oo.format = storage::ImageFormat::Vmdk;
        oo.writable = true;
        auto img = storage::open_image(d / "src.vmdk", oo);
        ASSERT_TRUE(img) << img.error().message;
        const std::string data(65536, 'v');
        ASSERT_TRUE((*img)->write(1 << 20, data.data(), data.size()));
        ASSERT_TRUE((*img)->close());
    }
    co.format = storage::ImageFormat::Raw;
    ASSERT_TRUE(storage::create_image(d / "dst.raw", co));
    auto st = copy_volume_contents(file_volume(d / "src.vmdk", "vmdk", size), file_volume(d / "dst.raw", "raw", size));
    ASSERT_TRUE(st) << st.error().message;
    auto got = files::read(d / "dst.raw");
    ASSERT_TRUE(got);
    ASSERT_EQ(got->size(), size);
    EXPECT_EQ(got->substr(0, 1 << 20), std::string(1 << 20, '\0'));  // no sparse-extent header copied
    EXPECT_EQ(got->substr(1 << 20, 65536), std::string(65536, 'v'));
}

}  // namespace
}  // namespace vireo::pool
