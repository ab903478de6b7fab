// qcow2 internal snapshots: create, apply, delete, read-only views.
#include <algorithm>
#include <chrono>
#include <cstring>

#include "storage/endian.hpp"
#include "storage/qcow2.hpp"

namespace vireo::storage {

using namespace qcow2;

Status Qcow2Image::update_l1_refcounts(const std::vector<uint64_t>& l1, int64_t delta) {
    const uint64_t stride = l2_entry_bytes_ / 8;
    for (uint64_t l1e : l1) {
        uint64_t l2 = l1e & kL1OffsetMask;
        if (!l2) continue;
        auto t = load_l2(l2);
        if (!t) return std::unexpected(t.error());
        std::vector<uint64_t> entries = (*t)->data;  // copy: refcount updates may evict
        for (uint64_t k = 0; k < l2_entries(); ++k) {
            uint64_t e = entries[k * stride];
            if (e & kOflagCompressed) {
                auto r = compressed_range(e);
                for (uint64_t c = r->first >> cluster_bits_; c <= (r->first + r->second - 1) >> cluster_bits_; ++c)
                    VIREO_TRY(update_refcount(c, delta));
            } else if ((e & kL2OffsetMask) && !data_file_) {
                VIREO_TRY(update_refcount((e & kL2OffsetMask) >> cluster_bits_, delta));
            }
        }
        VIREO_TRY(update_refcount(l2 >> cluster_bits_, delta));
    }
    return {};
}

Status Qcow2Image::fix_copied_flags() {
    const uint64_t stride = l2_entry_bytes_ / 8;
    for (size_t i = 0; i < l1_.size(); ++i) {
        uint64_t l2 = l1_[i] & kL1OffsetMask;
        if (!l2) continue;
        auto rc = get_refcount(l2 >> cluster_bits_);
        if (!rc) return std::unexpected(rc.error());
        uint64_t ne = *rc == 1 ? (l2 | kOflagCopied) : l2;
        if (ne != l1_[i]) {
            l1_[i] = ne;
            VIREO_TRY(write_l1_entry(i));
        }
        auto t = load_l2(l2);
        if (!t) return std::unexpected(t.error());
        std::vector<uint64_t> entries = (*t)->data;
        bool changed = false;
        for (uint64_t k = 0; k < l2_entries(); ++k) {
            uint64_t& e = entries[k * stride];
            if ((e & kOflagCompressed) || !(e & kL2OffsetMask)) continue;
            auto drc = data_file_ ? Result<uint64_t>(1) : get_refcount((e & kL2OffsetMask) >> cluster_bits_);
            if (!drc) return std::unexpected(drc.error());
            uint64_t want = *drc == 1 ? (e | kOflagCopied) : (e & ~kOflagCopied);
            if (want != e) {
                e = want;
                changed = true;
            }
        }
        if (changed) {
            auto t2 = load_l2(l2);
            if (!t2) return std::unexpected(t2.error());
            (*t2)->data = std::move(entries);
            (*t2)->dirty = true;
        }
    }
    return {};
}

Status Qcow2Image::write_snapshot_table(const std::vector<Snapshot>& snaps) {
    std::string table;
    for (const auto& s : snaps) {
        std::string e(40, '\0');
        store_be64(e.data(), s.l1_table_offset);
        store_be32(e.data() + 8, s.l1_size);
        store_be16(e.data() + 12, static_cast<uint16_t>(s.id.size()));
        store_be16(e.data() + 14, static_cast<uint16_t>(s.name.size()));
        store_be32(e.data() + 16, s.date_sec);
        store_be32(e.data() + 20, s.date_nsec);
        store_be64(e.data() + 24, s.vm_clock_nsec);
        store_be32(e.data() + 32, static_cast<uint32_t>(std::min<uint64_t>(s.vm_state_size, UINT32_MAX)));
        std::string extra(24, '\0');
        store_be64(extra.data(), s.vm_state_size);
        store_be64(extra.data() + 8, s.disk_size);
        store_be64(extra.data() + 16, s.icount.value_or(UINT64_MAX));
        extra += s.extra_unknown;
        store_be32(e.data() + 36, static_cast<uint32_t>(extra.size()));
        e += extra + s.id + s.name;
        e.resize((e.size() + 7) & ~7ULL, '\0');
        table += e;
    }
    uint64_t new_off = 0;
    if (!table.empty()) {
        uint64_t clusters = (table.size() + cluster_size_ - 1) >> cluster_bits_;
        auto off = alloc_clusters(clusters);
        if (!off) return std::unexpected(off.error());
        new_off = *off;
        table.resize(clusters * cluster_size_, '\0');
        VIREO_TRY(file_.write(table.data(), table.size(), new_off));
    }
    VIREO_TRY(flush_caches());
    VIREO_TRY(file_.flush());
    uint64_t old_off = h_.snapshots_offset;
    uint64_t old_size = 0;
    for (const auto& s : snapshots_) old_size += (40 + uint64_t{s.extra_len} + s.id.size() + s.name.size() + 7) & ~7ULL;
    char hdr[12];
    store_be32(hdr, static_cast<uint32_t>(snaps.size()));
    store_be64(hdr + 4, new_off);
    VIREO_TRY(file_.write(hdr, 12, 60));
    VIREO_TRY(file_.flush());
    h_.nb_snapshots = static_cast<uint32_t>(snaps.size());
    h_.snapshots_offset = new_off;
    if (old_off && old_size)
        VIREO_TRY(free_clusters(old_off, (old_size + cluster_size_ - 1) >> cluster_bits_));
    snapshots_ = snaps;
    for (auto& s : snapshots_) s.extra_len = static_cast<uint32_t>(24 + s.extra_unknown.size());
    return {};
}

namespace {
const Snapshot* find_snapshot(const std::vector<Snapshot>& snaps, const std::string& key) {
    for (const auto& s : snaps)
        if (s.id == key) return &s;
    for (const auto& s : snaps)
        if (s.name == key) return &s;
    return nullptr;
}
}  // namespace

Status Qcow2Image::snapshot_create(const std::string& name) {
    if (!file_.writable()) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    if (corrupt_) return fail(ErrorCode::Corrupt, "qcow2 image '{}' is marked corrupt", filename_);
    for (const auto& s : snapshots_)
        if (s.name == name) return fail(ErrorCode::Exists, "Snapshot with name '{}' already exists", name);
    VIREO_TRY(flush_caches());
    Snapshot s;
    uint64_t max_id = 0;
    for (const auto& x : snapshots_) max_id = std::max<uint64_t>(max_id, std::strtoull(x.id.c_str(), nullptr, 10));
    s.id = std::to_string(max_id + 1);
    s.name = name;
    auto now = std::chrono::system_clock::now().time_since_epoch();
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
    s.date_sec = static_cast<uint32_t>(ns / 1000000000);
    // Microsecond resolution and icount 0, as qemu-img records them.
    s.date_nsec = static_cast<uint32_t>(ns % 1000000000 / 1000 * 1000);
    s.icount = 0;
    s.disk_size = h_.size;
    s.l1_size = static_cast<uint32_t>(l1_.size());
    if (!l1_.empty()) {
        uint64_t clusters = (l1_.size() * 8 + cluster_size_ - 1) >> cluster_bits_;
        auto off = alloc_clusters(clusters);
        if (!off) return std::unexpected(off.error());
        s.l1_table_offset = *off;
        std::vector<char> raw(clusters * cluster_size_, 0);
        for (size_t i = 0; i < l1_.size(); ++i) store_be64(raw.data() + 8 * i, l1_[i] & ~kOflagCopied);
        VIREO_TRY(file_.write(raw.data(), raw.size(), *off));
    }
    VIREO_TRY(update_l1_refcounts(l1_, +1));
    VIREO_TRY(fix_copied_flags());
    std::vector<Snapshot> snaps = snapshots_;
    snaps.push_back(s);
    VIREO_TRY(write_snapshot_table(snaps));
    return flush();
}

Status Qcow2Image::snapshot_delete(const std::string& key) {
    if (!file_.writable()) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    const Snapshot* s = find_snapshot(snapshots_, key);
    if (!s) return fail(ErrorCode::NotFound, "Can't find the snapshot");
    Snapshot victim = *s;
    std::vector<Snapshot> snaps;
    for (const auto& x : snapshots_)
        if (x.id != victim.id) snaps.push_back(x);
    VIREO_TRY(write_snapshot_table(snaps));
    auto l1 = read_l1(victim.l1_table_offset, victim.l1_size);
    if (!l1) return std::unexpected(l1.error());
    VIREO_TRY(update_l1_refcounts(*l1, -1));
    if (victim.l1_size)
        VIREO_TRY(free_clusters(victim.l1_table_offset, (uint64_t{victim.l1_size} * 8 + cluster_size_ - 1) >> cluster_bits_));
    VIREO_TRY(fix_copied_flags());
    return flush();
}

Status Qcow2Image::snapshot_apply(const std::string& key) {
    if (!file_.writable()) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    // Bitmaps cannot follow a jump to a snapshot: QEMU refuses it.
    if (!bitmaps_ext_.empty() && (h_.autoclear & kAutoclearBitmaps))
        return fail(ErrorCode::Busy, "Device has active dirty bitmaps");
    const Snapshot* s = find_snapshot(snapshots_, key);
    if (!s) return fail(ErrorCode::NotFound, "Can't find the snapshot");
    auto sl1 = read_l1(s->l1_table_offset, s->l1_size);
    if (!sl1) return std::unexpected(sl1.error());
    VIREO_TRY(update_l1_refcounts(*sl1, +1));
    VIREO_TRY(update_l1_refcounts(l1_, -1));
    std::vector<uint64_t> nl1 = *sl1;
    if (nl1.size() < l1_.size()) nl1.resize(l1_.size(), 0);
    if (nl1.size() > l1_.size()) {
        uint64_t clusters = (nl1.size() * 8 + cluster_size_ - 1) >> cluster_bits_;
        auto off = alloc_clusters(clusters);
        if (!off) return std::unexpected(off.error());
        uint64_t old_off = h_.l1_table_offset, old_clusters = (l1_.size() * 8 + cluster_size_ - 1) >> cluster_bits_;
        h_.l1_table_offset = *off;
        h_.l1_size = static_cast<uint32_t>(nl1.size());
        if (old_off && !l1_.empty()) VIREO_TRY(free_clusters(old_off, old_clusters));
    }
    l1_ = nl1;
    std::vector<char> raw(l1_.size() * 8);
    for (size_t i = 0; i < l1_.size(); ++i) store_be64(raw.data() + 8 * i, l1_[i]);
    VIREO_TRY(file_.write(raw.data(), raw.size(), h_.l1_table_offset));
    h_.size = s->disk_size;
    VIREO_TRY(fix_copied_flags());
    VIREO_TRY(flush_caches());
    VIREO_TRY(write_header());
    zcache_entry_ = 0;
    return flush();
}

Status Qcow2Image::make_empty() {
    if (!file_.writable()) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    const uint64_t stride = l2_entry_bytes_ / 8;
    for (size_t i = 0; i < l1_.size(); ++i) {
        uint64_t l2 = l1_[i] & kL1OffsetMask;
        if (!l2) continue;
        auto t = l2_for_write(i * l2_entries());
        if (!t) return std::unexpected(t.error());
        uint64_t l2_off = l1_[i] & kL1OffsetMask;
        std::vector<uint64_t> entries = t->first->data;
        for (uint64_t k = 0; k < l2_entries(); ++k) {
            uint64_t e = entries[k * stride];
            if (e & kOflagCompressed) VIREO_TRY(free_compressed(e));
            else if ((e & kL2OffsetMask) && !data_file_) VIREO_TRY(update_refcount((e & kL2OffsetMask) >> cluster_bits_, -1));
        }
        auto t2 = load_l2(l2_off);
        if (!t2) return std::unexpected(t2.error());
        std::fill((*t2)->data.begin(), (*t2)->data.end(), 0);
        (*t2)->dirty = true;
    }
    return flush();
}

Result<ImagePtr> Qcow2Image::open_snapshot(const std::string& key) {
    const Snapshot* s = find_snapshot(snapshots_, key);
    if (!s) return fail(ErrorCode::NotFound, "Can't find the snapshot '{}'", key);
    OpenOptions o;
    o.format = ImageFormat::Qcow2;
    o.key_secret = key_;
    auto img = open(filename_, o);
    if (!img) return std::unexpected(img.error());
    auto* q = static_cast<Qcow2Image*>(img->get());
    auto l1 = q->read_l1(s->l1_table_offset, s->l1_size);
    if (!l1) return std::unexpected(l1.error());
    q->l1_ = std::move(*l1);
    q->h_.size = std::min<uint64_t>(s->disk_size, q->l1_.size() * q->l2_entries() * q->cluster_size_);
    return img;
}

}  // namespace vireo::storage
