// Host interface definitions: libvirt's interface XML
// (https://libvirt.org/formatnode.html#interface, schema interface.rng) for
// iface-define / iface-dumpxml. Types ethernet, bridge (with its ports),
// bond (with its slaves, miimon or arpmon) and vlan, each with <start>,
// <mtu>, <mac>, <link> and <protocol family='ipv4|ipv6'> (dhcp, autoconf,
// static <ip address prefix/>, <route gateway/>).
//
// Strict like the other models: what is not modelled is refused naming the
// element path and line, so format_interface_xml(parse_interface_xml(x)) is
// a fixed point. Nested interfaces (a bridge's ports, a bond's slaves) are
// "bare": type, name, mac and link only, as the schema says.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/network_addr.hpp"
#include "util/error.hpp"

namespace vireo::conf {

struct InterfaceAddress {
    IpAddr address;
    std::optional<unsigned> prefix;
};

struct InterfaceProtocol {
    std::string family;  // ipv4 | ipv6
    bool dhcp = false;
    std::string dhcp_peerdns;  // yes | no | ""
    bool autoconf = false;     // ipv6 only
    std::vector<InterfaceAddress> ips;
    std::optional<IpAddr> gateway;  // <route gateway=.../>
};

struct InterfaceDef {
    std::string type;  // ethernet | bridge | bond | vlan
    std::string name;
    std::string start_mode;  // onboot | none | hotplug | ""
    std::optional<MacAddr> mac;
    std::optional<unsigned> mtu;
    std::optional<unsigned> link_speed;  // <link speed state/> (live)
    std::string link_state;
    std::vector<InterfaceProtocol> protocols;

    // bridge
    std::string bridge_stp;    // on | off | ""
    std::string bridge_delay;  // seconds, a decimal as given ("0.01")
    // bridge ports / bond slaves (bare interfaces)
    std::vector<InterfaceDef> members;

    // bond
    std::string bond_mode;  // balance-rr, active-backup, ...
    struct Miimon {
        unsigned freq = 0;
        std::optional<unsigned> downdelay, updelay;
        std::string carrier;  // ioctl | netif | ""
    };
    struct Arpmon {
        unsigned interval = 0;
        IpAddr target;
        std::string validate;  // none | active | backup | all | ""
    };
    std::optional<Miimon> miimon;
    std::optional<Arpmon> arpmon;

    // vlan
    unsigned vlan_tag = 0;
    std::string vlan_device;

    [[nodiscard]] const InterfaceProtocol* protocol(std::string_view family) const;
};

// Parse and validate an interface document.
Result<InterfaceDef> parse_interface_xml(std::string_view xml);

// libvirt's iface-dumpxml form.
std::string format_interface_xml(const InterfaceDef& def);

}  // namespace vireo::conf
