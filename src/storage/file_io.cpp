#include "storage/file_io.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace vireo::storage {

namespace {

constexpr uint64_t kDirectAlign = 4096;

struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
};

bool is_aligned(uint64_t v) { return v % kDirectAlign == 0; }

int open_flags(bool writable, CacheMode cache) {
    int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    if (cache == CacheMode::None || cache == CacheMode::Directsync) flags |= O_DIRECT;
    if (cache == CacheMode::Writethrough || cache == CacheMode::Directsync) flags |= O_DSYNC;
    return flags;
}

}  // namespace

Result<CacheMode> parse_cache_mode(std::string_view name) {
    if (name == "writeback") return CacheMode::Writeback;
    if (name == "none" || name == "off") return CacheMode::None;
    if (name == "writethrough") return CacheMode::Writethrough;
    if (name == "directsync") return CacheMode::Directsync;
    if (name == "unsafe") return CacheMode::Unsafe;
    return fail(ErrorCode::InvalidArg, "Invalid cache option: {}", name);
}

Result<FileIo> FileIo::open(const std::filesystem::path& path, bool writable, CacheMode cache) {
    FileIo f;
    int fd = ::open(path.c_str(), open_flags(writable, cache));
    if (fd < 0 && errno == EINVAL && (cache == CacheMode::None || cache == CacheMode::Directsync)) {
        return fail(ErrorCode::Unsupported, "Could not open '{}': O_DIRECT is not supported on this file system",
                    path.string());
    }
    if (fd < 0) return std::unexpected(errno_error(fmt::format("Could not open '{}'", path.string()), errno));
    f.fd_.reset(fd);
    f.path_ = path.string();
    f.writable_ = writable;
    f.direct_ = cache == CacheMode::None || cache == CacheMode::Directsync;
    f.no_flush_ = cache == CacheMode::Unsafe;
    return f;
}

Result<FileIo> FileIo::create(const std::filesystem::path& path, CacheMode cache) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return std::unexpected(errno_error(fmt::format("Could not create '{}'", path.string()), errno));
    ::close(fd);
    return open(path, true, cache);
}

void FileIo::apply_create_hints(std::optional<uint64_t> extent_size_hint, bool nocow,
                                const std::function<void(const std::string&)>& warn) {
    if (nocow) {
        int attr = 0;
        if (::ioctl(fd_.get(), FS_IOC_GETFLAGS, &attr) == 0) {
            attr |= FS_NOCOW_FL;
            (void)::ioctl(fd_.get(), FS_IOC_SETFLAGS, &attr);  // an optimisation only, as in QEMU
        }
    }
    const uint64_t hint = extent_size_hint.value_or(1ULL << 20);
    if (hint == 0) return;
    struct fsxattr attr {};
    int r = ::ioctl(fd_.get(), FS_IOC_FSGETXATTR, &attr);
    if (r == 0) {
        attr.fsx_xflags |= FS_XFLAG_EXTSIZE;
        attr.fsx_extsize = static_cast<uint32_t>(hint);
        r = ::ioctl(fd_.get(), FS_IOC_FSSETXATTR, &attr);
    }
    if (r < 0 && extent_size_hint && warn)
        warn(fmt::format("warning: Failed to set extent size hint: {}", std::strerror(errno)));
}

Status FileIo::bounce_read(void* buf, size_t len, uint64_t off) const {
    uint64_t start = off / kDirectAlign * kDirectAlign;
    uint64_t end = (off + len + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
    std::unique_ptr<void, FreeDeleter> tmp(std::aligned_alloc(kDirectAlign, end - start));
    if (!tmp) return fail(ErrorCode::System, "out of memory");
    auto* b = static_cast<char*>(tmp.get());
    uint64_t done = 0;
    while (start + done < end) {
        ssize_t n = ::pread(fd_.get(), b + done, end - start - done, static_cast<off_t>(start + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::unexpected(errno_error(fmt::format("read error on '{}'", path_), errno));
        if (n == 0) {
            std::memset(b + done, 0, end - start - done);
            break;
        }
        done += static_cast<uint64_t>(n);
    }
    std::memcpy(buf, b + (off - start), len);
    return {};
}

Status FileIo::read(void* buf, size_t len, uint64_t off) const {
    if (direct_ && (!is_aligned(off) || !is_aligned(len) || !is_aligned(reinterpret_cast<uintptr_t>(buf))))
        return bounce_read(buf, len, off);
    auto* p = static_cast<char*>(buf);
    size_t done = 0;
    while (done < len) {
        ssize_t n = ::pread(fd_.get(), p + done, len - done, static_cast<off_t>(off + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::unexpected(errno_error(fmt::format("read error on '{}'", path_), errno));
        if (n == 0) {  // past EOF: zeroes, as the block layer does
            std::memset(p + done, 0, len - done);
            return {};
        }
        done += static_cast<size_t>(n);
    }
    return {};
}

Status FileIo::bounce_write(const void* buf, size_t len, uint64_t off) {
    uint64_t start = off / kDirectAlign * kDirectAlign;
    uint64_t end = (off + len + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
    std::unique_ptr<void, FreeDeleter> tmp(std::aligned_alloc(kDirectAlign, end - start));
    if (!tmp) return fail(ErrorCode::System, "out of memory");
    auto* b = static_cast<char*>(tmp.get());
    VIREO_TRY(bounce_read(b, end - start, start));
    std::memcpy(b + (off - start), buf, len);
    // Keep the file length exact: write the aligned block, then trim the tail
    // if the file was shorter than the block we wrote.
    VIREO_TRY(length());
    uint64_t old_len = *length();
    size_t done = 0;
    while (done < end - start) {
        ssize_t n = ::pwrite(fd_.get(), b + done, end - start - done, static_cast<off_t>(start + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::unexpected(errno_error(fmt::format("write error on '{}'", path_), errno));
        done += static_cast<size_t>(n);
    }
    uint64_t want = std::max(old_len, off + len);
    if (want < end && ::ftruncate(fd_.get(), static_cast<off_t>(want)) != 0)
        return std::unexpected(errno_error(fmt::format("truncate error on '{}'", path_), errno));
    return {};
}

Status FileIo::write(const void* buf, size_t len, uint64_t off) {
    if (!writable_) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", path_);
    if (direct_ && (!is_aligned(off) || !is_aligned(len) || !is_aligned(reinterpret_cast<uintptr_t>(buf))))
        return bounce_write(buf, len, off);
    const auto* p = static_cast<const char*>(buf);
    size_t done = 0;
    while (done < len) {
        ssize_t n = ::pwrite(fd_.get(), p + done, len - done, static_cast<off_t>(off + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::unexpected(errno_error(fmt::format("write error on '{}'", path_), errno));
        done += static_cast<size_t>(n);
    }
    return {};
}

Result<uint64_t> FileIo::length() const {
    struct stat st{};
    if (::fstat(fd_.get(), &st) != 0) return fail_errno("fstat");
    if (S_ISBLK(st.st_mode)) {
        off_t end = ::lseek(fd_.get(), 0, SEEK_END);
        if (end < 0) return fail_errno("lseek");
        return static_cast<uint64_t>(end);
    }
    return static_cast<uint64_t>(st.st_size);
}

Result<uint64_t> FileIo::allocated_bytes() const {
    struct stat st{};
    if (::fstat(fd_.get(), &st) != 0) return fail_errno("fstat");
    return static_cast<uint64_t>(st.st_blocks) * 512;
}

Status FileIo::truncate(uint64_t len) {
    data_cache_start_ = data_cache_end_ = 0;
    if (::ftruncate(fd_.get(), static_cast<off_t>(len)) != 0)
        return std::unexpected(errno_error(fmt::format("Could not resize '{}'", path_), errno));
    return {};
}

Status FileIo::flush() {
    if (no_flush_) return {};
    if (::fdatasync(fd_.get()) != 0)
        return std::unexpected(errno_error(fmt::format("flush error on '{}'", path_), errno));
    return {};
}

Status FileIo::punch_hole(uint64_t off, uint64_t len) {
    if (len == 0) return {};
    data_cache_start_ = data_cache_end_ = 0;
    if (::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                    static_cast<off_t>(len)) == 0)
        return {};
    std::vector<char> zero(std::min<uint64_t>(len, 1 << 20), 0);
    for (uint64_t done = 0; done < len;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(zero.size(), len - done));
        VIREO_TRY(write(zero.data(), n, off + done));
        done += n;
    }
    return {};
}

Status FileIo::preallocate(uint64_t off, uint64_t len, bool full) {
    if (len == 0) return {};
    if (!full && ::fallocate(fd_.get(), 0, static_cast<off_t>(off), static_cast<off_t>(len)) == 0) return {};
    if (!full && errno != EOPNOTSUPP)
        return std::unexpected(errno_error(fmt::format("Could not preallocate '{}'", path_), errno));
    std::vector<char> zero(std::min<uint64_t>(len, 1 << 20), 0);
    for (uint64_t done = 0; done < len;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(zero.size(), len - done));
        VIREO_TRY(write(zero.data(), n, off + done));
        done += n;
    }
    return {};
}

Result<std::pair<bool, uint64_t>> FileIo::data_run(uint64_t off, uint64_t end) const {
    if (off >= data_cache_start_ && off < data_cache_end_) return std::pair{true, std::min(data_cache_end_, end)};
    off_t data = ::lseek(fd_.get(), static_cast<off_t>(off), SEEK_DATA);
    if (data < 0) {
        if (errno == ENXIO) return std::pair{false, end};  // hole to EOF
        return std::pair{true, end};                        // no SEEK_DATA: all data
    }
    if (static_cast<uint64_t>(data) > off) return std::pair{false, std::min<uint64_t>(data, end)};
    off_t hole = ::lseek(fd_.get(), static_cast<off_t>(off), SEEK_HOLE);
    if (hole < 0) return std::pair{true, end};
    data_cache_start_ = off;
    data_cache_end_ = static_cast<uint64_t>(hole);
    return std::pair{true, std::min<uint64_t>(static_cast<uint64_t>(hole), end)};
}

}  // namespace vireo::storage
