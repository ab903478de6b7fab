#include "client/volume_stream.hpp"
// Boost.Asio trips GCC 12's -Wnull-dereference in its own headers (a
// middle-end warning that system-header suppression does not cover).
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <optional>

#include "wire/pool_wire.hpp"
#include "wire/wire.hpp"

namespace vireo::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using Socket = asio::local::stream_protocol::socket;

namespace {

// Large enough for any chunk the daemon sends (it sends at most a few MiB).
constexpr std::uint64_t kMaxMessage = 64u << 20;
// Beast masks what a client sends through a buffer of this size and writes
// it out one buffer at a time; its default (4 KiB) made a 1 GiB upload
// 262144 sendmsg calls.
constexpr std::size_t kWriteBuffer = 1u << 20;

Error lost(const Transport& t, const beast::error_code& ec) {
    return Error{ErrorCode::Connection,
                 fmt::format("volume stream to {} lost: {}", t.describe(), ec.message())};
}

// A connected, handshaken WebSocket of one transfer.
struct StreamConnection {
    asio::io_context ioc;
    std::optional<websocket::stream<Socket>> ws;
    beast::flat_buffer buffer;

    Status open(Transport& transport, std::string_view target) {
        auto fd = transport.open();
        if (!fd) return std::unexpected(fd.error());
        Socket socket(ioc);
        beast::error_code ec;
        socket.assign(asio::local::stream_protocol(), fd->get(), ec);
        if (ec)
            return fail(ErrorCode::System, "cannot use the socket to {}: {}", transport.describe(),
                        ec.message());
        fd->release();
        ws.emplace(std::move(socket));
        ws->read_message_max(kMaxMessage);
        ws->write_buffer_bytes(kWriteBuffer);
        ws->set_option(websocket::stream_base::decorator(
            [](websocket::request_type& req) { req.set(http::field::user_agent, "libvireo/1"); }));
        websocket::response_type res;
        ws->handshake(res, "localhost", target, ec);
        if (!ec) return {};
        if (res.result_int() >= 400)
            return std::unexpected(wire::error_from_body(res.result_int(), res.body()));
        return std::unexpected(lost(transport, ec));
    }

    // The next message: its bytes (valid until the next read) and whether it
    // is binary. A lost connection is abandoned.
    Result<std::pair<std::string_view, bool>> read_message(const Transport& transport) {
        beast::error_code ec;
        buffer.clear();
        ws->read(buffer, ec);
        if (ec) {
            abandon();
            return std::unexpected(lost(transport, ec));
        }
        auto bytes = buffer.cdata();
        return std::pair{std::string_view(static_cast<const char*>(bytes.data()), bytes.size()),
                         ws->got_binary()};
    }

    // A text message as a control message; a malformed one is abandoned.
    Result<wire::StreamControl> parse_control(std::string_view text) {
        auto control = wire::parse_stream_control(text);
        if (!control) abandon();
        return control;
    }

    // Drop the connection without a closing handshake (after an error).
    void abandon() {
        beast::error_code ec;
        ws->next_layer().shutdown(Socket::shutdown_both, ec);
        ws->next_layer().close(ec);
    }

    void close() {
        beast::error_code ec;
        ws->close(websocket::close_code::normal, ec);
        // Reading after close() is not needed: Beast's close waits for the peer's.
        abandon();
    }
};

}  // namespace

Status download_stream(const std::shared_ptr<Transport>& transport, std::string_view target,
                       const driver::StreamSink& sink) {
    StreamConnection c;
    VIREO_TRY(c.open(*transport, target));
    for (;;) {
        auto message = c.read_message(*transport);
        if (!message) return std::unexpected(message.error());
        const auto [text, binary] = *message;
        if (binary) {
            if (text.empty()) continue;
            if (auto r = sink(
                    driver::StreamChunk{false, text.size(), std::span<const char>(text.data(), text.size())});
                !r) {
                c.abandon();  // the daemon stops when its next write fails
                return r;
            }
            continue;
        }
        auto control = c.parse_control(text);
        if (!control) return std::unexpected(control.error());
        using Kind = wire::StreamControl::Kind;
        switch (control->kind) {
            case Kind::Hole:
                if (auto r = sink(driver::StreamChunk{true, control->hole, {}}); !r) {
                    c.abandon();
                    return r;
                }
                break;
            case Kind::End:
                c.close();
                return {};
            case Kind::Error:
                c.close();
                return std::unexpected(control->error);
            default:
                c.abandon();
                return fail(ErrorCode::Protocol, "unexpected message in a volume download: '{}'",
                            text.substr(0, 200));
        }
    }
}

namespace {

// The daemon's answer once the upload ended (or was aborted): done or error.
Status upload_verdict(StreamConnection& c, const Transport& transport) {
    for (;;) {
        auto message = c.read_message(transport);
        if (!message) return std::unexpected(message.error());
        if (message->second) continue;
        auto control = c.parse_control(message->first);
        if (!control) return std::unexpected(control.error());
        if (control->kind == wire::StreamControl::Kind::Done) {
            c.close();
            return {};
        }
        if (control->kind == wire::StreamControl::Kind::Error) {
            c.close();
            return std::unexpected(control->error);
        }
    }
}

}  // namespace

Status upload_stream(const std::shared_ptr<Transport>& transport, std::string_view target,
                     const driver::StreamSource& source) {
    StreamConnection c;
    VIREO_TRY(c.open(*transport, target));
    for (;;) {
        auto chunk = source();
        beast::error_code ec;
        if (!chunk) {
            // Tell the daemon to stop and keep nothing half-done secret; the
            // local error is the one the user needs.
            c.ws->text(true);
            c.ws->write(asio::buffer(wire::stream_abort(chunk.error().full_message())), ec);
            if (!ec)
                (void)upload_verdict(c, *transport);
            else
                c.abandon();
            return std::unexpected(chunk.error());
        }
        if (chunk->length == 0) {
            c.ws->text(true);
            c.ws->write(asio::buffer(wire::stream_end()), ec);
            if (ec) {
                c.abandon();
                return std::unexpected(lost(*transport, ec));
            }
            return upload_verdict(c, *transport);
        }
        if (chunk->hole) {
            c.ws->text(true);
            c.ws->write(asio::buffer(wire::stream_hole(chunk->length)), ec);
        } else {
            if (chunk->data.size() != chunk->length) {
                c.abandon();
                return fail(ErrorCode::Internal, "upload chunk of {} bytes carries {} bytes of data",
                            chunk->length, chunk->data.size());
            }
            c.ws->binary(true);
            c.ws->write(asio::buffer(chunk->data.data(), chunk->data.size()), ec);
        }
        if (ec) {
            // The daemon closed on us: its error message may be waiting.
            auto verdict = upload_verdict(c, *transport);
            if (!verdict) return verdict;
            return std::unexpected(lost(*transport, ec));
        }
    }
}

}  // namespace vireo::client
