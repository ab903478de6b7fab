// vhdx (Microsoft's VHDX format specification 1.0), read for conversion:
// the two headers (the valid one with the higher sequence number), the
// region table (BAT and metadata), the metadata items that size the disk,
// and the BAT's payload blocks. Images whose log needs replaying and
// differencing images are refused, as QEMU refuses them read-only.
#include <algorithm>
#include <array>
#include <cstring>

#include "storage/formats.hpp"
#include "storage/readonly_image.hpp"

namespace vireo::storage {

namespace {

constexpr uint64_t kMiB = 1ULL << 20;

uint16_t le16(const char* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}
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

// CRC-32C (Castagnoli), as the headers and region table carry it.
uint32_t crc32c(const char* p, size_t n) {
    static const std::array<uint32_t, 256> table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78U : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    uint32_t c = 0xffffffffU;
    for (size_t i = 0; i < n; ++i) c = table[(c ^ static_cast<uint8_t>(p[i])) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffU;
}

// A structure whose checksum field (at `at`) is its CRC-32C computed with
// that field zero.
bool checksum_ok(std::string s, size_t at) {
    uint32_t want = le32(s.data() + at);
    std::memset(s.data() + at, 0, 4);
    return crc32c(s.data(), s.size()) == want;
}

// GUIDs as stored on disk (first three fields little-endian).
using Guid = std::array<uint8_t, 16>;
constexpr Guid guid(uint32_t a, uint16_t b, uint16_t c, uint64_t d) {
    Guid g{};
    for (int i = 0; i < 4; ++i) g[static_cast<size_t>(i)] = static_cast<uint8_t>(a >> (8 * i));
    for (size_t i = 0; i < 2; ++i) g[4 + i] = static_cast<uint8_t>(b >> (8 * i));
    for (size_t i = 0; i < 2; ++i) g[6 + i] = static_cast<uint8_t>(c >> (8 * i));
    for (size_t i = 0; i < 8; ++i) g[8 + i] = static_cast<uint8_t>(d >> (56 - 8 * i));
    return g;
}
constexpr Guid kBatRegion = guid(0x2DC27766, 0xF623, 0x4200, 0x9D64115E9BFD4A08ULL);
constexpr Guid kMetadataRegion = guid(0x8B7CA206, 0x4790, 0x4B9A, 0xB8FE575F050F886EULL);
constexpr Guid kFileParameters = guid(0xCAA16737, 0xFA36, 0x4D43, 0xB3B633F0AA44E76BULL);
constexpr Guid kVirtualDiskSize = guid(0x2FA54224, 0xCD1B, 0x4876, 0xB2115DBED83BF4B8ULL);
constexpr Guid kLogicalSectorSize = guid(0x8141BF1D, 0xA96F, 0x4709, 0xBA47F233A8FAAB5FULL);

bool same(const char* p, const Guid& g) { return std::memcmp(p, g.data(), 16) == 0; }

// Payload block states (BAT entry bits 0-2).
constexpr uint64_t kFullyPresent = 6, kPartiallyPresent = 7;

class VhdxImage final : public BlockMappedImage {
public:
    static Result<ImagePtr> open(const std::filesystem::path& path, const OpenOptions& opts) {
        auto img = std::unique_ptr<VhdxImage>(new VhdxImage());
        VIREO_TRY(img->open_file(path, opts));
        VIREO_TRY(img->load());
        return ImagePtr(std::move(img));
    }
    ImageFormat format() const override { return ImageFormat::Vhdx; }
    uint32_t cluster_size() const override { return block_size_; }

    Result<ImageInfo> info() override {
        ImageInfo i = base_info();
        i.cluster_size = block_size_;
        return i;
    }

private:
    Result<std::optional<uint64_t>> block_host(uint64_t off) const override {
        uint64_t block = off / block_size_;
        uint64_t idx = block + block / chunk_ratio_;  // a sector bitmap entry after each chunk
        if (idx >= bat_.size()) return fail(ErrorCode::Corrupt, "'{}': BAT too short for offset {}", filename_, off);
        uint64_t e = bat_[idx];
        uint64_t state = e & 7;
        if (state == kPartiallyPresent)
            return fail(ErrorCode::Unsupported, "'{}': partially present blocks (differencing images) are not supported", filename_);
        if (state != kFullyPresent) return std::optional<uint64_t>{};
        uint64_t at = (e >> 20) * kMiB;
        if (at + block_size_ > file_len_) return fail(ErrorCode::Corrupt, "'{}': block {} is past the end of the file", filename_, block);
        return std::optional<uint64_t>{at + off % block_size_};
    }

    Status load() {
        auto flen = file_.length();
        if (!flen) return std::unexpected(flen.error());
        file_len_ = *flen;
        char sig[8] = {};
        if (file_len_ < uint64_t{320} * 1024) return fail(ErrorCode::Corrupt, "Could not open '{}': not a vhdx image", filename_);
        VIREO_TRY(file_.read(sig, 8, 0));
        if (std::memcmp(sig, "vhdxfile", 8) != 0) return fail(ErrorCode::Corrupt, "Not a VHDX image");
        // Headers at 64 KiB and 128 KiB: the valid one with the higher sequence.
        std::optional<std::string> hdr;
        uint64_t best = 0;
        for (uint64_t at : {64 * 1024ULL, 128 * 1024ULL}) {
            std::string h(4096, '\0');
            VIREO_TRY(file_.read(h.data(), h.size(), at));
            if (std::memcmp(h.data(), "head", 4) != 0 || !checksum_ok(h, 4)) continue;
            uint64_t seq = le64(h.data() + 8);
            if (!hdr || seq > best) {
                hdr = h;
                best = seq;
            }
        }
        if (!hdr) return fail(ErrorCode::Corrupt, "No valid VHDX header found");
        static const char kZeroGuid[16] = {};
        if (std::memcmp(hdr->data() + 48, kZeroGuid, 16) != 0)
            return fail(ErrorCode::Unsupported,
                        "VHDX image file '{}' opened read-only, but contains a log that needs to be replayed\n"
                        "To replay the log, run:\nqemu-img check -r all '{}'",
                        filename_, filename_);
        if (le16(hdr->data() + 66) != 1) return fail(ErrorCode::Unsupported, "Unsupported VHDX version {}", le16(hdr->data() + 66));
        // Region table (192 KiB; its copy at 256 KiB when damaged).
        std::string rt(size_t{64} * 1024, '\0');
        bool rt_ok = false;
        for (uint64_t at : {192 * 1024ULL, 256 * 1024ULL}) {
            VIREO_TRY(file_.read(rt.data(), rt.size(), at));
            if (std::memcmp(rt.data(), "regi", 4) == 0 && checksum_ok(rt, 4)) {
                rt_ok = true;
                break;
            }
        }
        if (!rt_ok) return fail(ErrorCode::Corrupt, "No valid VHDX region table found");
        uint32_t count = le32(rt.data() + 8);
        if (count > 2047) return fail(ErrorCode::Corrupt, "Invalid VHDX region table entry count");
        uint64_t bat_off = 0, bat_len = 0, meta_off = 0, meta_len = 0;
        for (uint32_t i = 0; i < count; ++i) {
            const char* e = rt.data() + 16 + size_t{32} * i;
            if (same(e, kBatRegion)) {
                bat_off = le64(e + 16);
                bat_len = le32(e + 24);
            } else if (same(e, kMetadataRegion)) {
                meta_off = le64(e + 16);
                meta_len = le32(e + 24);
            } else if (le32(e + 28) & 1) {
                return fail(ErrorCode::Unsupported, "Unknown required VHDX region");
            }
        }
        if (!bat_len || !meta_len || bat_off + bat_len > file_len_ || meta_off + meta_len > file_len_)
            return fail(ErrorCode::Corrupt, "Invalid VHDX region table");
        VIREO_TRY(load_metadata(meta_off, meta_len));
        // BAT: one entry per payload block, plus a sector bitmap entry
        // after every chunk of blocks.
        chunk_ratio_ = (8ULL << 20) * logical_sector_ / block_size_;
        uint64_t blocks = (size_ + block_size_ - 1) / block_size_;
        uint64_t entries = blocks + (blocks > 0 ? (blocks - 1) / chunk_ratio_ : 0);
        if (entries * 8 > bat_len) return fail(ErrorCode::Corrupt, "VHDX BAT region too small");
        std::string raw(entries * 8, '\0');
        VIREO_TRY(file_.read(raw.data(), raw.size(), bat_off));
        bat_.resize(entries);
        for (uint64_t i = 0; i < entries; ++i) bat_[i] = le64(raw.data() + 8 * i);
        return {};
    }

    Status load_metadata(uint64_t off, uint64_t len) {
        std::string m(std::min<uint64_t>(len, 1ULL << 20), '\0');
        VIREO_TRY(file_.read(m.data(), m.size(), off));
        if (m.compare(0, 8, "metadata") != 0) return fail(ErrorCode::Corrupt, "Invalid VHDX metadata table");
        uint16_t count = le16(m.data() + 10);
        bool have_size = false, have_params = false;
        for (uint16_t i = 0; i < count && 32 + 32 * (uint64_t{i} + 1) <= m.size(); ++i) {
            const char* e = m.data() + 32 + size_t{32} * static_cast<size_t>(i);
            uint32_t at = le32(e + 16), n = le32(e + 20);
            if (uint64_t{at} + n > m.size()) return fail(ErrorCode::Corrupt, "Invalid VHDX metadata entry");
            const char* v = m.data() + at;
            if (same(e, kFileParameters) && n >= 8) {
                block_size_ = le32(v);
                if (le32(v + 4) & 2) return fail(ErrorCode::Unsupported, "VHDX differencing images are not supported");
                have_params = true;
            } else if (same(e, kVirtualDiskSize) && n >= 8) {
                size_ = le64(v);
                have_size = true;
            } else if (same(e, kLogicalSectorSize) && n >= 4) {
                logical_sector_ = le32(v);
            }
        }
        if (!have_size || !have_params) return fail(ErrorCode::Corrupt, "VHDX metadata lacks the disk size or file parameters");
        if (block_size_ < kMiB || block_size_ > 256 * kMiB || (block_size_ & (block_size_ - 1)))
            return fail(ErrorCode::Corrupt, "Invalid VHDX block size {}", block_size_);
        if (logical_sector_ != 512 && logical_sector_ != 4096)
            return fail(ErrorCode::Corrupt, "Invalid VHDX logical sector size {}", logical_sector_);
        if (size_ > (64ULL << 40)) return fail(ErrorCode::Corrupt, "VHDX virtual disk size too large");
        return {};
    }

    uint64_t file_len_ = 0;
    uint32_t logical_sector_ = 512;
    uint64_t chunk_ratio_ = 1;
    std::vector<uint64_t> bat_;
};

}  // namespace

Result<ImagePtr> open_vhdx(const std::filesystem::path& path, const OpenOptions& opts) {
    return VhdxImage::open(path, opts);
}

}  // namespace vireo::storage
