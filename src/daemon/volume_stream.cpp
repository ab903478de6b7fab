// Boost.Asio trips GCC 12's -Wnull-dereference in its own headers (a
// middle-end warning that system-header suppression does not cover).
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include "daemon/volume_stream.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

#include "daemon/api.hpp"
#include "wire/pool_wire.hpp"
#include "wire/wire.hpp"

namespace vireo::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using Socket = asio::local::stream_protocol::socket;
using Ws = websocket::stream<Socket>;

namespace {

// Upload messages are at most this big (clients send chunks of a few MiB).
constexpr std::uint64_t kMaxMessage = 64u << 20;

// An HTTP error answer instead of the upgrade.
void refuse(Socket& socket, const Error& e, unsigned http_version) {
    ApiResponse r = error_response(e);
    http::response<http::string_body> res{static_cast<http::status>(r.status), http_version};
    res.set(http::field::server, "vireod");
    res.set(http::field::content_type, r.content_type);
    res.body() = std::move(r.body);
    res.keep_alive(false);
    res.prepare_payload();
    beast::error_code ec;
    http::write(socket, res, ec);
    socket.shutdown(Socket::shutdown_both, ec);
    socket.close(ec);
}

Status send_text(Ws& ws, const std::string& text) {
    beast::error_code ec;
    ws.text(true);
    ws.write(asio::buffer(text), ec);
    if (ec) return fail(ErrorCode::Connection, "the client went away: {}", ec.message());
    return {};
}

Status run_download(Ws& ws, driver::Driver& driver, const VolumeStream& t) {
    auto sink = [&ws](const driver::StreamChunk& chunk) -> Status {
        if (chunk.length == 0) return {};
        if (chunk.hole) return send_text(ws, wire::stream_hole(chunk.length));
        beast::error_code ec;
        ws.binary(true);
        ws.write(asio::buffer(chunk.data.data(), chunk.data.size()), ec);
        if (ec) return fail(ErrorCode::Connection, "the client went away: {}", ec.message());
        return {};
    };
    auto r = driver.pools().download_volume(t.pool, t.volume, t.range, sink);
    if (!r) {
        (void)send_text(ws, wire::stream_error(r.error()));
        return r;
    }
    return send_text(ws, wire::stream_end());
}

// The upload's message source; remembers whether the client's last word
// (end / abort) was read.
struct UploadSource {
    Ws& ws;
    beast::flat_buffer buffer;
    bool finished = false;

    Result<driver::StreamChunk> next() {
        if (finished) return driver::StreamChunk{};
        beast::error_code ec;
        buffer.clear();
        ws.read(buffer, ec);
        if (ec) {
            finished = true;
            return fail(ErrorCode::Connection, "the client went away during the upload: {}", ec.message());
        }
        auto bytes = buffer.cdata();
        const char* data = static_cast<const char*>(bytes.data());
        if (ws.got_binary()) return driver::StreamChunk{false, bytes.size(), std::span<const char>(data, bytes.size())};
        auto control = wire::parse_stream_control(std::string_view(data, bytes.size()));
        if (!control) {
            finished = true;
            return std::unexpected(control.error());
        }
        using Kind = wire::StreamControl::Kind;
        switch (control->kind) {
            case Kind::Hole: return driver::StreamChunk{true, control->hole, {}};
            case Kind::End: finished = true; return driver::StreamChunk{};
            case Kind::Abort: finished = true; return std::unexpected(control->error);
            default:
                finished = true;
                return fail(ErrorCode::Protocol, "unexpected message in a volume upload");
        }
    }

    // Read and drop what the client still sends, up to its last word.
    void drain() {
        while (!finished) {
            auto c = next();
            if (!c) break;
        }
    }
};

Status run_upload(Ws& ws, driver::Driver& driver, const VolumeStream& t) {
    UploadSource src{ws, {}, false};
    auto r = driver.pools().upload_volume(t.pool, t.volume, t.range, [&src] { return src.next(); });
    if (!r) {
        // Say why first (the client reads it once it has sent everything).
        (void)send_text(ws, wire::stream_error(r.error()));
        src.drain();
        return r;
    }
    src.drain();
    return send_text(ws, wire::stream_done());
}

}  // namespace

std::string serve_volume_stream(driver::Driver& driver, Socket socket, const http::request<http::string_body>& req,
                                const VolumeStream& t, const std::string& peer) {
    // The common mistakes (no such pool or volume) get a plain HTTP error.
    if (auto v = driver.pools().lookup_volume(t.pool, t.volume); !v) {
        refuse(socket, v.error(), req.version());
        return fmt::format("{}: {}", wire::http_status_for(v.error().code), v.error().full_message());
    }

    Ws ws(std::move(socket));
    ws.read_message_max(kMaxMessage);
    // Beast cuts outgoing messages into frames of its write buffer (4 KiB by
    // default): a download chunk goes out as one frame instead.
    ws.auto_fragment(false);
    beast::error_code ec;
    ws.accept(req, ec);
    if (ec) {
        spdlog::warn("{}: volume stream {} refused: {}", peer, std::string(req.target()), ec.message());
        return fmt::format("no WebSocket: {}", ec.message());
    }
    Status r = t.upload ? run_upload(ws, driver, t) : run_download(ws, driver, t);
    ws.close(websocket::close_code::normal, ec);
    ws.next_layer().shutdown(Socket::shutdown_both, ec);
    ws.next_layer().close(ec);
    if (!r) {
        spdlog::warn("{}: {} of volume '{}' in pool '{}' failed: {}", peer, t.upload ? "upload" : "download",
                     t.volume, t.pool, r.error().full_message());
        return fmt::format("101, {} failed: {}", t.upload ? "upload" : "download", r.error().full_message());
    }
    return fmt::format("101, {} of volume '{}' in pool '{}' done", t.upload ? "upload" : "download", t.volume, t.pool);
}

}  // namespace vireo::daemon
