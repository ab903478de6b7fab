// A loop device over an image file made by the test, detached at the end
// even when the test fails; the mount guard unmounts a target likewise.
#pragma once

#include <filesystem>
#include <string>

#include "support/support.hpp"

namespace vireo::pool::test_support {

class LoopDevice {
public:
    // Make a sparse `size`-byte file and attach it (with partition scanning
    // when `partitions`). Check ok(), else skip with why().
    LoopDevice(const std::filesystem::path& file, std::uint64_t size, bool partitions) {
        std::filesystem::resize_file(make_file(file), size);
        std::vector<std::string> argv{"losetup", "-f", "--show"};
        if (partitions) argv.push_back("-P");
        argv.push_back(file.string());
        auto r = vireo::test::run(argv);
        if (r.exit_code != 0) {
            why_ = "cannot attach a loop device (losetup: " + r.err + ")";
            return;
        }
        device_ = r.out.substr(0, r.out.find('\n'));
    }
    ~LoopDevice() {
        if (!device_.empty()) vireo::test::run({"losetup", "-d", device_});
    }
    LoopDevice(const LoopDevice&) = delete;
    LoopDevice& operator=(const LoopDevice&) = delete;

    [[nodiscard]] bool ok() const { return !device_.empty(); }
    [[nodiscard]] const std::string& why() const { return why_; }
    [[nodiscard]] const std::string& device() const { return device_; }
    [[nodiscard]] std::string name() const { return std::filesystem::path(device_).filename().string(); }

private:
    static const std::filesystem::path& make_file(const std::filesystem::path& f) {
        std::FILE* fp = std::fopen(f.c_str(), "w");
        if (fp) std::fclose(fp);
        return f;
    }
    std::string device_;
    std::string why_;
};

// Unmounts `dir` at the end of the test if something is still mounted there.
class MountGuard {
public:
    explicit MountGuard(std::filesystem::path dir) : dir_(std::move(dir)) {}
    ~MountGuard() {
        if (vireo::test::run({"mountpoint", "-q", dir_.string()}).exit_code == 0) vireo::test::run({"umount", "-l", dir_.string()});
    }
    MountGuard(const MountGuard&) = delete;
    MountGuard& operator=(const MountGuard&) = delete;

private:
    std::filesystem::path dir_;
};

}  // namespace vireo::pool::test_support
