// qemu-img bitmap as a library: add, remove, clear, enable, disable and
// merge persistent dirty bitmaps of a qcow2 image, in the order given, with
// QEMU's rules and messages. Changes made before a failing operation are
// kept, as qemu-img keeps them.
//
//   storage::BitmapRequest r{.path = "/img/web.qcow2", .bitmap = "backup-0"};
//   r.actions = {{storage::BitmapOp::Add}, {storage::BitmapOp::Disable}};
//   VIREO_TRY(storage::edit_bitmap(r));
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace vireo::storage {

enum class BitmapOp { Add, Remove, Clear, Enable, Disable, Merge };

struct BitmapAction {
    BitmapOp op = BitmapOp::Add;
    std::string source;  // Merge: the bitmap merged in
};

struct BitmapRequest {
    std::filesystem::path path;
    std::string format;  // "" = probe
    std::string bitmap;  // every action works on this bitmap
    std::vector<BitmapAction> actions;
    std::optional<uint64_t> granularity;  // Add (0 = the default)
    // Merge: the image the source bitmaps are in (-b, -F); none: this image.
    std::optional<std::filesystem::path> source_path;
    std::string source_format;
};

// Errors read "Operation <op> on bitmap <name> failed: <why>" (or the open
// failure), as qemu-img words them.
Status edit_bitmap(const BitmapRequest& r);

}  // namespace vireo::storage
