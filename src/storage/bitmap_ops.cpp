#include "storage/bitmap_ops.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "storage/image.hpp"
#include "storage/qcow2.hpp"

namespace vireo::storage {

namespace {

using qcow2::Bitmap;

std::string_view op_name(BitmapOp op) {
    switch (op) {
        case BitmapOp::Add: return "add";
        case BitmapOp::Remove: return "remove";
        case BitmapOp::Clear: return "clear";
        case BitmapOp::Enable: return "enable";
        case BitmapOp::Disable: return "disable";
        case BitmapOp::Merge: return "merge";
    }
    return "";
}

uint64_t bitmap_bytes(uint64_t size, uint32_t gran_bits) {
    const uint64_t bits = (size + (1ULL << gran_bits) - 1) >> gran_bits;
    return (bits + 7) / 8;
}

// QEMU's default granularity for a new bitmap: the cluster size, within
// [4 KiB, 64 KiB].
uint64_t default_granularity(const Qcow2Image& q) { return std::clamp<uint64_t>(q.cluster_size(), 4096, 65536); }

Bitmap* find(std::vector<Bitmap>& all, const std::string& name) {
    auto it = std::find_if(all.begin(), all.end(), [&](const Bitmap& b) { return b.name == name; });
    return it == all.end() ? nullptr : &*it;
}

Status not_found(const std::string& name) { return fail(ErrorCode::NotFound, "Dirty bitmap '{}' not found", name); }

Status usable(const Bitmap& b) {
    if (b.in_use)
        return fail(ErrorCode::InvalidState,
                    "Bitmap '{}' is inconsistent and cannot be used\nTry block-dirty-bitmap-remove to delete this bitmap from disk",
                    b.name);
    return {};
}

Status add(Qcow2Image& q, std::vector<Bitmap>& all, const BitmapRequest& r) {
    const std::string& name = r.bitmap;
    if (name.empty()) return fail(ErrorCode::InvalidArg, "Bitmap name cannot be empty");
    uint64_t gran = r.granularity.value_or(0);
    if (r.granularity && (gran < 512 || (gran & (gran - 1)) || gran > (1ULL << 31)))
        return fail(ErrorCode::InvalidArg, "Granularity must be power of 2 and at least 512");
    if (!gran) gran = default_granularity(q);
    auto cannot = [&](const std::string& why) {
        return fail(ErrorCode::Unsupported, "Can't make bitmap '{}' persistent in '{}': {}", name, q.filename(), why);
    };
    if (q.header().version < 3) return cannot("Cannot store dirty bitmaps in qcow2 v2 files");
    if (name.size() > 1023) return cannot("Name length exceeds maximum (1023 characters)");
    if (all.size() >= 65535) return cannot("Maximum number of persistent bitmaps is already reached");
    if (find(all, name)) return fail(ErrorCode::Exists, "Bitmap already exists: {}", name);
    Bitmap b;
    b.name = name;
    b.granularity_bits = static_cast<uint32_t>(__builtin_ctzll(gran));
    b.auto_enabled = true;  // qemu-img adds bitmaps enabled
    b.bits.assign(bitmap_bytes(q.size(), b.granularity_bits), 0);
    all.push_back(std::move(b));
    return {};
}

// Every bit of `src` that is set marks the bytes it covers in `dst`.
void merge_bits(Bitmap& dst, const Bitmap& src, uint64_t size) {
    const uint64_t gs = 1ULL << src.granularity_bits, gd = 1ULL << dst.granularity_bits;
    const uint64_t nbits_dst = (size + gd - 1) / gd;
    for (uint64_t byte = 0; byte < src.bits.size(); ++byte) {
        if (!src.bits[byte]) continue;
        for (int bit = 0; bit < 8; ++bit) {
            if (!(src.bits[byte] & (1U << bit))) continue;
            const uint64_t start = (byte * 8 + static_cast<uint64_t>(bit)) * gs;
            if (start >= size) break;
            const uint64_t end = std::min(size, start + gs);
            for (uint64_t j = start / gd; j <= (end - 1) / gd && j < nbits_dst; ++j)
                dst.bits[j / 8] = static_cast<uint8_t>(dst.bits[j / 8] | (1U << (j % 8)));
        }
    }
}

Status apply(Qcow2Image& q, std::vector<Bitmap>& all, const BitmapRequest& r, const BitmapAction& a,
             std::vector<Bitmap>* source_bitmaps, uint64_t source_size) {
    if (a.op == BitmapOp::Add) return add(q, all, r);
    Bitmap* b = find(all, r.bitmap);
    if (!b) return not_found(r.bitmap);
    switch (a.op) {
        case BitmapOp::Remove:
            all.erase(all.begin() + (b - all.data()));
            return {};
        case BitmapOp::Clear:
            VIREO_TRY(usable(*b));
            std::fill(b->bits.begin(), b->bits.end(), 0);
            return {};
        case BitmapOp::Enable:
        case BitmapOp::Disable:
            VIREO_TRY(usable(*b));
            b->auto_enabled = a.op == BitmapOp::Enable;
            return {};
        case BitmapOp::Merge: {
            VIREO_TRY(usable(*b));
            std::vector<Bitmap>& from = source_bitmaps ? *source_bitmaps : all;
            Bitmap* s = find(from, a.source);
            if (!s) return not_found(a.source);
            VIREO_TRY(usable(*s));
            if (source_size != q.size())
                return fail(ErrorCode::InvalidArg,
                            "Bitmaps are of different sizes (destination size is {}, source size is {}) and can't be merged",
                            q.size(), source_size);
            // `b` may point into `from` (same image): copy first.
            Bitmap src = *s;
            merge_bits(*find(all, r.bitmap), src, q.size());
            return {};
        }
        case BitmapOp::Add: break;
    }
    return {};
}

Result<ImagePtr> open_for_bitmaps(const std::filesystem::path& path, const std::string& format, bool writable) {
    OpenOptions o;
    o.writable = writable;
    o.open_backing = false;  // bitmaps only: no backing chain
    if (!format.empty()) {
        auto f = parse_driver(format);
        if (!f) return fail(f.error().code, "Could not open '{}': {}", path.string(), f.error().message);
        o.format = *f;
    }
    auto img = open_image(path, o);
    if (!img) return fail(img.error().code, "Could not open '{}': {}", path.string(), img.error().message);
    return img;
}

}  // namespace

Status edit_bitmap(const BitmapRequest& r) {
    auto img = open_for_bitmaps(r.path, r.format, true);
    if (!img) return std::unexpected(img.error());
    ImagePtr src_img;
    if (r.source_path) {
        auto s = open_for_bitmaps(*r.source_path, r.source_format, false);
        if (!s) return std::unexpected(s.error());
        src_img = std::move(*s);
    }
    auto* q = qcow2_cast(img->get());
    std::vector<Bitmap> all, source_all;
    if (q) {
        auto b = q->read_bitmaps();
        if (!b) return std::unexpected(b.error());
        all = std::move(*b);
    }
    uint64_t source_size = (*img)->size();
    if (src_img) {
        source_size = src_img->size();
        if (auto* sq = qcow2_cast(src_img.get())) {
            auto b = sq->read_bitmaps();
            if (!b) return std::unexpected(b.error());
            source_all = std::move(*b);
        }
    }
    Status result;
    bool changed = false;
    for (const auto& a : r.actions) {
        Status st;
        if (!q) {
            st = a.op == BitmapOp::Add ? fail(ErrorCode::Unsupported, "Can't store persistent bitmaps to '{}': Operation not supported",
                                             r.path.string())
                                       : not_found(r.bitmap);
        } else {
            st = apply(*q, all, r, a, src_img ? &source_all : nullptr, source_size);
        }
        if (!st) {
            result = fail(st.error().code, "Operation {} on bitmap {} failed: {}", op_name(a.op), r.bitmap, st.error().message);
            break;
        }
        changed = true;
    }
    // What succeeded is stored, even when a later operation failed.
    if (q && changed) VIREO_TRY(q->store_bitmaps(all));
    if (q) VIREO_TRY(q->close());
    return result;
}

}  // namespace vireo::storage
