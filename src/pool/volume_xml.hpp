// Storage volume XML in libvirt's format (https://libvirt.org/formatstorage.html#storage-volume-xml):
// parse what vol-create / vol-create-from send, format what vol-dumpxml shows.
// Output is valid against libvirt's storagevol.rng.
//
//   <volume type='file'>
//     <name>web.qcow2</name>
//     <key>/var/lib/vireo/images/web.qcow2</key>
//     <capacity unit='G'>10</capacity>
//     <allocation unit='bytes'>0</allocation>
//     <target><path>...</path><format type='qcow2'/><compat>1.1</compat></target>
//     <backingStore><path>/x/base.qcow2</path><format type='qcow2'/></backingStore>
//   </volume>
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "driver/pool_api.hpp"
#include "pool/pool_xml.hpp"
#include "util/error.hpp"

namespace vireo::pool {

struct VolumeDef {
    std::string name;
    driver::VolumeType type = driver::VolumeType::File;
    std::string key;    // output only (input is ignored, as libvirt)
    std::string path;   // output only
    std::optional<std::uint64_t> capacity;    // bytes
    std::optional<std::uint64_t> allocation;  // bytes to allocate up front
    std::uint64_t physical = 0;               // output only
    std::string format;  // raw, qcow2 (file); none, linux, ... (partition); "" = pool default
    Permissions perms;
    // qcow2 options
    std::string compat;                       // "0.10" or "1.1"
    std::optional<std::uint32_t> cluster_size;
    bool lazy_refcounts = false;
    bool nocow = false;
    // <source><device path=...><extent start= end=/></device></source>:
    // where a partition lies on its disk (output only)
    std::string source_device;
    std::uint64_t extent_start = 0;
    std::uint64_t extent_end = 0;  // exclusive, as libvirt prints it
    // <backingStore>
    std::string backing_path;    // absolute path, or (input only) a volume name of the same pool
    std::string backing_format;  // "" = probe
};

// Parse and validate a volume document (names with '/' or '..' are refused).
Result<VolumeDef> parse_volume_xml(std::string_view text);

// Format as libvirt does, with key/path/sizes filled in.
std::string format_volume_xml(const VolumeDef& def);

}  // namespace vireo::pool
