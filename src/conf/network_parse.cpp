// parse_network_xml: libvirt network XML -> NetworkDef (see network.hpp).
//
// Every parse_* function consumes the attributes and children it models and
// ends with finish(), which refuses whatever is left as "unsupported
// configuration" naming it: nothing is silently dropped.
#include <fmt/format.h>

#include "conf/network.hpp"
#include "conf/network_internal.hpp"
#include "util/files.hpp"

namespace vireo::conf {

using netxml::XmlElement;

namespace {

Result<std::optional<unsigned>> attr_uint_max(XmlElement& e, std::string_view name, unsigned max) {
    std::optional<unsigned> v;
    VIREO_ASSIGN(v, e.attr_uint(name));
    if (v && *v > max)
        return std::unexpected(e.xml_error(fmt::format("@{}", name), fmt::format("value {} out of range (maximum {})", *v, max)));
    return v;
}

Status parse_nat(XmlElement& e, NetworkNat& nat) {
    VIREO_ASSIGN(nat.ipv6, e.attr_yesno("ipv6"));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("address"));
    if (c) {
        VIREO_ASSIGN(nat.address_start, netxml::attr_ip(*c, "start", "ipv4"));
        VIREO_ASSIGN(nat.address_end, netxml::attr_ip(*c, "end", "ipv4"));
        if (!nat.address_start) return std::unexpected(c->xml_error("@start", "missing start of the NAT address range"));
        if (!nat.address_end) return std::unexpected(c->xml_error("@end", "missing end of the NAT address range"));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("port"));
    if (c) {
        std::optional<unsigned> start, end;
        VIREO_ASSIGN(start, attr_uint_max(*c, "start", 65535));
        VIREO_ASSIGN(end, attr_uint_max(*c, "end", 65535));
        if (!start || !end) return std::unexpected(c->xml_error(start ? "@end" : "@start", "a NAT port range needs both start and end"));
        nat.port_start = *start;
        nat.port_end = *end;
        VIREO_TRY(c->finish());
    }
    return e.finish();
}

Status parse_forward(XmlElement& e, NetworkForward& fwd) {
    std::string mode;
    VIREO_ASSIGN(mode, e.attr_enum("mode", {"nat", "route", "open", "bridge"}, "forward mode",
                              {"passthrough", "private", "vepa", "hostdev"}));
    if (mode.empty() || mode == "nat") fwd.mode = ForwardMode::Nat;
    else if (mode == "route") fwd.mode = ForwardMode::Route;
    else if (mode == "open") fwd.mode = ForwardMode::Open;
    else fwd.mode = ForwardMode::Bridge;
    VIREO_ASSIGN(fwd.dev, netxml::attr_ifname(e, "dev"));
    for (auto& i : e.children("interface")) {
        std::string dev;
        VIREO_ASSIGN(dev, netxml::attr_ifname(i, "dev"));
        if (dev.empty()) return std::unexpected(i.xml_error("@dev", "missing interface name"));
        i.attr("connections");  // live usage count in dumped documents; recomputed by the driver
        VIREO_TRY(i.finish());
        fwd.interfaces.push_back(dev);
    }
    if (!fwd.dev.empty()) {
        if (fwd.interfaces.empty()) fwd.interfaces.push_back(fwd.dev);
        else if (fwd.interfaces.front() != fwd.dev)
            return std::unexpected(e.xml_error("@dev", fmt::format("forward dev '{}' must match the first <interface dev='{}'/>",
                                                                   fwd.dev, fwd.interfaces.front())));
    } else if (!fwd.interfaces.empty()) {
        fwd.dev = fwd.interfaces.front();
    }
    std::optional<XmlElement> nat;
    VIREO_ASSIGN(nat, e.child("nat"));
    if (nat) {
        if (fwd.mode != ForwardMode::Nat)
            return std::unexpected(nat->xml_error("", fmt::format("<nat> is only allowed with forward mode='nat', not '{}'", mode)));
        VIREO_TRY(parse_nat(*nat, fwd.nat));
    }
    return e.finish();
}

Status parse_bridge(XmlElement& e, NetworkBridge& br, ForwardMode mode) {
    VIREO_ASSIGN(br.name, netxml::attr_ifname(e, "name"));
    std::string stp;
    VIREO_ASSIGN(stp, e.attr_onoff("stp"));
    br.stp = stp != "off";
    const bool has_delay = e.node().attribute("delay");
    if (mode == ForwardMode::Bridge && (!stp.empty() || has_delay))
        return std::unexpected(e.xml_error(stp.empty() ? "@delay" : "@stp",
                                           "stp and delay belong to bridges vireo creates: they are not allowed with forward mode='bridge'"));
    if (auto d = e.attr("delay")) {
        auto v = xml::parse_uint(*d);
        if (!v) return std::unexpected(e.xml_error("@delay", fmt::format("invalid delay '{}': expected seconds as a non-negative integer", *d)));
        br.delay = static_cast<unsigned long>(*v);
    }
    VIREO_ASSIGN(br.mac_table_manager, e.attr_enum("macTableManager", {"kernel", "libvirt"}, "macTableManager"));
    br.zone = e.attr_or_empty("zone");
    return e.finish();
}

Result<DhcpLease> parse_lease(XmlElement& e) {
    DhcpLease l;
    auto expiry = e.attr("expiry");
    if (!expiry) return std::unexpected(e.xml_error("@expiry", "missing lease expiry (0 means infinite)"));
    auto v = xml::parse_uint(*expiry);
    if (!v) return std::unexpected(e.xml_error("@expiry", fmt::format("invalid lease expiry '{}'", *expiry)));
    l.expiry = *v;
    VIREO_ASSIGN(l.unit, e.attr_enum("unit", {"seconds", "minutes", "hours"}, "lease unit"));
    if (l.unit.empty()) l.unit = "minutes";
    VIREO_TRY(e.finish());
    return l;
}

Result<std::optional<DhcpLease>> parse_lease_child(XmlElement& parent) {
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, parent.child("lease"));
    if (!c) return std::optional<DhcpLease>();
    DhcpLease l;
    VIREO_ASSIGN(l, parse_lease(*c));
    return std::optional<DhcpLease>(l);
}

Status parse_dhcp(XmlElement& e, NetworkIp& ip) {
    ip.dhcp = true;
    for (auto& r : e.children("range")) {
        DhcpRange range;
        std::optional<IpAddr> start, end;
        VIREO_ASSIGN(start, netxml::attr_ip(r, "start"));
        VIREO_ASSIGN(end, netxml::attr_ip(r, "end"));
        if (!start) return std::unexpected(r.xml_error("@start", "missing start address of the DHCP range"));
        if (!end) return std::unexpected(r.xml_error("@end", "missing end address of the DHCP range"));
        range.start = *start;
        range.end = *end;
        VIREO_ASSIGN(range.lease, parse_lease_child(r));
        VIREO_TRY(r.finish());
        ip.ranges.push_back(range);
    }
    for (auto& h : e.children("host")) {
        DhcpHost host;
        if (auto mac = h.attr("mac")) {
            auto m = MacAddr::parse(*mac);
            if (!m) return std::unexpected(h.xml_error("@mac", fmt::format("invalid MAC address '{}'", *mac)));
            if (m->is_multicast()) return std::unexpected(h.xml_error("@mac", fmt::format("expected a unicast MAC address, found multicast '{}'", *mac)));
            host.mac = m->str();
        }
        host.id = h.attr_or_empty("id");
        host.name = h.attr_or_empty("name");
        VIREO_ASSIGN(host.ip, netxml::attr_ip(h, "ip"));
        VIREO_ASSIGN(host.lease, parse_lease_child(h));
        VIREO_TRY(h.finish());
        ip.hosts.push_back(std::move(host));
    }
    std::optional<XmlElement> bootp;
    VIREO_ASSIGN(bootp, e.child("bootp"));
    if (bootp) {
        ip.bootp_file = bootp->attr_or_empty("file");
        ip.bootp_server = bootp->attr_or_empty("server");
        if (ip.bootp_file.empty()) return std::unexpected(bootp->xml_error("@file", "missing boot file name"));
        VIREO_TRY(bootp->finish());
    }
    return e.finish();
}

Result<NetworkIp> parse_ip(XmlElement& e) {
    NetworkIp ip;
    VIREO_ASSIGN(ip.family, e.attr_enum("family", {"ipv4", "ipv6"}, "address family"));
    std::optional<IpAddr> address;
    VIREO_ASSIGN(address, netxml::attr_ip(e, "address", ip.family));
    if (!address) return std::unexpected(e.xml_error("@address", "missing IP address of the network"));
    ip.address = *address;
    VIREO_ASSIGN(ip.netmask, netxml::attr_ip(e, "netmask", "ipv4"));
    if (ip.netmask && ip.address.v6)
        return std::unexpected(e.xml_error("@netmask", "netmask is only for IPv4 addresses; use prefix for IPv6"));
    if (ip.netmask && !netmask_prefix(*ip.netmask))
        return std::unexpected(e.xml_error("@netmask", fmt::format("netmask '{}' is not contiguous", ip.netmask->str())));
    VIREO_ASSIGN(ip.prefix, e.attr_uint("prefix"));
    if (ip.prefix && ip.netmask) return std::unexpected(e.xml_error("@prefix", "give either netmask or prefix, not both"));
    if (ip.prefix && *ip.prefix > ip.address.bits())
        return std::unexpected(e.xml_error("@prefix", fmt::format("prefix {} is too long for an {} address", *ip.prefix, ip.address.v6 ? "IPv6" : "IPv4")));
    VIREO_ASSIGN(ip.local_ptr, e.attr_yesno("localPtr"));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("tftp"));
    if (c) {
        ip.tftp_root = c->attr_or_empty("root");
        if (ip.tftp_root.empty()) return std::unexpected(c->xml_error("@root", "missing TFTP root directory"));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("dhcp"));
    if (c) VIREO_TRY(parse_dhcp(*c, ip));
    VIREO_TRY(e.finish());
    return ip;
}

Status parse_dns(XmlElement& e, NetworkDns& dns) {
    VIREO_ASSIGN(dns.enable, e.attr_yesno("enable"));
    VIREO_ASSIGN(dns.forward_plain_names, e.attr_yesno("forwardPlainNames"));
    for (auto& f : e.children("forwarder")) {
        DnsForwarder fw;
        VIREO_ASSIGN(fw.addr, netxml::attr_ip(f, "addr"));
        fw.domain = f.attr_or_empty("domain");
        VIREO_TRY(f.finish());
        dns.forwarders.push_back(std::move(fw));
    }
    for (auto& t : e.children("txt")) {
        DnsTxt txt{t.attr_or_empty("name"), t.attr_or_empty("value")};
        VIREO_TRY(t.finish());
        dns.txts.push_back(std::move(txt));
    }
    for (auto& s : e.children("srv")) {
        DnsSrv srv;
        srv.service = s.attr_or_empty("service");
        srv.protocol = s.attr_or_empty("protocol");
        srv.domain = s.attr_or_empty("domain");
        srv.target = s.attr_or_empty("target");
        VIREO_ASSIGN(srv.port, attr_uint_max(s, "port", 65535));
        VIREO_ASSIGN(srv.priority, attr_uint_max(s, "priority", 65535));
        VIREO_ASSIGN(srv.weight, attr_uint_max(s, "weight", 65535));
        VIREO_TRY(s.finish());
        dns.srvs.push_back(std::move(srv));
    }
    for (auto& h : e.children("host")) {
        std::optional<IpAddr> ip;
        VIREO_ASSIGN(ip, netxml::attr_ip(h, "ip"));
        if (!ip) return std::unexpected(h.xml_error("@ip", "missing IP address of the DNS host"));
        DnsHost host{*ip, {}};
        for (auto& n : h.children("hostname")) {
            host.hostnames.push_back(n.text());
            VIREO_TRY(n.finish());
        }
        VIREO_TRY(h.finish());
        dns.hosts.push_back(std::move(host));
    }
    return e.finish();
}

Result<BandwidthRate> parse_rate(XmlElement& e) {
    BandwidthRate r;
    VIREO_ASSIGN(r.average, e.attr_uint("average"));
    VIREO_ASSIGN(r.peak, e.attr_uint("peak"));
    VIREO_ASSIGN(r.burst, e.attr_uint("burst"));
    VIREO_ASSIGN(r.floor, e.attr_uint("floor"));
    VIREO_TRY(e.finish());
    return r;
}

Status parse_bandwidth(XmlElement& e, Bandwidth& bw) {
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("inbound"));
    if (c) VIREO_ASSIGN(bw.inbound, parse_rate(*c));
    VIREO_ASSIGN(c, e.child("outbound"));
    if (c) VIREO_ASSIGN(bw.outbound, parse_rate(*c));
    return e.finish();
}

Result<NetworkRoute> parse_route(XmlElement& e) {
    NetworkRoute r;
    VIREO_ASSIGN(r.family, e.attr_enum("family", {"ipv4", "ipv6"}, "address family"));
    std::optional<IpAddr> a;
    VIREO_ASSIGN(a, netxml::attr_ip(e, "address", r.family));
    if (!a) return std::unexpected(e.xml_error("@address", "missing destination address of the route"));
    r.address = *a;
    VIREO_ASSIGN(r.netmask, netxml::attr_ip(e, "netmask", "ipv4"));
    VIREO_ASSIGN(r.prefix, e.attr_uint("prefix"));
    if (r.prefix && r.netmask) return std::unexpected(e.xml_error("@prefix", "give either netmask or prefix, not both"));
    if (r.netmask && (r.address.v6 || !netmask_prefix(*r.netmask)))
        return std::unexpected(e.xml_error("@netmask", "netmask must be a contiguous IPv4 mask for an IPv4 route"));
    if (r.prefix && *r.prefix > r.address.bits()) return std::unexpected(e.xml_error("@prefix", fmt::format("prefix {} is too long", *r.prefix)));
    VIREO_ASSIGN(a, netxml::attr_ip(e, "gateway", r.address.v6 ? "ipv6" : "ipv4"));
    if (!a) return std::unexpected(e.xml_error("@gateway", "missing gateway of the route"));
    r.gateway = *a;
    VIREO_ASSIGN(r.metric, e.attr_uint("metric"));
    VIREO_TRY(e.finish());
    return r;
}

Status parse_identity(XmlElement& root, NetworkDef& def) {
    std::optional<std::string> name;
    VIREO_ASSIGN(name, netxml::text_child(root, "name"));
    if (!name) return std::unexpected(root.xml_error("", "missing <name>"));
    def.name = *name;
    if (!files::is_safe_name(def.name) || def.name.find('\n') != std::string::npos)
        return std::unexpected(root.xml_error("name", fmt::format("invalid network name '{}': it must be a single path component "
                                                                  "(no '/', not '.' or '..', not empty)", def.name)));
    std::optional<std::string> uuid;
    VIREO_ASSIGN(uuid, netxml::text_child(root, "uuid"));
    if (uuid) {
        auto u = Uuid::parse(*uuid);
        if (!u) return std::unexpected(root.xml_error("uuid", fmt::format("malformed uuid '{}'", *uuid)));
        def.uuid = *u;
    } else {
        def.uuid = Uuid::generate();
    }
    return {};
}

Status parse_network_element(XmlElement& root, NetworkDef& def) {
    VIREO_ASSIGN(def.ipv6, root.attr_yesno("ipv6"));
    VIREO_ASSIGN(def.trust_guest_rx_filters, root.attr_yesno("trustGuestRxFilters"));
    root.attr("connections");  // live count in a dumped document; recomputed by the driver
    VIREO_TRY(parse_identity(root, def));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, root.child("forward"));
    if (c) VIREO_TRY(parse_forward(*c, def.forward));
    VIREO_ASSIGN(c, root.child("bridge"));
    if (c) VIREO_TRY(parse_bridge(*c, def.bridge, def.forward.mode));
    VIREO_ASSIGN(c, root.child("mtu"));
    if (c) {
        std::optional<unsigned> size;
        VIREO_ASSIGN(size, attr_uint_max(*c, "size", 65535));
        if (!size) return std::unexpected(c->xml_error("@size", "missing MTU size"));
        def.mtu = size;
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, root.child("mac"));
    if (c) {
        const std::string a = c->attr_or_empty("address");
        auto m = MacAddr::parse(a);
        if (!m) return std::unexpected(c->xml_error("@address", fmt::format("invalid MAC address '{}'", a)));
        if (m->is_multicast()) return std::unexpected(c->xml_error("@address", fmt::format("the bridge MAC address '{}' must be unicast", a)));
        def.mac = m;
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, root.child("domain"));
    if (c) {
        def.domain_name = c->attr_or_empty("name");
        VIREO_ASSIGN(def.domain_local_only, c->attr_yesno("localOnly"));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, root.child("dns"));
    if (c) VIREO_TRY(parse_dns(*c, def.dns));
    VIREO_ASSIGN(c, root.child("bandwidth"));
    if (c) {
        Bandwidth bw;
        VIREO_TRY(parse_bandwidth(*c, bw));
        def.bandwidth = bw;
    }
    for (auto& e : root.children("ip")) {
        NetworkIp ip;
        VIREO_ASSIGN(ip, parse_ip(e));
        def.ips.push_back(std::move(ip));
    }
    for (auto& e : root.children("route")) {
        NetworkRoute r;
        VIREO_ASSIGN(r, parse_route(e));
        def.routes.push_back(std::move(r));
    }
    return root.finish();
}

}  // namespace

Result<NetworkDef> parse_network_xml(std::string_view text) {
    netxml::Document d;
    auto opened = netxml::open_document(d, text, "network");
    if (!opened) return std::unexpected(opened.error());
    NetworkDef def;
    VIREO_TRY(parse_network_element(*opened, def));
    if (auto problem = netxml::find_network_problem(def)) return std::unexpected(netxml::located(*problem, &d));
    return def;
}

Status validate_network(const NetworkDef& def) {
    if (auto problem = netxml::find_network_problem(def)) return std::unexpected(netxml::located(*problem, nullptr));
    return {};
}

}  // namespace vireo::conf
