// Shared helpers for vireo's tests: where things are, temp dirs, skipping.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

namespace vireo::test {

std::filesystem::path source_dir();
std::filesystem::path binary_dir();
// build/bin: vireo, vireod, vireo-img.
std::filesystem::path bin_dir();
// build/guest: the test guest built by tests/guest/build-guest.sh.
std::filesystem::path guest_dir();

// A fresh directory under $TMPDIR removed (recursively) at destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

struct CommandResult {
    int exit_code = -1;  // exit status, or 128+signal
    std::string out;
    std::string err;
};
// Run argv (no shell), capturing stdout and stderr; stdin is /dev/null
// unless `input` is given.
CommandResult run(const std::vector<std::string>& argv, const std::string& input = {});

// Full path of a program on PATH, or empty.
std::string which(const std::string& program);

}  // namespace vireo::test

// Skip the current test with a reason that CTest prints; never pass silently.
#define VIREO_SKIP(reason) GTEST_SKIP() << "SKIPPED: " << (reason)
