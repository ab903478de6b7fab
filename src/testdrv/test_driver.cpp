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
#include "testdrv/fake_console.hpp"
#include "driver/registry.hpp"
#include "testdrv/test_samples.hpp"
#include "driver/unavailable_pools.hpp"
#include "pool/pool_manager.hpp"
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
    std::string uri;
    DomainRegistry registry;
    EventBus events;
    FakeConsole consoles;

    // Storage: made on first use (most connections never touch it), in a
    // private temp dir that goes with the driver.
    std::mutex pools_mutex;
    std::unique_ptr<PoolApi> pools;
    std::filesystem::path pools_dir;

    ~Impl() {
        pools.reset();
        std::error_code ec;
        if (!pools_dir.empty()) std::filesystem::remove_all(pools_dir, ec);
    }

    PoolApi& storage() {
        std::lock_guard lk(pools_mutex);
        if (!pools) pools = open_pools();
        return *pools;
    }

    std::unique_ptr<PoolApi> open_pools() {
        auto dir = make_pools_dir();
        if (!dir) return make_unavailable_pools(dir.error().context("the test driver has no storage pools"));
        pools_dir = *dir;
        pool::PoolManagerConfig cfg;
        cfg.default_pool_name = "default-pool";  // as libvirt's test:///default
        cfg.default_pool_path = pools_dir / "default-pool";
        cfg.disk_users = [this] { return disk_users(); };
        auto mgr = pool::PoolManager::open(std::move(cfg));
        if (!mgr) return make_unavailable_pools(mgr.error().context("the test driver has no storage pools"));
        return std::move(*mgr);
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
};

TestDriver::TestDriver(std::string uri) : impl_(std::make_unique<Impl>()) {
    impl_->uri = std::move(uri);
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

PoolApi& TestDriver::pools() { return impl_->storage(); }

std::unique_ptr<Driver> make_test_driver() { return std::make_unique<TestDriver>(); }

// --- connection / host -------------------------------------------------------

std::string TestDriver::uri() const { return impl_->uri; }

Result<VersionInfo> TestDriver::version() { return VersionInfo{VIREO_VERSION, "", "Test 1.0"}; }

Result<std::string> TestDriver::hostname() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return fail_errno("cannot get the host name");
    return std::string(buf);
}

Result<NodeInfo> TestDriver::node_info() {
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

Result<std::string> TestDriver::capabilities_xml() { return std::string(test_samples::kCapabilitiesXml); }

Result<std::string> TestDriver::domain_capabilities_xml(std::string_view emulator, std::string_view arch,
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

Result<std::vector<DomainSummary>> TestDriver::list_domains() {
    std::vector<DomainSummary> out;
    for (const auto& snap : impl_->registry.snapshots()) out.push_back(summarize(snap));
    return out;
}

Result<DomainSummary> TestDriver::lookup_domain(std::string_view ref) {
    auto snap = impl_->snapshot_of(ref);
    if (!snap) return std::unexpected(snap.error());
    return summarize(*snap);
}

Result<std::string> TestDriver::domain_xml(std::string_view ref, bool inactive) {
    auto snap = impl_->snapshot_of(ref);
    if (!snap) return std::unexpected(snap.error());
    return inactive ? snap->fields.inactive().xml : snap->fields.current().xml;
}

Result<std::vector<DiskInfo>> TestDriver::domain_disks(std::string_view ref, bool inactive) {
    auto snap = impl_->snapshot_of(ref);
    if (!snap) return std::unexpected(snap.error());
    return disk_rows(*(inactive ? snap->fields.inactive() : snap->fields.current()).def);
}

Result<std::vector<InterfaceInfo>> TestDriver::domain_interfaces(std::string_view ref, bool inactive) {
    auto snap = impl_->snapshot_of(ref);
    if (!snap) return std::unexpected(snap.error());
    return interface_rows(*(inactive ? snap->fields.inactive() : snap->fields.current()).def);
}

// --- definitions -----------------------------------------------------------------

Result<DomainSummary> TestDriver::define_domain(std::string_view xml, bool validate) {
    (void)validate;  // the parser already rejects what the test driver cannot represent
    auto def = make_definition(xml);
    if (!def) return std::unexpected(def.error());
    // Redefinition is a modifying job on the existing domain.
    auto existing = impl_->registry.check_identity(def->def->name, def->def->uuid);
    if (!existing) return std::unexpected(existing.error());
    std::optional<JobGuard> job;
    if (*existing) {
        auto j = acquire_job(*existing, "define");
        if (!j) return std::unexpected(j.error());
        job.emplace(std::move(*j));
    }
    auto added = impl_->registry.define(std::move(*def));
    if (!added) return std::unexpected(added.error());
    impl_->emit(EventType::Defined, added->created ? "Added" : "Updated", *added->object);
    return summarize(added->object->snapshot());
}

Status TestDriver::undefine_domain(std::string_view ref, UndefineFlags flags) {
    auto job = impl_->begin(ref, "undefine");
    if (!job) return std::unexpected(job.error());
    auto out = impl_->registry.undefine(job->ptr(), flags);
    if (!out) return std::unexpected(out.error());
    if (out->had_managed_save) job->object().with([](DomainFields& f) { test_private(f).image.reset(); });
    impl_->emit(EventType::Undefined, "Removed", job->object());
    return {};
}

Result<DomainSummary> TestDriver::create_domain(std::string_view xml, StartFlags flags) {
    auto def = make_definition(xml);
    if (!def) return std::unexpected(def.error());
    auto added = impl_->registry.add_transient(*def);
    if (!added) return std::unexpected(added.error());
    auto job = acquire_job(added->object, "create");
    if (!job) {
        if (added->created) impl_->registry.remove(added->object);
        return std::unexpected(job.error());
    }
    if (added->object->snapshot().active()) return std::unexpected(already_running_error(added->object->name()));
    impl_->run(job->object(), *def, flags.paused, "booted", "Booted");
    return summarize(job->object().snapshot());
}

Status TestDriver::set_autostart(std::string_view ref, bool enabled) {
    auto job = impl_->begin(ref, "autostart");
    if (!job) return std::unexpected(job.error());
    return job->object().with([&](DomainFields& f) -> Status {
        if (!f.persistent()) return std::unexpected(invalid_state("cannot set autostart for transient domain"));
        f.autostart = enabled;
        return {};
    });
}

Result<std::string> TestDriver::get_metadata(std::string_view ref, MetadataKind kind, bool inactive) {
    auto snap = impl_->snapshot_of(ref);
    if (!snap) return std::unexpected(snap.error());
    const auto& def = *(inactive ? snap->fields.inactive() : snap->fields.current()).def;
    return kind == MetadataKind::Title ? def.title : def.description;
}

Status TestDriver::set_metadata(std::string_view ref, MetadataKind kind, std::string_view text, bool live,
                                bool config) {
    if (kind == MetadataKind::Title && text.find('\n') != std::string_view::npos)
        return fail(ErrorCode::InvalidArg, "title can't contain newlines");
    auto job = impl_->begin(ref, "metadata");
    if (!job) return std::unexpected(job.error());
    auto snap = job->object().snapshot();
    if (!live && !config) {
        live = snap.active();
        config = !snap.active();
    }
    if (live && !snap.active()) return std::unexpected(not_running_error(snap.name));
    if (config && !snap.fields.persistent())
        return std::unexpected(invalid_state("cannot change persistent config of a transient domain"));
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

Status TestDriver::start_domain(std::string_view ref, StartFlags flags) {
    auto job = impl_->begin(ref, "start");
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
        impl_->run(obj, *image, flags.paused || image_paused, "restored", "Restored");
    else
        impl_->run(obj, snap.fields.inactive(), flags.paused, "booted", "Booted");
    return {};
}

Status TestDriver::shutdown_domain(std::string_view ref, ShutdownMode mode) {
    (void)mode;  // the fake guest honours every shutdown method
    auto job = impl_->begin(ref, "shutdown");
    if (!job) return std::unexpected(job.error());
    if (auto snap = impl_->active_snapshot(job->object()); !snap) return std::unexpected(snap.error());
    impl_->emit(EventType::Shutdown, "Finished", job->object());
    impl_->stop(job->ptr(), "shutdown", "Shutdown");
    return {};
}

Status TestDriver::reboot_domain(std::string_view ref, ShutdownMode mode) {
    (void)mode;
    auto job = impl_->begin(ref, "reboot");
    if (!job) return std::unexpected(job.error());
    if (auto snap = impl_->active_snapshot(job->object()); !snap) return std::unexpected(snap.error());
    job->object().with([](DomainFields& f) {
        f.state = DomainState::Running;
        f.reason = "booted";
    });
    return {};
}

Status TestDriver::reset_domain(std::string_view ref) {
    auto job = impl_->begin(ref, "reset");
    if (!job) return std::unexpected(job.error());
    if (auto snap = impl_->active_snapshot(job->object()); !snap) return std::unexpected(snap.error());
    return {};
}

Status TestDriver::destroy_domain(std::string_view ref, DestroyFlags flags) {
    (void)flags;
    auto job = impl_->begin(ref, "destroy");
    if (!job) return std::unexpected(job.error());
    if (auto snap = impl_->active_snapshot(job->object()); !snap) return std::unexpected(snap.error());
    impl_->stop(job->ptr(), "destroyed", "Destroyed");
    return {};
}

Status TestDriver::suspend_domain(std::string_view ref) {
    auto job = impl_->begin(ref, "suspend");
    if (!job) return std::unexpected(job.error());
    auto snap = impl_->active_snapshot(job->object());
    if (!snap) return std::unexpected(snap.error());
    if (snap->fields.state == DomainState::Paused)
        return std::unexpected(invalid_state(fmt::format("domain '{}' is already paused", snap->name)));
    job->object().with([](DomainFields& f) {
        f.state = DomainState::Paused;
        f.reason = "user";
    });
    impl_->emit(EventType::Suspended, "Paused", job->object());
    return {};
}

Status TestDriver::resume_domain(std::string_view ref) {
    auto job = impl_->begin(ref, "resume");
    if (!job) return std::unexpected(job.error());
    auto snap = impl_->active_snapshot(job->object());
    if (!snap) return std::unexpected(snap.error());
    if (snap->fields.state != DomainState::Paused)
        return std::unexpected(invalid_state(fmt::format("domain '{}' is not paused", snap->name)));
    job->object().with([](DomainFields& f) {
        f.state = DomainState::Running;
        f.reason = "unpaused";
    });
    impl_->emit(EventType::Resumed, "Unpaused", job->object());
    return {};
}

Status TestDriver::save_domain(std::string_view ref, std::string_view path) {
    auto job = impl_->begin(ref, "save");
    if (!job) return std::unexpected(job.error());
    auto snap = impl_->active_snapshot(job->object());
    if (!snap) return std::unexpected(snap.error());
    const std::string image = save_image(*snap->fields.live, snap->fields.state == DomainState::Paused);
    if (auto st = files::write_atomic(std::string(path), image, 0600); !st)
        return std::unexpected(st.error().context(fmt::format("failed to save domain '{}' to {}", snap->name, path)));
    impl_->stop(job->ptr(), "saved", "Saved");
    return {};
}

Result<DomainSummary> TestDriver::restore_domain(std::string_view path, bool paused) {
    auto text = files::read(std::string(path));
    if (!text) return std::unexpected(text.error());
    auto image = parse_save_image(path, *text);
    if (!image) return std::unexpected(image.error());
    auto added = impl_->registry.add_transient(image->definition);
    if (!added) return std::unexpected(added.error());
    auto job = acquire_job(added->object, "restore");
    if (!job) {
        if (added->created) impl_->registry.remove(added->object);
        return std::unexpected(job.error());
    }
    if (added->object->snapshot().active()) return std::unexpected(already_running_error(added->object->name()));
    impl_->run(job->object(), image->definition, paused || image->paused, "restored", "Restored");
    return summarize(job->object().snapshot());
}

Status TestDriver::managed_save(std::string_view ref) {
    auto job = impl_->begin(ref, "managedsave");
    if (!job) return std::unexpected(job.error());
    auto snap = impl_->active_snapshot(job->object());
    if (!snap) return std::unexpected(snap.error());
    if (!snap->fields.persistent())
        return std::unexpected(invalid_state("cannot do managed save for transient domain"));
    job->object().with([&](DomainFields& f) {
        auto& priv = test_private(f);
        priv.image = f.live;
        priv.image_paused = f.state == DomainState::Paused;
        f.managed_save = true;
    });
    impl_->stop(job->ptr(), "saved", "Saved");
    return {};
}

Status TestDriver::managed_save_remove(std::string_view ref) {
    auto job = impl_->begin(ref, "managedsave-remove");
    if (!job) return std::unexpected(job.error());
    job->object().with([](DomainFields& f) {
        test_private(f).image.reset();
        f.managed_save = false;
    });
    return {};
}

// --- console and events -------------------------------------------------------

Result<UniqueFd> TestDriver::open_console(std::string_view ref, std::string_view device) {
    auto snap = impl_->snapshot_of(ref);
    if (!snap) return std::unexpected(snap.error());
    if (!snap->active()) return std::unexpected(not_running_error(snap->name));
    const auto& devices = snap->fields.live->def->devices;
    const std::size_t serials = devices.serials.size() + devices.consoles.size();
    bool known = device.empty() || (device == "console0" && serials > 0);
    for (std::size_t i = 0; !known && i < serials; ++i) known = device == fmt::format("serial{}", i);
    if (!known) return fail(ErrorCode::NotFound, "cannot find character device '{}'", device);
    if (serials == 0)
        return fail(ErrorCode::Unsupported, "domain '{}' has no console or serial device", snap->name);
    return impl_->consoles.open("");
}

Result<std::unique_ptr<Subscription>> TestDriver::subscribe(std::function<void(const DomainEvent&)> callback) {
    return impl_->events.subscribe(std::move(callback));
}

}  // namespace vireo::testdrv
