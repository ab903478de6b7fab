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
