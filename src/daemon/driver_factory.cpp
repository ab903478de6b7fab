#include "daemon/driver_factory.hpp"

#include "testdrv/test_driver.hpp"
#include "qemu/qemu_conf.hpp"
#include "qemu/qemu_driver.hpp"

namespace vireo::daemon {

Result<std::unique_ptr<driver::Driver>> make_driver(std::string_view name, client::DaemonMode mode,
                                                    const DriverDirs& dirs) {
    const bool system = mode == client::DaemonMode::System;
    if (name == "test") return std::unique_ptr<driver::Driver>(std::make_unique<testdrv::TestDriver>(
        system ? "qemu:///system" : "qemu:///session"));
    if (name != "qemu") return fail(ErrorCode::InvalidArg, "unknown driver '{}' (known: qemu, test)", name);
    auto cfg = qemu::default_qemu_config(system);
    cfg.confdir = dirs.confdir;
    cfg.rundir = dirs.rundir;
    cfg.cachedir = dirs.cachedir;
    cfg.logdir = dirs.logdir;
    if (dirs.isolated) cfg.savedir.clear();  // <confdir>/save
    // Storage pools beside the domains: <confdir>/../storage, <rundir>/../storage.
    cfg.storage_confdir = dirs.confdir.parent_path() / "storage";
    cfg.storage_rundir = dirs.rundir.parent_path() / "storage";
    // Tests keep the default pool's images under their own directories too.
    if (dirs.isolated) cfg.default_pool_path = dirs.confdir.parent_path() / "images";
    // qemu.conf beside the definitions' directory: $XDG_CONFIG_HOME/vireo or
    // /etc/vireo (or the tests' config dir). A bad setting stops the daemon.
    if (auto conf = qemu::load_qemu_conf(dirs.confdir.parent_path() / "qemu.conf", cfg); !conf)
        return std::unexpected(conf.error().context("cannot start the QEMU driver"));
    auto d = qemu::make_qemu_driver(std::move(cfg));
    if (!d) return std::unexpected(d.error().context("cannot start the QEMU driver"));
    return std::unique_ptr<driver::Driver>(std::move(*d));
}

}  // namespace vireo::daemon
