// How async jobs (driver/job.hpp's JobInfo: domjobinfo, job.list) travel
// between vireod and the RemoteDriver. docs/api/openapi.yaml documents the
// same shape (schema Job) for curl users:
//   {"id": 3, "status": "unbounded", "operation": "save",
//    "object": "domain 'web'", "phase": "writing", "elapsed_ms": 429,
//    "data_total": .., "data_processed": .., "data_remaining": ..,
//    "memory_total": .., "memory_processed": .., "memory_remaining": ..,
//    "memory_bps": .., "migration": {...}, "error": ""}
// "migration" is absent for jobs that are no migration (volume jobs);
// status and operation are driver/job.hpp's keys.
#pragma once

#include <nlohmann/json.hpp>

#include "driver/job.hpp"
#include "util/error.hpp"

namespace vireo::wire {

nlohmann::json to_json(const driver::JobInfo& j);
// Protocol error naming the field that is missing or malformed. An
// operation this side does not know reads as "unknown".
Result<driver::JobInfo> job_info_from_json(const nlohmann::json& j);

}  // namespace vireo::wire
