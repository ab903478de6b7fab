// Looking programs up the way a shell does: the directories of $PATH in
// order, the first executable of that name wins.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vireo {

// The directories of $PATH in order, empty entries skipped (never the
// current directory); `when_unset` if PATH is not set at all.
std::vector<std::string> path_dirs(std::vector<std::string> when_unset = {});

// The first <dir>/<name> in `dirs` that is executable (access X_OK).
std::optional<std::filesystem::path> find_executable(std::string_view name, const std::vector<std::string>& dirs);

}  // namespace vireo
