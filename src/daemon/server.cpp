// Boost.Asio trips GCC 12's -Wnull-dereference in its own headers (a
// middle-end warning that system-header suppression does not cover).
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include "daemon/server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

#include "daemon/api.hpp"
#include "daemon/dispatcher.hpp"
#include "daemon/heap.hpp"
#include "daemon/volume_stream.hpp"
#include "rpc/connection.hpp"
#include "wire/http.hpp"
#include "wire/wire.hpp"

namespace vireo::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ops = driver::ops;
namespace http = beast::http;
namespace websocket = beast::websocket;
using Socket = asio::local::stream_protocol::socket;
using Acceptor = asio::local::stream_protocol::acceptor;

namespace {

constexpr std::uint64_t kMaxRequestBody = 64u << 20;

// Sockets must not leak into the QEMU processes the driver starts.
void set_cloexec(int fd) { ::fcntl(fd, F_SETFD, FD_CLOEXEC); }

Peer peer_of(Socket& socket, bool read_only, std::uint64_t serial) {
    Peer p;
    p.read_only = read_only;
    p.serial = serial;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        p.pid = cred.pid;
        p.uid = cred.uid;
        p.gid = cred.gid;
    }
    return p;
}

}  // namespace

struct Server::Impl {
    driver::Driver& driver;
    // Declared before the io_context: sessions destroyed with its pending
    // handlers still decrement the count.
    std::atomic<std::size_t> connections{0};
    std::atomic<std::uint64_t> next_serial{1};
    asio::io_context ioc;
    // The lanes and workers every call runs through (dispatcher.hpp).
    Dispatcher dispatcher;
    std::list<Acceptor> acceptors;
    std::list<asio::steady_timer> timers;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;

    // Idle heap trimming (heap.hpp), event-loop thread only: the heap is
    // trimmed once no request has been answered for kTrimWhenIdleFor and
    // none is running on a pool.
    asio::steady_timer trim_timer;
    bool trim_armed = false;
    bool heap_used = false;         // a request was answered since the last trim
    unsigned requests_running = 0;  // posted to a pool, not answered yet
    std::chrono::steady_clock::time_point last_answer;

    Impl(driver::Driver& d, unsigned job_threads)
        : driver(d), dispatcher(d, job_threads), work(asio::make_work_guard(ioc)), trim_timer(ioc) {}

    void accept(Acceptor& acceptor, bool read_only, Protocol protocol);
    // An answer has been written: (re)start the idle countdown to a trim.
    void answered();

private:
    void arm_trim(std::chrono::steady_clock::time_point at);
};

void Server::Impl::answered() {
    heap_used = true;
    last_answer = std::chrono::steady_clock::now();
    if (!trim_armed) arm_trim(last_answer + kTrimWhenIdleFor);
}

void Server::Impl::arm_trim(std::chrono::steady_clock::time_point at) {
    trim_armed = true;
    trim_timer.expires_at(at);
    trim_timer.async_wait([this](const beast::error_code& ec) {
        trim_armed = false;
        if (ec) return;
        if (requests_running > 0) return;  // its answer restarts the countdown
        auto due = last_answer + kTrimWhenIdleFor;
        if (std::chrono::steady_clock::now() < due) return arm_trim(due);
        if (!heap_used) return;
        heap_used = false;
        release_free_heap();
    });
}

namespace {

// Counts a live client connection for the idle timer.
class ConnectionCount {
public:
    explicit ConnectionCount(std::atomic<std::size_t>& n) : n_(n) { ++n_; }
    ~ConnectionCount() { --n_; }
    ConnectionCount(const ConnectionCount&) = delete;
    ConnectionCount& operator=(const ConnectionCount&) = delete;

private:
    std::atomic<std::size_t>& n_;
};

// ---------------------------------------------------------------------------
// WebSocket: an event stream (host.events: domains, network.events:
// networks). Events arrive on driver threads, are posted to the loop and
// written in order; reading only notices the close.

// The event type a stream operation's callback takes.
template <class F>
struct CallbackEvent;
template <class E>
struct CallbackEvent<std::function<void(const E&)>> {
    using type = E;
};

template <class Op>
class EventSession : public std::enable_shared_from_this<EventSession<Op>> {
public:
    EventSession(Server::Impl& server, Socket socket, Peer peer, std::string what)
        : server_(server), count_(server.connections), ws_(std::move(socket)), peer_(peer), what_(std::move(what)) {}

    void start(const http::request<http::string_body>& req) {
        ws_.async_accept(req, [self = shared_from_this()](const beast::error_code& ec) {
            if (ec) return;
            self->subscribe();
        });
    }

private:
    using std::enable_shared_from_this<EventSession<Op>>::shared_from_this;
    using Event = typename CallbackEvent<decltype(typename Op::Request{}.callback)>::type;

    // The stream operation, through the dispatcher (an Inline call:
    // answered here, on the event loop).
    void subscribe() {
        std::weak_ptr<EventSession> weak = shared_from_this();
        auto executor = ws_.get_executor();
        auto callback = [weak, executor](const Event& e) {
            auto text = wire::to_json(e).dump();
            asio::post(executor, [weak, text = std::move(text)]() mutable {
                if (auto self = weak.lock()) self->enqueue(std::move(text));
            });
        };
        server_.dispatcher.template submit<Op>(
            peer_, {std::move(callback)}, what_,
            [self = shared_from_this()](Result<std::unique_ptr<driver::Subscription>> sub) -> std::string {
                asio::post(self->ws_.get_executor(), [self, sub = std::move(sub)]() mutable { self->subscribed(std::move(sub)); });
                return "101";
            });
    }

    void subscribed(Result<std::unique_ptr<driver::Subscription>> sub) {
        if (!sub) {
            spdlog::warn("client #{}: cannot subscribe to events: {}", peer_.serial, sub.error().full_message());
            ws_.async_close(websocket::close_code::internal_error,
                            [self = shared_from_this()](const beast::error_code&) {});
            return;
        }
        subscription_ = std::move(*sub);
        read();
    }

    void read() {
        ws_.async_read(buffer_, [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
            if (ec) {
                self->subscription_.reset();
                return;
            }
            self->buffer_.consume(self->buffer_.size());  // clients have nothing to say
            self->read();
        });
    }

    void enqueue(std::string text) {
        if (!subscription_) return;
        queue_.push_back(std::move(text));
        if (queue_.size() == 1) write();
    }

    void write() {
        ws_.text(true);
        ws_.async_write(asio::buffer(queue_.front()), [self = shared_from_this()](const beast::error_code& ec,
                                                                                  std::size_t) {
            if (ec) {
                self->subscription_.reset();
                self->queue_.clear();
                return;
            }
            self->queue_.pop_front();
            if (!self->queue_.empty()) self->write();
        });
    }

    Server::Impl& server_;
    ConnectionCount count_;
    websocket::stream<Socket> ws_;
    Peer peer_;
    std::string what_;
    beast::flat_buffer buffer_;
    std::deque<std::string> queue_;
    std::unique_ptr<driver::Subscription> subscription_;
};

// ---------------------------------------------------------------------------
// WebSocket: a serial console, bytes both ways as binary messages.

class ConsoleSession : public std::enable_shared_from_this<ConsoleSession> {
public:
    ConsoleSession(Server::Impl& server, Socket socket, UniqueFd console)
        : count_(server.connections), ws_(std::move(socket)), console_(server.ioc, console.release()) {}

    void start(const http::request<http::string_body>& req) {
        ws_.binary(true);
        ws_.async_accept(req, [self = shared_from_this()](const beast::error_code& ec) {
            if (ec) return self->close_all();
            self->read_ws();
            self->read_console();
        });
    }

private:
    void close_all() {
        if (closed_) return;
        closed_ = true;
        beast::error_code ec;
        console_.close(ec);
        ws_.next_layer().shutdown(Socket::shutdown_both, ec);
        ws_.next_layer().close(ec);
    }

    void read_ws() {
        ws_.async_read(ws_buffer_, [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
            if (ec) return self->close_all();
            asio::async_write(self->console_, self->ws_buffer_.data(),
                              [self](const beast::error_code& wec, std::size_t n) {
                                  self->ws_buffer_.consume(n);
                                  if (wec) return self->close_all();
                                  self->read_ws();
                              });
        });
    }

    void read_console() {
        console_.async_read_some(asio::buffer(console_buffer_), [self = shared_from_this()](
                                                                    const beast::error_code& ec, std::size_t n) {
            if (ec) {
                if (self->closed_) return;
                // The guest side went away (domain stopped): close politely.
                self->ws_.async_close(websocket::close_code::going_away,
                                      [self](const beast::error_code&) { self->close_all(); });
                return;
            }
            self->ws_.async_write(asio::buffer(self->console_buffer_.data(), n),
                                  [self](const beast::error_code& wec, std::size_t) {
                                      if (wec) return self->close_all();
                                      self->read_console();
                                  });
        });
    }

    ConnectionCount count_;
    websocket::stream<Socket> ws_;
    asio::posix::stream_descriptor console_;
    beast::flat_buffer ws_buffer_;
    std::array<char, 4096> console_buffer_{};
    bool closed_ = false;
};

// ---------------------------------------------------------------------------
// HTTP/1.1 with keep-alive: one request at a time per connection.

class HttpSession : public std::enable_shared_from_this<HttpSession> {
public:
    HttpSession(Server::Impl& server, Socket socket, Peer peer)
        : server_(server), count_(std::in_place, server.connections), socket_(std::move(socket)), peer_(peer) {}

    ~HttpSession() {
        if (count_) spdlog::debug("client #{} disconnected", peer_.serial);
    }

    void start() { read(); }

private:
    void read() {
        parser_.emplace();
        parser_->body_limit(kMaxRequestBody);
        http::async_read(socket_, buffer_, *parser_,
                         [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
                             self->on_read(ec);
                         });
    }

    void on_read(const beast::error_code& ec) {
        if (ec) {
            if (ec != http::error::end_of_stream && ec != asio::error::connection_reset &&
                ec != asio::error::eof) {
                spdlog::debug("client #{}: bad request: {}", peer_.serial, ec.message());
                ApiResponse bad = error_response(
                    Error{ErrorCode::Protocol, fmt::format("malformed HTTP request: {}", ec.message())});
                bad.status = 400;
                return write(std::move(bad), false);
            }
            return;
        }
        auto req = parser_->release();
        const bool keep_alive = req.keep_alive();
        // The catch-all of the codec: nothing a request does may end the daemon.
        try {
            on_request(std::move(req));
        } catch (const std::exception& e) {
            spdlog::error("client #{}: request failed: {}", peer_.serial, e.what());
            write(error_response(Error{ErrorCode::Internal, fmt::format("internal error: {}", e.what())}), keep_alive);
        }
    }

    // One request: its operation, the read-only check, then a WebSocket
    // stream or a call through the dispatcher.
    void on_request(http::request<http::string_body> req) {
        ApiRequest api_req{std::string(req.method_string()), std::string(req.target()), std::move(req.body()),
                           std::string(req[http::field::content_type])};
        const bool keep_alive = req.keep_alive();
        auto m = wire::http::match(api_req.method, api_req.target);
        if (!m) return early(api_req, error_response(m.error()), keep_alive);
        if (!m->has_value()) return early(api_req, not_found(api_req.method, api_req.target), keep_alive);
        const ops::OpInfo& op = *ops::kInfos[(*m)->op];
        std::string what = fmt::format("{} {}", api_req.method, api_req.target);
        if (auto admitted = server_.dispatcher.admit(op, peer_, what); !admitted)
            return write(error_response(admitted.error()), keep_alive);
        const bool upgrade = websocket::is_upgrade(req);
        if (ops::is_stream(op.kind)) {
            if (!upgrade) {
                ApiResponse r = error_response(Error{
                    ErrorCode::InvalidArg, fmt::format("{} is a WebSocket endpoint", api_req.target.substr(0, 200))});
                r.status = 426;
                return early(api_req, std::move(r), keep_alive);
            }
            req.body() = std::move(api_req.body);
            return open_stream(std::move(req), **m, std::move(what));
        }
        if (upgrade)
            return early(api_req,
                         error_response(Error{ErrorCode::InvalidArg, fmt::format("{} is not a WebSocket endpoint",
                                                                                 api_req.target.substr(0, 200))}),
                         false);
        ++server_.requests_running;
        Api::submit(server_.dispatcher, peer_, **m, api_req,
                    [self = shared_from_this(), keep_alive](ApiResponse res) {
                        std::string logged = outcome(res);
                        // Written on the event loop; the caller (a worker, or
                        // the loop itself for Inline calls) logs meanwhile.
                        asio::post(self->socket_.get_executor(), [self, res = std::move(res), keep_alive]() mutable {
                            --self->server_.requests_running;
                            self->write(std::move(res), keep_alive);
                        });
                        return logged;
                    });
    }

    // An answer given before the request reached the dispatcher (no such
    // route, malformed request, plain HTTP to a WebSocket endpoint).
    void early(const ApiRequest& req, ApiResponse res, bool keep_alive) {
        spdlog::debug("client #{}: {} {} -> {}", peer_.serial, req.method, req.target, outcome(res));
        write(std::move(res), keep_alive);
    }

    void write(ApiResponse res, bool keep_alive) {
        auto msg = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(res.status), 11);
        msg->set(http::field::server, "vireod");
        if (!res.content_type.empty()) msg->set(http::field::content_type, res.content_type);
        msg->body() = std::move(res.body);
        msg->keep_alive(keep_alive);
        msg->prepare_payload();
        http::async_write(socket_, *msg, [self = shared_from_this(), msg](const beast::error_code& ec, std::size_t) {
            // What the request allocated is freed by now; the heap is trimmed
            // once the daemon has been idle for a while (heap.hpp).
            self->server_.answered();
            if (ec || !msg->keep_alive()) {
                beast::error_code ignored;
                self->socket_.shutdown(Socket::shutdown_send, ignored);
                return;
            }
            self->read();
        });
    }

    // The stream operations: the event stream, the console, volume transfers.
    void open_stream(http::request<http::string_body> req, const wire::http::Match& m, std::string what) {
        if (m.op == ops::index_of<ops::HostEvents>) {
            count_.reset();  // the WebSocket session counts itself from now on
            std::make_shared<EventSession<ops::HostEvents>>(server_, std::move(socket_), peer_, std::move(what))
                ->start(req);
            return;
        }
        if (m.op == ops::index_of<ops::NetworkEvents>) {
            count_.reset();
            std::make_shared<EventSession<ops::NetworkEvents>>(server_, std::move(socket_), peer_, std::move(what))
                ->start(req);
            return;
        }
        if (m.op == ops::index_of<ops::DomainConsole>) return open_console(std::move(req), m, what);
        const bool upload = m.op == ops::index_of<ops::VolumeUpload>;
        VolumeStream stream;
        if (upload) {
            auto r = wire::http::decode_request<ops::VolumeUpload>(m, {});
            if (!r) return write(error_response(r.error()), false);
            stream = {r->pool, r->vol, {.offset = r->offset, .length = r->length, .sparse = r->sparse}, true};
        } else {
            auto r = wire::http::decode_request<ops::VolumeDownload>(m, {});
            if (!r) return write(error_response(r.error()), false);
            stream = {r->pool, r->vol, {.offset = r->offset, .length = r->length, .sparse = r->sparse}, false};
        }
        // A transfer blocks for as long as it runs: a job worker drives it
        // (the session, and so the connection count, lives until it ends).
        auto shared_req = std::make_shared<http::request<http::string_body>>(std::move(req));
        const ops::OpInfo& op = upload ? ops::VolumeUpload::info : ops::VolumeDownload::info;
        server_.dispatcher.run(
            op, peer_, std::move(what),
            Dispatcher::Work{[self = shared_from_this(), shared_req, stream] {
                                 return serve_volume_stream(self->server_.driver, std::move(self->socket_),
                                                            *shared_req, stream,
                                                            fmt::format("client #{} (pid {} uid {})", self->peer_.serial,
                                                                        self->peer_.pid, self->peer_.uid));
                             },
                             [self = shared_from_this()](const Error& e) {
                                 ApiResponse r = error_response(e);
                                 std::string logged = outcome(r);
                                 asio::post(self->socket_.get_executor(), [self, r = std::move(r)]() mutable {
                                     if (self->socket_.is_open()) self->write(std::move(r), false);
                                 });
                                 return logged;
                             }});
    }

    // Opening a console may block (QEMU pty): domain.console runs on its
    // lane; the WebSocket is accepted once the driver handed out the fd.
    void open_console(http::request<http::string_body> req, const wire::http::Match& m, const std::string& what) {
        auto r = wire::http::decode_request<ops::DomainConsole>(m, {});
        if (!r) return write(error_response(r.error()), false);
        auto shared_req = std::make_shared<http::request<http::string_body>>(std::move(req));
        server_.dispatcher.submit<ops::DomainConsole>(
            peer_, std::move(*r), what, [self = shared_from_this(), shared_req](Result<UniqueFd> fd) {
                std::string logged = fd ? "101" : outcome(error_response(fd.error()));
                asio::post(self->socket_.get_executor(), [self, shared_req, fd = std::move(fd)]() mutable {
                    if (!fd) return self->write(error_response(fd.error()), false);
                    spdlog::info("client #{} (pid {} uid {}): console of '{}' opened", self->peer_.serial,
                                 self->peer_.pid, self->peer_.uid, shared_req->target());
                    self->count_.reset();
                    std::make_shared<ConsoleSession>(self->server_, std::move(self->socket_), std::move(*fd))
                        ->start(*shared_req);
                });
                return logged;
            });
    }

    Server::Impl& server_;
    std::optional<ConnectionCount> count_;
    Socket socket_;
    Peer peer_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
};


// ---------------------------------------------------------------------------
// libvirt's remote protocol: an rpc::Connection per client. Bytes read here
// are fed to it on the event loop; its packets (replies from worker threads,
// events from driver threads, keepalive answers) are posted to the loop and
// written in order. Calls run through the dispatcher's lanes like HTTP's.

class RpcSession : public rpc::Transport, public std::enable_shared_from_this<RpcSession> {
public:
    static void start(Server::Impl& server, Socket socket, Peer peer) {
        auto self = std::make_shared<RpcSession>(server, std::move(socket), peer);
        auto* impl = &server;
        auto runner = [impl, peer](const ops::OpInfo& op, std::string what, std::function<std::string()> work,
                                   std::function<std::string(const Error&)> fail) {
            impl->dispatcher.run(op, peer, std::move(what), Dispatcher::Work{std::move(work), std::move(fail)});
        };
        self->conn_ = std::make_shared<rpc::Connection>(server.driver, peer.read_only,
                                                        std::weak_ptr<rpc::Transport>(self), std::move(runner));
        self->read();
    }

    RpcSession(Server::Impl& server, Socket socket, Peer peer)
        : server_(server), count_(server.connections), socket_(std::move(socket)), peer_(peer) {}

    void send(std::string packet) override {
        pending_add(packet.size());
        asio::post(socket_.get_executor(), [weak = weak_from_this(), packet = std::move(packet)]() mutable {
            if (auto self = weak.lock()) self->enqueue(std::move(packet));
        });
    }

    // Stream downloads (job threads) wait here while the client is behind.
    bool wait_writable(std::size_t limit) override {
        std::unique_lock lock(pending_mutex_);
        pending_cv_.wait(lock, [&] { return gone_ || pending_ <= limit; });
        return !gone_;
    }

    // An upload's queue drained below its window: read the client again.
    void resume_reading() override {
        asio::post(socket_.get_executor(), [weak = weak_from_this()] {
            auto self = weak.lock();
            if (!self || !self->paused_ || self->done_ || self->conn_->backlogged()) return;
            self->paused_ = false;
            self->read();
            self->paused_self_.reset();
        });
    }

private:
    void read() {
        socket_.async_read_some(asio::buffer(buffer_), [self = shared_from_this()](const beast::error_code& ec,
                                                                                  std::size_t n) {
            if (ec) return self->finish(ec == asio::error::eof ? "" : ec.message());
            if (!self->conn_->feed(std::string_view(self->buffer_.data(), n)))
                return self->finish(self->conn_->last_error());
            self->server_.answered();
            // An upload's bytes wait for its job: read on once they are written.
            // (No read is pending then: `paused_self_` keeps the session alive.)
            if (self->conn_->backlogged()) {
                self->paused_ = true;
                self->paused_self_ = self;
                return;
            }
            self->read();
        });
    }

    void finish(const std::string& why) {
        if (done_) return;
        done_ = true;
        auto keep = std::move(paused_self_);  // released when this returns (callers hold the session too)
        if (!why.empty()) spdlog::info("client #{}: libvirt connection closed: {}", peer_.serial, why);
        {
            std::lock_guard lock(pending_mutex_);
            gone_ = true;
        }
        pending_cv_.notify_all();
        conn_->closed();
        beast::error_code ec;
        socket_.shutdown(Socket::shutdown_both, ec);
        socket_.close(ec);
        queue_.clear();
    }

    // Bytes handed to send() and not yet written (or dropped).
    void pending_add(std::size_t n) {
        std::lock_guard lock(pending_mutex_);
        pending_ += n;
    }
    void pending_done(std::size_t n) {
        {
            std::lock_guard lock(pending_mutex_);
            pending_ -= std::min(n, pending_);
        }
        pending_cv_.notify_all();
    }

    // A client that stops reading while events or replies pile up is
    // dropped rather than let the daemon's memory grow without bound.
    static constexpr std::size_t kMaxQueued = 64u << 20;

    void enqueue(std::string packet) {
        if (done_) return pending_done(packet.size());
        queued_ += packet.size();
        if (queued_ > kMaxQueued) return finish("the client stopped reading (64 MiB of answers queued)");
        queue_.push_back(std::move(packet));
        if (queue_.size() == 1) write();
    }

    void write() {
        asio::async_write(socket_, asio::buffer(queue_.front()),
                          [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
                              if (ec) return self->finish(ec.message());
                              if (self->queue_.empty()) return;
                              self->queued_ -= self->queue_.front().size();
                              self->pending_done(self->queue_.front().size());
                              self->queue_.pop_front();
                              if (!self->queue_.empty()) self->write();
                          });
    }

    Server::Impl& server_;
    ConnectionCount count_;
    Socket socket_;
    Peer peer_;
    std::shared_ptr<rpc::Connection> conn_;
    std::array<char, std::size_t{64} * 1024> buffer_{};
    std::deque<std::string> queue_;
    std::size_t queued_ = 0;
    bool done_ = false;
    bool paused_ = false;  // not reading: an upload is backlogged
    std::shared_ptr<RpcSession> paused_self_;  // what keeps the session while nothing is pending
    std::mutex pending_mutex_;
    std::condition_variable pending_cv_;
    std::size_t pending_ = 0;
    bool gone_ = false;
};

}  // namespace

void Server::Impl::accept(Acceptor& acceptor, bool read_only, Protocol protocol) {
    acceptor.async_accept([this, &acceptor, read_only, protocol](const beast::error_code& ec, Socket socket) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
            set_cloexec(socket.native_handle());
            Peer peer = peer_of(socket, read_only, next_serial++);
            spdlog::info("client #{} connected: pid {} uid {} gid {}{}{}", peer.serial, peer.pid, peer.uid, peer.gid,
                         read_only ? " (read-only socket)" : "",
                         protocol == Protocol::Libvirt ? " (libvirt remote protocol)" : "");
            if (protocol == Protocol::Libvirt) RpcSession::start(*this, std::move(socket), peer);
            else std::make_shared<HttpSession>(*this, std::move(socket), peer)->start();
        } else {
            spdlog::warn("accept failed: {}", ec.message());
        }
        accept(acceptor, read_only, protocol);
    });
}

Server::Server(driver::Driver& driver, unsigned job_threads)
    : impl_(std::make_unique<Impl>(driver, job_threads)) {}

Server::~Server() { impl_->dispatcher.join(); }

Status Server::listen(const ListenOptions& o) {
    std::error_code fec;
    std::filesystem::remove(o.path, fec);  // a stale socket of a dead daemon
    auto& acceptor = impl_->acceptors.emplace_back(impl_->ioc);
    beast::error_code ec;
    asio::local::stream_protocol::endpoint ep(o.path.native());
    acceptor.open(ep.protocol(), ec);
    if (!ec) set_cloexec(acceptor.native_handle());
    if (!ec) acceptor.bind(ep, ec);
    if (ec) {
        impl_->acceptors.pop_back();
        return fail(ErrorCode::System, "cannot bind socket {}: {}", o.path.native(), ec.message());
    }
    // Permissions before listen(): nobody can connect in between.
    if (o.group && ::chown(o.path.c_str(), static_cast<uid_t>(-1), *o.group) != 0)
        return fail_errno(fmt::format("cannot give socket {} to group {}", o.path.native(), *o.group));
    if (::chmod(o.path.c_str(), o.mode) != 0)
        return fail_errno(fmt::format("cannot set the permissions of socket {}", o.path.native()));
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail(ErrorCode::System, "cannot listen on {}: {}", o.path.native(), ec.message());
    spdlog::info("listening on {} ({}, {}, mode {:04o})", o.path.native(),
                 o.protocol == Protocol::Libvirt ? "libvirt remote protocol" : "HTTP API",
                 o.read_only ? "read-only" : "read-write", o.mode);
    impl_->accept(acceptor, o.read_only, o.protocol);
    return {};
}

void Server::run() { impl_->ioc.run(); }

void Server::stop() {
    asio::post(impl_->ioc, [impl = impl_.get()] {
        beast::error_code ec;
        for (auto& a : impl->acceptors) a.close(ec);
        for (auto& t : impl->timers) t.cancel();
        impl->work.reset();
        impl->ioc.stop();
    });
}

void Server::post_job(std::function<void()> f) { impl_->dispatcher.post_job(std::move(f)); }

namespace {
void arm(asio::steady_timer& timer, std::chrono::milliseconds period, const std::shared_ptr<std::function<void()>>& f) {
    timer.expires_after(period);
    timer.async_wait([&timer, period, f](const beast::error_code& ec) {
        if (ec) return;
        (*f)();
        arm(timer, period, f);
    });
}
}  // namespace

void Server::every(std::chrono::milliseconds period, std::function<void()> f) {
    auto& timer = impl_->timers.emplace_back(impl_->ioc);
    arm(timer, period, std::make_shared<std::function<void()>>(std::move(f)));
}

std::size_t Server::connection_count() const { return impl_->connections.load(); }

}  // namespace vireo::daemon
