// A PoolApi whose every call fails with one stored error: what a driver hands
// out when its storage pools could not be set up (so Driver::pools() never
// fails, and every pool call tells the user why).
#pragma once

#include <memory>

#include "driver/pool_api.hpp"
#include "util/error.hpp"

namespace vireo::driver {

std::unique_ptr<PoolApi> make_unavailable_pools(Error why);

}  // namespace vireo::driver
