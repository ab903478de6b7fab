// The storage routes of vireod's HTTP API (/v1/pools..., /v1/volumes/...):
// every driver::PoolApi call, REST-style like the domain routes (JSON
// bodies, XML documents as application/xml, errors as code + message).
// Volume uploads/downloads are WebSocket streams (daemon/volume_stream.hpp).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "daemon/api.hpp"
#include "driver/pool_api.hpp"

namespace vireo::daemon {

using QueryMap = std::map<std::string, std::string, std::less<>>;

// True for the paths of this module: "pools", "pools:create", "volumes".
bool is_pool_route(const std::vector<std::string>& segments);
// Run one storage route (segments after /v1, decoded).
ApiResponse pool_route(driver::PoolApi& pools, const std::vector<std::string>& segments, const QueryMap& query,
                       const ApiRequest& req);
// GET /v1/pools/{pool}/volumes/{vol}/download|upload: the stream routes.
// Sets info.kind = VolumeStream (upload is mutating); false for other paths.
bool classify_volume_stream(const std::vector<std::string>& segments, RouteInfo& info);

}  // namespace vireo::daemon
