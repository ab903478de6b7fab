// The host side of one running network, composed from the pieces: what the
// network driver calls for net-start, net-destroy and after a restart.
//
// start_host_network, in libvirt's order: create the bridge (MAC, MTU, STP,
// delay), add its addresses, set it up, turn IP forwarding on where the
// mode needs it, apply the firewall table, start dnsmasq. If a step fails,
// the steps done are undone in reverse order, so a refused start leaves
// nothing behind (IP forwarding, a host-wide setting others may rely on,
// is left on). mode='bridge' only checks that the host bridge exists.
// stop_host_network undoes everything start created, exactly (dnsmasq is
// signalled first and waited for last, so that its exit overlaps the rest).
// find_host_network reports what of a network is running, for a restarted
// daemon that must adopt, never duplicate.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "conf/network.hpp"
#include "network/dnsmasq.hpp"
#include "util/error.hpp"

namespace vireo::network {

struct HostNetworkOptions {
    std::filesystem::path state_dir;  // dnsmasq's files (DnsmasqFiles::in(state_dir, name))
    DnsmasqOptions dnsmasq;
};

struct HostNetworkState {
    bool bridge = false;             // the bridge exists
    bool firewall = false;           // vireo's table of this network exists
    std::optional<pid_t> dnsmasq;    // the network's dnsmasq
};

// `def` must have its bridge name assigned (assign_network_defaults).
Result<HostNetworkState> start_host_network(const conf::NetworkDef& def, const HostNetworkOptions& options);
Status stop_host_network(const conf::NetworkDef& def, const HostNetworkOptions& options);
Result<HostNetworkState> find_host_network(const conf::NetworkDef& def, const HostNetworkOptions& options);

}  // namespace vireo::network
