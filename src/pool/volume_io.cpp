// Volume content operations on storage::Image (see volume_io.hpp).
#include "pool/volume_io.hpp"

#include <fcntl.h>
#include <sys/random.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "storage/convert.hpp"
#include "storage/image.hpp"

namespace vireo::pool {

namespace {

constexpr std::uint64_t kChunk = 4u << 20;  // bytes moved per read/write

// The "Failed to get "write" lock" of a lock refusal (storage/lock.hpp),
// or "" when `e` is not one.
std::string lock_refusal(const Error& e) {
    if (e.code != ErrorCode::Busy) return {};
    const auto i = e.message.find("Failed to get");
    if (i == std::string::npos) return {};
    return e.message.substr(i, e.message.find('\n', i) - i);
}

// A lock refusal in the daemon's words: which volume, and why.
Error in_use(const VolumeDef& vol, const Error& e) {
    const std::string why = lock_refusal(e);
    if (why.empty()) return e;
    return Error{ErrorCode::Busy,
                 fmt::format("volume '{}' is in use by another process ({}): '{}'", vol.name, why, vol.path)};
}

// The image format the copy engine reads and writes a volume as: the
// volume's own where the engine knows it (a vmdk's guest data is not its
// file's bytes), raw for the rest (raw files, partitions, iso, ...).
std::string engine_format(const VolumeDef& vol) {
    for (const char* f : {"qcow2", "vmdk", "vpc", "vhdx", "vdi"})
        if (vol.format == f) return vol.format;
    return "raw";
}

Result<storage::ImagePtr> open_volume(const VolumeDef& vol, bool writable,
                                      storage::CacheMode cache = storage::CacheMode::Writeback, bool force_share = false) {
    if (vol.type == driver::VolumeType::Dir)
        return fail(ErrorCode::Unsupported, "volume '{}' is a directory: it has no contents to copy, wipe or transfer", vol.name);
    storage::OpenOptions opts;
    auto f = storage::parse_format(engine_format(vol));
    if (!f) return std::unexpected(f.error());
    opts.format = *f;
    opts.writable = writable;
    opts.cache = cache;
    opts.force_share = force_share;
    opts.whole_sectors = false;  // a volume is its file, byte for byte
    auto img = storage::open_image(vol.path, opts);
    if (!img) {
        if (!lock_refusal(img.error()).empty()) return std::unexpected(in_use(vol, img.error()));
        return std::unexpected(img.error().context(fmt::format("cannot open volume '{}'", vol.name)));
    }
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

Status copy_volume_contents(const VolumeDef& src, const VolumeDef& dst, const storage::ProgressFn& progress) {
    for (const VolumeDef* v : {&src, &dst})
        if (v->type == driver::VolumeType::Dir)
            return fail(ErrorCode::Unsupported, "volume '{}' is a directory: it has no contents to copy, wipe or transfer", v->name);
    // vireo-img convert's engine, onto the volume just made (-n, reads
    // zero). The copy is written back by the kernel, not synced: libvirt
    // makes it with qemu-img convert, whose default cache mode (unsafe)
    // does not sync either, and a sync of the whole copy doubled the time
    // of a clone.
    storage::ConvertOptions o;
    o.sources = {storage::ConvertSource{src.path, engine_format(src), {}}};
    o.target = dst.path;
    o.target_format = engine_format(dst);
    o.no_create = true;
    o.target_is_zero = true;
    o.cache = storage::CacheMode::Unsafe;
    o.progress = progress;
    auto st = storage::convert(o);
    if (!st) {
        const bool target = st.error().message.find("[" + dst.path + "]") != std::string::npos;
        return std::unexpected(in_use(target ? dst : src, st.error()));
    }
    return {};
}

Status wipe_volume_contents(const VolumeDef& vol, driver::WipeAlgorithm algorithm, const storage::ProgressFn& progress) {
    auto img = open_volume(vol, true);
    if (!img) return std::unexpected(img.error());
    const std::uint64_t size = (*img)->size();
    auto step = [&](std::uint64_t done) -> Status {
        if (progress && !progress(done, size)) return std::unexpected(storage::cancelled_error());
        return {};
    };
    // Zeroes go in steps too, so that progress moves and an abort is heard.
    constexpr std::uint64_t kZeroStep = 256u << 20;
    auto zero = [&](bool unmap) -> Status {
        for (std::uint64_t off = 0; off < size;) {
            const std::uint64_t n = std::min(kZeroStep, size - off);
            VIREO_TRY((*img)->write_zeroes(off, n, unmap));
            off += n;
            VIREO_TRY(step(off));
        }
        return {};
    };
    switch (algorithm) {
    case driver::WipeAlgorithm::Zero: {
        // Every guest byte reads zero afterwards. qcow2 gets zero clusters;
        // a sparse raw file has its data deallocated (as libvirt truncates
        // it); a fully allocated file or a partition has zeros written in
        // place, so it keeps its allocation.
        const bool sparse_file = vol.type == driver::VolumeType::File && vol.allocation.value_or(0) < size;
        VIREO_TRY(zero(vol.format == "qcow2" || sparse_file));
        break;
    }
    case driver::WipeAlgorithm::Trim:
        VIREO_TRY(zero(true));
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
            VIREO_TRY(step(off));
        }
        break;
    }
    }
    VIREO_TRY((*img)->flush());
    return (*img)->close();
}

Result<storage::ImageLock> lock_volume_for_write(const VolumeDef& vol) {
    if (vol.type == driver::VolumeType::Dir) return storage::ImageLock{};
    auto l = storage::ImageLock::acquire(vol.path, storage::default_lock_perms(true, false));
    if (!l) {
        if (!lock_refusal(l.error()).empty()) return std::unexpected(in_use(vol, l.error()));
        if (l.error().code == ErrorCode::NotFound) return storage::ImageLock{};  // gone: the operation says so
        return std::unexpected(l.error());
    }
    return l;
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
                                const driver::StreamSink& sink, const storage::ProgressFn& progress) {
    auto img = open_volume(vol, false, storage::CacheMode::Writeback, true);
    if (!img) return std::unexpected(img.error());
    auto end = range_end(vol, range, (*img)->size());
    if (!end) return std::unexpected(end.error());
    const std::uint64_t total = *end - range.offset;
    auto step = [&](std::uint64_t off) -> Status {
        if (progress && !progress(off - range.offset, total)) return std::unexpected(storage::cancelled_error());
        return {};
    };
    std::vector<char> buf(kChunk);
    for (std::uint64_t off = range.offset; off < *end;) {
        auto run = guest_run(**img, off, *end - off);
        if (!run) return std::unexpected(run.error());
        const std::uint64_t run_end = off + run->length;
        if (run->zero && range.sparse) {
            VIREO_TRY(sink(driver::StreamChunk{true, run->length, {}}));
            off = run_end;
            VIREO_TRY(step(off));
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
            VIREO_TRY(step(off));
        }
    }
    return {};
}

Status upload_volume_contents(const VolumeDef& vol, const driver::TransferRange& range,
                              const driver::StreamSource& source, const storage::ProgressFn& progress) {
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
        if (progress && !progress(off - range.offset, *end - range.offset))
            return std::unexpected(storage::cancelled_error());
    }
    VIREO_TRY((*img)->flush());
    return (*img)->close();
}

}  // namespace vireo::pool
