// The save image format (virsh save / managedsave):
//
//   offset 0   magic "VireoQemuSave\n\0\0"              16 bytes
//          16  version (u32 LE, = 1)
//          20  xml_len (u32 LE): bytes reserved for the XML, NUL padded
//          24  was_running (u32 LE): restore resumes the vCPUs when 1
//          28  compression (u32 LE): how the stream after data_offset is
//              compressed: 0 raw, 2 gzip, 3 bzip2, 4 xz, 5 lzop, 6 zstd
//              (a compressor program's output; 1 was QEMU's own "compress"
//              migration capability, which vireo no longer writes or reads)
//          32  data_offset (u64 LE): where QEMU's migration stream starts
//          40  reserved, zero                            24 bytes
//          64  the domain XML (live definition), xml_len bytes
//   data_offset (4 KiB aligned): the QEMU migration stream, to end of file.
//
// The XML area is padded so the definition can later be edited in place
// (save-image-define) without moving the stream.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "util/error.hpp"
#include "util/fd.hpp"

namespace vireo::qemu {

// The save_image_format of qemu.conf (save_compressor.hpp); values as stored.
enum class SaveCompression : std::uint32_t { None = 0, Gzip = 2, Bzip2 = 3, Xz = 4, Lzop = 5, Zstd = 6 };

struct SaveHeader {
    std::string xml;
    bool was_running = true;
    SaveCompression compression = SaveCompression::None;
    std::uint64_t data_offset = 0;  // filled in by encode/decode
};

inline constexpr std::size_t kSaveHeaderFixedSize = 64;

// Header bytes for `h` (data_offset computed); exactly data_offset long.
std::string encode_save_header(SaveHeader& h);
// Parse the header from the start of a file's bytes (at least the fixed part
// plus the XML). Corrupt with a clear message for anything else.
Result<SaveHeader> decode_save_header(std::string_view bytes);

// Create `path` (0600, must not exist unless `overwrite`) with the header,
// and return it open for writing at data_offset.
Result<UniqueFd> create_save_file(const std::filesystem::path& path, SaveHeader& header, bool overwrite);
// Open a save file, parse its header and return it positioned at data_offset.
Result<std::pair<SaveHeader, UniqueFd>> open_save_file(const std::filesystem::path& path);

}  // namespace vireo::qemu
