// PoolManager (see pool_manager.hpp): pools, persistence, and start-up.
// Volumes are in pool_volumes.cpp; the shared internals and the locking
// rules in pool_manager_impl.hpp.
#include <spdlog/spdlog.h>

#include "pool/pool_manager_impl.hpp"

namespace vireo::pool {

// Define or redefine (mu of the manager held inside).
Result<PoolPtr> PoolManager::Impl::add_definition(PoolDef def, bool persistent) {
    auto backend = make_backend(def.type);
    if (!backend) return std::unexpected(backend.error());
    VIREO_TRY((*backend)->check_definition(def));
    std::lock_guard lk(mu);
    for (auto& p : pools) {
        std::lock_guard plk(p->mu);
        if (p->def.name == def.name) {
            if (p->def.uuid != def.uuid)
                return fail(ErrorCode::Exists, "storage pool '{}' already exists with uuid {}", def.name, p->def.uuid.str());
            if (p->def.type != def.type)
                return fail(ErrorCode::Exists, "storage pool '{}' already exists with type '{}'", def.name, p->def.type);
        } else {
            if (p->def.uuid == def.uuid)
                return fail(ErrorCode::Exists, "storage pool uuid {} is already used by pool '{}'", def.uuid.str(), p->def.name);
            if (p->def.target_path == def.target_path && def.type != "disk")
                return fail(ErrorCode::Exists, "target path '{}' is already used by storage pool '{}'", def.target_path, p->def.name);
            if (!def.devices.empty() && p->def.devices == def.devices)
                return fail(ErrorCode::Exists, "source device '{}' is already used by storage pool '{}'", def.devices[0], p->def.name);
        }
    }
    if (persistent) VIREO_TRY(save_config(def));
    if (auto existing = find_locked(def.name)) {
        std::lock_guard plk(existing->mu);
        if (existing->active) existing->next_def = std::move(def);
        else existing->def = std::move(def);
        existing->persistent = existing->persistent || persistent;
        return existing;
    }
    auto p = std::make_shared<PoolEntry>();
    p->def = std::move(def);
    p->backend = std::move(*backend);
    p->persistent = persistent;
    pools.push_back(p);
    return p;
}

namespace {

// A pool document from the store: it parses and names the pool its file is
// named after (anything else is reported and left in place by the store).
Result<PoolDef> parse_document(const driver::ObjectStore::Document& doc) {
    auto def = parse_pool_xml(doc.text);
    if (!def) return std::unexpected(def.error());
    if (def->name != doc.name) return fail(ErrorCode::XmlError, "it defines pool '{}', not '{}'", def->name, doc.name);
    return def;
}

}  // namespace

// Definitions from confdir, active pools from rundir, then autostart.
Status PoolManager::Impl::load() {
    if (persisting()) {
        store.load_configs([&](driver::ObjectStore::Document& doc) -> Status {
            auto def = parse_document(doc);
            if (!def) return std::unexpected(def.error());
            auto p = add_definition(std::move(*def), false);
            if (!p) return std::unexpected(p.error());
            std::lock_guard lk((*p)->mu);
            (*p)->persistent = true;
            (*p)->autostart = store.autostart(doc.name);
            return {};
        });
    }
    if (keeping_state()) {
        store.load_statuses([&](driver::ObjectStore::Document& doc) -> Status {
            auto def = parse_document(doc);
            if (!def) return std::unexpected(def.error());
            PoolPtr p;
            {
                std::lock_guard lk(mu);
                p = find_locked(def->name);
            }
            if (!p) {
                auto added = add_definition(*def, false);  // a transient pool that was running
                if (!added) return std::unexpected(added.error());
                p = *added;
            } else {
                std::lock_guard lk(p->mu);
                if (p->def.uuid == def->uuid) {
                    if (!(format_pool_xml(p->def, std::nullopt) == format_pool_xml(*def, std::nullopt)))
                        p->next_def = p->def;  // the running one differs from the config: keep the config for the next start
                    p->def = *def;
                }
            }
            std::lock_guard blk(p->backend_mu);
            bool ok = false;
            if (p->backend->still_active(p->def)) {
                ok = rescan(*p).has_value();
                if (ok) {
                    std::lock_guard lk(p->mu);
                    p->active = true;
                }
            } else {
                ok = start_locked(*p, false, {}).has_value();
            }
            if (!ok) {
                spdlog::warn("storage pool '{}' was active but cannot be restarted; it is now inactive", p->def.name);
                (void)remove_state(p->def.name);
                std::lock_guard lk(p->mu);
                if (!p->persistent) p->gone = true;
            }
            return {};
        });
        std::lock_guard lk(mu);
        std::erase_if(pools, [](const PoolPtr& p) { return p->gone; });
    }
    for (auto& p : snapshot()) {
        bool want = false;
        {
            std::lock_guard lk(p->mu);
            want = p->autostart && !p->active;
        }
        if (want) {
            std::lock_guard blk(p->backend_mu);
            // a pool that cannot start stays inactive, as libvirt
            if (auto st = start_locked(*p, false, {}); !st)
                spdlog::warn("cannot autostart storage pool: {}", st.error().full_message());
        }
    }
    return {};
}

PoolManager::PoolManager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PoolManager::~PoolManager() = default;

// The connection's default dir pool: defined, built, started, autostarted.
Status PoolManager::Impl::create_default_pool() {
    PoolDef def;
    def.type = "dir";
    def.name = cfg.default_pool_name;
    def.uuid = Uuid::generate();
    def.target_path = cfg.default_pool_path.string();
    def.target_perms.mode = 0755;
    auto p = add_definition(def, true);
    if (!p) return std::unexpected(p.error());
    VIREO_TRY(save_autostart(def.name, true));
    {
        std::lock_guard lk((*p)->mu);
        (*p)->autostart = true;
    }
    std::lock_guard blk((*p)->backend_mu);
    return start_locked(**p, true, {});
}

Result<std::unique_ptr<PoolManager>> PoolManager::open(PoolManagerConfig config) {
    auto impl = std::make_unique<Impl>(std::move(config));
    if (!impl->cfg.jobs) impl->cfg.jobs = std::make_shared<driver::JobTracker>();
    VIREO_TRY(impl->load());
    if (!impl->cfg.default_pool_path.empty() && !impl->find(impl->cfg.default_pool_name)) {
        // The other pools stay usable when the default one cannot be made
        // (e.g. another pool already uses its directory).
        if (auto st = impl->create_default_pool(); !st)
            spdlog::warn("cannot set up the default storage pool '{}': {}", impl->cfg.default_pool_name, st.error().full_message());
    }
    return std::unique_ptr<PoolManager>(new PoolManager(std::move(impl)));
}

// ---- pools ------------------------------------------------------------------

Result<std::vector<PoolSummary>> PoolManager::list_pools() {
    std::vector<PoolSummary> out;
    for (auto& p : impl_->snapshot()) {
        Impl::refresh_file_sizes(*p);
        std::lock_guard lk(p->mu);
        out.push_back(summary_of(*p));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

Result<PoolSummary> PoolManager::lookup_pool(std::string_view ref) {
    auto p = impl_->find(ref);
    if (!p) return std::unexpected(p.error());
    Impl::refresh_file_sizes(**p);
    std::lock_guard lk((*p)->mu);
    return summary_of(**p);
}

Result<std::string> PoolManager::pool_xml(std::string_view ref, bool inactive) {
    auto p = impl_->find(ref);
    if (!p) return std::unexpected(p.error());
    PoolEntry& e = **p;
    PoolDef def;
    bool active = false;
    {
        std::lock_guard lk(e.mu);
        if (inactive && e.next_def) return format_pool_xml(*e.next_def, std::nullopt);
        def = e.def;
        active = e.active;
    }
    if (!active || inactive) return format_pool_xml(def, std::nullopt);
    auto sizes = e.backend->sizes(def);  // fresh figures: statvfs is cheap
    if (sizes) {
        std::lock_guard lk(e.mu);
        e.sizes = *sizes;
    }
    std::lock_guard lk(e.mu);
    return format_pool_xml(def, e.sizes);
}

Result<PoolSummary> PoolManager::define_pool(std::string_view xml) {
    auto def = parse_pool_xml(xml);
    if (!def) return std::unexpected(def.error());
    auto p = impl_->add_definition(std::move(*def), true);
    if (!p) return std::unexpected(p.error());
    std::lock_guard lk((*p)->mu);
    (*p)->persistent = true;
    return summary_of(**p);
}

Status PoolManager::undefine_pool(std::string_view ref) {
    auto p = impl_->find(ref);
    if (!p) return std::unexpected(p.error());
    PoolEntry& e = **p;
    std::string name;
    bool active = false;
    {
        std::lock_guard lk(e.mu);
        if (!e.persistent) return fail(ErrorCode::InvalidState, "storage pool '{}' is transient: it has no definition to remove", e.def.name);
        name = e.def.name;
        active = e.active;
    }
    VIREO_TRY(impl_->remove_config(name));
    {
        std::lock_guard lk(e.mu);
        e.persistent = false;
        e.autostart = false;
        e.next_def.reset();
        if (!active) e.gone = true;
    }
    if (!active) impl_->forget(*p);
    return {};
}

Result<PoolSummary> PoolManager::create_pool(std::string_view xml, bool build, driver::PoolBuildFlags flags) {
    auto def = parse_pool_xml(xml);
    if (!def) return std::unexpected(def.error());
    {
        std::lock_guard lk(impl_->mu);
        if (impl_->find_locked(def->name)) return fail(ErrorCode::Exists, "storage pool '{}' already exists", def->name);
    }
    auto p = impl_->add_definition(std::move(*def), false);
    if (!p) return std::unexpected(p.error());
    Status st;
    {
        std::lock_guard blk((*p)->backend_mu);
        st = impl_->start_locked(**p, build, flags);
    }
    if (!st) {
        impl_->forget(*p);
        return std::unexpected(st.error());
    }
    std::lock_guard lk((*p)->mu);
    return summary_of(**p);
}

Status PoolManager::build_pool(std::string_view ref, driver::PoolBuildFlags flags) {
    auto p = impl_->find(ref);
    if (!p) return std::unexpected(p.error());
    PoolEntry& e = **p;
    VIREO_TRY(Impl::check_build_flags(flags));
    std::lock_guard blk(e.backend_mu);
    PoolDef def;
    {
        std::lock_guard lk(e.mu);
        if (e.active) return fail(ErrorCode::InvalidState, "storage pool '{}' is active: destroy it before building", e.def.name);
        def = e.next_def ? *e.next_def : e.def;
    }
    auto st = e.backend->build(def, flags);
    if (!st) return std::unexpected(st.error().context(fmt::format("failed to build pool '{}'", def.name)));
    return {};
}

Status PoolManager::start_pool(std::string_view ref, bool build, driver::PoolBuildFlags flags) {
    auto p = impl_->find(ref);
    if (!p) return std::unexpected(p.error());
    std::lock_guard blk((*p)->backend_mu);
    return impl_->start_locked(**p, build, flags);
}

Status PoolManager::destroy_pool(std::string_view ref) {
    auto p = impl_->find(ref);
    if (!p) return std::unexpected(p.error());
    PoolEntry& e = **p;
    const auto users = impl_->disk_users();
    std::lock_guard blk(e.backend_mu);
    PoolDef def;
    bool transient = false;
    {
        std::lock_guard lk(e.mu);
        if (!e.active) return std::unexpected(not_active(e.def));
        if (e.jobs > 0)
            return fail(ErrorCode::Busy, "storage pool '{}' has {} volume operation(s) in progress; try again when they finish",
                        e.def.name, e.jobs);
        const std::string target = canonical_or_same(e.def.target_path);
        for (const auto& u : users) {
            const std::string up = u.path.string();
            bool inside = up.size() > target.size() && up.compare(0, target.size(), target) == 0 && up[target.size()] == '/';
            for (const auto& [n, v] : e.vols)
                if (canonical_or_same(v.def.path) == up) inside = true;
            if (inside)
                return fail(ErrorCode::InvalidState, "cannot destroy storage pool '{}': running domain '{}' uses '{}'",
                            e.def.name, u.domain, up);
        }
        def = e.def;
        transient = !e.persistent;
    }
    auto st = e.backend->stop(def);
    if (!st) return std::unexpected(st.error().context(fmt::format("failed to destroy pool '{}'", def.name)));
    {
        std::lock_guard lk(e.mu);
        e.active = false;
        e.vols.clear();
        e.sizes = {};
        if (transient) e.gone = true;
    }
    VIREO_TRY(impl_->remove_state(def.name));
    if (transient) impl_->forget(*p);
    return {};
}

Status PoolManager::delete_pool(std::string_view ref) {
    auto p = impl_->find(ref);
    if (!p) return std::unexpected(p.error());
    PoolEntry& e = **p;
    std::lock_guard blk(e.backend_mu);
    PoolDef def;
    {
        std::lock_guard lk(e.mu);
        if (e.active) return fail(ErrorCode::InvalidState, "storage pool '{}' is active: destroy it before deleting its storage", e.def.name);
        def = e.def;
    }
    auto st = e.backend->remove(def);
    if (!st) return std::unexpected(st.error().context(fmt::format("failed to delete pool '{}'", def.name)));
    return {};
}

Status PoolManager::set_pool_autostart(std::string_view ref, bool enabled) {
    auto p = impl_->find(ref);
    if (!p) return std::unexpected(p.error());
    PoolEntry& e = **p;
    std::string name;
    {
        std::lock_guard lk(e.mu);
        if (!e.persistent) return fail(ErrorCode::InvalidState, "cannot set autostart for transient storage pool '{}'", e.def.name);
        name = e.def.name;
    }
    VIREO_TRY(impl_->save_autostart(name, enabled));
    std::lock_guard lk(e.mu);
    e.autostart = enabled;
    return {};
}

Status PoolManager::refresh_pool(std::string_view ref) {
    auto p = impl_->find(ref);
    if (!p) return std::unexpected(p.error());
    PoolEntry& e = **p;
    std::lock_guard blk(e.backend_mu);
    {
        std::lock_guard lk(e.mu);
        if (!e.active) return std::unexpected(not_active(e.def));
    }
    return impl_->rescan(e);
}

}  // namespace vireo::pool
