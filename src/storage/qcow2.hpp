// qcow2 driver (versions 2 and 3), following the public qcow2 specification
// (docs/interop/qcow2.txt in QEMU). Internal to src/storage: callers use
// image.hpp; vireo-img's check/snapshot/amend reach the extra entry points
// below through qcow2_cast().
#pragma once

#include <array>
#include <list>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "storage/image.hpp"
#include "storage/luks.hpp"

namespace vireo::storage {

namespace qcow2 {

constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"
constexpr uint64_t kOflagCopied = 1ULL << 63;
constexpr uint64_t kOflagCompressed = 1ULL << 62;
constexpr uint64_t kOflagZero = 1ULL;
constexpr uint64_t kL1OffsetMask = 0x00fffffffffffe00ULL;
constexpr uint64_t kL2OffsetMask = 0x00fffffffffffe00ULL;
constexpr uint64_t kRefTableOffsetMask = 0xfffffffffffffe00ULL;

constexpr uint64_t kIncompatDirty = 1;
constexpr uint64_t kIncompatCorrupt = 2;
constexpr uint64_t kIncompatDataFile = 4;
constexpr uint64_t kIncompatCompression = 8;
constexpr uint64_t kIncompatExtL2 = 16;
constexpr uint64_t kIncompatKnown = 31;
constexpr uint64_t kCompatLazyRefcounts = 1;
constexpr uint64_t kAutoclearBitmaps = 1;
constexpr uint64_t kAutoclearDataFileRaw = 2;

constexpr uint32_t kCryptNone = 0;
constexpr uint32_t kCryptAes = 1;   // legacy AES-128-CBC, key = passphrase (read only)
constexpr uint32_t kCryptLuks = 2;  // LUKS header in clusters named by kExtCrypto

constexpr uint32_t kExtEnd = 0;
constexpr uint32_t kExtBackingFormat = 0xe2792aca;
constexpr uint32_t kExtFeatureTable = 0x6803f857;
constexpr uint32_t kExtBitmaps = 0x23852875;
constexpr uint32_t kExtCrypto = 0x0537be77;
constexpr uint32_t kExtDataFile = 0x44415441;

// Upper bounds that keep a hostile header from making us allocate or loop
// without end (same order of magnitude as QEMU's own limits).
constexpr uint64_t kMaxL1Bytes = 32ULL << 20;
constexpr uint64_t kMaxRefTableBytes = 8ULL << 20;
constexpr uint32_t kMaxSnapshots = 65536;
constexpr uint64_t kMaxBitmapDirectory = 1024ULL * 65535;  // QEMU's QCOW2_MAX_BITMAP_DIRECTORY_SIZE

struct Header {
    uint32_t version = 3;
    uint64_t backing_file_offset = 0;
    uint32_t backing_file_size = 0;
    uint32_t cluster_bits = 16;
    uint64_t size = 0;
    uint32_t crypt_method = 0;
    uint32_t l1_size = 0;
    uint64_t l1_table_offset = 0;
    uint64_t refcount_table_offset = 0;
    uint32_t refcount_table_clusters = 0;
    uint32_t nb_snapshots = 0;
    uint64_t snapshots_offset = 0;
    uint64_t incompatible = 0;
    uint64_t compatible = 0;
    uint64_t autoclear = 0;
    uint32_t refcount_order = 4;
    uint32_t header_length = 104;
    uint8_t compression_type = 0;
};

struct UnknownExtension {
    uint32_t type;
    std::string data;
};

struct Snapshot {
    uint64_t l1_table_offset = 0;
    uint32_t l1_size = 0;
    std::string id;
    std::string name;
    uint32_t date_sec = 0;
    uint32_t date_nsec = 0;
    uint64_t vm_clock_nsec = 0;
    uint64_t vm_state_size = 0;
    uint64_t disk_size = 0;
    std::optional<uint64_t> icount;
    std::string extra_unknown;  // extra data past what we understand, preserved
    uint32_t extra_len = 24;    // extra data size as stored on disk
};

// One finding of `check`, already in qemu-img's wording.
struct CheckResult {
    int corruptions = 0;
    int leaks = 0;
    int check_errors = 0;
    int corruptions_fixed = 0;
    int leaks_fixed = 0;
    uint64_t image_end_offset = 0;
    uint64_t total_clusters = 0;
    uint64_t allocated_clusters = 0;
    uint64_t fragmented_clusters = 0;
    uint64_t compressed_clusters = 0;
    std::vector<std::string> messages;  // printed to stderr by qemu-img
    // Not empty: the check could not finish ("Check failed: <fatal>",
    // after the messages).
    std::string fatal;
};

enum class RepairMode { None, Leaks, All };

// One persistent dirty bitmap with its contents, for copying bitmaps
// between images (convert --bitmaps).
struct Bitmap {
    std::string name;
    uint32_t granularity_bits = 16;  // each bit covers 2^granularity_bits guest bytes
    bool in_use = false;             // inconsistent: `bits` is left empty
    bool auto_enabled = false;       // QEMU tracks writes in it when opened
    // ceil(ceil(size / granularity) / 8) bytes, bit i of byte k (least
    // significant first) covering guest bytes [(8k+i) << granularity_bits, ...).
    std::vector<uint8_t> bits;
};

}  // namespace qcow2

class Qcow2Image final : public Image {
public:
    static Result<ImagePtr> open(const std::filesystem::path& path, const OpenOptions& opts);
    static Status create(const std::filesystem::path& path, const CreateOptions& opts);
    ~Qcow2Image() override;

    ImageFormat format() const override { return ImageFormat::Qcow2; }
    uint64_t size() const override { return h_.size; }
    const std::string& filename() const override { return filename_; }
    bool writable() const override { return file_.writable(); }
    Status read(uint64_t off, void* buf, size_t len) override;
    Status write(uint64_t off, const void* buf, size_t len) override;
    Status write_zeroes(uint64_t off, uint64_t len, bool unmap) override;
    Status discard(uint64_t off, uint64_t len) override;
    Status write_compressed(uint64_t off, const void* buf, size_t len) override;
    Result<std::vector<char>> compress_cluster(const void* buf, size_t len) const override;
    Status write_precompressed(uint64_t off, const std::vector<char>& packed, const void* raw, size_t len) override;
    Result<size_t> compress_cluster_into(const void* buf, size_t len, char* out, size_t out_cap) const override;
    Status write_compressed_batch(const std::vector<PackedCluster>& clusters) override;
    Status flush() override;
    Status close() override;
    Status resize(uint64_t new_size, bool shrink, Preallocation prealloc) override;
    Result<Extent> block_status(uint64_t off, uint64_t len) override;
    Result<Extent> map_range(uint64_t off, uint64_t len) override;
    Image* backing() const override { return backing_.get(); }
    uint32_t cluster_size() const override { return cluster_size_; }
    int data_fd() const override {
        if (h_.crypt_method != qcow2::kCryptNone) return -1;  // ciphertext: no direct I/O
        return data_file_ ? data_file_->fd() : file_.fd();
    }
    Result<ImageInfo> info() override;

    // check / repair (qcow2_check.cpp)
    Result<qcow2::CheckResult> check(qcow2::RepairMode repair);

    // Internal snapshots (qcow2_snapshot.cpp)
    [[nodiscard]] const std::vector<qcow2::Snapshot>& snapshots() const { return snapshots_; }
    Status snapshot_create(const std::string& name);
    Status snapshot_apply(const std::string& name_or_id);
    Status snapshot_delete(const std::string& name_or_id);
    // Open a read-only view of a snapshot's disk contents.
    Result<ImagePtr> open_snapshot(const std::string& name_or_id);

    // Persistent dirty bitmaps with their contents (qcow2_bitmap.cpp).
    // Inconsistent (in-use) bitmaps are listed without contents.
    Result<std::vector<qcow2::Bitmap>> read_bitmaps();
    // Store more persistent bitmaps (names must be new; version 3 only).
    // Later writes set the bits of the enabled ones (track_write).
    Status add_bitmaps(const std::vector<qcow2::Bitmap>& bitmaps);
    // Replace the image's bitmaps by `all`, in that order: consistent ones
    // are written afresh (all-zero data clusters stay unallocated), in-use
    // ones keep their entry and clusters; the old directory, and the
    // tables and data no entry keeps, are freed after the header points at
    // the new directory. An empty list drops the extension.
    Status store_bitmaps(const std::vector<qcow2::Bitmap>& all);

    // Rewrite the backing file name/format in the header (rebase -u, commit).
    Status set_backing(const std::string& backing_file, const std::string& backing_format);
    // Replace the open backing image (after set_backing).
    void replace_backing(ImagePtr b) { backing_ = std::move(b); }
    // Write the header again in QEMU's layout (amend always does).
    Status rewrite_header();
    // Drop every cluster of the active layer (commit without -d).
    Status make_empty();
    // amend: change compat level / lazy_refcounts in place.
    Status amend(std::optional<int> version, std::optional<bool> lazy_refcounts);
    // amend: rewrite every refcount with a new width (1..64 bits, power of
    // two); fails without changes when a refcount does not fit.
    Status change_refcount_bits(int bits);
    // amend: record another external data file name (images that have
    // one) / stop declaring the data file raw.
    Status set_data_file_name(const std::string& name);
    Status clear_data_file_raw();
    [[nodiscard]] const std::string& backing_file_name() const { return backing_file_; }
    [[nodiscard]] const std::string& backing_format_name() const { return backing_format_; }
    [[nodiscard]] bool has_data_file() const { return !data_file_name_.empty(); }

    [[nodiscard]] const qcow2::Header& header() const { return h_; }

    // Encryption (encrypt.format=luks): the LUKS volume, for amend's key
    // slot changes (nullptr without encryption or without a key).
    luks::Volume* luks_volume() { return luks_.get(); }
    luks::HeaderIo luks_header_io();

private:
    friend class Qcow2Checker;
    friend class Qcow2SnapshotView;
    struct CacheEntry {
        std::vector<uint64_t> data;  // host-endian entries
        bool dirty = false;
        uint64_t lru = 0;
    };
    struct Mapping {
        ExtentKind kind = ExtentKind::Unallocated;
        uint64_t length = 0;
        uint64_t host = 0;          // Data: host offset of the first byte
        uint64_t l2_entry = 0;      // Compressed: the raw entry
        bool copied = false;        // Data: refcount 1, writable in place
    };

    Status parse_header(const std::string& buf, uint64_t file_len);
    Status parse_extensions(const std::string& buf, uint64_t file_len);
    Status load_snapshots(uint64_t file_len);
    Status write_header();
    Status set_incompat_bit(uint64_t bit, bool on);
    // After a successful repair: clear the dirty and corrupt bits (header
    // rewritten, as QEMU's mark_clean/mark_consistent do).
    Status mark_clean();
    Status mark_corrupt(const std::string& why);
    Status open_backing(const OpenOptions& opts);
    // Persistent bitmaps follow guest writes as in QEMU: at the first
    // modification the bitmaps are loaded and marked in use on disk, every
    // write sets the bits of the enabled ones, close() stores them again.
    // A stale extension (autoclear bit clear) is dropped instead.
    Status track_write(uint64_t off, uint64_t len);
    Status begin_bitmap_tracking();
    Status store_tracked_bitmaps();
    // Resize the tracked bitmaps' bits for a new image size (bits past the
    // end cleared); refused while an inconsistent bitmap exists.
    Status resize_tracked_bitmaps(uint64_t new_size);
    // Encryption: read the LUKS header / set up the cipher (with a key).
    Status open_encryption(const OpenOptions& opts);
    Status setup_luks(const EncryptOptions& e);
    // Guest data in a host cluster, decrypted/encrypted when the image is
    // encrypted (`guest` is the guest offset of the first byte).
    Status read_data(uint64_t host, uint64_t guest, char* buf, size_t len);
    Status write_data(uint64_t host, uint64_t guest, const char* buf, size_t len);
    [[nodiscard]] bool encrypted() const { return h_.crypt_method != qcow2::kCryptNone; }
    // The bitmap directory and the tables of consistent bitmaps, checked
    // at open against the constraints QEMU enforces (its messages).
    Status validate_bitmaps();
    // One bitmap's data clusters and table written; its directory entry returned.
    Result<std::string> write_bitmap(const qcow2::Bitmap& b);
    Status preallocate(uint64_t from, uint64_t to, Preallocation mode);
    // The bitmap directory's entries (empty without bitmaps).
    Result<std::vector<BitmapInfo>> bitmap_list();
    // Clusters used by the bitmap directory, bitmap tables and bitmap data.
    Result<std::vector<std::pair<uint64_t, uint64_t>>> bitmap_clusters();
    // (offset, clusters) of the table and data of one directory entry.
    Result<std::vector<std::pair<uint64_t, uint64_t>>> bitmap_entry_clusters(const std::string& entry);

    // Tables
    [[nodiscard]] uint64_t l2_entries() const { return cluster_size_ / l2_entry_bytes_; }
    [[nodiscard]] uint64_t subcluster_size() const { return ext_l2_ ? cluster_size_ / 32 : cluster_size_; }
    Result<CacheEntry*> load_l2(uint64_t l2_offset);
    Result<CacheEntry*> load_refblock(uint64_t offset);
    Status write_l2(uint64_t offset, CacheEntry& e);
    Status write_refblock(uint64_t offset, CacheEntry& e);
    Status evict_caches();
    Status flush_caches();
    Status write_l1_entry(uint64_t index);
    Status validate_table_offset(uint64_t off, const char* what);

    // Refcounts (qcow2_refcount.cpp)
    Result<uint64_t> get_refcount(uint64_t cluster);
    Status update_refcount(uint64_t cluster, int64_t delta);
    Status set_refcount(uint64_t cluster, uint64_t value);
    Status ensure_refblock(uint64_t block_index);
    Status grow_refcount_table(uint64_t min_entries);
    Result<uint64_t> alloc_clusters(uint64_t n);  // returns host offset
    Result<uint64_t> alloc_bytes(uint64_t n);     // for compressed data
    Status free_clusters(uint64_t host_off, uint64_t n);
    Status free_compressed(uint64_t l2_entry);
    [[nodiscard]] uint64_t refcount_max() const;
    uint64_t refblock_get(const CacheEntry& b, uint64_t idx) const;
    void refblock_set(CacheEntry& b, uint64_t idx, uint64_t v) const;

    // Guest data paths
    Result<Mapping> lookup(uint64_t off, uint64_t max_len);
    Status read_backing(uint64_t off, char* buf, size_t len);
    Status read_compressed(uint64_t l2_entry, char* cluster_buf);
    Result<std::pair<uint64_t, uint64_t>> compressed_range(uint64_t l2_entry) const;
    // Checks shared by the compressed write paths.
    Status check_compressed_write(uint64_t off, size_t len);
    // Point the L2 entry of cluster `off` at compressed data at host offset
    // `host`, releasing what it pointed at before.
    Status set_compressed_entry(uint64_t off, uint64_t host, uint64_t clen);
    Status write_cluster(uint64_t cluster, uint32_t in_off, const char* buf, size_t len);
    // Fast path for big writes: whole clusters from `cluster` on that are
    // not allocated yet get one contiguous host run and one write. Returns
    // how many clusters were written (0: not applicable, use write_cluster).
    Result<uint64_t> write_fresh_clusters(uint64_t cluster, const char* buf, uint64_t max_clusters);
    Result<std::pair<CacheEntry*, uint64_t>> l2_for_write(uint64_t cluster);
    Status read_cluster_current(uint64_t cluster, char* out);
    Status zero_cluster(uint64_t cluster, bool unmap, bool discard);
    Status overlap_check(uint64_t host, uint64_t len);
    Status check_data_offset(uint64_t host);
    Status check_range(uint64_t off, uint64_t len) const;
    FileIo& data_io() { return data_file_ ? *data_file_ : file_; }
    // Whether the image looks metadata-preallocated (QEMU's detection,
    // done once): only then does block_status look at host file holes.
    bool metadata_preallocated();
    bool prealloc_checked_ = false, prealloc_detected_ = false;

    // Snapshot table
    Status write_snapshot_table(const std::vector<qcow2::Snapshot>& snaps);
    Status update_l1_refcounts(const std::vector<uint64_t>& l1, int64_t delta);
    Status fix_copied_flags();
    Result<std::vector<uint64_t>> read_l1(uint64_t offset, uint32_t size);

    FileIo file_;
    std::optional<FileIo> data_file_;
    std::string filename_;
    qcow2::Header h_;
    std::vector<qcow2::UnknownExtension> unknown_exts_;
    std::string backing_file_;
    std::string backing_format_;
    std::string data_file_name_;
    std::string bitmaps_ext_;   // raw bitmaps extension payload, preserved
    std::optional<std::vector<qcow2::Bitmap>> tracked_;  // loaded at the first write
    uint64_t bitmap_dir_offset_ = 0, bitmap_dir_size_ = 0;
    uint32_t nb_bitmaps_ = 0;
    ImagePtr backing_;

    uint32_t cluster_bits_ = 16;
    uint64_t cluster_size_ = 65536;
    uint32_t l2_entry_bytes_ = 8;
    bool ext_l2_ = false;
    uint32_t refcount_bits_ = 16;
    std::vector<uint64_t> l1_;
    std::vector<uint64_t> reftable_;
    std::vector<qcow2::Snapshot> snapshots_;

    std::unordered_map<uint64_t, CacheEntry> l2_cache_;
    std::unordered_map<uint64_t, CacheEntry> rb_cache_;
    size_t l2_cache_max_ = 16;
    size_t rb_cache_max_ = 4;
    uint64_t lru_clock_ = 0;

    uint64_t free_cluster_hint_ = 0;
    uint64_t free_byte_offset_ = 0;  // next byte for compressed data (0 = none)
    bool corrupt_ = false;
    std::optional<uint64_t> repair_cursor_;  // next free cluster while repairing
    bool closed_ = false;
    bool header_dirty_bit_set_ = false;
    // Last decompressed cluster, so sequential sub-cluster reads are cheap.
    uint64_t zcache_entry_ = 0;
    std::vector<char> zcache_;
    // Staging buffer of write_compressed_batch.
    std::vector<char> compress_stage_;
    // Encryption: the LUKS header's clusters, the unlocked volume (LUKS) or
    // the legacy AES cipher, and the key they were opened with.
    uint64_t crypto_hdr_off_ = 0, crypto_hdr_len_ = 0;
    std::unique_ptr<luks::Volume> luks_;
    std::unique_ptr<crypto::SectorCipher> aes_;
    const crypto::SectorCipher* cipher_ = nullptr;
    std::optional<std::string> key_;
    std::vector<char> crypt_buf_;
};

// The Qcow2Image behind an Image, or nullptr for other formats.
Qcow2Image* qcow2_cast(Image* img);

}  // namespace vireo::storage
