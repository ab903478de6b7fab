// libvireo's entry point: open a connection by URI.
//
// URIs follow libvirt's scheme so users' habits carry over:
//   qemu:///session                 per-user daemon (the default), auto-started
//   qemu:///system                  the root daemon
//   qemu+unix:///system?socket=/p   explicit unix socket path
//   test:///default                 in-memory driver with a fixed sample host
//   qemu+ssh://user@host/system     (later) ssh bridge to the remote daemon
//   qemu+tls://host/system          (later) TLS over TCP
// The transport is chosen from the "+suffix" of the scheme; each transport
// produces a byte stream to the daemon, over which RemoteDriver speaks HTTP.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "driver/driver.hpp"
#include "util/error.hpp"

namespace vireo::client {

struct ConnectOptions {
    bool read_only = false;          // use the daemon's read-only socket
    bool autostart_daemon = true;    // start a session daemon when none runs
};

// The URI used when none is given: $VIREO_DEFAULT_URI, else
// $LIBVIRT_DEFAULT_URI, else qemu:///session.
std::string default_uri();

// Open a connection. Errors name the URI and say what to do
// ("failed to connect to the hypervisor: cannot reach vireod at /run/vireo/vireo-sock: ...").
Result<std::unique_ptr<driver::Driver>> connect(std::string_view uri, const ConnectOptions& options = {});

}  // namespace vireo::client
