// The driver vireod serves, by name ("qemu" or "test").
#pragma once

#include <memory>
#include <string_view>

#include "daemon/daemon.hpp"
#include "driver/driver.hpp"
#include "util/error.hpp"

namespace vireo::daemon {

struct DriverDirs {
    std::filesystem::path confdir;   // persistent definitions
    std::filesystem::path rundir;    // runtime status
    std::filesystem::path cachedir;  // caches
    std::filesystem::path logdir;    // per-domain logs
    bool isolated = false;           // keep every file under the dirs above (tests)
};

Result<std::unique_ptr<driver::Driver>> make_driver(std::string_view name, client::DaemonMode mode,
                                                    const DriverDirs& dirs);

}  // namespace vireo::daemon
