#include "storage/vmdk.hpp"
#include "util/number.hpp"

#include <sys/random.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <set>

#include <fmt/format.h>

namespace vireo::storage {

namespace {

constexpr uint32_t kMagic4 = 0x564d444b;  // "KDMV", little-endian
constexpr uint32_t kMagic3 = 0x44574f43;  // "COWD" (VMDK3, ESX)
constexpr uint64_t kGdAtEnd = ~0ULL;
constexpr uint32_t kFlagNlDetect = 1, kFlagRgd = 2, kFlagZeroGrain = 4, kFlagCompress = 1U << 16,
                   kFlagMarker = 1U << 17;
constexpr uint64_t kSector = 512;
constexpr uint64_t kSplitBytes = 2ULL << 30;  // twoGbMaxExtent*
constexpr uint64_t kGrainSectors = 128;       // 64 KiB grains
constexpr uint32_t kGtes = 512;
constexpr uint64_t kDescSectors = 20;         // embedded descriptor space
constexpr uint32_t kZeroGte = 1;              // with kFlagZeroGrain: the grain reads zero

uint32_t le32(const char* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
uint64_t le64(const char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}
void put32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }

uint32_t random_cid() {
    uint32_t v = 0;
    if (getrandom(&v, sizeof v, 0) != sizeof v) v = static_cast<uint32_t>(time(nullptr));
    return v;
}

// The hosted sparse extent header (VMDK 1.1 spec, "SparseExtentHeader").
struct SparseHeader {
    uint32_t version = 1, flags = kFlagNlDetect | kFlagRgd;
    uint64_t capacity = 0, grain = kGrainSectors, desc_offset = 0, desc_size = 0;
    uint32_t gtes = kGtes;
    uint64_t rgd = 0, gd = 0, overhead = 0;
    uint16_t compress = 0;
};

SparseHeader parse_sparse_header(const char* b) {
    SparseHeader h;
    h.version = le32(b + 4);
    h.flags = le32(b + 8);
    h.capacity = le64(b + 12);
    h.grain = le64(b + 20);
    h.desc_offset = le64(b + 28);
    h.desc_size = le64(b + 36);
    h.gtes = le32(b + 44);
    h.rgd = le64(b + 48);
    h.gd = le64(b + 56);
    h.overhead = le64(b + 64);
    uint16_t c;
    std::memcpy(&c, b + 77, 2);
    h.compress = c;
    return h;
}

std::string sparse_header_bytes(const SparseHeader& h) {
    std::string b(kSector, '\0');
    put32(b.data(), kMagic4);
    put32(b.data() + 4, h.version);
    put32(b.data() + 8, h.flags);
    put64(b.data() + 12, h.capacity);
    put64(b.data() + 20, h.grain);
    put64(b.data() + 28, h.desc_offset);
    put64(b.data() + 36, h.desc_size);
    put32(b.data() + 44, h.gtes);
    put64(b.data() + 48, h.rgd);
    put64(b.data() + 56, h.gd);
    put64(b.data() + 64, h.overhead);
    b[73] = '\n';
    b[74] = ' ';
    b[75] = '\r';
    b[76] = '\n';
    std::memcpy(b.data() + 77, &h.compress, 2);
    return b;
}

// "key=value" / key = "value" lines of a descriptor.
std::string unquote(std::string v) {
    while (!v.empty() && (v.back() == ' ' || v.back() == '\r')) v.pop_back();
    while (!v.empty() && v.front() == ' ') v.erase(v.begin());
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    return v;
}

}  // namespace

struct VmdkImage::VExtent {
    enum class Kind { Flat, Sparse, Zero };
    Kind kind = Kind::Flat;
    std::string name;  // as the descriptor names it
    std::string path;  // resolved
    std::string type;  // "FLAT", "SPARSE", "ZERO", "" (monolithic)
    std::shared_ptr<FileIo> file;
    uint64_t start = 0, bytes = 0;  // guest range
    uint64_t flat_offset = 0;       // Flat: where the data starts in the file
    // Sparse:
    SparseHeader h;
    uint64_t grain = 65536;  // bytes
    std::vector<uint32_t> gd, rgd;
    struct Table {
        std::vector<uint32_t> e;
        bool dirty = false;
    };
    std::unordered_map<uint32_t, Table> gts;
    uint64_t next_sector = 0;  // where the next grain goes
    bool compressed = false, zero_grain = false;
    // Last grain decompressed, so small reads of one grain are cheap.
    uint64_t zcache_sector = 0;
    std::vector<char> zcache;

    // The grain table `idx` (nullptr: none allocated in the directory).
    Result<Table*> table(uint32_t idx) {
        auto it = gts.find(idx);
        if (it != gts.end()) return &it->second;
        if (idx >= gd.size() || gd[idx] == 0) return static_cast<Table*>(nullptr);
        std::string raw(uint64_t{h.gtes} * 4, '\0');
        VIREO_TRY(file->read(raw.data(), raw.size(), uint64_t{gd[idx]} * kSector));
        Table t;
        t.e.resize(h.gtes);
        for (uint32_t i = 0; i < h.gtes; ++i) t.e[i] = le32(raw.data() + size_t{4} * i);
        return &(gts[idx] = std::move(t));
    }

    // The grain table entry of the grain holding extent byte `off`.
    Result<uint32_t> gte(uint64_t off) {
        uint64_t g = off / grain;
        auto t = table(static_cast<uint32_t>(g / h.gtes));
        if (!t) return std::unexpected(t.error());
        if (!*t) return uint32_t{0};
        return (*t)->e[g % h.gtes];
    }

    Status set_gte(uint64_t off, uint32_t v) {
        uint64_t g = off / grain;
        auto t = table(static_cast<uint32_t>(g / h.gtes));
        if (!t) return std::unexpected(t.error());
        if (!*t) return fail(ErrorCode::Unsupported, "'{}': no grain table allocated for offset {}", path, off);
        (*t)->e[g % h.gtes] = v;
        (*t)->dirty = true;
        return {};
    }

    Status flush_tables() {
        for (auto& [idx, t] : gts) {
            if (!t.dirty) continue;
            std::string raw(t.e.size() * 4, '\0');
            for (size_t i = 0; i < t.e.size(); ++i) put32(raw.data() + 4 * i, t.e[i]);
            VIREO_TRY(file->write(raw.data(), raw.size(), uint64_t{gd[idx]} * kSector));
            if (idx < rgd.size() && rgd[idx]) VIREO_TRY(file->write(raw.data(), raw.size(), uint64_t{rgd[idx]} * kSector));
            t.dirty = false;
        }
        return {};
    }

    // One compressed grain (marker: lba, size, zlib data) into `out`.
    Status read_compressed(uint64_t sector, char* out) {
        if (zcache_sector == sector && zcache.size() == grain) {
            std::memcpy(out, zcache.data(), grain);
            return {};
        }
        auto flen = file->length();
        if (!flen) return std::unexpected(flen.error());
        uint64_t pos = sector * kSector;
        if (pos >= *flen) return fail(ErrorCode::Corrupt, "'{}': compressed grain at sector {} is past the end of the file", path, sector);
        uint64_t clen;
        if (h.flags & kFlagMarker) {
            char m[12];
            VIREO_TRY(file->read(m, 12, pos));
            clen = le32(m + 8);
            pos += 12;
        } else {
            clen = std::min<uint64_t>(*flen - pos, grain * 2 + 1024);
        }
        if (clen > grain * 2 + 1024) return fail(ErrorCode::Corrupt, "'{}': compressed grain at sector {} too large", path, sector);
        std::vector<char> in(clen);
        VIREO_TRY(file->read(in.data(), clen, pos));
        z_stream zs{};
        if (inflateInit(&zs) != Z_OK) return fail(ErrorCode::Internal, "zlib init failed");
        zs.next_in = reinterpret_cast<Bytef*>(in.data());
        zs.avail_in = static_cast<uInt>(clen);
        zs.next_out = reinterpret_cast<Bytef*>(out);
        zs.avail_out = static_cast<uInt>(grain);
        int rc = inflate(&zs, Z_FINISH);
        size_t got = grain - zs.avail_out;
        inflateEnd(&zs);
        if ((rc != Z_STREAM_END && rc != Z_BUF_ERROR) || got == 0)
            return fail(ErrorCode::Corrupt, "'{}': compressed grain at sector {} cannot be decompressed", path, sector);
        std::memset(out + got, 0, grain - got);
        zcache.assign(out, out + grain);
        zcache_sector = sector;
        return {};
    }
};

VmdkImage::~VmdkImage() { (void)flush(); }

VmdkImage* vmdk_cast(Image* img) {
    return img && img->format() == ImageFormat::Vmdk ? static_cast<VmdkImage*>(img) : nullptr;
}

namespace {

// The next blank-separated word of `text`, which then starts after it and the
// blanks that follow ("" at the end).
std::string_view next_word(std::string_view& text) {
    const auto blank = [](char c) { return c == ' ' || c == '\t'; };
    while (!text.empty() && blank(text.front())) text.remove_prefix(1);
    std::size_t n = 0;
    while (n < text.size() && !blank(text[n])) ++n;
    const std::string_view word = text.substr(0, n);
    text.remove_prefix(n);
    while (!text.empty() && blank(text.front())) text.remove_prefix(1);
    return word;
}

// Open a hosted sparse extent file (header, grain directory).
Result<std::unique_ptr<VmdkImage::VExtent>> open_sparse(std::shared_ptr<FileIo> f, const std::string& path) {
    char b[kSector];
    VIREO_TRY(f->read(b, kSector, 0));
    if (le32(b) == kMagic3)
        return fail(ErrorCode::Unsupported, "'{}': VMDK3 (COWD) extents are not supported by vireo", path);
    if (le32(b) != kMagic4) return fail(ErrorCode::Corrupt, "'{}' is not a sparse vmdk extent", path);
    auto x = std::make_unique<VmdkImage::VExtent>();
    x->kind = VmdkImage::VExtent::Kind::Sparse;
    x->path = path;
    x->file = f;
    x->h = parse_sparse_header(b);
    auto flen = f->length();
    if (!flen) return std::unexpected(flen.error());
    if (x->h.gd == kGdAtEnd) {
        // streamOptimized written in one pass: the real header is the
        // footer, the second of the last three sectors.
        if (*flen < 3 * kSector) return fail(ErrorCode::Corrupt, "'{}': missing vmdk footer", path);
        VIREO_TRY(f->read(b, kSector, *flen - 2 * kSector));
        if (le32(b) != kMagic4) return fail(ErrorCode::Corrupt, "'{}': invalid vmdk footer", path);
        x->h = parse_sparse_header(b);
    }
    SparseHeader& h = x->h;
    if (h.version > 3) return fail(ErrorCode::Unsupported, "Unsupported VMDK version {}", h.version);
    if (h.gtes == 0 || h.gtes > 512) return fail(ErrorCode::Corrupt, "L2 table size too big");
    if (h.grain == 0 || h.grain > 0x200000 || (h.grain & (h.grain - 1)))
        return fail(ErrorCode::Corrupt, "Invalid granularity, image may be corrupt");
    if (h.capacity > (1ULL << 50)) return fail(ErrorCode::Corrupt, "'{}': capacity too large", path);
    if ((h.flags & kFlagCompress) && h.compress != 1)
        return fail(ErrorCode::Unsupported, "'{}': unknown grain compression {}", path, h.compress);
    x->grain = h.grain * kSector;
    x->compressed = (h.flags & kFlagCompress) != 0;
    x->zero_grain = (h.flags & kFlagZeroGrain) != 0;
    x->bytes = h.capacity * kSector;
    uint64_t per_gt = uint64_t{h.gtes} * h.grain;
    uint64_t n = (h.capacity + per_gt - 1) / per_gt;
    if (n * 4 > (64ULL << 20)) return fail(ErrorCode::Corrupt, "'{}': grain directory too large", path);
    auto load_dir = [&](uint64_t sector, std::vector<uint32_t>& out) -> Status {
        std::string raw(n * 4, '\0');
        VIREO_TRY(f->read(raw.data(), raw.size(), sector * kSector));
        out.resize(n);
        for (uint64_t i = 0; i < n; ++i) out[i] = le32(raw.data() + 4 * i);
        return {};
    };
    VIREO_TRY(load_dir(h.gd, x->gd));
    if ((h.flags & kFlagRgd) && h.rgd) VIREO_TRY(load_dir(h.rgd, x->rgd));
    x->next_sector = (*flen + kSector - 1) / kSector;
    return x;
}

// A compressed grain as streamOptimized stores it: a marker (lba, size),
// the zlib stream of the whole grain (`valid` bytes of data, zeroes after),
// padded to sectors.
Status pack_grain(const char* data, uint64_t valid, uint64_t grain, uint64_t lba, std::vector<char>& out) {
    std::vector<char> whole;
    if (valid < grain) {
        whole.assign(grain, 0);
        std::memcpy(whole.data(), data, valid);
        data = whole.data();
    }
    // Data that does not compress (a sample from the start and the middle
    // each stays within 2%) is stored in deflate's stored blocks: any level
    // would spend as long finding no matches, for the same size. The rest
    // gets zlib level 4 (lazy matching, shorter chains): measured on
    // bench/img's data a fifth less CPU than QEMU's default level 6 for a
    // size within a fraction of a percent (here smaller).
    int level = 4;
    if (grain >= 16384) {
        auto compresses = [&](const char* at) {
            Bytef tmp[4096 + 64];
            uLongf n = sizeof tmp;
            return compress2(tmp, &n, reinterpret_cast<const Bytef*>(at), 4096, Z_BEST_SPEED) == Z_OK &&
                   n < 4096 * 98 / 100;
        };
        if (!compresses(data) && !compresses(data + grain / 2)) level = Z_NO_COMPRESSION;
    }
    uLongf clen = compressBound(static_cast<uLong>(grain));
    out.assign(12 + clen, 0);
    if (compress2(reinterpret_cast<Bytef*>(out.data() + 12), &clen, reinterpret_cast<const Bytef*>(data),
                  static_cast<uLong>(grain), level) != Z_OK)
        return fail(ErrorCode::Internal, "zlib compression failed");
    put64(out.data(), lba);
    put32(out.data() + 8, static_cast<uint32_t>(clen));
    out.resize((12 + clen + kSector - 1) / kSector * kSector, 0);
    return {};
}

// Write a new sparse extent of `capacity` sectors to `path` (QEMU's
// layout: header, descriptor space, redundant directory and tables,
// directory and tables, first grain 64 KiB aligned).
Status write_sparse_extent(const std::filesystem::path& path, uint64_t capacity, bool compressed, bool zero_grain,
                           const std::string& descriptor) {
    SparseHeader h;
    h.capacity = capacity;
    h.version = compressed ? 3 : zero_grain ? 2 : 1;
    if (zero_grain) h.flags |= kFlagZeroGrain;
    if (compressed) {
        h.flags |= kFlagCompress | kFlagMarker;
        h.compress = 1;
    }
    const uint64_t grains = (capacity + kGrainSectors - 1) / kGrainSectors;
    const uint64_t gt_sectors = (uint64_t{kGtes} * 4 + kSector - 1) / kSector;
    const uint64_t gt_count = (grains + kGtes - 1) / kGtes;
    const uint64_t gd_sectors = (gt_count * 4 + kSector - 1) / kSector;
    h.desc_offset = 1;
    h.desc_size = kDescSectors;
    h.rgd = h.desc_offset + h.desc_size;
    h.gd = h.rgd + gd_sectors + gt_sectors * gt_count;
    h.overhead = (h.gd + gd_sectors + gt_sectors * gt_count + kGrainSectors - 1) / kGrainSectors * kGrainSectors;
    if (descriptor.size() > kDescSectors * kSector) return fail(ErrorCode::InvalidArg, "vmdk descriptor too long");
    auto f = FileIo::create(path);
    if (!f) return std::unexpected(f.error());
    std::string head = sparse_header_bytes(h);
    head.resize((h.desc_offset + h.desc_size) * kSector, '\0');
    std::memcpy(head.data() + kSector, descriptor.data(), descriptor.size());
    VIREO_TRY(f->write(head.data(), head.size(), 0));
    for (int copy = 0; copy < 2; ++copy) {
        uint64_t dir = copy ? h.gd : h.rgd;
        std::string d(gd_sectors * kSector, '\0');
        for (uint64_t i = 0; i < gt_count; ++i)
            put32(d.data() + 4 * i, static_cast<uint32_t>(dir + gd_sectors + i * gt_sectors));
        VIREO_TRY(f->write(d.data(), d.size(), dir * kSector));
    }
    VIREO_TRY(f->truncate(h.overhead * kSector));
    return f->flush();
}

}  // namespace

// ---------------------------------------------------------------- open

Status VmdkImage::parse_descriptor(const std::string& text, bool embedded, const OpenOptions& opts) {
    std::vector<std::string> extent_lines;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? text.size() : nl + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        auto eq = line.find('=');
        std::string key = eq == std::string::npos ? "" : unquote(line.substr(0, eq));
        std::string val = eq == std::string::npos ? "" : unquote(line.substr(eq + 1));
        if (key == "CID") cid_ = static_cast<uint32_t>(std::strtoul(val.c_str(), nullptr, 16));
        else if (key == "parentCID") parent_cid_ = static_cast<uint32_t>(std::strtoul(val.c_str(), nullptr, 16));
        else if (key == "createType") create_type_ = val;
        else if (key == "parentFileNameHint") parent_hint_ = val;
        else if (line.starts_with("RW ") || line.starts_with("RDONLY ") || line.starts_with("NOACCESS "))
            extent_lines.push_back(line);
    }
    if (embedded) return {};
    static const char* const kTypes[] = {"monolithicFlat", "vmfs", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat",
                                         "monolithicSparse", "streamOptimized"};
    if (std::find(std::begin(kTypes), std::end(kTypes), create_type_) == std::end(kTypes))
        return fail(ErrorCode::Unsupported, "Unsupported image type '{}'", create_type_);
    uint64_t start = 0;
    std::map<std::string, std::shared_ptr<FileIo>> files;
    for (const auto& line : extent_lines) {
        // <access> <sectors> <type> "<file name>" [<offset>]
        std::string_view words(line);
        const std::string access(next_word(words));
        const auto sector_count = util::parse_number<std::uint64_t>(next_word(words));
        const std::string type(next_word(words));
        if (access.empty() || !sector_count || type.empty()) return fail(ErrorCode::Corrupt, "Invalid extent line: {}", line);
        const std::uint64_t sectors = *sector_count;
        std::string rest(words);
        auto x = std::make_unique<VExtent>();
        x->type = type;
        x->start = start;
        x->bytes = sectors * kSector;
        if (x->type == "ZERO") {
            x->kind = VExtent::Kind::Zero;
        } else {
            auto q1 = rest.find('"'), q2 = rest.find('"', q1 + 1);
            if (q1 == std::string::npos || q2 == std::string::npos)
                return fail(ErrorCode::Corrupt, "Invalid extent line: {}", line);
            x->name = rest.substr(q1 + 1, q2 - q1 - 1);
            x->path = resolve_backing_path(filename_, x->name).string();
            auto& f = files[x->path];
            if (!f) {
                auto o = FileIo::open(x->path, opts.writable && std::string(access) == "RW", opts.cache);
                if (!o) return std::unexpected(o.error().context(fmt::format("Could not open '{}'", x->path)));
                f = std::make_shared<FileIo>(std::move(*o));
            }
            if (x->type == "FLAT" || x->type == "VMFS") {
                x->kind = VExtent::Kind::Flat;
                x->file = f;
                x->flat_offset = std::strtoull(rest.c_str() + q2 + 1, nullptr, 10) * kSector;
            } else if (x->type == "SPARSE") {
                auto sp = open_sparse(f, x->path);
                if (!sp) return std::unexpected(sp.error());
                (*sp)->name = x->name;
                (*sp)->type = x->type;
                (*sp)->start = start;
                (*sp)->bytes = sectors * kSector;
                x = std::move(*sp);
            } else {
                return fail(ErrorCode::Unsupported, "Unsupported extent type '{}'", x->type);
            }
        }
        start += x->bytes;
        extents_.push_back(std::move(x));
    }
    if (extents_.empty()) return fail(ErrorCode::Corrupt, "'{}': the descriptor names no extent", filename_);
    size_ = start;
    return {};
}

Status VmdkImage::open_parent(const OpenOptions& opts) {
    if (parent_hint_.empty() || !opts.open_backing) return {};
    OpenOptions bo;
    bo.format = ImageFormat::Vmdk;
    bo.cache = opts.backing_cache;
    bo.locking = opts.locking;
    bo.force_share = opts.force_share;
    bo.no_io = opts.no_io;
    auto b = open_image(resolve_backing_path(filename_, parent_hint_), bo);
    if (!b) return std::unexpected(Error{b.error().code, "Could not open backing file: " + b.error().message});
    backing_ = std::move(*b);
    return {};
}

Result<ImagePtr> VmdkImage::open(const std::filesystem::path& path, const OpenOptions& opts) {
    auto img = std::unique_ptr<VmdkImage>(new VmdkImage());
    img->filename_ = path.string();
    img->writable_ = opts.writable;
    auto f = FileIo::open(path, opts.writable, opts.cache);
    if (!f) return std::unexpected(f.error());
    img->desc_file_ = std::make_shared<FileIo>(std::move(*f));
    auto len = img->desc_file_->length();
    if (!len) return std::unexpected(len.error());
    char magic[4] = {};
    if (*len >= 4) VIREO_TRY(img->desc_file_->read(magic, 4, 0));
    if (le32(magic) == kMagic4 || le32(magic) == kMagic3) {
        // A monolithic sparse file: one extent, descriptor embedded.
        auto x = open_sparse(img->desc_file_, img->filename_);
        if (!x) return std::unexpected(x.error());
        const SparseHeader& h = (*x)->h;
        if (h.desc_offset && h.desc_size && h.desc_size <= 2048) {
            std::string d(h.desc_size * kSector, '\0');
            VIREO_TRY(img->desc_file_->read(d.data(), d.size(), h.desc_offset * kSector));
            d.resize(strnlen(d.data(), d.size()));
            VIREO_TRY(img->parse_descriptor(d, true, opts));
        }
        if (img->create_type_.empty()) img->create_type_ = (*x)->compressed ? "streamOptimized" : "monolithicSparse";
        img->size_ = (*x)->bytes;
        img->extents_.push_back(std::move(*x));
    } else {
        if (*len > (1 << 20)) return fail(ErrorCode::Corrupt, "'{}': vmdk descriptor file too large", path.string());
        std::string text(*len, '\0');
        VIREO_TRY(img->desc_file_->read(text.data(), text.size(), 0));
        VIREO_TRY(img->parse_descriptor(text, false, opts));
    }
    img->descriptor_.clear();
    VIREO_TRY(img->open_parent(opts));
    return ImagePtr(std::move(img));
}

// ---------------------------------------------------------------- create

Status VmdkImage::create(const std::filesystem::path& path, const CreateOptions& o) {
    const VmdkSubformat sub = o.vmdk_subformat;
    std::string hw = o.vmdk_hwversion.empty() || o.vmdk_hwversion == "undefined" ? "4" : o.vmdk_hwversion;
    if (o.vmdk_zeroed_grain && (sub == VmdkSubformat::MonolithicFlat || sub == VmdkSubformat::TwoGbFlat))
        return fail(ErrorCode::InvalidArg, "Flat image can't enable zeroed grain");
    if (o.prealloc != Preallocation::Off)
        return fail(ErrorCode::Unsupported, "vireo-img does not preallocate vmdk images");
    uint64_t size = (o.size + kSector - 1) / kSector * kSector;
    uint32_t parent_cid = 0xffffffff;
    std::string parent_line;
    if (!o.backing_file.empty()) {
        if (!o.backing_format.empty() && o.backing_format != "vmdk")
            return fail(ErrorCode::InvalidArg, "Invalid backing file format: {}. Must be vmdk.", o.backing_format);
        OpenOptions bo;
        bo.format = ImageFormat::Vmdk;
        bo.locking = false;  // only its size and CID are read
        bo.no_io = true;
        auto b = open_image(resolve_backing_path(path, o.backing_file), bo);
        if (!b) return std::unexpected(b.error().context(fmt::format("Could not open backing file '{}'", o.backing_file)));
        parent_cid = static_cast<VmdkImage*>(b->get())->cid_;
        if (size == 0) size = (*b)->size();
        parent_line = fmt::format("parentFileNameHint=\"{}\"\n", o.backing_file);
    }
    const bool flat = sub == VmdkSubformat::MonolithicFlat || sub == VmdkSubformat::TwoGbFlat;
    const bool split = sub == VmdkSubformat::TwoGbSparse || sub == VmdkSubformat::TwoGbFlat;
    const bool monolithic = sub == VmdkSubformat::MonolithicSparse || sub == VmdkSubformat::StreamOptimized;
    static const char* const kNames[] = {"monolithicSparse", "monolithicFlat", "streamOptimized",
                                         "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"};
    // Extent files: <prefix>-flat / -sNNN / -fNNN <postfix>, next to the descriptor.
    const std::string base = path.filename().string();
    auto dot = base.rfind('.');
    const std::string prefix = dot == std::string::npos ? base : base.substr(0, dot);
    const std::string postfix = dot == std::string::npos ? "" : base.substr(dot);
    struct NewExtent {
        std::string name;
        uint64_t bytes;
    };
    std::vector<NewExtent> ext;
    if (monolithic) {
        ext.push_back({base, size});
    } else if (!split) {
        ext.push_back({prefix + "-flat" + postfix, size});
    } else {
        uint64_t left = size;
        int i = 1;
        do {
            uint64_t n = std::min(left, kSplitBytes);
            ext.push_back({fmt::format("{}-{}{:03}{}", prefix, flat ? 'f' : 's', i++, postfix), n});
            left -= n;
        } while (left > 0);
    }
    std::string lines;
    for (const auto& e : ext)
        lines += flat ? fmt::format("RW {} FLAT \"{}\" 0\n", e.bytes / kSector, e.name)
                      : fmt::format("RW {} SPARSE \"{}\"\n", e.bytes / kSector, e.name);
    const uint32_t heads = o.vmdk_adapter_type == "ide" ? 16 : 255;
    const std::string desc = fmt::format(
        "# Disk DescriptorFile\nversion=1\nCID={:08x}\nparentCID={:08x}\ncreateType=\"{}\"\n{}\n"
        "# Extent description\n{}\n# The Disk Data Base\n#DDB\n\n"
        "ddb.virtualHWVersion = \"{}\"\nddb.geometry.cylinders = \"{}\"\nddb.geometry.heads = \"{}\"\n"
        "ddb.geometry.sectors = \"63\"\nddb.adapterType = \"{}\"\nddb.toolsVersion = \"{}\"\n",
        random_cid(), parent_cid, kNames[static_cast<int>(sub)], parent_line, lines, hw,
        size / (63ULL * heads * kSector), heads, o.vmdk_adapter_type,
        o.vmdk_toolsversion.empty() ? "2147483647" : o.vmdk_toolsversion);
    const auto dir = path.parent_path();
    if (monolithic)
        return write_sparse_extent(path, size / kSector, sub == VmdkSubformat::StreamOptimized, o.vmdk_zeroed_grain,
                                   desc);
    for (const auto& e : ext) {
        auto p = dir.empty() ? std::filesystem::path(e.name) : dir / e.name;
        if (flat) {
            auto f = FileIo::create(p);
            if (!f) return std::unexpected(f.error());
            VIREO_TRY(f->truncate(e.bytes));
        } else {
            VIREO_TRY(write_sparse_extent(p, e.bytes / kSector, false, o.vmdk_zeroed_grain, ""));
        }
    }
    auto f = FileIo::create(path);
    if (!f) return std::unexpected(f.error());
    VIREO_TRY(f->write(desc.data(), desc.size(), 0));
    return f->flush();
}

// ---------------------------------------------------------------- I/O

Status VmdkImage::check_range(uint64_t off, uint64_t len) const {
    if (off > size_ || len > size_ - off)
        return fail(ErrorCode::InvalidArg, "request [{}, +{}) is outside the image (size {})", off, len, size_);
    return {};
}

std::pair<VmdkImage::VExtent*, uint64_t> VmdkImage::find(uint64_t off) {
    for (auto& x : extents_)
        if (off >= x->start && off < x->start + x->bytes) return {x.get(), off - x->start};
    return {nullptr, 0};
}

uint32_t VmdkImage::cluster_size() const {
    for (const auto& x : extents_)
        if (x->kind == VExtent::Kind::Sparse) return static_cast<uint32_t>(x->grain);
    return 65536;
}

Status VmdkImage::read(uint64_t off, void* vbuf, size_t len) {
    VIREO_TRY(check_range(off, len));
    char* buf = static_cast<char*>(vbuf);
    std::vector<char> gbuf;
    while (len > 0) {
        auto [x, in] = find(off);
        if (!x) return fail(ErrorCode::Internal, "no vmdk extent at offset {}", off);
        size_t n = static_cast<size_t>(std::min<uint64_t>(len, x->bytes - in));
        switch (x->kind) {
            case VExtent::Kind::Zero: std::memset(buf, 0, n); break;
            case VExtent::Kind::Flat: VIREO_TRY(x->file->read(buf, n, x->flat_offset + in)); break;
            case VExtent::Kind::Sparse: {
                n = static_cast<size_t>(std::min<uint64_t>(n, x->grain - in % x->grain));
                auto e = x->gte(in);
                if (!e) return std::unexpected(e.error());
                if (*e == 0) {
                    if (backing_ && off < backing_->size()) {
                        size_t have = static_cast<size_t>(std::min<uint64_t>(n, backing_->size() - off));
                        VIREO_TRY(backing_->read(off, buf, have));
                        std::memset(buf + have, 0, n - have);
                    } else {
                        std::memset(buf, 0, n);
                    }
                } else if (*e == kZeroGte && x->zero_grain) {
                    std::memset(buf, 0, n);
                } else if (x->compressed) {
                    gbuf.resize(x->grain);
                    VIREO_TRY(x->read_compressed(*e, gbuf.data()));
                    std::memcpy(buf, gbuf.data() + in % x->grain, n);
                } else {
                    // Grains that follow each other in the file too: one read.
                    uint64_t more = n;
                    while (more < len && in + more < x->bytes) {
                        auto ne = x->gte(in + more);
                        if (!ne) return std::unexpected(ne.error());
                        if (uint64_t{*ne} != *e + (in % x->grain + more) / kSector) break;
                        more = std::min<uint64_t>({len, more + x->grain, x->bytes - in});
                    }
                    n = static_cast<size_t>(more);
                    VIREO_TRY(x->file->read(buf, n, uint64_t{*e} * kSector + in % x->grain));
                }
                break;
            }
        }
        off += n;
        buf += n;
        len -= n;
    }
    return {};
}

Status VmdkImage::write(uint64_t off, const void* vbuf, size_t len) {
    if (!writable_) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    VIREO_TRY(check_range(off, len));
    const char* buf = static_cast<const char*>(vbuf);
    std::vector<char> grain_buf, packed;
    while (len > 0) {
        auto [x, in] = find(off);
        if (!x) return fail(ErrorCode::Internal, "no vmdk extent at offset {}", off);
        size_t n = static_cast<size_t>(std::min<uint64_t>(len, x->bytes - in));
        if (x->kind == VExtent::Kind::Zero) return fail(ErrorCode::Unsupported, "Cannot write to a ZERO vmdk extent");
        if (x->kind == VExtent::Kind::Flat) {
            VIREO_TRY(x->file->write(buf, n, x->flat_offset + in));
            off += n;
            buf += n;
            len -= n;
            continue;
        }
        const uint64_t gin = in % x->grain;
        n = static_cast<size_t>(std::min<uint64_t>(n, x->grain - gin));
        auto e = x->gte(in);
        if (!e) return std::unexpected(e.error());
        const bool fresh = *e == 0 || (*e == kZeroGte && x->zero_grain);
        if (!fresh && !x->compressed) {
            VIREO_TRY(x->file->write(buf, n, uint64_t{*e} * kSector + gin));
        } else if (!fresh) {
            return fail(ErrorCode::Unsupported, "Could not write to allocated cluster for streamOptimized");
        } else if (gin == 0 && n == x->grain && len >= 2 * x->grain) {
            // Several whole fresh grains: one contiguous run at the end.
            uint64_t count = 1;
            const uint64_t most = x->compressed ? 64 : len / x->grain;
            while (count < std::min(most, len / x->grain) && in + count * x->grain < x->bytes) {
                auto ne = x->gte(in + count * x->grain);
                if (!ne) return std::unexpected(ne.error());
                if (*ne != 0 && !(*ne == kZeroGte && x->zero_grain)) break;
                ++count;
            }
            const uint64_t bytes = count * x->grain;
            const uint64_t sector = x->next_sector;
            // The last grain of an extent may hold fewer guest bytes.
            const uint64_t guest = std::min<uint64_t>(bytes, x->bytes - in);
            if (!x->compressed) {
                VIREO_TRY(x->file->write(buf, guest, sector * kSector));
                if (guest < bytes) {
                    std::vector<char> z(bytes - guest, 0);
                    VIREO_TRY(x->file->write(z.data(), z.size(), sector * kSector + guest));
                }
                for (uint64_t k = 0; k < count; ++k)
                    VIREO_TRY(x->set_gte(in + k * x->grain, static_cast<uint32_t>(sector + k * x->h.grain)));
                x->next_sector += bytes / kSector;
            } else {
                // One at a time: a hand-off to another thread costs a
                // scheduling delay per write on a busy host, more than the
                // compression of a few grains.
                std::vector<std::vector<char>> out(count);
                for (uint64_t k = 0; k < count; ++k) {
                    const uint64_t at = k * x->grain;
                    VIREO_TRY(pack_grain(buf + at, std::min<uint64_t>(x->grain, guest - at), x->grain,
                                         (in + at) / kSector, out[k]));
                }
                std::vector<char> all;
                uint64_t at_sector = sector;
                for (uint64_t k = 0; k < count; ++k) {
                    VIREO_TRY(x->set_gte(in + k * x->grain, static_cast<uint32_t>(at_sector)));
                    at_sector += out[k].size() / kSector;
                    all.insert(all.end(), out[k].begin(), out[k].end());
                }
                VIREO_TRY(x->file->write(all.data(), all.size(), sector * kSector));
                x->next_sector = at_sector;
            }
            n = static_cast<size_t>(guest);
        } else {
            // One grain: its current content (zero or backing) around the data.
            grain_buf.assign(x->grain, 0);
            const uint64_t gstart = off - gin;
            const uint64_t gvalid = std::min<uint64_t>(x->grain, x->bytes - (in - gin));
            if (n < gvalid && *e == 0 && backing_ && gstart < backing_->size()) {
                size_t have = static_cast<size_t>(std::min<uint64_t>(gvalid, backing_->size() - gstart));
                VIREO_TRY(backing_->read(gstart, grain_buf.data(), have));
            }
            std::memcpy(grain_buf.data() + gin, buf, n);
            uint64_t sector = x->next_sector;
            if (x->compressed) {
                VIREO_TRY(pack_grain(grain_buf.data(), x->grain, x->grain, (in - gin) / kSector, packed));
                VIREO_TRY(x->file->write(packed.data(), packed.size(), sector * kSector));
                x->next_sector += packed.size() / kSector;
            } else {
                VIREO_TRY(x->file->write(grain_buf.data(), x->grain, sector * kSector));
                x->next_sector += x->grain / kSector;
            }
            VIREO_TRY(x->set_gte(in, static_cast<uint32_t>(sector)));
        }
        off += n;
        buf += n;
        len -= n;
    }
    return {};
}

Status VmdkImage::write_zeroes(uint64_t off, uint64_t len, bool) {
    VIREO_TRY(check_range(off, len));
    std::vector<char> z;
    while (len > 0) {
        auto [x, in] = find(off);
        if (!x) return fail(ErrorCode::Internal, "no vmdk extent at offset {}", off);
        uint64_t n = std::min<uint64_t>(len, x->bytes - in);
        if (x->kind == VExtent::Kind::Sparse) {
            const uint64_t gin = in % x->grain;
            n = std::min<uint64_t>(n, x->grain - gin);
            auto e = x->gte(in);
            if (!e) return std::unexpected(e.error());
            const bool whole = gin == 0 && (n == x->grain || in + n == x->bytes);
            const bool reads_zero = (*e == 0 && !backing_) || (*e == kZeroGte && x->zero_grain);
            if (reads_zero) {
                off += n;
                len -= n;
                continue;
            }
            if (whole && x->zero_grain) {
                VIREO_TRY(x->set_gte(in, kZeroGte));
                off += n;
                len -= n;
                continue;
            }
        }
        z.assign(static_cast<size_t>(std::min<uint64_t>(n, 1 << 20)), 0);
        VIREO_TRY(write(off, z.data(), z.size()));
        off += z.size();
        len -= z.size();
    }
    return {};
}

Status VmdkImage::flush() {
    if (!writable_) return {};
    std::set<FileIo*> files;
    for (auto& x : extents_) {
        if (x->kind == VExtent::Kind::Sparse) VIREO_TRY(x->flush_tables());
        if (x->file) files.insert(x->file.get());
    }
    for (FileIo* f : files) VIREO_TRY(f->flush());
    return {};
}

Status VmdkImage::resize(uint64_t, bool, Preallocation) {
    return fail(ErrorCode::Unsupported, "Image format driver does not support resize");
}

Result<Extent> VmdkImage::block_status(uint64_t off, uint64_t len) {
    VIREO_TRY(check_range(off, len));
    auto [x, in] = find(off);
    if (!x) return fail(ErrorCode::Internal, "no vmdk extent at offset {}", off);
    len = std::min<uint64_t>(len, x->bytes - in);
    storage::Extent e;
    e.start = off;
    if (x->path != filename_) e.host_file = x->path;
    if (x->kind == VExtent::Kind::Zero) {
        e.kind = ExtentKind::Zero;
        e.length = len;
        return e;
    }
    if (x->kind == VExtent::Kind::Flat) {
        e.kind = ExtentKind::Data;
        e.host_offset = x->flat_offset + in;
        auto run = x->file->data_run(*e.host_offset, *e.host_offset + len);
        if (!run) return std::unexpected(run.error());
        e.host_zero = !run->first;
        e.length = run->second - *e.host_offset;
        return e;
    }
    // Sparse: classify grain by grain while the kind stays the same (and
    // data stays contiguous in the file).
    auto classify = [&](uint32_t gte, ExtentKind& kind, uint64_t& host) {
        host = 0;
        if (gte == 0) kind = ExtentKind::Unallocated;
        else if (gte == kZeroGte && x->zero_grain) kind = ExtentKind::Zero;
        else if (x->compressed) kind = ExtentKind::Compressed;
        else {
            kind = ExtentKind::Data;
            host = uint64_t{gte} * kSector;
        }
    };
    auto first = x->gte(in);
    if (!first) return std::unexpected(first.error());
    uint64_t host0 = 0;
    classify(*first, e.kind, host0);
    const uint64_t gin = in % x->grain;
    uint64_t run = std::min<uint64_t>(len, x->grain - gin);
    while (run < len) {
        auto ne = x->gte(in + run);
        if (!ne) return std::unexpected(ne.error());
        ExtentKind k;
        uint64_t h;
        classify(*ne, k, h);
        if (k != e.kind || k == ExtentKind::Compressed || (k == ExtentKind::Data && h != host0 + gin + run)) break;
        run = std::min<uint64_t>(len, run + x->grain);
    }
    e.length = run;
    if (e.kind == ExtentKind::Data) e.host_offset = host0 + gin;
    return e;
}

Result<ImageInfo> VmdkImage::info() {
    ImageInfo i;
    i.filename = filename_;
    i.format = ImageFormat::Vmdk;
    i.virtual_size = size_;
    // Disk use of the descriptor file and every extent file, once each.
    std::set<std::string> seen{filename_};
    auto a = desc_file_->allocated_bytes();
    if (a) i.actual_size = *a;
    for (const auto& x : extents_) {
        if (!x->file || !seen.insert(x->path).second) continue;
        auto b = x->file->allocated_bytes();
        if (b) i.actual_size += *b;
    }
    VmdkInfo v;
    v.cid = cid_;
    v.parent_cid = parent_cid_;
    v.create_type = create_type_;
    for (const auto& x : extents_) {
        VmdkExtentInfo e;
        e.filename = x->path.empty() ? filename_ : x->path;
        e.format = x->type;
        e.virtual_size = x->bytes;
        if (x->kind == VExtent::Kind::Sparse) {
            e.cluster_size = x->grain;
            e.compressed = x->compressed;
        }
        v.extents.push_back(e);
    }
    if (!extents_.empty() && extents_[0]->kind == VExtent::Kind::Sparse) i.cluster_size = static_cast<uint32_t>(extents_[0]->grain);
    i.vmdk = v;
    if (!parent_hint_.empty()) {
        i.backing_file = parent_hint_;
        i.full_backing_file = resolve_backing_path(filename_, parent_hint_).string();
        i.backing_format = "vmdk";
    }
    return i;
}

Result<qcow2::CheckResult> VmdkImage::check() {
    qcow2::CheckResult r;
    for (auto& x : extents_) {
        if (x->kind != VExtent::Kind::Sparse) continue;
        auto flen = x->file->length();
        if (!flen) return std::unexpected(flen.error());
        for (uint64_t in = 0; in < x->bytes; in += x->grain) {
            auto e = x->gte(in);
            if (!e) return std::unexpected(e.error());
            if (*e == 0 || (*e == kZeroGte && x->zero_grain)) continue;
            if (uint64_t{*e} * kSector >= *flen) {
                r.messages.push_back(
                    fmt::format("ERROR: cluster offset for sector {} points after EOF", (x->start + in) / kSector));
                ++r.corruptions;
            }
        }
    }
    return r;
}

}  // namespace vireo::storage
