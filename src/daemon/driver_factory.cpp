#include "daemon/driver_factory.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <optional>

#include <spdlog/spdlog.h>

#include "netdrv/netdrv_ops.hpp"
#include "pool/pool_manager.hpp"
#include "pool/pool_ops.hpp"
#include "qemu/qemu_conf.hpp"
#include "qemu/qemu_driver.hpp"
#include "testdrv/test_driver.hpp"

namespace vireo::daemon {

namespace fs = std::filesystem;

namespace {

// The default pool's directory: /var/lib/vireo/images (system),
// $XDG_DATA_HOME/vireo/images (session).
fs::path default_images_dir(bool system) {
    if (system) return "/var/lib/vireo/images";
    if (const char* data = std::getenv("XDG_DATA_HOME"); data && *data) return fs::path(data) / "vireo" / "images";
    std::string home;
    if (const char* h = std::getenv("HOME"); h && *h) home = h;
    if (home.empty())
        if (const passwd* pw = ::getpwuid(::getuid())) home = pw->pw_dir;
    return fs::path(home) / ".local/share/vireo/images";
}

// The pools ask the QEMU driver which disks its domains use; the driver is
// made after the pools (its autostart domains may need volumes), so the
// link is set once both exist.
class DiskUsersLink {
public:
    void bind(driver::DiskUsers* domains) {
        std::lock_guard lk(mutex_);
        domains_ = domains;
    }
    std::vector<driver::DiskUser> disk_users() {
        std::lock_guard lk(mutex_);
        return domains_ ? domains_->disk_users() : std::vector<driver::DiskUser>{};
    }

private:
    std::mutex mutex_;
    driver::DiskUsers* domains_ = nullptr;
};

// Storage pools beside the domains: definitions in <confdir>/../storage,
// the record of active pools in <rundir>/../storage.
pool::PoolManagerConfig pool_config(bool system, const DriverDirs& dirs) {
    pool::PoolManagerConfig pc;
    pc.confdir = dirs.confdir.parent_path() / "storage";
    pc.rundir = dirs.rundir.parent_path() / "storage";
    // Tests keep the default pool's images under their own directories too.
    pc.default_pool_path = dirs.isolated ? dirs.confdir.parent_path() / "images" : default_images_dir(system);
    return pc;
}

// vireo-lease-helper (dnsmasq's dhcp-script): beside vireod (the build
// tree), else in <prefix>/libexec/vireo; empty when neither has it.
fs::path lease_helper_path() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
    for (const fs::path& p : {exe.parent_path() / "vireo-lease-helper",
                              exe.parent_path().parent_path() / "libexec/vireo/vireo-lease-helper"})
        if (fs::exists(p, ec)) return p;
    return {};
}

// Why a session daemon has no networks: bridges, nftables rules and a
// DHCP server per network need root, as in libvirt, whose session daemon
// has no usable networks either.
Error session_has_no_networks() {
    return Error{ErrorCode::Unsupported,
                 "virtual networks and host interfaces are managed by the system daemon: connect to qemu:///system "
                 "(the session daemon cannot create bridges, firewall rules or DHCP servers)"};
}

// The system daemon's networks and host interfaces: definitions in
// <confdir>/../network and ../interface, live state in <rundir>/../network,
// dnsmasq's files in /var/lib/vireo/dnsmasq (tests: beside the run dir).
struct NetworkParts {
    std::shared_ptr<netdrv::NetworkDriver> networks;
    std::shared_ptr<netdrv::InterfaceDriver> interfaces;
    std::optional<Error> no_networks, no_interfaces;
};

NetworkParts open_network_parts(const DriverDirs& dirs) {
    NetworkParts parts;
    netdrv::NetworkDriverConfig nc;
    nc.confdir = dirs.confdir.parent_path() / "network";
    nc.rundir = dirs.rundir.parent_path() / "network";
    nc.state_dir = dirs.isolated ? dirs.rundir.parent_path() / "dnsmasq" : fs::path("/var/lib/vireo/dnsmasq");
    nc.lease_helper = lease_helper_path();
    if (nc.lease_helper.empty()) spdlog::warn("vireo-lease-helper not found beside vireod: DHCP leases will not be listed");
    nc.default_network = true;
    if (auto d = netdrv::NetworkDriver::open(std::move(nc)); d) {
        parts.networks = std::move(*d);
    } else {
        parts.no_networks = d.error().context("the virtual networks are unavailable");
        spdlog::error("{}", parts.no_networks->full_message());
    }
    netdrv::InterfaceDriverConfig ic;
    ic.confdir = dirs.confdir.parent_path() / "interface";
    ic.rundir = dirs.rundir.parent_path() / "interface";
    if (auto d = netdrv::InterfaceDriver::open(std::move(ic)); d) {
        parts.interfaces = std::move(*d);
    } else {
        parts.no_interfaces = d.error().context("the host interfaces are unavailable");
        spdlog::error("{}", parts.no_interfaces->full_message());
    }
    return parts;
}

void install_network_parts(driver::Driver& conn, const NetworkParts& parts) {
    netdrv::install_network_ops(conn, [raw = parts.networks.get(), why = parts.no_networks]() -> Result<netdrv::NetworkDriver*> {
        if (!raw) return std::unexpected(*why);
        return raw;
    });
    netdrv::install_interface_ops(conn, [raw = parts.interfaces.get(), why = parts.no_interfaces]() -> Result<netdrv::InterfaceDriver*> {
        if (!raw) return std::unexpected(*why);
        return raw;
    });
    if (parts.networks) conn.keep(parts.networks);
    if (parts.interfaces) conn.keep(parts.interfaces);
}

// One qemu:/// connection: the QEMU driver's host and domain operations, a
// PoolManager's pool and volume operations and (system daemon) the network
// driver's network and interface operations, linked through the narrow
// interfaces of driver/storage_links.hpp and driver/network_links.hpp; and
// one JobTracker for the domains and the pools, so that job.list and
// job.abort (installed by the QEMU driver) see domain and volume jobs alike.
Result<std::unique_ptr<driver::Driver>> make_qemu_connection(bool system, const DriverDirs& dirs) {
    auto cfg = qemu::default_qemu_config(system);
    cfg.confdir = dirs.confdir;
    cfg.rundir = dirs.rundir;
    cfg.cachedir = dirs.cachedir;
    cfg.logdir = dirs.logdir;
    if (dirs.isolated) {
        cfg.savedir.clear();     // <confdir>/save
        cfg.channeldir.clear();  // <rundir>/channel/target
        cfg.nvramdir.clear();    // <confdir>/nvram
        cfg.swtpmdir.clear();    // <confdir>/swtpm
    }
    // qemu.conf beside the definitions' directory: $XDG_CONFIG_HOME/vireo or
    // /etc/vireo (or the tests' config dir). A bad setting stops the daemon.
    if (auto conf = qemu::load_qemu_conf(dirs.confdir.parent_path() / "qemu.conf", cfg); !conf)
        return std::unexpected(conf.error().context("cannot start the QEMU driver"));

    auto jobs = std::make_shared<driver::JobTracker>();
    cfg.jobs = jobs;
    auto link = std::make_shared<DiskUsersLink>();
    auto pc = pool_config(system, dirs);
    pc.disk_users = [link] { return link->disk_users(); };
    pc.jobs = jobs;
    std::shared_ptr<pool::PoolManager> pools;
    std::optional<Error> no_pools;
    if (auto mgr = pool::PoolManager::open(std::move(pc)); mgr) {
        pools = std::move(*mgr);
        cfg.volumes = pools.get();
    } else {
        // Domains still work; every pool operation says why pools do not.
        no_pools = mgr.error().context("the storage pools are unavailable");
        spdlog::error("{}", no_pools->full_message());
    }

    // Networks before domains: an autostarted guest may need its network up.
    NetworkParts nets;
    if (system) nets = open_network_parts(dirs);
    // The guests' NICs reach the networks through driver::NetworkPorts
    // (driver/network_links.hpp); a session daemon has none, and its guests
    // are refused <interface type='network'> naming the interface. The
    // network driver is kept by the connection after the QEMU driver's
    // state is gone (install_network_parts), so the pointer outlives it.
    cfg.networks = nets.networks.get();

    auto qemu = qemu::make_qemu_driver(std::move(cfg));
    if (!qemu) return std::unexpected(qemu.error().context("cannot start the QEMU driver"));
    link->bind(qemu->get());
    pool::install_pool_ops(**qemu, [raw = pools.get(), no_pools]() -> Result<pool::PoolManager*> {
        if (!raw) return std::unexpected(*no_pools);
        return raw;
    });
    if (system) install_network_parts(**qemu, nets);
    else netdrv::install_no_network_ops(**qemu, session_has_no_networks());
    // Destroyed with the connection, after the QEMU driver's own state.
    if (pools) (*qemu)->keep(std::move(pools));
    return std::unique_ptr<driver::Driver>(std::move(*qemu));
}

}  // namespace

Result<std::unique_ptr<driver::Driver>> make_driver(std::string_view name, client::DaemonMode mode,
                                                    const DriverDirs& dirs) {
    const bool system = mode == client::DaemonMode::System;
    if (name == "test")
        return std::unique_ptr<driver::Driver>(
            std::make_unique<testdrv::TestDriver>(system ? "qemu:///system" : "qemu:///session"));
    if (name != "qemu") return fail(ErrorCode::InvalidArg, "unknown driver '{}' (known: qemu, test)", name);
    return make_qemu_connection(system, dirs);
}

}  // namespace vireo::daemon
