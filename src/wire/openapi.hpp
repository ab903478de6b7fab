// docs/api/openapi.yaml, generated from the operation table (driver/ops)
// and its HTTP binding (http.hpp): every operation's path, method, summary,
// parameters, request body and answer. The overview text and the shared
// schemas (Domain, Pool, Error, ...) are written here once.
//
// `vireod --print-openapi > docs/api/openapi.yaml` regenerates the committed
// file; a unit test fails when the two differ.
#pragma once

#include <string>

namespace vireo::wire {

std::string openapi_yaml();

}  // namespace vireo::wire
