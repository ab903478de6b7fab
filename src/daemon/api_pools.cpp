#include "daemon/api_pools.hpp"
#include "daemon/api_reply.hpp"

#include <nlohmann/json.hpp>

#include "wire/pool_wire.hpp"
#include "wire/wire.hpp"

namespace vireo::daemon {

using nlohmann::json;

namespace {

using namespace api_reply;

std::string query_value(const QueryMap& q, std::string_view key) {
    auto it = q.find(key);
    return it == q.end() ? std::string{} : it->second;
}

driver::PoolBuildFlags build_flags(const json& b) {
    return {.overwrite = body_bool(b, "overwrite"), .no_overwrite = body_bool(b, "no_overwrite")};
}

driver::VolumeCreateFlags create_flags(const QueryMap& q) {
    return {.prealloc_metadata = wire::query_flag(q, "prealloc_metadata"), .reflink = wire::query_flag(q, "reflink")};
}

// POST /v1/pools/{ref}/<action>
ApiResponse pool_action(driver::PoolApi& p, const std::string& ref, const std::string& action, const ApiRequest& req) {
    auto body = body_object(req);
    if (!body) return error_response(body.error());
    const json& b = *body;
    if (action == "build") return reply(p.build_pool(ref, build_flags(b)));
    if (action == "start") return reply(p.start_pool(ref, body_bool(b, "build"), build_flags(b)));
    if (action == "destroy") return reply(p.destroy_pool(ref));
    if (action == "delete") return reply(p.delete_pool(ref));
    if (action == "refresh") return reply(p.refresh_pool(ref));
    return not_found(req);
}

// POST /v1/pools/{pool}/volumes/{vol}/<action>
ApiResponse volume_action(driver::PoolApi& p, const std::string& pool, const std::string& vol,
                          const std::string& action, const ApiRequest& req) {
    auto body = body_object(req);
    if (!body) return error_response(body.error());
    const json& b = *body;
    if (action == "wipe") {
        auto it = b.find("algorithm");
        std::string name = it != b.end() && it->is_string() ? it->get<std::string>() : "zero";
        auto algorithm = wire::wipe_algorithm_from_name(name);
        if (!algorithm)
            return error_response(
                Error{ErrorCode::InvalidArg, fmt::format("unknown wipe algorithm '{}' (known: zero, random, trim)", name)});
        return reply(p.wipe_volume(pool, vol, *algorithm));
    }
    if (action == "resize") {
        auto it = b.find("capacity");
        if (it == b.end() || !it->is_number_unsigned())
            return error_response(Error{ErrorCode::InvalidArg, "resize needs a \"capacity\" in bytes in the body"});
        return reply(p.resize_volume(pool, vol, it->get<std::uint64_t>(),
                                     {.delta = body_bool(b, "delta"),
                                      .shrink = body_bool(b, "shrink"),
                                      .allocate = body_bool(b, "allocate")}));
    }
    return not_found(req);
}

// /v1/pools/{pool}/volumes...
ApiResponse volume_route(driver::PoolApi& p, const std::vector<std::string>& s, const QueryMap& q,
                         const ApiRequest& req) {
    const std::string& pool = s[1];
    const std::string& m = req.method;
    if (s.size() == 3) {
        if (s[2] == "volumes" && m == "GET") return reply_array(p.list_volumes(pool));
        if (s[2] == "volumes" && m == "POST") return reply(p.create_volume(pool, req.body, create_flags(q)), 201);
        if (s[2] == "volumes:from" && m == "POST") {
            auto src_vol = query_value(q, "source_volume");
            if (src_vol.empty())
                return error_response(Error{ErrorCode::InvalidArg, "volumes:from needs ?source_volume= (and source_pool=)"});
            return reply(p.create_volume_from(pool, req.body, query_value(q, "source_pool"), src_vol, create_flags(q)),
                         201);
        }
        return not_found(req);
    }
    if (s[2] != "volumes") return not_found(req);
    const std::string& vol = s[3];
    if (s.size() == 4) {
        if (m == "GET") return reply(p.lookup_volume(pool, vol));
        if (m == "DELETE") return reply(p.delete_volume(pool, vol));
        return not_found(req);
    }
    if (s.size() != 5) return not_found(req);
    if (m == "GET" && s[4] == "xml") return reply_text(p.volume_xml(pool, vol));
    if (m == "GET" && (s[4] == "download" || s[4] == "upload")) {
        auto r = error_response(
            Error{ErrorCode::InvalidArg, fmt::format("{} is a WebSocket endpoint", req.target.substr(0, 200))});
        r.status = 426;
        return r;
    }
    if (m == "POST") return volume_action(p, pool, vol, s[4], req);
    return not_found(req);
}

// /v1/pools/{ref}...
ApiResponse single_pool_route(driver::PoolApi& p, const std::vector<std::string>& s, const QueryMap& q,
                              const ApiRequest& req) {
    const std::string& ref = s[1];
    const std::string& m = req.method;
    if (s.size() == 2) {
        if (m == "GET") return reply(p.lookup_pool(ref));
        if (m == "DELETE") return reply(p.undefine_pool(ref));
        return not_found(req);
    }
    if (s[2] == "volumes" || s[2] == "volumes:from") return volume_route(p, s, q, req);
    if (s.size() != 3) return not_found(req);
    const std::string& sub = s[2];
    if (m == "GET" && sub == "xml") return reply_text(p.pool_xml(ref, wire::query_flag(q, "inactive")));
    if (m == "PUT" && sub == "autostart") {
        auto body = body_object(req);
        if (!body) return error_response(body.error());
        return reply(p.set_pool_autostart(ref, body_bool(*body, "enabled")));
    }
    if (m == "POST") return pool_action(p, ref, sub, req);
    return not_found(req);
}

}  // namespace

bool is_pool_route(const std::vector<std::string>& s) {
    return !s.empty() && (s[0] == "pools" || s[0] == "pools:create" || s[0] == "volumes");
}

ApiResponse pool_route(driver::PoolApi& p, const std::vector<std::string>& s, const QueryMap& q,
                       const ApiRequest& req) {
    const std::string& m = req.method;
    if (s[0] == "pools" && s.size() == 1) {
        if (m == "GET") return reply_array(p.list_pools());
        if (m == "POST") return reply(p.define_pool(req.body), 201);
        return not_found(req);
    }
    if (s[0] == "pools:create" && s.size() == 1 && m == "POST")
        return reply(p.create_pool(req.body, wire::query_flag(q, "build"),
                                   {.overwrite = wire::query_flag(q, "overwrite"),
                                    .no_overwrite = wire::query_flag(q, "no_overwrite")}),
                     201);
    // A volume by key or path alone (vol-info /path/to/file).
    if (s[0] == "volumes" && s.size() == 2 && m == "GET") return reply(p.lookup_volume("", s[1]));
    if (s[0] == "pools" && s.size() >= 2) return single_pool_route(p, s, q, req);
    return not_found(req);
}

bool classify_volume_stream(const std::vector<std::string>& s, RouteInfo& info) {
    if (s.size() != 5 || s[0] != "pools" || s[2] != "volumes" || (s[4] != "download" && s[4] != "upload"))
        return false;
    info.kind = RouteKind::VolumeStream;
    info.mutating = s[4] == "upload";
    return true;
}

}  // namespace vireo::daemon
