// Blocking HTTP/1.1 client over a Transport, with one persistent
// (keep-alive) connection, plus the two WebSocket streams of the API (event
// stream, console). Beast stays inside http_client.cpp.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "client/transport.hpp"
#include "driver/driver.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace vireo::client {

struct HttpResponse {
    unsigned status = 0;
    std::string content_type;
    std::string body;
};

class HttpConnection {
public:
    explicit HttpConnection(std::shared_ptr<Transport> transport);
    ~HttpConnection();
    HttpConnection(const HttpConnection&) = delete;
    HttpConnection& operator=(const HttpConnection&) = delete;

    // Connect now (so connect() reports an unreachable daemon at once).
    Status open();

    // One request/response exchange. Not thread-safe (callers serialize).
    // A kept-alive connection the daemon closed meanwhile is reopened once,
    // but only when nothing of the request reached it.
    Result<HttpResponse> request(std::string_view method, std::string_view target, std::string_view body = {},
                                 std::string_view content_type = {});

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Open the WebSocket at `target` (GET /v1/events) and call `on_text` with
// every text message on a private thread until the returned handle is
// destroyed. HTTP errors of the upgrade come back as the daemon's Error.
Result<std::unique_ptr<driver::Subscription>> open_event_stream(const std::shared_ptr<Transport>& transport,
                                                                 std::string_view target,
                                                                 std::function<void(std::string_view)> on_text);

// Open the console WebSocket at `target` and bridge it to a socketpair:
// the returned fd carries the console bytes both ways; closing it closes the
// WebSocket; the daemon closing it gives EOF on the fd.
Result<UniqueFd> open_console_stream(const std::shared_ptr<Transport>& transport, std::string_view target);

}  // namespace vireo::client
