// measure: the size a new image would need to hold a given size, or the
// contents of an existing image, as qemu-img measure computes it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "storage/image.hpp"

namespace vireo::storage {

struct MeasureOptions {
    std::optional<std::filesystem::path> path;  // an image to measure, or
    uint64_t size = 0;                          // --size N (without an image)
    std::string format;                         // of the image ("" = probe)
    std::string snapshot;                       // -l
    bool force_share = false;                   // -U
    std::string target_format = "raw";          // -O
    std::map<std::string, std::string> create_options;  // -o
};

struct MeasureResult {
    uint64_t required = 0;
    uint64_t fully_allocated = 0;
    bool has_bitmaps_size = false;  // qcow2 target measured from an image: "bitmaps size" is shown
    uint64_t bitmaps = 0;
};

Result<MeasureResult> measure(const MeasureOptions& opts);

}  // namespace vireo::storage
