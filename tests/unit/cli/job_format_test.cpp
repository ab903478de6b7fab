#include <gtest/gtest.h>

#include "cli/vireo/job_format.hpp"

using namespace vireo;
using namespace vireo::cli;
using driver::JobInfo;
using driver::JobOperation;
using driver::JobStatus;

constexpr std::uint64_t MiB = 1024 * 1024;

// The block virsh 9.0 printed for a save of a 512 MiB TCG guest against
// libvirtd (captured on this machine), with our figures put in.
TEST(JobFormat, RunningSaveAsVirshPrintsIt) {
    JobInfo info;
    info.status = JobStatus::Unbounded;
    info.operation = JobOperation::Save;
    info.elapsed = std::chrono::milliseconds(429);
    info.data_processed = info.mem_processed = 47502131;  // 45.302 MiB
    info.data_remaining = info.mem_remaining = 179420791;
    info.data_total = info.mem_total = 537264128;  // 512.375 MiB
    info.mem_bps = 151491969;
    info.migration = driver::MigrationStats{0, 4096, 1, 0, 75955, 11408, 46727168, 300, 0};
    EXPECT_EQ(format_job_info(info),
              "Job type:         Unbounded   \n"
              "Operation:        Save        \n"
              "Time elapsed:     429          ms\n"
              "Data processed:   45.302 MiB\n"
              "Data remaining:   171.109 MiB\n"
              "Data total:       512.375 MiB\n"
              "Memory processed: 45.302 MiB\n"
              "Memory remaining: 171.109 MiB\n"
              "Memory total:     512.375 MiB\n"
              "Memory bandwidth: 144.474 MiB/s\n"
              "Dirty rate:       0            pages/s\n"
              "Page size:        4096         bytes\n"
              "Iteration:        1           \n"
              "Postcopy requests: 0           \n"
              "Constant pages:   75955       \n"
              "Normal pages:     11408       \n"
              "Normal data:      44.562 MiB\n"
              "Expected downtime: 300          ms\n"
              "Setup time:       0            ms\n"
              "\n");
}

TEST(JobFormat, NoJobIsOneLineAndABlankOne) {
    EXPECT_EQ(format_job_info(JobInfo{}), "Job type:         None        \n\n");
}

TEST(JobFormat, CancelledJobSaysWhy) {
    JobInfo info;
    info.status = JobStatus::Cancelled;
    info.operation = JobOperation::VolumeClone;
    info.elapsed = std::chrono::milliseconds(1500);
    info.data_processed = 512;
    info.data_total = 2 * MiB;
    info.data_remaining = 2 * MiB - 2048;
    info.error = "operation aborted: job 'volume clone' canceled by client";
    EXPECT_EQ(format_job_info(info),
              "Job type:         Cancelled   \n"
              "Operation:        Volume clone\n"
              "Time elapsed:     1500         ms\n"
              "Data processed:   512.000 B\n"
              "Data remaining:   1.998 MiB\n"
              "Data total:       2.000 MiB\n"
              "Error message:    operation aborted: job 'volume clone' canceled by client\n"
              "\n");
}

TEST(JobFormat, ProgressIsVirshsPercentOfWhatIsDone) {
    JobInfo info;
    info.status = JobStatus::Unbounded;
    info.data_total = 200;
    info.data_remaining = 62;
    EXPECT_EQ(job_percent(info), 69);
    EXPECT_EQ(format_job_progress("Save", job_percent(info)), "\rSave: [ 69 %]");
    EXPECT_EQ(format_job_progress("Save", 100), "\rSave: [100 %]");
    info.data_total = 0;
    EXPECT_EQ(job_percent(info), 0);
    info.status = JobStatus::Completed;
    EXPECT_EQ(job_percent(info), 100);
}

// A completed save as virsh 9.0 printed it (domjobinfo --completed against
// libvirtd): the downtime is the total one, remaining bytes show as 0.
TEST(JobFormat, CompletedSaveSaysTotalDowntime) {
    JobInfo info;
    info.status = JobStatus::Completed;
    info.operation = JobOperation::Save;
    info.elapsed = std::chrono::milliseconds(183);
    info.data_processed = info.mem_processed = 103141963;
    info.data_total = info.mem_total = 537264128;
    info.mem_bps = 641175043;
    info.migration = driver::MigrationStats{0, 4096, 3, 0, 106269, 24899, 101986304, 173, 1};
    EXPECT_EQ(format_job_info(info, true, false),
              "Job type:         Completed   \n"
              "Operation:        Save        \n"
              "Time elapsed:     183          ms\n"
              "Data processed:   98.364 MiB\n"
              "Data remaining:   0.000 B\n"
              "Data total:       512.375 MiB\n"
              "Memory processed: 98.364 MiB\n"
              "Memory remaining: 0.000 B\n"
              "Memory total:     512.375 MiB\n"
              "Memory bandwidth: 611.472 MiB/s\n"
              "Dirty rate:       0            pages/s\n"
              "Page size:        4096         bytes\n"
              "Iteration:        3           \n"
              "Postcopy requests: 0           \n"
              "Constant pages:   106269      \n"
              "Normal pages:     24899       \n"
              "Normal data:      97.262 MiB\n"
              "Total downtime:   173          ms\n"
              "Setup time:       1            ms\n"
              "\n");
}

// Without --anystats virsh shows the figures of running jobs, and of a
// completed one asked for with --completed; of anything else the type only.
TEST(JobFormat, WithoutAnystatsEndedJobsShowTheirTypeOnly) {
    JobInfo cancelled;
    cancelled.status = JobStatus::Cancelled;
    cancelled.operation = JobOperation::Save;
    cancelled.elapsed = std::chrono::milliseconds(2500);
    cancelled.error = "operation aborted: job 'domain save' canceled by client";
    EXPECT_EQ(format_job_info(cancelled, true, false), "Job type:         Cancelled   \n\n");
    EXPECT_EQ(format_job_info(cancelled, true, true),
              "Job type:         Cancelled   \n"
              "Operation:        Save        \n"
              "Time elapsed:     2500         ms\n"
              "Error message:    operation aborted: job 'domain save' canceled by client\n"
              "\n");
    JobInfo done;
    done.status = JobStatus::Completed;
    done.operation = JobOperation::Save;
    EXPECT_EQ(format_job_info(done, false, false), "Job type:         Completed   \n\n");
    JobInfo running;
    running.status = JobStatus::Unbounded;
    running.operation = JobOperation::Restore;
    EXPECT_EQ(format_job_info(running, false, false),
              "Job type:         Unbounded   \nOperation:        Restore     \nTime elapsed:     0            ms\n\n");
    EXPECT_EQ(format_job_info(JobInfo{}, false, false), "Job type:         None        \n\n");
}

// --rawstats as virsh 9.0 printed a running save (names and order of
// libvirt's statistics), and no job.
TEST(JobFormat, RawStatsAreLibvirtsNamesInItsOrder) {
    JobInfo info;
    info.status = JobStatus::Unbounded;
    info.operation = JobOperation::Save;
    info.elapsed = std::chrono::milliseconds(150);
    info.data_processed = info.mem_processed = 77566846;
    info.data_remaining = info.mem_remaining = 146194432;
    info.data_total = info.mem_total = 537264128;
    info.mem_bps = 528626571;
    info.migration = driver::MigrationStats{0, 4096, 1, 0, 76743, 18732, 76726272, 300, 1};
    EXPECT_EQ(format_job_raw(info),
              "Job type: 2\n"
              "\n"
              "operation: 2\n"
              "time_elapsed: 150\n"
              "downtime: 300\n"
              "setup_time: 1\n"
              "data_total: 537264128\n"
              "data_processed: 77566846\n"
              "data_remaining: 146194432\n"
              "memory_total: 537264128\n"
              "memory_processed: 77566846\n"
              "memory_remaining: 146194432\n"
              "memory_bps: 528626571\n"
              "memory_constant: 76743\n"
              "memory_normal: 18732\n"
              "memory_normal_bytes: 76726272\n"
              "memory_dirty_rate: 0\n"
              "memory_iteration: 1\n"
              "memory_postcopy_requests: 0\n"
              "memory_page_size: 4096\n"
              "\n");
    EXPECT_EQ(format_job_raw(JobInfo{}), "Job type: 0\n\n\n");
    JobInfo failed;
    failed.status = JobStatus::Failed;
    failed.operation = JobOperation::VolumeWipe;
    failed.elapsed = std::chrono::milliseconds(7);
    failed.error = "no space";
    EXPECT_EQ(format_job_raw(failed), "Job type: 4\n\noperation: 103\ntime_elapsed: 7\nerrmsg: no space\n\n");
}

TEST(JobFormat, JobListIsAVirshTable) {
    JobInfo save;
    save.id = 3;
    save.status = JobStatus::Unbounded;
    save.operation = JobOperation::Save;
    save.object = "domain 'web'";
    save.elapsed = std::chrono::milliseconds(1234);
    save.data_total = 200;
    save.data_remaining = 50;
    JobInfo clone;
    clone.id = 12;
    clone.status = JobStatus::Unbounded;
    clone.operation = JobOperation::VolumeClone;
    clone.object = "volume 'b.qcow2' in pool 'default'";
    EXPECT_EQ(format_job_list({save, clone}, true),
              " Id   Operation      Progress   Elapsed   Object\n"
              "------------------------------------------------------------------------------\n"
              " 3    Save           75 %       1.2 s     domain 'web'\n"
              " 12   Volume clone   -          0.0 s     volume 'b.qcow2' in pool 'default'\n");
    EXPECT_EQ(format_job_list({}, true), " Id   Operation   Progress   Elapsed   Object\n"
                                         "-----------------------------------------------\n");
}

TEST(JobFormat, JsonIsTheApisJobShape) {
    JobInfo info;
    info.id = 7;
    info.status = JobStatus::Cancelled;
    info.operation = JobOperation::VolumeClone;
    info.object = "volume 'a' in pool 'p'";
    info.elapsed = std::chrono::milliseconds(42);
    info.data_total = 10;
    auto j = job_json(info);
    EXPECT_EQ(j["id"], 7);
    EXPECT_EQ(j["status"], "cancelled");
    EXPECT_EQ(j["operation"], "volume_clone");
    EXPECT_EQ(j["elapsed_ms"], 42);
    EXPECT_EQ(j["data_total"], 10);
    EXPECT_FALSE(j.contains("migration"));
    info.migration = driver::MigrationStats{};
    info.migration->page_size = 4096;
    EXPECT_EQ(job_json(info)["migration"]["page_size"], 4096);
}
