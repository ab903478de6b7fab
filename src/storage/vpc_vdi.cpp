// vpc (Microsoft's VHD: fixed and dynamic) and vdi (VirtualBox), read for
// conversion. Sizes and layouts follow the public specifications; where
// QEMU makes a choice (the size of a VHD), it is QEMU's.
#include <algorithm>
#include <cstring>

#include "storage/endian.hpp"
#include "storage/formats.hpp"
#include "storage/readonly_image.hpp"

namespace vireo::storage {

namespace {

constexpr uint64_t kSector = 512;

// ---------------------------------------------------------------- vpc

// The VHD footer (512 bytes, big-endian): a copy at offset 0 in dynamic
// disks, the only one at the end in fixed disks.
class VpcImage final : public BlockMappedImage {
public:
    static Result<ImagePtr> open(const std::filesystem::path& path, const OpenOptions& opts) {
        auto img = std::unique_ptr<VpcImage>(new VpcImage());
        VIREO_TRY(img->open_file(path, opts));
        VIREO_TRY(img->load());
        return ImagePtr(std::move(img));
    }
    ImageFormat format() const override { return ImageFormat::Vpc; }
    uint32_t cluster_size() const override { return block_size_ ? block_size_ : 65536; }

    Status read(uint64_t off, void* vbuf, size_t len) override {
        if (!fixed_) return BlockMappedImage::read(off, vbuf, len);
        VIREO_TRY(check_range(off, len));
        return file_.read(static_cast<char*>(vbuf), len, off);
    }

    Result<Extent> block_status(uint64_t off, uint64_t len) override {
        if (!fixed_) return BlockMappedImage::block_status(off, len);
        VIREO_TRY(check_range(off, len));
        Extent e;
        e.start = off;
        auto run = file_.data_run(off, off + len);
        if (!run) return std::unexpected(run.error());
        e.kind = ExtentKind::Data;
        e.host_offset = off;
        e.host_zero = !run->first;
        e.length = run->second - off;
        return e;
    }

    Result<ImageInfo> info() override {
        ImageInfo i = base_info();
        if (!fixed_) i.cluster_size = block_size_;
        return i;
    }

private:
    Result<std::optional<uint64_t>> block_host(uint64_t o) const override {
        const uint32_t b = bat_[o / block_size_];
        if (b == 0xffffffff) return std::optional<uint64_t>{};
        return std::optional<uint64_t>{uint64_t{b} * kSector + bitmap_bytes_ + o % block_size_};
    }

    Status load() {
        auto flen = file_.length();
        if (!flen) return std::unexpected(flen.error());
        char f[kSector] = {};
        if (*flen >= kSector) VIREO_TRY(file_.read(f, kSector, 0));
        if (std::memcmp(f, "conectix", 8) != 0) {
            if (*flen < kSector) return fail(ErrorCode::Corrupt, "invalid VPC image");
            VIREO_TRY(file_.read(f, kSector, *flen - kSector));
            if (std::memcmp(f, "conectix", 8) != 0) return fail(ErrorCode::Corrupt, "invalid VPC image");
        }
        const uint32_t type = load_be32(f + 60);
        const uint64_t current = load_be64(f + 48);
        const uint64_t chs = uint64_t{load_be16(f + 56)} * static_cast<uint8_t>(f[58]) * static_cast<uint8_t>(f[59]);
        // Virtual PC and QEMU's older "qemu" creator size a disk by its
        // geometry; Hyper-V, disk2vhd, XenServer and QEMU's "qem2" by the
        // footer's current size, and so does a disk at the largest geometry.
        const bool by_size = std::memcmp(f + 28, "win ", 4) == 0 || std::memcmp(f + 28, "qem2", 4) == 0 ||
                             std::memcmp(f + 28, "d2v ", 4) == 0 || std::memcmp(f + 28, "CTXS", 4) == 0 ||
                             std::memcmp(f + 28, "tap\0", 4) == 0;
        size_ = by_size || chs == 65535ULL * 16 * 255 ? current / kSector * kSector : chs * kSector;
        if (type == 2) {
            fixed_ = true;
            if (size_ > *flen - kSector) size_ = (*flen - kSector) / kSector * kSector;
            return {};
        }
        if (type != 3) return fail(ErrorCode::Unsupported, "Unsupported VHD disk type {}", type);
        char d[1024];
        const uint64_t dyn = load_be64(f + 16);
        if (dyn > *flen || *flen - dyn < sizeof d) return fail(ErrorCode::Corrupt, "invalid VPC dynamic header offset");
        VIREO_TRY(file_.read(d, sizeof d, dyn));
        if (std::memcmp(d, "cxsparse", 8) != 0) return fail(ErrorCode::Corrupt, "invalid VPC dynamic header");
        block_size_ = load_be32(d + 32);
        if (block_size_ < kSector || (block_size_ & (block_size_ - 1)) || block_size_ > (256U << 20))
            return fail(ErrorCode::Corrupt, "Invalid block size {}", block_size_);
        const uint32_t entries = load_be32(d + 28);
        const uint64_t table = load_be64(d + 16);
        if (uint64_t{entries} * block_size_ < size_)
            return fail(ErrorCode::Corrupt, "Disk size is larger than the block allocation table covers");
        if (uint64_t{entries} * 4 > (256ULL << 20) || table + uint64_t{entries} * 4 > *flen)
            return fail(ErrorCode::Corrupt, "Invalid block allocation table");
        std::string raw(uint64_t{entries} * 4, '\0');
        VIREO_TRY(file_.read(raw.data(), raw.size(), table));
        bat_.resize(entries);
        for (uint32_t i = 0; i < entries; ++i) bat_[i] = load_be32(raw.data() + size_t{4} * i);
        bitmap_bytes_ = (block_size_ / kSector / 8 + kSector - 1) / kSector * kSector;
        return {};
    }

    bool fixed_ = false;
    uint64_t bitmap_bytes_ = 0;
    std::vector<uint32_t> bat_;
};

// ---------------------------------------------------------------- vdi

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

constexpr uint32_t kVdiSignature = 0xbeda107f;
constexpr uint32_t kVdiUnallocated = 0xffffffff;
constexpr uint32_t kVdiDiscarded = 0xfffffffe;

class VdiImage final : public BlockMappedImage {
public:
    static Result<ImagePtr> open(const std::filesystem::path& path, const OpenOptions& opts) {
        auto img = std::unique_ptr<VdiImage>(new VdiImage());
        VIREO_TRY(img->open_file(path, opts));
        VIREO_TRY(img->load());
        return ImagePtr(std::move(img));
    }
    ImageFormat format() const override { return ImageFormat::Vdi; }
    uint32_t cluster_size() const override { return block_size_; }

    Result<ImageInfo> info() override {
        ImageInfo i = base_info();
        i.cluster_size = block_size_;
        return i;
    }

private:
    VdiImage() { block_size_ = 1U << 20; }

    Result<std::optional<uint64_t>> block_host(uint64_t o) const override {
        const uint32_t b = bmap_[o / block_size_];
        if (b == kVdiUnallocated || b == kVdiDiscarded) return std::optional<uint64_t>{};
        return std::optional<uint64_t>{data_offset_ + uint64_t{b} * block_size_ + o % block_size_};
    }

    Status load() {
        char h[512] = {};
        auto flen = file_.length();
        if (!flen) return std::unexpected(flen.error());
        if (*flen < sizeof h) return fail(ErrorCode::Corrupt, "Image not in VDI format (bad signature 0)");
        VIREO_TRY(file_.read(h, sizeof h, 0));
        if (le32(h + 0x40) != kVdiSignature)
            return fail(ErrorCode::Corrupt, "Image not in VDI format (bad signature {:08x})", le32(h + 0x40));
        if (le32(h + 0x44) != 0x00010001)
            return fail(ErrorCode::Unsupported, "unsupported VDI image (version {}.{})", le32(h + 0x44) >> 16,
                        le32(h + 0x44) & 0xffff);
        const uint32_t type = le32(h + 0x4c);
        if (type != 1 && type != 2) return fail(ErrorCode::Unsupported, "unsupported VDI image type {}", type);
        const uint32_t bmap = le32(h + 0x154);
        data_offset_ = le32(h + 0x158);
        if (le32(h + 0x168) != 512)
            return fail(ErrorCode::Unsupported, "unsupported VDI image (sector size {} is not 512)", le32(h + 0x168));
        size_ = le64(h + 0x170);
        block_size_ = le32(h + 0x178);
        if (block_size_ != (1U << 20))
            return fail(ErrorCode::Unsupported, "unsupported VDI image (block size {} is not 1 MiB)", block_size_);
        if (le32(h + 0x17c) != 0)
            return fail(ErrorCode::Unsupported, "unsupported VDI image (block extra data {})", le32(h + 0x17c));
        const uint32_t blocks = le32(h + 0x180);
        if (size_ > uint64_t{blocks} * block_size_)
            return fail(ErrorCode::Corrupt, "unsupported VDI image (disk size {}, image bitmap has room for {})", size_,
                        uint64_t{blocks} * block_size_);
        if (uint64_t{blocks} * 4 > (256ULL << 20) || bmap + uint64_t{blocks} * 4 > *flen)
            return fail(ErrorCode::Corrupt, "Invalid VDI block map");
        std::string raw(uint64_t{blocks} * 4, '\0');
        VIREO_TRY(file_.read(raw.data(), raw.size(), bmap));
        bmap_.resize(blocks);
        for (uint32_t i = 0; i < blocks; ++i) {
            bmap_[i] = le32(raw.data() + size_t{4} * i);
            if (bmap_[i] != kVdiUnallocated && bmap_[i] != kVdiDiscarded && bmap_[i] >= blocks)
                return fail(ErrorCode::Corrupt, "VDI block map entry {} out of range", i);
        }
        return {};
    }

    uint64_t data_offset_ = 0;
    std::vector<uint32_t> bmap_;
};

}  // namespace

Result<ImagePtr> open_vpc(const std::filesystem::path& path, const OpenOptions& opts) { return VpcImage::open(path, opts); }
Result<ImagePtr> open_vdi(const std::filesystem::path& path, const OpenOptions& opts) { return VdiImage::open(path, opts); }

}  // namespace vireo::storage
