// Storage pool XML in libvirt's format (https://libvirt.org/formatstorage.html):
// parse, validate and format. Output is valid against libvirt's
// storagepool.rng.
//
//   <pool type='dir'>
//     <name>default</name>
//     <uuid>...</uuid>
//     <source/>                       (fs/disk: <device path='/dev/x'/><format type='ext4'/>;
//                                      an active disk pool's device lists its <freeExtent start= end=/>)
//     <target><path>/var/lib/vireo/images</path>
//       <permissions><mode>0755</mode></permissions></target>
//   </pool>
//
// Errors name the element ("XML error: line 3: /pool/target/path: ...").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"
#include "util/uuid.hpp"

namespace vireo::pool {

// <permissions> of a pool target or a volume target.
struct Permissions {
    std::optional<unsigned> mode;   // e.g. 0755
    std::optional<long> owner;      // uid; -1 = unchanged
    std::optional<long> group;
    std::string label;              // SELinux label, kept verbatim
};

struct PoolDef {
    std::string type;   // dir, fs, disk (logical, netfs, iscsi parse but are refused later)
    std::string name;
    Uuid uuid;
    // <features><cow state='yes|no'/></features>: a btrfs target directory's
    // copy-on-write flag, set at pool build ("" = left as it is)
    std::string features_cow;
    // <source>
    std::vector<std::string> devices;  // <device path=.../> (fs, disk)
    // <device part_separator='yes|no'>, one per device ("" when absent);
    // vireo reads partition names from the kernel, so it is only kept.
    std::vector<std::string> device_part_separators;
    std::string source_format;         // fs: ext4, ...; disk: gpt, dos, ...
    std::string source_dir;            // netfs: <dir path=.../>
    std::string source_host;           // netfs/iscsi: <host name=.../>
    std::string source_name;           // logical: <name>vg</name>
    // <target>
    std::string target_path;
    Permissions target_perms;
};

// A free range of a disk pool's device, in bytes: [start, end).
struct FreeExtent {
    std::uint64_t start = 0;
    std::uint64_t end = 0;
};

// Live figures written into <capacity>/<allocation>/<available>, and for a
// disk pool the free ranges of its device (<device><freeExtent .../>).
struct PoolSizes {
    std::uint64_t capacity = 0;
    std::uint64_t allocation = 0;
    std::uint64_t available = 0;
    std::vector<FreeExtent> free_extents;
};

// Parse and validate a pool document. A missing UUID is generated.
Result<PoolDef> parse_pool_xml(std::string_view text);

// Format as libvirt does; sizes only when given (an active pool).
std::string format_pool_xml(const PoolDef& def, const std::optional<PoolSizes>& sizes);

}  // namespace vireo::pool
