// Domain snapshots (virsh snapshot-*): internal snapshots, their metadata
// and tree.
//
// Internal snapshots live inside the qcow2 images: of a running domain
// (memory and disks) through QEMU 7.2's snapshot-save / snapshot-load /
// snapshot-delete jobs on the typed monitor, of a shut-off one (disks only)
// through the image engine's qcow2 snapshot code. The metadata (one
// <domainsnapshot> per snapshot with the domain definition at snapshot time,
// the current marker) is kept by driver::SnapshotStore beside the domain
// definitions; the tree is derived from each snapshot's parent.
//
// External disk-only snapshots are qemu_snapshot_external.cpp's. External
// memory, --quiesce and --live are refused as not supported yet.
#include <algorithm>
#include <ctime>
#include <thread>

#include <spdlog/spdlog.h>

#include "qemu/qemu_driver_impl.hpp"
#include "storage/image.hpp"
#include "storage/qcow2.hpp"

namespace vireo::qemu {

namespace fs = std::filesystem;

namespace {

Error not_supported_yet(std::string_view what) {
    return Error{ErrorCode::Unsupported, fmt::format("unsupported configuration: {} is not supported yet", what)};
}

Error invalid_state(std::string_view what) {
    return Error{ErrorCode::InvalidState, fmt::format("Requested operation is not valid: {}", what)};
}

// The disks of `def` an internal snapshot covers, with their image paths;
// refuses what an internal snapshot cannot hold (raw images, non-file
// storage) before anything is touched.
using SnapDisk = QemuDriverImpl::SnapDisk;

Result<std::vector<SnapDisk>> internal_disks(const conf::SnapshotDef& snap, const conf::DomainDef& def) {
    std::vector<SnapDisk> out;
    for (const auto& d : snap.disks) {
        if (d.snapshot != "internal") continue;
        const conf::Disk* disk = conf::find_disk_by_target(def, d.name);
        if (!disk) return fail(ErrorCode::InvalidArg, "invalid argument: no disk named '{}'", d.name);
        if (disk->type != "file")
            return std::unexpected(not_supported_yet(fmt::format("an internal snapshot of disk '{}' of type '{}'", d.name, disk->type)));
        out.push_back({d.name, disk->source.file, disk->info.alias});
    }
    return out;
}

// An external disk of a snapshot: a file (vireo makes qcow2 overlays of
// file images), named by libvirt's default when the document names none.
Status align_external_disk(conf::SnapshotDisk& sd, const conf::Disk& disk, std::string_view snapshot) {
    if (disk.type != "file")
        return std::unexpected(not_supported_yet(fmt::format("an external snapshot of disk '{}' of type '{}'", disk.target_dev, disk.type)));
    if (sd.type == "block") return std::unexpected(not_supported_yet(fmt::format("an external snapshot of disk '{}' onto a block device", disk.target_dev)));
    sd.type = "file";
    if (sd.driver_type.empty()) sd.driver_type = "qcow2";
    if (sd.driver_type != "qcow2")
        return fail(ErrorCode::Unsupported,
                    "unsupported configuration: external snapshot format for disk {} is unsupported: {} (an overlay must be qcow2)",
                    disk.target_dev, sd.driver_type);
    if (sd.source.empty()) {
        if (disk.source.file.empty())
            return fail(ErrorCode::InvalidArg, "unsupported configuration: cannot generate external snapshot name for disk '{}' without source",
                        disk.target_dev);
        sd.source = conf::default_external_snapshot_path(disk.source.file, snapshot);
    }
    return {};
}

// libvirt's alignment of a create document with the domain: every disk gets
// a mode (listed, else its own snapshot= attribute, else external for a
// writable disk of a disk-only snapshot, internal for one of any other, and
// no for a read-only one or a cdrom), the memory a mode from the domain's
// state; an external disk gets its default file and the qcow2 format. What
// vireo cannot do yet is refused here.
Status align(conf::SnapshotDef& snap, const conf::DomainDef& def, bool active, bool disk_only) {
    if (disk_only && snap.memory.empty()) snap.memory = "no";
    if (snap.memory == "external") return std::unexpected(not_supported_yet("an external memory snapshot"));
    if (snap.memory == "internal" && (!active || disk_only))
        return fail(ErrorCode::InvalidArg, "unsupported configuration: memory state cannot be saved with offline or disk-only snapshot");
    for (const auto& d : snap.disks) {
        if (!conf::find_disk_by_target(def, d.name))
            return fail(ErrorCode::InvalidArg, "unsupported configuration: no disk named '{}'", d.name);
        if (d.snapshot == "manual") return std::unexpected(not_supported_yet("a manual disk snapshot"));
        if (d.snapshot == "internal" && disk_only)
            return fail(ErrorCode::InvalidArg, "unsupported configuration: disk-only snapshot cannot be internal (disk '{}')", d.name);
    }
    std::vector<conf::SnapshotDisk> aligned;
    for (const auto& disk : def.devices.disks) {
        conf::SnapshotDisk sd;
        sd.name = disk.target_dev;
        for (const auto& d : snap.disks)
            if (d.name == disk.target_dev) sd = d;
        if (sd.snapshot.empty()) {
            if (disk.readonly || disk.device == "cdrom") sd.snapshot = "no";
            else if (!disk.snapshot.empty()) sd.snapshot = disk.snapshot;
            else sd.snapshot = disk_only ? "external" : "internal";
        }
        if (sd.snapshot == "manual") return std::unexpected(not_supported_yet("a manual disk snapshot"));
        if (sd.snapshot == "internal") {
            std::string format = disk.driver_type.empty() ? "raw" : disk.driver_type;
            if (format != "qcow2")
                return fail(ErrorCode::Unsupported,
                            "unsupported configuration: internal snapshot for disk {} unsupported for storage type {}",
                            disk.target_dev, format);
        }
        if (sd.snapshot == "external") VIREO_TRY(align_external_disk(sd, disk, snap.name));
        aligned.push_back(std::move(sd));
    }
    const bool any_external = std::any_of(aligned.begin(), aligned.end(), [](const auto& d) { return d.snapshot == "external"; });
    const bool any_internal = std::any_of(aligned.begin(), aligned.end(), [](const auto& d) { return d.snapshot == "internal"; });
    if (any_external && any_internal)
        return fail(ErrorCode::Unsupported, "unsupported configuration: mixing internal and external targets for a snapshot is not yet supported");
    if (snap.memory.empty()) {
        // An external disk of a running domain goes with an external memory
        // state (libvirt's default), which vireo does not write yet.
        if (any_external && active)
            return std::unexpected(not_supported_yet(
                "an external disk snapshot of a running domain with its memory (an external memory snapshot); "
                "use --disk-only"));
        snap.memory = active ? "internal" : "no";
    }
    if (any_external && snap.memory != "no")
        return fail(ErrorCode::Unsupported, "unsupported configuration: mixing internal and external targets for a snapshot is not yet supported");
    snap.disks = std::move(aligned);
    snap.disks_present = true;
    return {};
}

// The qcow2 image at `path`, opened for writing (shut-off domain only).
Result<storage::ImagePtr> open_qcow2(const std::string& path) {
    auto img = storage::open_image(path, {.format = storage::ImageFormat::Qcow2, .writable = true});
    if (!img) return std::unexpected(img.error().context(fmt::format("cannot open disk image '{}'", path)));
    return img;
}

storage::Qcow2Image* as_qcow2(storage::ImagePtr& img) { return dynamic_cast<storage::Qcow2Image*>(img.get()); }

bool has_tag(storage::Qcow2Image& q, std::string_view tag) {
    for (const auto& s : q.snapshots())
        if (s.name == tag) return true;
    return false;
}

// One image-engine step on every disk: create, apply or delete `tag`.
enum class ImageStep { Create, Apply, Delete };

Status image_step(const std::string& path, std::string_view tag, ImageStep step) {
    auto img = open_qcow2(path);
    if (!img) return std::unexpected(img.error());
    auto* q = as_qcow2(*img);
    if (!q) return fail(ErrorCode::Unsupported, "disk image '{}' is not qcow2", path);
    Status st;
    const std::string name(tag);
    switch (step) {
        case ImageStep::Create:
            if (has_tag(*q, tag)) return fail(ErrorCode::InvalidArg, "disk image '{}' already has a snapshot named '{}'", path, tag);
            st = q->snapshot_create(name);
            break;
        case ImageStep::Apply:
            if (!has_tag(*q, tag)) return fail(ErrorCode::NotFound, "disk image '{}' has no snapshot named '{}'", path, tag);
            st = q->snapshot_apply(name);
            break;
        case ImageStep::Delete:
            if (!has_tag(*q, tag)) {
                spdlog::warn("disk image '{}' has no snapshot named '{}' any more", path, tag);
                return q->close();
            }
            st = q->snapshot_delete(name);
            break;
    }
    if (!st) {
        (void)q->close();
        return std::unexpected(st.error().context(fmt::format("disk image '{}'", path)));
    }
    return q->close();
}

// QEMU's job ids for the snapshot jobs vireo starts (one at a time per
// domain: they run under the domain's async job).
constexpr std::string_view kSaveJob = "vireo-snapshot-save";
constexpr std::string_view kLoadJob = "vireo-snapshot-load";
constexpr std::string_view kDeleteJob = "vireo-snapshot-delete";

// The format node of each disk (by alias) of a running domain.
Result<std::vector<std::string>> disk_nodes(Monitor& monitor, const std::vector<SnapDisk>& disks) {
    auto blocks = monitor.query_block();
    if (!blocks) return std::unexpected(blocks.error());
    std::vector<std::string> out;
    for (const auto& d : disks) {
        const BlockDeviceInfo* b = block_of(*blocks, d.alias);
        if (!b) return fail(ErrorCode::OperationFailed, "operation failed: QEMU has no block node for disk '{}'", d.target);
        out.push_back(b->node);
    }
    return out;
}

// The snapshot's disks as the running instance has them: its aliases (the
// definition kept with a snapshot is the inactive one, without aliases), and
// the same image files, else the snapshot is not in what QEMU has open.
Status use_live_disks(const conf::DomainDef& live, std::vector<SnapDisk>& disks, std::string_view snapshot) {
    for (auto& d : disks) {
        const conf::Disk* ld = conf::find_disk_by_target(live, d.target);
        if (!ld || ld->source.file != d.path)
            return std::unexpected(not_supported_yet(fmt::format(
                "using snapshot '{}' of a running domain whose disk '{}' changed since", snapshot, d.target)));
        d.alias = ld->info.alias;
    }
    return {};
}

// Follow QEMU's job `id` until it concludes, then dismiss it.
Status wait_qemu_job(Monitor& monitor, std::string_view id, std::string_view what) {
    for (;;) {  // bounded by QEMU: a snapshot job always concludes (or QEMU dies, failing query-jobs)
        auto jobs = monitor.query_jobs();
        if (!jobs) return std::unexpected(jobs.error());
        const QemuJobInfo* mine = nullptr;
        for (const auto& j : *jobs)
            if (j.id == id) mine = &j;
        if (!mine) return fail(ErrorCode::OperationFailed, "operation failed: QEMU's {} job disappeared", what);
        if (mine->status == "concluded" || mine->status == "null") {
            std::string error = mine->error;
            (void)monitor.job_dismiss(id);
            if (!error.empty()) return fail(ErrorCode::OperationFailed, "operation failed: {}: {}", what, error);
            return {};
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

// Pause ("from snapshot") or resume the guest's vCPUs for a snapshot job.
Status set_vcpus(QemuDriverImpl& d, const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv,
                 bool run) {
    using Command = Expectation::Command;
    if (run) VIREO_TRY(d.apply(obj, priv, in::Resume{"from snapshot", ""}));
    else VIREO_TRY(d.apply(obj, priv, in::Pause{"from snapshot"}));
    auto st = run ? priv->monitor->cont() : priv->monitor->stop();
    (void)d.apply_in_order(obj, priv, in::Reply{run ? Command::Cont : Command::Stop, st.has_value()});
    if (!st) return std::unexpected(d.command_error(*obj, priv, st.error()));
    return {};
}

}  // namespace

driver::SnapshotSummary QemuDriverImpl::snapshot_summary(const conf::SnapshotDef& s, const std::string& current) {
    driver::SnapshotSummary out;
    out.name = s.name;
    out.parent = s.parent;
    out.state = s.state;
    out.creation_time = s.creation_time ? static_cast<std::uint64_t>(*s.creation_time) : 0;
    out.location = s.is_external() ? "external" : s.is_internal() ? "internal" : "none";
    out.current = s.name == current;
    return out;
}

Result<std::string> QemuDriverImpl::snapshot_create(driver::AsyncJobGuard& guard, const driver::ops::SnapshotCreate::Request& r) {
    auto& obj = guard.object();
    if (r.quiesce) return std::unexpected(not_supported_yet("--quiesce (it needs the guest agent)"));
    if (r.live) return std::unexpected(not_supported_yet("--live"));
    if (r.current && !r.redefine) return fail(ErrorCode::InvalidArg, "invalid argument: --current requires --redefine");
    if (r.redefine && (r.no_metadata || r.halt)) return fail(ErrorCode::InvalidArg, "invalid argument: --redefine cannot be combined with --no-metadata or --halt");
    auto parsed = conf::parse_snapshot_xml(r.xml.empty() ? std::string_view("<domainsnapshot/>") : std::string_view(r.xml),
                                           {.redefine = r.redefine});
    if (!parsed) return std::unexpected(parsed.error());
    conf::SnapshotDef snap = std::move(*parsed);
    const std::string domain = obj.name();
    settle_pending_snapshots(guard.ptr());
    auto loaded = snapshots.load(domain);

    if (r.redefine) {
        if (snap.name.empty()) return fail(ErrorCode::InvalidArg, "invalid argument: a redefined snapshot needs a name");
        if (!snap.parent.empty()) {
            if (!loaded.snapshots.contains(snap.parent))
                return fail(ErrorCode::NotFound, "Domain snapshot not found: parent '{}' of snapshot '{}' does not exist", snap.parent, snap.name);
            // No cycles: the parent must not be the snapshot or below it.
            auto below = loaded.tree().descendants(snap.name);
            if (snap.parent == snap.name || std::find(below.begin(), below.end(), snap.parent) != below.end())
                return fail(ErrorCode::InvalidArg, "invalid argument: parent '{}' would make a cycle in the snapshot tree", snap.parent);
        }
        if (!snap.creation_time) snap.creation_time = static_cast<std::int64_t>(std::time(nullptr));
        if (!snap.domain) snap.domain = *obj.with([](DomainFields& f) { return f.inactive().def; });
        VIREO_TRY(snapshots.save(domain, snap));
        if (r.current) VIREO_TRY(snapshots.set_current(domain, snap.name));
        return snap.name;
    }

    auto now = static_cast<std::int64_t>(std::time(nullptr));
    snap.creation_time = now;
    if (snap.name.empty()) snap.name = std::to_string(now);
    VIREO_TRY(conf::validate_snapshot_name(snap.name));
    if (loaded.snapshots.contains(snap.name))
        return fail(ErrorCode::InvalidArg, "invalid argument: domain snapshot '{}' already exists", snap.name);
    auto state = obj.with([](DomainFields& f) { return f.state; });
    const bool active = state != DomainState::Shutoff;
    if (active && state != DomainState::Running && state != DomainState::Paused)
        return std::unexpected(invalid_state(fmt::format("cannot snapshot domain in state '{}'", driver::state_name(state))));
    std::shared_ptr<const conf::DomainDef> def = obj.with([](DomainFields& f) { return f.current().def; });
    VIREO_TRY(align(snap, *def, active, r.disk_only));
    if (snap.is_external()) {
        snap.state = r.disk_only || active ? "disk-snapshot" : "shutoff";
        snap.parent = r.no_metadata ? "" : loaded.current;
        snap.domain = *obj.with([](DomainFields& f) { return f.inactive().def; });
        guard.job().set_phase("snapshot");
        VIREO_TRY(create_external(guard.ptr(), snap, r.reuse_external));
        if (!r.no_metadata) {
            VIREO_TRY(snapshots.save(domain, snap));
            VIREO_TRY(snapshots.set_current(domain, snap.name));
        }
        if (r.halt) VIREO_TRY(stop_for_revert(guard.ptr()));
        return snap.name;
    }
    if (r.reuse_external) return fail(ErrorCode::InvalidArg, "invalid argument: --reuse-external is only for external snapshots");
    auto disks = internal_disks(snap, *def);
    if (!disks) return std::unexpected(disks.error());
    if (disks->empty()) return fail(ErrorCode::InvalidArg, "invalid argument: the snapshot would cover no disk");
    snap.state = active ? (state == DomainState::Paused ? "paused" : "running") : "shutoff";
    snap.parent = r.no_metadata ? "" : loaded.current;
    // The definition a revert goes back to: the persistent one (a
    // transient domain's live one), without the live-only details.
    snap.domain = *obj.with([](DomainFields& f) { return f.inactive().def; });

    // Crash safety: the record first, then the data, then the metadata
    // (snapshot_store.hpp; settle_pending_snapshots finishes or undoes it).
    if (!r.no_metadata) VIREO_TRY(snapshots.save_pending(domain, snap));
    auto undo_record = [&](Status st) -> Result<std::string> {
        if (!r.no_metadata) (void)snapshots.remove_pending(domain, snap.name);
        return std::unexpected(st.error());
    };
    guard.job().set_phase("snapshot");
    if (active) {
        auto run = running(obj);
        if (!run) return undo_record(std::unexpected(run.error()));
        auto& monitor = *run->priv->monitor;
        auto nodes = disk_nodes(monitor, *disks);
        if (!nodes) return undo_record(std::unexpected(nodes.error()));
        // The guest pauses "from snapshot" while QEMU writes (as libvirt's
        // internal snapshots), and runs again after, whatever the outcome.
        const bool was_running = run->state == DomainState::Running;
        if (was_running)
            if (auto st = set_vcpus(*this, guard.ptr(), run->priv, false); !st) return undo_record(st);
        Status saved = monitor.snapshot_save(kSaveJob, snap.name, nodes->front(), *nodes);
        if (saved) saved = wait_qemu_job(monitor, kSaveJob, "snapshot-save");
        if (!saved) saved = std::unexpected(command_error(obj, run->priv, saved.error()));
        if (was_running)
            if (auto st = set_vcpus(*this, guard.ptr(), run->priv, true); !st && saved) saved = st;
        if (!saved) return undo_record(saved);
    } else {
        // All or nothing: a failure on one disk removes the tag from the
        // disks done before it.
        std::vector<std::string> done;
        for (const auto& d : *disks) {
            if (auto st = image_step(d.path, snap.name, ImageStep::Create); !st) {
                for (const auto& p : done) (void)image_step(p, snap.name, ImageStep::Delete);
                return undo_record(std::unexpected(st.error()));
            }
            done.push_back(d.path);
        }
    }
    if (!r.no_metadata) VIREO_TRY(snapshots.commit_pending(domain, snap));
    if (r.halt && active) VIREO_TRY(stop_for_revert(guard.ptr()));
    return snap.name;
}

Result<std::vector<driver::SnapshotSummary>> QemuDriverImpl::snapshot_list(DomainObject& obj) {
    auto loaded = snapshots.load(obj.name());
    std::vector<driver::SnapshotSummary> out;
    for (const auto& [name, s] : loaded.snapshots) out.push_back(snapshot_summary(s, loaded.current));
    return out;
}

Result<std::string> QemuDriverImpl::snapshot_xml(DomainObject& obj, std::string_view name) {
    auto loaded = snapshots.load(obj.name());
    auto s = loaded.find(name);
    if (!s) return std::unexpected(s.error());
    return conf::format_snapshot_xml(**s);
}

// Stop a running domain for a revert (under the revert's async job, which
// allows the destroy job).
Status QemuDriverImpl::stop_for_revert(const std::shared_ptr<DomainObject>& obj) {
    auto run = running(*obj);
    if (!run) return {};
    (void)apply(obj, run->priv, in::Destroy{});
    auto job = driver::acquire_job(obj, driver::JobType::Destroy, "destroy");
    if (!job) return std::unexpected(job.error());
    auto again = running(*obj);
    if (!again || again->priv != run->priv) return {};
    return apply(obj, run->priv, in::DestroyKill{false});
}

Status QemuDriverImpl::snapshot_revert(driver::AsyncJobGuard& guard, const driver::ops::SnapshotRevert::Request& r) {
    const auto& obj = guard.ptr();
    if (r.running && r.paused) return fail(ErrorCode::InvalidArg, "invalid argument: --running and --paused are mutually exclusive");
    const std::string domain = obj->name();
    settle_pending_snapshots(obj);
    auto loaded = snapshots.load(domain);
    auto found = loaded.find(r.name);
    if (!found) return std::unexpected(found.error());
    const conf::SnapshotDef snap = **found;
    if (!snap.domain)
        return fail(ErrorCode::InvalidArg, "invalid argument: snapshot '{}' lacks the domain definition to revert to", snap.name);
    if (snap.is_external()) {
        if (snap.memory == "external") return std::unexpected(not_supported_yet("reverting to an external memory snapshot"));
        if (snap.is_internal())
            return std::unexpected(not_supported_yet("reverting to a snapshot that mixes internal and external disks"));
        guard.job().set_phase("revert");
        VIREO_TRY(revert_external(obj, snap, r));
        return snapshots.set_current(domain, snap.name);
    }
    auto disks = internal_disks(snap, *snap.domain);
    if (!disks) return std::unexpected(disks.error());
    const bool with_memory = snap.memory == "internal";
    if (!with_memory && snap.state != "shutoff")
        return std::unexpected(not_supported_yet(fmt::format("reverting to a snapshot in state '{}'", snap.state)));

    // The definition must be the one the snapshot was taken of: a different
    // device set cannot take the saved memory or disks.
    auto [config, active] = obj->with([](DomainFields& f) {
        return std::pair{f.config ? f.config->def : f.current().def, f.active()};
    });
    if (conf::format_domain_xml(*config) != conf::format_domain_xml(*snap.domain)) {
        if (!r.force)
            return std::unexpected(invalid_state(fmt::format(
                "snapshot '{}' was taken of a different definition of domain '{}'; revert with --force to go back to it",
                snap.name, domain)));
        auto redefined = driver::make_definition(*snap.domain);
        VIREO_TRY(persistence.save_config(domain, redefined.xml.str()));
        obj->with([&](DomainFields& f) { f.config = redefined; });
        VIREO_TRY(stop_for_revert(obj));
        active = false;
    }

    guard.job().set_phase("revert");
    const bool want_running = r.running || (!r.paused && snap.state == "running");
    if (with_memory) {
        if (!active) {
            auto cfg_def = obj->with([](DomainFields& f) { return f.config; });
            if (!cfg_def) return std::unexpected(invalid_state("domain is not persistent"));
            VIREO_TRY(start(obj, *cfg_def, StartOptions{true}));
        }
        auto run = running(*obj);
        if (!run) return std::unexpected(run.error());
        auto priv = run->priv;
        if (run->state != DomainState::Paused) VIREO_TRY(set_vcpus(*this, obj, priv, false));
        VIREO_TRY(use_live_disks(*run->def, *disks, snap.name));
        auto nodes = disk_nodes(*priv->monitor, *disks);
        if (!nodes) return std::unexpected(nodes.error());
        if (auto st = priv->monitor->snapshot_load(kLoadJob, snap.name, nodes->front(), *nodes); !st)
            return std::unexpected(command_error(*obj, priv, st.error()));
        if (auto st = wait_qemu_job(*priv->monitor, kLoadJob, "snapshot-load"); !st)
            return std::unexpected(command_error(*obj, priv, st.error()));
        if (want_running) VIREO_TRY(set_vcpus(*this, obj, priv, true));
    } else {
        VIREO_TRY(stop_for_revert(obj));
        for (const auto& d : *disks) VIREO_TRY(image_step(d.path, snap.name, ImageStep::Apply));
        if (r.running || r.paused) {
            auto cfg_def = obj->with([](DomainFields& f) { return f.config; });
            if (!cfg_def) return std::unexpected(invalid_state("domain is not persistent"));
            VIREO_TRY(start(obj, *cfg_def, StartOptions{r.paused}));
        }
    }
    return snapshots.set_current(domain, snap.name);
}

Status QemuDriverImpl::snapshot_delete(driver::AsyncJobGuard& guard, const driver::ops::SnapshotDelete::Request& r) {
    const auto& obj = guard.ptr();
    if (r.children && r.children_only)
        return fail(ErrorCode::InvalidArg, "invalid argument: --children and --children-only are mutually exclusive");
    const std::string domain = obj->name();
    settle_pending_snapshots(obj);
    auto loaded = snapshots.load(domain);
    auto found = loaded.find(r.name);
    if (!found) return std::unexpected(found.error());
    const auto tree = loaded.tree();
    std::vector<std::string> doomed;
    if (!r.children_only) doomed.push_back(r.name);
    if (r.children || r.children_only) {
        auto below = tree.descendants(r.name);
        doomed.insert(doomed.end(), below.begin(), below.end());
    }
    guard.job().set_phase("delete");
    if (!r.metadata) {
        for (const auto& name : doomed) {
            if (!loaded.snapshots.at(name).is_external()) continue;
            if (doomed.size() > 1)
                return std::unexpected(not_supported_yet(fmt::format(
                    "deleting external snapshot '{}' together with other snapshots; delete them one at a time, leaves first "
                    "(or only their metadata with --metadata)",
                    name)));
            VIREO_TRY(delete_external(obj, loaded.snapshots.at(name), !tree.children(name).empty()));
        }
    }
    // The data first, leaves before their parents.
    if (!r.metadata) {
        for (auto it = doomed.rbegin(); it != doomed.rend(); ++it) {
            const auto& s = loaded.snapshots.at(*it);
            const conf::DomainDef& def = s.domain ? *s.domain : *obj->with([](DomainFields& f) { return f.inactive().def; });
            auto disks = internal_disks(s, def);
            if (!disks) return std::unexpected(disks.error());
            auto run = running(*obj);
            if (run) {
                // The images are QEMU's while it runs: its snapshot-delete job.
                VIREO_TRY(use_live_disks(*run->def, *disks, s.name));
                VIREO_TRY(delete_live_tag(obj, run->priv, s.name, *disks));
                continue;
            }
            for (const auto& d : *disks) VIREO_TRY(image_step(d.path, s.name, ImageStep::Delete));
        }
    }
    // Then the metadata: the current marker moves up, surviving children
    // are reparented before their parent's file goes.
    std::string current = loaded.current;
    const std::string new_parent = loaded.snapshots.at(r.name).parent;
    if (!current.empty() && std::find(doomed.begin(), doomed.end(), current) != doomed.end())
        current = r.children_only ? r.name : new_parent;
    if (current != loaded.current) VIREO_TRY(snapshots.set_current(domain, current));
    if (!r.children && !r.children_only) {
        for (const auto& child : tree.children(r.name)) {
            conf::SnapshotDef c = loaded.snapshots.at(child);
            c.parent = new_parent;
            VIREO_TRY(snapshots.save(domain, c));
        }
    }
    for (auto it = doomed.rbegin(); it != doomed.rend(); ++it) VIREO_TRY(snapshots.remove(domain, *it));
    return {};
}

// QEMU's snapshot-delete job for `tag` on the disks of the running domain.
Status QemuDriverImpl::delete_live_tag(const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv,
                                       std::string_view tag, const std::vector<SnapDisk>& disks) {
    auto nodes = disk_nodes(*priv->monitor, disks);
    if (!nodes) return std::unexpected(nodes.error());
    if (auto st = priv->monitor->snapshot_delete(kDeleteJob, tag, *nodes); !st)
        return std::unexpected(command_error(*obj, priv, st.error()));
    if (auto st = wait_qemu_job(*priv->monitor, kDeleteJob, "snapshot-delete"); !st)
        return std::unexpected(command_error(*obj, priv, st.error()));
    return {};
}

// One pending record (snapshot_store.hpp): which of its disks hold the tag
// now, then commit (all do) or undo (remove the tag where it is) and drop it.
Status QemuDriverImpl::settle_pending(const std::shared_ptr<DomainObject>& obj, const conf::SnapshotDef& pending) {
    const std::string domain = obj->name();
    if (!pending.domain) return snapshots.remove_pending(domain, pending.name);
    auto disks = internal_disks(pending, *pending.domain);
    if (!disks) return std::unexpected(disks.error());
    std::vector<bool> has;
    auto run = running(*obj);
    if (run) {
        auto& monitor = *run->priv->monitor;
        // A save QEMU still runs (the daemon died during it) ends first.
        if (auto jobs = monitor.query_jobs())
            for (const auto& j : *jobs)
                if (j.id == kSaveJob) (void)wait_qemu_job(monitor, kSaveJob, "snapshot-save");
        VIREO_TRY(use_live_disks(*run->def, *disks, pending.name));
        auto blocks = monitor.query_block();
        if (!blocks) return std::unexpected(blocks.error());
        for (const auto& d : *disks) {
            const BlockDeviceInfo* b = block_of(*blocks, d.alias);
            has.push_back(b && std::find(b->snapshots.begin(), b->snapshots.end(), pending.name) != b->snapshots.end());
        }
    } else {
        for (const auto& d : *disks) {
            auto img = storage::open_image(d.path, {.format = storage::ImageFormat::Qcow2});
            if (!img) return std::unexpected(img.error().context(fmt::format("cannot open disk image '{}'", d.path)));
            auto* q = as_qcow2(*img);
            has.push_back(q && has_tag(*q, pending.name));
        }
    }
    if (!has.empty() && std::all_of(has.begin(), has.end(), [](bool b) { return b; })) {
        spdlog::info("domain '{}': snapshot '{}' was taken before the daemon stopped; its metadata is written now", domain,
                     pending.name);
        return snapshots.commit_pending(domain, pending);
    }
    std::vector<SnapDisk> partial;
    for (std::size_t i = 0; i < disks->size(); ++i)
        if (has[i]) partial.push_back((*disks)[i]);
    if (!partial.empty()) {
        if (run) VIREO_TRY(delete_live_tag(obj, run->priv, pending.name, partial));
        else
            for (const auto& d : partial) VIREO_TRY(image_step(d.path, pending.name, ImageStep::Delete));
    }
    spdlog::info("domain '{}': snapshot '{}' was cut short when the daemon stopped; discarded", domain, pending.name);
    return snapshots.remove_pending(domain, pending.name);
}

void QemuDriverImpl::settle_pending_snapshots(const std::shared_ptr<DomainObject>& obj) {
    const auto pending = snapshots.pending(obj->name());
    bool ran_before = false;  // a pending snapshot began while the guest ran
    for (const auto& p : pending) {
        ran_before = ran_before || p.state == "running";
        if (auto st = settle_pending(obj, p); !st)
            spdlog::error("domain '{}': cannot settle snapshot '{}' left by a stopped daemon: {}", obj->name(), p.name,
                          st.error().full_message());
    }
    // The guest a dead daemon paused for a snapshot job runs again (a guest
    // paused by its user stays paused: its reason is not ours, and a
    // snapshot begun while it was paused recorded that). The reason alone is
    // not enough: the daemon may die after QEMU stopped the vCPUs and before
    // the reason reached the status file.
    auto run = running(*obj);
    const bool ours = obj->with([ran_before](DomainFields& f) {
        return f.state == DomainState::Paused && (f.reason == "from snapshot" || ran_before);
    });
    if (run && ours)
        if (auto st = set_vcpus(*this, obj, run->priv, true); !st)
            spdlog::error("domain '{}': cannot resume it after its snapshot: {}", obj->name(), st.error().full_message());
}

void QemuDriverImpl::settle_all_pending_snapshots() {
    for (const auto& obj : registry.list()) {
        const bool paused_by_us =
            obj->with([](DomainFields& f) { return f.state == DomainState::Paused && f.reason == "from snapshot"; });
        if (!paused_by_us && snapshots.pending(obj->name()).empty()) continue;
        auto job = driver::acquire_job(obj, "snapshot");
        if (!job) continue;
        settle_pending_snapshots(obj);
    }
}

}  // namespace vireo::qemu
