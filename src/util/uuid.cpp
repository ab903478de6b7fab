#include "util/uuid.hpp"

#include <fmt/format.h>

#include "util/random.hpp"

namespace vireo {

Uuid Uuid::generate() {
    Uuid u;
    random_bytes(u.bytes);
    u.bytes[6] = static_cast<std::uint8_t>((u.bytes[6] & 0x0f) | 0x40);  // version 4
    u.bytes[8] = static_cast<std::uint8_t>((u.bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
    return u;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::optional<Uuid> Uuid::parse(std::string_view text) {
    Uuid u;
    size_t i = 0;
    size_t n = 0;
    while (n < 16) {
        while (i < text.size() && text[i] == '-') ++i;
        if (i + 2 > text.size()) return std::nullopt;
        int hi = hex_value(text[i]);
        int lo = hex_value(text[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        u.bytes[n++] = static_cast<std::uint8_t>(hi * 16 + lo);
        i += 2;
    }
    if (i != text.size()) return std::nullopt;
    return u;
}

std::string Uuid::str() const {
    const auto& b = bytes;
    return fmt::format("{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-"
                       "{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                       b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                       b[13], b[14], b[15]);
}

bool Uuid::is_null() const {
    for (auto b : bytes)
        if (b != 0) return false;
    return true;
}

}  // namespace vireo
