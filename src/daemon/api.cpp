#include "daemon/api.hpp"

#include <exception>

#include <fmt/format.h>

namespace vireo::daemon {

namespace ops = driver::ops;
namespace http = wire::http;

ApiResponse to_response(http::Answer a) { return ApiResponse{a.status, std::move(a.content_type), std::move(a.body)}; }

ApiResponse error_response(const Error& e) { return to_response(http::error_answer(e)); }

ApiResponse not_found(std::string_view method, std::string_view target) {
    auto r = error_response(Error{ErrorCode::Unsupported,
                                  fmt::format("vireod has no API route {} {}", method, target.substr(0, 200))});
    r.status = 404;
    return r;
}

ApiResponse read_only_refusal(std::string_view method, std::string_view target) {
    return error_response(Error{ErrorCode::PermissionDenied,
                                fmt::format("operation forbidden: read only access prevents {} {}", method,
                                            target.substr(0, target.find('?')))});
}

std::string outcome(const ApiResponse& r) {
    return r.status >= 400 ? fmt::format("{}: {}", r.status, r.body) : fmt::format("{}", r.status);
}

RouteInfo classify(std::string_view method, std::string_view target) {
    RouteInfo info;
    auto m = http::match(method, target);
    if (!m || !m->has_value()) return info;
    const auto& op = *ops::kInfos[(*m)->op];
    info.mutating = !op.read_only_allowed;
    switch (op.lane) {
        case ops::Lane::Inline: info.kind = RouteKind::MemoryQuery; break;
        case ops::Lane::Query: info.kind = RouteKind::Query; break;
        case ops::Lane::Job:
        case ops::Lane::Urgent: info.kind = RouteKind::Job; break;
    }
    const std::size_t index = (*m)->op;
    if (index == ops::index_of<ops::HostEvents> || index == ops::index_of<ops::NetworkEvents>)
        info.kind = RouteKind::EventStream;
    if (index == ops::index_of<ops::VolumeDownload> || index == ops::index_of<ops::VolumeUpload>)
        info.kind = RouteKind::VolumeStream;
    if (index == ops::index_of<ops::DomainConsole>) {
        info.kind = RouteKind::Console;
        if (auto r = http::decode_request<ops::DomainConsole>(**m, {})) {
            info.domain = r->ref;
            info.device = r->device;
        }
    }
    return info;
}

namespace {

// The WebSocket endpoints answer plain HTTP with 426.
ApiResponse websocket_only(std::string_view target) {
    auto r = error_response(
        Error{ErrorCode::InvalidArg, fmt::format("{} is a WebSocket endpoint", target.substr(0, 200))});
    r.status = 426;
    return r;
}

template <class Op>
ApiResponse answer(const Result<typename Op::Reply>& r) {
    return to_response(http::encode_reply<Op>(r));
}

}  // namespace

ApiResponse Api::handle(const ApiRequest& req) {
    auto m = http::match(req.method, req.target);
    if (!m) return error_response(m.error());
    if (!m->has_value()) return not_found(req.method, req.target);
    ApiResponse out;
    ops::visit_op((*m)->op, [&]<class Op>() {
        if constexpr (ops::is_stream(Op::info.kind)) {
            out = websocket_only(req.target);
        } else {
            auto decoded = http::decode_request<Op>(**m, req.body);
            if (!decoded) {
                out = error_response(decoded.error());
                return;
            }
            try {
                out = answer<Op>(perform<Op>(driver_, *decoded));
            } catch (const std::exception& e) {
                out = error_response(
                    Error{ErrorCode::Internal, fmt::format("internal error in operation {}: {}", Op::info.name, e.what())});
            }
        }
    });
    return out;
}

void Api::submit(Dispatcher& dispatcher, const Peer& peer, const http::Match& m, const ApiRequest& req, Reply reply) {
    ops::visit_op(m.op, [&]<class Op>() {
        if constexpr (ops::is_stream(Op::info.kind)) {
            reply(websocket_only(req.target));
        } else {
            auto decoded = http::decode_request<Op>(m, req.body);
            if (!decoded) {
                reply(error_response(decoded.error()));
                return;
            }
            dispatcher.submit<Op>(peer, std::move(*decoded), fmt::format("{} {}", req.method, req.target),
                                  [reply = std::move(reply)](const Result<typename Op::Reply>& r) {
                                      return reply(answer<Op>(r));
                                  });
        }
    });
}

}  // namespace vireo::daemon
