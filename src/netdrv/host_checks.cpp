// Host interfaces and subnets in use (see host_checks.hpp).
#include "netdrv/host_checks.hpp"

#include <charconv>
#include <cstdint>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "network/netlink.hpp"
#include "util/files.hpp"

namespace vireo::netdrv {

namespace {

// A hexadecimal field of /proc; nullopt when it is not one.
std::optional<std::uint32_t> hex(std::string_view text) {
    std::uint32_t v = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 16);
    if (ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
    return v;
}

// One route of the main table: its interface and destination subnet.
struct Route {
    std::string iface;
    conf::IpAddr dest;
    unsigned prefix = 0;
};

// /proc/<thread>/net/route: "Iface Destination Gateway Flags RefCnt Use Metric Mask ...",
// addresses in hex, in the kernel's (little-endian) byte order.
std::vector<Route> ipv4_routes() {
    std::vector<Route> out;
    auto text = files::read("/proc/thread-self/net/route");  // this thread's namespace
    if (!text) return out;
    std::istringstream in(*text);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string iface, dest, gw, flags, refcnt, use, metric, mask;
        if (!(f >> iface >> dest >> gw >> flags >> refcnt >> use >> metric >> mask)) continue;
        const auto d = hex(dest), m = hex(mask);
        if (!d || !m || *m == 0) continue;  // the default route overlaps everything
        conf::IpAddr addr;
        conf::IpAddr netmask;
        for (int i = 0; i < 4; ++i) {
            addr.bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(*d >> (8 * i));
            netmask.bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(*m >> (8 * i));
        }
        auto prefix = conf::netmask_prefix(netmask);
        if (!prefix) continue;
        out.push_back({iface, addr, *prefix});
    }
    return out;
}

// /proc/<thread>/net/ipv6_route: "dest prefix src srcprefix nexthop metric refcnt use flags iface".
std::vector<Route> ipv6_routes() {
    std::vector<Route> out;
    auto text = files::read("/proc/thread-self/net/ipv6_route");
    if (!text) return out;
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string dest, prefix, src, srcprefix, nexthop, metric, refcnt, use, flags, iface;
        if (!(f >> dest >> prefix >> src >> srcprefix >> nexthop >> metric >> refcnt >> use >> flags >> iface)) continue;
        const auto p = hex(prefix);
        if (!p || *p == 0 || *p > 128 || iface == "lo" || dest.size() != 32) continue;
        conf::IpAddr addr;
        addr.v6 = true;
        bool ok = true;
        for (std::size_t i = 0; i < 16; ++i) {
            auto byte = hex(std::string_view(dest).substr(2 * i, 2));
            ok = ok && byte.has_value();
            addr.bytes[i] = static_cast<std::uint8_t>(byte.value_or(0));
        }
        if (!ok) continue;
        if (addr.bytes[0] == 0xfe && (addr.bytes[1] & 0xc0) == 0x80) continue;  // link-local
        if (addr.bytes[0] == 0xff) continue;                                   // multicast
        out.push_back({iface, addr, *p});
    }
    return out;
}

}  // namespace

Result<std::set<std::string>> host_interface_names() {
    auto links = network::list_links();
    if (!links) return std::unexpected(links.error());
    std::set<std::string> names;
    for (const auto& l : *links) names.insert(l.name);
    return names;
}

Result<std::optional<std::string>> subnet_in_use(const conf::NetworkDef& def) {
    if (!def.has_own_bridge() || def.ips.empty()) return std::optional<std::string>();
    auto links = network::list_links();
    if (!links) return std::unexpected(links.error());
    std::map<int, std::string> names;
    for (const auto& l : *links) names[l.index] = l.name;
    auto addrs = network::list_addresses();
    if (!addrs) return std::unexpected(addrs.error());
    auto routes = ipv4_routes();
    auto v6 = ipv6_routes();
    routes.insert(routes.end(), v6.begin(), v6.end());
    for (const auto& ip : def.ips) {
        const unsigned prefix = ip.prefix_length();
        const std::string subnet = fmt::format("{}/{}", ip.address.network(prefix).str(), prefix);
        for (const auto& a : *addrs) {
            const auto it = names.find(a.index);
            const std::string iface = it == names.end() ? std::to_string(a.index) : it->second;
            if (iface == def.bridge.name || a.address.v6 != ip.address.v6) continue;
            if (a.address.v6 && a.address.bytes[0] == 0xfe && (a.address.bytes[1] & 0xc0) == 0x80) continue;
            if (conf::subnets_overlap(ip.address, prefix, a.address, a.prefix))
                return std::optional<std::string>(fmt::format("interface '{}' ({}/{} overlaps {})", iface, a.address.str(), a.prefix, subnet));
        }
        for (const auto& r : routes) {
            if (r.iface == def.bridge.name || r.dest.v6 != ip.address.v6) continue;
            if (conf::subnets_overlap(ip.address, prefix, r.dest, r.prefix))
                return std::optional<std::string>(
                    fmt::format("interface '{}' (route {}/{} overlaps {})", r.iface, r.dest.str(), r.prefix, subnet));
        }
    }
    return std::optional<std::string>();
}

}  // namespace vireo::netdrv
