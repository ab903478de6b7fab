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

Result<std::string> lookup_secret(const Secrets& secrets, const std::string& id) {
    auto it = secrets.find(id);
    if (it == secrets.end()) return fail(ErrorCode::InvalidArg, "No secret with id '{}'", id);
    return it->second;
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
constexpr CreateOptionDesc kLuksOrder[] = {
    {"size", OptionType::Size, ""},
    {"key-secret", OptionType::String, ""},
    {"cipher-alg", OptionType::String, ""},
    {"cipher-mode", OptionType::String, ""},
    {"ivgen-alg", OptionType::String, ""},
    {"ivgen-hash-alg", OptionType::String, ""},
    {"hash-alg", OptionType::String, ""},
    {"iter-time", OptionType::Number, ""},
    {"nocow", OptionType::Bool, ""},
    {"preallocation", OptionType::String, ""},
    {"extent_size_hint", OptionType::Size, ""},
};
constexpr CreateOptionDesc kVmdkOrder[] = {
    {"size", OptionType::Size, ""},
    {"adapter_type", OptionType::String, ""},
    {"backing_file", OptionType::String, ""},
    {"backing_fmt", OptionType::String, ""},
    {"compat6", OptionType::Bool, "off"},
    {"hwversion", OptionType::String, "undefined"},
    {"toolsversion", OptionType::String, ""},
    {"subformat", OptionType::String, ""},
    {"zeroed_grain", OptionType::Bool, ""},
    {"nocow", OptionType::Bool, ""},
    {"preallocation", OptionType::String, ""},
    {"extent_size_hint", OptionType::Size, ""},
};
// vpc, vhdx, vdi: read only here, their creation is refused after the line.
constexpr CreateOptionDesc kReadOnlyOrder[] = {
    {"size", OptionType::Size, ""},
};

std::string size_message(const std::string& key) {
    return fmt::format("Parameter '{}' expects a non-negative number below 2^64\nOptional suffix k, M, G, T, P or E "
                       "means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.",
                       key);
}
}  // namespace

std::vector<CreateOptionDesc> create_option_order(ImageFormat fmt) {
    switch (fmt) {
        case ImageFormat::Qcow2: return {std::begin(kQcow2Order), std::end(kQcow2Order)};
        case ImageFormat::Raw: return {std::begin(kRawOrder), std::end(kRawOrder)};
        case ImageFormat::Luks: return {std::begin(kLuksOrder), std::end(kLuksOrder)};
        case ImageFormat::Vmdk: return {std::begin(kVmdkOrder), std::end(kVmdkOrder)};
        default: return {std::begin(kReadOnlyOrder), std::end(kReadOnlyOrder)};
    }
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

namespace {
// One LUKS option `k` (without its "encrypt." prefix, which `prefix`
// puts back in messages); false: not one.
Result<bool> parse_luks_option(EncryptOptions& e, const std::string& prefix, const std::string& k, const std::string& v,
                               const Secrets& secrets) {
    auto one_of = [&](std::initializer_list<const char*> allowed) -> Status {
        for (const char* a : allowed)
            if (v == a) return {};
        return fail(ErrorCode::InvalidArg, "Parameter '{}{}' does not accept value '{}'", prefix, k, v);
    };
    if (k == "key-secret") {
        // A secret that does not exist is reported when the image is made
        // (after qemu-img's Formatting line), as qemu-img does.
        e.key_secret_id = v;
        auto s = lookup_secret(secrets, v);
        if (s) e.key = *s;
    } else if (k == "cipher-alg") {
        VIREO_TRY(one_of({"aes-128", "aes-192", "aes-256", "des", "3des", "cast5-128", "serpent-128", "serpent-192",
                          "serpent-256", "twofish-128", "twofish-192", "twofish-256", "sm4"}));
        e.cipher_alg = v;
    } else if (k == "cipher-mode") {
        VIREO_TRY(one_of({"ecb", "cbc", "xts", "ctr"}));
        e.cipher_mode = v;
    } else if (k == "ivgen-alg") {
        VIREO_TRY(one_of({"plain", "plain64", "essiv"}));
        e.ivgen_alg = v;
    } else if (k == "ivgen-hash-alg" || k == "hash-alg") {
        VIREO_TRY(one_of({"md5", "sha1", "sha224", "sha256", "sha384", "sha512", "ripemd160"}));
        (k == "hash-alg" ? e.hash_alg : e.ivgen_hash_alg) = v;
    } else if (k == "iter-time") {
        char* end = nullptr;
        unsigned long long t = std::strtoull(v.c_str(), &end, 10);
        if (v.empty() || *end || v[0] == '-')
            return fail(ErrorCode::InvalidArg, "Parameter '{}{}' expects a number", prefix, k);
        e.iter_time = t;
    } else {
        return false;
    }
    return true;
}
}  // namespace

Result<CreateOptions> parse_create_options(ImageFormat fmt, const std::map<std::string, std::string>& o,
                                           const Secrets& secrets) {
    VIREO_TRY(check_create_option_types(fmt, o));
    CreateOptions c;
    c.format = fmt;
    if (fmt == ImageFormat::Luks) c.encrypt.format = EncryptFormat::Luks;
    bool encrypt_given = false;
    for (const auto& [k, v] : o) {
        const bool file_option = k == "size" || k == "preallocation" || k == "nocow" || k == "extent_size_hint";
        if (fmt == ImageFormat::Luks && !file_option) {
            auto l = parse_luks_option(c.encrypt, "", k, v, secrets);
            if (!l) return std::unexpected(l.error());
            if (!*l) return fail(ErrorCode::InvalidArg, "Invalid parameter '{}'", k);
            continue;
        }
        if (fmt == ImageFormat::Qcow2 && k.starts_with("encrypt.") && k != "encrypt.format") {
            auto l = parse_luks_option(c.encrypt, "encrypt.", k.substr(8), v, secrets);
            if (!l) return std::unexpected(l.error());
            if (!*l) return fail(ErrorCode::InvalidArg, "Invalid parameter '{}'", k);
            encrypt_given = true;
            continue;
        }
        if (fmt == ImageFormat::Vmdk && !file_option) {
            if (k == "subformat") {
                if (v == "monolithicSparse") c.vmdk_subformat = VmdkSubformat::MonolithicSparse;
                else if (v == "monolithicFlat") c.vmdk_subformat = VmdkSubformat::MonolithicFlat;
                else if (v == "streamOptimized") c.vmdk_subformat = VmdkSubformat::StreamOptimized;
                else if (v == "twoGbMaxExtentSparse") c.vmdk_subformat = VmdkSubformat::TwoGbSparse;
                else if (v == "twoGbMaxExtentFlat") c.vmdk_subformat = VmdkSubformat::TwoGbFlat;
                else return fail(ErrorCode::InvalidArg, "Unknown subformat: {}", v);
            } else if (k == "adapter_type") {
                if (v != "ide" && v != "buslogic" && v != "lsilogic" && v != "legacyESX")
                    return fail(ErrorCode::InvalidArg, "Unknown adapter type: '{}'", v);
                c.vmdk_adapter_type = v;
            } else if (k == "hwversion") {
                c.vmdk_hwversion = v;
            } else if (k == "toolsversion") {
                c.vmdk_toolsversion = v;
            } else if (k == "zeroed_grain") {
                auto b = parse_bool(k, v);
                if (!b) return std::unexpected(b.error());
                c.vmdk_zeroed_grain = *b;
            } else if (k == "backing_file") {
                c.backing_file = v;
            } else if (k == "backing_fmt") {
                c.backing_format = v;
            } else if (k == "compat6") {
                auto b = parse_bool(k, v);
                if (!b) return std::unexpected(b.error());
                if (*b) c.vmdk_hwversion = "6";
            } else {
                return fail(ErrorCode::InvalidArg, "Invalid parameter '{}'", k);
            }
            continue;
        }
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
        } else if (fmt != ImageFormat::Qcow2) {  // NOLINT(bugprone-branch-clone): the keys below are qcow2's
            return fail(ErrorCode::InvalidArg, "Invalid parameter '{}'", k);
        } else if (k == "encrypt.format") {
            if (v == "luks") c.encrypt.format = EncryptFormat::Luks;
            else if (v == "aes") c.encrypt.format = EncryptFormat::Aes;
            else return fail(ErrorCode::InvalidArg, "Parameter 'format' does not accept value '{}'", v);
        } else if (k == "encryption") {
            auto b = parse_bool(k, v);
            if (!b) return std::unexpected(b.error());
            if (*b && c.encrypt.format == EncryptFormat::None) c.encrypt.format = EncryptFormat::Aes;
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
    if (encrypt_given && c.encrypt.format == EncryptFormat::None)
        return fail(ErrorCode::InvalidArg, "Parameter 'encrypt.format' is missing");
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
constexpr OptionHelp kLuksCreate[] = {
    {"cipher-alg", "str", "Name of encryption cipher algorithm"},
    {"cipher-mode", "str", "Name of encryption cipher mode"},
    {"hash-alg", "str", "Name of encryption hash algorithm"},
    {"iter-time", "num", "Time to spend in PBKDF in milliseconds"},
    {"ivgen-alg", "str", "Name of IV generator algorithm"},
    {"ivgen-hash-alg", "str", "Name of IV generator hash algorithm"},
    {"key-secret", "str", "ID of the secret that provides the keyslot passphrase"},
    {"size", "size", "Virtual disk size"},
};
constexpr OptionHelp kVmdkCreate[] = {
    {"adapter_type", "str", "Virtual adapter type, can be one of ide (default), lsilogic, buslogic or legacyESX"},
    {"backing_file", "str", "File name of a base image"},
    {"backing_fmt", "str", "Must be 'vmdk' if present"},
    {"compat6", "bool (on/off)", "VMDK version 6 image"},
    {"hwversion", "str", "VMDK hardware version"},
    {"size", "size", "Virtual disk size"},
    {"subformat", "str",
     "VMDK flat extent format, can be one of {monolithicSparse (default) | monolithicFlat | twoGbMaxExtentSparse | "
     "twoGbMaxExtentFlat | streamOptimized} "},
    {"toolsversion", "str", "VMware guest tools version"},
    {"zeroed_grain", "bool (on/off)", "Enable efficient zero writes using the zeroed-grain GTE feature"},
};
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
    else if (fmt == ImageFormat::Luks) out.assign(std::begin(kLuksCreate), std::end(kLuksCreate));
    else if (fmt == ImageFormat::Vmdk) out.assign(std::begin(kVmdkCreate), std::end(kVmdkCreate));
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
