#include "qemu/media.hpp"

#include <atomic>
#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace vireo::qemu {

namespace {

bool has_medium(const conf::Disk& d) { return !d.source.empty(); }

std::string source_path(const conf::Disk& d) { return !d.source.file.empty() ? d.source.file : d.source.dev; }

// Node names of media inserted at run time, unique in the process.
std::string next_media_node() {
    static std::atomic<unsigned> n{0};
    return fmt::format("vireo-media{}", n++);
}

}  // namespace

Result<MediaAction> parse_media_action(std::string_view action) {
    if (action == "eject") return MediaAction::Eject;
    if (action == "insert") return MediaAction::Insert;
    if (action == "update" || action.empty()) return MediaAction::Update;
    return fail(ErrorCode::InvalidArg, "invalid media action '{}' (expected eject, insert or update)", action);
}

Result<std::size_t> find_media_disk(const conf::DomainDef& def, std::string_view path) {
    const auto& disks = def.devices.disks;
    for (std::size_t i = 0; i < disks.size(); ++i) {
        const auto& d = disks[i];
        if (d.target_dev != path && (source_path(d).empty() || source_path(d) != path)) continue;
        if (d.device != "cdrom" && d.device != "floppy")
            return fail(ErrorCode::InvalidArg, "The disk device '{}' is not removable", d.target_dev);
        return i;
    }
    return fail(ErrorCode::InvalidArg, "No disk found whose source path or target is {}", path);
}

Result<conf::DomainDef> with_media(const conf::DomainDef& def, std::string_view path, MediaAction action,
                                   std::string_view source) {
    auto index = find_media_disk(def, path);
    if (!index) return std::unexpected(index.error());
    conf::DomainDef out = def;
    conf::Disk& d = out.devices.disks[*index];
    if (action == MediaAction::Insert) {
        if (source.empty()) return fail(ErrorCode::InvalidArg, "No disk source specified for inserting media");
        if (has_medium(d)) return fail(ErrorCode::InvalidArg, "The disk device '{}' already has media", d.target_dev);
    }
    if (action == MediaAction::Eject && !has_medium(d))
        return fail(ErrorCode::InvalidArg, "The disk device '{}' doesn't have media", d.target_dev);
    const std::string policy = d.source.startup_policy;
    d.source = conf::DiskSource{};
    d.source.startup_policy = policy;
    d.backing = conf::BackingStore{};
    if (action != MediaAction::Eject && !source.empty()) {
        if (d.type == "block") d.source.dev = std::string(source);
        else {
            d.type = "file";
            d.source.file = std::string(source);
        }
    }
    return out;
}

Status change_media_live(Monitor& mon, const conf::Disk& after, bool force) {
    const std::string& dev = after.info.alias;
    auto medium = mon.query_medium(dev);
    if (!medium) return std::unexpected(medium.error());
    if (!medium->found) return fail(ErrorCode::OperationFailed, "QEMU has no removable device '{}' for disk '{}'", dev, after.target_dev);
    // Out with the old medium: open the tray (the guest may be asked to
    // release a lock first), remove it and delete its nodes.
    if (!medium->node.empty() || !medium->tray_open) {
        VIREO_TRY(mon.blockdev_open_tray(dev, force));
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        for (;;) {
            auto m = mon.query_medium(dev);
            if (!m) return std::unexpected(m.error());
            if (m->tray_open) break;
            if (std::chrono::steady_clock::now() > deadline)
                return fail(ErrorCode::OperationFailed, "the guest keeps the tray of disk '{}' locked; use --force to open it anyway",
                            after.target_dev);
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (!medium->node.empty()) {
            VIREO_TRY(mon.blockdev_remove_medium(dev));
            VIREO_TRY(mon.blockdev_del(medium->node));
            const std::string& n = medium->node;
            if (n.ends_with("-format")) (void)mon.blockdev_del(n.substr(0, n.size() - 7) + "-storage");
        }
    }
    // In with the new one.
    const std::string path = source_path(after);
    if (!path.empty()) {
        const std::string base = next_media_node();
        const std::string storage = base + "-storage", format = base + "-format";
        nlohmann::json s = {{"driver", after.type == "block" ? "host_cdrom" : "file"}, {"filename", path},
                            {"node-name", storage}, {"auto-read-only", true}, {"discard", "unmap"}};
        if (after.device == "floppy" && after.type == "block") s["driver"] = "host_device";
        VIREO_TRY(mon.blockdev_add(s));
        nlohmann::json f = {{"node-name", format}, {"read-only", after.device == "cdrom" || after.readonly},
                            {"driver", after.driver_type.empty() ? "raw" : after.driver_type}, {"file", storage}};
        if (auto r = mon.blockdev_add(f); !r) {
            (void)mon.blockdev_del(storage);
            return r;
        }
        if (auto r = mon.blockdev_insert_medium(dev, format); !r) {
            (void)mon.blockdev_del(format);
            (void)mon.blockdev_del(storage);
            return r;
        }
    }
    return mon.blockdev_close_tray(dev);
}

}  // namespace vireo::qemu
