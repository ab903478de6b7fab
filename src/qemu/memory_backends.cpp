#include "qemu/memory_backends.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace vireo::qemu {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

constexpr std::uint64_t kAlignKib = 1024;  // libvirt aligns x86 guest memory sizes to 1 MiB

std::uint64_t align_up(std::uint64_t v, std::uint64_t to) { return to == 0 ? v : (v + to - 1) / to * to; }

// "0-3,^2,5" -> {0,1,3,5}; empty for "".
std::vector<unsigned> node_list(std::string_view text) {
    std::vector<unsigned> out;
    std::set<unsigned> excluded;
    std::size_t pos = 0;
    while (pos <= text.size() && !text.empty()) {
        std::size_t comma = text.find(',', pos);
        std::string_view part = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
        bool neg = part.starts_with('^');
        if (neg) part.remove_prefix(1);
        std::size_t dash = part.find('-');
        unsigned a = 0, b = 0;
        try {
            a = static_cast<unsigned>(std::stoul(std::string(part.substr(0, dash))));
            b = dash == std::string_view::npos ? a : static_cast<unsigned>(std::stoul(std::string(part.substr(dash + 1))));
        } catch (const std::exception&) {
            return {};
        }
        for (unsigned i = a; i <= b; ++i) {
            if (neg) excluded.insert(i);
            else out.push_back(i);
        }
        if (comma == std::string_view::npos) break;
        pos = comma + 1;
    }
    std::erase_if(out, [&](unsigned v) { return excluded.contains(v); });
    std::ranges::sort(out);
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

// The huge page size backing guest cell `cell` (-1: the whole RAM of a
// guest without NUMA cells), 0 for ordinary pages.
std::uint64_t page_kib_for(const conf::DomainDef& def, int cell, const MemoryHost& host) {
    const auto& mb = def.memory_backing;
    if (!mb.hugepages) return 0;
    std::uint64_t size = 0;
    if (mb.pages.empty()) size = host.default_hugepage_kib;
    for (const auto& p : mb.pages) {
        if (p.nodeset.empty()) {
            if (size == 0) size = p.size_kib;
        } else if (cell >= 0 && std::ranges::count(node_list(p.nodeset), static_cast<unsigned>(cell)) > 0) {
            size = p.size_kib;
            break;
        }
    }
    return size == 4 ? 0 : size;  // the system page size is no huge page
}

struct Binding {
    std::string mode, nodeset;
};

// <numatune>'s binding of cell `cell` (-1: the whole RAM): its memnode, else <memory>.
Binding binding_for(const conf::DomainDef& def, int cell) {
    for (const auto& m : def.numatune.memnodes)
        if (cell >= 0 && m.cellid == static_cast<unsigned>(cell)) return {m.mode, m.nodeset};
    return {def.numatune.memory_mode, def.numatune.memory_nodeset};
}

std::string policy_of(std::string_view mode) {
    if (mode == "strict") return "bind";
    return std::string(mode);  // preferred, interleave
}

const HugetlbfsMount* mount_for(const MemoryHost& host, std::uint64_t page_kib) {
    for (const auto& m : host.hugetlbfs)
        if (m.page_kib == page_kib) return &m;
    return nullptr;
}

// One memory backend object, libvirt's property order.
Result<ojson> backend(const conf::DomainDef& def, const MemoryHost& host, const std::string& id, std::uint64_t size_kib,
                      int cell, bool system_ram, std::string_view access, std::string_view discard) {
    const auto& mb = def.memory_backing;
    const std::uint64_t page = page_kib_for(def, cell, host);
    std::string type;
    ojson o = {{"qom-type", ""}, {"id", id}};
    bool prealloc = mb.allocation_mode == "immediate";
    if (mb.source_type == "memfd") {
        type = "memory-backend-memfd";
        if (page) {
            o["hugetlb"] = true;
            o["hugetlbsize"] = page * 1024;
            prealloc = true;
        }
    } else if (page || mb.source_type == "file" || !access.empty()) {
        type = "memory-backend-file";
        if (page) {
            const HugetlbfsMount* m = mount_for(host, page);
            if (!m) {
                if (host.hugetlbfs.empty())
                    return fail(ErrorCode::Unsupported,
                                "hugetlbfs filesystem is not mounted (<memoryBacking><hugepages/> needs "
                                "a hugetlbfs mount, e.g. mount -t hugetlbfs hugetlbfs /dev/hugepages)");
                return fail(ErrorCode::Unsupported, "Unable to find any usable hugetlbfs mount for {} KiB",
                            page);
            }
            o["mem-path"] = m->path.string();
            prealloc = true;
        } else {
            o["mem-path"] = host.memory_backing_dir.string();
        }
        if (discard == "yes") o["discard-data"] = true;
    } else {
        type = "memory-backend-ram";
    }
    o["qom-type"] = type;
    if (access == "shared") o["share"] = true;
    else if (access == "private") o["share"] = false;
    if (system_ram && type != "memory-backend-ram") o["x-use-canonical-path-for-ramblock-id"] = false;
    if (prealloc) {
        o["prealloc"] = true;
        if (mb.allocation_threads) o["prealloc-threads"] = *mb.allocation_threads;
    }
    o["size"] = align_up(size_kib, std::max(kAlignKib, page)) * 1024;
    const Binding b = binding_for(def, cell);
    if (!b.nodeset.empty()) {
        if (b.mode == "restrictive")
            return fail(ErrorCode::Unsupported,
                        "numatune mode 'restrictive' needs cgroups (cpuset.mems), which vireo does not manage yet");
        o["host-nodes"] = node_list(b.nodeset);
        o["policy"] = policy_of(b.mode);
    }
    return o;
}

bool needs_system_backend(const conf::DomainDef& def) {
    const auto& mb = def.memory_backing;
    return mb.hugepages || !mb.source_type.empty() || !mb.access_mode.empty() || mb.allocation_mode == "immediate" ||
           mb.discard || !def.numatune.memory_nodeset.empty();
}

std::string cpus_options(std::string_view cpus) {
    // "0-1,3" -> ",cpus=0-1,cpus=3" (QEMU takes one range per cpus=)
    std::string out;
    const auto list = node_list(cpus);
    for (std::size_t i = 0; i < list.size();) {
        std::size_t j = i;
        while (j + 1 < list.size() && list[j + 1] == list[j] + 1) ++j;
        out += list[i] == list[j] ? fmt::format(",cpus={}", list[i]) : fmt::format(",cpus={}-{}", list[i], list[j]);
        i = j + 1;
    }
    return out;
}

std::uint64_t cell_kib(const conf::CpuDef::NumaCell& c) {
    try {
        return std::stoull(c.memory_kib);
    } catch (const std::exception&) {
        return 0;
    }
}

}  // namespace

std::vector<unsigned> id_list(std::string_view text) { return node_list(text); }

std::string iothread_object_id(unsigned id) { return fmt::format("iothread{}", id); }

std::vector<HugetlbfsMount> parse_hugetlbfs_mounts(std::string_view mounts, std::uint64_t default_kib) {
    std::vector<HugetlbfsMount> out;
    std::istringstream in{std::string(mounts)};
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string dev, path, type, opts;
        if (!(f >> dev >> path >> type >> opts) || type != "hugetlbfs") continue;
        HugetlbfsMount m{path, default_kib};
        std::istringstream o(opts);
        std::string opt;
        while (std::getline(o, opt, ','))
            if (opt.starts_with("pagesize=")) {
                std::string v = opt.substr(9);
                std::uint64_t n = std::strtoull(v.c_str(), nullptr, 10);
                if (v.ends_with('M')) n *= 1024;
                else if (v.ends_with('G')) n *= std::uint64_t{1024} * 1024;
                else if (!v.ends_with('K') && !v.ends_with('k')) n /= 1024;  // bytes
                m.page_kib = n;
            }
        // Octal escapes in mount paths (\040 for a space).
        std::string p = m.path.string(), unescaped;
        for (std::size_t i = 0; i < p.size(); ++i) {
            if (p[i] == '\\' && i + 3 < p.size()) {
                unescaped += static_cast<char>(std::strtol(p.substr(i + 1, 3).c_str(), nullptr, 8));
                i += 3;
            } else {
                unescaped += p[i];
            }
        }
        m.path = unescaped;
        out.push_back(std::move(m));
    }
    return out;
}

MemoryHost read_memory_host(const fs::path& proc, const fs::path& sys) {
    MemoryHost h;
    {
        std::ifstream in(proc / "meminfo");
        std::string line;
        while (std::getline(in, line))
            if (line.starts_with("Hugepagesize:")) h.default_hugepage_kib = std::strtoull(line.c_str() + 13, nullptr, 10);
    }
    {
        std::ifstream in(proc / "mounts");
        std::stringstream ss;
        ss << in.rdbuf();
        h.hugetlbfs = parse_hugetlbfs_mounts(ss.str(), h.default_hugepage_kib);
    }
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(sys / "kernel/mm/hugepages", ec)) {
        const std::string name = e.path().filename().string();  // hugepages-2048kB
        if (!name.starts_with("hugepages-")) continue;
        const std::uint64_t kib = std::strtoull(name.c_str() + 10, nullptr, 10);
        std::ifstream in(e.path() / "free_hugepages");
        std::uint64_t n = 0;
        if (in >> n) h.free_hugepages[kib] = n;
    }
    std::ifstream online(sys / "devices/system/node/online");
    std::string text;
    if (online >> text) {
        auto nodes = node_list(text);
        h.numa_nodes = {nodes.begin(), nodes.end()};
    }
    return h;
}

namespace {

// The QEMU bus name of PCI bus `bus`: its controller's alias, else the
// machine's root bus name.
std::string pci_bus_id(const conf::DomainDef& def, unsigned bus) {
    for (const auto& c : def.devices.controllers)
        if (c.type == "pci" && c.index == bus && !c.info.alias.empty()) return c.info.alias;
    if (bus != 0) return fmt::format("pci.{}", bus);
    return conf::is_q35_machine(def.os.machine) ? "pcie.0" : "pci.0";
}

// A virtio-mem's virtio-mem-pci device: its node, block and requested
// sizes, backend, alias and PCI address. Its block must hold a backend page.
Result<ojson> virtio_mem_device(const conf::DomainDef& def, const MemoryHost& host, const conf::MemoryDevice& m, int node) {
    if (const std::uint64_t page = page_kib_for(def, node, host); page > m.block_kib)
        return fail(ErrorCode::Unsupported, "unsupported configuration: virtio-mem block size {}KiB is smaller than the backend's page size {}KiB",
                    m.block_kib, page);
    ojson d = {{"driver", "virtio-mem-pci"}};
    if (m.target_node) d["node"] = *m.target_node;
    d["block-size"] = m.block_kib * 1024;
    d["requested-size"] = m.requested_kib * 1024;
    d["memdev"] = memory_module_backend_id(m);
    d["id"] = m.info.alias;
    if (m.info.address.type == "pci") {
        d["bus"] = pci_bus_id(def, m.info.address.bus);
        d["addr"] = fmt::format("{:#x}", m.info.address.slot);
    }
    return d;
}

}  // namespace

Result<MemoryModuleArgs> memory_module_args(const conf::DomainDef& def, const MemoryHost& host, const conf::MemoryDevice& m) {
    if (m.model != "dimm" && m.model != "virtio-mem") return fail(ErrorCode::Unsupported, "memory model '{}' is not supported", m.model);
    const std::string memdev = memory_module_backend_id(m);
    const int node = m.target_node ? static_cast<int>(*m.target_node) : (def.cpu.numa.empty() ? -1 : 0);
    const std::string access = !m.access.empty() ? m.access : def.memory_backing.access_mode;
    auto o = backend(def, host, memdev, m.target_size_kib, node, false, access, m.discard);
    if (!o) return std::unexpected(o.error());
    MemoryModuleArgs out;
    out.backend = std::move(*o);
    if (m.model == "virtio-mem") {
        // The guest plugs blocks as it is asked: nothing reserved up front.
        if (!out.backend.contains("prealloc")) out.backend["reserve"] = false;
        auto d = virtio_mem_device(def, host, m, node);
        if (!d) return std::unexpected(d.error());
        out.device = std::move(*d);
        return out;
    }
    out.device = {{"driver", "pc-dimm"}};
    if (m.target_node) out.device["node"] = *m.target_node;
    out.device["memdev"] = memdev;
    out.device["id"] = m.info.alias;
    if (m.info.address.type == "dimm") {
        out.device["slot"] = m.info.address.slot;
        if (!m.info.address.base.empty()) out.device["addr"] = std::strtoull(m.info.address.base.c_str(), nullptr, 0);
    }
    return out;
}

std::string memory_module_backend_id(const conf::MemoryDevice& m) { return "mem" + m.info.alias; }

Result<MemoryArgs> memory_args(const conf::DomainDef& def, const MemoryHost& host) {
    MemoryArgs out;
    // The cgroup CPU controls: refused by name until vireo manages cgroups.
    for (const auto& [set, name] : {std::pair{def.cputune.shares.has_value(), "shares"},
                                   std::pair{def.cputune.period.has_value(), "period"},
                                   std::pair{def.cputune.quota.has_value(), "quota"}})
        if (set)
            return fail(ErrorCode::Unsupported, "<cputune><{}> needs the cgroup CPU controller, which vireo does not manage yet", name);
    const auto& cells = def.cpu.numa;
    std::uint64_t dimm_kib = 0;
    for (const auto& m : def.devices.memories) dimm_kib += m.target_size_kib;
    if (cells.empty()) {
        out.initial_kib = def.memory_kib > dimm_kib ? def.memory_kib - dimm_kib : def.memory_kib;
        if (needs_system_backend(def)) {
            auto o = backend(def, host, "pc.ram", out.initial_kib, -1, true, def.memory_backing.access_mode,
                             def.memory_backing.discard ? "yes" : "");
            if (!o) return std::unexpected(o.error());
            out.machine_backend = "pc.ram";
            out.ram = {"-object", o->dump()};
            out.initial_kib = (*o)["size"].get<std::uint64_t>() / 1024;
        }
    } else {
        for (std::size_t i = 0; i < cells.size(); ++i) {
            const auto& c = cells[i];
            const std::string id = fmt::format("ram-node{}", i);
            const std::string access = !c.memAccess.empty() ? c.memAccess : def.memory_backing.access_mode;
            const std::string discard = !c.discard.empty() ? c.discard : (def.memory_backing.discard ? "yes" : "");
            auto o = backend(def, host, id, cell_kib(c), static_cast<int>(i), false, access, discard);
            if (!o) return std::unexpected(o.error());
            out.initial_kib += (*o)["size"].get<std::uint64_t>() / 1024;
            out.numa.push_back("-object");
            out.numa.push_back(o->dump());
            out.numa.push_back("-numa");
            out.numa.push_back(fmt::format("node,nodeid={}{},memdev={}", i, cpus_options(c.cpus), id));
        }
    }
    for (unsigned id : conf::domain_iothread_ids(def)) {
        out.iothreads.push_back("-object");
        out.iothreads.push_back(ojson{{"qom-type", "iothread"}, {"id", iothread_object_id(id)}}.dump());
    }
    for (const auto& m : def.devices.memories) {
        auto module = memory_module_args(def, host, m);
        if (!module) return std::unexpected(module.error());
        auto& part = m.model == "virtio-mem" ? out.virtio_mems : out.dimms;
        part.insert(part.end(), {"-object", module->backend.dump(), "-device", module->device.dump()});
    }
    return out;
}

Status check_memory_host(const conf::DomainDef& def, const MemoryHost& host) {
    // Host NUMA nodes <numatune> binds to.
    auto check_nodes = [&](const std::string& nodeset, std::string_view where) -> Status {
        for (unsigned n : node_list(nodeset))
            if (!host.numa_nodes.contains(n))
                return fail(ErrorCode::Unsupported, "NUMA node {} is unavailable ({} nodeset='{}'; this host has node{} {})",
                            n, where, nodeset, host.numa_nodes.size() == 1 ? "" : "s",
                            fmt::join(host.numa_nodes, ","));
        return {};
    };
    VIREO_TRY(check_nodes(def.numatune.memory_nodeset, "<numatune><memory>"));
    for (const auto& m : def.numatune.memnodes) VIREO_TRY(check_nodes(m.nodeset, "<numatune><memnode>"));
    // Huge pages: enough free ones of each size.
    std::map<std::uint64_t, std::uint64_t> need;  // page KiB -> KiB
    if (def.cpu.numa.empty()) {
        if (std::uint64_t p = page_kib_for(def, -1, host)) need[p] += def.memory_kib;
    } else {
        for (std::size_t i = 0; i < def.cpu.numa.size(); ++i)
            if (std::uint64_t p = page_kib_for(def, static_cast<int>(i), host)) need[p] += cell_kib(def.cpu.numa[i]);
        for (const auto& m : def.devices.memories) {
            const int node = m.target_node ? static_cast<int>(*m.target_node) : 0;
            if (std::uint64_t p = page_kib_for(def, node, host)) need[p] += m.target_size_kib;
        }
    }
    for (const auto& [page, kib] : need) {
        if (def.memory_backing.source_type != "memfd" && !mount_for(host, page)) {
            if (host.hugetlbfs.empty())
                return fail(ErrorCode::Unsupported,
                            "hugetlbfs filesystem is not mounted (<memoryBacking><hugepages/> needs "
                            "a hugetlbfs mount, e.g. mount -t hugetlbfs hugetlbfs /dev/hugepages)");
            return fail(ErrorCode::Unsupported, "Unable to find any usable hugetlbfs mount for {} KiB", page);
        }
        const std::uint64_t pages = align_up(kib, page) / page;
        const auto it = host.free_hugepages.find(page);
        const std::uint64_t free = it == host.free_hugepages.end() ? 0 : it->second;
        if (free < pages)
            return fail(ErrorCode::Unsupported,
                        "not enough free huge pages of {} KiB: the guest needs {}, the host has {} free "
                        "(reserve them in /sys/kernel/mm/hugepages/hugepages-{}kB/nr_hugepages)",
                        page, pages, free, page);
    }
    return {};
}

}  // namespace vireo::qemu
