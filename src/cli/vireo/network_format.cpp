#include "cli/vireo/network_format.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>

#include <fmt/format.h>

#include "cli/vireo/text.hpp"

namespace vireo::cli {

namespace {

std::string yes_no(bool b) { return b ? "yes" : "no"; }

// A pair of opposite flags: neither or both set means "don't filter".
bool matches_pair(bool value, bool want_true, bool want_false) {
    if (want_true == want_false) return true;
    return value ? want_true : want_false;
}

std::string info_line(std::string_view label, std::string_view value) {
    return fmt::format("{:<15} {}\n", fmt::format("{}:", label), value);
}

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

}  // namespace

std::vector<driver::NetworkSummary> select_networks(std::vector<driver::NetworkSummary> all, const NetworkListFilter& f) {
    std::vector<driver::NetworkSummary> out;
    for (auto& n : all) {
        if (n.active ? !f.active : !f.inactive) continue;
        if (!matches_pair(n.persistent, f.persistent, f.transient)) continue;
        if (!matches_pair(n.autostart, f.autostart, f.no_autostart)) continue;
        out.push_back(std::move(n));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

std::string format_network_table(const std::vector<driver::NetworkSummary>& nets, bool with_header) {
    Table table({"Name", "State", "Autostart", "Persistent"});
    for (const auto& n : nets)
        table.add_row({n.name, n.active ? "active" : "inactive", yes_no(n.autostart), yes_no(n.persistent)});
    return table.render(with_header);
}

std::string format_network_info(const driver::NetworkSummary& n) {
    std::string out;
    out += info_line("Name", n.name);
    out += info_line("UUID", n.uuid.str());
    out += info_line("Active", yes_no(n.active));
    out += info_line("Persistent", yes_no(n.persistent));
    out += info_line("Autostart", yes_no(n.autostart));
    if (!n.bridge.empty()) out += info_line("Bridge", n.bridge);
    return out;
}

std::string format_lease_table(std::vector<driver::NetworkDhcpLease> leases, bool with_header) {
    std::stable_sort(leases.begin(), leases.end(), [](const auto& a, const auto& b) { return a.mac < b.mac; });
    Table table({"Expiry Time", "MAC address", "Protocol", "IP address", "Hostname", "Client ID or DUID"});
    for (const auto& l : leases) {
        const std::time_t t = static_cast<std::time_t>(l.expiry_time);
        std::tm tm{};
        localtime_r(&t, &tm);
        char when[32];
        std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        table.add_row({when, or_dash(l.mac), l.ipv6 ? "ipv6" : "ipv4", fmt::format("{}/{}", l.ip, l.prefix),
                       or_dash(l.hostname), or_dash(l.client_id)});
    }
    return table.render(with_header);
}

std::string format_network_event(const driver::NetworkEvent& e, bool timestamp) {
    std::string out;
    if (timestamp) {
        using namespace std::chrono;
        const auto since_epoch = e.when.time_since_epoch();
        const std::time_t secs = duration_cast<seconds>(since_epoch).count();
        const auto millis = duration_cast<milliseconds>(since_epoch).count() % 1000;
        std::tm tm{};
        gmtime_r(&secs, &tm);
        char buf[32];
        std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
        out += fmt::format("{}.{:03}+0000: ", buf, millis);
    }
    out += fmt::format("event 'lifecycle' for network {}: {}", e.network, driver::network_event_name(e.type));
    return out;
}

std::string format_interface_table(const std::vector<driver::HostInterface>& ifaces, bool with_header) {
    Table table({"Name", "State", "MAC Address"});
    for (const auto& i : ifaces) table.add_row({i.name, i.active ? "active" : "inactive", i.mac});
    return table.render(with_header);
}

std::string network_update_outcome(const std::string& network, bool live, bool config, bool active) {
    std::string_view what;
    if (config) what = live ? "persistent config and live state" : "persistent config";
    else if (live || active) what = "live state";
    else what = "persistent config";
    return fmt::format("Updated network {} {}", network, what);
}

nlohmann::json network_json(const driver::NetworkSummary& n) {
    return {{"name", n.name},           {"uuid", n.uuid.str()},         {"active", n.active},
            {"persistent", n.persistent}, {"autostart", n.autostart}, {"bridge", n.bridge}};
}

nlohmann::json lease_json(const driver::NetworkDhcpLease& l) {
    return {{"expiry_time", l.expiry_time}, {"mac", l.mac},           {"protocol", l.ipv6 ? "ipv6" : "ipv4"},
            {"ip", l.ip},                   {"prefix", l.prefix},     {"hostname", l.hostname},
            {"client_id", l.client_id},     {"iaid", l.iaid},         {"iface", l.iface}};
}

nlohmann::json host_interface_json(const driver::HostInterface& i) {
    return {{"name", i.name}, {"mac", i.mac}, {"active", i.active}};
}

}  // namespace vireo::cli
