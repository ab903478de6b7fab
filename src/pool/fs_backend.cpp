// FsBackend: a filesystem on a block device or image file, mounted on the
// target directory; volumes are files in it, as in a dir pool.
//   build   mkfs.<format> on the device, mkdir the target. A filesystem
//           already there is kept when it has the pool's type (refused with
//           --no-overwrite), refused when it has another; --overwrite formats.
//   start   mount the device on the target     stop   unmount it
//   delete  wipe the filesystem signature (wipefs)
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "pool/command.hpp"
#include "pool/file_backend.hpp"
#include "pool/host_tools.hpp"

namespace vireo::pool {

namespace {

class FsBackend final : public DirBackend {
public:
    [[nodiscard]] std::string_view type() const override { return "fs"; }

    [[nodiscard]] Status check_definition(const PoolDef& def) const override {
        if (def.devices.size() != 1) return fail(ErrorCode::XmlError, "fs pool '{}' needs one source device", def.name);
        return {};
    }

    Status build(const PoolDef& def, const driver::PoolBuildFlags& flags) override {
        const std::string& dev = def.devices[0];
        VIREO_TRY(check_device(dev));
        const std::string format = fs_format(def);
        if (format == "auto")
            return fail(ErrorCode::InvalidArg, "cannot build fs pool '{}' with format 'auto': name the filesystem in <format type='ext4'/>", def.name);
        auto existing = probe_signature(dev, "TYPE");
        if (!existing) return std::unexpected(existing.error());
        if (!existing->empty() && !flags.overwrite) {
            // Plain build keeps a filesystem of the right type (its data
            // too) and only makes the mount point; anything else is refused.
            if (*existing == format && !flags.no_overwrite) return make_target_dir(def);
            return fail(ErrorCode::InvalidState,
                        "device '{}' already has a {} filesystem; use --overwrite to format it as {} (its data is lost)", dev,
                        *existing, format);
        }
        auto mkfs = find_tool("mkfs." + format, format == "xfs" ? "xfsprogs" : format == "vfat" ? "dosfstools" : "e2fsprogs");
        if (!mkfs) return std::unexpected(mkfs.error());
        std::vector<std::string> argv{*mkfs};
        if (format.starts_with("ext")) argv.insert(argv.end(), {"-q", "-F"});
        else if (format == "xfs") argv.push_back("-f");
        argv.push_back(dev);
        VIREO_TRY(run_checked(argv));
        return make_target_dir(def);
    }

    Status start(const PoolDef& def) override {
        const std::string& dev = def.devices[0];
        VIREO_TRY(check_device(dev));
        VIREO_TRY(DirBackend::start(def));  // the target directory must exist
        if (is_mount_point(def.target_path)) return {};
        auto sig = probe_signature(dev, "TYPE");
        if (!sig) return std::unexpected(sig.error());
        if (sig->empty())
            return fail(ErrorCode::InvalidState, "device '{}' has no filesystem; build the pool first (pool-build {})", dev, def.name);
        const std::string format = fs_format(def);
        if (format != "auto" && *sig != format)
            return fail(ErrorCode::InvalidState, "device '{}' holds a {} filesystem, but the pool says {}", dev, *sig, format);
        auto mount = find_tool("mount", "mount");
        if (!mount) return std::unexpected(mount.error());
        std::vector<std::string> argv{*mount, "-t", *sig};
        struct stat st{};
        if (::stat(dev.c_str(), &st) == 0 && S_ISREG(st.st_mode)) argv.insert(argv.end(), {"-o", "loop"});
        argv.insert(argv.end(), {dev, def.target_path});
        VIREO_TRY(run_checked(argv));
        return {};
    }

    Status stop(const PoolDef& def) override {
        if (!is_mount_point(def.target_path)) return {};
        auto umount = find_tool("umount", "mount");
        if (!umount) return std::unexpected(umount.error());
        VIREO_TRY(run_checked({*umount, def.target_path}));
        return {};
    }

    Status remove(const PoolDef& def) override {
        if (is_mount_point(def.target_path))
            return fail(ErrorCode::InvalidState, "'{}' is still mounted", def.target_path);
        auto wipefs = find_tool("wipefs", "util-linux");
        if (!wipefs) return std::unexpected(wipefs.error());
        VIREO_TRY(run_checked({*wipefs, "-a", "-q", def.devices[0]}));
        // the (empty) mount point goes too, as libvirt's fs pool-delete
        if (::rmdir(def.target_path.c_str()) != 0 && errno != ENOENT)
            return std::unexpected(errno_error(fmt::format("cannot remove the mount point '{}'", def.target_path), errno));
        return {};
    }

    bool still_active(const PoolDef& def) override { return is_mount_point(def.target_path); }

private:
    static std::string fs_format(const PoolDef& def) { return def.source_format.empty() ? "auto" : def.source_format; }

    static Status check_device(const std::string& dev) {
        struct stat st{};
        if (::stat(dev.c_str(), &st) != 0) return std::unexpected(errno_error(fmt::format("source device '{}'", dev), errno));
        if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode))
            return fail(ErrorCode::InvalidArg, "source device '{}' is neither a block device nor an image file", dev);
        return {};
    }
};

}  // namespace

std::unique_ptr<Backend> make_fs_backend() { return std::make_unique<FsBackend>(); }

}  // namespace vireo::pool
