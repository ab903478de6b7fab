// The request helpers of vireod's HTTP API, shared by the RemoteDriver and
// its RemotePools: one exchange through a Caller, its answer as JSON, as a
// bare status, or decoded into a Driver type.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client/http_client.hpp"
#include "wire/wire.hpp"
#include "util/error.hpp"

namespace vireo::client {

class ApiCalls {
public:
    // One HTTP exchange on the owner's connection; non-2xx answers are the
    // daemon's Error.
    using Caller = std::function<Result<HttpResponse>(std::string_view method, const std::string& target,
                                                      std::string_view body, std::string_view content_type)>;

    explicit ApiCalls(Caller call) : call_(std::move(call)) {}

    Result<HttpResponse> call(std::string_view method, const std::string& target, std::string_view body = {},
                              std::string_view content_type = {}) const {
        return call_(method, target, body, content_type);
    }

    // The answer's body parsed as JSON.
    Result<nlohmann::json> call_json(std::string_view method, const std::string& target,
                                     std::string_view body = {}, std::string_view content_type = {}) const {
        auto res = call(method, target, body, content_type);
        if (!res) return std::unexpected(res.error());
        return wire::parse_json(res->body);
    }

    // Only whether it worked.
    Status call_status(std::string_view method, const std::string& target, std::string_view body = {},
                       std::string_view content_type = {}) const {
        auto res = call(method, target, body, content_type);
        if (!res) return std::unexpected(res.error());
        return {};
    }

    // The answer decoded by `decode` (a wire::*_from_json).
    template <class Decode>
    auto call_decoded(Decode decode, std::string_view method, const std::string& target,
                      std::string_view body = {}, std::string_view content_type = {}) const
        -> decltype(decode(nlohmann::json{})) {
        auto j = call_json(method, target, body, content_type);
        if (!j) return std::unexpected(j.error());
        return decode(*j);
    }

private:
    Caller call_;
};

// A JSON array decoded item by item (the first bad item is the error).
template <class T, class F>
Result<std::vector<T>> decode_array(const nlohmann::json& j, F decode) {
    if (!j.is_array())
        return fail(ErrorCode::Protocol, "malformed answer from vireod: expected a JSON array");
    std::vector<T> out;
    out.reserve(j.size());
    for (const auto& item : j) {
        auto v = decode(item);
        if (!v) return std::unexpected(v.error());
        out.push_back(std::move(*v));
    }
    return out;
}

}  // namespace vireo::client
