// parse_interface_xml / format_interface_xml (see interface.hpp).
#include <charconv>

#include <fmt/format.h>

#include "conf/interface.hpp"
#include "conf/network_internal.hpp"
#include "conf/xml_writer.hpp"

namespace vireo::conf {

using netxml::XmlElement;
using xml::Node;

const InterfaceProtocol* InterfaceDef::protocol(std::string_view family) const {
    for (const auto& p : protocols)
        if (p.family == family) return &p;
    return nullptr;
}

namespace {

Result<InterfaceProtocol> parse_protocol(XmlElement& e) {
    InterfaceProtocol p;
    VIREO_ASSIGN(p.family, e.attr_enum("family", {"ipv4", "ipv6"}, "protocol family"));
    if (p.family.empty()) return std::unexpected(e.xml_error("@family", "missing protocol family (ipv4 or ipv6)"));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("dhcp"));
    if (c) {
        p.dhcp = true;
        VIREO_ASSIGN(p.dhcp_peerdns, c->attr_yesno("peerdns"));
        VIREO_TRY(c->finish());
    }
    if (p.family == "ipv6") {
        VIREO_ASSIGN(c, e.child("autoconf"));
        if (c) {
            p.autoconf = true;
            VIREO_TRY(c->finish());
        }
    }
    const unsigned max_prefix = p.family == "ipv6" ? 128 : 32;
    for (auto& ip : e.children("ip")) {
        std::optional<IpAddr> a;
        VIREO_ASSIGN(a, netxml::attr_ip(ip, "address", p.family));
        if (!a) return std::unexpected(ip.xml_error("@address", "missing address"));
        InterfaceAddress addr{*a, std::nullopt};
        VIREO_ASSIGN(addr.prefix, ip.attr_uint("prefix"));
        if (addr.prefix && *addr.prefix > max_prefix)
            return std::unexpected(ip.xml_error("@prefix", fmt::format("prefix {} is too long (maximum {})", *addr.prefix, max_prefix)));
        VIREO_TRY(ip.finish());
        p.ips.push_back(addr);
    }
    VIREO_ASSIGN(c, e.child("route"));
    if (c) {
        VIREO_ASSIGN(p.gateway, netxml::attr_ip(*c, "gateway", p.family));
        if (!p.gateway) return std::unexpected(c->xml_error("@gateway", "missing gateway"));
        VIREO_TRY(c->finish());
    }
    VIREO_TRY(e.finish());
    return p;
}

Status parse_interface(XmlElement& e, InterfaceDef& def, bool bare);

Status parse_bond(XmlElement& e, InterfaceDef& def) {
    VIREO_ASSIGN(def.bond_mode, e.attr_enum("mode", {"balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"},
                                       "bond mode"));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("miimon"));
    if (c) {
        InterfaceDef::Miimon m;
        std::optional<unsigned> freq;
        VIREO_ASSIGN(freq, c->attr_uint("freq"));
        if (!freq) return std::unexpected(c->xml_error("@freq", "missing miimon frequency"));
        m.freq = *freq;
        VIREO_ASSIGN(m.downdelay, c->attr_uint("downdelay"));
        VIREO_ASSIGN(m.updelay, c->attr_uint("updelay"));
        VIREO_ASSIGN(m.carrier, c->attr_enum("carrier", {"ioctl", "netif"}, "carrier"));
        VIREO_TRY(c->finish());
        def.miimon = m;
    }
    VIREO_ASSIGN(c, e.child("arpmon"));
    if (c) {
        if (def.miimon) return std::unexpected(c->xml_error("", "a bond has either <miimon> or <arpmon>, not both"));
        InterfaceDef::Arpmon a;
        std::optional<unsigned> interval;
        VIREO_ASSIGN(interval, c->attr_uint("interval"));
        if (!interval) return std::unexpected(c->xml_error("@interval", "missing arpmon interval"));
        a.interval = *interval;
        std::optional<IpAddr> target;
        VIREO_ASSIGN(target, netxml::attr_ip(*c, "target", "ipv4"));
        if (!target) return std::unexpected(c->xml_error("@target", "missing arpmon target"));
        a.target = *target;
        VIREO_ASSIGN(a.validate, c->attr_enum("validate", {"none", "active", "backup", "all"}, "arpmon validate"));
        VIREO_TRY(c->finish());
        def.arpmon = a;
    }
    for (auto& s : e.children("interface")) {
        InterfaceDef slave;
        VIREO_TRY(parse_interface(s, slave, true));
        if (slave.type != "ethernet") return std::unexpected(s.xml_error("@type", "bond slaves must be ethernet interfaces"));
        def.members.push_back(std::move(slave));
    }
    if (def.members.empty()) return std::unexpected(e.xml_error("", "a bond needs at least one <interface type='ethernet'> slave"));
    return e.finish();
}

Status parse_bridge(XmlElement& e, InterfaceDef& def) {
    VIREO_ASSIGN(def.bridge_stp, e.attr_onoff("stp"));
    if (auto d = e.attr("delay")) {
        double v = -1;
        auto [ptr, ec] = std::from_chars(d->data(), d->data() + d->size(), v);
        if (ec != std::errc{} || ptr != d->data() + d->size() || v < 0)
            return std::unexpected(e.xml_error("@delay", fmt::format("invalid delay '{}': expected a non-negative number of seconds", *d)));
        def.bridge_delay = *d;
    }
    for (auto& p : e.children("interface")) {
        InterfaceDef port;
        VIREO_TRY(parse_interface(p, port, true));
        if (port.type == "bridge") return std::unexpected(p.xml_error("@type", "a bridge cannot be a port of another bridge"));
        def.members.push_back(std::move(port));
    }
    return e.finish();
}

Status parse_vlan(XmlElement& e, InterfaceDef& def) {
    std::optional<unsigned> tag;
    VIREO_ASSIGN(tag, e.attr_uint("tag"));
    if (!tag || *tag > 4095) return std::unexpected(e.xml_error("@tag", "missing or invalid VLAN tag (0 to 4095)"));
    def.vlan_tag = *tag;
    std::optional<XmlElement> dev;
    VIREO_ASSIGN(dev, e.child("interface"));
    if (!dev) return std::unexpected(e.xml_error("", "missing <interface name='...'/>: the device the VLAN is on"));
    VIREO_ASSIGN(def.vlan_device, netxml::attr_ifname(*dev, "name"));
    if (def.vlan_device.empty()) return std::unexpected(dev->xml_error("@name", "missing name of the VLAN's device"));
    VIREO_TRY(dev->finish());
    return e.finish();
}

Status parse_interface(XmlElement& e, InterfaceDef& def, bool bare) {
    VIREO_ASSIGN(def.type, e.attr_enum("type", {"ethernet", "bridge", "bond", "vlan"}, "interface type"));
    if (def.type.empty()) return std::unexpected(e.xml_error("@type", "missing interface type (ethernet, bridge, bond or vlan)"));
    VIREO_ASSIGN(def.name, netxml::attr_ifname(e, "name"));
    std::optional<XmlElement> c;
    if (!bare) {
        VIREO_ASSIGN(c, e.child("start"));
        if (c) {
            VIREO_ASSIGN(def.start_mode, c->attr_enum("mode", {"onboot", "none", "hotplug"}, "start mode"));
            VIREO_TRY(c->finish());
        }
        VIREO_ASSIGN(c, e.child("mtu"));
        if (c) {
            VIREO_ASSIGN(def.mtu, c->attr_uint("size"));
            if (!def.mtu || *def.mtu < 68) return std::unexpected(c->xml_error("@size", "missing or invalid MTU (at least 68)"));
            VIREO_TRY(c->finish());
        }
        for (auto& p : e.children("protocol")) {
            InterfaceProtocol proto;
            VIREO_ASSIGN(proto, parse_protocol(p));
            if (def.protocol(proto.family))
                return std::unexpected(p.xml_error("@family", fmt::format("only one <protocol family='{}'> per interface", proto.family)));
            def.protocols.push_back(std::move(proto));
        }
    }
    if (def.type == "ethernet" || def.type == "vlan") {
        VIREO_ASSIGN(c, e.child("mac"));
        if (c) {
            const std::string a = c->attr_or_empty("address");
            def.mac = MacAddr::parse(a);
            if (!def.mac) return std::unexpected(c->xml_error("@address", fmt::format("invalid MAC address '{}'", a)));
            VIREO_TRY(c->finish());
        }
    }
    VIREO_ASSIGN(c, e.child("link"));
    if (c) {
        VIREO_ASSIGN(def.link_speed, c->attr_uint("speed"));
        VIREO_ASSIGN(def.link_state, c->attr_enum("state", {"unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up"}, "link state"));
        VIREO_TRY(c->finish());
    }
    if (def.type == "bridge") {
        if (bare) return std::unexpected(e.xml_error("@type", "a bridge cannot be nested in another interface"));
        VIREO_ASSIGN(c, e.child("bridge"));
        if (!c) return std::unexpected(e.xml_error("", "missing <bridge> element of a bridge interface"));
        VIREO_TRY(parse_bridge(*c, def));
    } else if (def.type == "bond") {
        VIREO_ASSIGN(c, e.child("bond"));
        if (!c) return std::unexpected(e.xml_error("", "missing <bond> element of a bond interface"));
        VIREO_TRY(parse_bond(*c, def));
    } else if (def.type == "vlan") {
        VIREO_ASSIGN(c, e.child("vlan"));
        if (!c) return std::unexpected(e.xml_error("", "missing <vlan tag='...'> element of a vlan interface"));
        VIREO_TRY(parse_vlan(*c, def));
        if (def.name.empty()) def.name = fmt::format("{}.{}", def.vlan_device, def.vlan_tag);
        if (!netxml::valid_ifname(def.name))
            return std::unexpected(e.xml_error("@name", fmt::format("the VLAN name '{}' is not a valid interface name: give name='...'", def.name)));
    }
    if (def.name.empty()) return std::unexpected(e.xml_error("@name", "missing interface name"));
    return e.finish();
}

void format_protocol(Node& root, const InterfaceProtocol& p) {
    Node& n = root.add("protocol");
    n.attr("family", p.family);
    if (p.autoconf) n.add("autoconf");
    if (p.dhcp) n.add("dhcp").attr("peerdns", p.dhcp_peerdns);
    for (const auto& ip : p.ips) {
        Node& a = n.add("ip");
        a.attr("address", ip.address.str());
        if (ip.prefix) a.attr("prefix", std::to_string(*ip.prefix));
    }
    if (p.gateway) n.add("route").attr("gateway", p.gateway->str());
}

Node format_interface(const InterfaceDef& def, bool bare) {
    Node n("interface");
    n.attr("type", def.type).attr("name", def.name);
    if (!bare && !def.start_mode.empty()) n.add("start").attr("mode", def.start_mode);
    if (def.mac) n.add("mac").attr("address", def.mac->str());
    if (def.link_speed || !def.link_state.empty()) {
        Node& l = n.add("link");
        if (def.link_speed) l.attr("speed", std::to_string(*def.link_speed));
        l.attr("state", def.link_state);
    }
    if (!bare) {
        if (def.mtu) n.add("mtu").attr("size", std::to_string(*def.mtu));
        for (const auto& p : def.protocols) format_protocol(n, p);
    }
    if (def.type == "bridge") {
        Node& b = n.add("bridge");
        b.attr("stp", def.bridge_stp).attr("delay", def.bridge_delay);
        for (const auto& m : def.members) b.children.push_back(format_interface(m, true));
    } else if (def.type == "bond") {
        Node& b = n.add("bond");
        b.attr("mode", def.bond_mode);
        if (def.miimon) {
            Node& m = b.add("miimon");
            m.attr("freq", std::to_string(def.miimon->freq));
            if (def.miimon->downdelay) m.attr("downdelay", std::to_string(*def.miimon->downdelay));
            if (def.miimon->updelay) m.attr("updelay", std::to_string(*def.miimon->updelay));
            m.attr("carrier", def.miimon->carrier);
        }
        if (def.arpmon)
            b.add("arpmon").attr("interval", std::to_string(def.arpmon->interval)).attr("target", def.arpmon->target.str()).attr("validate", def.arpmon->validate);
        for (const auto& m : def.members) b.children.push_back(format_interface(m, true));
    } else if (def.type == "vlan") {
        Node& v = n.add("vlan");
        v.attr("tag", std::to_string(def.vlan_tag));
        v.add("interface").attr("name", def.vlan_device);
    }
    return n;
}

}  // namespace

Result<InterfaceDef> parse_interface_xml(std::string_view text) {
    netxml::Document d;
    auto opened = netxml::open_document(d, text, "interface");
    if (!opened) return std::unexpected(opened.error());
    InterfaceDef def;
    VIREO_TRY(parse_interface(*opened, def, false));
    return def;
}

std::string format_interface_xml(const InterfaceDef& def) { return format_interface(def, false).str(); }

}  // namespace vireo::conf
