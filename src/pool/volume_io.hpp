// Volume contents through the image engine: copy (clone / create-from, with
// format conversion, sparse-aware), wipe, upload and download of the
// guest-visible bytes. Works on any volume with a path (files, partitions).
#pragma once

#include "driver/pool_api.hpp"
#include "pool/volume_xml.hpp"
#include "util/error.hpp"

namespace vireo::pool {

// Copy the guest view of `src` (its backing chain included) into the freshly
// created, zero-reading `dst`. Ranges that read as zero are not written, so
// holes stay holes.
Status copy_volume_contents(const VolumeDef& src, const VolumeDef& dst);

Status wipe_volume_contents(const VolumeDef& vol, driver::WipeAlgorithm algorithm);

// Stream [range.offset, range.offset+length) of the guest view to `sink`;
// with range.sparse, ranges that read as zero travel as hole chunks.
Status download_volume_contents(const VolumeDef& vol, const driver::TransferRange& range,
                                const driver::StreamSink& sink);

// Write the chunks of `source` at range.offset (at most range.length bytes
// when it is not 0). Hole chunks and all-zero data become zeroed ranges
// (deallocated), so a sparse upload stays sparse.
Status upload_volume_contents(const VolumeDef& vol, const driver::TransferRange& range,
                              const driver::StreamSource& source);

}  // namespace vireo::pool
