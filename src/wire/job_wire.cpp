#include "wire/job_wire.hpp"

#include <tuple>

#include "wire/wire_fields.hpp"

namespace vireo::wire {

using nlohmann::json;

namespace {

using driver::JobInfo;
using driver::JobOperation;
using driver::JobStatus;
using driver::MigrationStats;
using fields::get;
using fields::missing;
using fields::optional;
using fields::required;

// The plain fields (status, operation, elapsed time and the migration
// statistics, which need a conversion or a level of their own, are handled
// by hand).
const auto kJobFields = std::make_tuple(
    required("id", &JobInfo::id), optional("object", &JobInfo::object), optional("phase", &JobInfo::phase),
    optional("data_total", &JobInfo::data_total), optional("data_processed", &JobInfo::data_processed),
    optional("data_remaining", &JobInfo::data_remaining), optional("memory_total", &JobInfo::mem_total),
    optional("memory_processed", &JobInfo::mem_processed), optional("memory_remaining", &JobInfo::mem_remaining),
    optional("memory_bps", &JobInfo::mem_bps), optional("error", &JobInfo::error));
const auto kMigrationFields = std::make_tuple(
    optional("dirty_rate", &MigrationStats::dirty_rate), optional("page_size", &MigrationStats::page_size),
    optional("iteration", &MigrationStats::iteration),
    optional("postcopy_requests", &MigrationStats::postcopy_requests),
    optional("constant_pages", &MigrationStats::constant_pages),
    optional("normal_pages", &MigrationStats::normal_pages), optional("normal_bytes", &MigrationStats::normal_bytes),
    optional("downtime_ms", &MigrationStats::downtime_ms),
    optional("setup_time_ms", &MigrationStats::setup_time_ms));

}  // namespace

json to_json(const JobInfo& j) {
    json out = fields::to_json(j, kJobFields);
    out["status"] = driver::job_status_key(j.status);
    out["operation"] = driver::job_operation_key(j.operation);
    out["elapsed_ms"] = static_cast<std::uint64_t>(j.elapsed.count());
    if (j.migration) out["migration"] = fields::to_json(*j.migration, kMigrationFields);
    return out;
}

Result<JobInfo> job_info_from_json(const json& j) {
    static constexpr std::string_view what = "job";
    JobInfo out;
    VIREO_TRY(fields::from_json(j, what, kJobFields, out));
    std::string status, operation;
    if (!get(j, "status", status)) return missing(what, "status");
    auto st = driver::job_status_from_key(status);
    if (!st) return missing(what, "status");
    out.status = *st;
    if (get(j, "operation", operation)) out.operation = driver::job_operation_from_key(operation).value_or(JobOperation::Unknown);
    std::uint64_t elapsed = 0;
    if (get(j, "elapsed_ms", elapsed)) out.elapsed = std::chrono::milliseconds(elapsed);
    if (auto m = j.find("migration"); m != j.end()) {
        MigrationStats stats;
        VIREO_TRY(fields::from_json(*m, "job migration statistics", kMigrationFields, stats));
        out.migration = stats;
    }
    return out;
}

}  // namespace vireo::wire
