#include "driver/object_store.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "util/files.hpp"

namespace vireo::driver {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kXmlSuffix = ".xml";

// "<name>.xml" -> "name" when name is a safe name; nullopt for anything else
// (temp files end in ".tmp<pid>-<hex>", never in ".xml").
std::optional<std::string> name_of_file(const fs::path& p) {
    const std::string file = p.filename().string();
    if (!file.ends_with(kXmlSuffix)) return std::nullopt;
    std::string name = file.substr(0, file.size() - kXmlSuffix.size());
    if (!files::is_safe_name(name)) return std::nullopt;
    return name;
}

struct Listing {
    std::vector<std::string> names;  // sorted
    std::optional<std::string> error;
};

// The documents of `dir`: regular files (or links to them) named <name>.xml.
// A missing directory is an empty one. Never throws, even when the directory
// changes or becomes unreadable mid-way (increment(ec), not a range-for).
Listing list_documents(const fs::path& dir) {
    Listing out;
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) {
        if (ec != std::errc::no_such_file_or_directory) out.error = ec.message();
        return out;
    }
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
        std::error_code type_ec;
        if (auto name = name_of_file(it->path()); name && it->is_regular_file(type_ec)) out.names.push_back(*name);
    }
    if (ec) out.error = ec.message();
    std::ranges::sort(out.names);
    return out;
}

// A temporary name beside `path` that nothing else uses, as write_atomic's:
// '.<file>.tmp<pid>-<random>' (the pid tells apart forked children that
// inherited the generator).
fs::path temp_beside(const fs::path& path) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return path.parent_path() / fmt::format(".{}.tmp{:x}-{:x}", path.filename().string(), ::getpid(), rng());
}

}  // namespace

std::string_view kind_noun(ObjectKind kind) {
    switch (kind) {
        case ObjectKind::Domain: return "domain";
        case ObjectKind::Pool: return "storage pool";
        case ObjectKind::Network: return "network";
        case ObjectKind::Interface: return "interface";
    }
    return "object";
}

ObjectStore::ObjectStore(ObjectKind kind, fs::path confdir, fs::path rundir)
    : kind_(kind), confdir_(std::move(confdir)), rundir_(std::move(rundir)) {}

fs::path ObjectStore::config_path(std::string_view name) const { return confdir_ / fmt::format("{}.xml", name); }

fs::path ObjectStore::autostart_path(std::string_view name) const {
    return confdir_ / "autostart" / fmt::format("{}.xml", name);
}

fs::path ObjectStore::status_path(std::string_view name) const { return rundir_ / fmt::format("{}.xml", name); }

Status ObjectStore::check_name(std::string_view name) const {
    if (files::is_safe_name(name)) return {};
    return fail(ErrorCode::InvalidArg,
                "invalid {} name '{}': a name must be one file name (not empty, not '.' or '..', no '/', no control "
                "characters, at most 255 bytes)",
                kind_noun(kind_), name);
}

Status ObjectStore::prepare() const {
    VIREO_TRY(files::make_dirs(confdir_ / "autostart", 0755));
    VIREO_TRY(files::make_dirs(rundir_, 0700));
    return {};
}

// ---- persistent definitions ---------------------------------------------------

Status ObjectStore::save_config(std::string_view name, std::string_view xml) const {
    VIREO_TRY(check_name(name));
    auto st = files::make_dirs(confdir_, 0755);
    if (st) st = files::write_atomic(config_path(name), xml, 0600);
    if (!st)
        return std::unexpected(
            st.error().context(fmt::format("cannot save the definition of {} '{}'", kind_noun(kind_), name)));
    return {};
}

Result<std::string> ObjectStore::read_config(std::string_view name) const {
    VIREO_TRY(check_name(name));
    return files::read(config_path(name));
}

Status ObjectStore::remove_config(std::string_view name) const {
    VIREO_TRY(check_name(name));
    VIREO_TRY(set_autostart(name, false));
    if (auto st = files::remove_durable(config_path(name)); !st)
        return std::unexpected(
            st.error().context(fmt::format("cannot remove the definition of {} '{}'", kind_noun(kind_), name)));
    return {};
}

std::vector<std::string> ObjectStore::load_configs(const Visitor& visit) const {
    return load_dir(confdir_, "definition", visit);
}

std::vector<std::string> ObjectStore::load_dir(const fs::path& dir, std::string_view what, const Visitor& visit) const {
    std::vector<std::string> skipped;
    auto skip = [&](const fs::path& p, const std::string& why) {
        skipped.push_back(fmt::format("{}: {}", p.string(), why));
        spdlog::warn("skipping {} {} {}", kind_noun(kind_), what, skipped.back());
    };
    Listing listing = list_documents(dir);
    if (listing.error) skip(dir, fmt::format("cannot list directory: {}", *listing.error));
    // One document in memory at a time: read, hand over, next.
    for (auto& name : listing.names) {
        const fs::path path = dir / (name + std::string(kXmlSuffix));
        auto text = files::read(path);
        if (!text) {
            // Gone since the listing (removed concurrently): not a bad file.
            if (text.error().system_errno() != ENOENT) skip(path, text.error().full_message());
            continue;
        }
        Document doc{std::move(name), path, std::move(*text)};
        if (auto st = visit(doc); !st) skip(path, st.error().full_message());
    }
    return skipped;
}

// ---- autostart ----------------------------------------------------------------------

Status ObjectStore::set_autostart(std::string_view name, bool enabled) const {
    VIREO_TRY(check_name(name));
    const fs::path link = autostart_path(name);
    const fs::path dir = link.parent_path();
    auto failed = [&](const Error& e) {
        return std::unexpected(e.context(
            fmt::format("cannot {} autostart of {} '{}'", enabled ? "enable" : "disable", kind_noun(kind_), name)));
    };
    if (!enabled) {
        if (auto st = files::remove_durable(link); !st) return failed(st.error());
        return {};
    }
    if (auto st = files::make_dirs(dir, 0755); !st) return failed(st.error());
    // The complete link under a temporary name, then renamed over the final
    // name: rename(2) replaces atomically, so the link is never absent, even
    // when it existed before (re-enable, re-point).
    const std::string target = fmt::format("../{}.xml", name);
    fs::path tmp;
    for (int attempt = 0;; ++attempt) {
        tmp = temp_beside(link);
        if (::symlink(target.c_str(), tmp.c_str()) == 0) break;
        const int err = errno;
        if (err != EEXIST || attempt == 8)
            return failed(errno_error(fmt::format("cannot create autostart link '{}'", tmp.string()), err));
    }
    if (::rename(tmp.c_str(), link.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        return failed(errno_error(fmt::format("cannot rename '{}' to '{}'", tmp.string(), link.string()), err));
    }
    if (auto st = files::sync_dir(dir); !st) return failed(st.error());
    return {};
}

// The link's existence is the flag (as libvirt): it is not followed.
bool ObjectStore::autostart(std::string_view name) const {
    std::error_code ec;
    return files::is_safe_name(name) && fs::exists(fs::symlink_status(autostart_path(name), ec));
}

// ---- runtime status -------------------------------------------------------------------

Status ObjectStore::save_status(std::string_view name, std::string_view text) const {
    VIREO_TRY(check_name(name));
    auto st = files::make_dirs(rundir_, 0700);
    if (st) st = files::write_replace(status_path(name), text, 0600);
    if (!st)
        return std::unexpected(st.error().context(fmt::format("cannot write status of {} '{}'", kind_noun(kind_), name)));
    return {};
}

Result<std::string> ObjectStore::read_status(std::string_view name) const {
    VIREO_TRY(check_name(name));
    return files::read(status_path(name));
}

Status ObjectStore::remove_status(std::string_view name) const {
    VIREO_TRY(check_name(name));
    if (auto st = files::remove_file(status_path(name)); !st)
        return std::unexpected(
            st.error().context(fmt::format("cannot remove status of {} '{}'", kind_noun(kind_), name)));
    return {};
}

std::vector<std::string> ObjectStore::status_names() const { return list_documents(rundir_).names; }

std::vector<std::string> ObjectStore::load_statuses(const Visitor& visit) const {
    return load_dir(rundir_, "status", visit);
}

}  // namespace vireo::driver
