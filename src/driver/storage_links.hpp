// The two narrow links between the domain half and the storage half of a
// connection, so that neither sub-driver knows the other's class:
//
//   VolumeResolver  what a hypervisor driver asks the storage pools when a
//                   domain with <disk type='volume'> starts (pool::PoolManager
//                   implements it; the QEMU driver holds a pointer to one);
//   DiskUsers       what the storage pools ask the hypervisor driver before
//                   deleting a volume or destroying a pool: which files and
//                   block devices the running domains use (the QEMU driver
//                   implements it; PoolManagerConfig::disk_users asks it).
//
// The daemon's driver factory (and the test driver) wire them together.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "driver/pool_types.hpp"
#include "util/error.hpp"

namespace vireo::driver {

class VolumeResolver {
public:
    virtual ~VolumeResolver() = default;
    // The volume's path, type and format (for the command line); errors name
    // the pool or volume ("storage pool 'x' is not active").
    virtual Result<VolumeSummary> resolve_volume(std::string_view pool, std::string_view vol) = 0;
};

// One disk of one running domain.
struct DiskUser {
    std::string domain;
    std::filesystem::path path;
};

class DiskUsers {
public:
    virtual ~DiskUsers() = default;
    // File and block disks of the running domains, volumes resolved to paths.
    virtual std::vector<DiskUser> disk_users() = 0;
};

}  // namespace vireo::driver
