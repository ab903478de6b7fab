// PoolManager's volume operations (see pool_manager.hpp and the locking
// rules in pool_manager_impl.hpp).
#include "pool/pool_manager_impl.hpp"
#include "pool/volume_io.hpp"
#include "storage/image.hpp"

namespace vireo::pool {

namespace {

// A new async job for volume work, and the progress function that feeds it:
// bytes done go to the job, an abort request stops the work.
std::pair<std::shared_ptr<driver::AsyncJob>, storage::ProgressFn> volume_job(driver::JobTracker& tracker,
                                                                             driver::JobOperation op,
                                                                             const std::string& vol,
                                                                             const std::string& pool,
                                                                             std::string phase) {
    auto job = tracker.begin(op, fmt::format("volume '{}' in pool '{}'", vol, pool));
    job->set_phase(std::move(phase));
    storage::ProgressFn progress = [job](std::uint64_t done, std::uint64_t total) {
        job->set_data(done, total);
        return !job->abort_requested();
    };
    return {job, progress};
}

// Volume work as its caller sees it: the work of an aborted job fails in
// libvirt's words ("operation aborted: job 'volume clone' canceled by
// client"), whatever step noticed the abort.
Status job_outcome(const driver::AsyncJob& job, Status st) {
    if (!st && job.abort_requested()) return std::unexpected(driver::job_aborted_error(job.operation()));
    return st;
}

}  // namespace

driver::JobTracker& PoolManager::jobs() { return *impl_->cfg.jobs; }

// ---- volumes ------------------------------------------------------------------

// Create `def` in `pool` (empty, or with the contents of `source`).
Result<VolumeSummary> PoolManager::Impl::create_in(std::string_view pool, VolumeDef def, driver::VolumeCreateFlags flags,
                                                   const std::optional<VolumeDef>& source) {
    auto a = active(pool);
    if (!a) return std::unexpected(a.error());
    PoolEntry& e = *a->first;
    const PoolDef& pdef = a->second;
    const std::string ctx = fmt::format("failed to create volume '{}' in pool '{}'", def.name, pdef.name);
    if (flags.reflink)
        return fail(ErrorCode::Unsupported, "{}: --reflink is not supported (vol-clone without it copies sparsely)", ctx);
    if (def.format.empty()) def.format = source ? source->format : std::string(e.backend->default_volume_format());
    if (source && !e.backend->accepts_volume_format(def.format))
        def.format = std::string(e.backend->default_volume_format());  // e.g. a qcow2 copied into a partition: raw
    if (!e.backend->accepts_volume_format(def.format))
        return fail(ErrorCode::Unsupported, "{}: format '{}' is not supported in a {} pool", ctx, def.format, pdef.type);
    if (flags.prealloc_metadata && def.format != "qcow2")
        return fail(ErrorCode::InvalidArg, "{}: metadata preallocation applies to qcow2 volumes only (format is '{}')", ctx, def.format);
    if (source) {
        def.backing_path.clear();  // a copy is standalone
        def.capacity = std::max(def.capacity.value_or(0), source->capacity.value_or(0));
    }

    std::unique_lock blk(e.backend_mu);
    auto fresh_sizes = e.backend->sizes(pdef);  // the space check below uses current figures
    {
        std::lock_guard lk(e.mu);
        if (!e.active) return std::unexpected(not_active(e.def));
        if (fresh_sizes) e.sizes = *fresh_sizes;
        if (e.vols.contains(def.name)) return fail(ErrorCode::Exists, "storage volume '{}' already exists in pool '{}'", def.name, pdef.name);
        if (!def.backing_path.empty()) {
            // a volume of this pool by name, or any image by absolute path
            const Volume* bv = nullptr;
            if (auto it = e.vols.find(def.backing_path); it != e.vols.end()) bv = &it->second;
            for (const auto& [n, v] : e.vols)
                if (!bv && v.def.path == def.backing_path) bv = &v;
            if (bv) {
                def.backing_path = bv->def.path;
                if (def.backing_format.empty()) def.backing_format = bv->def.format;
                if (!def.capacity) def.capacity = bv->def.capacity;
            } else if (def.backing_path[0] != '/') {
                return fail(ErrorCode::NoVolume, "{}: backing volume '{}' not found in pool '{}'", ctx, def.backing_path, pdef.name);
            } else {
                struct stat st{};
                if (::stat(def.backing_path.c_str(), &st) != 0)
                    return fail(ErrorCode::NotFound, "{}: backing file '{}' does not exist", ctx, def.backing_path);
                if (def.backing_format.empty()) {
                    auto probed = storage::probe_format(def.backing_path);
                    if (!probed) return std::unexpected(probed.error().context(ctx));
                    def.backing_format = std::string(storage::format_name(*probed));
                }
            }
            if (def.format != "qcow2") return fail(ErrorCode::InvalidArg, "{}: only qcow2 volumes can have a backing volume", ctx);
        }
        // non-sparse allocation must fit; sparse files may overcommit, as libvirt
        std::uint64_t needed = std::min(def.allocation.value_or(0), def.capacity.value_or(0));
        if (!e.backend->sparse_volumes()) needed = def.capacity.value_or(0);
        // a copy needs about what its source has allocated
        if (source) needed = std::max(needed, std::min(source->allocation.value_or(0), def.capacity.value_or(0)));
        if (needed > e.sizes.available)
            return fail(ErrorCode::InvalidArg, "{}: not enough space: the volume needs {} bytes but the pool has {} bytes available",
                        ctx, needed, e.sizes.available);
        // reserve the name while the storage is made
        Volume placeholder;
        placeholder.def = def;
        placeholder.writer = true;
        e.vols.emplace(def.name, std::move(placeholder));
        ++e.jobs;
    }
    auto unreserve = [&](const Error& err) -> Result<VolumeSummary> {
        std::lock_guard lk(e.mu);
        e.vols.erase(def.name);
        --e.jobs;
        return std::unexpected(err);
    };
    if (def.backing_path.empty() && !def.capacity) return unreserve(Error{ErrorCode::InvalidArg, ctx + ": no capacity given"});
    auto made = e.backend->create_volume(pdef, VolumeCreateRequest{def, flags});
    if (!made) return unreserve(made.error());
    VolumeRef ref{a->first, pdef, *made, Use::Write};
    // the copy runs without backend_mu: other volumes of the pool stay usable
    blk.unlock();
    if (source) {
        // One async job: abort stops the copy, and the half-made volume goes.
        auto [job, progress] = volume_job(*cfg.jobs, driver::JobOperation::VolumeClone, made->name, pdef.name, "copying");
        auto copied = job_outcome(*job, copy_volume_contents(*source, *made, progress));
        if (!copied) {
            job->set_phase("removing the incomplete copy");
            {
                std::lock_guard relock(e.backend_mu);
                (void)e.backend->delete_volume(pdef, *made);
            }
            job->finish(copied);
            return unreserve(copied.error().context(ctx));
        }
        job->finish(copied);
    }
    release(ref, true);
    std::lock_guard lk(e.mu);
    auto it = e.vols.find(made->name);
    if (it == e.vols.end()) return std::unexpected(no_volume(made->name, pdef.name));
    return summary_of(it->second.def, pdef.name);
}

Result<std::vector<VolumeSummary>> PoolManager::list_volumes(std::string_view pool) {
    auto a = impl_->active(pool);
    if (!a) return std::unexpected(a.error());
    std::vector<VolumeSummary> out;
    {
        std::lock_guard lk(a->first->mu);
        out.reserve(a->first->vols.size());
        for (const auto& [name, v] : a->first->vols) out.push_back(summary_of(v.def, a->second.name));
    }
    // fresh allocation figures for files (a guest may have written): one stat each
    std::erase_if(out, [](VolumeSummary& s) {
        if (s.type != driver::VolumeType::File) return false;
        struct stat st{};
        if (::stat(s.path.c_str(), &st) != 0) return true;  // removed behind our back
        s.allocation = static_cast<std::uint64_t>(st.st_blocks) * 512;
        s.physical = static_cast<std::uint64_t>(st.st_size);
        if (s.format == "raw") s.capacity = s.physical;
        return false;
    });
    return out;
}

Result<VolumeSummary> PoolManager::lookup_volume(std::string_view pool, std::string_view vol) {
    if (!pool.empty()) {
        auto r = impl_->acquire(pool, vol, Impl::Use::None, "look up", nullptr);
        if (!r) return std::unexpected(r.error());
        auto fresh = r->pool->backend->stat_volume(r->def, r->vol);
        if (!fresh) return std::unexpected(fresh.error().code == ErrorCode::NoVolume ? no_volume(vol, r->def.name) : fresh.error());
        return summary_of(*fresh, r->def.name);
    }
    // by key or path, in every active pool
    for (auto& p : impl_->snapshot()) {
        std::lock_guard lk(p->mu);
        if (!p->active) continue;
        for (const auto& [name, v] : p->vols)
            if (v.def.key == vol || v.def.path == vol) return summary_of(v.def, p->def.name);
    }
    return fail(ErrorCode::NoVolume, "no storage volume with key or path '{}'", vol);
}

Result<driver::VolumeSummary> PoolManager::resolve_volume(std::string_view pool, std::string_view vol) {
    auto r = lookup_volume(pool, vol);
    if (!r) {
        if (r.error().code == ErrorCode::NoPool || r.error().code == ErrorCode::NoVolume ||
            r.error().code == ErrorCode::InvalidState)
            return std::unexpected(r.error());
        return std::unexpected(r.error().context(fmt::format("cannot use volume '{}' of pool '{}'", vol, pool)));
    }
    return r;
}

Result<std::string> PoolManager::volume_xml(std::string_view pool, std::string_view vol) {
    auto r = impl_->acquire(pool, vol, Impl::Use::None, "show", nullptr);
    if (!r) return std::unexpected(r.error());
    auto fresh = r->pool->backend->stat_volume(r->def, r->vol);
    if (!fresh) return std::unexpected(fresh.error());
    return format_volume_xml(*fresh);
}

Result<VolumeSummary> PoolManager::create_volume(std::string_view pool, std::string_view xml, driver::VolumeCreateFlags flags) {
    auto def = parse_volume_xml(xml);
    if (!def) return std::unexpected(def.error());
    return impl_->create_in(pool, std::move(*def), flags, std::nullopt);
}

Result<VolumeSummary> PoolManager::create_volume_from(std::string_view pool, std::string_view xml, std::string_view src_pool,
                                                      std::string_view src_vol, driver::VolumeCreateFlags flags) {
    auto def = parse_volume_xml(xml);
    if (!def) return std::unexpected(def.error());
    auto src = impl_->acquire(src_pool, src_vol, Impl::Use::Read, "copy", nullptr);
    if (!src) return std::unexpected(src.error());
    auto fresh = src->pool->backend->stat_volume(src->def, src->vol);
    auto result = fresh ? impl_->create_in(pool, std::move(*def), flags, *fresh)
                        : Result<VolumeSummary>(std::unexpected(fresh.error()));
    impl_->release(*src, false);
    return result;
}

Status PoolManager::delete_volume(std::string_view pool, std::string_view vol) {
    const auto users = impl_->disk_users();
    auto r = impl_->acquire(pool, vol, Impl::Use::Write, "delete", &users);
    if (!r) return std::unexpected(r.error());
    PoolEntry& e = *r->pool;
    // Not under another process (a guest's QEMU): a file stays locked as a
    // writer until it is gone; a partition only checked, as the kernel
    // does not remove a partition that is open.
    auto lock = lock_volume_for_write(r->vol);
    if (!lock) {
        impl_->release(*r, false);
        return std::unexpected(lock.error().context(fmt::format("failed to delete volume '{}'", r->vol.name)));
    }
    if (r->vol.type != driver::VolumeType::File) lock->release();
    // backend_mu until the entry is gone, so a refresh cannot bring it back
    std::unique_lock blk(e.backend_mu);
    auto st = e.backend->delete_volume(r->def, r->vol);
    if (!st) {
        blk.unlock();
        impl_->release(*r, true);
        return std::unexpected(st.error().context(fmt::format("failed to delete volume '{}'", r->vol.name)));
    }
    auto sizes = e.backend->sizes(r->def);
    std::lock_guard lk(e.mu);
    e.vols.erase(r->vol.name);
    --e.jobs;
    if (sizes) e.sizes = *sizes;
    return {};
}

Status PoolManager::wipe_volume(std::string_view pool, std::string_view vol, driver::WipeAlgorithm algorithm) {
    const auto users = impl_->disk_users();
    auto r = impl_->acquire(pool, vol, Impl::Use::Write, "wipe", &users);
    if (!r) return std::unexpected(r.error());
    auto [job, progress] = volume_job(*impl_->cfg.jobs, driver::JobOperation::VolumeWipe, r->vol.name, r->def.name, "wiping");
    auto st = job_outcome(*job, wipe_volume_contents(r->vol, algorithm, progress));
    job->finish(st);
    impl_->release(*r, true);
    if (!st) return std::unexpected(st.error().context(fmt::format("failed to wipe volume '{}'", r->vol.name)));
    return {};
}

Status PoolManager::resize_volume(std::string_view pool, std::string_view vol, std::uint64_t capacity,
                                  driver::VolumeResizeFlags flags) {
    const auto users = impl_->disk_users();
    auto r = impl_->acquire(pool, vol, Impl::Use::Write, "resize", &users);
    if (!r) return std::unexpected(r.error());
    auto run = [&]() -> Status {
        auto fresh = r->pool->backend->stat_volume(r->def, r->vol);
        if (!fresh) return std::unexpected(fresh.error());
        const std::uint64_t current = fresh->capacity.value_or(0);
        std::uint64_t target = capacity;
        if (flags.delta) {
            if (flags.shrink) target = capacity > current ? 0 : current - capacity;
            else target = current + capacity;
        }
        if (target == 0) return fail(ErrorCode::InvalidArg, "cannot resize volume '{}' to 0 bytes", r->vol.name);
        if (target < current && !flags.shrink)
            return fail(ErrorCode::InvalidArg, "cannot shrink volume '{}' from {} to {} bytes without --shrink", r->vol.name,
                        current, target);
        if (target > current && flags.allocate) {
            std::lock_guard lk(r->pool->mu);
            if (target - current > r->pool->sizes.available)
                return fail(ErrorCode::InvalidArg, "not enough space to allocate {} more bytes for volume '{}': pool '{}' has {} bytes available",
                            target - current, r->vol.name, r->def.name, r->pool->sizes.available);
        }
        // Not under another process (a guest's QEMU), as qemu-img resize.
        auto lock = lock_volume_for_write(*fresh);
        if (!lock) return std::unexpected(lock.error());
        std::lock_guard blk(r->pool->backend_mu);
        return r->pool->backend->resize_volume(r->def, *fresh, target, flags);
    };
    auto st = run();
    impl_->release(*r, true);
    if (!st) return std::unexpected(st.error().context(fmt::format("failed to resize volume '{}'", r->vol.name)));
    return {};
}

Status PoolManager::download_volume(std::string_view pool, std::string_view vol, driver::TransferRange range,
                                    const driver::StreamSink& sink) {
    auto r = impl_->acquire(pool, vol, Impl::Use::Read, "download", nullptr);
    if (!r) return std::unexpected(r.error());
    auto [job, progress] = volume_job(*impl_->cfg.jobs, driver::JobOperation::VolumeDownload, r->vol.name, r->def.name, "downloading");
    auto st = job_outcome(*job, download_volume_contents(r->vol, range, sink, progress));
    job->finish(st);
    impl_->release(*r, false);
    if (!st) return std::unexpected(st.error().context(fmt::format("failed to download volume '{}'", r->vol.name)));
    return {};
}

Status PoolManager::upload_volume(std::string_view pool, std::string_view vol, driver::TransferRange range,
                                  const driver::StreamSource& source) {
    const auto users = impl_->disk_users();
    auto r = impl_->acquire(pool, vol, Impl::Use::Write, "upload to", &users);
    if (!r) return std::unexpected(r.error());
    auto [job, progress] = volume_job(*impl_->cfg.jobs, driver::JobOperation::VolumeUpload, r->vol.name, r->def.name, "uploading");
    auto st = job_outcome(*job, upload_volume_contents(r->vol, range, source, progress));
    job->finish(st);
    impl_->release(*r, true);
    if (!st) return std::unexpected(st.error().context(fmt::format("failed to upload to volume '{}'", r->vol.name)));
    return {};
}

}  // namespace vireo::pool
