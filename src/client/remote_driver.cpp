#include "client/remote_driver.hpp"

#include "client/volume_stream.hpp"
#include "wire/network_wire.hpp"
#include "wire/wire.hpp"

#ifndef VIREO_VERSION
#define VIREO_VERSION "0.0.0"
#endif

namespace vireo::client {

namespace ops = driver::ops;
namespace http = wire::http;

RemoteDriver::RemoteDriver(std::string uri, std::shared_ptr<Transport> transport)
    : Driver(std::move(uri)), transport_(std::move(transport)), http_(transport_) {
    ops::for_each_op([this]<class Op>() {
        if constexpr (!ops::is_stream(Op::info.kind))
            on<Op>([this](const typename Op::Request& r) { return remote<Op>(r); });
    });
    install_streams();
    // The library's own version is this process's, not the daemon's.
    on<ops::HostVersion>([this](const ops::HostVersion::Request& r) {
        auto v = remote<ops::HostVersion>(r);
        if (v) v->library = VIREO_VERSION;
        return v;
    });
}

Status RemoteDriver::open() {
    std::lock_guard lk(mutex_);
    return http_.open();
}

Result<HttpResponse> RemoteDriver::exchange(const http::OutRequest& req) {
    Result<HttpResponse> res;
    {
        std::lock_guard lk(mutex_);
        res = http_.request(req.method, req.target, req.body, req.content_type);
    }
    if (!res) return res;
    if (res->status >= 200 && res->status < 300) return res;
    return std::unexpected(wire::error_from_body(res->status, res->body));
}

template <class Op>
Result<typename Op::Reply> RemoteDriver::remote(const typename Op::Request& request) {
    auto req = http::encode_request<Op>(request);
    if (!req) return std::unexpected(req.error());
    auto res = exchange(*req);
    if (!res) return std::unexpected(res.error());
    return http::decode_reply<Op>(std::move(res->body));
}

void RemoteDriver::install_streams() {
    on<ops::HostEvents>([this](const ops::HostEvents::Request& r) -> Result<std::unique_ptr<driver::Subscription>> {
        auto req = http::encode_request<ops::HostEvents>(r);
        if (!req) return std::unexpected(req.error());
        return open_event_stream(transport_, req->target, [cb = r.callback](std::string_view text) {
            auto j = wire::parse_json(text);
            if (!j) return;
            auto event = wire::event_from_json(*j);
            if (event) cb(*event);
        });
    });
    on<ops::NetworkEvents>([this](const ops::NetworkEvents::Request& r) -> Result<std::unique_ptr<driver::Subscription>> {
        auto req = http::encode_request<ops::NetworkEvents>(r);
        if (!req) return std::unexpected(req.error());
        return open_event_stream(transport_, req->target, [cb = r.callback](std::string_view text) {
            auto j = wire::parse_json(text);
            if (!j) return;
            auto event = wire::network_event_from_json(*j);
            if (event) cb(*event);
        });
    });
    on<ops::DomainConsole>([this](const ops::DomainConsole::Request& r) -> Result<UniqueFd> {
        auto req = http::encode_request<ops::DomainConsole>(r);
        if (!req) return std::unexpected(req.error());
        return open_console_stream(transport_, req->target);
    });
    on<ops::VolumeDownload>([this](const ops::VolumeDownload::Request& r) -> Status {
        auto req = http::encode_request<ops::VolumeDownload>(r);
        if (!req) return std::unexpected(req.error());
        return download_stream(transport_, req->target, r.sink);
    });
    on<ops::VolumeUpload>([this](const ops::VolumeUpload::Request& r) -> Status {
        auto req = http::encode_request<ops::VolumeUpload>(r);
        if (!req) return std::unexpected(req.error());
        return upload_stream(transport_, req->target, r.source);
    });
}

}  // namespace vireo::client
