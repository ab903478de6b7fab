// qemu.conf: the QEMU driver's settings file, read by vireod at start, in
// the syntax of libvirt's qemu.conf:
//
//   # a comment
//   save_image_format = "zstd"
//
// One `key = value` per line, the value a double-quoted string (backslash
// escapes \" and \\ inside) or an integer; '#' starts a comment outside
// quotes. Where it is: session mode $XDG_CONFIG_HOME/vireo/qemu.conf
// (~/.config/vireo/qemu.conf), system mode /etc/vireo/qemu.conf. A missing
// file means the defaults.
//
// Known keys (docs/qemu-conf.md):
//   save_image_format   raw (default) | gzip | bzip2 | xz | lzop | zstd:
//                       how save and managedsave compress the image.
//   malloc_hugepages    1 (default) | 0: QEMU's heap on transparent huge
//                       pages (faster QEMU start).
//   user, group         system mode: the one account every QEMU runs as
//                       (default: none, each guest its own uid/gid).
//   guest_id_range      system mode: "FIRST-LAST" the per-guest ids come
//                       from (default "65536-98303").
//   dynamic_ownership   1 (default) | 0: give the guest's files to its
//                       identity for the run.
//   namespaces          [ "mount" ] (default) | []: each system-mode QEMU
//                       in its own mount namespace (private /dev, /tmp).
// An unknown key, a value of the wrong kind or a bad value is an error that
// names the file and the line: vireod refuses to start rather than run with
// a setting silently ignored.
#pragma once

#include <filesystem>
#include <string_view>

#include "qemu/qemu_driver.hpp"
#include "util/error.hpp"

namespace vireo::qemu {

// Apply the settings of `text` (read from `origin`, for messages) to `cfg`.
Status parse_qemu_conf(std::string_view text, std::string_view origin, QemuDriverConfig& cfg);

// Read `file` and apply it; a file that does not exist changes nothing.
Status load_qemu_conf(const std::filesystem::path& file, QemuDriverConfig& cfg);

}  // namespace vireo::qemu
