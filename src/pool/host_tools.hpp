// Small host queries shared by the fs and disk backends: what is on a
// device (blkid), and whether a directory is a mount point.
#pragma once

#include <string>

#include "util/error.hpp"

namespace vireo::pool {

// The filesystem type (TYPE) or partition table type (PTTYPE) blkid finds
// on `device` by probing it directly; "" when there is none.
Result<std::string> probe_signature(const std::string& device, const std::string& tag);

// Is `dir` the mount point of a mounted filesystem? (/proc/self/mountinfo)
bool is_mount_point(const std::string& dir);

}  // namespace vireo::pool
