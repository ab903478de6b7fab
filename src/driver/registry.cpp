#include "driver/registry.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <utility>

#include "util/files.hpp"

namespace vireo::driver {

namespace {

// "Save" -> "save", "Incoming migration" -> "incoming migration".
std::string to_lower_name(std::string_view name) {
    std::string out(name);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// libvirt's words for a job query or abort on an inactive domain (no name).
Error not_running_error_plain() {
    return Error{ErrorCode::InvalidState, "Requested operation is not valid: domain is not running"};
}

}  // namespace

// ---------------------------------------------------------------------------
// DomainFields

const DomainDefinition& DomainFields::current() const {
    if (active() && live) return *live;
    if (config) return *config;
    return *live;  // transient, not yet running: an object always has one
}

const DomainDefinition& DomainFields::inactive() const {
    if (config) return *config;
    return *live;
}

void DomainFields::set_active(DomainDefinition live_def, int new_id, DomainState st, StateReason why) {
    live = std::move(live_def);
    id = new_id;
    state = st;
    reason = std::move(why);
}

void DomainFields::set_inactive(StateReason why) {
    state = DomainState::Shutoff;
    reason = std::move(why);
    id = -1;
    cpu_time_ns = 0;
    // A transient domain keeps its live definition until the registry drops
    // it, so that queries racing with the removal still see a definition.
    if (config) live.reset();
}

// ---------------------------------------------------------------------------
// DomainObject

DomainObject::DomainObject(std::string name, Uuid uuid) : name_(std::move(name)), uuid_(uuid) {}

DomainSnapshot DomainObject::snapshot() const {
    std::lock_guard lk(mutex_);
    return DomainSnapshot{name_, uuid_, fields_, job_};
}

bool DomainObject::removed() const {
    std::lock_guard lk(mutex_);
    return removed_;
}

std::optional<std::string> DomainObject::current_job() const {
    std::lock_guard lk(mutex_);
    if (!job_ && async_job_) return to_lower_name(job_operation_name(async_job_->operation()));
    return job_;
}

std::shared_ptr<AsyncJob> DomainObject::async_job() const {
    std::lock_guard lk(mutex_);
    return async_job_;
}

std::optional<JobInfo> DomainObject::completed_job() const {
    std::lock_guard lk(mutex_);
    return completed_job_;
}

std::optional<JobInfo> DomainObject::take_completed_job() {
    std::lock_guard lk(mutex_);
    return std::exchange(completed_job_, std::nullopt);
}

std::string DomainObject::holder_locked() const {
    const auto now = std::chrono::steady_clock::now();
    if (job_) {
        const std::chrono::duration<double> held = now - job_started_;
        return fmt::format("job '{}' for {:.1f} s", *job_, held.count());
    }
    if (async_job_) {
        auto info = async_job_->info();
        return fmt::format("async job '{}' for {:.1f} s", to_lower_name(job_operation_name(info.operation)),
                           static_cast<double>(info.elapsed.count()) / 1000.0);
    }
    return "nobody";
}

// ---------------------------------------------------------------------------
// Jobs

std::string_view job_type_name(JobType t) {
    switch (t) {
        case JobType::Query: return "query";
        case JobType::Destroy: return "destroy";
        case JobType::Suspend: return "suspend";
        case JobType::Modify: return "modify";
        case JobType::Abort: return "abort";
    }
    return "modify";
}

JobGuard::JobGuard(JobGuard&& o) noexcept : obj_(std::move(o.obj_)) {}

JobGuard& JobGuard::operator=(JobGuard&& o) noexcept {
    if (this != &o) {
        release();
        obj_ = std::move(o.obj_);
    }
    return *this;
}

JobGuard::~JobGuard() { release(); }

void JobGuard::release() {
    if (!obj_) return;
    {
        std::lock_guard lk(obj_->mutex_);
        obj_->job_.reset();
    }
    obj_->job_cv_.notify_all();
    obj_.reset();
}

Result<JobGuard> acquire_job(const std::shared_ptr<DomainObject>& obj, JobType type, std::string_view job,
                             std::chrono::milliseconds timeout) {
    std::unique_lock lk(obj->mutex_);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    // The condition variable releases the short mutex while waiting, so
    // queries keep running while we wait for the job.
    auto free = [&] {
        if (obj->removed_) return true;
        if (obj->job_) return false;
        return !obj->async_job_ || (obj->async_mask_ & job_mask(type)) != 0;
    };
    const bool got = obj->job_cv_.wait_until(lk, deadline, free);
    if (obj->removed_) return std::unexpected(no_domain_error(obj->name_));
    if (!got) return fail(ErrorCode::Busy, "cannot acquire state change lock (held by {})", obj->holder_locked());
    obj->job_ = std::string(job);
    obj->job_type_ = type;
    obj->job_started_ = std::chrono::steady_clock::now();
    return JobGuard(obj);
}

Result<JobGuard> acquire_job(const std::shared_ptr<DomainObject>& obj, std::string_view job,
                             std::chrono::milliseconds timeout) {
    return acquire_job(obj, JobType::Modify, job, timeout);
}

AsyncJobGuard::AsyncJobGuard(AsyncJobGuard&& o) noexcept : obj_(std::move(o.obj_)), job_(std::move(o.job_)) {}

AsyncJobGuard& AsyncJobGuard::operator=(AsyncJobGuard&& o) noexcept {
    if (this != &o) {
        if (obj_) finish(std::unexpected(Error{ErrorCode::Internal, "the job ended without a result"}));
        obj_ = std::move(o.obj_);
        job_ = std::move(o.job_);
    }
    return *this;
}

AsyncJobGuard::~AsyncJobGuard() {
    if (obj_) finish(std::unexpected(Error{ErrorCode::Internal, "the job ended without a result"}));
}

void AsyncJobGuard::finish(const Status& outcome) {
    if (!obj_) return;
    job_->finish(outcome);
    {
        std::lock_guard lk(obj_->mutex_);
        obj_->completed_job_ = job_->info();
        if (obj_->async_job_ == job_) {
            obj_->async_job_.reset();
            obj_->async_mask_ = 0;
        }
    }
    obj_->job_cv_.notify_all();
    obj_.reset();
}

Result<AsyncJobGuard> begin_async_job(const std::shared_ptr<DomainObject>& obj, JobTracker& tracker, JobOperation op,
                                      JobMask allowed, std::chrono::milliseconds timeout) {
    std::unique_lock lk(obj->mutex_);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const bool got =
        obj->job_cv_.wait_until(lk, deadline, [&] { return obj->removed_ || (!obj->job_ && !obj->async_job_); });
    if (obj->removed_) return std::unexpected(no_domain_error(obj->name_));
    if (!got) return fail(ErrorCode::Busy, "cannot acquire state change lock (held by {})", obj->holder_locked());
    auto job = tracker.begin(op, fmt::format("domain '{}'", obj->name_));
    obj->async_job_ = job;
    obj->async_mask_ = allowed;
    return AsyncJobGuard(obj, std::move(job));
}

Result<JobInfo> domain_job_info(const std::shared_ptr<DomainObject>& obj, bool completed, bool keep_completed) {
    if (completed) {
        auto done = keep_completed ? obj->completed_job() : obj->take_completed_job();
        return done.value_or(JobInfo{});
    }
    if (auto job = obj->async_job()) return job->info();
    if (!obj->with([](const DomainFields& f) { return f.active(); }))
        return std::unexpected(not_running_error_plain());
    return JobInfo{};
}

Status abort_domain_job(const std::shared_ptr<DomainObject>& obj) {
    auto guard = acquire_job(obj, JobType::Abort, "abort");
    if (!guard) return std::unexpected(guard.error());
    const Error no_job{ErrorCode::InvalidState, "Requested operation is not valid: no job is active on the domain"};
    if (auto job = obj->async_job()) {
        // It may end between the two: then there is nothing to abort.
        if (!job->request_abort()) return std::unexpected(no_job);
        return {};
    }
    if (!obj->with([](const DomainFields& f) { return f.active(); }))
        return std::unexpected(not_running_error_plain());
    return std::unexpected(no_job);
}

// ---------------------------------------------------------------------------
// Errors

Error no_domain_error(std::string_view ref) {
    return Error{ErrorCode::NoDomain, fmt::format("Domain not found: no domain with matching name '{}'", ref)};
}

Error not_running_error(std::string_view name) {
    return Error{ErrorCode::InvalidState,
                 fmt::format("Requested operation is not valid: domain '{}' is not running", name)};
}

Error already_running_error(std::string_view name) {
    return Error{ErrorCode::InvalidState,
                 fmt::format("Requested operation is not valid: domain '{}' is already running", name)};
}

// ---------------------------------------------------------------------------
// DomainRegistry

std::shared_ptr<DomainObject> DomainRegistry::find_by_name(std::string_view name) const {
    std::lock_guard lk(mutex_);
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
}

std::shared_ptr<DomainObject> DomainRegistry::find_by_uuid(const Uuid& uuid) const {
    std::lock_guard lk(mutex_);
    auto it = by_uuid_.find(uuid.str());
    return it == by_uuid_.end() ? nullptr : it->second;
}

std::shared_ptr<DomainObject> DomainRegistry::find_by_id(int id) const {
    if (id < 1) return nullptr;
    for (const auto& obj : list())
        if (obj->with([&](const DomainFields& f) { return f.active() && f.id == id; })) return obj;
    return nullptr;
}

Result<std::shared_ptr<DomainObject>> DomainRegistry::resolve(std::string_view ref) const {
    if (auto obj = find_by_name(ref)) return obj;
    if (auto uuid = Uuid::parse(ref))
        if (auto obj = find_by_uuid(*uuid)) return obj;
    int id = 0;
    const auto* end = ref.data() + ref.size();
    if (!ref.empty()) {
        auto [ptr, ec] = std::from_chars(ref.data(), end, id);
        if (ec == std::errc{} && ptr == end)
            if (auto obj = find_by_id(id)) return obj;
    }
    return std::unexpected(no_domain_error(ref));
}

std::vector<std::shared_ptr<DomainObject>> DomainRegistry::list() const {
    std::lock_guard lk(mutex_);
    std::vector<std::shared_ptr<DomainObject>> out;
    out.reserve(by_name_.size());
    for (const auto& [name, obj] : by_name_) out.push_back(obj);  // std::map: sorted by name
    return out;
}

std::vector<DomainSnapshot> DomainRegistry::snapshots() const {
    std::vector<DomainSnapshot> out;
    for (const auto& obj : list()) out.push_back(obj->snapshot());
    return out;
}

std::size_t DomainRegistry::size() const {
    std::lock_guard lk(mutex_);
    return by_name_.size();
}

Result<std::shared_ptr<DomainObject>> DomainRegistry::check_identity(std::string_view name,
                                                                     const Uuid& uuid) const {
    std::lock_guard lk(mutex_);
    return find_identity_locked(name, uuid);
}

Result<std::shared_ptr<DomainObject>> DomainRegistry::find_identity_locked(std::string_view name,
                                                                           const Uuid& uuid) const {
    auto by_uuid = by_uuid_.find(uuid.str());
    if (by_uuid != by_uuid_.end()) {
        if (by_uuid->second->name() != name)
            return fail(ErrorCode::Exists, "domain '{}' is already defined with uuid {}", by_uuid->second->name(),
                        uuid.str());
        return by_uuid->second;
    }
    auto by_name = by_name_.find(name);
    if (by_name != by_name_.end())
        return fail(ErrorCode::Exists, "domain '{}' already exists with uuid {}", name,
                    by_name->second->uuid().str());
    return std::shared_ptr<DomainObject>{};
}

std::shared_ptr<DomainObject> DomainRegistry::insert_locked(const std::string& name, const Uuid& uuid) {
    auto obj = std::make_shared<DomainObject>(name, uuid);
    by_name_.emplace(name, obj);
    by_uuid_.emplace(uuid.str(), obj);
    return obj;
}

namespace {

// A stored definition lives as long as its domain, and most are never
// started or edited during a daemon's life: keep its XML (already exact, see
// SharedXml) and the facts a list shows, and let the parsed model (several
// times the size of the XML) be rebuilt from the XML when someone needs it.
void compact_config(DomainDefinition& d) {
    if (d.def.is_lazy() || !d.def) return;
    d.def = DefinitionModel::lazy(d.xml, d.def.facts());
}

// Its name and uuid (from the facts: a lazy model stays unparsed).
Result<DefinitionFacts> check_definition(const DomainDefinition& d) {
    if (!d.def) return fail(ErrorCode::Internal, "domain definition was not parsed");
    DefinitionFacts facts = d.def.facts();
    if (!files::is_safe_name(facts.name))
        return fail(ErrorCode::InvalidArg, "invalid domain name '{}': it is used as a file name", facts.name);
    if (facts.uuid.is_null()) return fail(ErrorCode::InvalidArg, "domain '{}' has no uuid", facts.name);
    return facts;
}

}  // namespace

Result<AddOutcome> DomainRegistry::define(DomainDefinition definition) {
    auto facts = check_definition(definition);
    if (!facts) return std::unexpected(facts.error());
    const std::string name = facts->name;
    const Uuid uuid = facts->uuid;
    compact_config(definition);
    // Checked and inserted under one hold of the mutex, so that two
    // concurrent defines of the same name cannot both insert.
    std::lock_guard lk(mutex_);
    auto found = find_identity_locked(name, uuid);
    if (!found) return std::unexpected(found.error());
    if (!*found) {
        auto obj = insert_locked(name, uuid);
        obj->with([&](DomainFields& f) { f.config = std::move(definition); });
        return AddOutcome{obj, true, false};
    }
    auto obj = *found;
    const bool was_active = obj->with([&](DomainFields& f) {
        f.config = std::move(definition);
        return f.active();
    });
    return AddOutcome{obj, false, was_active};
}

Result<AddOutcome> DomainRegistry::add_transient(DomainDefinition definition) {
    auto facts = check_definition(definition);
    if (!facts) return std::unexpected(facts.error());
    const std::string name = facts->name;
    const Uuid uuid = facts->uuid;
    std::lock_guard lk(mutex_);
    auto found = find_identity_locked(name, uuid);
    if (!found) return std::unexpected(found.error());
    if (!*found) {
        auto obj = insert_locked(name, uuid);
        obj->with([&](DomainFields& f) { f.live = std::move(definition); });
        return AddOutcome{obj, true, false};
    }
    auto obj = *found;
    if (obj->with([](const DomainFields& f) { return f.active(); }))
        return fail(ErrorCode::InvalidState, "Requested operation is not valid: domain '{}' is already active", name);
    return AddOutcome{obj, false, false};
}

Result<UndefineOutcome> DomainRegistry::undefine(const std::shared_ptr<DomainObject>& obj,
                                                 const UndefineFlags& flags) {
    UndefineOutcome out;
    bool now_gone = false;
    {
        std::lock_guard lk(obj->mutex_);
        DomainFields& f = obj->fields_;
        if (!f.persistent())
            return fail(ErrorCode::InvalidState, "Requested operation is not valid: cannot undefine transient domain");
        if (f.managed_save && !flags.managed_save)
            return fail(ErrorCode::InvalidState,
                        "Requested operation is not valid: Refusing to undefine while domain managed save image "
                        "exists");
        out.had_managed_save = f.managed_save;
        f.managed_save = false;
        f.autostart = false;
        if (f.active()) {
            // Keep running as a transient domain; `live` stays.
            f.config.reset();
        } else {
            now_gone = true;
        }
    }
    if (now_gone) {
        remove(obj);
        out.removed = true;
    }
    return out;
}

void DomainRegistry::remove(const std::shared_ptr<DomainObject>& obj) {
    {
        std::lock_guard lk(mutex_);
        if (auto it = by_name_.find(obj->name()); it != by_name_.end() && it->second == obj) by_name_.erase(it);
        if (auto it = by_uuid_.find(obj->uuid().str()); it != by_uuid_.end() && it->second == obj)
            by_uuid_.erase(it);
    }
    {
        std::lock_guard lk(obj->mutex_);
        obj->removed_ = true;
    }
    obj->job_cv_.notify_all();
}

int DomainRegistry::allocate_id() { return next_id_.fetch_add(1); }

void DomainRegistry::set_next_id(int next) { next_id_ = std::max(next, 1); }

int DomainRegistry::next_id() const { return next_id_.load(); }

}  // namespace vireo::driver
