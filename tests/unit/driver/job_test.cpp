#include <gtest/gtest.h>

#include <atomic>

#include "driver/job.hpp"

#include <fmt/format.h>

using namespace vireo;
using namespace vireo::driver;

TEST(AsyncJob, ReportsProgressWhileRunningAndItsEnd) {
    JobTracker tracker;
    auto job = tracker.begin(JobOperation::VolumeClone, "volume 'a' in pool 'p'");
    auto info = job->info();
    EXPECT_EQ(info.status, JobStatus::Unbounded);
    EXPECT_EQ(info.operation, JobOperation::VolumeClone);
    job->set_phase("copying");
    job->set_data(25, 100);
    info = job->info();
    EXPECT_EQ(info.status, JobStatus::Bounded) << "a volume job whose total is known";
    EXPECT_EQ(info.data_processed, 25u);
    EXPECT_EQ(info.data_remaining, 75u);
    EXPECT_EQ(info.phase, "copying");
    ASSERT_EQ(tracker.list().size(), 1u);
    EXPECT_EQ(tracker.list()[0].id, job->id());
    job->finish({});
    EXPECT_EQ(job->info().status, JobStatus::Completed);
    EXPECT_TRUE(tracker.list().empty());
    EXPECT_FALSE(tracker.find(job->id()).has_value());
}

// libvirt reports its domain jobs (save, migration, ...) as Unbounded even
// when QEMU says how much memory there is; QEMU's remaining count is kept.
TEST(AsyncJob, DomainJobsStayUnbounded) {
    JobTracker tracker;
    auto job = tracker.begin(JobOperation::Save, "domain 'web'");
    job->set_memory(40, 50, 100, 7);
    job->set_data(40, 50, 100);
    auto info = job->info();
    EXPECT_EQ(info.status, JobStatus::Unbounded);
    EXPECT_EQ(info.data_remaining, 50u);
    EXPECT_EQ(info.mem_bps, 7u);
}

TEST(AsyncJob, AbortRunsTheHookOnceAndEndsCancelled) {
    JobTracker tracker;
    auto job = tracker.begin(JobOperation::VolumeClone, "volume 'a'");
    std::atomic<int> hook_calls{0};
    job->set_abort_hook([&] { ++hook_calls; });
    ASSERT_TRUE(tracker.find(job->id()).has_value());
    ASSERT_TRUE((*tracker.find(job->id()))->request_abort().has_value());
    ASSERT_TRUE(job->request_abort().has_value());  // a second abort is harmless
    EXPECT_EQ(hook_calls.load(), 1);
    EXPECT_TRUE(job->abort_requested());
    job->finish(std::unexpected(Error{ErrorCode::OperationFailed, "copy interrupted"}));
    auto info = job->info();
    EXPECT_EQ(info.status, JobStatus::Cancelled);
    EXPECT_EQ(info.error, "operation aborted: job 'volume clone' canceled by client");
    auto late = job->request_abort();
    ASSERT_FALSE(late.has_value());
    EXPECT_EQ(late.error().code, ErrorCode::InvalidState);
}

TEST(AsyncJob, HookInstalledAfterAnAbortRunsAtOnce) {
    JobTracker tracker;
    auto job = tracker.begin(JobOperation::Save, "domain 'web'");
    ASSERT_TRUE(job->request_abort().has_value());
    bool ran = false;
    job->set_abort_hook([&] { ran = true; });
    EXPECT_TRUE(ran);
}

TEST(AsyncJob, FailureKeepsTheError) {
    JobTracker tracker;
    auto job = tracker.begin(JobOperation::Restore, "domain 'web'");
    job->finish(std::unexpected(Error{ErrorCode::Io, "disk full"}));
    job->finish({});  // only the first end counts
    EXPECT_EQ(job->info().status, JobStatus::Failed);
    EXPECT_EQ(job->info().error, "disk full");
    EXPECT_EQ(job_status_name(JobStatus::Failed), "Failed");
    EXPECT_EQ(job_operation_name(JobOperation::MigrationIn), "Incoming migration");
}

TEST(AsyncJob, AbortErrorsAreLibvirtsWords) {
    EXPECT_EQ(job_aborted_error(JobOperation::Save).message, "operation aborted: job 'domain save' canceled by client");
    EXPECT_EQ(job_aborted_error(JobOperation::Save).code, ErrorCode::OperationFailed);
    EXPECT_EQ(job_aborted_error(JobOperation::Restore).message, "operation aborted: job 'start' canceled by client");
    EXPECT_EQ(job_aborted_error(JobOperation::VolumeUpload).message,
              "operation aborted: job 'volume upload' canceled by client");
    // A job aborted that then succeeds anyway still ends Cancelled.
    JobTracker tracker;
    auto job = tracker.begin(JobOperation::Save, "domain 'web'");
    ASSERT_TRUE(job->request_abort());
    job->finish({});
    EXPECT_EQ(job->info().status, JobStatus::Cancelled);
    EXPECT_EQ(job->info().error, "operation aborted: job 'domain save' canceled by client");
}

TEST(JobTracker, AbortsByIdAndSaysWhenNothingRuns) {
    JobTracker tracker;
    auto a = tracker.begin(JobOperation::VolumeWipe, "volume 'a' in pool 'p'");
    auto b = tracker.begin(JobOperation::Save, "domain 'web'");
    EXPECT_LT(a->id(), b->id());
    ASSERT_TRUE(tracker.abort(b->id()));
    EXPECT_TRUE(b->abort_requested());
    EXPECT_FALSE(a->abort_requested());
    b->finish({});
    auto again = tracker.abort(b->id());
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, ErrorCode::NotFound);
    EXPECT_EQ(again.error().message, fmt::format("no job with id {} is running", b->id()));
    auto list = tracker.list();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].id, a->id());
    a.reset();  // a dropped handle is no running job either
    EXPECT_TRUE(tracker.list().empty());
}

TEST(JobTracker, JobIdsAreDecimalNumbers) {
    EXPECT_EQ(parse_job_id("42").value_or(0), 42u);
    for (const char* bad : {"", "0", "-1", "4x", " 4", "99999999999999999999999"}) {
        auto id = parse_job_id(bad);
        ASSERT_FALSE(id) << bad;
        EXPECT_EQ(id.error().code, ErrorCode::InvalidArg);
    }
}

TEST(JobKeys, EveryStatusAndOperationHasAKeyThatReadsBack) {
    for (int s = 0; s <= 5; ++s) {
        const auto status = static_cast<JobStatus>(s);
        EXPECT_EQ(job_status_from_key(job_status_key(status)), status) << s;
    }
    for (int op : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100, 101, 102, 103, 104}) {
        const auto operation = static_cast<JobOperation>(op);
        EXPECT_EQ(job_operation_from_key(job_operation_key(operation)), operation) << op;
        if (op != 0) {
            EXPECT_NE(job_operation_name(operation), "Unknown") << op << " has virsh's word";
        }
    }
    EXPECT_EQ(job_operation_key(JobOperation::VolumeClone), "volume_clone");
    EXPECT_FALSE(job_status_from_key("running"));
}
