// Text forms of the network verbs (net-* / iface-*), kept apart from the
// verbs so that they can be tested on their own: virsh 9.0's net-list,
// net-info, net-dhcp-leases and iface-list layouts, net-event's lines, and
// the --json forms (vireo's own, see docs/cli.md).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "driver/network_types.hpp"

namespace vireo::cli {

// Which networks net-list shows (virsh's flags).
struct NetworkListFilter {
    bool active = true;
    bool inactive = false;
    bool persistent = false, transient = false;    // neither: both
    bool autostart = false, no_autostart = false;  // neither: both
};

// The networks matching `filter`, sorted by name.
std::vector<driver::NetworkSummary> select_networks(std::vector<driver::NetworkSummary> all, const NetworkListFilter& filter);

// net-list's table (Name State Autostart Persistent), rows only with
// !with_header (-q); without the trailing blank line.
std::string format_network_table(const std::vector<driver::NetworkSummary>& nets, bool with_header);
// net-info's block without the trailing blank line.
std::string format_network_info(const driver::NetworkSummary& n);
// net-dhcp-leases' table (Expiry Time, MAC address, Protocol, IP address,
// Hostname, Client ID or DUID), sorted by MAC as virsh sorts it; expiry
// times in local time.
std::string format_lease_table(std::vector<driver::NetworkDhcpLease> leases, bool with_header);
// "event 'lifecycle' for network default: Started", optionally prefixed by
// "2026-11-24 10:00:00.123+0000: ".
std::string format_network_event(const driver::NetworkEvent& e, bool timestamp);
// iface-list's table (Name State MAC Address).
std::string format_interface_table(const std::vector<driver::HostInterface>& ifaces, bool with_header);

// net-update's success line: what was changed, as virsh words it.
std::string network_update_outcome(const std::string& network, bool live, bool config, bool active);

nlohmann::json network_json(const driver::NetworkSummary& n);
nlohmann::json lease_json(const driver::NetworkDhcpLease& l);
nlohmann::json host_interface_json(const driver::HostInterface& i);

}  // namespace vireo::cli
