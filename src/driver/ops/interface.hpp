// Host interface operations (virsh iface-*). (op.hpp explains the declarations.)
//
// {iface} is an interface name or MAC address, tried in that order. The
// system daemon's network driver (src/netdrv) serves them through netlink,
// with the definitions (libvirt's interface XML) kept in its config
// directory; a session daemon refuses them (host interfaces need root).
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "driver/network_types.hpp"
#include "driver/ops/op.hpp"

namespace vireo::driver::ops {

struct InterfaceList {
    static constexpr OpInfo info{.name = "interface.list", .method = Method::Get, .path = "/v1/interfaces",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Interface,
                                 .summary = "Host interfaces and defined ones, active and inactive (iface-list --all)"};
    struct Request {};
    using Reply = std::vector<HostInterface>;  // sorted by name
    static constexpr std::tuple<> fields{};
};

struct InterfaceDefine {
    static constexpr OpInfo info{.name = "interface.define", .method = Method::Post, .path = "/v1/interfaces",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Interface,
                                 .summary = "Define or redefine a host interface (iface-define); body = libvirt "
                                            "interface XML"};
    struct Request {
        std::string xml{};
    };
    using Reply = HostInterface;
    static constexpr unsigned http_success = 201;
    static constexpr auto fields = std::tuple{document("xml", &Request::xml)};
};

struct InterfaceLookup {
    static constexpr OpInfo info{.name = "interface.lookup", .method = Method::Get, .path = "/v1/interfaces/{iface}",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Interface,
                                 .summary = "One host interface by name or MAC (iface-name, iface-mac)"};
    struct Request {
        std::string iface{};
    };
    using Reply = HostInterface;
    static constexpr auto fields = std::tuple{field("iface", &Request::iface)};
};

struct InterfaceUndefine {
    static constexpr OpInfo info{.name = "interface.undefine", .method = Method::Delete,
                                 .path = "/v1/interfaces/{iface}", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Interface,
                                 .summary = "Remove the interface's definition (iface-undefine)"};
    struct Request {
        std::string iface{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("iface", &Request::iface)};
};

struct InterfaceXml {
    static constexpr OpInfo info{.name = "interface.xml", .method = Method::Get,
                                 .path = "/v1/interfaces/{iface}/xml", .kind = Kind::Query, .lane = Lane::Query,
                                 .read_only_allowed = true, .libvirt_domain = LibvirtDomain::Interface,
                                 .summary = "Interface XML (iface-dumpxml [--inactive])"};
    struct Request {
        std::string iface{};
        bool inactive = false;
    };
    using Reply = std::string;  // libvirt interface XML
    static constexpr auto fields =
        std::tuple{field("iface", &Request::iface),
                   field("inactive", &Request::inactive, "the definition, not the host's current state")};
};

struct InterfaceStart {
    static constexpr OpInfo info{.name = "interface.start", .method = Method::Post,
                                 .path = "/v1/interfaces/{iface}/start", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Interface,
                                 .summary = "Bring the defined interface up (iface-start)"};
    struct Request {
        std::string iface{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("iface", &Request::iface)};
};

struct InterfaceDestroy {
    static constexpr OpInfo info{.name = "interface.destroy", .method = Method::Post,
                                 .path = "/v1/interfaces/{iface}/destroy", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Interface,
                                 .summary = "Bring the interface down (iface-destroy); bridges, VLANs and bonds are "
                                            "removed"};
    struct Request {
        std::string iface{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("iface", &Request::iface)};
};

// Make a bridge with `iface` as its only port and move iface's addresses to
// it (virsh iface-bridge); iface's definition becomes the bridge's port.
struct InterfaceBridge {
    static constexpr OpInfo info{.name = "interface.bridge", .method = Method::Post,
                                 .path = "/v1/interfaces/{iface}/bridge", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Interface,
                                 .summary = "Create a bridge device and attach an existing interface to it "
                                            "(iface-bridge)"};
    struct Request {
        std::string iface{};
        std::string bridge{};
        bool stp = true;
        std::uint64_t delay = 0;  // forward delay, seconds
        bool no_start = false;    // define only
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("iface", &Request::iface), required("bridge", &Request::bridge, "the new bridge's name"),
                   field("stp", &Request::stp), field("delay", &Request::delay, "forward delay in seconds"),
                   field("no_start", &Request::no_start, "define the bridge without starting it")};
};

// Undo iface-bridge: the bridge's only port gets the bridge's addresses back
// and the bridge goes (virsh iface-unbridge).
struct InterfaceUnbridge {
    static constexpr OpInfo info{.name = "interface.unbridge", .method = Method::Post,
                                 .path = "/v1/interfaces/{iface}/unbridge", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Interface,
                                 .summary = "Undefine a bridge device after detaching its device (iface-unbridge)"};
    struct Request {
        std::string iface{};  // the bridge
        bool no_start = false;
    };
    using Reply = std::string;  // the port that was detached
    static constexpr std::string_view reply_field = "interface";
    static constexpr auto fields = std::tuple{field("iface", &Request::iface),
                                              field("no_start", &Request::no_start, "do not start the port")};
};

using InterfaceOps = List<InterfaceList, InterfaceDefine, InterfaceLookup, InterfaceUndefine, InterfaceXml,
                          InterfaceStart, InterfaceDestroy, InterfaceBridge, InterfaceUnbridge>;

}  // namespace vireo::driver::ops
