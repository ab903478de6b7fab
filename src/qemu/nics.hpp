// Pure helpers for the host side of guest NICs (qemu_nics.cpp does the
// work): device names and the guest's view of a tap's counters.
#pragma once

#include <set>
#include <string>
#include <string_view>

#include "network/netlink.hpp"

namespace vireo::qemu {

// The first "<prefix>N" (N = 0, 1, 2, ...) not in `used`: libvirt's naming
// of the taps (vnetN) and macvtaps (macvtapN) it creates. A name in use is
// never handed out again while it is in use.
std::string first_free_name(std::string_view prefix, const std::set<std::string>& used);

// Names libvirt reserves for the devices it generates: a <target dev> with
// one of these prefixes is ignored and a fresh name chosen (as libvirt does).
bool is_generated_nic_name(std::string_view name);

// Counters as the guest sees them: what the host receives on a tap is what
// the guest sent, so rx and tx are swapped for taps (libvirt does the same);
// a macvtap counts from the guest's side already (swap = false).
network::LinkStats guest_view(const network::LinkStats& host, bool swap);

// Whether this process may create network devices (CAP_NET_ADMIN in its
// effective set): a session daemon run by a user may not.
bool can_admin_network();

}  // namespace vireo::qemu
