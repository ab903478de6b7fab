// qcow2 cluster compression: zlib (raw deflate, 4 KiB window as QEMU writes
// it) and zstd (one frame per cluster).
#pragma once

#include <cstddef>

#include "storage/image.hpp"

namespace vireo::storage {

// Compress `len` bytes into out (capacity out_cap). Returns the compressed
// size, or 0 when the result would not fit in out_cap (store uncompressed).
Result<size_t> compress_buffer(CompressionType type, const void* in, size_t len, void* out, size_t out_cap);

// Decompress into exactly out_len bytes. `in` may carry trailing garbage
// (compressed data is stored with sector granularity).
Status decompress_buffer(CompressionType type, const void* in, size_t in_len, void* out, size_t out_len);

}  // namespace vireo::storage
