// The domain object registry shared by every driver (test, qemu), with
// libvirt's job model.
//
// Locking, in the order one may nest them (never the other way round):
//   1. a domain's job   — at most one modifying operation per domain at a time
//                         (start, shutdown, define, ...). Held for the whole
//                         operation, which may take seconds (QEMU start, save).
//                         Taken with acquire_job(); a caller that cannot get it
//                         within its timeout gets a Busy error naming the holder.
//   2. the registry's mutex — guards the name/uuid maps; held for microseconds.
//   3. a domain's mutex — guards its fields; held for microseconds, never
//                         across I/O, never while waiting for QEMU.
// Queries (list, dominfo, dumpxml) never take the job: they copy a
// DomainSnapshot under the short mutex, so they never wait behind a job.
//
// Jobs are typed, as libvirt's (JobType). Besides the one synchronous job, a
// domain may run one ASYNC job (save, restore, managedsave, dump, migration,
// snapshot, block job: driver/job.hpp's AsyncJob, with phase, progress and
// abort), taken with begin_async_job(). While it runs, only the synchronous
// jobs in its mask may be acquired (by default Query, Destroy and Abort:
// domjobinfo, destroy and domjobabort never wait behind a save); any other
// job waits for the async job to end, then fails Busy naming it. The thread
// that owns the async job does its work under the async job alone. When it
// ends, its final JobInfo stays as the domain's completed job
// (domjobinfo --completed).
//
// Lifecycle of definitions (libvirt's model):
//   - config: the persistent definition (what the next boot uses). Present
//     iff the domain is persistent.
//   - live:   the definition of the running instance. Present while active;
//     a transient domain that is being created has live set before it runs.
// Redefining a running domain replaces only `config`; the running instance
// keeps `live` until it stops. A transient domain is removed when it stops.
//
// A modifying operation in a driver, the usual shape (see test_driver.cpp):
//   auto obj = registry.resolve(ref);                  // NoDomain error
//   auto job = acquire_job(*obj, "start");             // Busy error
//   auto snap = job->object().snapshot();              // check state
//   if (snap.active()) return already_running_error(snap.name);
//   ... slow work without any mutex held (spawn QEMU, QMP, ...) ...
//   job->object().with([&](DomainFields& f) {          // publish the result
//       f.set_active(make_live_definition(*f.config, id), id, DomainState::Running, "booted");
//   });
//   events.publish(EventType::Started, "Booted", snap.name, snap.uuid);
// A query:
//   auto snap = (*registry.resolve(ref))->snapshot();  // never waits for jobs
//   return summarize(snap);
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/domain.hpp"
#include "driver/driver.hpp"
#include "driver/job.hpp"
#include "driver/shared_definition.hpp"
#include "util/error.hpp"
#include "util/uuid.hpp"

namespace vireo::driver {

// One definition document: the canonical XML (what dumpxml prints) and its
// parsed form. Stored objects always have both. Copies are cheap (both are
// shared and immutable); the registry keeps a persistent definition's parsed
// form lazily (see shared_definition.hpp), so read it through `def` only when
// the model is needed, and the summary facts through def.facts().
struct DomainDefinition {
    SharedXml xml;
    DefinitionModel def;
};

// What a driver defining a new document knows beyond it: with `host`, the
// host-dependent checks and defaults come first (conf::apply_define_host: the
// architecture's emulator, the canonical machine type); the MACs generated
// for <interface>s without one are chosen outside `mac_in_use`
// (conf::assign_unique_macs), so no two domains of a connection get the same
// generated MAC.
struct DefineContext {
    const conf::DefineHost* host = nullptr;
    std::function<bool(std::string_view)> mac_in_use{};
};

// Parse an XML document (conf::parse_domain_xml, which validates unless
// flags.no_validate), apply libvirt's define-time defaults
// (conf::assign_addresses_and_aliases: controllers, addresses, aliases, MACs)
// and return it with its canonical inactive XML (what dumpxml --inactive
// prints). A runtime id in the document (<domain id='5'>) is dropped, as
// libvirt ignores it on define. A driver defining a new document passes
// what it knows beyond the document (DefineContext).
Result<DomainDefinition> make_definition(std::string_view xml, conf::ParseFlags flags = {},
                                         const DefineContext& ctx = {});
// Wrap an already parsed definition as it is: inactive XML, or live XML
// (FormatFlags{live, id}) when def.id is set.
DomainDefinition make_definition(conf::DomainDef def);
// The live definition of a domain started from `inactive` with this id:
// same model with def.id set, XML formatted with FormatFlags{live, id}.
DomainDefinition make_live_definition(const DomainDefinition& inactive, int id);

// The XML dumpxml prints of `d`: without the graphics passwords unless
// `security_info` (libvirt's VIR_DOMAIN_XML_SECURE, virsh --security-info).
std::string domain_xml_of(const DomainDefinition& d, bool security_info);

// Extra per-domain state a driver attaches (QEMU: pid, monitor, paths).
// Guarded by the domain's mutex like the other fields; drivers downcast.
class DomainPrivate {
public:
    virtual ~DomainPrivate() = default;
};

// The mutable fields of a domain; access them only through
// DomainObject::with() (which holds the domain's mutex).
struct DomainFields {
    std::optional<DomainDefinition> config;  // persistent definition (next boot)
    std::optional<DomainDefinition> live;    // running instance's definition
    DomainState state = DomainState::Shutoff;
    StateReason reason = "unknown";
    int id = -1;                 // >= 1 while active
    bool autostart = false;
    bool managed_save = false;   // a managed save image exists
    std::uint64_t cpu_time_ns = 0;
    std::shared_ptr<DomainPrivate> priv;

    [[nodiscard]] bool persistent() const { return config.has_value(); }
    // Running, paused, in shutdown, crashed-but-not-reaped, pmsuspended.
    [[nodiscard]] bool active() const { return state != DomainState::Shutoff; }
    // live while active, else the persistent one (or, for a transient domain
    // not yet running, its live definition).
    [[nodiscard]] const DomainDefinition& current() const;
    // The persistent definition if any, else the live one (virsh dumpxml --inactive).
    [[nodiscard]] const DomainDefinition& inactive() const;

    // Helpers for drivers, to keep state transitions uniform:
    // become active with this live definition and id.
    void set_active(DomainDefinition live_def, int new_id, DomainState st, StateReason why);
    // become inactive: state shutoff with the reason, live dropped, id -1.
    void set_inactive(StateReason why);
};

// A point-in-time copy of a domain, for queries.
struct DomainSnapshot {
    std::string name;
    Uuid uuid;
    DomainFields fields;                     // copied (defs are shared, immutable)
    std::optional<std::string> job;          // the job in progress, if any
    [[nodiscard]] bool active() const { return fields.active(); }
};

// Summary of a snapshot as the Driver API returns it (memory, vcpus, title
// come from the current definition).
DomainSummary summarize(const DomainSnapshot& snap);
// virsh domblklist / domiflist rows of a definition.
std::vector<DiskInfo> disk_rows(const conf::DomainDef& def);
std::vector<InterfaceInfo> interface_rows(const conf::DomainDef& def);

class JobGuard;
class AsyncJobGuard;

// libvirt's synchronous job kinds (virDomainJob) that vireo uses.
enum class JobType {
    Query,    // a query that must talk to QEMU (not the snapshot queries)
    Destroy,  // destroy: may run during async jobs
    Suspend,  // suspend / resume
    Modify,   // everything that changes the domain (start, define, shutdown, ...)
    Abort,    // domjobabort
};
std::string_view job_type_name(JobType t);

// A set of JobType, for what may run during an async job.
using JobMask = unsigned;
constexpr JobMask job_mask(JobType t) { return 1u << static_cast<unsigned>(t); }
// What libvirt allows during most async jobs: QEMU queries, destroy, abort.
inline constexpr JobMask kDefaultAsyncMask =
    job_mask(JobType::Query) | job_mask(JobType::Destroy) | job_mask(JobType::Abort);

// One domain. Name and uuid never change; everything else is in DomainFields
// behind the domain's mutex.
class DomainObject {
public:
    DomainObject(std::string name, Uuid uuid);
    DomainObject(const DomainObject&) = delete;
    DomainObject& operator=(const DomainObject&) = delete;

    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] const Uuid& uuid() const { return uuid_; }

    // Run f(DomainFields&) under the domain's mutex and return its result.
    // Keep f short: no I/O, no waiting.
    template <class F>
    decltype(auto) with(F&& f) {
        std::lock_guard lk(mutex_);
        return std::forward<F>(f)(fields_);
    }
    template <class F>
    decltype(auto) with(F&& f) const {
        std::lock_guard lk(mutex_);
        return std::forward<F>(f)(static_cast<const DomainFields&>(fields_));
    }

    // Copy of all fields (and the current job's name), taken atomically.
    [[nodiscard]] DomainSnapshot snapshot() const;

    // True once the registry has dropped this object (undefined, or a
    // transient domain that stopped). A job acquired on it fails with NoDomain.
    [[nodiscard]] bool removed() const;

    // Name of the job currently held, if any (the async job's operation,
    // lower case, when only an async job runs: "save").
    [[nodiscard]] std::optional<std::string> current_job() const;

    // The async job in progress (nullptr when none).
    [[nodiscard]] std::shared_ptr<AsyncJob> async_job() const;
    // How the last async job ended (domjobinfo --completed); nullopt if none ran.
    [[nodiscard]] std::optional<JobInfo> completed_job() const;
    // The same, forgotten at once (domjobinfo --completed without
    // --keep-completed, as libvirt: a record is read once).
    std::optional<JobInfo> take_completed_job();

private:
    friend class DomainRegistry;
    friend class JobGuard;
    friend class AsyncJobGuard;
    friend Result<JobGuard> acquire_job(const std::shared_ptr<DomainObject>& obj, JobType type, std::string_view job,
                                        std::chrono::milliseconds timeout);
    friend Result<AsyncJobGuard> begin_async_job(const std::shared_ptr<DomainObject>& obj, JobTracker& tracker,
                                                 JobOperation op, JobMask allowed, std::chrono::milliseconds timeout);

    // Who holds the domain now: "job 'start' for 1.2 s" / "async job 'save' for 3.0 s".
    std::string holder_locked() const;

    const std::string name_;
    const Uuid uuid_;
    mutable std::mutex mutex_;
    std::condition_variable job_cv_;
    DomainFields fields_;
    bool removed_ = false;
    std::optional<std::string> job_;
    JobType job_type_ = JobType::Modify;
    std::chrono::steady_clock::time_point job_started_{};
    std::shared_ptr<AsyncJob> async_job_;
    JobMask async_mask_ = 0;
    std::optional<JobInfo> completed_job_;
};

// libvirt's default wait for the state change lock.
inline constexpr std::chrono::milliseconds kDefaultJobTimeout{30000};

// RAII ownership of a domain's job; released on destruction.
class JobGuard {
public:
    JobGuard(JobGuard&& o) noexcept;
    JobGuard& operator=(JobGuard&& o) noexcept;
    JobGuard(const JobGuard&) = delete;
    JobGuard& operator=(const JobGuard&) = delete;
    ~JobGuard();

    [[nodiscard]] DomainObject& object() const { return *obj_; }
    [[nodiscard]] const std::shared_ptr<DomainObject>& ptr() const { return obj_; }
    // Give the job back early (idempotent).
    void release();

private:
    friend Result<JobGuard> acquire_job(const std::shared_ptr<DomainObject>& obj, JobType type, std::string_view job,
                                        std::chrono::milliseconds timeout);
    explicit JobGuard(std::shared_ptr<DomainObject> obj) : obj_(std::move(obj)) {}
    std::shared_ptr<DomainObject> obj_;
};

// Wait up to `timeout` for the domain's job and take it as a `type` job
// under the name `job` ("start", "destroy", ...). During an async job only
// the types in its mask can be taken. Errors:
//   Busy     "cannot acquire state change lock (held by job 'start' for 12.3 s)"
//            "cannot acquire state change lock (held by async job 'save' for 2.0 s)"
//   NoDomain the domain was removed while waiting (or before).
Result<JobGuard> acquire_job(const std::shared_ptr<DomainObject>& obj, JobType type, std::string_view job,
                             std::chrono::milliseconds timeout = kDefaultJobTimeout);
// A Modify job (the common case).
Result<JobGuard> acquire_job(const std::shared_ptr<DomainObject>& obj, std::string_view job,
                             std::chrono::milliseconds timeout = kDefaultJobTimeout);

// RAII ownership of a domain's async job. The work reports progress through
// job(); finish() records the outcome (as the domain's completed job) and
// frees the domain. Dropping the guard unfinished ends the job as failed.
class AsyncJobGuard {
public:
    AsyncJobGuard(AsyncJobGuard&& o) noexcept;
    AsyncJobGuard& operator=(AsyncJobGuard&& o) noexcept;
    AsyncJobGuard(const AsyncJobGuard&) = delete;
    AsyncJobGuard& operator=(const AsyncJobGuard&) = delete;
    ~AsyncJobGuard();

    [[nodiscard]] DomainObject& object() const { return *obj_; }
    [[nodiscard]] const std::shared_ptr<DomainObject>& ptr() const { return obj_; }
    [[nodiscard]] AsyncJob& job() const { return *job_; }
    [[nodiscard]] const std::shared_ptr<AsyncJob>& handle() const { return job_; }
    // End the job with this outcome (see AsyncJob::finish) and free the
    // domain. Idempotent.
    void finish(const Status& outcome);

private:
    friend Result<AsyncJobGuard> begin_async_job(const std::shared_ptr<DomainObject>& obj, JobTracker& tracker,
                                                 JobOperation op, JobMask allowed, std::chrono::milliseconds timeout);
    AsyncJobGuard(std::shared_ptr<DomainObject> obj, std::shared_ptr<AsyncJob> job)
        : obj_(std::move(obj)), job_(std::move(job)) {}
    std::shared_ptr<DomainObject> obj_;
    std::shared_ptr<AsyncJob> job_;
};

// Wait up to `timeout` until the domain has neither a job nor an async job,
// then start an async job `op` (listed in `tracker`) during which the jobs
// in `allowed` may still be acquired. Errors as acquire_job().
Result<AsyncJobGuard> begin_async_job(const std::shared_ptr<DomainObject>& obj, JobTracker& tracker, JobOperation op,
                                      JobMask allowed = kDefaultAsyncMask,
                                      std::chrono::milliseconds timeout = kDefaultJobTimeout);

// virsh domjobinfo, the same for every driver: the async job running
// (Unbounded, Bounded) or None; with `completed`, how the last one ended
// (None when no record is kept), the record forgotten unless
// `keep_completed`. The running job of an inactive domain without one is
// InvalidState "Requested operation is not valid: domain is not running".
Result<JobInfo> domain_job_info(const std::shared_ptr<DomainObject>& obj, bool completed, bool keep_completed);

// virsh domjobabort: takes an Abort job (allowed during async jobs, so it
// never waits behind the job it aborts) and asks the async job to stop; the
// job's own thread ends it (Cancelled). Without one: InvalidState
// "Requested operation is not valid: no job is active on the domain"
// (or "domain is not running").
Status abort_domain_job(const std::shared_ptr<DomainObject>& obj);

// Outcome of DomainRegistry::define / add_transient.
struct AddOutcome {
    std::shared_ptr<DomainObject> object;
    bool created = false;     // a new object (else an existing one was updated)
    bool was_active = false;  // it was running when updated (config changed only)
};

// Outcome of DomainRegistry::undefine.
struct UndefineOutcome {
    bool removed = false;              // object gone (it was inactive)
    bool had_managed_save = false;     // caller must delete the managed save image
};

// All domains of one driver instance.
class DomainRegistry {
public:
    DomainRegistry() = default;
    DomainRegistry(const DomainRegistry&) = delete;
    DomainRegistry& operator=(const DomainRegistry&) = delete;

    // Resolve a virsh-style reference: a name, else a UUID, else the numeric
    // id of an active domain. NoDomain error:
    //   "Domain not found: no domain with matching name 'x'".
    Result<std::shared_ptr<DomainObject>> resolve(std::string_view ref) const;

    // Exact lookups; nullptr when absent.
    std::shared_ptr<DomainObject> find_by_name(std::string_view name) const;
    std::shared_ptr<DomainObject> find_by_uuid(const Uuid& uuid) const;
    std::shared_ptr<DomainObject> find_by_id(int id) const;

    // Every domain, sorted by name.
    std::vector<std::shared_ptr<DomainObject>> list() const;
    std::vector<DomainSnapshot> snapshots() const;
    std::size_t size() const;

    // The existing object with this name and uuid, nullptr when neither is
    // known, or an error when they conflict:
    //   Exists "domain 'x' already exists with uuid <other>"  (same name, other uuid)
    //   Exists "domain 'x' is already defined with uuid <u>"   (same uuid, other name;
    //                                                          names the existing domain)
    Result<std::shared_ptr<DomainObject>> check_identity(std::string_view name, const Uuid& uuid) const;

    // Define or redefine a persistent domain. A new object starts shut off;
    // an existing inactive one has its config replaced; an existing active
    // one keeps running with its live definition and gets the new config for
    // its next boot (a transient running domain becomes persistent).
    // The caller should hold the existing object's job when redefining.
    Result<AddOutcome> define(DomainDefinition definition);

    // For create (start a transient domain): a new object gets `definition`
    // as its live definition (state shut off until the caller starts it; on
    // failure the caller removes it). An existing inactive persistent domain
    // is returned as is (the caller starts it with `definition` as live).
    // An existing active domain is an error: InvalidState
    // "domain 'x' is already active".
    Result<AddOutcome> add_transient(DomainDefinition definition);

    // Undefine (libvirt semantics), the in-memory part. Caller holds the job.
    //   - transient domain: InvalidState "cannot undefine transient domain"
    //   - managed save image and !flags.managed_save: InvalidState
    //     "Refusing to undefine while domain managed save image exists"
    //   - inactive: removed from the registry
    //   - active persistent: becomes transient (config dropped, autostart
    //     cleared); it disappears when it stops.
    Result<UndefineOutcome> undefine(const std::shared_ptr<DomainObject>& obj, const UndefineFlags& flags);

    // Drop an object (marks it removed; jobs waiting on it fail with NoDomain).
    void remove(const std::shared_ptr<DomainObject>& obj);

    // Domain ids: increasing from 1 for each registry; never reused while
    // the registry lives. set_next_id lets a driver continue a persisted
    // counter after a restart (QEMU reattach).
    int allocate_id();
    void set_next_id(int next);
    [[nodiscard]] int next_id() const;

private:
    std::shared_ptr<DomainObject> insert_locked(const std::string& name, const Uuid& uuid);
    // check_identity's rules for a caller that already holds mutex_.
    Result<std::shared_ptr<DomainObject>> find_identity_locked(std::string_view name, const Uuid& uuid) const;

    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<DomainObject>, std::less<>> by_name_;
    std::map<std::string, std::shared_ptr<DomainObject>, std::less<>> by_uuid_;  // key: Uuid::str()
    // Atomic, not under mutex_, so that allocate_id() may be called anywhere
    // (even inside DomainObject::with) without a lock-order problem.
    std::atomic<int> next_id_{1};
};

// Messages shared by drivers so errors read the same everywhere.
Error no_domain_error(std::string_view ref);                // NoDomain, by name
Error not_running_error(std::string_view name);             // InvalidState "domain is not running"
Error already_running_error(std::string_view name);         // InvalidState "domain is already running"

}  // namespace vireo::driver
