// start/stop/find of a network's host side (see host_network.hpp).
#include "network/host_network.hpp"

#include <algorithm>
#include <functional>
#include <vector>

#include <fmt/format.h>

#include "network/firewall.hpp"
#include "network/netlink.hpp"

namespace vireo::network {

namespace {

// Undo actions run in reverse unless dismissed (on success).
class Rollback {
public:
    Rollback() = default;
    Rollback(const Rollback&) = delete;
    Rollback& operator=(const Rollback&) = delete;
    ~Rollback() {
        if (armed_)
            for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) (*it)();
    }
    void add(std::function<void()> f) { undo_.push_back(std::move(f)); }
    void dismiss() { armed_ = false; }

private:
    std::vector<std::function<void()>> undo_;
    bool armed_ = true;
};

Status create_network_bridge(const conf::NetworkDef& def) {
    BridgeOptions o;
    o.stp = def.bridge.stp;
    o.delay_seconds = def.bridge.delay;
    o.mtu = def.mtu;
    o.mac = def.mac;
    return create_bridge(def.bridge.name, o);
}

Result<bool> firewall_present(const conf::NetworkDef& def) {
    auto names = list_firewalls();
    if (!names) return std::unexpected(names.error());
    return std::find(names->begin(), names->end(), def.name) != names->end();
}

}  // namespace

Result<HostNetworkState> start_host_network(const conf::NetworkDef& def, const HostNetworkOptions& options) {
    const std::string what = fmt::format("cannot start network '{}'", def.name);
    HostNetworkState state;
    if (!def.has_own_bridge()) {
        auto link = find_link(def.bridge.name);
        if (!link) return std::unexpected(link.error().context(what));
        if (!*link || (*link)->kind != "bridge")
            return fail(ErrorCode::OperationFailed, "{}: host bridge '{}' does not exist (forward mode='bridge' uses an existing bridge)", what,
                        def.bridge.name);
        state.bridge = true;
        return state;
    }
    if (def.bridge.name.empty() || def.bridge.name.find('%') != std::string::npos)
        return fail(ErrorCode::Internal, "{}: no bridge name assigned", what);
    auto existing = find_link(def.bridge.name);
    if (!existing) return std::unexpected(existing.error().context(what));
    if (*existing) return fail(ErrorCode::OperationFailed, "{}: bridge name '{}' is already in use by a host interface", what, def.bridge.name);

    Rollback undo;
    if (auto st = create_network_bridge(def); !st) return std::unexpected(st.error().context(what));
    undo.add([&] { (void)delete_link(def.bridge.name); });
    for (const auto& ip : def.ips)
        if (auto st = add_address(def.bridge.name, ip.address, ip.prefix_length(), true); !st) return std::unexpected(st.error().context(what));
    if (auto st = set_link_up(def.bridge.name, true); !st) return std::unexpected(st.error().context(what));
    state.bridge = true;
    for (bool v6 : {false, true})
        if (needs_ip_forwarding(def, v6))
            if (auto st = set_ip_forwarding(v6, true); !st) return std::unexpected(st.error().context(what));
    if (!firewall_ruleset(def).empty()) {
        if (auto st = apply_firewall(def); !st) return std::unexpected(st.error().context(what));
        undo.add([&] { (void)remove_firewall(def.name); });
        state.firewall = true;
    }
    if (needs_dnsmasq(def)) {
        auto pid = start_dnsmasq(def, DnsmasqFiles::in(options.state_dir, def.name), options.dnsmasq);
        if (!pid) return std::unexpected(pid.error().context(what));
        state.dnsmasq = *pid;
    }
    undo.dismiss();
    return state;
}

Status stop_host_network(const conf::NetworkDef& def, const HostNetworkOptions& options) {
    const std::string what = fmt::format("cannot stop network '{}'", def.name);
    // Every step runs even if one fails; the first error is reported.
    Status first;
    auto keep = [&](Status st) {
        if (!st && first) first = std::unexpected(st.error().context(what));
    };
    // dnsmasq is told first: its exit (the kernel releasing its sockets)
    // overlaps the removal of the rules and of the bridge (another wait of
    // the kernel's), and is waited for last.
    auto dnsmasq = begin_stop_dnsmasq(DnsmasqFiles::in(options.state_dir, def.name));
    if (!dnsmasq) keep(std::unexpected(dnsmasq.error()));
    // Modes without rules made no table (start_host_network).
    if (!firewall_ruleset(def).empty()) keep(remove_firewall(def.name));
    if (def.has_own_bridge()) {
        auto link = find_link(def.bridge.name);
        if (!link) keep(std::unexpected(link.error()));
        else if (*link) keep(delete_link(def.bridge.name));
    }
    if (dnsmasq) keep(finish_stop_dnsmasq(*dnsmasq));
    return first;
}

Result<HostNetworkState> find_host_network(const conf::NetworkDef& def, const HostNetworkOptions& options) {
    HostNetworkState state;
    auto link = find_link(def.bridge.name);
    if (!link) return std::unexpected(link.error());
    state.bridge = link->has_value() && (*link)->kind == "bridge";
    auto fw = firewall_present(def);
    if (!fw) return std::unexpected(fw.error());
    state.firewall = *fw;
    auto pid = find_dnsmasq(DnsmasqFiles::in(options.state_dir, def.name));
    if (!pid) return std::unexpected(pid.error());
    state.dnsmasq = *pid;
    return state;
}

}  // namespace vireo::network
