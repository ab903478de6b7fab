// Output of the job verbs: virsh domjobinfo's block and the progress line of
// save/restore/managedsave --verbose, byte for byte as virsh 9.0 prints them
// (observed against libvirtd: labels padded to 17 columns, words and
// integers to 12, sizes as "%.3f <unit>").
#pragma once

#include <cstdint>
#include <string>

#include "driver/job.hpp"

namespace vireo::cli {

// virsh domjobinfo's block, ending with its blank line. Failed and cancelled
// jobs (vireo keeps them as the completed job, libvirt 9.0 does not) add an
// "Error message:" line.
std::string format_job_info(const driver::JobInfo& info);

// virsh's human size: "45.302 MiB", "512.000 B", "1.500 GiB".
std::string format_job_size(std::uint64_t bytes);

// Percentage a running job is at (0..100), as virsh computes it for
// --verbose: from the data counts, 0 while they are not known.
int job_percent(const driver::JobInfo& info);

// "\rSave: [ 45 %]" (the verb capitalised by the caller).
std::string format_job_progress(std::string_view label, int percent);

}  // namespace vireo::cli
