// PoolManager: the storage sub-driver, the local implementation of the pool
// and volume operations (driver/ops/pool.hpp, volume.hpp). It keeps pool
// definitions (libvirt pool XML) like domain definitions are kept, runs each
// pool through its backend (dir, fs, disk; see backend.hpp) and does volume
// work with the image engine (src/storage). install_pool_ops() (pool_ops.hpp)
// serves its methods on a connection.
//
// Used inside vireod beside the QEMU driver (persistent, under <confdir>) and
// by the test:///default driver (in memory, confdir empty).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "driver/job.hpp"
#include "driver/pool_types.hpp"
#include "driver/storage_links.hpp"
#include "util/error.hpp"

namespace vireo::pool {

// One disk of one running domain, as the owner of the domains reports it
// (driver::DiskUsers): used to refuse deleting a volume or destroying a pool
// that is in use.
using DiskUser = driver::DiskUser;

struct PoolManagerConfig {
    // Pool definitions: <confdir>/<name>.xml, autostart links in
    // <confdir>/autostart/. Empty: nothing is persisted (test driver).
    std::filesystem::path confdir;
    // Which pools are active, so a daemon restart finds them again. Empty: none.
    std::filesystem::path rundir;
    // The pool every connection has (libvirt's "default"): a dir pool at
    // default_pool_path, defined, started and set to autostart when no pool
    // of that name exists. Empty path: no default pool.
    std::string default_pool_name = "default";
    std::filesystem::path default_pool_path;
    // Disks of the running domains; may be empty (no domains).
    std::function<std::vector<DiskUser>()> disk_users;
    // Where the async jobs of volume work (clone, upload, download, wipe)
    // are listed, to be watched and aborted (driver/job.hpp). Empty: the
    // manager keeps its own (see PoolManager::jobs()).
    std::shared_ptr<driver::JobTracker> jobs;
};

class PoolManager final : public driver::VolumeResolver {
public:
    // Loads the definitions, re-activates pools that were active, starts the
    // autostart pools and creates the default pool when configured.
    static Result<std::unique_ptr<PoolManager>> open(PoolManagerConfig config);
    ~PoolManager() override;

    // For domain start (<disk type='volume'>): the volume's path, type and
    // format; errors name the pool or volume ("storage pool 'x' is not active").
    Result<driver::VolumeSummary> resolve_volume(std::string_view pool, std::string_view vol) override;

    // The async jobs of volume work in progress: each clone (vol-clone,
    // vol-create-from), upload, download and wipe runs as one, with its
    // phase and bytes done; AsyncJob::request_abort() stops it (a clone's
    // half-made target volume is removed).
    driver::JobTracker& jobs();

    // The pool and volume operations (see driver/pool_api.hpp)
    Result<std::vector<driver::PoolSummary>> list_pools();
    Result<driver::PoolSummary> lookup_pool(std::string_view ref);
    Result<std::string> pool_xml(std::string_view ref, bool inactive);
    Result<driver::PoolSummary> define_pool(std::string_view xml);
    Status undefine_pool(std::string_view ref);
    Result<driver::PoolSummary> create_pool(std::string_view xml, bool build, driver::PoolBuildFlags flags);
    Status build_pool(std::string_view ref, driver::PoolBuildFlags flags);
    Status start_pool(std::string_view ref, bool build, driver::PoolBuildFlags flags);
    Status destroy_pool(std::string_view ref);
    Status delete_pool(std::string_view ref);
    Status set_pool_autostart(std::string_view ref, bool enabled);
    Status refresh_pool(std::string_view ref);
    Result<std::vector<driver::VolumeSummary>> list_volumes(std::string_view pool);
    Result<driver::VolumeSummary> lookup_volume(std::string_view pool, std::string_view vol);
    Result<std::string> volume_xml(std::string_view pool, std::string_view vol);
    Result<driver::VolumeSummary> create_volume(std::string_view pool, std::string_view xml,
                                                driver::VolumeCreateFlags flags);
    Result<driver::VolumeSummary> create_volume_from(std::string_view pool, std::string_view xml,
                                                     std::string_view src_pool, std::string_view src_vol,
                                                     driver::VolumeCreateFlags flags);
    Status delete_volume(std::string_view pool, std::string_view vol);
    Status wipe_volume(std::string_view pool, std::string_view vol, driver::WipeAlgorithm algorithm);
    Status resize_volume(std::string_view pool, std::string_view vol, std::uint64_t capacity,
                         driver::VolumeResizeFlags flags);
    Status download_volume(std::string_view pool, std::string_view vol, driver::TransferRange range,
                           const driver::StreamSink& sink);
    Status upload_volume(std::string_view pool, std::string_view vol, driver::TransferRange range,
                         const driver::StreamSource& source);

private:
    struct Impl;
    explicit PoolManager(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace vireo::pool
