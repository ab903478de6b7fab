// vol-upload / vol-download: a local file streamed to or from a volume
// through the pool API, sparse-aware, with a progress bar on a terminal.
#pragma once

#include <string>

#include "driver/pool_api.hpp"
#include "util/error.hpp"

namespace vireo::cli {

// Send `file` (from its start) to the volume at range.offset; at most
// range.length bytes when it is not 0. With range.sparse the file's holes
// (SEEK_HOLE) travel as hole chunks and are not read.
// `progress`: draw a bar on stderr when it is a terminal.
Status upload_file(driver::PoolApi& api, const driver::VolumeSummary& vol, const std::string& file,
                   driver::TransferRange range, bool progress);

// Write the volume's bytes from range.offset (range.length of them, 0 = to the
// end) into `file`, created if missing, truncated if not. With range.sparse
// holes stay holes in the file; a file this call created is removed again
// when the transfer fails.
Status download_file(driver::PoolApi& api, const driver::VolumeSummary& vol, const std::string& file,
                     driver::TransferRange range, bool progress);

}  // namespace vireo::cli
