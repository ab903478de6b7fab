// Changing an image in place: amend (qcow2 options) and resize, as qemu-img
// does them. Errors carry qemu-img's messages; nothing is printed.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "storage/image.hpp"
#include "storage/options.hpp"

namespace vireo::storage {

// amend -o: compat, lazy_refcounts, refcount_bits, size, data_file,
// data_file_raw, backing_file/backing_fmt (only the values recorded, as
// qemu-img 7.2), validated before anything changes and applied in qemu's
// order. LUKS key slots of a luks image (state, new-secret, old-secret,
// keyslot, iter-time) or of a qcow2 one (the same under encrypt.), with
// the image unlocked by `key_secret`; `force` (--force) allows erasing
// the last active key slot. Secrets named come from `secrets`.
Status amend(const std::filesystem::path& path, const std::string& format,
             const std::map<std::string, std::string>& options, const Secrets& secrets = {},
             const std::optional<std::string>& key_secret = std::nullopt, bool force = false);

struct ResizeOptions {
    std::filesystem::path path;
    std::string format;          // "" = probe
    int sign = 0;                // +1: grow by `size`, -1: shrink by `size`, 0: to `size`
    uint64_t size = 0;
    bool shrink = false;         // --shrink
    Preallocation prealloc = Preallocation::Off;
};
Status resize(const ResizeOptions& opts);

}  // namespace vireo::storage
