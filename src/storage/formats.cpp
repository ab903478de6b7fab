#include "storage/formats.hpp"

#include <cstring>

#include "storage/vmdk.hpp"

namespace vireo::storage {

std::optional<ImageFormat> probe_other_format(const std::string& head) {
    auto starts = [&](const char* magic, size_t at = 0) {
        size_t n = std::strlen(magic);
        return head.size() >= at + n && head.compare(at, n, magic) == 0;
    };
    if (starts("KDMV") || starts("COWD") || head.find("# Disk DescriptorFile") != std::string::npos)
        return ImageFormat::Vmdk;
    // A dynamic VHD starts with a copy of its footer; a fixed one has it
    // only at the end and is probed as raw (as QEMU does).
    if (starts("conectix")) return ImageFormat::Vpc;
    if (starts("vhdxfile")) return ImageFormat::Vhdx;
    if (starts("\x7f\x10\xda\xbe", 64)) return ImageFormat::Vdi;
    return std::nullopt;
}

Result<ImagePtr> open_other_format(ImageFormat fmt, const std::filesystem::path& path, const OpenOptions& opts) {
    switch (fmt) {
        case ImageFormat::Vmdk: return VmdkImage::open(path, opts);
        case ImageFormat::Vpc: return open_vpc(path, opts);
        case ImageFormat::Vhdx: return open_vhdx(path, opts);
        case ImageFormat::Vdi: return open_vdi(path, opts);
        default: break;
    }
    return fail(ErrorCode::Unsupported, "Image format '{}' is not supported yet", format_name(fmt));
}

Status create_other_format(const std::filesystem::path& path, const CreateOptions& opts) {
    if (opts.format == ImageFormat::Vmdk) return VmdkImage::create(path, opts);
    return fail(ErrorCode::Unsupported, "vireo reads {} images for conversion only: they cannot be created",
                format_name(opts.format));
}

}  // namespace vireo::storage
