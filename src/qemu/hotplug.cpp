#include "qemu/hotplug.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <charconv>
#include <functional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "qemu/tuning.hpp"

namespace vireo::qemu {

std::string hotplug_node_prefix(const std::string& alias) {
    // "<prefix><n>-storage" must stay within 31 characters.
    if (alias.size() <= 14) return fmt::format("vireo-{}-", alias);
    return fmt::format("vireo-h{:08x}-", static_cast<std::uint32_t>(std::hash<std::string>{}(alias)));
}

Status check_disk_source_exists(const conf::Disk& disk) {
    auto check = [&](const std::string& type, const conf::DiskSource& src) -> Status {
        const std::string path = type == "file" ? src.file : type == "block" ? src.dev : "";
        if (path.empty()) return {};
        struct stat st{};
        if (::stat(path.c_str(), &st) == 0) return {};
        const int err = errno;
        if (err == ENOENT)
            return fail(ErrorCode::NotFound, "Cannot access storage file '{}' of disk '{}': No such file or directory", path,
                        disk.target_dev);
        return std::unexpected(errno_error(fmt::format("disk '{}': source '{}'", disk.target_dev, path), err));
    };
    if (disk.source.startup_policy == "optional") return {};
    VIREO_TRY(check(disk.type, disk.source));
    for (const conf::BackingStore* b = &disk.backing; b && b->present && !b->type.empty();
         b = b->chain.empty() ? nullptr : &b->chain.front())
        VIREO_TRY(check(b->type, b->source));
    return {};
}

Status attach_disk_live(Monitor& mon, const DiskHotplug& args) {
    std::vector<std::string> added;
    auto undo = [&] {
        for (auto it = added.rbegin(); it != added.rend(); ++it)
            if (auto st = mon.blockdev_del(*it); !st) spdlog::warn("hotplug rollback: blockdev-del {}: {}", *it, st.error().message);
    };
    for (const auto& node : args.nodes) {
        if (auto st = mon.blockdev_add(node); !st) {
            undo();
            return st;
        }
        added.push_back(node.value("node-name", ""));
    }
    if (auto st = mon.device_add(args.device); !st) {
        undo();
        return st;
    }
    return {};
}

namespace {

// The explicit backing layers of a disk (nodes vireo named; those QEMU
// opened from the image header go with their parent).
unsigned explicit_backing_layers(const conf::Disk& disk) {
    unsigned n = 0;
    for (const conf::BackingStore* b = &disk.backing; b && b->present && !b->type.empty();
         b = b->chain.empty() ? nullptr : &b->chain.front())
        ++n;
    return n;
}

// Delete the nodes of a disk whose top format node is `top`: named
// "<prefix><n>-format" by the command line (start or hotplug), the backing
// layers below at n-1, n-2, ... Errors are logged: the device is gone.
void delete_disk_nodes(Monitor& mon, const std::string& top, unsigned backing_layers) {
    auto del = [&](const std::string& node) {
        if (auto st = mon.blockdev_del(node); !st) spdlog::warn("blockdev-del {}: {}", node, st.error().message);
    };
    constexpr std::string_view suffix = "-format";
    const auto dash = top.size() > suffix.size() ? top.rfind('-', top.size() - suffix.size() - 1) : std::string::npos;
    unsigned n = 0;
    if (!top.ends_with(suffix) || dash == std::string::npos ||
        std::from_chars(top.data() + dash + 1, top.data() + top.size() - suffix.size(), n).ec != std::errc{}) {
        del(top);  // not a name vireo gave: QEMU drops its implicit children
        return;
    }
    const std::string prefix = top.substr(0, dash + 1);
    for (unsigned layer = 0; layer <= backing_layers && layer < n; ++layer) {
        del(fmt::format("{}{}-format", prefix, n - layer));
        del(fmt::format("{}{}-storage", prefix, n - layer));
    }
}

// Ask the guest to release device `id` (device_del) and wait at most
// `timeout` for QEMU's DEVICE_DELETED. False: the guest kept it.
Result<bool> unplug(Monitor& mon, const std::string& id, std::chrono::milliseconds timeout) {
    mon.forget_device_deleted(id);
    VIREO_TRY(mon.device_del(id));
    return mon.wait_device_deleted(id, timeout);
}

}  // namespace

Result<bool> detach_disk_live(Monitor& mon, const conf::Disk& disk, std::chrono::milliseconds timeout) {
    const std::string& id = disk.info.alias;
    if (id.empty()) return fail(ErrorCode::Internal, "disk '{}' has no alias in the live definition", disk.target_dev);
    auto medium = mon.query_medium(id);
    if (!medium) return std::unexpected(medium.error());
    auto gone = unplug(mon, id, timeout);
    if (!gone) return gone;
    if (!*gone) {
        if (!medium->node.empty()) mon.keep_late_node(id, medium->node);
        return false;
    }
    release_disk_nodes(mon, disk, medium->node);
    return true;
}

void release_disk_nodes(Monitor& mon, const conf::Disk& disk, const std::string& top) {
    if (!top.empty()) delete_disk_nodes(mon, top, explicit_backing_layers(disk));
}

Status attach_nic_live(Monitor& mon, const NicHotplug& args, const std::vector<std::pair<std::string, int>>& fds,
                       const conf::Interface& nic) {
    std::vector<std::string> given;
    // netdev_add takes the descriptors it names; the others are closed.
    auto close_given = [&] {
        for (const auto& name : given)
            if (auto st = mon.closefd(name); !st) spdlog::debug("hotplug rollback: closefd {}: {}", name, st.error().message);
    };
    for (const auto& [name, fd] : fds) {
        if (auto st = mon.getfd(name, fd); !st) {
            close_given();
            return st;
        }
        given.push_back(name);
    }
    if (auto st = mon.netdev_add(args.netdev); !st) {
        close_given();
        return st;
    }
    const std::string netdev_id = args.netdev.value("id", "");
    if (auto st = mon.device_add(args.device); !st) {
        if (auto del = mon.netdev_del(netdev_id); !del)
            spdlog::warn("hotplug rollback: netdev_del {}: {}", netdev_id, del.error().message);
        return st;
    }
    if (nic.link_state == "down") VIREO_TRY(mon.set_link(nic.info.alias, false));
    return {};
}

Result<bool> detach_nic_live(Monitor& mon, const conf::Interface& nic, std::chrono::milliseconds timeout) {
    const std::string& id = nic.info.alias;
    if (id.empty()) return fail(ErrorCode::Internal, "interface '{}' has no alias in the live definition", nic.mac);
    auto gone = unplug(mon, id, timeout);
    if (!gone || !*gone) return gone;
    release_nic_backend(mon, nic);
    return true;
}

void release_nic_backend(Monitor& mon, const conf::Interface& nic) {
    const std::string netdev = nic_netdev_id(nic.info.alias);
    if (auto st = mon.netdev_del(netdev); !st) spdlog::warn("netdev_del {}: {}", netdev, st.error().message);
}

Status attach_memory_live(Monitor& mon, const MemoryModuleArgs& args, conf::DomainDef& live) {
    const std::string backend_id = args.backend.value("id", "");
    VIREO_TRY(mon.object_add(nlohmann::json::parse(args.backend.dump())));
    if (auto st = mon.device_add(nlohmann::json::parse(args.device.dump())); !st) {
        if (auto del = mon.object_del(backend_id); !del)
            spdlog::warn("hotplug rollback: object-del {}: {}", backend_id, del.error().message);
        return st;
    }
    return refresh_memory_devices(mon, live);
}

Result<bool> detach_memory_live(Monitor& mon, const conf::MemoryDevice& mem, std::chrono::milliseconds timeout) {
    const std::string& id = mem.info.alias;
    if (id.empty()) return fail(ErrorCode::Internal, "memory module of {} KiB has no alias in the live definition", mem.target_size_kib);
    auto gone = unplug(mon, id, timeout);
    if (!gone || !*gone) return gone;
    release_memory_backend(mon, mem);
    return true;
}

void release_memory_backend(Monitor& mon, const conf::MemoryDevice& mem) {
    const std::string backend = memory_module_backend_id(mem);
    if (auto st = mon.object_del(backend); !st) spdlog::warn("object-del {}: {}", backend, st.error().message);
}

Result<std::string> attach_device_live(Monitor& mon, const DeviceHotplug& args) {
    std::vector<std::string> added;
    std::string chardev;
    auto roll_back = [&] {
        for (const auto& id : added)
            if (auto del = mon.object_del(id); !del) spdlog::warn("hotplug rollback: object-del {}: {}", id, del.error().message);
        if (!chardev.empty())
            if (auto del = mon.chardev_remove(chardev); !del)
                spdlog::warn("hotplug rollback: chardev-remove {}: {}", chardev, del.error().message);
    };
    for (const auto& o : args.objects) {
        if (auto st = mon.object_add(o); !st) {
            roll_back();
            return std::unexpected(st.error());
        }
        added.push_back(o.value("id", ""));
    }
    std::string pty;
    if (!args.chardev.is_null()) {
        auto r = mon.chardev_add(args.chardev);
        if (!r) {
            roll_back();
            return std::unexpected(r.error());
        }
        pty = std::move(*r);
        chardev = args.chardev.value("id", "");
    }
    if (!args.watchdog_action.empty()) {
        if (auto st = mon.watchdog_set_action(args.watchdog_action); !st) {
            roll_back();
            return std::unexpected(st.error());
        }
    }
    if (auto st = mon.device_add(args.device); !st) {
        roll_back();
        return std::unexpected(st.error());
    }
    return pty;
}

Result<bool> detach_device_live(Monitor& mon, const conf::PluggableDevice& dev, std::chrono::milliseconds timeout) {
    const std::string id = std::visit([](const auto& d) { return d.info.alias; }, dev);
    if (id.empty()) return fail(ErrorCode::Internal, "the device has no alias in the live definition");
    auto gone = unplug(mon, id, timeout);
    if (!gone || !*gone) return gone;
    release_device_backend(mon, dev);
    return true;
}

void release_device_backend(Monitor& mon, const conf::PluggableDevice& dev) {
    if (const auto* r = std::get_if<conf::Rng>(&dev)) {
        const std::string obj = rng_object_id(*r);
        if (auto st = mon.object_del(obj); !st) spdlog::warn("object-del {}: {}", obj, st.error().message);
    }
    if (const auto* ch = std::get_if<conf::CharDev>(&dev)) {
        const std::string id = channel_chardev_id(*ch);
        if (auto st = mon.chardev_remove(id); !st) spdlog::warn("chardev-remove {}: {}", id, st.error().message);
    }
}

}  // namespace vireo::qemu

