// Field tables of the JSON wire structs, shared by the domain wire (wire.cpp)
// and the storage wire (pool_wire.cpp): a struct's plain fields are listed
// once, as {key, member, required}, and both directions are derived from the
// list. Internal to the wire module (not an interface).
#pragma once

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "util/error.hpp"

namespace vireo::wire::fields {

// The Protocol error of a document whose field is absent or of another type.
inline std::unexpected<Error> missing(std::string_view what, std::string_view field) {
    return fail(ErrorCode::Protocol, "malformed {} from vireod: field '{}' missing or of the wrong type",
                what, field);
}

// Does this JSON value have the type of T (string, bool, an unsigned or a
// signed integer)?
template <class T>
bool holds(const nlohmann::json& v) {
    if constexpr (std::is_same_v<T, std::string>)
        return v.is_string();
    else if constexpr (std::is_same_v<T, bool>)
        return v.is_boolean();
    else if constexpr (std::is_unsigned_v<T>)
        return v.is_number_unsigned();
    else
        return v.is_number_integer();
}

// Typed field reader: false when the field is absent or has another type.
template <class T>
bool get(const nlohmann::json& j, const char* key, T& out) {
    auto it = j.find(key);
    if (it == j.end() || !holds<T>(*it)) return false;
    out = it->get<T>();
    return true;
}

// One plain field of a wire struct: its JSON key and member. A required
// field missing makes the document malformed; an optional one keeps its
// default, so that older and newer daemons still understand each other.
template <class S, class T>
struct Field {
    const char* key;
    T S::*member;
    bool required;
};
template <class S, class T>
constexpr Field<S, T> required(const char* key, T S::*member) {
    return {key, member, true};
}
template <class S, class T>
constexpr Field<S, T> optional(const char* key, T S::*member) {
    return {key, member, false};
}

// The JSON object of the plain fields of `s` (the table's Field entries).
template <class S, class Fields>
nlohmann::json to_json(const S& s, const Fields& fields) {
    nlohmann::json j = nlohmann::json::object();
    std::apply([&](const auto&... f) { ((j[f.key] = s.*(f.member)), ...); }, fields);
    return j;
}

// Read the plain fields of a `what` document into `out`: the first required
// field missing (or of the wrong type) is the error.
template <class S, class Fields>
Status from_json(const nlohmann::json& j, std::string_view what, const Fields& fields, S& out) {
    if (!j.is_object()) return missing(what, "(object)");
    const char* absent = nullptr;
    auto read = [&](const auto& f) {
        if (!get(j, f.key, out.*(f.member)) && f.required && !absent) absent = f.key;
    };
    std::apply([&](const auto&... f) { (read(f), ...); }, fields);
    if (absent) return missing(what, absent);
    return {};
}

// Decode a struct made only of plain fields.
template <class S, class Fields>
Result<S> plain_from_json(const nlohmann::json& j, std::string_view what, const Fields& fields) {
    S out;
    VIREO_TRY(from_json(j, what, fields, out));
    return out;
}

}  // namespace vireo::wire::fields
