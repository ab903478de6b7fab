// Helpers shared by vireo-img's integration tests (real qemu-img/qemu-io
// are the oracle).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/support.hpp"
#include "util/files.hpp"

namespace vireo::test::img {

inline std::string vimg() { return (vireo::test::bin_dir() / "vireo-img").string(); }

#define NEED_QEMU()                                                                          \
    do {                                                                                     \
        if (vireo::test::which("qemu-img").empty() || vireo::test::which("qemu-io").empty()) \
            VIREO_SKIP("qemu-img/qemu-io not installed");                                    \
    } while (0)

// Run a command that must succeed.
inline void ok(const std::vector<std::string>& argv) {
    auto r = vireo::test::run(argv);
    ASSERT_EQ(r.exit_code, 0) << argv[0] << " " << (argv.size() > 1 ? argv[1] : "") << ": " << r.err << r.out;
}

inline void qemu_io(const std::string& img, const std::vector<std::string>& cmds) {
    std::vector<std::string> argv{"qemu-io"};
    for (const auto& c : cmds) {
        argv.push_back("-c");
        argv.push_back(c);
    }
    argv.push_back(img);
    ok(argv);
}

inline std::string slurp(const std::filesystem::path& p) {
    auto r = vireo::files::read(p);
    return r ? *r : std::string();
}

}  // namespace vireo::test::img
