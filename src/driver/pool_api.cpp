// Names of the pool_api.hpp enums, as virsh prints them.
#include "driver/pool_api.hpp"

namespace vireo::driver {

std::string_view pool_state_name(PoolState s) {
    switch (s) {
    case PoolState::Inactive: return "inactive";
    case PoolState::Building: return "building";
    case PoolState::Running: return "running";
    case PoolState::Degraded: return "degraded";
    case PoolState::Inaccessible: return "inaccessible";
    }
    return "unknown";
}

std::string_view volume_type_name(VolumeType t) {
    switch (t) {
    case VolumeType::File: return "file";
    case VolumeType::Block: return "block";
    case VolumeType::Dir: return "dir";
    case VolumeType::Network: return "network";
    case VolumeType::NetDir: return "netdir";
    case VolumeType::Ploop: return "ploop";
    }
    return "unknown";
}

}  // namespace vireo::driver
