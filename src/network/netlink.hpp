// Host network plumbing over rtnetlink: bridges, veth pairs, macvtap, VLAN
// and bond devices, link state, addresses, ports, and link queries.
//
// Built on libmnl (Debian libmnl-dev): it does the message framing,
// attribute nesting, validation and ACK/error handling, and is already on
// every host vireo runs on (nftables depends on it), while every request
// stays explicit here. libnl-route was the alternative; its object caches
// and refcounting model are a poor fit for one-shot requests, and its
// errors lose the kernel's errno detail we put in messages.
//
// Every call opens its own NETLINK_ROUTE socket, so it acts in the network
// namespace of the calling thread (tests enter a namespace with setns()).
// Errors are values naming the interface: "cannot create bridge 'virbr0':
// File exists".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/network_addr.hpp"
#include "util/error.hpp"

namespace vireo::network {

using conf::IpAddr;
using conf::MacAddr;

struct LinkStats {
    std::uint64_t rx_bytes = 0, rx_packets = 0, rx_errors = 0, rx_dropped = 0;
    std::uint64_t tx_bytes = 0, tx_packets = 0, tx_errors = 0, tx_dropped = 0;
};

struct LinkInfo {
    int index = 0;
    std::string name;
    std::string kind;  // "bridge", "veth", "tun", "macvtap", "vlan", "bond", "" (physical/loopback)
    unsigned mtu = 0;
    std::optional<MacAddr> mac;
    bool up = false;        // administratively up (IFF_UP)
    bool running = false;   // carrier (IFF_RUNNING)
    int master = 0;         // ifindex of the bridge/bond it is enslaved to, 0 = none
    LinkStats stats;
};

struct AddressInfo {
    int index = 0;
    IpAddr address;
    unsigned prefix = 0;
};

// One entry of the neighbour (ARP / NDP) table.
struct NeighbourInfo {
    int index = 0;  // the interface it was seen on
    IpAddr address;
    MacAddr mac;
};

struct BridgeOptions {
    bool stp = true;
    unsigned long delay_seconds = 0;
    std::optional<unsigned> mtu;
    std::optional<MacAddr> mac;
};

// macvtap/macvlan modes as libvirt's <source mode=...>.
enum class MacvtapMode { Vepa, Bridge, Private, Passthru };

// Queries
Result<std::vector<LinkInfo>> list_links();
// nullopt when no such interface.
Result<std::optional<LinkInfo>> find_link(std::string_view name);
Result<std::vector<AddressInfo>> list_addresses(std::string_view name = {});  // all interfaces when empty
// The neighbour table's entries that have a link-layer address and are not
// failed (what `ip neigh` shows as REACHABLE, STALE, DELAY, PROBE or
// PERMANENT): domifaddr --source arp.
Result<std::vector<NeighbourInfo>> list_neighbours();

// Devices
Status create_bridge(std::string_view name, const BridgeOptions& options);
Status create_veth(std::string_view name, std::string_view peer);
Status create_macvtap(std::string_view name, std::string_view lower, MacvtapMode mode, const std::optional<MacAddr>& mac);
Status create_vlan(std::string_view name, std::string_view lower, unsigned tag);
Status create_bond(std::string_view name, std::string_view mode, std::optional<unsigned> miimon_ms);
Status delete_link(std::string_view name);

// Link settings
Status set_link_up(std::string_view name, bool up);
Status set_mtu(std::string_view name, unsigned mtu);
Status set_mac(std::string_view name, const MacAddr& mac);
// Enslave `port` to the bridge or bond `master`; release with an empty master.
Status set_master(std::string_view port, std::string_view master);
// Move a link into the network namespace open at `netns_fd` (/run/netns/x).
Status move_to_netns(std::string_view name, int netns_fd);

// Addresses. IPv6 addresses on bridges vireo owns skip duplicate address
// detection (nodad) so dnsmasq can bind them at once.
Status add_address(std::string_view name, const IpAddr& address, unsigned prefix, bool nodad = false);
Status remove_address(std::string_view name, const IpAddr& address, unsigned prefix);

// IP forwarding of the calling thread's namespace
// (/proc/sys/net/ipv4/ip_forward, /proc/sys/net/ipv6/conf/all/forwarding).
Result<bool> ip_forwarding(bool v6);
Status set_ip_forwarding(bool v6, bool on);

}  // namespace vireo::network
