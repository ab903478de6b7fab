// DiskBackend: partitions on a whole disk, through its partition table.
//   build   write an empty label (parted mklabel gpt|msdos); refuses a disk
//           that has one unless overwrite
//   start   check the device and its label     stop   nothing to do
//   delete  wipe the partition table (wipefs)
// A volume is a partition; its name is the partition's device name
// (loop3p1, sdb2), its path /dev/<name>. Creating one adds a partition in
// the first free range that fits; the name must be the one it will get.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "pool/backend.hpp"
#include "pool/command.hpp"
#include "pool/host_tools.hpp"

namespace vireo::pool {

namespace {

constexpr std::uint64_t kAlign = 1u << 20;  // partitions start and end on 1 MiB boundaries
constexpr std::uint64_t kGptTail = 34ULL * 512;// the backup GPT at the end of the disk

struct Partition {
    unsigned number = 0;
    std::uint64_t start = 0;  // bytes
    std::uint64_t end = 0;    // bytes, inclusive
    std::string fs;
    std::string flags;
};

struct Table {
    std::uint64_t disk_size = 0;
    std::string label;  // gpt, msdos, unknown
    std::vector<Partition> parts;
    std::vector<FreeExtent> free;  // parted's free space, [start, end) in bytes
};

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

std::uint64_t bytes_field(const std::string& s) {
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') break;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v;
}

// The kernel name of the disk ("loop3"), following symlinks like /dev/disk/by-id/...
std::string kernel_name(const std::string& dev) {
    std::error_code ec;
    auto c = std::filesystem::canonical(dev, ec);
    return (ec ? std::filesystem::path(dev) : c).filename().string();
}

std::string partition_name(const std::string& disk, unsigned n) {
    const bool digit_end = !disk.empty() && disk.back() >= '0' && disk.back() <= '9';
    return fmt::format("{}{}{}", disk, digit_end ? "p" : "", n);
}

// parted's machine-readable listing of the disk, free space included:
//   BYT;
//   /dev/loop3:67108864B:loopback:512:512:gpt:Loopback device:;
//   1:17408B:1048575B:1031168B:free;
//   1:1048576B:9437183B:8388608B:ext4:primary:;
Result<Table> read_table(const std::string& dev) {
    auto parted = find_tool("parted", "parted");
    if (!parted) return std::unexpected(parted.error());
    auto r = run_checked({*parted, "-s", "-m", dev, "unit", "B", "print", "free"});
    if (!r) return std::unexpected(r.error());
    Table t;
    std::istringstream in(r->out);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == ';') line.pop_back();
        if (line.empty() || line == "BYT") continue;
        auto f = split(line, ':');
        if (n++ == 0 || f[0] == dev || f[0].starts_with("/")) {  // the disk line
            if (f.size() >= 6) {
                t.disk_size = bytes_field(f[1]);
                t.label = f[5];
            }
            continue;
        }
        if (f.size() < 5) continue;
        if (f[4] == "free") {  // its number field means nothing
            t.free.push_back({bytes_field(f[1]), bytes_field(f[2]) + 1});
            continue;
        }
        Partition p;
        p.number = static_cast<unsigned>(bytes_field(f[0]));
        p.start = bytes_field(f[1]);
        p.end = bytes_field(f[2]);
        p.fs = f[4];
        if (f.size() >= 7) p.flags = f[6];
        if (p.number > 0) t.parts.push_back(p);
    }
    std::sort(t.parts.begin(), t.parts.end(), [](const auto& a, const auto& b) { return a.start < b.start; });
    return t;
}

// libvirt's partition "format" from what parted reports.
std::string partition_format(const Partition& p) {
    if (p.flags.find("lvm") != std::string::npos) return "linux-lvm";
    if (p.flags.find("raid") != std::string::npos) return "linux-raid";
    if (p.fs.starts_with("linux-swap")) return "linux-swap";
    if (p.fs == "fat16" || p.fs == "fat32") return p.fs;
    if (p.fs.starts_with("ext") || p.fs == "xfs" || p.fs == "btrfs") return "linux";
    return "none";
}

std::uint64_t align_up(std::uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }
std::uint64_t align_down(std::uint64_t v) { return v / kAlign * kAlign; }

// Free ranges [start, end) usable for new partitions, aligned.
std::vector<std::pair<std::uint64_t, std::uint64_t>> free_ranges(const Table& t) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    const std::uint64_t last = align_down(t.disk_size - (t.label == "gpt" ? kGptTail : 0));
    std::uint64_t pos = kAlign;
    for (const auto& p : t.parts) {
        if (p.start > pos && align_down(p.start) > pos) out.emplace_back(pos, align_down(p.start));
        pos = std::max(pos, align_up(p.end + 1));
    }
    if (last > pos) out.emplace_back(pos, last);
    return out;
}

class DiskBackend final : public Backend {
public:
    [[nodiscard]] std::string_view type() const override { return "disk"; }
    [[nodiscard]] std::string_view default_volume_format() const override { return "none"; }
    [[nodiscard]] bool accepts_volume_format(std::string_view f) const override {
        return f == "none" || f == "linux" || f == "fat16" || f == "fat32" || f == "linux-swap";
    }
    [[nodiscard]] bool sparse_volumes() const override { return false; }

    [[nodiscard]] Status host_support() const override {
        auto parted = find_tool("parted", "parted");
        if (!parted) return std::unexpected(parted.error());
        return {};
    }

    Status build(const PoolDef& def, const driver::PoolBuildFlags& flags) override {
        const std::string& dev = def.devices[0];
        VIREO_TRY(check_block_device(dev));
        auto pt = probe_signature(dev, "PTTYPE");
        if (!pt) return std::unexpected(pt.error());
        auto fs_sig = probe_signature(dev, "TYPE");
        if (!fs_sig) return std::unexpected(fs_sig.error());
        if ((!pt->empty() || !fs_sig->empty()) && !flags.overwrite)
            return fail(ErrorCode::InvalidState,
                        "device '{}' already has a {}; use --overwrite to write a new partition table (its data is lost)", dev,
                        pt->empty() ? fmt::format("{} filesystem", *fs_sig) : fmt::format("{} partition table", *pt));
        auto parted = find_tool("parted", "parted");
        if (!parted) return std::unexpected(parted.error());
        VIREO_TRY(run_checked({*parted, "-s", dev, "mklabel", label_for(def)}));
        return {};
    }

    Status start(const PoolDef& def) override {
        const std::string& dev = def.devices[0];
        VIREO_TRY(check_block_device(dev));
        auto pt = probe_signature(dev, "PTTYPE");
        if (!pt) return std::unexpected(pt.error());
        if (pt->empty())
            return fail(ErrorCode::InvalidState, "device '{}' has no partition table; build the pool first (pool-build {})", dev, def.name);
        const std::string want = def.source_format.empty() || def.source_format == "unknown" ? "" : def.source_format;
        if (!want.empty() && *pt != want)
            return fail(ErrorCode::InvalidState, "device '{}' has a {} partition table, but the pool says {}", dev, *pt, want);
        return {};
    }

    Status stop(const PoolDef&) override { return {}; }

    Status remove(const PoolDef& def) override {
        auto wipefs = find_tool("wipefs", "util-linux");
        if (!wipefs) return std::unexpected(wipefs.error());
        VIREO_TRY(run_checked({*wipefs, "-a", "-q", def.devices[0]}));
        return {};
    }

    bool still_active(const PoolDef& def) override {
        struct stat st{};
        return ::stat(def.devices[0].c_str(), &st) == 0 && S_ISBLK(st.st_mode);
    }

    Result<PoolSizes> sizes(const PoolDef& def) override {
        auto t = read_table(def.devices[0]);
        if (!t) return std::unexpected(t.error());
        PoolSizes s;
        s.capacity = t->disk_size;
        for (const auto& p : t->parts) s.allocation += p.end + 1 - p.start;
        for (const auto& [a, b] : free_ranges(*t)) s.available = std::max(s.available, b - a);
        s.free_extents = t->free;
        return s;
    }

    Result<std::vector<VolumeDef>> scan(const PoolDef& def) override {
        auto t = read_table(def.devices[0]);
        if (!t) return std::unexpected(t.error());
        std::vector<VolumeDef> out;
        const std::string disk = kernel_name(def.devices[0]);
        for (const auto& p : t->parts) {
            out.push_back(volume_of(disk, p));
            out.back().source_device = def.devices[0];
        }
        return out;
    }

    Result<VolumeDef> stat_volume(const PoolDef& def, const VolumeDef& vol) override {
        auto all = scan(def);
        if (!all) return std::unexpected(all.error());
        for (auto& v : *all)
            if (v.name == vol.name) return v;
        return fail(ErrorCode::NoVolume, "partition '{}' no longer exists on '{}'", vol.name, def.devices[0]);
    }

    Result<VolumeDef> create_volume(const PoolDef& def, const VolumeCreateRequest& req) override {
        const std::string& dev = def.devices[0];
        const VolumeDef& v = req.def;
        if (!v.backing_path.empty()) return fail(ErrorCode::Unsupported, "partitions cannot have a backing volume");
        auto t = read_table(dev);
        if (!t) return std::unexpected(t.error());
        unsigned number = 1;
        while (std::any_of(t->parts.begin(), t->parts.end(), [&](const auto& p) { return p.number == number; })) ++number;
        if (t->label == "msdos" && number > 4)
            return fail(ErrorCode::Unsupported, "the dos partition table of '{}' has no free primary partition", dev);
        const std::string disk = kernel_name(dev);
        const std::string expected = partition_name(disk, number);
        if (v.name != expected)
            return fail(ErrorCode::InvalidArg, "in disk pool '{}' a new volume is a partition and must be named '{}' (the next partition of {})",
                        def.name, expected, dev);
        const std::uint64_t size = align_up(v.capacity.value_or(0));
        std::optional<std::uint64_t> start;
        for (const auto& [a, b] : free_ranges(*t))
            if (b - a >= size) {
                start = a;
                break;
            }
        if (!start)
            return fail(ErrorCode::InvalidArg, "no free range of {} bytes on '{}' for partition '{}'", size, dev, v.name);
        auto parted = find_tool("parted", "parted");
        if (!parted) return std::unexpected(parted.error());
        std::vector<std::string> argv{*parted, "-s", dev, "unit", "B", "mkpart", "primary"};
        if (v.format == "linux") argv.push_back("ext2");
        else if (v.format == "fat16" || v.format == "fat32") argv.push_back(v.format);
        else if (v.format == "linux-swap") argv.push_back("linux-swap");
        argv.push_back(fmt::format("{}B", *start));
        argv.push_back(fmt::format("{}B", *start + size - 1));
        VIREO_TRY(run_checked(argv));
        // parted told the kernel; devtmpfs makes the node shortly after
        const std::string path = "/dev/" + expected;
        for (int i = 0; i < 100 && ::access(path.c_str(), F_OK) != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (::access(path.c_str(), F_OK) != 0)
            return fail(ErrorCode::OperationFailed, "partition {} was created on '{}' but '{}' did not appear", number, dev, path);
        return stat_volume(def, v);
    }

    Status delete_volume(const PoolDef& def, const VolumeDef& vol) override {
        auto t = read_table(def.devices[0]);
        if (!t) return std::unexpected(t.error());
        const std::string disk = kernel_name(def.devices[0]);
        for (const auto& p : t->parts) {
            if (partition_name(disk, p.number) != vol.name) continue;
            auto parted = find_tool("parted", "parted");
            if (!parted) return std::unexpected(parted.error());
            VIREO_TRY(run_checked({*parted, "-s", def.devices[0], "rm", std::to_string(p.number)}));
            return {};
        }
        return fail(ErrorCode::NoVolume, "partition '{}' not found on '{}'", vol.name, def.devices[0]);
    }

    Status resize_volume(const PoolDef&, const VolumeDef& vol, std::uint64_t, const driver::VolumeResizeFlags&) override {
        return fail(ErrorCode::Unsupported, "volume '{}' is a partition: resizing partitions is not supported", vol.name);
    }

private:
    static std::string label_for(const PoolDef& def) {
        return def.source_format == "gpt" ? "gpt" : "msdos";  // dos is libvirt's default
    }

    static Status check_block_device(const std::string& dev) {
        struct stat st{};
        if (::stat(dev.c_str(), &st) != 0) return std::unexpected(errno_error(fmt::format("source device '{}'", dev), errno));
        if (!S_ISBLK(st.st_mode)) return fail(ErrorCode::InvalidArg, "source device '{}' is not a block device", dev);
        return {};
    }

    static VolumeDef volume_of(const std::string& disk, const Partition& p) {
        VolumeDef v;
        v.name = partition_name(disk, p.number);
        v.type = driver::VolumeType::Block;
        v.path = "/dev/" + v.name;
        v.key = v.path;
        v.format = partition_format(p);
        v.capacity = p.end + 1 - p.start;
        v.allocation = v.capacity;
        v.physical = *v.capacity;
        v.extent_start = p.start;
        v.extent_end = p.end + 1;
        return v;
    }
};

}  // namespace

std::unique_ptr<Backend> make_disk_backend() { return std::make_unique<DiskBackend>(); }

}  // namespace vireo::pool
