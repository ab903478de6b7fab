// The image formats beyond raw, qcow2 and LUKS: vmdk (read, write, create,
// check) and vpc, vhdx, vdi (read for conversion). Internal to
// src/storage: image.cpp dispatches to them.
#pragma once

#include <optional>
#include <string>

#include "storage/image.hpp"

namespace vireo::storage {

// The format whose magic starts `head` (the first bytes of a file), if it
// is one of these.
std::optional<ImageFormat> probe_other_format(const std::string& head);

Result<ImagePtr> open_other_format(ImageFormat fmt, const std::filesystem::path& path, const OpenOptions& opts);
Result<ImagePtr> open_vpc(const std::filesystem::path& path, const OpenOptions& opts);
Result<ImagePtr> open_vhdx(const std::filesystem::path& path, const OpenOptions& opts);
Result<ImagePtr> open_vdi(const std::filesystem::path& path, const OpenOptions& opts);
Status create_other_format(const std::filesystem::path& path, const CreateOptions& opts);

}  // namespace vireo::storage
