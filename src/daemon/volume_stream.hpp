// Server side of the volume stream WebSocket (framing in wire/pool_wire.hpp):
// GET /v1/pools/{pool}/volumes/{vol}/download|upload?offset=&length=&sparse=
// (the volume.download / volume.upload operations).
// A transfer runs for as long as it takes on the calling job-pool thread,
// with blocking I/O on the client's socket, one chunk in memory at a time.
#pragma once

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/http.hpp>

#include <string>

#include "driver/driver.hpp"

namespace vireo::daemon {

// A decoded volume.download / volume.upload request.
struct VolumeStream {
    std::string pool, volume;
    driver::TransferRange range;
    bool upload = false;
};

// Check the volume (an HTTP error answer when it does not exist), accept the
// WebSocket upgrade `req`, run the transfer through the connection's
// operation and close the socket. `peer` names the client in the log.
// Returns the outcome for the log.
std::string serve_volume_stream(driver::Driver& driver, boost::asio::local::stream_protocol::socket socket,
                                const boost::beast::http::request<boost::beast::http::string_body>& req,
                                const VolumeStream& stream, const std::string& peer);

}  // namespace vireo::daemon
