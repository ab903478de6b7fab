// Server side of the volume stream WebSocket (framing in wire/pool_wire.hpp):
// GET /v1/pools/{pool}/volumes/{vol}/download|upload?offset=&length=&sparse=.
// A transfer runs for as long as it takes on the calling job-pool thread,
// with blocking I/O on the client's socket, one chunk in memory at a time.
#pragma once

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/http.hpp>

#include "driver/pool_api.hpp"

namespace vireo::daemon {

// Check the volume (an HTTP error answer when it does not exist), accept the
// WebSocket upgrade `req`, run the transfer and close the socket.
// `peer` names the client in the log.
void serve_volume_stream(driver::PoolApi& pools, boost::asio::local::stream_protocol::socket socket,
                         boost::beast::http::request<boost::beast::http::string_body> req, const std::string& peer);

}  // namespace vireo::daemon
