// How the network half of the Driver API (driver/network_types.hpp) travels
// between vireod and the RemoteDriver: JSON shapes of networks, their DHCP
// leases and lifecycle events, and host interfaces. docs/api/openapi.yaml
// documents the same for curl users (schemas Network, NetworkLease,
// NetworkEvent, HostInterface).
#pragma once

#include <nlohmann/json.hpp>

#include "driver/network_types.hpp"
#include "util/error.hpp"

namespace vireo::wire {

nlohmann::json to_json(const driver::NetworkSummary& n);
nlohmann::json to_json(const driver::NetworkDhcpLease& l);
nlohmann::json to_json(const driver::NetworkEvent& e);
nlohmann::json to_json(const driver::HostInterface& i);

// Decoders: Protocol errors name the missing or malformed field.
Result<driver::NetworkSummary> network_from_json(const nlohmann::json& j);
Result<driver::NetworkDhcpLease> network_lease_from_json(const nlohmann::json& j);
Result<driver::NetworkEvent> network_event_from_json(const nlohmann::json& j);
Result<driver::HostInterface> host_interface_from_json(const nlohmann::json& j);

}  // namespace vireo::wire
