#include "daemon/driver_factory.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include <spdlog/spdlog.h>

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

// One qemu:/// connection: the QEMU driver's host and domain operations and
// a PoolManager's pool and volume operations, linked through the narrow
// interfaces of driver/storage_links.hpp, and one JobTracker for both, so
// that job.list and job.abort (installed by the QEMU driver) see the domain
// jobs and the volume jobs alike.
Result<std::unique_ptr<driver::Driver>> make_qemu_connection(bool system, const DriverDirs& dirs) {
    auto cfg = qemu::default_qemu_config(system);
    cfg.confdir = dirs.confdir;
    cfg.rundir = dirs.rundir;
    cfg.cachedir = dirs.cachedir;
    cfg.logdir = dirs.logdir;
    if (dirs.isolated) cfg.savedir.clear();  // <confdir>/save
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

    auto qemu = qemu::make_qemu_driver(std::move(cfg));
    if (!qemu) return std::unexpected(qemu.error().context("cannot start the QEMU driver"));
    link->bind(qemu->get());
    pool::install_pool_ops(**qemu, [raw = pools.get(), no_pools]() -> Result<pool::PoolManager*> {
        if (!raw) return std::unexpected(*no_pools);
        return raw;
    });
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
