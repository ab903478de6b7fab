#include "wire/summary_list.hpp"

#include <iterator>
#include <optional>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "wire/wire_fields.hpp"

namespace vireo::wire {

namespace {

// A JSON string literal as nlohmann's dump() writes it (UTF-8 kept as is).
void append_string(std::string& out, std::string_view s) {
    out.push_back('"');
    for (char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20)
                    fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
                else
                    out.push_back(c);
        }
    }
    out.push_back('"');
}

const char* boolean(bool b) { return b ? "true" : "false"; }

void append_summary(std::string& out, const driver::DomainSummary& s) {
    // Keys in std::map order, as nlohmann::json objects keep them.
    fmt::format_to(std::back_inserter(out),
                   "{{\"autostart\":{},\"cpu_time_ns\":{},\"id\":{},\"managed_save\":{},\"max_memory_kib\":{},"
                   "\"memory_kib\":{},\"name\":",
                   boolean(s.autostart), s.cpu_time_ns, s.id, boolean(s.managed_save), s.max_memory_kib,
                   s.memory_kib);
    append_string(out, s.name);
    out += ",\"os_type\":";
    append_string(out, s.os_type);
    fmt::format_to(std::back_inserter(out), ",\"persistent\":{},\"reason\":", boolean(s.persistent));
    append_string(out, s.reason);
    out += ",\"state\":";
    append_string(out, driver::state_name(s.state));
    out += ",\"title\":";
    append_string(out, s.title);
    fmt::format_to(std::back_inserter(out), ",\"uuid\":\"{}\",\"vcpus\":{}}}", s.uuid.str(), s.vcpus);
}

// nlohmann SAX handler filling DomainSummary values straight from the text.
class SummaryListReader {
public:
    using json = nlohmann::json;
    using number_integer_t = json::number_integer_t;
    using number_unsigned_t = json::number_unsigned_t;
    using number_float_t = json::number_float_t;
    using string_t = json::string_t;
    using binary_t = json::binary_t;

    std::vector<driver::DomainSummary> list;
    std::optional<Error> error;

    bool null() { return scalar_ok(); }
    bool boolean(bool v) {
        if (!in_summary()) return scalar_ok();
        if (key_ == "autostart") cur().autostart = v;
        else if (key_ == "managed_save") cur().managed_save = v;
        else if (key_ == "persistent") cur().persistent = v;
        else if (is_known(key_)) return bad(key_);
        return true;
    }
    bool number_integer(number_integer_t v) {
        if (!in_summary()) return scalar_ok();
        if (key_ == "id") {
            cur().id = static_cast<int>(v);
            seen_ |= kId;
            return true;
        }
        if (v < 0) return is_known(key_) ? bad(key_) : true;
        return number_unsigned(static_cast<number_unsigned_t>(v));
    }
    bool number_unsigned(number_unsigned_t v) {
        if (!in_summary()) return scalar_ok();
        auto& s = cur();
        if (key_ == "id") {
            s.id = static_cast<int>(v);
            seen_ |= kId;
        } else if (key_ == "cpu_time_ns") s.cpu_time_ns = v;
        else if (key_ == "max_memory_kib") s.max_memory_kib = v;
        else if (key_ == "memory_kib") s.memory_kib = v;
        else if (key_ == "vcpus") s.vcpus = static_cast<unsigned>(v);
        else if (is_known(key_)) return bad(key_);
        return true;
    }
    bool number_float(number_float_t, const string_t&) { return in_summary() && is_known(key_) ? bad(key_) : true; }
    bool string(string_t& v) {
        if (!in_summary()) return scalar_ok();
        auto& s = cur();
        if (key_ == "name") {
            s.name = std::move(v);
            seen_ |= kName;
        } else if (key_ == "uuid") {
            auto u = Uuid::parse(v);
            if (!u) return bad("uuid");
            s.uuid = *u;
            seen_ |= kUuid;
        } else if (key_ == "state") {
            auto st = driver::state_from_name(v);
            if (!st) return bad("state");
            s.state = *st;
            seen_ |= kState;
        } else if (key_ == "reason") s.reason = std::move(v);
        else if (key_ == "title") s.title = std::move(v);
        else if (key_ == "os_type") s.os_type = std::move(v);
        else if (is_known(key_)) return bad(key_);
        return true;
    }
    bool binary(binary_t&) { return true; }
    bool start_object(std::size_t) {
        ++depth_;
        if (depth_ == 1) return bad("(array)");
        if (depth_ == 2) {
            list.emplace_back();
            seen_ = 0;
        } else if (depth_ == 3 && is_known(key_)) {
            return bad(key_);
        }
        return true;
    }
    bool key(string_t& k) {
        if (depth_ == 2) key_ = std::move(k);
        return true;
    }
    bool end_object() {
        if (depth_-- == 2) {
            static constexpr std::pair<unsigned, std::string_view> kRequired[] = {
                {kName, "name"}, {kId, "id"}, {kUuid, "uuid"}, {kState, "state"}};
            for (const auto& [bit, name] : kRequired)
                if (!(seen_ & bit)) return bad(name);
        }
        return true;
    }
    bool start_array(std::size_t) {
        ++depth_;
        if (depth_ == 2) return bad("(object)");  // an array where a summary belongs
        if (depth_ == 3 && is_known(key_)) return bad(key_);
        return true;
    }
    bool end_array() {
        --depth_;
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
        error = Error{ErrorCode::Protocol, fmt::format("malformed JSON document from vireod: {}", ex.what())};
        return false;
    }

private:
    enum : unsigned { kName = 1, kId = 2, kUuid = 4, kState = 8 };

    driver::DomainSummary& cur() { return list.back(); }
    // A value directly inside a summary object (depth 2), not nested deeper.
    [[nodiscard]] bool in_summary() const { return depth_ == 2; }
    // A scalar anywhere else: the top level must be an array of objects.
    bool scalar_ok() {
        if (depth_ == 0 || depth_ == 1) return bad("(object)");
        if (depth_ == 2 && is_known(key_)) return bad(key_);
        return true;
    }
    static bool is_known(std::string_view k) {
        for (std::string_view known : {"autostart", "cpu_time_ns", "id", "managed_save", "max_memory_kib",
                                       "memory_kib", "name", "os_type", "persistent", "reason", "state", "title",
                                       "uuid", "vcpus"})
            if (k == known) return true;
        return false;
    }
    bool bad(std::string_view field) {
        if (!error) error = fields::missing("domain", field).error();
        return false;
    }

    int depth_ = 0;
    std::string key_;
    unsigned seen_ = 0;
};

}  // namespace

std::string summaries_to_json(const std::vector<driver::DomainSummary>& list) {
    std::string out;
    out.reserve(2 + list.size() * 300);
    out.push_back('[');
    for (std::size_t i = 0; i < list.size(); ++i) {
        if (i) out.push_back(',');
        append_summary(out, list[i]);
    }
    out.push_back(']');
    return out;
}

Result<std::vector<driver::DomainSummary>> summaries_from_json(std::string_view text) {
    SummaryListReader reader;
    const bool ok = nlohmann::json::sax_parse(text, &reader, nlohmann::json::input_format_t::json, /*strict=*/true);
    if (reader.error) return std::unexpected(*reader.error);
    if (!ok) return fail(ErrorCode::Protocol, "malformed JSON document: '{}'", text.substr(0, 200));
    return std::move(reader.list);
}

}  // namespace vireo::wire
