// Async jobs on the wire (job_wire.hpp): domain.jobinfo's and job.list's
// answers survive the daemon's encoding and the client's decoding, and a
// malformed one names its field.
#include "wire/job_wire.hpp"

#include <gtest/gtest.h>

#include "wire/http.hpp"

namespace vireo::wire {
namespace {

using driver::JobInfo;
using driver::JobOperation;
using driver::JobStatus;
using nlohmann::json;
namespace ops = driver::ops;

JobInfo running_save() {
    JobInfo j;
    j.id = 3;
    j.status = JobStatus::Unbounded;
    j.operation = JobOperation::Save;
    j.object = "domain 'web'";
    j.phase = "writing";
    j.elapsed = std::chrono::milliseconds(429);
    j.data_total = j.mem_total = 537264128;
    j.data_processed = j.mem_processed = 47502131;
    j.data_remaining = j.mem_remaining = 179420791;
    j.mem_bps = 151491969;
    j.migration = driver::MigrationStats{1, 4096, 2, 3, 75955, 11408, 46727168, 300, 4};
    return j;
}

void expect_same(const JobInfo& a, const JobInfo& b) {
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.status, b.status);
    EXPECT_EQ(a.operation, b.operation);
    EXPECT_EQ(a.object, b.object);
    EXPECT_EQ(a.phase, b.phase);
    EXPECT_EQ(a.elapsed, b.elapsed);
    EXPECT_EQ(a.data_total, b.data_total);
    EXPECT_EQ(a.data_processed, b.data_processed);
    EXPECT_EQ(a.data_remaining, b.data_remaining);
    EXPECT_EQ(a.mem_total, b.mem_total);
    EXPECT_EQ(a.mem_processed, b.mem_processed);
    EXPECT_EQ(a.mem_remaining, b.mem_remaining);
    EXPECT_EQ(a.mem_bps, b.mem_bps);
    EXPECT_EQ(a.error, b.error);
    ASSERT_EQ(a.migration.has_value(), b.migration.has_value());
    if (a.migration) {
        EXPECT_EQ(a.migration->dirty_rate, b.migration->dirty_rate);
        EXPECT_EQ(a.migration->page_size, b.migration->page_size);
        EXPECT_EQ(a.migration->iteration, b.migration->iteration);
        EXPECT_EQ(a.migration->postcopy_requests, b.migration->postcopy_requests);
        EXPECT_EQ(a.migration->constant_pages, b.migration->constant_pages);
        EXPECT_EQ(a.migration->normal_pages, b.migration->normal_pages);
        EXPECT_EQ(a.migration->normal_bytes, b.migration->normal_bytes);
        EXPECT_EQ(a.migration->downtime_ms, b.migration->downtime_ms);
        EXPECT_EQ(a.migration->setup_time_ms, b.migration->setup_time_ms);
    }
}

TEST(JobWire, RunningSaveRoundTrips) {
    const JobInfo sent = running_save();
    const json j = to_json(sent);
    EXPECT_EQ(j["status"], "unbounded");
    EXPECT_EQ(j["operation"], "save");
    EXPECT_EQ(j["elapsed_ms"], 429);
    EXPECT_EQ(j["memory_bps"], 151491969);
    EXPECT_EQ(j["migration"]["downtime_ms"], 300);
    auto got = job_info_from_json(json::parse(j.dump()));
    ASSERT_TRUE(got) << got.error().message;
    expect_same(sent, *got);
}

TEST(JobWire, EndedVolumeJobAndNoJobRoundTrip) {
    JobInfo clone;
    clone.id = 12;
    clone.status = JobStatus::Cancelled;
    clone.operation = JobOperation::VolumeClone;
    clone.object = "volume 'b.qcow2' in pool 'default'";
    clone.data_total = 1 << 30;
    clone.data_processed = 1 << 20;
    clone.error = "operation aborted: job 'volume clone' canceled by client";
    auto got = job_info_from_json(to_json(clone));
    ASSERT_TRUE(got);
    expect_same(clone, *got);
    EXPECT_FALSE(to_json(clone).contains("migration"));
    auto none = job_info_from_json(to_json(JobInfo{}));
    ASSERT_TRUE(none);
    EXPECT_EQ(none->status, JobStatus::None);
}

TEST(JobWire, MalformedJobsNameTheField) {
    json j = to_json(running_save());
    j.erase("status");
    EXPECT_NE(job_info_from_json(j).error().message.find("'status'"), std::string::npos);
    j = to_json(running_save());
    j["status"] = "running";
    EXPECT_EQ(job_info_from_json(j).error().code, ErrorCode::Protocol);
    j = to_json(running_save());
    j["id"] = "3";
    EXPECT_NE(job_info_from_json(j).error().message.find("'id'"), std::string::npos);
    j = to_json(running_save());
    j["migration"] = 5;
    EXPECT_EQ(job_info_from_json(j).error().code, ErrorCode::Protocol);
    // An operation a newer daemon knows and this client does not.
    j = to_json(running_save());
    j["operation"] = "teleport";
    EXPECT_EQ(job_info_from_json(j)->operation, JobOperation::Unknown);
}

TEST(JobWire, AnswersOfTheJobOperations) {
    auto info = http::encode_reply<ops::DomainJobInfo>(running_save());
    EXPECT_EQ(info.status, 200u);
    EXPECT_EQ(info.content_type, http::kJson);
    auto back = http::decode_reply<ops::DomainJobInfo>(info.body);
    ASSERT_TRUE(back);
    expect_same(running_save(), *back);

    auto list = http::encode_reply<ops::JobList>(std::vector<JobInfo>{running_save(), JobInfo{}});
    auto jobs = http::decode_reply<ops::JobList>(list.body);
    ASSERT_TRUE(jobs);
    ASSERT_EQ(jobs->size(), 2u);
    EXPECT_EQ((*jobs)[0].id, 3u);

    EXPECT_EQ(http::encode_reply<ops::JobAbort>(Status{}).status, 204u);
    auto req = http::encode_request<ops::JobAbort>({.id = "7"});
    ASSERT_TRUE(req);
    EXPECT_EQ(req->target, "/v1/jobs/7/abort");
    auto jobinfo = http::encode_request<ops::DomainJobInfo>({.ref = "web", .completed = true, .keep_completed = false});
    ASSERT_TRUE(jobinfo);
    EXPECT_EQ(jobinfo->method, "GET");
    EXPECT_EQ(jobinfo->target, "/v1/domains/web/job?completed=1&keep_completed=0");
}

}  // namespace
}  // namespace vireo::wire
