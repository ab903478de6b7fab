// The guest view of a backing chain, run by run: what map, compare,
// measure and the copy engines walk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "storage/image.hpp"

namespace vireo::storage {

// One run of the fully resolved chain at `off`.
struct ChainExtent {
    uint64_t length = 0;
    bool present = false;     // allocated in some layer
    bool zero = false;        // reads as zero
    bool data = false;        // backed by data in a layer
    int depth = 0;            // layer index (0 = top)
    std::optional<uint64_t> offset;
    std::string file;         // filename of that layer
};

// The first run of [off, off+len) in `top`'s chain (length <= len).
Result<ChainExtent> chain_status(Image* top, uint64_t off, uint64_t len);

// Whether n bytes at p are all zero.
bool buffer_is_zero(const char* p, size_t n);

}  // namespace vireo::storage
