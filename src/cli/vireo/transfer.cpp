#include "cli/vireo/transfer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <vector>

#include <fmt/format.h>

#include "cli/vireo/pool_format.hpp"
#include "util/fd.hpp"

namespace vireo::cli {

namespace {

constexpr std::size_t kChunk = 4 << 20;  // bytes read or written per stream chunk

// A one-line bar on stderr, redrawn at most ten times a second:
//   a.qcow2 [##########..........]  50%  512.00 MiB / 1.00 GiB
class ProgressBar {
public:
    ProgressBar(bool wanted, std::string label, std::uint64_t total)
        : enabled_(wanted && ::isatty(STDERR_FILENO) == 1), label_(std::move(label)), total_(total) {}
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;
    ~ProgressBar() {
        if (drawn_) fmt::print(stderr, "\n");
    }

    void advance(std::uint64_t bytes) {
        done_ += bytes;
        if (!enabled_) return;
        const auto now = Clock::now();
        if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done_ < total_) return;
        last_ = now;
        draw();
    }

private:
    using Clock = std::chrono::steady_clock;

    void draw() {
        constexpr int kWidth = 30;
        const double fraction = total_ == 0 ? 1.0 : std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
        const int filled = static_cast<int>(fraction * kWidth);
        fmt::print(stderr, "\r{} [{}{}] {:3}%  {} / {}", label_, std::string(static_cast<std::size_t>(filled), '#'),
                   std::string(static_cast<std::size_t>(kWidth - filled), '.'), static_cast<int>(fraction * 100),
                   pretty_size(done_), pretty_size(total_));
        std::fflush(stderr);
        drawn_ = true;
    }

    bool enabled_;
    std::string label_;
    std::uint64_t total_;
    std::uint64_t done_ = 0;
    bool drawn_ = false;
    Clock::time_point last_{};
};

Status write_all(int fd, const char* data, std::size_t size, const std::string& file) {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno(fmt::format("cannot write to {}", file));
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return {};
}

Status pread_all(int fd, char* data, std::size_t size, off_t at, const std::string& file) {
    while (size > 0) {
        const ssize_t n = ::pread(fd, data, size, at);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno(fmt::format("cannot read {}", file));
        }
        if (n == 0) return fail(ErrorCode::Io, "{} became shorter while it was being uploaded", file);
        data += n;
        size -= static_cast<std::size_t>(n);
        at += n;
    }
    return {};
}

Result<std::uint64_t> file_size(int fd, const std::string& file) {
    struct stat st{};
    if (::fstat(fd, &st) != 0) return fail_errno(fmt::format("cannot stat {}", file));
    if (S_ISREG(st.st_mode)) return static_cast<std::uint64_t>(st.st_size);
    // A block device: its size is where its end is.
    const off_t end = ::lseek(fd, 0, SEEK_END);
    if (end < 0) return fail_errno(fmt::format("cannot find the size of {}", file));
    return static_cast<std::uint64_t>(end);
}

// Produces the chunks of a local file, in order; holes as hole chunks when sparse.
class FileSource {
public:
    FileSource(int fd, std::string file, std::uint64_t end, bool sparse, ProgressBar& bar)
        : fd_(fd), file_(std::move(file)), end_(end), sparse_(sparse), bar_(bar), buffer_(kChunk) {}

    Result<driver::StreamChunk> next() {
        if (pos_ >= end_) return driver::StreamChunk{};
        std::uint64_t data_end = end_;
        if (sparse_) {
            auto region = data_region();
            if (!region) return std::unexpected(region.error());
            if (region->first > pos_) return hole(std::min(region->first, end_) - pos_);
            data_end = std::min(region->second, end_);
        }
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(data_end - pos_, buffer_.size()));
        VIREO_TRY(pread_all(fd_, buffer_.data(), n, static_cast<off_t>(pos_), file_));
        pos_ += n;
        bar_.advance(n);
        return driver::StreamChunk{false, n, std::span<const char>(buffer_.data(), n)};
    }

private:
    driver::StreamChunk hole(std::uint64_t length) {
        pos_ += length;
        bar_.advance(length);
        return driver::StreamChunk{true, length, {}};
    }

    // [start of the next data, its end) from pos_; start == end_ when only a hole is left.
    Result<std::pair<std::uint64_t, std::uint64_t>> data_region() {
        const off_t data = ::lseek(fd_, static_cast<off_t>(pos_), SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO) return std::pair{end_, end_};
            // No SEEK_DATA on this file system: everything is data.
            if (errno == EINVAL || errno == EOPNOTSUPP) return std::pair{pos_, end_};
            return fail_errno(fmt::format("cannot find the data in {}", file_));
        }
        const off_t hole_at = ::lseek(fd_, data, SEEK_HOLE);
        if (hole_at < 0) return fail_errno(fmt::format("cannot find the holes in {}", file_));
        return std::pair{static_cast<std::uint64_t>(data), static_cast<std::uint64_t>(hole_at)};
    }

    int fd_;
    std::string file_;
    std::uint64_t end_;
    bool sparse_;
    ProgressBar& bar_;
    std::vector<char> buffer_;
    std::uint64_t pos_ = 0;
};

// Writes the chunks of a download into a local file.
class FileSink {
public:
    FileSink(int fd, std::string file, bool keep_holes, ProgressBar& bar)
        : fd_(fd), file_(std::move(file)), keep_holes_(keep_holes), bar_(bar) {}

    Status put(const driver::StreamChunk& chunk) {
        if (!chunk.hole) {
            VIREO_TRY(write_all(fd_, chunk.data.data(), chunk.data.size(), file_));
        } else if (keep_holes_) {
            if (::lseek(fd_, static_cast<off_t>(chunk.length), SEEK_CUR) < 0)
                return fail_errno(fmt::format("cannot seek in {}", file_));
        } else {
            VIREO_TRY(write_zeros(chunk.length));
        }
        bar_.advance(chunk.length);
        return {};
    }

    // A trailing hole is only a seek: set the file's size to where the stream ended.
    Status finish() {
        if (!keep_holes_) return {};
        const off_t end = ::lseek(fd_, 0, SEEK_CUR);
        if (end < 0 || ::ftruncate(fd_, end) != 0) return fail_errno(fmt::format("cannot set the size of {}", file_));
        return {};
    }

private:
    Status write_zeros(std::uint64_t length) {
        if (zeros_.empty()) zeros_.assign(std::min<std::uint64_t>(length, kChunk), '\0');
        while (length > 0) {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(length, zeros_.size()));
            VIREO_TRY(write_all(fd_, zeros_.data(), n, file_));
            length -= n;
        }
        return {};
    }

    int fd_;
    std::string file_;
    bool keep_holes_;
    ProgressBar& bar_;
    std::vector<char> zeros_;
};

// virsh's way: create the file, or truncate the one that is there.
Result<std::pair<UniqueFd, bool>> open_for_download(const std::string& file) {
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
    if (fd) return std::pair{std::move(fd), true};
    if (errno != EEXIST) return fail_errno(fmt::format("cannot create {}", file));
    fd.reset(::open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    if (!fd) return fail_errno(fmt::format("cannot open {}", file));
    return std::pair{std::move(fd), false};
}

bool is_regular(int fd) {
    struct stat st{};
    return ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

Status upload_file(driver::PoolApi& api, const driver::VolumeSummary& vol, const std::string& file,
                   driver::TransferRange range, bool progress) {
    UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno(fmt::format("cannot read {}", file));
    auto size = file_size(fd.get(), file);
    if (!size) return std::unexpected(size.error());
    const std::uint64_t total = range.length == 0 ? *size : std::min(range.length, *size);
    range.length = total;
    ProgressBar bar(progress, vol.name, total);
    FileSource source(fd.get(), file, total, range.sparse, bar);
    return api.upload_volume(vol.pool, vol.name, range, [&source] { return source.next(); });
}

Status download_file(driver::PoolApi& api, const driver::VolumeSummary& vol, const std::string& file,
                     driver::TransferRange range, bool progress) {
    auto opened = open_for_download(file);
    if (!opened) return std::unexpected(opened.error());
    auto& [fd, created] = *opened;
    const std::uint64_t rest = vol.capacity > range.offset ? vol.capacity - range.offset : 0;
    const std::uint64_t total = range.length == 0 ? rest : std::min(range.length, rest);
    ProgressBar bar(progress, vol.name, total);
    // Holes can only be left unwritten in a regular file (a device keeps old data).
    FileSink sink(fd.get(), file, range.sparse && is_regular(fd.get()), bar);
    Status st = api.download_volume(vol.pool, vol.name, range,
                                    [&sink](const driver::StreamChunk& chunk) { return sink.put(chunk); });
    if (st) st = sink.finish();
    if (!st && created) ::unlink(file.c_str());
    return st;
}

}  // namespace vireo::cli
