#include "cli/img/common.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "storage/qcow2.hpp"

namespace vireo::img {

using namespace storage;

void report(const std::string& msg) { fmt::print(stderr, "vireo-img: {}\n", msg); }

std::vector<option> long_options(std::initializer_list<option> own, bool force_share) {
    std::vector<option> v(own);
    v.push_back({"object", required_argument, nullptr, kOptObject});
    v.push_back({"image-opts", no_argument, nullptr, kOptImageOpts});
    if (force_share) v.push_back({"force-share", no_argument, nullptr, 'U'});
    v.push_back({nullptr, 0, nullptr, 0});
    return v;
}

bool all_zero(const char* p, size_t n) {
    if (n == 0) return true;
    if (p[0] != 0) return false;
    return std::memcmp(p, p + 1, n - 1) == 0;
}

bool valid_output(const std::string& output) {
    if (output == "human" || output == "json") return true;
    report("--output must be used with human or json as argument.");
    return false;
}

ImagePtr open_image_arg(int argc, char** argv, const std::string& fmt, bool writable, bool backing) {
    if (optind >= argc) {
        report("Expecting one image file name");
        return nullptr;
    }
    std::string path = argv[optind];
    auto img = open_for(path, fmt, writable, CacheMode::Writeback, backing, true);
    if (!img) {
        report(fmt::format("Could not open '{}': {}", path, img.error().message));
        return nullptr;
    }
    return std::move(*img);
}

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

Result<std::map<std::string, std::string>> parse_options(const std::string& s) {
    std::map<std::string, std::string> out;
    std::string cur;
    std::vector<std::string> parts;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == ',') {
            if (i + 1 < s.size() && s[i + 1] == ',') {
                cur += ',';
                ++i;
                continue;
            }
            parts.push_back(cur);
            cur.clear();
        } else {
            cur += s[i];
        }
    }
    parts.push_back(cur);
    for (const auto& p : parts) {
        if (p.empty()) continue;
        auto eq = p.find('=');
        if (eq == std::string::npos) {
            if (p == "help" || p == "?") return fail(ErrorCode::InvalidArg, "help");
            out[p] = "on";
        } else {
            out[p.substr(0, eq)] = p.substr(eq + 1);
        }
    }
    return out;
}

namespace {
Result<bool> parse_bool(const std::string& key, const std::string& v) {
    if (v == "on" || v == "yes" || v == "true") return true;
    if (v == "off" || v == "no" || v == "false") return false;
    return fail(ErrorCode::InvalidArg, "Parameter '{}' expects 'on' or 'off'", key);
}
}  // namespace

Result<CreateOptions> create_options_from(ImageFormat fmt, const std::map<std::string, std::string>& o) {
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

Result<ImagePtr> open_for(const std::string& path, const std::string& fmt, bool writable, CacheMode cache,
                          bool backing, bool check_mode) {
    OpenOptions o;
    if (!fmt.empty()) {
        auto f = parse_format(fmt);
        if (!f) return std::unexpected(f.error());
        o.format = *f;
    }
    o.writable = writable;
    o.cache = cache;
    o.open_backing = backing;
    o.repair_dirty = !check_mode;
    return open_image(path, o);
}

Result<ChainExtent> chain_status(Image* top, uint64_t off, uint64_t len) {
    ChainExtent c;
    Image* layer = top;
    int depth = 0;
    for (;;) {
        if (off >= layer->size()) {
            // Past the end of a shorter backing file: reads zero.
            c.length = len;
            c.present = false;
            c.zero = true;
            c.depth = depth;
            c.file = layer->filename();
            return c;
        }
        uint64_t l = std::min<uint64_t>(len, layer->size() - off);
        auto e = layer->block_status(off, l);
        if (!e) return std::unexpected(e.error());
        len = e->length;
        c.depth = depth;
        c.file = layer->filename();
        switch (e->kind) {
            case ExtentKind::Data:
                c.present = true;
                // raw: a hole is not data; qcow2: allocated is data, maybe zero
                c.data = layer->format() == ImageFormat::Qcow2 || !e->host_zero;
                c.zero = e->host_zero;
                c.offset = e->host_offset;
                c.length = len;
                return c;
            case ExtentKind::Compressed:
                c.present = c.data = true;
                c.length = len;
                return c;
            case ExtentKind::Zero:
                c.present = c.zero = true;
                c.length = len;
                return c;
            case ExtentKind::Unallocated:
                if (!layer->backing()) {
                    c.zero = true;
                    c.length = len;
                    return c;
                }
                layer = layer->backing();
                ++depth;
                break;
        }
    }
}

void Progress::update(double fraction) {
    if (!on_) return;
    // Like qemu: print whenever another whole percent has been reached,
    // showing the exact fraction.
    int pct = static_cast<int>(fraction * 100.0);
    if (pct <= last_) return;
    last_ = pct;
    fmt::print("    ({:.2f}/100%)\r", fraction * 100.0);
    std::fflush(stdout);
}

void Progress::done() {
    if (!on_) return;
    if (last_ < 100) fmt::print("    (100.00/100%)\r");
    fmt::print("    (100.00/100%)\r\n");
    std::fflush(stdout);
}

}  // namespace vireo::img
