#include "storage/options.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <cstdlib>

namespace vireo::storage {

Result<uint64_t> parse_size(const std::string& s) {
    if (s.empty()) return fail(ErrorCode::InvalidArg, "Invalid image size specified.");
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || v < 0 || s[0] == '-') return fail(ErrorCode::InvalidArg, "Invalid image size specified. You may use k, M, G, T, P or E suffixes for");
    uint64_t mult = 1;
    std::string suf(end);
    if (suf.size() > 1) return fail(ErrorCode::InvalidArg, "Invalid image size specified. You may use k, M, G, T, P or E suffixes for");
    if (!suf.empty()) {
        switch (suf[0]) {
            case 'b': case 'B': mult = 1; break;
            case 'k': case 'K': mult = 1ULL << 10; break;
            case 'm': case 'M': mult = 1ULL << 20; break;
            case 'g': case 'G': mult = 1ULL << 30; break;
            case 't': case 'T': mult = 1ULL << 40; break;
            case 'p': case 'P': mult = 1ULL << 50; break;
            case 'e': case 'E': mult = 1ULL << 60; break;
            default: return fail(ErrorCode::InvalidArg, "Invalid image size specified. You may use k, M, G, T, P or E suffixes for");
        }
    }
    double r = v * static_cast<double>(mult);
    if (r >= 18446744073709551616.0) return fail(ErrorCode::InvalidArg, "Image size must be less than 8 EiB!");
    if (mult == 1 && std::floor(v) != v) return fail(ErrorCode::InvalidArg, "Invalid image size specified.");
    return static_cast<uint64_t>(r);
}

namespace {
Result<bool> parse_bool(const std::string& key, const std::string& v) {
    if (v == "on" || v == "yes" || v == "true") return true;
    if (v == "off" || v == "no" || v == "false") return false;
    return fail(ErrorCode::InvalidArg, "Parameter '{}' expects 'on' or 'off'", key);
}

// The creation options in the order qemu-img prints them, with their types
// and defaults: the format's list, then the file protocol's (nocow,
// preallocation, extent_size_hint) where the format has no such name.
constexpr CreateOptionDesc kQcow2Order[] = {
    {"encryption", OptionType::Bool, ""},
    {"encrypt.format", OptionType::String, ""},
    {"encrypt.key-secret", OptionType::String, ""},
    {"encrypt.cipher-alg", OptionType::String, ""},
    {"encrypt.cipher-mode", OptionType::String, ""},
    {"encrypt.ivgen-alg", OptionType::String, ""},
    {"encrypt.ivgen-hash-alg", OptionType::String, ""},
    {"encrypt.hash-alg", OptionType::String, ""},
    {"encrypt.iter-time", OptionType::Number, ""},
    {"cluster_size", OptionType::Size, "65536"},
    {"extended_l2", OptionType::Bool, "off"},
    {"preallocation", OptionType::String, ""},
    {"compression_type", OptionType::String, "zlib"},
    {"size", OptionType::Size, ""},
    {"compat", OptionType::String, ""},
    {"backing_file", OptionType::String, ""},
    {"backing_fmt", OptionType::String, ""},
    {"data_file", OptionType::String, ""},
    {"data_file_raw", OptionType::Bool, ""},
    {"lazy_refcounts", OptionType::Bool, "off"},
    {"refcount_bits", OptionType::Number, "16"},
    {"nocow", OptionType::Bool, ""},
    {"extent_size_hint", OptionType::Size, ""},
};
constexpr CreateOptionDesc kRawOrder[] = {
    {"size", OptionType::Size, ""},
    {"nocow", OptionType::Bool, ""},
    {"preallocation", OptionType::String, ""},
    {"extent_size_hint", OptionType::Size, ""},
};

std::string size_message(const std::string& key) {
    return fmt::format("Parameter '{}' expects a non-negative number below 2^64\nOptional suffix k, M, G, T, P or E "
                       "means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.",
                       key);
}
}  // namespace

std::vector<CreateOptionDesc> create_option_order(ImageFormat fmt) {
    if (fmt == ImageFormat::Qcow2) return {std::begin(kQcow2Order), std::end(kQcow2Order)};
    return {std::begin(kRawOrder), std::end(kRawOrder)};
}

Status check_create_option_types(ImageFormat fmt, const std::map<std::string, std::string>& o) {
    const auto order = create_option_order(fmt);
    for (const auto& [k, v] : o) {
        auto it = std::find_if(order.begin(), order.end(), [&](const CreateOptionDesc& d) { return d.name == k; });
        if (it == order.end()) return fail(ErrorCode::InvalidArg, "Invalid parameter '{}'", k);
        switch (it->type) {
            case OptionType::Size:
                if (!parse_size(v)) return std::unexpected(Error{ErrorCode::InvalidArg, size_message(k)});
                break;
            case OptionType::Number: {
                char* end = nullptr;
                (void)std::strtoull(v.c_str(), &end, 0);
                if (v.empty() || *end) return fail(ErrorCode::InvalidArg, "Parameter '{}' expects a number", k);
                break;
            }
            case OptionType::Bool:
                if (auto b = parse_bool(k, v); !b) return std::unexpected(b.error());
                break;
            case OptionType::String: break;
        }
    }
    return {};
}

Result<CreateOptions> parse_create_options(ImageFormat fmt, const std::map<std::string, std::string>& o) {
    VIREO_TRY(check_create_option_types(fmt, o));
    CreateOptions c;
    c.format = fmt;
    for (const auto& [k, v] : o) {
        if (k == "size") {
            c.size = *parse_size(v);
        } else if (k == "preallocation") {
            auto p = parse_preallocation(v);
            // raw's file protocol words it differently from qcow2.
            if (!p && fmt == ImageFormat::Raw) return fail(ErrorCode::InvalidArg, "invalid parameter value: {}", v);
            if (!p) return std::unexpected(p.error());
            c.prealloc = *p;
        } else if (k == "extent_size_hint") {
            c.extent_size_hint = *parse_size(v);
        } else if (k == "nocow") {
            c.nocow = *parse_bool(k, v);
        } else if (k == "compat") {
            if (v == "0.10" || v == "v2") c.version = 2;
            else if (v == "1.1" || v == "v3") c.version = 3;
            else return fail(ErrorCode::InvalidArg, "Parameter 'version' does not accept value '{}'", v);
        } else if (k == "cluster_size") {
            c.cluster_size = static_cast<uint32_t>(std::min<uint64_t>(*parse_size(v), UINT32_MAX));
        } else if (k == "refcount_bits") {
            c.refcount_bits = static_cast<int>(std::min<unsigned long long>(std::strtoull(v.c_str(), nullptr, 0), 1024));
        } else if (k == "lazy_refcounts") {
            c.lazy_refcounts = *parse_bool(k, v);
        } else if (k == "extended_l2") {
            c.extended_l2 = *parse_bool(k, v);
        } else if (k == "compression_type") {
            if (v == "zlib") c.compression = CompressionType::Zlib;
            else if (v == "zstd") c.compression = CompressionType::Zstd;
            else return fail(ErrorCode::InvalidArg, "Parameter 'compression-type' does not accept value '{}'", v);
        } else if (k == "backing_file") {
            c.backing_file = v;
        } else if (k == "backing_fmt") {
            c.backing_format = v;
        } else if (k == "data_file") {
            c.data_file = v;
        } else if (k == "data_file_raw") {
            c.data_file_raw = *parse_bool(k, v);
        } else {
            // Known to QEMU (encryption), not to vireo.
            return fail(ErrorCode::Unsupported, "Invalid parameter '{}'", k);
        }
    }
    return c;
}

namespace {

// qemu-img 7.2's texts (encrypt.* are listed as QEMU lists them).
constexpr OptionHelp kQcow2Create[] = {
    {"backing_file", "str", "File name of a base image"},
    {"backing_fmt", "str", "Image format of the base image"},
    {"cluster_size", "size", "qcow2 cluster size"},
    {"compat", "str", "Compatibility level (v2 [0.10] or v3 [1.1])"},
    {"compression_type", "str", "Compression method used for image cluster compression"},
    {"data_file", "str", "File name of an external data file"},
    {"data_file_raw", "bool (on/off)", "The external data file must stay valid as a raw image"},
    {"encrypt.cipher-alg", "str", "Name of encryption cipher algorithm"},
    {"encrypt.cipher-mode", "str", "Name of encryption cipher mode"},
    {"encrypt.format", "str", "Encrypt the image, format choices: 'aes', 'luks'"},
    {"encrypt.hash-alg", "str", "Name of encryption hash algorithm"},
    {"encrypt.iter-time", "num", "Time to spend in PBKDF in milliseconds"},
    {"encrypt.ivgen-alg", "str", "Name of IV generator algorithm"},
    {"encrypt.ivgen-hash-alg", "str", "Name of IV generator hash algorithm"},
    {"encrypt.key-secret", "str", "ID of secret providing qcow AES key or LUKS passphrase"},
    {"encryption", "bool (on/off)", "Encrypt the image with format 'aes'. (Deprecated in favor of encrypt.format=aes)"},
    {"extended_l2", "bool (on/off)", "Extended L2 tables"},
    {"lazy_refcounts", "bool (on/off)", "Postpone refcount updates"},
    {"preallocation", "str", "Preallocation mode (allowed values: off, metadata, falloc, full)"},
    {"refcount_bits", "num", "Width of a reference count entry in bits"},
    {"size", "size", "Virtual disk size"},
};
constexpr OptionHelp kRawCreate[] = {{"size", "size", "Virtual disk size"}};
// The file protocol's own (merged after the format's; a name the format
// already has keeps the format's text).
constexpr OptionHelp kFileCreate[] = {
    {"extent_size_hint", "size", "Extent size hint for the image file, 0 to disable"},
    {"nocow", "bool (on/off)", "Turn off copy-on-write (valid only on btrfs)"},
    {"preallocation", "str", "Preallocation mode (allowed values: off, falloc, full)"},
    {"size", "size", "Virtual disk size"},
};
constexpr OptionHelp kQcow2Amend[] = {
    {"backing_file", "str", "File name of a base image"},
    {"backing_fmt", "str", "Image format of the base image"},
    {"compat", "str", "Compatibility level (v2 [0.10] or v3 [1.1])"},
    {"data_file", "str", "File name of an external data file"},
    {"data_file_raw", "bool (on/off)", "The external data file must stay valid as a raw image"},
    {"encrypt.iter-time", "num", "Time to spend in PBKDF in milliseconds"},
    {"encrypt.keyslot", "num", "Select a single keyslot to modify explicitly"},
    {"encrypt.new-secret", "str", "New secret to set in the matching keyslots. Empty string to erase"},
    {"encrypt.old-secret", "str", "Select all keyslots that match this password"},
    {"encrypt.state", "str", "Select new state of affected keyslots (active/inactive)"},
    {"lazy_refcounts", "bool (on/off)", "Postpone refcount updates"},
    {"refcount_bits", "num", "Width of a reference count entry in bits"},
    {"size", "size", "Virtual disk size"},
};

}  // namespace

std::vector<OptionHelp> create_option_help(ImageFormat fmt, bool with_file) {
    std::vector<OptionHelp> out;
    if (fmt == ImageFormat::Qcow2) out.assign(std::begin(kQcow2Create), std::end(kQcow2Create));
    else out.assign(std::begin(kRawCreate), std::end(kRawCreate));
    if (with_file) {
        for (const auto& f : kFileCreate) {
            bool have = false;
            for (const auto& o : out) have |= o.name == f.name;
            if (!have) out.push_back(f);
        }
        std::sort(out.begin(), out.end(), [](const OptionHelp& a, const OptionHelp& b) { return a.name < b.name; });
    }
    return out;
}

Result<std::vector<OptionHelp>> amend_option_help(ImageFormat fmt) {
    if (fmt != ImageFormat::Qcow2)
        return fail(ErrorCode::Unsupported, "Format driver '{}' does not support option amendment", format_name(fmt));
    return std::vector<OptionHelp>(std::begin(kQcow2Amend), std::end(kQcow2Amend));
}

}  // namespace vireo::storage
