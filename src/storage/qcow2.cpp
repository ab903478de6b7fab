// qcow2: open, header, caches, guest reads and writes.
#include "storage/qcow2.hpp"

#include <algorithm>
#include <cstring>

#include "storage/compress.hpp"
#include "storage/endian.hpp"
#include "storage/luks_image.hpp"

namespace vireo::storage {

using namespace qcow2;

Qcow2Image* qcow2_cast(Image* img) {
    return img && img->format() == ImageFormat::Qcow2 ? static_cast<Qcow2Image*>(img) : nullptr;
}

Qcow2Image::~Qcow2Image() { (void)close(); }

// ---------------------------------------------------------------- header

namespace {

// QEMU's list of unsupported incompatible features: the names the image's
// own feature name table gives them (in table order), then one hex mask
// of the bits it does not name.
std::string unsupported_features(const std::string& b, uint64_t header_length, uint64_t end, uint64_t mask) {
    std::string out;
    for (uint64_t off = header_length; off + 8 <= end;) {
        uint32_t type = load_be32(b.data() + off);
        uint32_t len = load_be32(b.data() + off + 4);
        off += 8;
        if (type == kExtEnd || len > end - off) break;
        if (type == kExtFeatureTable) {
            for (uint64_t e = off; e + 48 <= off + len; e += 48) {
                std::string name(b.data() + e + 2, 46);
                name.resize(std::strlen(name.c_str()));
                if (name.empty()) break;  // the table ends here
                const auto ftype = static_cast<uint8_t>(b[e]);
                const auto bit = static_cast<uint8_t>(b[e + 1]);
                if (ftype != 0 || bit > 63 || !(mask & (1ULL << bit))) continue;
                out += (out.empty() ? "" : ", ") + name;
                mask &= ~(1ULL << bit);
            }
            break;
        }
        off += (uint64_t{len} + 7) & ~7ULL;
    }
    if (mask) out += fmt::format("{}Unknown incompatible feature: {:x}", out.empty() ? "" : ", ", mask);
    return out;
}

}  // namespace

Status Qcow2Image::parse_header(const std::string& b, uint64_t file_len) {
    if (b.size() < 72 || load_be32(b.data()) != kMagic)
        return fail(ErrorCode::Corrupt, "Image is not in qcow2 format");
    h_.version = load_be32(b.data() + 4);
    if (h_.version < 2 || h_.version > 3)
        return fail(ErrorCode::Unsupported, "Unsupported qcow2 version {}", h_.version);
    h_.backing_file_offset = load_be64(b.data() + 8);
    h_.backing_file_size = load_be32(b.data() + 16);
    h_.cluster_bits = load_be32(b.data() + 20);
    h_.size = load_be64(b.data() + 24);
    h_.crypt_method = load_be32(b.data() + 32);
    h_.l1_size = load_be32(b.data() + 36);
    h_.l1_table_offset = load_be64(b.data() + 40);
    h_.refcount_table_offset = load_be64(b.data() + 48);
    h_.refcount_table_clusters = load_be32(b.data() + 56);
    h_.nb_snapshots = load_be32(b.data() + 60);
    h_.snapshots_offset = load_be64(b.data() + 64);
    if (h_.cluster_bits < 9 || h_.cluster_bits > 21)
        return fail(ErrorCode::Corrupt, "Cluster size must be a power of two between 512 and 2048k");
    cluster_bits_ = h_.cluster_bits;
    cluster_size_ = 1ULL << cluster_bits_;
    if (h_.version == 2) {
        h_.incompatible = h_.compatible = h_.autoclear = 0;
        h_.refcount_order = 4;
        h_.header_length = 72;
        h_.compression_type = 0;
    } else {
        if (b.size() < 104) return fail(ErrorCode::Corrupt, "qcow2 header too short");
        h_.incompatible = load_be64(b.data() + 72);
        h_.compatible = load_be64(b.data() + 80);
        h_.autoclear = load_be64(b.data() + 88);
        h_.refcount_order = load_be32(b.data() + 96);
        h_.header_length = load_be32(b.data() + 100);
        if (h_.header_length < 104) return fail(ErrorCode::Corrupt, "qcow2 header too short");
        if (h_.header_length > cluster_size_ || h_.header_length > b.size())
            return fail(ErrorCode::Corrupt, "qcow2 header exceeds cluster size");
        h_.compression_type = h_.header_length > 104 ? static_cast<uint8_t>(b[104]) : 0;
    }
    if (h_.incompatible & ~kIncompatKnown) {
        uint64_t end = h_.backing_file_offset ? std::min<uint64_t>(h_.backing_file_offset, b.size()) : b.size();
        return fail(ErrorCode::Unsupported, "Unsupported qcow2 feature(s): {}",
                    unsupported_features(b, h_.header_length, end, h_.incompatible & ~kIncompatKnown));
    }
    if (h_.crypt_method > kCryptLuks) return fail(ErrorCode::Unsupported, "Unsupported encryption method: {}", h_.crypt_method);
    if (h_.refcount_order > 6) return fail(ErrorCode::Corrupt, "Reference count entry width too large; may not exceed 64 bits");
    refcount_bits_ = 1U << h_.refcount_order;
    ext_l2_ = (h_.incompatible & kIncompatExtL2) != 0;
    l2_entry_bytes_ = ext_l2_ ? 16 : 8;
    if (ext_l2_ && cluster_bits_ < 14)
        return fail(ErrorCode::Corrupt, "Extended L2 entries are only supported with cluster sizes of at least 16384 bytes");
    // The compression type and its incompatible bit go together (as QEMU
    // checks: a zlib image with the bit set is refused too).
    if (h_.compression_type > 1)
        return fail(ErrorCode::Unsupported, "qcow2: unknown compression type: {}", h_.compression_type);
    if (h_.compression_type == 0 && (h_.incompatible & kIncompatCompression))
        return fail(ErrorCode::Corrupt, "qcow2: Compression type incompatible feature bit must not be set");
    if (h_.compression_type != 0 && !(h_.incompatible & kIncompatCompression))
        return fail(ErrorCode::Corrupt, "qcow2: Compression type incompatible feature bit must be set");

    // Table placement and sizes, all checked against the file before use.
    auto aligned = [&](uint64_t v) { return (v & (cluster_size_ - 1)) == 0; };
    if (uint64_t{h_.l1_size} * 8 > kMaxL1Bytes) return fail(ErrorCode::Corrupt, "Active L1 table too large");
    if (!aligned(h_.l1_table_offset)) return fail(ErrorCode::Corrupt, "Active L1 table offset invalid");
    if (h_.l1_size && h_.l1_table_offset + uint64_t{h_.l1_size} * 8 > file_len)
        return fail(ErrorCode::Corrupt, "Active L1 table extends past the end of the file");
    uint64_t l2_cover = cluster_size_ / l2_entry_bytes_ * cluster_size_;
    if (h_.size > uint64_t{h_.l1_size} * l2_cover) return fail(ErrorCode::Corrupt, "L1 table is too small");
    if (!aligned(h_.refcount_table_offset) || h_.refcount_table_offset == 0)
        return fail(ErrorCode::Corrupt, "Refcount table offset invalid");
    if (uint64_t{h_.refcount_table_clusters} * cluster_size_ > kMaxRefTableBytes)
        return fail(ErrorCode::Corrupt, "Reference count table too large");
    if (h_.nb_snapshots > kMaxSnapshots) return fail(ErrorCode::Corrupt, "Too many snapshots");
    if (h_.nb_snapshots && !aligned(h_.snapshots_offset)) return fail(ErrorCode::Corrupt, "Snapshot table offset invalid");
    if (h_.backing_file_offset) {
        if (h_.backing_file_size > 1023 || h_.backing_file_offset + h_.backing_file_size > cluster_size_ ||
            h_.backing_file_offset + h_.backing_file_size > b.size())
            return fail(ErrorCode::Corrupt, "Backing file name too long");
        backing_file_.assign(b.data() + h_.backing_file_offset, h_.backing_file_size);
    }
    return {};
}

Status Qcow2Image::parse_extensions(const std::string& b, uint64_t file_len) {
    uint64_t off = h_.header_length;
    uint64_t end = h_.backing_file_offset ? h_.backing_file_offset : std::min<uint64_t>(cluster_size_, b.size());
    while (off + 8 <= end) {
        uint32_t type = load_be32(b.data() + off);
        uint32_t len = load_be32(b.data() + off + 4);
        off += 8;
        if (type == kExtEnd) break;
        if (len > end - off) return fail(ErrorCode::Corrupt, "Invalid qcow2 header extension: length exceeds header");
        std::string data = b.substr(off, len);
        switch (type) {
            case kExtBackingFormat: backing_format_ = data.substr(0, data.find('\0')); break;
            case kExtFeatureTable: break;  // names only; we regenerate it
            case kExtDataFile: data_file_name_ = data.substr(0, data.find('\0')); break;
            case kExtBitmaps:
                // Checked as QEMU checks it, with its words; without the
                // autoclear bit the bitmaps are stale and ignored.
                if (!(h_.autoclear & kAutoclearBitmaps)) {
                    bitmaps_ext_ = data;
                    break;
                }
                if (len != 24) return fail(ErrorCode::Corrupt, "bitmaps_ext: Invalid extension length");
                if (load_be32(data.data() + 4) != 0) return fail(ErrorCode::Corrupt, "bitmaps_ext: Reserved field is not zero");
                bitmaps_ext_ = data;
                nb_bitmaps_ = load_be32(data.data());
                bitmap_dir_size_ = load_be64(data.data() + 8);
                bitmap_dir_offset_ = load_be64(data.data() + 16);
                if (nb_bitmaps_ > 65535)
                    return fail(ErrorCode::Corrupt, "bitmaps_ext: Image has {} bitmaps, exceeding the QEMU supported maximum of 65535",
                                nb_bitmaps_);
                if (nb_bitmaps_ == 0) return fail(ErrorCode::Corrupt, "found bitmaps extension with zero bitmaps");
                if (bitmap_dir_offset_ & (cluster_size_ - 1))
                    return fail(ErrorCode::Corrupt, "bitmaps_ext: invalid bitmap directory offset");
                if (bitmap_dir_size_ > kMaxBitmapDirectory)
                    return fail(ErrorCode::Corrupt, "bitmaps_ext: bitmap directory size ({}) exceeds the maximum supported size ({})",
                                bitmap_dir_size_, kMaxBitmapDirectory);
                (void)file_len;
                break;
            case kExtCrypto:
                if (h_.crypt_method != kCryptLuks)
                    return fail(ErrorCode::Corrupt, "crypto header extension only expected with LUKS encryption method");
                if (len != 16) return fail(ErrorCode::Corrupt, "Invalid encryption header extension");
                crypto_hdr_off_ = load_be64(data.data());
                crypto_hdr_len_ = load_be64(data.data() + 8);
                if ((crypto_hdr_off_ & (cluster_size_ - 1)) || crypto_hdr_off_ == 0 ||
                    crypto_hdr_off_ + crypto_hdr_len_ > file_len || crypto_hdr_len_ < luks::kHeaderSize)
                    return fail(ErrorCode::Corrupt, "Invalid encryption header offset or length");
                break;
            default: unknown_exts_.push_back({type, data}); break;
        }
        off += (len + 7) & ~7ULL;
    }
    return {};
}

Status Qcow2Image::write_header() {
    std::string b(cluster_size_, '\0');
    char* p = b.data();
    store_be32(p, kMagic);
    store_be32(p + 4, h_.version);
    store_be32(p + 20, h_.cluster_bits);
    store_be64(p + 24, h_.size);
    store_be32(p + 32, h_.crypt_method);
    store_be32(p + 36, h_.l1_size);
    store_be64(p + 40, h_.l1_table_offset);
    store_be64(p + 48, h_.refcount_table_offset);
    store_be32(p + 56, h_.refcount_table_clusters);
    store_be32(p + 60, h_.nb_snapshots);
    store_be64(p + 64, h_.snapshots_offset);
    uint64_t off = 72;
    if (h_.version >= 3) {
        h_.header_length = 112;
        store_be64(p + 72, h_.incompatible);
        store_be64(p + 80, h_.compatible);
        store_be64(p + 88, h_.autoclear);
        store_be32(p + 96, h_.refcount_order);
        store_be32(p + 100, h_.header_length);
        p[104] = static_cast<char>(h_.compression_type);
        off = h_.header_length;
    }
    auto put_ext = [&](uint32_t type, const std::string& data) -> Status {
        uint64_t need = 8 + ((data.size() + 7) & ~7ULL);
        if (off + need + 8 > cluster_size_) return fail(ErrorCode::InvalidArg, "header extensions do not fit in the first cluster");
        store_be32(p + off, type);
        store_be32(p + off + 4, static_cast<uint32_t>(data.size()));
        std::copy(data.begin(), data.end(), p + off + 8);
        off += need;
        return {};
    };
    if (!backing_format_.empty()) VIREO_TRY(put_ext(kExtBackingFormat, backing_format_));
    if (!data_file_name_.empty()) VIREO_TRY(put_ext(kExtDataFile, data_file_name_));
    if (h_.crypt_method == kCryptLuks) {
        std::string c(16, '\0');
        store_be64(c.data(), crypto_hdr_off_);
        store_be64(c.data() + 8, crypto_hdr_len_);
        VIREO_TRY(put_ext(kExtCrypto, c));
    }
    if (h_.version >= 3) {
        static const struct { uint8_t type, bit; const char* name; } kFeatures[] = {
            {0, 0, "dirty bit"}, {0, 1, "corrupt bit"}, {0, 2, "external data file"},
            {0, 3, "compression type"}, {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"},
            {2, 0, "bitmaps"}, {2, 1, "raw external data"}};
        std::string table;
        for (const auto& f : kFeatures) {
            std::string e(48, '\0');
            e[0] = static_cast<char>(f.type);
            e[1] = static_cast<char>(f.bit);
            std::memcpy(e.data() + 2, f.name, std::strlen(f.name));
            table += e;
        }
        // The feature name table is optional: as QEMU does, it is written
        // only with clusters above 4 KiB (it takes most of a small header
        // cluster), and never in place of another extension.
        auto ext_size = [](size_t n) { return 8 + ((uint64_t{n} + 7) & ~7ULL); };
        uint64_t others = 8 + backing_file_.size();  // end marker, backing name
        if (!bitmaps_ext_.empty() && (h_.autoclear & kAutoclearBitmaps)) others += ext_size(bitmaps_ext_.size());
        for (const auto& u : unknown_exts_) others += ext_size(u.data.size());
        if (cluster_size_ > 4096 && off + ext_size(table.size()) + others <= cluster_size_)
            VIREO_TRY(put_ext(kExtFeatureTable, table));
        if (!bitmaps_ext_.empty() && (h_.autoclear & kAutoclearBitmaps)) VIREO_TRY(put_ext(kExtBitmaps, bitmaps_ext_));
    }
    // Extensions vireo does not know are kept, in every version, as QEMU
    // keeps them.
    for (const auto& u : unknown_exts_) VIREO_TRY(put_ext(u.type, u.data));
    off += 8;  // end-of-extensions marker (zeroes)
    if (!backing_file_.empty()) {
        if (off + backing_file_.size() > cluster_size_) return fail(ErrorCode::InvalidArg, "Backing file name too long");
        std::memcpy(p + off, backing_file_.data(), backing_file_.size());
        h_.backing_file_offset = off;
        h_.backing_file_size = static_cast<uint32_t>(backing_file_.size());
        off += backing_file_.size();
    } else {
        h_.backing_file_offset = 0;
        h_.backing_file_size = 0;
    }
    store_be64(p + 8, h_.backing_file_offset);
    store_be32(p + 16, h_.backing_file_size);
    // The whole first cluster, as QEMU writes it: what an older header left
    // past the new one's end (a longer extension list, a backing file name
    // stored further on) does not stay behind.
    return file_.write(b.data(), b.size(), 0);
}

Status Qcow2Image::rewrite_header() {
    if (!file_.writable()) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    VIREO_TRY(flush_caches());
    VIREO_TRY(write_header());
    return file_.flush();
}

Status Qcow2Image::set_incompat_bit(uint64_t bit, bool on) {
    uint64_t v = on ? (h_.incompatible | bit) : (h_.incompatible & ~bit);
    if (v == h_.incompatible) return {};
    h_.incompatible = v;
    char buf[8];
    store_be64(buf, v);
    VIREO_TRY(file_.write(buf, 8, 72));
    return file_.flush();
}

Status Qcow2Image::mark_clean() {
    if (!(h_.incompatible & (kIncompatDirty | kIncompatCorrupt))) return {};
    VIREO_TRY(flush());
    h_.incompatible &= ~(kIncompatDirty | kIncompatCorrupt);
    corrupt_ = false;
    return rewrite_header();
}

Status Qcow2Image::mark_corrupt(const std::string& why) {
    corrupt_ = true;
    if (file_.writable() && h_.version >= 3) (void)set_incompat_bit(kIncompatCorrupt, true);
    return fail(ErrorCode::Corrupt, "qcow2 image '{}' is corrupt: {}; further writes refused", filename_, why);
}

Status Qcow2Image::load_snapshots(uint64_t file_len) {
    snapshots_.clear();
    uint64_t off = h_.snapshots_offset;
    for (uint32_t i = 0; i < h_.nb_snapshots; ++i) {
        char fixed[40];
        if (off + 40 > file_len) return fail(ErrorCode::Corrupt, "Snapshot table extends past the end of the file");
        VIREO_TRY(file_.read(fixed, 40, off));
        Snapshot s;
        s.l1_table_offset = load_be64(fixed);
        s.l1_size = load_be32(fixed + 8);
        uint16_t id_len = load_be16(fixed + 12), name_len = load_be16(fixed + 14);
        s.date_sec = load_be32(fixed + 16);
        s.date_nsec = load_be32(fixed + 20);
        s.vm_clock_nsec = load_be64(fixed + 24);
        s.vm_state_size = load_be32(fixed + 32);
        uint32_t extra_len = load_be32(fixed + 36);
        if (extra_len > 1024) return fail(ErrorCode::Corrupt, "Too much extra metadata in snapshot table entry");
        uint64_t total = 40 + uint64_t{extra_len} + id_len + name_len;
        if (off + total > file_len) return fail(ErrorCode::Corrupt, "Snapshot table extends past the end of the file");
        std::string rest(total - 40, '\0');
        VIREO_TRY(file_.read(rest.data(), rest.size(), off + 40));
        if (extra_len >= 8) s.vm_state_size = load_be64(rest.data());
        if (extra_len >= 16) s.disk_size = load_be64(rest.data() + 8);
        else s.disk_size = h_.size;
        if (extra_len >= 24) s.icount = load_be64(rest.data() + 16);
        s.extra_len = extra_len;
        if (extra_len > 24) s.extra_unknown = rest.substr(24, extra_len - 24);
        s.id = rest.substr(extra_len, id_len);
        s.name = rest.substr(extra_len + id_len, name_len);
        if ((s.l1_table_offset & (cluster_size_ - 1)) || uint64_t{s.l1_size} * 8 > kMaxL1Bytes ||
            (s.l1_size && s.l1_table_offset + uint64_t{s.l1_size} * 8 > file_len))
            return fail(ErrorCode::Corrupt, "Snapshot L1 table offset invalid");
        snapshots_.push_back(std::move(s));
        off += (total + 7) & ~7ULL;
    }
    return {};
}

Result<std::vector<uint64_t>> Qcow2Image::read_l1(uint64_t offset, uint32_t size) {
    std::vector<uint64_t> l1(size);
    if (size == 0) return l1;
    std::string raw(uint64_t{size} * 8, '\0');
    VIREO_TRY(file_.read(raw.data(), raw.size(), offset));
    for (uint32_t i = 0; i < size; ++i) l1[i] = load_be64(raw.data() + std::size_t{8} * i);
    return l1;
}

Status Qcow2Image::open_backing(const OpenOptions& opts) {
    if (backing_file_.empty() || !opts.open_backing) return {};
    auto path = resolve_backing_path(filename_, backing_file_);
    OpenOptions bo;
    bo.writable = false;
    bo.cache = opts.backing_cache;
    bo.backing_cache = opts.backing_cache;
    // Backing files are read: consistent read, sharing all but write and
    // resize (all with -U), as QEMU's backing children.
    bo.locking = opts.locking;
    bo.force_share = opts.force_share;
    bo.no_io = opts.no_io;
    if (!backing_format_.empty()) {
        auto f = parse_driver(backing_format_);
        if (!f) return fail(f.error().code, "Could not open backing file: {}", f.error().message);
        bo.format = *f;
    }
    auto b = open_image(path, bo);
    // In qemu-img's words: "Could not open backing file: <why>".
    if (!b) return std::unexpected(Error{b.error().code, "Could not open backing file: " + b.error().message});
    backing_ = std::move(*b);
    return {};
}

luks::HeaderIo Qcow2Image::luks_header_io() {
    luks::HeaderIo io;
    auto in_range = [this](uint64_t off, size_t len) -> Status {
        if (off > crypto_hdr_len_ || len > crypto_hdr_len_ - off)
            return fail(ErrorCode::Corrupt, "LUKS header access [{}, +{}) outside its {} bytes", off, len, crypto_hdr_len_);
        return {};
    };
    io.read = [this, in_range](uint64_t off, void* buf, size_t len) -> Status {
        VIREO_TRY(in_range(off, len));
        return file_.read(buf, len, crypto_hdr_off_ + off);
    };
    io.write = [this, in_range](uint64_t off, const void* buf, size_t len) -> Status {
        VIREO_TRY(in_range(off, len));
        return file_.write(buf, len, crypto_hdr_off_ + off);
    };
    return io;
}

Status Qcow2Image::open_encryption(const OpenOptions& opts) {
    if (!encrypted()) return {};
    if (h_.crypt_method == kCryptLuks) {
        if (!crypto_hdr_len_) return fail(ErrorCode::Corrupt, "Missing LUKS header extension");
        auto io = luks_header_io();
        if (opts.no_io) {
            auto h = luks::Volume::read_header(io);
            if (!h) return std::unexpected(h.error());
            return {};
        }
        auto key = luks::need_key(opts.key_secret, "encrypt.");
        if (!key) return std::unexpected(key.error());
        auto v = luks::Volume::open(io, *key);
        if (!v) return std::unexpected(v.error());
        luks_ = std::move(*v);
        cipher_ = &luks_->cipher();
        key_ = opts.key_secret;
        return {};
    }
    // Legacy AES: the passphrase's first 16 bytes (zero padded) are the
    // AES-128-CBC key; IVs are the guest sector numbers. Read only: QEMU
    // itself no longer runs guests on such images.
    if (opts.writable)
        return fail(ErrorCode::Unsupported,
                    "AES-CBC encrypted qcow2 images can only be read by vireo-img; convert them to "
                    "encrypt.format=luks");
    if (opts.no_io) return {};
    auto key = luks::need_key(opts.key_secret, "encrypt.");
    if (!key) return std::unexpected(key.error());
    std::vector<uint8_t> k(16, 0);
    std::memcpy(k.data(), key->data(), std::min<size_t>(16, key->size()));
    auto c = crypto::SectorCipher::create({"aes-128", "cbc", "plain64", ""}, k);
    if (!c) return std::unexpected(c.error());
    aes_ = std::move(*c);
    cipher_ = aes_.get();
    key_ = opts.key_secret;
    return {};
}

Status Qcow2Image::read_data(uint64_t host, uint64_t guest, char* buf, size_t len) {
    if (!encrypted()) return data_io().read(buf, len, host);
    if (!cipher_) return fail(ErrorCode::InvalidArg, "Parameter 'encrypt.key-secret' is required for cipher");
    // LUKS in qcow2 numbers sectors by host offset, legacy AES by guest offset.
    return encrypted_read(data_io(), *cipher_, host, h_.crypt_method == kCryptLuks ? host : guest, buf, len);
}

Status Qcow2Image::write_data(uint64_t host, uint64_t guest, const char* buf, size_t len) {
    if (!encrypted()) return data_io().write(buf, len, host);
    if (!cipher_) return fail(ErrorCode::InvalidArg, "Parameter 'encrypt.key-secret' is required for cipher");
    return encrypted_write(data_io(), *cipher_, host, h_.crypt_method == kCryptLuks ? host : guest, buf, len);
}

Result<ImagePtr> Qcow2Image::open(const std::filesystem::path& path, const OpenOptions& opts) {
    auto img = std::unique_ptr<Qcow2Image>(new Qcow2Image());
    img->filename_ = path.string();
    auto f = FileIo::open(path, opts.writable, opts.cache);
    if (!f) return std::unexpected(f.error());
    img->file_ = std::move(*f);
    auto file_len = img->file_.length();
    if (!file_len) return std::unexpected(file_len.error());
    std::string first(std::min<uint64_t>(*file_len, 512), '\0');
    VIREO_TRY(img->file_.read(first.data(), first.size(), 0));
    if (first.size() >= 24) {
        uint32_t cb = load_be32(first.data() + 20);
        if (cb >= 9 && cb <= 21) {
            first.assign(std::min<uint64_t>(*file_len, 1ULL << cb), '\0');
            VIREO_TRY(img->file_.read(first.data(), first.size(), 0));
        }
    }
    VIREO_TRY(img->parse_header(first, *file_len));
    VIREO_TRY(img->parse_extensions(first, *file_len));
    VIREO_TRY(img->validate_bitmaps());
    img->corrupt_ = (img->h_.incompatible & kIncompatCorrupt) != 0;
    if (img->corrupt_ && opts.writable && opts.repair_dirty)
        return fail(ErrorCode::Corrupt, "qcow2: Image is corrupt; cannot be opened read/write");
    auto l1 = img->read_l1(img->h_.l1_table_offset, img->h_.l1_size);
    if (!l1) return std::unexpected(l1.error());
    img->l1_ = std::move(*l1);
    uint64_t rt_entries = uint64_t{img->h_.refcount_table_clusters} * img->cluster_size_ / 8;
    auto rt = img->read_l1(img->h_.refcount_table_offset, static_cast<uint32_t>(rt_entries));
    if (!rt) return std::unexpected(rt.error());
    img->reftable_ = std::move(*rt);
    VIREO_TRY(img->load_snapshots(*file_len));

    // Metadata caches sized as qcow2's docs recommend: enough L2 to cover
    // the whole disk, capped at 32 MiB; refcount cache a quarter of that
    // (at least 4 clusters).
    uint64_t l2_bytes = (img->h_.size + img->cluster_size_ - 1) / img->cluster_size_ * img->l2_entry_bytes_;
    l2_bytes = std::clamp<uint64_t>(l2_bytes, 2 * img->cluster_size_, 32ULL << 20);
    img->l2_cache_max_ = std::max<size_t>(2, l2_bytes / img->cluster_size_);
    img->rb_cache_max_ = std::max<size_t>(4, img->l2_cache_max_ / 4);

    if (!img->data_file_name_.empty() || (img->h_.incompatible & kIncompatDataFile)) {
        if (img->data_file_name_.empty())
            return fail(ErrorCode::InvalidArg, "'{}' needs an external data file, but none is recorded", img->filename_);
        // Like QEMU, a relative data file name is taken as given (relative
        // to the current directory), not to the image's directory.
        std::filesystem::path dp = img->data_file_name_;
        auto df = FileIo::open(dp, opts.writable, opts.cache);
        if (!df) return std::unexpected(df.error().context("Could not open data file"));
        img->data_file_ = std::move(*df);
    }
    VIREO_TRY(img->open_encryption(opts));
    VIREO_TRY(img->open_backing(opts));

    if (opts.writable && opts.repair_dirty) {
        // A dirty image (lazy refcounts, not closed cleanly) gets its
        // refcounts rebuilt before any write, as QEMU does on open.
        if (img->h_.incompatible & kIncompatDirty) {
            auto r = img->check(RepairMode::All);
            if (!r) return std::unexpected(r.error().context("Could not repair dirty image"));
            VIREO_TRY(img->set_incompat_bit(kIncompatDirty, false));
        }
        // Unknown autoclear bits are cleared by a writer that does not know
        // them (spec); bitmaps are handled at the first write.
        uint64_t known = kAutoclearBitmaps | kAutoclearDataFileRaw;
        if (img->h_.autoclear & ~known) {
            img->h_.autoclear &= known;
            VIREO_TRY(img->write_header());
        }
    }
    return ImagePtr(std::move(img));
}

// ---------------------------------------------------------------- caches

Status Qcow2Image::validate_table_offset(uint64_t off, const char* what) {
    auto len = file_.length();
    if (!len) return std::unexpected(len.error());
    if ((off & (cluster_size_ - 1)) || off == 0 || off + cluster_size_ > *len + cluster_size_ ||
        off < cluster_size_)
        return mark_corrupt(fmt::format("{} offset {:#x} is invalid", what, off));
    return {};
}

namespace {
// Evict the least recently used clean-or-written entry from a cache map.
template <class Map, class WriteFn>
Status evict_one(Map& cache, WriteFn&& write_back) {
    auto victim = cache.end();
    for (auto it = cache.begin(); it != cache.end(); ++it)
        if (victim == cache.end() || it->second.lru < victim->second.lru) victim = it;
    if (victim == cache.end()) return {};
    if (victim->second.dirty) VIREO_TRY(write_back(victim->first, victim->second));
    cache.erase(victim);
    return {};
}
}  // namespace

Result<Qcow2Image::CacheEntry*> Qcow2Image::load_l2(uint64_t l2_offset) {
    auto it = l2_cache_.find(l2_offset);
    if (it != l2_cache_.end()) {
        it->second.lru = ++lru_clock_;
        return &it->second;
    }
    VIREO_TRY(validate_table_offset(l2_offset, "L2 table"));
    while (l2_cache_.size() >= l2_cache_max_) {
        // L2 entries may point at clusters whose refcounts are only in the
        // refcount cache: write those first, so a crash leaks, never corrupts.
        bool any_dirty = std::any_of(l2_cache_.begin(), l2_cache_.end(), [](auto& kv) { return kv.second.dirty; });
        if (any_dirty)
            for (auto& [off, e] : rb_cache_)
                if (e.dirty) VIREO_TRY(write_refblock(off, e));
        VIREO_TRY(evict_one(l2_cache_, [this](uint64_t o, CacheEntry& e) { return write_l2(o, e); }));
    }
    CacheEntry e;
    std::vector<char> raw(cluster_size_);
    VIREO_TRY(file_.read(raw.data(), raw.size(), l2_offset));
    e.data.resize(cluster_size_ / 8);
    for (size_t i = 0; i < e.data.size(); ++i) e.data[i] = load_be64(raw.data() + 8 * i);
    e.lru = ++lru_clock_;
    return &(l2_cache_[l2_offset] = std::move(e));
}

Status Qcow2Image::write_l2(uint64_t offset, CacheEntry& e) {
    VIREO_TRY(overlap_check(offset, cluster_size_));
    std::vector<char> raw(cluster_size_);
    for (size_t i = 0; i < e.data.size(); ++i) store_be64(raw.data() + 8 * i, e.data[i]);
    VIREO_TRY(file_.write(raw.data(), raw.size(), offset));
    e.dirty = false;
    return {};
}

Result<Qcow2Image::CacheEntry*> Qcow2Image::load_refblock(uint64_t offset) {
    auto it = rb_cache_.find(offset);
    if (it != rb_cache_.end()) {
        it->second.lru = ++lru_clock_;
        return &it->second;
    }
    VIREO_TRY(validate_table_offset(offset, "Refcount block"));
    while (rb_cache_.size() >= rb_cache_max_)
        VIREO_TRY(evict_one(rb_cache_, [this](uint64_t o, CacheEntry& e) { return write_refblock(o, e); }));
    CacheEntry e;
    e.data.resize(cluster_size_ / 8);
    VIREO_TRY(file_.read(e.data.data(), cluster_size_, offset));  // raw bytes
    e.lru = ++lru_clock_;
    return &(rb_cache_[offset] = std::move(e));
}

Status Qcow2Image::write_refblock(uint64_t offset, CacheEntry& e) {
    VIREO_TRY(file_.write(e.data.data(), cluster_size_, offset));
    e.dirty = false;
    return {};
}

Status Qcow2Image::flush_caches() {
    for (auto& [off, e] : rb_cache_)
        if (e.dirty) VIREO_TRY(write_refblock(off, e));
    for (auto& [off, e] : l2_cache_)
        if (e.dirty) VIREO_TRY(write_l2(off, e));
    return {};
}

Status Qcow2Image::evict_caches() {
    VIREO_TRY(flush_caches());
    l2_cache_.clear();
    rb_cache_.clear();
    return {};
}

Status Qcow2Image::write_l1_entry(uint64_t index) {
    char buf[8];
    store_be64(buf, l1_[index]);
    return file_.write(buf, 8, h_.l1_table_offset + index * 8);
}

Status Qcow2Image::flush() {
    if (!file_.writable()) return {};
    VIREO_TRY(flush_caches());
    if (data_file_) VIREO_TRY(data_file_->flush());
    return file_.flush();
}

Status Qcow2Image::close() {
    if (closed_) return {};
    closed_ = true;
    if (!file_.writable()) return {};
    auto st = flush_caches();
    if (!st) return st;
    if (data_file_) VIREO_TRY(data_file_->flush());
    VIREO_TRY(file_.flush());
    VIREO_TRY(store_tracked_bitmaps());
    // Everything is on disk: a dirty bit left from an open that did not
    // repair (check) goes, as QEMU clears it when it closes an image.
    if (h_.incompatible & kIncompatDirty) {
        h_.incompatible &= ~kIncompatDirty;
        return rewrite_header();
    }
    return {};
}

// ---------------------------------------------------------------- lookup

Status Qcow2Image::check_range(uint64_t off, uint64_t len) const {
    if (off > h_.size || len > h_.size - off)
        return fail(ErrorCode::InvalidArg, "request [{}, +{}) is outside the image (size {})", off, len, h_.size);
    return {};
}

Status Qcow2Image::check_data_offset(uint64_t host) {
    if (host & (cluster_size_ - 1))
        return mark_corrupt(fmt::format("Cluster allocation offset {:#x} unaligned", host));
    return {};
}

Result<Qcow2Image::Mapping> Qcow2Image::lookup(uint64_t off, uint64_t max_len) {
    const uint64_t n_l2 = l2_entries();
    uint64_t cluster = off >> cluster_bits_;
    uint64_t in = off & (cluster_size_ - 1);
    uint64_t l1i = cluster / n_l2, l2i = cluster % n_l2;
    Mapping m;
    if (l1i >= l1_.size() || (l1_[l1i] & kL1OffsetMask) == 0) {
        uint64_t to_end = (n_l2 - l2i) * cluster_size_ - in;
        m.kind = ExtentKind::Unallocated;
        m.length = std::min(max_len, to_end);
        return m;
    }
    auto l2r = load_l2(l1_[l1i] & kL1OffsetMask);
    if (!l2r) return std::unexpected(l2r.error());
    const std::vector<uint64_t>& t = (*l2r)->data;
    const uint64_t sc_bytes = cluster_size_ / 32;

    // Classify the piece of cluster `c` (index in table `i`) starting at
    // in-cluster offset `o`: kind, host, and how far it runs in that cluster.
    auto classify = [&](uint64_t i, uint64_t o, Mapping& out) -> Status {
        uint64_t e = t[i * (l2_entry_bytes_ / 8)];
        if (e & kOflagCompressed) {
            out.kind = ExtentKind::Compressed;
            out.l2_entry = e;
            out.length = cluster_size_ - o;
            return {};
        }
        uint64_t host = e & kL2OffsetMask;
        if (host) VIREO_TRY(check_data_offset(host));
        if (!ext_l2_) {
            out.length = cluster_size_ - o;
            // A zero cluster may keep its host cluster (QEMU's ZERO_ALLOC).
            if (h_.version >= 3 && (e & kOflagZero)) { out.kind = ExtentKind::Zero; out.host = host ? host + o : 0; }
            else if (host) { out.kind = ExtentKind::Data; out.host = host + o; out.copied = (e & kOflagCopied) != 0; }
            else out.kind = ExtentKind::Unallocated;
            return {};
        }
        uint64_t bm = t[i * 2 + 1];
        uint64_t sc = o / sc_bytes;
        auto sc_kind = [&](uint64_t s) {
            if (host && (bm & (1ULL << s))) return ExtentKind::Data;
            if (bm & (1ULL << (32 + s))) return ExtentKind::Zero;
            return ExtentKind::Unallocated;
        };
        ExtentKind k = sc_kind(sc);
        uint64_t s = sc + 1;
        while (s < 32 && sc_kind(s) == k) ++s;
        out.kind = k;
        out.length = s * sc_bytes - o;
        // Zero and unallocated subclusters may sit in an allocated host
        // cluster (QEMU's ZERO_ALLOC, UNALLOCATED_ALLOC): it is kept.
        if (host) out.host = host + o;
        if (k == ExtentKind::Data) out.copied = (e & kOflagCopied) != 0;
        return {};
    };

    VIREO_TRY(classify(l2i, in, m));
    m.length = std::min(m.length, max_len);
    // Extend over following clusters of the same table while the kind stays
    // the same (and data stays contiguous on the host).
    if (m.kind != ExtentKind::Compressed) {
        uint64_t i = l2i + 1;
        while (m.length < max_len && i < n_l2 && (in + m.length) % cluster_size_ == 0) {
            Mapping nx;
            VIREO_TRY(classify(i, 0, nx));
            // Runs with host clusters continue only where the host run does.
            if (nx.kind != m.kind || (nx.host == 0) != (m.host == 0) || (m.host && nx.host != m.host + m.length) ||
                (m.kind == ExtentKind::Data && nx.copied != m.copied))
                break;
            m.length = std::min(max_len, m.length + nx.length);
            if (nx.length < cluster_size_) break;
            ++i;
        }
    }
    return m;
}

Result<std::pair<uint64_t, uint64_t>> Qcow2Image::compressed_range(uint64_t e) const {
    uint32_t x = 62 - (cluster_bits_ - 8);
    uint64_t off = e & ((1ULL << x) - 1);
    uint64_t nsec = ((e & ~kOflagCopied & ~kOflagCompressed) >> x) + 1;
    uint64_t len = nsec * 512 - (off & 511);
    return std::pair{off, len};
}

Status Qcow2Image::read_compressed(uint64_t e, char* out) {
    if (zcache_entry_ == e && zcache_.size() == cluster_size_) {
        std::memcpy(out, zcache_.data(), cluster_size_);
        return {};
    }
    auto r = compressed_range(e);
    auto [off, len] = *r;
    auto flen = file_.length();
    if (!flen) return std::unexpected(flen.error());
    if (off >= *flen) return mark_corrupt(fmt::format("compressed cluster at {:#x} is past the end of the file", off));
    len = std::min(len, *flen - off);
    if (len > 2 * cluster_size_ + 512) return mark_corrupt("compressed cluster too large");
    std::vector<char> in(len);
    VIREO_TRY(file_.read(in.data(), len, off));
    auto type = h_.compression_type == 1 ? CompressionType::Zstd : CompressionType::Zlib;
    auto st = decompress_buffer(type, in.data(), len, out, cluster_size_);
    if (!st) return std::unexpected(st.error().context(fmt::format("'{}': compressed cluster at host offset {:#x}", filename_, off)));
    zcache_.assign(out, out + cluster_size_);
    zcache_entry_ = e;
    return {};
}

Status Qcow2Image::read_backing(uint64_t off, char* buf, size_t len) {
    uint64_t have = 0;
    if (backing_ && off < backing_->size()) {
        have = std::min<uint64_t>(len, backing_->size() - off);
        VIREO_TRY(backing_->read(off, buf, have));
    }
    if (have < len) std::memset(buf + have, 0, len - have);
    return {};
}

Status Qcow2Image::read(uint64_t off, void* vbuf, size_t len) {
    VIREO_TRY(check_range(off, len));
    char* buf = static_cast<char*>(vbuf);
    std::vector<char> cbuf;
    while (len > 0) {
        auto m = lookup(off, len);
        if (!m) return std::unexpected(m.error());
        size_t n = static_cast<size_t>(m->length);
        switch (m->kind) {
            case ExtentKind::Unallocated: VIREO_TRY(read_backing(off, buf, n)); break;
            case ExtentKind::Zero: std::memset(buf, 0, n); break;
            case ExtentKind::Data: VIREO_TRY(read_data(m->host, off, buf, n)); break;
            case ExtentKind::Compressed:
                cbuf.resize(cluster_size_);
                VIREO_TRY(read_compressed(m->l2_entry, cbuf.data()));
                std::memcpy(buf, cbuf.data() + (off & (cluster_size_ - 1)), n);
                break;
        }
        off += n;
        buf += n;
        len -= n;
    }
    return {};
}

// The current guest content of one whole cluster (beyond the image end it
// reads as zero).
Status Qcow2Image::read_cluster_current(uint64_t cluster, char* out) {
    uint64_t start = cluster << cluster_bits_;
    uint64_t len = cluster_size_;
    if (start >= h_.size) {
        std::memset(out, 0, len);
        return {};
    }
    uint64_t valid = std::min<uint64_t>(len, h_.size - start);
    VIREO_TRY(read(start, out, valid));
    if (valid < len) std::memset(out + valid, 0, len - valid);
    return {};
}

// ---------------------------------------------------------------- writes

Status Qcow2Image::overlap_check(uint64_t host, uint64_t len) {
    auto overlaps = [&](uint64_t a, uint64_t alen) { return alen && host < a + alen && a < host + len; };
    if (overlaps(0, cluster_size_)) return mark_corrupt(fmt::format("write at {:#x} would overwrite the header", host));
    if (overlaps(h_.l1_table_offset, uint64_t{h_.l1_size} * 8))
        return mark_corrupt(fmt::format("write at {:#x} would overwrite the active L1 table", host));
    if (overlaps(h_.refcount_table_offset, uint64_t{h_.refcount_table_clusters} * cluster_size_))
        return mark_corrupt(fmt::format("write at {:#x} would overwrite the refcount table", host));
    return {};
}

Result<std::pair<Qcow2Image::CacheEntry*, uint64_t>> Qcow2Image::l2_for_write(uint64_t cluster) {
    const uint64_t n_l2 = l2_entries();
    uint64_t l1i = cluster / n_l2, l2i = cluster % n_l2;
    if (l1i >= l1_.size()) return fail(ErrorCode::InvalidArg, "cluster {} is beyond the L1 table", cluster);
    uint64_t l1e = l1_[l1i];
    uint64_t old = l1e & kL1OffsetMask;
    if (old == 0 || !(l1e & kOflagCopied)) {
        std::vector<uint64_t> entries(cluster_size_ / 8, 0);
        if (old) {
            auto o = load_l2(old);
            if (!o) return std::unexpected(o.error());
            entries = (*o)->data;
        }
        auto nw = alloc_clusters(1);
        if (!nw) return std::unexpected(nw.error());
        CacheEntry e;
        e.data = std::move(entries);
        VIREO_TRY(write_l2(*nw, e));
        // Refcounts of the new table reach the disk before the L1 points at it.
        for (auto& [off, rb] : rb_cache_)
            if (rb.dirty) VIREO_TRY(write_refblock(off, rb));
        l1_[l1i] = *nw | kOflagCopied;
        VIREO_TRY(write_l1_entry(l1i));
        if (old) {
            l2_cache_.erase(old);
            VIREO_TRY(update_refcount(old >> cluster_bits_, -1));
        }
        while (l2_cache_.size() >= l2_cache_max_)
            VIREO_TRY(evict_one(l2_cache_, [this](uint64_t o, CacheEntry& ce) { return write_l2(o, ce); }));
        e.lru = ++lru_clock_;
        l2_cache_[*nw] = std::move(e);
    }
    auto t = load_l2(l1_[l1i] & kL1OffsetMask);
    if (!t) return std::unexpected(t.error());
    return std::pair{*t, l2i};
}

Status Qcow2Image::write_cluster(uint64_t cluster, uint32_t in_off, const char* buf, size_t len) {
    const uint64_t stride = l2_entry_bytes_ / 8;
    auto t = l2_for_write(cluster);
    if (!t) return std::unexpected(t.error());
    uint64_t l2_off = l1_[cluster / l2_entries()] & kL1OffsetMask;
    uint64_t idx = t->second;
    uint64_t e = t->first->data[idx * stride];
    uint64_t bm = ext_l2_ ? t->first->data[idx * 2 + 1] : 0;
    uint64_t host = e & kL2OffsetMask;
    bool compressed = e & kOflagCompressed;
    bool zero_flag = !ext_l2_ && h_.version >= 3 && (e & kOflagZero);

    if (!compressed && host && ((e & kOflagCopied) || data_file_)) {
        VIREO_TRY(check_data_offset(host));
        if (ext_l2_) {
            // Fill untouched parts of newly allocated subclusters with their
            // current content (zero or backing), then write.
            const uint64_t sc = cluster_size_ / 32;
            uint64_t first = in_off / sc, last = (in_off + len - 1) / sc;
            std::vector<char> tmp;
            for (uint64_t s = first; s <= last; ++s) {
                if (bm & (1ULL << s)) continue;
                uint64_t s_start = s * sc, s_end = s_start + sc;
                bool full = in_off <= s_start && in_off + len >= s_end;
                if (!full) {
                    tmp.resize(sc);
                    uint64_t g = (cluster << cluster_bits_) + s_start;
                    if (bm & (1ULL << (32 + s))) std::memset(tmp.data(), 0, sc);
                    else VIREO_TRY(read_backing(g, tmp.data(), sc));
                    if (!data_file_) VIREO_TRY(overlap_check(host + s_start, sc));
                    VIREO_TRY(write_data(host + s_start, g, tmp.data(), sc));
                }
                bm |= 1ULL << s;
                bm &= ~(1ULL << (32 + s));
            }
        } else if (zero_flag && len < cluster_size_) {
            std::vector<char> z(cluster_size_, 0);
            if (!data_file_) VIREO_TRY(overlap_check(host, cluster_size_));
            VIREO_TRY(write_data(host, cluster << cluster_bits_, z.data(), z.size()));
        }
        if (!data_file_) VIREO_TRY(overlap_check(host + in_off, len));
        VIREO_TRY(write_data(host + in_off, (cluster << cluster_bits_) + in_off, buf, len));
        if (zero_flag || ext_l2_) {
            auto t2 = load_l2(l2_off);
            if (!t2) return std::unexpected(t2.error());
            (*t2)->data[idx * stride] = e & ~kOflagZero;
            if (ext_l2_) (*t2)->data[idx * 2 + 1] = bm;
            (*t2)->dirty = true;
        }
        return {};
    }

    // Copy-on-write into a freshly allocated cluster.
    std::vector<char> full;
    const char* src = buf;
    if (len < cluster_size_) {
        full.resize(cluster_size_);
        VIREO_TRY(read_cluster_current(cluster, full.data()));
        std::memcpy(full.data() + in_off, buf, len);
        src = full.data();
    }
    // With an external data file guest and host offsets are the same and
    // data clusters carry no refcounts (as in QEMU).
    Result<uint64_t> nh = data_file_ ? Result<uint64_t>(cluster << cluster_bits_) : alloc_clusters(1);
    if (!nh) return std::unexpected(nh.error());
    if (!data_file_) VIREO_TRY(overlap_check(*nh, cluster_size_));
    VIREO_TRY(write_data(*nh, cluster << cluster_bits_, src, cluster_size_));
    auto t2 = load_l2(l2_off);
    if (!t2) return std::unexpected(t2.error());
    (*t2)->data[idx * stride] = *nh | kOflagCopied;
    if (ext_l2_) (*t2)->data[idx * 2 + 1] = 0xffffffffULL;
    (*t2)->dirty = true;
    if (compressed) VIREO_TRY(free_compressed(e));
    else if (host && !data_file_) VIREO_TRY(update_refcount(host >> cluster_bits_, -1));
    return {};
}

Result<uint64_t> Qcow2Image::write_fresh_clusters(uint64_t cluster, const char* buf, uint64_t max_clusters) {
    if (ext_l2_ || data_file_) return uint64_t{0};
    const uint64_t n_l2 = l2_entries();
    max_clusters = std::min(max_clusters, n_l2 - cluster % n_l2);
    auto fresh = [&](uint64_t e) { return e == 0 || (h_.version >= 3 && e == kOflagZero); };
    auto t = l2_for_write(cluster);
    if (!t) return std::unexpected(t.error());
    uint64_t idx = t->second;
    uint64_t n = 0;
    while (n < max_clusters && fresh(t->first->data[idx + n])) ++n;
    if (n < 2) return uint64_t{0};
    uint64_t l2_off = l1_[cluster / n_l2] & kL1OffsetMask;
    auto host = alloc_clusters(n);
    if (!host) return std::unexpected(host.error());
    VIREO_TRY(overlap_check(*host, n << cluster_bits_));
    VIREO_TRY(write_data(*host, cluster << cluster_bits_, buf, n << cluster_bits_));
    // Allocation may have evicted the table from the cache: look it up again.
    auto t2 = load_l2(l2_off);
    if (!t2) return std::unexpected(t2.error());
    for (uint64_t k = 0; k < n; ++k) (*t2)->data[idx + k] = (*host + (k << cluster_bits_)) | kOflagCopied;
    (*t2)->dirty = true;
    return n;
}

Status Qcow2Image::write(uint64_t off, const void* vbuf, size_t len) {
    if (!file_.writable()) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    if (corrupt_) return fail(ErrorCode::Corrupt, "qcow2 image '{}' is marked corrupt; writes refused", filename_);
    VIREO_TRY(check_range(off, len));
    VIREO_TRY(track_write(off, len));
    const char* buf = static_cast<const char*>(vbuf);
    while (len > 0) {
        uint64_t cluster = off >> cluster_bits_;
        uint32_t in = static_cast<uint32_t>(off & (cluster_size_ - 1));
        if (in == 0 && len >= 2 * cluster_size_) {
            auto done = write_fresh_clusters(cluster, buf, len >> cluster_bits_);
            if (!done) return std::unexpected(done.error());
            if (*done) {
                uint64_t bytes = *done << cluster_bits_;
                off += bytes;
                buf += bytes;
                len -= bytes;
                continue;
            }
        }
        size_t n = static_cast<size_t>(std::min<uint64_t>(len, cluster_size_ - in));
        VIREO_TRY(write_cluster(cluster, in, buf, n));
        off += n;
        buf += n;
        len -= n;
    }
    return {};
}

// Make one whole cluster read as zero (write_zeroes) or drop it (discard).
Status Qcow2Image::zero_cluster(uint64_t cluster, bool unmap, bool discard) {
    const uint64_t stride = l2_entry_bytes_ / 8;
    uint64_t l1i = cluster / l2_entries();
    // Nothing to do for an unallocated cluster without backing on discard.
    auto t = l2_for_write(cluster);
    if (!t) return std::unexpected(t.error());
    uint64_t l2_off = l1_[l1i] & kL1OffsetMask;
    uint64_t idx = t->second;
    uint64_t e = t->first->data[idx * stride];
    uint64_t host = e & kL2OffsetMask;
    bool compressed = e & kOflagCompressed;
    uint64_t ne;
    uint64_t nbm = 0;
    bool free_old = false;
    if (ext_l2_) {
        // All subclusters read as zero; keep the allocation unless unmapping.
        if (discard && !backing_) { ne = 0; nbm = 0; free_old = compressed || host; }
        else if (unmap || discard || compressed || !host || !(e & kOflagCopied)) { ne = 0; nbm = 0xffffffffULL << 32; free_old = compressed || host; }
        else { ne = e; nbm = 0xffffffffULL << 32; }
    } else if (h_.version >= 3) {
        if (discard && !backing_) { ne = 0; free_old = compressed || host; }
        else if (unmap || discard || compressed || !host || !(e & kOflagCopied)) { ne = kOflagZero; free_old = compressed || host; }
        else { ne = e | kOflagZero; }
    } else {
        if (backing_ && !discard) {
            // v2 has no zero flag: write real zeroes.
            std::vector<char> z(cluster_size_, 0);
            return write_cluster(cluster, 0, z.data(), z.size());
        }
        ne = 0;
        free_old = compressed || host;
    }
    auto t2 = load_l2(l2_off);
    if (!t2) return std::unexpected(t2.error());
    (*t2)->data[idx * stride] = ne;
    if (ext_l2_) (*t2)->data[idx * 2 + 1] = nbm;
    (*t2)->dirty = true;
    if (free_old) {
        if (compressed) VIREO_TRY(free_compressed(e));
        else if (!data_file_) {
            VIREO_TRY(update_refcount(host >> cluster_bits_, -1));
            if (!data_file_) {
                auto rc = get_refcount(host >> cluster_bits_);
                if (rc && *rc == 0 && (unmap || discard)) (void)file_.punch_hole(host, cluster_size_);
            }
        }
    }
    return {};
}

Status Qcow2Image::write_zeroes(uint64_t off, uint64_t len, bool unmap) {
    if (!file_.writable()) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    if (corrupt_) return fail(ErrorCode::Corrupt, "qcow2 image '{}' is marked corrupt; writes refused", filename_);
    VIREO_TRY(check_range(off, len));
    VIREO_TRY(track_write(off, len));
    std::vector<char> z;
    while (len > 0) {
        uint64_t in = off & (cluster_size_ - 1);
        uint64_t n = std::min<uint64_t>(len, cluster_size_ - in);
        bool whole = in == 0 && (n == cluster_size_ || off + n == h_.size);
        if (whole) {
            VIREO_TRY(zero_cluster(off >> cluster_bits_, unmap, false));
        } else {
            auto m = lookup(off, n);
            if (!m) return std::unexpected(m.error());
            bool already = m->kind == ExtentKind::Zero || (m->kind == ExtentKind::Unallocated && !backing_);
            if (!already || m->length < n) {
                z.assign(n, 0);
                VIREO_TRY(write_cluster(off >> cluster_bits_, static_cast<uint32_t>(in), z.data(), n));
            }
        }
        off += n;
        len -= n;
    }
    return {};
}

Status Qcow2Image::discard(uint64_t off, uint64_t len) {
    if (!file_.writable()) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    if (corrupt_) return fail(ErrorCode::Corrupt, "qcow2 image '{}' is marked corrupt; writes refused", filename_);
    VIREO_TRY(check_range(off, len));
    VIREO_TRY(track_write(off, len));
    // Only whole clusters can be discarded; partial ones are left as they are.
    uint64_t start = (off + cluster_size_ - 1) & ~(cluster_size_ - 1);
    uint64_t end = off + len == h_.size ? off + len : (off + len) & ~(cluster_size_ - 1);
    for (uint64_t p = start; p < end; p += cluster_size_) {
        uint64_t l1i = (p >> cluster_bits_) / l2_entries();
        if (l1i < l1_.size() && (l1_[l1i] & kL1OffsetMask) == 0 && !backing_) continue;
        VIREO_TRY(zero_cluster(p >> cluster_bits_, true, true));
    }
    return {};
}

Result<size_t> Qcow2Image::compress_cluster_into(const void* buf, size_t len, char* out, size_t out_cap) const {
    if (len > cluster_size_) return fail(ErrorCode::InvalidArg, "compressed writes must cover one whole cluster");
    std::vector<char> in;
    const void* src = buf;
    if (len < cluster_size_) {  // tail cluster: pad with zeroes
        in.assign(cluster_size_, 0);
        std::memcpy(in.data(), buf, len);
        src = in.data();
    }
    auto type = h_.compression_type == 1 ? CompressionType::Zstd : CompressionType::Zlib;
    // Only output smaller than a cluster is worth storing compressed.
    return compress_buffer(type, src, cluster_size_, out, std::min<uint64_t>(out_cap, cluster_size_ - 1));
}

Result<std::vector<char>> Qcow2Image::compress_cluster(const void* buf, size_t len) const {
    std::vector<char> out(cluster_size_);
    auto clen = compress_cluster_into(buf, len, out.data(), out.size());
    if (!clen) return std::unexpected(clen.error());
    out.resize(*clen);  // 0: incompressible
    return out;
}

Status Qcow2Image::write_compressed(uint64_t off, const void* vbuf, size_t len) {
    auto packed = compress_cluster(vbuf, len);
    if (!packed) return std::unexpected(packed.error());
    return write_precompressed(off, *packed, vbuf, len);
}

Status Qcow2Image::check_compressed_write(uint64_t off, size_t len) {
    if (!file_.writable()) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    if (corrupt_) return fail(ErrorCode::Corrupt, "qcow2 image '{}' is marked corrupt; writes refused", filename_);
    if (data_file_) return fail(ErrorCode::Unsupported, "Compression is not supported with an external data file");
    if (encrypted()) return fail(ErrorCode::Unsupported, "Compression and encryption not supported at the same time");
    if (off & (cluster_size_ - 1)) return fail(ErrorCode::InvalidArg, "compressed writes must be cluster aligned");
    if (len != cluster_size_ && off + len != h_.size)
        return fail(ErrorCode::InvalidArg, "compressed writes must cover one whole cluster");
    return check_range(off, len);
}

Status Qcow2Image::set_compressed_entry(uint64_t off, uint64_t host, uint64_t clen) {
    uint64_t cluster = off >> cluster_bits_;
    auto t = l2_for_write(cluster);
    if (!t) return std::unexpected(t.error());
    const uint64_t stride = l2_entry_bytes_ / 8;
    uint64_t idx = t->second;
    uint64_t old = t->first->data[idx * stride];
    uint32_t x = 62 - (cluster_bits_ - 8);
    uint64_t nsec = ((host + clen - 1) >> 9) - (host >> 9);
    t->first->data[idx * stride] = kOflagCompressed | (nsec << x) | host;
    if (ext_l2_) t->first->data[idx * 2 + 1] = 0;
    t->first->dirty = true;
    if (old & kOflagCompressed) VIREO_TRY(free_compressed(old));
    else if (old & kL2OffsetMask) VIREO_TRY(update_refcount((old & kL2OffsetMask) >> cluster_bits_, -1));
    return {};
}

Status Qcow2Image::write_precompressed(uint64_t off, const std::vector<char>& packed, const void* vbuf, size_t len) {
    VIREO_TRY(check_compressed_write(off, len));
    if (packed.empty()) return write(off, vbuf, len);  // incompressible: store as is
    if (packed.size() >= cluster_size_) return fail(ErrorCode::InvalidArg, "compressed data larger than a cluster");
    VIREO_TRY(track_write(off, len));
    // The L2 table first: allocating it must not land inside the range
    // alloc_bytes hands out for the data.
    auto t = l2_for_write(off >> cluster_bits_);
    if (!t) return std::unexpected(t.error());
    auto host = alloc_bytes(packed.size());
    if (!host) return std::unexpected(host.error());
    VIREO_TRY(overlap_check(*host, packed.size()));
    VIREO_TRY(file_.write(packed.data(), packed.size(), *host));
    return set_compressed_entry(off, *host, packed.size());
}

Status Qcow2Image::write_compressed_batch(const std::vector<PackedCluster>& clusters) {
    // Compressed data lands back to back (alloc_bytes packs it), so it is
    // gathered in a staging buffer and written in large pieces. The buffer
    // is kept between calls: a fresh one per batch cost page faults and
    // copies as it grew.
    std::vector<char>& stage = compress_stage_;
    stage.clear();
    stage.reserve((256U << 10) + cluster_size_);
    uint64_t stage_host = 0;
    auto flush_stage = [&]() -> Status {
        if (stage.empty()) return {};
        VIREO_TRY(overlap_check(stage_host, stage.size()));
        VIREO_TRY(file_.write(stage.data(), stage.size(), stage_host));
        stage.clear();
        return {};
    };
    for (const auto& c : clusters) {
        VIREO_TRY(check_compressed_write(c.off, c.raw_len));
        if (c.packed_len == 0 || c.packed_len >= cluster_size_) {
            VIREO_TRY(flush_stage());
            VIREO_TRY(write(c.off, c.raw, c.raw_len));
            continue;
        }
        VIREO_TRY(track_write(c.off, c.raw_len));
        auto t = l2_for_write(c.off >> cluster_bits_);
        if (!t) return std::unexpected(t.error());
        auto host = alloc_bytes(c.packed_len);
        if (!host) return std::unexpected(host.error());
        // Pieces of 256 KiB: big enough to be cheap per byte, small enough
        // not to stall in dirty-page throttling on a busy host.
        if (stage.empty() || *host != stage_host + stage.size() || stage.size() >= (256U << 10)) {
            VIREO_TRY(flush_stage());
            stage_host = *host;
        }
        stage.insert(stage.end(), c.packed, c.packed + c.packed_len);
        VIREO_TRY(set_compressed_entry(c.off, *host, c.packed_len));
    }
    return flush_stage();
}

// ---------------------------------------------------------------- status

bool Qcow2Image::metadata_preallocated() {
    if (prealloc_checked_) return prealloc_detected_;
    prealloc_checked_ = true;
    // QEMU's test: many more clusters in use by the refcounts than the
    // host file has blocks allocated means metadata preallocation.
    auto len = file_.length();
    auto allocated = file_.allocated_bytes();
    if (!len || !allocated) return false;
    const uint64_t real = *allocated / cluster_size_;
    const uint64_t threshold = std::max(real * 10 / 9, real + 2);
    const uint64_t end = (*len + cluster_size_ - 1) / cluster_size_;
    uint64_t used = 0;
    for (uint64_t c = 0; c < end && used < threshold; ++c) {
        auto rc = get_refcount(c);
        if (!rc) return false;
        used += *rc != 0;
    }
    prealloc_detected_ = used >= threshold;
    return prealloc_detected_;
}

Result<Extent> Qcow2Image::block_status(uint64_t off, uint64_t len) {
    auto e = map_range(off, len);
    if (!e || e->kind != ExtentKind::Data || !e->host_offset) return e;
    // As QEMU does, the host file is looked through only in an image with
    // metadata preallocation: a hole there reads zero.
    if (!metadata_preallocated()) return e;
    auto run = data_io().data_run(*e->host_offset, *e->host_offset + e->length);
    if (run) {
        e->host_zero = !run->first;
        e->length = run->second - *e->host_offset;
    }
    return e;
}

Result<Extent> Qcow2Image::map_range(uint64_t off, uint64_t len) {
    VIREO_TRY(check_range(off, len));
    auto m = lookup(off, len);
    if (!m) return std::unexpected(m.error());
    Extent e;
    e.start = off;
    e.length = m->length;
    e.kind = m->kind;
    // Encrypted data has no host offset to show or to do I/O at directly
    // (nor have zero clusters that keep one, as in QEMU).
    if (m->kind != ExtentKind::Data && m->kind != ExtentKind::Compressed && m->host && !encrypted()) e.host_offset = m->host;
    if (m->kind == ExtentKind::Data && !encrypted()) {
        e.host_offset = m->host;
        e.in_place = m->copied && file_.writable() && !corrupt_ && bitmaps_ext_.empty();
    }
    return e;
}

Result<ImageInfo> Qcow2Image::info() {
    ImageInfo i;
    i.filename = filename_;
    i.format = ImageFormat::Qcow2;
    i.virtual_size = h_.size;
    auto a = file_.allocated_bytes();
    if (a) i.actual_size = *a;
    i.dirty = (h_.incompatible & kIncompatDirty) != 0;
    i.cluster_size = static_cast<uint32_t>(cluster_size_);
    i.backing_file = backing_file_;
    if (!backing_file_.empty()) i.full_backing_file = resolve_backing_path(filename_, backing_file_).string();
    i.backing_format = backing_format_;
    for (const auto& s : snapshots_) {
        SnapshotInfo si;
        si.id = s.id;
        si.name = s.name;
        si.vm_state_size = s.vm_state_size;
        si.date_sec = s.date_sec;
        si.date_nsec = s.date_nsec;
        si.vm_clock_nsec = s.vm_clock_nsec;
        si.icount = s.icount.value_or(UINT64_MAX);
        si.disk_size = s.disk_size;
        i.snapshots.push_back(si);
    }
    i.version = static_cast<int>(h_.version);
    i.compression_type = h_.compression_type == 1 ? "zstd" : "zlib";
    i.lazy_refcounts = (h_.compatible & kCompatLazyRefcounts) != 0;
    i.refcount_bits = static_cast<int>(refcount_bits_);
    i.corrupt = (h_.incompatible & kIncompatCorrupt) != 0;
    i.extended_l2 = ext_l2_;
    i.data_file = data_file_name_;
    i.data_file_raw = (h_.autoclear & kAutoclearDataFileRaw) != 0;
    i.has_bitmaps = !bitmaps_ext_.empty() && (h_.autoclear & kAutoclearBitmaps);
    if (encrypted()) {
        i.encrypted = true;
        i.encrypt_format = h_.crypt_method == kCryptLuks ? "luks" : "aes";
        if (h_.crypt_method == kCryptLuks) {
            if (luks_) {
                i.luks = luks::info_of(luks_->header());
            } else {
                auto h = luks::Volume::read_header(luks_header_io());
                if (!h) return std::unexpected(h.error());
                i.luks = luks::info_of(*h);
            }
        }
    }
    if (i.has_bitmaps) {
        auto b = bitmap_list();
        if (!b) return std::unexpected(b.error().context(fmt::format("'{}': cannot read the bitmap directory", filename_)));
        i.bitmaps = std::move(*b);
    }
    return i;
}

}  // namespace vireo::storage
