// Guest memory on the QEMU command line, as libvirt 9.0 writes it for QEMU
// 7.2: the memory backend objects of the guest RAM (-machine
// memory-backend=pc.ram when <memoryBacking> or <numatune> asks for one),
// of each guest NUMA cell (-object ... -numa node,nodeid,cpus,memdev) and of
// each <memory model='dimm'> (-object ... -device pc-dimm), and the iothread
// objects.
//
// Backend choice, per cell or module (libvirt's rules):
//   <source type='memfd'>                         memory-backend-memfd (hugetlb=true with hugepages)
//   hugepages / <source type='file'> / memAccess  memory-backend-file (mem-path: the hugetlbfs mount
//                                                 of the page size, or MemoryHost::memory_backing_dir)
//   otherwise                                     memory-backend-ram
// then share (access mode), prealloc (hugepages or <allocation
// mode='immediate'>), discard-data, size, host-nodes and policy
// (<numatune>: strict -> bind, preferred, interleave; restrictive needs
// cgroups and is refused).
//
// The builder is pure; read_memory_host() is the host side (hugetlbfs
// mounts, free huge pages, host NUMA nodes) the driver reads at start, and
// check_memory_host() refuses, before QEMU runs, what this host cannot give.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "conf/domain.hpp"
#include "util/error.hpp"

namespace vireo::qemu {

struct HugetlbfsMount {
    std::filesystem::path path;
    std::uint64_t page_kib = 0;
};

// What the host offers guest memory.
struct MemoryHost {
    std::vector<HugetlbfsMount> hugetlbfs;           // /proc/mounts, in order
    std::uint64_t default_hugepage_kib = 2048;       // /proc/meminfo Hugepagesize
    std::map<std::uint64_t, std::uint64_t> free_hugepages;  // page KiB -> free pages
    std::set<unsigned> numa_nodes = {0};             // host NUMA nodes online
    std::filesystem::path memory_backing_dir = "/dev/shm";  // <source type='file'> without hugepages
};

// Read the host's facts from `proc` and `sys` (roots overridable for tests).
MemoryHost read_memory_host(const std::filesystem::path& proc = "/proc", const std::filesystem::path& sys = "/sys");

// Parse /proc/mounts text: the hugetlbfs mounts and their page size
// (pagesize= option, else `default_kib`).
std::vector<HugetlbfsMount> parse_hugetlbfs_mounts(std::string_view mounts, std::uint64_t default_kib);

// The memory parts of the command line.
struct MemoryArgs {
    std::uint64_t initial_kib = 0;     // -m size= (without the dimms)
    std::string machine_backend;       // "pc.ram": -machine ...,memory-backend=pc.ram
    std::vector<std::string> ram;      // -object of pc.ram, after -m
    std::vector<std::string> iothreads;  // -object iothread,...
    std::vector<std::string> numa;     // -object + -numa per cell
    std::vector<std::string> dimms;    // -object + -device pc-dimm per module
    std::vector<std::string> virtio_mems;  // -object + -device virtio-mem-pci, once their PCI buses exist
};
Result<MemoryArgs> memory_args(const conf::DomainDef& def, const MemoryHost& host);

// One memory module of `def`: its backend object (-object / QMP object-add,
// id memory_module_backend_id) and its pc-dimm or virtio-mem-pci device
// (-device / device_add), the same at start and at hotplug.
struct MemoryModuleArgs {
    nlohmann::ordered_json backend;
    nlohmann::ordered_json device;
};
Result<MemoryModuleArgs> memory_module_args(const conf::DomainDef& def, const MemoryHost& host, const conf::MemoryDevice& m);
// "mem" + the module's alias ("memdimm0").
std::string memory_module_backend_id(const conf::MemoryDevice& m);

// What the host cannot give the definition, named: a hugetlbfs mount for
// each page size, enough free huge pages, the host NUMA nodes <numatune>
// binds to.
Status check_memory_host(const conf::DomainDef& def, const MemoryHost& host);

// The members of a node or CPU list ("0-3,^2,5" -> 0,1,3,5), sorted;
// empty when malformed.
std::vector<unsigned> id_list(std::string_view text);

// iothread object id of iothread `id` ("iothread1").
std::string iothread_object_id(unsigned id);

}  // namespace vireo::qemu
