// Block jobs of a running domain (virsh blockcommit, blockpull, blockcopy,
// blockjob): QEMU's block-commit, block-stream and blockdev-mirror on the
// nodes of a disk's chain, each the domain's async job (domjobinfo shows
// its progress, domjobabort cancels it).
//
//   start    the disk's chain is read from its images (the image engine,
//            as libvirt probes it) and matched to QEMU's nodes by file;
//            what the chain will be once the job succeeded is decided here.
//            A copy's target is made by the image engine (unless reused)
//            and opened with blockdev-add, backed by the source's backing
//            node for --shallow.
//   follow   a watcher thread polls query-block-jobs (jobs run with
//            auto-dismiss off, so a concluded job stays visible with its
//            error), reports progress, turns domjobabort into
//            block-job-cancel.
//   end      a copy or active commit becomes ready and waits: pivot
//            (block-job-complete) moves the disk to the new chain; abort
//            (block-job-cancel) leaves it where it was. A commit of inactive
//            layers or a pull ends by itself. On success the live definition
//            (and the persistent one, where it has the same image, as
//            libvirt) gets the new chain, the nodes that left the chain are
//            closed, and --delete removes committed images. The record of
//            the last job stays for blockjob --info and the CLI's --wait.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <thread>

#include <spdlog/spdlog.h>

#include "qemu/disk_lookup.hpp"
#include "qemu/qemu_driver_impl.hpp"
#include "storage/image.hpp"

namespace vireo::qemu {

namespace fs = std::filesystem;

// One image of a disk's chain and its QEMU nodes ("" when QEMU has none by name).
struct ChainLayer {
    std::string file;
    std::string format;
    std::string node;          // format node
    std::string storage_node;  // protocol node
};

struct BlockJobRun {
    std::string disk;      // target (vda)
    std::string kind;      // pull, copy, commit, active_commit
    std::string qemu_id;   // QEMU's job id
    std::string old_top;   // the disk's image when the job started
    std::shared_ptr<driver::AsyncJob> job;
    std::vector<ChainLayer> after;    // the chain once the job succeeded, top first
    std::vector<ChainLayer> removed;  // the images that leave the chain then
    std::vector<std::string> target_nodes;  // a copy's target (format, storage)
    bool delete_images = false;
    std::atomic<bool> pivot{false};
    std::atomic<bool> cancel_sent{false};

    std::mutex mutex;
    std::condition_variable cv;
    std::string state = "running";  // running, ready, completed, failed, cancelled
    std::uint64_t cur = 0, end = 0, bandwidth = 0;
    std::string error;

    [[nodiscard]] bool ended_locked() const { return state != "running" && state != "ready"; }
};

// A watcher thread, and whether it is done (then it can be joined at once).
struct BlockWatcher {
    std::thread thread;
    std::atomic<bool> done{false};
};

namespace {

bool is_ended(BlockJobRun& r) {
    std::lock_guard lk(r.mutex);
    return r.ended_locked();
}

std::string run_state(BlockJobRun& r) {
    std::lock_guard lk(r.mutex);
    return r.state;
}

std::string canonical(const std::string& p) {
    std::error_code ec;
    auto c = fs::weakly_canonical(p, ec);
    return ec ? p : c.string();
}

bool same_file(const std::string& a, const std::string& b) { return canonical(a) == canonical(b); }

bool is_block_device(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

Error disk_not_found(std::string_view name) {
    return Error{ErrorCode::InvalidArg, fmt::format("invalid argument: disk '{}' not found in domain", name)};
}

Error job_active(std::string_view disk) {
    return Error{ErrorCode::InvalidState, fmt::format("block copy still active: disk '{}' already in active block job", disk)};
}

// libvirt's words for a block job verb on a domain that does not run.
Error not_running() { return Error{ErrorCode::InvalidState, "Requested operation is not valid: domain is not running"}; }

Error no_active_job(std::string_view disk) {
    return Error{ErrorCode::InvalidArg, fmt::format("invalid argument: disk {} does not have an active block job", disk)};
}

// The disk's chain as its images record it, top first, each with its QEMU nodes.
Result<std::vector<ChainLayer>> read_chain(const conf::Disk& disk, const std::vector<NamedBlockNode>& nodes) {
    std::vector<ChainLayer> out;
    std::string path = disk.type == "block" ? disk.source.dev : disk.source.file;
    std::string format = disk.driver_type;
    if (disk.type != "file" && disk.type != "block")
        return fail(ErrorCode::Unsupported, "unsupported configuration: block jobs on a disk of type '{}' are not supported", disk.type);
    while (!path.empty()) {
        if (out.size() > 64) return fail(ErrorCode::OperationFailed, "operation failed: the backing chain of disk '{}' is too deep", disk.target_dev);
        storage::OpenOptions opts{.open_backing = false, .force_share = true, .no_io = true};
        if (!format.empty()) {
            auto f = storage::parse_driver(format);
            if (!f) return std::unexpected(f.error());
            opts.format = *f;
        }
        auto img = storage::open_image(path, opts);
        if (!img) return std::unexpected(img.error().context(fmt::format("cannot read the backing chain of disk '{}'", disk.target_dev)));
        auto info = (*img)->info();
        if (!info) return std::unexpected(info.error());
        ChainLayer l{path, std::string(storage::format_name(info->format)), "", ""};
        for (const auto& n : nodes) {
            if (n.file.empty() || !same_file(n.file, path)) continue;
            if (n.drv == l.format && l.node.empty()) l.node = n.node;
            if ((n.drv == "file" || n.drv == "host_device") && l.storage_node.empty()) l.storage_node = n.node;
        }
        out.push_back(std::move(l));
        path = info->full_backing_file;
        format = info->backing_format;
    }
    return out;
}

// Index of the image `name` in `chain` at or below `from`.
std::optional<std::size_t> find_layer(const std::vector<ChainLayer>& chain, std::string_view name, std::size_t from) {
    for (std::size_t i = from; i < chain.size(); ++i)
        if (chain[i].file == name || same_file(chain[i].file, std::string(name))) return i;
    return std::nullopt;
}

// Point `d` at `chain` (top first), with libvirt's <backingStore> below it
// and the empty <backingStore/> that ends it.
void apply_chain(conf::Disk& d, const std::vector<ChainLayer>& chain) {
    if (chain.empty()) return;
    auto source_of = [](const std::string& path, std::string& type) {
        conf::DiskSource s;
        type = is_block_device(path) ? "block" : "file";
        (type == "block" ? s.dev : s.file) = path;
        return s;
    };
    d.source = source_of(chain.front().file, d.type);
    d.driver_type = chain.front().format;
    conf::BackingStore below;
    below.present = true;  // <backingStore/>: the chain ends here
    for (std::size_t i = chain.size(); i-- > 1;) {
        conf::BackingStore b;
        b.present = true;
        b.format = chain[i].format;
        b.source = source_of(chain[i].file, b.type);
        b.chain.push_back(std::move(below));
        below = std::move(b);
    }
    d.backing = std::move(below);
}

// QEMU node names of a copy's target (at most 31 characters, unique in the QEMU).
std::pair<std::string, std::string> target_nodes(const std::string& target) {
    static std::atomic<unsigned> counter{0};
    const auto stamp = static_cast<unsigned long long>(std::time(nullptr)) % 100000000ULL;
    const std::string base = fmt::format("bj{}x{}-{}", stamp, counter++ % 1000, target.substr(0, 8));
    return {base + "-s", base + "-f"};
}

}  // namespace

bool QemuDriverImpl::has_block_job(QemuPrivate& priv) {
    std::lock_guard lk(priv.block_jobs_mutex);
    return std::any_of(priv.block_jobs.begin(), priv.block_jobs.end(), [](const auto& kv) { return !is_ended(*kv.second); });
}

void QemuDriverImpl::stop_block_watchers() {
    block_watch_stop = true;
    std::vector<std::shared_ptr<BlockWatcher>> watchers;
    {
        std::lock_guard lk(block_watch_mutex);
        watchers.swap(block_watchers);
    }
    for (auto& w : watchers)
        if (w->thread.joinable()) w->thread.join();
}

namespace {

// The pieces a block job start shares: the running instance, the disk, its
// chain, and the domain's async job taken for it.
struct JobStart {
    std::shared_ptr<DomainObject> obj;
    QemuDriverImpl::Running run;
    conf::Disk disk;
    std::vector<ChainLayer> chain;
    std::optional<driver::AsyncJobGuard> guard;
};

}  // namespace

// The running domain `ref` and its disk `path` (target or source), as
// every block job verb looks them up; `disk` points into `run.def`.
struct NamedDisk {
    std::shared_ptr<DomainObject> obj;
    QemuDriverImpl::Running run;
    const conf::Disk* disk = nullptr;
};

static Result<NamedDisk> named_disk(QemuDriverImpl& d, std::string_view ref, std::string_view path) {
    auto obj = d.registry.resolve(ref);
    if (!obj) return std::unexpected(obj.error());
    auto run = d.running(**obj);
    if (!run) return std::unexpected(not_running());
    const conf::Disk* disk = find_disk_by_name(*run->def, path);
    if (!disk) return std::unexpected(disk_not_found(path));
    return NamedDisk{*obj, std::move(*run), disk};
}

// Everything a block job checks before it starts, the async job taken.
static Result<JobStart> begin_block_job(QemuDriverImpl& d, std::string_view ref, std::string_view path) {
    auto nd = named_disk(d, ref, path);
    if (!nd) return std::unexpected(nd.error());
    if (nd->disk->source.empty())
        return fail(ErrorCode::InvalidArg, "invalid argument: disk '{}' does not currently have a source assigned", path);
    {
        std::lock_guard lk(nd->run.priv->block_jobs_mutex);
        for (const auto& [target, bj] : nd->run.priv->block_jobs) {
            if (is_ended(*bj)) continue;
            if (target == nd->disk->target_dev) return std::unexpected(job_active(target));
            // One async job per domain (driver/registry.hpp): a second disk waits.
            return fail(ErrorCode::InvalidState,
                        "Requested operation is not valid: disk '{}' is in a block job; vireo runs one block job per domain "
                        "at a time",
                        target);
        }
    }
    auto nodes = nd->run.priv->monitor->query_named_block_nodes();
    if (!nodes) return std::unexpected(d.command_error(*nd->obj, nd->run.priv, nodes.error()));
    auto chain = read_chain(*nd->disk, *nodes);
    if (!chain) return std::unexpected(chain.error());
    if (chain->front().node.empty())
        return fail(ErrorCode::OperationFailed, "operation failed: QEMU has no block node for disk '{}'", nd->disk->target_dev);
    return JobStart{nd->obj, std::move(nd->run), *nd->disk, std::move(*chain), std::nullopt};
}

// The checks passed: the domain's async job, for the job's whole life. While
// it runs, the domain takes every other job but another async one (libvirt
// lets a guest be changed during a block job).
static Status take_async_job(QemuDriverImpl& d, JobStart& s) {
    const driver::JobMask allowed = driver::kDefaultAsyncMask | driver::job_mask(driver::JobType::Modify) |
                                    driver::job_mask(driver::JobType::Suspend);
    auto guard = driver::begin_async_job(s.obj, *d.jobs, driver::JobOperation::BlockJob, allowed);
    if (!guard) return std::unexpected(guard.error());
    s.guard.emplace(std::move(*guard));
    return {};
}

// A start that failed once the async job was taken: its record says why.
static Status abandon(JobStart& s, const Error& e) {
    if (s.guard) s.guard->finish(std::unexpected(e));
    return std::unexpected(e);
}

// The job started in QEMU: recorded on the instance and followed by a watcher.
static void follow_block_job(QemuDriverImpl& d, JobStart& s, const std::shared_ptr<BlockJobRun>& bj);

Status QemuDriverImpl::block_commit(const driver::ops::DomainBlockCommit::Request& r) {
    auto s = begin_block_job(*this, r.ref, r.path);
    if (!s) return std::unexpected(s.error());
    const auto& chain = s->chain;
    const std::string& dst = s->disk.target_dev;
    std::size_t top = 0;
    if (!r.top.empty()) {
        auto t = find_layer(chain, r.top, 0);
        if (!t) return fail(ErrorCode::InvalidArg, "invalid argument: could not find image '{}' in chain for '{}'", r.top, r.path);
        top = *t;
    }
    if (top == 0 && !r.active)
        return fail(ErrorCode::InvalidArg, "invalid argument: commit of '{}' active layer requires active flag", dst);
    if (top != 0 && r.active)
        return fail(ErrorCode::InvalidArg, "invalid argument: active commit requested but '{}' is not active", chain[top].file);
    if (top + 1 >= chain.size())
        return fail(ErrorCode::InvalidArg, "invalid argument: top '{}' in chain for '{}' has no backing file", chain[top].file, r.path);
    std::size_t base = chain.size() - 1;
    if (!r.base.empty()) {
        auto b = find_layer(chain, r.base, top + 1);
        if (!b)
            return fail(ErrorCode::InvalidArg, "invalid argument: could not find image '{}' beneath '{}' in chain for '{}'", r.base,
                        chain[top].file, r.path);
        base = *b;
    } else if (r.shallow) {
        base = top + 1;
    }
    for (std::size_t i = top; i <= base; ++i)
        if (chain[i].node.empty())
            return fail(ErrorCode::OperationFailed, "operation failed: QEMU has no block node for image '{}' of disk '{}'", chain[i].file, dst);

    // QEMU writes into the base and rewrites the backing file recorded in
    // the image above the top: an isolated QEMU user is given both, as the
    // disk's own image at start (session mode: nothing to do).
    for (const std::size_t i : {base, top == 0 ? std::size_t{0} : top - 1}) {
        conf::Disk layer = s->disk;
        apply_chain(layer, {chain[i]});
        layer.readonly = false;
        VIREO_TRY(admit_disk(*s->run.def, layer, s->run.priv->runtime_prefix));
    }
    auto bj = std::make_shared<BlockJobRun>();
    bj->disk = dst;
    bj->kind = top == 0 ? "active_commit" : "commit";
    bj->qemu_id = "vireo-commit-" + dst;
    bj->old_top = chain.front().file;
    bj->delete_images = r.delete_images;
    bj->bandwidth = r.bandwidth;
    bj->after.assign(chain.begin(), chain.begin() + static_cast<std::ptrdiff_t>(top));
    bj->after.insert(bj->after.end(), chain.begin() + static_cast<std::ptrdiff_t>(base), chain.end());
    bj->removed.assign(chain.begin() + static_cast<std::ptrdiff_t>(top), chain.begin() + static_cast<std::ptrdiff_t>(base));
    VIREO_TRY(take_async_job(*this, *s));
    auto& monitor = *s->run.priv->monitor;
    if (auto st = monitor.block_commit(bj->qemu_id, chain.front().node, top == 0 ? "" : chain[top].node, chain[base].node, r.bandwidth);
        !st)
        return abandon(*s, command_error(*s->obj, s->run.priv, st.error()));
    follow_block_job(*this, *s, bj);
    return {};
}

Status QemuDriverImpl::block_pull(const driver::ops::DomainBlockPull::Request& r) {
    auto s = begin_block_job(*this, r.ref, r.path);
    if (!s) return std::unexpected(s.error());
    const auto& chain = s->chain;
    std::size_t base = chain.size();  // none: everything is pulled
    if (!r.base.empty()) {
        auto b = find_layer(chain, r.base, 1);
        if (!b)
            return fail(ErrorCode::InvalidArg, "invalid argument: could not find image '{}' beneath '{}' in chain for '{}'", r.base,
                        chain.front().file, r.path);
        base = *b;
        if (chain[base].node.empty())
            return fail(ErrorCode::OperationFailed, "operation failed: QEMU has no block node for image '{}'", chain[base].file);
    }
    auto bj = std::make_shared<BlockJobRun>();
    bj->disk = s->disk.target_dev;
    bj->kind = "pull";
    bj->qemu_id = "vireo-pull-" + bj->disk;
    bj->old_top = chain.front().file;
    bj->bandwidth = r.bandwidth;
    bj->after.push_back(chain.front());
    bj->after.insert(bj->after.end(), chain.begin() + static_cast<std::ptrdiff_t>(std::min(base, chain.size())), chain.end());
    bj->removed.assign(chain.begin() + 1, chain.begin() + static_cast<std::ptrdiff_t>(std::min(base, chain.size())));
    const std::string base_node = base < chain.size() ? chain[base].node : "";
    VIREO_TRY(take_async_job(*this, *s));
    if (auto st = s->run.priv->monitor->block_stream(bj->qemu_id, chain.front().node, base_node, r.bandwidth); !st)
        return abandon(*s, command_error(*s->obj, s->run.priv, st.error()));
    follow_block_job(*this, *s, bj);
    return {};
}

Status QemuDriverImpl::block_copy(const driver::ops::DomainBlockCopy::Request& r) {
    if (r.dest.empty()) return fail(ErrorCode::InvalidArg, "invalid argument: the copy needs a destination");
    auto s = begin_block_job(*this, r.ref, r.path);
    if (!s) return std::unexpected(s.error());
    const auto& chain = s->chain;
    const std::string& dst = s->disk.target_dev;
    const std::string dest = fs::absolute(r.dest).lexically_normal().string();

    // The destination: libvirt's checks, then made by the image engine.
    std::error_code ec;
    const bool exists = fs::exists(dest, ec);
    const bool block = exists && is_block_device(dest);
    if (r.reuse_external && !exists)
        return fail(ErrorCode::Unsupported, "unsupported configuration: missing destination file for disk {}: {}", dst, dest);
    if (exists && !block && !r.reuse_external && fs::file_size(dest, ec) > 0)
        return fail(ErrorCode::Unsupported,
                    "unsupported configuration: external destination file for disk {} already exists and is not a block device: {}",
                    dst, dest);
    for (const auto& l : chain)
        if (same_file(l.file, dest))
            return fail(ErrorCode::InvalidArg, "invalid argument: the destination '{}' is an image of disk '{}'", dest, dst);
    if (auto user = image_user(dest, s->obj->name()))
        return fail(ErrorCode::InvalidArg, "invalid argument: the destination '{}' is in use by domain '{}'", dest, *user);
    std::string format = r.format;
    if (format.empty() && r.reuse_external) {
        auto img = storage::open_image(dest, {.open_backing = false, .force_share = true, .no_io = true});
        if (!img) return std::unexpected(img.error().context(fmt::format("cannot open the destination '{}'", dest)));
        auto info = (*img)->info();
        if (!info) return std::unexpected(info.error());
        format = std::string(storage::format_name(info->format));
    }
    if (format.empty()) format = chain.front().format;
    auto parsed = storage::parse_driver(format);
    if (!parsed) return std::unexpected(parsed.error());
    const bool shallow = r.shallow && chain.size() > 1;
    if (shallow && *parsed != storage::ImageFormat::Qcow2)
        return fail(ErrorCode::Unsupported, "unsupported configuration: a shallow copy needs a format with a backing file (qcow2), not '{}'",
                    format);
    if (shallow && chain[1].node.empty())
        return fail(ErrorCode::OperationFailed, "operation failed: QEMU has no block node for image '{}' of disk '{}'", chain[1].file, dst);

    auto blocks = s->run.priv->monitor->query_block();
    if (!blocks) return std::unexpected(command_error(*s->obj, s->run.priv, blocks.error()));
    const BlockDeviceInfo* b = block_of(*blocks, s->disk.info.alias);
    if (!b) return fail(ErrorCode::OperationFailed, "operation failed: QEMU has no block node for disk '{}'", dst);

    VIREO_TRY(take_async_job(*this, *s));
    bool made = false;
    if (!exists || (!r.reuse_external && !block)) {
        storage::CreateOptions o;
        o.format = *parsed;
        o.size = b->virtual_size;
        if (shallow) {
            o.backing_file = chain[1].file;
            o.backing_format = chain[1].format;
        }
        if (auto st = storage::create_image(dest, o); !st) {
            fs::remove(dest, ec);
            return abandon(*s, st.error().context(fmt::format("cannot create the copy '{}' of disk '{}'", dest, dst)));
        }
        made = true;
    }
    auto undo_file = [&](const Status& st) -> Status {
        if (made) fs::remove(dest, ec);
        return abandon(*s, st.error());
    };
    conf::Disk as_copy = s->disk;
    apply_chain(as_copy, {{dest, format, "", ""}});
    if (auto st = admit_disk(*s->run.def, as_copy, s->run.priv->runtime_prefix); !st) return undo_file(st);

    auto& monitor = *s->run.priv->monitor;
    auto [storage_node, format_node] = target_nodes(dst);
    nlohmann::json file = {{"driver", block ? "host_device" : "file"}, {"filename", dest}, {"node-name", storage_node}};
    nlohmann::json fmt_node = {{"driver", format}, {"node-name", format_node}, {"file", storage_node}};
    if (*parsed == storage::ImageFormat::Qcow2) fmt_node["backing"] = shallow ? nlohmann::json(chain[1].node) : nlohmann::json(nullptr);
    if (auto st = monitor.blockdev_add(file); !st) return undo_file(std::unexpected(command_error(*s->obj, s->run.priv, st.error())));
    if (auto st = monitor.blockdev_add(fmt_node); !st) {
        (void)monitor.blockdev_del(storage_node);
        return undo_file(std::unexpected(command_error(*s->obj, s->run.priv, st.error())));
    }
    auto bj = std::make_shared<BlockJobRun>();
    bj->disk = dst;
    bj->kind = "copy";
    bj->qemu_id = "vireo-copy-" + dst;
    bj->old_top = chain.front().file;
    bj->bandwidth = r.bandwidth;
    bj->target_nodes = {format_node, storage_node};
    bj->after.push_back({dest, format, format_node, storage_node});
    if (shallow) bj->after.insert(bj->after.end(), chain.begin() + 1, chain.end());
    bj->removed.assign(chain.begin(), shallow ? chain.begin() + 1 : chain.end());
    if (auto st = monitor.blockdev_mirror(bj->qemu_id, chain.front().node, format_node, shallow ? "top" : "full", r.bandwidth); !st) {
        (void)monitor.blockdev_del(format_node);
        (void)monitor.blockdev_del(storage_node);
        return undo_file(std::unexpected(command_error(*s->obj, s->run.priv, st.error())));
    }
    follow_block_job(*this, *s, bj);
    return {};
}

namespace {

// The disk's block job record (running or the last one), or null.
std::shared_ptr<BlockJobRun> job_of(QemuPrivate& priv, const std::string& target) {
    std::lock_guard lk(priv.block_jobs_mutex);
    auto it = priv.block_jobs.find(target);
    return it == priv.block_jobs.end() ? nullptr : it->second;
}

// Close nodes that left the chain, top first (format node, then its
// storage node). Nodes QEMU opened by itself (#blockN) go with their parent.
void close_nodes(Monitor& monitor, const std::vector<ChainLayer>& layers) {
    for (const auto& l : layers)
        for (const auto* n : {&l.node, &l.storage_node}) {
            if (n->empty() || n->starts_with('#')) continue;
            if (auto st = monitor.blockdev_del(*n); !st) spdlog::debug("blockdev-del {}: {}", *n, st.error().message);
        }
}

}  // namespace

// The definitions after a successful job: the live one, and the persistent
// one where its disk still has the image the job started from.
static void publish_chain(QemuDriverImpl& d, DomainObject& obj, const BlockJobRun& bj) {
    auto [live, config] = obj.with([](DomainFields& f) {
        return std::pair{f.live ? std::shared_ptr<const conf::DomainDef>(f.live->def) : nullptr,
                         f.config ? std::shared_ptr<const conf::DomainDef>(f.config->def) : nullptr};
    });
    auto moved = [&](const conf::DomainDef& def, bool must_match) -> std::optional<conf::DomainDef> {
        conf::DomainDef next = def;
        for (auto& disk : next.devices.disks) {
            if (disk.target_dev != bj.disk) continue;
            const std::string& src = disk.type == "block" ? disk.source.dev : disk.source.file;
            if (must_match && (src.empty() || !same_file(src, bj.old_top))) return std::nullopt;
            apply_chain(disk, bj.after);
            return next;
        }
        return std::nullopt;
    };
    if (live)
        if (auto next = moved(*live, false)) d.publish_live(obj, std::move(*next));
    if (config)
        if (auto next = moved(*config, true))
            if (auto st = d.save_config_def(obj, std::move(*next)); !st)
                spdlog::warn("domain '{}': block job on disk '{}': cannot save the persistent definition: {}", obj.name(), bj.disk,
                             st.error().message);
}

// The job concluded in QEMU (or QEMU went): definitions, nodes, files, the
// async job and the record.
static void conclude(QemuDriverImpl& d, DomainObject& obj, QemuPrivate& priv, BlockJobRun& bj, std::string error, bool qemu_gone,
                     driver::AsyncJobGuard& guard) {
    const bool cancelled = bj.job->abort_requested() || bj.cancel_sent;
    // A copy or active commit changes the disk only once pivoted.
    const bool pivoting = bj.kind == "copy" || bj.kind == "active_commit";
    const bool success = error.empty() && !cancelled && (!pivoting || bj.pivot);
    if (!qemu_gone) {
        auto& monitor = *priv.monitor;
        if (auto st = monitor.job_dismiss(bj.qemu_id); !st) spdlog::debug("job-dismiss {}: {}", bj.qemu_id, st.error().message);
        if (success) {
            publish_chain(d, obj, bj);
            close_nodes(monitor, bj.removed);
        } else if (bj.kind == "copy") {
            close_nodes(monitor, {{"", "", bj.target_nodes[0], bj.target_nodes[1]}});
        }
    }
    if (success && bj.delete_images)
        for (const auto& l : bj.removed) {
            std::error_code ec;
            if (!fs::remove(l.file, ec) && ec) spdlog::warn("cannot remove committed image '{}': {}", l.file, ec.message());
        }
    std::string state = success ? "completed" : cancelled ? "cancelled" : "failed";
    if (!success && !cancelled && error.empty()) error = "the block job ended without finishing";
    spdlog::info("domain '{}': block job {} on disk '{}' {}{}", obj.name(), bj.kind, bj.disk, state, error.empty() ? "" : ": " + error);
    guard.finish(success ? Status{} : Status{fail(ErrorCode::OperationFailed, "operation failed: block job {} on disk '{}' {}: {}", bj.kind, bj.disk, state, error)});
    std::lock_guard lk(bj.mutex);
    bj.state = std::move(state);
    bj.error = std::move(error);
    bj.cv.notify_all();
}

static void watch_block_job(QemuDriverImpl& d, const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv,
                            const std::shared_ptr<BlockJobRun>& bj, driver::AsyncJobGuard guard) {
    using namespace std::chrono_literals;
    while (true) {
        if (d.block_watch_stop) {
            guard.finish(fail(ErrorCode::OperationFailed, "operation failed: the daemon stopped following the block job"));
            return;
        }
        if (bj->job->abort_requested() && !bj->cancel_sent.exchange(true))
            if (auto st = priv->monitor->block_job_cancel(bj->qemu_id, false); !st)
                spdlog::warn("block-job-cancel {}: {}", bj->qemu_id, st.error().message);
        auto jobs = priv->monitor->query_block_jobs();
        if (!jobs) {
            conclude(d, *obj, *priv, *bj, d.command_error(*obj, priv, jobs.error()).message, true, guard);
            return;
        }
        auto it = std::find_if(jobs->begin(), jobs->end(), [&](const BlockJobProgress& p) { return p.id == bj->qemu_id; });
        if (it == jobs->end()) {
            conclude(d, *obj, *priv, *bj, "QEMU no longer has the job", false, guard);
            return;
        }
        bj->job->set_data(it->offset, it->len);
        {
            std::lock_guard lk(bj->mutex);
            bj->cur = it->offset;
            bj->end = it->len;
            bj->bandwidth = it->speed;
            if (it->ready && bj->state == "running") {
                bj->state = "ready";
                bj->job->set_phase("ready");
                bj->cv.notify_all();
            }
        }
        if (it->status == "concluded" || it->status == "null") {
            std::string error = it->error;
            if (error.empty())  // query-block-jobs of older QEMUs has no error: query-jobs does
                if (auto all = priv->monitor->query_jobs())
                    for (const auto& j : *all)
                        if (j.id == bj->qemu_id) error = j.error;
            conclude(d, *obj, *priv, *bj, error, false, guard);
            return;
        }
        std::this_thread::sleep_for(100ms);
    }
}

static void follow_block_job(QemuDriverImpl& d, JobStart& s, const std::shared_ptr<BlockJobRun>& bj) {
    bj->job = s.guard->handle();
    bj->job->set_phase(bj->kind);
    {
        std::lock_guard lk(s.run.priv->block_jobs_mutex);
        s.run.priv->block_jobs[bj->disk] = bj;
    }
    spdlog::info("domain '{}': block job {} started on disk '{}'", s.obj->name(), bj->kind, bj->disk);
    std::lock_guard lk(d.block_watch_mutex);
    // The watchers of jobs that ended are joined here, so that they do not pile up.
    std::erase_if(d.block_watchers, [](const std::shared_ptr<BlockWatcher>& w) {
        if (!w->done) return false;
        if (w->thread.joinable()) w->thread.join();
        return true;
    });
    auto w = std::make_shared<BlockWatcher>();
    w->thread = std::thread([&d, weak = std::weak_ptr<BlockWatcher>(w), obj = s.obj, priv = s.run.priv, bj, guard = std::move(*s.guard)]() mutable {
        watch_block_job(d, obj, priv, bj, std::move(guard));
        if (auto self = weak.lock()) self->done = true;
    });
    d.block_watchers.push_back(std::move(w));
}

Result<std::vector<driver::TypedParam>> QemuDriverImpl::block_job_info(std::string_view ref, std::string_view path) {
    auto nd = named_disk(*this, ref, path);
    if (!nd) return std::unexpected(nd.error());
    std::vector<driver::TypedParam> out;
    auto bj = job_of(*nd->run.priv, nd->disk->target_dev);
    if (!bj) return out;
    std::lock_guard lk(bj->mutex);
    auto u = [](std::uint64_t v) { return std::to_string(v); };
    // As libvirt reports progress: cur == end means done to the clients that
    // poll (virsh without events), so a job QEMU has not sized yet reads
    // 0 of 1, and one at 100 % that is not ready (or not over) one short.
    std::uint64_t cur = bj->cur, end = bj->end;
    const bool ready = bj->state == "ready";
    if (cur == 0 && end == 0) {
        end = 1;
        if (ready || bj->state == "completed") cur = 1;
    } else if (bj->state == "running" && cur == end) {
        --cur;
    }
    out.push_back({"type", "string", bj->kind});
    out.push_back({"state", "string", bj->state});
    out.push_back({"cur", "ullong", u(cur)});
    out.push_back({"end", "ullong", u(end)});
    out.push_back({"bandwidth", "ullong", u(bj->bandwidth)});
    if (!bj->error.empty()) out.push_back({"error", "string", bj->error});
    return out;
}

Status QemuDriverImpl::block_job_abort(std::string_view ref, std::string_view path, bool pivot, bool async_end) {
    auto nd = named_disk(*this, ref, path);
    if (!nd) return std::unexpected(nd.error());
    auto bj = job_of(*nd->run.priv, nd->disk->target_dev);
    if (!bj || is_ended(*bj)) return std::unexpected(no_active_job(nd->disk->target_dev));
    auto& monitor = *nd->run.priv->monitor;
    if (pivot) {
        if (bj->kind != "copy" && bj->kind != "active_commit")
            return fail(ErrorCode::InvalidArg, "invalid argument: job type '{}' does not support pivot", bj->kind);
        if (run_state(*bj) != "ready")
            return fail(ErrorCode::InvalidState, "block copy still active: disk '{}' not ready for pivot yet", nd->disk->target_dev);
        bj->pivot = true;
        if (auto st = monitor.block_job_complete(bj->qemu_id); !st) {
            bj->pivot = false;
            return std::unexpected(command_error(*nd->obj, nd->run.priv, st.error()));
        }
    } else {
        bj->cancel_sent = true;
        (void)bj->job->request_abort();
        if (auto st = monitor.block_job_cancel(bj->qemu_id, false); !st)
            return std::unexpected(command_error(*nd->obj, nd->run.priv, st.error()));
    }
    if (async_end) return {};
    std::unique_lock lk(bj->mutex);
    if (!bj->cv.wait_for(lk, std::chrono::minutes(10), [&] { return bj->ended_locked(); }))
        return fail(ErrorCode::Timeout, "timed out waiting for the block job on disk '{}' to end", nd->disk->target_dev);
    if (pivot && bj->state != "completed")
        return fail(ErrorCode::OperationFailed, "operation failed: the pivot of disk '{}' failed: {}", nd->disk->target_dev, bj->error);
    return {};
}

Status QemuDriverImpl::block_job_set_speed(std::string_view ref, std::string_view path, std::uint64_t bandwidth) {
    auto nd = named_disk(*this, ref, path);
    if (!nd) return std::unexpected(nd.error());
    auto bj = job_of(*nd->run.priv, nd->disk->target_dev);
    if (!bj || is_ended(*bj)) return std::unexpected(no_active_job(nd->disk->target_dev));
    if (auto st = nd->run.priv->monitor->block_job_set_speed(bj->qemu_id, bandwidth); !st)
        return std::unexpected(command_error(*nd->obj, nd->run.priv, st.error()));
    std::lock_guard lk(bj->mutex);
    bj->bandwidth = bandwidth;
    return {};
}

}  // namespace vireo::qemu
