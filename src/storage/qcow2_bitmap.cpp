// qcow2 persistent dirty bitmaps: reading their contents and storing new
// ones (the "Bitmaps" header extension, bitmap directory, bitmap tables and
// bitmap data clusters of the qcow2 specification).
#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "storage/endian.hpp"
#include "storage/qcow2.hpp"

namespace vireo::storage {

using namespace qcow2;

namespace {

constexpr uint32_t kBitmapInUse = 1;
constexpr uint32_t kBitmapAuto = 2;
constexpr uint8_t kBitmapTypeDirty = 1;
constexpr uint64_t kBitmapTableOffsetMask = 0x00fffffffffffe00ULL;
constexpr uint64_t kBitmapTableReserved = 0xff000000000001feULL;
constexpr uint64_t kBitmapAllOnes = 1;
constexpr size_t kMaxBitmapName = 1023;
constexpr uint32_t kMaxBitmaps = 65535;
constexpr uint64_t kMaxBitmapDir = 64ULL << 20;
constexpr uint64_t kMaxBitmapTable = 64ULL << 20;

// Bytes of bitmap data for an image of `size` bytes at this granularity.
uint64_t bitmap_bytes(uint64_t size, uint32_t gran_bits) {
    uint64_t bits = (size + (1ULL << gran_bits) - 1) >> gran_bits;
    return (bits + 7) / 8;
}

// One directory entry as stored (for keeping existing bitmaps unchanged).
struct DirEntry {
    std::string name;
    std::string raw;  // the whole entry, padding included
};

constexpr uint64_t kMaxBitmapTableEntries = 0x8000000;  // QEMU's BME_MAX_TABLE_SIZE
constexpr uint64_t kMaxBitmapPhysBytes = 0x20000000;     // BME_MAX_PHYS_SIZE

}  // namespace

Status Qcow2Image::validate_bitmaps() {
    if (bitmaps_ext_.empty() || !(h_.autoclear & kAutoclearBitmaps)) return {};
    if (bitmap_dir_size_ == 0) return fail(ErrorCode::Corrupt, "Requested bitmap directory size is zero");
    std::string dir(bitmap_dir_size_, '\0');
    auto rd = file_.read(dir.data(), dir.size(), bitmap_dir_offset_);
    if (!rd) return fail(ErrorCode::Io, "Failed to read bitmap directory: {}", rd.error().message);
    auto broken = [] { return fail(ErrorCode::Corrupt, "Broken bitmap directory"); };
    uint64_t off = 0;
    uint32_t entries = 0;
    struct Loaded {
        std::string name;
        uint64_t table;
        uint32_t tsize;
        uint32_t gran_bits;
    };
    std::vector<Loaded> consistent;
    while (off < dir.size()) {
        if (off + 24 > dir.size()) return broken();
        if (++entries > nb_bitmaps_)
            return fail(ErrorCode::Corrupt, "More bitmaps found than specified in header extension");
        const char* e = dir.data() + off;
        const uint64_t table = load_be64(e);
        const uint32_t tsize = load_be32(e + 8);
        const uint32_t flags = load_be32(e + 12);
        const auto type = static_cast<uint8_t>(e[16]);
        const auto gran_bits = static_cast<uint8_t>(e[17]);
        const uint16_t name_size = load_be16(e + 18);
        const uint32_t extra = load_be32(e + 20);
        const uint64_t next = (off + 24 + uint64_t{extra} + name_size + 7) & ~7ULL;
        if (next > dir.size()) return broken();
        if (extra != 0) return fail(ErrorCode::Unsupported, "Bitmap extra data is not supported");
        std::string name = dir.substr(off + 24, name_size);
        // QEMU's constraints on one entry.
        const uint64_t phys = uint64_t{tsize} * cluster_size_;
        const bool bad = tsize == 0 || table == 0 || (table & (cluster_size_ - 1)) || tsize > kMaxBitmapTableEntries ||
                         gran_bits > 31 || gran_bits < 9 || (flags & ~(kBitmapInUse | kBitmapAuto)) ||
                         name_size > kMaxBitmapName || type != kBitmapTypeDirty || phys > kMaxBitmapPhysBytes ||
                         (gran_bits <= 31 && h_.size > ((phys * 8) << gran_bits));
        if (bad) return fail(ErrorCode::Corrupt, "Bitmap '{}' doesn't satisfy the constraints", name);
        if (!(flags & kBitmapInUse)) consistent.push_back({std::move(name), table, tsize, gran_bits});
        off = next;
    }
    if (entries != nb_bitmaps_) return fail(ErrorCode::Corrupt, "Less bitmaps found than specified in header extension");
    // Consistent bitmaps are loaded by QEMU at open: their tables must be
    // well formed and of the size the image needs.
    for (const auto& b : consistent) {
        std::string t(uint64_t{b.tsize} * 8, '\0');
        VIREO_TRY(file_.read(t.data(), t.size(), b.table));
        for (uint32_t k = 0; k < b.tsize; ++k) {
            const uint64_t te = load_be64(t.data() + std::size_t{8} * k);
            const uint64_t data = te & kBitmapTableOffsetMask;
            if ((te & kBitmapTableReserved) || (data && (te & kBitmapAllOnes)) || (data & (cluster_size_ - 1)))
                return fail(ErrorCode::Corrupt, "Could not read bitmap_table table from image for bitmap '{}': Invalid argument",
                            b.name);
        }
        const uint64_t want = (bitmap_bytes(h_.size, b.gran_bits) + cluster_size_ - 1) >> cluster_bits_;
        if (b.tsize != want) return fail(ErrorCode::Corrupt, "Could not read bitmap '{}' from image: Invalid argument", b.name);
    }
    return {};
}

Result<std::vector<Bitmap>> Qcow2Image::read_bitmaps() {
    // Being tracked, the bitmaps in memory are the current ones (those on
    // disk are marked in use until close() stores them).
    if (tracked_) return *tracked_;
    std::vector<Bitmap> out;
    if (bitmaps_ext_.empty() || !(h_.autoclear & kAutoclearBitmaps)) return out;
    if (bitmap_dir_size_ > kMaxBitmapDir) return fail(ErrorCode::Corrupt, "'{}': bitmap directory too large", filename_);
    auto flen = file_.length();
    if (!flen) return std::unexpected(flen.error());
    std::string dir(bitmap_dir_size_, '\0');
    VIREO_TRY(file_.read(dir.data(), dir.size(), bitmap_dir_offset_));
    uint64_t off = 0;
    for (uint32_t i = 0; i < nb_bitmaps_; ++i) {
        if (off + 24 > dir.size()) return fail(ErrorCode::Corrupt, "'{}': bitmap directory truncated", filename_);
        const char* e = dir.data() + off;
        uint64_t table = load_be64(e);
        uint32_t tsize = load_be32(e + 8);
        uint32_t flags = load_be32(e + 12);
        auto type = static_cast<uint8_t>(e[16]);
        auto gran_bits = static_cast<uint8_t>(e[17]);
        uint16_t name_size = load_be16(e + 18);
        uint32_t extra = load_be32(e + 20);
        uint64_t name_at = off + 24 + uint64_t{extra};
        if (name_at + name_size > dir.size())
            return fail(ErrorCode::Corrupt, "'{}': bitmap directory entry {} is invalid", filename_, i);
        Bitmap b;
        b.name = dir.substr(name_at, name_size);
        off = (name_at + name_size + 7) & ~7ULL;
        if (type != kBitmapTypeDirty || gran_bits < 9 || gran_bits > 31)
            return fail(ErrorCode::Corrupt, "'{}': bitmap '{}' has an invalid type or granularity", filename_, b.name);
        b.granularity_bits = gran_bits;
        b.in_use = flags & kBitmapInUse;
        b.auto_enabled = flags & kBitmapAuto;
        if (b.in_use) {
            out.push_back(std::move(b));
            continue;
        }
        const uint64_t bytes = bitmap_bytes(h_.size, gran_bits);
        const uint64_t want_entries = (bytes + cluster_size_ - 1) >> cluster_bits_;
        if (tsize != want_entries || uint64_t{tsize} * 8 > kMaxBitmapTable ||
            (tsize && ((table & (cluster_size_ - 1)) || table + uint64_t{tsize} * 8 > *flen)))
            return fail(ErrorCode::Corrupt, "'{}': bitmap '{}' has an invalid bitmap table", filename_, b.name);
        std::string t(uint64_t{tsize} * 8, '\0');
        if (tsize) VIREO_TRY(file_.read(t.data(), t.size(), table));
        b.bits.assign(bytes, 0);
        for (uint32_t k = 0; k < tsize; ++k) {
            uint64_t te = load_be64(t.data() + std::size_t{8} * k);
            uint64_t at = uint64_t{k} << cluster_bits_;
            uint64_t n = std::min<uint64_t>(cluster_size_, bytes - at);
            uint64_t data = te & kBitmapTableOffsetMask;
            if (te & kBitmapTableReserved)
                return fail(ErrorCode::Corrupt, "'{}': bitmap '{}': invalid bitmap table entry {:#x}", filename_, b.name, te);
            if (!data) {
                if (te & kBitmapAllOnes) std::memset(b.bits.data() + at, 0xff, n);
                continue;
            }
            if ((data & (cluster_size_ - 1)) || data + cluster_size_ > *flen)
                return fail(ErrorCode::Corrupt, "'{}': bitmap '{}': data cluster {:#x} is invalid", filename_, b.name, data);
            VIREO_TRY(file_.read(b.bits.data() + at, n, data));
        }
        // Bits past the end of the image are meaningless: keep them clear.
        uint64_t nbits = (h_.size + (1ULL << gran_bits) - 1) >> gran_bits;
        if (nbits % 8 && !b.bits.empty()) b.bits.back() &= static_cast<uint8_t>((1U << (nbits % 8)) - 1);
        out.push_back(std::move(b));
    }
    return out;
}

// Write one bitmap's data clusters (all-zero ones stay unallocated) and its
// table; return its directory entry, padded to 8 bytes.
Result<std::string> Qcow2Image::write_bitmap(const Bitmap& b) {
    std::vector<char> cluster(cluster_size_);
    const uint64_t tsize = (b.bits.size() + cluster_size_ - 1) >> cluster_bits_;
    std::string table(tsize * 8, '\0');
    for (uint64_t k = 0; k < tsize; ++k) {
        const uint64_t at = k << cluster_bits_;
        const uint64_t n = std::min<uint64_t>(cluster_size_, b.bits.size() - at);
        const auto* src = reinterpret_cast<const char*>(b.bits.data() + at);
        if (std::all_of(src, src + n, [](char c) { return c == 0; })) continue;
        auto host = alloc_clusters(1);
        if (!host) return std::unexpected(host.error());
        std::memcpy(cluster.data(), src, n);
        std::memset(cluster.data() + n, 0, cluster_size_ - n);
        VIREO_TRY(file_.write(cluster.data(), cluster_size_, *host));
        store_be64(table.data() + 8 * k, *host);
    }
    uint64_t table_off = 0;
    if (tsize) {
        const uint64_t clusters = (table.size() + cluster_size_ - 1) >> cluster_bits_;
        auto host = alloc_clusters(clusters);
        if (!host) return std::unexpected(host.error());
        table_off = *host;
        table.resize(clusters << cluster_bits_, '\0');
        VIREO_TRY(file_.write(table.data(), table.size(), table_off));
    }
    std::string e(24, '\0');
    store_be64(e.data(), table_off);
    store_be32(e.data() + 8, static_cast<uint32_t>(tsize));
    store_be32(e.data() + 12, b.auto_enabled ? kBitmapAuto : 0);
    e[16] = static_cast<char>(kBitmapTypeDirty);
    e[17] = static_cast<char>(b.granularity_bits);
    store_be16(e.data() + 18, static_cast<uint16_t>(b.name.size()));
    e += b.name;
    e.resize((e.size() + 7) & ~7ULL, '\0');
    return e;
}

Status Qcow2Image::add_bitmaps(const std::vector<Bitmap>& add) {
    if (add.empty()) return {};
    if (!file_.writable()) return fail(ErrorCode::InvalidArg, "'{}' is opened read-only", filename_);
    if (h_.version < 3) return fail(ErrorCode::Unsupported, "Cannot store dirty bitmaps in qcow2 v2 files");
    if (corrupt_) return fail(ErrorCode::Corrupt, "qcow2 image '{}' is corrupt", filename_);
    if (tracked_) {
        // Being tracked: they join the bitmaps close() stores.
        for (const auto& b : add) {
            for (const auto& t : *tracked_)
                if (t.name == b.name) return fail(ErrorCode::InvalidArg, "Bitmap already exists: {}", b.name);
            if (b.bits.size() != bitmap_bytes(h_.size, b.granularity_bits))
                return fail(ErrorCode::InvalidArg, "bitmap '{}' does not match the image size", b.name);
            tracked_->push_back(b);
        }
        return {};
    }

    // Existing entries stay as they are, byte for byte.
    std::vector<DirEntry> entries;
    const bool had = !bitmaps_ext_.empty() && (h_.autoclear & kAutoclearBitmaps);
    if (had) {
        if (bitmap_dir_size_ > kMaxBitmapDir) return fail(ErrorCode::Corrupt, "'{}': bitmap directory too large", filename_);
        std::string dir(bitmap_dir_size_, '\0');
        VIREO_TRY(file_.read(dir.data(), dir.size(), bitmap_dir_offset_));
        uint64_t off = 0;
        for (uint32_t i = 0; i < nb_bitmaps_; ++i) {
            if (off + 24 > dir.size()) return fail(ErrorCode::Corrupt, "'{}': bitmap directory truncated", filename_);
            uint16_t name_size = load_be16(dir.data() + off + 18);
            uint64_t name_at = off + 24 + uint64_t{load_be32(dir.data() + off + 20)};
            uint64_t end = (name_at + name_size + 7) & ~7ULL;
            if (end > dir.size()) return fail(ErrorCode::Corrupt, "'{}': bitmap directory entry {} is invalid", filename_, i);
            entries.push_back({dir.substr(name_at, name_size), dir.substr(off, end - off)});
            off = end;
        }
    }
    std::set<std::string> names;
    for (const auto& e : entries) names.insert(e.name);
    if (entries.size() + add.size() > kMaxBitmaps) return fail(ErrorCode::InvalidArg, "too many bitmaps (at most {})", kMaxBitmaps);
    for (const auto& b : add) {
        if (b.name.empty() || b.name.size() > kMaxBitmapName)
            return fail(ErrorCode::InvalidArg, "bitmap name '{}' must have 1 to {} bytes", b.name, kMaxBitmapName);
        if (!names.insert(b.name).second) return fail(ErrorCode::InvalidArg, "Bitmap already exists: {}", b.name);
        if (b.granularity_bits < 9 || b.granularity_bits > 31)
            return fail(ErrorCode::InvalidArg, "bitmap '{}': granularity must be 512 B to 2 GiB", b.name);
        if (b.bits.size() != bitmap_bytes(h_.size, b.granularity_bits))
            return fail(ErrorCode::InvalidArg, "bitmap '{}' does not match the image size", b.name);
    }

    // Data clusters (all-zero ones stay unallocated), then each table.
    for (const auto& b : add) {
        auto e = write_bitmap(b);
        if (!e) return std::unexpected(e.error());
        entries.push_back({b.name, std::move(*e)});
    }

    std::string dir;
    for (const auto& e : entries) dir += e.raw;
    if (dir.size() > kMaxBitmapDir) return fail(ErrorCode::InvalidArg, "bitmap directory would exceed {} bytes", kMaxBitmapDir);
    uint64_t dir_clusters = (dir.size() + cluster_size_ - 1) >> cluster_bits_;
    auto dir_off = alloc_clusters(dir_clusters);
    if (!dir_off) return std::unexpected(dir_off.error());
    std::string padded = dir;
    padded.resize(dir_clusters << cluster_bits_, '\0');
    VIREO_TRY(file_.write(padded.data(), padded.size(), *dir_off));

    // Everything the new directory points at is on disk before the header
    // points at it; the old directory is freed only afterwards.
    VIREO_TRY(flush_caches());
    VIREO_TRY(file_.flush());
    const uint64_t old_dir = had ? bitmap_dir_offset_ : 0, old_size = had ? bitmap_dir_size_ : 0;
    std::string ext(24, '\0');
    store_be32(ext.data(), static_cast<uint32_t>(entries.size()));
    store_be64(ext.data() + 8, dir.size());
    store_be64(ext.data() + 16, *dir_off);
    bitmaps_ext_ = ext;
    nb_bitmaps_ = static_cast<uint32_t>(entries.size());
    bitmap_dir_size_ = dir.size();
    bitmap_dir_offset_ = *dir_off;
    h_.autoclear |= kAutoclearBitmaps;
    VIREO_TRY(write_header());
    VIREO_TRY(file_.flush());
    if (old_size) VIREO_TRY(free_clusters(old_dir, (old_size + cluster_size_ - 1) >> cluster_bits_));
    return flush();
}

}  // namespace vireo::storage

namespace vireo::storage {

Result<std::vector<std::pair<uint64_t, uint64_t>>> Qcow2Image::bitmap_entry_clusters(const std::string& entry) {
    // The bitmap table and data clusters one directory entry points at.
    std::vector<std::pair<uint64_t, uint64_t>> out;
    const uint64_t table = load_be64(entry.data()) & kBitmapTableOffsetMask;
    const uint32_t tsize = load_be32(entry.data() + 8);
    if (!table || !tsize) return out;
    if (uint64_t{tsize} * 8 > kMaxBitmapTable) return fail(ErrorCode::Corrupt, "'{}': bitmap table too large", filename_);
    out.emplace_back(table, (uint64_t{tsize} * 8 + cluster_size_ - 1) >> cluster_bits_);
    std::string t(uint64_t{tsize} * 8, '\0');
    VIREO_TRY(file_.read(t.data(), t.size(), table));
    for (uint32_t k = 0; k < tsize; ++k) {
        const uint64_t d = load_be64(t.data() + size_t{8} * k) & kBitmapTableOffsetMask;
        if (d) out.emplace_back(d, 1);
    }
    return out;
}

Status Qcow2Image::store_bitmaps(const std::vector<Bitmap>& all) {
    if (!file_.writable()) return fail(ErrorCode::InvalidArg, "'{}' is opened read-only", filename_);
    if (h_.version < 3 && !all.empty()) return fail(ErrorCode::Unsupported, "Cannot store dirty bitmaps in qcow2 v2 files");
    if (tracked_) {
        // Being tracked: these replace the bitmaps close() stores.
        for (const auto& b : all)
            if (!b.in_use && b.bits.size() != bitmap_bytes(h_.size, b.granularity_bits))
                return fail(ErrorCode::InvalidArg, "bitmap '{}' does not match the image size", b.name);
        tracked_ = all;
        return {};
    }
    // The entries on disk now, by name.
    std::map<std::string, std::string> old;
    std::vector<std::string> old_order;
    const bool had = !bitmaps_ext_.empty() && (h_.autoclear & kAutoclearBitmaps);
    if (had) {
        if (bitmap_dir_size_ > kMaxBitmapDir) return fail(ErrorCode::Corrupt, "'{}': bitmap directory too large", filename_);
        std::string dir(bitmap_dir_size_, '\0');
        VIREO_TRY(file_.read(dir.data(), dir.size(), bitmap_dir_offset_));
        for (uint64_t off = 0; off + 24 <= dir.size();) {
            const uint16_t name_size = load_be16(dir.data() + off + 18);
            const uint64_t name_at = off + 24 + uint64_t{load_be32(dir.data() + off + 20)};
            const uint64_t end = (name_at + name_size + 7) & ~7ULL;
            if (end > dir.size()) return fail(ErrorCode::Corrupt, "'{}': bitmap directory is broken", filename_);
            old[dir.substr(name_at, name_size)] = dir.substr(off, end - off);
            old_order.push_back(dir.substr(name_at, name_size));
            off = end;
        }
    }
    // What goes: the old directory, and the clusters of every entry not
    // kept as it is (in-use bitmaps keep theirs).
    std::vector<std::pair<uint64_t, uint64_t>> to_free;
    if (had) to_free.emplace_back(bitmap_dir_offset_, (bitmap_dir_size_ + cluster_size_ - 1) >> cluster_bits_);
    std::set<std::string> kept;
    for (const auto& b : all)
        if (b.in_use && old.count(b.name)) kept.insert(b.name);
    for (const auto& name : old_order) {
        if (kept.count(name)) continue;
        auto c = bitmap_entry_clusters(old[name]);
        if (!c) return std::unexpected(c.error());
        to_free.insert(to_free.end(), c->begin(), c->end());
    }
    // The new entries, data and tables written first.
    std::string dir;
    for (const auto& b : all) {
        if (kept.count(b.name)) {
            dir += old[b.name];
            continue;
        }
        if (b.in_use) return fail(ErrorCode::InvalidArg, "bitmap '{}' is inconsistent and has no contents to store", b.name);
        if (b.bits.size() != bitmap_bytes(h_.size, b.granularity_bits))
            return fail(ErrorCode::InvalidArg, "bitmap '{}' does not match the image size", b.name);
        auto e = write_bitmap(b);
        if (!e) return std::unexpected(e.error());
        dir += *e;
    }
    if (dir.size() > kMaxBitmapDir) return fail(ErrorCode::InvalidArg, "Not enough space in the bitmap directory");
    if (all.empty()) {
        bitmaps_ext_.clear();
        nb_bitmaps_ = 0;
        bitmap_dir_offset_ = bitmap_dir_size_ = 0;
        h_.autoclear &= ~kAutoclearBitmaps;
    } else {
        const uint64_t dir_clusters = (dir.size() + cluster_size_ - 1) >> cluster_bits_;
        auto dir_off = alloc_clusters(dir_clusters);
        if (!dir_off) return std::unexpected(dir_off.error());
        std::string padded = dir;
        padded.resize(dir_clusters << cluster_bits_, '\0');
        VIREO_TRY(file_.write(padded.data(), padded.size(), *dir_off));
        std::string ext(24, '\0');
        store_be32(ext.data(), static_cast<uint32_t>(all.size()));
        store_be64(ext.data() + 8, dir.size());
        store_be64(ext.data() + 16, *dir_off);
        bitmaps_ext_ = ext;
        nb_bitmaps_ = static_cast<uint32_t>(all.size());
        bitmap_dir_size_ = dir.size();
        bitmap_dir_offset_ = *dir_off;
        h_.autoclear |= kAutoclearBitmaps;
    }
    // Everything new is on disk before the header points at it; what the
    // old header pointed at is freed only afterwards.
    VIREO_TRY(flush_caches());
    VIREO_TRY(file_.flush());
    VIREO_TRY(write_header());
    VIREO_TRY(file_.flush());
    for (auto [off, n] : to_free) VIREO_TRY(free_clusters(off, n));
    return flush();
}

Status Qcow2Image::begin_bitmap_tracking() {
    auto all = read_bitmaps();
    if (!all) return std::unexpected(all.error());
    // Marked in use on disk first: should vireo stop before close(), the
    // bitmaps read as inconsistent, never as stale.
    std::string dir(bitmap_dir_size_, '\0');
    VIREO_TRY(file_.read(dir.data(), dir.size(), bitmap_dir_offset_));
    for (uint64_t off = 0; off + 24 <= dir.size();) {
        const uint32_t flags = load_be32(dir.data() + off + 12);
        if (!(flags & kBitmapInUse)) {
            char f[4];
            store_be32(f, flags | kBitmapInUse);
            VIREO_TRY(file_.write(f, 4, bitmap_dir_offset_ + off + 12));
        }
        const uint16_t name_size = load_be16(dir.data() + off + 18);
        off = (off + 24 + uint64_t{load_be32(dir.data() + off + 20)} + name_size + 7) & ~7ULL;
    }
    VIREO_TRY(file_.flush());
    tracked_ = std::move(*all);
    return {};
}

Status Qcow2Image::track_write(uint64_t off, uint64_t len) {
    if (bitmaps_ext_.empty()) return {};
    if (!(h_.autoclear & kAutoclearBitmaps)) {
        // Left by a program without bitmap support: stale, dropped (their
        // clusters are leaks for check -r, as QEMU leaves them).
        bitmaps_ext_.clear();
        nb_bitmaps_ = 0;
        VIREO_TRY(write_header());
        return file_.flush();
    }
    if (!tracked_) VIREO_TRY(begin_bitmap_tracking());
    if (len == 0) return {};
    for (auto& b : *tracked_) {
        if (b.in_use || !b.auto_enabled) continue;
        const uint64_t first = off >> b.granularity_bits, last = (off + len - 1) >> b.granularity_bits;
        for (uint64_t bit = first; bit <= last && bit / 8 < b.bits.size(); ++bit)
            b.bits[bit / 8] = static_cast<uint8_t>(b.bits[bit / 8] | (1U << (bit % 8)));
    }
    return {};
}

Status Qcow2Image::resize_tracked_bitmaps(uint64_t new_size) {
    if (bitmaps_ext_.empty() || !(h_.autoclear & kAutoclearBitmaps)) return track_write(0, 0);
    if (!tracked_) VIREO_TRY(begin_bitmap_tracking());
    for (const auto& b : *tracked_)
        if (b.in_use)
            return fail(ErrorCode::InvalidState,
                        "Bitmap '{}' is inconsistent and cannot be used\nTry block-dirty-bitmap-remove to delete this bitmap from disk",
                        b.name);
    for (auto& b : *tracked_) {
        b.bits.resize(bitmap_bytes(new_size, b.granularity_bits), 0);
        const uint64_t nbits = (new_size + (1ULL << b.granularity_bits) - 1) >> b.granularity_bits;
        if (nbits % 8 && !b.bits.empty()) b.bits.back() &= static_cast<uint8_t>((1U << (nbits % 8)) - 1);
    }
    return {};
}

Status Qcow2Image::store_tracked_bitmaps() {
    if (!tracked_) return {};
    auto all = std::move(*tracked_);
    tracked_.reset();
    return store_bitmaps(all);
}

}  // namespace vireo::storage
