// qemu.conf parsing and the save image compressor programs.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>

#include "qemu/qemu_conf.hpp"
#include "qemu/save_compressor.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

using namespace vireo;
using qemu::SaveCompression;

namespace {

Result<qemu::QemuDriverConfig> parse(const std::string& text) {
    qemu::QemuDriverConfig cfg;
    auto r = qemu::parse_qemu_conf(text, "/etc/vireo/qemu.conf", cfg);
    if (!r) return std::unexpected(r.error());
    return cfg;
}

std::string error_of(const std::string& text) {
    auto r = parse(text);
    return r ? "" : r.error().message;
}

TEST(QemuConf, ReadsSaveImageFormatWithCommentsAndBlankLines) {
    auto cfg = parse("# vireo qemu.conf\n\n  save_image_format = \"zstd\"   # small images\n");
    ASSERT_TRUE(cfg) << cfg.error().message;
    EXPECT_EQ(cfg->save_image_format, SaveCompression::Zstd);
    EXPECT_EQ(parse("save_image_format=\"raw\"")->save_image_format, SaveCompression::None);
    EXPECT_EQ(parse("")->save_image_format, SaveCompression::None) << "default: raw";
    for (const char* name : {"gzip", "bzip2", "xz", "lzop", "zstd"})
        EXPECT_EQ(qemu::save_image_format_name(*qemu::parse_save_image_format(name)), name);
}

TEST(QemuConf, ErrorsNameTheFileTheLineAndWhatIsWrong) {
    EXPECT_EQ(error_of("# c\nsave_image_format = \"lz4\"\n"),
              "/etc/vireo/qemu.conf:2: save_image_format 'lz4' is not a save image format "
              "(one of: raw, gzip, bzip2, xz, lzop, zstd)");
    EXPECT_EQ(error_of("\n\nsave_image_fromat = \"gzip\"\n"),
              "/etc/vireo/qemu.conf:3: unknown setting 'save_image_fromat' (known: save_image_format, malloc_hugepages, "
              "user, group, guest_id_range, dynamic_ownership, namespaces)");
    EXPECT_NE(error_of("save_image_format = 3").find(":1: save_image_format must be a quoted string"),
              std::string::npos);
    EXPECT_NE(error_of("save_image_format = \"gzip").find(":1: unterminated string"), std::string::npos);
    EXPECT_NE(error_of("save_image_format \"gzip\"").find(":1: expected '=' after 'save_image_format'"),
              std::string::npos);
    EXPECT_NE(error_of("save_image_format = gzip").find(":1: "), std::string::npos);
    EXPECT_NE(error_of("save_image_format = \"gzip\" x").find("unexpected 'x'"), std::string::npos);
}

TEST(QemuConf, MallocHugepagesIsOnByDefaultAndTakesZeroOrOne) {
    EXPECT_TRUE(parse("")->malloc_hugepages);
    EXPECT_FALSE(parse("malloc_hugepages = 0\n")->malloc_hugepages);
    EXPECT_TRUE(parse("malloc_hugepages = 1 # default\n")->malloc_hugepages);
    EXPECT_EQ(error_of("malloc_hugepages = 2"), "/etc/vireo/qemu.conf:1: malloc_hugepages must be 0 or 1");
    EXPECT_EQ(error_of("malloc_hugepages = \"yes\""), "/etc/vireo/qemu.conf:1: malloc_hugepages must be 0 or 1");
}

TEST(QemuConf, IsolationSettings) {
    auto def = parse("");
    ASSERT_TRUE(def);
    EXPECT_TRUE(def->dac_user.empty()) << "default: a uid/gid per guest";
    EXPECT_EQ(def->guest_id_range.first, 65536u);
    EXPECT_EQ(def->guest_id_range.last, 98303u);
    EXPECT_TRUE(def->dynamic_ownership);
    EXPECT_TRUE(def->mount_namespace);
    auto cfg = parse("user = \"vireo-qemu\"\ngroup = \"kvm\"\nguest_id_range = \"70000-70999\"\n"
                     "dynamic_ownership = 0\nnamespaces = []\n");
    ASSERT_TRUE(cfg) << cfg.error().message;
    EXPECT_EQ(cfg->dac_user, "vireo-qemu");
    EXPECT_EQ(cfg->dac_group, "kvm");
    EXPECT_EQ(cfg->guest_id_range.first, 70000u);
    EXPECT_FALSE(cfg->dynamic_ownership);
    EXPECT_FALSE(cfg->mount_namespace);
    EXPECT_TRUE(parse("namespaces = [ \"mount\" ]")->mount_namespace);
    EXPECT_NE(error_of("namespaces = [ \"net\" ]").find("'net' is not a namespace vireo makes"), std::string::npos);
    EXPECT_NE(error_of("namespaces = [ \"mount\"").find("no closing ']'"), std::string::npos);
    EXPECT_NE(error_of("namespaces = \"mount\"").find("must be a list"), std::string::npos);
    EXPECT_NE(error_of("guest_id_range = \"0-5\"").find("not an id range"), std::string::npos);
    EXPECT_NE(error_of("user = \"a:b\"").find("user must be"), std::string::npos);
}

TEST(QemuConf, MissingFileMeansDefaultsAndAFileIsRead) {
    test::TempDir tmp;
    qemu::QemuDriverConfig cfg;
    ASSERT_TRUE(qemu::load_qemu_conf(tmp / "qemu.conf", cfg));
    EXPECT_EQ(cfg.save_image_format, SaveCompression::None);
    ASSERT_TRUE(files::write_atomic(tmp / "qemu.conf", "save_image_format = \"gzip\"\n"));
    ASSERT_TRUE(qemu::load_qemu_conf(tmp / "qemu.conf", cfg));
    EXPECT_EQ(cfg.save_image_format, SaveCompression::Gzip);
}

TEST(SaveCompressor, MissingProgramIsAClearError) {
    test::TempDir tmp;
    const std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
    ::setenv("PATH", tmp.path().c_str(), 1);
    auto r = qemu::find_compressor(SaveCompression::Zstd);
    ::setenv("PATH", path.c_str(), 1);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "save_image_format 'zstd' needs the 'zstd' program, not found in PATH");
}

TEST(SaveCompressor, GzipRoundTripAndFailureText) {
    if (test::which("gzip").empty()) VIREO_SKIP("gzip is not installed");
    test::TempDir tmp;
    const std::string data(100000, 'v');
    ASSERT_TRUE(files::write_atomic(tmp / "in", data));
    auto run_filter = [&](bool compress, const std::string& from, const std::string& to) -> Status {
        UniqueFd in(::open((tmp / from).c_str(), O_RDONLY | O_CLOEXEC));
        UniqueFd out(::open((tmp / to).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        auto f = compress ? qemu::start_compressor(SaveCompression::Gzip, in.get(), out.get())
                          : qemu::start_decompressor(SaveCompression::Gzip, in.get(), out.get());
        if (!f) return std::unexpected(f.error());
        return f->wait();
    };
    ASSERT_TRUE(run_filter(true, "in", "in.gz"));
    auto gz = files::read(tmp / "in.gz");
    ASSERT_TRUE(gz);
    EXPECT_LT(gz->size(), 1000u);
    EXPECT_EQ(gz->substr(0, 2), "\x1f\x8b");
    ASSERT_TRUE(run_filter(false, "in.gz", "back"));
    EXPECT_EQ(*files::read(tmp / "back"), data);

    auto bad = run_filter(false, "in", "never");  // not gzip data
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("'gzip' exited with status 1: "), std::string::npos) << bad.error().message;
    EXPECT_NE(bad.error().message.find("not in gzip format"), std::string::npos) << bad.error().message;
}

}  // namespace
