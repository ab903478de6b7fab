// The HTTP codec of vireod's API: an HTTP request (method, target, body) in,
// an answer (status, content type, body) out, every route an operation of
// the operation table, found, decoded and encoded by its HTTP binding
// (wire/http.hpp). Nothing here is written per operation.
// docs/api/openapi.yaml (generated from the same table) documents the routes.
//
// Errors: HTTP status (wire::http_status_for) + {"code","message"} where code
// is vireo::to_string(ErrorCode), so clients rebuild the driver's Error as is.
// A route that names no operation is 404 with code unsupported.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "daemon/dispatcher.hpp"
#include "driver/driver.hpp"
#include "wire/http.hpp"

namespace vireo::daemon {

struct ApiRequest {
    std::string method;  // "GET", "POST", ...
    std::string target;  // "/v1/domains/web/start?x=1"
    std::string body;
    std::string content_type;
};

struct ApiResponse {
    unsigned status = 200;
    std::string content_type = "application/json";
    std::string body;
};

// How the server must treat a request before running it (derived from the
// operation's declaration).
enum class RouteKind {
    Query,        // answered on the query lane; never waits behind a job
    MemoryQuery,  // a Query answered from memory alone (no I/O, no QEMU): run
                  // on the event loop, without a hop to a worker thread
    Job,          // may wait for a domain's job / run long (start, save, ...)
    EventStream,  // WebSocket: lifecycle events as JSON text messages
    Console,      // WebSocket: serial console bytes as binary messages
    VolumeStream, // WebSocket: a volume upload/download (daemon/volume_stream.hpp)
};

struct RouteInfo {
    RouteKind kind = RouteKind::Query;
    bool mutating = false;  // refused on the read-only socket
    std::string domain;     // console: the domain reference
    std::string device;     // console: the device name (may be empty)
};

// Classify a request by its operation (unknown routes are Query: they are
// answered 404).
RouteInfo classify(std::string_view method, std::string_view target);

// The answer to a refused mutating call on the read-only socket.
ApiResponse read_only_refusal(std::string_view method, std::string_view target);
ApiResponse error_response(const Error& e);
ApiResponse not_found(std::string_view method, std::string_view target);
ApiResponse to_response(wire::http::Answer a);

class Api {
public:
    explicit Api(driver::Driver& driver) : driver_(driver) {}

    // Run one request on the calling thread (routing, decoding, the driver's
    // handler with exceptions caught, encoding), without read-only check or
    // lanes: for tests and tools. The server goes through submit().
    ApiResponse handle(const ApiRequest& req);

    // The answer of a call that went through the dispatcher; returns the
    // outcome for the log. Called on a worker, or at once for Inline calls.
    using Reply = std::function<std::string(ApiResponse)>;

    // Decode the request of the (admitted, non-stream) operation `m` names and
    // submit it to `dispatcher`; `reply` gets the answer (at once when the
    // request cannot be decoded).
    static void submit(Dispatcher& dispatcher, const Peer& peer, const wire::http::Match& m, const ApiRequest& req,
                       Reply reply);

private:
    driver::Driver& driver_;
};

// A short outcome for the log: "204", or "409: {body}" for errors.
std::string outcome(const ApiResponse& r);

}  // namespace vireo::daemon
