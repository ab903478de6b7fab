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
}  // namespace

Result<MeasureResult> measure(const MeasureOptions& m) {
    auto ofmt = parse_format(m.target_format);
    if (!ofmt) return std::unexpected(ofmt.error());
    auto co = parse_create_options(*ofmt, m.create_options);
    if (!co) return std::unexpected(co.error());
    uint64_t virtual_size = m.path ? 0 : m.size, required = 0;
    const uint64_t cs = *ofmt == ImageFormat::Qcow2 ? co->cluster_size : 512;
    if (m.path) {
        OpenOptions oo;
        oo.force_share = m.force_share;
        Result<ImagePtr> img = std::unexpected(Error{});
        if (!m.format.empty()) {
            auto f = parse_driver(m.format);
            if (f) oo.format = *f;
            else img = std::unexpected(f.error());
        }
        if (m.format.empty() || oo.format) img = open_image(*m.path, oo);
        if (!img) return fail(img.error().code, "Could not open '{}': {}", m.path->string(), img.error().message);
        ImagePtr snap;
        Image* src = img->get();
        if (!m.snapshot.empty()) {
            auto* q = qcow2_cast(src);
            std::string key = m.snapshot.starts_with("snapshot.name=") ? m.snapshot.substr(14) : m.snapshot;
            auto s = q ? q->open_snapshot(key) : Result<ImagePtr>(std::unexpected(Error{ErrorCode::NotFound, "no snapshots"}));
            if (!s) return std::unexpected(s.error());
            snap = std::move(*s);
            src = snap.get();
        }
        virtual_size = src->size();
        for (uint64_t off = 0; off < virtual_size;) {
            auto e = chain_status(src, off, virtual_size - off);
            if (!e) return std::unexpected(e.error());
            uint64_t next = off + e->length;
            if (*ofmt == ImageFormat::Qcow2) next = std::min(virtual_size, (next + cs - 1) / cs * cs);
            if (e->data) required += next - off;
            off = next;
        }
        if (*ofmt == ImageFormat::Qcow2) virtual_size = (virtual_size + cs - 1) / cs * cs;
    } else {
        // Nothing allocated yet: qcow2 needs only metadata, raw the whole size.
        required = *ofmt == ImageFormat::Raw ? virtual_size : 0;
    }
    MeasureResult r;
    r.has_bitmaps_size = m.path && *ofmt == ImageFormat::Qcow2;
    if (*ofmt == ImageFormat::Qcow2) {
        r.fully_allocated = qcow2_prealloc_size(virtual_size, cs, co->refcount_bits, co->extended_l2);
        r.required = r.fully_allocated - ((virtual_size + cs - 1) / cs * cs) + required;
    } else {
        r.fully_allocated = virtual_size;
        r.required = co->prealloc != Preallocation::Off ? virtual_size : required;
    }
    return r;
}

}  // namespace vireo::storage
