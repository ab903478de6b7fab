#include "cli/img/common.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "storage/chain.hpp"
#include "storage/location.hpp"
#include "storage/qcow2.hpp"
#include "util/files.hpp"

namespace vireo::img {

using namespace storage;

namespace {
std::string& program_name_storage() {
    static std::string name = "vireo-img";
    return name;
}
}  // namespace

void set_program_name(const char* argv0) {
    if (!argv0 || !*argv0) return;
    const char* slash = std::strrchr(argv0, '/');
    program_name_storage() = slash ? slash + 1 : argv0;
}

const std::string& program_name() { return program_name_storage(); }

namespace {
bool g_image_opts = false;
}  // namespace

void set_image_opts(bool on) { g_image_opts = on; }
bool image_opts() { return g_image_opts; }

std::string image_name(const std::string& arg) {
    auto a = image_arg(arg, "");
    return a ? a->path : arg;
}

void report(const std::string& msg) { fmt::print(stderr, "{}: {}\n", program_name(), msg); }

int error_exit(const std::string& msg, int rc) {
    report(msg);
    fmt::print(stderr, "Try '{} --help' for more information\n", program_name());
    return rc;
}

namespace {
Secrets g_secrets;

// RFC 4648 base64 (format=base64 secrets).
Result<std::string> base64_decode(const std::string& in) {
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (char ch : in) {
        int v;
        if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
        else if (ch == '+') v = 62;
        else if (ch == '/') v = 63;
        else if (ch == '=' || ch == '\n') continue;
        else return fail(ErrorCode::InvalidArg, "Invalid base64 data");
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    return out;
}

Status add_secret(const std::map<std::string, std::string>& o) {
    auto get = [&](const char* k) -> std::optional<std::string> {
        auto it = o.find(k);
        if (it == o.end()) return std::nullopt;
        return it->second;
    };
    auto id = get("id");
    if (!id) return fail(ErrorCode::InvalidArg, "Parameter 'id' is missing");
    auto data = get("data"), file = get("file"), format = get("format");
    for (const auto& [k, v] : o)
        if (k != "qom-type" && k != "id" && k != "data" && k != "file" && k != "format")
            return fail(ErrorCode::InvalidArg, "Property 'secret.{}' not supported by vireo-img", k);
    if (data && file) return fail(ErrorCode::InvalidArg, "'data' and 'file' are mutually exclusive");
    if (!data && !file) return fail(ErrorCode::InvalidArg, "Either 'data' or 'file' must be provided");
    std::string value;
    if (data) {
        value = *data;
    } else {
        auto r = files::read(*file);
        if (!r) return fail(ErrorCode::InvalidArg, "Unable to read {}: {}", *file, r.error().message);
        value = *r;
    }
    if (format && *format == "base64") {
        auto d = base64_decode(value);
        if (!d) return std::unexpected(d.error());
        value = *d;
    } else if (format && *format != "raw") {
        return fail(ErrorCode::InvalidArg, "Parameter 'format' does not accept value '{}'", *format);
    }
    if (g_secrets.count(*id)) return fail(ErrorCode::Exists, "attempt to add duplicate property '{}' to object (type 'container')", *id);
    g_secrets[*id] = value;
    return {};
}
}  // namespace

const Secrets& secrets() { return g_secrets; }

bool global_option(int c) {
    if (c == kOptImageOpts) {
        g_image_opts = true;
        return true;
    }
    // "secret,id=..." (the type first, as qemu's --object takes it).
    std::string spec = optarg ? optarg : "";
    auto comma = spec.find(',');
    std::string type = spec.substr(0, comma);
    if (type.starts_with("qom-type=")) type = type.substr(9);
    if (type != "secret") {
        report(fmt::format("Object type '{}' is not supported by vireo-img (only 'secret')", type));
        return false;
    }
    auto o = parse_options(comma == std::string::npos ? "" : spec.substr(comma + 1));
    if (!o) {
        report(o.error().message);
        return false;
    }
    auto st = add_secret(*o);
    if (!st) {
        report(st.error().message);
        return false;
    }
    return true;
}

Result<ImageArg> image_arg(const std::string& arg, const std::string& fmt) {
    ImageArg a;
    a.format = fmt;
    if (!g_image_opts) {
        a.path = arg;
        return a;
    }
    if (!fmt.empty()) return fail(ErrorCode::InvalidArg, "--image-opts and --format are mutually exclusive");
    // The secret an encrypted image names is looked up here; the rest is
    // the json: name open_image() takes (",," stays a literal comma).
    std::string rest, cur;
    std::optional<std::string> secret_id;
    auto item = [&](const std::string& raw, const std::string& text) {
        for (const char* k : {"key-secret=", "encrypt.key-secret="})
            if (text.starts_with(k)) {
                secret_id = text.substr(std::strlen(k));
                return;
            }
        rest += (rest.empty() ? "" : ",") + raw;
    };
    std::string raw;
    for (size_t i = 0; i <= arg.size(); ++i) {
        if (i < arg.size() && arg[i] == ',' && i + 1 < arg.size() && arg[i + 1] == ',') {
            cur += ',';
            raw += ",,";
            ++i;
        } else if (i == arg.size() || arg[i] == ',') {
            item(raw, cur);
            cur.clear();
            raw.clear();
        } else {
            cur += arg[i];
            raw += arg[i];
        }
    }
    auto j = storage::image_opts_to_json(rest);
    if (!j) return std::unexpected(j.error());
    a.path = *j;
    if (secret_id) {
        auto s = lookup_secret(g_secrets, *secret_id);
        if (!s) return std::unexpected(s.error());
        a.key_secret = *s;
    }
    return a;
}

std::vector<option> long_options(std::initializer_list<option> own, bool force_share) {
    std::vector<option> v(own);
    v.push_back({"object", required_argument, nullptr, kOptObject});
    v.push_back({"image-opts", no_argument, nullptr, kOptImageOpts});
    if (force_share) v.push_back({"force-share", no_argument, nullptr, 'U'});
    v.push_back({nullptr, 0, nullptr, 0});
    return v;
}

bool all_zero(const char* p, size_t n) { return buffer_is_zero(p, n); }

bool valid_output(const std::string& output) {
    if (output == "human" || output == "json") return true;
    report("--output must be used with human or json as argument.");
    return false;
}

int bad_option(int c, char** argv, int rc) {
    const char* opt = optind > 0 ? argv[optind - 1] : "";
    if (c == ':') report(fmt::format("missing argument for option '{}'", opt));
    else report(fmt::format("unrecognized option '{}'", opt));
    fmt::print(stderr, "Try '{} --help' for more information\n", program_name());
    return rc;
}

ImagePtr open_image_arg(int argc, char** argv, const std::string& fmt, bool writable, bool backing, bool force_share,
                        bool no_io) {
    if (optind >= argc) {
        (void)error_exit("Expecting one image file name");
        return nullptr;
    }
    std::string path = argv[optind];
    auto img = open_for(path, fmt, writable, CacheMode::Writeback, backing, true, force_share, no_io);
    if (!img) {
        report(fmt::format("Could not open '{}': {}", path, img.error().message));
        return nullptr;
    }
    return std::move(*img);
}

namespace {
// The options of an -o list, ",," unescaped.
std::vector<std::string> split_options(const std::string& s) {
    std::vector<std::string> parts;
    std::string cur;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == ',' && i + 1 < s.size() && s[i + 1] == ',') {
            cur += ',';
            ++i;
        } else if (s[i] == ',') {
            parts.push_back(cur);
            cur.clear();
        } else {
            cur += s[i];
        }
    }
    parts.push_back(cur);
    return parts;
}

void print_option_list(const std::vector<storage::OptionHelp>& list) {
    for (const auto& o : list)
        fmt::print("  {:<22} - {}\n", fmt::format("{}=<{}>", o.name, o.type), o.description);
}
}  // namespace

bool has_help_option(const std::string& s) {
    for (const auto& p : split_options(s))
        if (p == "help") return true;
    return false;
}

int print_create_help(const std::string& fmt, const std::optional<std::string>& filename) {
    auto f = parse_format(fmt);
    if (!f) {
        report(f.error().message);
        return 1;
    }
    if (filename) fmt::print("Supported options:\n");
    else fmt::print("Supported {} options:\n", fmt);
    print_option_list(storage::create_option_help(*f, filename.has_value()));
    if (!filename)
        fmt::print("\nThe protocol level may support further options.\nSpecify the target filename to include those options.\n");
    return 0;
}

int print_amend_help(const std::string& fmt) {
    auto f = parse_format(fmt);
    if (!f) {
        report(f.error().message);
        return 1;
    }
    auto list = storage::amend_option_help(*f);
    if (!list) {
        report(list.error().message);
        return 1;
    }
    fmt::print("Amend options for '{}':\n", fmt);
    print_option_list(*list);
    return 0;
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
            if (p == "help") return fail(ErrorCode::InvalidArg, "help");
            out[p] = "on";
        } else {
            out[p.substr(0, eq)] = p.substr(eq + 1);
        }
    }
    return out;
}

Result<ImagePtr> open_for(const std::string& arg, const std::string& fmt_name, bool writable, CacheMode cache,
                          bool backing, bool check_mode, bool force_share, bool no_io) {
    auto a = image_arg(arg, fmt_name);
    if (!a) return std::unexpected(a.error());
    OpenOptions o;
    if (!a->format.empty()) {
        auto f = parse_driver(a->format);
        if (!f) return std::unexpected(f.error());
        o.format = *f;
    }
    o.key_secret = a->key_secret;
    const std::string& path = a->path;
    o.writable = writable;
    o.cache = cache;
    o.open_backing = backing;
    o.repair_dirty = !check_mode;
    o.force_share = force_share;
    o.no_io = no_io;
    return open_image(path, o);
}

void Progress::advance(float value) {
    if (value > 100) value = 100;
    current_ = value;
    if (!on_) return;
    if (current_ > last_print_ + min_skip_ || current_ == 100 || current_ == 0) {
        last_print_ = current_;
        // printf, not fmt: qemu's rounding of the float, ties included.
        std::printf("    (%3.2f/100%%)\r", static_cast<double>(current_));
        std::fflush(stdout);
    }
}

void Progress::end() {
    if (!on_) return;
    std::printf("\n");
    std::fflush(stdout);
}

}  // namespace vireo::img
