// DHCP leases of a network: the contract between dnsmasq, the lease helper
// (vireo-lease-helper, dnsmasq's dhcp-script) and the daemon.
//
// dnsmasq runs the helper for every lease change as
//     vireo-lease-helper add|old|del <MAC, or DUID for IPv6> <IP> [<hostname>]
// with DNSMASQ_* variables (DNSMASQ_LEASE_EXPIRES, DNSMASQ_TIME_REMAINING,
// DNSMASQ_CLIENT_ID, DNSMASQ_IAID, DNSMASQ_MAC, DNSMASQ_INTERFACE) and the
// environment vireo started dnsmasq with:
//   VIREO_LEASE_STATUS  (required) the network's lease status file
//   VIREO_NETWORK       (required) the network's name
//   VIREO_LEASE_NOTIFY  (optional) an AF_UNIX datagram socket of the daemon
// Other actions (tftp, arp, init) change nothing.
//
// The status file is the truth: a JSON array of the current leases, in
// libvirt's lease status format (keys ip-address, mac-address, hostname,
// client-id, iaid, expiry-time, interface), replaced atomically (temp file,
// rename) under an flock of "<status>.lock", expired leases dropped. The
// daemon reads it for net-dhcp-leases with read_leases(); it needs no
// message to be right, so after a restart it reads the file again.
// The datagram is a wake-up only: one JSON object per change,
//   {"network":"default","action":"add","ip-address":"...","mac-address":"...","hostname":"..."}
// sent without waiting; if the daemon is not listening it is lost, by design.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace vireo::network {

inline constexpr const char* kLeaseStatusEnv = "VIREO_LEASE_STATUS";
inline constexpr const char* kLeaseNetworkEnv = "VIREO_NETWORK";
inline constexpr const char* kLeaseNotifyEnv = "VIREO_LEASE_NOTIFY";

struct Lease {
    std::string ip;
    std::string mac;        // IPv4, or DNSMASQ_MAC for IPv6 when known
    std::string hostname;
    std::string client_id;  // IPv4 client-id, or the DUID for IPv6
    std::string iaid;       // IPv6
    std::string interface;  // the bridge the request came in on
    std::int64_t expiry_time = 0;  // seconds since the epoch; 0 = never
};

struct LeaseEvent {
    std::string action;  // add | old | del
    Lease lease;
};

// The leases in a status file; a missing file is no leases.
Result<std::vector<Lease>> read_leases(const std::filesystem::path& status);

// Apply one event to the status file (locked, atomic); leases expired at
// `now` are dropped.
Status apply_lease_event(const std::filesystem::path& status, const LeaseEvent& event, std::int64_t now);

// The event dnsmasq describes with `args` (action, MAC/DUID, IP, [hostname])
// and the DNSMASQ_* variables read through `env`; nullopt for an action
// that changes no lease.
using EnvLookup = const char* (*)(const char*);
Result<std::optional<LeaseEvent>> lease_event_from_dnsmasq(const std::vector<std::string>& args, EnvLookup env, std::int64_t now);

// One JSON line describing the event (the notification datagram).
std::string lease_event_json(const std::string& network, const LeaseEvent& event);

}  // namespace vireo::network
