// Job operations: every async job of the connection, whatever it works on
// (domains: save, restore, managedsave; volumes: clone, upload, download,
// wipe), listed and aborted by id. (op.hpp explains the declarations.)
//
// A domain's own job is also reached through the domain (domain.jobinfo,
// domain.abort_job); these are how a volume job, which has no domain, is
// seen and stopped from another client.
#pragma once

#include <string>
#include <tuple>
#include <vector>

#include "driver/job.hpp"
#include "driver/ops/op.hpp"

namespace vireo::driver::ops {

struct JobList {
    static constexpr OpInfo info{.name = "job.list", .method = Method::Get, .path = "/v1/jobs", .kind = Kind::Query,
                                 .lane = Lane::Inline, .read_only_allowed = true,
                                 .summary = "Every running async job of the connection, oldest first (vireo job-list)"};
    struct Request {};
    using Reply = std::vector<JobInfo>;
    static constexpr std::tuple<> fields{};
};

// Urgent, as domain.abort_job: never queued behind the jobs it stops.
struct JobAbort {
    static constexpr OpInfo info{.name = "job.abort", .method = Method::Post, .path = "/v1/jobs/{id}/abort",
                                 .kind = Kind::Job, .lane = Lane::Urgent, .read_only_allowed = false,
                                 .summary = "Abort a running async job by its id (vireo job-abort)"};
    struct Request {
        std::string id{};  // decimal, as job.list gives it
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("id", &Request::id, "the job's id (job.list)")};
};

using JobOps = List<JobList, JobAbort>;

}  // namespace vireo::driver::ops
