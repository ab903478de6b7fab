// File helpers: whole-file reads and crash-safe writes.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "util/error.hpp"

namespace vireo::files {

// Read a whole file. A missing file is ErrorCode::NotFound.
Result<std::string> read(const std::filesystem::path& path);

// Replace `path` with `content` so that a crash (even kill -9 or power loss)
// at any moment leaves either the old or the new content, never a torn file:
// write a temp file in the same directory, fsync it, rename it over the
// target, then fsync the directory so the rename itself is durable.
Status write_atomic(const std::filesystem::path& path, std::string_view content, unsigned mode = 0644);

// As write_atomic (readers see the old or the new content, never a mix)
// without the fsyncs: for files regenerated from durable state every time
// they are used (dnsmasq's configuration and hosts files), where a crash
// may lose the new content but nothing reads a lost one before rewriting it.
Status write_replace(const std::filesystem::path& path, std::string_view content, unsigned mode = 0644);

// Remove a file and fsync its directory; a missing file is not an error.
Status remove_durable(const std::filesystem::path& path);
// Remove a file without the fsync (the counterpart of write_replace); a
// missing file is not an error.
Status remove_file(const std::filesystem::path& path);

// mkdir -p with the given mode for directories it creates.
Status make_dirs(const std::filesystem::path& path, unsigned mode = 0755);

// fsync a directory (after creating/renaming/removing entries in it).
Status sync_dir(const std::filesystem::path& dir);

// Whether something is at `path` (lstat succeeds, a dangling link counts),
// without std::filesystem's throwing overloads: an error other than "no such
// file" (EACCES on a parent, ELOOP, ...) is returned as an Error, so a caller
// inside a driver job never gets an exception.
Result<bool> exists(const std::filesystem::path& path);

// `path` made absolute against the working directory, without throwing.
Result<std::filesystem::path> absolute(const std::filesystem::path& path);

// True when `name` can be used as one path component of an object's file:
// not empty, not "." or "..", no '/', no control characters, at most 255 bytes.
bool is_safe_name(std::string_view name);

}  // namespace vireo::files
