// Removable media of a domain (virsh change-media): which disk a path
// names, the definition with a medium ejected, inserted or replaced, and the
// same change made in a running QEMU through QMP, as libvirt does with
// -blockdev: blockdev-open-tray, blockdev-remove-medium (and blockdev-del of
// the old nodes), blockdev-add of the new file and format nodes,
// blockdev-insert-medium, blockdev-close-tray.
#pragma once

#include <string>
#include <string_view>

#include "conf/domain.hpp"
#include "qemu/monitor.hpp"
#include "util/error.hpp"

namespace vireo::qemu {

enum class MediaAction { Eject, Insert, Update };
Result<MediaAction> parse_media_action(std::string_view action);

// The index of the disk whose target or source path is `path`, refused as
// virsh does when there is none or it is not a cdrom or floppy.
Result<std::size_t> find_media_disk(const conf::DomainDef& def, std::string_view path);

// `def` with the medium of the disk `path` names changed (update without a
// source ejects). Errors as virsh's ("... already has media", "... doesn't
// have media").
Result<conf::DomainDef> with_media(const conf::DomainDef& def, std::string_view path, MediaAction action,
                                   std::string_view source);

// Make the running QEMU's device show `after`'s medium (none: ejected).
// `force` opens a tray the guest locked; without it a locked tray is an
// error after a few seconds.
Status change_media_live(Monitor& mon, const conf::Disk& after, bool force);

}  // namespace vireo::qemu
