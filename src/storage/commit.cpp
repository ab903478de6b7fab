#include "storage/commit.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "storage/chain.hpp"
#include "storage/qcow2.hpp"

namespace vireo::storage {

namespace {

constexpr uint64_t kChunk = 2ULL << 20;  // qemu-img's IO_BUF_SIZE

// The granularity of QEMU's default dirty bitmap on `img`, which its
// commit copies in: the cluster size within [4 KiB, 64 KiB]; 64 KiB for
// raw images.
uint64_t commit_granularity(Image& img) {
    if (img.format() != ImageFormat::Qcow2) return 64ULL << 10;
    return std::clamp<uint64_t>(img.cluster_size(), 4096, 64ULL << 10);
}

Result<ImagePtr> open_path(const std::filesystem::path& path, const std::string& fmt, OpenOptions o) {
    if (!fmt.empty()) {
        auto f = parse_driver(fmt);
        if (!f) return std::unexpected(f.error());
        o.format = *f;
    }
    return open_image(path, o);
}

}  // namespace

Status commit(const CommitOptions& o) {
    OpenOptions to;
    to.writable = !o.drop;
    // qemu-img takes the overlay as a writer even with -d.
    to.lock_perms = default_lock_perms(true, false);
    auto top = open_path(o.path, o.format, to);
    if (!top) return fail(top.error().code, "Could not open '{}': {}", o.path.string(), top.error().message);
    Image* t = top->get();
    if (!t->backing()) return fail(ErrorCode::InvalidArg, "Image '{}' does not have a backing file", o.path.string());
    // The base: the direct backing file, or the named image further down.
    Image* base_view = t->backing();
    if (!o.base.empty()) {
        auto want = std::filesystem::weakly_canonical(o.base);
        for (Image* l = t->backing(); l; l = l->backing()) {
            if (std::filesystem::weakly_canonical(l->filename()) == want) {
                base_view = l;
                break;
            }
            if (!l->backing())
                return fail(ErrorCode::NotFound, "Did not find '{}' in the backing chain of '{}'", o.base,
                            o.path.string());
        }
    }
    OpenOptions bo;
    bo.format = base_view->format();
    bo.writable = true;
    bo.open_backing = false;
    auto base = open_image(base_view->filename(), bo);
    if (!base) return fail(base.error().code, "Could not open '{}': {}", base_view->filename(), base.error().message);
    std::vector<char> buf(kChunk);
    const uint64_t size = t->size();
    if ((*base)->size() < size) VIREO_TRY((*base)->resize(size, false, Preallocation::Off));
    // As qemu-img's commit (a mirror of the top onto the base): what is
    // allocated above the base is copied in chunks of the base's bitmap
    // granularity; a run that reads as zero in the whole chain and covers
    // whole base clusters becomes zero there (clusters freed), the rest is
    // copied as data as it reads, zeroes included.
    const uint64_t g = commit_granularity(**base);
    const uint64_t base_cluster = (*base)->format() == ImageFormat::Qcow2 ? (*base)->cluster_size() : 1;
    auto allocated_above = [&](uint64_t off, uint64_t len) -> Result<std::pair<bool, uint64_t>> {
        for (Image* l = t; l && l != base_view; l = l->backing()) {
            if (off >= l->size()) continue;
            auto e = l->block_status(off, std::min(len, l->size() - off));
            if (!e) return std::unexpected(e.error());
            len = std::min(len, e->length);
            if (e->kind != ExtentKind::Unallocated) return std::pair{true, len};
        }
        return std::pair{false, len};
    };
    auto copy = [&](uint64_t off, uint64_t len) -> Status {
        for (uint64_t done = 0; done < len;) {
            uint64_t n = std::min<uint64_t>(kChunk, len - done);
            VIREO_TRY(t->read(off + done, buf.data(), n));
            VIREO_TRY((*base)->write(off + done, buf.data(), n));
            done += n;
        }
        return {};
    };
    // One run of dirty chunks [start, end): status of the whole chain
    // decides how each part goes.
    auto mirror = [&](uint64_t start, uint64_t end) -> Status {
        for (uint64_t pos = start; pos < end;) {
            auto st = chain_status(t, pos, end - pos);
            if (!st) return std::unexpected(st.error());
            uint64_t io = st->length - st->length % g;
            bool zero = !st->data && st->zero;
            if (io < g) {
                io = g;
                zero = false;
            }
            io = std::min(io, end - pos);
            const bool aligned = pos % base_cluster == 0 && (io % base_cluster == 0 || pos + io == size);
            if (zero && aligned) VIREO_TRY((*base)->write_zeroes(pos, io, true));
            else VIREO_TRY(copy(pos, io));
            pos += io;
        }
        return {};
    };
    uint64_t dirty_start = 0, dirty_end = 0;  // the run of dirty chunks being gathered
    for (uint64_t off = 0; off < size;) {
        auto a = allocated_above(off, std::min<uint64_t>(kChunk, size - off));
        if (!a) return std::unexpected(a.error());
        auto [above, len] = *a;
        if (above) {
            const uint64_t cs = off / g * g, ce = std::min(size, (off + len + g - 1) / g * g);
            if (dirty_end && cs > dirty_end) {
                VIREO_TRY(mirror(dirty_start, dirty_end));
                dirty_end = 0;
            }
            if (!dirty_end) dirty_start = cs;
            dirty_end = std::max(dirty_end, ce);
        }
        off += len;
        if (o.progress && !o.progress(off, size)) {
            (void)(*base)->close();
            return std::unexpected(cancelled_error());
        }
    }
    if (dirty_end) VIREO_TRY(mirror(dirty_start, dirty_end));
    VIREO_TRY((*base)->close());
    if (!o.drop) {
        if (auto* q = qcow2_cast(t)) VIREO_TRY(q->make_empty());
        VIREO_TRY(t->close());
    }
    return {};
}

Status rebase(const RebaseOptions& o) {
    OpenOptions to;
    to.writable = true;
    to.open_backing = !o.unsafe;
    auto img = open_path(o.path, o.format, to);
    if (!img) return fail(img.error().code, "Could not open '{}': {}", o.path.string(), img.error().message);
    auto* q = qcow2_cast(img->get());
    if (!q) return fail(ErrorCode::Unsupported, "Could not change the backing file to '{}': Operation not supported", o.backing);
    // The new backing format is never guessed for the header (QEMU 7.2
    // refuses to record a probed one); a safe rebase still probes it to
    // read the new backing file, copies, and is refused at the end, as
    // qemu-img is.
    const std::string& backing_fmt = o.backing_format;
    const bool format_missing = !o.backing.empty() && backing_fmt.empty();
    auto refuse_unknown_format = [&] {
        return fail(ErrorCode::InvalidArg, "Could not change the backing file to '{}': backing format must be specified",
                    o.backing);
    };
    if (format_missing && o.unsafe) return refuse_unknown_format();
    // Onto the backing file it already has: no data changes (qemu-img
    // does no copy steps then either).
    bool same_backing = false;
    if (!o.unsafe && !o.backing.empty() && q->backing()) {
        std::error_code e1, e2;
        auto a = std::filesystem::weakly_canonical(resolve_backing_path(o.path, o.backing), e1);
        auto b = std::filesystem::weakly_canonical(q->backing()->filename(), e2);
        same_backing = !e1 && !e2 && a == b;
    }
    if (!o.unsafe && !same_backing) {
        ImagePtr new_backing;
        if (!o.backing.empty()) {
            OpenOptions no;
            no.force_share = o.force_share;
            auto nb = open_path(resolve_backing_path(o.path, o.backing), backing_fmt, no);
            if (!nb) return fail(nb.error().code, "Could not open new backing file '{}': {}", o.backing, nb.error().message);
            new_backing = std::move(*nb);
        }
        const uint64_t size = q->size();
        const uint64_t cs = q->cluster_size();
        const uint64_t old_size = q->backing() ? q->backing()->size() : 0;
        std::vector<char> old_buf(kChunk), new_buf(kChunk);
        for (uint64_t off = 0; off < size;) {
            uint64_t n = std::min<uint64_t>(kChunk, size - off);
            auto e = q->block_status(off, n);
            if (!e) return std::unexpected(e.error());
            n = e->length;
            if (e->kind != ExtentKind::Unallocated) {
                off += n;
                continue;
            }
            // Chunks end where either backing file ends, as qemu-img's do
            // (its progress steps follow them).
            if (off < old_size) n = std::min(n, old_size - off);
            const uint64_t new_size = new_backing ? new_backing->size() : 0;
            if (off < new_size) n = std::min(n, new_size - off);
            // Past the old backing file's end the image reads zero: what
            // differs there is written as zero clusters, not zero data.
            const bool old_is_zero = off >= old_size;
            VIREO_TRY(q->read(off, old_buf.data(), n));
            if (off < new_size) VIREO_TRY(new_backing->read(off, new_buf.data(), n));
            else std::memset(new_buf.data(), 0, n);
            // Copy only the clusters whose content would change.
            for (uint64_t p = 0; p < n;) {
                uint64_t step = std::min<uint64_t>(n - p, cs - (off + p) % cs);
                if (std::memcmp(old_buf.data() + p, new_buf.data() + p, step) != 0) {
                    if (old_is_zero) VIREO_TRY(q->write_zeroes(off + p, step, false));
                    else VIREO_TRY(q->write(off + p, old_buf.data() + p, step));
                }
                p += step;
            }
            off += n;
            if (o.progress && !o.progress(off, size)) {
                (void)q->close();
                return std::unexpected(cancelled_error());
            }
        }
    }
    if (format_missing) {
        VIREO_TRY(q->close());
        return refuse_unknown_format();
    }
    auto st = q->set_backing(o.backing, backing_fmt);
    if (!st)
        return fail(st.error().code, "Could not change the backing file to '{}': {}", o.backing, st.error().message);
    return q->close();
}

}  // namespace vireo::storage
