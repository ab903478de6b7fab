// The backend seam: one class per pool type, registered by type name.
//
// A backend knows how to build / start / stop / delete its kind of pool and
// how to find, create and remove volumes in it. Everything about volume
// *contents* (copy, wipe, resize, upload, download) goes through the image
// engine on the volume's path (volume_io.hpp), so a new type (logical, netfs,
// iscsi) only implements this interface and registers itself in backend.cpp.
//
// Backends are stateless; the PoolManager serialises calls per pool.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "driver/pool_api.hpp"
#include "pool/pool_xml.hpp"
#include "pool/volume_xml.hpp"
#include "util/error.hpp"

namespace vireo::pool {

// Everything a new volume needs beyond its XML, worked out by the manager.
struct VolumeCreateRequest {
    VolumeDef def;                 // name, capacity (final), format (final), backing (absolute path)
    driver::VolumeCreateFlags flags;
};

class Backend {
public:
    virtual ~Backend() = default;

    [[nodiscard]] virtual std::string_view type() const = 0;
    // Volume format when the XML gives none ("raw" for file pools, "none" for partitions).
    [[nodiscard]] virtual std::string_view default_volume_format() const = 0;
    // Formats a volume of this pool may have.
    [[nodiscard]] virtual bool accepts_volume_format(std::string_view format) const = 0;
    // Volumes are sparse files (allocation may be below capacity).
    [[nodiscard]] virtual bool sparse_volumes() const { return true; }

    // Whether this host can run the type at all (kernel features, tools);
    // the error says what is missing.
    [[nodiscard]] virtual Status host_support() const { return {}; }
    // Static checks of a definition beyond the XML schema.
    [[nodiscard]] virtual Status check_definition(const PoolDef&) const { return {}; }

    virtual Status build(const PoolDef& def, const driver::PoolBuildFlags& flags) = 0;
    virtual Status start(const PoolDef& def) = 0;
    virtual Status stop(const PoolDef& def) = 0;
    // Remove the pool's storage (inactive pool).
    virtual Status remove(const PoolDef& def) = 0;
    // Is the pool's storage still in the started state (after a daemon restart)?
    virtual bool still_active(const PoolDef& def) = 0;

    virtual Result<PoolSizes> sizes(const PoolDef& def) = 0;
    // All volumes, cheaply (no full image open).
    virtual Result<std::vector<VolumeDef>> scan(const PoolDef& def) = 0;
    // Re-read one volume (after an operation changed it); NoVolume when gone.
    virtual Result<VolumeDef> stat_volume(const PoolDef& def, const VolumeDef& vol) = 0;

    virtual Result<VolumeDef> create_volume(const PoolDef& def, const VolumeCreateRequest& req) = 0;
    virtual Status delete_volume(const PoolDef& def, const VolumeDef& vol) = 0;
    // Change the capacity (contents kept); Unsupported where the type cannot.
    virtual Status resize_volume(const PoolDef& def, const VolumeDef& vol, std::uint64_t capacity,
                                 const driver::VolumeResizeFlags& flags) = 0;
};

// The backend for a pool type; Unsupported with the reason for types that
// exist in libvirt but cannot run here (logical, netfs, iscsi).
Result<std::unique_ptr<Backend>> make_backend(std::string_view type);

// Backends, defined in their own files.
std::unique_ptr<Backend> make_dir_backend();
std::unique_ptr<Backend> make_fs_backend();
std::unique_ptr<Backend> make_disk_backend();

}  // namespace vireo::pool
