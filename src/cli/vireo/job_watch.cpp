#include "cli/vireo/job_watch.hpp"

#include <cstdio>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "cli/vireo/job_format.hpp"
#include "cli/vireo/session.hpp"

namespace vireo::cli {

namespace {

bool running(const driver::JobInfo& j) {
    return j.status == driver::JobStatus::Bounded || j.status == driver::JobStatus::Unbounded;
}

// One progress line on stderr, after whatever stdout holds (as virsh).
void print_progress(std::string_view label, int percent) {
    std::fflush(stdout);
    fmt::print(stderr, "{}", format_job_progress(label, percent));
    std::fflush(stderr);
}

}  // namespace

JobWatch::JobWatch(Session& session, std::string label, Query query)
    : label_(std::move(label)), query_(std::move(query)), side_(session.side_conn()) {
    if (side_ && query_) thread_ = std::thread([this] { run(); });
}

JobWatch::~JobWatch() { finish(false); }

void JobWatch::finish(bool succeeded) {
    {
        std::lock_guard lk(mutex_);
        if (stop_) return;
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (succeeded) print_progress(label_, 100);
}

void JobWatch::run() {
    std::unique_lock lk(mutex_);
    for (;;) {
        if (cv_.wait_for(lk, kInterval, [&] { return stop_; })) return;
        lk.unlock();
        auto info = query_(*side_);
        lk.lock();
        if (stop_) return;  // the call is over: its last line is finish()'s
        // Errors (the domain gone at the end of a save, ...) print nothing.
        if (info && running(*info) && (info->data_total > 0 || info->mem_total > 0))
            print_progress(label_, job_percent(*info));
    }
}

JobWatch::Query domain_job_query(std::string domain) {
    return [domain = std::move(domain)](driver::Driver& d) {
        return d.call<driver::ops::DomainJobInfo>({.ref = domain});
    };
}

JobWatch::Query new_job_query(driver::Driver& conn, driver::JobOperation op) {
    // The ids of the jobs of this kind already running are not ours.
    auto before = std::make_shared<std::set<std::uint64_t>>();
    if (auto jobs = conn.call<driver::ops::JobList>({}))
        for (const auto& j : *jobs)
            if (j.operation == op) before->insert(j.id);
    return [before, op](driver::Driver& d) -> Result<driver::JobInfo> {
        auto jobs = d.call<driver::ops::JobList>({});
        if (!jobs) return std::unexpected(jobs.error());
        for (const auto& j : *jobs)
            if (j.operation == op && !before->contains(j.id)) return j;
        return driver::JobInfo{};
    };
}

}  // namespace vireo::cli
