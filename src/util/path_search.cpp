#include "util/path_search.hpp"

#include <unistd.h>

#include <cstdlib>

namespace vireo {

std::vector<std::string> path_dirs(std::vector<std::string> when_unset) {
    const char* path = std::getenv("PATH");
    if (!path) return when_unset;
    std::vector<std::string> dirs;
    std::string_view rest(path);
    while (!rest.empty()) {
        auto colon = rest.find(':');
        auto dir = rest.substr(0, colon);
        rest.remove_prefix(colon == std::string_view::npos ? rest.size() : colon + 1);
        if (!dir.empty()) dirs.emplace_back(dir);
    }
    return dirs;
}

std::optional<std::filesystem::path> find_executable(std::string_view name, const std::vector<std::string>& dirs) {
    for (const auto& dir : dirs) {
        if (dir.empty()) continue;
        std::filesystem::path candidate = std::filesystem::path(dir) / name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return std::nullopt;
}

}  // namespace vireo
