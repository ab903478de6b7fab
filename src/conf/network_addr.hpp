// IP and MAC addresses as the network and interface XML use them: parsing
// and printing (inet_pton/inet_ntop spellings, so IPv6 is printed in its
// canonical compressed form as libvirt does), prefix/netmask conversion and
// the subnet arithmetic validation needs (containment, overlap, range size).
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace vireo::conf {

struct IpAddr {
    bool v6 = false;
    // IPv4 uses the first 4 bytes (network order); IPv6 all 16.
    std::array<std::uint8_t, 16> bytes{};

    // "192.168.122.1" or "fd00::1"; nullopt if neither.
    static std::optional<IpAddr> parse(std::string_view text);
    static IpAddr v4(std::uint32_t host_order);
    [[nodiscard]] std::string str() const;
    // Bits in the address: 32 or 128.
    [[nodiscard]] unsigned bits() const { return v6 ? 128 : 32; }
    [[nodiscard]] std::uint32_t v4_value() const;  // host order (IPv4 only)

    // The address with the host part (beyond `prefix` bits) cleared / set.
    [[nodiscard]] IpAddr network(unsigned prefix) const;
    [[nodiscard]] IpAddr last(unsigned prefix) const;
    // Whether `other` is in this address's /prefix subnet (same family).
    [[nodiscard]] bool contains(const IpAddr& other, unsigned prefix) const;

    friend bool operator==(const IpAddr&, const IpAddr&) = default;
    friend std::strong_ordering operator<=>(const IpAddr&, const IpAddr&) = default;
};

// Netmask -> prefix length; nullopt for a non-contiguous mask.
std::optional<unsigned> netmask_prefix(const IpAddr& netmask);
// Prefix length -> IPv4 netmask.
IpAddr prefix_netmask_v4(unsigned prefix);
// libvirt's natural (classful) prefix for an IPv4 address given without
// netmask or prefix: 8, 16 or 24; nullopt for class D/E.
std::optional<unsigned> classful_prefix(const IpAddr& a);

// Two subnets overlap when either contains the other's network address.
bool subnets_overlap(const IpAddr& a, unsigned a_prefix, const IpAddr& b, unsigned b_prefix);

// Number of addresses in [start, end] (same family, start <= end); saturates
// at UINT64_MAX for huge IPv6 ranges.
std::uint64_t range_size(const IpAddr& start, const IpAddr& end);

struct MacAddr {
    std::array<std::uint8_t, 6> bytes{};

    // "52:54:00:ab:cd:ef" (also '-' separated, either case); nullopt otherwise.
    static std::optional<MacAddr> parse(std::string_view text);
    // Lower-case colon form, as libvirt prints it.
    [[nodiscard]] std::string str() const;
    [[nodiscard]] bool is_multicast() const { return (bytes[0] & 1) != 0; }
    friend bool operator==(const MacAddr&, const MacAddr&) = default;
    friend std::strong_ordering operator<=>(const MacAddr&, const MacAddr&) = default;
};

// A random MAC under `prefix` (QEMU's/libvirt's 52:54:00 by default).
MacAddr random_mac(std::span<const std::uint8_t> prefix = std::array<std::uint8_t, 3>{0x52, 0x54, 0x00});

}  // namespace vireo::conf
