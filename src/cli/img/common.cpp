#include "cli/img/common.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "storage/chain.hpp"
#include "storage/location.hpp"
#include "storage/qcow2.hpp"

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
    if (!g_image_opts) return arg;
    auto j = storage::image_opts_to_json(arg);
    return j ? *j : arg;
}

void report(const std::string& msg) { fmt::print(stderr, "{}: {}\n", program_name(), msg); }

int error_exit(const std::string& msg, int rc) {
    report(msg);
    fmt::print(stderr, "Try '{} --help' for more information\n", program_name());
    return rc;
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

Result<ImagePtr> open_for(const std::string& path, const std::string& fmt, bool writable, CacheMode cache,
                          bool backing, bool check_mode, bool force_share, bool no_io) {
    if (g_image_opts && !fmt.empty()) return fail(ErrorCode::InvalidArg, "--image-opts and --format are mutually exclusive");
    OpenOptions o;
    if (!fmt.empty()) {
        auto f = parse_driver(fmt);
        if (!f) return std::unexpected(f.error());
        o.format = *f;
    }
    o.writable = writable;
    o.cache = cache;
    o.open_backing = backing;
    o.repair_dirty = !check_mode;
    o.force_share = force_share;
    o.no_io = no_io;
    return open_image(image_name(path), o);
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
