#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include "support/support.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/path_search.hpp"
#include "util/random.hpp"
#include "util/uuid.hpp"

namespace vireo {
namespace {

TEST(Error, ContextChainsMessages) {
    Error inner{ErrorCode::NotFound, "disk '/x.qcow2' not found"};
    Error outer = inner.context("failed to start domain 'web'");
    EXPECT_EQ(outer.code, ErrorCode::NotFound);
    EXPECT_EQ(outer.full_message(), "failed to start domain 'web': disk '/x.qcow2' not found");
}

TEST(Error, CodeNamesRoundTrip) {
    for (auto c : {ErrorCode::NoDomain, ErrorCode::Busy, ErrorCode::XmlError, ErrorCode::Corrupt})
        EXPECT_EQ(error_code_from_string(to_string(c)), c);
    EXPECT_EQ(error_code_from_string("nonsense"), ErrorCode::Internal);
    EXPECT_TRUE(is_retryable(ErrorCode::Busy));
    EXPECT_FALSE(is_retryable(ErrorCode::NoDomain));
}

TEST(Error, ErrnoErrorKeepsTheErrno) {
    Error e = errno_error("cannot open '/x'", ENOSPC);
    EXPECT_EQ(e.sys_errno, ENOSPC);
    EXPECT_EQ(e.system_errno(), ENOSPC);
    EXPECT_EQ(e.code, ErrorCode::System);
    EXPECT_EQ(errno_error("x", ENOENT).code, ErrorCode::NotFound);
    EXPECT_EQ(errno_error("x", ENOENT).sys_errno, ENOENT);
    // An error that does not come from a system call has none.
    EXPECT_EQ(Error(ErrorCode::InvalidArg, "bad").system_errno(), 0);
}

TEST(Error, FailErrnoReadsErrno) {
    errno = EROFS;
    auto r = fail_errno("cannot write '/x'");
    EXPECT_EQ(r.error().sys_errno, EROFS);
    EXPECT_NE(r.error().message.find("cannot write '/x': "), std::string::npos);
}

TEST(Error, ContextKeepsTheErrnoOfTheCause) {
    Error inner = errno_error("cannot rename '/a' to '/b'", EXDEV);
    Error outer = inner.context("cannot save the definition of domain 'web'").context("define failed");
    EXPECT_EQ(outer.sys_errno, EXDEV);
    EXPECT_EQ(outer.system_errno(), EXDEV);
    EXPECT_EQ(outer.cause->sys_errno, EXDEV);
    // A wrapper built by hand (no copy of the errno) still reports its cause's.
    Error by_hand{ErrorCode::Io, "copy failed"};
    by_hand.cause = std::make_shared<const Error>(inner);
    EXPECT_EQ(by_hand.sys_errno, 0);
    EXPECT_EQ(by_hand.system_errno(), EXDEV);
    // A wrapper with an errno of its own keeps it.
    Error own = errno_error("cannot close", EIO);
    own.cause = std::make_shared<const Error>(inner);
    EXPECT_EQ(own.system_errno(), EIO);
}

TEST(Error, FilesErrorsCarryTheErrno) {
    auto r = files::read("/nonexistent-vireo-test/x.xml");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::NotFound);
    EXPECT_EQ(r.error().system_errno(), ENOENT);
}

TEST(Uuid, ParseFormatsBothForms) {
    auto a = Uuid::parse("c7a5fdbd-cdaf-9455-926a-d65c16db1809");
    auto b = Uuid::parse("c7a5fdbdcdaf9455926ad65c16db1809");
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, *b);
    EXPECT_EQ(a->str(), "c7a5fdbd-cdaf-9455-926a-d65c16db1809");
}

TEST(Uuid, RejectsMalformed) {
    EXPECT_FALSE(Uuid::parse(""));
    EXPECT_FALSE(Uuid::parse("c7a5fdbd-cdaf-9455-926a-d65c16db180"));
    EXPECT_FALSE(Uuid::parse("c7a5fdbd-cdaf-9455-926a-d65c16db18090"));
    EXPECT_FALSE(Uuid::parse("z7a5fdbd-cdaf-9455-926a-d65c16db1809"));
}

TEST(Uuid, GeneratedAreVersion4AndDistinct) {
    auto a = Uuid::generate();
    auto b = Uuid::generate();
    EXPECT_NE(a, b);
    EXPECT_EQ(a.bytes[6] >> 4, 4);
    EXPECT_EQ(a.bytes[8] & 0xc0, 0x80);
}

TEST(Random, BytesFillTheWholeBufferAndDiffer) {
    std::array<std::uint8_t, 4096> a{}, b{};
    random_bytes(a);
    random_bytes(b);
    EXPECT_NE(a, b);
    // Every byte written: 4096 zero bytes left from the initialiser would
    // show as one value far above its expected ~16 occurrences.
    std::array<int, 256> counts{};
    for (auto byte : a) ++counts[byte];
    EXPECT_LT(*std::max_element(counts.begin(), counts.end()), 64);
}

TEST(PathSearch, DirsOfPathInOrderWithoutEmptyEntries) {
    const char* old = std::getenv("PATH");
    const std::string saved = old ? old : "";
    test::TempDir a, b;
    ASSERT_TRUE(files::write_atomic(a / "tool", "x"));  // not executable
    ASSERT_TRUE(files::write_atomic(b / "tool", "#!/bin/sh\n"));
    ASSERT_EQ(::chmod((b / "tool").c_str(), 0755), 0);
    ::setenv("PATH", (a.path().string() + "::" + b.path().string() + ":").c_str(), 1);
    EXPECT_EQ(path_dirs({"/unused"}), (std::vector<std::string>{a.path().string(), b.path().string()}));
    EXPECT_EQ(find_executable("tool", path_dirs()), b / "tool");
    EXPECT_FALSE(find_executable("no-such-tool-vireo", path_dirs()));
    ::unsetenv("PATH");
    EXPECT_EQ(path_dirs({"/usr/bin", "/bin"}), (std::vector<std::string>{"/usr/bin", "/bin"}));
    ::setenv("PATH", saved.c_str(), 1);
}

TEST(Files, AtomicWriteReplacesAndLeavesNoTemp) {
    test::TempDir dir;
    auto p = dir / "dom.xml";
    ASSERT_TRUE(files::write_atomic(p, "old"));
    ASSERT_TRUE(files::write_atomic(p, "new content"));
    auto r = files::read(p);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, "new content");
    int n = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++n;
    EXPECT_EQ(n, 1);
}

TEST(Files, ReplaceWithoutSyncAlsoLeavesNoTempAndKeepsTheMode) {
    test::TempDir dir;
    auto p = dir / "net.conf";
    ASSERT_TRUE(files::write_replace(p, "old", 0600));
    ASSERT_TRUE(files::write_replace(p, "new content", 0640));
    EXPECT_EQ(*files::read(p), "new content");
    EXPECT_EQ(std::filesystem::status(p).permissions() & std::filesystem::perms::all, std::filesystem::perms(0640));
    int n = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++n;
    EXPECT_EQ(n, 1);
    EXPECT_FALSE(files::write_replace(dir / "missing-dir/x", "y"));
}

TEST(Files, ReadMissingIsNotFound) {
    auto r = files::read("/nonexistent/vireo/file");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::NotFound);
    EXPECT_NE(r.error().message.find("/nonexistent/vireo/file"), std::string::npos);
}

TEST(Files, SafeNames) {
    EXPECT_TRUE(files::is_safe_name("web-01"));
    EXPECT_FALSE(files::is_safe_name(""));
    EXPECT_FALSE(files::is_safe_name(".."));
    EXPECT_FALSE(files::is_safe_name("../x"));
    EXPECT_FALSE(files::is_safe_name("a\nb"));
    EXPECT_FALSE(files::is_safe_name(std::string(256, 'a')));
    EXPECT_TRUE(files::is_safe_name(std::string(255, 'a')));
}

TEST(Files, MakeDirsCreatesNested) {
    test::TempDir dir;
    auto p = dir.path() / "a" / "b" / "c";
    ASSERT_TRUE(files::make_dirs(p));
    EXPECT_TRUE(std::filesystem::is_directory(p));
    EXPECT_TRUE(files::make_dirs(p));  // idempotent
}

}  // namespace
}  // namespace vireo
