// The API server of vireod: HTTP/1.1 (keep-alive) + WebSocket on unix
// sockets, with Boost.Asio/Beast. It is the HTTP codec in front of the
// dispatcher (dispatcher.hpp): it finds each request's operation by its
// route (wire/http.hpp), has the dispatcher admit it, decodes it, and
// submits it; the dispatcher runs it on its lane and the answer is written
// back here. A second wire protocol (libvirt's remote protocol) would be a
// second listener and codec in front of the same dispatcher: sockets
// listened on with Protocol::Libvirt get an rpc::Connection per client.
//
// Threads: one event-loop thread does all socket I/O (and answers the
// memory-only queries of the Inline lane); the dispatcher's worker pools run
// the rest, so that queries never queue behind jobs, nor destroy and job
// abort behind other jobs. Each listening socket is read-write or read-only;
// a read-only socket refuses every operation the table does not allow it
// with 403 permission-denied. Every client is identified with SO_PEERCRED
// and logged.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>

#include <sys/types.h>

#include "driver/driver.hpp"
#include "util/error.hpp"

namespace vireo::daemon {

// Which wire protocol a listening socket speaks.
enum class Protocol {
    Http,     // vireo's own API (wire/http.hpp)
    Libvirt,  // libvirt's remote protocol (rpc/connection.hpp), for virsh & co.
};

struct ListenOptions {
    std::filesystem::path path;
    Protocol protocol = Protocol::Http;
    bool read_only = false;
    unsigned mode = 0600;           // permissions of the socket file
    std::optional<gid_t> group;     // chown the socket to this group
};

class Server {
public:
    // job_threads: size of the job lane (how many jobs may block at once).
    Server(driver::Driver& driver, unsigned job_threads = 16);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Bind and listen (a stale socket file is replaced). Call before run().
    Status listen(const ListenOptions& options);

    // Run the event loop on the calling thread until stop().
    void run();
    // Thread-safe; run() returns soon after.
    void stop();

    // Schedule f on the job pool (daemon-internal work such as autostart).
    void post_job(std::function<void()> f);
    // Call f on the event loop every `period` (for the idle timer).
    void every(std::chrono::milliseconds period, std::function<void()> f);

    // Open client connections (HTTP and WebSocket).
    [[nodiscard]] std::size_t connection_count() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace vireo::daemon
