// Host operations: versions, host facts, capabilities, the event stream.
// (op.hpp explains the declarations.)
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <tuple>

#include "driver/ops/op.hpp"
#include "driver/types.hpp"

namespace vireo::driver::ops {

struct HostVersion {
    static constexpr OpInfo info{.name = "host.version", .method = Method::Get, .path = "/v1/host/version",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = true,
                                 .summary = "Versions of the daemon and the hypervisor"};
    struct Request {};
    using Reply = VersionInfo;
    static constexpr std::tuple<> fields{};
};

struct HostHostname {
    static constexpr OpInfo info{.name = "host.hostname", .method = Method::Get, .path = "/v1/host/hostname",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = true,
                                 .summary = "Host name of the daemon's host"};
    struct Request {};
    using Reply = std::string;
    static constexpr std::string_view reply_field = "hostname";
    static constexpr std::tuple<> fields{};
};

struct HostNodeInfo {
    static constexpr OpInfo info{.name = "host.nodeinfo", .method = Method::Get, .path = "/v1/host/nodeinfo",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = true,
                                 .summary = "CPU and memory of the host (virsh nodeinfo)"};
    struct Request {};
    using Reply = NodeInfo;
    static constexpr std::tuple<> fields{};
};

struct HostCapabilities {
    static constexpr OpInfo info{.name = "host.capabilities", .method = Method::Get, .path = "/v1/host/capabilities",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = true,
                                 .summary = "Host capabilities XML (virsh capabilities)"};
    struct Request {};
    using Reply = std::string;  // the <capabilities> document
    static constexpr std::tuple<> fields{};
};

struct HostDomainCapabilities {
    static constexpr OpInfo info{.name = "host.domcapabilities", .method = Method::Get,
                                 .path = "/v1/host/domcapabilities", .kind = Kind::Query, .lane = Lane::Query,
                                 .read_only_allowed = true,
                                 .summary = "Domain capabilities XML (virsh domcapabilities)"};
    // Every field optional: empty = the host's default.
    struct Request {
        std::string emulator{};
        std::string arch{};
        std::string machine{};
        std::string virttype{};
    };
    using Reply = std::string;  // the <domainCapabilities> document
    static constexpr auto fields = std::tuple{field("emulator", &Request::emulator), field("arch", &Request::arch),
                                              field("machine", &Request::machine),
                                              field("virttype", &Request::virttype)};
};

// Lifecycle events of every domain until the Subscription is destroyed; the
// callback runs on a driver thread and must not block.
struct HostEvents {
    static constexpr OpInfo info{.name = "host.events", .method = Method::Get, .path = "/v1/events",
                                 .kind = Kind::QueryStream, .lane = Lane::Inline, .read_only_allowed = true,
                                 .summary = "Lifecycle event stream (WebSocket)"};
    static constexpr std::string_view description =
        "Upgrade to WebSocket. Every lifecycle event of every domain from now on\n"
        "arrives as one text message holding an Event JSON object.\n"
        "Example: curl is not a WebSocket client; use `vireo event --loop`, or\n"
        "`websocat ws+unix://$S:/v1/events`.";
    struct Request {
        std::function<void(const DomainEvent&)> callback{};
    };
    using Reply = std::unique_ptr<Subscription>;
    static constexpr std::tuple<> fields{};
};

using HostOps = List<HostVersion, HostHostname, HostNodeInfo, HostCapabilities, HostDomainCapabilities, HostEvents>;

}  // namespace vireo::driver::ops
