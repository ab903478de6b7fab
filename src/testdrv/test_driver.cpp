#include "testdrv/test_driver.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "driver/event_bus.hpp"
#include "driver/impact.hpp"
#include "driver/job_ops.hpp"
#include "testdrv/fake_console.hpp"
#include "driver/registry.hpp"
#include "testdrv/test_samples.hpp"
#include "pool/pool_manager.hpp"
#include "pool/pool_ops.hpp"
#include "util/files.hpp"

#ifndef VIREO_VERSION
#define VIREO_VERSION "0.0.0"
#endif

namespace vireo::testdrv {

using namespace vireo::driver;

namespace {

// First line of a save image written by the test driver; the second says
// whether the domain was running or paused, the rest is the live XML.
constexpr std::string_view kSaveMagic = "vireo-test-save 1\n";

// The managed save "image" of a test domain lives in memory.
struct TestPrivate final : DomainPrivate {
    std::optional<DomainDefinition> image;
    bool image_paused = false;
};

TestPrivate& test_private(DomainFields& f) {
    auto p = std::dynamic_pointer_cast<TestPrivate>(f.priv);
    if (!p) {
        p = std::make_shared<TestPrivate>();
        f.priv = p;
    }
    return *p;
}

Error invalid_state(std::string_view what) {
    return Error{ErrorCode::InvalidState, fmt::format("Requested operation is not valid: {}", what)};
}

std::string save_image(const DomainDefinition& live, bool paused) {
    return fmt::format("{}{}\n{}", kSaveMagic, paused ? "paused" : "running", live.xml);
}

struct SaveImage {
    DomainDefinition definition;
    bool paused = false;
};

Result<SaveImage> parse_save_image(std::string_view path, std::string_view text) {
    if (!text.starts_with(kSaveMagic))
        return fail(ErrorCode::InvalidArg, "'{}' is not a save image of the test driver", path);
    text.remove_prefix(kSaveMagic.size());
    const auto nl = text.find('\n');
    if (nl == std::string_view::npos) return fail(ErrorCode::Corrupt, "save image '{}' is truncated", path);
    const std::string_view state = text.substr(0, nl);
    if (state != "running" && state != "paused")
        return fail(ErrorCode::Corrupt, "save image '{}' has an unknown state '{}'", path, state);
    conf::ParseFlags live_doc;
    live_doc.live = true;
    auto def = make_definition(text.substr(nl + 1), live_doc);
    if (!def) return std::unexpected(def.error().context(fmt::format("save image '{}' is damaged", path)));
    return SaveImage{std::move(*def), state == "paused"};
}

}  // namespace

struct TestDriver::Impl {
    DomainRegistry registry;
    EventBus events;
    FakeConsole consoles;

    // Storage: made on first use (most connections never touch it), in a
    // private temp dir that goes with the driver. When that fails, every
    // pool and volume operation says why.
    std::mutex pools_mutex;
    std::unique_ptr<pool::PoolManager> pools;
    std::optional<Error> pools_error;
    // The connection's async jobs: the volume jobs of `pools` (the test
    // driver's domain operations are instant and run none).
    std::shared_ptr<driver::JobTracker> jobs = std::make_shared<driver::JobTracker>();
    std::filesystem::path pools_dir;

    ~Impl() {
        pools.reset();
        std::error_code ec;
        if (!pools_dir.empty()) std::filesystem::remove_all(pools_dir, ec);
    }

    Result<pool::PoolManager*> storage() {
        std::lock_guard lk(pools_mutex);
        if (!pools && !pools_error) open_pools();
        if (pools_error) return std::unexpected(*pools_error);
        return pools.get();
    }

    void open_pools() {
        auto dir = make_pools_dir();
        if (!dir) {
            pools_error = dir.error().context("the test driver has no storage pools");
            return;
        }
        pools_dir = *dir;
        pool::PoolManagerConfig cfg;
        cfg.default_pool_name = "default-pool";  // as libvirt's test:///default
        cfg.default_pool_path = pools_dir / "default-pool";
        cfg.disk_users = [this] { return disk_users(); };
        cfg.jobs = jobs;
        auto mgr = pool::PoolManager::open(std::move(cfg));
        if (!mgr) {
            pools_error = mgr.error().context("the test driver has no storage pools");
            return;
        }
        pools = std::move(*mgr);
    }

    // <tmp>/vireo-test-pools-<pid>-XXXXXX: the destructor removes it when the
    // connection closes; a process that was killed cannot, so the next one
    // removes the directories of owners that are gone.
    static Result<std::filesystem::path> make_pools_dir() {
        std::error_code ec;
        auto base = std::filesystem::temp_directory_path(ec);
        if (ec) base = "/tmp";
        remove_orphaned_pools_dirs(base);
        std::string tmpl = (base / fmt::format("{}{}-XXXXXX", kPoolsDirPrefix, ::getpid())).string();
        if (::mkdtemp(tmpl.data()) == nullptr) return fail_errno(fmt::format("cannot create {}", tmpl));
        return std::filesystem::path(tmpl);
    }

    static constexpr std::string_view kPoolsDirPrefix = "vireo-test-pools-";

    // Private pool dirs of this user whose owning process no longer exists.
    static void remove_orphaned_pools_dirs(const std::filesystem::path& base) {
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(base, ec)) {
            const std::string name = entry.path().filename().string();
            if (!name.starts_with(kPoolsDirPrefix)) continue;
            const std::string rest = name.substr(kPoolsDirPrefix.size());
            const auto dash = rest.find('-');
            if (dash == std::string::npos || dash == 0) continue;  // not named by a pid
            const long pid = std::strtol(rest.substr(0, dash).c_str(), nullptr, 10);
            struct stat st{};
            if (pid <= 0 || ::lstat(entry.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::getuid())
                continue;
            if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // its owner may still run
            std::error_code rm;
            std::filesystem::remove_all(entry.path(), rm);
        }
    }

    // File and block disks of the active domains (a volume in use cannot be deleted).
    std::vector<pool::DiskUser> disk_users() const {
        std::vector<pool::DiskUser> out;
        for (const auto& obj : registry.list()) {
            auto snap = obj->snapshot();
            if (!snap.active() || !snap.fields.live) continue;
            for (const auto& d : snap.fields.live->def->devices.disks) {
                const std::string& path = d.type == "block" ? d.source.dev : d.source.file;
                if (!path.empty()) out.push_back({snap.name, path});
            }
        }
        return out;
    }

    void emit(EventType type, std::string detail, const DomainObject& obj) {
        events.publish(type, std::move(detail), obj.name(), obj.uuid());
    }

    // Resolve a reference and take the domain's job.
    Result<JobGuard> begin(std::string_view ref, std::string_view job) {
        auto obj = registry.resolve(ref);
        if (!obj) return std::unexpected(obj.error());
        return acquire_job(*obj, job);
    }

    // Make a (job-held) inactive domain run a copy of `definition`.
    void run(DomainObject& obj, const DomainDefinition& definition, bool paused, const StateReason& reason,
             const std::string& detail) {
        const int id = registry.allocate_id();
        DomainDefinition live = make_live_definition(definition, id);
        obj.with([&](DomainFields& f) {
            f.set_active(std::move(live), id, paused ? DomainState::Paused : DomainState::Running,
                         paused ? "user" : reason);
        });
        emit(EventType::Started, detail, obj);
        if (paused) emit(EventType::Suspended, "Paused", obj);
    }

    // Stop a (job-held) active domain; a transient one disappears.
    void stop(const std::shared_ptr<DomainObject>& obj, const StateReason& reason, const std::string& detail) {
        const bool transient = obj->with([&](DomainFields& f) {
            f.set_inactive(reason);
            return !f.persistent();
        });
        emit(EventType::Stopped, detail, *obj);
        if (transient) registry.remove(obj);
    }

    Result<DomainSnapshot> active_snapshot(const DomainObject& obj) {
        auto snap = obj.snapshot();
        if (!snap.active()) return std::unexpected(not_running_error(obj.name()));
        return snap;
    }

    Result<DomainSnapshot> snapshot_of(std::string_view ref) {
        auto obj = registry.resolve(ref);
        if (!obj) return std::unexpected(obj.error());
        return (*obj)->snapshot();
    }

    // The operations (below): the handlers TestDriver installs.
    Result<VersionInfo> version();
    Result<std::string> hostname();
    Result<NodeInfo> node_info();
    Result<std::string> capabilities_xml();
    Result<std::string> domain_capabilities_xml(std::string_view emulator, std::string_view arch,
                                                std::string_view machine, std::string_view virttype);
    Result<std::vector<DomainSummary>> list_domains();
    Result<DomainSummary> lookup_domain(std::string_view ref);
    Result<std::string> domain_xml(std::string_view ref, bool inactive, bool security_info);
    Result<std::vector<DiskInfo>> domain_disks(std::string_view ref, bool inactive);
    Result<std::vector<InterfaceInfo>> domain_interfaces(std::string_view ref, bool inactive);
    Result<DomainSummary> define_domain(std::string_view xml, bool validate);
    Status undefine_domain(std::string_view ref, UndefineFlags flags);
    Result<DomainSummary> create_domain(std::string_view xml, StartFlags flags);
    Status set_autostart(std::string_view ref, bool enabled);
    Result<std::string> get_metadata(std::string_view ref, MetadataKind kind, bool inactive);
    Status set_metadata(std::string_view ref, MetadataKind kind, std::string_view text, bool live,
                        bool config);
    Result<std::string> interface_link(std::string_view ref, std::string_view device, bool config);
    Status start_domain(std::string_view ref, StartFlags flags);
    Status shutdown_domain(std::string_view ref, ShutdownMode mode);
    Status reboot_domain(std::string_view ref, ShutdownMode mode);
    Status reset_domain(std::string_view ref);
    Result<driver::Screenshot> screenshot(std::string_view ref);
    Status send_key(std::string_view ref, std::string_view keys);
    Status destroy_domain(std::string_view ref, DestroyFlags flags);
    Status suspend_domain(std::string_view ref);
    Status resume_domain(std::string_view ref);
    Status save_domain(std::string_view ref, std::string_view path);
    Result<DomainSummary> restore_domain(std::string_view path, bool paused);
    Status managed_save(std::string_view ref);
    Status managed_save_remove(std::string_view ref);
    Result<UniqueFd> open_console(std::string_view ref, std::string_view device);
    Result<std::unique_ptr<Subscription>> subscribe(std::function<void(const DomainEvent&)> callback);
};

TestDriver::TestDriver(std::string uri) : Driver(std::move(uri)), impl_(std::make_unique<Impl>()) {
    install();
    // The sample "test" domain: persistent and running, id 1.
    auto def = make_definition(test_samples::kTestDomainXml);
    if (!def) return;  // the sample is a constant checked by the unit tests
    auto added = impl_->registry.define(*def);
    if (!added) return;
    const int id = impl_->registry.allocate_id();
    added->object->with([&](DomainFields& f) {
        f.set_active(make_live_definition(*f.config, id), id, DomainState::Running, "booted");
    });
}

TestDriver::~TestDriver() = default;

// Every host and domain operation runs on Impl; pools and volumes on its
// PoolManager (opened on first use).
void TestDriver::install() {
    namespace ops = driver::ops;
    Impl* d = impl_.get();
    on<ops::HostVersion>([d](const auto&) { return d->version(); });
    on<ops::HostHostname>([d](const auto&) { return d->hostname(); });
    on<ops::HostNodeInfo>([d](const auto&) { return d->node_info(); });
    on<ops::HostCapabilities>([d](const auto&) { return d->capabilities_xml(); });
    on<ops::HostDomainCapabilities>(
        [d](const auto& r) { return d->domain_capabilities_xml(r.emulator, r.arch, r.machine, r.virttype); });
    on<ops::HostEvents>([d](const auto& r) { return d->subscribe(r.callback); });
    on<ops::DomainList>([d](const auto&) { return d->list_domains(); });
    on<ops::DomainLookup>([d](const auto& r) { return d->lookup_domain(r.ref); });
    on<ops::DomainXml>([d](const auto& r) { return d->domain_xml(r.ref, r.inactive, r.security_info); });
    on<ops::DomainDisks>([d](const auto& r) { return d->domain_disks(r.ref, r.inactive); });
    on<ops::DomainInterfaces>([d](const auto& r) { return d->domain_interfaces(r.ref, r.inactive); });
    on<ops::DomainInterfaceLink>([d](const auto& r) { return d->interface_link(r.ref, r.device, r.config); });
    on<ops::DomainGetMetadata>([d](const auto& r) { return d->get_metadata(r.ref, r.kind, r.inactive); });
    on<ops::DomainDefine>([d](const auto& r) { return d->define_domain(r.xml, r.validate); });
    on<ops::DomainCreate>(
        [d](const auto& r) { return d->create_domain(r.xml, {.paused = r.paused, .force_boot = r.force_boot}); });
    on<ops::DomainRestore>([d](const auto& r) { return d->restore_domain(r.path, r.paused); });
    on<ops::DomainUndefine>([d](const auto& r) {
        return d->undefine_domain(r.ref, {.managed_save = r.managed_save, .nvram = r.nvram,
                                          .remove_all_storage = r.remove_all_storage, .keep_nvram = r.keep_nvram, .tpm = r.tpm, .keep_tpm = r.keep_tpm,
                                           .snapshots_metadata = r.snapshots_metadata});
    });
    on<ops::DomainSetMetadata>(
        [d](const auto& r) { return d->set_metadata(r.ref, r.kind, r.text, r.live, r.config); });
    on<ops::DomainSetAutostart>([d](const auto& r) { return d->set_autostart(r.ref, r.enabled); });
    on<ops::DomainStart>(
        [d](const auto& r) { return d->start_domain(r.ref, {.paused = r.paused, .force_boot = r.force_boot}); });
    on<ops::DomainShutdown>([d](const auto& r) { return d->shutdown_domain(r.ref, r.mode); });
    on<ops::DomainReboot>([d](const auto& r) { return d->reboot_domain(r.ref, r.mode); });
    on<ops::DomainDestroy>([d](const auto& r) { return d->destroy_domain(r.ref, {.graceful = r.graceful}); });
    on<ops::DomainReset>([d](const auto& r) { return d->reset_domain(r.ref); });
    on<ops::DomainSuspend>([d](const auto& r) { return d->suspend_domain(r.ref); });
    on<ops::DomainResume>([d](const auto& r) { return d->resume_domain(r.ref); });
    on<ops::DomainSave>([d](const auto& r) { return d->save_domain(r.ref, r.path); });
    on<ops::DomainManagedSave>([d](const auto& r) { return d->managed_save(r.ref); });
    on<ops::DomainManagedSaveRemove>([d](const auto& r) { return d->managed_save_remove(r.ref); });
    on<ops::DomainConsole>([d](const auto& r) { return d->open_console(r.ref, r.device); });
    on<ops::DomainScreenshot>([d](const auto& r) { return d->screenshot(r.ref); });
    on<ops::DomainSendKey>([d](const auto& r) { return d->send_key(r.ref, r.keys); });
    on<ops::DomainJobInfo>([d](const auto& r) -> Result<driver::JobInfo> {
        auto obj = d->registry.resolve(r.ref);
        if (!obj) return std::unexpected(obj.error());
        return driver::domain_job_info(*obj, r.completed, r.keep_completed);
    });
    on<ops::DomainAbortJob>([d](const auto& r) -> Status {
        auto obj = d->registry.resolve(r.ref);
        if (!obj) return std::unexpected(obj.error());
        return driver::abort_domain_job(*obj);
    });
    driver::install_job_ops(*this, d->jobs);
    pool::install_pool_ops(*this, [d] { return d->storage(); });
}

std::unique_ptr<Driver> make_test_driver() { return std::make_unique<TestDriver>(); }

// --- connection / host -------------------------------------------------------

Result<VersionInfo> TestDriver::Impl::version() { return VersionInfo{VIREO_VERSION, "", "Test 1.0"}; }

Result<std::string> TestDriver::Impl::hostname() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return fail_errno("cannot get the host name");
    return std::string(buf);
}

Result<NodeInfo> TestDriver::Impl::node_info() {
    NodeInfo n;
    n.model = "x86_64";
    n.memory_kib = 3145728;
    n.cpus = 8;
    n.mhz = 1400;
    n.nodes = 1;
    n.sockets = 2;
    n.cores = 2;
    n.threads = 2;
    return n;
}

Result<std::string> TestDriver::Impl::capabilities_xml() { return std::string(test_samples::kCapabilitiesXml); }

Result<std::string> TestDriver::Impl::domain_capabilities_xml(std::string_view emulator, std::string_view arch,
                                                        std::string_view machine, std::string_view virttype) {
    // The sample host's guests are plain emulated ones (type 'qemu'); the
    // XML model has no 'test' domain type, and this keeps definitions
    // portable between test:///default and qemu:///.
    if (!virttype.empty() && virttype != "qemu")
        return fail(ErrorCode::Unsupported, "virttype '{}' is not supported by the test driver (only 'qemu')",
                    virttype);
    if (!arch.empty() && arch != "x86_64" && arch != "i686")
        return fail(ErrorCode::Unsupported, "architecture '{}' is not supported by the test driver", arch);
    if (!emulator.empty() && emulator != "/usr/bin/test-hv")
        return fail(ErrorCode::Unsupported, "emulator '{}' is not supported by the test driver", emulator);
    return fmt::format(R"(<domainCapabilities>
  <path>/usr/bin/test-hv</path>
  <domain>qemu</domain>
  <machine>{}</machine>
  <arch>{}</arch>
  <vcpu max='8'/>
  <os supported='yes'>
    <enum name='firmware'/>
  </os>
  <devices>
    <disk supported='yes'>
      <enum name='diskDevice'>
        <value>disk</value>
        <value>cdrom</value>
      </enum>
      <enum name='bus'>
        <value>virtio</value>
        <value>sata</value>
      </enum>
    </disk>
  </devices>
</domainCapabilities>
)",
                       machine.empty() ? "pc" : machine, arch.empty() ? "x86_64" : arch);
}

// --- queries -------------------------------------------------------------------

Result<std::vector<DomainSummary>> TestDriver::Impl::list_domains() {
    std::vector<DomainSummary> out;
    for (const auto& snap : registry.snapshots()) out.push_back(summarize(snap));
    return out;
}

Result<DomainSummary> TestDriver::Impl::lookup_domain(std::string_view ref) {
    auto snap = snapshot_of(ref);
    if (!snap) return std::unexpected(snap.error());
    return summarize(*snap);
}

Result<std::string> TestDriver::Impl::domain_xml(std::string_view ref, bool inactive, bool security_info) {
    auto snap = snapshot_of(ref);
    if (!snap) return std::unexpected(snap.error());
    return domain_xml_of(inactive ? snap->fields.inactive() : snap->fields.current(), security_info);
}

Result<std::vector<DiskInfo>> TestDriver::Impl::domain_disks(std::string_view ref, bool inactive) {
    auto snap = snapshot_of(ref);
    if (!snap) return std::unexpected(snap.error());
    return disk_rows(*(inactive ? snap->fields.inactive() : snap->fields.current()).def);
}

Result<std::vector<InterfaceInfo>> TestDriver::Impl::domain_interfaces(std::string_view ref, bool inactive) {
    auto snap = snapshot_of(ref);
    if (!snap) return std::unexpected(snap.error());
    return interface_rows(*(inactive ? snap->fields.inactive() : snap->fields.current()).def);
}

// domif-getlink: from the definition, as virsh reads it (<link state>, "up" when absent).
Result<std::string> TestDriver::Impl::interface_link(std::string_view ref, std::string_view device, bool config) {
    auto snap = snapshot_of(ref);
    if (!snap) return std::unexpected(snap.error());
    for (const auto& n : (config ? snap->fields.inactive() : snap->fields.current()).def->devices.interfaces)
        if (n.target_dev == device || n.mac == device) return n.link_state.empty() ? std::string("up") : n.link_state;
    return fail(ErrorCode::InvalidArg, "invalid argument: invalid path, '{}' is not a known interface", device);
}

// --- definitions -----------------------------------------------------------------

Result<DomainSummary> TestDriver::Impl::define_domain(std::string_view xml, bool validate) {
    (void)validate;  // the parser already rejects what the test driver cannot represent
    auto def = make_definition(xml);
    if (!def) return std::unexpected(def.error());
    // Redefinition is a modifying job on the existing domain.
    auto existing = registry.check_identity(def->def->name, def->def->uuid);
    if (!existing) return std::unexpected(existing.error());
    std::optional<JobGuard> job;
    if (*existing) {
        auto j = acquire_job(*existing, "define");
        if (!j) return std::unexpected(j.error());
        job.emplace(std::move(*j));
    }
    auto added = registry.define(std::move(*def));
    if (!added) return std::unexpected(added.error());
    emit(EventType::Defined, added->created ? "Added" : "Updated", *added->object);
    return summarize(added->object->snapshot());
}

Status TestDriver::Impl::undefine_domain(std::string_view ref, UndefineFlags flags) {
    auto job = begin(ref, "undefine");
    if (!job) return std::unexpected(job.error());
    auto out = registry.undefine(job->ptr(), flags);
    if (!out) return std::unexpected(out.error());
    if (out->had_managed_save) job->object().with([](DomainFields& f) { test_private(f).image.reset(); });
    emit(EventType::Undefined, "Removed", job->object());
    return {};
}

Result<DomainSummary> TestDriver::Impl::create_domain(std::string_view xml, StartFlags flags) {
    auto def = make_definition(xml);
    if (!def) return std::unexpected(def.error());
    auto added = registry.add_transient(*def);
    if (!added) return std::unexpected(added.error());
    auto job = acquire_job(added->object, "create");
    if (!job) {
        if (added->created) registry.remove(added->object);
        return std::unexpected(job.error());
    }
    if (added->object->snapshot().active()) return std::unexpected(already_running_error(added->object->name()));
    run(job->object(), *def, flags.paused, "booted", "Booted");
    return summarize(job->object().snapshot());
}

Status TestDriver::Impl::set_autostart(std::string_view ref, bool enabled) {
    auto job = begin(ref, "autostart");
    if (!job) return std::unexpected(job.error());
    return job->object().with([&](DomainFields& f) -> Status {
        if (!f.persistent()) return std::unexpected(invalid_state("cannot set autostart for transient domain"));
        f.autostart = enabled;
        return {};
    });
}

Result<std::string> TestDriver::Impl::get_metadata(std::string_view ref, MetadataKind kind, bool inactive) {
    auto snap = snapshot_of(ref);
    if (!snap) return std::unexpected(snap.error());
    const auto& def = *(inactive ? snap->fields.inactive() : snap->fields.current()).def;
    return kind == MetadataKind::Title ? def.title : def.description;
}

Status TestDriver::Impl::set_metadata(std::string_view ref, MetadataKind kind, std::string_view text, bool live,
                                bool config) {
    if (kind == MetadataKind::Title && text.find('\n') != std::string_view::npos)
        return fail(ErrorCode::InvalidArg, "title can't contain newlines");
    auto job = begin(ref, "metadata");
    if (!job) return std::unexpected(job.error());
    auto snap = job->object().snapshot();
    auto impact = resolve_impact({.live = live, .config = config}, snap.active(), snap.fields.persistent());
    if (!impact) return std::unexpected(impact.error());
    live = impact->live;
    config = impact->config;
    auto edited = [&](const DomainDefinition& d) {
        conf::DomainDef copy = *d.def;
        (kind == MetadataKind::Title ? copy.title : copy.description) = std::string(text);
        return make_definition(std::move(copy));
    };
    std::optional<DomainDefinition> new_live, new_config;
    if (live) new_live = edited(*snap.fields.live);
    if (config) new_config = edited(*snap.fields.config);
    job->object().with([&](DomainFields& f) {
        if (new_live) f.live = std::move(*new_live);
        if (new_config) f.config = std::move(*new_config);
    });
    return {};
}

// --- lifecycle -------------------------------------------------------------------

Status TestDriver::Impl::start_domain(std::string_view ref, StartFlags flags) {
    auto job = begin(ref, "start");
    if (!job) return std::unexpected(job.error());
    DomainObject& obj = job->object();
    auto snap = obj.snapshot();
    if (snap.active()) return std::unexpected(already_running_error(snap.name));
    std::optional<DomainDefinition> image;
    bool image_paused = false;
    obj.with([&](DomainFields& f) {
        auto& priv = test_private(f);
        if (f.managed_save && !flags.force_boot) {
            image = priv.image;
            image_paused = priv.image_paused;
        }
        // A managed save image is used up by starting, and discarded by a forced boot.
        priv.image.reset();
        f.managed_save = false;
    });
    if (image)
        run(obj, *image, flags.paused || image_paused, "restored", "Restored");
    else
        run(obj, snap.fields.inactive(), flags.paused, "booted", "Booted");
    return {};
}

Status TestDriver::Impl::shutdown_domain(std::string_view ref, ShutdownMode mode) {
    (void)mode;  // the fake guest honours every shutdown method
    auto job = begin(ref, "shutdown");
    if (!job) return std::unexpected(job.error());
    if (auto snap = active_snapshot(job->object()); !snap) return std::unexpected(snap.error());
    emit(EventType::Shutdown, "Finished", job->object());
    stop(job->ptr(), "shutdown", "Shutdown");
    return {};
}

Status TestDriver::Impl::reboot_domain(std::string_view ref, ShutdownMode mode) {
    (void)mode;
    auto job = begin(ref, "reboot");
    if (!job) return std::unexpected(job.error());
    if (auto snap = active_snapshot(job->object()); !snap) return std::unexpected(snap.error());
    job->object().with([](DomainFields& f) {
        f.state = DomainState::Running;
        f.reason = "booted";
    });
    return {};
}

Status TestDriver::Impl::reset_domain(std::string_view ref) {
    auto job = begin(ref, "reset");
    if (!job) return std::unexpected(job.error());
    if (auto snap = active_snapshot(job->object()); !snap) return std::unexpected(snap.error());
    return {};
}

// screenshot: a fixed image, of any domain (as libvirt's test driver, which
// sends its test-screenshot.png): a 4x4 PNG of grey stripes.
Result<driver::Screenshot> TestDriver::Impl::screenshot(std::string_view ref) {
    auto snap = snapshot_of(ref);
    if (!snap) return std::unexpected(snap.error());
    static constexpr unsigned char kPng[] = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
        0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x8c, 0x9a, 0xc1, 0xa2, 0x00, 0x00, 0x00,
        0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x68, 0x70, 0x38, 0xa0, 0xc0, 0x80, 0x4a, 0x00, 0x00, 0x42,
        0x54, 0x06, 0x81, 0x27, 0x68, 0x43, 0x59, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60,
        0x82};
    return driver::Screenshot{"image/png", std::string(reinterpret_cast<const char*>(kPng), sizeof(kPng))};
}

// send-key: checked (a running domain, 1 to 16 codes), then nothing happens.
Status TestDriver::Impl::send_key(std::string_view ref, std::string_view keys) {
    auto codes = driver::split_keycodes(keys);
    if (!codes) return std::unexpected(codes.error());
    auto job = begin(ref, "send-key");
    if (!job) return std::unexpected(job.error());
    if (auto snap = active_snapshot(job->object()); !snap) return std::unexpected(snap.error());
    return {};
}

Status TestDriver::Impl::destroy_domain(std::string_view ref, DestroyFlags flags) {
    (void)flags;
    auto job = begin(ref, "destroy");
    if (!job) return std::unexpected(job.error());
    if (auto snap = active_snapshot(job->object()); !snap) return std::unexpected(snap.error());
    stop(job->ptr(), "destroyed", "Destroyed");
    return {};
}

Status TestDriver::Impl::suspend_domain(std::string_view ref) {
    auto job = begin(ref, "suspend");
    if (!job) return std::unexpected(job.error());
    auto snap = active_snapshot(job->object());
    if (!snap) return std::unexpected(snap.error());
    if (snap->fields.state == DomainState::Paused)
        return std::unexpected(invalid_state(fmt::format("domain '{}' is already paused", snap->name)));
    job->object().with([](DomainFields& f) {
        f.state = DomainState::Paused;
        f.reason = "user";
    });
    emit(EventType::Suspended, "Paused", job->object());
    return {};
}

Status TestDriver::Impl::resume_domain(std::string_view ref) {
    auto job = begin(ref, "resume");
    if (!job) return std::unexpected(job.error());
    auto snap = active_snapshot(job->object());
    if (!snap) return std::unexpected(snap.error());
    if (snap->fields.state != DomainState::Paused)
        return std::unexpected(invalid_state(fmt::format("domain '{}' is not paused", snap->name)));
    job->object().with([](DomainFields& f) {
        f.state = DomainState::Running;
        f.reason = "unpaused";
    });
    emit(EventType::Resumed, "Unpaused", job->object());
    return {};
}

Status TestDriver::Impl::save_domain(std::string_view ref, std::string_view path) {
    auto job = begin(ref, "save");
    if (!job) return std::unexpected(job.error());
    auto snap = active_snapshot(job->object());
    if (!snap) return std::unexpected(snap.error());
    const std::string image = save_image(*snap->fields.live, snap->fields.state == DomainState::Paused);
    if (auto st = files::write_atomic(std::string(path), image, 0600); !st)
        return std::unexpected(st.error().context(fmt::format("failed to save domain '{}' to {}", snap->name, path)));
    stop(job->ptr(), "saved", "Saved");
    return {};
}

Result<DomainSummary> TestDriver::Impl::restore_domain(std::string_view path, bool paused) {
    auto text = files::read(std::string(path));
    if (!text) return std::unexpected(text.error());
    auto image = parse_save_image(path, *text);
    if (!image) return std::unexpected(image.error());
    auto added = registry.add_transient(image->definition);
    if (!added) return std::unexpected(added.error());
    auto job = acquire_job(added->object, "restore");
    if (!job) {
        if (added->created) registry.remove(added->object);
        return std::unexpected(job.error());
    }
    if (added->object->snapshot().active()) return std::unexpected(already_running_error(added->object->name()));
    run(job->object(), image->definition, paused || image->paused, "restored", "Restored");
    return summarize(job->object().snapshot());
}

Status TestDriver::Impl::managed_save(std::string_view ref) {
    auto job = begin(ref, "managedsave");
    if (!job) return std::unexpected(job.error());
    auto snap = active_snapshot(job->object());
    if (!snap) return std::unexpected(snap.error());
    if (!snap->fields.persistent())
        return std::unexpected(invalid_state("cannot do managed save for transient domain"));
    job->object().with([&](DomainFields& f) {
        auto& priv = test_private(f);
        priv.image = f.live;
        priv.image_paused = f.state == DomainState::Paused;
        f.managed_save = true;
    });
    stop(job->ptr(), "saved", "Saved");
    return {};
}

Status TestDriver::Impl::managed_save_remove(std::string_view ref) {
    auto job = begin(ref, "managedsave-remove");
    if (!job) return std::unexpected(job.error());
    job->object().with([](DomainFields& f) {
        test_private(f).image.reset();
        f.managed_save = false;
    });
    return {};
}

// --- console and events -------------------------------------------------------

Result<UniqueFd> TestDriver::Impl::open_console(std::string_view ref, std::string_view device) {
    auto snap = snapshot_of(ref);
    if (!snap) return std::unexpected(snap.error());
    if (!snap->active()) return std::unexpected(not_running_error(snap->name));
    const auto& devices = snap->fields.live->def->devices;
    const std::size_t serials = devices.serials.size() + devices.consoles.size();
    bool known = device.empty() || (device == "console0" && serials > 0);
    for (std::size_t i = 0; !known && i < serials; ++i) known = device == fmt::format("serial{}", i);
    if (!known) return fail(ErrorCode::NotFound, "cannot find character device '{}'", device);
    if (serials == 0)
        return fail(ErrorCode::Unsupported, "domain '{}' has no console or serial device", snap->name);
    return consoles.open("");
}

Result<std::unique_ptr<Subscription>> TestDriver::Impl::subscribe(std::function<void(const DomainEvent&)> callback) {
    return events.subscribe(std::move(callback));
}

}  // namespace vireo::testdrv
