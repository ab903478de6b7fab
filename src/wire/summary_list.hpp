// The domain list on the wire (GET /v1/domains), written and read without a
// JSON document in between: with 1000 domains the answer is ~270 KB, and
// building (daemon) or parsing into (CLI) a nlohmann::json tree of 14000
// values cost more than everything else `vireo list --all` does.
// The text is exactly what wire::to_json() of each summary, in a JSON array,
// dumps: the same keys, in the same (sorted) order, the same escapes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "driver/driver.hpp"
#include "util/error.hpp"

namespace vireo::wire {

// The JSON array of the summaries.
std::string summaries_to_json(const std::vector<driver::DomainSummary>& list);

// Decode a JSON array of summaries (what GET /v1/domains answers). Unknown
// keys are ignored (newer daemons may add some); a summary without name,
// id, uuid or state, or malformed JSON, is a Protocol error.
Result<std::vector<driver::DomainSummary>> summaries_from_json(std::string_view text);

}  // namespace vireo::wire
