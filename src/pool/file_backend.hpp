// The dir backend (a directory of image files) and what the fs backend
// reuses from it: file volumes in a target directory.
#pragma once

#include <filesystem>

#include "pool/backend.hpp"

namespace vireo::pool {

class DirBackend : public Backend {
public:
    [[nodiscard]] std::string_view type() const override { return "dir"; }
    [[nodiscard]] std::string_view default_volume_format() const override { return "raw"; }
    [[nodiscard]] bool accepts_volume_format(std::string_view format) const override {
        return format == "raw" || format == "qcow2";
    }

    Status build(const PoolDef& def, const driver::PoolBuildFlags& flags) override;
    Status start(const PoolDef& def) override;
    Status stop(const PoolDef& def) override;
    Status remove(const PoolDef& def) override;
    bool still_active(const PoolDef& def) override;

    Result<PoolSizes> sizes(const PoolDef& def) override;
    Result<std::vector<VolumeDef>> scan(const PoolDef& def) override;
    Result<VolumeDef> stat_volume(const PoolDef& def, const VolumeDef& vol) override;
    Result<VolumeDef> create_volume(const PoolDef& def, const VolumeCreateRequest& req) override;
    Status delete_volume(const PoolDef& def, const VolumeDef& vol) override;
    Status resize_volume(const PoolDef& def, const VolumeDef& vol, std::uint64_t capacity,
                         const driver::VolumeResizeFlags& flags) override;

protected:
    // mkdir -p the target with the definition's permissions.
    static Status make_target_dir(const PoolDef& def);
};

// Describe one file from a stat and a read of its first 4 KiB (qcow2 header:
// size, version, backing file and format). No full image open.
Result<VolumeDef> probe_volume_file(const std::filesystem::path& path, const std::string& name);

}  // namespace vireo::pool
