// NetworkDriver: the virtual-network sub-driver, the local implementation
// of the network operations (driver/ops/network.hpp) with libvirt's
// semantics, over the host plumbing of src/network. install_network_ops()
// (netdrv_ops.hpp) serves it on a connection; the QEMU driver reaches it
// only through driver::NetworkPorts (driver/network_links.hpp).
//
// Objects as libvirt's network driver keeps them:
//   - persistent (a definition in <confdir>, maybe an autostart link) or
//     transient (net-create: only while it runs);
//   - active (running: its live definition recorded in <rundir>) or not;
//   - while active, the persistent definition (net-dumpxml --inactive) and
//     the live one (net-dumpxml) are apart: a redefinition or net-update
//     --config changes the first, net-update --live the second, and the
//     next net-start runs the persistent one;
//   - net-undefine of an active network leaves it running, transient; a
//     transient network is gone after net-destroy.
//
// Crash safety: every document goes through driver::ObjectStore (atomic
// writes and links). The host side (bridge, nftables table, dnsmasq) lives
// on without the daemon; open() finds what runs again and adopts it, never
// making a second one: find_host_network, the network's own firewall table
// replaced in one transaction (so never duplicated), dnsmasq only started
// when its pid file names no live instance. A network whose bridge is gone
// is started afresh; one that cannot be is marked inactive (logged).
// Firewall tables of vireo networks that are not active are removed.
//
// Locking: one mutex serialises the changes (define, start, destroy,
// update, ...): they check other networks (subnets, bridge names) and the
// host, which must not change under them. The objects themselves are under
// a second mutex held only briefly, so queries and NetworkPorts never wait
// behind a change that runs dnsmasq.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "driver/event_bus.hpp"
#include "driver/network_links.hpp"
#include "driver/network_types.hpp"
#include "util/error.hpp"

namespace vireo::netdrv {

struct NetworkDriverConfig {
    // Definitions: <confdir>/<name>.xml, autostart links in <confdir>/autostart/.
    std::filesystem::path confdir;
    // Live definitions of the active networks: <rundir>/<name>.xml.
    std::filesystem::path rundir;
    // dnsmasq's files (<name>.conf, .pid, .leases, .hostsfile, .addnhosts,
    // .status); made mode 0755: dnsmasq reads them after dropping root.
    std::filesystem::path state_dir;
    // vireo-lease-helper (dnsmasq's dhcp-script); empty: no lease helper.
    std::filesystem::path lease_helper;
    // dnsmasq; empty: found on PATH, /usr/sbin, /sbin.
    std::filesystem::path dnsmasq;
    // The system daemon: define, autostart and start libvirt's "default"
    // network (conf::kDefaultNetworkXml) once, when no network of that name
    // exists and the host allows it (root, virbr0 free, 192.168.122.0/24
    // unused); otherwise log why and skip. A marker file in <confdir>
    // remembers that it was made, so net-undefine default is for good.
    bool default_network = false;
    // Remove vireo's firewall tables and dnsmasq instances that belong to no
    // active network at open(). Off in tests that share the host's namespace.
    bool clean_orphans = true;
};

class NetworkDriver final : public driver::NetworkPorts {
public:
    // Loads the definitions, adopts the networks that were active, removes
    // orphans, starts the autostart networks and makes the default network.
    // Fails only when the directories cannot be used; a network that cannot
    // be adopted or started is logged and left inactive.
    static Result<std::unique_ptr<NetworkDriver>> open(NetworkDriverConfig config);
    ~NetworkDriver() override;
    NetworkDriver(const NetworkDriver&) = delete;
    NetworkDriver& operator=(const NetworkDriver&) = delete;

    // --- the network operations (driver/ops/network.hpp) ----------------------
    Result<std::vector<driver::NetworkSummary>> list();
    Result<driver::NetworkSummary> lookup(std::string_view ref);
    Result<std::string> xml(std::string_view ref, bool inactive);
    Result<driver::NetworkSummary> define(std::string_view xml);
    Result<driver::NetworkSummary> create(std::string_view xml);
    Status undefine(std::string_view ref);
    Status start(std::string_view ref);
    Status destroy(std::string_view ref);
    Status set_autostart(std::string_view ref, bool enabled);
    struct Update {
        driver::NetworkUpdateCommand command = driver::NetworkUpdateCommand::AddLast;
        driver::NetworkUpdateSection section = driver::NetworkUpdateSection::IpDhcpHost;
        std::string xml;
        std::uint64_t parent_index = driver::kAnyParentIndex;
        bool live = false;
        bool config = false;
    };
    Status update(std::string_view ref, const Update& u);
    Result<std::vector<driver::NetworkDhcpLease>> dhcp_leases(std::string_view ref, std::string_view mac);
    driver::NetworkEventBus& events();

    // --- driver::NetworkPorts (the QEMU driver's guest NICs) ----------------------
    Result<driver::NetworkPort> plug(const driver::NetworkPortRequest& request) override;
    void unplug(std::string_view network, std::string_view domain, std::string_view mac) override;
    std::vector<driver::NetworkLease> leases_for(const std::vector<std::string>& macs) override;

    struct Impl;

private:
    explicit NetworkDriver(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace vireo::netdrv
