// A domain's disks as virsh's domblkstat, domblkinfo and blockresize see
// them: QEMU's counters and sizes of a running domain (query-blockstats,
// query-block, block_resize), the image itself for a shut-off one
// (domblkinfo, through vireo's image code).
//
// Sizes as libvirt's virDomainBlockInfo defines them: capacity is what the
// guest sees; for a file, allocation and physical are both the host storage
// it occupies (du); for a block device, physical is the device's size and
// allocation the highest offset QEMU wrote into it (a qcow2 on an LV),
// else the device's size.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "qemu/disk_lookup.hpp"
#include "qemu/qemu_driver_impl.hpp"
#include "storage/image.hpp"

namespace vireo::qemu {

const conf::Disk* find_disk_by_name(const conf::DomainDef& def, std::string_view name) {
    for (const auto& d : def.devices.disks)
        if (d.target_dev == name) return &d;
    for (const auto& d : def.devices.disks)
        if ((!d.source.file.empty() && d.source.file == name) || (!d.source.dev.empty() && d.source.dev == name)) return &d;
    return nullptr;
}

namespace {

// The entry of the device with alias `alias` (its own QOM path or one below it).
const BlockStatsInfo* stats_of(const std::vector<BlockStatsInfo>& all, std::string_view alias) {
    const std::string prefix = "/machine/peripheral/" + std::string(alias);
    for (const auto& s : all)
        if (s.qdev == prefix || s.qdev.starts_with(prefix + "/")) return &s;
    return nullptr;
}

Error no_source(std::string_view name) {
    return Error{ErrorCode::InvalidArg,
                 fmt::format("invalid argument: disk '{}' does not currently have a source assigned", name)};
}

// The host side of a disk's image: a regular file's storage in use (du)
// or a block device's size.
struct HostSize {
    bool block = false;
    std::uint64_t bytes = 0;
};

Result<HostSize> host_size(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return fail(ErrorCode::NotFound, "cannot stat file '{}': {}", path, std::strerror(errno));
    if (!S_ISBLK(st.st_mode)) return HostSize{false, static_cast<std::uint64_t>(st.st_blocks) * 512};
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(ErrorCode::System, "cannot open block device '{}': {}", path, std::strerror(errno));
    const off_t end = ::lseek(fd, 0, SEEK_END);
    const int saved = errno;
    ::close(fd);
    if (end < 0) return fail(ErrorCode::System, "cannot find the size of block device '{}': {}", path, std::strerror(saved));
    return HostSize{true, static_cast<std::uint64_t>(end)};
}

}  // namespace

Result<driver::BlockStats> QemuDriverImpl::block_stats(std::string_view ref, std::string_view device) {
    auto obj = registry.resolve(ref);
    if (!obj) return std::unexpected(obj.error());
    auto run = running(**obj);
    if (!run) return std::unexpected(run.error());
    const conf::Disk* disk = nullptr;
    if (!device.empty()) {
        disk = find_disk_by_name(*run->def, device);
        if (!disk) return fail(ErrorCode::InvalidArg, "invalid argument: invalid path: {}", device);
    }
    auto all = run->priv->monitor->query_blockstats();
    if (!all) return std::unexpected(command_error(**obj, run->priv, all.error()));
    driver::BlockStats out;
    auto add = [&](const BlockStatsInfo& s) {
        out.rd_req += s.rd_operations;
        out.rd_bytes += s.rd_bytes;
        out.wr_req += s.wr_operations;
        out.wr_bytes += s.wr_bytes;
        out.flush_operations += s.flush_operations;
        out.rd_total_times += s.rd_total_time_ns;
        out.wr_total_times += s.wr_total_time_ns;
        out.flush_total_times += s.flush_total_time_ns;
    };
    if (disk) {
        const BlockStatsInfo* s = stats_of(*all, disk->info.alias);
        if (!s)
            return fail(ErrorCode::OperationFailed, "QEMU has no statistics for disk '{}' (device '{}')", disk->target_dev,
                        disk->info.alias);
        out.device = disk->target_dev;
        add(*s);
        return out;
    }
    for (const auto& d : run->def->devices.disks)
        if (const BlockStatsInfo* s = stats_of(*all, d.info.alias)) add(*s);
    return out;
}

Result<driver::BlockInfo> QemuDriverImpl::block_info(std::string_view ref, std::string_view device) {
    auto obj = registry.resolve(ref);
    if (!obj) return std::unexpected(obj.error());
    const driver::DomainSnapshot snap = (*obj)->snapshot();
    auto unknown = [&] {
        return fail(ErrorCode::InvalidArg, "invalid argument: invalid path {} not assigned to domain", device);
    };
    if (snap.active()) {
        auto run = running(**obj);
        if (!run) return std::unexpected(run.error());
        const conf::Disk* disk = find_disk_by_name(*run->def, device);
        if (!disk) return unknown();
        if (disk->source.empty()) return std::unexpected(no_source(device));
        auto blocks = run->priv->monitor->query_block();
        if (!blocks) return std::unexpected(command_error(**obj, run->priv, blocks.error()));
        const BlockDeviceInfo* b = block_of(*blocks, disk->info.alias);
        if (!b) return std::unexpected(no_source(device));
        driver::BlockInfo out{disk->target_dev, b->virtual_size, 0, 0};
        const std::string path = !disk->source.dev.empty() ? disk->source.dev : !disk->source.file.empty() ? disk->source.file : b->file;
        auto host = host_size(path);
        if (!host) return std::unexpected(host.error());
        if (!host->block) {
            out.allocation = out.physical = b->actual_size.value_or(host->bytes);
            return out;
        }
        out.physical = host->bytes;
        out.allocation = host->bytes;
        if (b->format != "raw") {  // a qcow2 on a device: how far QEMU has written into it
            auto stats = run->priv->monitor->query_blockstats();
            if (!stats) return std::unexpected(command_error(**obj, run->priv, stats.error()));
            if (const BlockStatsInfo* s = stats_of(*stats, disk->info.alias); s && s->file_wr_highest_offset.value_or(0) > 0)
                out.allocation = *s->file_wr_highest_offset;
        }
        return out;
    }
    // Shut off: the image itself, opened read-only and sharing (as -U).
    const conf::DomainDef& def = *snap.fields.current().def;
    const conf::Disk* found = find_disk_by_name(def, device);
    if (!found) return unknown();
    if (found->source.empty()) return std::unexpected(no_source(device));
    conf::DomainDef one = def;
    one.devices.disks = {*found};
    VIREO_TRY(resolve_volume_disks(one, nullptr));
    const conf::Disk& disk = one.devices.disks.front();
    if (disk.type == "network")
        return fail(ErrorCode::Unsupported, "disk '{}' is a network disk: its size is only known while the domain runs",
                    disk.target_dev);
    const std::string path = disk.type == "block" ? disk.source.dev : disk.source.file;
    storage::OpenOptions opts{.open_backing = false, .force_share = true, .no_io = true};
    if (!disk.driver_type.empty()) {
        auto format = storage::parse_driver(disk.driver_type);
        if (!format) return std::unexpected(format.error());
        opts.format = *format;
    }
    auto img = storage::open_image(path, opts);
    if (!img) return std::unexpected(img.error());
    auto info = (*img)->info();
    if (!info) return std::unexpected(info.error());
    auto host = host_size(path);
    if (!host) return std::unexpected(host.error());
    return driver::BlockInfo{disk.target_dev, info->virtual_size, host->bytes, host->bytes};
}

Status QemuDriverImpl::block_resize(std::string_view ref, std::string_view path, std::uint64_t bytes) {
    auto obj = registry.resolve(ref);
    if (!obj) return std::unexpected(obj.error());
    auto job = driver::acquire_job(*obj, "blockresize");
    if (!job) return std::unexpected(job.error());
    auto run = running(**obj);
    if (!run) return std::unexpected(run.error());
    const conf::Disk* disk = find_disk_by_name(*run->def, path);
    if (!disk) return fail(ErrorCode::InvalidArg, "invalid argument: disk '{}' was not found in the domain config", path);
    if (disk->source.empty()) return std::unexpected(no_source(path));
    if (disk->readonly || disk->device == "cdrom")
        return fail(ErrorCode::InvalidArg, "invalid argument: disk '{}' is read-only and cannot be resized", path);
    auto blocks = run->priv->monitor->query_block();
    if (!blocks) return std::unexpected(command_error(**obj, run->priv, blocks.error()));
    const BlockDeviceInfo* b = block_of(*blocks, disk->info.alias);
    if (!b) return std::unexpected(no_source(path));
    // qcow2 (and qed) count in 512-byte sectors: round up, as libvirt does.
    if (b->format == "qcow2" || b->format == "qed") {
        if (bytes > std::numeric_limits<std::uint64_t>::max() - 511) return fail(ErrorCode::InvalidArg, "invalid argument: size {} is too large", bytes);
        bytes = (bytes + 511) / 512 * 512;
    }
    if (auto st = run->priv->monitor->block_resize(b->node, bytes); !st)
        return std::unexpected(command_error(**obj, run->priv, st.error()));
    return {};
}

}  // namespace vireo::qemu
