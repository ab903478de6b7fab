#include "storage/measure.hpp"

#include <fmt/format.h>

#include "storage/chain.hpp"
#include "storage/options.hpp"
#include "storage/qcow2.hpp"

namespace vireo::storage {

namespace {
// qcow2_calc_prealloc_size / refcount metadata estimate from the qcow2 docs.
uint64_t refcount_metadata_size(uint64_t clusters, uint64_t cs, int refcount_bits) {
    uint64_t per_table_cluster = cs / 8, per_block = cs * 8 / static_cast<uint64_t>(refcount_bits);
    uint64_t table = 0, blocks = 0, n = 0, last;
    do {
        last = n;
        blocks = (clusters + table + blocks + per_block - 1) / per_block;
        table = (blocks + per_table_cluster - 1) / per_table_cluster;
        n = clusters + blocks + table;
    } while (n != last);
    return (blocks + table) * cs;
}
uint64_t qcow2_prealloc_size(uint64_t total, uint64_t cs, int refcount_bits, bool ext_l2) {
    uint64_t aligned = (total + cs - 1) / cs * cs;
    uint64_t l2e = ext_l2 ? 16 : 8;
    uint64_t meta = cs;
    uint64_t nl2e = aligned / cs;
    nl2e = (nl2e + cs / l2e - 1) / (cs / l2e) * (cs / l2e);
    meta += nl2e * l2e;
    uint64_t nl1e = nl2e * l2e / cs;
    nl1e = (nl1e + cs / 8 - 1) / (cs / 8) * (cs / 8);
    meta += nl1e * 8;
    meta += refcount_metadata_size((meta + aligned) / cs, cs, refcount_bits);
    return meta + aligned;
}

// What persistent bitmaps of `src` would take in a qcow2 target with
// `cs`-byte clusters: data and table clusters as if fully allocated, and
// the directory (QEMU's qcow2_get_persistent_dirty_bitmap_size).
Result<uint64_t> bitmaps_size(Image* src, uint64_t cs) {
    auto* q = qcow2_cast(src);
    if (!q) return uint64_t{0};
    auto info = q->info();
    if (!info) return std::unexpected(info.error());
    uint64_t size = 0, dir = 0;
    for (const auto& b : info->bitmaps) {
        const uint64_t bits = (src->size() + b.granularity - 1) / b.granularity;
        const uint64_t clusters = ((bits + 7) / 8 + cs - 1) / cs;
        size += clusters * cs + (clusters * 8 + cs - 1) / cs * cs;
        dir += (24 + b.name.size() + 7) & ~7ULL;
    }
    return size + (dir + cs - 1) / cs * cs;
}

}  // namespace

Result<MeasureResult> measure(const MeasureOptions& m) {
    auto ofmt = parse_format(m.target_format);
    if (!ofmt) return std::unexpected(ofmt.error());
    auto co = parse_create_options(*ofmt, m.create_options);
    if (!co) return std::unexpected(co.error());
    ImagePtr img, snap;
    Image* src = nullptr;
    if (m.path) {
        OpenOptions oo;
        oo.force_share = m.force_share;
        if (!m.format.empty()) {
            auto f = parse_driver(m.format);
            if (!f) return fail(f.error().code, "Could not open '{}': {}", m.path->string(), f.error().message);
            oo.format = *f;
        }
        auto o = open_image(*m.path, oo);
        if (!o) return fail(o.error().code, "Could not open '{}': {}", m.path->string(), o.error().message);
        img = std::move(*o);
        src = img.get();
        if (!m.snapshot.empty()) {
            auto* q = qcow2_cast(src);
            std::string key = m.snapshot.starts_with("snapshot.name=") ? m.snapshot.substr(14) : m.snapshot;
            auto s = q ? q->open_snapshot(key) : Result<ImagePtr>(std::unexpected(Error{ErrorCode::NotFound, "no snapshots"}));
            if (!s) return std::unexpected(s.error());
            snap = std::move(*s);
            src = snap.get();
        }
    }
    MeasureResult r;
    if (*ofmt == ImageFormat::Raw) {
        // Unallocated sectors take space in a raw file too.
        r.required = r.fully_allocated = src ? src->size() : (m.size + 511) / 512 * 512;
        return r;
    }
    const uint64_t cs = co->cluster_size;
    uint64_t virtual_size = 0, required = 0;
    if (src) {
        const uint64_t ssize = src->size();
        virtual_size = (ssize + cs - 1) / cs * cs;
        if (!co->backing_file.empty()) {
            // Nothing known of what the new backing file shares: every
            // cluster may need writing (as qemu-img assumes).
            required = virtual_size;
        } else {
            for (uint64_t off = 0; off < ssize;) {
                auto e = chain_status(src, off, ssize - off);
                if (!e) return std::unexpected(e.error());
                uint64_t n = e->length;
                if (!e->zero && e->data && e->present) {
                    // Whole clusters, from the start of the first one.
                    n = (off + n + cs - 1) / cs * cs - off;
                    required += off % cs + n;
                }
                off += n;
            }
        }
    } else {
        virtual_size = (m.size + cs - 1) / cs * cs;
    }
    if (co->prealloc == Preallocation::Full || co->prealloc == Preallocation::Falloc) required = virtual_size;
    r.fully_allocated = qcow2_prealloc_size(virtual_size, cs, co->refcount_bits, co->extended_l2);
    r.required = r.fully_allocated - virtual_size + required;
    // Bitmaps only where both sides can hold them.
    auto* sq = qcow2_cast(src);
    r.has_bitmaps_size = co->version >= 3 && sq && sq->header().version >= 3;
    if (r.has_bitmaps_size) {
        auto b = bitmaps_size(src, cs);
        if (!b) return std::unexpected(b.error());
        r.bitmaps = *b;
    }
    return r;
}

}  // namespace vireo::storage
