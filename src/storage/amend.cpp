#include "storage/amend.hpp"

#include <cstdlib>
#include <optional>

#include <fmt/format.h>

#include "storage/options.hpp"
#include "storage/qcow2.hpp"

namespace vireo::storage {

namespace {
// What `amend -o` asks for, validated before anything changes.
struct AmendRequest {
    std::optional<int> version;
    std::optional<bool> lazy_refcounts;
    std::optional<int> refcount_bits;
    std::optional<uint64_t> size;
    std::optional<std::string> backing_file, backing_format, data_file;
    std::optional<bool> data_file_raw;
};

// Parse -o values as qemu-img amend does for qcow2.
Result<AmendRequest> parse_amend(const std::map<std::string, std::string>& o) {
    AmendRequest a;
    auto boolean = [](const std::string& k, const std::string& v) -> Result<bool> {
        if (v == "on" || v == "yes" || v == "true") return true;
        if (v == "off" || v == "no" || v == "false") return false;
        return fail(ErrorCode::InvalidArg, "Parameter '{}' expects 'on' or 'off'", k);
    };
    for (const auto& [k, v] : o) {
        if (k == "compat") {
            if (v == "0.10" || v == "v2") a.version = 2;
            else if (v == "1.1" || v == "v3") a.version = 3;
            else return fail(ErrorCode::InvalidArg, "Unknown compatibility level {}", v);
        } else if (k == "lazy_refcounts" || k == "data_file_raw") {
            auto b = boolean(k, v);
            if (!b) return std::unexpected(b.error());
            (k == "lazy_refcounts" ? a.lazy_refcounts : a.data_file_raw) = *b;
        } else if (k == "refcount_bits") {
            char* end = nullptr;
            long bits = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end || bits < 1 || bits > 64 || (bits & (bits - 1)))
                return fail(ErrorCode::InvalidArg, "Refcount width must be a power of two and may not exceed 64 bits");
            a.refcount_bits = static_cast<int>(bits);
        } else if (k == "size") {
            auto sz = parse_size(v);
            if (!sz) return std::unexpected(sz.error());
            a.size = *sz;
        } else if (k == "backing_file") {
            a.backing_file = v;
        } else if (k == "backing_fmt") {
            a.backing_format = v;
        } else if (k == "data_file") {
            a.data_file = v;
        } else {
            std::string msg = fmt::format("Invalid parameter '{}'", k);
            static const char* const kCreateOnly[] = {"cluster_size", "compression_type", "extended_l2", "preallocation",
                                                      "encryption", "encrypt.format"};
            for (const char* c : kCreateOnly)
                if (k == c) msg += "\nThis option is only supported for image creation";
            return std::unexpected(Error{ErrorCode::InvalidArg, msg});
        }
    }
    return a;
}

// Apply a validated request in qemu's order: upgrade, lazy refcounts,
// refcount width, data file, size, downgrade last.
Status apply_amend(Qcow2Image& q, const AmendRequest& a) {
    int target = a.version.value_or(static_cast<int>(q.header().version));
    if (a.lazy_refcounts.value_or(false) && target < 3)
        return fail(ErrorCode::InvalidArg, "Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)");
    if (a.refcount_bits && *a.refcount_bits != 16 && target < 3)
        return fail(ErrorCode::InvalidArg, "Refcount widths other than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)");
    if (a.backing_file || a.backing_format) {
        // qemu-img 7.2 only accepts the values already recorded.
        auto differs = [](const std::optional<std::string>& want, const std::string& have) {
            return !want ? !have.empty() : *want != have;
        };
        if (differs(a.backing_file, q.backing_file_name()) || differs(a.backing_format, q.backing_format_name()))
            return fail(ErrorCode::Unsupported, "Cannot amend the backing file\nYou can use 'qemu-img rebase' instead.");
    }
    if (a.data_file_raw.value_or(false) && !(q.header().autoclear & qcow2::kAutoclearDataFileRaw))
        return fail(ErrorCode::InvalidArg, "data-file-raw cannot be set on existing images");
    if (a.data_file && !q.has_data_file())
        return fail(ErrorCode::InvalidArg, "data-file can only be set for images that use an external data file");
    if (target == 3 && q.header().version < 3) VIREO_TRY(q.amend(3, std::nullopt));
    if (a.lazy_refcounts) VIREO_TRY(q.amend(std::nullopt, a.lazy_refcounts));
    if (a.refcount_bits) VIREO_TRY(q.change_refcount_bits(*a.refcount_bits));
    if (a.data_file) VIREO_TRY(q.set_data_file_name(*a.data_file));
    if (a.data_file_raw && !*a.data_file_raw) VIREO_TRY(q.clear_data_file_raw());
    // qemu-img rewrites the header here whatever changed, in its own layout.
    VIREO_TRY(q.rewrite_header());
    if (a.size && *a.size != q.size()) VIREO_TRY(q.resize(*a.size, true, Preallocation::Off));
    if (target == 2 && q.header().version > 2) VIREO_TRY(q.amend(2, std::nullopt));
    return {};
}
}  // namespace

Status amend(const std::filesystem::path& path, const std::string& format,
             const std::map<std::string, std::string>& options) {
    OpenOptions oo;
    oo.writable = true;
    if (!format.empty()) {
        auto f = parse_driver(format);
        if (!f) return fail(f.error().code, "Could not open '{}': {}", path.string(), f.error().message);
        oo.format = *f;
    }
    auto img = open_image(path, oo);
    if (!img) return fail(img.error().code, "Could not open '{}': {}", path.string(), img.error().message);
    auto* q = qcow2_cast(img->get());
    if (!q)
        return fail(ErrorCode::Unsupported, "Format driver '{}' does not support option amendment",
                    format_name((*img)->format()));
    auto req = parse_amend(options);
    if (!req) return std::unexpected(req.error());
    VIREO_TRY(apply_amend(*q, *req));
    return q->close();
}

Status resize(const ResizeOptions& o) {
    OpenOptions oo;
    oo.writable = true;
    if (!o.format.empty()) {
        auto f = parse_driver(o.format);
        if (!f) return fail(f.error().code, "Could not open '{}': {}", o.path.string(), f.error().message);
        oo.format = *f;
    }
    auto img = open_image(o.path, oo);
    if (!img) return fail(img.error().code, "Could not open '{}': {}", o.path.string(), img.error().message);
    const uint64_t cur = (*img)->size();
    if (o.sign < 0 && o.size > cur) return fail(ErrorCode::InvalidArg, "New image size must be positive");
    const uint64_t target = o.sign > 0 ? cur + o.size : o.sign < 0 ? cur - o.size : o.size;
    if (target < cur && o.prealloc != Preallocation::Off)
        return fail(ErrorCode::InvalidArg, "Preallocation can only be used for growing images");
    VIREO_TRY((*img)->resize(target, o.shrink, o.prealloc));
    return (*img)->close();
}

}  // namespace vireo::storage
