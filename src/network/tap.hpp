// Tap and macvtap devices for guest NICs. The daemon creates the tap and
// hands its file descriptor(s) to QEMU (-netdev tap,fd=N / fds=N:M), so QEMU
// needs no privileges and a tap lives exactly as long as its user.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/network_addr.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace vireo::network {

struct TapOptions {
    // An exact name ("vnet3", "mytap") or a template with %d the kernel fills
    // ("vnet%d", libvirt's naming).
    std::string name = "vnet%d";
    unsigned queues = 1;      // > 1: IFF_MULTI_QUEUE, one fd per queue
    bool vnet_hdr = true;     // IFF_VNET_HDR (virtio-net offloads)
    bool persistent = false;  // TUNSETPERSIST: the device outlives its fds
    bool exclusive = true;    // refuse an existing device of that name (IFF_TUN_EXCL)
};

struct Tap {
    std::string name;
    std::vector<UniqueFd> fds;  // one per queue
};

// Create (or, with exclusive=false, attach to) a tap device via /dev/net/tun.
Result<Tap> create_tap(const TapOptions& options);

// Make a persistent tap non-persistent (it disappears when its last fd closes).
Status unpersist_tap(std::string_view name);

// Open the character device of a macvtap link (/dev/tap<ifindex>, found via
// /sys/class/net/<name>/macvtap/); `queues` fds.
Result<std::vector<UniqueFd>> open_macvtap(std::string_view name, unsigned queues = 1);

// The MAC libvirt gives the host side of a guest's tap: the guest MAC with
// its first byte 0xfe, so the bridge never adopts the tap's MAC as its own.
conf::MacAddr host_side_mac(const conf::MacAddr& guest_mac);

}  // namespace vireo::network
