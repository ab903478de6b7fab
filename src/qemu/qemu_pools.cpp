// The QEMU driver's storage pools: one pool::PoolManager per driver, and the
// resolution of <disk type='volume'> disks at domain start.
#include <algorithm>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "driver/unavailable_pools.hpp"
#include "pool/pool_manager.hpp"
#include "qemu/qemu_driver_impl.hpp"


namespace vireo::qemu {

namespace fs = std::filesystem;

namespace {

// File and block disks of a definition, plus the resolved volumes of a run.
void add_disk_users(const std::string& domain, const conf::DomainDef& def, const QemuPrivate* priv,
                    std::vector<pool::DiskUser>& out) {
    for (const auto& d : def.devices.disks) {
        std::string path;
        if (d.type == "block") path = d.source.dev;
        else if (d.type == "file") path = d.source.file;
        if (!path.empty()) out.push_back({domain, path});
    }
    if (priv)
        for (const auto& p : priv->volume_paths) out.push_back({domain, p});
}

}  // namespace

void QemuDriverImpl::open_pools() {
    pool::PoolManagerConfig pc;
    pc.confdir = cfg.storage_confdir.empty() ? cfg.confdir.parent_path() / "storage" : cfg.storage_confdir;
    pc.rundir = cfg.storage_rundir.empty() ? cfg.rundir.parent_path() / "storage" : cfg.storage_rundir;
    pc.default_pool_path = cfg.default_pool_path;
    pc.disk_users = [this] {
        std::vector<pool::DiskUser> out;
        for (const auto& obj : registry.list()) {
            obj->with([&](DomainFields& f) {
                if (!f.active() || !f.live) return;
                add_disk_users(obj->name(), *f.live->def, qemu_private(f).get(), out);
            });
        }
        return out;
    };
    auto mgr = pool::PoolManager::open(std::move(pc));
    if (!mgr) {
        // Domains still work; every pool call says why pools do not.
        Error why = mgr.error().context("the storage pools are unavailable");
        spdlog::error("{}", why.full_message());
        pools = driver::make_unavailable_pools(std::move(why));
        return;
    }
    pool_manager = mgr->get();
    pools = std::move(*mgr);
}

Status QemuDriverImpl::resolve_volume_disks(conf::DomainDef& def, std::vector<std::string>* paths) {
    for (auto& d : def.devices.disks) {
        if (d.type != "volume") continue;
        const std::string pool = d.source.pool, vol = d.source.volume;
        if (pool.empty() || vol.empty())
            return fail(ErrorCode::XmlError, "disk '{}': a volume disk needs <source pool='...' volume='...'/>",
                        d.target_dev);
        auto v = pool_manager ? pool_manager->resolve_volume(pool, vol) : pools->lookup_volume(pool, vol);
        if (!v) return std::unexpected(v.error());
        d.source.pool.clear();
        d.source.volume.clear();
        d.source.mode.clear();
        if (v->type == driver::VolumeType::File) {
            d.type = "file";
            d.source.file = v->path;
        } else if (v->type == driver::VolumeType::Block) {
            d.type = "block";
            d.source.dev = v->path;
        } else {
            return fail(ErrorCode::Unsupported, "disk '{}': volume '{}' of pool '{}' is a {} volume; only file and "
                        "block volumes can be attached", d.target_dev, vol, pool, driver::volume_type_name(v->type));
        }
        // The disk's own <driver type> wins; else the volume's (partitions are raw).
        if (d.driver_type.empty()) d.driver_type = v->format == "qcow2" ? "qcow2" : "raw";
        if (paths) paths->push_back(v->path);
    }
    return {};
}

namespace {
constexpr const char* kVolumePathsKey = "volume_paths";  // a JSON array of strings
}  // namespace

void QemuDriverImpl::save_volume_paths(const std::vector<std::string>& paths, driver::RuntimeStatus& status) {
    status.set(kVolumePathsKey, nlohmann::json(paths).dump());
}

std::vector<std::string> QemuDriverImpl::load_volume_paths(const std::string& domain, const driver::RuntimeStatus& status,
                                                           const conf::DomainDef& live) {
    if (auto text = status.get(kVolumePathsKey)) {
        auto parsed = nlohmann::json::parse(*text, nullptr, false);
        if (parsed.is_array() && std::all_of(parsed.begin(), parsed.end(), [](const auto& v) { return v.is_string(); }))
            return parsed.get<std::vector<std::string>>();
        spdlog::warn("domain '{}': runtime status has unreadable volume paths; resolving its volume disks again", domain);
    }
    conf::DomainDef resolved = live;
    std::vector<std::string> paths;
    if (auto r = resolve_volume_disks(resolved, &paths); !r)
        spdlog::warn("domain '{}': cannot tell which volumes it uses: {}", domain, r.error().full_message());
    return paths;
}

}  // namespace vireo::qemu
