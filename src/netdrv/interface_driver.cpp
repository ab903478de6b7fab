// InterfaceDriver (see interface_driver.hpp): host interfaces through netlink.
#include "netdrv/interface_driver.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "conf/interface.hpp"
#include "driver/object_store.hpp"
#include "network/netlink.hpp"
#include "util/files.hpp"

namespace vireo::netdrv {

namespace fs = std::filesystem;
using conf::InterfaceDef;
using network::LinkInfo;

namespace {

Error invalid(std::string what) { return Error{ErrorCode::InvalidState, "Requested operation is not valid: " + std::move(what)}; }

Error not_found(std::string_view ref) {
    return Error{ErrorCode::NotFound, fmt::format("Interface not found: couldn't find interface named '{}'", ref)};
}

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

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

std::string sysfs(const std::string& iface, std::string_view file) {
    auto text = files::read(fmt::format("/sys/class/net/{}/{}", iface, file));
    return text ? trimmed(*text) : std::string();
}

bool is_link_local(const conf::IpAddr& a) { return a.v6 && a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80; }

// The static addresses of a link (without IPv6 link-local ones), as protocols.
std::vector<conf::InterfaceProtocol> address_protocols(const std::vector<network::AddressInfo>& addrs, int index) {
    conf::InterfaceProtocol v4, v6;
    v4.family = "ipv4";
    v6.family = "ipv6";
    for (const auto& a : addrs) {
        if (a.index != index || is_link_local(a.address)) continue;
        (a.address.v6 ? v6 : v4).ips.push_back({a.address, a.prefix});
    }
    std::vector<conf::InterfaceProtocol> out;
    if (!v4.ips.empty()) out.push_back(std::move(v4));
    if (!v6.ips.empty()) out.push_back(std::move(v6));
    return out;
}

// A bare member (a bridge's port, a bond's slave) as the host has it.
InterfaceDef bare_member(const LinkInfo& l) {
    InterfaceDef m;
    m.type = "ethernet";
    m.name = l.name;
    m.mac = l.mac;
    m.link_state = l.running ? "up" : "down";
    return m;
}

// "10" and "eth0" of a VLAN device, from /proc/net/vlan/<name> (8021q).
void vlan_facts(InterfaceDef& d) {
    auto text = files::read(fmt::format("/proc/net/vlan/{}", d.name));
    if (!text) return;
    std::istringstream in(*text);
    std::string word;
    while (in >> word) {
        if (word == "VID:") in >> d.vlan_tag;
        else if (word == "Device:") in >> d.vlan_device;
    }
}

// The host's state of one link in interface XML.
InterfaceDef live_definition(const LinkInfo& link, const std::vector<LinkInfo>& links,
                             const std::vector<network::AddressInfo>& addrs) {
    InterfaceDef d;
    d.name = link.name;
    d.mac = link.mac;
    if (link.mtu) d.mtu = link.mtu;
    d.link_state = link.running ? "up" : "down";
    d.protocols = address_protocols(addrs, link.index);
    if (link.kind == "bridge" || link.kind == "bond") {
        d.type = link.kind;
        for (const auto& l : links)
            if (l.master == link.index) d.members.push_back(bare_member(l));
    } else if (link.kind == "vlan") {
        d.type = "vlan";
        vlan_facts(d);
    } else {
        d.type = "ethernet";
    }
    if (d.type == "bridge") {
        d.bridge_stp = sysfs(link.name, "bridge/stp_state") == "0" ? "off" : "on";
        // forward_delay is in hundredths of a second; the XML has seconds.
        const std::string cs = sysfs(link.name, "bridge/forward_delay");
        unsigned long v = 0;
        if (std::from_chars(cs.data(), cs.data() + cs.size(), v).ec == std::errc{})
            d.bridge_delay = v % 100 == 0 ? std::to_string(v / 100) : fmt::format("{}.{:02}", v / 100, v % 100);
    } else if (d.type == "bond") {
        const std::string mode = sysfs(link.name, "bonding/mode");  // "balance-rr 0"
        d.bond_mode = mode.substr(0, mode.find(' '));
        const std::string mii = sysfs(link.name, "bonding/miimon");
        unsigned freq = 0;
        if (std::from_chars(mii.data(), mii.data() + mii.size(), freq).ec == std::errc{} && freq > 0)
            d.miimon = InterfaceDef::Miimon{.freq = freq, .downdelay = {}, .updelay = {}, .carrier = {}};
    }
    return d;
}

driver::HostInterface summary(const std::string& name, const std::optional<conf::MacAddr>& mac, bool active) {
    return {.name = name, .mac = mac ? mac->str() : std::string(), .active = active};
}

std::optional<LinkInfo> link_named(const std::vector<LinkInfo>& links, std::string_view name) {
    for (const auto& l : links)
        if (l.name == name) return l;
    return std::nullopt;
}

// Seconds of a bridge delay ("0.01" -> 0, as the kernel counts whole
// hundredths but netlink takes seconds here).
unsigned long delay_seconds(const std::string& text) {
    double v = 0;
    if (std::from_chars(text.data(), text.data() + text.size(), v).ec != std::errc{}) return 0;
    return static_cast<unsigned long>(std::floor(v));
}

Status add_protocol_addresses(const InterfaceDef& def) {
    for (const auto& p : def.protocols)
        for (const auto& ip : p.ips)
            VIREO_TRY(network::add_address(def.name, ip.address, ip.prefix.value_or(ip.address.v6 ? 64 : 24)));
    return {};
}

// What vireo cannot do for a definition, refused before anything changes.
Status check_startable(const InterfaceDef& def) {
    for (const auto& p : def.protocols) {
        if (p.dhcp || p.autoconf)
            return fail(ErrorCode::Unsupported,
                        "cannot start interface '{}': {} on host interfaces is not supported by vireo; give static "
                        "<ip address prefix/> entries",
                        def.name, p.dhcp ? "DHCP" : "IPv6 autoconf");
        if (p.gateway)
            return fail(ErrorCode::Unsupported,
                        "cannot start interface '{}': <route gateway='{}'/> is not supported by vireo yet", def.name,
                        p.gateway->str());
    }
    if (def.type == "bond" && def.arpmon)
        return fail(ErrorCode::Unsupported, "cannot start interface '{}': <arpmon> is not supported by vireo", def.name);
    return {};
}

}  // namespace

struct InterfaceDriver::Impl {
    explicit Impl(InterfaceDriverConfig c) : cfg(std::move(c)), store(driver::ObjectKind::Interface, cfg.confdir, cfg.rundir) {}
    InterfaceDriverConfig cfg;
    driver::ObjectStore store;
    std::mutex mu;  // every call: definitions and the host's interfaces change together
    std::map<std::string, InterfaceDef, std::less<>> defs;

    const InterfaceDef* defined(std::string_view name) const {
        auto it = defs.find(name);
        return it == defs.end() ? nullptr : &it->second;
    }

    // The name `ref` stands for (a name, or a MAC), or NotFound.
    Result<std::string> resolve(std::string_view ref, const std::vector<LinkInfo>& links) const {
        if (defs.contains(ref) || link_named(links, ref)) return std::string(ref);
        if (auto mac = conf::MacAddr::parse(ref)) {
            for (const auto& l : links)
                if (l.master == 0 && l.mac && *l.mac == *mac) return l.name;
            for (const auto& [name, d] : defs)
                if (d.mac && *d.mac == *mac) return name;
        }
        return std::unexpected(not_found(ref));
    }

    Status save(const InterfaceDef& def) {
        VIREO_TRY(store.save_config(def.name, conf::format_interface_xml(def)));
        defs[def.name] = def;
        return {};
    }
    Status forget(const std::string& name) {
        VIREO_TRY(store.remove_config(name));
        defs.erase(name);
        return {};
    }

    Status bring_up(const InterfaceDef& def);
};

Status InterfaceDriver::Impl::bring_up(const InterfaceDef& def) {
    VIREO_TRY(check_startable(def));
    const std::string what = fmt::format("cannot start interface '{}'", def.name);
    auto existing = network::find_link(def.name);
    if (!existing) return std::unexpected(existing.error().context(what));
    Rollback undo;
    if (def.type == "ethernet") {
        if (!*existing)
            return fail(ErrorCode::OperationFailed, "{}: there is no such device on the host (an ethernet interface must exist)", what);
        if (def.mtu) VIREO_TRY(network::set_mtu(def.name, *def.mtu));
        if (def.mac) VIREO_TRY(network::set_mac(def.name, *def.mac));
    } else {
        if (*existing) return std::unexpected(invalid(fmt::format("interface '{}' is already active", def.name)));
        if (def.type == "bridge") {
            network::BridgeOptions o;
            o.stp = def.bridge_stp != "off";
            o.delay_seconds = delay_seconds(def.bridge_delay);
            o.mtu = def.mtu;
            o.mac = def.mac;
            VIREO_TRY(network::create_bridge(def.name, o));
        } else if (def.type == "vlan") {
            VIREO_TRY(network::create_vlan(def.name, def.vlan_device, def.vlan_tag));
        } else if (def.type == "bond") {
            std::optional<unsigned> miimon;
            if (def.miimon) miimon = def.miimon->freq;
            VIREO_TRY(network::create_bond(def.name, def.bond_mode, miimon));
        } else {
            return fail(ErrorCode::Unsupported, "{}: interface type '{}' is not supported", what, def.type);
        }
        undo.add([name = def.name] { (void)network::delete_link(name); });
        if (def.type != "bridge") {
            if (def.mtu) VIREO_TRY(network::set_mtu(def.name, *def.mtu));
            if (def.mac) VIREO_TRY(network::set_mac(def.name, *def.mac));
        }
        for (const auto& m : def.members) {
            auto port = network::find_link(m.name);
            if (!port) return std::unexpected(port.error().context(what));
            if (!*port)
                return fail(ErrorCode::OperationFailed, "{}: its {} '{}' does not exist", what,
                            def.type == "bond" ? "slave" : "port", m.name);
            if (def.type == "bond") VIREO_TRY(network::set_link_up(m.name, false));  // bonding takes only down slaves
            VIREO_TRY(network::set_master(m.name, def.name));
            undo.add([name = m.name] { (void)network::set_master(name, ""); });
            VIREO_TRY(network::set_link_up(m.name, true));
        }
    }
    VIREO_TRY(add_protocol_addresses(def));
    VIREO_TRY(network::set_link_up(def.name, true));
    undo.dismiss();
    return {};
}

InterfaceDriver::InterfaceDriver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
InterfaceDriver::~InterfaceDriver() = default;

Result<std::unique_ptr<InterfaceDriver>> InterfaceDriver::open(InterfaceDriverConfig config) {
    auto impl = std::make_unique<Impl>(std::move(config));
    VIREO_TRY(impl->store.prepare());
    for (const auto& skipped : impl->store.load_configs([&](driver::ObjectStore::Document& doc) -> Status {
             auto def = conf::parse_interface_xml(doc.text);
             if (!def) return std::unexpected(def.error());
             if (def->name != doc.name) return fail(ErrorCode::XmlError, "it defines interface '{}', not '{}'", def->name, doc.name);
             impl->defs[doc.name] = std::move(*def);
             return {};
         }))
        spdlog::warn("interface definition skipped: {}", skipped);
    return std::unique_ptr<InterfaceDriver>(new InterfaceDriver(std::move(impl)));
}

Result<std::vector<driver::HostInterface>> InterfaceDriver::list() {
    std::lock_guard lk(impl_->mu);
    auto links = network::list_links();
    if (!links) return std::unexpected(links.error());
    std::map<std::string, driver::HostInterface> out;
    for (const auto& l : *links)
        if (l.master == 0) out[l.name] = summary(l.name, l.mac, l.up);
    for (const auto& [name, d] : impl_->defs)
        if (!out.contains(name)) out[name] = summary(name, d.mac, false);
    std::vector<driver::HostInterface> v;
    for (auto& [name, s] : out) v.push_back(std::move(s));
    return v;
}

Result<driver::HostInterface> InterfaceDriver::lookup(std::string_view ref) {
    std::lock_guard lk(impl_->mu);
    auto links = network::list_links();
    if (!links) return std::unexpected(links.error());
    auto name = impl_->resolve(ref, *links);
    if (!name) return std::unexpected(name.error());
    if (auto l = link_named(*links, *name)) return summary(l->name, l->mac, l->up);
    return summary(*name, impl_->defined(*name)->mac, false);
}

Result<std::string> InterfaceDriver::xml(std::string_view ref, bool inactive) {
    std::lock_guard lk(impl_->mu);
    auto links = network::list_links();
    if (!links) return std::unexpected(links.error());
    auto name = impl_->resolve(ref, *links);
    if (!name) return std::unexpected(name.error());
    const InterfaceDef* def = impl_->defined(*name);
    auto link = link_named(*links, *name);
    if ((inactive && def) || !link) return conf::format_interface_xml(*def);
    auto addrs = network::list_addresses();
    if (!addrs) return std::unexpected(addrs.error());
    InterfaceDef live = live_definition(*link, *links, *addrs);
    if (def) live.start_mode = def->start_mode;
    return conf::format_interface_xml(live);
}

Result<driver::HostInterface> InterfaceDriver::define(std::string_view xml) {
    auto def = conf::parse_interface_xml(xml);
    if (!def) return std::unexpected(def.error());
    std::lock_guard lk(impl_->mu);
    VIREO_TRY(impl_->store.check_name(def->name));
    VIREO_TRY(impl_->save(*def));
    auto link = network::find_link(def->name);
    const bool up = link && *link && (*link)->up;
    return summary(def->name, def->mac, up);
}

Status InterfaceDriver::undefine(std::string_view ref) {
    std::lock_guard lk(impl_->mu);
    if (!impl_->defined(ref)) return std::unexpected(not_found(ref));
    return impl_->forget(std::string(ref));
}

Status InterfaceDriver::start(std::string_view ref) {
    std::lock_guard lk(impl_->mu);
    const InterfaceDef* def = impl_->defined(ref);
    if (!def) return std::unexpected(not_found(ref));
    return impl_->bring_up(*def);
}

Status InterfaceDriver::destroy(std::string_view ref) {
    std::lock_guard lk(impl_->mu);
    auto link = network::find_link(ref);
    if (!link) return std::unexpected(link.error());
    if (!*link) {
        if (!impl_->defined(ref)) return std::unexpected(not_found(ref));
        return std::unexpected(invalid(fmt::format("interface '{}' is not running", ref)));
    }
    const InterfaceDef* def = impl_->defined(ref);
    const std::string type = def ? def->type : ((*link)->kind == "bridge" || (*link)->kind == "vlan" || (*link)->kind == "bond")
                                                   ? (*link)->kind
                                                   : "ethernet";
    if (type != "ethernet") return network::delete_link(ref);
    if (def)
        for (const auto& p : def->protocols)
            for (const auto& ip : p.ips)
                (void)network::remove_address(def->name, ip.address, ip.prefix.value_or(ip.address.v6 ? 64 : 24));
    return network::set_link_up(ref, false);
}

Status InterfaceDriver::bridge(std::string_view iface, std::string_view bridge, bool stp, std::uint64_t delay, bool no_start) {
    std::lock_guard lk(impl_->mu);
    VIREO_TRY(impl_->store.check_name(bridge));
    const std::string what = fmt::format("cannot bridge interface '{}'", iface);
    auto links = network::list_links();
    if (!links) return std::unexpected(links.error());
    auto link = link_named(*links, iface);
    if (!link) return std::unexpected(not_found(iface));
    if (link->kind == "bridge") return fail(ErrorCode::InvalidArg, "{}: it is a bridge already", what);
    if (link->master != 0) return fail(ErrorCode::InvalidState, "{}: it is already attached to a bridge or bond", what);
    if (link_named(*links, bridge) || impl_->defined(bridge))
        return fail(ErrorCode::Exists, "{}: interface '{}' already exists", what, bridge);
    auto addrs = network::list_addresses();
    if (!addrs) return std::unexpected(addrs.error());

    // The bridge takes the interface's addresses (its definition's, else the
    // host's) and the interface becomes its bare port.
    const InterfaceDef* old = impl_->defined(iface);
    InterfaceDef br;
    br.type = "bridge";
    br.name = std::string(bridge);
    br.start_mode = "onboot";
    br.bridge_stp = stp ? "on" : "off";
    br.bridge_delay = std::to_string(delay);
    br.protocols = old ? old->protocols : address_protocols(*addrs, link->index);
    InterfaceDef port;
    port.type = "ethernet";
    port.name = std::string(iface);
    port.mac = old && old->mac ? old->mac : link->mac;
    br.members.push_back(port);
    if (!no_start) {
        VIREO_TRY(check_startable(br));
        Rollback undo;
        for (const auto& p : br.protocols)
            for (const auto& ip : p.ips) {
                const unsigned prefix = ip.prefix.value_or(ip.address.v6 ? 64 : 24);
                if (auto st = network::remove_address(port.name, ip.address, prefix); !st) continue;  // not there
                undo.add([name = port.name, ip, prefix] { (void)network::add_address(name, ip.address, prefix); });
            }
        VIREO_TRY(impl_->bring_up(br));
        undo.add([name = br.name] { (void)network::delete_link(name); });
        if (auto st = impl_->save(br); !st) return st;
        undo.dismiss();
    } else {
        VIREO_TRY(impl_->save(br));
    }
    if (old) {
        if (auto st = impl_->forget(port.name); !st) spdlog::warn("{}", st.error().full_message());
    }
    return {};
}

Result<std::string> InterfaceDriver::unbridge(std::string_view bridge, bool no_start) {
    std::lock_guard lk(impl_->mu);
    auto links = network::list_links();
    if (!links) return std::unexpected(links.error());
    auto addrs = network::list_addresses();
    if (!addrs) return std::unexpected(addrs.error());
    const InterfaceDef* defp = impl_->defined(bridge);
    auto link = link_named(*links, bridge);
    if (!defp && !link) return std::unexpected(not_found(bridge));
    const InterfaceDef br = defp ? *defp : live_definition(*link, *links, *addrs);
    if (br.type != "bridge") return fail(ErrorCode::InvalidArg, "interface '{}' is not a bridge", bridge);
    // The ports the host has, else the definition's.
    std::vector<InterfaceDef> ports = br.members;
    if (link) {
        ports.clear();
        for (const auto& l : *links)
            if (l.master == link->index) ports.push_back(bare_member(l));
    }
    if (ports.empty()) return fail(ErrorCode::InvalidState, "Bridge {} has no attached interface", bridge);
    if (ports.size() > 1) return fail(ErrorCode::InvalidState, "Bridge {} has more than one attached interface", bridge);
    InterfaceDef iface;
    iface.type = "ethernet";
    iface.name = ports.front().name;
    iface.start_mode = "onboot";
    iface.mac = ports.front().mac;
    iface.mtu = br.mtu;
    iface.protocols = link ? address_protocols(*addrs, link->index) : br.protocols;
    if (!no_start) VIREO_TRY(check_startable(iface));
    if (link) VIREO_TRY(network::delete_link(bridge));  // releases the port; its addresses go with it
    VIREO_TRY(impl_->save(iface));
    if (defp) VIREO_TRY(impl_->forget(std::string(bridge)));
    if (!no_start) VIREO_TRY(impl_->bring_up(iface));
    return iface.name;
}

}  // namespace vireo::netdrv
