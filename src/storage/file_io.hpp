// Positional I/O on one host file, with exact-length semantics.
//
// Every read/write either transfers the whole range or returns an error, so
// callers never have to loop. With O_DIRECT (cache=none) unaligned requests
// are bounced through an aligned buffer, so format drivers can issue
// metadata-sized I/O without caring about the cache mode.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "util/error.hpp"
#include "util/fd.hpp"

namespace vireo::storage {

// How host files are opened: `writeback` uses the page cache, `none` uses
// O_DIRECT, `writethrough` adds O_DSYNC, `unsafe` never flushes.
enum class CacheMode { Writeback, None, Writethrough, Directsync, Unsafe };

// Parse qemu-img's -t/-T names ("none", "writeback", ...).
Result<CacheMode> parse_cache_mode(std::string_view name);

class FileIo {
public:
    static Result<FileIo> open(const std::filesystem::path& path, bool writable,
                               CacheMode cache = CacheMode::Writeback);
    // Create (or truncate) a file for writing.
    static Result<FileIo> create(const std::filesystem::path& path, CacheMode cache = CacheMode::Writeback);

    FileIo() = default;
    FileIo(FileIo&&) noexcept = default;
    FileIo& operator=(FileIo&&) noexcept = default;

    // Read exactly len bytes at off; bytes past EOF read as zero.
    Status read(void* buf, size_t len, uint64_t off) const;
    Status write(const void* buf, size_t len, uint64_t off);
    Result<uint64_t> length() const;
    Status truncate(uint64_t len);
    Status flush();
    // Deallocate a range (keeps size); falls back to writing zeroes.
    Status punch_hole(uint64_t off, uint64_t len);
    // Allocate blocks for a range (fallocate); `full` writes zeroes instead.
    Status preallocate(uint64_t off, uint64_t len, bool full);
    // Bytes actually allocated on the host (st_blocks * 512).
    Result<uint64_t> allocated_bytes() const;
    // What QEMU's file protocol does to a file it has just created: the
    // copy-on-write flag off (`nocow`, btrfs; failures ignored) and the
    // extent size hint set (XFS; 1 MiB unless given, 0: none). A hint that
    // was given and cannot be set is a warning, as in QEMU.
    void apply_create_hints(std::optional<uint64_t> extent_size_hint, bool nocow,
                            const std::function<void(const std::string&)>& warn);
    // SEEK_DATA/SEEK_HOLE probe: is `off` in data, and where does that run end
    // (bounded by `end`).
    Result<std::pair<bool, uint64_t>> data_run(uint64_t off, uint64_t end) const;

    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] bool writable() const { return writable_; }
    [[nodiscard]] bool direct() const { return direct_; }
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    Status bounce_read(void* buf, size_t len, uint64_t off) const;
    Status bounce_write(const void* buf, size_t len, uint64_t off);

    UniqueFd fd_;
    std::string path_;
    bool writable_ = false;
    bool direct_ = false;
    bool no_flush_ = false;
    // Last data run SEEK_HOLE reported: writes never turn data into holes,
    // so it stays valid until a punch_hole/truncate.
    mutable uint64_t data_cache_start_ = 0, data_cache_end_ = 0;
};

}  // namespace vireo::storage
