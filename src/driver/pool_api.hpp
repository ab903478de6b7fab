// The storage half of a connection: pools and volumes, as libvirt's storage
// API has them (virStoragePool* / virStorageVol*), and what virsh's pool-* and
// vol-* verbs call.
//
// A Driver hands it out through Driver::pools(); the operations themselves
// are in the operation table (driver/ops/pool.hpp, volume.hpp), served by:
//   qemu:///...  -> daemon side: pool::PoolManager (src/pool) keeps pool
//                   definitions in <confdir>/storage, runs their backends
//                   (dir, fs, disk) and does volume work with src/storage;
//                   client side: the RemoteDriver's HTTP stubs.
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

class Driver;

// The pool and volume operations of a connection under their libvirt-style
// names: one-line wrappers over Driver::call<Op> (driver/ops/pool.hpp,
// volume.hpp), handed out by Driver::pools().
class PoolApi {
public:
    explicit PoolApi(Driver& connection) : conn_(connection) {}
    PoolApi(const PoolApi&) = delete;
    PoolApi& operator=(const PoolApi&) = delete;

    // --- pools ----------------------------------------------------------------
    Result<std::vector<PoolSummary>> list_pools();
    Result<PoolSummary> lookup_pool(std::string_view ref);
    Result<std::string> pool_xml(std::string_view ref, bool inactive);
    Result<PoolSummary> define_pool(std::string_view xml);
    Status undefine_pool(std::string_view ref);
    // Define a transient pool and start it (pool-create); build first if asked.
    Result<PoolSummary> create_pool(std::string_view xml, bool build, PoolBuildFlags flags);
    Status build_pool(std::string_view ref, PoolBuildFlags flags);
    // pool-start; with build: pool-start --build.
    Status start_pool(std::string_view ref, bool build, PoolBuildFlags flags);
    // Stop using the pool (unmount for fs); refused while a running domain
    // uses one of its volumes. A transient pool is gone afterwards.
    Status destroy_pool(std::string_view ref);
    // Remove the pool's storage (dir: the empty target directory; fs: wipe the
    // filesystem signature; disk: the partition table). Only when inactive.
    Status delete_pool(std::string_view ref);
    Status set_pool_autostart(std::string_view ref, bool enabled);
    Status refresh_pool(std::string_view ref);

    // --- volumes --------------------------------------------------------------
    Result<std::vector<VolumeSummary>> list_volumes(std::string_view pool);
    // pool empty: `vol` is a key or a path, searched in every running pool.
    Result<VolumeSummary> lookup_volume(std::string_view pool, std::string_view vol);
    Result<std::string> volume_xml(std::string_view pool, std::string_view vol);
    Result<VolumeSummary> create_volume(std::string_view pool, std::string_view xml, VolumeCreateFlags flags);
    // vol-create-from / vol-clone: new volume `xml` in `pool`, contents copied
    // from (src_pool, src_vol), converted to the new volume's format.
    Result<VolumeSummary> create_volume_from(std::string_view pool, std::string_view xml, std::string_view src_pool,
                                             std::string_view src_vol, VolumeCreateFlags flags);
    // Refused while a running domain uses the volume.
    Status delete_volume(std::string_view pool, std::string_view vol);
    Status wipe_volume(std::string_view pool, std::string_view vol, WipeAlgorithm algorithm);
    Status resize_volume(std::string_view pool, std::string_view vol, std::uint64_t capacity, VolumeResizeFlags flags);
    // Guest-visible bytes of the volume (raw bytes for raw, guest view for qcow2).
    Status download_volume(std::string_view pool, std::string_view vol, TransferRange range, const StreamSink& sink);
    Status upload_volume(std::string_view pool, std::string_view vol, TransferRange range,
                         const StreamSource& source);

private:
    Driver& conn_;
};

}  // namespace vireo::driver
