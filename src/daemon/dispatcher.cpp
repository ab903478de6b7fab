// Boost.Asio trips GCC 12's -Wnull-dereference in its own headers (a
// middle-end warning that system-header suppression does not cover).
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include "daemon/dispatcher.hpp"

#include <chrono>
#include <exception>
#include <optional>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/spdlog.h>

#ifndef VIREO_VERSION
#define VIREO_VERSION "0.0.0"
#endif

namespace vireo::daemon {

namespace asio = boost::asio;
using driver::ops::Lane;
using driver::ops::OpInfo;

namespace {

// Threads of the query and urgent lanes: queries are short; urgent calls
// (destroy, job abort) are few, but a destroy may wait its grace period.
constexpr unsigned kQueryThreads = 2;
constexpr unsigned kUrgentThreads = 4;

double elapsed_ms(std::chrono::steady_clock::time_point started) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
}

}  // namespace

std::string_view daemon_version() { return VIREO_VERSION; }

struct Dispatcher::Pools {
    explicit Pools(unsigned job_threads) : query(kQueryThreads), job(job_threads), urgent(kUrgentThreads) {}
    asio::thread_pool query;
    asio::thread_pool job;
    asio::thread_pool urgent;
};

Dispatcher::Dispatcher(driver::Driver& driver, unsigned job_threads)
    : driver_(driver), pools_(std::make_unique<Pools>(job_threads == 0 ? 1 : job_threads)) {}

Dispatcher::~Dispatcher() { join(); }

void Dispatcher::join() {
    pools_->urgent.join();
    pools_->job.join();
    pools_->query.join();
}

Error Dispatcher::refusal(std::string_view what) {
    return Error{ErrorCode::PermissionDenied,
                 fmt::format("operation forbidden: read only access prevents {}", what.substr(0, what.find('?')))};
}

Status Dispatcher::admit(const OpInfo& op, const Peer& peer, std::string_view what) const {
    if (!peer.read_only || op.read_only_allowed) return {};
    spdlog::info("client #{} (pid {} uid {}, read-only socket): refused {}", peer.serial, peer.pid, peer.uid, what);
    return std::unexpected(refusal(what));
}

void Dispatcher::run(const OpInfo& op, const Peer& peer, std::string what, Work work) {
    if (op.lane == Lane::Inline) return execute(op, peer, what, work);
    auto& pool = op.lane == Lane::Query ? pools_->query : op.lane == Lane::Urgent ? pools_->urgent : pools_->job;
    asio::post(pool, [this, &op, peer, what = std::move(what), work = std::move(work)] {
        execute(op, peer, what, work);
    });
}

// The catch-all: whatever a handler (or the codec's encoding) throws becomes
// an Internal error answer naming the operation; the daemon keeps serving.
void Dispatcher::execute(const OpInfo& op, const Peer& peer, const std::string& what, const Work& work) {
    const auto started = std::chrono::steady_clock::now();
    std::string outcome;
    std::optional<Error> thrown;
    try {
        outcome = work.run();
    } catch (const std::exception& e) {
        thrown = Error{ErrorCode::Internal, fmt::format("internal error in operation {}: {}", op.name, e.what())};
    } catch (...) {
        thrown = Error{ErrorCode::Internal, fmt::format("internal error in operation {}: unknown exception", op.name)};
    }
    if (thrown) {
        spdlog::error("client #{} (pid {} uid {}): {} threw: {}", peer.serial, peer.pid, peer.uid, what,
                      thrown->message);
        try {
            outcome = work.fail(*thrown);
        } catch (const std::exception& e) {
            spdlog::error("client #{}: {}: the error answer failed too: {}", peer.serial, what, e.what());
            outcome = "no answer";
        } catch (...) {
            outcome = "no answer";
        }
    }
    const double ms = elapsed_ms(started);
    // Changes are logged (and flushed to the log file); queries only in debug.
    if (!op.read_only_allowed)
        spdlog::info("client #{} (pid {} uid {}): {} -> {} ({:.1f} ms)", peer.serial, peer.pid, peer.uid, what,
                     outcome, ms);
    else
        spdlog::debug("client #{}: {} -> {} ({:.1f} ms)", peer.serial, what, outcome, ms);
}

void Dispatcher::post_job(std::function<void()> f) { asio::post(pools_->job, std::move(f)); }

}  // namespace vireo::daemon
