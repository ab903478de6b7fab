#include "wire/http.hpp"

#include <charconv>

namespace vireo::wire::http {

namespace {

std::string_view place_name(Place p) {
    switch (p) {
        case Place::Path: return "path";
        case Place::Query: return "query";
        case Place::Body: return "request body";
        case Place::Document: return "document";
    }
    return "request";
}

// One operation's route: method and template segments after /v1.
struct Route {
    ops::Method method;
    std::vector<std::string_view> segments;
};

const std::vector<Route>& routes() {
    static const std::vector<Route> table = [] {
        std::vector<Route> out;
        out.reserve(ops::kCount);
        for (const auto* info : ops::kInfos) out.push_back({info->method, template_segments(info->path)});
        return out;
    }();
    return table;
}

std::optional<ops::Method> method_from(std::string_view m) {
    for (auto candidate : {ops::Method::Get, ops::Method::Post, ops::Method::Put, ops::Method::Delete})
        if (ops::method_name(candidate) == m) return candidate;
    return std::nullopt;
}

bool segments_match(const std::vector<std::string_view>& tmpl, const std::vector<std::string>& segs) {
    if (tmpl.size() != segs.size()) return false;
    for (std::size_t i = 0; i < tmpl.size(); ++i) {
        const bool param = tmpl[i].size() > 2 && tmpl[i].front() == '{' && tmpl[i].back() == '}';
        if (!param && tmpl[i] != segs[i]) return false;
    }
    return true;
}

}  // namespace

Status number_from_text(std::string_view field, std::string_view text, std::uint64_t& out) {
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec != std::errc{} || ptr != text.data() + text.size())
        return fail(ErrorCode::InvalidArg, "'{}' must be a non-negative integer, not '{}'", field, text);
    return {};
}

Error body_type_error(std::string_view op, std::string_view field, std::string_view type) {
    return Error{ErrorCode::InvalidArg,
                 fmt::format("\"{}\" in the request body of {} must be {}", field, op, type)};
}

Error empty_path_field(std::string_view op, std::string_view field) {
    return Error{ErrorCode::InvalidArg, fmt::format("{}: the {} must not be empty", op, field)};
}

Error malformed_reply(std::string_view op, std::string_view field) {
    return Error{ErrorCode::Protocol,
                 fmt::format("malformed {} answer from vireod: field '{}' missing or of the wrong type", op, field)};
}

driver::Screenshot screenshot_from_body(std::string body) {
    driver::Screenshot out;
    out.mime = body.starts_with("\x89PNG\r\n\x1a\n") ? "image/png" : "application/octet-stream";
    out.data = std::move(body);
    return out;
}

Error missing_field(std::string_view op, std::string_view field, Place place) {
    if (place == Place::Query)
        return Error{ErrorCode::InvalidArg, fmt::format("{} needs ?{}= in the query", op, field)};
    return Error{ErrorCode::InvalidArg, fmt::format("{} needs \"{}\" in the {}", op, field, place_name(place))};
}

Result<nlohmann::json> body_object(std::string_view op, std::string_view body) {
    if (body.empty()) return nlohmann::json::object();
    auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
        return fail(ErrorCode::InvalidArg, "the request body of {} must be a JSON object", op);
    return j;
}

std::vector<std::string_view> template_segments(std::string_view path) {
    std::vector<std::string_view> out;
    if (path.starts_with(kApiPrefix)) path.remove_prefix(kApiPrefix.size());
    while (!path.empty()) {
        path.remove_prefix(1);  // the '/'
        const auto slash = path.find('/');
        out.push_back(path.substr(0, slash));
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
    }
    return out;
}

Result<std::optional<Match>> match(std::string_view method, std::string_view target) {
    const auto qmark = target.find('?');
    std::string_view path = target.substr(0, qmark);
    if (!path.starts_with(kApiPrefix) || path.size() == kApiPrefix.size() || path[kApiPrefix.size()] != '/')
        return std::optional<Match>{};
    Match m;
    auto malformed = [&] {
        return fail(ErrorCode::InvalidArg, "malformed request target '{}'", target.substr(0, 200));
    };
    if (qmark != std::string_view::npos) {
        auto q = parse_query(target.substr(qmark + 1));
        if (!q) return malformed();
        m.query = std::move(*q);
    }
    path.remove_prefix(kApiPrefix.size());
    while (!path.empty()) {
        path.remove_prefix(1);  // the '/'
        const auto slash = path.find('/');
        auto seg = percent_decode(path.substr(0, slash));
        if (!seg) return malformed();
        m.segments.push_back(std::move(*seg));
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
    }
    // A trailing slash leaves an empty last segment: "/v1/domains/" == "/v1/domains".
    if (!m.segments.empty() && m.segments.back().empty()) m.segments.pop_back();
    const auto verb = method_from(method);
    if (!verb) return std::optional<Match>{};
    const auto& table = routes();
    for (std::size_t i = 0; i < table.size(); ++i) {
        if (table[i].method != *verb || !segments_match(table[i].segments, m.segments)) continue;
        m.op = i;
        return std::optional<Match>{std::move(m)};
    }
    return std::optional<Match>{};
}

Answer error_answer(const Error& e) {
    return Answer{http_status_for(e.code), std::string(kJson), to_json(e).dump()};
}

}  // namespace vireo::wire::http
