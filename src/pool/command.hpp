// Running the host tools the fs and disk backends need (mkfs, mount, blkid,
// wipefs, parted): argv only, never a shell; output captured for messages.
#pragma once

#include <string>
#include <vector>

#include "util/error.hpp"

namespace vireo::pool {

struct CommandOutput {
    int exit_code = 0;
    std::string out;
    std::string err;
};

// Full path of a tool, searched in PATH and then /usr/sbin, /sbin; NotFound
// with "install <package>" in the message when it is missing.
Result<std::string> find_tool(const std::string& name, const std::string& package);

// Run argv[0] (a full path) and wait; the exit code is returned, not judged.
Result<CommandOutput> run_command(const std::vector<std::string>& argv);

// Run and require exit code 0; otherwise an OperationFailed error
// "<argv joined> failed: <stderr>".
Result<CommandOutput> run_checked(const std::vector<std::string>& argv);

}  // namespace vireo::pool
