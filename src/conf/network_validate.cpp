// validate_network / check_network_conflicts: semantic checks on a
// NetworkDef. Every problem names the field it is about
// ("/network/ip[2]/dhcp/range/@end"); parse_network_xml adds the line.
#include <algorithm>
#include <cctype>
#include <map>

#include <fmt/format.h>

#include "conf/network.hpp"
#include "conf/network_internal.hpp"

namespace vireo::conf {

using netxml::indexed;
using netxml::Problem;

unsigned NetworkIp::prefix_length() const {
    if (prefix) return *prefix;
    if (netmask) return netmask_prefix(*netmask).value_or(32);
    if (address.v6) return 64;
    return classful_prefix(address).value_or(32);
}

const NetworkIp* NetworkDef::dhcp_ip(bool v6) const {
    for (const auto& ip : ips)
        if (ip.dhcp && ip.is_v6() == v6) return &ip;
    return nullptr;
}

namespace netxml {

namespace {

// Values that end up in dnsmasq's configuration lines.
bool has_control_char(std::string_view v) {
    for (char c : v)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
    return false;
}

std::string subnet_str(const NetworkIp& ip) {
    return fmt::format("{}/{}", ip.address.network(ip.prefix_length()).str(), ip.prefix_length());
}

std::optional<Problem> check_forward(const NetworkDef& def) {
    const auto& f = def.forward;
    switch (f.mode) {
        case ForwardMode::Bridge:
            if (!f.interfaces.empty())
                return Problem{ErrorCode::Unsupported, "/network/forward/@dev",
                               "a pool of host interfaces (macvtap) with forward mode='bridge' is not supported by vireo; "
                               "name an existing host bridge with <bridge name='...'/>"};
            if (def.bridge.name.empty() || def.bridge.name.find('%') != std::string::npos)
                return Problem{ErrorCode::XmlError, "/network/bridge/@name",
                               "forward mode='bridge' needs the name of an existing host bridge in <bridge name='...'/>"};
            if (!def.ips.empty()) return Problem{ErrorCode::XmlError, "/network/ip", "<ip> is not allowed with forward mode='bridge': the host bridge's addresses are the host's"};
            if (!def.dns.empty()) return Problem{ErrorCode::XmlError, "/network/dns", "<dns> is not allowed with forward mode='bridge'"};
            if (!def.domain_name.empty()) return Problem{ErrorCode::XmlError, "/network/domain", "<domain> is not allowed with forward mode='bridge'"};
            if (def.mac) return Problem{ErrorCode::XmlError, "/network/mac", "<mac> is not allowed with forward mode='bridge': vireo does not create that bridge"};
            if (!def.routes.empty()) return Problem{ErrorCode::XmlError, "/network/route", "<route> is not allowed with forward mode='bridge'"};
            if (!def.bridge.mac_table_manager.empty() && def.bridge.mac_table_manager != "kernel")
                return Problem{ErrorCode::Unsupported, "/network/bridge/@macTableManager", "macTableManager='libvirt' is not supported by vireo"};
            break;
        case ForwardMode::Open:
            if (!f.dev.empty()) return Problem{ErrorCode::XmlError, "/network/forward/@dev", "forward dev is not allowed with forward mode='open'"};
            break;
        case ForwardMode::Nat:
        case ForwardMode::Route:
            if (f.interfaces.size() > 1)
                return Problem{ErrorCode::XmlError, "/network/forward/interface[2]", "nat and route networks forward through at most one interface"};
            break;
        case ForwardMode::None:
            break;
    }
    if (!def.bridge.mac_table_manager.empty() && def.bridge.mac_table_manager != "kernel")
        return Problem{ErrorCode::Unsupported, "/network/bridge/@macTableManager", "macTableManager='libvirt' is not supported by vireo"};
    const auto& nat = f.nat;
    if (nat.address_start && nat.address_end && *nat.address_end < *nat.address_start)
        return Problem{ErrorCode::XmlError, "/network/forward/nat/address/@end",
                       fmt::format("NAT address range end {} is before its start {}", nat.address_end->str(), nat.address_start->str())};
    if (f.mode == ForwardMode::Nat && (nat.port_start != 0 || nat.port_end != 0)) {  // 0-0: no <port>
        if (nat.port_start == 0 || nat.port_end == 0)
            return Problem{ErrorCode::XmlError, "/network/forward/nat/port/@start", "NAT ports must be between 1 and 65535"};
        if (nat.port_end < nat.port_start)
            return Problem{ErrorCode::XmlError, "/network/forward/nat/port/@end",
                           fmt::format("NAT port range end {} is before its start {}", nat.port_end, nat.port_start)};
    }
    return std::nullopt;
}

std::optional<Problem> check_range(const NetworkIp& ip, const DhcpRange& r, const std::string& path) {
    const unsigned prefix = ip.prefix_length();
    for (const auto& [a, attr] : {std::pair{r.start, "@start"}, std::pair{r.end, "@end"}}) {
        if (a.v6 != ip.address.v6)
            return Problem{ErrorCode::XmlError, path + "/" + attr, fmt::format("DHCP range address {} is not of the family of <ip address='{}'>", a.str(), ip.address.str())};
        if (!ip.address.contains(a, prefix))
            return Problem{ErrorCode::XmlError, path + "/" + attr,
                           fmt::format("DHCP range {} - {} is not within the subnet {} of <ip address='{}'>", r.start.str(), r.end.str(), subnet_str(ip), ip.address.str())};
        if (!ip.address.v6 && prefix < 31 && (a == ip.address.network(prefix) || a == ip.address.last(prefix)))
            return Problem{ErrorCode::XmlError, path + "/" + attr,
                           fmt::format("DHCP range address {} is the network or broadcast address of {}", a.str(), subnet_str(ip))};
    }
    if (r.end < r.start)
        return Problem{ErrorCode::XmlError, path + "/@end", fmt::format("DHCP range end {} is before its start {}", r.end.str(), r.start.str())};
    return std::nullopt;
}

std::optional<Problem> check_host(const NetworkIp& ip, const DhcpHost& h, const std::string& path) {
    if (ip.is_v6() && !h.mac.empty())
        return Problem{ErrorCode::XmlError, path + "/@mac", "IPv6 static hosts are matched by DUID (id='...') or name, not by MAC"};
    if (!ip.is_v6() && !h.id.empty())
        return Problem{ErrorCode::XmlError, path + "/@id", "IPv4 static hosts are matched by MAC or name, not by DUID"};
    if (h.mac.empty() && h.id.empty() && h.name.empty())
        return Problem{ErrorCode::XmlError, path, ip.is_v6() ? "a static host needs id (DUID) or name" : "a static host needs mac or name"};
    if (!h.name.empty() && (!std::isalpha(static_cast<unsigned char>(h.name[0])) || !valid_dns_name(h.name)))
        return Problem{ErrorCode::XmlError, path + "/@name", fmt::format("invalid host name '{}': letters, digits, '.' and '-', starting with a letter", h.name)};
    if (!h.ip) return Problem{ErrorCode::XmlError, path + "/@ip", "missing IP address of the static host"};
    if (!ip.address.contains(*h.ip, ip.prefix_length()))
        return Problem{ErrorCode::XmlError, path + "/@ip",
                       fmt::format("static host address {} is not within the subnet {} of <ip address='{}'>", h.ip->str(), subnet_str(ip), ip.address.str())};
    return std::nullopt;
}

std::optional<Problem> check_dhcp(const NetworkIp& ip, const std::string& path) {
    for (std::size_t i = 0; i < ip.ranges.size(); ++i)
        if (auto p = check_range(ip, ip.ranges[i], path + "/dhcp/" + indexed("range", i, ip.ranges.size()))) return p;
    std::map<std::string, std::size_t> seen_mac, seen_id, seen_name;
    std::map<IpAddr, std::size_t> seen_ip;
    for (std::size_t i = 0; i < ip.hosts.size(); ++i) {
        const auto& h = ip.hosts[i];
        const std::string hp = path + "/dhcp/" + indexed("host", i, ip.hosts.size());
        if (auto p = check_host(ip, h, hp)) return p;
        auto dup = [&](auto& seen, const auto& key, std::string_view attr, std::string_view what) -> std::optional<Problem> {
            auto [it, fresh] = seen.emplace(key, i);
            if (fresh) return std::nullopt;
            return Problem{ErrorCode::XmlError, fmt::format("{}/@{}", hp, attr),
                           fmt::format("{} is already used by static host {}", what, it->second + 1)};
        };
        if (!h.mac.empty())
            if (auto p = dup(seen_mac, h.mac, "mac", fmt::format("MAC address {}", h.mac))) return p;
        if (!h.id.empty())
            if (auto p = dup(seen_id, h.id, "id", fmt::format("DUID {}", h.id))) return p;
        if (!h.name.empty())
            if (auto p = dup(seen_name, h.name, "name", fmt::format("host name {}", h.name))) return p;
        if (auto p = dup(seen_ip, *h.ip, "ip", fmt::format("address {}", h.ip->str()))) return p;
    }
    if (!ip.bootp_file.empty() && ip.is_v6())
        return Problem{ErrorCode::XmlError, path + "/dhcp/bootp", "<bootp> is only for IPv4"};
    return std::nullopt;
}

std::optional<Problem> check_ips(const NetworkDef& def) {
    int dhcp4 = 0, dhcp6 = 0;
    for (std::size_t i = 0; i < def.ips.size(); ++i) {
        const auto& ip = def.ips[i];
        const std::string path = "/network/" + indexed("ip", i, def.ips.size());
        if (!ip.address.v6 && !ip.prefix && !ip.netmask && !classful_prefix(ip.address))
            return Problem{ErrorCode::XmlError, path + "/@prefix", fmt::format("cannot derive a prefix for {}: give netmask or prefix", ip.address.str())};
        if (!ip.tftp_root.empty() && ip.is_v6()) return Problem{ErrorCode::XmlError, path + "/tftp", "<tftp> is only for IPv4"};
        if (has_control_char(ip.tftp_root)) return Problem{ErrorCode::XmlError, path + "/tftp/@root", "the TFTP root must not contain control characters"};
        if (has_control_char(ip.bootp_file) || has_control_char(ip.bootp_server) || ip.bootp_file.find(',') != std::string::npos)
            return Problem{ErrorCode::XmlError, path + "/dhcp/bootp", "the boot file and server must not contain control characters or ','"};
        if (ip.dhcp && ((ip.is_v6() ? ++dhcp6 : ++dhcp4) > 1))
            return Problem{ErrorCode::XmlError, path + "/dhcp",
                           fmt::format("only one {} <ip> of a network may have <dhcp>", ip.is_v6() ? "IPv6" : "IPv4")};
        if (ip.is_v6() && !ip.ranges.empty() && ip.prefix_length() > 64)
            return Problem{ErrorCode::XmlError, path + "/@prefix", "DHCPv6 ranges need a subnet of /64 or shorter"};
        if (auto p = check_dhcp(ip, path)) return p;
        for (std::size_t j = 0; j < i; ++j) {
            const auto& other = def.ips[j];
            if (subnets_overlap(ip.address, ip.prefix_length(), other.address, other.prefix_length()))
                return Problem{ErrorCode::XmlError, path + "/@address",
                               fmt::format("subnet {} overlaps subnet {} of /network/{}", subnet_str(ip), subnet_str(other), indexed("ip", j, def.ips.size()))};
        }
    }
    return std::nullopt;
}

std::optional<Problem> check_dns(const NetworkDef& def) {
    const auto& d = def.dns;
    if (d.enable == "no" && (!d.forward_plain_names.empty() || !d.forwarders.empty() || !d.txts.empty() || !d.srvs.empty() || !d.hosts.empty()))
        return Problem{ErrorCode::XmlError, "/network/dns", "a disabled DNS server (enable='no') cannot have forwarders, records or forwardPlainNames"};
    for (std::size_t i = 0; i < d.forwarders.size(); ++i) {
        const auto& f = d.forwarders[i];
        const std::string p = "/network/dns/" + indexed("forwarder", i, d.forwarders.size());
        if (!f.addr && f.domain.empty()) return Problem{ErrorCode::XmlError, p, "a DNS forwarder needs addr, domain or both"};
        if (!f.domain.empty() && !valid_dns_name(f.domain)) return Problem{ErrorCode::XmlError, p + "/@domain", fmt::format("invalid domain name '{}'", f.domain)};
    }
    for (std::size_t i = 0; i < d.txts.size(); ++i) {
        const std::string p = "/network/dns/" + indexed("txt", i, d.txts.size());
        if (!valid_dns_name(d.txts[i].name)) return Problem{ErrorCode::XmlError, p + "/@name", fmt::format("invalid TXT record name '{}'", d.txts[i].name)};
        if (d.txts[i].value.empty()) return Problem{ErrorCode::XmlError, p + "/@value", "missing TXT record value"};
        if (has_control_char(d.txts[i].value)) return Problem{ErrorCode::XmlError, p + "/@value", "a TXT record value must not contain control characters"};
    }
    for (std::size_t i = 0; i < d.srvs.size(); ++i) {
        const auto& s = d.srvs[i];
        const std::string p = "/network/dns/" + indexed("srv", i, d.srvs.size());
        if (s.service.empty() || s.service.size() > 15 || !valid_dns_name(s.service))
            return Problem{ErrorCode::XmlError, p + "/@service", fmt::format("invalid SRV service '{}': 1 to 15 letters, digits, '.' or '-'", s.service)};
        if (s.protocol != "tcp" && s.protocol != "udp")
            return Problem{ErrorCode::XmlError, p + "/@protocol", fmt::format("invalid SRV protocol '{}' (expected tcp or udp)", s.protocol)};
        if (!s.domain.empty() && !valid_dns_name(s.domain)) return Problem{ErrorCode::XmlError, p + "/@domain", fmt::format("invalid domain name '{}'", s.domain)};
        if (!s.target.empty() && !valid_dns_name(s.target)) return Problem{ErrorCode::XmlError, p + "/@target", fmt::format("invalid SRV target '{}'", s.target)};
    }
    for (std::size_t i = 0; i < d.hosts.size(); ++i) {
        const std::string p = "/network/dns/" + indexed("host", i, d.hosts.size());
        if (d.hosts[i].hostnames.empty()) return Problem{ErrorCode::XmlError, p, "a DNS host needs at least one <hostname>"};
        for (std::size_t j = 0; j < d.hosts[i].hostnames.size(); ++j)
            if (!valid_dns_name(d.hosts[i].hostnames[j]))
                return Problem{ErrorCode::XmlError, p + "/" + indexed("hostname", j, d.hosts[i].hostnames.size()),
                               fmt::format("invalid host name '{}'", d.hosts[i].hostnames[j])};
    }
    return std::nullopt;
}

std::optional<Problem> check_rate(const std::optional<BandwidthRate>& r, const std::string& path) {
    if (!r) return std::nullopt;
    if (r->floor) return Problem{ErrorCode::Unsupported, path + "/@floor", "a network-wide bandwidth floor is not supported (floor belongs to a guest interface)"};
    if (!r->average) return Problem{ErrorCode::XmlError, path + "/@average", "missing the mandatory average rate"};
    for (const auto& [v, name] : {std::pair{r->average, "average"}, std::pair{r->peak, "peak"}, std::pair{r->burst, "burst"}})
        if (v && *v == 0) return Problem{ErrorCode::XmlError, fmt::format("{}/@{}", path, name), fmt::format("{} must be at least 1", name)};
    return std::nullopt;
}

std::optional<Problem> check_misc(const NetworkDef& def) {
    if (def.mtu && *def.mtu < 68) return Problem{ErrorCode::XmlError, "/network/mtu/@size", fmt::format("MTU {} is below the minimum of 68", *def.mtu)};
    if (!def.domain_name.empty() && !valid_dns_name(def.domain_name))
        return Problem{ErrorCode::XmlError, "/network/domain/@name", fmt::format("invalid domain name '{}'", def.domain_name)};
    if (def.bandwidth) {
        if (auto p = check_rate(def.bandwidth->inbound, "/network/bandwidth/inbound")) return p;
        if (auto p = check_rate(def.bandwidth->outbound, "/network/bandwidth/outbound")) return p;
    }
    if (!def.bridge.zone.empty())
        for (char c : def.bridge.zone)
            if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'))
                return Problem{ErrorCode::XmlError, "/network/bridge/@zone", fmt::format("invalid firewalld zone name '{}'", def.bridge.zone)};
    for (std::size_t i = 0; i < def.routes.size(); ++i) {
        const auto& r = def.routes[i];
        const std::string p = "/network/" + indexed("route", i, def.routes.size());
        if (r.metric && *r.metric == 0) return Problem{ErrorCode::XmlError, p + "/@metric", "route metric must be at least 1"};
        bool reachable = false;
        for (const auto& ip : def.ips)
            if (ip.address.contains(r.gateway, ip.prefix_length())) reachable = true;
        if (!reachable)
            return Problem{ErrorCode::XmlError, p + "/@gateway", fmt::format("gateway {} is not in a subnet of the network's <ip> elements", r.gateway.str())};
    }
    return std::nullopt;
}

}  // namespace

std::optional<Problem> find_network_problem(const NetworkDef& def) {
    if (auto p = check_forward(def)) return p;
    if (auto p = check_ips(def)) return p;
    if (auto p = check_dns(def)) return p;
    return check_misc(def);
}

}  // namespace netxml

Status check_network_conflicts(const NetworkDef& def, const std::vector<NetworkDef>& others, const std::set<std::string>& host_interfaces) {
    for (const auto& other : others) {
        if (other.uuid == def.uuid) continue;
        if (!def.bridge.name.empty() && def.bridge.name == other.bridge.name && def.has_own_bridge())
            return fail(ErrorCode::InvalidArg, "/network/bridge/@name: bridge name '{}' is already used by network '{}'", def.bridge.name, other.name);
        for (std::size_t i = 0; i < def.ips.size(); ++i)
            for (const auto& oip : other.ips)
                if (subnets_overlap(def.ips[i].address, def.ips[i].prefix_length(), oip.address, oip.prefix_length()))
                    return fail(ErrorCode::InvalidArg, "/network/{}/@address: subnet {}/{} overlaps subnet {}/{} of network '{}'",
                                netxml::indexed("ip", i, def.ips.size()), def.ips[i].address.network(def.ips[i].prefix_length()).str(),
                                def.ips[i].prefix_length(), oip.address.network(oip.prefix_length()).str(), oip.prefix_length(), other.name);
    }
    if (def.has_own_bridge() && !def.bridge.name.empty() && host_interfaces.contains(def.bridge.name))
        return fail(ErrorCode::InvalidArg, "/network/bridge/@name: bridge name '{}' is already in use by a host interface", def.bridge.name);
    return {};
}

}  // namespace vireo::conf
