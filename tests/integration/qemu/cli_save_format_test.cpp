// qemu.conf's save_image_format end to end: the session daemon reads it at
// start (a bad value stops it with the file and line), and `vireo
// managedsave` + `vireo start` of the test guest go through the compressor.
#include <gtest/gtest.h>

#include <fstream>

#include "helpers.hpp"
#include "qemu/save_image.hpp"
#include "support/guest.hpp"
#include "support/session_cli.hpp"
#include "util/files.hpp"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class QemuCliSaveFormat : public ::testing::Test {
protected:
    void SetUp() override {
        if (!fs::exists(bin_dir() / "vireod")) VIREO_SKIP("vireod is not built");
        fs::create_directories(dir_ / "config");
        in_use_ = true;
    }

    void TearDown() override {
        if (!in_use_) return;
        cli_.destroy_guests();
        cli_.stop_daemon();
    }

    void write_conf(const std::string& text) { ASSERT_TRUE(files::write_atomic(dir_ / "config" / "qemu.conf", text)); }

    // Run `command` on the guest's console until `expect` (a regex) shows.
    bool on_console(const std::string& name, const std::string& command, const std::string& expect) {
        return cli_.on_console(name, command, expect);
    }

    TempDir dir_;
    SessionCli cli_{dir_.path()};
    bool in_use_ = false;
};

TEST_F(QemuCliSaveFormat, BadSettingStopsTheDaemonNamingFileAndLine) {
    write_conf("# test\nsave_image_format = \"lz4\"\n");
    auto r = cli_({"list", "--all"});
    EXPECT_NE(r.exit_code, 0);
    const std::string where = (dir_ / "config" / "qemu.conf").string() + ":2: ";
    EXPECT_NE(r.err.find(where + "save_image_format 'lz4' is not a save image format (one of: raw, gzip, bzip2, "
                                 "xz, lzop, zstd)"),
              std::string::npos)
        << r.err;
}

TEST_F(QemuCliSaveFormat, ManagedSaveIsCompressedAsQemuConfSays) {
    VIREO_REQUIRE_GUEST();
    if (which("zstd").empty()) VIREO_SKIP("zstd is not installed");
    write_conf("save_image_format = \"zstd\"  # small managed save images\n");
    const std::string xml = (dir_ / "packed.xml").string();
    std::ofstream(xml) << qemu::test::guest_xml("packed");
    ASSERT_EQ(cli_({"define", xml}).exit_code, 0);
    ASSERT_EQ(cli_({"start", "packed"}).exit_code, 0);
    // The file is read back before the save: while the guest's shell starts,
    // it can eat the first characters typed (its terminal query), so a
    // command that merely ran is no proof that the file holds the line.
    ASSERT_TRUE(on_console("packed", "echo kept-$((6*7)) > /tmp/state; cat /tmp/state", "kept-42\r?\n"));

    auto saved = cli_({"managedsave", "packed"});
    ASSERT_EQ(saved.exit_code, 0) << saved.err;
    const fs::path image = dir_ / "config" / "qemu" / "save" / "packed.save";
    auto opened = qemu::open_save_file(image);
    ASSERT_TRUE(opened) << opened.error().full_message();
    EXPECT_EQ(opened->first.compression, qemu::SaveCompression::Zstd);
    auto bytes = files::read(image);
    ASSERT_TRUE(bytes);
    EXPECT_EQ(bytes->substr(static_cast<std::size_t>(opened->first.data_offset), 4), std::string("\x28\xb5\x2f\xfd", 4));

    auto started = cli_({"start", "packed"});
    ASSERT_EQ(started.exit_code, 0) << started.err;
    EXPECT_EQ(cli_({"domstate", "packed", "--reason"}).out, "running (restored)\n\n");
    EXPECT_TRUE(on_console("packed", "cat /tmp/state", "kept-42\r?\n"));
}

}  // namespace
}  // namespace vireo::test
