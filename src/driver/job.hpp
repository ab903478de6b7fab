// Async jobs as libvirt has them: long operations (save, restore,
// managedsave, dump, migration, snapshots, block jobs, and vireo's volume
// work: clone, upload, download, wipe) that report a phase and progress while
// they run, can be aborted, and leave a record of how they ended.
//
// An AsyncJob is the handle shared by the thread doing the work and everyone
// who looks at it:
//   - the worker:  set_phase(), set_data()/set_memory() as it goes, checks
//                  abort_requested() between steps (or installs an abort hook
//                  that interrupts a blocking wait, e.g. QMP migrate_cancel),
//                  and ends it with finish(outcome);
//   - queries:     info() (domjobinfo), at any time, never waiting on the worker;
//   - abort:       request_abort() (domjobabort), from any thread.
// Every member is thread-safe. The job's own mutex is a leaf lock (nothing is
// called under it but the abort hook, which must not block).
//
// A JobTracker lists every async job in progress in one driver, with an id,
// so that jobs on objects other than domains (volumes) can be listed and
// aborted too.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"

namespace vireo::driver {

// libvirt's virDomainJobType, same numbering.
enum class JobStatus {
    None = 0,       // no job
    Bounded = 1,    // running, with a known end (total known)
    Unbounded = 2,  // running, end not known in advance
    Completed = 3,
    Failed = 4,
    Cancelled = 5,
};
// "None", "Bounded", "Unbounded", "Completed", "Failed", "Cancelled" (virsh's words).
std::string_view job_status_name(JobStatus s);

// libvirt's virDomainJobOperation, same numbering for libvirt's values;
// vireo's volume operations come after them.
enum class JobOperation {
    Unknown = 0,
    Start = 1,
    Save = 2,
    Restore = 3,
    MigrationIn = 4,
    MigrationOut = 5,
    Snapshot = 6,
    SnapshotRevert = 7,
    Dump = 8,
    Backup = 9,
    SnapshotDelete = 10,
    // vireo's own
    VolumeClone = 100,
    VolumeUpload = 101,
    VolumeDownload = 102,
    VolumeWipe = 103,
    BlockJob = 104,
};
// virsh domjobinfo's "Operation:" words: "Save", "Incoming migration", ...
std::string_view job_operation_name(JobOperation op);

// Stable machine names (the API's JSON, vireo's --json): "none", "bounded",
// "unbounded", "completed", "failed", "cancelled" / "unknown", "start",
// "save", "restore", "migration_in", ..., "volume_clone", "block_job".
// nullopt for a name that is none of them.
std::string_view job_status_key(JobStatus s);
std::optional<JobStatus> job_status_from_key(std::string_view key);
std::string_view job_operation_key(JobOperation op);
std::optional<JobOperation> job_operation_from_key(std::string_view key);
// The job's name in libvirt's abort message: "domain save", "start" (a
// restore is a start), "migration out", ...; vireo's: "volume clone", ...
std::string_view job_abort_name(JobOperation op);
// vireo's own operations on volumes (clone, upload, download, wipe).
bool is_volume_operation(JobOperation op);
// What an aborted job's work fails with, libvirt's words:
// "operation aborted: job 'domain save' canceled by client".
Error job_aborted_error(JobOperation op);

// QEMU's migration statistics beyond the byte counts (save, migration), as
// domjobinfo prints them.
struct MigrationStats {
    std::uint64_t dirty_rate = 0;         // pages/s
    std::uint64_t page_size = 0;          // bytes
    std::uint64_t iteration = 0;          // dirty-sync-count
    std::uint64_t postcopy_requests = 0;
    std::uint64_t constant_pages = 0;     // duplicate (zero) pages
    std::uint64_t normal_pages = 0;
    std::uint64_t normal_bytes = 0;
    // Expected downtime while the job runs; the real (total) downtime once
    // it completed (domjobinfo's "Expected downtime" / "Total downtime").
    std::uint64_t downtime_ms = 0;
    std::uint64_t setup_time_ms = 0;
};

// A point-in-time view of a job (running or ended), what domjobinfo prints.
struct JobInfo {
    std::uint64_t id = 0;
    JobStatus status = JobStatus::None;
    JobOperation operation = JobOperation::Unknown;
    std::string object;  // "domain 'web'", "volume 'web.qcow2' in pool 'default'"
    std::string phase;   // "writing", "pausing", ... (free text, for humans)
    std::chrono::milliseconds elapsed{0};
    // Data: bytes of the object's payload (files, disks, the whole stream).
    std::uint64_t data_total = 0;
    std::uint64_t data_processed = 0;
    std::uint64_t data_remaining = 0;
    // Memory (save, migration): guest RAM.
    std::uint64_t mem_total = 0;
    std::uint64_t mem_processed = 0;
    std::uint64_t mem_remaining = 0;
    std::uint64_t mem_bps = 0;  // bytes per second, 0 when unknown
    std::optional<MigrationStats> migration;  // set by save / migration jobs
    // Set once ended as Failed or Cancelled: why.
    std::string error;
};

class AsyncJob {
public:
    AsyncJob(std::uint64_t id, JobOperation op, std::string object);
    AsyncJob(const AsyncJob&) = delete;
    AsyncJob& operator=(const AsyncJob&) = delete;

    [[nodiscard]] std::uint64_t id() const { return id_; }
    [[nodiscard]] JobOperation operation() const { return operation_; }

    // --- the worker -----------------------------------------------------------
    void set_phase(std::string phase);
    // Bytes done of `total` (0: not known yet), remaining = total - done.
    void set_data(std::uint64_t processed, std::uint64_t total);
    // The same with the remaining bytes as the worker counts them (QEMU's
    // migration: what is left to send is not total - sent).
    void set_data(std::uint64_t processed, std::uint64_t remaining, std::uint64_t total);
    void set_memory(std::uint64_t processed, std::uint64_t remaining, std::uint64_t total, std::uint64_t bps);
    void set_migration(const MigrationStats& stats);
    // Called once, on the aborting thread, when an abort is requested (at
    // once if one already was). Must not block; replaces an earlier hook.
    void set_abort_hook(std::function<void()> hook);
    // End the job: Completed on success; Cancelled when an abort was
    // requested (whatever the outcome says; its error is then
    // job_aborted_error's); else Failed with the error.
    // Idempotent: the first call counts.
    void finish(const Status& outcome);

    // --- anyone -----------------------------------------------------------------
    [[nodiscard]] bool abort_requested() const;
    // Ask the job to stop. InvalidState "no job is active" after it ended.
    Status request_abort();
    [[nodiscard]] bool finished() const;
    // Running jobs are Unbounded, as libvirt reports its domain jobs; a
    // volume job whose total is known is Bounded.
    [[nodiscard]] JobInfo info() const;

private:
    const std::uint64_t id_;
    const JobOperation operation_;
    const std::string object_;
    const std::chrono::steady_clock::time_point started_;
    mutable std::mutex mutex_;
    JobInfo progress_;  // data/memory/phase fields as last reported
    bool abort_ = false;
    std::function<void()> abort_hook_;
    std::optional<JobStatus> ended_;
    std::chrono::milliseconds ended_after_{0};
};

// The async jobs running in one driver.
class JobTracker {
public:
    // A new running job, listed until it finishes (or its handle is dropped).
    std::shared_ptr<AsyncJob> begin(JobOperation op, std::string object);
    // The running jobs, oldest first.
    [[nodiscard]] std::vector<JobInfo> list() const;
    // A running job by id; NotFound "no job with id N is running" otherwise.
    Result<std::shared_ptr<AsyncJob>> find(std::uint64_t id) const;
    // Ask the running job `id` to stop (find + request_abort).
    Status abort(std::uint64_t id);

private:
    mutable std::mutex mutex_;
    std::uint64_t next_id_ = 1;
    std::map<std::uint64_t, std::weak_ptr<AsyncJob>> jobs_;
};

// A job id as users type it ("3"); InvalidArg "invalid job id 'x'" otherwise.
Result<std::uint64_t> parse_job_id(std::string_view text);

}  // namespace vireo::driver
