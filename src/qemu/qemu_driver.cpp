// QemuDriver: the Driver API on top of QemuDriverImpl.
#include "qemu/qemu_driver.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <thread>

#include <spdlog/spdlog.h>

#include "driver/impact.hpp"
#include "driver/job_ops.hpp"
#include "host/capabilities.hpp"
#include "network/netlink.hpp"
#include "qemu/host.hpp"
#include "conf/device_hotplug.hpp"
#include "conf/memory_device.hpp"
#include "qemu/hotplug.hpp"
#include "qemu/media.hpp"
#include "qemu/nics.hpp"
#include "qemu/firmware.hpp"
#include "qemu/agent.hpp"
#include "qemu/qemu_driver_impl.hpp"
#include "qemu/resources.hpp"
#include "qemu/tuning.hpp"
#include "util/files.hpp"

#ifndef VIREO_VERSION
#define VIREO_VERSION "0.0.0"
#endif

namespace vireo::qemu {

namespace fs = std::filesystem;
using driver::DomainSummary;

QemuDriverConfig default_qemu_config(bool system_mode) {
    QemuDriverConfig c;
    c.system_mode = system_mode;
    if (system_mode) {
        c.confdir = "/etc/vireo/qemu";
        c.rundir = "/run/vireo/qemu";
        c.cachedir = "/var/cache/vireo";
        c.logdir = "/var/log/vireo/qemu";
        c.savedir = "/var/lib/vireo/qemu/save";
        c.channeldir = "/var/lib/vireo/qemu/channel/target";
        c.nvramdir = "/var/lib/vireo/qemu/nvram";
        c.swtpmdir = "/var/lib/vireo/swtpm";
        return c;
    }
    auto env = [](const char* name) -> std::string {
        const char* v = std::getenv(name);
        return v && *v ? v : "";
    };
    std::string home = env("HOME");
    if (home.empty())
        if (const passwd* pw = ::getpwuid(::getuid())) home = pw->pw_dir;
    auto xdg = [&](const char* var, const char* fallback) {
        std::string v = env(var);
        return v.empty() ? fs::path(home) / fallback : fs::path(v);
    };
    c.confdir = xdg("XDG_CONFIG_HOME", ".config") / "vireo" / "qemu";
    std::string runtime = env("XDG_RUNTIME_DIR");
    c.rundir = runtime.empty() ? fs::path(fmt::format("/tmp/vireo-{}", ::getuid())) / "qemu"
                               : fs::path(runtime) / "vireo" / "qemu";
    c.cachedir = xdg("XDG_CACHE_HOME", ".cache") / "vireo";
    c.logdir = xdg("XDG_CACHE_HOME", ".cache") / "vireo" / "qemu" / "log";
    c.savedir = xdg("XDG_DATA_HOME", ".local/share") / "vireo" / "qemu" / "save";
    c.channeldir = xdg("XDG_CONFIG_HOME", ".config") / "vireo" / "qemu" / "lib" / "channel" / "target";
    c.nvramdir = xdg("XDG_CONFIG_HOME", ".config") / "vireo" / "qemu" / "nvram";
    c.swtpmdir = xdg("XDG_CONFIG_HOME", ".config") / "vireo" / "qemu" / "swtpm";
    return c;
}

QemuDriverImpl::QemuDriverImpl(QemuDriverConfig c)
    : cfg(std::move(c)),
      persistence(cfg.confdir, cfg.rundir),
      snapshots(cfg.confdir / "snapshot"),
      caps(cfg.cachedir),
      jobs(cfg.jobs ? cfg.jobs : std::make_shared<driver::JobTracker>()),
      guest_ids(cfg.guest_id_range) {
    if (cfg.savedir.empty()) cfg.savedir = cfg.confdir / "save";
    if (cfg.nvramdir.empty()) cfg.nvramdir = cfg.confdir / "nvram";
    if (cfg.swtpmdir.empty()) cfg.swtpmdir = cfg.confdir / "swtpm";
    worker = std::thread([this] { worker_loop(queue); });
    job_worker = std::thread([this] { worker_loop(job_queue); });
}

QemuDriverImpl::~QemuDriverImpl() {
    stop_block_watchers();
    // Leave every QEMU running (it outlives the driver); just let go of the
    // monitors first, so no reader thread posts to a stopped worker.
    for (const auto& obj : registry.list()) {
        auto monitor = obj->with([](DomainFields& f) {
            auto p = qemu_private(f);
            return p ? p->monitor : nullptr;
        });
        if (monitor) monitor->close();
    }
    {
        std::lock_guard lk(queue_mutex);
        stopping_worker = true;
        queue_cv.notify_all();
    }
    if (worker.joinable()) worker.join();
    if (job_worker.joinable()) job_worker.join();
}

bool QemuDriverImpl::post(std::function<void()> fn) { return post_to(queue, std::move(fn)); }

bool QemuDriverImpl::post_job_work(std::function<void()> fn) { return post_to(job_queue, std::move(fn)); }

bool QemuDriverImpl::post_to(std::deque<std::function<void()>>& to, std::function<void()> fn) {
    std::lock_guard lk(queue_mutex);
    if (stopping_worker) return false;
    to.push_back(std::move(fn));
    queue_cv.notify_all();  // both workers wait on it
    return true;
}

void QemuDriverImpl::worker_loop(std::deque<std::function<void()>>& from) {
    for (;;) {
        std::function<void()> fn;
        {
            std::unique_lock lk(queue_mutex);
            queue_cv.wait(lk, [&] { return stopping_worker || !from.empty(); });
            if (from.empty()) return;  // stopping and drained
            if (stopping_worker) {
                from.clear();
                return;
            }
            fn = std::move(from.front());
            from.pop_front();
        }
        fn();
    }
}

namespace {

Error invalid_state(std::string_view what) {
    return Error{ErrorCode::InvalidState, fmt::format("Requested operation is not valid: {}", what)};
}

class QemuDriverImplWrapper final : public QemuDriver {
public:
    explicit QemuDriverImplWrapper(std::unique_ptr<QemuDriverImpl> impl)
        : QemuDriver(impl->cfg.system_mode ? "qemu:///system" : "qemu:///session"), d_(std::move(impl)) {
        install();
    }

    // The host and domain operations of the table, served by the methods below.
    void install() {
        namespace ops = driver::ops;
        on<ops::HostVersion>([this](const auto&) { return version(); });
        on<ops::HostHostname>([this](const auto&) { return hostname(); });
        on<ops::HostNodeInfo>([this](const auto&) { return node_info(); });
        on<ops::HostCapabilities>([this](const auto&) { return capabilities_xml(); });
        on<ops::HostDomainCapabilities>(
            [this](const auto& r) { return domain_capabilities_xml(r.emulator, r.arch, r.machine, r.virttype); });
        on<ops::HostEvents>([this](const auto& r) { return subscribe(r.callback); });
        on<ops::DomainList>([this](const auto&) { return list_domains(); });
        on<ops::DomainLookup>([this](const auto& r) { return lookup_domain(r.ref); });
        on<ops::DomainXml>([this](const auto& r) { return domain_xml(r.ref, r.inactive, r.security_info); });
        on<ops::DomainDisks>([this](const auto& r) { return domain_disks(r.ref, r.inactive); });
        on<ops::DomainInterfaces>([this](const auto& r) { return domain_interfaces(r.ref, r.inactive); });
        on<ops::DomainInterfaceStats>([this](const auto& r) { return interface_stats(r.ref, r.device); });
        on<ops::DomainInterfaceLink>([this](const auto& r) { return interface_link(r.ref, r.device, r.config); });
        on<ops::DomainSetInterfaceLink>(
            [this](const auto& r) { return set_interface_link(r.ref, r.device, r.state, r.config); });
        on<ops::DomainInterfaceAddresses>([this](const auto& r) { return interface_addresses(r.ref, r.source); });
        on<ops::DomainBlockStats>([this](const auto& r) { return d_->block_stats(r.ref, r.device); });
        on<ops::DomainBlockInfo>([this](const auto& r) { return d_->block_info(r.ref, r.device); });
        on<ops::DomainBlockResize>([this](const auto& r) { return d_->block_resize(r.ref, r.path, r.size); });
        on<ops::DomainBlockCommit>([this](const auto& r) { return d_->block_commit(r); });
        on<ops::DomainBlockPull>([this](const auto& r) { return d_->block_pull(r); });
        on<ops::DomainBlockCopy>([this](const auto& r) { return d_->block_copy(r); });
        on<ops::DomainBlockJobInfo>([this](const auto& r) { return d_->block_job_info(r.ref, r.path); });
        on<ops::DomainBlockJobAbort>([this](const auto& r) { return d_->block_job_abort(r.ref, r.path, r.pivot, r.async_end); });
        on<ops::DomainBlockJobSetSpeed>([this](const auto& r) { return d_->block_job_set_speed(r.ref, r.path, r.bandwidth); });
        on<ops::DomainGetMetadata>([this](const auto& r) { return get_metadata(r.ref, r.kind, r.inactive); });
        on<ops::DomainDefine>([this](const auto& r) { return define_domain(r.xml, r.validate); });
        on<ops::DomainCreate>(
            [this](const auto& r) { return create_domain(r.xml, {.paused = r.paused, .force_boot = r.force_boot}); });
        on<ops::DomainRestore>([this](const auto& r) { return restore_domain(r.path, r.paused); });
        on<ops::DomainUndefine>([this](const auto& r) {
            return undefine_domain(r.ref, {.managed_save = r.managed_save, .nvram = r.nvram,
                                           .remove_all_storage = r.remove_all_storage, .keep_nvram = r.keep_nvram, .tpm = r.tpm, .keep_tpm = r.keep_tpm,
                                           .snapshots_metadata = r.snapshots_metadata});
        });
        on<ops::DomainSetMetadata>([this](const auto& r) { return set_metadata(r.ref, r.kind, r.text, r.live, r.config); });
        on<ops::DomainSetAutostart>([this](const auto& r) { return set_autostart(r.ref, r.enabled); });
        on<ops::DomainStart>(
            [this](const auto& r) { return start_domain(r.ref, {.paused = r.paused, .force_boot = r.force_boot}); });
        on<ops::DomainShutdown>([this](const auto& r) { return shutdown_domain(r.ref, r.mode); });
        on<ops::DomainReboot>([this](const auto& r) { return reboot_domain(r.ref, r.mode); });
        on<ops::DomainDestroy>([this](const auto& r) { return destroy_domain(r.ref, {.graceful = r.graceful}); });
        on<ops::DomainReset>([this](const auto& r) { return reset_domain(r.ref); });
        on<ops::DomainSuspend>([this](const auto& r) { return suspend_domain(r.ref); });
        on<ops::DomainResume>([this](const auto& r) { return resume_domain(r.ref); });
        on<ops::DomainSave>([this](const auto& r) { return save_domain(r.ref, r.path); });
        on<ops::DomainManagedSave>([this](const auto& r) { return managed_save(r.ref); });
        on<ops::DomainManagedSaveRemove>([this](const auto& r) { return managed_save_remove(r.ref); });
        on<ops::DomainJobInfo>([this](const auto& r) -> Result<driver::JobInfo> {
            auto obj = d_->registry.resolve(r.ref);
            if (!obj) return std::unexpected(obj.error());
            return driver::domain_job_info(*obj, r.completed, r.keep_completed);
        });
        on<ops::DomainAbortJob>([this](const auto& r) -> Status {
            auto obj = d_->registry.resolve(r.ref);
            if (!obj) return std::unexpected(obj.error());
            return driver::abort_domain_job(*obj);
        });
        // Over the tracker the daemon shares with the pools (volume jobs too).
        driver::install_job_ops(*this, d_->jobs);
        on<ops::DomainConsole>([this](const auto& r) { return open_console(r.ref, r.device); });
        on<ops::DomainScreenshot>([this](const auto& r) { return screenshot(r.ref, r.screen); });
        on<ops::DomainSendKey>([this](const auto& r) { return send_key(r.ref, r.codeset, r.holdtime, r.keys); });
        on<ops::DomainChangeMedia>([this](const auto& r) { return change_media(r); });
        on<ops::DomainAttachDevice>([this](const auto& r) { return attach_device(r); });
        on<ops::DomainUpdateDevice>([this](const auto& r) { return update_device(r); });
        on<ops::DomainAgentCommand>([this](const auto& r) {
            using std::chrono::milliseconds;
            const std::optional<milliseconds> timeout = r.block       ? std::optional(milliseconds(0))
                                                        : r.timeout_s ? std::optional<milliseconds>(std::chrono::seconds(r.timeout_s))
                                                                      : std::nullopt;  // the domain's guest-agent-timeout
            return d_->agent_command(r.ref, r.command, timeout, !r.async);
        });
        on<ops::DomainGetTime>([this](const auto& r) { return d_->agent_get_time(r.ref); });
        on<ops::DomainSetTime>([this](const auto& r) {
            return d_->agent_set_time(r.ref, r.sync ? std::nullopt
                                                    : std::optional<std::uint64_t>(r.seconds * 1'000'000'000 + r.nseconds));
        });
        on<ops::DomainHostname>([this](const auto& r) { return d_->agent_hostname(r.ref); });
        on<ops::DomainAgentTimeout>([this](const auto& r) -> Status {
            int value = 0;
            const auto* end = r.timeout.data() + r.timeout.size();
            if (auto [p, ec] = std::from_chars(r.timeout.data(), end, value); ec != std::errc{} || p != end || r.timeout.empty())
                return fail(ErrorCode::InvalidArg, "invalid argument: guest agent timeout '{}' is not an integer", r.timeout);
            return d_->set_agent_timeout(r.ref, value);
        });
        on<ops::DomainGuestInfo>([this](const auto& r) {
            namespace gi = driver::guest_info;
            const unsigned groups = (r.users ? gi::kUsers : 0) | (r.os ? gi::kOs : 0) | (r.timezone ? gi::kTimezone : 0) |
                                    (r.hostname ? gi::kHostname : 0) | (r.filesystem ? gi::kFilesystem : 0) |
                                    (r.disks ? gi::kDisks : 0) | (r.interfaces ? gi::kInterfaces : 0);
            return d_->agent_guest_info(r.ref, groups);
        });
        on<ops::DomainFsInfo>([this](const auto& r) { return d_->agent_fs_info(r.ref); });
        on<ops::DomainFsFreeze>([this](const auto& r) { return d_->agent_fs_freeze(r.ref, r.mountpoints, false); });
        on<ops::DomainFsThaw>([this](const auto& r) { return d_->agent_fs_freeze(r.ref, r.mountpoints, true); });
        on<ops::DomainSetUserPassword>(
            [this](const auto& r) { return d_->agent_set_user_password(r.ref, r.user, r.password, r.encrypted); });
        on<ops::DomainGuestVcpus>([this](const auto& r) { return d_->agent_guest_vcpus(r.ref); });
        on<ops::DomainSetGuestVcpus>([this](const auto& r) { return d_->agent_set_guest_vcpus(r.ref, r.cpulist, r.enable); });
        on<ops::DomainDetachDevice>([this](const auto& r) -> Status {
            const driver::ImpactFlags flags{.live = r.live, .config = r.config, .current = r.current, .persistent = r.persistent};
            auto kind = conf::device_xml_kind(r.xml);
            if (!kind) return std::unexpected(kind.error());
            if (*kind == "interface") {
                auto nic = conf::parse_interface_selector_xml(r.xml);
                if (!nic) return std::unexpected(nic.error());
                return detach_interface(r.ref, flags, {.mac = nic->mac, .type = nic->type, .alias = {}}, r.timeout_ms);
            }
            if (*kind == "memory") {
                auto mem = conf::parse_memory_device_xml(r.xml);
                if (!mem) return std::unexpected(mem.error());
                return detach_memory(
                    r.ref, flags, [&](const conf::DomainDef& def) { return conf::find_memory_for_detach(def, *mem); }, r.timeout_ms);
            }
            if (conf::is_pluggable_kind(*kind)) {
                auto dev = conf::parse_pluggable_device_xml(r.xml);
                if (!dev) return std::unexpected(dev.error());
                return detach_pluggable(r.ref, flags, *dev, r.timeout_ms);
            }
            auto disk = disk_document(r.xml, "detaching");
            if (!disk) return std::unexpected(disk.error());
            return detach_disk(r.ref, flags, disk->target_dev, false, r.timeout_ms);
        });
        on<ops::DomainDetachDeviceAlias>([this](const auto& r) -> Status {
            const driver::ImpactFlags flags{.live = r.live, .config = r.config, .current = r.current};
            auto st = detach_disk(r.ref, flags, r.alias, true, r.timeout_ms);
            if (st || st.error().code != ErrorCode::NotFound) return st;
            // Not a disk's alias: a NIC's, else the disk's NotFound stands.
            auto nic = detach_interface(r.ref, flags, {.mac = {}, .type = {}, .alias = r.alias}, r.timeout_ms);
            if (nic || nic.error().code != ErrorCode::NotFound) return nic;
            // Nor a NIC's: a memory module's, else the disk's NotFound stands.
            auto mem = detach_memory(
                r.ref, flags, [&](const conf::DomainDef& def) { return conf::find_memory_by_alias(def, r.alias); }, r.timeout_ms);
            if (mem || mem.error().code != ErrorCode::NotFound) return mem;
            // Nor a module's: an <rng>, <input> or <watchdog>'s, else the disk's NotFound stands.
            auto dev = detach_pluggable_by_alias(r.ref, flags, r.alias, r.timeout_ms);
            if (!dev && dev.error().code == ErrorCode::NotFound) return st;
            return dev;
        });
        on<ops::DomainVcpuInfo>([this](const auto& r) { return vcpu_info_of(r.ref); });
        on<ops::DomainSetVcpus>([this](const auto& r) -> Status {
            if (!r.guest) return set_vcpus(r);
            if (r.config || r.maximum)
                return fail(ErrorCode::InvalidArg, "invalid argument: the guest's vCPUs are changed live only (not with config or maximum)");
            return d_->agent_set_guest_vcpu_count(r.ref, r.count);
        });
        on<ops::DomainSetVcpu>([this](const auto& r) { return set_vcpu(r); });
        on<ops::DomainPinThread>([this](const auto& r) { return pin_thread(r); });
        on<ops::DomainSetMemory>([this](const auto& r) { return set_memory(r); });
        on<ops::DomainMemoryStats>([this](const auto& r) { return memory_stats(r.ref); });
        on<ops::DomainSetMemoryStatsPeriod>([this](const auto& r) { return set_memory_stats_period(r); });
        install_snapshot_ops();
    }

    // Snapshot create, revert and delete are async jobs of the domain
    // (libvirt's "snapshot", "snapshot revert", "snapshot delete").
    void install_snapshot_ops() {
        namespace ops = driver::ops;
        on<ops::SnapshotCreate>([this](const auto& r) -> Result<std::string> {
            auto obj = d_->registry.resolve(r.ref);
            if (!obj) return std::unexpected(obj.error());
            // libvirt refuses a snapshot while a block job runs (its chain is changing).
            if (auto run = d_->running(**obj); run && QemuDriverImpl::has_block_job(*run->priv))
                return fail(ErrorCode::InvalidState, "Requested operation is not valid: domain has active block job");
            auto job = driver::begin_async_job(*obj, *d_->jobs, driver::JobOperation::Snapshot);
            if (!job) return std::unexpected(job.error());
            auto out = d_->snapshot_create(*job, r);
            job->finish(out ? Status{} : Status{std::unexpected(out.error())});
            if (out && r.halt) VIREO_TRY(destroy_domain((*obj)->name(), {}));
            return out;
        });
        on<ops::SnapshotList>([this](const auto& r) -> Result<std::vector<driver::SnapshotSummary>> {
            auto obj = d_->registry.resolve(r.ref);
            if (!obj) return std::unexpected(obj.error());
            return d_->snapshot_list(**obj);
        });
        on<ops::SnapshotXml>([this](const auto& r) -> Result<std::string> {
            auto obj = d_->registry.resolve(r.ref);
            if (!obj) return std::unexpected(obj.error());
            return d_->snapshot_xml(**obj, r.name);
        });
        on<ops::SnapshotRevert>([this](const auto& r) -> Status {
            auto obj = d_->registry.resolve(r.ref);
            if (!obj) return std::unexpected(obj.error());
            auto job = driver::begin_async_job(*obj, *d_->jobs, driver::JobOperation::SnapshotRevert);
            if (!job) return std::unexpected(job.error());
            Status out = d_->snapshot_revert(*job, r);
            job->finish(out);
            return out;
        });
        on<ops::SnapshotDelete>([this](const auto& r) -> Status {
            auto obj = d_->registry.resolve(r.ref);
            if (!obj) return std::unexpected(obj.error());
            auto job = driver::begin_async_job(*obj, *d_->jobs, driver::JobOperation::SnapshotDelete);
            if (!job) return std::unexpected(job.error());
            Status out = d_->snapshot_delete(*job, r);
            job->finish(out);
            return out;
        });
    }

    Result<driver::VersionInfo> version() {
        driver::VersionInfo v{VIREO_VERSION, VIREO_VERSION, ""};
        auto bin = default_binary();
        if (bin) {
            if (auto c = d_->caps.get(*bin)) v.hypervisor = fmt::format("QEMU {}", (*c)->version_string());
        }
        return v;
    }

    Result<std::string> hostname() {
        char buf[HOST_NAME_MAX + 1] = {};
        if (::gethostname(buf, sizeof buf - 1) != 0) return fail_errno("cannot get the host name");
        return std::string(buf);
    }

    // Host facts come from src/host, measured on the real machine (CPU,
    // NUMA cells, which accelerators really work, the QEMU binaries found).
    Result<driver::NodeInfo> node_info() { return host::read_node_info(); }

    Result<std::string> capabilities_xml() {
        auto facts = host_facts();
        if (!facts) return std::unexpected(facts.error());
        // The system daemon's guests run under DAC (qemu_security.cpp); no
        // SELinux or AppArmor driver exists here, so dac is the only model.
        host::HostFacts with_secmodel = *facts;
        if (d_->cfg.system_mode) {
            with_secmodel.secmodel = "dac";
            if (d_->shared_identity) with_secmodel.secmodel_baselabel = security::label_text(*d_->shared_identity);
        }
        return host::capabilities_xml(with_secmodel);
    }

    Result<std::string> domain_capabilities_xml(std::string_view emulator, std::string_view arch,
                                                std::string_view machine, std::string_view virttype) {
        auto facts = host_facts();
        if (!facts) return std::unexpected(facts.error());
        return host::domain_capabilities_xml(*facts, emulator, arch, machine, virttype);
    }

    // Gathered once per driver: the facts do not change while it runs, and
    // the accelerator measurement must not be paid on every call.
    Result<host::HostFacts> host_facts() {
        std::lock_guard lock(host_facts_mutex_);
        if (!host_facts_) {
            auto f = host::gather_host_facts();
            if (!f) return std::unexpected(f.error());
            host_facts_ = std::move(*f);
        }
        return *host_facts_;
    }

    // --- queries ---------------------------------------------------------------

    Result<std::vector<DomainSummary>> list_domains() {
        std::vector<DomainSummary> out;
        for (const auto& snap : d_->registry.snapshots()) out.push_back(summary_of(snap));
        return out;
    }

    Result<DomainSummary> lookup_domain(std::string_view ref) {
        auto snap = snapshot_of(ref);
        if (!snap) return std::unexpected(snap.error());
        return summary_of(*snap);
    }

    Result<std::string> domain_xml(std::string_view ref, bool inactive, bool security_info) {
        auto snap = snapshot_of(ref);
        if (!snap) return std::unexpected(snap.error());
        return driver::domain_xml_of(inactive ? snap->fields.inactive() : snap->fields.current(), security_info);
    }

    Result<std::vector<driver::DiskInfo>> domain_disks(std::string_view ref, bool inactive) {
        auto snap = snapshot_of(ref);
        if (!snap) return std::unexpected(snap.error());
        return driver::disk_rows(*(inactive ? snap->fields.inactive() : snap->fields.current()).def);
    }

    Result<std::vector<driver::InterfaceInfo>> domain_interfaces(std::string_view ref, bool inactive) {
        auto snap = snapshot_of(ref);
        if (!snap) return std::unexpected(snap.error());
        return driver::interface_rows(*(inactive ? snap->fields.inactive() : snap->fields.current()).def);
    }

    // --- interfaces (domifstat, domif-getlink/setlink, domifaddr) ---------------------

    // The NIC virsh means by `device`: its host-side name (vnet0) or its MAC.
    static const conf::Interface* find_nic(const conf::DomainDef& def, std::string_view device) {
        const std::string lower = [&] {
            std::string out(device);
            for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            return out;
        }();
        for (const auto& n : def.devices.interfaces)
            if ((!n.target_dev.empty() && n.target_dev == device) || n.mac == lower) return &n;
        return nullptr;
    }

    static Error unknown_nic(std::string_view device) {
        return Error{ErrorCode::InvalidArg, fmt::format("invalid argument: invalid path, '{}' is not a known interface", device)};
    }

    Result<driver::InterfaceStats> interface_stats(std::string_view ref, std::string_view device) {
        auto obj = d_->registry.resolve(ref);
        if (!obj) return std::unexpected(obj.error());
        auto run = d_->running(**obj);
        if (!run) return std::unexpected(run.error());
        const conf::Interface* nic = find_nic(*run->def, device);
        if (!nic) return std::unexpected(unknown_nic(device));
        if (nic->target_dev.empty())
            return fail(ErrorCode::Unsupported,
                        "interface '{}' (type '{}') has no host-side device to read counters from (domifstat needs "
                        "type network, bridge, ethernet or direct)",
                        device, nic->type);
        auto link = network::find_link(nic->target_dev);
        if (!link) return std::unexpected(link.error());
        if (!*link) return fail(ErrorCode::NotFound, "the host-side device '{}' of interface '{}' is gone", nic->target_dev, device);
        // A tap counts from the host's side; a macvtap from the guest's.
        const network::LinkStats g = guest_view((*link)->stats, nic->type != "direct");
        return driver::InterfaceStats{nic->target_dev, g.rx_bytes, g.rx_packets, g.rx_errors, g.rx_dropped,
                                      g.tx_bytes,      g.tx_packets, g.tx_errors, g.tx_dropped};
    }

    Result<std::string> interface_link(std::string_view ref, std::string_view device, bool config) {
        auto snap = snapshot_of(ref);
        if (!snap) return std::unexpected(snap.error());
        const auto& def = *(config ? snap->fields.inactive() : snap->fields.current()).def;
        const conf::Interface* nic = find_nic(def, device);
        if (!nic) return std::unexpected(unknown_nic(device));
        return nic->link_state.empty() ? std::string("up") : nic->link_state;
    }

    Status set_interface_link(std::string_view ref, std::string_view device, driver::LinkState state, bool config) {
        auto job = begin(ref, "domif-setlink");
        if (!job) return std::unexpected(job.error());
        auto& obj = job->object();
        const bool active = obj.snapshot().active();
        // virsh: --config changes the persistent definition; otherwise the
        // current one (live while running).
        const bool live = !config && active;
        const std::string value = state == driver::LinkState::Up ? "up" : "down";
        auto edited = [&](const DomainDefinition& d) -> Result<DomainDefinition> {
            const conf::Interface* nic = find_nic(*d.def, device);
            if (!nic) return std::unexpected(unknown_nic(device));
            const auto index = static_cast<std::size_t>(nic - d.def->devices.interfaces.data());
            conf::DomainDef copy = *d.def;
            copy.devices.interfaces[index].link_state = value;
            return driver::make_definition(std::move(copy));
        };
        if (live) {
            auto run = d_->running(obj);
            if (!run) return std::unexpected(run.error());
            const conf::Interface* nic = find_nic(*run->def, device);
            if (!nic) return std::unexpected(unknown_nic(device));
            auto r = run->priv->monitor->set_link(nic->info.alias, state == driver::LinkState::Up);
            if (!r) return std::unexpected(d_->command_error(obj, run->priv, r.error()));
            auto cur = obj.with([](DomainFields& f) { return f.live; });
            if (!cur) return std::unexpected(driver::not_running_error(obj.name()));
            auto next = edited(*cur);
            if (!next) return std::unexpected(next.error());
            obj.with([&](DomainFields& f) {
                if (f.live) f.live = *next;
            });
            (void)d_->write_status(obj);
            return {};
        }
        auto cfg_def = obj.with([](DomainFields& f) { return f.config; });
        if (!cfg_def) return std::unexpected(invalid_state("cannot change persistent config of a transient domain"));
        auto next = edited(*cfg_def);
        if (!next) return std::unexpected(next.error());
        VIREO_TRY(d_->persistence.save_config(obj.name(), next->xml));
        obj.with([&](DomainFields& f) { f.config = *next; });
        return {};
    }

    // The last step of a verb that changed a domain (change-media, device
    // attach/detach) after its live part succeeded: the new live definition
    // becomes the domain's (and its status file's), the new persistent one is
    // written before it is published.
    void publish_live(driver::DomainObject& obj, conf::DomainDef next) { d_->publish_live(obj, std::move(next)); }
    Status save_config(driver::DomainObject& obj, conf::DomainDef next) {
        auto made = driver::make_definition(std::move(next));
        VIREO_TRY(d_->persistence.save_config(obj.name(), made.xml));
        obj.with([&](DomainFields& f) { f.config = made; });
        return {};
    }

    // A verb that changes a domain (change-media, attach, detach): its job,
    // the persistent definition it starts from, and libvirt's impact of its
    // --live/--config/--current/--persistent.
    struct Change {
        JobGuard job;
        std::optional<DomainDefinition> config;
        driver::Impact impact;
    };
    Result<Change> begin_change(std::string_view ref, std::string_view name, driver::ImpactFlags flags) {
        auto job = begin(ref, name);
        if (!job) return std::unexpected(job.error());
        auto cfg_def = job->object().with([](DomainFields& f) { return f.config; });
        auto impact = driver::resolve_impact(flags, job->object().snapshot().active(), cfg_def.has_value());
        if (!impact) return std::unexpected(impact.error());
        return Change{std::move(*job), std::move(cfg_def), *impact};
    }

    // The rest of a change that edits each definition the impact names the
    // same way: `edit` makes the next definition from one (`live`: the
    // running one; both are made before either changes), `apply_live`
    // brings the running QEMU to the next live definition (and may complete
    // it with what QEMU reports, e.g. a memory module's address), which is
    // then published; the persistent one is saved last.
    using EditDefinition = std::function<Result<conf::DomainDef>(conf::DomainDef, bool live)>;
    using ApplyLive = std::function<Status(const QemuDriverImpl::Running&, conf::DomainDef& next)>;
    Status edit_definitions(Change& change, const EditDefinition& edit, const ApplyLive& apply_live) {
        auto& obj = change.job.object();
        std::optional<conf::DomainDef> next_cfg;
        if (change.impact.config) {
            auto d = edit(*change.config->def, false);
            if (!d) return std::unexpected(d.error());
            next_cfg = std::move(*d);
        }
        if (change.impact.live) {
            auto run = d_->running(obj);
            if (!run) return std::unexpected(run.error());
            auto d = edit(*run->def, true);
            if (!d) return std::unexpected(d.error());
            if (auto st = apply_live(*run, *d); !st) return std::unexpected(d_->command_error(obj, run->priv, st.error()));
            publish_live(obj, std::move(*d));
        }
        if (next_cfg) VIREO_TRY(save_config(obj, std::move(*next_cfg)));
        return {};
    }

    // virsh change-media: the running domain through QMP (its live XML
    // follows), the persistent definition, or both; current = live when
    // running.
    Status change_media(const driver::ops::DomainChangeMedia::Request& r) {
        auto action = parse_media_action(r.action);
        if (!action) return std::unexpected(action.error());
        return change_media_with(r.ref, "change-media", {.live = r.live, .config = r.config},
                                 {.path = r.path, .action = *action, .source = r.source, .force = r.force});
    }

    struct MediaChange {
        std::string path;  // the disk's target or current source
        MediaAction action = MediaAction::Update;
        std::string source;
        bool force = false;
    };
    Status change_media_with(std::string_view ref, std::string_view name, driver::ImpactFlags flags, const MediaChange& m) {
        auto change = begin_change(ref, name, flags);
        if (!change) return std::unexpected(change.error());
        auto& obj = change->job.object();
        const auto& cfg_def = change->config;
        const driver::Impact& impact = change->impact;
        const bool live = impact.live, config = impact.config;
        // Both checked before either is changed.
        std::optional<conf::DomainDef> next_live, next_cfg;
        if (live) {
            auto cur = obj.with([](DomainFields& f) { return f.live; });
            if (!cur) return std::unexpected(driver::not_running_error(obj.name()));
            auto n = with_media(*cur->def, m.path, m.action, m.source);
            if (!n) return std::unexpected(n.error());
            next_live = std::move(*n);
        }
        if (config) {
            auto n = with_media(*cfg_def->def, m.path, m.action, m.source);
            if (!n) return std::unexpected(n.error());
            next_cfg = std::move(*n);
        }
        if (!m.source.empty() && m.action != MediaAction::Eject) {
            std::error_code ec;
            if (!std::filesystem::exists(m.source, ec))
                return fail(ErrorCode::NotFound, "Cannot access storage file '{}': No such file or directory", m.source);
        }
        if (next_live) {
            auto run = d_->running(obj);
            if (!run) return std::unexpected(run.error());
            auto index = find_media_disk(*next_live, m.path);
            if (!index) return std::unexpected(index.error());
            const conf::Disk& disk = next_live->devices.disks[*index];
            VIREO_TRY(d_->admit_disk(*run->def, disk, run->priv->runtime_prefix));
            if (auto st = change_media_live(*run->priv->monitor, disk, m.force); !st)
                return std::unexpected(d_->command_error(obj, run->priv, st.error()));
            publish_live(obj, std::move(*next_live));
        }
        if (next_cfg) VIREO_TRY(save_config(obj, std::move(*next_cfg)));
        return {};
    }

    // --- devices (attach-device, detach-device, detach-device-alias) -------------------

    // virsh update-device: a cdrom or floppy <disk> changes its medium (the
    // change-media path: no <source> ejects), an <interface> its link state
    // (live) or its whole definition (config).
    Status update_device(const driver::ops::DomainUpdateDevice::Request& r) {
        auto kind = conf::device_xml_kind(r.xml);
        if (!kind) return std::unexpected(kind.error());
        const driver::ImpactFlags flags{.live = r.live, .config = r.config, .current = r.current, .persistent = r.persistent};
        if (*kind == "interface") return update_interface(r.ref, r.xml, flags);
        if (*kind == "memory") return update_memory(r.ref, r.xml, flags);
        if (*kind != "disk")
            return fail(ErrorCode::Unsupported,
                        "updating a <{}> device is not supported yet (only a cdrom or floppy <disk>, <interface> and virtio-mem <memory>)",
                        *kind);
        auto disk = conf::parse_disk_xml(r.xml);
        if (!disk) return std::unexpected(disk.error());
        if (disk->device != "cdrom" && disk->device != "floppy")
            return fail(ErrorCode::Unsupported,
                        "Operation not supported: disk device '{}' cannot be updated: only the medium of a cdrom or floppy can",
                        disk->device);
        const std::string& source = disk->source.file.empty() ? disk->source.dev : disk->source.file;
        return change_media_with(r.ref, "update-device", flags,
                                 {.path = disk->target_dev, .action = MediaAction::Update, .source = source, .force = r.force});
    }

    Status update_interface(std::string_view ref, std::string_view xml, driver::ImpactFlags flags) {
        auto nic = conf::parse_domain_interface_xml(xml);
        if (!nic) return std::unexpected(nic.error());
        auto change = begin_change(ref, "update-device", flags);
        if (!change) return std::unexpected(change.error());
        auto link_up = [](const conf::Interface& n) { return n.link_state != "down"; };
        return edit_definitions(
            *change, [&](const conf::DomainDef& def, bool live) { return conf::with_interface_updated(def, *nic, live); },
            [&](const QemuDriverImpl::Running& run, const conf::DomainDef& next) -> Status {
                for (const auto& after : next.devices.interfaces)
                    for (const auto& before : run.def->devices.interfaces)
                        if (before.mac == after.mac && link_up(before) != link_up(after))
                            VIREO_TRY(run.priv->monitor->set_link(after.info.alias, link_up(after)));
                return {};
            });
    }

    // A virtio-mem's <requested>: each definition gets it; the running
    // guest is asked to plug or unplug blocks (qom-set requested-size); its
    // <current> follows QEMU's MEMORY_DEVICE_SIZE_CHANGE.
    Status update_memory(std::string_view ref, std::string_view xml, driver::ImpactFlags flags) {
        auto mem = conf::parse_memory_device_xml(xml);
        if (!mem) return std::unexpected(mem.error());
        auto change = begin_change(ref, "update-device", flags);
        if (!change) return std::unexpected(change.error());
        return edit_definitions(
            *change, [&](const conf::DomainDef& def, bool) { return conf::with_memory_updated(def, *mem); },
            [&](const QemuDriverImpl::Running& run, const conf::DomainDef& next) -> Status {
                for (const auto& after : next.devices.memories)
                    for (const auto& before : run.def->devices.memories)
                        if (before.info.alias == after.info.alias && before.requested_kib != after.requested_kib)
                            VIREO_TRY(run.priv->monitor->qom_set("/machine/peripheral/" + after.info.alias, "requested-size",
                                                                 after.requested_kib * 1024));
                return {};
            });
    }

    // The one device document of attach/detach: a <disk> here (<interface>,
    // <memory>, <rng>, <input>, <watchdog> and <channel> are dispatched
    // before; other kinds are not supported yet).
    static Result<conf::Disk> disk_document(std::string_view xml, std::string_view doing) {
        auto kind = conf::device_xml_kind(xml);
        if (!kind) return std::unexpected(kind.error());
        if (*kind != "disk")
            return fail(ErrorCode::Unsupported,
                        "{} a <{}> device is not supported yet (only <disk>, <interface>, <memory>, <rng>, <input>, <watchdog> and "
                        "<channel>)",
                        doing, *kind);
        return conf::parse_disk_xml(xml);
    }

    Status attach_device(const driver::ops::DomainAttachDevice::Request& r) {
        auto kind = conf::device_xml_kind(r.xml);
        if (!kind) return std::unexpected(kind.error());
        if (*kind == "interface") return attach_interface(r);
        if (*kind == "memory") return attach_memory(r);
        if (conf::is_pluggable_kind(*kind)) return attach_pluggable(r);
        return attach_disk(r);
    }

    // An <rng>, <input> or <watchdog>: each definition gets it where a cold
    // define puts it; the running guest its command line's own objects and
    // device (libvirt's refusals of what cannot be hotplugged first).
    Status attach_pluggable(const driver::ops::DomainAttachDevice::Request& r) {
        auto dev = conf::parse_pluggable_device_xml(r.xml);
        if (!dev) return std::unexpected(dev.error());
        auto change = begin_change(r.ref, "attach-device",
                                   {.live = r.live, .config = r.config, .current = r.current, .persistent = r.persistent});
        if (!change) return std::unexpected(change.error());
        return edit_definitions(
            *change,
            [&](const conf::DomainDef& def, bool live) -> Result<conf::DomainDef> {
                auto next = conf::with_device_attached(def, *dev);
                if (!next || !live) return next;
                if (next->devices.controllers.size() != def.devices.controllers.size())
                    return fail(ErrorCode::OperationFailed,
                                "Operation not supported: the device needs a new controller, which cannot be hotplugged");
                VIREO_TRY(std::visit([&]<class Device>(const Device&) { return live_pluggable((next->devices.*conf::PluggableKind<Device>::list).back()); },
                                     *dev));
                // A channel's socket where a start puts it, its port disconnected until the guest opens it.
                if (std::holds_alternative<conf::CharDev>(*dev))
                    VIREO_TRY(d_->prepare_channel(next->devices.channels.back(), next->name, next->id.value_or(0)));
                return next;
            },
            [&](const QemuDriverImpl::Running& run, conf::DomainDef& next) -> Status {
                const conf::PluggableDevice placed = std::visit(
                    [&]<class Device>(const Device&) -> conf::PluggableDevice { return (next.devices.*conf::PluggableKind<Device>::list).back(); },
                    *dev);
                auto qcaps = d_->caps.get(next.devices.emulator);
                if (!qcaps) return std::unexpected(qcaps.error());
                CommandLineOptions opts;
                opts.emulator = next.devices.emulator;
                opts.caps = qcaps->get();
                opts.runtime_prefix = run.priv->runtime_prefix;
                auto args = device_hotplug_args(next, placed, opts);
                if (!args) return std::unexpected(args.error());
                if (const auto* ch = std::get_if<conf::CharDev>(&placed)) VIREO_TRY(d_->admit_channel(next, *ch, run.priv->runtime_prefix));
                auto pty = attach_device_live(*run.priv->monitor, *args);
                if (!pty) {
                    if (const auto* ch = std::get_if<conf::CharDev>(&placed)) d_->release_channel(*ch);
                    return std::unexpected(pty.error());
                }
                // The live XML shows the pty QEMU opened, as after a start.
                if (std::holds_alternative<conf::CharDev>(placed) && !pty->empty()) next.devices.channels.back().source_path = *pty;
                return {};
            });
    }

    // libvirt 9.0's refusals of a device it cannot plug into a running guest.
    static Status live_pluggable(const conf::Input& in) {
        if (in.bus != "virtio" && in.bus != "usb")
            return fail(ErrorCode::Unsupported, "Operation not supported: input device on bus '{}' cannot be hot plugged.", in.bus);
        return {};
    }
    static Status live_pluggable(const conf::Watchdog& w) {
        if (w.model != "i6300esb")
            return fail(ErrorCode::Unsupported, "Operation not supported: hotplug of watchdog of model {} is not supported", w.model);
        return {};
    }
    static Status live_pluggable(const conf::Rng&) { return {}; }
    static Status live_pluggable(const conf::CharDev& ch) {
        if (ch.type == "spicevmc" || ch.type == "qemu-vdagent")
            return fail(ErrorCode::Unsupported, "Operation not supported: hotplug of a {} channel is not supported", ch.type);
        return {};
    }

    // A memory module (<memory model='dimm'>): each definition gets it as
    // libvirt places it (slot, alias, the memory total); the running guest
    // its backend object and pc-dimm, and the live XML where it sits.
    Status attach_memory(const driver::ops::DomainAttachDevice::Request& r) {
        auto mem = conf::parse_memory_device_xml(r.xml);
        if (!mem) return std::unexpected(mem.error());
        auto change = begin_change(r.ref, "attach-device",
                                   {.live = r.live, .config = r.config, .current = r.current, .persistent = r.persistent});
        if (!change) return std::unexpected(change.error());
        return edit_definitions(
            *change, [&](const conf::DomainDef& def, bool) { return conf::with_memory_attached(def, *mem); },
            [&](const QemuDriverImpl::Running& run, conf::DomainDef& next) -> Status {
                const conf::MemoryDevice& placed = next.devices.memories.back();
                auto args = memory_module_args(next, read_memory_host(), placed);
                if (!args) return std::unexpected(args.error());
                return attach_memory_live(*run.priv->monitor, *args, next);
            });
    }

    // Both definitions checked (and the live NIC's host side made and its
    // command line built) before either changes; the live one first.
    Status attach_interface(const driver::ops::DomainAttachDevice::Request& r) {
        auto parsed = conf::parse_domain_interface_xml(r.xml);
        if (!parsed) return std::unexpected(parsed.error());
        auto change = begin_change(r.ref, "attach-device",
                                   {.live = r.live, .config = r.config, .current = r.current, .persistent = r.persistent});
        if (!change) return std::unexpected(change.error());
        auto& obj = change->job.object();
        const auto& cfg_def = change->config;
        const driver::Impact& impact = change->impact;
        // One MAC for both definitions, unused on this connection.
        conf::Interface nic = *parsed;
        if (nic.mac.empty()) {
            conf::DomainDef holder;
            holder.devices.interfaces = {nic};
            conf::assign_unique_macs(holder, d_->mac_in_use_check(), {});
            nic.mac = holder.devices.interfaces.front().mac;
        }
        std::optional<conf::DomainDef> next_live, next_cfg;
        if (impact.config) {
            auto n = conf::with_interface_attached(*cfg_def->def, nic);
            if (!n) return std::unexpected(n.error());
            next_cfg = std::move(*n);
        }
        if (impact.live) {
            auto run = d_->running(obj);
            if (!run) return std::unexpected(run.error());
            auto n = attach_interface_live(obj, *run, nic);
            if (!n) return std::unexpected(n.error());
            publish_live(obj, std::move(*n));
        }
        if (next_cfg) VIREO_TRY(save_config(obj, std::move(*next_cfg)));
        return {};
    }

    // The running domain's next live definition with `nic` plugged in: the
    // host side made (plug_hotplug_nic), handed to QEMU, the device added.
    Result<conf::DomainDef> attach_interface_live(driver::DomainObject& obj, const QemuDriverImpl::Running& run,
                                                  const conf::Interface& nic) {
        auto n = conf::with_interface_attached(*run.def, nic);
        if (!n) return std::unexpected(n.error());
        if (n->devices.controllers.size() != run.def->devices.controllers.size())
            return fail(ErrorCode::OperationFailed,
                        "no free PCI slot for interface '{}' in the running domain (a new controller cannot be hotplugged)",
                        nic.mac);
        auto index = conf::find_interface_for_detach(*n, nic.mac, "");
        if (!index) return std::unexpected(index.error());
        conf::Interface& placed = n->devices.interfaces[*index];
        VIREO_TRY(nic_hotpluggable(placed));
        auto qcaps = d_->caps.get(n->devices.emulator);
        if (!qcaps) return std::unexpected(qcaps.error());
        const std::string& prefix = run.priv->runtime_prefix;
        auto fds = d_->plug_hotplug_nic(obj.name(), prefix, *n, placed);
        if (!fds) return std::unexpected(fds.error());
        CommandLineOptions opts;
        opts.emulator = n->devices.emulator;
        opts.caps = qcaps->get();
        opts.runtime_prefix = prefix;
        std::vector<std::pair<std::string, int>> given;
        for (const auto& f : *fds) {
            opts.passed_fds[f.name] = f.fd.get();
            given.emplace_back(f.name, f.fd.get());
        }
        auto args = nic_hotplug_args(*n, placed, opts);
        Status st = args ? attach_nic_live(*run.priv->monitor, *args, given, placed) : Status(std::unexpected(args.error()));
        if (!st) {
            d_->unplug_hotplug_nic(obj.name(), placed);
            return std::unexpected(args ? d_->command_error(obj, run.priv, st.error()) : st.error());
        }
        return n;
    }

    // libvirt 9.0's buses a disk can be hotplugged on: virtio (a disk),
    // scsi and usb (a disk or a cdrom, on a controller the domain has).
    static Status disk_hotpluggable(const conf::Disk& d) {
        const std::string& bus = d.target_bus;
        if (bus != "virtio" && bus != "scsi" && bus != "usb")
            return fail(ErrorCode::Unsupported, "Operation not supported: disk bus '{}' cannot be hotplugged.", bus);
        if (d.device != "disk" && d.device != "cdrom")
            return fail(ErrorCode::Unsupported, "hotplug of a {} on bus '{}' is not supported yet (only disks and cdroms)", d.device,
                        bus);
        // usb-storage needs its medium: an empty USB cdrom has no QEMU device.
        if (bus == "usb" && d.device == "cdrom" && d.source.empty())
            return fail(ErrorCode::Unsupported, "Operation not supported: a USB cdrom without media cannot be hotplugged (give it a <source>)");
        return {};
    }

    // Both definitions checked (and the live disk's command line built)
    // before either changes; the live one through the monitor first.
    Status attach_disk(const driver::ops::DomainAttachDevice::Request& r) {
        auto disk = disk_document(r.xml, "attaching");
        if (!disk) return std::unexpected(disk.error());
        auto change = begin_change(r.ref, "attach-device",
                                   {.live = r.live, .config = r.config, .current = r.current, .persistent = r.persistent});
        if (!change) return std::unexpected(change.error());
        auto& obj = change->job.object();
        const auto& cfg_def = change->config;
        const driver::Impact& impact = change->impact;
        std::optional<conf::DomainDef> next_live, next_cfg;
        std::optional<DiskHotplug> hotplug;
        std::optional<QemuDriverImpl::Running> run;
        if (impact.live) {
            if (disk->type == "volume" || disk->type == "network")
                return fail(ErrorCode::Unsupported, "hotplug of a disk of type '{}' is not supported yet", disk->type);
            VIREO_TRY(check_disk_source_exists(*disk));
            auto r_run = d_->running(obj);
            if (!r_run) return std::unexpected(r_run.error());
            run = *r_run;
            auto n = conf::with_disk_attached(*run->def, *disk);
            if (!n) return std::unexpected(n.error());
            const conf::Disk* placed = conf::find_disk_by_target(*n, disk->target_dev);
            if (!placed) return fail(ErrorCode::Internal, "attached disk '{}' is missing", disk->target_dev);
            VIREO_TRY(disk_hotpluggable(*placed));
            if (n->devices.controllers.size() != run->def->devices.controllers.size()) {
                if (placed->target_bus == "virtio")
                    return fail(ErrorCode::OperationFailed,
                                "no free PCI slot for disk '{}' in the running domain (a new controller cannot be hotplugged)",
                                disk->target_dev);
                return fail(ErrorCode::OperationFailed,
                            "Operation not supported: disk '{}' needs a new {} controller, which cannot be hotplugged "
                            "(define the controller and restart the domain)",
                            disk->target_dev, placed->target_bus);
            }
            auto qcaps = d_->caps.get(n->devices.emulator);
            if (!qcaps) return std::unexpected(qcaps.error());
            CommandLineOptions opts;
            opts.emulator = n->devices.emulator;
            opts.caps = qcaps->get();
            auto args = disk_hotplug_args(*n, *placed, opts, hotplug_node_prefix(placed->info.alias));
            if (!args) return std::unexpected(args.error());
            hotplug = std::move(*args);
            next_live = std::move(*n);
        }
        if (impact.config) {
            auto n = conf::with_disk_attached(*cfg_def->def, *disk);
            if (!n) return std::unexpected(n.error());
            next_cfg = std::move(*n);
        }
        if (next_live) {
            // Its file for the guest's QEMU user, as at start.
            VIREO_TRY(d_->admit_disk(*run->def, *conf::find_disk_by_target(*next_live, disk->target_dev),
                                     run->priv->runtime_prefix));
            if (auto st = attach_disk_live(*run->priv->monitor, *hotplug); !st)
                return std::unexpected(d_->command_error(obj, run->priv, st.error()));
            publish_live(obj, std::move(*next_live));
        }
        if (next_cfg) VIREO_TRY(save_config(obj, std::move(*next_cfg)));
        return {};
    }

    // The shape of every detach: the device found in the definitions the
    // impact names (both checked before either changes), the guest asked
    // to release the live one (a guest that keeps it leaves everything as
    // it was, device-removal-failed), then its host side, the new live
    // definition, device-removed, the persistent definition.
    template <class Device>
    struct DetachPlan {
        std::vector<Device> conf::Devices::*list;
        // The device in a definition; `live` is the live one's, when the
        // live definition changes too (the persistent one may be found by it).
        std::function<Result<std::size_t>(const conf::DomainDef&, const Device* live)> find;
        std::function<Result<bool>(Monitor&, const Device&, std::chrono::milliseconds)> detach_live;
        std::function<void(const std::string& domain, const Device&)> release_host_side;  // may be empty
        std::function<std::string(const Device&)> describe;    // "disk vdb"
        // The definition without device `i`; empty: only the device goes.
        std::function<conf::DomainDef(const conf::DomainDef&, std::size_t)> without = {};
    };

    template <class Device>
    Status detach_with(std::string_view ref, driver::ImpactFlags flags, std::uint64_t timeout_ms, const DetachPlan<Device>& plan) {
        auto change = begin_change(ref, "detach-device", flags);
        if (!change) return std::unexpected(change.error());
        auto& obj = change->job.object();
        const auto& cfg_def = change->config;
        const driver::Impact& impact = change->impact;
        auto without = [&](const conf::DomainDef& def, std::size_t i) {
            if (plan.without) return plan.without(def, i);
            conf::DomainDef out = def;
            auto& v = out.devices.*plan.list;
            v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
            return out;
        };
        std::optional<conf::DomainDef> next_live, next_cfg;
        std::optional<Device> live_dev;
        std::optional<QemuDriverImpl::Running> run;
        if (impact.live) {
            auto r_run = d_->running(obj);
            if (!r_run) return std::unexpected(r_run.error());
            run = *r_run;
            auto i = plan.find(*run->def, nullptr);
            if (!i) return std::unexpected(i.error());
            live_dev = (run->def->devices.*plan.list)[*i];
            next_live = without(*run->def, *i);
        }
        if (impact.config) {
            auto i = plan.find(*cfg_def->def, live_dev ? &*live_dev : nullptr);
            if (!i) return std::unexpected(i.error());
            next_cfg = without(*cfg_def->def, *i);
        }
        if (next_live) {
            const auto timeout = timeout_ms ? std::chrono::milliseconds(timeout_ms) : kDetachTimeout;
            auto removed = plan.detach_live(*run->priv->monitor, *live_dev, timeout);
            if (!removed) return std::unexpected(d_->command_error(obj, run->priv, removed.error()));
            if (!*removed) {
                d_->emit(EventType::DeviceRemovalFailed, live_dev->info.alias, obj);
                return fail(ErrorCode::OperationFailed,
                            "operation failed: the guest did not release device '{}' ({}) within {} ms; it stays attached",
                            live_dev->info.alias, plan.describe(*live_dev), timeout.count());
            }
            if (plan.release_host_side) plan.release_host_side(obj.name(), *live_dev);
            publish_live(obj, std::move(*next_live));
            d_->emit(EventType::DeviceRemoved, live_dev->info.alias, obj);
        }
        if (next_cfg) VIREO_TRY(save_config(obj, std::move(*next_cfg)));
        return {};
    }

    // detach-device (a disk by target), detach-device-alias (by alias).
    Status detach_disk(std::string_view ref, driver::ImpactFlags flags, std::string_view name, bool by_alias,
                       std::uint64_t timeout_ms) {
        DetachPlan<conf::Disk> plan{
            .list = &conf::Devices::disks,
            .find = [&](const conf::DomainDef& def, const conf::Disk* live) -> Result<std::size_t> {
                if (by_alias) {
                    auto i = conf::find_disk_by_alias(def, name);
                    // The persistent definition's disk is the live one's target.
                    if (!i && live) return find_disk_for_detach(def, live->target_dev);
                    return i;
                }
                for (std::size_t i = 0; i < def.devices.disks.size(); ++i)
                    if (def.devices.disks[i].target_dev == name) return i;
                return fail(ErrorCode::NotFound, "operation failed: disk {} not found", name);
            },
            .detach_live = detach_disk_live,
            .release_host_side = {},
            .describe = [](const conf::Disk& d) { return "disk " + d.target_dev; }};
        return detach_with(ref, flags, timeout_ms, plan);
    }

    // detach-device (the module the document describes), detach-device-alias
    // (by alias) of a memory module: the guest must offline and release it
    // (ACPI), then its backend goes.
    Status detach_memory(std::string_view ref, driver::ImpactFlags flags,
                         const std::function<Result<std::size_t>(const conf::DomainDef&)>& find, std::uint64_t timeout_ms) {
        DetachPlan<conf::MemoryDevice> plan{
            .list = &conf::Devices::memories,
            .find = [&](const conf::DomainDef& def, const conf::MemoryDevice* live) -> Result<std::size_t> {
                auto i = find(def);
                // The persistent definition's module may sit elsewhere: the live one's size and node.
                if (!i && live) {
                    conf::MemoryDevice same = *live;
                    same.info = {};
                    i = conf::find_memory_for_detach(def, same);
                }
                if (i) VIREO_TRY(conf::check_memory_unpluggable(def.devices.memories[*i]));
                return i;
            },
            .detach_live = detach_memory_live,
            .release_host_side = {},
            .describe = [](const conf::MemoryDevice& m) { return fmt::format("{} memory module of {} KiB", m.model, m.target_size_kib); },
            .without = conf::with_memory_detached};
        return detach_with(ref, flags, timeout_ms, plan);
    }

    // detach-device of an <rng>, <input> or <watchdog>: the one the document
    // describes; the persistent definition's is found by the live one's
    // description (its alias and address may differ).
    Status detach_pluggable(std::string_view ref, driver::ImpactFlags flags, const conf::PluggableDevice& dev, std::uint64_t timeout_ms) {
        return std::visit(
            [&]<class Device>(const Device& want) {
                return detach_pluggable_with<Device>(ref, flags, timeout_ms, [&](const conf::DomainDef& def) {
                    return conf::find_device_for_detach(def, want);
                });
            },
            dev);
    }

    // detach-device-alias of an <rng>, <input> or <watchdog>: the first
    // kind with a device of that alias.
    Status detach_pluggable_by_alias(std::string_view ref, driver::ImpactFlags flags, std::string_view alias, std::uint64_t timeout_ms) {
        Status st = fail(ErrorCode::NotFound, "Device not found: no device found with alias {}", alias);
        auto by_kind = [&]<class Device>(std::type_identity<Device>) {
            if (st || st.error().code != ErrorCode::NotFound) return;
            st = detach_pluggable_with<Device>(ref, flags, timeout_ms, [&](const conf::DomainDef& def) -> Result<std::size_t> {
                const auto& have = def.devices.*conf::PluggableKind<Device>::list;
                for (std::size_t i = 0; i < have.size(); ++i)
                    if (!alias.empty() && have[i].info.alias == alias) return i;
                return fail(ErrorCode::NotFound, "Device not found: no device found with alias {}", alias);
            });
        };
        by_kind(std::type_identity<conf::Rng>{});
        by_kind(std::type_identity<conf::Input>{});
        by_kind(std::type_identity<conf::Watchdog>{});
        by_kind(std::type_identity<conf::CharDev>{});
        return st;
    }

    template <class Device>
    Status detach_pluggable_with(std::string_view ref, driver::ImpactFlags flags, std::uint64_t timeout_ms,
                                 const std::function<Result<std::size_t>(const conf::DomainDef&)>& find) {
        DetachPlan<Device> plan{
            .list = conf::PluggableKind<Device>::list,
            .find = [&](const conf::DomainDef& def, const Device* live) -> Result<std::size_t> {
                auto i = find(def);
                if (!i && live) {
                    Device same = *live;
                    same.info = {};
                    return conf::find_device_for_detach(def, same);
                }
                return i;
            },
            .detach_live = [](Monitor& mon, const Device& d, std::chrono::milliseconds timeout) {
                return detach_device_live(mon, conf::PluggableDevice(d), timeout);
            },
            .release_host_side = {},
            .describe = [](const Device&) { return std::string(conf::PluggableKind<Device>::name); }};
        // A channel's generated socket goes with it.
        if constexpr (std::is_same_v<Device, conf::CharDev>)
            plan.release_host_side = [this](const std::string&, const conf::CharDev& ch) { d_->release_channel(ch); };
        return detach_with(ref, flags, timeout_ms, plan);
    }

    // --- vCPUs and memory (setvcpus, vcpuinfo, vcpupin, emulatorpin, setmem,
    // setmaxmem, dommemstat) ---------------------------------------------------------

    Result<std::vector<driver::VcpuInfo>> vcpu_info_of(std::string_view ref) {
        auto obj = d_->registry.resolve(ref);
        if (!obj) return std::unexpected(obj.error());
        auto run = d_->running(**obj);
        if (!run) return std::unexpected(run.error());
        auto out = vcpu_info(*run->priv->monitor, run->priv->proc.pid);
        if (!out) return std::unexpected(d_->command_error(**obj, run->priv, out.error()));
        return out;
    }

    // The live part of setvcpus and setvcpu: the vCPUs `plan` says plugged
    // into (or unplugged from) the running QEMU one by one, each removal
    // confirmed from QEMU's own CPU list within virsh's timeout (QEMU 7.2
    // announces it only as DEVICE_DELETED of the vCPU's lapic child). The
    // live definition says which vCPUs are there afterwards (<vcpus>), also
    // when one step failed; a guest that keeps its CPU leaves it as it was.
    using VcpuPlan = std::function<Result<VcpuChange>(const std::vector<HotpluggableCpu>&)>;
    Status change_live_vcpus(driver::DomainObject& obj, const QemuDriverImpl::Running& run, const VcpuPlan& plan) {
        Monitor& mon = *run.priv->monitor;
        auto slots = mon.query_hotpluggable_cpus();
        if (!slots) return std::unexpected(d_->command_error(obj, run.priv, slots.error()));
        auto change = plan(*slots);
        if (!change) return std::unexpected(change.error());
        if (change->plug.empty() && change->unplug.empty()) return {};
        if (!change->unplug.empty()) {
            auto qcaps = d_->caps.get(run.def->devices.emulator);
            if (!qcaps) return std::unexpected(qcaps.error());
            VIREO_TRY(vcpu_unplug_safe(run.def->type, (*qcaps)->version_number(), (*qcaps)->version_string()));
        }
        Status result;
        for (const auto& args : change->plug)
            if (result = mon.device_add(args); !result) break;
        for (const auto& id : change->unplug) {
            if (!result) break;
            if (result = mon.device_del(id); !result) break;
            result = wait_vcpu_unplugged(mon, id, kDetachTimeout);
        }
        // What QEMU has now, whatever happened.
        auto now = mon.query_hotpluggable_cpus();
        if (!now) return std::unexpected(d_->command_error(obj, run.priv, now.error()));
        conf::DomainDef live = *run.def;
        apply_vcpu_slots(live, *now);
        if (live.vcpu_states != run.def->vcpu_states || live.vcpus_current != run.def->vcpus_current) {
            if (!change->plug.empty() && wants_thread_affinity(live)) VIREO_TRY(apply_thread_affinity(mon, live, run.priv->proc.pid));
            publish_live(obj, std::move(live));
        }
        if (!result) return std::unexpected(d_->command_error(obj, run.priv, result.error()));
        return {};
    }

    Status set_vcpus(const driver::ops::DomainSetVcpus::Request& r) {
        if (r.count == 0) return fail(ErrorCode::InvalidArg, "invalid argument: a domain needs at least 1 vCPU");
        auto change = begin_change(r.ref, "setvcpus", {.live = r.live, .config = r.config, .current = r.current});
        if (!change) return std::unexpected(change.error());
        auto& obj = change->job.object();
        const driver::Impact& impact = change->impact;
        const auto count = static_cast<unsigned>(std::min<std::uint64_t>(r.count, UINT32_MAX));
        if (r.maximum && impact.live)
            return fail(ErrorCode::Unsupported, "unsupported configuration: maximum vcpu count of a live domain can't be modified");
        std::optional<conf::DomainDef> next_cfg;
        if (impact.config) {
            conf::DomainDef d = *change->config->def;
            if (r.maximum) {
                d.vcpus = count;
                if (d.vcpus_current && *d.vcpus_current >= count) d.vcpus_current.reset();
            } else {
                if (count > d.vcpus)
                    return fail(ErrorCode::InvalidArg,
                                "invalid argument: requested vcpus is greater than max allowable vcpus for the persistent domain: {} > {}",
                                count, d.vcpus);
                d.vcpus_current = count == d.vcpus ? std::nullopt : std::optional<unsigned>(count);
            }
            conf::fit_vcpu_states(d);
            VIREO_TRY(conf::validate_domain(d));
            next_cfg = std::move(d);
        }
        if (impact.live) {
            auto run = d_->running(obj);
            if (!run) return std::unexpected(run.error());
            if (count > run->def->vcpus)
                return fail(ErrorCode::InvalidArg,
                            "invalid argument: requested vcpus is greater than max allowable vcpus for the live domain: {} > {}", count,
                            run->def->vcpus);
            VIREO_TRY(change_live_vcpus(obj, *run, [&](const auto& slots) { return vcpu_change_to_count(slots, count); }));
        }
        if (next_cfg) VIREO_TRY(save_config(obj, std::move(*next_cfg)));
        return {};
    }

    // setvcpu: the vCPUs of the list enabled or disabled in the persistent
    // definition, plugged or unplugged live; every check made before
    // anything changes.
    Status set_vcpu(const driver::ops::DomainSetVcpu::Request& r) {
        auto ids = conf::parse_cpu_list(r.vcpulist);
        if (!ids || ids->empty()) return fail(ErrorCode::InvalidArg, "invalid argument: cannot parse vCPU list '{}'", r.vcpulist);
        auto change = begin_change(r.ref, "setvcpu", {.live = r.live, .config = r.config, .current = r.current});
        if (!change) return std::unexpected(change.error());
        auto& obj = change->job.object();
        std::optional<conf::DomainDef> next_cfg;
        if (change->impact.config) {
            auto d = conf::with_vcpus_enabled(*change->config->def, *ids, r.enable);
            if (!d) return std::unexpected(d.error());
            VIREO_TRY(conf::validate_domain(*d));
            next_cfg = std::move(*d);
        }
        if (change->impact.live) {
            auto run = d_->running(obj);
            if (!run) return std::unexpected(run.error());
            for (unsigned id : *ids) {
                if (id == 0) return fail(ErrorCode::InvalidArg, "invalid argument: vCPU '0' can't be modified");
                if (id >= run->def->vcpus) return fail(ErrorCode::InvalidArg, "invalid argument: vcpu {} is not present in live config", id);
            }
            VIREO_TRY(change_live_vcpus(obj, *run, [&](const auto& slots) { return vcpu_change_of_ids(slots, *ids, r.enable); }));
        }
        if (next_cfg) VIREO_TRY(save_config(obj, std::move(*next_cfg)));
        return {};
    }

    // vcpupin / emulatorpin: the pin in the definitions (none for "r"), and
    // on the running threads (no pin: <vcpu cpuset>, else every host CPU).
    Status pin_thread(const driver::ops::DomainPinThread::Request& r) {
        const bool vcpu = r.thread == "vcpu";
        if (!vcpu && r.thread != "emulator")
            return fail(ErrorCode::InvalidArg, "invalid argument: thread '{}' is not 'vcpu' or 'emulator'", r.thread);
        auto change = begin_change(r.ref, vcpu ? "vcpupin" : "emulatorpin", {.live = r.live, .config = r.config, .current = r.current});
        if (!change) return std::unexpected(change.error());
        const auto host = host_online_cpus();
        std::string cpuset;
        if (r.cpulist != "r") {
            auto list = conf::parse_cpu_list(r.cpulist);
            if (!list || list->empty()) return fail(ErrorCode::InvalidArg, "invalid argument: cannot parse CPU list '{}'", r.cpulist);
            for (unsigned c : *list)
                if (!host.contains(c))
                    return fail(ErrorCode::InvalidArg, "invalid argument: CPU {} is not one of this host's online CPUs ({})", c,
                                fmt::join(host, ","));
            cpuset = conf::format_cpu_list(*list);
        }
        auto pinned = [&](conf::DomainDef d, bool live) -> Result<conf::DomainDef> {
            if (!vcpu) {
                d.cputune.emulatorpin = cpuset;
                return d;
            }
            if (r.vcpu >= d.vcpus)
                return fail(ErrorCode::InvalidArg, "invalid argument: vcpu {} is out of range of {} cpu count {}", r.vcpu,
                            live ? "live" : "persistent", d.vcpus);
            auto& pins = d.cputune.vcpupins;
            std::erase_if(pins, [&](const conf::CpuTune::Pin& p) { return p.id == r.vcpu; });
            if (!cpuset.empty()) {
                pins.push_back({static_cast<unsigned>(r.vcpu), cpuset});
                std::ranges::stable_sort(pins, {}, &conf::CpuTune::Pin::id);
            }
            return d;
        };
        auto pin_running = [&](const QemuDriverImpl::Running& run, const conf::DomainDef& next) -> Status {
            const std::string effective = !cpuset.empty()               ? cpuset
                                          : !next.vcpu_cpuset.empty() ? next.vcpu_cpuset
                                                                      : conf::format_cpu_list(std::vector<unsigned>(host.begin(), host.end()));
            Monitor& mon = *run.priv->monitor;
            return vcpu ? pin_vcpu(mon, static_cast<unsigned>(r.vcpu), effective) : pin_emulator(mon, run.priv->proc.pid, effective);
        };
        return edit_definitions(*change, pinned, pin_running);
    }

    static bool has_balloon(const conf::DomainDef& d) { return d.devices.memballoon && d.devices.memballoon->model != "none"; }

    // setmem (the balloon, <currentMemory>) and setmaxmem (<memory>, of the
    // persistent definition only, as libvirt without memory hotplug).
    Status set_memory(const driver::ops::DomainSetMemory::Request& r) {
        if (r.kib == 0) return fail(ErrorCode::InvalidArg, "invalid argument: the memory size must be greater than 0");
        auto change = begin_change(r.ref, r.maximum ? "setmaxmem" : "setmem", {.live = r.live, .config = r.config, .current = r.current});
        if (!change) return std::unexpected(change.error());
        if (r.maximum && change->impact.live)
            return fail(ErrorCode::Unsupported, "Operation not supported: cannot resize the maximum memory on an active domain");
        auto sized = [&](conf::DomainDef d, bool live) -> Result<conf::DomainDef> {
            if (r.maximum) {
                d.memory_kib = r.kib;
                if (d.current_memory_kib && *d.current_memory_kib > r.kib) d.current_memory_kib = r.kib;
            } else {
                if (r.kib > d.memory_kib) return fail(ErrorCode::InvalidArg, "invalid argument: cannot set memory higher than max memory");
                d.current_memory_kib = r.kib;
            }
            VIREO_TRY(conf::validate_domain(d));
            if (live && !has_balloon(d))
                return fail(ErrorCode::Unsupported, "Operation not supported: Unable to change memory of active domain without "
                                                    "the balloon device and guest OS balloon driver");
            return d;
        };
        return edit_definitions(*change, sized, [&](const QemuDriverImpl::Running& run, const conf::DomainDef&) {
            return run.priv->monitor->balloon(r.kib * 1024);
        });
    }

    // dommemstat: the balloon's size and the guest's statistics (when a
    // period is set), then QEMU's resident set, as libvirt orders them.
    Result<std::vector<driver::MemoryStat>> memory_stats(std::string_view ref) {
        auto obj = d_->registry.resolve(ref);
        if (!obj) return std::unexpected(obj.error());
        auto run = d_->running(**obj);
        if (!run) return std::unexpected(run.error());
        std::vector<driver::MemoryStat> out;
        Monitor& mon = *run->priv->monitor;
        if (has_balloon(*run->def)) {
            auto actual = mon.query_balloon();
            if (!actual) return std::unexpected(d_->command_error(**obj, run->priv, actual.error()));
            out.push_back({"actual", *actual / 1024});
            auto guest = mon.qom_get(balloon_qom_path(run->def->devices.memballoon->info.alias), "guest-stats");
            if (guest) std::ranges::move(balloon_guest_stats(*guest), std::back_inserter(out));
        }
        auto rss = process_rss_kib(run->priv->proc.pid);
        if (!rss) return std::unexpected(rss.error());
        out.push_back({"rss", *rss});
        return out;
    }

    Status set_memory_stats_period(const driver::ops::DomainSetMemoryStatsPeriod::Request& r) {
        auto change = begin_change(r.ref, "dommemstat", {.live = r.live, .config = r.config, .current = r.current});
        if (!change) return std::unexpected(change.error());
        auto with_period = [&](conf::DomainDef d, bool) -> Result<conf::DomainDef> {
            if (!has_balloon(d))
                return fail(ErrorCode::Unsupported,
                            "Operation not supported: No memory balloon device configured, can not set the collection period");
            d.devices.memballoon->stats_period = r.seconds == 0 ? "" : std::to_string(r.seconds);
            return d;
        };
        return edit_definitions(*change, with_period, [](const QemuDriverImpl::Running& run, const conf::DomainDef& next) {
            return apply_balloon_period(*run.priv->monitor, next);
        });
    }

    // Which NIC a detach means: by MAC (and type), or by alias.
    struct NicSelector {
        std::string mac, type, alias;
    };
    Result<std::size_t> find_nic(const conf::DomainDef& def, const NicSelector& which) {
        if (!which.alias.empty()) return conf::find_interface_by_alias(def, which.alias);
        return conf::find_interface_for_detach(def, which.mac, which.type);
    }

    // detach-device / detach-interface / detach-device-alias of a NIC:
    // the guest releases it (live), then its host side goes.
    Status detach_interface(std::string_view ref, driver::ImpactFlags flags, const NicSelector& which,
                            std::uint64_t timeout_ms) {
        DetachPlan<conf::Interface> plan{
            .list = &conf::Devices::interfaces,
            .find = [&](const conf::DomainDef& def, const conf::Interface* live) -> Result<std::size_t> {
                // By alias, the persistent definition's NIC is the live one's MAC.
                if (live && !which.alias.empty()) return conf::find_interface_for_detach(def, live->mac, "");
                return find_nic(def, which);
            },
            .detach_live = detach_nic_live,
            .release_host_side = [this](const std::string& domain, const conf::Interface& n) { d_->unplug_hotplug_nic(domain, n); },
            .describe = [](const conf::Interface& n) { return "interface " + n.mac; }};
        return detach_with(ref, flags, timeout_ms, plan);
    }

    Result<std::vector<driver::InterfaceAddress>> interface_addresses(std::string_view ref, driver::AddressSource source) {
        auto obj = d_->registry.resolve(ref);
        if (!obj) return std::unexpected(obj.error());
        auto run = d_->running(**obj);
        if (!run) return std::unexpected(run.error());
        const auto& nics = run->def->devices.interfaces;
        auto name_of = [](const conf::Interface& n) { return n.target_dev.empty() ? n.info.alias : n.target_dev; };
        std::vector<driver::InterfaceAddress> out;
        if (source == driver::AddressSource::Agent) return d_->agent_interface_addresses(ref);
        if (source == driver::AddressSource::Lease) {
            // DHCP leases exist only for NICs on virtual networks.
            std::vector<std::string> macs;
            for (const auto& n : nics)
                if (n.type == "network") macs.push_back(n.mac);
            if (macs.empty() || !d_->cfg.networks) return out;
            const auto leases = d_->cfg.networks->leases_for(macs);
            for (const auto& n : nics) {
                if (n.type != "network") continue;
                for (const auto& l : leases)
                    if (l.mac == n.mac)
                        out.push_back({name_of(n), n.mac, l.ip.find(':') == std::string::npos ? "ipv4" : "ipv6", l.ip, l.prefix});
            }
            return out;
        }
        // The host's neighbour table, as libvirt's ARP source: IPv4 entries
        // whose MAC is the guest's.
        auto neigh = network::list_neighbours();
        if (!neigh) return std::unexpected(neigh.error());
        for (const auto& n : nics)
            for (const auto& e : *neigh)
                if (!e.address.v6 && e.mac.str() == n.mac) out.push_back({name_of(n), n.mac, "ipv4", e.address.str(), 0});
        return out;
    }

    // --- definitions -------------------------------------------------------------

    Result<DomainSummary> define_domain(std::string_view xml, bool validate) {
        conf::ParseFlags flags;
        flags.no_validate = !validate;
        const conf::DefineHost host = d_->define_host();
        auto def = driver::make_definition(xml, flags, {.host = &host, .mac_in_use = d_->mac_in_use_check()});
        if (!def) return std::unexpected(def.error());
        auto existing = d_->registry.check_identity(def->def->name, def->def->uuid);
        if (!existing) return std::unexpected(existing.error());
        std::optional<JobGuard> job;
        if (*existing) {
            auto j = driver::acquire_job(*existing, "define");
            if (!j) return std::unexpected(j.error());
            job.emplace(std::move(*j));
        }
        VIREO_TRY(d_->persistence.prepare());
        VIREO_TRY(d_->persistence.save_config(def->def->name, def->xml));
        auto added = d_->registry.define(std::move(*def));
        if (!added) return std::unexpected(added.error());
        auto has_save = files::exists(d_->managed_save_path(added->object->name()));
        if (!has_save) return std::unexpected(has_save.error());
        added->object->with([&](DomainFields& f) { f.managed_save = *has_save; });
        d_->emit(EventType::Defined, added->created ? "Added" : "Updated", *added->object);
        return driver::summarize(added->object->snapshot());
    }

    Status undefine_domain(std::string_view ref, driver::UndefineFlags flags) {
        auto job = begin(ref, "undefine");
        if (!job) return std::unexpected(job.error());
        const std::string name = job->object().name();
        // The UEFI variable store and the TPM state of the persistent definition.
        const auto [nvram, has_tpm] = job->object().with([&](DomainFields& f) {
            if (!f.persistent()) return std::pair{fs::path(), false};
            const conf::DomainDef& def = *f.config->def;
            bool tpm = false;
            for (const auto& t : def.devices.tpms) tpm |= t.backend_type == "emulator";
            return std::pair{domain_nvram_path(def, d_->cfg.nvramdir), tpm};
        });
        std::error_code ec;
        const bool nvram_exists = !nvram.empty() && fs::exists(nvram, ec);
        if (nvram_exists && !flags.nvram && !flags.keep_nvram)
            return fail(ErrorCode::InvalidState, "Requested operation is not valid: cannot undefine domain with nvram");
        const auto snaps = d_->snapshots.load(name).snapshots.size();
        if (snaps > 0 && !flags.snapshots_metadata)
            return fail(ErrorCode::InvalidState, "Requested operation is not valid: cannot delete inactive domain with {} snapshots",
                        snaps);
        auto out = d_->registry.undefine(job->ptr(), flags);
        if (!out) return std::unexpected(out.error());
        VIREO_TRY(d_->persistence.remove_config(name));
        if (snaps > 0) VIREO_TRY(d_->snapshots.remove_all(name));
        if (out->had_managed_save) {
            VIREO_TRY(files::remove_durable(d_->managed_save_path(name)));
            job->object().with([](DomainFields& f) { f.managed_save = false; });
        }
        if (nvram_exists && flags.nvram) VIREO_TRY(files::remove_durable(nvram));
        // libvirt 9.0 removes the TPM state unless told to keep it; a running
        // domain's swtpm still uses it, so it goes only with an inactive one.
        if (has_tpm && !flags.keep_tpm && out->removed) VIREO_TRY(d_->remove_tpm_state(job->object().uuid()));
        d_->emit(EventType::Undefined, "Removed", job->object());
        return {};
    }

    Result<DomainSummary> create_domain(std::string_view xml, driver::StartFlags flags) {
        const conf::DefineHost host = d_->define_host();
        auto def = driver::make_definition(xml, {}, {.host = &host, .mac_in_use = d_->mac_in_use_check()});
        if (!def) return std::unexpected(def.error());
        auto added = d_->registry.add_transient(*def);
        if (!added) return std::unexpected(added.error());
        auto job = driver::acquire_job(added->object, "create");
        if (!job) {
            if (added->created) d_->registry.remove(added->object);
            return std::unexpected(job.error());
        }
        if (added->object->snapshot().active())
            return std::unexpected(driver::already_running_error(added->object->name()));
        auto started = d_->start(added->object, *def, StartOptions{flags.paused});
        if (!started) {
            if (added->created) d_->registry.remove(added->object);
            return std::unexpected(started.error());
        }
        return driver::summarize(job->object().snapshot());
    }

    Status set_autostart(std::string_view ref, bool enabled) {
        auto job = begin(ref, "autostart");
        if (!job) return std::unexpected(job.error());
        bool persistent = job->object().with([](DomainFields& f) { return f.persistent(); });
        if (!persistent) return std::unexpected(invalid_state("cannot set autostart for transient domain"));
        VIREO_TRY(d_->persistence.set_autostart(job->object().name(), enabled));
        job->object().with([&](DomainFields& f) { f.autostart = enabled; });
        return {};
    }

    Result<std::string> get_metadata(std::string_view ref, driver::MetadataKind kind, bool inactive) {
        auto snap = snapshot_of(ref);
        if (!snap) return std::unexpected(snap.error());
        const auto& def = *(inactive ? snap->fields.inactive() : snap->fields.current()).def;
        return kind == driver::MetadataKind::Title ? def.title : def.description;
    }

    Status set_metadata(std::string_view ref, driver::MetadataKind kind, std::string_view text, bool live,
                        bool config) {
        auto job = begin(ref, "metadata");
        if (!job) return std::unexpected(job.error());
        auto& obj = job->object();
        auto edit = [&](const DomainDefinition& d) {
            conf::DomainDef copy = *d.def;
            (kind == driver::MetadataKind::Title ? copy.title : copy.description) = std::string(text);
            return driver::make_definition(std::move(copy));
        };
        auto cfg_def = obj.with([](DomainFields& f) { return f.config; });
        auto impact = driver::resolve_impact({.live = live, .config = config}, obj.snapshot().active(), cfg_def.has_value());
        if (!impact) return std::unexpected(impact.error());
        live = impact->live;
        config = impact->config;
        std::optional<DomainDefinition> new_config;
        if (config) {
            new_config = edit(*cfg_def);
            VIREO_TRY(d_->persistence.save_config(obj.name(), new_config->xml));
        }
        obj.with([&](DomainFields& f) {
            if (new_config) f.config = *new_config;
            if (live && f.live) f.live = edit(*f.live);
        });
        if (live) (void)d_->write_status(obj);
        return {};
    }

    // --- lifecycle -------------------------------------------------------------------

    Status start_domain(std::string_view ref, driver::StartFlags flags) {
        auto obj = d_->registry.resolve(ref);
        if (!obj) return std::unexpected(obj.error());
        const fs::path image = d_->managed_save_path((*obj)->name());
        // An image we cannot even stat counts as there: the start then fails
        // reading it, with the reason, instead of booting past a saved state.
        auto has_image = [&] {
            return (*obj)->with([](DomainFields& f) { return f.managed_save; }) || files::exists(image).value_or(true);
        };
        if (flags.force_boot || !has_image()) {
            auto job = driver::acquire_job(*obj, "start");
            if (!job) return std::unexpected(job.error());
            auto snap = (*obj)->snapshot();
            if (snap.active()) return std::unexpected(driver::already_running_error((*obj)->name()));
            if (!snap.fields.config) return std::unexpected(invalid_state("domain is not persistent"));
            if (flags.force_boot && has_image()) {
                VIREO_TRY(files::remove_durable(image));
                (*obj)->with([](DomainFields& f) { f.managed_save = false; });
            }
            return d_->start(*obj, *snap.fields.config, StartOptions{flags.paused});
        }
        // A managed save image: the start is a restore, an async job.
        auto job = driver::begin_async_job(*obj, *d_->jobs, driver::JobOperation::Restore);
        if (!job) return std::unexpected(job.error());
        Status outcome = [&]() -> Status {
            auto snap = (*obj)->snapshot();
            if (snap.active()) return std::unexpected(driver::already_running_error((*obj)->name()));
            if (!snap.fields.config) return std::unexpected(invalid_state("domain is not persistent"));
            auto present = files::exists(image);
            if (!present) return std::unexpected(present.error());
            if (!*present) return d_->start(*obj, *snap.fields.config, StartOptions{flags.paused});
            DomainDefinition saved;
            auto src = d_->open_restore(image, saved);
            if (!src)
                return std::unexpected(src.error().context(fmt::format("failed to start domain '{}'", (*obj)->name())));
            StartOptions options{flags.paused};
            options.restore = &*src;
            options.job = &job->job();
            VIREO_TRY(d_->start(*obj, saved, std::move(options)));
            // The image is consumed: QEMU's state has moved on from it.
            (void)files::remove_durable(image);
            (*obj)->with([](DomainFields& f) { f.managed_save = false; });
            return {};
        }();
        job->finish(outcome);
        return outcome;
    }

    Status shutdown_domain(std::string_view ref, driver::ShutdownMode mode) {
        return power_button(ref, mode, false);
    }

    Status reboot_domain(std::string_view ref, driver::ShutdownMode mode) {
        return power_button(ref, mode, true);
    }

    Result<driver::Screenshot> screenshot(std::string_view ref, std::uint64_t screen) {
        auto job = begin(ref, "screenshot");
        if (!job) return std::unexpected(job.error());
        auto run = d_->running(job->object());
        if (!run) return std::unexpected(run.error());
        if (screen > UINT_MAX) return fail(ErrorCode::InvalidArg, "invalid argument: no screen with ID '{}'", screen);
        return d_->screenshot(job->object(), *run, static_cast<unsigned>(screen));
    }

    Status send_key(std::string_view ref, driver::KeyCodeset codeset, std::uint64_t holdtime, const std::string& keys) {
        auto codes = driver::split_keycodes(keys);
        if (!codes) return std::unexpected(codes.error());
        if (holdtime > UINT_MAX) return fail(ErrorCode::InvalidArg, "invalid argument: holdtime {} is too long", holdtime);
        auto job = begin(ref, "send-key");
        if (!job) return std::unexpected(job.error());
        auto run = d_->running(job->object());
        if (!run) return std::unexpected(run.error());
        return d_->send_key(job->object(), *run, codeset, static_cast<unsigned>(holdtime), *codes);
    }

    Status reset_domain(std::string_view ref) {
        auto job = begin(ref, "reset");
        if (!job) return std::unexpected(job.error());
        auto run = d_->running(job->object());
        if (!run) return std::unexpected(run.error());
        auto r = run->priv->monitor->system_reset();
        if (!r) return std::unexpected(d_->command_error(job->object(), run->priv, r.error()));
        return {};
    }

    Status destroy_domain(std::string_view ref, driver::DestroyFlags flags) {
        auto obj = d_->registry.resolve(ref);
        if (!obj) return std::unexpected(obj.error());
        // Destroy must work while another job is stuck or an async job runs
        // (libvirt kills first, then takes the job): SIGTERM before waiting
        // for the job, which is a Destroy job (allowed during async jobs).
        auto early = d_->running(**obj);
        if (!early) return std::unexpected(early.error());
        (void)d_->apply(*obj, early->priv, in::Destroy{});
        auto job = driver::acquire_job(*obj, driver::JobType::Destroy, "destroy");
        if (!job) return std::unexpected(job.error());
        auto run = d_->running(**obj);
        if (!run || run->priv != early->priv) return {};  // it ended meanwhile (that was the point)
        auto k = d_->apply(*obj, run->priv, in::DestroyKill{flags.graceful});
        if (!k) return std::unexpected(k.error().context(fmt::format("failed to destroy domain '{}'", (*obj)->name())));
        return {};
    }

    Status suspend_domain(std::string_view ref) { return pause_or_resume(ref, true); }
    Status resume_domain(std::string_view ref) { return pause_or_resume(ref, false); }

    Status save_domain(std::string_view ref, std::string_view path) {
        auto obj = d_->registry.resolve(ref);
        if (!obj) return std::unexpected(obj.error());
        auto job = driver::begin_async_job(*obj, *d_->jobs, driver::JobOperation::Save);
        if (!job) return std::unexpected(job.error());
        auto target = files::absolute(fs::path(path));
        Status outcome = target ? d_->save(*job, *target) : Status{std::unexpected(target.error())};
        job->finish(outcome);
        return outcome;
    }

    Result<DomainSummary> restore_domain(std::string_view path, bool paused) {
        DomainDefinition saved;
        auto src = d_->open_restore(fs::path(path), saved);
        if (!src) return std::unexpected(src.error());
        auto added = d_->registry.add_transient(saved);
        if (!added) return std::unexpected(added.error());
        auto job = driver::begin_async_job(added->object, *d_->jobs, driver::JobOperation::Restore);
        if (!job) {
            if (added->created) d_->registry.remove(added->object);
            return std::unexpected(job.error());
        }
        Status outcome = [&]() -> Status {
            if (added->object->snapshot().active())
                return std::unexpected(driver::already_running_error(added->object->name()));
            StartOptions options{paused};
            options.restore = &*src;
            options.job = &job->job();
            return d_->start(added->object, saved, std::move(options));
        }();
        job->finish(outcome);
        if (!outcome) {
            if (added->created) d_->registry.remove(added->object);
            return std::unexpected(outcome.error());
        }
        return driver::summarize(added->object->snapshot());
    }

    Status managed_save(std::string_view ref) {
        auto obj = d_->registry.resolve(ref);
        if (!obj) return std::unexpected(obj.error());
        auto job = driver::begin_async_job(*obj, *d_->jobs, driver::JobOperation::Save);
        if (!job) return std::unexpected(job.error());
        Status outcome = [&]() -> Status {
            if (!(*obj)->with([](DomainFields& f) { return f.persistent(); }))
                return std::unexpected(invalid_state("cannot do managed save for transient domain"));
            VIREO_TRY(files::make_dirs(d_->cfg.savedir, 0700));
            VIREO_TRY(d_->save(*job, d_->managed_save_path((*obj)->name())));
            (*obj)->with([](DomainFields& f) { f.managed_save = true; });
            return {};
        }();
        job->finish(outcome);
        return outcome;
    }

    Status managed_save_remove(std::string_view ref) {
        auto job = begin(ref, "managedsave-remove");
        if (!job) return std::unexpected(job.error());
        auto& obj = job->object();
        const fs::path image = d_->managed_save_path(obj.name());
        auto present = files::exists(image);
        if (!present) return std::unexpected(present.error());
        if (!*present)
            return fail(ErrorCode::InvalidArg, "domain '{}' has no managed save image", obj.name());
        VIREO_TRY(files::remove_durable(image));
        obj.with([](DomainFields& f) { f.managed_save = false; });
        return {};
    }

    // --- console and events -------------------------------------------------------------

    Result<UniqueFd> open_console(std::string_view ref, std::string_view device) {
        auto obj = d_->registry.resolve(ref);
        if (!obj) return std::unexpected(obj.error());
        auto run = d_->running(**obj);
        if (!run) return std::unexpected(run.error());
        const auto& serials = run->def->devices.serials;
        const conf::CharDev* chosen = nullptr;
        if (device.empty() || device == "serial0" || device == "console0") {
            if (!serials.empty()) chosen = &serials.front();
        } else {
            for (const auto& s : serials)
                if (s.info.alias == device) chosen = &s;
            if (!chosen) return fail(ErrorCode::NotFound, "domain '{}' has no console device '{}'", (*obj)->name(), device);
        }
        if (!chosen || (chosen->type != "pty" && chosen->type != "unix"))
            return fail(ErrorCode::Unsupported, "domain '{}' has no serial console of type 'pty' or 'unix' to attach to",
                        (*obj)->name());
        auto context = [&](const Error& e) { return e.context(fmt::format("cannot open the console of domain '{}'", (*obj)->name())); };
        if (chosen->type == "pty") {
            // the pty QEMU opened (query-chardev at start)
            if (chosen->source_path.empty())
                return fail(ErrorCode::OperationFailed, "domain '{}' has no pty for its console", (*obj)->name());
            UniqueFd fd(::open(chosen->source_path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
            if (!fd) return std::unexpected(context(errno_error(fmt::format("open {}", chosen->source_path), errno)));
            // back to blocking: the caller decides how it waits
            ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
            return fd;
        }
        std::string path = chosen == &serials.front() && !run->priv->console_socket.empty() ? run->priv->console_socket
                           : !chosen->source_path.empty() ? chosen->source_path
                                                          : fmt::format("{}.{}.sock", run->priv->runtime_prefix, chosen->info.alias);
        auto fd = connect_unix(path);
        if (!fd) return std::unexpected(context(fd.error()));
        return fd;
    }

    Result<std::unique_ptr<driver::Subscription>> subscribe(std::function<void(const driver::DomainEvent&)> cb) {
        return d_->events.subscribe(std::move(cb));
    }

    // --- QemuDriver extras -------------------------------------------------------------

    std::vector<driver::DiskUser> disk_users() override { return d_->disk_users(); }

    Status wait_for_state(std::string_view ref, DomainState state, std::chrono::milliseconds timeout) override {
        auto obj = d_->registry.resolve(ref);
        if (!obj) return std::unexpected(obj.error());
        std::unique_lock lk(d_->state_mutex);
        bool ok = d_->state_cv.wait_for(lk, timeout, [&] {
            return (*obj)->removed() ? state == DomainState::Shutoff
                                     : (*obj)->with([](DomainFields& f) { return f.state; }) == state;
        });
        if (!ok)
            return fail(ErrorCode::Timeout, "domain '{}' did not reach state '{}' within {} ms", (*obj)->name(),
                        driver::state_name(state), timeout.count());
        return {};
    }

    int qemu_pid(std::string_view ref) override {
        auto obj = d_->registry.resolve(ref);
        if (!obj) return -1;
        auto run = d_->running(**obj);
        return run ? run->priv->proc.pid : -1;
    }

    fs::path log_path(std::string_view name) const override { return d_->log_file(name); }
    fs::path console_log_path(std::string_view name) const override { return d_->console_log(name); }

private:
    Result<fs::path> default_binary() const {
        if (!d_->cfg.qemu_binary.empty()) return d_->cfg.qemu_binary;
        return find_qemu_binary("x86_64");
    }

    // The summary, with the CPU time the QEMU process has used so far.
    static DomainSummary summary_of(const driver::DomainSnapshot& snap) {
        DomainSummary s = driver::summarize(snap);
        if (auto p = qemu_private(snap.fields); p && snap.active())
            s.cpu_time_ns = process_cpu_time_ns(p->proc).value_or(0);
        return s;
    }

    Result<driver::DomainSnapshot> snapshot_of(std::string_view ref) {
        auto obj = d_->registry.resolve(ref);
        if (!obj) return std::unexpected(obj.error());
        return (*obj)->snapshot();
    }

    Result<JobGuard> begin(std::string_view ref, std::string_view job) {
        auto obj = d_->registry.resolve(ref);
        if (!obj) return std::unexpected(obj.error());
        return driver::acquire_job(*obj, job);
    }

    Status power_button(std::string_view ref, driver::ShutdownMode mode, bool reboot) {
        if (mode == driver::ShutdownMode::Agent) return d_->agent_shutdown(ref, reboot);
        auto job = begin(ref, reboot ? "reboot" : "shutdown");
        if (!job) return std::unexpected(job.error());
        auto run = d_->running(job->object());
        if (!run) return std::unexpected(run.error());
        VIREO_TRY(d_->apply(job->ptr(), run->priv, in::PowerButton{reboot}));
        auto r = run->priv->monitor->system_powerdown();
        if (!r) {
            (void)d_->apply(job->ptr(), run->priv, in::PowerButtonFailed{});
            return std::unexpected(d_->command_error(job->object(), run->priv, r.error()));
        }
        return {};
    }

    Status pause_or_resume(std::string_view ref, bool pause) {
        auto obj = d_->registry.resolve(ref);
        if (!obj) return std::unexpected(obj.error());
        auto job = driver::acquire_job(*obj, driver::JobType::Suspend, pause ? "suspend" : "resume");
        if (!job) return std::unexpected(job.error());
        auto run = d_->running(**obj);
        if (!run) return std::unexpected(run.error());
        if (pause && run->state == DomainState::Paused) return {};
        if (!pause && run->state != DomainState::Paused)
            return std::unexpected(invalid_state("domain is not paused"));
        auto priv = run->priv;
        // The machine knows the stop/cont is ours: whichever of its reply and
        // QEMU's STOP/RESUME event comes first changes the state, once.
        if (pause) VIREO_TRY(d_->apply(*obj, priv, in::Pause{"user"}));
        else VIREO_TRY(d_->apply(*obj, priv, in::Resume{"unpaused", ""}));
        auto r = pause ? priv->monitor->stop() : priv->monitor->cont();
        using Command = Expectation::Command;
        (void)d_->apply_in_order(*obj, priv, in::Reply{pause ? Command::Stop : Command::Cont, r.has_value()});
        if (!r) return std::unexpected(d_->command_error(**obj, priv, r.error()));
        return {};
    }

    std::unique_ptr<QemuDriverImpl> d_;
    std::mutex host_facts_mutex_;
    std::optional<host::HostFacts> host_facts_;
};

}  // namespace

Result<std::unique_ptr<QemuDriver>> make_qemu_driver(std::unique_ptr<QemuDriverImpl> impl) {
    VIREO_TRY(impl->persistence.prepare());
    VIREO_TRY(files::make_dirs(impl->cfg.logdir, 0700));
    // qemu.conf's user/group: the one account QEMU runs as (made when missing).
    if (impl->cfg.system_mode && (!impl->cfg.dac_user.empty() || !impl->cfg.dac_group.empty())) {
        auto id = security::ensure_account(impl->cfg.dac_user, impl->cfg.dac_group);
        if (!id) return std::unexpected(id.error().context("qemu.conf user/group"));
        impl->shared_identity = *id;
    }
    auto report = impl->persistence.load_into(impl->registry);
    for (const auto& obj : impl->registry.list()) {
        auto has_save = files::exists(impl->managed_save_path(obj->name()));
        if (!has_save) return std::unexpected(has_save.error().context(fmt::format("cannot load domain '{}'", obj->name())));
        obj->with([&](DomainFields& f) { f.managed_save = *has_save; });
    }
    impl->reattach_all();
    impl->settle_all_pending_snapshots();
    if (impl->cfg.autostart) impl->autostart_all();
    return std::unique_ptr<QemuDriver>(new QemuDriverImplWrapper(std::move(impl)));
}

Result<std::unique_ptr<QemuDriver>> make_qemu_driver(QemuDriverConfig config) {
    return make_qemu_driver(std::make_unique<QemuDriverImpl>(std::move(config)));
}

}  // namespace vireo::qemu
