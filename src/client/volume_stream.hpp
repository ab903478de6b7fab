// Client side of the volume stream WebSocket (framing in wire/pool_wire.hpp):
// each transfer opens its own connection to the daemon and drives it on the
// calling thread, one chunk at a time.
#pragma once

#include <memory>
#include <string_view>

#include "client/transport.hpp"
#include "driver/pool_api.hpp"
#include "util/error.hpp"

namespace vireo::client {

// GET `target` (.../download?...) and hand every chunk to `sink` in order.
Status download_stream(const std::shared_ptr<Transport>& transport, std::string_view target,
                       const driver::StreamSink& sink);
// GET `target` (.../upload?...) and send the chunks of `source` until it
// returns one of length 0; then wait for the daemon's verdict.
Status upload_stream(const std::shared_ptr<Transport>& transport, std::string_view target,
                     const driver::StreamSource& source);

}  // namespace vireo::client
