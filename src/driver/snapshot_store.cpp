// SnapshotStore (see snapshot_store.hpp).
#include "driver/snapshot_store.hpp"

#include <system_error>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "util/files.hpp"

namespace vireo::driver {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kCurrentFile = "current";

}  // namespace

conf::SnapshotTree DomainSnapshots::tree() const {
    std::map<std::string, std::string> parents;
    for (const auto& [name, def] : snapshots) parents.emplace(name, def.parent);
    return conf::SnapshotTree(std::move(parents));
}

Result<const conf::SnapshotDef*> DomainSnapshots::find(std::string_view name) const {
    auto it = snapshots.find(std::string(name));
    if (it == snapshots.end())
        return fail(ErrorCode::NotFound, "Domain snapshot not found: no domain snapshot with matching name '{}'", name);
    return &it->second;
}

ObjectStore SnapshotStore::store(std::string_view domain) const {
    // Snapshots have no runtime status: the run directory is never used.
    return ObjectStore(ObjectKind::Snapshot, domain_dir(domain), domain_dir(domain));
}

DomainSnapshots SnapshotStore::load(std::string_view domain) const {
    DomainSnapshots out;
    if (!files::is_safe_name(domain)) return out;
    out.skipped = store(domain).load_configs([&](ObjectStore::Document& doc) -> Status {
        auto def = conf::parse_snapshot_xml(doc.text, {.redefine = true});
        if (!def) return std::unexpected(def.error());
        if (def->name != doc.name)
            return fail(ErrorCode::XmlError, "the snapshot inside is named '{}', not '{}'", def->name, doc.name);
        out.snapshots.emplace(doc.name, std::move(*def));
        return {};
    });
    auto current = files::read(domain_dir(domain) / std::string(kCurrentFile));
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
    VIREO_TRY(store(domain).check_name(def.name));
    VIREO_TRY(conf::validate_snapshot_name(def.name));
    return store(domain).save_config(def.name, conf::format_snapshot_xml(def));
}

Status SnapshotStore::remove(std::string_view domain, std::string_view name) const {
    return store(domain).remove_config(name);
}

Status SnapshotStore::set_current(std::string_view domain, std::string_view name) const {
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
    std::error_code ec;
    fs::remove(domain_dir(domain) / "autostart", ec);
    fs::remove(domain_dir(domain), ec);
    if (ec && ec != std::errc::no_such_file_or_directory)
        spdlog::warn("cannot remove the snapshot directory of domain '{}': {}", domain, ec.message());
    (void)files::sync_dir(root_);
    return {};
}

}  // namespace vireo::driver
