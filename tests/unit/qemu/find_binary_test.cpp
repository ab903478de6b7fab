// Where the driver finds QEMU: find_qemu_binary() picks what the full
// listing find_qemu_binaries() would, the first search directory wins.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "qemu/probe.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

using namespace vireo;

namespace {

// Sets PATH for the test, restores it after.
class PathFor {
public:
    explicit PathFor(const std::string& value) {
        if (const char* old = std::getenv("PATH")) old_ = old;
        ::setenv("PATH", value.c_str(), 1);
    }
    ~PathFor() { ::setenv("PATH", old_.c_str(), 1); }

private:
    std::string old_;
};

void make_executable(const std::filesystem::path& p) {
    ASSERT_TRUE(files::write_atomic(p, "#!/bin/sh\n"));
    ASSERT_EQ(::chmod(p.c_str(), 0755), 0);
}

TEST(FindQemuBinary, FirstSearchDirectoryWinsAsInTheFullListing) {
    test::TempDir a, b;
    make_executable(a / "qemu-system-vireotest");
    make_executable(b / "qemu-system-vireotest");
    ASSERT_TRUE(files::write_atomic(a / "qemu-system-notexec", "x"));  // not executable: skipped
    make_executable(b / "qemu-system-notexec");
    PathFor path(a.path().string() + ":" + b.path().string());

    auto found = qemu::find_qemu_binary("vireotest");
    ASSERT_TRUE(found) << found.error().message;
    EXPECT_EQ(*found, a / "qemu-system-vireotest");
    auto notexec = qemu::find_qemu_binary("notexec");
    ASSERT_TRUE(notexec) << notexec.error().message;
    EXPECT_EQ(*notexec, b / "qemu-system-notexec");

    for (const char* arch : {"vireotest", "notexec"}) {
        auto listed = qemu::find_qemu_binaries();
        auto it = std::find_if(listed.begin(), listed.end(), [&](const auto& p) {
            return p.filename() == std::string("qemu-system-") + arch;
        });
        ASSERT_NE(it, listed.end()) << arch;
        EXPECT_EQ(*it, *qemu::find_qemu_binary(arch)) << arch;
    }
}

TEST(FindQemuBinary, MissingArchitectureIsNotFound) {
    auto r = qemu::find_qemu_binary("no-such-arch-vireo");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::NotFound);
    EXPECT_EQ(r.error().message,
              "no QEMU binary 'qemu-system-no-such-arch-vireo' found in PATH or /usr/bin (is QEMU installed?)");
}

}  // namespace
