// The virtual network definition: libvirt's <network> XML
// (https://libvirt.org/formatnetwork.html) as a typed C++ model.
//
// Modelled: name, uuid, ipv6='yes', trustGuestRxFilters; <forward> modes
// nat (dev, <nat> address and port ranges, ipv6), route, open, bridge (to an
// existing host bridge), and isolated (no <forward>); <bridge name stp delay
// macTableManager zone>, <mtu>, <mac>, <domain name localOnly>, <dns>
// (enable, forwardPlainNames, forwarder, txt, srv, host), <bandwidth>,
// IPv4/IPv6 <ip> with <tftp>, <dhcp> ranges, static hosts, leases and
// bootp, and <route>. Everything else (portgroup, virtualport, vlan,
// metadata, dnsmasq:options, forward modes passthrough/private/vepa/hostdev)
// is refused as "unsupported configuration" naming the element path and
// line: the parser never drops input silently, so
// format_network_xml(parse_network_xml(x)) is a fixed point.
//
// Life cycle (what the network driver does with a definition):
//   parse_network_xml (parses and validates the document alone)
//   -> check_network_conflicts(def, other networks, host interfaces)
//      (overlapping subnets, bridge name in use)
//   -> assign_network_defaults(def, names in use) (virbrN, MAC)
//   -> store format_network_xml(def).
// parse fills what libvirt's parser fills (a uuid when absent; no nat port
// range: like libvirt it prints <forward mode='nat'/> and the firewall
// masquerades to 1024-65535); assign_network_defaults does what libvirt's
// network driver does at define time.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "conf/network_addr.hpp"
#include "util/error.hpp"
#include "util/uuid.hpp"

namespace vireo::conf {

// <forward mode=...>; None = no <forward> element (an isolated network).
enum class ForwardMode { None, Nat, Route, Open, Bridge };
std::string_view to_string(ForwardMode m);

struct NetworkNat {
    std::optional<IpAddr> address_start, address_end;  // <address start end/> (IPv4)
    unsigned port_start = 0, port_end = 0;             // <port start end/>; 0 = absent (1024-65535 applies)
    std::string ipv6;                                  // <nat ipv6='yes|no'>, "" = absent
};

struct NetworkForward {
    ForwardMode mode = ForwardMode::None;
    std::string dev;                      // <forward dev=...>
    std::vector<std::string> interfaces;  // <interface dev=.../> (libvirt adds dev as the first)
    NetworkNat nat;                       // only for Nat
};

struct NetworkBridge {
    std::string name;               // "virbr0"; may hold a %d template until assign_network_defaults
    bool stp = true;                // libvirt's default: on
    unsigned long delay = 0;        // forward delay, seconds
    std::string mac_table_manager;  // kernel | libvirt | ""
    std::string zone;               // firewalld zone (kept, not acted upon)
};

struct DhcpLease {
    std::uint64_t expiry = 0;  // 0 = infinite
    std::string unit;          // seconds | minutes | hours | "" (minutes)
};

struct DhcpRange {
    IpAddr start, end;
    std::optional<DhcpLease> lease;
};

struct DhcpHost {
    std::string mac;  // IPv4 hosts: normalised lower-case
    std::string id;   // IPv6 hosts: the client's DUID
    std::string name;
    std::optional<IpAddr> ip;
    std::optional<DhcpLease> lease;
};

struct NetworkIp {
    std::string family;  // "ipv4" | "ipv6" | "" (absent: derived from the address)
    IpAddr address;
    std::optional<IpAddr> netmask;  // IPv4 only
    std::optional<unsigned> prefix;
    std::string local_ptr;  // yes | no | ""
    std::string tftp_root;
    bool dhcp = false;  // <dhcp> present
    std::vector<DhcpRange> ranges;
    std::vector<DhcpHost> hosts;
    std::string bootp_file, bootp_server;

    [[nodiscard]] bool is_v6() const { return address.v6; }
    // The prefix length in force: prefix, else the netmask's, else the
    // classful one (IPv4) or 64 (IPv6), as libvirt computes it.
    [[nodiscard]] unsigned prefix_length() const;
};

struct DnsForwarder {
    std::string domain;
    std::optional<IpAddr> addr;
};
struct DnsTxt {
    std::string name, value;
};
struct DnsSrv {
    std::string service, protocol, domain, target;
    std::optional<unsigned> port, priority, weight;
};
struct DnsHost {
    IpAddr ip;
    std::vector<std::string> hostnames;
};

struct NetworkDns {
    std::string enable;               // yes | no | ""
    std::string forward_plain_names;  // yes | no | ""
    std::vector<DnsForwarder> forwarders;
    std::vector<DnsTxt> txts;
    std::vector<DnsSrv> srvs;
    std::vector<DnsHost> hosts;
    [[nodiscard]] bool empty() const {
        return enable.empty() && forward_plain_names.empty() && forwarders.empty() && txts.empty() && srvs.empty() && hosts.empty();
    }
};

// <bandwidth><inbound average= peak= burst= floor=/><outbound .../></bandwidth>
// (average/peak/floor in KiB/s, burst in KiB).
struct BandwidthRate {
    std::optional<unsigned> average, peak, burst, floor;
};
struct Bandwidth {
    std::optional<BandwidthRate> inbound, outbound;
};

// <route address prefix|netmask gateway metric family/>
struct NetworkRoute {
    std::string family;
    IpAddr address;
    std::optional<IpAddr> netmask;
    std::optional<unsigned> prefix;
    IpAddr gateway;
    std::optional<unsigned> metric;
};

struct NetworkDef {
    std::string name;
    Uuid uuid;
    std::string ipv6;                     // <network ipv6='yes'>
    std::string trust_guest_rx_filters;   // yes | no | ""
    NetworkForward forward;
    NetworkBridge bridge;
    std::optional<unsigned> mtu;
    std::optional<MacAddr> mac;
    std::string domain_name;
    std::string domain_local_only;  // yes | no | ""
    NetworkDns dns;
    std::optional<Bandwidth> bandwidth;
    std::vector<NetworkIp> ips;
    std::vector<NetworkRoute> routes;

    // True for the modes where vireo creates the bridge itself (nat, route,
    // open, isolated); false for mode='bridge' (an existing host bridge).
    [[nodiscard]] bool has_own_bridge() const { return forward.mode != ForwardMode::Bridge; }
    // The IPv4 / IPv6 <ip> holding a <dhcp> element, if any.
    [[nodiscard]] const NetworkIp* dhcp_ip(bool v6) const;
};

// Parse and validate a network document (libvirt's net-define input).
// Errors name the line and element path:
//   XML error: line 7: /network/ip/dhcp/range/@end: DHCP range 192.168.1.2 -
//   192.168.2.9 is not within the subnet 192.168.1.0/24 of <ip address='192.168.1.1'>
Result<NetworkDef> parse_network_xml(std::string_view xml);

// libvirt's element order and spelling (net-dumpxml). Stable: formatting a
// parsed definition and parsing it again gives the same document.
std::string format_network_xml(const NetworkDef& def);

// Semantic checks on a definition alone (parse_network_xml runs them);
// problems name the field: "/network/ip[2]/@address: ...".
Status validate_network(const NetworkDef& def);

// What other definitions and the host already use, for the checks and the
// generation that depend on more than one document.
struct NetworkNamesInUse {
    std::set<std::string> bridges;  // bridge names of other networks + host interface names
    std::set<MacAddr> macs;         // MACs of other networks' bridges
};

// Refuse what clashes with other networks (a subnet that overlaps theirs, a
// bridge name another network uses) or with the host (a bridge name that is
// already a host interface, for the modes that create the bridge). `others`
// excludes the definition itself (same uuid). Errors name the field.
Status check_network_conflicts(const NetworkDef& def, const std::vector<NetworkDef>& others,
                               const std::set<std::string>& host_interfaces);

// What libvirt's network driver fills at define time: a bridge name virbrN
// (the first N whose name is not in `in_use`, or the name's %d template),
// and a random 52:54:00 MAC not in `in_use.macs`, for modes that create
// their bridge. Idempotent: given values are kept.
Status assign_network_defaults(NetworkDef& def, const NetworkNamesInUse& in_use);

// The network libvirt installs as "default": NAT on virbr0,
// 192.168.122.1/24, DHCP .2-.254 (libvirt's networks/default.xml).
extern const std::string_view kDefaultNetworkXml;

}  // namespace vireo::conf
