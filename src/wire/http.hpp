// The HTTP binding of the operation table (driver/ops): how every operation
// travels as an HTTP/1.1 request and answer, derived from its declaration.
//
//   client  encode_request<Op>(request)  -> method, target, body
//           decode_reply<Op>(body)       -> Op::Reply
//   daemon  match(method, target)        -> which operation, its path segments and query
//           decode_request<Op>(match, body) -> Op::Request
//           encode_reply<Op>(result)     -> status, content type, body
//
// Where each request field travels (path segment, query parameter, JSON body
// member, or the raw XML body) is derived from the path template and the
// method, as driver/ops/op.hpp says. Values: strings as they are (percent-
// encoded in paths and queries), booleans as 1/0 in queries ("1", "true",
// "yes" or the bare key read as true) and true/false in JSON, numbers in
// decimal, enums by their names (EnumNames). A field that is absent keeps
// the Request's default; an empty enum or number in a query counts as absent.
//
// Answers: 204 without a body for operations without a reply; a std::string
// reply is an XML document (application/xml), or {"<reply_field>": "..."}
// when the operation names one; the domain list is written and read without
// a JSON tree (summary_list.hpp); everything else is the JSON of wire.hpp /
// pool_wire.hpp / job_wire.hpp / network_wire.hpp. Errors: wire::http_status_for(code) + {"code","message"}.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "driver/ops/all.hpp"
#include "util/error.hpp"
#include "wire/job_wire.hpp"
#include "wire/network_wire.hpp"
#include "wire/pool_wire.hpp"
#include "wire/summary_list.hpp"
#include "wire/wire.hpp"

namespace vireo::wire::http {

namespace ops = driver::ops;
using Query = std::map<std::string, std::string, std::less<>>;

inline constexpr std::string_view kJson = "application/json";
inline constexpr std::string_view kXml = "application/xml";

// --- where fields travel ------------------------------------------------------------

enum class Place { Path, Query, Body, Document };

// Is "{name}" a segment of the path template?
constexpr bool in_path(std::string_view path, std::string_view name) {
    for (std::size_t open = path.find('{'); open != std::string_view::npos; open = path.find('{', open + 1)) {
        const std::size_t close = path.find('}', open);
        if (close == std::string_view::npos) return false;
        if (path.substr(open + 1, close - open - 1) == name) return true;
    }
    return false;
}

template <class Op>
constexpr bool has_document() {
    return std::apply([](const auto&... f) { return (f.document || ... || false); }, Op::fields);
}

template <class Op, class F>
constexpr Place place_of(const F& field) {
    if (in_path(Op::info.path, field.name)) return Place::Path;
    if (field.document) return Place::Document;
    const auto m = Op::info.method;
    if (m == ops::Method::Get || m == ops::Method::Delete || has_document<Op>()) return Place::Query;
    return Place::Body;
}

template <class Op>
constexpr bool has_body_fields() {
    return std::apply([](const auto&... f) { return ((place_of<Op>(f) == Place::Body) || ... || false); },
                      Op::fields);
}

// f(field) for every request field of Op.
template <class Op, class F>
void for_each_field(F&& f) {
    std::apply([&](const auto&... field) { (f(field), ...); }, Op::fields);
}

// --- values ------------------------------------------------------------------------------

template <ops::NamedEnum E>
std::string_view enum_name(E value) {
    for (const auto& [v, name] : ops::EnumNames<E>::values)
        if (v == value) return name;
    return "";
}

template <ops::NamedEnum E>
Result<E> enum_from_name(std::string_view name) {
    for (const auto& [v, text] : ops::EnumNames<E>::values)
        if (text == name) return v;
    std::string known;
    for (const auto& [v, text] : ops::EnumNames<E>::values) known += fmt::format("{}{}", known.empty() ? "" : ", ", text);
    return fail(ErrorCode::InvalidArg, "unknown {} '{}' (known: {})", ops::EnumNames<E>::what, name, known);
}

// A value as a query parameter (before percent-encoding).
template <class T>
std::string query_text(const T& v) {
    if constexpr (std::is_same_v<T, std::string>)
        return v;
    else if constexpr (std::is_same_v<T, bool>)
        return v ? "1" : "0";
    else if constexpr (std::is_same_v<T, std::uint64_t>)
        return std::to_string(v);
    else
        return std::string(enum_name(v));
}

template <class T>
nlohmann::json json_value(const T& v) {
    if constexpr (ops::NamedEnum<T>)
        return enum_name(v);
    else
        return v;
}

// Read a query parameter's text into `out`; `empty` (the bare key) counts
// as absent for numbers and enums.
Status number_from_text(std::string_view field, std::string_view text, std::uint64_t& out);

template <class T>
Status from_query_text(std::string_view field, const std::string& text, T& out) {
    if constexpr (std::is_same_v<T, std::string>) {
        out = text;
    } else if constexpr (std::is_same_v<T, bool>) {
        out = text.empty() || text == "1" || text == "true" || text == "yes";
    } else if constexpr (std::is_same_v<T, std::uint64_t>) {
        if (!text.empty()) return number_from_text(field, text, out);
    } else {
        if (text.empty()) return {};
        auto v = enum_from_name<T>(text);
        if (!v) return std::unexpected(v.error());
        out = *v;
    }
    return {};
}

Error body_type_error(std::string_view op, std::string_view field, std::string_view type);

template <class T>
Status from_json_value(std::string_view op, std::string_view field, const nlohmann::json& v, T& out) {
    if constexpr (std::is_same_v<T, std::string>) {
        if (!v.is_string()) return std::unexpected(body_type_error(op, field, "a string"));
        out = v.get<std::string>();
    } else if constexpr (std::is_same_v<T, bool>) {
        if (!v.is_boolean()) return std::unexpected(body_type_error(op, field, "a boolean"));
        out = v.get<bool>();
    } else if constexpr (std::is_same_v<T, std::uint64_t>) {
        if (!v.is_number_unsigned()) return std::unexpected(body_type_error(op, field, "a non-negative integer"));
        out = v.get<std::uint64_t>();
    } else {
        if (!v.is_string()) return std::unexpected(body_type_error(op, field, "a string"));
        const auto& text = v.get_ref<const std::string&>();
        if (text.empty()) return {};
        auto e = enum_from_name<T>(text);
        if (!e) return std::unexpected(e.error());
        out = *e;
    }
    return {};
}

// --- client: the request of an operation ----------------------------------------------

struct OutRequest {
    std::string_view method;
    std::string target;  // "/v1/domains/web/xml?inactive=1"
    std::string body;
    std::string_view content_type;  // empty without a body
};

Error empty_path_field(std::string_view op, std::string_view field);

template <class Op>
Result<OutRequest> encode_request(const typename Op::Request& r) {
    OutRequest out{ops::method_name(Op::info.method), {}, {}, {}};
    // The path: every {name} replaced by its field, percent-encoded.
    std::string_view path = Op::info.path;
    std::optional<Error> bad;
    while (!path.empty()) {
        const std::size_t open = path.find('{');
        out.target += path.substr(0, open);
        if (open == std::string_view::npos) break;
        const std::size_t close = path.find('}', open);
        const std::string_view name = path.substr(open + 1, close - open - 1);
        for_each_field<Op>([&](const auto& f) {
            using T = std::remove_cvref_t<decltype(r.*(f.member))>;
            if constexpr (std::is_same_v<T, std::string>) {
                if (f.name != name) return;
                if ((r.*(f.member)).empty()) bad = empty_path_field(Op::info.name, name);
                out.target += percent_encode(r.*(f.member));
            }
        });
        path.remove_prefix(close + 1);
    }
    if (bad) return std::unexpected(*bad);
    char sep = '?';
    nlohmann::json body = nlohmann::json::object();
    for_each_field<Op>([&](const auto& f) {
        const auto& value = r.*(f.member);
        switch (place_of<Op>(f)) {
            case Place::Path: break;
            case Place::Query:
                out.target += fmt::format("{}{}={}", sep, f.name, percent_encode(query_text(value)));
                sep = '&';
                break;
            case Place::Body: body[std::string(f.name)] = json_value(value); break;
            case Place::Document:
                if constexpr (std::is_same_v<std::remove_cvref_t<decltype(value)>, std::string>) {
                    out.body = value;
                    out.content_type = kXml;
                }
                break;
        }
    });
    if constexpr (has_body_fields<Op>()) {
        out.body = body.dump();
        out.content_type = kJson;
    }
    return out;
}

// --- client: the answer of an operation ------------------------------------------------

// A JSON array decoded item by item (the first bad item is the error).
template <class T, class F>
Result<std::vector<T>> decode_array(const nlohmann::json& j, F decode) {
    if (!j.is_array()) return fail(ErrorCode::Protocol, "malformed answer from vireod: expected a JSON array");
    std::vector<T> out;
    out.reserve(j.size());
    for (const auto& item : j) {
        auto v = decode(item);
        if (!v) return std::unexpected(v.error());
        out.push_back(std::move(*v));
    }
    return out;
}

// A JSON value decoded as one of the wire structs.
template <class T>
Result<T> decode_value(const nlohmann::json& j) {
    if constexpr (std::is_same_v<T, driver::DomainSummary>)
        return summary_from_json(j);
    else if constexpr (std::is_same_v<T, driver::NodeInfo>)
        return node_info_from_json(j);
    else if constexpr (std::is_same_v<T, driver::VersionInfo>)
        return version_from_json(j);
    else if constexpr (std::is_same_v<T, driver::DiskInfo>)
        return disk_from_json(j);
    else if constexpr (std::is_same_v<T, driver::InterfaceInfo>)
        return interface_from_json(j);
    else if constexpr (std::is_same_v<T, driver::InterfaceStats>)
        return interface_stats_from_json(j);
    else if constexpr (std::is_same_v<T, driver::InterfaceAddress>)
        return interface_address_from_json(j);
    else if constexpr (std::is_same_v<T, driver::BlockStats>)
        return block_stats_from_json(j);
    else if constexpr (std::is_same_v<T, driver::BlockInfo>)
        return block_info_from_json(j);
    else if constexpr (std::is_same_v<T, driver::VcpuInfo>)
        return vcpu_info_from_json(j);
    else if constexpr (std::is_same_v<T, driver::MemoryStat>)
        return memory_stat_from_json(j);
    else if constexpr (std::is_same_v<T, driver::GuestTime>)
        return guest_time_from_json(j);
    else if constexpr (std::is_same_v<T, driver::FsInfo>)
        return fs_info_from_json(j);
    else if constexpr (std::is_same_v<T, driver::FsCount>)
        return fs_count_from_json(j);
    else if constexpr (std::is_same_v<T, driver::GuestVcpus>)
        return guest_vcpus_from_json(j);
    else if constexpr (std::is_same_v<T, driver::TypedParam>)
        return typed_param_from_json(j);
    else if constexpr (std::is_same_v<T, driver::SnapshotSummary>)
        return snapshot_from_json(j);
    else if constexpr (std::is_same_v<T, driver::PoolSummary>)
        return pool_from_json(j);
    else if constexpr (std::is_same_v<T, driver::VolumeSummary>)
        return volume_from_json(j);
    else if constexpr (std::is_same_v<T, driver::JobInfo>)
        return job_info_from_json(j);
    else if constexpr (std::is_same_v<T, driver::NetworkSummary>)
        return network_from_json(j);
    else if constexpr (std::is_same_v<T, driver::NetworkDhcpLease>)
        return network_lease_from_json(j);
    else if constexpr (std::is_same_v<T, driver::HostInterface>)
        return host_interface_from_json(j);
    else
        static_assert(sizeof(T) == 0, "no JSON decoder for this reply type (wire.hpp / pool_wire.hpp / job_wire.hpp / network_wire.hpp)");
}

template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};

Error malformed_reply(std::string_view op, std::string_view field);

// A screenshot answer: the image's bytes, its type known by its signature.
driver::Screenshot screenshot_from_body(std::string body);

// The reply of a 2xx answer.
template <class Op>
// (By value: a string reply is moved out of it.)
Result<typename Op::Reply> decode_reply(std::string body) {  // NOLINT(performance-unnecessary-value-param)
    using Reply = typename Op::Reply;
    if constexpr (std::is_void_v<Reply>) {
        return {};
    } else if constexpr (std::is_same_v<Reply, std::string> && ops::HasReplyField<Op>) {
        auto j = parse_json(body);
        if (!j) return std::unexpected(j.error());
        auto it = j->is_object() ? j->find(std::string(Op::reply_field)) : j->end();
        if (it == j->end() || !it->is_string()) return std::unexpected(malformed_reply(Op::info.name, Op::reply_field));
        return it->template get<std::string>();
    } else if constexpr (std::is_same_v<Reply, std::string>) {
        return body;
    } else if constexpr (std::is_same_v<Reply, std::vector<driver::DomainSummary>>) {
        return summaries_from_json(body);  // no JSON tree (summary_list.hpp)
    } else if constexpr (std::is_same_v<Reply, driver::Screenshot>) {
        return screenshot_from_body(std::move(body));  // the image itself
    } else {
        auto j = parse_json(body);
        if (!j) return std::unexpected(j.error());
        if constexpr (IsVector<Reply>::value) {
            using Item = typename Reply::value_type;
            return decode_array<Item>(*j, [](const nlohmann::json& item) { return decode_value<Item>(item); });
        } else {
            return decode_value<Reply>(*j);
        }
    }
}

// --- daemon: which operation a request is -----------------------------------------------

struct Match {
    std::size_t op = 0;                 // index in driver::ops::All
    std::vector<std::string> segments;  // decoded path segments after /v1
    Query query;
};

// The operation `method target` names: nullopt when none does (404); an
// InvalidArg error for a malformed target (a bad percent escape).
Result<std::optional<Match>> match(std::string_view method, std::string_view target);

// Segments of a path template after /v1 ("{ref}" kept as is).
std::vector<std::string_view> template_segments(std::string_view path);

Error missing_field(std::string_view op, std::string_view field, Place place);
Result<nlohmann::json> body_object(std::string_view op, std::string_view body);

// The request of the operation `m` matched, from its path, query and body.
template <class Op>
Result<typename Op::Request> decode_request(const Match& m, std::string_view body) {
    typename Op::Request r{};
    const auto tmpl = template_segments(Op::info.path);
    nlohmann::json object;
    if constexpr (has_body_fields<Op>()) {
        auto parsed = body_object(Op::info.name, body);
        if (!parsed) return std::unexpected(parsed.error());
        object = std::move(*parsed);
    }
    std::optional<Error> bad;
    for_each_field<Op>([&](const auto& f) {
        if (bad) return;
        auto& value = r.*(f.member);
        using T = std::remove_cvref_t<decltype(value)>;
        const Place place = place_of<Op>(f);
        bool present = false;
        Status st;
        switch (place) {
            case Place::Path:
                for (std::size_t i = 0; i < tmpl.size() && i < m.segments.size(); ++i) {
                    if (tmpl[i].size() == f.name.size() + 2 && tmpl[i].substr(1, f.name.size()) == f.name) {
                        if constexpr (std::is_same_v<T, std::string>) value = m.segments[i];
                        present = true;
                    }
                }
                break;
            case Place::Query:
                if (auto it = m.query.find(f.name); it != m.query.end()) {
                    present = !it->second.empty() || std::is_same_v<T, bool>;
                    st = from_query_text(f.name, it->second, value);
                }
                break;
            case Place::Body:
                if (auto it = object.find(std::string(f.name)); it != object.end()) {
                    present = !(it->is_string() && it->template get_ref<const std::string&>().empty() &&
                                !std::is_same_v<T, std::string>);
                    st = from_json_value(Op::info.name, f.name, *it, value);
                }
                break;
            case Place::Document:
                if constexpr (std::is_same_v<T, std::string>) value = std::string(body);
                present = true;
                break;
        }
        if (!st) {
            bad = st.error();
            return;
        }
        if constexpr (std::is_same_v<T, std::string>) present = present && !value.empty();
        if (f.required && !present && place != Place::Document) bad = missing_field(Op::info.name, f.name, place);
    });
    if (bad) return std::unexpected(*bad);
    return r;
}

// --- daemon: the answer of an operation ------------------------------------------------

struct Answer {
    unsigned status = 200;
    std::string content_type;
    std::string body;
};

// An error as the API answers it: the code's HTTP status, {"code","message"}.
Answer error_answer(const Error& e);

template <class Op>
Answer encode_reply(const Result<typename Op::Reply>& r) {
    using Reply = typename Op::Reply;
    if (!r) return error_answer(r.error());
    unsigned status = 200;
    if constexpr (ops::HasHttpSuccess<Op>) status = Op::http_success;
    if constexpr (std::is_void_v<Reply>) {
        return Answer{204, "", ""};
    } else if constexpr (std::is_same_v<Reply, std::string> && ops::HasReplyField<Op>) {
        return Answer{status, std::string(kJson), nlohmann::json{{std::string(Op::reply_field), *r}}.dump()};
    } else if constexpr (std::is_same_v<Reply, std::string>) {
        return Answer{status, std::string(kXml), *r};
    } else if constexpr (std::is_same_v<Reply, std::vector<driver::DomainSummary>>) {
        return Answer{status, std::string(kJson), summaries_to_json(*r)};  // no JSON tree for 1000 domains
    } else if constexpr (std::is_same_v<Reply, driver::Screenshot>) {
        return Answer{status, r->mime, r->data};  // the image itself (image/png)
    } else if constexpr (IsVector<Reply>::value) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& item : *r) arr.push_back(to_json(item));
        return Answer{status, std::string(kJson), arr.dump()};
    } else {
        return Answer{status, std::string(kJson), to_json(*r).dump()};
    }
}

}  // namespace vireo::wire::http
