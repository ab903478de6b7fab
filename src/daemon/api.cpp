#include "daemon/api.hpp"
#include "daemon/api_reply.hpp"

#include <map>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "wire/summary_list.hpp"
#include "wire/wire.hpp"
#include "daemon/api_pools.hpp"

#ifndef VIREO_VERSION
#define VIREO_VERSION "0.0.0"
#endif

namespace vireo::daemon {

using nlohmann::json;
using Query = std::map<std::string, std::string, std::less<>>;

namespace {

using namespace api_reply;

struct ParsedTarget {
    std::vector<std::string> segments;  // decoded, after "/v1"
    Query query;
};

std::optional<ParsedTarget> parse_target(std::string_view target) {
    auto qmark = target.find('?');
    auto path = target.substr(0, qmark);
    ParsedTarget out;
    if (qmark != std::string_view::npos) {
        auto q = wire::parse_query(target.substr(qmark + 1));
        if (!q) return std::nullopt;
        out.query = std::move(*q);
    }
    if (!path.starts_with(wire::kApiPrefix)) return std::nullopt;
    path.remove_prefix(wire::kApiPrefix.size());
    if (!path.empty() && path.front() != '/') return std::nullopt;
    while (!path.empty()) {
        path.remove_prefix(1);  // the '/'
        auto slash = path.find('/');
        auto seg = wire::percent_decode(path.substr(0, slash));
        if (!seg) return std::nullopt;
        out.segments.push_back(std::move(*seg));
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
    }
    // A trailing slash leaves an empty last segment: "/v1/domains/" == "/v1/domains".
    if (!out.segments.empty() && out.segments.back().empty()) out.segments.pop_back();
    return out;
}

std::string body_string(const json& j, const char* key) {
    auto it = j.find(key);
    return (it != j.end() && it->is_string()) ? it->get<std::string>() : std::string{};
}

Result<driver::ShutdownMode> body_mode(const json& j) {
    auto name = body_string(j, "mode");
    auto mode = wire::shutdown_mode_from_name(name);
    if (!mode) return fail(ErrorCode::InvalidArg, "unknown shutdown mode '{}' (known: default, acpi, agent)", name);
    return *mode;
}

Result<driver::MetadataKind> metadata_kind(std::string_view name) {
    if (name == "title") return driver::MetadataKind::Title;
    if (name == "description") return driver::MetadataKind::Description;
    return fail(ErrorCode::InvalidArg, "unknown metadata kind '{}' (known: title, description)", name);
}

std::string query_value(const Query& q, std::string_view key) {
    auto it = q.find(key);
    return it == q.end() ? std::string{} : it->second;
}

// POST /v1/domains/{ref}/<action>
ApiResponse domain_action(driver::Driver& d, const std::string& ref, const std::string& action,
                          const ApiRequest& req) {
    auto body = body_object(req);
    if (!body) return error_response(body.error());
    const json& b = *body;
    if (action == "start")
        return reply(d.start_domain(ref, {.paused = body_bool(b, "paused"), .force_boot = body_bool(b, "force_boot")}));
    if (action == "shutdown" || action == "reboot") {
        auto mode = body_mode(b);
        if (!mode) return error_response(mode.error());
        return reply(action == "shutdown" ? d.shutdown_domain(ref, *mode) : d.reboot_domain(ref, *mode));
    }
    if (action == "destroy") return reply(d.destroy_domain(ref, {.graceful = body_bool(b, "graceful")}));
    if (action == "reset") return reply(d.reset_domain(ref));
    if (action == "suspend") return reply(d.suspend_domain(ref));
    if (action == "resume") return reply(d.resume_domain(ref));
    if (action == "managedsave") return reply(d.managed_save(ref));
    if (action == "save") {
        auto path = body_string(b, "path");
        if (path.empty()) return error_response(Error{ErrorCode::InvalidArg, "save needs a \"path\" in the body"});
        return reply(d.save_domain(ref, path));
    }
    return not_found(req.method, req.target);
}

ApiResponse domain_route(driver::Driver& d, const ParsedTarget& t, const ApiRequest& req) {
    const std::string& ref = t.segments[1];
    const std::string& m = req.method;
    const bool inactive = wire::query_flag(t.query, "inactive");
    if (t.segments.size() == 2) {
        if (m == "GET") return reply(d.lookup_domain(ref));
        if (m == "DELETE")
            return reply(d.undefine_domain(ref, {.managed_save = wire::query_flag(t.query, "managed_save"),
                                                 .nvram = wire::query_flag(t.query, "nvram"),
                                                 .remove_all_storage = wire::query_flag(t.query, "remove_all_storage")}));
        return not_found(m, req.target);
    }
    if (t.segments.size() != 3) return not_found(m, req.target);
    const std::string& sub = t.segments[2];
    if (m == "GET") {
        if (sub == "xml") return reply_text(d.domain_xml(ref, inactive), kXml);
        if (sub == "disks") return reply_array(d.domain_disks(ref, inactive));
        if (sub == "interfaces") return reply_array(d.domain_interfaces(ref, inactive));
        if (sub == "metadata") {
            auto kind = metadata_kind(query_value(t.query, "kind"));
            if (!kind) return error_response(kind.error());
            auto text = d.get_metadata(ref, *kind, inactive);
            if (!text) return error_response(text.error());
            return json_response(json{{"text", *text}});
        }
        return not_found(m, req.target);
    }
    if (m == "PUT") {
        auto body = body_object(req);
        if (!body) return error_response(body.error());
        if (sub == "autostart") return reply(d.set_autostart(ref, body_bool(*body, "enabled")));
        if (sub == "metadata") {
            auto kind = metadata_kind(body_string(*body, "kind"));
            if (!kind) return error_response(kind.error());
            return reply(d.set_metadata(ref, *kind, body_string(*body, "text"), body_bool(*body, "live"),
                                        body_bool(*body, "config")));
        }
        return not_found(m, req.target);
    }
    if (m == "DELETE" && sub == "managedsave") return reply(d.managed_save_remove(ref));
    if (m == "POST") return domain_action(d, ref, sub, req);
    return not_found(m, req.target);
}

ApiResponse host_route(driver::Driver& d, const ParsedTarget& t, const ApiRequest& req) {
    if (req.method != "GET" || t.segments.size() != 2) return not_found(req.method, req.target);
    const std::string& what = t.segments[1];
    if (what == "version") {
        auto v = d.version();
        if (v) v->daemon = VIREO_VERSION;
        return reply(v);
    }
    if (what == "hostname") {
        auto h = d.hostname();
        if (!h) return error_response(h.error());
        return json_response(json{{"hostname", *h}});
    }
    if (what == "nodeinfo") return reply(d.node_info());
    if (what == "capabilities") return reply_text(d.capabilities_xml(), kXml);
    if (what == "domcapabilities")
        return reply_text(d.domain_capabilities_xml(query_value(t.query, "emulator"), query_value(t.query, "arch"),
                                                    query_value(t.query, "machine"),
                                                    query_value(t.query, "virttype")),
                          kXml);
    return not_found(req.method, req.target);
}

}  // namespace

ApiResponse error_response(const Error& e) {
    return ApiResponse{wire::http_status_for(e.code), "application/json", wire::to_json(e).dump()};
}

ApiResponse read_only_refusal(std::string_view method, std::string_view target) {
    return error_response(Error{ErrorCode::PermissionDenied,
                                fmt::format("operation forbidden: read only access prevents {} {}", method,
                                            target.substr(0, target.find('?')))});
}

RouteInfo classify(std::string_view method, std::string_view target) {
    RouteInfo info;
    info.mutating = method != "GET" && method != "HEAD";
    info.kind = info.mutating ? RouteKind::Job : RouteKind::Query;
    auto t = parse_target(target);
    if (!t || method != "GET") return info;
    const auto& s = t->segments;
    if (s.size() == 1 && s[0] == "events") info.kind = RouteKind::EventStream;
    // list, dominfo and dumpxml: copies of registry snapshots (the commands
    // scripts call most, so the ones whose latency counts).
    if (!s.empty() && s[0] == "domains" && (s.size() <= 2 || (s.size() == 3 && s[2] == "xml")))
        info.kind = RouteKind::MemoryQuery;
    if (classify_volume_stream(s, info)) return info;
    if (s.size() == 3 && s[0] == "domains" && s[2] == "console") {
        info.kind = RouteKind::Console;
        // Console input drives the guest: not for read-only clients (as libvirt).
        info.mutating = true;
        info.domain = s[1];
        info.device = query_value(t->query, "device");
    }
    return info;
}

ApiResponse Api::handle(const ApiRequest& req) {
    if (!std::string_view(req.target).starts_with(fmt::format("{}/", wire::kApiPrefix)))
        return not_found(req.method, req.target);
    auto t = parse_target(req.target);
    if (!t) return error_response(Error{ErrorCode::InvalidArg, fmt::format("malformed request target '{}'",
                                                                           req.target.substr(0, 200))});
    const auto& s = t->segments;
    if (s.empty()) return not_found(req.method, req.target);
    if (s[0] == "host") return host_route(driver_, *t, req);
    if (is_pool_route(s)) return pool_route(driver_.pools(), s, t->query, req);
    if (s[0] == "domains" && s.size() == 1) {
        if (req.method == "GET") {
            // Written directly (summary_list.hpp): no JSON tree for 1000 domains.
            auto list = driver_.list_domains();
            if (!list) return error_response(list.error());
            return ApiResponse{200, "application/json", wire::summaries_to_json(*list)};
        }
        if (req.method == "POST") {
            auto r = driver_.define_domain(req.body, !t->query.contains("validate") ||
                                                         wire::query_flag(t->query, "validate"));
            if (!r) return error_response(r.error());
            return json_response(wire::to_json(*r), 201);
        }
        return not_found(req.method, req.target);
    }
    if (s[0] == "domains:create" && s.size() == 1 && req.method == "POST") {
        auto r = driver_.create_domain(req.body, {.paused = wire::query_flag(t->query, "paused"),
                                                  .force_boot = wire::query_flag(t->query, "force_boot")});
        if (!r) return error_response(r.error());
        return json_response(wire::to_json(*r), 201);
    }
    if (s[0] == "domains:restore" && s.size() == 1 && req.method == "POST") {
        auto body = body_object(req);
        if (!body) return error_response(body.error());
        auto path = body_string(*body, "path");
        if (path.empty()) return error_response(Error{ErrorCode::InvalidArg, "restore needs a \"path\" in the body"});
        return reply(driver_.restore_domain(path, body_bool(*body, "paused")));
    }
    if (s[0] == "domains" && s.size() >= 2) return domain_route(driver_, *t, req);
    return not_found(req.method, req.target);
}

}  // namespace vireo::daemon
