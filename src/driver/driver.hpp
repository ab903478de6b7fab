// The hypervisor-neutral API of vireo: what one connection can do.
//
// Every connection URI resolves to one Driver:
//   test:///default           -> TestDriver, in-memory, in the client process
//   qemu:///session|system    -> RemoteDriver (src/client), which speaks HTTP to
//                                vireod, whose server calls the QemuDriver (src/qemu)
// so the CLI is written once against this interface, and errors raised inside
// the daemon reach the client unchanged (code + message).
//
// Objects are addressed by a "reference" string as virsh does: a domain name,
// a UUID, or a numeric id of a running domain, tried in that order
// (see resolve rules in registry.hpp).
//
// Definitions travel as libvirt XML documents (src/conf parses and formats
// them); everything else is typed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "driver/pool_api.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
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

// Lifecycle events (virsh event --event lifecycle names them the same).
enum class EventType { Defined, Undefined, Started, Suspended, Resumed, Stopped, Shutdown, PmSuspended, Crashed };
std::string_view event_name(EventType t);

struct DomainEvent {
    EventType type = EventType::Started;
    std::string detail;  // "Booted", "Destroyed", "Finished", "Panicked", ...
    std::string domain;  // name
    Uuid uuid;
    std::chrono::system_clock::time_point when = std::chrono::system_clock::now();
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

struct InterfaceInfo {  // one row of virsh domiflist
    std::string name;   // host-side interface name, or "-"
    std::string type;   // network, bridge, user, ethernet
    std::string source; // network / bridge name, or "-"
    std::string model;  // virtio
    std::string mac;
};

// Handle returned by subscribe(); the subscription ends when it is destroyed.
class Subscription {
public:
    virtual ~Subscription() = default;
    // Why the stream of events ended on its own (a remote daemon went away),
    // or nullopt while events may still come. In-process drivers never lose one.
    [[nodiscard]] virtual std::optional<Error> lost() const { return std::nullopt; }
};

class Driver {
public:
    virtual ~Driver() = default;

    // --- connection / host -------------------------------------------------
    virtual std::string uri() const = 0;
    virtual Result<VersionInfo> version() = 0;
    virtual Result<std::string> hostname() = 0;
    virtual Result<NodeInfo> node_info() = 0;
    virtual Result<std::string> capabilities_xml() = 0;
    // All arguments optional (empty = default for the host).
    virtual Result<std::string> domain_capabilities_xml(std::string_view emulator, std::string_view arch,
                                                        std::string_view machine, std::string_view virttype) = 0;

    // --- domains: queries (never wait behind a running job) ----------------
    // Every domain, active and inactive, with its state, in one call.
    virtual Result<std::vector<DomainSummary>> list_domains() = 0;
    virtual Result<DomainSummary> lookup_domain(std::string_view ref) = 0;
    virtual Result<std::string> domain_xml(std::string_view ref, bool inactive) = 0;
    virtual Result<std::vector<DiskInfo>> domain_disks(std::string_view ref, bool inactive) = 0;
    virtual Result<std::vector<InterfaceInfo>> domain_interfaces(std::string_view ref, bool inactive) = 0;

    // --- domains: definitions ----------------------------------------------
    // Define or redefine (same name and uuid) a persistent domain.
    virtual Result<DomainSummary> define_domain(std::string_view xml, bool validate) = 0;
    virtual Status undefine_domain(std::string_view ref, UndefineFlags flags) = 0;
    // Create and start a transient domain (gone once it stops).
    virtual Result<DomainSummary> create_domain(std::string_view xml, StartFlags flags) = 0;
    virtual Status set_autostart(std::string_view ref, bool enabled) = 0;
    // The title / description text; empty when not set.
    virtual Result<std::string> get_metadata(std::string_view ref, MetadataKind kind, bool inactive) = 0;
    // live/config: which definition(s) to change; both false = current state's.
    virtual Status set_metadata(std::string_view ref, MetadataKind kind, std::string_view text, bool live,
                                bool config) = 0;

    // --- domains: lifecycle --------------------------------------------------
    virtual Status start_domain(std::string_view ref, StartFlags flags) = 0;
    // Request a shutdown and return at once (as virsh does).
    virtual Status shutdown_domain(std::string_view ref, ShutdownMode mode) = 0;
    virtual Status reboot_domain(std::string_view ref, ShutdownMode mode) = 0;
    virtual Status reset_domain(std::string_view ref) = 0;
    virtual Status destroy_domain(std::string_view ref, DestroyFlags flags) = 0;
    virtual Status suspend_domain(std::string_view ref) = 0;
    virtual Status resume_domain(std::string_view ref) = 0;
    // Save state to a file and stop the domain; restore starts it from the file.
    virtual Status save_domain(std::string_view ref, std::string_view path) = 0;
    virtual Result<DomainSummary> restore_domain(std::string_view path, bool paused) = 0;
    virtual Status managed_save(std::string_view ref) = 0;
    virtual Status managed_save_remove(std::string_view ref) = 0;

    // --- console and events --------------------------------------------------
    // A bidirectional byte stream to the domain's serial console (device
    // name as in virsh console, empty = first serial/console). The caller owns
    // the fd; closing it detaches.
    virtual Result<UniqueFd> open_console(std::string_view ref, std::string_view device) = 0;
    // Receive lifecycle events until the returned Subscription is destroyed.
    // The callback runs on a driver thread and must not block.
    virtual Result<std::unique_ptr<Subscription>> subscribe(std::function<void(const DomainEvent&)> callback) = 0;

    // --- storage --------------------------------------------------------------
    // The connection's storage pools and volumes (pool_api.hpp), owned by the
    // driver and valid as long as it is: a pool::PoolManager in the QEMU and
    // test drivers, the HTTP pool half in the RemoteDriver. Never fails; when
    // the pools could not be set up, every call returns why.
    virtual PoolApi& pools() = 0;
};

}  // namespace vireo::driver
