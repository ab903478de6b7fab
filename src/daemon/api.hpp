// The HTTP API of vireod, independent of the transport: a request (method,
// target, body) in, a response (status, content type, body) out, every route
// mapped onto one Driver call. docs/api/openapi.yaml documents the routes.
//
// Errors: HTTP status (wire::http_status_for) + {"code","message"} where code
// is vireo::to_string(ErrorCode), so clients rebuild the driver's Error as is.
#pragma once

#include <string>
#include <string_view>

#include "driver/driver.hpp"

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

// How the server must treat a request before running it.
enum class RouteKind {
    Query,        // answered from a snapshot; never waits behind a job
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

// Classify a request by method and path (unknown routes are Query: the
// handler answers 404).
RouteInfo classify(std::string_view method, std::string_view target);

// The answer to a refused mutating call on the read-only socket.
ApiResponse read_only_refusal(std::string_view method, std::string_view target);
ApiResponse error_response(const Error& e);

class Api {
public:
    explicit Api(driver::Driver& driver) : driver_(driver) {}
    // Run a Query or Job route (blocking; call from a worker thread).
    ApiResponse handle(const ApiRequest& req);

private:
    driver::Driver& driver_;
};

}  // namespace vireo::daemon
