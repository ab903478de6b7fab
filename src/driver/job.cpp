#include "driver/job.hpp"

#include <array>
#include <charconv>
#include <utility>

#include <fmt/format.h>

namespace vireo::driver {

std::string_view job_status_name(JobStatus s) {
    switch (s) {
        case JobStatus::None: return "None";
        case JobStatus::Bounded: return "Bounded";
        case JobStatus::Unbounded: return "Unbounded";
        case JobStatus::Completed: return "Completed";
        case JobStatus::Failed: return "Failed";
        case JobStatus::Cancelled: return "Cancelled";
    }
    return "None";
}

std::string_view job_operation_name(JobOperation op) {
    switch (op) {
        case JobOperation::Unknown: return "Unknown";
        case JobOperation::Start: return "Start";
        case JobOperation::Save: return "Save";
        case JobOperation::Restore: return "Restore";
        case JobOperation::MigrationIn: return "Incoming migration";
        case JobOperation::MigrationOut: return "Outgoing migration";
        case JobOperation::Snapshot: return "Snapshot";
        case JobOperation::SnapshotRevert: return "Snapshot revert";
        case JobOperation::Dump: return "Dump";
        case JobOperation::Backup: return "Backup";
        case JobOperation::SnapshotDelete: return "Snapshot delete";
        case JobOperation::VolumeClone: return "Volume clone";
        case JobOperation::VolumeUpload: return "Volume upload";
        case JobOperation::VolumeDownload: return "Volume download";
        case JobOperation::VolumeWipe: return "Volume wipe";
        case JobOperation::BlockJob: return "Block job";
    }
    return "Unknown";
}

namespace {

constexpr std::array<std::pair<JobStatus, std::string_view>, 6> kStatusKeys{{
    {JobStatus::None, "none"},
    {JobStatus::Bounded, "bounded"},
    {JobStatus::Unbounded, "unbounded"},
    {JobStatus::Completed, "completed"},
    {JobStatus::Failed, "failed"},
    {JobStatus::Cancelled, "cancelled"},
}};

constexpr std::array<std::pair<JobOperation, std::string_view>, 16> kOperationKeys{{
    {JobOperation::Unknown, "unknown"},
    {JobOperation::Start, "start"},
    {JobOperation::Save, "save"},
    {JobOperation::Restore, "restore"},
    {JobOperation::MigrationIn, "migration_in"},
    {JobOperation::MigrationOut, "migration_out"},
    {JobOperation::Snapshot, "snapshot"},
    {JobOperation::SnapshotRevert, "snapshot_revert"},
    {JobOperation::Dump, "dump"},
    {JobOperation::Backup, "backup"},
    {JobOperation::SnapshotDelete, "snapshot_delete"},
    {JobOperation::VolumeClone, "volume_clone"},
    {JobOperation::VolumeUpload, "volume_upload"},
    {JobOperation::VolumeDownload, "volume_download"},
    {JobOperation::VolumeWipe, "volume_wipe"},
    {JobOperation::BlockJob, "block_job"},
}};

template <class E, std::size_t N>
std::string_view key_of(const std::array<std::pair<E, std::string_view>, N>& table, E value) {
    for (const auto& [v, k] : table)
        if (v == value) return k;
    return table.front().second;
}

template <class E, std::size_t N>
std::optional<E> value_of(const std::array<std::pair<E, std::string_view>, N>& table, std::string_view key) {
    for (const auto& [v, k] : table)
        if (k == key) return v;
    return std::nullopt;
}

}  // namespace

std::string_view job_status_key(JobStatus s) { return key_of(kStatusKeys, s); }
std::optional<JobStatus> job_status_from_key(std::string_view key) { return value_of(kStatusKeys, key); }
std::string_view job_operation_key(JobOperation op) { return key_of(kOperationKeys, op); }
std::optional<JobOperation> job_operation_from_key(std::string_view key) { return value_of(kOperationKeys, key); }

std::string_view job_abort_name(JobOperation op) {
    switch (op) {
        case JobOperation::Unknown: return "undefined";
        case JobOperation::Start:
        case JobOperation::Restore: return "start";
        case JobOperation::Save: return "domain save";
        case JobOperation::MigrationIn: return "migration in";
        case JobOperation::MigrationOut: return "migration out";
        case JobOperation::Snapshot:
        case JobOperation::SnapshotRevert:
        case JobOperation::SnapshotDelete: return "snapshot";
        case JobOperation::Dump: return "domain core dump";
        case JobOperation::Backup: return "backup";
        case JobOperation::VolumeClone: return "volume clone";
        case JobOperation::VolumeUpload: return "volume upload";
        case JobOperation::VolumeDownload: return "volume download";
        case JobOperation::VolumeWipe: return "volume wipe";
        case JobOperation::BlockJob: return "block job";
    }
    return "undefined";
}

bool is_volume_operation(JobOperation op) {
    return op == JobOperation::VolumeClone || op == JobOperation::VolumeUpload ||
           op == JobOperation::VolumeDownload || op == JobOperation::VolumeWipe;
}

Error job_aborted_error(JobOperation op) {
    return Error{ErrorCode::OperationFailed,
                 fmt::format("operation aborted: job '{}' canceled by client", job_abort_name(op))};
}

Result<std::uint64_t> parse_job_id(std::string_view text) {
    std::uint64_t id = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || id == 0)
        return fail(ErrorCode::InvalidArg, "invalid job id '{}' (job-list shows the ids of running jobs)", text);
    return id;
}

AsyncJob::AsyncJob(std::uint64_t id, JobOperation op, std::string object)
    : id_(id), operation_(op), object_(std::move(object)), started_(std::chrono::steady_clock::now()) {}

void AsyncJob::set_phase(std::string phase) {
    std::lock_guard lk(mutex_);
    progress_.phase = std::move(phase);
}

void AsyncJob::set_data(std::uint64_t processed, std::uint64_t total) {
    std::lock_guard lk(mutex_);
    progress_.data_processed = processed;
    progress_.data_total = total;
    progress_.data_remaining = total > processed ? total - processed : 0;
}

void AsyncJob::set_data(std::uint64_t processed, std::uint64_t remaining, std::uint64_t total) {
    std::lock_guard lk(mutex_);
    progress_.data_processed = processed;
    progress_.data_remaining = remaining;
    progress_.data_total = total;
}

void AsyncJob::set_memory(std::uint64_t processed, std::uint64_t remaining, std::uint64_t total, std::uint64_t bps) {
    std::lock_guard lk(mutex_);
    progress_.mem_processed = processed;
    progress_.mem_remaining = remaining;
    progress_.mem_total = total;
    progress_.mem_bps = bps;
}

void AsyncJob::set_migration(const MigrationStats& stats) {
    std::lock_guard lk(mutex_);
    progress_.migration = stats;
}

void AsyncJob::set_abort_hook(std::function<void()> hook) {
    std::unique_lock lk(mutex_);
    if (ended_) return;
    if (abort_) {
        lk.unlock();
        if (hook) hook();
        return;
    }
    abort_hook_ = std::move(hook);
}

void AsyncJob::finish(const Status& outcome) {
    std::lock_guard lk(mutex_);
    if (ended_) return;
    ended_after_ = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
    if (abort_) {
        ended_ = JobStatus::Cancelled;
        progress_.error = job_aborted_error(operation_).message;
    } else if (outcome) {
        ended_ = JobStatus::Completed;
    } else {
        ended_ = JobStatus::Failed;
        progress_.error = outcome.error().full_message();
    }
    abort_hook_ = nullptr;
}

bool AsyncJob::abort_requested() const {
    std::lock_guard lk(mutex_);
    return abort_;
}

Status AsyncJob::request_abort() {
    std::function<void()> hook;
    {
        std::lock_guard lk(mutex_);
        if (ended_) return fail(ErrorCode::InvalidState, "Requested operation is not valid: no job is active");
        if (abort_) return {};
        abort_ = true;
        hook = std::move(abort_hook_);
        abort_hook_ = nullptr;
    }
    if (hook) hook();
    return {};
}

bool AsyncJob::finished() const {
    std::lock_guard lk(mutex_);
    return ended_.has_value();
}

JobInfo AsyncJob::info() const {
    std::lock_guard lk(mutex_);
    JobInfo out = progress_;
    out.id = id_;
    out.operation = operation_;
    out.object = object_;
    if (ended_) {
        out.status = *ended_;
        out.elapsed = ended_after_;
    } else {
        out.status = is_volume_operation(operation_) && progress_.data_total > 0 ? JobStatus::Bounded
                                                                                   : JobStatus::Unbounded;
        out.elapsed =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
    }
    return out;
}

std::shared_ptr<AsyncJob> JobTracker::begin(JobOperation op, std::string object) {
    std::lock_guard lk(mutex_);
    // Drop the entries of jobs that ended, so the map stays as small as the
    // set of running jobs.
    std::erase_if(jobs_, [](const auto& kv) {
        auto j = kv.second.lock();
        return !j || j->finished();
    });
    auto job = std::make_shared<AsyncJob>(next_id_++, op, std::move(object));
    jobs_.emplace(job->id(), job);
    return job;
}

std::vector<JobInfo> JobTracker::list() const {
    std::vector<JobInfo> out;
    std::lock_guard lk(mutex_);
    for (const auto& [id, weak] : jobs_)
        if (auto j = weak.lock(); j && !j->finished()) out.push_back(j->info());
    return out;
}

Result<std::shared_ptr<AsyncJob>> JobTracker::find(std::uint64_t id) const {
    std::lock_guard lk(mutex_);
    auto it = jobs_.find(id);
    if (it != jobs_.end())
        if (auto j = it->second.lock(); j && !j->finished()) return j;
    return fail(ErrorCode::NotFound, "no job with id {} is running", id);
}

Status JobTracker::abort(std::uint64_t id) {
    auto job = find(id);
    if (!job) return std::unexpected(job.error());
    auto st = (*job)->request_abort();
    // It ended between the two: it is no longer running.
    if (!st) return fail(ErrorCode::NotFound, "no job with id {} is running", id);
    return {};
}

}  // namespace vireo::driver
