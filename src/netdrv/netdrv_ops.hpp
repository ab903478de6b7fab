// The network and interface operations of a connection (driver/ops/network.hpp,
// interface.hpp), served by a NetworkDriver and an InterfaceDriver: what
// joins the network sub-driver to a connection (daemon/driver_factory.cpp).
#pragma once

#include <functional>

#include "driver/driver.hpp"
#include "netdrv/interface_driver.hpp"
#include "netdrv/network_driver.hpp"
#include "util/error.hpp"

namespace vireo::netdrv {

// The driver serving a call, or the error that says why the connection has
// none (then every operation of the family answers it).
using NetworkDriverSource = std::function<Result<NetworkDriver*>()>;
using InterfaceDriverSource = std::function<Result<InterfaceDriver*>()>;

// Install a handler for every network / interface operation on `connection`.
// What the sources hand out must outlive the connection's calls (keep it in
// the connection with Driver::keep).
void install_network_ops(driver::Driver& connection, const NetworkDriverSource& source);
void install_interface_ops(driver::Driver& connection, const InterfaceDriverSource& source);

// A connection without networks or host interfaces (the session daemon):
// net-list lists none and net-event waits for nothing, as libvirt's session
// daemon with no networks; every other network and interface operation
// answers `why`.
void install_no_network_ops(driver::Driver& connection, const Error& why);

}  // namespace vireo::netdrv
