#include "storage/raw.hpp"

#include <vector>

namespace vireo::storage {

Result<ImagePtr> RawImage::open(const std::filesystem::path& path, const OpenOptions& opts) {
    auto img = std::make_unique<RawImage>();
    auto f = FileIo::open(path, opts.writable, opts.cache);
    if (!f) return std::unexpected(f.error());
    img->file_ = std::move(*f);
    img->filename_ = path.string();
    auto len = img->file_.length();
    if (!len) return std::unexpected(len.error());
    img->size_ = opts.whole_sectors ? (*len + 511) / 512 * 512 : *len;
    return ImagePtr(std::move(img));
}

Status RawImage::create(const std::filesystem::path& path, const CreateOptions& opts) {
    auto f = FileIo::create(path);
    if (!f) return std::unexpected(f.error());
    f->apply_create_hints(opts.extent_size_hint, opts.nocow.value_or(false), opts.warn);
    // The file exists by now, as QEMU's does when it refuses this.
    if (opts.prealloc == Preallocation::Metadata) return fail(ErrorCode::InvalidArg, "Unsupported preallocation mode: metadata");
    VIREO_TRY(f->truncate(opts.size));
    if (opts.prealloc == Preallocation::Falloc || opts.prealloc == Preallocation::Full)
        VIREO_TRY(f->preallocate(0, opts.size, opts.prealloc == Preallocation::Full));
    return {};
}

Status RawImage::check_range(uint64_t off, uint64_t len) const {
    if (off > size_ || len > size_ - off)
        return fail(ErrorCode::InvalidArg, "request [{}, +{}) is outside the image (size {})", off, len, size_);
    return {};
}

Status RawImage::read(uint64_t off, void* buf, size_t len) {
    VIREO_TRY(check_range(off, len));
    return file_.read(buf, len, off);
}

Status RawImage::write(uint64_t off, const void* buf, size_t len) {
    VIREO_TRY(check_range(off, len));
    return file_.write(buf, len, off);
}

Status RawImage::write_zeroes(uint64_t off, uint64_t len, bool unmap) {
    VIREO_TRY(check_range(off, len));
    if (unmap) return file_.punch_hole(off, len);
    std::vector<char> zero(std::min<uint64_t>(len, 1 << 20), 0);
    for (uint64_t done = 0; done < len;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(zero.size(), len - done));
        VIREO_TRY(file_.write(zero.data(), n, off + done));
        done += n;
    }
    return {};
}

Status RawImage::discard(uint64_t off, uint64_t len) {
    VIREO_TRY(check_range(off, len));
    return file_.punch_hole(off, len);
}

Status RawImage::resize(uint64_t new_size, bool shrink, Preallocation prealloc) {
    if (new_size < size_ && !shrink)
        return fail(ErrorCode::InvalidArg,
                    "Use the --shrink option to perform a shrink operation.");
    VIREO_TRY(file_.truncate(new_size));
    if (new_size > size_ && (prealloc == Preallocation::Falloc || prealloc == Preallocation::Full))
        VIREO_TRY(file_.preallocate(size_, new_size - size_, prealloc == Preallocation::Full));
    size_ = new_size;
    return {};
}

Result<Extent> RawImage::block_status(uint64_t off, uint64_t len) {
    VIREO_TRY(check_range(off, len));
    auto run = file_.data_run(off, off + len);
    if (!run) return std::unexpected(run.error());
    Extent e;
    e.start = off;
    e.length = run->second - off;
    e.kind = ExtentKind::Data;
    e.host_offset = off;
    e.host_zero = !run->first;
    e.in_place = file_.writable();
    return e;
}

Result<ImageInfo> RawImage::info() {
    ImageInfo i;
    i.filename = filename_;
    i.format = ImageFormat::Raw;
    i.virtual_size = size_;
    auto a = file_.allocated_bytes();
    if (a) i.actual_size = *a;
    return i;
}

}  // namespace vireo::storage
