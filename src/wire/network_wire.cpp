#include "wire/network_wire.hpp"

#include <chrono>
#include <tuple>

#include "wire/wire_fields.hpp"

namespace vireo::wire {

using nlohmann::json;

namespace {

using driver::HostInterface;
using driver::NetworkDhcpLease;
using driver::NetworkSummary;
using fields::get;
using fields::missing;
using fields::optional;
using fields::required;

// The plain fields (the uuid and the event type need a conversion).
const auto kNetworkFields = std::make_tuple(
    required("name", &NetworkSummary::name), required("active", &NetworkSummary::active),
    optional("persistent", &NetworkSummary::persistent), optional("autostart", &NetworkSummary::autostart),
    optional("bridge", &NetworkSummary::bridge));
const auto kLeaseFields = std::make_tuple(
    optional("iface", &NetworkDhcpLease::iface), optional("expiry_time", &NetworkDhcpLease::expiry_time),
    optional("ipv6", &NetworkDhcpLease::ipv6), optional("mac", &NetworkDhcpLease::mac),
    optional("iaid", &NetworkDhcpLease::iaid), required("ip", &NetworkDhcpLease::ip),
    optional("prefix", &NetworkDhcpLease::prefix), optional("hostname", &NetworkDhcpLease::hostname),
    optional("client_id", &NetworkDhcpLease::client_id));
const auto kHostInterfaceFields =
    std::make_tuple(required("name", &HostInterface::name), optional("mac", &HostInterface::mac),
                    required("active", &HostInterface::active));

std::optional<driver::NetworkEventType> network_event_type(std::string_view name) {
    for (auto t : {driver::NetworkEventType::Defined, driver::NetworkEventType::Undefined,
                   driver::NetworkEventType::Started, driver::NetworkEventType::Stopped})
        if (driver::network_event_name(t) == name) return t;
    return std::nullopt;
}

}  // namespace

json to_json(const driver::NetworkSummary& n) {
    json j = fields::to_json(n, kNetworkFields);
    j["uuid"] = n.uuid.str();
    return j;
}

json to_json(const driver::NetworkDhcpLease& l) { return fields::to_json(l, kLeaseFields); }

json to_json(const driver::NetworkEvent& e) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(e.when.time_since_epoch()).count();
    return json{{"type", driver::network_event_name(e.type)}, {"network", e.network}, {"uuid", e.uuid.str()},
                {"time_ms", ms}};
}

json to_json(const driver::HostInterface& i) { return fields::to_json(i, kHostInterfaceFields); }

Result<driver::NetworkSummary> network_from_json(const json& j) {
    static constexpr std::string_view what = "network";
    driver::NetworkSummary n;
    VIREO_TRY(fields::from_json(j, what, kNetworkFields, n));
    std::string uuid;
    if (!get(j, "uuid", uuid)) return missing(what, "uuid");
    auto parsed = Uuid::parse(uuid);
    if (!parsed) return missing(what, "uuid");
    n.uuid = *parsed;
    return n;
}

Result<driver::NetworkDhcpLease> network_lease_from_json(const json& j) {
    return fields::plain_from_json<driver::NetworkDhcpLease>(j, "network lease", kLeaseFields);
}

Result<driver::NetworkEvent> network_event_from_json(const json& j) {
    static constexpr std::string_view what = "network event";
    driver::NetworkEvent e;
    std::string type, uuid;
    if (!j.is_object() || !get(j, "type", type)) return missing(what, "type");
    auto t = network_event_type(type);
    if (!t) return missing(what, "type");
    e.type = *t;
    if (!get(j, "network", e.network)) return missing(what, "network");
    if (get(j, "uuid", uuid)) {
        if (auto u = Uuid::parse(uuid)) e.uuid = *u;
    }
    std::int64_t ms = 0;
    if (get(j, "time_ms", ms)) e.when = std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
    return e;
}

Result<driver::HostInterface> host_interface_from_json(const json& j) {
    return fields::plain_from_json<driver::HostInterface>(j, "host interface", kHostInterfaceFields);
}

}  // namespace vireo::wire
