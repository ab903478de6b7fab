// A domain's network interfaces: domifstat, domif-getlink, domif-setlink,
// domifaddr (domiflist is in commands_domain.cpp). Output as virsh's.
#include <nlohmann/json.hpp>

#include "cli/vireo/commands.hpp"
#include "cli/vireo/session.hpp"
#include "driver/ops/domain.hpp"

namespace vireo::cli {

namespace ops = driver::ops;

namespace {

int cmd_domifstat(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::string device = a.get("interface");
    auto st = s.conn()->call<ops::DomainInterfaceStats>({.ref = dom->name, .device = device});
    if (!st) {
        s.error(fmt::format("Failed to get interface stats {} {}", dom->name, device), st.error());
        return 1;
    }
    if (a.has("json")) {
        s.out("{}\n", nlohmann::json{{"name", st->name},         {"rx_bytes", st->rx_bytes},
                                     {"rx_packets", st->rx_packets}, {"rx_errs", st->rx_errs},
                                     {"rx_drop", st->rx_drop},     {"tx_bytes", st->tx_bytes},
                                     {"tx_packets", st->tx_packets}, {"tx_errs", st->tx_errs},
                                     {"tx_drop", st->tx_drop}}
                              .dump(2));
        return 0;
    }
    const std::pair<std::string_view, std::uint64_t> rows[] = {
        {"rx_bytes", st->rx_bytes}, {"rx_packets", st->rx_packets}, {"rx_errs", st->rx_errs},
        {"rx_drop", st->rx_drop},   {"tx_bytes", st->tx_bytes},     {"tx_packets", st->tx_packets},
        {"tx_errs", st->tx_errs},   {"tx_drop", st->tx_drop}};
    for (const auto& [name, value] : rows) s.out("{} {} {}\n", device, name, value);
    return 0;
}

int cmd_domif_getlink(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::string device = a.get("interface");
    auto state = s.conn()->call<ops::DomainInterfaceLink>({.ref = dom->name, .device = device, .config = a.has("config")});
    if (!state) {
        s.error(fmt::format("Failed to get link state of interface {} of domain {}", device, dom->name), state.error());
        return 1;
    }
    s.out("{} {}\n", device, *state);
    return 0;
}

int cmd_domif_setlink(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::string device = a.get("interface");
    const std::string state = a.get("state");
    if (state != "up" && state != "down") {
        s.error(fmt::format("invalid link state '{}'", state));
        return 1;
    }
    auto st = s.conn()->call<ops::DomainSetInterfaceLink>(
        {.ref = dom->name, .device = device, .state = state == "up" ? driver::LinkState::Up : driver::LinkState::Down,
         .config = a.has("config")});
    if (!st) {
        s.error("Failed to update interface link state", st.error());
        return 1;
    }
    s.out("Device updated successfully\n");
    return 0;
}

int cmd_domifaddr(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    driver::AddressSource source = driver::AddressSource::Lease;
    if (a.has("source")) {
        const std::string src = a.get("source");
        if (src == "lease") source = driver::AddressSource::Lease;
        else if (src == "arp") source = driver::AddressSource::Arp;
        else if (src == "agent") source = driver::AddressSource::Agent;
        else {
            s.error(fmt::format("Unknown data source '{}'", src));
            return 1;
        }
    }
    auto addrs = s.conn()->call<ops::DomainInterfaceAddresses>({.ref = dom->name, .source = source});
    if (!addrs) {
        s.error(fmt::format("Failed to query for interfaces addresses"), addrs.error());
        return 1;
    }
    const std::string only = a.has("interface") ? a.get("interface") : "";
    if (a.has("json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& r : *addrs)
            if (only.empty() || r.name == only)
                out.push_back({{"name", r.name}, {"mac", r.mac}, {"type", r.type}, {"address", r.address}, {"prefix", r.prefix}});
        s.out("{}\n", out.dump(2));
        return 0;
    }
    s.out(" {:<10} {:<20} {:<8}     {}\n{}\n", "Name", "MAC address", "Protocol", "Address", std::string(79, '-'));
    std::string previous;
    for (const auto& r : *addrs) {
        if (!only.empty() && r.name != only) continue;
        const std::string addr = fmt::format("{:<12} {}/{}", r.type, r.address, r.prefix);
        // Later addresses of the same interface: "-" unless --full.
        const bool repeat = r.name == previous && !a.has("full");
        s.out(" {:<10} {:<17}    {}\n", repeat ? "-" : r.name, repeat ? "-" : r.mac, addr);
        previous = r.name;
    }
    s.out("\n");
    return 0;
}

}  // namespace

void add_domain_interface_commands(std::vector<CommandSpec>& t) {
    const std::string_view mgmt = "Domain Management", mon = "Domain Monitoring";
    const OptSpec iface{"interface", OptType::String, "interface device (MAC Address)", true, true};
    t.push_back({"domifstat", mon, "get network interface stats for a domain",
                 "Get network interface stats for a running domain.", {kDomainOpt, iface, kJsonOpt}, cmd_domifstat});
    t.push_back({"domif-getlink", mon, "get link state of a virtual interface",
                 "Get link state of a domain's virtual interface.",
                 {kDomainOpt, iface, {"config", OptType::Bool, "Get persistent interface state"}}, cmd_domif_getlink});
    t.push_back({"domif-setlink", mgmt, "set link state of a virtual interface",
                 "Set link state of a domain's virtual interface. This command wraps usage of update-device command.",
                 {kDomainOpt, iface, {"state", OptType::String, "new state of the device", true, true},
                  {"config", OptType::Bool, "affect next boot"}},
                 cmd_domif_setlink, true, true});
    t.push_back({"domifaddr", mon, "Get network interfaces' addresses for a running domain",
                 "Get network interfaces' addresses for a running domain",
                 {kDomainOpt, {"interface", OptType::String, "network interface name"},
                  {"full", OptType::Bool, "always display names and MACs of interfaces"},
                  {"source", OptType::String, "address source: 'lease', 'agent', or 'arp'"}, kJsonOpt},
                 cmd_domifaddr});
}

}  // namespace vireo::cli
