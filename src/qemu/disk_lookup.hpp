// How virsh's disk verbs (domblkstat, domblkinfo, blockresize, the block
// jobs) name a disk: its target (vda) or its source path.
#pragma once

#include <string_view>

#include "conf/domain.hpp"

namespace vireo::qemu {

// The disk of `def` that `name` means (a target first, then a source path);
// nullptr when none.
const conf::Disk* find_disk_by_name(const conf::DomainDef& def, std::string_view name);

}  // namespace vireo::qemu
