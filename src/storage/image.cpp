#include "storage/image.hpp"

#include <cmath>

#include <fmt/printf.h>

#include "storage/endian.hpp"
#include "storage/location.hpp"
#include "storage/nbd.hpp"
#include "storage/formats.hpp"
#include "storage/luks_image.hpp"
#include "storage/qcow2.hpp"
#include "storage/raw.hpp"

namespace vireo::storage {

namespace {
constexpr std::pair<ImageFormat, std::string_view> kFormatNames[] = {
    {ImageFormat::Raw, "raw"},   {ImageFormat::Qcow2, "qcow2"}, {ImageFormat::Luks, "luks"}, {ImageFormat::Vmdk, "vmdk"},
    {ImageFormat::Vpc, "vpc"},   {ImageFormat::Vhdx, "vhdx"},   {ImageFormat::Vdi, "vdi"},
};
}  // namespace

std::string_view format_name(ImageFormat f) {
    for (const auto& [fmt, name] : kFormatNames)
        if (fmt == f) return name;
    return "raw";
}

Result<ImageFormat> parse_format(std::string_view name) {
    for (const auto& [fmt, n] : kFormatNames)
        if (n == name) return fmt;
    return fail(ErrorCode::Unsupported, "Unknown file format '{}'", name);
}

bool is_qemu_driver_name(std::string_view name) {
    // QEMU 7.2's BlockdevDriver names.
    static constexpr std::string_view kDrivers[] = {
        "blkdebug", "blklogwrites", "blkreplay", "blkverify", "bochs", "cloop", "compress", "copy-before-write",
        "copy-on-read", "dmg", "file", "snapshot-access", "ftp", "ftps", "gluster", "host_cdrom", "host_device",
        "http", "https", "io_uring", "iscsi", "luks", "nbd", "nfs", "null-aio", "null-co", "nvme", "nvme-io_uring",
        "parallels", "preallocate", "qcow", "qcow2", "qed", "quorum", "raw", "rbd", "replication", "ssh",
        "throttle", "vdi", "vhdx", "virtio-blk-vfio-pci", "virtio-blk-vhost-user", "virtio-blk-vhost-vdpa", "vmdk",
        "vpc", "vvfat"};
    for (auto d : kDrivers)
        if (d == name) return true;
    return false;
}

Result<ImageFormat> parse_driver(std::string_view name) {
    auto f = parse_format(name);
    if (!f) return fail(ErrorCode::Unsupported, "Unknown driver '{}'", name);
    return f;
}

Result<Preallocation> parse_preallocation(std::string_view name) {
    if (name == "off") return Preallocation::Off;
    if (name == "metadata") return Preallocation::Metadata;
    if (name == "falloc") return Preallocation::Falloc;
    if (name == "full") return Preallocation::Full;
    return fail(ErrorCode::InvalidArg, "Parameter 'preallocation' does not accept value '{}'", name);
}

std::string_view preallocation_name(Preallocation p) {
    switch (p) {
        case Preallocation::Off: return "off";
        case Preallocation::Metadata: return "metadata";
        case Preallocation::Falloc: return "falloc";
        case Preallocation::Full: return "full";
    }
    return "off";
}

Result<size_t> Image::compress_cluster_into(const void* buf, size_t len, char* out, size_t out_cap) const {
    auto v = compress_cluster(buf, len);
    if (!v) return std::unexpected(v.error());
    if (v->size() > out_cap) return size_t{0};
    std::copy(v->begin(), v->end(), out);
    return v->size();
}

Status Image::write_compressed_batch(const std::vector<PackedCluster>& clusters) {
    for (const auto& c : clusters) {
        if (c.packed_len == 0) {
            VIREO_TRY(write(c.off, c.raw, c.raw_len));
            continue;
        }
        VIREO_TRY(write_precompressed(c.off, std::vector<char>(c.packed, c.packed + c.packed_len), c.raw, c.raw_len));
    }
    return {};
}

Status Image::write_compressed(uint64_t, const void*, size_t) {
    return fail(ErrorCode::Unsupported, "Compression is not supported for this image format");
}

Result<std::vector<char>> Image::compress_cluster(const void*, size_t) const {
    return fail(ErrorCode::Unsupported, "Compression is not supported for this image format");
}

Status Image::write_precompressed(uint64_t, const std::vector<char>&, const void*, size_t) {
    return fail(ErrorCode::Unsupported, "Compression is not supported for this image format");
}

Result<ImageFormat> probe_format(const std::filesystem::path& path) {
    auto f = FileIo::open(path, false);
    if (!f) return std::unexpected(f.error());
    auto len = f->length();
    if (!len) return std::unexpected(len.error());
    std::string head(static_cast<size_t>(std::min<uint64_t>(*len, 2048)), '\0');
    VIREO_TRY(f->read(head.data(), head.size(), 0));
    if (head.size() >= 4 && load_be32(head.data()) == qcow2::kMagic) return ImageFormat::Qcow2;
    if (head.size() >= 8 && head.compare(0, 6, "LUKS\xba\xbe") == 0 && load_be16(head.data() + 6) == 1)
        return ImageFormat::Luks;
    if (auto other = probe_other_format(head)) return *other;
    return ImageFormat::Raw;
}

namespace {

Result<ImagePtr> open_unlocked(const std::filesystem::path& path, const OpenOptions& opts) {
    ImageFormat fmt;
    if (opts.format) {
        fmt = *opts.format;
    } else {
        auto p = probe_format(path);
        if (!p) return std::unexpected(p.error());
        fmt = *p;
    }
    switch (fmt) {
        case ImageFormat::Raw: return RawImage::open(path, opts);
        case ImageFormat::Qcow2: return Qcow2Image::open(path, opts);
        case ImageFormat::Luks: return LuksImage::open(path, opts);
        default: return open_other_format(fmt, path, opts);
    }
}

}  // namespace

Result<ImagePtr> open_image(const std::filesystem::path& path, const OpenOptions& opts) {
    if (opts.force_share && opts.writable)
        return fail(ErrorCode::InvalidArg, "force-share=on can only be used with read-only images");
    // json:, file: and nbd names: the location they give (an NBD export
    // has no file to lock).
    if (is_location_name(path.native())) {
        auto loc = parse_location(path.native());
        if (!loc) return std::unexpected(loc.error());
        if (loc->read_only && opts.writable) return fail(ErrorCode::PermissionDenied, "Block node is read-only");
        OpenOptions o = opts;
        if (loc->format) o.format = loc->format;
        if (loc->nbd) {
            if (o.format && *o.format != ImageFormat::Raw)
                return fail(ErrorCode::Unsupported, "the {} format over the nbd protocol is not supported by vireo",
                            format_name(*o.format));
            return NbdImage::open(*loc->nbd, o, loc->label.empty() ? "raw" : loc->label);
        }
        return open_image(*loc->path, o);
    }
    // Locked before anything is read or written, as QEMU does at open.
    ImageLock lock;
    if (opts.locking) {
        auto l = ImageLock::acquire(
            path, opts.lock_perms.value_or(default_lock_perms(opts.writable, opts.force_share, opts.no_io)));
        if (!l) return std::unexpected(l.error());
        lock = std::move(*l);
    }
    auto img = open_unlocked(path, opts);
    if (!img) return img;
    (*img)->attach_lock(std::move(lock));
    return img;
}

Status create_image(const std::filesystem::path& path, const CreateOptions& opts) {
    // Protocol names: a file: name is its path; an NBD export exists
    // already and is only checked (QEMU's "simple" creation); json: names
    // cannot be created.
    const std::string& name = path.native();
    if (name.starts_with("json:")) return fail(ErrorCode::Unsupported, "Unknown protocol 'json'");
    if (name.starts_with("file:")) return create_image(name.substr(5), opts);
    if (is_nbd_name(name)) {
        if (opts.format != ImageFormat::Raw)
            return fail(ErrorCode::Unsupported, "the {} format over the nbd protocol is not supported by vireo",
                        format_name(opts.format));
        auto a = parse_nbd_uri(name);
        if (!a) return std::unexpected(a.error());
        auto img = NbdImage::open(*a, OpenOptions{.writable = true});
        if (!img) return std::unexpected(img.error());
        if ((*img)->size() < opts.size)
            return fail(ErrorCode::InvalidArg, "Image size must be less than or equal to the size of the export ({} bytes)",
                        (*img)->size());
        return (*img)->close();
    }
    // qemu-img's create takes write and resize on the file (and shares all
    // but resize); a qcow2 target is then opened as a writer.
    LockPerms perms{kPermWrite | kPermResize, kPermAll & ~kPermResize};
    if (opts.format != ImageFormat::Raw) perms = default_lock_perms(true, false);
    // A file that is not there yet has no users to respect.
    ImageLock lock;
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
        auto l = ImageLock::acquire(path, perms);
        if (!l) return std::unexpected(l.error());
        lock = std::move(*l);
    }
    if (opts.extent_size_hint && *opts.extent_size_hint > UINT32_MAX)
        return fail(ErrorCode::InvalidArg, "Extent size hint is too large");
    if (opts.format == ImageFormat::Raw) {
        if (!opts.backing_file.empty())
            return fail(ErrorCode::InvalidArg, "Backing file not supported for file format 'raw'");
        return RawImage::create(path, opts);
    }
    if (opts.format != ImageFormat::Qcow2 && !opts.backing_file.empty() && opts.format != ImageFormat::Vmdk)
        return fail(ErrorCode::InvalidArg, "Backing file not supported for file format '{}'", format_name(opts.format));
    switch (opts.format) {
        case ImageFormat::Qcow2: return Qcow2Image::create(path, opts);
        case ImageFormat::Luks: return LuksImage::create(path, opts);
        default: return create_other_format(path, opts);
    }
}

std::filesystem::path resolve_backing_path(const std::filesystem::path& overlay, const std::string& backing) {
    // Protocol and json: names are not relative to anything.
    if (is_location_name(backing)) return backing;
    std::filesystem::path b(backing);
    if (b.is_absolute()) return b;
    auto dir = overlay.parent_path();
    if (dir.empty()) return b;
    return dir / b;
}

std::string human_size(uint64_t bytes) {
    static const char* const kSuffixes[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    // Same rule as qemu: switch to the next unit once the value reaches 1000
    // of the current one; three significant digits.
    int exp = 0;
    std::frexp(static_cast<double>(bytes) / (1000.0 / 1024.0), &exp);
    int i = (exp - 1) / 10;
    if (i < 0) i = 0;
    if (i > 6) i = 6;
    uint64_t div = 1ULL << (i * 10);
    return fmt::format("{} {}", fmt::sprintf("%0.3g", static_cast<double>(bytes) / static_cast<double>(div)),
                       kSuffixes[i]);
}

}  // namespace vireo::storage
