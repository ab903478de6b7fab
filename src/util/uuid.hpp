// RFC 4122 UUIDs as libvirt uses them: 16 bytes, printed lower-case with dashes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vireo {

struct Uuid {
    std::array<std::uint8_t, 16> bytes{};

    // A new random (version 4) UUID.
    static Uuid generate();
    // Parse "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" or the 32-hex-digit form
    // (libvirt accepts both, and dashes anywhere between byte pairs).
    static std::optional<Uuid> parse(std::string_view text);

    [[nodiscard]] std::string str() const;
    [[nodiscard]] bool is_null() const;
    friend bool operator==(const Uuid&, const Uuid&) = default;
};

}  // namespace vireo
