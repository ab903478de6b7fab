// The QEMU driver's side of the storage pools: <disk type='volume'> disks
// resolved at domain start through the connection's driver::VolumeResolver,
// and the disks its running domains use, for the pools (driver::DiskUsers).
#include <algorithm>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "qemu/qemu_driver_impl.hpp"

namespace vireo::qemu {

namespace fs = std::filesystem;

namespace {

// File and block disks of a definition, plus the resolved volumes of a run.
void add_disk_users(const std::string& domain, const conf::DomainDef& def, const QemuPrivate* priv,
                    std::vector<driver::DiskUser>& out) {
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

std::vector<driver::DiskUser> QemuDriverImpl::disk_users() {
    std::vector<driver::DiskUser> out;
    for (const auto& obj : registry.list()) {
        obj->with([&](DomainFields& f) {
            if (!f.active() || !f.live) return;
            add_disk_users(obj->name(), *f.live->def, qemu_private(f).get(), out);
        });
    }
    return out;
}

Status QemuDriverImpl::resolve_volume_disks(conf::DomainDef& def, std::vector<std::string>* paths) {
    for (auto& d : def.devices.disks) {
        if (d.type != "volume") continue;
        const std::string pool = d.source.pool, vol = d.source.volume;
        if (pool.empty() || vol.empty())
            return fail(ErrorCode::XmlError, "disk '{}': a volume disk needs <source pool='...' volume='...'/>",
                        d.target_dev);
        if (!cfg.volumes)
            return fail(ErrorCode::Unsupported, "disk '{}': volume '{}' of pool '{}' cannot be resolved: this "
                        "connection has no storage pools", d.target_dev, vol, pool);
        auto v = cfg.volumes->resolve_volume(pool, vol);
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
