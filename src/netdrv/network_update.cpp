// net-update's sections on a NetworkDef (see network_update.hpp).
#include "netdrv/network_update.hpp"

#include <algorithm>
#include <sstream>

#include <fmt/format.h>
#include <pugixml.hpp>

namespace vireo::netdrv {

namespace {

using driver::NetworkUpdateCommand;
using driver::NetworkUpdateSection;

Error invalid(std::string message) {
    return Error{ErrorCode::InvalidState, "Requested operation is not valid: " + std::move(message)};
}

// The single element the user gave, re-serialised; refused unless it is one
// <expected> element.
Result<std::string> element_text(std::string_view xml, std::string_view expected, std::string_view section,
                                 pugi::xml_document& doc) {
    const auto parsed = doc.load_buffer(xml.data(), xml.size(), pugi::parse_default);
    if (!parsed)
        return fail(ErrorCode::XmlError, "XML error: cannot parse the {} element: {} (at offset {})", section,
                    parsed.description(), parsed.offset);
    std::size_t elements = 0;
    for (auto n : doc.children())
        if (n.type() == pugi::node_element) ++elements;
    const auto root = doc.document_element();
    if (elements != 1 || std::string_view(root.name()) != expected)
        return fail(ErrorCode::XmlError, "XML error: the {} section takes one <{}> element, not <{}>", section, expected,
                    root.name());
    std::ostringstream out;
    root.print(out, "", pugi::format_raw);
    return out.str();
}

// The network parser on `inner`, placed in a copy of the parent <ip> (or in
// <dns>), so that the element is checked as net-define checks it.
Result<conf::NetworkDef> parse_wrapped(const conf::NetworkIp* parent, std::string_view inner) {
    std::string doc = "<network><name>update</name>";
    if (parent)
        doc += fmt::format("<ip address='{}' prefix='{}'><dhcp>{}</dhcp></ip>", parent->address.str(),
                           parent->prefix_length(), inner);
    else
        doc += fmt::format("<dns>{}</dns>", inner);
    doc += "</network>";
    return conf::parse_network_xml(doc);
}

// Which <ip> a DHCP update goes to: the one at parent_index, or the first of
// the element's family (the one with <dhcp>, else the first).
Result<conf::NetworkIp*> parent_ip(conf::NetworkDef& def, std::uint64_t index, bool v6) {
    if (index != driver::kAnyParentIndex) {
        if (index >= def.ips.size())
            return std::unexpected(invalid(fmt::format(
                "couldn't update dhcp host entry - no <ip> element found at index {} in network '{}'", index, def.name)));
        return &def.ips[index];
    }
    conf::NetworkIp* first = nullptr;
    for (auto& ip : def.ips) {
        if (ip.is_v6() != v6) continue;
        if (ip.dhcp) return &ip;
        if (!first) first = &ip;
    }
    if (first) return first;
    return std::unexpected(invalid(fmt::format("couldn't update dhcp host entry - no <ip family='{}'> element found in network '{}'",
                                               v6 ? "ipv6" : "ipv4", def.name)));
}

// The fields of a <host> that identify it (a delete needs no more).
struct HostKey {
    std::string mac, id, name;
    std::optional<conf::IpAddr> ip;
};

Result<HostKey> host_key(const pugi::xml_node& n) {
    HostKey k;
    if (auto a = n.attribute("mac")) {
        auto mac = conf::MacAddr::parse(a.value());
        if (!mac) return fail(ErrorCode::XmlError, "XML error: /host/@mac: invalid MAC address '{}'", a.value());
        k.mac = mac->str();
    }
    k.id = n.attribute("id").value();
    k.name = n.attribute("name").value();
    if (auto a = n.attribute("ip")) {
        k.ip = conf::IpAddr::parse(a.value());
        if (!k.ip) return fail(ErrorCode::XmlError, "XML error: /host/@ip: invalid IP address '{}'", a.value());
    }
    if (k.mac.empty() && k.id.empty() && k.name.empty() && !k.ip)
        return fail(ErrorCode::XmlError, "XML error: /host: a dhcp host needs at least one of mac, id, name or ip");
    return k;
}

bool matches(const conf::DhcpHost& h, const HostKey& k) {
    return (k.mac.empty() || h.mac == k.mac) && (k.id.empty() || h.id == k.id) && (k.name.empty() || h.name == k.name) &&
           (!k.ip || h.ip == k.ip);
}

// Is the element for an IPv6 <ip>? A DUID, or an IPv6 address.
bool host_is_v6(const HostKey& k) { return !k.id.empty() || (k.ip && k.ip->v6); }

template <class T>
void insert(std::vector<T>& list, T item, NetworkUpdateCommand command) {
    if (command == NetworkUpdateCommand::AddFirst) list.insert(list.begin(), std::move(item));
    else list.push_back(std::move(item));
}

Status update_dhcp_host(conf::NetworkDef& def, const NetworkUpdateRequest& r) {
    pugi::xml_document doc;
    auto text = element_text(r.xml, "host", "ip-dhcp-host", doc);
    if (!text) return std::unexpected(text.error());
    auto key = host_key(doc.document_element());
    if (!key) return std::unexpected(key.error());
    auto parent = parent_ip(def, r.parent_index, host_is_v6(*key));
    if (!parent) return std::unexpected(parent.error());
    conf::NetworkIp& ip = **parent;
    auto& hosts = ip.hosts;
    if (r.command == NetworkUpdateCommand::Delete) {
        auto it = std::find_if(hosts.begin(), hosts.end(), [&](const auto& h) { return matches(h, *key); });
        if (it == hosts.end())
            return std::unexpected(invalid(fmt::format("couldn't locate a matching dhcp host entry in network '{}'", def.name)));
        hosts.erase(it);
        return {};
    }
    auto parsed = parse_wrapped(&ip, *text);
    if (!parsed) return std::unexpected(parsed.error());
    conf::DhcpHost host = parsed->ips.front().hosts.front();
    if (r.command == NetworkUpdateCommand::Modify) {
        // The entry with the same MAC (IPv4) or DUID (IPv6), else the same name.
        auto same = [&](const conf::DhcpHost& h) {
            if (!host.mac.empty()) return h.mac == host.mac;
            if (!host.id.empty()) return h.id == host.id;
            return h.name == host.name;
        };
        auto it = std::find_if(hosts.begin(), hosts.end(), same);
        if (it == hosts.end()) {
            const std::string by = !host.mac.empty() ? fmt::format("mac='{}'", host.mac)
                                   : !host.id.empty() ? fmt::format("id='{}'", host.id)
                                                      : fmt::format("name='{}'", host.name);
            return std::unexpected(invalid(
                fmt::format("couldn't locate an existing dhcp host entry with \"{}\" in network '{}'", by, def.name)));
        }
        *it = std::move(host);
        return {};
    }
    for (const auto& h : hosts)
        if ((!host.mac.empty() && h.mac == host.mac) || (!host.id.empty() && h.id == host.id) ||
            (!host.name.empty() && h.name == host.name) || (host.ip && h.ip == host.ip))
            return std::unexpected(
                invalid(fmt::format("there is an existing dhcp host entry in network '{}' that matches \"{}\"", def.name, r.xml)));
    ip.dhcp = true;
    insert(hosts, std::move(host), r.command);
    return {};
}

Status update_dhcp_range(conf::NetworkDef& def, const NetworkUpdateRequest& r) {
    if (r.command == NetworkUpdateCommand::Modify)
        return fail(ErrorCode::Unsupported, "Operation not supported: dhcp ranges cannot be modified, only added or deleted");
    pugi::xml_document doc;
    auto text = element_text(r.xml, "range", "ip-dhcp-range", doc);
    if (!text) return std::unexpected(text.error());
    auto start = conf::IpAddr::parse(doc.document_element().attribute("start").value());
    if (!start) return fail(ErrorCode::XmlError, "XML error: /range/@start: missing or invalid start address");
    auto parent = parent_ip(def, r.parent_index, start->v6);
    if (!parent) return std::unexpected(parent.error());
    conf::NetworkIp& ip = **parent;
    auto parsed = parse_wrapped(&ip, *text);
    if (!parsed) return std::unexpected(parsed.error());
    const conf::DhcpRange range = parsed->ips.front().ranges.front();
    auto same = [&](const conf::DhcpRange& x) { return x.start == range.start && x.end == range.end; };
    auto it = std::find_if(ip.ranges.begin(), ip.ranges.end(), same);
    if (r.command == NetworkUpdateCommand::Delete) {
        if (it == ip.ranges.end())
            return std::unexpected(invalid(fmt::format("couldn't locate a matching dhcp range entry in network '{}'", def.name)));
        ip.ranges.erase(it);
        return {};
    }
    if (it != ip.ranges.end())
        return std::unexpected(
            invalid(fmt::format("there is an existing dhcp range entry in network '{}' that matches \"{}\"", def.name, r.xml)));
    ip.dhcp = true;
    insert(ip.ranges, range, r.command);
    return {};
}

Status update_dns_host(conf::NetworkDef& def, const NetworkUpdateRequest& r) {
    if (r.command == NetworkUpdateCommand::Modify)
        return fail(ErrorCode::Unsupported, "Operation not supported: DNS HOST records cannot be modified, only added or deleted");
    pugi::xml_document doc;
    auto text = element_text(r.xml, "host", "dns-host", doc);
    if (!text) return std::unexpected(text.error());
    auto& hosts = def.dns.hosts;
    if (r.command == NetworkUpdateCommand::Delete) {
        const auto node = doc.document_element();
        auto ip = conf::IpAddr::parse(node.attribute("ip").value());
        std::vector<std::string> names;
        for (auto n : node.children("hostname")) names.emplace_back(n.child_value());
        if (!ip && names.empty()) return fail(ErrorCode::XmlError, "XML error: /host: a DNS host is matched by ip or <hostname>");
        auto it = std::find_if(hosts.begin(), hosts.end(), [&](const conf::DnsHost& h) {
            if (ip && !(h.ip == *ip)) return false;
            return std::all_of(names.begin(), names.end(), [&](const std::string& n) {
                return std::find(h.hostnames.begin(), h.hostnames.end(), n) != h.hostnames.end();
            });
        });
        if (it == hosts.end())
            return std::unexpected(invalid(fmt::format("couldn't locate a matching DNS HOST record in network {}", def.name)));
        hosts.erase(it);
        return {};
    }
    auto parsed = parse_wrapped(nullptr, *text);
    if (!parsed) return std::unexpected(parsed.error());
    conf::DnsHost host = parsed->dns.hosts.front();
    for (const auto& h : hosts) {
        bool clash = h.ip == host.ip;
        for (const auto& n : host.hostnames)
            clash = clash || std::find(h.hostnames.begin(), h.hostnames.end(), n) != h.hostnames.end();
        if (clash)
            return std::unexpected(
                invalid(fmt::format("there is already at least one DNS HOST record with a matching field in network {}", def.name)));
    }
    if (def.dns.enable == "no")
        return std::unexpected(invalid(fmt::format("DNS is disabled in network {} (<dns enable='no'/>)", def.name)));
    insert(hosts, std::move(host), r.command);
    return {};
}

}  // namespace

Result<UpdateEffect> apply_network_update(conf::NetworkDef& def, const NetworkUpdateRequest& r) {
    conf::NetworkDef copy = def;
    Status st;
    UpdateEffect effect = UpdateEffect::HostsFiles;
    switch (r.section) {
        case NetworkUpdateSection::IpDhcpHost: st = update_dhcp_host(copy, r); break;
        case NetworkUpdateSection::IpDhcpRange:
            st = update_dhcp_range(copy, r);
            effect = UpdateEffect::DhcpConfig;
            break;
        case NetworkUpdateSection::DnsHost: st = update_dns_host(copy, r); break;
        default:
            return fail(ErrorCode::Unsupported,
                        "Operation not supported: can't update '{}' section of network '{}' (vireo updates ip-dhcp-host, "
                        "ip-dhcp-range and dns-host)",
                        driver::network_update_section_name(r.section), def.name);
    }
    if (!st) return std::unexpected(st.error());
    VIREO_TRY(conf::validate_network(copy));
    def = std::move(copy);
    return effect;
}

}  // namespace vireo::netdrv
