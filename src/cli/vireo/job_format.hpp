// Output of the job verbs: virsh domjobinfo's block and the progress line of
// save/restore/managedsave --verbose, byte for byte as virsh 9.0 prints them
// (observed against libvirtd: labels padded to 17 columns, words and
// integers to 12, sizes as "%.3f <unit>").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "driver/job.hpp"

namespace vireo::cli {

// virsh domjobinfo's block, ending with its blank line. Failed and cancelled
// jobs (vireo keeps them as the completed job, libvirt 9.0 does not) add an
// "Error message:" line. A completed job's downtime is its "Total
// downtime", a running one's the "Expected downtime".
std::string format_job_info(const driver::JobInfo& info);

// What domjobinfo prints without --anystats: the whole block for a running
// job, and for a completed one asked with --completed; only the "Job type:"
// line (and the blank one) for anything else (none, failed, cancelled).
std::string format_job_info(const driver::JobInfo& info, bool completed_asked, bool anystats);

// domjobinfo --rawstats: "Job type: 2\n\n", then libvirt's statistics one
// "name: value" line each (operation, time_elapsed, downtime, data_total,
// memory_bps, ..., errmsg), then a blank line.
std::string format_job_raw(const driver::JobInfo& info);

// vireo job-list's table: Id, Operation, Progress, Elapsed, Object (without
// the header with -q), and the caller's blank line.
std::string format_job_list(const std::vector<driver::JobInfo>& jobs, bool with_header);

// --json of domjobinfo and job-list: the API's Job shape (docs/api/openapi.yaml).
nlohmann::json job_json(const driver::JobInfo& info);

// virsh's human size: "45.302 MiB", "512.000 B", "1.500 GiB".
std::string format_job_size(std::uint64_t bytes);

// Percentage a running job is at (0..100), as virsh computes it for
// --verbose: from the data counts, 0 while they are not known.
int job_percent(const driver::JobInfo& info);

// "\rSave: [ 45 %]" (the verb capitalised by the caller).
std::string format_job_progress(std::string_view label, int percent);

}  // namespace vireo::cli
