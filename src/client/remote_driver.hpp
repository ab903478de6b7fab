// RemoteDriver: the connection of qemu:// URIs. Every operation of the
// operation table (driver/ops) is one HTTP request to vireod over a
// persistent connection, built by the table's HTTP binding (wire/http.hpp):
// no operation is written by hand here. Streams open their own WebSocket:
// the serial console and the event stream (http_client.hpp), volume uploads
// and downloads (volume_stream.hpp), so a transfer never holds a whole
// volume in memory and never blocks the driver's other calls. Errors raised
// in the daemon come back with their code and message unchanged.
// Thread-safe: calls from several threads are serialized on the one
// connection (open several RemoteDrivers for parallel requests).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "client/http_client.hpp"
#include "client/transport.hpp"
#include "driver/driver.hpp"
#include "wire/http.hpp"

namespace vireo::client {

class RemoteDriver final : public driver::Driver {
public:
    RemoteDriver(std::string uri, std::shared_ptr<Transport> transport);

    // Connect now; Connection error when the daemon cannot be reached.
    Status open();

private:
    // The stub of one (non-stream) operation.
    template <class Op>
    Result<typename Op::Reply> remote(const typename Op::Request& request);
    // One exchange; non-2xx answers become the daemon's Error.
    Result<HttpResponse> exchange(const wire::http::OutRequest& request);
    void install_streams();

    std::shared_ptr<Transport> transport_;
    std::mutex mutex_;
    HttpConnection http_;
};

}  // namespace vireo::client
