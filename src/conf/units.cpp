#include "conf/units.hpp"

#include <cctype>
#include <charconv>
#include <limits>
#include <string>

namespace vireo::conf {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::uint64_t power(std::uint64_t base, int exp) {
    std::uint64_t r = 1;
    for (int i = 0; i < exp; ++i) r *= base;
    return r;
}

}  // namespace

Result<std::uint64_t> unit_multiplier(std::string_view unit) {
    const std::string u = lower(unit);
    if (u == "b" || u == "bytes") return 1;
    static constexpr std::string_view prefixes = "kmgtpe";
    if (u.empty() || prefixes.find(u[0]) == std::string_view::npos)
        return fail(ErrorCode::InvalidArg, "unknown unit '{}' (expected b, KiB, KB, k, MiB, MB, M, GiB, GB, G, TiB, TB, T, PiB, PB, P, EiB, EB, E)", unit);
    const int exp = static_cast<int>(prefixes.find(u[0])) + 1;
    const std::string_view rest = std::string_view(u).substr(1);
    if (rest.empty() || rest == "ib") return power(1024, exp);
    if (rest == "b") return power(1000, exp);
    return fail(ErrorCode::InvalidArg, "unknown unit '{}' (expected b, KiB, KB, k, MiB, MB, M, GiB, GB, G, TiB, TB, T, PiB, PB, P, EiB, EB, E)", unit);
}

Result<std::uint64_t> scale_to_bytes(std::uint64_t value, std::string_view unit, std::string_view default_unit) {
    auto mult = unit_multiplier(unit.empty() ? default_unit : unit);
    if (!mult) return std::unexpected(mult.error());
    if (value != 0 && *mult > std::numeric_limits<std::uint64_t>::max() / value)
        return fail(ErrorCode::InvalidArg, "size {} {} is too large", value, unit.empty() ? default_unit : unit);
    return value * *mult;
}

Result<std::uint64_t> scale_to_kib(std::uint64_t value, std::string_view unit, std::string_view default_unit) {
    auto mult = unit_multiplier(unit.empty() ? default_unit : unit);
    if (!mult) return std::unexpected(mult.error());
    if (*mult >= 1024) {
        const std::uint64_t per_kib = *mult / 1024;  // exact for *iB; KB etc. are handled below
        if (*mult % 1024 == 0) {
            if (value != 0 && per_kib > std::numeric_limits<std::uint64_t>::max() / value)
                return fail(ErrorCode::InvalidArg, "size {} {} is too large", value, unit.empty() ? default_unit : unit);
            return value * per_kib;
        }
    }
    auto bytes = scale_to_bytes(value, unit, default_unit);
    if (!bytes) return std::unexpected(bytes.error());
    return *bytes / 1024 + (*bytes % 1024 != 0 ? 1 : 0);
}

Result<std::uint64_t> parse_size(std::string_view text, std::string_view default_unit) {
    std::size_t i = 0;
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    std::uint64_t value = 0;
    const char* first = text.data() + i;
    const char* last = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(first, last, value);
    if (ec == std::errc::result_out_of_range) return fail(ErrorCode::InvalidArg, "size '{}' is too large", text);
    if (ec != std::errc{} || ptr == first) return fail(ErrorCode::InvalidArg, "invalid size '{}': expected a number with an optional unit", text);
    std::string_view unit(ptr, static_cast<std::size_t>(last - ptr));
    while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.front()))) unit.remove_prefix(1);
    while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.back()))) unit.remove_suffix(1);
    return scale_to_bytes(value, unit, default_unit);
}

}  // namespace vireo::conf
