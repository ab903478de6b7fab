#include "driver/network_types.hpp"

#include "driver/ops/network.hpp"

namespace vireo::driver {

std::string_view network_event_name(NetworkEventType t) {
    switch (t) {
        case NetworkEventType::Defined: return "Defined";
        case NetworkEventType::Undefined: return "Undefined";
        case NetworkEventType::Started: return "Started";
        case NetworkEventType::Stopped: return "Stopped";
    }
    return "Unknown";
}

std::string_view network_update_section_name(NetworkUpdateSection s) {
    for (const auto& [v, name] : ops::EnumNames<NetworkUpdateSection>::values)
        if (v == s) return name;
    return "unknown";
}

}  // namespace vireo::driver
