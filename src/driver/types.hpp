// The value types of the Driver API (driver.hpp) for the host and domains:
// what operations take and answer. Pool and volume types: pool_types.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/error.hpp"
#include "util/uuid.hpp"

namespace vireo::driver {

// libvirt's virDomainState, same numbering.
enum class DomainState {
    NoState = 0,
    Running = 1,
    Blocked = 2,
    Paused = 3,
    Shutdown = 4,  // being shut down
    Shutoff = 5,
    Crashed = 6,
    PmSuspended = 7,
};

// "running", "paused", "shut off", ... exactly as virsh prints them.
std::string_view state_name(DomainState s);
// Inverse of state_name (also accepts "shutoff"); nullopt when unknown.
std::optional<DomainState> state_from_name(std::string_view name);

// Why a domain is in its state; names as virsh domstate --reason prints them
// ("booted", "user", "shutdown", "destroyed", "crashed", "saved", "failed",
// "restored", "unpaused", "unknown", ...). Kept as text: the set differs per state.
using StateReason = std::string;

struct DomainSummary {
    std::string name;
    Uuid uuid;
    int id = -1;  // -1 when not running
    DomainState state = DomainState::Shutoff;
    StateReason reason = "unknown";
    bool persistent = true;
    bool autostart = false;
    bool managed_save = false;  // a managed save image exists
    std::string title;
    std::uint64_t max_memory_kib = 0;
    std::uint64_t memory_kib = 0;  // current balloon size (configured when off)
    unsigned vcpus = 0;
    std::uint64_t cpu_time_ns = 0;  // 0 when not running
    std::string os_type = "hvm";
};

struct NodeInfo {
    std::string model;  // "x86_64"
    std::uint64_t memory_kib = 0;
    unsigned cpus = 0;
    unsigned mhz = 0;
    unsigned nodes = 1;
    unsigned sockets = 1;
    unsigned cores = 1;
    unsigned threads = 1;
};

struct VersionInfo {
    std::string library;     // vireo version, "0.1.0"
    std::string daemon;      // vireod version ("" for in-process drivers)
    std::string hypervisor;  // "QEMU 7.2.22" / "Test 1.0"
};

// Lifecycle events (virsh event --event lifecycle names them the same),
// the device events of a detach (virsh's device-removed and
// device-removal-failed; detail = the device's alias), and the guest
// agent's connection (virsh's agent-lifecycle; detail = "connected" or
// "disconnected"), and a virtio-mem device's new size (virsh's
// memory-device-size-change; detail = the device's alias, size_kib its size).
enum class EventType {
    Defined,
    Undefined,
    Started,
    Suspended,
    Resumed,
    Stopped,
    Shutdown,
    PmSuspended,
    Crashed,
    DeviceRemoved,
    DeviceRemovalFailed,
    AgentLifecycle,
    MemoryDeviceSizeChange
};
// The name of an event type on the wire and in logs ("Started"), and back.
std::string_view event_name(EventType t);
std::optional<EventType> event_type_from_name(std::string_view name);

struct DomainEvent {
    EventType type = EventType::Started;
    std::string detail;  // "Booted", "Destroyed", "Finished", "Panicked", ...
    std::string domain;  // name
    Uuid uuid;
    std::chrono::system_clock::time_point when = std::chrono::system_clock::now();
    std::uint64_t size_kib = 0;  // MemoryDeviceSizeChange: the memory the guest has plugged
};

struct StartFlags {
    bool paused = false;       // leave the vCPUs paused after start
    bool force_boot = false;   // discard a managed save image and boot fresh
};

enum class ShutdownMode { Default, Acpi, Agent };

struct UndefineFlags {
    bool managed_save = false;        // also remove a managed save image (else refuse)
    bool nvram = false;               // also remove the UEFI NVRAM file
    bool remove_all_storage = false;  // also remove the disk images
    bool keep_nvram = false;          // keep the UEFI NVRAM file (else an existing one refuses)
    bool tpm = false;                 // remove the emulated TPM's state (libvirt 9.0's default too)
    bool keep_tpm = false;            // keep the emulated TPM's state
    bool snapshots_metadata = false;  // also remove snapshot metadata (else a domain with snapshots refuses)
};

struct DestroyFlags {
    bool graceful = false;  // SIGTERM only, never SIGKILL
};

enum class MetadataKind { Title, Description };

struct DiskInfo {  // one row of virsh domblklist
    std::string type;    // file, block, volume, network
    std::string device;  // disk, cdrom, floppy
    std::string target;  // vda
    std::string source;  // path or "-"
};

// One domain snapshot (virsh snapshot-list / snapshot-info).
struct SnapshotSummary {
    std::string name;
    std::string parent;              // "" for a root
    std::string state;               // running, paused, shutoff, disk-snapshot, ...
    std::uint64_t creation_time = 0;  // seconds since the epoch
    std::string location;            // internal, external or none (virsh snapshot-info)
    bool current = false;            // the domain's current snapshot
};

struct InterfaceInfo {  // one row of virsh domiflist
    std::string name;   // host-side interface name, or "-"
    std::string type;   // network, bridge, user, ethernet
    std::string source; // network / bridge name, or "-"
    std::string model;  // virtio
    std::string mac;
};

// virsh domifstat: an interface's counters as the guest sees them (what the
// guest received is rx), from the host side of its tap or macvtap.
struct InterfaceStats {
    std::string name;  // the host-side device, e.g. vnet0
    std::uint64_t rx_bytes = 0, rx_packets = 0, rx_errs = 0, rx_drop = 0;
    std::uint64_t tx_bytes = 0, tx_packets = 0, tx_errs = 0, tx_drop = 0;
};

// virsh domblkstat: a running domain's disk I/O counters (QEMU's
// query-blockstats), of one disk or summed over every disk; libvirt's
// virDomainBlockStatsFlags fields.
struct BlockStats {
    std::string device;  // the disk's target ("vda"); "" for the sum over every disk
    std::uint64_t rd_req = 0, rd_bytes = 0, wr_req = 0, wr_bytes = 0, flush_operations = 0;
    std::uint64_t rd_total_times = 0, wr_total_times = 0, flush_total_times = 0;  // nanoseconds
};

// virsh domblkinfo: a disk's sizes in bytes, as libvirt's virDomainBlockInfo.
struct BlockInfo {
    std::string device;            // the disk's target ("vda")
    std::uint64_t capacity = 0;    // what the guest sees
    std::uint64_t allocation = 0;  // host storage in use (du)
    std::uint64_t physical = 0;    // the image's size on the host (ls)
};

enum class LinkState { Up, Down };

// virsh vcpuinfo: one vCPU of a running domain (its host thread).
struct VcpuInfo {
    std::uint64_t id = 0;           // the vCPU number
    std::int64_t cpu = -1;          // the host CPU it last ran on
    std::string state;              // running
    std::uint64_t cpu_time_ns = 0;  // user + system time of its thread
    std::string affinity;           // host CPUs it may run on, as a list ("0-1")
};

// virsh dommemstat: one statistic (actual, rss, swap_in, ..., in KiB except
// the event counters and last_update, as libvirt's tags).
struct MemoryStat {
    std::string tag;
    std::uint64_t value = 0;
};

// virsh domtime: the guest's clock as its agent reads it.
struct GuestTime {
    std::int64_t seconds = 0;  // since the epoch
    std::uint64_t nseconds = 0;
};

// virsh domfsinfo: one filesystem the guest has mounted, as its agent
// tells (guest-get-fsinfo).
struct FsInfo {
    std::string mountpoint;  // "/mnt"
    std::string name;        // the guest's device name ("vdb", "sda1")
    std::string type;        // "ext4"
    std::string targets;     // the domain's disks under it, comma-separated ("vdb"); "" when none
};

// virsh domfsfreeze/domfsthaw: how many filesystems the agent froze or thawed.
struct FsCount {
    std::uint64_t filesystems = 0;
};

// virsh guestinfo: one of libvirt's typed parameters ("os.id",
// "fs.0.mountpoint", ...), its value as text.
struct TypedParam {
    std::string field;
    std::string type;   // string, int, uint, ullong or boolean
    std::string value;  // decimal for numbers, "yes"/"no" for booleans
};

// The groups of guestinfo, as libvirt's virDomainGuestInfoTypes bits.
namespace guest_info {
inline constexpr unsigned kUsers = 1, kOs = 2, kTimezone = 4, kHostname = 8, kFilesystem = 16, kDisks = 32,
                          kInterfaces = 64, kAll = 127;
}  // namespace guest_info

// virsh guestvcpus: the guest's vCPUs as its agent sees them, each a
// libvirt CPU list ("0-3,5").
struct GuestVcpus {
    std::string vcpus;       // every vCPU the guest knows
    std::string online;      // those online
    std::string offlinable;  // those it can take offline
};

// virsh screenshot: an image of a running domain's screen.
struct Screenshot {
    std::string mime;  // "image/png"
    std::string data;  // the image's bytes
};

// Where domifaddr finds a guest's addresses.
enum class AddressSource {
    Lease,  // the DHCP leases of the virtual networks (type='network' NICs)
    Arp,    // the host's neighbour table (any NIC whose MAC the host has seen)
    Agent,  // the guest agent (not supported yet)
};

// One row of virsh domifaddr: one address of one interface.
struct InterfaceAddress {
    std::string name;     // the host-side device (vnet0)
    std::string mac;      // the guest's MAC
    std::string type;     // ipv4 / ipv6
    std::string address;  // without prefix
    std::uint64_t prefix = 0;
};

// Handle returned by subscribe(); the subscription ends when it is destroyed.
class Subscription {
public:
    virtual ~Subscription() = default;
    // Why the stream of events ended on its own (a remote daemon went away),
    // or nullopt while events may still come. In-process drivers never lose one.
    [[nodiscard]] virtual std::optional<Error> lost() const { return std::nullopt; }
};

}  // namespace vireo::driver
