// The daemon's dispatcher: how every call of every client runs, whatever
// wire protocol carried it. It knows operations (driver/ops), never HTTP.
//
// A codec (one per wire protocol) reads a request and hands it over:
//   1. it finds the operation (an index into driver::ops::All);
//   2. admit(op, peer, what): the read-only check from the table (a refused
//      call is logged and answered with permission-denied);
//   3. it decodes the request into Op::Request;
//   4. submit<Op>(peer, request, what, answer): the dispatcher runs the
//      driver's handler on the operation's lane, catches anything it throws
//      (an Internal error naming the operation, never a dead daemon), logs
//      the call, and hands the result to `answer`, which encodes it in the
//      codec's format and sends it; `answer` returns a short outcome for the
//      log line ("204", "409: {...}").
// Streams go through admit() and run(): the codec's work opens the stream.
//
// Lanes (driver/ops/op.hpp): Inline runs at once on the caller's thread (the
// event loop: memory-only queries); Query, Job and Urgent each have their
// own worker pool, so a query never waits behind a job, and destroy and job
// abort never wait behind jobs, even when jobs occupy every job thread.
//
// The HTTP server (server.hpp) is the first codec. libvirt's remote
// protocol (src/rpc) is the second: its procedure table maps each procedure
// number to the operation it runs (several procedures may run one operation,
// so the map lives there rather than in OpInfo::libvirt_proc), decodes the
// XDR arguments into Op::Request and runs the driver's call through run() on
// the operation's lane, encoding Op::Reply as XDR (errors with
// OpInfo::libvirt_domain and the libvirt error number of the code). Peers,
// lanes, the catch-all and logging come for free; the read-only check is the
// table's read_only_allowed, applied by the rpc codec.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "driver/driver.hpp"
#include "util/error.hpp"

namespace vireo::daemon {

// Who is calling (SO_PEERCRED), and through which socket.
struct Peer {
    pid_t pid = -1;
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    bool read_only = false;
    std::uint64_t serial = 0;  // the connection's number in the log
};

// vireod's own version (what host.version answers as "daemon").
std::string_view daemon_version();

// The driver's call, plus what the daemon adds to some answers.
template <class Op>
Result<typename Op::Reply> perform(driver::Driver& driver, const typename Op::Request& request) {
    auto r = driver.call<Op>(request);
    if constexpr (std::is_same_v<Op, driver::ops::HostVersion>) {
        if (r) r->daemon = daemon_version();
    }
    return r;
}

class Dispatcher {
public:
    // job_threads: how many jobs may run (or wait for a domain's job) at once.
    Dispatcher(driver::Driver& driver, unsigned job_threads);
    // Waits for the calls in progress.
    ~Dispatcher();
    Dispatcher(const Dispatcher&) = delete;
    Dispatcher& operator=(const Dispatcher&) = delete;

    [[nodiscard]] driver::Driver& driver() const { return driver_; }

    // The read-only check: `peer` may run `op`, or the refusal (logged).
    // `what` names the request in the log and the message ("POST /v1/...").
    Status admit(const driver::ops::OpInfo& op, const Peer& peer, std::string_view what) const;

    // The work of one call, in the codec's terms: `run` does it and answers;
    // `fail` answers with an error instead (when `run` threw). Both return
    // the outcome for the log.
    struct Work {
        std::function<std::string()> run;
        std::function<std::string(const Error&)> fail;
    };
    // Run `work` on the lane of `op` (Inline: now), catch what it throws, log.
    void run(const driver::ops::OpInfo& op, const Peer& peer, std::string what, Work work);

    template <class Op>
    using Answer = std::function<std::string(Result<typename Op::Reply>)>;

    // Run an admitted, decoded call of Op (see the top of this file).
    template <class Op>
    void submit(const Peer& peer, typename Op::Request request, const std::string& what, Answer<Op> answer) {
        auto ans = std::make_shared<Answer<Op>>(std::move(answer));
        if (peer.read_only && !Op::info.read_only_allowed) {  // a codec that skipped admit()
            (*ans)(std::unexpected(refusal(what)));
            return;
        }
        auto req = std::make_shared<typename Op::Request>(std::move(request));
        run(Op::info, peer, what,
            Work{[this, req, ans] { return (*ans)(perform<Op>(driver_, *req)); },
                 [ans](const Error& e) { return (*ans)(std::unexpected(e)); }});
    }

    // Daemon-internal work (autostart, ...) on the job pool.
    void post_job(std::function<void()> f);

    // Wait until every call in progress has ended (the server is stopping).
    void join();

private:
    static Error refusal(std::string_view what);
    void execute(const driver::ops::OpInfo& op, const Peer& peer, const std::string& what, const Work& work);

    driver::Driver& driver_;
    struct Pools;
    std::unique_ptr<Pools> pools_;
};

}  // namespace vireo::daemon
