#include "netdrv/netdrv_ops.hpp"

#include <memory>

namespace vireo::netdrv {

namespace {

namespace ops = driver::ops;

template <class Op, class Source, class F>
void serve(driver::Driver& conn, const Source& source, F fn) {
    conn.on<Op>([source, fn](const typename Op::Request& r) -> Result<typename Op::Reply> {
        auto d = source();
        if (!d) return std::unexpected(d.error());
        return fn(**d, r);
    });
}

}  // namespace

void install_network_ops(driver::Driver& c, const NetworkDriverSource& s) {
    using N = NetworkDriver;
    serve<ops::NetworkList>(c, s, [](N& d, const auto&) { return d.list(); });
    serve<ops::NetworkDefine>(c, s, [](N& d, const auto& r) { return d.define(r.xml); });
    serve<ops::NetworkCreate>(c, s, [](N& d, const auto& r) { return d.create(r.xml); });
    serve<ops::NetworkLookup>(c, s, [](N& d, const auto& r) { return d.lookup(r.network); });
    serve<ops::NetworkUndefine>(c, s, [](N& d, const auto& r) { return d.undefine(r.network); });
    serve<ops::NetworkXml>(c, s, [](N& d, const auto& r) { return d.xml(r.network, r.inactive); });
    serve<ops::NetworkStart>(c, s, [](N& d, const auto& r) { return d.start(r.network); });
    serve<ops::NetworkDestroy>(c, s, [](N& d, const auto& r) { return d.destroy(r.network); });
    serve<ops::NetworkSetAutostart>(c, s, [](N& d, const auto& r) { return d.set_autostart(r.network, r.enabled); });
    serve<ops::NetworkUpdate>(c, s, [](N& d, const auto& r) {
        return d.update(r.network, {.command = r.command,
                                    .section = r.section,
                                    .xml = r.xml,
                                    .parent_index = r.parent_index,
                                    .live = r.live,
                                    .config = r.config});
    });
    serve<ops::NetworkDhcpLeases>(c, s, [](N& d, const auto& r) { return d.dhcp_leases(r.network, r.mac); });
    serve<ops::NetworkEvents>(c, s, [](N& d, const auto& r) -> Result<std::unique_ptr<driver::Subscription>> {
        return d.events().subscribe(r.callback);
    });
}

void install_interface_ops(driver::Driver& c, const InterfaceDriverSource& s) {
    using I = InterfaceDriver;
    serve<ops::InterfaceList>(c, s, [](I& d, const auto&) { return d.list(); });
    serve<ops::InterfaceDefine>(c, s, [](I& d, const auto& r) { return d.define(r.xml); });
    serve<ops::InterfaceLookup>(c, s, [](I& d, const auto& r) { return d.lookup(r.iface); });
    serve<ops::InterfaceUndefine>(c, s, [](I& d, const auto& r) { return d.undefine(r.iface); });
    serve<ops::InterfaceXml>(c, s, [](I& d, const auto& r) { return d.xml(r.iface, r.inactive); });
    serve<ops::InterfaceStart>(c, s, [](I& d, const auto& r) { return d.start(r.iface); });
    serve<ops::InterfaceDestroy>(c, s, [](I& d, const auto& r) { return d.destroy(r.iface); });
    serve<ops::InterfaceBridge>(c, s, [](I& d, const auto& r) { return d.bridge(r.iface, r.bridge, r.stp, r.delay, r.no_start); });
    serve<ops::InterfaceUnbridge>(c, s, [](I& d, const auto& r) { return d.unbridge(r.iface, r.no_start); });
}

void install_no_network_ops(driver::Driver& c, const Error& why) {
    NetworkDriverSource none = [why]() -> Result<NetworkDriver*> { return std::unexpected(why); };
    InterfaceDriverSource no_ifaces = [why]() -> Result<InterfaceDriver*> { return std::unexpected(why); };
    install_network_ops(c, none);
    install_interface_ops(c, no_ifaces);
    c.on<ops::NetworkList>([](const auto&) -> Result<std::vector<driver::NetworkSummary>> { return std::vector<driver::NetworkSummary>{}; });
    auto bus = std::make_shared<driver::NetworkEventBus>();  // never publishes
    c.on<ops::NetworkEvents>([bus](const ops::NetworkEvents::Request& r) -> Result<std::unique_ptr<driver::Subscription>> {
        return bus->subscribe(r.callback);
    });
    c.keep(bus);
}

}  // namespace vireo::netdrv
