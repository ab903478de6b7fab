#include "storage/amend.hpp"

#include <cstdlib>
#include <optional>

#include <fmt/format.h>

#include "storage/luks_image.hpp"
#include "storage/options.hpp"
#include "storage/qcow2.hpp"

namespace vireo::storage {

namespace {
// A key slot change (amend of LUKS options).
struct KeyAmend {
    std::optional<std::string> state;  // "active" / "inactive"
    std::optional<std::string> new_secret, old_secret;
    std::optional<int> keyslot;
    uint64_t iter_time = 2000;
    bool any = false;
};

// Take the LUKS amend options (`prefix` "" for luks, "encrypt." for
// qcow2) out of `o`.
Result<KeyAmend> take_key_options(std::map<std::string, std::string>& o, const std::string& prefix,
                                  const Secrets& secrets) {
    KeyAmend k;
    for (auto it = o.begin(); it != o.end();) {
        if (!it->first.starts_with(prefix)) {
            ++it;
            continue;
        }
        std::string name = it->first.substr(prefix.size());
        const std::string& v = it->second;
        if (name == "state") {
            if (v != "active" && v != "inactive")
                return fail(ErrorCode::InvalidArg, "Parameter '{}state' does not accept value '{}'", prefix, v);
            k.state = v;
        } else if (name == "new-secret" || name == "old-secret") {
            auto s = lookup_secret(secrets, v);
            if (!s) return std::unexpected(s.error());
            (name == "new-secret" ? k.new_secret : k.old_secret) = *s;
        } else if (name == "keyslot" || name == "iter-time") {
            char* end = nullptr;
            long long n = std::strtoll(v.c_str(), &end, 10);
            if (v.empty() || *end) return fail(ErrorCode::InvalidArg, "Parameter '{}{}' expects a number", prefix, name);
            if (name == "keyslot") k.keyslot = static_cast<int>(n);
            else k.iter_time = static_cast<uint64_t>(n);
        } else {
            ++it;
            continue;
        }
        k.any = true;
        it = o.erase(it);
    }
    if (k.any && !k.state) return fail(ErrorCode::InvalidArg, "Parameter '{}state' is missing", prefix);
    return k;
}

Status apply_key_amend(luks::Volume& v, const luks::HeaderIo& io, const KeyAmend& k, bool force) {
    if (*k.state == "active") {
        if (!k.new_secret) return fail(ErrorCode::InvalidArg, "'new-secret' is required to activate a keyslot");
        return v.add_key(k.keyslot, *k.new_secret, k.iter_time, io);
    }
    return v.erase_keys(k.keyslot, k.old_secret, force, io);
}

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
             const std::map<std::string, std::string>& options, const Secrets& secrets,
             const std::optional<std::string>& key_secret, bool force) {
    OpenOptions oo;
    oo.writable = true;
    oo.key_secret = key_secret;
    if (!format.empty()) {
        auto f = parse_driver(format);
        if (!f) return fail(f.error().code, "Could not open '{}': {}", path.string(), f.error().message);
        oo.format = *f;
    }
    auto img = open_image(path, oo);
    if (!img) return fail(img.error().code, "Could not open '{}': {}", path.string(), img.error().message);
    std::map<std::string, std::string> rest = options;
    if (auto* l = luks_cast(img->get())) {
        auto k = take_key_options(rest, "", secrets);
        if (!k) return std::unexpected(k.error());
        if (!rest.empty()) return fail(ErrorCode::InvalidArg, "Invalid parameter '{}'", rest.begin()->first);
        if (!k->any) return fail(ErrorCode::InvalidArg, "Parameter 'state' is missing");
        return apply_key_amend(*l->volume(), l->header_io(), *k, force);
    }
    auto* q = qcow2_cast(img->get());
    if (!q)
        return fail(ErrorCode::Unsupported, "Format driver '{}' does not support option amendment",
                    format_name((*img)->format()));
    auto k = take_key_options(rest, "encrypt.", secrets);
    if (!k) return std::unexpected(k.error());
    auto req = parse_amend(rest);
    if (!req) return std::unexpected(req.error());
    if (k->any && !q->luks_volume())
        return fail(ErrorCode::Unsupported, "Amending encryption options is only supported for LUKS encryption");
    VIREO_TRY(apply_amend(*q, *req));
    if (k->any) VIREO_TRY(apply_key_amend(*q->luks_volume(), q->luks_header_io(), *k, force));
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
