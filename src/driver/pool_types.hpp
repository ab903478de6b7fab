// The value types of the storage half of the Driver API (pool_api.hpp):
// pools, volumes, their flags, and the chunks of volume streams.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

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

}  // namespace vireo::driver
