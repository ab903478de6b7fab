// qcow2 consistency check and repair, with qemu-img's findings and wording:
// every cluster's expected refcount is rebuilt from the metadata and
// compared with the stored refcounts.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "storage/endian.hpp"
#include "storage/qcow2.hpp"

namespace vireo::storage {

using namespace qcow2;

namespace {
// Allocator of the per-cluster count arrays: calloc takes large blocks
// straight from the kernel, already zeroed, and value-initialised elements
// are left as they are, so sizing an array does not write (and fault in)
// all of it up front. Only for arrays sized once, from empty.
template <class T>
struct ZeroedAlloc {
    using value_type = T;
    ZeroedAlloc() = default;
    template <class U>
    explicit ZeroedAlloc(const ZeroedAlloc<U>&) {}
    T* allocate(size_t n) {
        void* p = std::calloc(n, sizeof(T));
        if (!p) throw std::bad_alloc();
        return static_cast<T*>(p);
    }
    void deallocate(T* p, size_t) { std::free(p); }
    template <class U>
    void construct(U* p) noexcept {
        ::new (static_cast<void*>(p)) U;  // default-init: keeps calloc's zero
    }
    template <class U, class... A>
    void construct(U* p, A&&... a) {
        ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
    }
    friend bool operator==(const ZeroedAlloc&, const ZeroedAlloc&) { return true; }
};
using CountArray = std::vector<uint32_t, ZeroedAlloc<uint32_t>>;

// Whether the 64 bytes at p are all zero.
bool all_zero64(const char* p) {
    uint64_t w[8];
    std::memcpy(w, p, sizeof w);
    return (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) == 0;
}
}  // namespace

class Qcow2Checker {
public:
    Qcow2Checker(Qcow2Image& img, RepairMode mode) : q_(img), mode_(mode) {}

    Result<CheckResult> run();

private:
    void inc(uint64_t off, uint64_t len) {
        if (len == 0) return;
        if (off + len > file_len_ && off + len - file_len_ >= q_.cluster_size_) {
            r_.messages.push_back(fmt::format("ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset {:#x} size {:#x}", off, len));
            r_.corruptions++;
            return;
        }
        uint64_t first = off >> q_.cluster_bits_, last = (off + len - 1) >> q_.cluster_bits_;
        if (last >= refs_.size()) {
            // Hostile offsets: do not allocate unbounded memory for them.
            if (last > max_cluster_) {
                r_.corruptions++;
                r_.messages.push_back(fmt::format("ERROR: cluster offset {:#x} is far beyond the end of the image file", off));
                return;
            }
            refs_.resize(last + 1, 0);
        }
        const uint64_t cap = std::min<uint64_t>(q_.refcount_max(), UINT32_MAX);
        for (uint64_t c = first; c <= last; ++c) {
            if (refs_[c] == cap) {
                r_.messages.push_back(fmt::format("ERROR: overflow cluster offset={:#x}", c << q_.cluster_bits_));
                r_.corruptions++;
                continue;
            }
            refs_[c]++;
        }
    }
    // Stored refcount of cluster c: from the table read up front when that
    // worked, else through the image's refcount cache.
    Result<uint64_t> stored(uint64_t c) {
        if (!have_stored_) return q_.get_refcount(c);
        return c < stored_.size() ? uint64_t{stored_[c]} : 0;
    }
    Status load_stored_refcounts();
    bool decode_refblock(const Qcow2Image::CacheEntry& block, uint32_t* out, uint64_t n) const;
    // Read-only checks look at COPIED flags while walking the tables once;
    // repairs need the refcounts fixed first (check_copied, second walk).
    bool copied_inline() const { return !q_.file_.writable() || mode_ == RepairMode::None; }
    void copied_l1(size_t i, uint64_t l1e);
    void copied_l2(uint64_t e);
    Status check_l1(uint64_t l1_off, const std::vector<uint64_t>& l1, bool active);
    // One L2 table, its bytes in `raw` (one cluster).
    Status check_l2(const char* raw, bool active);
    Status check_refblocks();
    // Every reference the metadata makes, counted into refs_ (QEMU's
    // calculate_refcounts).
    Status calculate();
    // Stored refcounts against refs_: mismatches reported, and fixed as
    // `fix` allows; a cluster in use with refcount 0 asks for a rebuild.
    Status compare(RepairMode fix);
    // Write new refcount blocks and table from refs_ (QEMU's
    // rebuild_refcount_structure): where the stored ones cannot be trusted.
    Status rebuild();
    Result<uint64_t> alloc_in_refs(uint64_t count, uint64_t& first_free);
    Result<bool> write_rebuilt_blocks(uint64_t first, uint64_t end, std::vector<uint64_t>& table, uint64_t& first_free);
    Status check_copied();

    Qcow2Image& q_;
    RepairMode mode_;
    CheckResult r_;
    // Flat arrays indexed by cluster, 32 bits per cluster (half the memory
    // to touch of 64-bit counts; no image has 2^32 references to a cluster).
    CountArray refs_;
    uint64_t max_cluster_ = 0;
    uint64_t file_len_ = 0;
    uint64_t next_contiguous_ = 0;
    CountArray stored_;
    bool have_stored_ = false;
    std::vector<char> l2_buf_;
    std::vector<std::string> copied_messages_;
    int copied_errors_ = 0;
    bool rebuild_ = false;
    uint64_t highest_ = 0;  // last cluster in use, found by compare()
};

// Refcounts of one block into out[0..n); false if one exceeds 32 bits.
bool Qcow2Checker::decode_refblock(const Qcow2Image::CacheEntry& block, uint32_t* out, uint64_t n) const {
    const auto* p = reinterpret_cast<const unsigned char*>(block.data.data());
    if (q_.refcount_bits_ == 16) {  // the default width: no per-entry dispatch
        for (uint64_t k = 0; k < n; ++k) out[k] = load_be16(p + 2 * k);
        return true;
    }
    for (uint64_t k = 0; k < n; ++k) {
        uint64_t v = q_.refblock_get(block, k);
        if (v > UINT32_MAX) return false;
        out[k] = static_cast<uint32_t>(v);
    }
    return true;
}

Status Qcow2Checker::load_stored_refcounts() {
    // Only when every refcount block sits where it may: otherwise the
    // per-cluster path reports the broken ones.
    const uint64_t per_block = q_.cluster_size_ * 8 / q_.refcount_bits_;
    for (uint64_t rt : q_.reftable_) {
        uint64_t off = rt & kRefTableOffsetMask;
        if (off && ((off & (q_.cluster_size_ - 1)) || off < q_.cluster_size_ || off + q_.cluster_size_ > file_len_))
            return {};
    }
    uint64_t last = 0;
    for (size_t i = 0; i < q_.reftable_.size(); ++i)
        if (q_.reftable_[i] & kRefTableOffsetMask) last = i + 1;
    if (last * per_block > (max_cluster_ << 2)) return {};
    stored_.resize(last * per_block);  // zero (see ZeroedAlloc)
    Qcow2Image::CacheEntry block;
    block.data.resize(q_.cluster_size_ / 8);
    for (size_t i = 0; i < last; ++i) {
        uint64_t off = q_.reftable_[i] & kRefTableOffsetMask;
        if (!off) continue;
        VIREO_TRY(q_.file_.read(block.data.data(), q_.cluster_size_, off));
        if (!decode_refblock(block, stored_.data() + i * per_block, per_block)) {
            // A refcount that does not fit 32 bits (corrupt): the
            // per-cluster path reports it exactly.
            stored_.clear();
            return {};
        }
    }
    have_stored_ = true;
    return {};
}

void Qcow2Checker::copied_l1(size_t i, uint64_t l1e) {
    uint64_t l2 = l1e & kL1OffsetMask;
    if (!l2 || (l2 & (q_.cluster_size_ - 1)) || l2 < q_.cluster_size_) return;
    auto rc = stored(l2 >> q_.cluster_bits_);
    if (!rc) return;
    if ((*rc == 1) != ((l1e & kOflagCopied) != 0)) {
        copied_messages_.push_back(fmt::format("ERROR OFLAG_COPIED L2 cluster: l1_index={} l1_entry={:x} refcount={}", i, l1e, *rc));
        copied_errors_++;
    }
}

void Qcow2Checker::copied_l2(uint64_t e) {
    uint64_t off = e & kL2OffsetMask;
    if (!off || (off & (q_.cluster_size_ - 1)) || q_.data_file_) return;
    auto drc = stored(off >> q_.cluster_bits_);
    if (!drc) return;
    if ((*drc == 1) != ((e & kOflagCopied) != 0)) {
        copied_messages_.push_back(fmt::format("ERROR OFLAG_COPIED data cluster: l2_entry={:x} refcount={}", e, *drc));
        copied_errors_++;
    }
}

Status Qcow2Checker::check_l2(const char* raw, bool active) {
    const bool copied = active && copied_inline();
    // Contiguity is judged within one table (the first cluster a table maps
    // never counts as fragmented), as qemu-img counts it.
    next_contiguous_ = 0;
    const uint64_t n = q_.l2_entries();
    const uint64_t stride = q_.l2_entry_bytes_;
    for (uint64_t i = 0; i < n; ++i) {
        // Sparse images are mostly unallocated entries: skip runs of them
        // eight at a time (for plain L2 entries, all-zero bytes).
        if (!q_.ext_l2_) {
            while (i + 8 <= n && all_zero64(raw + i * 8)) i += 8;
            if (i >= n) break;
        }
        uint64_t e = load_be64(raw + i * stride);
        uint64_t bm = q_.ext_l2_ ? load_be64(raw + i * stride + 8) : 0;
        if (e & kOflagCompressed) {
            if (q_.data_file_) {
                r_.messages.push_back(fmt::format("ERROR compressed cluster {} with data file, entry={:#x}", i, e));
                r_.corruptions++;
                continue;
            }
            if (q_.ext_l2_ && bm) {
                r_.messages.push_back(fmt::format("ERROR compressed cluster {} with non-zero subcluster allocation bitmap, entry={:#x}", i, e));
                r_.corruptions++;
            }
            if (active) {
                // Compressed clusters count as fragmented by nature (qemu).
                r_.allocated_clusters++;
                r_.compressed_clusters++;
                r_.fragmented_clusters++;
            }
            auto rg = q_.compressed_range(e);
            inc(rg->first, rg->second);
            continue;
        }
        uint64_t off = e & kL2OffsetMask;
        if (!off) continue;
        if (q_.ext_l2_ && ((bm >> 32) & bm)) {
            r_.messages.push_back(fmt::format("ERROR offset={:x}: Allocated cluster has corrupted subcluster allocation bitmap", off));
            r_.corruptions++;
        }
        if (active) {
            r_.allocated_clusters++;
            if (next_contiguous_ && off != next_contiguous_) r_.fragmented_clusters++;
            next_contiguous_ = off + q_.cluster_size_;
        }
        if (off & (q_.cluster_size_ - 1)) {
            r_.messages.push_back(fmt::format("ERROR offset={:x}: Data cluster is not properly aligned; L2 entry corrupted.", off));
            r_.corruptions++;
        }
        if (copied) copied_l2(e);
        if (q_.data_file_) continue;
        inc(off, q_.cluster_size_);
    }
    return {};
}

Status Qcow2Checker::check_l1(uint64_t l1_off, const std::vector<uint64_t>& l1, bool active) {
    inc(l1_off, l1.size() * 8);
    // One read per L2 table: in images written by QEMU the tables lie
    // between data clusters, so larger reads would mostly move data. (A
    // batched io_uring variant measured slower here than plain preads.)
    l2_buf_.resize(q_.cluster_size_);
    for (size_t i = 0; i < l1.size(); ++i) {
        uint64_t l2 = l1[i] & kL1OffsetMask;
        if (!l2) continue;
        if (active && copied_inline()) copied_l1(i, l1[i]);
        inc(l2, q_.cluster_size_);
        if (l2 & (q_.cluster_size_ - 1)) {
            r_.messages.push_back(fmt::format("ERROR l2_offset={:x}: Table is not cluster aligned; L1 entry corrupted", l2));
            r_.corruptions++;
            continue;
        }
        if (l2 + q_.cluster_size_ > file_len_) continue;  // reported by inc()
        VIREO_TRY(q_.file_.read(l2_buf_.data(), q_.cluster_size_, l2));
        VIREO_TRY(check_l2(l2_buf_.data(), active));
    }
    return {};
}

Status Qcow2Checker::check_refblocks() {
    for (size_t i = 0; i < q_.reftable_.size(); ++i) {
        uint64_t off = q_.reftable_[i] & kRefTableOffsetMask;
        if (!off) continue;
        if (off & (q_.cluster_size_ - 1)) {
            r_.messages.push_back(fmt::format("ERROR refcount block {} is not cluster aligned; refcount table entry corrupted", i));
            r_.corruptions++;
            rebuild_ = true;
            continue;
        }
        if (off >= file_len_) {
            r_.messages.push_back(fmt::format("ERROR refcount block {} is outside image", i));
            r_.corruptions++;
            rebuild_ = true;
            continue;
        }
        inc(off, q_.cluster_size_);
        const uint64_t c = off >> q_.cluster_bits_;
        if (c < refs_.size() && refs_[c] != 1) {
            r_.messages.push_back(fmt::format("ERROR refcount block {} refcount={}", i, refs_[c]));
            r_.corruptions++;
            rebuild_ = true;
        }
    }
    return {};
}

Status Qcow2Checker::compare(RepairMode fix) {
    uint64_t highest = 0;
    bool any = false;
    const bool rw = q_.file_.writable();
    // Repairs may allocate refcount blocks: keep them clear of everything
    // the metadata references.
    if (rw && fix != RepairMode::None) q_.repair_cursor_ = std::max<uint64_t>(refs_.size(), (file_len_ + q_.cluster_size_ - 1) >> q_.cluster_bits_);
    uint64_t n = std::max<uint64_t>(refs_.size(), (file_len_ + q_.cluster_size_ - 1) >> q_.cluster_bits_);
    for (uint64_t c = 0; c < n; ++c) {
        auto stored = this->stored(c);
        if (!stored) {
            r_.messages.push_back(fmt::format("Can't get refcount for cluster {}: {}", c, stored.error().message));
            r_.check_errors++;
            continue;
        }
        uint64_t want = c < refs_.size() ? refs_[c] : 0;
        if (*stored > 0 || want > 0) {
            highest = c;
            any = true;
        }
        if (*stored == want) continue;
        int* fixed = nullptr;
        // A cluster in use that the refcounts call free cannot be fixed by
        // a refcount update: the refcount structure is rebuilt instead.
        if (*stored == 0) rebuild_ = true;
        else if (rw && *stored > want && fix != RepairMode::None) fixed = &r_.leaks_fixed;
        else if (rw && *stored < want && fix == RepairMode::All) fixed = &r_.corruptions_fixed;
        r_.messages.push_back(fmt::format("{} cluster {} refcount={} reference={}",
                                          fixed ? "Repairing" : (*stored < want ? "ERROR" : "Leaked"), c, *stored, want));
        if (fixed) {
            auto st = q_.set_refcount(c, want);
            // A cluster freed by the repair is discarded, as QEMU does (its
            // old contents do not linger in the file).
            if (st && want == 0) (void)q_.file_.punch_hole(c << q_.cluster_bits_, q_.cluster_size_);
            if (st) {
                if (c < stored_.size()) stored_[c] = static_cast<uint32_t>(want);
                (*fixed)++;
                continue;
            }
            r_.messages.push_back(fmt::format("ERROR could not fix cluster {}: {}", c, st.error().message));
        }
        if (*stored < want) r_.corruptions++;
        else r_.leaks++;
    }
    if (q_.repair_cursor_) {
        highest = std::max(highest, *q_.repair_cursor_ - 1);
        q_.repair_cursor_.reset();
    }
    highest_ = any ? highest + 1 : 0;
    r_.image_end_offset = highest_ << q_.cluster_bits_;
    return {};
}

Result<uint64_t> Qcow2Checker::alloc_in_refs(uint64_t count, uint64_t& first_free) {
    // The first run of `count` clusters that refs_ says are free, from
    // first_free on; past the end of refs_ when there is none.
    uint64_t c = first_free, run = 0;
    bool first_gap = true;
    for (; c < refs_.size() && run < count; ++c) {
        if (refs_[c] == 0) {
            ++run;
            if (first_gap) {
                first_free = c;
                first_gap = false;
            }
        } else {
            run = 0;
        }
    }
    if (run < count) {
        if (c + count - run > max_cluster_) return fail(ErrorCode::Corrupt, "image too large to rebuild its refcounts");
        refs_.resize(c + count - run, 0);
    }
    c -= run;
    for (uint64_t k = 0; k < count; ++k) refs_[c + k] = 1;
    return c << q_.cluster_bits_;
}

Result<bool> Qcow2Checker::write_rebuilt_blocks(uint64_t first, uint64_t end, std::vector<uint64_t>& table,
                                                uint64_t& first_free) {
    const uint64_t per_block = q_.cluster_size_ * 8 / q_.refcount_bits_;
    const uint64_t per_table_cluster = q_.cluster_size_ / 8;
    bool grown = false;
    Qcow2Image::CacheEntry block;
    for (uint64_t c = first; c < end; ++c) {
        if (c >= refs_.size() || refs_[c] == 0) continue;
        const uint64_t bi = c / per_block, start = bi * per_block;
        uint64_t off = bi < table.size() ? table[bi] : 0;
        if (!off) {
            // Never inside a block already written: its contents would go stale.
            first_free = std::max(first_free, start);
            auto a = alloc_in_refs(1, first_free);
            if (!a) return std::unexpected(a.error());
            off = *a;
            end = std::max(end, (off >> q_.cluster_bits_) + 1);
            if (table.size() <= bi) {
                table.resize((bi + 1 + per_table_cluster - 1) / per_table_cluster * per_table_cluster, 0);
                grown = true;
            }
            table[bi] = off;
        }
        block.data.assign(q_.cluster_size_ / 8, 0);
        for (uint64_t k = 0; k < per_block && start + k < refs_.size(); ++k)
            if (refs_[start + k]) q_.refblock_set(block, k, refs_[start + k]);
        VIREO_TRY(q_.write_refblock(off, block));
        c = start + per_block - 1;
    }
    return grown;
}

Status Qcow2Checker::rebuild() {
    // Stored blocks are not to be trusted, nor written back from the cache.
    q_.rb_cache_.clear();
    std::vector<uint64_t> table;
    uint64_t first_free = 0;
    auto grown = write_rebuilt_blocks(0, refs_.size(), table, first_free);
    if (!grown) return std::unexpected(grown.error());
    // The table goes in free space too; describing it may need more blocks
    // and a larger table, until it stops growing.
    uint64_t table_off = 0, table_clusters = 0;
    do {
        table_clusters = (table.size() * 8 + q_.cluster_size_ - 1) >> q_.cluster_bits_;
        auto a = alloc_in_refs(table_clusters, first_free);
        if (!a) return std::unexpected(a.error());
        table_off = *a;
        const uint64_t tc = table_off >> q_.cluster_bits_;
        grown = write_rebuilt_blocks(tc, tc + table_clusters, table, first_free);
        if (!grown) return std::unexpected(grown.error());
    } while (*grown);
    std::vector<char> raw(table_clusters << q_.cluster_bits_, 0);
    for (size_t i = 0; i < table.size(); ++i) store_be64(raw.data() + 8 * i, table[i]);
    VIREO_TRY(q_.file_.write(raw.data(), raw.size(), table_off));
    VIREO_TRY(q_.file_.flush());
    char hdr[12];
    store_be64(hdr, table_off);
    store_be32(hdr + 8, static_cast<uint32_t>(table_clusters));
    VIREO_TRY(q_.file_.write(hdr, sizeof hdr, 48));
    VIREO_TRY(q_.file_.flush());
    q_.h_.refcount_table_offset = table_off;
    q_.h_.refcount_table_clusters = static_cast<uint32_t>(table_clusters);
    table.resize(table_clusters * q_.cluster_size_ / 8, 0);
    q_.reftable_ = std::move(table);
    q_.free_cluster_hint_ = 0;
    return {};
}

// L2 tables and data clusters with refcount 1 must carry the COPIED flag
// and others must not.
Status Qcow2Checker::check_copied() {
    const bool fix = q_.file_.writable() && mode_ == RepairMode::All;
    const uint64_t stride = q_.l2_entry_bytes_ / 8;
    for (size_t i = 0; i < q_.l1_.size(); ++i) {
        uint64_t l1e = q_.l1_[i];
        uint64_t l2 = l1e & kL1OffsetMask;
        if (!l2 || (l2 & (q_.cluster_size_ - 1))) continue;
        auto rc = q_.get_refcount(l2 >> q_.cluster_bits_);
        if (!rc) continue;
        if ((*rc == 1) != ((l1e & kOflagCopied) != 0)) {
            r_.messages.push_back(fmt::format("{} OFLAG_COPIED L2 cluster: l1_index={} l1_entry={:x} refcount={}",
                                              fix ? "Repairing" : "ERROR", i, l1e, *rc));
            if (fix) {
                q_.l1_[i] = *rc == 1 ? (l1e | kOflagCopied) : (l1e & ~kOflagCopied);
                VIREO_TRY(q_.write_l1_entry(i));
                r_.corruptions_fixed++;
            } else {
                r_.corruptions++;
            }
        }
        if (l2 + q_.cluster_size_ > file_len_) continue;
        auto t = q_.load_l2(l2);
        if (!t) continue;
        for (uint64_t k = 0; k < q_.l2_entries(); ++k) {
            uint64_t e = (*t)->data[k * stride];
            if (e & kOflagCompressed) continue;
            uint64_t off = e & kL2OffsetMask;
            if (!off || (off & (q_.cluster_size_ - 1)) || q_.data_file_) continue;
            auto drc = q_.get_refcount(off >> q_.cluster_bits_);
            if (!drc) continue;
            if ((*drc == 1) != ((e & kOflagCopied) != 0)) {
                r_.messages.push_back(fmt::format("{} OFLAG_COPIED data cluster: l2_entry={:x} refcount={}",
                                                  fix ? "Repairing" : "ERROR", e, *drc));
                if (fix) {
                    auto t2 = q_.load_l2(l2);
                    if (!t2) return std::unexpected(t2.error());
                    (*t2)->data[k * stride] = *drc == 1 ? (e | kOflagCopied) : (e & ~kOflagCopied);
                    (*t2)->dirty = true;
                    r_.corruptions_fixed++;
                    t = t2;
                } else {
                    r_.corruptions++;
                }
            }
        }
    }
    return {};
}

Status Qcow2Checker::calculate() {
    auto len = q_.file_.length();
    if (!len) return std::unexpected(len.error());
    file_len_ = *len;
    CountArray().swap(refs_);  // fresh zeroed memory (see ZeroedAlloc)
    copied_messages_.clear();
    copied_errors_ = 0;
    // References may legitimately point a little past EOF (preallocation),
    // but not absurdly far: cap memory at 16x the file's cluster count.
    max_cluster_ = std::max<uint64_t>(((file_len_ >> q_.cluster_bits_) + 1) * 16, 1 << 20);
    refs_.resize((file_len_ + q_.cluster_size_ - 1) >> q_.cluster_bits_);  // zero (see ZeroedAlloc)
    r_.total_clusters = (q_.h_.size + q_.cluster_size_ - 1) >> q_.cluster_bits_;

    inc(0, q_.cluster_size_);
    VIREO_TRY(q_.flush_caches());
    have_stored_ = false;
    CountArray().swap(stored_);
    VIREO_TRY(load_stored_refcounts());
    VIREO_TRY(check_l1(q_.h_.l1_table_offset, q_.l1_, true));
    for (const auto& s : q_.snapshots_) {
        auto l1 = q_.read_l1(s.l1_table_offset, s.l1_size);
        if (!l1) {
            r_.messages.push_back(fmt::format("ERROR snapshot {} ({}) l1_offset={:#x}: L1 table cannot be read", s.id, s.name, s.l1_table_offset));
            r_.corruptions++;
            continue;
        }
        VIREO_TRY(check_l1(s.l1_table_offset, *l1, false));
    }
    // Snapshot table size: the entries as laid out on disk.
    if (q_.h_.nb_snapshots) {
        uint64_t size = 0;
        for (const auto& s : q_.snapshots_) {
            size += (40 + uint64_t{s.extra_len} + s.id.size() + s.name.size() + 7) & ~7ULL;
        }
        inc(q_.h_.snapshots_offset, size);
    }
    inc(q_.h_.refcount_table_offset, uint64_t{q_.h_.refcount_table_clusters} * q_.cluster_size_);
    if (q_.crypto_hdr_len_) inc(q_.crypto_hdr_off_, q_.crypto_hdr_len_);
    auto bm = q_.bitmap_clusters();
    if (!bm) {
        r_.messages.push_back(fmt::format("ERROR bitmaps: {}", bm.error().message));
        r_.corruptions++;
    } else {
        for (auto [off, l] : *bm) inc(off, l);
    }
    VIREO_TRY(check_refblocks());
    return {};
}

Result<CheckResult> Qcow2Checker::run() {
    VIREO_TRY(calculate());
    // As QEMU: compare without fixing first (what is wrong is reported as
    // found), then rebuild or fix.
    const CheckResult before = r_;
    VIREO_TRY(compare(RepairMode::None));
    const bool rw = q_.file_.writable();
    if (rebuild_ && rw && mode_ == RepairMode::All) {
        const CheckResult old = r_;
        r_.messages.push_back("Rebuilding refcount structure");
        VIREO_TRY(rebuild());
        r_.corruptions = 0;
        r_.leaks = 0;
        rebuild_ = false;
        VIREO_TRY(calculate());
        // The old structures are now leaked: freed here. Leaks that the
        // rebuild itself made and could not fix are still counted.
        CheckResult saved = r_;
        r_ = CheckResult{};
        r_.messages = std::move(saved.messages);
        VIREO_TRY(compare(RepairMode::Leaks));
        if (rebuild_) r_.messages.push_back("ERROR rebuilt refcount structure is still broken");
        const int fresh_leaks = r_.leaks;
        saved.messages = std::move(r_.messages);
        saved.image_end_offset = r_.image_end_offset;
        r_ = std::move(saved);
        if (r_.corruptions < old.corruptions) r_.corruptions_fixed += old.corruptions - r_.corruptions;
        if (r_.leaks < old.leaks) r_.leaks_fixed += old.leaks - r_.leaks;
        r_.leaks += fresh_leaks;
    } else if (rw && mode_ != RepairMode::None) {
        if (rebuild_) {
            r_.messages.push_back("ERROR need to rebuild refcount structures");
            r_.check_errors++;
            r_.fatal = "Input/output error";
            return r_;
        }
        if (r_.leaks || r_.corruptions) {
            auto messages = std::move(r_.messages);
            r_ = before;
            r_.messages = std::move(messages);
            VIREO_TRY(compare(mode_));
        }
    }
    if (copied_inline()) {
        r_.messages.insert(r_.messages.end(), copied_messages_.begin(), copied_messages_.end());
        r_.corruptions += copied_errors_;
    } else {
        VIREO_TRY(check_copied());
    }
    if (q_.file_.writable()) VIREO_TRY(q_.flush());
    // A repair that leaves nothing wrong also marks the image clean and
    // consistent again (dirty and corrupt bits cleared, as QEMU does).
    if (rw && mode_ != RepairMode::None && r_.check_errors == 0 && r_.corruptions == 0) VIREO_TRY(q_.mark_clean());
    return r_;
}

Result<CheckResult> Qcow2Image::check(RepairMode repair) {
    Qcow2Checker c(*this, repair);
    return c.run();
}

}  // namespace vireo::storage
