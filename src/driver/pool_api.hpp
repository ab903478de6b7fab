// The storage half of a connection: pools and volumes, as libvirt's storage
// API has them (virStoragePool* / virStorageVol*), and what virsh's pool-* and
// vol-* verbs call.
//
// A Driver hands it out through Driver::pools():
//   qemu:///...  -> daemon side: pool::PoolManager (src/pool) keeps pool
//                   definitions in <confdir>/storage, runs their backends
//                   (dir, fs, disk) and does volume work with src/storage;
//                   client side: the RemoteDriver's pool half speaks HTTP.
//   test:///default -> a PoolManager with no persistence and a "default-pool".
//
// Pools are addressed by name or UUID (tried in that order); volumes by
// (pool, volume name), or by key / path alone where virsh allows it
// (lookup_volume with an empty pool).
//
// Definitions travel as libvirt pool / volume XML (src/pool parses and
// formats them); everything else is typed.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "driver/pool_types.hpp"
#include "util/error.hpp"

namespace vireo::driver {

class PoolApi {
public:
    virtual ~PoolApi() = default;

    // --- pools ----------------------------------------------------------------
    virtual Result<std::vector<PoolSummary>> list_pools() = 0;
    virtual Result<PoolSummary> lookup_pool(std::string_view ref) = 0;
    virtual Result<std::string> pool_xml(std::string_view ref, bool inactive) = 0;
    virtual Result<PoolSummary> define_pool(std::string_view xml) = 0;
    virtual Status undefine_pool(std::string_view ref) = 0;
    // Define a transient pool and start it (pool-create); build first if asked.
    virtual Result<PoolSummary> create_pool(std::string_view xml, bool build, PoolBuildFlags flags) = 0;
    virtual Status build_pool(std::string_view ref, PoolBuildFlags flags) = 0;
    // pool-start; with build: pool-start --build.
    virtual Status start_pool(std::string_view ref, bool build, PoolBuildFlags flags) = 0;
    // Stop using the pool (unmount for fs); refused while a running domain
    // uses one of its volumes. A transient pool is gone afterwards.
    virtual Status destroy_pool(std::string_view ref) = 0;
    // Remove the pool's storage (dir: the empty target directory; fs: wipe the
    // filesystem signature; disk: the partition table). Only when inactive.
    virtual Status delete_pool(std::string_view ref) = 0;
    virtual Status set_pool_autostart(std::string_view ref, bool enabled) = 0;
    virtual Status refresh_pool(std::string_view ref) = 0;

    // --- volumes --------------------------------------------------------------
    virtual Result<std::vector<VolumeSummary>> list_volumes(std::string_view pool) = 0;
    // pool empty: `vol` is a key or a path, searched in every running pool.
    virtual Result<VolumeSummary> lookup_volume(std::string_view pool, std::string_view vol) = 0;
    virtual Result<std::string> volume_xml(std::string_view pool, std::string_view vol) = 0;
    virtual Result<VolumeSummary> create_volume(std::string_view pool, std::string_view xml, VolumeCreateFlags flags) = 0;
    // vol-create-from / vol-clone: new volume `xml` in `pool`, contents copied
    // from (src_pool, src_vol), converted to the new volume's format.
    virtual Result<VolumeSummary> create_volume_from(std::string_view pool, std::string_view xml,
                                                     std::string_view src_pool, std::string_view src_vol,
                                                     VolumeCreateFlags flags) = 0;
    // Refused while a running domain uses the volume.
    virtual Status delete_volume(std::string_view pool, std::string_view vol) = 0;
    virtual Status wipe_volume(std::string_view pool, std::string_view vol, WipeAlgorithm algorithm) = 0;
    virtual Status resize_volume(std::string_view pool, std::string_view vol, std::uint64_t capacity,
                                 VolumeResizeFlags flags) = 0;
    // Guest-visible bytes of the volume (raw bytes for raw, guest view for qcow2).
    virtual Status download_volume(std::string_view pool, std::string_view vol, TransferRange range,
                                   const StreamSink& sink) = 0;
    virtual Status upload_volume(std::string_view pool, std::string_view vol, TransferRange range,
                                 const StreamSource& source) = 0;
};

}  // namespace vireo::driver
