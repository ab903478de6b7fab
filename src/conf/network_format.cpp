// format_network_xml: NetworkDef -> libvirt's net-dumpxml document, with
// libvirt's element order and the values its parser/driver fill in
// (stp and delay on bridges vireo creates, the forward interface list,
// lease units). A nat port range is written only when the user gave one, as
// libvirt does (<forward mode='nat'/>); the firewall applies 1024-65535.
#include <fmt/format.h>

#include "conf/network.hpp"
#include "conf/xml_writer.hpp"

namespace vireo::conf {

using xml::Node;

std::string_view to_string(ForwardMode m) {
    switch (m) {
        case ForwardMode::None: return "none";
        case ForwardMode::Nat: return "nat";
        case ForwardMode::Route: return "route";
        case ForwardMode::Open: return "open";
        case ForwardMode::Bridge: return "bridge";
    }
    return "none";
}

namespace {

std::string num(std::uint64_t v) { return std::to_string(v); }

void format_forward(Node& root, const NetworkForward& f) {
    if (f.mode == ForwardMode::None) return;
    Node& fwd = root.add("forward");
    fwd.attr("dev", f.interfaces.empty() ? f.dev : f.interfaces.front());
    fwd.attr("mode", to_string(f.mode));
    if (f.mode == ForwardMode::Nat) {
        Node nat("nat");
        nat.attr("ipv6", f.nat.ipv6);
        if (f.nat.address_start) {
            nat.add("address").attr("start", f.nat.address_start->str()).attr("end", f.nat.address_end ? f.nat.address_end->str() : "");
        }
        if (f.nat.port_start || f.nat.port_end) nat.add("port").attr("start", num(f.nat.port_start)).attr("end", num(f.nat.port_end));
        fwd.add_if_nonempty(std::move(nat));
    }
    for (const auto& dev : f.interfaces) fwd.add("interface").attr("dev", dev);
}

void format_bridge(Node& root, const NetworkDef& def) {
    const auto& b = def.bridge;
    if (!def.has_own_bridge() && b.name.empty() && b.mac_table_manager.empty()) return;
    Node& br = root.add("bridge");
    br.attr("name", b.name);
    br.attr("zone", b.zone);
    br.attr("macTableManager", b.mac_table_manager);
    if (def.has_own_bridge()) br.attr("stp", b.stp ? "on" : "off").attr("delay", num(b.delay));
}

void format_dns(Node& root, const NetworkDns& d) {
    if (d.empty()) return;
    Node& dns = root.add("dns");
    dns.attr("enable", d.enable);
    dns.attr("forwardPlainNames", d.forward_plain_names);
    for (const auto& f : d.forwarders) dns.add("forwarder").attr("domain", f.domain).attr("addr", f.addr ? f.addr->str() : "");
    for (const auto& t : d.txts) dns.add("txt").attr("name", t.name).attr("value", t.value);
    for (const auto& s : d.srvs) {
        Node& srv = dns.add("srv");
        srv.attr("service", s.service).attr("protocol", s.protocol).attr("domain", s.domain).attr("target", s.target);
        if (s.port) srv.attr("port", num(*s.port));
        if (s.priority) srv.attr("priority", num(*s.priority));
        if (s.weight) srv.attr("weight", num(*s.weight));
    }
    for (const auto& h : d.hosts) {
        Node& host = dns.add("host");
        host.attr("ip", h.ip.str());
        for (const auto& n : h.hostnames) host.add_text("hostname", n);
    }
}

void format_rate(Node& bw, std::string_view name, const std::optional<BandwidthRate>& r) {
    if (!r) return;
    Node& n = bw.add(name);
    if (r->average) n.attr("average", num(*r->average));
    if (r->peak) n.attr("peak", num(*r->peak));
    if (r->floor) n.attr("floor", num(*r->floor));
    if (r->burst) n.attr("burst", num(*r->burst));
}

void format_lease(Node& parent, const std::optional<DhcpLease>& l) {
    if (l) parent.add("lease").attr("expiry", num(l->expiry)).attr("unit", l->unit.empty() ? "minutes" : l->unit);
}

void format_ip(Node& root, const NetworkIp& ip) {
    Node& n = root.add("ip");
    n.keep_open = true;  // libvirt writes a childless <ip> as "<ip ...>\n  </ip>"
    n.attr("family", ip.family);
    n.attr("address", ip.address.str());
    if (ip.netmask) n.attr("netmask", ip.netmask->str());
    if (ip.prefix) n.attr("prefix", num(*ip.prefix));
    n.attr("localPtr", ip.local_ptr);
    if (!ip.tftp_root.empty()) n.add("tftp").attr("root", ip.tftp_root);
    if (!ip.dhcp) return;
    Node& dhcp = n.add("dhcp");
    for (const auto& r : ip.ranges) {
        Node& range = dhcp.add("range");
        range.attr("start", r.start.str()).attr("end", r.end.str());
        format_lease(range, r.lease);
    }
    for (const auto& h : ip.hosts) {
        Node& host = dhcp.add("host");
        host.attr("mac", h.mac).attr("id", h.id).attr("name", h.name).attr("ip", h.ip ? h.ip->str() : "");
        format_lease(host, h.lease);
    }
    if (!ip.bootp_file.empty()) dhcp.add("bootp").attr("file", ip.bootp_file).attr("server", ip.bootp_server);
}

void format_route(Node& root, const NetworkRoute& r) {
    Node& n = root.add("route");
    n.attr("family", r.family).attr("address", r.address.str());
    if (r.netmask) n.attr("netmask", r.netmask->str());
    if (r.prefix) n.attr("prefix", num(*r.prefix));
    n.attr("gateway", r.gateway.str());
    if (r.metric) n.attr("metric", num(*r.metric));
}

}  // namespace

std::string format_network_xml(const NetworkDef& def) {
    Node root("network");
    root.attr("ipv6", def.ipv6 == "yes" ? "yes" : "");
    root.attr("trustGuestRxFilters", def.trust_guest_rx_filters);
    root.add_text("name", def.name);
    root.add_text("uuid", def.uuid.str());
    format_forward(root, def.forward);
    format_bridge(root, def);
    if (def.mtu) root.add("mtu").attr("size", num(*def.mtu));
    if (def.mac) root.add("mac").attr("address", def.mac->str());
    if (!def.domain_name.empty()) root.add("domain").attr("name", def.domain_name).attr("localOnly", def.domain_local_only);
    format_dns(root, def.dns);
    if (def.bandwidth) {
        Node& bw = root.add("bandwidth");
        format_rate(bw, "inbound", def.bandwidth->inbound);
        format_rate(bw, "outbound", def.bandwidth->outbound);
    }
    for (const auto& ip : def.ips) format_ip(root, ip);
    for (const auto& r : def.routes) format_route(root, r);
    return root.str();
}

}  // namespace vireo::conf
