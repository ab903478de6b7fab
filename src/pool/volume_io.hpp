// Volume contents through the image engine: copy (clone / create-from, with
// format conversion, sparse-aware: storage::convert, the engine of
// vireo-img convert), wipe, upload and download of the guest-visible bytes.
// Works on any volume with a path (files, partitions).
//
// Each takes a progress function (storage/progress.hpp: bytes done of the
// total; returning false stops the work with storage::cancelled_error()).
// Volumes are locked as qemu-img locks images (storage/lock.hpp): one that
// another process (a running guest's QEMU) holds is refused with Busy.
#pragma once

#include "driver/pool_api.hpp"
#include "pool/volume_xml.hpp"
#include "storage/lock.hpp"
#include "storage/progress.hpp"
#include "util/error.hpp"

namespace vireo::pool {

// Copy the guest view of `src` (its backing chain included) into the freshly
// created, zero-reading `dst`. Ranges that read as zero are not written, so
// holes stay holes. Progress: bytes of data copied (convert's accounting).
Status copy_volume_contents(const VolumeDef& src, const VolumeDef& dst, const storage::ProgressFn& progress = {});

// Progress: bytes of the volume wiped.
Status wipe_volume_contents(const VolumeDef& vol, driver::WipeAlgorithm algorithm,
                            const storage::ProgressFn& progress = {});

// Lock `vol` as a writer (for delete and resize): Busy when another process
// uses its file; held until the returned handle goes.
Result<storage::ImageLock> lock_volume_for_write(const VolumeDef& vol);

// Stream [range.offset, range.offset+length) of the guest view to `sink`;
// with range.sparse, ranges that read as zero travel as hole chunks. Read
// as qemu-img -U reads (sharing everything), as libvirt reads the file.
Status download_volume_contents(const VolumeDef& vol, const driver::TransferRange& range,
                                const driver::StreamSink& sink, const storage::ProgressFn& progress = {});

// Write the chunks of `source` at range.offset (at most range.length bytes
// when it is not 0). Hole chunks and all-zero data become zeroed ranges
// (deallocated), so a sparse upload stays sparse.
Status upload_volume_contents(const VolumeDef& vol, const driver::TransferRange& range,
                              const driver::StreamSource& source, const storage::ProgressFn& progress = {});

}  // namespace vireo::pool
