// QMP client: the QEMU Machine Protocol over a unix socket.
//
// Protocol (qemu docs/interop/qmp-spec): on connect QEMU sends a greeting
// {"QMP": {"version": ..., "capabilities": [...]}}; the client leaves
// negotiation mode with "qmp_capabilities"; then every command
// {"execute": ..., "arguments": ..., "id": ...} gets exactly one reply
// {"return": ..., "id": ...} or {"error": {"class", "desc"}, "id": ...},
// and asynchronous {"event": ..., "data": ..., "timestamp": ...} messages
// may arrive at any time. Messages are one JSON object per line.
//
// Threading model (why a plain thread rather than Boost.Asio): the driver's
// jobs are synchronous (a job waits for its QMP reply before going on), a
// host runs tens of guests, not thousands, and a dedicated reader thread per
// monitor keeps reply matching, event dispatch and EOF detection in one
// obvious loop with no shared io_context whose lifetime must outlive every
// domain. execute() may be called from any thread, concurrently; it blocks
// the caller (with a timeout) until the reply with its id arrives.
//
// Callbacks (events, close) run on the reader thread: they must not call
// execute() (the reply could never be read) and must not block; post the
// work to another thread instead.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/fd.hpp"

namespace vireo::qemu {

struct QmpEvent { // NOLINT(bugprone-exception-escape): clang-tidy 16 counts an implicit member's possible throw (set/json copies) here
    std::string name;       // "SHUTDOWN", "STOP", ...
    nlohmann::json data;    // the event's "data" (null when absent)
    double timestamp = 0;   // seconds since the epoch, as QEMU stamped it
};

class QmpClient {
public:
    using EventHandler = std::function<void(const QmpEvent&)>;
    // Called once when the connection ends without close() having been
    // called (QEMU exited, crashed or closed the socket), with the reason.
    using CloseHandler = std::function<void(const Error&)>;

    static constexpr std::chrono::milliseconds kDefaultTimeout{30000};

    // Take an already connected stream socket, read the greeting and
    // negotiate capabilities, each within `timeout`, then start the reader.
    static Result<std::unique_ptr<QmpClient>> open(UniqueFd fd, std::chrono::milliseconds timeout,
                                                   EventHandler on_event = {}, CloseHandler on_close = {});
    // Connect to a unix socket path, then as open().
    static Result<std::unique_ptr<QmpClient>> connect(const std::filesystem::path& path,
                                                      std::chrono::milliseconds timeout,
                                                      EventHandler on_event = {}, CloseHandler on_close = {});

    ~QmpClient();
    QmpClient(const QmpClient&) = delete;
    QmpClient& operator=(const QmpClient&) = delete;

    // Run a command and return its "return" value. Errors:
    //   Hypervisor  QEMU answered with an error ("<class>: <desc>")
    //   Timeout     no answer within `timeout` (the request is abandoned)
    //   Connection  the monitor is closed (before or while waiting)
    Result<nlohmann::json> execute(std::string_view command, const nlohmann::json& arguments = nullptr,
                                   std::chrono::milliseconds timeout = kDefaultTimeout);
    // As execute(), passing `fd` along with the command (SCM_RIGHTS), for
    // commands such as getfd / add-fd.
    Result<nlohmann::json> execute_with_fd(std::string_view command, const nlohmann::json& arguments, int fd,
                                           std::chrono::milliseconds timeout = kDefaultTimeout);

    // The greeting's "QMP" object.
    [[nodiscard]] const nlohmann::json& greeting() const;
    // True once the connection has ended (either side).
    [[nodiscard]] bool closed() const;
    // Close the connection and stop the reader; pending requests fail with
    // Connection. No close handler call. Safe to call from a callback.
    void close();

    struct Impl;

private:
    explicit QmpClient(std::shared_ptr<Impl> impl);
    std::shared_ptr<Impl> impl_;
};

// Connect a unix stream socket to `path` (no retries).
Result<UniqueFd> connect_unix(const std::filesystem::path& path);
// Create a listening unix stream socket bound to `path` (an existing socket
// file there is replaced).
Result<UniqueFd> listen_unix(const std::filesystem::path& path);

}  // namespace vireo::qemu
