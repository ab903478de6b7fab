// Volume content operations on storage::Image (see volume_io.hpp).
#include "pool/volume_io.hpp"

#include <fcntl.h>
#include <sys/random.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "storage/image.hpp"

namespace vireo::pool {

namespace {

constexpr std::uint64_t kChunk = 4u << 20;  // bytes moved per read/write

Result<storage::ImagePtr> open_volume(const VolumeDef& vol, bool writable,
                                      storage::CacheMode cache = storage::CacheMode::Writeback) {
    if (vol.type == driver::VolumeType::Dir)
        return fail(ErrorCode::Unsupported, "volume '{}' is a directory: it has no contents to copy, wipe or transfer", vol.name);
    storage::OpenOptions opts;
    auto f = storage::parse_format(vol.format == "qcow2" ? "qcow2" : "raw");  // partitions are raw
    if (!f) return std::unexpected(f.error());
    opts.format = *f;
    opts.writable = writable;
    opts.cache = cache;
    auto img = storage::open_image(vol.path, opts);
    if (!img) return std::unexpected(img.error().context(fmt::format("cannot open volume '{}'", vol.name)));
    return img;
}

bool all_zero(const char* p, std::size_t n) {
    static const char zeros[4096] = {};
    while (n > 0) {
        std::size_t k = std::min(n, sizeof zeros);
        if (std::memcmp(p, zeros, k) != 0) return false;
        p += k;
        n -= k;
    }
    return true;
}

// One run of the guest view: does [off, off+length) read as zero for sure
// (without reading it)? Descends the backing chain for unallocated ranges.
struct Run {
    std::uint64_t length = 0;
    bool zero = false;
};

Result<Run> guest_run(storage::Image& img, std::uint64_t off, std::uint64_t len) {
    auto e = img.block_status(off, len);
    if (!e) return std::unexpected(e.error());
    Run r{e->length, false};
    switch (e->kind) {
    case storage::ExtentKind::Zero: r.zero = true; break;
    case storage::ExtentKind::Data: r.zero = e->host_zero; break;
    case storage::ExtentKind::Compressed: break;
    case storage::ExtentKind::Unallocated:
        if (storage::Image* b = img.backing(); b && off < b->size()) {
            auto inner = guest_run(*b, off, std::min(r.length, b->size() - off));
            if (!inner) return inner;
            return *inner;
        }
        r.zero = true;
        break;
    }
    if (r.length == 0) r.length = len;  // never loop forever on a bad answer
    return r;
}

}  // namespace

Status copy_volume_contents(const VolumeDef& src, const VolumeDef& dst) {
    auto in = open_volume(src, false);
    if (!in) return std::unexpected(in.error());
    // The copy is written back by the kernel, not synced: libvirt makes it
    // with qemu-img convert, whose default cache mode (unsafe) does not sync
    // either, and a sync of the whole copy doubled the time of a clone.
    auto out = open_volume(dst, true, storage::CacheMode::Unsafe);
    if (!out) return std::unexpected(out.error());
    const std::uint64_t size = std::min((*in)->size(), (*out)->size());
    std::vector<char> buf(kChunk);
    for (std::uint64_t off = 0; off < size;) {
        auto run = guest_run(**in, off, std::min<std::uint64_t>(size - off, 1ull << 30));
        if (!run) return std::unexpected(run.error());
        if (run->zero) {  // the new volume already reads zero there
            off += run->length;
            continue;
        }
        const std::uint64_t end = off + run->length;
        while (off < end) {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, end - off));
            VIREO_TRY((*in)->read(off, buf.data(), n));
            if (!all_zero(buf.data(), n)) VIREO_TRY((*out)->write(off, buf.data(), n));
            off += n;
        }
    }
    VIREO_TRY((*out)->flush());
    return (*out)->close();
}

Status wipe_volume_contents(const VolumeDef& vol, driver::WipeAlgorithm algorithm) {
    auto img = open_volume(vol, true);
    if (!img) return std::unexpected(img.error());
    const std::uint64_t size = (*img)->size();
    switch (algorithm) {
    case driver::WipeAlgorithm::Zero: {
        // Every guest byte reads zero afterwards. qcow2 gets zero clusters;
        // a sparse raw file has its data deallocated (as libvirt truncates
        // it); a fully allocated file or a partition has zeros written in
        // place, so it keeps its allocation.
        const bool sparse_file = vol.type == driver::VolumeType::File && vol.allocation.value_or(0) < size;
        VIREO_TRY((*img)->write_zeroes(0, size, vol.format == "qcow2" || sparse_file));
        break;
    }
    case driver::WipeAlgorithm::Trim:
        VIREO_TRY((*img)->write_zeroes(0, size, true));
        break;
    case driver::WipeAlgorithm::Random: {
        std::vector<char> buf(kChunk);
        for (std::uint64_t off = 0; off < size;) {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, size - off));
            for (std::size_t got = 0; got < n;) {
                ssize_t r = ::getrandom(buf.data() + got, n - got, 0);
                if (r < 0) {
                    if (errno == EINTR) continue;
                    return fail_errno("getrandom");
                }
                got += static_cast<std::size_t>(r);
            }
            VIREO_TRY((*img)->write(off, buf.data(), n));
            off += n;
        }
        break;
    }
    }
    VIREO_TRY((*img)->flush());
    return (*img)->close();
}

namespace {

// Resolve [offset, offset+length) against the volume size.
Result<std::uint64_t> range_end(const VolumeDef& vol, const driver::TransferRange& range, std::uint64_t size) {
    if (range.offset > size)
        return fail(ErrorCode::InvalidArg, "offset {} is beyond the end of volume '{}' ({} bytes)", range.offset, vol.name, size);
    if (range.length == 0) return size;
    if (range.length > size - range.offset)
        return fail(ErrorCode::InvalidArg, "offset {} + length {} is beyond the end of volume '{}' ({} bytes)",
                    range.offset, range.length, vol.name, size);
    return range.offset + range.length;
}

}  // namespace

namespace {

// Make [off, off+len) read as zero, leaving alone what already does (so a
// sparse upload into a fresh volume writes no metadata for its holes).
Status zero_range(storage::Image& img, std::uint64_t off, std::uint64_t len, bool unmap) {
    const std::uint64_t end = off + len;
    while (off < end) {
        auto run = guest_run(img, off, end - off);
        if (!run) return std::unexpected(run.error());
        const std::uint64_t n = std::min(run->length, end - off);
        if (!run->zero) VIREO_TRY(img.write_zeroes(off, n, unmap));
        off += n;
    }
    return {};
}

}  // namespace

Status download_volume_contents(const VolumeDef& vol, const driver::TransferRange& range,
                                const driver::StreamSink& sink) {
    auto img = open_volume(vol, false);
    if (!img) return std::unexpected(img.error());
    auto end = range_end(vol, range, (*img)->size());
    if (!end) return std::unexpected(end.error());
    std::vector<char> buf(kChunk);
    for (std::uint64_t off = range.offset; off < *end;) {
        auto run = guest_run(**img, off, *end - off);
        if (!run) return std::unexpected(run.error());
        const std::uint64_t run_end = off + run->length;
        if (run->zero && range.sparse) {
            VIREO_TRY(sink(driver::StreamChunk{true, run->length, {}}));
            off = run_end;
            continue;
        }
        while (off < run_end) {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, run_end - off));
            if (run->zero) std::memset(buf.data(), 0, n);
            else VIREO_TRY((*img)->read(off, buf.data(), n));
            if (range.sparse && all_zero(buf.data(), n))
                VIREO_TRY(sink(driver::StreamChunk{true, n, {}}));
            else
                VIREO_TRY(sink(driver::StreamChunk{false, n, std::span<const char>(buf.data(), n)}));
            off += n;
        }
    }
    return {};
}

Status upload_volume_contents(const VolumeDef& vol, const driver::TransferRange& range,
                              const driver::StreamSource& source) {
    auto img = open_volume(vol, true);
    if (!img) return std::unexpected(img.error());
    auto end = range_end(vol, range, (*img)->size());
    if (!end) return std::unexpected(end.error());
    const bool unmap = vol.type == driver::VolumeType::File;
    std::uint64_t off = range.offset;
    for (;;) {
        auto chunk = source();
        if (!chunk) return std::unexpected(chunk.error());
        if (chunk->length == 0) break;
        if (chunk->length > *end - off)
            return fail(ErrorCode::InvalidArg, "upload to volume '{}' is larger than the {} bytes available from offset {}",
                        vol.name, *end - range.offset, range.offset);
        if (!chunk->hole && chunk->data.size() != chunk->length)
            return fail(ErrorCode::Protocol, "upload chunk of {} bytes carries {} bytes of data", chunk->length, chunk->data.size());
        if (chunk->hole || all_zero(chunk->data.data(), chunk->data.size()))
            VIREO_TRY(zero_range(**img, off, chunk->length, unmap));
        else
            VIREO_TRY((*img)->write(off, chunk->data.data(), chunk->data.size()));
        off += chunk->length;
    }
    VIREO_TRY((*img)->flush());
    return (*img)->close();
}

}  // namespace vireo::pool
