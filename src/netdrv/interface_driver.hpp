// InterfaceDriver: host interfaces (virsh iface-*) through netlink, with the
// definitions (libvirt's interface XML, conf/interface.hpp) kept by the
// daemon in its own directory (driver::ObjectStore, kind Interface), as
// libvirt's netcf backend keeps ifcfg files.
//
//   iface-list      every link of the host (ports of a bridge or bond are
//                   listed under it, not on their own, as libvirt's udev
//                   backend does) and every definition; active = exists and
//                   is administratively up
//   iface-dumpxml   the host's state in interface XML (type from the link's
//                   kind, MTU, MAC, link state, addresses, a bridge's ports
//                   and STP, a VLAN's tag, a bond's mode and slaves); with
//                   --inactive (or for an interface that does not exist) the
//                   definition
//   iface-start     make what the definition says: a bridge with its ports,
//                   a VLAN or a bond device, or set up an ethernet device,
//                   with its static addresses; undone if a step fails
//   iface-destroy   remove a bridge, VLAN or bond device; an ethernet
//                   device loses the definition's addresses and goes down
//   iface-bridge    a new bridge with the interface as its only port, the
//                   interface's addresses moved to the bridge; the
//                   definition of the interface becomes the bridge's
//   iface-unbridge  the reverse
//
// Routes other than the subnet routes of the addresses are not moved (no
// <route gateway> support yet: a definition with one is refused at start).
// DHCP and IPv6 autoconf on host interfaces are refused (vireo has no
// client for them). What the kernel cannot do here (no 8021q or bonding
// module) fails with the kernel's own error.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "driver/network_types.hpp"
#include "util/error.hpp"

namespace vireo::netdrv {

struct InterfaceDriverConfig {
    // Definitions: <confdir>/<name>.xml.
    std::filesystem::path confdir;
    // Unused by interfaces (the store's layout has one); made 0700.
    std::filesystem::path rundir;
};

class InterfaceDriver {
public:
    static Result<std::unique_ptr<InterfaceDriver>> open(InterfaceDriverConfig config);
    ~InterfaceDriver();
    InterfaceDriver(const InterfaceDriver&) = delete;
    InterfaceDriver& operator=(const InterfaceDriver&) = delete;

    Result<std::vector<driver::HostInterface>> list();
    // By name, then by MAC address.
    Result<driver::HostInterface> lookup(std::string_view ref);
    Result<std::string> xml(std::string_view ref, bool inactive);
    Result<driver::HostInterface> define(std::string_view xml);
    Status undefine(std::string_view ref);
    Status start(std::string_view ref);
    Status destroy(std::string_view ref);
    Status bridge(std::string_view iface, std::string_view bridge, bool stp, std::uint64_t delay, bool no_start);
    // The name of the port that was detached.
    Result<std::string> unbridge(std::string_view bridge, bool no_start);

    struct Impl;

private:
    explicit InterfaceDriver(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace vireo::netdrv
