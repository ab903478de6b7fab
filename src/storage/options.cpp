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

namespace {
Result<bool> parse_bool(const std::string& key, const std::string& v) {
    if (v == "on" || v == "yes" || v == "true") return true;
    if (v == "off" || v == "no" || v == "false") return false;
    return fail(ErrorCode::InvalidArg, "Parameter '{}' expects 'on' or 'off'", key);
}
}  // namespace

Result<CreateOptions> parse_create_options(ImageFormat fmt, const std::map<std::string, std::string>& o) {
    CreateOptions c;
    c.format = fmt;
    for (const auto& [k, v] : o) {
        if (k == "size") {
            auto s = parse_size(v);
            if (!s) return std::unexpected(s.error());
            c.size = *s;
        } else if (k == "preallocation") {
            auto p = parse_preallocation(v);
            if (!p) return std::unexpected(p.error());
            c.prealloc = *p;
        } else if (fmt == ImageFormat::Raw) {
            return fail(ErrorCode::InvalidArg, "Invalid parameter '{}'", k);
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
    return c;
}

}  // namespace vireo::storage
