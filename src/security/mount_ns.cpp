#include "security/mount_ns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace vireo::security {

namespace {

bool is_path_start(const std::string& arg, std::size_t pos) {
    if (pos == 0) return true;
    const char c = arg[pos - 1];
    return c == '=' || c == ':' || c == '"' || (c == ',' && (pos < 2 || arg[pos - 2] != ','));
}

// The path starting at `pos`: up to a lone ',', a '"' or the end; ",," is
// QEMU's escaped comma.
std::string path_at(const std::string& arg, std::size_t pos) {
    std::string out;
    for (std::size_t i = pos; i < arg.size(); ++i) {
        const char c = arg[i];
        if (c == '"') break;
        if (c == ',') {
            if (i + 1 < arg.size() && arg[i + 1] == ',') {
                out += ',';
                ++i;
                continue;
            }
            break;
        }
        out += c;
    }
    while (out.size() > 1 && out.back() == '/') out.pop_back();
    return out;
}

bool under(std::string_view path, std::string_view root) { return path.starts_with(root) && path.size() > root.size(); }

}  // namespace

std::vector<std::string> basic_dev_entries() {
    return {"/dev/full", "/dev/null", "/dev/ptmx", "/dev/pts", "/dev/random", "/dev/urandom", "/dev/zero"};
}

std::vector<std::string> paths_named(const std::vector<std::string>& argv, std::string_view root) {
    std::vector<std::string> out;
    for (const auto& arg : argv) {
        std::size_t pos = 0;
        while ((pos = arg.find(root, pos)) != std::string::npos) {
            if (is_path_start(arg, pos)) {
                std::string p = path_at(arg, pos);
                if (under(p, root)) out.push_back(std::move(p));
            }
            pos += root.size();
        }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::vector<std::string> dev_entries(const std::vector<std::string>& argv, bool kvm, bool tun) {
    std::vector<std::string> out = basic_dev_entries();
    if (kvm) out.emplace_back("/dev/kvm");
    if (tun) out.emplace_back("/dev/net/tun");
    for (auto& p : paths_named(argv, "/dev/"))
        if (!p.starts_with("/dev/pts/") && !p.starts_with("/dev/fdset/")) out.push_back(std::move(p));
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::vector<std::string> tmp_entries(const std::vector<std::string>& argv) {
    std::vector<std::string> out;
    for (const auto& p : paths_named(argv, "/tmp/")) {
        const auto slash = p.find('/', 5);
        out.push_back(p.substr(0, slash));
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

Result<MountSetup> MountSetup::prepare(const std::vector<std::string>& dev, const std::vector<std::string>& tmp) {
    MountSetup s;
    auto add = [&](std::string path, std::string_view root, bool optional) -> Status {
        struct stat st{};
        // A named path that does not exist yet (a file QEMU makes in a
        // hugepage directory): its existing parent below the root.
        while (::stat(path.c_str(), &st) != 0) {
            const int err = errno;
            const auto slash = path.rfind('/');
            if (err != ENOENT || optional || slash == std::string::npos || slash <= root.size() - 1)
                return optional && err == ENOENT
                           ? Status{}
                           : std::unexpected(errno_error(fmt::format("private {}: cannot use '{}'", root, path), err));
            path.resize(slash);
        }
        for (const auto& e : s.entries_)
            if (e.path == path) return {};
        Entry e;
        e.path = path;
        for (auto slash = path.find('/', root.size()); slash != std::string::npos; slash = path.find('/', slash + 1))
            e.parents.push_back(path.substr(0, slash));
        e.node = S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode);
        e.dir = S_ISDIR(st.st_mode);
        e.mode = st.st_mode;
        e.rdev = st.st_rdev;
        e.uid = st.st_uid;
        e.gid = st.st_gid;
        e.what = fmt::format("{} {}", e.node ? "make the node" : "bind-mount", path);
        s.entries_.push_back(std::move(e));
        return {};
    };
    for (const auto& p : dev) {
        if (!under(p, "/dev/")) return fail(ErrorCode::InvalidArg, "'{}' is not below /dev", p);
        VIREO_TRY(add(p, "/dev/", p == "/dev/kvm" || p == "/dev/net/tun"));
    }
    for (const auto& p : tmp) {
        if (!under(p, "/tmp/") || p.find('/', 5) != std::string::npos)
            return fail(ErrorCode::InvalidArg, "'{}' is not an entry of /tmp", p);
        VIREO_TRY(add(p, "/tmp/", false));
    }
    s.fds_.assign(s.entries_.size(), -1);
    s.proc_path_.assign(64, '\0');
    return s;
}

std::vector<std::string> MountSetup::dev_paths() const {
    std::vector<std::string> out;
    for (const auto& e : entries_)
        if (e.path.starts_with("/dev/")) out.push_back(e.path);
    return out;
}

int MountSetup::enter(const char** step) const {
    auto failed = [&](const char* what) {
        *step = what;
        return errno != 0 ? errno : EINVAL;
    };
    if (::unshare(CLONE_NEWNS) != 0) return failed("unshare the mount namespace");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) return failed("make / a slave mount");
    // The host's entries, held before the tmpfs mounts cover them.
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        if (entries_[i].node) continue;
        fds_[i] = ::open(entries_[i].path.c_str(), O_PATH | O_CLOEXEC);
        if (fds_[i] < 0) return failed(entries_[i].what.c_str());
    }
    if (::mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=1m") != 0)
        return failed("mount a tmpfs on /dev");
    if (::mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0)
        return failed("mount a tmpfs on /tmp");
    const mode_t old_umask = ::umask(0);
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        const Entry& e = entries_[i];
        for (const auto& dir : e.parents)
            if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return failed(e.what.c_str());
        if (e.node) {
            if (::mknod(e.path.c_str(), e.mode, e.rdev) != 0 || ::chown(e.path.c_str(), e.uid, e.gid) != 0)
                return failed(e.what.c_str());
            continue;
        }
        if (e.dir) {
            if (::mkdir(e.path.c_str(), 0755) != 0 && errno != EEXIST) return failed(e.what.c_str());
        } else {
            const int fd = ::open(e.path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
            if (fd < 0) return failed(e.what.c_str());
            ::close(fd);
        }
        // "/proc/self/fd/<n>": the held entry, by its descriptor.
        char* p = proc_path_.data();
        const char prefix[] = "/proc/self/fd/";
        std::size_t n = 0;
        for (; prefix[n] != '\0'; ++n) p[n] = prefix[n];
        char digits[16];
        int k = 0;
        for (int v = fds_[i]; v > 0 || k == 0; v /= 10) digits[k++] = static_cast<char>('0' + v % 10);
        while (k > 0) p[n++] = digits[--k];
        p[n] = '\0';
        if (::mount(p, e.path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) return failed(e.what.c_str());
    }
    for (int& fd : fds_)
        if (fd >= 0) {
            ::close(fd);
            fd = -1;
        }
    if ((::mkdir("/dev/shm", 01777) != 0 && errno != EEXIST) ||
        ::mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0)
        return failed("mount a tmpfs on /dev/shm");
    if (::symlink("/proc/self/fd", "/dev/fd") != 0 || ::symlink("/proc/self/fd/0", "/dev/stdin") != 0 ||
        ::symlink("/proc/self/fd/1", "/dev/stdout") != 0 || ::symlink("/proc/self/fd/2", "/dev/stderr") != 0)
        return failed("make the /dev/fd links");
    ::umask(old_umask);
    return 0;
}

}  // namespace vireo::security
