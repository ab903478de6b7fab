// Whole-string decimal numbers. std::from_chars that must consume all of
// `text` (no sign, blanks or trailing bytes accepted), where atoi/sscanf would
// turn "12x" or "" into a number without a word.
#pragma once

#include <charconv>
#include <optional>
#include <string_view>
#include <system_error>

namespace vireo::util {

template <class T>
std::optional<T> parse_number(std::string_view text) {
    if (text.empty()) return std::nullopt;
    T value{};
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc() || ptr != end) return std::nullopt;
    return value;
}

}  // namespace vireo::util
