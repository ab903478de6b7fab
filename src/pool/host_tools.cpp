#include "pool/host_tools.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "pool/command.hpp"

namespace vireo::pool {

Result<std::string> probe_signature(const std::string& device, const std::string& tag) {
    auto blkid = find_tool("blkid", "util-linux");
    if (!blkid) return std::unexpected(blkid.error());
    auto r = run_command({*blkid, "-p", "-o", "value", "-s", tag, device});
    if (!r) return std::unexpected(r.error());
    // exit 2: nothing found; other non-zero: could not probe
    if (r->exit_code == 2) return std::string();
    if (r->exit_code != 0)
        return fail(ErrorCode::OperationFailed, "cannot probe '{}' with blkid (exit {}): {}", device, r->exit_code, r->err);
    std::string v = r->out;
    while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
    return v;
}

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mount_path(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            int v = 0;
            bool ok = true;
            for (std::size_t k = 1; k <= 3; ++k) {
                char c = s[i + k];
                if (c < '0' || c > '7') ok = false;
                v = v * 8 + (c - '0');
            }
            if (ok) {
                out += static_cast<char>(v);
                i += 3;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

}  // namespace

bool is_mount_point(const std::string& dir) {
    std::error_code ec;
    auto canon = std::filesystem::weakly_canonical(dir, ec);
    const std::string want = ec ? dir : canon.string();
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string id, parent, devno, root, mount_point;
        if (!(fields >> id >> parent >> devno >> root >> mount_point)) continue;
        if (unescape_mount_path(mount_point) == want) return true;
    }
    return false;
}

}  // namespace vireo::pool
