// External disk-only snapshots (virsh snapshot-create --disk-only, disks
// with snapshot='external'): each disk gets a new qcow2 overlay whose
// backing file is the image it used, and writes go to the overlay from then
// on; the image below stays as it was at snapshot time.
//
//   create   shut off: the image engine makes the overlays and the
//            definition points at them. Running: the image engine makes the
//            files, QEMU opens each (blockdev-add, no backing) and one
//            `transaction` of blockdev-snapshot puts all of them on top of
//            the disks at once; the live definition (and the persistent one)
//            point at them, with the <backingStore> chain below.
//   revert   the domain stops; each disk gets a NEW overlay on the image the
//            snapshot froze (its <domain>'s source), so that image stays
//            untouched and the snapshot stays revertable. The overlay left
//            (with what was written since) stays on disk.
//   delete   a leaf snapshot of a shut-off domain whose overlays are the
//            disks' current images: each overlay is committed into its base
//            (the image engine's commit), the disk points at the base again,
//            the overlay file goes.
//
// Refusals come before anything is changed; a failure on the way removes the
// overlays this operation made.
#include <algorithm>
#include <atomic>
#include <ctime>

#include <spdlog/spdlog.h>

#include "qemu/qemu_driver_impl.hpp"
#include "storage/commit.hpp"
#include "storage/image.hpp"
#include "storage/qcow2.hpp"

namespace vireo::qemu {

namespace fs = std::filesystem;

namespace {

// The image paths a definition uses: each disk's source and its backing chain.
std::vector<std::string> image_paths(const conf::DomainDef& def) {
    std::vector<std::string> out;
    auto add = [&](const std::string& type, const conf::DiskSource& src) {
        const std::string& p = type == "file" ? src.file : type == "block" ? src.dev : src.file;
        if (!p.empty()) out.push_back(p);
    };
    for (const auto& d : def.devices.disks) {
        add(d.type, d.source);
        for (const conf::BackingStore* b = &d.backing; b && b->present && !b->type.empty();
             b = b->chain.empty() ? nullptr : &b->chain.front())
            add(b->type, b->source);
    }
    return out;
}

std::string canonical(const std::string& p) {
    std::error_code ec;
    auto c = fs::weakly_canonical(p, ec);
    return ec ? p : c.string();
}

bool same_file(const std::string& a, const std::string& b) { return canonical(a) == canonical(b); }

// Point disk `d` at a new qcow2 overlay `overlay`: what it used becomes the
// first layer of its <backingStore> chain.
void put_overlay(conf::Disk& d, const std::string& overlay) {
    conf::BackingStore b;
    b.present = true;
    b.type = d.type;
    b.format = d.driver_type.empty() ? "raw" : d.driver_type;
    b.source = d.source;
    b.source.index.clear();
    if (d.backing.present) b.chain.push_back(d.backing);
    d.type = "file";
    d.source = conf::DiskSource{};
    d.source.file = overlay;
    d.driver_type = "qcow2";
    d.backing = std::move(b);
}

// One disk of an external snapshot: its target, the image it uses (the
// overlay's backing file) and its format, the overlay, its alias in QEMU.
struct Layer {
    std::string target;
    std::string base;
    std::string base_format;
    std::string overlay;
    std::string alias;
    bool made = false;  // the overlay file was created here
};

// A reused overlay: a qcow2 file whose recorded backing file is the disk's image.
Status check_reused(const Layer& l) {
    auto img = storage::open_image(l.overlay, {.open_backing = false, .force_share = true});
    if (!img) return std::unexpected(img.error().context(fmt::format("cannot open reused external snapshot file '{}'", l.overlay)));
    auto* q = dynamic_cast<storage::Qcow2Image*>(img->get());
    if (!q)
        return fail(ErrorCode::Unsupported,
                    "unsupported configuration: reused external snapshot file '{}' of disk '{}' is not qcow2: "
                    "an overlay must be qcow2",
                    l.overlay, l.target);
    const std::string recorded = q->backing_file_name();
    const std::string resolved = recorded.empty() ? std::string() : storage::resolve_backing_path(l.overlay, recorded).string();
    if (resolved.empty() || !same_file(resolved, l.base))
        return fail(ErrorCode::InvalidArg,
                    "invalid argument: reused external snapshot file '{}' of disk '{}' has backing file '{}', not the disk's image '{}'",
                    l.overlay, l.target, recorded, l.base);
    return {};
}

Status make_overlay(Layer& l) {
    storage::CreateOptions o;
    o.format = storage::ImageFormat::Qcow2;
    o.backing_file = l.base;
    o.backing_format = l.base_format;
    if (auto st = storage::create_image(l.overlay, o); !st) {
        std::error_code ec;
        fs::remove(l.overlay, ec);  // a half-written file of ours
        return std::unexpected(st.error().context(fmt::format("cannot create external snapshot file '{}' of disk '{}'", l.overlay, l.target)));
    }
    l.made = true;
    return {};
}

void remove_made(const std::vector<Layer>& layers) {
    for (const auto& l : layers) {
        if (!l.made) continue;
        std::error_code ec;
        if (!fs::remove(l.overlay, ec) && ec) spdlog::warn("cannot remove external snapshot file '{}': {}", l.overlay, ec.message());
    }
}

// QEMU node names of an overlay (at most 31 characters, unique in the QEMU).
std::pair<std::string, std::string> overlay_nodes(const std::string& target) {
    static std::atomic<unsigned> counter{0};
    const auto stamp = static_cast<unsigned long long>(std::time(nullptr)) % 100000000ULL;
    const std::string base = fmt::format("ext{}x{}-{}", stamp, counter++ % 1000, target.substr(0, 8));
    return {base + "-s", base + "-f"};
}

}  // namespace

Status QemuDriverImpl::save_config_def(DomainObject& obj, conf::DomainDef next) {
    auto made = driver::make_definition(std::move(next));
    VIREO_TRY(persistence.save_config(obj.name(), made.xml.str()));
    obj.with([&](DomainFields& f) { f.config = made; });
    return {};
}

std::optional<std::string> QemuDriverImpl::image_user(const std::string& path, std::string_view except) {
    for (const auto& other : registry.list()) {
        if (other->name() == except) continue;
        auto defs = other->with([](DomainFields& f) {
            std::vector<std::shared_ptr<const conf::DomainDef>> out;
            if (f.config) out.push_back(f.config->def);
            if (f.live) out.push_back(f.live->def);
            return out;
        });
        for (const auto& def : defs)
            for (const auto& p : image_paths(*def))
                if (same_file(p, path)) return other->name();
    }
    return std::nullopt;
}

Status QemuDriverImpl::create_external(const std::shared_ptr<DomainObject>& obj, const conf::SnapshotDef& snap, bool reuse) {
    const std::string domain = obj->name();
    auto [current, config] = obj->with([](DomainFields& f) {
        return std::pair{std::shared_ptr<const conf::DomainDef>(f.current().def),
                         f.config ? std::shared_ptr<const conf::DomainDef>(f.config->def) : nullptr};
    });
    const std::vector<std::string> own = image_paths(*current);

    // Every check before anything is made.
    std::vector<Layer> layers;
    for (const auto& sd : snap.disks) {
        if (sd.snapshot != "external") continue;
        const conf::Disk* disk = conf::find_disk_by_target(*current, sd.name);
        if (!disk) return fail(ErrorCode::InvalidArg, "unsupported configuration: no disk named '{}'", sd.name);
        Layer l{sd.name, disk->source.file, disk->driver_type.empty() ? "raw" : disk->driver_type, sd.source, disk->info.alias};
        for (const auto& other : layers)
            if (same_file(other.overlay, l.overlay))
                return fail(ErrorCode::InvalidArg, "invalid argument: disks '{}' and '{}' would share the external snapshot file '{}'",
                            other.target, l.target, l.overlay);
        for (const auto& p : own)
            if (same_file(p, l.overlay))
                return fail(ErrorCode::InvalidArg,
                            "invalid argument: external snapshot file '{}' of disk '{}' is an image the domain already uses", l.overlay,
                            l.target);
        if (auto user = image_user(l.overlay, domain))
            return fail(ErrorCode::InvalidArg, "invalid argument: external snapshot file '{}' of disk '{}' is in use by domain '{}'",
                        l.overlay, l.target, *user);
        std::error_code ec;
        const bool exists = fs::exists(l.overlay, ec);
        if (exists && !reuse)
            return fail(ErrorCode::InvalidArg,
                        "unsupported configuration: external snapshot file for disk {} already exists and is not a block device: {}",
                        l.target, l.overlay);
        if (!exists && reuse)
            return fail(ErrorCode::InvalidArg, "invalid argument: --reuse-external: external snapshot file '{}' of disk '{}' does not exist",
                        l.overlay, l.target);
        if (reuse) VIREO_TRY(check_reused(l));
        if (!exists && !fs::is_directory(fs::path(l.overlay).parent_path(), ec))
            return fail(ErrorCode::NotFound, "cannot create external snapshot file '{}' of disk '{}': no directory '{}'", l.overlay,
                        l.target, fs::path(l.overlay).parent_path().string());
        if (!fs::exists(l.base, ec))
            return fail(ErrorCode::NotFound, "disk '{}': source '{}' does not exist", l.target, l.base);
        layers.push_back(std::move(l));
    }
    if (layers.empty()) return fail(ErrorCode::InvalidArg, "invalid argument: the snapshot would cover no disk");

    for (auto& l : layers) {
        if (reuse) continue;
        if (auto st = make_overlay(l); !st) {
            remove_made(layers);
            return st;
        }
    }
    auto undo = [&](Status st) -> Status {
        remove_made(layers);
        return st;
    };
    // A definition's disk moves onto the overlay when it uses the image the
    // overlay was made on (a persistent definition changed since the start
    // keeps its own).
    auto switched = [&](const conf::DomainDef& def) {
        conf::DomainDef next = def;
        for (const auto& l : layers)
            for (auto& d : next.devices.disks)
                if (d.target_dev == l.target && d.type == "file" && same_file(d.source.file, l.base)) put_overlay(d, l.overlay);
        return next;
    };

    auto run = running(*obj);
    if (!run) {
        if (!config) return undo(fail(ErrorCode::InvalidState, "Requested operation is not valid: domain is not persistent"));
        if (auto st = save_config_def(*obj, switched(*config)); !st) return undo(st);
        return {};
    }

    // Running: QEMU opens each overlay, then takes all of them at once.
    auto& monitor = *run->priv->monitor;
    auto blocks = monitor.query_block();
    if (!blocks) return undo(std::unexpected(command_error(*obj, run->priv, blocks.error())));
    std::vector<std::pair<std::string, std::string>> actions;
    std::vector<std::string> added;
    auto drop_added = [&] {
        for (auto it = added.rbegin(); it != added.rend(); ++it)
            if (auto st = monitor.blockdev_del(*it); !st) spdlog::warn("blockdev-del {}: {}", *it, st.error().message);
    };
    for (auto& l : layers) {
        const conf::Disk* ld = conf::find_disk_by_target(*run->def, l.target);
        if (!ld || ld->info.alias.empty()) {
            drop_added();
            return undo(fail(ErrorCode::Internal, "disk '{}' has no alias in the live definition", l.target));
        }
        const BlockDeviceInfo* top = block_of(*blocks, ld->info.alias);
        if (!top) {
            drop_added();
            return undo(fail(ErrorCode::OperationFailed, "operation failed: QEMU has no block node for disk '{}'", l.target));
        }
        conf::Disk as_overlay = *ld;
        put_overlay(as_overlay, l.overlay);
        if (auto st = admit_disk(*run->def, as_overlay, run->priv->runtime_prefix); !st) {
            drop_added();
            return undo(st);
        }
        auto [storage_node, format_node] = overlay_nodes(l.target);
        nlohmann::json file = {{"driver", "file"}, {"filename", l.overlay}, {"node-name", storage_node}};
        if (ld->discard == "unmap") file["discard"] = "unmap";
        nlohmann::json format = {{"driver", "qcow2"}, {"node-name", format_node}, {"file", storage_node}, {"backing", nullptr}};
        if (ld->discard == "unmap") format["discard"] = "unmap";
        for (auto* node : {&file, &format}) {
            if (auto st = monitor.blockdev_add(*node); !st) {
                drop_added();
                return undo(std::unexpected(command_error(*obj, run->priv, st.error())));
            }
            added.push_back((*node)["node-name"].get<std::string>());
        }
        actions.emplace_back(top->node, format_node);
    }
    if (auto st = monitor.blockdev_snapshot(actions); !st) {
        drop_added();
        return undo(std::unexpected(command_error(*obj, run->priv, st.error())));
    }
    // From here the guest writes into the overlays: they are the disks now.
    publish_live(*obj, switched(*run->def));
    if (config) return save_config_def(*obj, switched(*config));
    return {};
}

Status QemuDriverImpl::revert_external(const std::shared_ptr<DomainObject>& obj, const conf::SnapshotDef& snap,
                                       const driver::ops::SnapshotRevert::Request& r) {
    const std::string domain = obj->name();
    const bool persistent = obj->with([](DomainFields& f) { return f.config.has_value(); });
    if (!persistent) return fail(ErrorCode::InvalidState, "Requested operation is not valid: cannot revert a transient domain to an external snapshot");
    // The images the snapshot froze are its definition's disk sources; each
    // gets a new overlay named after the snapshot ("<image>.<snapshot>-revertN").
    std::vector<Layer> layers;
    for (const auto& sd : snap.disks) {
        if (sd.snapshot != "external") continue;
        const conf::Disk* disk = conf::find_disk_by_target(*snap.domain, sd.name);
        if (!disk || disk->type != "file" || disk->source.file.empty())
            return fail(ErrorCode::InvalidArg, "invalid argument: snapshot '{}' has no file image of disk '{}' to revert to", snap.name,
                        sd.name);
        Layer l{sd.name, disk->source.file, disk->driver_type.empty() ? "raw" : disk->driver_type, "", ""};
        std::error_code ec;
        if (!fs::exists(l.base, ec))
            return fail(ErrorCode::NotFound, "cannot revert to snapshot '{}': its image '{}' of disk '{}' does not exist", snap.name, l.base,
                        l.target);
        for (unsigned n = 1;; ++n) {  // bounded: the names taken are finitely many
            l.overlay = conf::default_external_snapshot_path(l.base, fmt::format("{}-revert{}", snap.name, n));
            if (!fs::exists(l.overlay, ec) && !image_user(l.overlay, "")) break;
        }
        layers.push_back(std::move(l));
    }
    if (layers.empty()) return fail(ErrorCode::InvalidArg, "invalid argument: snapshot '{}' has no external disk", snap.name);

    // The overlays first (the frozen images are only read: a running guest
    // does not mind), then the domain stops.
    for (auto& l : layers) {
        if (auto st = make_overlay(l); !st) {
            remove_made(layers);
            return st;
        }
    }
    if (auto st = stop_for_revert(obj); !st) {
        remove_made(layers);
        return st;
    }
    conf::DomainDef next = *snap.domain;
    for (const auto& l : layers)
        for (auto& d : next.devices.disks)
            if (d.target_dev == l.target) put_overlay(d, l.overlay);
    if (auto st = save_config_def(*obj, std::move(next)); !st) {
        remove_made(layers);
        return st;
    }
    for (const auto& l : layers)
        spdlog::info("domain '{}': disk '{}' reverted to snapshot '{}' on the new overlay '{}'", domain, l.target, snap.name, l.overlay);
    if (r.running || r.paused) {
        auto cfg_def = obj->with([](DomainFields& f) { return f.config; });
        if (!cfg_def) return fail(ErrorCode::InvalidState, "Requested operation is not valid: domain is not persistent");
        VIREO_TRY(start(obj, *cfg_def, StartOptions{r.paused}));
    }
    return {};
}

Status QemuDriverImpl::delete_external(const std::shared_ptr<DomainObject>& obj, const conf::SnapshotDef& snap, bool has_children) {
    auto why = [&](std::string_view reason) {
        return fail(ErrorCode::Unsupported,
                    "unsupported configuration: deleting the data of external snapshot '{}' {} is not supported yet; "
                    "snapshot-delete --metadata drops only its metadata and leaves the images as they are",
                    snap.name, reason);
    };
    if (has_children) return why("that has child snapshots");
    auto [active, config] = obj->with([](DomainFields& f) {
        return std::pair{f.active(), f.config ? std::shared_ptr<const conf::DomainDef>(f.config->def) : nullptr};
    });
    if (active) return why("of a running domain (shut it off first)");
    if (!config || !snap.domain) return why("without the domain definitions it was taken of");

    // Each overlay must be its disk's current image, backed by the image
    // the snapshot froze: then committing it leaves the guest's view as it is.
    struct Merge {
        std::string target, overlay;
        const conf::Disk* base;
    };
    std::vector<Merge> merges;
    for (const auto& sd : snap.disks) {
        if (sd.snapshot != "external") continue;
        const conf::Disk* now = conf::find_disk_by_target(*config, sd.name);
        const conf::Disk* then = conf::find_disk_by_target(*snap.domain, sd.name);
        if (!now || now->source.file.empty() || !same_file(now->source.file, sd.source))
            return why(fmt::format("whose overlay '{}' is no longer the current image of disk '{}' (the domain was reverted or changed since)",
                                   sd.source, sd.name));
        if (!then || then->type != "file" || then->source.file.empty())
            return why(fmt::format("without the image of disk '{}' it was taken of", sd.name));
        auto img = storage::open_image(sd.source, {.format = storage::ImageFormat::Qcow2, .open_backing = false});
        if (!img) return std::unexpected(img.error().context(fmt::format("cannot open external snapshot file '{}'", sd.source)));
        auto* q = dynamic_cast<storage::Qcow2Image*>(img->get());
        const std::string recorded = q ? q->backing_file_name() : std::string();
        if (recorded.empty() || !same_file(storage::resolve_backing_path(sd.source, recorded).string(), then->source.file))
            return why(fmt::format("whose overlay '{}' is not backed by the image '{}' any more", sd.source, then->source.file));
        if (!q->snapshots().empty())
            return why(fmt::format("whose overlay '{}' holds internal snapshots", sd.source));
        (void)q->close();
        merges.push_back({sd.name, sd.source, then});
    }
    // Commit each overlay into its base; the definition then points at the
    // bases, and the overlays go. A commit that fails leaves the definition
    // on the overlay, which still shows everything.
    for (const auto& m : merges) {
        storage::CommitOptions co;
        co.path = m.overlay;
        co.format = "qcow2";
        if (auto st = storage::commit(co); !st)
            return std::unexpected(st.error().context(fmt::format("cannot commit external snapshot file '{}' of disk '{}'", m.overlay, m.target)));
    }
    conf::DomainDef next = *config;
    for (const auto& m : merges)
        for (auto& d : next.devices.disks)
            if (d.target_dev == m.target) {
                d.type = m.base->type;
                d.source = m.base->source;
                d.driver_type = m.base->driver_type;
                d.backing = m.base->backing;
            }
    VIREO_TRY(save_config_def(*obj, std::move(next)));
    for (const auto& m : merges) {
        std::error_code ec;
        if (!fs::remove(m.overlay, ec) && ec) spdlog::warn("cannot remove committed external snapshot file '{}': {}", m.overlay, ec.message());
    }
    return {};
}

}  // namespace vireo::qemu
