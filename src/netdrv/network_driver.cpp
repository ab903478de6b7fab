// NetworkDriver (see network_driver.hpp): networks, their persistence, the
// host side through src/network, restart recovery, NetworkPorts.
#include "netdrv/network_driver.hpp"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "conf/network.hpp"
#include "driver/impact.hpp"
#include "driver/object_store.hpp"
#include "netdrv/host_checks.hpp"
#include "netdrv/network_update.hpp"
#include "network/dnsmasq.hpp"
#include "network/firewall.hpp"
#include "network/host_network.hpp"
#include "network/leases.hpp"
#include "network/netlink.hpp"
#include "util/files.hpp"

namespace vireo::netdrv {

namespace fs = std::filesystem;
using conf::NetworkDef;
using driver::NetworkEventType;
using driver::NetworkSummary;

namespace {

// One network: its persistent definition (persistent networks), its live
// one (while active), and the guest NICs plugged into it.
struct Net {
    std::optional<NetworkDef> config;
    std::optional<NetworkDef> live;
    bool autostart = false;
    std::map<std::string, driver::NetworkPort> ports;  // "<domain>/<mac>"

    [[nodiscard]] const NetworkDef& current() const { return live ? *live : *config; }
};
using NetPtr = std::shared_ptr<Net>;

Error invalid(std::string what) { return Error{ErrorCode::InvalidState, "Requested operation is not valid: " + std::move(what)}; }

Error not_found(std::string_view ref) {
    const bool uuid = Uuid::parse(ref).has_value();
    return Error{ErrorCode::NoNetwork,
                 fmt::format("Network not found: no network with matching {} '{}'", uuid ? "uuid" : "name", ref)};
}

NetworkSummary summary_of(const Net& n) {
    const NetworkDef& d = n.current();
    return NetworkSummary{.name = d.name,
                          .uuid = d.uuid,
                          .active = n.live.has_value(),
                          .persistent = n.config.has_value(),
                          .autostart = n.autostart,
                          .bridge = d.bridge.name};
}

// libvirt writes <network connections='N'> on a running network with guests.
std::string with_connections(std::string xml, std::size_t connections) {
    if (connections > 0 && xml.starts_with("<network"))
        xml.insert(std::string_view("<network").size(), fmt::format(" connections='{}'", connections));
    return xml;
}

std::string normalized_mac(std::string_view text) {
    auto mac = conf::MacAddr::parse(text);
    return mac ? mac->str() : std::string(text);
}

// A document from the store: it parses and names the network its file is named after.
Result<NetworkDef> parse_document(const driver::ObjectStore::Document& doc) {
    auto def = conf::parse_network_xml(doc.text);
    if (!def) return std::unexpected(def.error());
    if (def->name != doc.name) return fail(ErrorCode::XmlError, "it defines network '{}', not '{}'", def->name, doc.name);
    return def;
}

}  // namespace

struct NetworkDriver::Impl {
    explicit Impl(NetworkDriverConfig c)
        : cfg(std::move(c)), store(driver::ObjectKind::Network, cfg.confdir, cfg.rundir) {}

    NetworkDriverConfig cfg;
    driver::ObjectStore store;
    driver::NetworkEventBus bus;
    std::mutex change;    // serialises every change (see the header)
    mutable std::mutex mu;  // `nets` and the fields of every Net
    std::map<std::string, NetPtr, std::less<>> nets;

    [[nodiscard]] network::HostNetworkOptions host_options() const {
        network::HostNetworkOptions o;
        o.state_dir = cfg.state_dir;
        o.dnsmasq.binary = cfg.dnsmasq;
        o.dnsmasq.lease_helper = cfg.lease_helper;
        return o;
    }
    [[nodiscard]] network::DnsmasqFiles dnsmasq_files(std::string_view name) const {
        return network::DnsmasqFiles::in(cfg.state_dir, name);
    }

    Result<NetPtr> find(std::string_view ref) const {
        std::lock_guard lk(mu);
        if (auto it = nets.find(ref); it != nets.end()) return it->second;
        if (auto uuid = Uuid::parse(ref))
            for (const auto& [name, n] : nets)
                if (n->current().uuid == *uuid) return n;
        return std::unexpected(not_found(ref));
    }

    // Every definition (persistent and live) of the networks other than `name`.
    std::vector<NetworkDef> others(std::string_view name) const {
        std::lock_guard lk(mu);
        std::vector<NetworkDef> out;
        for (const auto& [n, net] : nets) {
            if (n == name) continue;
            if (net->config) out.push_back(*net->config);
            if (net->live) out.push_back(*net->live);
        }
        return out;
    }

    // The host's interface names, without the bridges of vireo's own active
    // networks (a clash with those is one between networks).
    Result<std::set<std::string>> foreign_interfaces() const {
        auto names = host_interface_names();
        if (!names) return std::unexpected(names.error());
        std::lock_guard lk(mu);
        for (const auto& [n, net] : nets)
            if (net->live && net->live->has_own_bridge()) names->erase(net->live->bridge.name);
        return names;
    }

    // Parse, check against the other networks and the host, and fill the
    // bridge name and MAC: the definition net-define stores.
    Result<NetworkDef> prepare(std::string_view xml) {
        auto def = conf::parse_network_xml(xml);
        if (!def) return std::unexpected(def.error());
        {
            std::lock_guard lk(mu);
            for (const auto& [n, net] : nets) {
                const auto& existing = net->current();
                if (n == def->name && !(existing.uuid == def->uuid))
                    return fail(ErrorCode::Exists, "operation failed: network '{}' already exists with uuid {}", n,
                                existing.uuid.str());
                if (n != def->name && existing.uuid == def->uuid)
                    return fail(ErrorCode::Exists, "operation failed: network '{}' is already defined with uuid {}", n,
                                def->uuid.str());
            }
        }
        auto host = foreign_interfaces();
        if (!host) return std::unexpected(host.error());
        const auto other_defs = others(def->name);
        VIREO_TRY(conf::check_network_conflicts(*def, other_defs, *host));
        conf::NetworkNamesInUse in_use;
        in_use.bridges = *host;
        for (const auto& o : other_defs) {
            if (!o.bridge.name.empty()) in_use.bridges.insert(o.bridge.name);
            if (o.mac) in_use.macs.insert(*o.mac);
        }
        VIREO_TRY(conf::assign_network_defaults(*def, in_use));
        return def;
    }

    // The host side and the status document of a network that starts.
    Status bring_up(const NetworkDef& def) {
        if (def.has_own_bridge()) {
            auto used = subnet_in_use(def);
            if (!used) return std::unexpected(used.error().context(fmt::format("cannot start network '{}'", def.name)));
            if (*used)
                return fail(ErrorCode::OperationFailed, "cannot start network '{}': its subnet is already in use by {}",
                            def.name, **used);
        }
        VIREO_TRY(files::make_dirs(cfg.state_dir, 0755));
        auto host = network::start_host_network(def, host_options());
        if (!host) return std::unexpected(host.error());
        if (auto st = store.save_status(def.name, conf::format_network_xml(def)); !st) {
            (void)network::stop_host_network(def, host_options());
            return std::unexpected(st.error().context(fmt::format("cannot start network '{}'", def.name)));
        }
        return {};
    }

    // Tell the subscribers (net-event) what happened to `def`.
    void publish(NetworkEventType type, const NetworkDef& def) { bus.publish(type, def.name, def.uuid); }

    // dnsmasq's files of a network that is gone for good.
    void remove_dnsmasq_files(std::string_view name) const {
        const auto f = dnsmasq_files(name);
        std::error_code ec;
        for (const auto& p : {f.config, f.pid, f.leases, f.hostsfile, f.addnhosts, f.status, fs::path(f.status.native() + ".lock")})
            fs::remove(p, ec);
    }

    // --- start-up -----------------------------------------------------------------
    void load();
    Status adopt(const NetworkDef& live);
    void clean_orphans();
    void autostart_all();
    void make_default_network();
    Status start_locked(const NetPtr& n);
};

// ---- start-up ----------------------------------------------------------------------

void NetworkDriver::Impl::load() {
    for (const auto& skipped : store.load_configs([&](driver::ObjectStore::Document& doc) -> Status {
             auto def = parse_document(doc);
             if (!def) return std::unexpected(def.error());
             auto n = std::make_shared<Net>();
             n->config = std::move(*def);
             n->autostart = store.autostart(doc.name);
             nets[doc.name] = std::move(n);
             return {};
         }))
        spdlog::warn("network definition skipped: {}", skipped);
    std::vector<NetworkDef> running;
    for (const auto& skipped : store.load_statuses([&](driver::ObjectStore::Document& doc) -> Status {
             auto def = parse_document(doc);
             if (!def) return std::unexpected(def.error());
             if (auto it = nets.find(doc.name); it != nets.end() && !(it->second->config->uuid == def->uuid))
                 return fail(ErrorCode::XmlError, "network '{}' runs with uuid {} but is defined with uuid {}", doc.name,
                             def->uuid.str(), it->second->config->uuid.str());
             running.push_back(std::move(*def));
             return {};
         }))
        spdlog::warn("network status skipped: {}", skipped);
    for (auto& live : running) {
        if (auto st = adopt(live); !st) {
            spdlog::warn("network '{}' was active but cannot be adopted or restarted; it is now inactive: {}", live.name,
                         st.error().full_message());
            (void)network::stop_host_network(live, host_options());
            (void)store.remove_status(live.name);
            if (auto it = nets.find(live.name); it != nets.end() && !it->second->config) nets.erase(it);
            continue;
        }
        auto& n = nets[live.name];
        if (!n) n = std::make_shared<Net>();  // a transient network that was running
        n->live = std::move(live);
        spdlog::info("network '{}' is running: adopted", n->live->name);
    }
}

// A network the status says is running: take over what runs of it, start
// what is missing; never a second bridge, table or dnsmasq.
Status NetworkDriver::Impl::adopt(const NetworkDef& live) {
    auto found = network::find_host_network(live, host_options());
    if (!found) return std::unexpected(found.error());
    if (!live.has_own_bridge()) {
        if (!found->bridge)
            return fail(ErrorCode::OperationFailed, "host bridge '{}' of network '{}' is gone", live.bridge.name, live.name);
        return {};
    }
    if (!found->bridge) {
        // Lost with the host's state (a reboot without /run cleared, a bridge
        // deleted by hand): start afresh after removing any remains.
        (void)network::stop_host_network(live, host_options());
        VIREO_TRY(files::make_dirs(cfg.state_dir, 0755));
        auto started = network::start_host_network(live, host_options());
        if (!started) return std::unexpected(started.error());
        return {};
    }
    for (bool v6 : {false, true})
        if (network::needs_ip_forwarding(live, v6)) VIREO_TRY(network::set_ip_forwarding(v6, true));
    // One transaction replaces the network's own table: never a duplicate.
    if (!network::firewall_ruleset(live).empty()) VIREO_TRY(network::apply_firewall(live));
    else if (found->firewall) VIREO_TRY(network::remove_firewall(live.name));
    if (network::needs_dnsmasq(live) && !found->dnsmasq) {
        auto pid = network::start_dnsmasq(live, dnsmasq_files(live.name), host_options().dnsmasq);
        if (!pid) return std::unexpected(pid.error());
    }
    return {};
}

// Firewall tables and dnsmasq instances of vireo networks that do not run.
void NetworkDriver::Impl::clean_orphans() {
    auto tables = network::list_firewalls();
    if (!tables) {
        spdlog::warn("cannot list vireo's firewall tables: {}", tables.error().full_message());
    } else {
        for (const auto& name : *tables) {
            auto it = nets.find(name);
            if (it != nets.end() && it->second->live) continue;
            spdlog::info("removing the firewall table of network '{}', which is not active", name);
            if (auto st = network::remove_firewall(name); !st) spdlog::warn("{}", st.error().full_message());
        }
    }
    for (const auto& [name, n] : nets) {
        if (n->live) continue;
        auto pid = network::find_dnsmasq(dnsmasq_files(name));
        if (pid && *pid) {
            spdlog::info("stopping dnsmasq (pid {}) of network '{}', which is not active", **pid, name);
            if (auto st = network::stop_dnsmasq(dnsmasq_files(name)); !st) spdlog::warn("{}", st.error().full_message());
        }
    }
}

Status NetworkDriver::Impl::start_locked(const NetPtr& n) {
    NetworkDef def = *n->config;
    VIREO_TRY(bring_up(def));
    {
        std::lock_guard lk(mu);
        n->live = def;
    }
    publish(NetworkEventType::Started, def);
    return {};
}

void NetworkDriver::Impl::autostart_all() {
    std::vector<NetPtr> todo;
    {
        std::lock_guard lk(mu);
        for (const auto& [name, n] : nets)
            if (n->autostart && n->config && !n->live) todo.push_back(n);
    }
    for (const auto& n : todo) {
        // A network that cannot start stays inactive, as libvirt's.
        if (auto st = start_locked(n); !st) spdlog::warn("cannot autostart network '{}': {}", n->config->name, st.error().full_message());
        else spdlog::info("network '{}' autostarted", n->config->name);
    }
}

void NetworkDriver::Impl::make_default_network() {
    const fs::path marker = cfg.confdir / ".default-network";
    std::error_code ec;
    if (fs::exists(marker, ec)) return;
    {
        std::lock_guard lk(mu);
        if (nets.contains("default")) return;
    }
    auto def = conf::parse_network_xml(conf::kDefaultNetworkXml);
    if (!def) {
        spdlog::error("the built-in default network does not parse: {}", def.error().full_message());
        return;
    }
    // libvirt's package sets it up only where it can run: skip otherwise.
    std::string why;
    if (::geteuid() != 0) {
        why = "the daemon does not run as root";
    } else if (auto names = host_interface_names(); !names) {
        why = names.error().full_message();
    } else if (names->contains(def->bridge.name)) {
        why = fmt::format("bridge name '{}' is already in use by a host interface", def->bridge.name);
    } else if (auto used = subnet_in_use(*def); !used) {
        why = used.error().full_message();
    } else if (*used) {
        why = fmt::format("its subnet is already in use by {}", **used);
    }
    if (!why.empty()) {
        spdlog::info("not creating the default network (192.168.122.0/24 on virbr0): {}", why);
        return;
    }
    auto prepared = prepare(conf::kDefaultNetworkXml);
    if (!prepared) {
        spdlog::info("not creating the default network: {}", prepared.error().full_message());
        return;
    }
    if (auto st = store.save_config(prepared->name, conf::format_network_xml(*prepared)); !st) {
        spdlog::warn("cannot define the default network: {}", st.error().full_message());
        return;
    }
    (void)files::write_atomic(marker, "made by vireod; delete to have the default network made again\n");
    auto n = std::make_shared<Net>();
    n->config = *prepared;
    if (auto st = store.set_autostart(prepared->name, true); st) n->autostart = true;
    {
        std::lock_guard lk(mu);
        nets[prepared->name] = n;
    }
    publish(NetworkEventType::Defined, *prepared);
    if (auto st = start_locked(n); !st) spdlog::warn("default network defined but not started: {}", st.error().full_message());
    else spdlog::info("default network defined, set to autostart and started");
}

// ---- NetworkDriver ------------------------------------------------------------------

NetworkDriver::NetworkDriver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NetworkDriver::~NetworkDriver() = default;

Result<std::unique_ptr<NetworkDriver>> NetworkDriver::open(NetworkDriverConfig config) {
    auto impl = std::make_unique<Impl>(std::move(config));
    VIREO_TRY(impl->store.prepare());
    {
        std::lock_guard ch(impl->change);
        impl->load();
        if (impl->cfg.clean_orphans) impl->clean_orphans();
        impl->autostart_all();
        if (impl->cfg.default_network) impl->make_default_network();
    }
    return std::unique_ptr<NetworkDriver>(new NetworkDriver(std::move(impl)));
}

driver::NetworkEventBus& NetworkDriver::events() { return impl_->bus; }

Result<std::vector<NetworkSummary>> NetworkDriver::list() {
    std::lock_guard lk(impl_->mu);
    std::vector<NetworkSummary> out;
    out.reserve(impl_->nets.size());
    for (const auto& [name, n] : impl_->nets) out.push_back(summary_of(*n));
    return out;  // the map keeps them sorted by name
}

Result<NetworkSummary> NetworkDriver::lookup(std::string_view ref) {
    auto n = impl_->find(ref);
    if (!n) return std::unexpected(n.error());
    std::lock_guard lk(impl_->mu);
    return summary_of(**n);
}

Result<std::string> NetworkDriver::xml(std::string_view ref, bool inactive) {
    auto found = impl_->find(ref);
    if (!found) return std::unexpected(found.error());
    std::lock_guard lk(impl_->mu);
    const Net& n = **found;
    if (inactive && n.config) return conf::format_network_xml(*n.config);
    if (n.live) return with_connections(conf::format_network_xml(*n.live), n.ports.size());
    return conf::format_network_xml(*n.config);
}

Result<NetworkSummary> NetworkDriver::define(std::string_view xml) {
    std::lock_guard ch(impl_->change);
    auto def = impl_->prepare(xml);
    if (!def) return std::unexpected(def.error());
    VIREO_TRY(impl_->store.save_config(def->name, conf::format_network_xml(*def)));
    NetworkSummary summary;
    {
        std::lock_guard lk(impl_->mu);
        auto& n = impl_->nets[def->name];
        if (!n) n = std::make_shared<Net>();
        n->config = *def;
        summary = summary_of(*n);
    }
    impl_->publish(NetworkEventType::Defined, *def);
    return summary;
}

Result<NetworkSummary> NetworkDriver::create(std::string_view xml) {
    std::lock_guard ch(impl_->change);
    auto def = impl_->prepare(xml);
    if (!def) return std::unexpected(def.error());
    if (auto existing = impl_->find(def->name); existing && (*existing)->live)
        return std::unexpected(invalid(fmt::format("network '{}' is already active", def->name)));
    VIREO_TRY(impl_->bring_up(*def));
    NetworkSummary summary;
    {
        std::lock_guard lk(impl_->mu);
        auto& n = impl_->nets[def->name];
        if (!n) n = std::make_shared<Net>();
        n->live = *def;
        summary = summary_of(*n);
    }
    impl_->publish(NetworkEventType::Started, *def);
    return summary;
}

Status NetworkDriver::undefine(std::string_view ref) {
    std::lock_guard ch(impl_->change);
    auto found = impl_->find(ref);
    if (!found) return std::unexpected(found.error());
    NetPtr n = *found;
    if (!n->config) return std::unexpected(invalid(fmt::format("network '{}' is not persistent", n->current().name)));
    const NetworkDef def = *n->config;
    VIREO_TRY(impl_->store.remove_config(def.name));
    bool gone = false;
    {
        std::lock_guard lk(impl_->mu);
        n->config.reset();
        n->autostart = false;
        gone = !n->live;
        if (gone) impl_->nets.erase(def.name);
    }
    if (gone) impl_->remove_dnsmasq_files(def.name);
    impl_->publish(NetworkEventType::Undefined, def);
    return {};
}

Status NetworkDriver::start(std::string_view ref) {
    std::lock_guard ch(impl_->change);
    auto found = impl_->find(ref);
    if (!found) return std::unexpected(found.error());
    if ((*found)->live) return std::unexpected(invalid("network is already active"));
    return impl_->start_locked(*found);
}

Status NetworkDriver::destroy(std::string_view ref) {
    std::lock_guard ch(impl_->change);
    auto found = impl_->find(ref);
    if (!found) return std::unexpected(found.error());
    NetPtr n = *found;
    if (!n->live) return std::unexpected(invalid(fmt::format("network '{}' is not active", n->current().name)));
    const NetworkDef live = *n->live;
    // Everything start made goes even if a step fails; the first error is
    // reported, and the network is inactive either way (as libvirt's).
    Status st = network::stop_host_network(live, impl_->host_options());
    if (auto removed = impl_->store.remove_status(live.name); !removed && st) st = removed;
    {
        std::lock_guard lk(impl_->mu);
        n->live.reset();
        n->ports.clear();
        if (!n->config) impl_->nets.erase(live.name);
    }
    impl_->publish(NetworkEventType::Stopped, live);
    return st;
}

Status NetworkDriver::set_autostart(std::string_view ref, bool enabled) {
    std::lock_guard ch(impl_->change);
    auto found = impl_->find(ref);
    if (!found) return std::unexpected(found.error());
    NetPtr n = *found;
    if (!n->config) return std::unexpected(invalid("cannot set autostart for transient network"));
    VIREO_TRY(impl_->store.set_autostart(n->config->name, enabled));
    std::lock_guard lk(impl_->mu);
    n->autostart = enabled;
    return {};
}

Status NetworkDriver::update(std::string_view ref, const Update& u) {
    std::lock_guard ch(impl_->change);
    auto found = impl_->find(ref);
    if (!found) return std::unexpected(found.error());
    NetPtr n = *found;
    const std::string name = n->current().name;
    auto impact = driver::resolve_impact({.live = u.live, .config = u.config}, n->live.has_value(), n->config.has_value(),
                                         "network");
    if (!impact) return std::unexpected(impact.error());
    const bool live = impact->live, config = impact->config;
    const NetworkUpdateRequest request{u.command, u.section, u.xml, u.parent_index};
    std::optional<NetworkDef> new_config, new_live;
    UpdateEffect effect = UpdateEffect::HostsFiles;
    if (config) {
        new_config = *n->config;
        auto e = apply_network_update(*new_config, request);
        if (!e) return std::unexpected(e.error());
        effect = *e;
    }
    if (live) {
        new_live = *n->live;
        auto e = apply_network_update(*new_live, request);
        if (!e) return std::unexpected(e.error());
        effect = *e;
        // The running dnsmasq: re-read the hosts files, or restart with the
        // new ranges (and back to the old ones if that fails).
        const auto files = impl_->dnsmasq_files(name);
        const auto opts = impl_->host_options();
        if (effect == UpdateEffect::HostsFiles && network::needs_dnsmasq(*new_live)) {
            auto running = network::find_dnsmasq(files);
            if (running && *running) VIREO_TRY(network::reload_dnsmasq(*new_live, files));
            else if (auto pid = network::start_dnsmasq(*new_live, files, opts.dnsmasq); !pid) return std::unexpected(pid.error());
        } else if (effect == UpdateEffect::DhcpConfig) {
            VIREO_TRY(network::stop_dnsmasq(files));
            if (network::needs_dnsmasq(*new_live)) {
                if (auto pid = network::start_dnsmasq(*new_live, files, opts.dnsmasq); !pid) {
                    if (network::needs_dnsmasq(*n->live)) (void)network::start_dnsmasq(*n->live, files, opts.dnsmasq);
                    return std::unexpected(pid.error());
                }
            }
        }
        VIREO_TRY(impl_->store.save_status(name, conf::format_network_xml(*new_live)));
    }
    if (new_config) VIREO_TRY(impl_->store.save_config(name, conf::format_network_xml(*new_config)));
    std::lock_guard lk(impl_->mu);
    if (new_config) n->config = std::move(new_config);
    if (new_live) n->live = std::move(new_live);
    return {};
}

Result<std::vector<driver::NetworkDhcpLease>> NetworkDriver::dhcp_leases(std::string_view ref, std::string_view mac) {
    auto found = impl_->find(ref);
    if (!found) return std::unexpected(found.error());
    std::optional<NetworkDef> live;
    {
        std::lock_guard lk(impl_->mu);
        live = (*found)->live;
    }
    std::vector<driver::NetworkDhcpLease> out;
    if (!live) return out;  // libvirt answers an inactive network with no leases
    auto leases = network::read_leases(impl_->dnsmasq_files(live->name).status);
    if (!leases) return std::unexpected(leases.error());
    const std::string want = mac.empty() ? std::string() : normalized_mac(mac);
    for (const auto& l : *leases) {
        if (!want.empty() && normalized_mac(l.mac) != want) continue;
        driver::NetworkDhcpLease d;
        d.iface = live->bridge.name;
        d.expiry_time = l.expiry_time;
        d.mac = l.mac;
        d.iaid = l.iaid;
        d.ip = l.ip;
        d.hostname = l.hostname;
        d.client_id = l.client_id;
        if (auto addr = conf::IpAddr::parse(l.ip)) {
            d.ipv6 = addr->v6;
            for (const auto& ip : live->ips)
                if (ip.is_v6() == addr->v6 && ip.address.contains(*addr, ip.prefix_length())) d.prefix = ip.prefix_length();
        }
        out.push_back(std::move(d));
    }
    return out;
}

// ---- NetworkPorts ---------------------------------------------------------------------

Result<driver::NetworkPort> NetworkDriver::plug(const driver::NetworkPortRequest& request) {
    std::lock_guard lk(impl_->mu);
    auto it = impl_->nets.find(request.network);
    if (it == impl_->nets.end()) return std::unexpected(not_found(request.network));
    Net& n = *it->second;
    if (!n.live) return std::unexpected(invalid(fmt::format("network '{}' is not active", request.network)));
    driver::NetworkPort port{.network = request.network, .bridge = n.live->bridge.name, .mtu = n.live->mtu.value_or(0)};
    n.ports[request.domain + "/" + normalized_mac(request.mac)] = port;
    return port;
}

void NetworkDriver::unplug(std::string_view network, std::string_view domain, std::string_view mac) {
    std::lock_guard lk(impl_->mu);
    auto it = impl_->nets.find(network);
    if (it == impl_->nets.end()) return;
    it->second->ports.erase(fmt::format("{}/{}", domain, normalized_mac(mac)));
}

std::vector<driver::NetworkLease> NetworkDriver::leases_for(const std::vector<std::string>& macs) {
    std::vector<std::string> want;
    for (const auto& m : macs) want.push_back(normalized_mac(m));
    std::vector<NetworkDef> active;
    {
        std::lock_guard lk(impl_->mu);
        for (const auto& [name, n] : impl_->nets)
            if (n->live) active.push_back(*n->live);
    }
    std::vector<driver::NetworkLease> out;
    for (const auto& def : active) {
        auto leases = network::read_leases(impl_->dnsmasq_files(def.name).status);
        if (!leases) continue;
        for (const auto& l : *leases) {
            const std::string mac = normalized_mac(l.mac);
            if (std::find(want.begin(), want.end(), mac) == want.end()) continue;
            driver::NetworkLease lease{.network = def.name, .mac = mac, .ip = l.ip, .prefix = 0, .hostname = l.hostname,
                                       .expiry_time = l.expiry_time};
            if (auto addr = conf::IpAddr::parse(l.ip))
                for (const auto& ip : def.ips)
                    if (ip.is_v6() == addr->v6 && ip.address.contains(*addr, ip.prefix_length())) lease.prefix = ip.prefix_length();
            out.push_back(std::move(lease));
        }
    }
    return out;
}

}  // namespace vireo::netdrv
