// DirBackend: a pool that is a directory of raw/qcow2 image files.
#include "pool/file_backend.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include <fmt/format.h>

#include "storage/image.hpp"
#include "util/fd.hpp"
#include "util/files.hpp"

namespace vireo::pool {

namespace fs = std::filesystem;

namespace {

std::uint32_t be32(const unsigned char* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
std::uint64_t be64(const unsigned char* p) { return (std::uint64_t{be32(p)} << 32) | be32(p + 4); }

constexpr std::uint32_t kBackingFormatExt = 0xE2792ACA;

// Fill the qcow2 fields of `v` from the header bytes `h` (n valid bytes).
void parse_qcow2_header(int fd, const unsigned char* h, std::size_t n, VolumeDef& v) {
    v.format = "qcow2";
    std::uint32_t version = be32(h + 4);
    v.compat = version >= 3 ? "1.1" : "0.10";
    std::uint32_t cluster_bits = be32(h + 20);
    if (cluster_bits >= 9 && cluster_bits <= 21) v.cluster_size = 1u << cluster_bits;
    v.capacity = be64(h + 24);
    std::size_t ext_start = 72;
    if (version >= 3 && n >= 104) {
        v.lazy_refcounts = (be64(h + 80) & 1) != 0;
        ext_start = be32(h + 100);
    }
    // header extensions: the backing format
    for (std::size_t off = ext_start; off + 8 <= n;) {
        std::uint32_t type = be32(h + off), len = be32(h + off + 4);
        if (type == 0) break;
        if (type == kBackingFormatExt && off + 8 + len <= n) v.backing_format.assign(reinterpret_cast<const char*>(h + off + 8), len);
        off += 8 + ((len + 7) & ~7u);
    }
    std::uint64_t bf_off = be64(h + 8);
    std::uint32_t bf_len = be32(h + 16);
    if (bf_off != 0 && bf_len > 0 && bf_len <= 4096) {
        std::string name(bf_len, '\0');
        if (bf_off + bf_len <= n) {
            std::memcpy(name.data(), h + bf_off, bf_len);
        } else if (::pread(fd, name.data(), bf_len, static_cast<off_t>(bf_off)) != static_cast<ssize_t>(bf_len)) {
            return;
        }
        v.backing_path = name;
    }
}

}  // namespace

Result<VolumeDef> probe_volume_file(const fs::path& path, const std::string& name) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd) {
        if (errno == ENOENT) return fail(ErrorCode::NoVolume, "storage volume '{}' not found: '{}' does not exist", name, path.string());
        return fail_errno(fmt::format("cannot open volume '{}'", path.string()));
    }
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) return fail_errno(fmt::format("cannot stat '{}'", path.string()));
    VolumeDef v;
    v.name = name;
    v.path = path.string();
    v.key = v.path;
    v.perms.mode = st.st_mode & 07777;
    v.perms.owner = static_cast<long>(st.st_uid);
    v.perms.group = static_cast<long>(st.st_gid);
    if (S_ISDIR(st.st_mode)) {
        v.type = driver::VolumeType::Dir;
        v.format = "dir";
        v.capacity = v.allocation = static_cast<std::uint64_t>(st.st_blocks) * 512;
        return v;
    }
    if (!S_ISREG(st.st_mode)) return fail(ErrorCode::Unsupported, "'{}' is not a regular file", path.string());
    v.type = driver::VolumeType::File;
    v.physical = static_cast<std::uint64_t>(st.st_size);
    v.allocation = static_cast<std::uint64_t>(st.st_blocks) * 512;
    std::array<unsigned char, 4096> head{};
    ssize_t n = ::pread(fd.get(), head.data(), head.size(), 0);
    if (n >= 32 && std::memcmp(head.data(), "QFI\xfb", 4) == 0) {
        parse_qcow2_header(fd.get(), head.data(), static_cast<std::size_t>(n), v);
        if (!v.backing_path.empty() && v.backing_path[0] != '/')
            v.backing_path = storage::resolve_backing_path(path, v.backing_path).string();
    } else {
        v.format = "raw";
        v.capacity = v.physical;
    }
    return v;
}

namespace {

// <features><cow state=.../>: the btrfs no-copy-on-write flag of the target
// directory (new files inherit it); any other file system cannot have it
// controlled, which is an error as in libvirt.
Status set_copy_on_write(const std::string& path, const std::string& state) {
    if (state.empty()) return {};
    struct statfs sfs{};
    if (::statfs(path.c_str(), &sfs) != 0) return fail_errno(fmt::format("cannot statfs '{}'", path));
    constexpr long kBtrfsMagic = 0x9123683E;
    if (static_cast<long>(sfs.f_type) != kBtrfsMagic)
        return fail(ErrorCode::Unsupported, "unable to control the COW flag of '{}': it is not on a btrfs file system", path);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return fail_errno(fmt::format("cannot open '{}'", path));
    int flags = 0;
    if (::ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) != 0) return fail_errno(fmt::format("cannot read the flags of '{}'", path));
    flags = state == "no" ? (flags | FS_NOCOW_FL) : (flags & ~FS_NOCOW_FL);
    if (::ioctl(fd.get(), FS_IOC_SETFLAGS, &flags) != 0) return fail_errno(fmt::format("cannot set the COW flag of '{}'", path));
    return {};
}

}  // namespace

Status DirBackend::make_target_dir(const PoolDef& def) {
    const unsigned mode = def.target_perms.mode.value_or(0755);
    VIREO_TRY(files::make_dirs(def.target_path, mode));
    VIREO_TRY(set_copy_on_write(def.target_path, def.features_cow));
    if (::chmod(def.target_path.c_str(), mode) != 0) return fail_errno(fmt::format("cannot set mode of '{}'", def.target_path));
    long uid = def.target_perms.owner.value_or(-1), gid = def.target_perms.group.value_or(-1);
    if ((uid != -1 || gid != -1) &&
        ::chown(def.target_path.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0)
        return fail_errno(fmt::format("cannot set owner of '{}'", def.target_path));
    return {};
}

Status DirBackend::build(const PoolDef& def, const driver::PoolBuildFlags&) { return make_target_dir(def); }

Status DirBackend::start(const PoolDef& def) {
    struct stat st{};
    if (::stat(def.target_path.c_str(), &st) != 0) {
        if (errno == ENOENT)
            return fail(ErrorCode::NotFound, "target directory '{}' does not exist; build the pool first (pool-build {})",
                        def.target_path, def.name);
        return fail_errno(fmt::format("cannot access target directory '{}'", def.target_path));
    }
    if (!S_ISDIR(st.st_mode)) return fail(ErrorCode::InvalidArg, "target path '{}' is not a directory", def.target_path);
    return {};
}

Status DirBackend::stop(const PoolDef&) { return {}; }

Status DirBackend::remove(const PoolDef& def) {
    if (::rmdir(def.target_path.c_str()) != 0 && errno != ENOENT) {
        if (errno == ENOTEMPTY || errno == EEXIST)
            return fail(ErrorCode::InvalidState, "cannot delete pool '{}': target directory '{}' is not empty (delete its volumes first)",
                        def.name, def.target_path);
        return fail_errno(fmt::format("cannot remove '{}'", def.target_path));
    }
    return {};
}

bool DirBackend::still_active(const PoolDef& def) {
    struct stat st{};
    return ::stat(def.target_path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<PoolSizes> DirBackend::sizes(const PoolDef& def) {
    struct statvfs sv{};
    if (::statvfs(def.target_path.c_str(), &sv) != 0) return fail_errno(fmt::format("cannot statvfs '{}'", def.target_path));
    PoolSizes s;
    s.capacity = static_cast<std::uint64_t>(sv.f_blocks) * sv.f_frsize;
    s.available = static_cast<std::uint64_t>(sv.f_bavail) * sv.f_frsize;
    s.allocation = static_cast<std::uint64_t>(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
    return s;
}

Result<std::vector<VolumeDef>> DirBackend::scan(const PoolDef& def) {
    DIR* d = ::opendir(def.target_path.c_str());
    if (!d) return fail_errno(fmt::format("cannot read directory '{}'", def.target_path));
    std::vector<VolumeDef> out;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        // dot files: ".", "..", our own temporary files, "lost+found" style dirs
        if (name.empty() || name[0] == '.' || name == "lost+found") continue;
        if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN && e->d_type != DT_DIR && e->d_type != DT_LNK) continue;
        auto v = probe_volume_file(fs::path(def.target_path) / name, name);
        if (v) out.push_back(std::move(*v));  // vanished or unreadable entries are not volumes
    }
    ::closedir(d);
    return out;
}

Result<VolumeDef> DirBackend::stat_volume(const PoolDef& def, const VolumeDef& vol) {
    return probe_volume_file(fs::path(def.target_path) / vol.name, vol.name);
}

Result<VolumeDef> DirBackend::create_volume(const PoolDef& def, const VolumeCreateRequest& req) {
    const VolumeDef& v = req.def;
    const fs::path path = fs::path(def.target_path) / v.name;
    {
        // O_EXCL: never truncate a file that is there (created behind our back)
        UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, v.perms.mode.value_or(0600)));
        if (!fd) {
            if (errno == EEXIST) return fail(ErrorCode::Exists, "storage volume '{}' already exists: '{}' is there", v.name, path.string());
            return fail_errno(fmt::format("cannot create '{}'", path.string()));
        }
    }
    auto cleanup_on_error = [&](const Error& e) -> Result<VolumeDef> {
        ::unlink(path.c_str());
        return std::unexpected(e.context(fmt::format("failed to create volume '{}'", v.name)));
    };
    auto format = storage::parse_format(v.format);
    if (!format) return cleanup_on_error(format.error());
    const std::uint64_t capacity = v.capacity.value_or(0);
    const std::uint64_t allocation = v.allocation.value_or(0);
    storage::CreateOptions opts;
    opts.format = *format;
    opts.size = capacity;
    if (*format == storage::ImageFormat::Qcow2) {
        opts.version = v.compat == "0.10" ? 2 : 3;
        if (v.cluster_size) opts.cluster_size = *v.cluster_size;
        opts.lazy_refcounts = v.lazy_refcounts;
        opts.backing_file = v.backing_path;
        opts.backing_format = v.backing_format;
        if (req.flags.prealloc_metadata) opts.prealloc = storage::Preallocation::Metadata;
        else if (allocation >= capacity && capacity > 0 && v.backing_path.empty()) opts.prealloc = storage::Preallocation::Falloc;
    } else if (allocation >= capacity && capacity > 0) {
        opts.prealloc = storage::Preallocation::Falloc;
    }
    if (auto st = storage::create_image(path, opts); !st) return cleanup_on_error(st.error());
    // raw with 0 < allocation < capacity: allocate the first `allocation` bytes, as libvirt
    if (*format == storage::ImageFormat::Raw && allocation > 0 && allocation < capacity) {
        UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
        if (!fd || ::fallocate(fd.get(), 0, 0, static_cast<off_t>(allocation)) != 0)
            return cleanup_on_error(errno_error(fmt::format("cannot allocate {} bytes in '{}'", allocation, path.string()), errno));
    }
    if (v.perms.mode && ::chmod(path.c_str(), *v.perms.mode) != 0)
        return cleanup_on_error(errno_error(fmt::format("cannot set mode of '{}'", path.string()), errno));
    long uid = v.perms.owner.value_or(-1), gid = v.perms.group.value_or(-1);
    if ((uid != -1 || gid != -1) && ::chown(path.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0)
        return cleanup_on_error(errno_error(fmt::format("cannot set owner of '{}'", path.string()), errno));
    return probe_volume_file(path, v.name);
}

Status DirBackend::delete_volume(const PoolDef&, const VolumeDef& vol) {
    if (vol.type == driver::VolumeType::Dir) {
        if (::rmdir(vol.path.c_str()) != 0) return fail_errno(fmt::format("cannot remove directory '{}'", vol.path));
        return {};
    }
    return files::remove_durable(vol.path);
}

Status DirBackend::resize_volume(const PoolDef&, const VolumeDef& vol, std::uint64_t capacity,
                                 const driver::VolumeResizeFlags& flags) {
    if (vol.type != driver::VolumeType::File) return fail(ErrorCode::Unsupported, "volume '{}' is not a file and cannot be resized", vol.name);
    auto fmt_r = storage::parse_format(vol.format);
    if (!fmt_r) return std::unexpected(fmt_r.error());
    auto img = storage::open_image(vol.path, {.format = *fmt_r, .writable = true, .open_backing = false, .whole_sectors = false});
    if (!img) return std::unexpected(img.error());
    VIREO_TRY((*img)->resize(capacity, flags.shrink,
                             flags.allocate ? storage::Preallocation::Falloc : storage::Preallocation::Off));
    return (*img)->close();
}

std::unique_ptr<Backend> make_dir_backend() { return std::make_unique<DirBackend>(); }

}  // namespace vireo::pool
