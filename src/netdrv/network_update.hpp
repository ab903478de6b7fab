// net-update on a network definition: add, delete or modify one static DHCP
// host (ip-dhcp-host), DHCP range (ip-dhcp-range) or DNS host (dns-host),
// with libvirt's matching rules and messages. Pure: the driver applies it to
// a copy of the persistent and/or live definition and then does what the
// returned effect says to the running dnsmasq.
//
// The element is parsed by the network parser itself (wrapped into a
// network whose <ip> is the parent's), so it is as strict as net-define
// and a host outside the subnet is refused naming the field. A delete only
// needs the fields that identify the entry (<host mac='...'/>, <host
// ip='...'/>), as in libvirt.
//
// Sections libvirt has and vireo does not update (bridge, domain, ip,
// forward, forward-interface, forward-pf, portgroup, dns-txt, dns-srv) are
// refused as Unsupported naming the section.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "conf/network.hpp"
#include "driver/network_types.hpp"
#include "util/error.hpp"

namespace vireo::netdrv {

struct NetworkUpdateRequest {
    driver::NetworkUpdateCommand command = driver::NetworkUpdateCommand::AddLast;
    driver::NetworkUpdateSection section = driver::NetworkUpdateSection::IpDhcpHost;
    std::string xml;
    std::uint64_t parent_index = driver::kAnyParentIndex;
};

// What a running network must do after the change.
enum class UpdateEffect {
    HostsFiles,  // dnsmasq re-reads its hosts files (SIGHUP)
    DhcpConfig,  // dnsmasq restarts with a new configuration (ranges)
};

// Apply `r` to `def` (whose name is used in messages); `def` is unchanged
// on error. The result has been validated as a whole.
Result<UpdateEffect> apply_network_update(conf::NetworkDef& def, const NetworkUpdateRequest& r);

}  // namespace vireo::netdrv
