// Building API answers, shared by the domain routes (api.cpp) and the pool
// routes (api_pools.cpp): JSON and XML bodies, 204 for a done action, 404 for
// an unknown route, errors with their code and message (error_response), and
// reading an action's JSON body.
#pragma once

#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "wire/pool_wire.hpp"
#include "wire/wire.hpp"
#include "daemon/api.hpp"

namespace vireo::daemon::api_reply {

using nlohmann::json;

inline constexpr const char* kXml = "application/xml";

inline ApiResponse json_response(const json& j, unsigned status = 200) {
    return ApiResponse{status, "application/json", j.dump()};
}

inline ApiResponse no_content() { return ApiResponse{204, "", ""}; }

inline ApiResponse not_found(std::string_view method, std::string_view target) {
    auto r = error_response(Error{ErrorCode::Unsupported,
                                  fmt::format("vireod has no API route {} {}", method, target.substr(0, 200))});
    r.status = 404;
    return r;
}

inline ApiResponse not_found(const ApiRequest& req) { return not_found(req.method, req.target); }

// The typed result as JSON (wire::to_json), or its error.
template <class T>
ApiResponse reply(const Result<T>& r, unsigned status = 200) {
    if (!r) return error_response(r.error());
    return json_response(wire::to_json(*r), status);
}

inline ApiResponse reply(const Status& s) {
    if (!s) return error_response(s.error());
    return no_content();
}

inline ApiResponse reply_text(const Result<std::string>& r, const char* content_type = kXml) {
    if (!r) return error_response(r.error());
    return ApiResponse{200, content_type, *r};
}

template <class T>
ApiResponse reply_array(const Result<std::vector<T>>& r) {
    if (!r) return error_response(r.error());
    json arr = json::array();
    for (const auto& item : *r) arr.push_back(wire::to_json(item));
    return json_response(arr);
}

// The JSON object of an action's body; an empty body is {}.
inline Result<json> body_object(const ApiRequest& req) {
    if (req.body.empty()) return json::object();
    auto j = json::parse(req.body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return fail(ErrorCode::InvalidArg, "the request body of {} {} must be a JSON object", req.method, req.target);
    return j;
}

inline bool body_bool(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_boolean() && it->get<bool>();
}

}  // namespace vireo::daemon::api_reply
