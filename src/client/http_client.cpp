#include "client/http_client.hpp"
// Boost.Asio trips GCC 12's -Wnull-dereference in its own headers (a
// middle-end warning that system-header suppression does not cover).
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

#include <array>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "wire/wire.hpp"

namespace vireo::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using Socket = asio::local::stream_protocol::socket;

namespace {

constexpr std::uint64_t kMaxBody = 256u << 20;
constexpr const char* kUserAgent = "libvireo/1";

Error lost(const Transport& t, const beast::error_code& ec) {
    return Error{ErrorCode::Connection, fmt::format("connection to {} lost: {}", t.describe(), ec.message())};
}

// An asio socket on `ioc` owning a connected fd from the transport.
Result<Socket> open_socket(Transport& transport, asio::io_context& ioc) {
    auto fd = transport.open();
    if (!fd) return std::unexpected(fd.error());
    Socket socket(ioc);
    beast::error_code ec;
    socket.assign(asio::local::stream_protocol(), fd->get(), ec);
    if (ec) return fail(ErrorCode::System, "cannot use the socket to {}: {}", transport.describe(), ec.message());
    fd->release();
    return socket;
}

// A connected stream socket for Beast's synchronous HTTP functions, with
// plain blocking readv/sendmsg on the descriptor. Request/answer exchanges
// need no event loop, and an asio io_context costs every vireo invocation
// an epoll set, an eventfd, a timerfd and their registrations.
class BlockingStream {
public:
    explicit BlockingStream(UniqueFd fd) : fd_(std::move(fd)) {}

    [[nodiscard]] int native_handle() const { return fd_.get(); }

    template <class MutableBuffers>
    std::size_t read_some(const MutableBuffers& buffers, beast::error_code& ec) {
        return transfer(buffers, ec, [this](iovec* iov, int n) { return ::readv(fd_.get(), iov, n); });
    }

    template <class ConstBuffers>
    std::size_t write_some(const ConstBuffers& buffers, beast::error_code& ec) {
        return transfer(buffers, ec, [this](iovec* iov, int n) {
            msghdr msg{};
            msg.msg_iov = iov;
            msg.msg_iovlen = static_cast<std::size_t>(n);
            return ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
        });
    }

    // The throwing forms complete the SyncStream concepts; Beast's
    // error_code overloads, the only ones used here, never call them.
    template <class MutableBuffers>
    std::size_t read_some(const MutableBuffers& buffers) {
        return or_throw([&](beast::error_code& ec) { return read_some(buffers, ec); });
    }
    template <class ConstBuffers>
    std::size_t write_some(const ConstBuffers& buffers) {
        return or_throw([&](beast::error_code& ec) { return write_some(buffers, ec); });
    }

private:
    static constexpr int kMaxIov = 16;

    // One readv/sendmsg (`call`) over `buffers`, retried on EINTR; 0 bytes
    // transferred with buffers to fill is the end of the stream.
    template <class Buffers, class Call>
    static std::size_t transfer(const Buffers& buffers, beast::error_code& ec, Call call) {
        std::array<iovec, kMaxIov> iov{};
        const int n = to_iovecs(buffers, iov);
        ec = {};
        if (n == 0) return 0;
        for (;;) {
            const ssize_t done = call(iov.data(), n);
            if (done > 0) return static_cast<std::size_t>(done);
            if (done == 0) {
                ec = asio::error::eof;
                return 0;
            }
            if (errno == EINTR) continue;
            ec = beast::error_code(errno, boost::system::system_category());
            return 0;
        }
    }

    template <class Op>
    static std::size_t or_throw(Op op) {
        beast::error_code ec;
        const std::size_t n = op(ec);
        if (ec) throw boost::system::system_error(ec);
        return n;
    }

    template <class Buffers>
    static int to_iovecs(const Buffers& buffers, std::array<iovec, kMaxIov>& iov) {
        int n = 0;
        for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers) && n < kMaxIov;
             ++it) {
            auto b = *it;
            if (b.size() == 0) continue;
            // iovec wants a non-const pointer; writes only read through it.
            iov[static_cast<std::size_t>(n++)] = {const_cast<void*>(static_cast<const void*>(b.data())), b.size()};
        }
        return n;
    }

    UniqueFd fd_;
};

// True when the peer already closed (or reset) a kept-alive connection:
// readable with nothing requested means EOF or an error is pending.
bool peer_closed(const BlockingStream& stream) {
    pollfd p{stream.native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
}

// Run the WebSocket handshake; an HTTP error answer becomes the daemon's Error.
Status handshake(websocket::stream<Socket>& ws, const Transport& transport, std::string_view target) {
    websocket::response_type res;
    beast::error_code ec;
    ws.set_option(websocket::stream_base::decorator(
        [](websocket::request_type& req) { req.set(http::field::user_agent, kUserAgent); }));
    ws.handshake(res, "localhost", target, ec);
    if (!ec) return {};
    if (res.result_int() >= 400) return std::unexpected(wire::error_from_body(res.result_int(), res.body()));
    return std::unexpected(lost(transport, ec));
}

}  // namespace

// ---------------------------------------------------------------------------
// HttpConnection

// Room kept in a connection's read buffer (see Impl::connect).
constexpr std::size_t kReadChunk = std::size_t{64} * 1024;

struct HttpConnection::Impl {
    std::shared_ptr<Transport> transport;
    std::optional<BlockingStream> socket;
    beast::flat_buffer buffer;

    Status connect() {
        auto fd = transport->open();
        if (!fd) return std::unexpected(fd.error());
        socket.emplace(std::move(*fd));
        buffer.clear();
        // Beast reads as much as the buffer has room for, at least 512
        // bytes: with room reserved, a large answer (list of 1000 domains,
        // ~270 KB) arrives in a few reads instead of one per 512 bytes.
        buffer.reserve(kReadChunk);
        return {};
    }
    void disconnect() {
        socket.reset();  // closes the descriptor
        buffer.clear();
    }
};

HttpConnection::HttpConnection(std::shared_ptr<Transport> transport) : impl_(std::make_unique<Impl>()) {
    impl_->transport = std::move(transport);
}

HttpConnection::~HttpConnection() = default;

Status HttpConnection::open() {
    if (impl_->socket) return {};
    return impl_->connect();
}

Result<HttpResponse> HttpConnection::request(std::string_view method, std::string_view target, std::string_view body,
                                             std::string_view content_type) {
    auto verb = http::string_to_verb(method);
    if (verb == http::verb::unknown) return fail(ErrorCode::Internal, "unknown HTTP method '{}'", method);
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "localhost");
    req.set(http::field::user_agent, kUserAgent);
    if (!body.empty() || verb == http::verb::post || verb == http::verb::put) {
        req.body() = std::string(body);
        if (!content_type.empty()) req.set(http::field::content_type, content_type);
        req.prepare_payload();
    }
    const bool idempotent = verb == http::verb::get;
    Impl& d = *impl_;
    for (int attempt = 0;; ++attempt) {
        bool reused = d.socket.has_value();
        if (reused && peer_closed(*d.socket)) {
            d.disconnect();
            reused = false;
        }
        if (!d.socket) VIREO_TRY(d.connect());
        beast::error_code ec;
        http::write(*d.socket, req, ec);
        http::response_parser<http::string_body> parser;
        parser.body_limit(kMaxBody);
        if (!ec) http::read(*d.socket, d.buffer, parser, ec);
        if (ec) {
            d.disconnect();
            // A kept-alive connection may have been closed by the daemon
            // (restart); a query is safe to send again on a new one.
            if (reused && idempotent && attempt == 0) continue;
            return std::unexpected(lost(*d.transport, ec));
        }
        auto res = parser.release();
        if (!res.keep_alive()) d.disconnect();
        HttpResponse out;
        out.status = res.result_int();
        out.content_type = std::string(res[http::field::content_type]);
        out.body = std::move(res.body());
        return out;
    }
}

// ---------------------------------------------------------------------------
// Event stream

namespace {

struct EventStreamState {
    asio::io_context ioc;
    std::optional<websocket::stream<Socket>> ws;
    beast::flat_buffer buffer;
    std::function<void(std::string_view)> on_text;
    std::atomic<bool> stopped{false};
    std::shared_ptr<Transport> transport;  // to name the daemon in errors
    // Set once when the daemon ends the stream (it died, or closed it).
    mutable std::mutex mutex;
    std::optional<Error> lost_error;
};

void read_events(const std::shared_ptr<EventStreamState>& s) {
    s->ws->async_read(s->buffer, [s](const beast::error_code& ec, std::size_t) {
        if (s->stopped) return;
        if (ec) {
            std::lock_guard lock(s->mutex);
            s->lost_error = lost(*s->transport, ec);
            return;
        }
        std::string text = beast::buffers_to_string(s->buffer.data());
        s->buffer.consume(s->buffer.size());
        s->on_text(text);
        read_events(s);
    });
}

class EventStream final : public driver::Subscription {
public:
    explicit EventStream(std::shared_ptr<EventStreamState> state) : state_(std::move(state)) {
        thread_ = std::thread([s = state_] { s->ioc.run(); });
    }
    ~EventStream() override {
        state_->stopped = true;
        try {
            asio::post(state_->ioc, [s = state_] {
                beast::error_code ec;
                s->ws->next_layer().shutdown(Socket::shutdown_both, ec);
                s->ws->next_layer().close(ec);
            });
        } catch (const std::exception&) {
            // Out of memory for the posted handler: stop the loop outright
            // (the socket closes with the state) rather than throw from here.
            state_->ioc.stop();
        }
        // Destroyed from inside the callback: the thread ends by itself.
        if (thread_.get_id() == std::this_thread::get_id()) {
            thread_.detach();
            return;
        }
        if (thread_.joinable()) thread_.join();
        // When the daemon ended the stream, the loop had already run out of
        // work before the close above was posted: run it here, or the posted
        // handler (which holds the state) stays queued in the state's own
        // io_context and the two keep each other alive.
        try {
            state_->ioc.restart();
            state_->ioc.run();
        } catch (const std::exception&) {
            // Ignored: a handler threw: nothing is left to close that the state's
            // destruction does not close anyway.
        }
    }

    [[nodiscard]] std::optional<Error> lost() const override {
        std::lock_guard lock(state_->mutex);
        return state_->lost_error;
    }

private:
    std::shared_ptr<EventStreamState> state_;
    std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<driver::Subscription>> open_event_stream(const std::shared_ptr<Transport>& transport,
                                                                 std::string_view target,
                                                                 std::function<void(std::string_view)> on_text) {
    auto state = std::make_shared<EventStreamState>();
    state->on_text = std::move(on_text);
    state->transport = transport;
    auto socket = open_socket(*transport, state->ioc);
    if (!socket) return std::unexpected(socket.error());
    state->ws.emplace(std::move(*socket));
    VIREO_TRY(handshake(*state->ws, *transport, target));
    read_events(state);
    return std::make_unique<EventStream>(std::move(state));
}

// ---------------------------------------------------------------------------
// Console bridge: WebSocket <-> socketpair, on a detached thread that ends
// when either side closes.

namespace {

struct ConsoleBridge : std::enable_shared_from_this<ConsoleBridge> {
    asio::io_context ioc;
    std::optional<websocket::stream<Socket>> ws;
    std::optional<asio::posix::stream_descriptor> local;
    beast::flat_buffer ws_buffer;
    std::array<char, 4096> local_buffer{};
    bool closing = false;

    void close_all() {
        if (closing) return;
        closing = true;
        beast::error_code ec;
        local->close(ec);
        ws->next_layer().shutdown(Socket::shutdown_both, ec);
        ws->next_layer().close(ec);
    }

    void read_ws() {
        ws->async_read(ws_buffer, [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
            if (ec) return self->close_all();
            asio::async_write(*self->local, self->ws_buffer.data(),
                              [self](const beast::error_code& wec, std::size_t n) {
                                  self->ws_buffer.consume(n);
                                  if (wec) return self->close_all();
                                  self->read_ws();
                              });
        });
    }

    void read_local() {
        local->async_read_some(asio::buffer(local_buffer), [self = shared_from_this()](const beast::error_code& ec,
                                                                                         std::size_t n) {
            if (ec) {
                // The user closed the console: say goodbye, then drop everything.
                if (self->closing) return;
                self->ws->async_close(websocket::close_code::normal,
                                      [self](const beast::error_code&) { self->close_all(); });
                return;
            }
            self->ws->async_write(asio::buffer(self->local_buffer.data(), n),
                                  [self](const beast::error_code& wec, std::size_t) {
                                      if (wec) return self->close_all();
                                      self->read_local();
                                  });
        });
    }
};

}  // namespace

Result<UniqueFd> open_console_stream(const std::shared_ptr<Transport>& transport, std::string_view target) {
    auto bridge = std::make_shared<ConsoleBridge>();
    auto socket = open_socket(*transport, bridge->ioc);
    if (!socket) return std::unexpected(socket.error());
    bridge->ws.emplace(std::move(*socket));
    VIREO_TRY(handshake(*bridge->ws, *transport, target));
    bridge->ws->binary(true);

    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return fail_errno("socketpair");
    UniqueFd user_end(pair[0]);
    bridge->local.emplace(bridge->ioc, pair[1]);
    bridge->read_ws();
    bridge->read_local();
    std::thread([bridge] { bridge->ioc.run(); }).detach();
    return user_end;
}

}  // namespace vireo::client
