#include <gtest/gtest.h>

#include <atomic>

#include "driver/job.hpp"

using namespace vireo;
using namespace vireo::driver;

TEST(AsyncJob, ReportsProgressWhileRunningAndItsEnd) {
    JobTracker tracker;
    auto job = tracker.begin(JobOperation::Save, "domain 'web'");
    auto info = job->info();
    EXPECT_EQ(info.status, JobStatus::Unbounded);
    EXPECT_EQ(info.operation, JobOperation::Save);
    job->set_phase("writing");
    job->set_data(25, 100);
    info = job->info();
    EXPECT_EQ(info.status, JobStatus::Bounded);
    EXPECT_EQ(info.data_processed, 25u);
    EXPECT_EQ(info.data_remaining, 75u);
    EXPECT_EQ(info.phase, "writing");
    ASSERT_EQ(tracker.list().size(), 1u);
    EXPECT_EQ(tracker.list()[0].id, job->id());
    job->finish({});
    EXPECT_EQ(job->info().status, JobStatus::Completed);
    EXPECT_TRUE(tracker.list().empty());
    EXPECT_FALSE(tracker.find(job->id()).has_value());
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
    EXPECT_EQ(info.error, "copy interrupted");
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
