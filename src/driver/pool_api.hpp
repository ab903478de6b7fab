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

#include "util/error.hpp"
#include "util/uuid.hpp"

namespace vireo::driver {

// libvirt's virStoragePoolState, same numbering.
enum class PoolState { Inactive = 0, Building = 1, Running = 2, Degraded = 3, Inaccessible = 4 };
// "inactive", "building", "running", "degraded", "inaccessible" as virsh prints them.
std::string_view pool_state_name(PoolState s);

struct PoolSummary {
    std::string name;
    Uuid uuid;
    std::string type;  // dir, fs, disk (later: logical, netfs, iscsi)
    PoolState state = PoolState::Inactive;
    bool persistent = true;
    bool autostart = false;
    std::uint64_t capacity = 0;    // bytes; 0 while inactive
    std::uint64_t allocation = 0;
    std::uint64_t available = 0;
    std::string target_path;       // <target><path>
};

// libvirt's virStorageVolType, same numbering.
enum class VolumeType { File = 0, Block = 1, Dir = 2, Network = 3, NetDir = 4, Ploop = 5 };
// "file", "block", "dir", ... as virsh vol-info prints them.
std::string_view volume_type_name(VolumeType t);

struct VolumeSummary {
    std::string name;
    std::string pool;
    std::string key;   // stable identity; the path for dir/fs/disk pools
    std::string path;
    VolumeType type = VolumeType::File;
    std::string format;  // raw, qcow2 (file volumes); none, linux, ... (partitions)
    std::uint64_t capacity = 0;    // guest-visible size in bytes
    std::uint64_t allocation = 0;  // bytes used on the host
    std::uint64_t physical = 0;    // host file size
};

struct PoolBuildFlags {
    bool overwrite = false;     // format even if a filesystem / partition table is there
    bool no_overwrite = false;  // refuse if one is there (the default for fs/disk)
};

struct VolumeCreateFlags {
    bool prealloc_metadata = false;  // qcow2: preallocation=metadata
    bool reflink = false;            // vol-clone --reflink: refuse unless the fs can share blocks
};

struct VolumeResizeFlags {
    bool delta = false;     // capacity is added to the current one
    bool shrink = false;    // allow making it smaller (else refuse)
    bool allocate = false;  // allocate the new space (fallocate)
};

// vol-wipe --algorithm; only what can be done honestly here.
enum class WipeAlgorithm { Zero, Random, Trim };

// One piece of a volume stream (vol-upload / vol-download). `length` bytes
// at the current stream position: `data` holds them, or the chunk is a hole
// (`hole` true, `data` empty) that reads as zeros and is not stored.
struct StreamChunk {
    bool hole = false;
    std::uint64_t length = 0;
    std::span<const char> data;
};
// Receives chunks in stream order; an error stops the transfer.
using StreamSink = std::function<Status(const StreamChunk&)>;
// Produces the next chunk (its data valid until the next call); a chunk of
// length 0 ends the stream.
using StreamSource = std::function<Result<StreamChunk>()>;

struct TransferRange {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;  // 0 = to the end of the volume
    bool sparse = false;       // holes travel as hole chunks (else as zeros)
};

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
