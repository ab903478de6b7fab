#include "storage/luks_image.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace vireo::storage {

using crypto::kSectorSize;

LuksImage* luks_cast(Image* img) {
    return img && img->format() == ImageFormat::Luks ? static_cast<LuksImage*>(img) : nullptr;
}

namespace {
// Requests are split so a bounce buffer stays small.
constexpr uint64_t kChunk = 1ULL << 20;
}  // namespace

Status encrypted_read(const FileIo& f, const crypto::SectorCipher& c, uint64_t file_off, uint64_t iv_off, char* buf,
                      size_t len) {
    const uint64_t lead = iv_off % kSectorSize;
    if (lead == 0 && len % kSectorSize == 0) {
        // Aligned: decrypt in the caller's buffer.
        VIREO_TRY(f.read(buf, len, file_off));
        return c.decrypt(iv_off / kSectorSize, buf, len);
    }
    std::vector<char> tmp;
    while (len > 0) {
        const uint64_t a_iv = iv_off - iv_off % kSectorSize;
        const uint64_t in = iv_off - a_iv;
        const size_t n = static_cast<size_t>(std::min<uint64_t>(len, kChunk - in));
        const size_t span = static_cast<size_t>((in + n + kSectorSize - 1) / kSectorSize * kSectorSize);
        tmp.resize(span);
        VIREO_TRY(f.read(tmp.data(), span, file_off - in));
        VIREO_TRY(c.decrypt(a_iv / kSectorSize, tmp.data(), span));
        std::memcpy(buf, tmp.data() + in, n);
        buf += n;
        len -= n;
        file_off += n;
        iv_off += n;
    }
    return {};
}

Status encrypted_write(FileIo& f, const crypto::SectorCipher& c, uint64_t file_off, uint64_t iv_off, const char* buf,
                       size_t len) {
    std::vector<char> tmp;
    while (len > 0) {
        const uint64_t a_iv = iv_off - iv_off % kSectorSize;
        const uint64_t in = iv_off - a_iv;
        const size_t n = static_cast<size_t>(std::min<uint64_t>(len, kChunk - in));
        const size_t span = static_cast<size_t>((in + n + kSectorSize - 1) / kSectorSize * kSectorSize);
        tmp.resize(span);
        // Partial first/last sectors keep the bytes around the request.
        if (in) VIREO_TRY(encrypted_read(f, c, file_off - in, a_iv, tmp.data(), kSectorSize));
        if ((in + n) % kSectorSize && (span > kSectorSize || !in))
            VIREO_TRY(encrypted_read(f, c, file_off - in + span - kSectorSize, a_iv + span - kSectorSize,
                                     tmp.data() + span - kSectorSize, kSectorSize));
        std::memcpy(tmp.data() + in, buf, n);
        VIREO_TRY(c.encrypt(a_iv / kSectorSize, tmp.data(), span));
        VIREO_TRY(f.write(tmp.data(), span, file_off - in));
        buf += n;
        len -= n;
        file_off += n;
        iv_off += n;
    }
    return {};
}

luks::HeaderIo LuksImage::header_io() {
    luks::HeaderIo io;
    io.read = [this](uint64_t off, void* buf, size_t len) { return file_.read(buf, len, off); };
    io.write = [this](uint64_t off, const void* buf, size_t len) { return file_.write(buf, len, off); };
    return io;
}

Result<ImagePtr> LuksImage::open(const std::filesystem::path& path, const OpenOptions& opts) {
    auto img = std::unique_ptr<LuksImage>(new LuksImage());
    img->filename_ = path.string();
    auto f = FileIo::open(path, opts.writable, opts.cache);
    if (!f) return std::unexpected(f.error());
    img->file_ = std::move(*f);
    auto io = img->header_io();
    auto h = luks::Volume::read_header(io);
    if (!h) return std::unexpected(h.error());
    img->header_ = *h;
    img->payload_ = uint64_t{h->payload_offset} * kSectorSize;
    auto len = img->file_.length();
    if (!len) return std::unexpected(len.error());
    if (*len < img->payload_)
        return fail(ErrorCode::Corrupt, "LUKS payload is overlapping with the header");
    img->size_ = *len - img->payload_;
    if (!opts.no_io) {
        auto key = luks::need_key(opts.key_secret, "");
        if (!key) return std::unexpected(key.error());
        auto v = luks::Volume::open(io, *key);
        if (!v) return std::unexpected(v.error());
        img->vol_ = std::move(*v);
    }
    return ImagePtr(std::move(img));
}

Status LuksImage::create(const std::filesystem::path& path, const CreateOptions& opts) {
    auto key = luks::need_key(opts.encrypt, "");
    if (!key) return std::unexpected(key.error());
    if (opts.prealloc == Preallocation::Metadata)
        return fail(ErrorCode::InvalidArg, "Parameter 'preallocation' does not accept value 'metadata'");
    auto f = FileIo::create(path);
    if (!f) return std::unexpected(f.error());
    luks::HeaderIo io;
    io.read = [&f](uint64_t off, void* buf, size_t len) { return f->read(buf, len, off); };
    io.write = [&f](uint64_t off, const void* buf, size_t len) { return f->write(buf, len, off); };
    auto v = luks::Volume::create(luks::create_spec(opts.encrypt), *key, io);
    if (!v) return std::unexpected(v.error());
    const uint64_t payload = (*v)->payload_offset();
    VIREO_TRY(f->truncate(payload + opts.size));
    if (opts.prealloc == Preallocation::Falloc || opts.prealloc == Preallocation::Full)
        VIREO_TRY(f->preallocate(payload, opts.size, opts.prealloc == Preallocation::Full));
    return f->flush();
}

Status LuksImage::check_range(uint64_t off, uint64_t len) const {
    if (off > size_ || len > size_ - off)
        return fail(ErrorCode::InvalidArg, "request [{}, +{}) is outside the image (size {})", off, len, size_);
    return {};
}

Status LuksImage::need_volume() const {
    if (!vol_) return fail(ErrorCode::InvalidArg, "Parameter 'key-secret' is required for cipher");
    return {};
}

Status LuksImage::read(uint64_t off, void* buf, size_t len) {
    VIREO_TRY(check_range(off, len));
    VIREO_TRY(need_volume());
    return encrypted_read(file_, vol_->cipher(), payload_ + off, off, static_cast<char*>(buf), len);
}

Status LuksImage::write(uint64_t off, const void* buf, size_t len) {
    if (!file_.writable()) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    VIREO_TRY(check_range(off, len));
    VIREO_TRY(need_volume());
    return encrypted_write(file_, vol_->cipher(), payload_ + off, off, static_cast<const char*>(buf), len);
}

Status LuksImage::write_zeroes(uint64_t off, uint64_t len, bool) {
    // Zeroes are encrypted like any data: a hole would decrypt to noise.
    std::vector<char> zero(static_cast<size_t>(std::min<uint64_t>(len, kChunk)), 0);
    for (uint64_t done = 0; done < len;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(zero.size(), len - done));
        VIREO_TRY(write(off + done, zero.data(), n));
        done += n;
    }
    return {};
}

Status LuksImage::resize(uint64_t new_size, bool shrink, Preallocation prealloc) {
    if (new_size < size_ && !shrink)
        return fail(ErrorCode::InvalidArg, "Use the --shrink option to perform a shrink operation.");
    VIREO_TRY(file_.truncate(payload_ + new_size));
    if (new_size > size_ && (prealloc == Preallocation::Falloc || prealloc == Preallocation::Full))
        VIREO_TRY(file_.preallocate(payload_ + size_, new_size - size_, prealloc == Preallocation::Full));
    size_ = new_size;
    return {};
}

Result<Extent> LuksImage::block_status(uint64_t off, uint64_t len) {
    VIREO_TRY(check_range(off, len));
    // Every byte is data (ciphertext); no host offset is shown for it.
    Extent e;
    e.start = off;
    e.length = len;
    e.kind = ExtentKind::Data;
    return e;
}

Result<ImageInfo> LuksImage::info() {
    ImageInfo i;
    i.filename = filename_;
    i.format = ImageFormat::Luks;
    i.virtual_size = size_;
    auto a = file_.allocated_bytes();
    if (a) i.actual_size = *a;
    i.encrypted = true;
    i.luks = luks::info_of(vol_ ? vol_->header() : header_);
    return i;
}

}  // namespace vireo::storage
