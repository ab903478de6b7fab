// The option words qemu-img's image options use: sizes ("10G", qemu_strtosz)
// and the -o creation options of raw and qcow2 images.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "storage/image.hpp"

namespace vireo::storage {

// qemu_strtosz: "10G", "512", "1.5M", "4k" (binary units).
Result<uint64_t> parse_size(const std::string& s);

// Creation options for a `fmt` image from -o values (size, preallocation,
// compat, cluster_size, refcount_bits, lazy_refcounts, extended_l2,
// compression_type, backing_file, backing_fmt, data_file, data_file_raw),
// with qemu-img's messages ("Invalid parameter 'x'").
Result<CreateOptions> parse_create_options(ImageFormat fmt, const std::map<std::string, std::string>& o);

}  // namespace vireo::storage
