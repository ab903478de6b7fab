#include "conf/network_addr.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include <cctype>
#include <limits>

#include <fmt/format.h>

#include "util/random.hpp"

namespace vireo::conf {

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
    if (text.empty() || text.size() > 64) return std::nullopt;
    const std::string s(text);
    IpAddr a;
    if (s.find(':') == std::string::npos) {
        in_addr v4{};
        if (inet_pton(AF_INET, s.c_str(), &v4) != 1) return std::nullopt;
        std::memcpy(a.bytes.data(), &v4, 4);
        return a;
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, s.c_str(), &v6) != 1) return std::nullopt;
    a.v6 = true;
    std::memcpy(a.bytes.data(), &v6, 16);
    return a;
}

IpAddr IpAddr::v4(std::uint32_t host_order) {
    IpAddr a;
    a.bytes[0] = static_cast<std::uint8_t>(host_order >> 24);
    a.bytes[1] = static_cast<std::uint8_t>(host_order >> 16);
    a.bytes[2] = static_cast<std::uint8_t>(host_order >> 8);
    a.bytes[3] = static_cast<std::uint8_t>(host_order);
    return a;
}

std::uint32_t IpAddr::v4_value() const {
    return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) | bytes[3];
}

std::string IpAddr::str() const {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
    return buf;
}

IpAddr IpAddr::network(unsigned prefix) const {
    IpAddr out = *this;
    for (unsigned i = 0; i < bits() / 8; ++i) {
        const unsigned keep = prefix > i * 8 ? std::min(8u, prefix - i * 8) : 0u;
        out.bytes[i] &= static_cast<std::uint8_t>(keep == 0 ? 0 : (0xff << (8 - keep)));
    }
    return out;
}

IpAddr IpAddr::last(unsigned prefix) const {
    IpAddr out = *this;
    for (unsigned i = 0; i < bits() / 8; ++i) {
        const unsigned keep = prefix > i * 8 ? std::min(8u, prefix - i * 8) : 0u;
        out.bytes[i] |= static_cast<std::uint8_t>(keep >= 8 ? 0 : (0xff >> keep));
    }
    return out;
}

bool IpAddr::contains(const IpAddr& other, unsigned prefix) const {
    return v6 == other.v6 && network(prefix) == other.network(prefix);
}

std::optional<unsigned> netmask_prefix(const IpAddr& netmask) {
    unsigned prefix = 0;
    bool ended = false;
    for (unsigned i = 0; i < netmask.bits() / 8; ++i)
        for (int b = 7; b >= 0; --b) {
            const bool set = (netmask.bytes[i] >> b) & 1;
            if (set && ended) return std::nullopt;
            if (set) ++prefix;
            else ended = true;
        }
    return prefix;
}

IpAddr prefix_netmask_v4(unsigned prefix) {
    return IpAddr::v4(prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - std::min(prefix, 32u)));
}

std::optional<unsigned> classful_prefix(const IpAddr& a) {
    if (a.v6) return std::nullopt;
    const auto first = a.bytes[0];
    if ((first & 0x80) == 0) return 8;
    if ((first & 0xc0) == 0x80) return 16;
    if ((first & 0xe0) == 0xc0) return 24;
    return std::nullopt;
}

bool subnets_overlap(const IpAddr& a, unsigned a_prefix, const IpAddr& b, unsigned b_prefix) {
    if (a.v6 != b.v6) return false;
    const unsigned p = std::min(a_prefix, b_prefix);
    return a.network(p) == b.network(p);
}

std::uint64_t range_size(const IpAddr& start, const IpAddr& end) {
    // Difference of the two numbers, byte by byte from the low end.
    const unsigned n = start.bits() / 8;
    std::array<int, 16> diff{};
    int borrow = 0;
    for (int i = static_cast<int>(n) - 1; i >= 0; --i) {
        int d = int{end.bytes[static_cast<std::size_t>(i)]} - int{start.bytes[static_cast<std::size_t>(i)]} - borrow;
        borrow = d < 0 ? 1 : 0;
        diff[static_cast<std::size_t>(i)] = d < 0 ? d + 256 : d;
    }
    if (borrow) return 0;
    std::uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i) {
        if (v > (std::numeric_limits<std::uint64_t>::max() >> 8)) return std::numeric_limits<std::uint64_t>::max();
        v = (v << 8) | static_cast<std::uint64_t>(diff[i]);
    }
    return v == std::numeric_limits<std::uint64_t>::max() ? v : v + 1;
}

std::optional<MacAddr> MacAddr::parse(std::string_view text) {
    MacAddr m;
    std::size_t pos = 0;
    for (std::size_t i = 0; i < 6; ++i) {
        if (i > 0) {
            if (pos >= text.size() || (text[pos] != ':' && text[pos] != '-')) return std::nullopt;
            ++pos;
        }
        unsigned v = 0;
        std::size_t digits = 0;
        while (pos < text.size() && digits < 2 && std::isxdigit(static_cast<unsigned char>(text[pos]))) {
            const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(text[pos])));
            v = v * 16 + static_cast<unsigned>(c <= '9' ? c - '0' : c - 'a' + 10);
            ++pos;
            ++digits;
        }
        if (digits == 0) return std::nullopt;
        m.bytes[i] = static_cast<std::uint8_t>(v);
    }
    if (pos != text.size()) return std::nullopt;
    return m;
}

std::string MacAddr::str() const {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]);
}

MacAddr random_mac(std::span<const std::uint8_t> prefix) {
    MacAddr m;
    random_bytes(m.bytes);
    for (std::size_t i = 0; i < prefix.size() && i < 6; ++i) m.bytes[i] = prefix[i];
    if (prefix.empty()) m.bytes[0] = static_cast<std::uint8_t>((m.bytes[0] & 0xfe) | 0x02);  // unicast, locally administered
    return m;
}

}  // namespace vireo::conf
