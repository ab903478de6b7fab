// The value types of the network half of the Driver API: virtual networks
// (virsh net-*, driver/ops/network.hpp) and host interfaces (virsh iface-*,
// driver/ops/interface.hpp). Served by the network driver (src/netdrv) in
// the system daemon.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "util/uuid.hpp"

namespace vireo::driver {

// One virtual network (virsh net-list / net-info).
struct NetworkSummary {
    std::string name;
    Uuid uuid;
    bool active = false;
    bool persistent = true;
    bool autostart = false;
    std::string bridge;  // the host bridge its guests join (net-info's Bridge)
};

// libvirt's virNetworkEventLifecycleType, same numbering; virsh net-event
// prints them by these names.
enum class NetworkEventType { Defined = 0, Undefined = 1, Started = 2, Stopped = 3 };
std::string_view network_event_name(NetworkEventType t);

struct NetworkEvent {
    NetworkEventType type = NetworkEventType::Started;
    std::string network;  // name
    Uuid uuid;
    std::chrono::system_clock::time_point when = std::chrono::system_clock::now();
};

// One DHCP lease of a network (virsh net-dhcp-leases, libvirt's virNetworkDHCPLease).
struct NetworkDhcpLease {
    std::string iface;             // the network's bridge
    std::int64_t expiry_time = 0;  // seconds since the epoch; 0 = never
    bool ipv6 = false;
    std::string mac;
    std::string iaid;  // IPv6
    std::string ip;    // without prefix
    unsigned prefix = 0;
    std::string hostname;
    std::string client_id;  // IPv4 client id, or the DUID for IPv6
};

// net-update's command and section (libvirt's virNetworkUpdateCommand and
// virNetworkUpdateSection). Every section libvirt names is known so that an
// unsupported one is refused by name, not as a typo.
enum class NetworkUpdateCommand { Modify, Delete, AddLast, AddFirst };
enum class NetworkUpdateSection {
    Bridge,
    Domain,
    Ip,
    IpDhcpHost,
    IpDhcpRange,
    Forward,
    ForwardInterface,
    ForwardPf,
    Portgroup,
    DnsHost,
    DnsTxt,
    DnsSrv,
};
// "ip-dhcp-host", ... as virsh names them.
std::string_view network_update_section_name(NetworkUpdateSection s);

// Which <ip> element of the network an ip-dhcp-* update searches (the
// position among the network's <ip> elements), or any (libvirt's -1).
inline constexpr std::uint64_t kAnyParentIndex = std::numeric_limits<std::uint64_t>::max();

// One host interface (virsh iface-list): a link of the host, or a
// definition the daemon keeps (which need not exist on the host yet).
struct HostInterface {
    std::string name;
    std::string mac;  // "" when unknown
    bool active = false;  // exists and is up (operstate up)
};

}  // namespace vireo::driver
