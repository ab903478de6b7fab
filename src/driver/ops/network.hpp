// Virtual network operations (virsh net-*). (op.hpp explains the declarations.)
//
// {network} is a network name or UUID, tried in that order. Served by the
// network driver (src/netdrv) of the system daemon; a session daemon lists
// no networks and refuses the rest with a message that says to use
// qemu:///system (docs/network.md).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "driver/network_types.hpp"
#include "driver/ops/op.hpp"
#include "driver/types.hpp"

namespace vireo::driver::ops {

template <>
struct EnumNames<NetworkUpdateCommand> {
    static constexpr std::string_view what = "network update command";
    static constexpr std::array<std::pair<NetworkUpdateCommand, std::string_view>, 4> values{
        {{NetworkUpdateCommand::Modify, "modify"},
         {NetworkUpdateCommand::Delete, "delete"},
         {NetworkUpdateCommand::AddLast, "add-last"},
         {NetworkUpdateCommand::AddFirst, "add-first"}}};
};

template <>
struct EnumNames<NetworkUpdateSection> {
    static constexpr std::string_view what = "network update section";
    static constexpr std::array<std::pair<NetworkUpdateSection, std::string_view>, 12> values{{
        {NetworkUpdateSection::Bridge, "bridge"},
        {NetworkUpdateSection::Domain, "domain"},
        {NetworkUpdateSection::Ip, "ip"},
        {NetworkUpdateSection::IpDhcpHost, "ip-dhcp-host"},
        {NetworkUpdateSection::IpDhcpRange, "ip-dhcp-range"},
        {NetworkUpdateSection::Forward, "forward"},
        {NetworkUpdateSection::ForwardInterface, "forward-interface"},
        {NetworkUpdateSection::ForwardPf, "forward-pf"},
        {NetworkUpdateSection::Portgroup, "portgroup"},
        {NetworkUpdateSection::DnsHost, "dns-host"},
        {NetworkUpdateSection::DnsTxt, "dns-txt"},
        {NetworkUpdateSection::DnsSrv, "dns-srv"},
    }};
};

struct NetworkList {
    static constexpr OpInfo info{.name = "network.list", .method = Method::Get, .path = "/v1/networks",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Network,
                                 .summary = "Every network, active and inactive (virsh net-list --all)"};
    struct Request {};
    using Reply = std::vector<NetworkSummary>;  // sorted by name
    static constexpr std::tuple<> fields{};
};

struct NetworkDefine {
    static constexpr OpInfo info{.name = "network.define", .method = Method::Post, .path = "/v1/networks",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Network,
                                 .summary = "Define or redefine a persistent network (net-define); body = libvirt "
                                            "network XML"};
    struct Request {
        std::string xml{};
    };
    using Reply = NetworkSummary;
    static constexpr unsigned http_success = 201;
    static constexpr auto fields = std::tuple{document("xml", &Request::xml)};
};

// Define a transient network and start it.
struct NetworkCreate {
    static constexpr OpInfo info{.name = "network.create", .method = Method::Post, .path = "/v1/networks:create",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Network,
                                 .summary = "Create and start a transient network (net-create); body = network XML"};
    struct Request {
        std::string xml{};
    };
    using Reply = NetworkSummary;  // active
    static constexpr unsigned http_success = 201;
    static constexpr auto fields = std::tuple{document("xml", &Request::xml)};
};

struct NetworkLookup {
    static constexpr OpInfo info{.name = "network.lookup", .method = Method::Get, .path = "/v1/networks/{network}",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Network, .summary = "One network (net-info)"};
    struct Request {
        std::string network{};
    };
    using Reply = NetworkSummary;
    static constexpr auto fields = std::tuple{field("network", &Request::network)};
};

// An active network stays running and becomes transient.
struct NetworkUndefine {
    static constexpr OpInfo info{.name = "network.undefine", .method = Method::Delete,
                                 .path = "/v1/networks/{network}", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Network,
                                 .summary = "Undefine the network (net-undefine); an active one keeps running, "
                                            "transient"};
    struct Request {
        std::string network{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("network", &Request::network)};
};

struct NetworkXml {
    static constexpr OpInfo info{.name = "network.xml", .method = Method::Get, .path = "/v1/networks/{network}/xml",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Network,
                                 .summary = "Network XML (net-dumpxml [--inactive])"};
    struct Request {
        std::string network{};
        bool inactive = false;
    };
    using Reply = std::string;  // libvirt network XML
    static constexpr auto fields =
        std::tuple{field("network", &Request::network),
                   field("inactive", &Request::inactive, "the persistent definition, not the running one")};
};

struct NetworkStart {
    static constexpr OpInfo info{.name = "network.start", .method = Method::Post,
                                 .path = "/v1/networks/{network}/start", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Network,
                                 .summary = "Start the network (net-start): bridge, addresses, firewall, dnsmasq"};
    struct Request {
        std::string network{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("network", &Request::network)};
};

// Removes exactly what start made; a transient network is gone afterwards.
struct NetworkDestroy {
    static constexpr OpInfo info{.name = "network.destroy", .method = Method::Post,
                                 .path = "/v1/networks/{network}/destroy", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Network,
                                 .summary = "Stop the network (net-destroy); removes its bridge, rules and dnsmasq"};
    struct Request {
        std::string network{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("network", &Request::network)};
};

struct NetworkSetAutostart {
    static constexpr OpInfo info{.name = "network.set_autostart", .method = Method::Put,
                                 .path = "/v1/networks/{network}/autostart", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Network,
                                 .summary = "Set autostart (net-autostart [--disable])"};
    struct Request {
        std::string network{};
        bool enabled = false;
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("network", &Request::network), field("enabled", &Request::enabled)};
};

// Change one part of a network's definition in place (virsh net-update):
// live = the running network (dnsmasq re-reads its hosts, or restarts for
// DHCP ranges), config = the persistent definition; neither = the current
// state (live when active, else config).
struct NetworkUpdate {
    static constexpr OpInfo info{.name = "network.update", .method = Method::Post,
                                 .path = "/v1/networks/{network}/update", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Network,
                                 .summary = "Add, delete or modify a DHCP host, DHCP range or DNS host (net-update)"};
    struct Request {
        std::string network{};
        NetworkUpdateCommand command = NetworkUpdateCommand::AddLast;
        NetworkUpdateSection section = NetworkUpdateSection::IpDhcpHost;
        std::string xml{};  // the element to add, delete (matched) or modify
        std::uint64_t parent_index = kAnyParentIndex;  // which <ip>; kAnyParentIndex = the first that fits
        bool live = false;
        bool config = false;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("network", &Request::network),
        field("command", &Request::command),
        field("section", &Request::section),
        required("xml", &Request::xml, "the XML element, e.g. <host mac='52:54:00:00:00:01' ip='192.168.122.5'/>"),
        field("parent_index", &Request::parent_index, "position of the <ip> element; absent = the first that fits"),
        field("live", &Request::live, "change the running network"),
        field("config", &Request::config, "change the persistent definition")};
};

struct NetworkDhcpLeases {
    static constexpr OpInfo info{.name = "network.dhcp_leases", .method = Method::Get,
                                 .path = "/v1/networks/{network}/leases", .kind = Kind::Query, .lane = Lane::Query,
                                 .read_only_allowed = true, .libvirt_domain = LibvirtDomain::Network,
                                 .summary = "Current DHCP leases (net-dhcp-leases [--mac])"};
    struct Request {
        std::string network{};
        std::string mac{};  // only this MAC; empty = every lease
    };
    using Reply = std::vector<NetworkDhcpLease>;
    static constexpr auto fields =
        std::tuple{field("network", &Request::network), field("mac", &Request::mac, "only the leases of this MAC")};
};

// Lifecycle events of every network until the Subscription is destroyed; the
// callback runs on a driver thread and must not block.
struct NetworkEvents {
    static constexpr OpInfo info{.name = "network.events", .method = Method::Get, .path = "/v1/events/networks",
                                 .kind = Kind::QueryStream, .lane = Lane::Inline, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Network,
                                 .summary = "Network lifecycle event stream (WebSocket; virsh net-event)"};
    static constexpr std::string_view description =
        "Upgrade to WebSocket. Every lifecycle event of every network from now on\n"
        "arrives as one text message holding a NetworkEvent JSON object.";
    struct Request {
        std::function<void(const NetworkEvent&)> callback{};
    };
    using Reply = std::unique_ptr<Subscription>;
    static constexpr std::tuple<> fields{};
};

using NetworkOps = List<NetworkList, NetworkDefine, NetworkCreate, NetworkLookup, NetworkUndefine, NetworkXml,
                        NetworkStart, NetworkDestroy, NetworkSetAutostart, NetworkUpdate, NetworkDhcpLeases,
                        NetworkEvents>;

}  // namespace vireo::driver::ops
