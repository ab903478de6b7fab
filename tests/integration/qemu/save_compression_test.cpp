// Compressed save images (save_image_format) with the real test guest under
// TCG: a raw save as the reference, then zstd (save/restore) and gzip
// (managedsave + start); each image smaller than the raw one, the bytes
// after the header the compressor's, the guest's shell state kept; a
// missing or failing compressor, a damaged image: clear errors, no leftovers.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <cstdint>
#include <cstdio>

#include "helpers.hpp"
#include "qemu/save_image.hpp"
#include "support/guest.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::qemu::test;
using driver::DomainState;
using qemu::SaveCompression;
namespace fs = std::filesystem;
using std::chrono::seconds;

namespace {

// The first bytes of the stream after a save image's header.
std::string stream_magic(const fs::path& image, std::size_t n) {
    auto opened = qemu::open_save_file(image);
    if (!opened) return "unreadable: " + opened.error().message;
    auto text = files::read(image);
    if (!text) return "unreadable";
    return text->substr(static_cast<std::size_t>(opened->first.data_offset), n);
}

void expect_shell_state(GuestFixture& f, const std::string& name) {
    auto con = f.console(name);
    auto out = con.run("cat /tmp/state", seconds(30));
    ASSERT_TRUE(out);
    EXPECT_NE(out->find("kept-42"), std::string::npos) << *out;
}

void use_format(GuestFixture& f, SaveCompression format) {
    f.close();  // the guest keeps running; the new driver reattaches
    f.open([format](qemu::QemuDriverConfig& c) { c.save_image_format = format; });
}

TEST(QemuSaveCompression, ZstdAndGzipImagesAreSmallerAndKeepTheShellState) {
    VIREO_REQUIRE_GUEST();
    if (vireo::test::which("zstd").empty() || vireo::test::which("gzip").empty()) VIREO_SKIP("needs zstd and gzip");
    GuestFixture f;
    f.define_and_start("packer");
    f.wait_ready("packer");
    {
        auto con = f.console("packer");
        ASSERT_TRUE(con.run("echo kept-$((6*7)) > /tmp/state", seconds(30)));
    }

    // The reference: a raw save of the same guest.
    const fs::path raw = f.tmp / "raw.save";
    auto s = f.drv->save_domain("packer", raw.string());
    ASSERT_TRUE(s) << s.error().full_message();
    const auto raw_size = fs::file_size(raw);
    ASSERT_TRUE(f.drv->restore_domain(raw.string(), false));

    // zstd, but its program is not in PATH: a clear error, nothing changed.
    use_format(f, SaveCompression::Zstd);
    const fs::path zst = f.tmp / "zstd.save";
    {
        const std::string path = std::getenv("PATH");
        ::setenv("PATH", (f.tmp / "no-programs").c_str(), 1);
        auto missing = f.drv->save_domain("packer", zst.string());
        ::setenv("PATH", path.c_str(), 1);
        ASSERT_FALSE(missing);
        EXPECT_EQ(missing.error().full_message(),
                  "failed to save domain 'packer': save_image_format 'zstd' needs the 'zstd' program, not found in "
                  "PATH");
        EXPECT_EQ(f.info("packer").state, DomainState::Running);
        EXPECT_FALSE(fs::exists(zst));
    }

    // A compressor that fails (here one that says the disk is full): its
    // words, the guest running on, no partial image.
    {
        const fs::path fake = f.tmp / "failing-programs";
        fs::create_directories(fake);
        ASSERT_TRUE(files::write_atomic(fake / "zstd", "#!/bin/sh\necho 'zstd: disk full' >&2\nexit 1\n", 0755));
        const std::string path = std::getenv("PATH");
        ::setenv("PATH", fake.c_str(), 1);
        auto failed = f.drv->save_domain("packer", zst.string());
        ::setenv("PATH", path.c_str(), 1);
        ASSERT_FALSE(failed);
        EXPECT_NE(failed.error().full_message().find("'zstd' exited with status 1: zstd: disk full"),
                  std::string::npos)
            << failed.error().full_message();
        EXPECT_EQ(f.info("packer").state, DomainState::Running);
        EXPECT_FALSE(fs::exists(zst));
    }

    s = f.drv->save_domain("packer", zst.string());
    ASSERT_TRUE(s) << s.error().full_message();
    EXPECT_EQ(f.info("packer").reason, "saved");
    EXPECT_LT(fs::file_size(zst), raw_size);
    EXPECT_EQ(stream_magic(zst, 4), std::string("\x28\xb5\x2f\xfd", 4)) << "zstd frame magic after the header";
    auto r = f.drv->restore_domain(zst.string(), false);
    ASSERT_TRUE(r) << r.error().full_message();
    EXPECT_EQ(r->reason, "restored");
    expect_shell_state(f, "packer");

    // gzip through managedsave, restored by start.
    use_format(f, SaveCompression::Gzip);
    auto m = f.drv->managed_save("packer");
    ASSERT_TRUE(m) << m.error().full_message();
    const fs::path managed = f.tmp / "save" / "packer.save";
    EXPECT_LT(fs::file_size(managed), raw_size);
    EXPECT_EQ(stream_magic(managed, 2), "\x1f\x8b") << "gzip magic after the header";
    std::printf("image sizes: raw %ju, zstd %ju, gzip %ju bytes\n", static_cast<std::uintmax_t>(raw_size),
                static_cast<std::uintmax_t>(fs::file_size(zst)), static_cast<std::uintmax_t>(fs::file_size(managed)));
    // The format is read from the image, whatever the setting is now.
    use_format(f, SaveCompression::None);
    auto st = f.drv->start_domain("packer", {});
    ASSERT_TRUE(st) << st.error().full_message();
    EXPECT_EQ(f.info("packer").reason, "restored");
    EXPECT_FALSE(fs::exists(managed));
    expect_shell_state(f, "packer");
}

TEST(QemuSaveCompression, DamagedCompressedImageFailsClearlyAndLeavesNothing) {
    VIREO_REQUIRE_GUEST();
    if (vireo::test::which("gzip").empty()) VIREO_SKIP("needs gzip");
    GuestFixture f;
    // A gzip image whose stream is not gzip: the decompressor's own words.
    qemu::SaveHeader h;
    h.xml = guest_xml("broken");
    h.compression = SaveCompression::Gzip;
    const fs::path image = f.tmp / "broken.save";
    auto fd = qemu::create_save_file(image, h, false);
    ASSERT_TRUE(fd);
    ASSERT_EQ(::write(fd->get(), "not gzip at all", 15), 15);
    fd->reset();
    auto r = f.drv->restore_domain(image.string(), false);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().full_message().find("not in gzip format"), std::string::npos) << r.error().full_message();
    EXPECT_FALSE(f.drv->lookup_domain("broken"));
    EXPECT_TRUE(qemu_pids_for("broken").empty());
    EXPECT_TRUE(files_starting_with(f.tmp / "run", "broken").empty());
}

}  // namespace
