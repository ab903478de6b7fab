// Firewall rules of a running network, in nftables, in a table of vireo's
// own per network ("table inet vireo_net_<name>"), so that creating,
// replacing and removing one network's rules never touches anyone else's
// rules and a restarted daemon finds them by listing tables.
//
// Through libnftables (Debian libnftables-dev, nft's own library): the
// ruleset text is submitted in-process as one batch, which the kernel
// applies as one transaction (all or nothing), and nft's error text comes
// back to us verbatim. Running `nft -f` would do the same with a process and
// a pipe per call.
//
// The rules per forward mode (S = the network's subnets, B = its bridge,
// D = <forward dev>, when given):
//   all modes with a bridge vireo creates, except open:
//     input:  DHCP (67, 547) and DNS (53) from B accepted
//     forward: B to B accepted; anything else in or out of B rejected,
//              after the mode's accepts:
//   nat:   out of B from S (to D) accepted; into B to S only for
//          established/related connections; postrouting masquerade of S to
//          outside S (tcp/udp with the <nat><port> range), or SNAT to the
//          <nat><address> range; multicast and broadcast left alone.
//          IPv6 subnets are routed (masqueraded with <nat ipv6='yes'>).
//   route: S forwarded both ways (via D when given).
//   isolated (no <forward>): only B to B.
//   open, bridge: no rules at all (no table).
// Other tables may still drop what these accept: nftables runs every base
// chain of a hook, and a drop anywhere wins (docs/network.md).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/network.hpp"
#include "util/error.hpp"

namespace vireo::network {

// "vireo_net_" + the network name with bytes outside [A-Za-z0-9.-] as _HH.
std::string firewall_table(std::string_view network_name);
// Inverse of firewall_table; nullopt for a table that is not vireo's.
std::optional<std::string> network_of_table(std::string_view table);

// The commands that (re)create the network's table atomically: create the
// table if missing, delete it, declare it with its chains and rules. Empty
// for modes without rules (open, bridge).
std::string firewall_ruleset(const conf::NetworkDef& def);

// Replace the network's rules in one transaction (nothing half-applied).
Status apply_firewall(const conf::NetworkDef& def);
// Delete exactly the network's table; a missing table is not an error.
Status remove_firewall(std::string_view network_name);
// Names of the networks that have a vireo table (found again after a restart).
Result<std::vector<std::string>> list_firewalls();

// Whether the mode needs the kernel to forward IPv4 / IPv6: nat, route and
// open (routed without rules), for the families the network has addresses
// of; as libvirt, which turns forwarding on for every mode that forwards.
bool needs_ip_forwarding(const conf::NetworkDef& def, bool v6);

// Run nft commands in-process (one batch); returns nft's output.
Result<std::string> nft_run(std::string_view commands);

}  // namespace vireo::network
