// The virtual network procedures of libvirt's remote program (virsh net-*):
// each decodes its arguments, runs the network operation of the operation
// table the HTTP API runs for the same verb, and encodes the reply in the
// public protocol's layout (remote_nonnull_network = name, uuid). Network
// lifecycle events go out as REMOTE_PROC_NETWORK_EVENT_LIFECYCLE messages.
// Flags vireo has no meaning for are refused with "not supported".
#include <algorithm>
#include <array>

#include "rpc/handlers.hpp"
#include "rpc/storage.hpp"

namespace vireo::rpc {

namespace ops = driver::ops;
using driver::NetworkSummary;
using Call = Connection::Call;

namespace {

using namespace handlers;

struct NetworkRef {
    std::string name;
    Uuid uuid;
};

void put_network(XdrWriter& w, const std::string& name, const Uuid& uuid) {
    w.string(name);
    w.fixed_opaque(uuid.bytes);
}

Result<NetworkRef> get_network(XdrReader& r) {
    NetworkRef n;
    VIREO_RPC_GET(name, r.string());
    VIREO_RPC_GET(uuid, r.fixed_opaque(16));
    n.name = std::move(name);
    std::copy(uuid.begin(), uuid.end(), n.uuid.bytes.begin());
    return n;
}

std::string network_body(const NetworkSummary& n) {
    XdrWriter w;
    put_network(w, n.name, n.uuid);
    return w.take();
}

std::string string_body(const std::string& s) {
    XdrWriter w;
    w.string(s);
    return w.take();
}

Result<NetworkSummary> network_of(driver::Driver& d, const std::string& ref) {
    return d.call<ops::NetworkLookup>({.network = ref});
}

// --- listings -------------------------------------------------------------------------

bool network_matches(const NetworkSummary& n, std::uint32_t f) {
    using namespace net_flags;
    return keeps(f, Active, Inactive, n.active) && keeps(f, Persistent, Transient, n.persistent) &&
           keeps(f, Autostart, NoAutostart, n.autostart);
}

constexpr std::uint32_t kListFlags = net_flags::Inactive | net_flags::Active | net_flags::Persistent |
                                     net_flags::Transient | net_flags::Autostart | net_flags::NoAutostart;

Status list_all_networks(Connection& c, Call& call) {
    VIREO_RPC_GET(need_results, call.args.i32());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~kListFlags) return std::unexpected(unsupported_flags("listing networks", flags));
    return run<ops::NetworkList>(c, call, [need_results, flags](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(all, d.call<ops::NetworkList>({}));
        std::vector<const NetworkSummary*> hit;
        for (const auto& n : all)
            if (network_matches(n, flags)) hit.push_back(&n);
        return list_all_reply(need_results != 0, hit,
                              [](XdrWriter& w, const NetworkSummary& n) { put_network(w, n.name, n.uuid); });
    });
}

// The older listings: names (or a count) of the active or the inactive networks.
Status network_names(Connection& c, Call& call, bool want_active, bool count_only) {
    std::int32_t max = 0;
    if (!count_only) {
        VIREO_RPC_GET(m, call.args.i32());
        max = m;
    }
    return run<ops::NetworkList>(c, call, [=](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(all, d.call<ops::NetworkList>({}));
        std::vector<std::string> names;
        for (const auto& n : all)
            if (n.active == want_active) names.push_back(n.name);
        return names_reply(std::move(names), count_only, max);
    });
}
Status num_of_networks(Connection& c, Call& call) { return network_names(c, call, true, true); }
Status list_networks(Connection& c, Call& call) { return network_names(c, call, true, false); }
Status num_of_defined_networks(Connection& c, Call& call) { return network_names(c, call, false, true); }
Status list_defined_networks(Connection& c, Call& call) { return network_names(c, call, false, false); }

// --- lookups and queries ------------------------------------------------------------------

Status lookup_by_name(Connection& c, Call& call) {
    VIREO_RPC_GET(name, call.args.string());
    return run<ops::NetworkLookup>(c, call, [name](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(n, network_of(d, name));
        if (n.name != name) return fail(ErrorCode::NoNetwork, "Network not found: no network with matching name '{}'", name);
        return network_body(n);
    });
}

Status lookup_by_uuid(Connection& c, Call& call) {
    VIREO_RPC_GET(u, read_uuid(call.args));
    return run<ops::NetworkLookup>(c, call, [u](driver::Driver& d) -> Result<std::string> {
        auto n = network_of(d, u.str());
        if (!n && n.error().code != ErrorCode::NoNetwork) return std::unexpected(n.error());
        if (!n || n->uuid != u)
            return fail(ErrorCode::NoNetwork, "Network not found: no network with matching uuid '{}'", u.str());
        return network_body(*n);
    });
}

// A query answered from the network's summary.
template <class Encode>
Status network_query(Connection& c, Call& call, Encode encode) {
    VIREO_RPC_GET(net, get_network(call.args));
    return run<ops::NetworkLookup>(c, call, [ref = net.name, encode](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(n, network_of(d, ref));
        XdrWriter w;
        encode(w, n);
        return w.take();
    });
}
Status get_autostart(Connection& c, Call& call) {
    return network_query(c, call, [](XdrWriter& w, const NetworkSummary& n) { w.i32(n.autostart); });
}
Status is_active(Connection& c, Call& call) {
    return network_query(c, call, [](XdrWriter& w, const NetworkSummary& n) { w.i32(n.active); });
}
Status is_persistent(Connection& c, Call& call) {
    return network_query(c, call, [](XdrWriter& w, const NetworkSummary& n) { w.i32(n.persistent); });
}
Status get_bridge_name(Connection& c, Call& call) {
    return network_query(c, call, [](XdrWriter& w, const NetworkSummary& n) { w.string(n.bridge); });
}

Status get_xml_desc(Connection& c, Call& call) {
    VIREO_RPC_GET(net, get_network(call.args));
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~kNetXmlInactive) return std::unexpected(unsupported_flags("network XML", flags));
    ops::NetworkXml::Request req{.network = net.name, .inactive = (flags & kNetXmlInactive) != 0};
    return run<ops::NetworkXml>(c, call, [req](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(xml, d.call<ops::NetworkXml>(req));
        return string_body(xml);
    });
}

// remote_network_dhcp_lease: iface, expirytime (hyper), type (IPv4 0, IPv6
// 1), mac, iaid, ipaddr, prefix, hostname, clientid (the optional strings
// are absent when empty).
void put_lease(XdrWriter& w, const driver::NetworkDhcpLease& l) {
    auto opt = [&w](const std::string& s) { w.optional_string(s.empty() ? std::nullopt : std::optional(s)); };
    w.string(l.iface);
    w.i64(l.expiry_time);
    w.i32(l.ipv6 ? 1 : 0);
    opt(l.mac);
    opt(l.iaid);
    w.string(l.ip);
    w.u32(l.prefix);
    opt(l.hostname);
    opt(l.client_id);
}

Status get_dhcp_leases(Connection& c, Call& call) {
    VIREO_RPC_GET(net, get_network(call.args));
    VIREO_RPC_GET(mac, call.args.optional_string());
    VIREO_RPC_GET(need_results, call.args.i32());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags != 0) return std::unexpected(unsupported_flags("DHCP leases", flags));
    ops::NetworkDhcpLeases::Request req{.network = net.name, .mac = mac.value_or("")};
    return run<ops::NetworkDhcpLeases>(c, call, [req, need_results](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(leases, d.call<ops::NetworkDhcpLeases>(req));
        XdrWriter w;
        w.u32(need_results ? static_cast<std::uint32_t>(leases.size()) : 0);
        if (need_results)
            for (const auto& l : leases) put_lease(w, l);
        w.u32(static_cast<std::uint32_t>(leases.size()));
        return w.take();
    });
}

// --- definitions and lifecycle --------------------------------------------------------------

template <class Op>
Status from_xml(Connection& c, Call& call) {
    VIREO_RPC_GET(xml, call.args.string());
    return run<Op>(c, call, [xml](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(n, d.call<Op>({.xml = xml}));
        return network_body(n);
    });
}
Status define_xml(Connection& c, Call& call) { return from_xml<ops::NetworkDefine>(c, call); }
Status create_xml(Connection& c, Call& call) { return from_xml<ops::NetworkCreate>(c, call); }

// A call whose request is the network's name alone.
template <class Op>
Status network_void(Connection& c, Call& call) {
    VIREO_RPC_GET(net, get_network(call.args));
    typename Op::Request req{.network = net.name};
    return run<Op>(c, call, [req](driver::Driver& d) -> Result<std::string> {
        VIREO_TRY(d.call<Op>(req));
        return empty();
    });
}
Status create(Connection& c, Call& call) { return network_void<ops::NetworkStart>(c, call); }
Status destroy(Connection& c, Call& call) { return network_void<ops::NetworkDestroy>(c, call); }
Status undefine(Connection& c, Call& call) { return network_void<ops::NetworkUndefine>(c, call); }

Status set_autostart(Connection& c, Call& call) {
    VIREO_RPC_GET(net, get_network(call.args));
    VIREO_RPC_GET(on, call.args.i32());
    ops::NetworkSetAutostart::Request req{.network = net.name, .enabled = on != 0};
    return run_empty<ops::NetworkSetAutostart>(c, call, std::move(req));
}

// virNetworkUpdateCommand: 1 modify, 2 delete, 3 add-last, 4 add-first.
std::optional<driver::NetworkUpdateCommand> update_command(std::uint32_t n) {
    using C = driver::NetworkUpdateCommand;
    switch (n) {
        case 1: return C::Modify;
        case 2: return C::Delete;
        case 3: return C::AddLast;
        case 4: return C::AddFirst;
        default: return std::nullopt;
    }
}

// virNetworkUpdateSection: 1 bridge ... 12 dns-srv, vireo's order from 1.
std::optional<driver::NetworkUpdateSection> update_section(std::uint32_t n) {
    if (n < 1 || n > static_cast<std::uint32_t>(driver::NetworkUpdateSection::DnsSrv) + 1) return std::nullopt;
    return static_cast<driver::NetworkUpdateSection>(n - 1);
}

Status update(Connection& c, Call& call) {
    VIREO_RPC_GET(net, get_network(call.args));
    // libvirt's clients send the section in the first word and the command
    // in the second (the order of virNetworkUpdate's driver callback, not
    // of the struct's field names); virsh 9.0 observed doing so.
    VIREO_RPC_GET(section, call.args.u32());
    VIREO_RPC_GET(command, call.args.u32());
    VIREO_RPC_GET(parent_index, call.args.i32());
    VIREO_RPC_GET(xml, call.args.string());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~(kNetUpdateLive | kNetUpdateConfig)) return std::unexpected(unsupported_flags("net-update", flags));
    auto cmd = update_command(command);
    auto sec = update_section(section);
    if (!cmd || !sec) {
        return fail(ErrorCode::Unsupported, "net-update: command {} or section {} is not a known one", command,
                    section);
    }
    ops::NetworkUpdate::Request req{.network = net.name, .command = *cmd, .section = *sec, .xml = std::move(xml),
                                    .parent_index = parent_index < 0 ? driver::kAnyParentIndex
                                                                     : static_cast<std::uint64_t>(parent_index),
                                    .live = (flags & kNetUpdateLive) != 0,
                                    .config = (flags & kNetUpdateConfig) != 0};
    return run_empty<ops::NetworkUpdate>(c, call, std::move(req));
}

// --- events ---------------------------------------------------------------------------------

// REMOTE_PROC_NETWORK_EVENT_LIFECYCLE: callback id, network, event (vireo's
// NetworkEventType has libvirt's numbering), detail (always 0).
std::string encode_network_event(int callback_id, const driver::NetworkEvent& ev) {
    XdrWriter w;
    w.i32(callback_id);
    put_network(w, ev.network, ev.uuid);
    w.i32(static_cast<std::int32_t>(ev.type));
    w.i32(0);
    return w.take();
}

Status event_register(Connection& c, Call& call) {
    VIREO_RPC_GET(event_id, call.args.i32());
    VIREO_RPC_GET(has_net, call.args.boolean());
    std::optional<Uuid> only;
    if (has_net) {
        VIREO_RPC_GET(net, get_network(call.args));
        only = net.uuid;
    }
    if (event_id != kNetworkEventIdLifecycle) {
        c.reply_error(call.header, {static_cast<int>(ErrNum::NoSupport), kFromRemote,
                                    fmt::format("this function is not supported by the connection driver: "
                                                "network event {} (lifecycle events are served)",
                                                event_id)});
        return {};
    }
    auto id = c.register_callback([&d = c.driver(), only](int cb, const std::weak_ptr<Transport>& tx) {
        return d.call<ops::NetworkEvents>({.callback = [cb, only, tx](const driver::NetworkEvent& ev) {
            if (only && *only != ev.uuid) return;
            if (auto t = tx.lock())
                t->send(encode_packet(Header{kRemoteProgram, kProtocolVersion,
                                             static_cast<int>(Proc::NetworkEventLifecycle), MessageType::Message, 0,
                                             MessageStatus::Ok},
                                      encode_network_event(cb, ev)));
        }});
    });
    if (!id) c.reply_error(call.header, to_remote_error(id.error(), static_cast<int>(ops::LibvirtDomain::Network)));
    else c.reply(call.header, one_int(*id));
    return {};
}

Status event_deregister(Connection& c, Call& call) {
    VIREO_RPC_GET(id, call.args.i32());
    if (!c.deregister(id))
        c.reply_error(call.header, {static_cast<int>(ErrNum::InvalidArg), kFromRemote,
                                    fmt::format("invalid argument: callback {} is not registered", id)});
    else c.reply(call.header, empty());
    return {};
}

// --- the table --------------------------------------------------------------------------------

#define VIREO_OP(T) op_of(Tag<ops::T>{})

const std::array kNetworks = std::to_array<ProcDef>({
    {Proc::ConnectListAllNetworks, "connect_list_all_networks", VIREO_OP(NetworkList), list_all_networks},
    {Proc::ConnectNumOfNetworks, "connect_num_of_networks", VIREO_OP(NetworkList), num_of_networks},
    {Proc::ConnectListNetworks, "connect_list_networks", VIREO_OP(NetworkList), list_networks},
    {Proc::ConnectNumOfDefinedNetworks, "connect_num_of_defined_networks", VIREO_OP(NetworkList),
     num_of_defined_networks},
    {Proc::ConnectListDefinedNetworks, "connect_list_defined_networks", VIREO_OP(NetworkList), list_defined_networks},
    {Proc::NetworkLookupByName, "network_lookup_by_name", VIREO_OP(NetworkLookup), lookup_by_name},
    {Proc::NetworkLookupByUuid, "network_lookup_by_uuid", VIREO_OP(NetworkLookup), lookup_by_uuid},
    {Proc::NetworkGetAutostart, "network_get_autostart", VIREO_OP(NetworkLookup), get_autostart},
    {Proc::NetworkIsActive, "network_is_active", VIREO_OP(NetworkLookup), is_active},
    {Proc::NetworkIsPersistent, "network_is_persistent", VIREO_OP(NetworkLookup), is_persistent},
    {Proc::NetworkGetBridgeName, "network_get_bridge_name", VIREO_OP(NetworkLookup), get_bridge_name},
    {Proc::NetworkGetXmlDesc, "network_get_xml_desc", VIREO_OP(NetworkXml), get_xml_desc},
    {Proc::NetworkGetDhcpLeases, "network_get_dhcp_leases", VIREO_OP(NetworkDhcpLeases), get_dhcp_leases},
    {Proc::NetworkDefineXml, "network_define_xml", VIREO_OP(NetworkDefine), define_xml},
    {Proc::NetworkCreateXml, "network_create_xml", VIREO_OP(NetworkCreate), create_xml},
    {Proc::NetworkCreate, "network_create", VIREO_OP(NetworkStart), create},
    {Proc::NetworkDestroy, "network_destroy", VIREO_OP(NetworkDestroy), destroy},
    {Proc::NetworkUndefine, "network_undefine", VIREO_OP(NetworkUndefine), undefine},
    {Proc::NetworkSetAutostart, "network_set_autostart", VIREO_OP(NetworkSetAutostart), set_autostart},
    {Proc::NetworkUpdate, "network_update", VIREO_OP(NetworkUpdate), update},
    {Proc::ConnectNetworkEventRegisterAny, "connect_network_event_register_any", VIREO_OP(NetworkEvents),
     event_register},
    {Proc::ConnectNetworkEventDeregisterAny, "connect_network_event_deregister_any", nullptr, event_deregister},
});
#undef VIREO_OP

}  // namespace

std::span<const ProcDef> network_procedures() { return kNetworks; }

}  // namespace vireo::rpc
