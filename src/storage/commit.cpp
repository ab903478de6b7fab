#include "storage/commit.hpp"

#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "storage/chain.hpp"
#include "storage/qcow2.hpp"

namespace vireo::storage {

namespace {

constexpr uint64_t kChunk = 2ULL << 20;  // qemu-img's IO_BUF_SIZE

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
    for (uint64_t off = 0; off < size;) {
        uint64_t n = std::min<uint64_t>(kChunk, size - off);
        // Allocated anywhere above the base?
        Image* l = t;
        bool above = false;
        uint64_t len = n;
        while (l && l != base_view) {
            auto e = l->block_status(off, std::min<uint64_t>(len, l->size() > off ? l->size() - off : len));
            if (!e) return std::unexpected(e.error());
            len = std::min(len, e->length);
            if (e->kind != ExtentKind::Unallocated) {
                above = true;
                break;
            }
            l = l->backing();
        }
        if (above) {
            VIREO_TRY(t->read(off, buf.data(), len));
            if (buffer_is_zero(buf.data(), len)) VIREO_TRY((*base)->write_zeroes(off, len, false));
            else VIREO_TRY((*base)->write(off, buf.data(), len));
        }
        off += len;
        if (o.progress && !o.progress(off, size)) {
            (void)(*base)->close();
            return std::unexpected(cancelled_error());
        }
    }
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
            VIREO_TRY(q->read(off, old_buf.data(), n));
            uint64_t have = 0;
            if (new_backing && off < new_backing->size()) {
                have = std::min<uint64_t>(n, new_backing->size() - off);
                VIREO_TRY(new_backing->read(off, new_buf.data(), have));
            }
            std::memset(new_buf.data() + have, 0, n - have);
            // Copy only the clusters whose content would change.
            for (uint64_t p = 0; p < n;) {
                uint64_t step = std::min<uint64_t>(n - p, cs - (off + p) % cs);
                if (std::memcmp(old_buf.data() + p, new_buf.data() + p, step) != 0)
                    VIREO_TRY(q->write(off + p, old_buf.data() + p, step));
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
