// The data-copy stage of `vireo-img convert`: reads the source views in
// batches, finds zero and unchanged clusters, compresses clusters on worker
// threads (-c) and writes the target in order with large writes. Reading
// and writing run on the calling thread while the workers compress the
// previous batch, so all three overlap.
#pragma once

#include <cstdint>
#include <vector>

#include "cli/img/common.hpp"
#include "storage/image.hpp"

namespace vireo::img {

struct CopySettings {
    bool compress = false;
    bool target_fresh = true;       // target reads zero everywhere already
    bool skip_same_as_backing = false;  // -B: skip clusters the target's backing has
    bool salvage = false;           // --salvage: unreadable sectors become zero
    uint64_t sparse = 4096;         // -S (0: write zeroes out as data)
    unsigned threads = 8;           // -m: at most this many compression threads
    uint64_t rate_limit = 0;        // -r: bytes written per second (0: no limit)
};

// Copy every source view, one after the other, into `dst`. Errors are
// reported on stderr in qemu-img's words; returns false on failure.
bool copy_images(const std::vector<storage::Image*>& views, storage::Image* dst, const CopySettings& s,
                 Progress& progress);

}  // namespace vireo::img
