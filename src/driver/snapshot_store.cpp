// SnapshotStore (see snapshot_store.hpp).
#include "driver/snapshot_store.hpp"

#include <algorithm>
#include <system_error>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "util/files.hpp"

namespace vireo::driver {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kCurrentFile = "current";
constexpr std::string_view kPendingSuffix = ".pending";

}  // namespace

conf::SnapshotTree DomainSnapshots::tree() const {
    std::map<std::string, std::string> parents;
    for (const auto& [name, def] : snapshots) parents.emplace(name, def.parent);
    return conf::SnapshotTree(parents);
}

Result<const conf::SnapshotDef*> DomainSnapshots::find(std::string_view name) const {
    auto it = snapshots.find(std::string(name));
    if (it == snapshots.end())
        return fail(ErrorCode::NotFound, "Domain snapshot not found: no domain snapshot with matching name '{}'", name);
    return &it->second;
}

Status SnapshotStore::check_names(std::string_view domain, std::string_view snapshot) const {
    if (!files::is_safe_name(domain)) return fail(ErrorCode::InvalidArg, "invalid domain name '{}'", domain);
    if (!files::is_safe_name(snapshot) || snapshot.front() == '.')
        return fail(ErrorCode::InvalidArg, "invalid domain snapshot name '{}': a name must be one file name not starting with '.'", snapshot);
    return {};
}

DomainSnapshots SnapshotStore::load(std::string_view domain) const {
    DomainSnapshots out;
    if (!files::is_safe_name(domain)) return out;
    const fs::path dir = domain_dir(domain);
    auto skip = [&](const fs::path& p, const std::string& why) {
        out.skipped.push_back(fmt::format("{}: {}", p.string(), why));
        spdlog::warn("skipping domain snapshot metadata {}", out.skipped.back());
    };
    std::error_code ec;
    std::vector<fs::path> paths;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string file = it->path().filename().string();
        if (file.starts_with('.') || !file.ends_with(".xml") || file.size() == 4) continue;
        paths.push_back(it->path());
    }
    if (ec && ec != std::errc::no_such_file_or_directory) skip(dir, fmt::format("cannot list directory: {}", ec.message()));
    std::sort(paths.begin(), paths.end());
    for (const auto& path : paths) {
        const std::string name = path.stem().string();
        auto text = files::read(path);
        if (!text) {
            if (text.error().system_errno() != ENOENT) skip(path, text.error().full_message());
            continue;
        }
        auto def = conf::parse_snapshot_xml(*text, {.redefine = true});
        if (!def) {
            skip(path, def.error().full_message());
            continue;
        }
        if (def->name != name) {
            skip(path, fmt::format("the snapshot inside is named '{}', not '{}'", def->name, name));
            continue;
        }
        out.snapshots.emplace(name, std::move(*def));
    }
    auto current = files::read(dir / std::string(kCurrentFile));
    if (current) {
        std::string name = *current;
        while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
        if (out.snapshots.contains(name)) out.current = name;
        else if (!name.empty())
            spdlog::warn("domain '{}': the current snapshot '{}' has no metadata; no snapshot is current", domain, name);
    }
    return out;
}

bool SnapshotStore::has_any(std::string_view domain) const {
    return !load(domain).snapshots.empty();
}

Status SnapshotStore::save(std::string_view domain, const conf::SnapshotDef& def) const {
    VIREO_TRY(check_names(domain, def.name));
    VIREO_TRY(conf::validate_snapshot_name(def.name));
    Status st = files::make_dirs(domain_dir(domain), 0755);
    if (st) st = files::write_atomic(domain_dir(domain) / (def.name + ".xml"), conf::format_snapshot_xml(def), 0600);
    if (!st)
        return std::unexpected(st.error().context(fmt::format("cannot save the metadata of snapshot '{}' of domain '{}'", def.name, domain)));
    return {};
}

Status SnapshotStore::remove(std::string_view domain, std::string_view name) const {
    VIREO_TRY(check_names(domain, name));
    if (auto st = files::remove_durable(domain_dir(domain) / (std::string(name) + ".xml")); !st)
        return std::unexpected(st.error().context(fmt::format("cannot remove the metadata of snapshot '{}' of domain '{}'", name, domain)));
    return {};
}

Status SnapshotStore::set_current(std::string_view domain, std::string_view name) const {
    if (!files::is_safe_name(domain)) return fail(ErrorCode::InvalidArg, "invalid domain name '{}'", domain);
    const fs::path path = domain_dir(domain) / std::string(kCurrentFile);
    Status st = files::make_dirs(domain_dir(domain), 0755);
    if (st) st = name.empty() ? files::remove_durable(path) : files::write_atomic(path, std::string(name) + "\n", 0600);
    if (!st) return std::unexpected(st.error().context(fmt::format("cannot record the current snapshot of domain '{}'", domain)));
    return {};
}

Status SnapshotStore::remove_all(std::string_view domain) const {
    auto loaded = load(domain);
    if (!loaded.skipped.empty())
        return fail(ErrorCode::OperationFailed, "cannot remove the snapshot metadata of domain '{}': unreadable files: {}", domain,
                    fmt::join(loaded.skipped, "; "));
    VIREO_TRY(set_current(domain, ""));
    for (const auto& [name, def] : loaded.snapshots) VIREO_TRY(remove(domain, name));
    for (const auto& def : pending(domain)) VIREO_TRY(remove_pending(domain, def.name));
    std::error_code ec;
    fs::remove(domain_dir(domain), ec);
    if (ec && ec != std::errc::no_such_file_or_directory)
        spdlog::warn("cannot remove the snapshot directory of domain '{}': {}", domain, ec.message());
    (void)files::sync_dir(root_);
    return {};
}

Status SnapshotStore::save_pending(std::string_view domain, const conf::SnapshotDef& def) const {
    VIREO_TRY(check_names(domain, def.name));
    VIREO_TRY(conf::validate_snapshot_name(def.name));
    Status st = files::make_dirs(domain_dir(domain), 0755);
    if (st) st = files::write_atomic(domain_dir(domain) / (def.name + std::string(kPendingSuffix)), conf::format_snapshot_xml(def), 0600);
    if (!st)
        return std::unexpected(st.error().context(fmt::format("cannot record snapshot '{}' of domain '{}' as being taken", def.name, domain)));
    return {};
}

std::vector<conf::SnapshotDef> SnapshotStore::pending(std::string_view domain) const {
    std::vector<conf::SnapshotDef> out;
    if (!files::is_safe_name(domain)) return out;
    std::error_code ec;
    std::vector<fs::path> paths;
    for (fs::directory_iterator it(domain_dir(domain), ec), end; !ec && it != end; it.increment(ec)) {
        const std::string file = it->path().filename().string();
        if (!file.starts_with('.') && file.ends_with(kPendingSuffix) && file.size() > kPendingSuffix.size())
            paths.push_back(it->path());
    }
    std::sort(paths.begin(), paths.end());
    for (const auto& path : paths) {
        auto text = files::read(path);
        auto def = text ? conf::parse_snapshot_xml(*text, {.redefine = true}) : Result<conf::SnapshotDef>(std::unexpected(text.error()));
        if (!def || def->name != path.stem().string()) {
            spdlog::warn("domain '{}': unusable record of a snapshot being taken {}: {}", domain, path.string(),
                         def ? "its name differs from the file's" : def.error().full_message());
            continue;
        }
        out.push_back(std::move(*def));
    }
    return out;
}

Status SnapshotStore::commit_pending(std::string_view domain, const conf::SnapshotDef& def) const {
    VIREO_TRY(save(domain, def));
    VIREO_TRY(set_current(domain, def.name));
    return remove_pending(domain, def.name);
}

Status SnapshotStore::remove_pending(std::string_view domain, std::string_view name) const {
    VIREO_TRY(check_names(domain, name));
    if (auto st = files::remove_durable(domain_dir(domain) / (std::string(name) + std::string(kPendingSuffix))); !st)
        return std::unexpected(st.error().context(fmt::format("cannot remove the record of snapshot '{}' of domain '{}'", name, domain)));
    return {};
}

}  // namespace vireo::driver
