// How the storage verbs find the pool or volume a user names, as virsh does
// (implemented in commands_pool.cpp). On failure they print virsh's error
// lines ("error: failed to get pool 'x'" and the reason) and return nullopt.
#pragma once

#include <optional>
#include <string_view>

#include "driver/pool_api.hpp"

namespace vireo::cli {

class Session;

// The connection's pool API, or nullptr (error printed) when not connected.
driver::PoolApi* pool_api(Session& session);

// A pool by name or UUID.
std::optional<driver::PoolSummary> find_pool(Session& session, std::string_view ref);

// A volume named by `vol`: with a pool, its name in that pool (then, as
// virsh, its key or path); without, its key or path in any pool.
// `pool_option` names the option in the "specifying --pool might help" hint.
std::optional<driver::VolumeSummary> find_volume(Session& session, std::string_view vol, std::string_view pool,
                                                 std::string_view pool_option = "pool");

}  // namespace vireo::cli
