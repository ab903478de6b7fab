// The narrow link between the domain half and the network half of a
// connection (as storage_links.hpp is for storage), so that the QEMU driver
// never knows the network driver's class:
//
//   NetworkPorts  what a hypervisor driver asks the virtual networks when a
//                 domain's <interface type='network'> is plugged (start,
//                 restore, hotplug) and tells them when it goes (stop,
//                 unplug); the network driver implements it. The port says
//                 which host bridge the domain's tap joins, so the QEMU
//                 driver makes the tap itself and hands it to QEMU as a
//                 file descriptor.
//
// The daemon's driver factory wires the network driver into the QEMU
// driver's config. A connection without networks (a session daemon, the
// test driver) passes none, and a domain with <interface type='network'>
// then fails to start with a message naming the interface.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"

namespace vireo::driver {

// One guest NIC asking to join a virtual network.
struct NetworkPortRequest {
    std::string network;  // <source network='...'>
    std::string domain;   // the domain's name (ports are per domain and MAC)
    std::string mac;      // "52:54:00:..", lower case
};

// Where the NIC goes, decided by the network's forward mode.
struct NetworkPort {
    std::string network;
    std::string bridge;  // the host bridge its tap joins (nat, route, open, isolated, bridge modes)
    unsigned mtu = 0;    // the network's <mtu size>, 0 when it has none
};

// One address a DHCP server of a virtual network leased to a MAC.
struct NetworkLease {
    std::string network;
    std::string mac;
    std::string ip;        // without prefix
    unsigned prefix = 0;   // the subnet's prefix length
    std::string hostname;  // what the client sent, may be empty
    std::int64_t expiry_time = 0;  // seconds since the epoch; 0 = never
};

class NetworkPorts {
public:
    virtual ~NetworkPorts() = default;
    // A port on the active network for this NIC; refused with a message naming
    // the network when it is missing or inactive ("network 'x' is not
    // active"). Plugging the same domain+MAC twice returns the same port.
    virtual Result<NetworkPort> plug(const NetworkPortRequest& request) = 0;
    // The NIC went (domain stopped, NIC unplugged). Unknown ports are ignored.
    virtual void unplug(std::string_view network, std::string_view domain, std::string_view mac) = 0;
    // The current DHCP leases for these MACs on every active network
    // (domifaddr --source lease).
    virtual std::vector<NetworkLease> leases_for(const std::vector<std::string>& macs) = 0;
};

}  // namespace vireo::driver
