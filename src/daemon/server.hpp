// The API server of vireod: HTTP/1.1 (keep-alive) + WebSocket on unix
// sockets, with Boost.Asio/Beast.
//
// Threads: one event-loop thread does all socket I/O; blocking work runs in
// two worker pools so that queries never queue behind jobs:
//   query pool  GET routes (answered from snapshots, fast), console opening
//   job pool    everything that may wait for a domain's job or for QEMU
// Each listening socket is read-write or read-only; a read-only socket
// refuses every mutating call with 403 permission-denied. Every client is
// identified with SO_PEERCRED and logged.
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

struct ListenOptions {
    std::filesystem::path path;
    bool read_only = false;
    unsigned mode = 0600;           // permissions of the socket file
    std::optional<gid_t> group;     // chown the socket to this group
};

class Server {
public:
    // job_threads: size of the job pool (how many jobs may block at once).
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
