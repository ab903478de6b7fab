// qcow2: refcounts, cluster allocation, create, resize, header edits.
#include <algorithm>
#include <cstring>
#include <set>

#include "storage/endian.hpp"
#include "storage/qcow2.hpp"

namespace vireo::storage {

using namespace qcow2;

uint64_t Qcow2Image::refcount_max() const {
    return refcount_bits_ == 64 ? UINT64_MAX : (1ULL << refcount_bits_) - 1;
}

uint64_t Qcow2Image::refblock_get(const CacheEntry& b, uint64_t idx) const {
    const auto* p = reinterpret_cast<const unsigned char*>(b.data.data());
    switch (refcount_bits_) {
        case 1: case 2: case 4: {
            uint64_t bit = idx * refcount_bits_;
            return (p[bit / 8] >> (bit % 8)) & ((1U << refcount_bits_) - 1);
        }
        case 8: return p[idx];
        case 16: return load_be16(p + idx * 2);
        case 32: return load_be32(p + idx * 4);
        default: return load_be64(p + idx * 8);
    }
}

void Qcow2Image::refblock_set(CacheEntry& b, uint64_t idx, uint64_t v) const {
    auto* p = reinterpret_cast<unsigned char*>(b.data.data());
    switch (refcount_bits_) {
        case 1: case 2: case 4: {
            uint64_t bit = idx * refcount_bits_;
            unsigned mask = ((1U << refcount_bits_) - 1) << (bit % 8);
            p[bit / 8] = static_cast<unsigned char>((p[bit / 8] & ~mask) | ((v << (bit % 8)) & mask));
            break;
        }
        case 8: p[idx] = static_cast<unsigned char>(v); break;
        case 16: store_be16(p + idx * 2, static_cast<uint16_t>(v)); break;
        case 32: store_be32(p + idx * 4, static_cast<uint32_t>(v)); break;
        default: store_be64(p + idx * 8, v); break;
    }
    b.dirty = true;
}

Result<uint64_t> Qcow2Image::get_refcount(uint64_t cluster) {
    uint64_t per_block = cluster_size_ * 8 / refcount_bits_;
    uint64_t bi = cluster / per_block;
    if (bi >= reftable_.size()) return uint64_t{0};
    uint64_t rb = reftable_[bi] & kRefTableOffsetMask;
    if (rb == 0) return uint64_t{0};
    auto b = load_refblock(rb);
    if (!b) return std::unexpected(b.error());
    return refblock_get(**b, cluster % per_block);
}

Status Qcow2Image::set_refcount(uint64_t cluster, uint64_t value) {
    uint64_t per_block = cluster_size_ * 8 / refcount_bits_;
    uint64_t bi = cluster / per_block;
    VIREO_TRY(ensure_refblock(bi));
    auto b = load_refblock(reftable_[bi] & kRefTableOffsetMask);
    if (!b) return std::unexpected(b.error());
    refblock_set(**b, cluster % per_block, value);
    if (value == 0 && cluster < free_cluster_hint_) free_cluster_hint_ = cluster;
    return {};
}

Status Qcow2Image::update_refcount(uint64_t cluster, int64_t delta) {
    auto cur = get_refcount(cluster);
    if (!cur) return std::unexpected(cur.error());
    if ((delta < 0 && *cur < static_cast<uint64_t>(-delta)) ||
        (delta > 0 && refcount_max() - *cur < static_cast<uint64_t>(delta)))
        return mark_corrupt(fmt::format("refcount of cluster {} would become invalid ({}{:+})", cluster, *cur, delta));
    return set_refcount(cluster, *cur + static_cast<uint64_t>(delta));
}

Status Qcow2Image::ensure_refblock(uint64_t bi) {
    if (bi < reftable_.size() && (reftable_[bi] & kRefTableOffsetMask)) return {};
    if (bi >= reftable_.size()) VIREO_TRY(grow_refcount_table(bi + 1));
    if (reftable_[bi] & kRefTableOffsetMask) return {};
    // A missing block means every cluster it would cover is free, so the
    // block can live in the first cluster of its own range and describe itself.
    uint64_t per_block = cluster_size_ * 8 / refcount_bits_;
    uint64_t host = bi * per_block * cluster_size_;
    if (repair_cursor_) {
        // While repairing, on-disk refcounts cannot be trusted to find free
        // space: put the block past everything in use.
        host = (*repair_cursor_)++ << cluster_bits_;
    }
    VIREO_TRY(overlap_check(host, cluster_size_));
    CacheEntry e;
    e.data.assign(cluster_size_ / 8, 0);
    bool self = (host >> cluster_bits_) / per_block == bi;
    if (self) refblock_set(e, (host >> cluster_bits_) % per_block, 1);
    VIREO_TRY(write_refblock(host, e));
    if (!self) VIREO_TRY(set_refcount(host >> cluster_bits_, 1));
    reftable_[bi] = host;
    char buf[8];
    store_be64(buf, host);
    VIREO_TRY(file_.write(buf, 8, h_.refcount_table_offset + bi * 8));
    while (rb_cache_.size() >= rb_cache_max_) {
        auto victim = rb_cache_.begin();
        for (auto it = rb_cache_.begin(); it != rb_cache_.end(); ++it)
            if (it->second.lru < victim->second.lru) victim = it;
        if (victim == rb_cache_.end()) break;
        if (victim->second.dirty) VIREO_TRY(write_refblock(victim->first, victim->second));
        rb_cache_.erase(victim);
    }
    e.lru = ++lru_clock_;
    rb_cache_[host] = std::move(e);
    return {};
}

Status Qcow2Image::grow_refcount_table(uint64_t min_entries) {
    const uint64_t per_block = cluster_size_ * 8 / refcount_bits_;
    const uint64_t per_cluster = cluster_size_ / 8;
    auto flen = file_.length();
    if (!flen) return std::unexpected(flen.error());
    uint64_t start = (*flen + cluster_size_ - 1) >> cluster_bits_;
    // Past every cluster any block could describe: place table + blocks at
    // the end of the file so they don't collide with anything in use.
    start = std::max<uint64_t>(start, free_cluster_hint_);
    if (repair_cursor_) start = std::max(start, *repair_cursor_);
    uint64_t entries = std::max<uint64_t>({min_entries, reftable_.size() * 3 / 2, per_cluster});
    uint64_t tclusters = 0, nblocks = 0;
    std::vector<uint64_t> new_blocks;
    for (int iter = 0; iter < 64; ++iter) {
        tclusters = (entries + per_cluster - 1) / per_cluster;
        entries = tclusters * per_cluster;
        std::set<uint64_t> need;
        for (uint64_t c = start; c < start + tclusters + nblocks; ++c) {
            uint64_t bi = c / per_block;
            if (bi >= reftable_.size() || !(reftable_[bi] & kRefTableOffsetMask)) need.insert(bi);
        }
        uint64_t max_bi = need.empty() ? 0 : *need.rbegin();
        if (need.size() == nblocks && max_bi < entries) {
            new_blocks.assign(need.begin(), need.end());
            break;
        }
        nblocks = need.size();
        if (max_bi >= entries) entries = max_bi + 1;
    }
    if (uint64_t{tclusters} * cluster_size_ > kMaxRefTableBytes)
        return fail(ErrorCode::Unsupported, "refcount table would exceed {} bytes", kMaxRefTableBytes);
    std::vector<uint64_t> table(entries, 0);
    std::copy(reftable_.begin(), reftable_.end(), table.begin());
    uint64_t end = start + tclusters + new_blocks.size();
    if (repair_cursor_) repair_cursor_ = std::max(*repair_cursor_, end);
    for (size_t k = 0; k < new_blocks.size(); ++k) {
        uint64_t bi = new_blocks[k];
        uint64_t host = (start + tclusters + k) << cluster_bits_;
        CacheEntry e;
        e.data.assign(cluster_size_ / 8, 0);
        for (uint64_t c = start; c < end; ++c)
            if (c / per_block == bi) refblock_set(e, c % per_block, 1);
        VIREO_TRY(write_refblock(host, e));
        table[bi] = host;
    }
    std::vector<char> raw(tclusters * cluster_size_, 0);
    for (uint64_t i = 0; i < entries; ++i) store_be64(raw.data() + 8 * i, table[i]);
    VIREO_TRY(file_.write(raw.data(), raw.size(), start << cluster_bits_));
    VIREO_TRY(flush_caches());
    VIREO_TRY(file_.flush());
    uint64_t old_off = h_.refcount_table_offset;
    uint64_t old_clusters = h_.refcount_table_clusters;
    char hdr[12];
    store_be64(hdr, start << cluster_bits_);
    store_be32(hdr + 8, static_cast<uint32_t>(tclusters));
    VIREO_TRY(file_.write(hdr, 12, 48));
    VIREO_TRY(file_.flush());
    h_.refcount_table_offset = start << cluster_bits_;
    h_.refcount_table_clusters = static_cast<uint32_t>(tclusters);
    reftable_ = std::move(table);
    // Clusters of the new table/blocks covered by blocks that already
    // existed still need their refcount set there.
    std::set<uint64_t> fresh(new_blocks.begin(), new_blocks.end());
    for (uint64_t c = start; c < end; ++c)
        if (!fresh.count(c / per_block)) VIREO_TRY(set_refcount(c, 1));
    for (uint64_t i = 0; i < old_clusters; ++i) VIREO_TRY(update_refcount((old_off >> cluster_bits_) + i, -1));
    return {};
}

Result<uint64_t> Qcow2Image::alloc_clusters(uint64_t n) {
    for (int attempt = 0; attempt < 1000; ++attempt) {
        uint64_t c = free_cluster_hint_;
        uint64_t run = 0, run_start = c;
        std::optional<uint64_t> first_free;  // lowest free cluster seen
        // Find n consecutive clusters with refcount 0.
        while (run < n) {
            auto rc = get_refcount(c);
            if (!rc) return std::unexpected(rc.error());
            if (*rc == 0) {
                if (run == 0) run_start = c;
                if (!first_free) first_free = c;
                ++run;
            } else {
                run = 0;
            }
            ++c;
        }
        // Everything below the first free cluster is in use: later
        // allocations start there instead of rescanning from the old hint.
        if (first_free && *first_free > free_cluster_hint_) free_cluster_hint_ = *first_free;
        // Make sure blocks exist; creating one may take a cluster of our run.
        uint64_t per_block = cluster_size_ * 8 / refcount_bits_;
        for (uint64_t k = 0; k < n; ++k) VIREO_TRY(ensure_refblock((run_start + k) / per_block));
        bool still_free = true;
        for (uint64_t k = 0; k < n && still_free; ++k) {
            auto rc = get_refcount(run_start + k);
            if (!rc) return std::unexpected(rc.error());
            still_free = *rc == 0;
        }
        if (!still_free) continue;
        for (uint64_t k = 0; k < n; ++k) VIREO_TRY(set_refcount(run_start + k, 1));
        if (free_cluster_hint_ == run_start) free_cluster_hint_ = run_start + n;
        return run_start << cluster_bits_;
    }
    return fail(ErrorCode::Internal, "could not allocate {} clusters in '{}'", n, filename_);
}

Result<uint64_t> Qcow2Image::alloc_bytes(uint64_t n) {
    // Pack compressed clusters back to back; data may run into the next
    // host cluster when that one is free (each touched cluster counts one
    // reference per compressed cluster, as the spec's refcounting requires).
    if (free_byte_offset_ && (free_byte_offset_ & (cluster_size_ - 1)) && n <= cluster_size_) {
        uint64_t cur = free_byte_offset_ >> cluster_bits_;
        auto rc = get_refcount(cur);
        if (rc && *rc > 0) {
            uint64_t room = cluster_size_ - (free_byte_offset_ & (cluster_size_ - 1));
            bool fits = n <= room;
            if (!fits) {
                uint64_t per_block = cluster_size_ * 8 / refcount_bits_;
                VIREO_TRY(ensure_refblock((cur + 1) / per_block));
                auto next = get_refcount(cur + 1);
                if (!next) return std::unexpected(next.error());
                if (*next == 0) {
                    VIREO_TRY(set_refcount(cur + 1, 1));
                    if (free_cluster_hint_ == cur + 1) free_cluster_hint_ = cur + 2;
                    fits = true;
                }
            }
            if (fits) {
                uint64_t off = free_byte_offset_;
                VIREO_TRY(update_refcount(cur, 1));
                free_byte_offset_ += n;
                if ((free_byte_offset_ & (cluster_size_ - 1)) == 0) free_byte_offset_ = 0;
                return off;
            }
        }
    }
    uint64_t clusters = (n + cluster_size_ - 1) >> cluster_bits_;
    auto h = alloc_clusters(clusters);
    if (!h) return std::unexpected(h.error());
    free_byte_offset_ = *h + n;
    if ((free_byte_offset_ & (cluster_size_ - 1)) == 0 || clusters > 1) free_byte_offset_ = 0;
    return *h;
}

Status Qcow2Image::free_clusters(uint64_t host_off, uint64_t n) {
    for (uint64_t k = 0; k < n; ++k) VIREO_TRY(update_refcount((host_off >> cluster_bits_) + k, -1));
    return {};
}

Status Qcow2Image::free_compressed(uint64_t e) {
    auto r = compressed_range(e);
    auto [off, len] = *r;
    for (uint64_t c = off >> cluster_bits_; c <= (off + len - 1) >> cluster_bits_; ++c)
        VIREO_TRY(update_refcount(c, -1));
    return {};
}

// ---------------------------------------------------------------- bitmaps

Result<std::vector<std::pair<uint64_t, uint64_t>>> Qcow2Image::bitmap_clusters() {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    if (bitmaps_ext_.empty() || !(h_.autoclear & kAutoclearBitmaps)) return out;
    if (bitmap_dir_size_ > (64ULL << 20)) return fail(ErrorCode::Corrupt, "bitmap directory too large");
    out.emplace_back(bitmap_dir_offset_, bitmap_dir_size_);
    std::string dir(bitmap_dir_size_, '\0');
    VIREO_TRY(file_.read(dir.data(), dir.size(), bitmap_dir_offset_));
    uint64_t off = 0;
    for (uint32_t i = 0; i < nb_bitmaps_; ++i) {
        if (off + 24 > dir.size()) return fail(ErrorCode::Corrupt, "bitmap directory truncated");
        uint64_t table = load_be64(dir.data() + off);
        uint32_t tsize = load_be32(dir.data() + off + 8);
        uint16_t name_size = load_be16(dir.data() + off + 18);
        uint32_t extra = load_be32(dir.data() + off + 20);
        if (uint64_t{tsize} * 8 > (64ULL << 20)) return fail(ErrorCode::Corrupt, "bitmap table too large");
        if (table) {
            out.emplace_back(table, uint64_t{tsize} * 8);
            std::string t(uint64_t{tsize} * 8, '\0');
            VIREO_TRY(file_.read(t.data(), t.size(), table));
            for (uint32_t k = 0; k < tsize; ++k) {
                uint64_t d = load_be64(t.data() + std::size_t{8} * k) & kL2OffsetMask;
                if (d) out.emplace_back(d, cluster_size_);
            }
        }
        off += (24 + uint64_t{extra} + name_size + 7) & ~7ULL;
    }
    return out;
}

Result<std::vector<BitmapInfo>> Qcow2Image::bitmap_list() {
    std::vector<BitmapInfo> out;
    if (bitmaps_ext_.empty() || !(h_.autoclear & kAutoclearBitmaps)) return out;
    if (bitmap_dir_size_ > (64ULL << 20)) return fail(ErrorCode::Corrupt, "bitmap directory too large");
    std::string dir(bitmap_dir_size_, '\0');
    VIREO_TRY(file_.read(dir.data(), dir.size(), bitmap_dir_offset_));
    uint64_t off = 0;
    for (uint32_t i = 0; i < nb_bitmaps_; ++i) {
        if (off + 24 > dir.size()) return fail(ErrorCode::Corrupt, "bitmap directory truncated");
        uint32_t flags = load_be32(dir.data() + off + 12);
        auto gran_bits = static_cast<uint8_t>(dir[off + 17]);
        uint16_t name_size = load_be16(dir.data() + off + 18);
        uint32_t extra = load_be32(dir.data() + off + 20);
        uint64_t name_at = off + 24 + uint64_t{extra};
        if (name_at + name_size > dir.size() || gran_bits > 63)
            return fail(ErrorCode::Corrupt, "bitmap directory entry {} is invalid", i);
        BitmapInfo b;
        b.name = dir.substr(name_at, name_size);
        b.granularity = 1ULL << gran_bits;
        b.in_use = flags & 1;
        b.auto_enabled = flags & 2;
        out.push_back(std::move(b));
        off = (name_at + name_size + 7) & ~7ULL;
    }
    return out;
}

// ---------------------------------------------------------------- create

Status Qcow2Image::create(const std::filesystem::path& path, const CreateOptions& o) {
    if (o.cluster_size < 512 || o.cluster_size > (2U << 20) || (o.cluster_size & (o.cluster_size - 1)))
        return fail(ErrorCode::InvalidArg, "Cluster size must be a power of two between 512 and 2048k");
    if (o.refcount_bits < 1 || o.refcount_bits > 64 || (o.refcount_bits & (o.refcount_bits - 1)))
        return fail(ErrorCode::InvalidArg, "Refcount width must be a power of two and may not exceed 64 bits");
    if (o.version == 2 && o.refcount_bits != 16)
        return fail(ErrorCode::InvalidArg, "Different refcount widths than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)");
    if (o.version == 2 && o.lazy_refcounts)
        return fail(ErrorCode::InvalidArg, "Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)");
    if (o.version == 2 && o.extended_l2)
        return fail(ErrorCode::InvalidArg, "Extended L2 entries are only supported with compatibility level 1.1 and above (use compat=1.1 or greater)");
    if (o.version == 2 && o.compression == CompressionType::Zstd)
        return fail(ErrorCode::InvalidArg, "Compression type can be set only with compatibility level 1.1 and above (use compat=1.1 or greater)");
    if (o.extended_l2 && o.cluster_size < 16384)
        return fail(ErrorCode::InvalidArg, "Extended L2 entries are only supported with cluster sizes of at least 16384 bytes");
    if (!o.backing_format.empty() && !is_qemu_driver_name(o.backing_format))
        return fail(ErrorCode::InvalidArg, "Parameter 'backing-fmt' does not accept value '{}'", o.backing_format);
    if (!o.backing_file.empty() && o.prealloc != Preallocation::Off)
        return fail(ErrorCode::InvalidArg, "Backing file and preallocation can only be used at the same time if extended_l2 is on");
    if (o.encrypt.format == EncryptFormat::Aes)
        return fail(ErrorCode::Unsupported,
                    "AES-CBC encrypted qcow2 images are not created by vireo-img (QEMU no longer runs guests on "
                    "them): use encrypt.format=luks");
    if (o.encrypt.format == EncryptFormat::Luks) {
        auto key = luks::need_key(o.encrypt, "encrypt.");
        if (!key) return std::unexpected(key.error());
    }

    uint64_t size = o.size;
    if (size == 0 && !o.backing_file.empty()) {
        OpenOptions bo;
        if (!o.backing_format.empty()) {
            auto f = parse_driver(o.backing_format);
            if (!f) return std::unexpected(f.error());
            bo.format = *f;
        }
        bo.locking = false;  // only its size is read: qemu-img forces sharing here
        auto b = open_image(resolve_backing_path(path, o.backing_file), bo);
        if (!b) return std::unexpected(b.error().context(fmt::format("Could not open backing file '{}'", o.backing_file)));
        size = (*b)->size();
    }
    size = (size + 511) & ~511ULL;  // qcow2 sizes are whole sectors

    const uint64_t cs = o.cluster_size;
    uint32_t cbits = static_cast<uint32_t>(__builtin_ctz(o.cluster_size));
    uint64_t l2_entry_bytes = o.extended_l2 ? 16 : 8;
    uint64_t l2_cover = cs / l2_entry_bytes * cs;
    uint64_t l1_size = (size + l2_cover - 1) / l2_cover;
    if (l1_size * 8 > kMaxL1Bytes) return fail(ErrorCode::InvalidArg, "Image size is too large for this cluster size");
    uint64_t l1_clusters = (l1_size * 8 + cs - 1) / cs;
    uint64_t per_block = cs * 8 / static_cast<uint64_t>(o.refcount_bits);
    // Fixed point: header + reftable + refblocks + L1 all need refcounts.
    uint64_t rt_clusters = 1, blocks = 1;
    for (int i = 0; i < 32; ++i) {
        uint64_t total = 1 + rt_clusters + blocks + l1_clusters;
        uint64_t nb = (total + per_block - 1) / per_block;
        uint64_t nrt = std::max<uint64_t>(1, (nb * 8 + cs - 1) / cs);
        if (nb == blocks && nrt == rt_clusters) break;
        blocks = nb;
        rt_clusters = nrt;
    }
    uint64_t total = 1 + rt_clusters + blocks + l1_clusters;

    auto f = FileIo::create(path);
    if (!f) return std::unexpected(f.error());
    f->apply_create_hints(o.extent_size_hint, o.nocow.value_or(false), o.warn);
    auto img = std::unique_ptr<Qcow2Image>(new Qcow2Image());
    img->filename_ = path.string();
    img->file_ = std::move(*f);
    Header& h = img->h_;
    h.version = static_cast<uint32_t>(o.version);
    h.cluster_bits = cbits;
    h.size = size;
    h.l1_size = static_cast<uint32_t>(l1_size);
    h.refcount_table_offset = cs;
    h.refcount_table_clusters = static_cast<uint32_t>(rt_clusters);
    h.l1_table_offset = (1 + rt_clusters + blocks) * cs;
    h.refcount_order = static_cast<uint32_t>(__builtin_ctz(static_cast<unsigned>(o.refcount_bits)));
    if (o.version >= 3) {
        if (o.lazy_refcounts) h.compatible |= kCompatLazyRefcounts;
        if (o.extended_l2) h.incompatible |= kIncompatExtL2;
        if (o.compression == CompressionType::Zstd) {
            h.incompatible |= kIncompatCompression;
            h.compression_type = 1;
        }
        if (!o.data_file.empty()) {
            h.incompatible |= kIncompatDataFile;
            if (o.data_file_raw) h.autoclear |= kAutoclearDataFileRaw;
        }
    }
    img->cluster_bits_ = cbits;
    img->cluster_size_ = cs;
    img->backing_file_ = o.backing_file;
    img->backing_format_ = o.backing_format;
    img->data_file_name_ = o.data_file;
    VIREO_TRY(img->write_header());

    // Refcount table and blocks: clusters [0, total) have refcount 1.
    std::vector<char> rt(rt_clusters * cs, 0);
    for (uint64_t b = 0; b < blocks; ++b) store_be64(rt.data() + 8 * b, (1 + rt_clusters + b) * cs);
    VIREO_TRY(img->file_.write(rt.data(), rt.size(), cs));
    img->refcount_bits_ = static_cast<uint32_t>(o.refcount_bits);
    for (uint64_t b = 0; b < blocks; ++b) {
        CacheEntry e;
        e.data.assign(cs / 8, 0);
        for (uint64_t c = b * per_block; c < std::min(total, (b + 1) * per_block); ++c) img->refblock_set(e, c % per_block, 1);
        VIREO_TRY(img->write_refblock((1 + rt_clusters + b) * cs, e));
    }
    // The L1 table (all zero): written up to its real length, as qemu does.
    std::vector<char> l1(std::max<uint64_t>(l1_size * 8, 1), 0);
    VIREO_TRY(img->file_.write(l1.data(), l1_size * 8, h.l1_table_offset));
    if (!o.data_file.empty()) {
        auto df = FileIo::open(o.data_file, true);
        if (!df) {
            auto c = FileIo::create(o.data_file);
            if (!c) return std::unexpected(c.error());
            df = std::move(c);
        }
        if (o.data_file_raw) VIREO_TRY(df->truncate(size));
    }
    VIREO_TRY(img->file_.flush());
    img->file_ = FileIo();

    if (o.encrypt.format == EncryptFormat::Luks) {
        OpenOptions oo;
        oo.format = ImageFormat::Qcow2;
        oo.writable = true;
        auto im = open(path, oo);
        if (!im) return std::unexpected(im.error());
        auto* q = static_cast<Qcow2Image*>(im->get());
        VIREO_TRY(q->setup_luks(o.encrypt));
        VIREO_TRY(q->close());
    }
    if (o.prealloc != Preallocation::Off && size > 0) {
        OpenOptions oo;
        oo.format = ImageFormat::Qcow2;
        oo.writable = true;
        oo.key_secret = o.encrypt.key;
        auto im = open(path, oo);
        if (!im) return std::unexpected(im.error());
        auto* q = static_cast<Qcow2Image*>(im->get());
        VIREO_TRY(q->preallocate(0, size, o.prealloc));
        VIREO_TRY(q->close());
    }
    return {};
}

// encrypt.format=luks on a new image: the LUKS header and key material
// are made in memory, then stored in clusters of their own (zero filled,
// as QEMU does, so unused key slots have known content) that the crypto
// header extension names.
Status Qcow2Image::setup_luks(const EncryptOptions& e) {
    auto key = luks::need_key(e, "encrypt.");
    if (!key) return std::unexpected(key.error());
    std::vector<uint8_t> mem;
    luks::HeaderIo io;
    io.read = [&mem](uint64_t off, void* buf, size_t len) -> Status {
        if (off + len > mem.size()) return fail(ErrorCode::Internal, "LUKS header read past its end");
        std::memcpy(buf, mem.data() + off, len);
        return {};
    };
    io.write = [&mem](uint64_t off, const void* buf, size_t len) -> Status {
        if (off + len > mem.size()) mem.resize(off + len, 0);
        std::memcpy(mem.data() + off, buf, len);
        return {};
    };
    auto v = luks::Volume::create(luks::create_spec(e), *key, io);
    if (!v) return std::unexpected(v.error());
    const uint64_t len = (*v)->payload_offset();
    const uint64_t clusters = (len + cluster_size_ - 1) >> cluster_bits_;
    auto host = alloc_clusters(clusters);
    if (!host) return std::unexpected(host.error());
    mem.resize(clusters << cluster_bits_, 0);
    VIREO_TRY(file_.write(mem.data(), mem.size(), *host));
    crypto_hdr_off_ = *host;
    crypto_hdr_len_ = len;
    h_.crypt_method = kCryptLuks;
    VIREO_TRY(flush_caches());
    VIREO_TRY(write_header());
    luks_ = std::move(*v);
    cipher_ = &luks_->cipher();
    key_ = e.key;
    return file_.flush();
}

// Allocate every cluster of [from, to) (metadata preallocation), then
// fallocate/zero the data area as asked.
Status Qcow2Image::preallocate(uint64_t from, uint64_t to, Preallocation mode) {
    if (mode == Preallocation::Off) return {};
    const uint64_t stride = l2_entry_bytes_ / 8;
    uint64_t first = from >> cluster_bits_, last = (to + cluster_size_ - 1) >> cluster_bits_;
    uint64_t c = first;
    while (c < last) {
        uint64_t n = std::min<uint64_t>(last - c, l2_entries() - c % l2_entries());
        auto t = l2_for_write(c);
        if (!t) return std::unexpected(t.error());
        uint64_t l2_off = l1_[c / l2_entries()] & kL1OffsetMask;
        // Allocate this table's data clusters as one contiguous run.
        uint64_t need = 0;
        for (uint64_t k = 0; k < n; ++k)
            if (!(t->first->data[(t->second + k) * stride] & kL2OffsetMask)) ++need;
        uint64_t host = 0;
        if (need && data_file_) {
            host = c << cluster_bits_;  // identity mapping into the data file
        } else if (need) {
            auto h = alloc_clusters(need);
            if (!h) return std::unexpected(h.error());
            host = *h;
            auto len = file_.length();
            if (!len) return std::unexpected(len.error());
            // Reused clusters inside the file must really read as zero.
            bool reused = host < *len;
            if ((mode == Preallocation::Full || reused) && !data_file_)
                VIREO_TRY(file_.preallocate(host, need * cluster_size_, true));
            else if (mode == Preallocation::Falloc && !data_file_)
                VIREO_TRY(file_.preallocate(host, need * cluster_size_, false));
            else if (!data_file_ && *len < host + need * cluster_size_)
                VIREO_TRY(file_.truncate(host + need * cluster_size_));
        }
        auto t2 = load_l2(l2_off);
        if (!t2) return std::unexpected(t2.error());
        for (uint64_t k = 0; k < n; ++k) {
            uint64_t& e = (*t2)->data[(t->second + k) * stride];
            if (data_file_) host = (c + k) << cluster_bits_;
            if (e & kL2OffsetMask) continue;
            e = host | kOflagCopied;
            if (ext_l2_) (*t2)->data[(t->second + k) * 2 + 1] = 0xffffffffULL << 32;
            host += cluster_size_;
        }
        (*t2)->dirty = true;
        c += n;
    }
    return flush();
}

// ---------------------------------------------------------------- resize

Status Qcow2Image::resize(uint64_t new_size, bool shrink, Preallocation prealloc) {
    if (!file_.writable()) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    if (new_size % 512) return fail(ErrorCode::InvalidArg, "The new size must be a multiple of 512");
    // Snapshots keep their own L1 tables; they only need their disk size
    // recorded (extra data of 16 bytes or more), or it would follow ours.
    for (const auto& sn : snapshots_)
        if (sn.extra_len < 16) return fail(ErrorCode::Unsupported, "Can't resize an image which has snapshots");
    if (new_size < h_.size && !shrink)
        return fail(ErrorCode::InvalidArg, "Use the --shrink option to perform a shrink operation.");
    uint64_t old_size = h_.size;
    // Growing an image whose backing file is longer than it was: the new
    // area must read as zero, not as the backing file's old bytes (QEMU
    // zeroes it). Without zero clusters (version 2) that cannot be done.
    const uint64_t zero_start = std::min(new_size, (old_size + subcluster_size() - 1) / subcluster_size() * subcluster_size());
    const bool zero_tail = new_size > old_size && backing_ && backing_->size() > old_size;
    if (zero_tail && h_.version < 3 && new_size > zero_start)
        return fail(ErrorCode::Unsupported, "Failed to zero out new clusters: Operation not supported");
    VIREO_TRY(resize_tracked_bitmaps(new_size));
    if (new_size < old_size) {
        // Free clusters past the new end (whole clusters only).
        uint64_t start = (new_size + cluster_size_ - 1) & ~(cluster_size_ - 1);
        for (uint64_t p = start; p < old_size; p += cluster_size_) {
            uint64_t l1i = (p >> cluster_bits_) / l2_entries();
            if (l1i >= l1_.size() || !(l1_[l1i] & kL1OffsetMask)) continue;
            VIREO_TRY(zero_cluster(p >> cluster_bits_, true, true));
            auto t = l2_for_write(p >> cluster_bits_);
            if (!t) return std::unexpected(t.error());
            t->first->data[t->second * (l2_entry_bytes_ / 8)] = 0;
            if (ext_l2_) t->first->data[t->second * 2 + 1] = 0;
            t->first->dirty = true;
        }
    }
    uint64_t l2_cover = l2_entries() * cluster_size_;
    uint64_t need_l1 = (new_size + l2_cover - 1) / l2_cover;
    if (need_l1 > l1_.size()) {
        if (need_l1 * 8 > kMaxL1Bytes) return fail(ErrorCode::InvalidArg, "File too large");
        uint64_t clusters = (need_l1 * 8 + cluster_size_ - 1) >> cluster_bits_;
        auto nl = alloc_clusters(clusters);
        if (!nl) return std::unexpected(nl.error());
        std::vector<uint64_t> l1 = l1_;
        l1.resize(need_l1, 0);
        std::vector<char> raw(clusters * cluster_size_, 0);
        for (size_t i = 0; i < l1.size(); ++i) store_be64(raw.data() + 8 * i, l1[i]);
        VIREO_TRY(file_.write(raw.data(), raw.size(), *nl));
        VIREO_TRY(flush_caches());
        VIREO_TRY(file_.flush());
        uint64_t old_off = h_.l1_table_offset, old_clusters = (uint64_t{h_.l1_size} * 8 + cluster_size_ - 1) >> cluster_bits_;
        h_.l1_table_offset = *nl;
        h_.l1_size = static_cast<uint32_t>(need_l1);
        l1_ = std::move(l1);
        h_.size = new_size;
        VIREO_TRY(write_header());
        VIREO_TRY(file_.flush());
        if (old_off) VIREO_TRY(free_clusters(old_off, old_clusters));
    } else {
        h_.size = new_size;
        VIREO_TRY(write_header());
    }
    if (new_size > old_size && prealloc != Preallocation::Off) VIREO_TRY(preallocate(old_size, new_size, prealloc));
    if (zero_tail) {
        auto st = write_zeroes(old_size, new_size - old_size, false);
        if (!st) return fail(st.error().code, "Failed to zero out new clusters: {}", st.error().message);
    }
    return flush();
}

// ---------------------------------------------------------------- header edits

Status Qcow2Image::set_backing(const std::string& backing_file, const std::string& backing_format) {
    if (!file_.writable()) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    backing_file_ = backing_file;
    backing_format_ = backing_file.empty() ? "" : backing_format;
    VIREO_TRY(flush_caches());
    VIREO_TRY(write_header());
    return file_.flush();
}

Status Qcow2Image::amend(std::optional<int> version, std::optional<bool> lazy) {
    if (!file_.writable()) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    if (version && *version != static_cast<int>(h_.version)) {
        if (*version == 2) {
            if (h_.incompatible & ~kIncompatDirty)
                return fail(ErrorCode::Unsupported, "Cannot downgrade an image with incompatible features {:#x} set",
                            h_.incompatible & ~kIncompatDirty);
            if (refcount_bits_ != 16)
                return fail(ErrorCode::Unsupported, "compat=0.10 requires refcount_bits=16");
            // v2 has no zero flag: turn zero clusters into real zeroes.
            std::vector<char> z(cluster_size_, 0);
            for (uint64_t p = 0; p < h_.size; p += cluster_size_) {
                auto m = lookup(p, cluster_size_);
                if (!m) return std::unexpected(m.error());
                if (m->kind != ExtentKind::Zero) continue;
                uint64_t cl = p >> cluster_bits_;
                auto t = l2_for_write(cl);
                if (!t) return std::unexpected(t.error());
                uint64_t e = t->first->data[t->second];
                if (!backing_ && !(e & kL2OffsetMask)) {
                    t->first->data[t->second] = 0;
                    t->first->dirty = true;
                    continue;
                }
                VIREO_TRY(write_cluster(cl, 0, z.data(), z.size()));
            }
            bitmaps_ext_.clear();
            h_.compatible = 0;
            h_.autoclear = 0;
            h_.incompatible = 0;
        }
        h_.version = static_cast<uint32_t>(*version);
    }
    if (lazy) {
        if (*lazy && h_.version < 3)
            return fail(ErrorCode::InvalidArg, "Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)");
        if (*lazy) h_.compatible |= kCompatLazyRefcounts;
        else h_.compatible &= ~kCompatLazyRefcounts;
    }
    VIREO_TRY(flush_caches());
    VIREO_TRY(write_header());
    return file_.flush();
}

}  // namespace vireo::storage

namespace vireo::storage {

Status Qcow2Image::change_refcount_bits(int bits) {
    if (!file_.writable()) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    if (bits < 1 || bits > 64 || (bits & (bits - 1)))
        return fail(ErrorCode::InvalidArg, "Refcount width must be a power of two and may not exceed 64 bits");
    if (h_.version < 3 && bits != 16)
        return fail(ErrorCode::InvalidArg, "Different refcount widths than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)");
    if (static_cast<uint32_t>(bits) == refcount_bits_) return {};
    VIREO_TRY(flush_caches());
    auto flen = file_.length();
    if (!flen) return std::unexpected(flen.error());
    // Every cluster's current refcount; the old table and blocks go away.
    const uint64_t old_per_block = cluster_size_ * 8 / refcount_bits_;
    uint64_t n = (*flen + cluster_size_ - 1) >> cluster_bits_;
    for (size_t i = 0; i < reftable_.size(); ++i)
        if (reftable_[i] & kRefTableOffsetMask) n = std::max(n, (i + 1) * old_per_block);
    std::vector<uint64_t> refs(n, 0);
    for (uint64_t c = 0; c < n; ++c) {
        auto rc = get_refcount(c);
        if (!rc) return std::unexpected(rc.error());
        refs[c] = *rc;
    }
    auto drop = [&](uint64_t off, uint64_t clusters) {
        for (uint64_t k = 0; k < clusters; ++k)
            if ((off >> cluster_bits_) + k < refs.size()) refs[(off >> cluster_bits_) + k] = 0;
    };
    drop(h_.refcount_table_offset, h_.refcount_table_clusters);
    for (uint64_t e : reftable_)
        if (e & kRefTableOffsetMask) drop(e & kRefTableOffsetMask, 1);
    // Place the new table and blocks past everything: they describe all
    // clusters including themselves.
    uint64_t used = n;
    while (used > 0 && refs[used - 1] == 0) --used;
    const uint64_t start = (*flen + cluster_size_ - 1) >> cluster_bits_;
    const uint64_t per_block = cluster_size_ * 8 / static_cast<uint64_t>(bits);
    uint64_t nblocks = 0, tclusters = 0;
    for (;;) {
        uint64_t total = std::max(used, start + tclusters + nblocks);
        uint64_t b = (total + per_block - 1) / per_block;
        uint64_t t = (b * 8 + cluster_size_ - 1) >> cluster_bits_;
        if (b == nblocks && t == tclusters) break;
        nblocks = b;
        tclusters = t;
    }
    if (tclusters * cluster_size_ > kMaxRefTableBytes)
        return fail(ErrorCode::Unsupported, "refcount table would exceed {} bytes", kMaxRefTableBytes);
    refs.resize(std::max<uint64_t>(refs.size(), start + tclusters + nblocks), 0);
    for (uint64_t c = start; c < start + tclusters + nblocks; ++c) refs[c] = 1;
    const uint64_t max = bits == 64 ? UINT64_MAX : (1ULL << bits) - 1;
    for (uint64_t c = 0; c < refs.size(); ++c)
        if (refs[c] > max)
            return fail(ErrorCode::InvalidArg, "Cannot decrease refcount entry width to {} bits: Cluster at offset {:#x} has a refcount of {}",
                        bits, c << cluster_bits_, refs[c]);
    // Write the blocks and the table, then switch the header over.
    const uint32_t old_bits = refcount_bits_;
    refcount_bits_ = static_cast<uint32_t>(bits);
    std::vector<uint64_t> table(tclusters * cluster_size_ / 8, 0);
    CacheEntry block;
    for (uint64_t b = 0; b < nblocks; ++b) {
        block.data.assign(cluster_size_ / 8, 0);
        for (uint64_t k = 0; k < per_block && b * per_block + k < refs.size(); ++k)
            if (refs[b * per_block + k]) refblock_set(block, k, refs[b * per_block + k]);
        uint64_t host = (start + tclusters + b) << cluster_bits_;
        auto w = write_refblock(host, block);
        if (!w) { refcount_bits_ = old_bits; return w; }
        table[b] = host;
    }
    std::vector<char> raw(tclusters * cluster_size_, 0);
    for (size_t i = 0; i < table.size(); ++i) store_be64(raw.data() + 8 * i, table[i]);
    auto w = file_.write(raw.data(), raw.size(), start << cluster_bits_);
    if (w) w = file_.flush();
    if (!w) { refcount_bits_ = old_bits; return w; }
    rb_cache_.clear();
    reftable_ = std::move(table);
    h_.refcount_table_offset = start << cluster_bits_;
    h_.refcount_table_clusters = static_cast<uint32_t>(tclusters);
    uint32_t order = 0;
    while ((1U << order) < static_cast<uint32_t>(bits)) ++order;
    h_.refcount_order = order;
    free_cluster_hint_ = 0;
    VIREO_TRY(write_header());
    return file_.flush();
}

Status Qcow2Image::set_data_file_name(const std::string& name) {
    if (data_file_name_.empty())
        return fail(ErrorCode::InvalidArg, "data-file can only be set for images that use an external data file");
    data_file_name_ = name;
    VIREO_TRY(flush_caches());
    VIREO_TRY(write_header());
    return file_.flush();
}

Status Qcow2Image::clear_data_file_raw() {
    h_.autoclear &= ~kAutoclearDataFileRaw;
    VIREO_TRY(flush_caches());
    VIREO_TRY(write_header());
    return file_.flush();
}

}  // namespace vireo::storage
