// vireo's disk-image engine: raw, qcow2 (optionally LUKS-encrypted), LUKS
// and vmdk images, and vpc, vhdx and vdi read for conversion; opened by
// path, read and written at byte offsets. Used in-process by the daemon and by vireo-img.
//
//   auto img = storage::open_image("/var/lib/vireo/images/web.qcow2", {.writable = true});
//   if (!img) return std::unexpected(img.error());
//   std::vector<char> buf(4096);
//   VIREO_TRY((*img)->read(0, buf.data(), buf.size()));
//
// An Image owns its backing chain (opened read-only). Images are not
// thread-safe: one caller at a time per Image object.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/file_io.hpp"
#include "storage/lock.hpp"
#include "util/error.hpp"

namespace vireo::storage {

enum class ImageFormat { Raw, Qcow2, Luks, Vmdk, Vpc, Vhdx, Vdi };
std::string_view format_name(ImageFormat f);
// Whether QEMU knows a block driver of this name (what a qcow2 header may
// record as backing format even where vireo cannot open that format).
bool is_qemu_driver_name(std::string_view name);

// A format named for a new image (-f of create, -O): "Unknown file format".
Result<ImageFormat> parse_format(std::string_view name);
// A format named for an image being opened (-f, a recorded backing
// format): "Unknown driver", as QEMU words it there.
Result<ImageFormat> parse_driver(std::string_view name);

// Look at the first bytes of a file as QEMU's probe does: the magic of
// qcow2, LUKS, vmdk (sparse header or descriptor), vpc, vhdx or vdi;
// anything else is Raw (a fixed vpc, whose footer is at the end, too).
Result<ImageFormat> probe_format(const std::filesystem::path& path);

struct OpenOptions {
    std::optional<ImageFormat> format = std::nullopt;  // nullopt: probe
    bool writable = false;
    bool open_backing = true;           // false: unallocated ranges read as zero
    CacheMode cache = CacheMode::Writeback;
    CacheMode backing_cache = CacheMode::Writeback;
    bool repair_dirty = true;           // lazy-refcount dirty image: repair on rw open
    // Image locking (storage/lock.hpp), for the image and its backing chain:
    bool locking = true;       // false: take no lock (QEMU's locking=off)
    bool force_share = false;  // -U: share every permission; read-only opens only
    bool no_io = false;        // header only (info): no "consistent read" permission
    // The permissions to lock instead of the defaults for the open mode
    // (default_lock_perms); backing files always take the defaults.
    std::optional<LockPerms> lock_perms = std::nullopt;
    // Raw files count in whole 512-byte sectors, as QEMU sees them (a file
    // of 1000 bytes is a 1024-byte disk whose tail reads zero). false: the
    // file's exact length (what the pool's volume operations work on).
    bool whole_sectors = true;
    // The passphrase of an encrypted image (LUKS; qcow2 with encryption):
    // the value of the secret that key-secret / encrypt.key-secret names.
    // Not needed for no_io opens (info reads only the header).
    std::optional<std::string> key_secret = std::nullopt;
};

// How one run of guest bytes is stored, for block_status/map.
enum class ExtentKind {
    Unallocated,  // not in this layer: comes from the backing file (or reads zero)
    Data,         // stored here as data
    Zero,         // this layer says: reads as zero
    Compressed,   // stored here compressed (data, no fixed host offset)
};

struct Extent {
    uint64_t start = 0;
    uint64_t length = 0;
    ExtentKind kind = ExtentKind::Unallocated;
    // For Data in a host file; Zero and Unallocated have one when they keep
    // an allocated host cluster (qcow2 zero clusters, extended L2 subclusters).
    std::optional<uint64_t> host_offset;
    std::string host_file;  // that file when not the image's own (vmdk extents)
    bool host_zero = false;               // Data whose host range is a hole (reads zero)
    // Data that a guest write may overwrite in place at host_offset (not
    // shared with a snapshot, no metadata update needed).
    bool in_place = false;
};

// One cluster for Image::write_compressed_batch: `packed_len` bytes of
// compressed data, or (packed_len 0) `raw_len` bytes stored uncompressed.
struct PackedCluster {
    uint64_t off = 0;  // guest offset, cluster aligned
    const char* packed = nullptr;
    size_t packed_len = 0;
    const char* raw = nullptr;
    size_t raw_len = 0;
};

enum class Preallocation { Off, Metadata, Falloc, Full };
Result<Preallocation> parse_preallocation(std::string_view name);
std::string_view preallocation_name(Preallocation p);

enum class CompressionType { Zlib, Zstd };

// Encryption of a new image: the LUKS format's options, or qcow2's
// encrypt.* (format luks; aes only to name it in refusals).
enum class EncryptFormat { None, Luks, Aes };
struct EncryptOptions {
    EncryptFormat format = EncryptFormat::None;
    std::string key_secret_id;        // the secret object named
    std::optional<std::string> key;   // its value (the passphrase)
    std::string cipher_alg = "aes-256";
    std::string cipher_mode = "xts";
    std::string ivgen_alg = "plain64";
    std::string ivgen_hash_alg;       // "" = none (sha256 for essiv)
    std::string hash_alg = "sha256";
    uint64_t iter_time = 2000;        // ms of PBKDF2 per key slot
};

// vmdk subformats (create: which files are made, and how).
enum class VmdkSubformat { MonolithicSparse, MonolithicFlat, StreamOptimized, TwoGbSparse, TwoGbFlat };

struct CreateOptions {
    ImageFormat format = ImageFormat::Qcow2;
    uint64_t size = 0;  // 0 with a backing file: the backing file's size
    // qcow2 only:
    int version = 3;                 // 2 = compat 0.10, 3 = compat 1.1
    uint32_t cluster_size = 65536;
    int refcount_bits = 16;
    bool lazy_refcounts = false;
    bool extended_l2 = false;
    CompressionType compression = CompressionType::Zlib;
    std::string backing_file;        // as recorded in the header
    std::string backing_format;      // "" = none recorded
    std::string data_file;           // external data file ("" = none)
    bool data_file_raw = false;
    Preallocation prealloc = Preallocation::Off;
    // The file protocol's options (both formats): see FileIo::apply_create_hints.
    std::optional<uint64_t> extent_size_hint;
    std::optional<bool> nocow;
    // Warnings on the way ("warning: Failed to set extent size hint: ...").
    std::function<void(const std::string&)> warn;
    // LUKS format, and qcow2's encrypt.*:
    EncryptOptions encrypt;
    // vmdk only:
    VmdkSubformat vmdk_subformat = VmdkSubformat::MonolithicSparse;
    std::string vmdk_adapter_type = "ide";
    std::string vmdk_hwversion;       // "" = 4 (virtualHWVersion)
    std::string vmdk_toolsversion;    // "" = none recorded
    bool vmdk_zeroed_grain = false;
    // vpc / vhdx / vdi are read-only formats for vireo: not created.
};

// Create a new image (truncating an existing file). With a backing file and
// size 0 the size is taken from the backing image. An existing file is
// locked first, as qemu-img does: one that another process uses is refused
// ("Failed to get "write" lock") and left as it was.
Status create_image(const std::filesystem::path& path, const CreateOptions& opts);

// Everything `info` reports about one image (not its backing chain).
struct SnapshotInfo {
    std::string id;
    std::string name;
    uint64_t vm_state_size = 0;
    uint32_t date_sec = 0;
    uint32_t date_nsec = 0;
    uint64_t vm_clock_nsec = 0;
    uint64_t icount = UINT64_MAX;  // UINT64_MAX: not recorded
    uint64_t disk_size = 0;
};

// One persistent dirty bitmap of a qcow2 image (read from its directory).
struct BitmapInfo {
    std::string name;
    uint64_t granularity = 0;  // bytes per bit
    bool in_use = false;       // not saved cleanly: its contents are stale
    bool auto_enabled = false; // QEMU tracks writes in it when opened
};

// The LUKS header as info shows it (LUKS files, qcow2 encrypt.format=luks).
struct LuksSlotInfo {
    bool active = false;
    uint32_t iters = 0;
    uint32_t stripes = 0;
    uint64_t key_offset = 0;  // bytes
};
struct LuksInfo {
    std::string cipher_alg, cipher_mode, ivgen_alg, ivgen_hash_alg, hash_alg, uuid;
    uint64_t payload_offset = 0;  // bytes
    uint32_t master_key_iters = 0;
    std::vector<LuksSlotInfo> slots;
};

// A vmdk's descriptor and extents as info shows them.
struct VmdkExtentInfo {
    std::string filename;
    std::string format;            // "SPARSE", "FLAT", "" (monolithic)
    uint64_t virtual_size = 0;
    std::optional<uint64_t> cluster_size;
    bool compressed = false;
};
struct VmdkInfo {
    uint32_t cid = 0, parent_cid = 0;
    std::string create_type;
    std::vector<VmdkExtentInfo> extents;
};

struct ImageInfo {
    std::string filename;
    ImageFormat format = ImageFormat::Raw;
    std::string format_label;  // the format name to show, when not format_name(format) ("nbd")
    uint64_t virtual_size = 0;
    uint64_t actual_size = 0;
    bool actual_size_known = true;  // false: "disk size: unavailable" (NBD exports)
    bool has_dirty_flag = true;
    bool dirty = false;
    std::optional<uint32_t> cluster_size;
    std::string backing_file;        // as recorded
    std::string full_backing_file;   // resolved
    std::string backing_format;
    std::vector<SnapshotInfo> snapshots;
    // qcow2
    int version = 0;
    std::string compression_type;
    bool lazy_refcounts = false;
    int refcount_bits = 0;
    bool corrupt = false;
    bool extended_l2 = false;
    std::string data_file;
    bool data_file_raw = false;
    bool has_bitmaps = false;
    std::vector<BitmapInfo> bitmaps;
    // Encryption (LUKS; qcow2 encrypt.format luks or aes)
    bool encrypted = false;
    std::string encrypt_format;     // qcow2: "luks", "aes"
    std::optional<LuksInfo> luks;
    std::optional<VmdkInfo> vmdk;
};

class Image {
public:
    virtual ~Image() = default;
    Image() = default;
    Image(const Image&) = delete;
    Image& operator=(const Image&) = delete;

    [[nodiscard]] virtual ImageFormat format() const = 0;
    [[nodiscard]] virtual uint64_t size() const = 0;
    [[nodiscard]] virtual const std::string& filename() const = 0;
    [[nodiscard]] virtual bool writable() const = 0;

    // Guest reads/writes at any byte offset inside size().
    virtual Status read(uint64_t off, void* buf, size_t len) = 0;
    virtual Status write(uint64_t off, const void* buf, size_t len) = 0;
    // Make a range read as zero. `unmap` allows deallocating it.
    virtual Status write_zeroes(uint64_t off, uint64_t len, bool unmap) = 0;
    // Tell the image a range is no longer needed (reads may then return zero
    // or backing data, as QEMU's discard does).
    virtual Status discard(uint64_t off, uint64_t len) = 0;
    // Write a whole cluster compressed (qcow2; off cluster-aligned, len one
    // cluster, or the tail cluster). Raw images: Unsupported.
    virtual Status write_compressed(uint64_t off, const void* buf, size_t len);
    // The two halves of write_compressed, so callers can compress clusters on
    // several threads: compress_cluster is thread-safe and returns the
    // compressed bytes (empty: store uncompressed); write_precompressed then
    // stores them (or `raw` when `packed` is empty) at cluster offset `off`.
    virtual Result<std::vector<char>> compress_cluster(const void* buf, size_t len) const;
    virtual Status write_precompressed(uint64_t off, const std::vector<char>& packed, const void* raw, size_t len);
    // Allocation-free variant of compress_cluster for worker threads:
    // compresses into out (capacity out_cap >= cluster_size()) and returns
    // the compressed size, 0 when the cluster does not compress.
    virtual Result<size_t> compress_cluster_into(const void* buf, size_t len, char* out, size_t out_cap) const;
    // Store many clusters at once, in order (what a compressing convert
    // produces): compressed data is packed back to back and reaches the
    // host file in large writes.
    virtual Status write_compressed_batch(const std::vector<PackedCluster>& clusters);
    virtual Status flush() = 0;
    // Write back caches and mark the image clean; also done by the destructor.
    virtual Status close() = 0;
    virtual Status resize(uint64_t new_size, bool shrink, Preallocation prealloc) = 0;

    // How [off, off+len) is stored in THIS layer: the first run starting at
    // off (length <= len) of one kind.
    virtual Result<Extent> block_status(uint64_t off, uint64_t len) = 0;
    // Like block_status, but without looking at the host file's holes
    // (cheaper; host_zero is never set).
    virtual Result<Extent> map_range(uint64_t off, uint64_t len) { return block_status(off, len); }
    [[nodiscard]] virtual Image* backing() const { return nullptr; }
    // The host file descriptor that Extent::host_offset refers to, for
    // callers that run data I/O in parallel (see vireo-img bench); -1 if none.
    [[nodiscard]] virtual int data_fd() const { return -1; }
    // Cluster size for alignment decisions (raw: 512... 64 KiB hint).
    [[nodiscard]] virtual uint32_t cluster_size() const { return 65536; }
    // Whether ranges nothing was written to read as zero (false for LUKS:
    // a hole in its file decrypts to noise, so copies write zeroes out).
    [[nodiscard]] virtual bool zero_init() const { return true; }
    virtual Result<ImageInfo> info() = 0;

    // The lock this image holds on its file (open_image takes it); released
    // after the image is closed.
    void attach_lock(ImageLock lock) { lock_ = std::move(lock); }

private:
    ImageLock lock_;
};

using ImagePtr = std::unique_ptr<Image>;

Result<ImagePtr> open_image(const std::filesystem::path& path, const OpenOptions& opts = {});

// Resolve a backing file name recorded in `overlay`: absolute stays, relative
// is taken against the overlay's directory (qemu's rule).
std::filesystem::path resolve_backing_path(const std::filesystem::path& overlay, const std::string& backing);

// qemu's human size format: "1 GiB", "196 KiB", "1.5 MiB", "0 B".
std::string human_size(uint64_t bytes);

}  // namespace vireo::storage
