// Internals of PoolManager shared by pool_manager.cpp (pools, persistence)
// and pool_volumes.cpp (volumes). Not for use outside src/pool.
//
// Locking: Impl::mu guards the map of pools; each PoolEntry has `mu` for its
// state (definition, flags, volume list) and `backend_mu` that serialises the
// structural backend calls of that pool (build, start, stop, create/delete a
// volume, refresh). Long volume work (copy, wipe, upload, download) runs with
// no lock held: the volume is marked busy instead, so lists never wait behind
// it. Order: backend_mu -> Impl::mu -> mu; disk_users() is called with no lock held.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "driver/object_store.hpp"
#include "pool/backend.hpp"
#include "pool/pool_manager.hpp"
#include "pool/pool_xml.hpp"
#include "pool/volume_xml.hpp"
#include "util/files.hpp"

namespace vireo::pool {

namespace fs = std::filesystem;
using driver::PoolState;
using driver::PoolSummary;
using driver::VolumeSummary;

// ---- internal types and helpers ---------------------------------------------

struct Volume {
    VolumeDef def;
    int readers = 0;      // downloads / clones reading it
    bool writer = false;  // being created, wiped, resized or uploaded
};

struct PoolEntry {
    std::mutex backend_mu;
    std::mutex mu;
    PoolDef def;                       // the definition in use (live when active)
    std::optional<PoolDef> next_def;   // redefined while active: used from the next start
    std::unique_ptr<Backend> backend;
    bool persistent = false;
    bool autostart = false;
    bool active = false;
    bool gone = false;                 // removed from the manager (undefined / transient destroyed)
    PoolSizes sizes;
    std::map<std::string, Volume, std::less<>> vols;
    int jobs = 0;                      // long volume operations in progress
};
using PoolPtr = std::shared_ptr<PoolEntry>;

inline VolumeSummary summary_of(const VolumeDef& v, const std::string& pool) {
    VolumeSummary s;
    s.name = v.name;
    s.pool = pool;
    s.key = v.key;
    s.path = v.path;
    s.type = v.type;
    s.format = v.format;
    s.capacity = v.capacity.value_or(0);
    s.allocation = v.allocation.value_or(0);
    s.physical = v.physical;
    return s;
}

inline PoolSummary summary_of(const PoolEntry& p) {
    PoolSummary s;
    s.name = p.def.name;
    s.uuid = p.def.uuid;
    s.type = p.def.type;
    s.state = p.active ? PoolState::Running : PoolState::Inactive;
    s.persistent = p.persistent;
    s.autostart = p.autostart;
    if (p.active) {
        s.capacity = p.sizes.capacity;
        s.allocation = p.sizes.allocation;
        s.available = p.sizes.available;
    }
    s.target_path = p.def.target_path;
    return s;
}

inline std::string canonical_or_same(const std::string& path) {
    std::error_code ec;
    auto c = fs::weakly_canonical(path, ec);
    return ec ? path : c.string();
}

inline Error no_pool(std::string_view ref) {
    return Error{ErrorCode::NoPool, fmt::format("storage pool '{}' not found", ref)};
}
inline Error not_active(const PoolDef& def) {
    return Error{ErrorCode::InvalidState, fmt::format("storage pool '{}' is not active (start it with pool-start {})", def.name, def.name)};
}
inline Error no_volume(std::string_view vol, std::string_view pool) {
    return Error{ErrorCode::NoVolume, fmt::format("storage volume '{}' not found in pool '{}'", vol, pool)};
}


struct PoolManager::Impl {
    explicit Impl(PoolManagerConfig config)
        : cfg(std::move(config)), store(driver::ObjectKind::Pool, cfg.confdir, cfg.rundir) {}

    PoolManagerConfig cfg;
    driver::ObjectStore store;
    std::mutex mu;
    std::vector<PoolPtr> pools;  // definition order does not matter; lists sort by name

    // ---- lookup ------------------------------------------------------------
    PoolPtr find_locked(std::string_view ref) {
        for (auto& p : pools)
            if (p->def.name == ref) return p;
        if (auto u = Uuid::parse(ref))
            for (auto& p : pools)
                if (p->def.uuid == *u) return p;
        return nullptr;
    }
    Result<PoolPtr> find(std::string_view ref) {
        std::lock_guard lk(mu);
        if (auto p = find_locked(ref)) return p;
        return std::unexpected(no_pool(ref));
    }
    std::vector<PoolPtr> snapshot() {
        std::lock_guard lk(mu);
        return pools;
    }
    void forget(const PoolPtr& p) {
        std::lock_guard lk(mu);
        std::erase(pools, p);
    }

    // ---- persistence -------------------------------------------------------
    // Definitions, autostart links and the state of active pools go through
    // the store every object kind shares (driver/object_store.hpp): atomic
    // writes and autostart changes, name checks, loading that skips bad files.
    [[nodiscard]] bool persisting() const { return !cfg.confdir.empty(); }
    [[nodiscard]] bool keeping_state() const { return !cfg.rundir.empty(); }

    Status save_config(const PoolDef& def) {
        if (!persisting()) return {};
        return store.save_config(def.name, format_pool_xml(def, std::nullopt));
    }
    Status remove_config(const std::string& name) {
        if (!persisting()) return {};
        return store.remove_config(name);
    }
    Status save_autostart(const std::string& name, bool enabled) {
        if (!persisting()) return {};
        return store.set_autostart(name, enabled);
    }
    // The live definition of an active pool, so a restarted daemon finds it.
    Status save_state(const PoolDef& def) {
        if (!keeping_state()) return {};
        return store.save_status(def.name, format_pool_xml(def, std::nullopt));
    }
    Status remove_state(const std::string& name) {
        if (!keeping_state()) return {};
        return store.remove_status(name);
    }

    // ---- disk users ----------------------------------------------------------
    std::vector<DiskUser> disk_users() {
        if (!cfg.disk_users) return {};
        auto users = cfg.disk_users();
        for (auto& u : users) u.path = canonical_or_same(u.path.string());
        return users;
    }
    static std::optional<std::string> user_of(const std::vector<DiskUser>& users, const std::string& path) {
        const std::string c = canonical_or_same(path);
        for (const auto& u : users)
            if (u.path == c) return u.domain;
        return std::nullopt;
    }

    // Fresh capacity/allocation/available for an active pool of files
    // (guests write, files grow): one statvfs, no lock held while it runs.
    // Partition pools change only through us and keep their figures.
    static void refresh_file_sizes(PoolEntry& p) {
        PoolDef def;
        {
            std::lock_guard lk(p.mu);
            if (!p.active || !p.backend->sparse_volumes()) return;
            def = p.def;
        }
        auto sizes = p.backend->sizes(def);
        if (!sizes) return;
        std::lock_guard lk(p.mu);
        if (p.active) p.sizes = *sizes;
    }

    static Status check_build_flags(const driver::PoolBuildFlags& flags) {
        if (flags.overwrite && flags.no_overwrite)
            return fail(ErrorCode::InvalidArg, "--overwrite and --no-overwrite are mutually exclusive");
        return {};
    }

    // ---- state changes (pool `mu` held unless said otherwise) ----------------
    // Scan volumes and sizes; keeps volumes that an operation holds busy.
    // Called with backend_mu held and mu NOT held.
    Status rescan(PoolEntry& p) {
        PoolDef def;
        {
            std::lock_guard lk(p.mu);
            def = p.def;
        }
        auto vols = p.backend->scan(def);
        if (!vols) return std::unexpected(vols.error());
        auto sizes = p.backend->sizes(def);
        if (!sizes) return std::unexpected(sizes.error());
        std::lock_guard lk(p.mu);
        std::map<std::string, Volume, std::less<>> next;
        for (auto& v : *vols) next[v.name].def = std::move(v);
        for (auto& [name, v] : p.vols)
            if (v.readers > 0 || v.writer) next[name] = v;
        p.vols = std::move(next);
        p.sizes = *sizes;
        return {};
    }

    // Start a pool (backend_mu held by the caller, mu not held).
    Status start_locked(PoolEntry& p, bool build, const driver::PoolBuildFlags& flags) {
        VIREO_TRY(check_build_flags(flags));
        PoolDef def;
        {
            std::lock_guard lk(p.mu);
            if (p.active) return fail(ErrorCode::InvalidState, "storage pool '{}' is already active", p.def.name);
            if (p.next_def) {
                p.def = std::move(*p.next_def);
                p.next_def.reset();
            }
            def = p.def;
        }
        if (auto sup = p.backend->host_support(); !sup)
            return std::unexpected(sup.error().context(fmt::format("failed to start pool '{}'", def.name)));
        if (build) VIREO_TRY(p.backend->build(def, flags));
        auto started = p.backend->start(def);
        if (!started) return std::unexpected(started.error().context(fmt::format("failed to start pool '{}'", def.name)));
        if (auto st = rescan(p); !st) {
            (void)p.backend->stop(def);
            return std::unexpected(st.error().context(fmt::format("failed to start pool '{}'", def.name)));
        }
        {
            std::lock_guard lk(p.mu);
            p.active = true;
        }
        return save_state(def);
    }

    Result<PoolPtr> add_definition(PoolDef def, bool persistent);
    Status load();
    Status create_default_pool();

    // ---- volume access -------------------------------------------------------
    enum class Use { None, Read, Write };
    struct VolumeRef {
        PoolPtr pool;
        PoolDef def;
        VolumeDef vol;
        Use use = Use::None;
    };

    // The active pool `ref` and its definition.
    Result<std::pair<PoolPtr, PoolDef>> active(std::string_view ref) {
        auto p = find(ref);
        if (!p) return std::unexpected(p.error());
        std::lock_guard lk((*p)->mu);
        if (!(*p)->active) return std::unexpected(not_active((*p)->def));
        return std::pair{*p, (*p)->def};
    }

    // Find a volume by name (or key/path) in an active pool and mark it used
    // for reading or writing. Writers need it unused; `users` (when given)
    // refuses volumes a running domain has open.
    Result<VolumeRef> acquire(std::string_view pool, std::string_view vol, Use use, std::string_view action,
                              const std::vector<DiskUser>* users) {
        auto a = active(pool);
        if (!a) return std::unexpected(a.error());
        PoolEntry& e = *a->first;
        std::lock_guard lk(e.mu);
        if (!e.active) return std::unexpected(not_active(e.def));
        auto it = e.vols.find(vol);
        if (it == e.vols.end())
            it = std::find_if(e.vols.begin(), e.vols.end(),
                              [&](const auto& kv) { return kv.second.def.key == vol || kv.second.def.path == vol; });
        if (it == e.vols.end()) return std::unexpected(no_volume(vol, e.def.name));
        Volume& v = it->second;
        if (use == Use::Write && (v.writer || v.readers > 0))
            return fail(ErrorCode::Busy, "cannot {} volume '{}': another operation on it is in progress", action, v.def.name);
        if (use == Use::Read && v.writer)
            return fail(ErrorCode::Busy, "cannot {} volume '{}': it is being written by another operation", action, v.def.name);
        if (users)
            if (auto dom = user_of(*users, v.def.path))
                return fail(ErrorCode::InvalidState, "cannot {} volume '{}': it is in use by running domain '{}'", action,
                            v.def.name, *dom);
        if (use == Use::Write) v.writer = true;
        if (use == Use::Read) ++v.readers;
        if (use != Use::None) ++e.jobs;
        return VolumeRef{a->first, e.def, v.def, use};
    }

    // Undo acquire(); re-read the volume when it may have changed.
    void release(VolumeRef& r, bool restat) {
        std::optional<VolumeDef> fresh;
        if (restat) {
            auto v = r.pool->backend->stat_volume(r.def, r.vol);
            if (v) fresh = std::move(*v);
        }
        std::optional<PoolSizes> sizes;
        if (restat) {
            auto s = r.pool->backend->sizes(r.def);
            if (s) sizes = *s;
        }
        std::lock_guard lk(r.pool->mu);
        auto it = r.pool->vols.find(r.vol.name);
        if (it != r.pool->vols.end()) {
            if (r.use == Use::Write) it->second.writer = false;
            if (r.use == Use::Read) --it->second.readers;
            if (fresh) it->second.def = std::move(*fresh);
        }
        if (sizes) r.pool->sizes = *sizes;
        if (r.use != Use::None) --r.pool->jobs;
        r.use = Use::None;
    }

    Result<VolumeSummary> create_in(std::string_view pool, VolumeDef def, driver::VolumeCreateFlags flags,
                                    const std::optional<VolumeDef>& source);
};

}  // namespace vireo::pool
