#include "util/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "util/fd.hpp"

namespace vireo::files {

namespace fs = std::filesystem;

Result<std::string> read(const fs::path& path) {
    UniqueFd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (!fd) return fail_errno(fmt::format("cannot open '{}'", path.string()));
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno(fmt::format("cannot read '{}'", path.string()));
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

Status sync_dir(const fs::path& dir) {
    UniqueFd fd{::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (!fd) return fail_errno(fmt::format("cannot open directory '{}'", dir.string()));
    if (::fsync(fd.get()) != 0) return fail_errno(fmt::format("cannot sync directory '{}'", dir.string()));
    return {};
}

static Status write_all(int fd, std::string_view data, const fs::path& path) {
    if (!write_fully(fd, data.data(), data.size())) return fail_errno(fmt::format("cannot write '{}'", path.string()));
    return {};
}

namespace {

// Temp file, write, (fsync,) rename over `path`, (fsync the directory).
Status replace_file(const fs::path& path, std::string_view content, unsigned mode, bool durable) {
    const fs::path dir = path.parent_path();
    thread_local std::mt19937_64 rng{std::random_device{}()};
    // A name nobody uses: the pid tells apart forked children that
    // inherited this thread's generator; a clash that remains (a temp file
    // left by a kill -9 of a process that had this pid) tries the next name.
    fs::path tmp;
    UniqueFd fd;
    for (int attempt = 0; !fd; ++attempt) {
        tmp = dir / fmt::format(".{}.tmp{:x}-{:x}", path.filename().string(), ::getpid(), rng());
        fd = UniqueFd{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)};
        if (!fd && (errno != EEXIST || attempt == 8)) return fail_errno(fmt::format("cannot create '{}'", tmp.string()));
    }
    auto cleanup = [&] { ::unlink(tmp.c_str()); };
    if (auto st = write_all(fd.get(), content, tmp); !st) {
        cleanup();
        return st;
    }
    if (durable && ::fsync(fd.get()) != 0) {
        auto err = fail_errno(fmt::format("cannot sync '{}'", tmp.string()));
        cleanup();
        return err;
    }
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        auto err = fail_errno(fmt::format("cannot rename '{}' to '{}'", tmp.string(), path.string()));
        cleanup();
        return err;
    }
    return durable ? sync_dir(dir) : Status{};
}

}  // namespace

Status write_atomic(const fs::path& path, std::string_view content, unsigned mode) {
    return replace_file(path, content, mode, true);
}

Status write_replace(const fs::path& path, std::string_view content, unsigned mode) {
    return replace_file(path, content, mode, false);
}

Status remove_file(const fs::path& path) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno(fmt::format("cannot remove '{}'", path.string()));
    return {};
}

Status remove_durable(const fs::path& path) {
    if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) return {};  // nothing removed: nothing to sync
        return fail_errno(fmt::format("cannot remove '{}'", path.string()));
    }
    return sync_dir(path.parent_path());
}

Status make_dirs(const fs::path& path, unsigned mode) {
    if (path.empty()) return {};
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) return {};
        return fail(ErrorCode::System, "'{}' exists and is not a directory", path.string());
    }
    if (path.has_parent_path() && path.parent_path() != path) VIREO_TRY(make_dirs(path.parent_path(), mode));
    if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
        return fail_errno(fmt::format("cannot create directory '{}'", path.string()));
    return {};
}

bool is_safe_name(std::string_view name) {
    if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
    for (unsigned char c : name)
        if (c == '/' || c < 0x20 || c == 0x7f) return false;
    return true;
}

Result<bool> exists(const std::filesystem::path& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) return true;
    if (errno == ENOENT || errno == ENOTDIR) return false;
    return fail_errno(fmt::format("cannot check '{}'", path.string()));
}

Result<std::filesystem::path> absolute(const std::filesystem::path& path) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(path, ec);
    if (ec) return std::unexpected(Error{ErrorCode::Internal, fmt::format("cannot resolve '{}': {}", path.string(), ec.message())});
    return abs;
}

}  // namespace vireo::files
