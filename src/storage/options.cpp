#include "storage/options.hpp"

#include <cmath>
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
    CreateOptions c;
    c.format = fmt;
    if (fmt == ImageFormat::Luks) c.encrypt.format = EncryptFormat::Luks;
    bool encrypt_given = false;
    for (const auto& [k, v] : o) {
        if (fmt == ImageFormat::Luks && k != "size" && k != "preallocation") {
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
        if (fmt == ImageFormat::Vmdk && k != "size") {
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
            auto s = parse_size(v);
            if (!s) return std::unexpected(s.error());
            c.size = *s;
        } else if (k == "preallocation") {
            auto p = parse_preallocation(v);
            if (!p) return std::unexpected(p.error());
            c.prealloc = *p;
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
            else return fail(ErrorCode::InvalidArg, "Invalid parameter '{}'", v);
        } else if (k == "cluster_size") {
            auto s = parse_size(v);
            if (!s) return std::unexpected(s.error());
            c.cluster_size = static_cast<uint32_t>(*s);
        } else if (k == "refcount_bits") {
            c.refcount_bits = std::atoi(v.c_str());
        } else if (k == "lazy_refcounts") {
            auto b = parse_bool(k, v);
            if (!b) return std::unexpected(b.error());
            c.lazy_refcounts = *b;
        } else if (k == "extended_l2") {
            auto b = parse_bool(k, v);
            if (!b) return std::unexpected(b.error());
            c.extended_l2 = *b;
        } else if (k == "compression_type") {
            if (v == "zlib") c.compression = CompressionType::Zlib;
            else if (v == "zstd") c.compression = CompressionType::Zstd;
            else return fail(ErrorCode::InvalidArg, "Invalid parameter '{}'", v);
        } else if (k == "backing_file") {
            c.backing_file = v;
        } else if (k == "backing_fmt") {
            c.backing_format = v;
        } else if (k == "data_file") {
            c.data_file = v;
        } else if (k == "data_file_raw") {
            auto b = parse_bool(k, v);
            if (!b) return std::unexpected(b.error());
            c.data_file_raw = *b;
        } else {
            return fail(ErrorCode::InvalidArg, "Invalid parameter '{}'", k);
        }
    }
    if (encrypt_given && c.encrypt.format == EncryptFormat::None)
        return fail(ErrorCode::InvalidArg, "Parameter 'encrypt.format' is missing");
    return c;
}

}  // namespace vireo::storage
