#include "storage/formats.hpp"

namespace vireo::storage {

std::optional<ImageFormat> probe_other_format(const std::string&) { return std::nullopt; }

Result<ImagePtr> open_other_format(ImageFormat fmt, const std::filesystem::path&, const OpenOptions&) {
    return fail(ErrorCode::Unsupported, "Image format '{}' is not supported yet", format_name(fmt));
}

Status create_other_format(const std::filesystem::path&, const CreateOptions& opts) {
    return fail(ErrorCode::Unsupported, "Format driver '{}' does not support image creation", format_name(opts.format));
}

}  // namespace vireo::storage
