// What the network driver asks the host before it defines or starts a
// network: which interface names exist, and whether a network's subnets
// are already used by an address or a route of some interface (libvirt's
// "Network is already in use by interface ..." check). Read-only; acts in
// the calling thread's network namespace like the rest of src/network.
#pragma once

#include <optional>
#include <set>
#include <string>

#include "conf/network.hpp"
#include "util/error.hpp"

namespace vireo::netdrv {

// Names of the host's interfaces (every link, up or down).
Result<std::set<std::string>> host_interface_names();

// The interface whose address or (main table) route overlaps one of `def`'s
// subnets, as "interface 'eth0' (10.0.0.0/24)"; nullopt when none does.
Result<std::optional<std::string>> subnet_in_use(const conf::NetworkDef& def);

}  // namespace vireo::netdrv
