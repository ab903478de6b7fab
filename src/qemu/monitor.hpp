// The typed QEMU monitor: one C++ call per QMP command vireo uses, with
// typed arguments and replies, and QMP events as typed values. It sits on
// QmpClient (qmp.hpp), the transport, and is the only place in src/ that
// names QMP commands; everything else calls these functions.
//
// Every command waits for its reply at most the monitor's command timeout
// (a QEMU that stops answering is an error, Timeout, never a hang); a reply
// that comes later is dropped by the transport. Errors are the transport's:
// Hypervisor (QEMU refused, with its words), Timeout, Connection (the
// monitor closed: QEMU exited or is exiting).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "qemu/qmp.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace vireo::qemu {

// QEMU's RunState (query-status "status").
enum class RunState {
    Unknown,  // a name this vireo does not know
    Debug,
    InMigrate,
    InternalError,
    IoError,
    Paused,
    PostMigrate,
    Prelaunch,
    FinishMigrate,
    RestoreVm,
    Running,
    SaveVm,
    Shutdown,
    Suspended,
    Watchdog,
    GuestPanicked,
    Colo,
};
RunState parse_run_state(std::string_view name);
std::string_view run_state_name(RunState s);

struct StatusInfo {
    RunState state = RunState::Unknown;
    bool running = false;  // the vCPUs run
};

// QEMU's MigrationStatus (query-migrate "status"; "none" before any migration).
enum class MigrationStatus {
    Unknown,
    None,
    Setup,
    Cancelling,
    Cancelled,
    Active,
    PostcopyActive,
    PostcopyPaused,
    PostcopyRecover,
    Completed,
    Failed,
    Colo,
    PreSwitchover,
    Device,
    WaitUnplug,
};
MigrationStatus parse_migration_status(std::string_view name);
std::string_view migration_status_name(MigrationStatus s);

// query-migrate: where an outgoing (or incoming) migration is.
struct MigrationInfo {
    MigrationStatus status = MigrationStatus::None;
    // RAM, bytes ("ram" object; zero while QEMU has not reported it).
    std::uint64_t ram_transferred = 0;
    std::uint64_t ram_remaining = 0;
    std::uint64_t ram_total = 0;
    double mbps = 0;          // throughput QEMU measured, megabits per second
    // The rest of "ram" (domjobinfo prints them): pages/s dirtied, bytes
    // per page, passes over memory, postcopy requests, zero pages, pages
    // and bytes sent in full.
    std::uint64_t dirty_pages_rate = 0;
    std::uint64_t page_size = 0;
    std::uint64_t dirty_sync_count = 0;
    std::uint64_t postcopy_requests = 0;
    std::uint64_t duplicate = 0;
    std::uint64_t normal = 0;
    std::uint64_t normal_bytes = 0;
    // Milliseconds: the downtime QEMU expects (active) or had (completed),
    // and the setup time.
    std::uint64_t expected_downtime = 0;
    std::uint64_t downtime = 0;
    std::uint64_t setup_time = 0;
    std::string error_desc;   // why it failed (status failed), when QEMU says

    // Completed, failed or cancelled: nothing more will happen.
    [[nodiscard]] bool ended() const {
        return status == MigrationStatus::Completed || status == MigrationStatus::Failed ||
               status == MigrationStatus::Cancelled;
    }
    // Set up or transferring: a migrate_cancel would stop it.
    [[nodiscard]] bool in_progress() const { return !ended() && status != MigrationStatus::None; }
};

struct QemuVersionInfo {
    int major = 0, minor = 0, micro = 0;
    std::string package;
};

struct MachineInfo {
    std::string name;   // "pc-i440fx-7.2"
    std::string alias;  // "pc" (empty when none)
    bool is_default = false;
    int cpu_max = 1;
    bool deprecated = false;
};

// One character device (query-chardev): its id and what it is connected
// to ("pty:/dev/pts/5", "unix:/run/...,server=on", "file", ...).
struct ChardevInfo {
    std::string label;     // "charserial0"
    std::string filename;  // "pty:/dev/pts/5"
    bool frontend_open = false;
    // The pty path of a pty backend ("" for the others).
    [[nodiscard]] std::string pty_path() const { return filename.starts_with("pty:") ? filename.substr(4) : std::string(); }
};

// query-qmp-schema, summarised: the names of commands and events, and the
// schema itself for finer checks.
struct QmpSchema { // NOLINT(bugprone-exception-escape): clang-tidy 16 counts an implicit member's possible throw (set/json copies) here
    std::set<std::string> commands;
    std::set<std::string> events;
    nlohmann::json entries;
};

// A QMP event, typed. Kinds vireo acts on have their own value; everything
// else is Other (name kept).
enum class EventKind {
    Other,
    Shutdown,       // SHUTDOWN: guest, reason
    Powerdown,      // POWERDOWN: the ACPI power button was pressed
    Reset,          // RESET: guest, reason
    Stop,           // STOP: the vCPUs stopped
    Resume,         // RESUME: the vCPUs run again
    GuestPanicked,  // GUEST_PANICKED: action
    Migration,      // MIGRATION: status
    DeviceDeleted,  // DEVICE_DELETED: device (the qdev id; empty for a device without one)
    VserportChange, // VSERPORT_CHANGE: device (the port's id), open (the guest opened or closed it)
    MemoryDeviceSizeChange,  // MEMORY_DEVICE_SIZE_CHANGE: device (a virtio-mem's id), size (bytes plugged)
};

struct MonitorEvent {
    EventKind kind = EventKind::Other;
    std::string name;     // as QEMU sent it: "SHUTDOWN", ...
    bool guest = false;   // Shutdown/Reset: the guest asked for it (else the host)
    std::string reason;   // Shutdown/Reset: "guest-shutdown", "host-signal", "guest-reset", ...
    std::string action;   // GuestPanicked: "pause", "poweroff", "run"
    MigrationStatus migration = MigrationStatus::Unknown;  // Migration
    std::string device;   // DeviceDeleted, VserportChange: the device's id
    bool open = false;    // VserportChange: the guest holds the port open
    std::uint64_t size = 0;  // MemoryDeviceSizeChange: bytes the guest has plugged
    double timestamp = 0;  // seconds since the epoch, as QEMU stamped it

    static MonitorEvent shutdown(bool guest, std::string reason);
    static MonitorEvent of(EventKind kind);
};
MonitorEvent parse_event(const QmpEvent& raw);

// A thread of the guest (query-cpus-fast / query-iothreads): the vCPU
// index or the iothread's id, and its host thread id.
struct GuestThread {
    unsigned index = 0;    // vCPU index (query-cpus-fast "cpu-index")
    std::string id;        // iothread object id ("iothread1")
    int thread_id = 0;     // host TID
};

// A memory module (query-memory-devices, type dimm).
struct MemoryDeviceInfo {
    std::string type;      // "dimm", "virtio-mem"
    std::string id;        // "dimm0", "virtiomem0"
    std::uint64_t addr = 0;
    unsigned slot = 0;
    std::uint64_t size = 0;  // bytes; virtio-mem: what the guest has plugged
};

// A vCPU slot QEMU can plug (query-hotpluggable-cpus): the device type and
// its topology properties (socket-id, core-id, thread-id, ...), and the QOM
// path of the vCPU in it ("" = the slot is empty).
struct HotpluggableCpu {
    std::string type;  // "qemu64-x86_64-cpu"
    nlohmann::json props = nlohmann::json::object();
    std::string qom_path;
    unsigned vcpus_count = 1;
};

// A block backend of a device (query-block): the qdev path of the device
// ("/machine/peripheral/virtio-disk0/virtio-backend") and its top node.
struct BlockDeviceInfo {
    std::string qdev;
    std::string node;    // the top (format) node's name; "" when no medium
    std::string file;    // the top image's file name
    std::string format;  // its driver: qcow2, raw, ...
    bool read_only = false;
    std::vector<std::string> snapshots;  // the names of the top image's internal snapshots
    std::uint64_t virtual_size = 0;      // the top image's size as the guest sees it ("image")
    std::optional<std::uint64_t> actual_size;  // its host storage in use, when QEMU knows it
};

// A device's I/O counters (query-blockstats "stats"), and the highest
// offset written to its image's file (the "parent" protocol node's).
struct BlockStatsInfo {
    std::string qdev;       // as BlockDeviceInfo::qdev
    std::string node;       // the top node's name
    std::uint64_t rd_bytes = 0, wr_bytes = 0, rd_operations = 0, wr_operations = 0, flush_operations = 0;
    std::uint64_t rd_total_time_ns = 0, wr_total_time_ns = 0, flush_total_time_ns = 0;
    std::optional<std::uint64_t> file_wr_highest_offset;
};

// The block backend of the device with alias `alias` in query-block's answer
// (its own QOM path or one below it); null when QEMU has none with a node.
const BlockDeviceInfo* block_of(const std::vector<BlockDeviceInfo>& blocks, std::string_view alias);

// One job of QEMU's job API (query-jobs): snapshot-save, -load, -delete.
struct QemuJobInfo {
    std::string id;
    std::string type;    // "snapshot-save", ...
    std::string status;  // created, running, ..., concluded, null
    std::string error;   // set when it failed
};

// A block job (query-block-jobs): its id, QMP type (commit, stream,
// mirror), progress in bytes, speed limit (bytes/s, 0 = none), whether a
// mirror or active commit is ready to complete, its job status (created,
// running, ready, concluded, ...) and, once concluded, why it failed.
struct BlockJobProgress {
    std::string id;
    std::string type;
    std::uint64_t offset = 0;
    std::uint64_t len = 0;
    std::uint64_t speed = 0;
    bool ready = false;
    std::string status;
    std::string error;
};

// One node of the block graph (query-named-block-nodes, flat): its name,
// driver (qcow2, raw, file, ...) and the file it opened.
struct NamedBlockNode {
    std::string node;
    std::string drv;
    std::string file;
};

class Monitor {
public:
    using EventHandler = std::function<void(const MonitorEvent&)>;
    using CloseHandler = QmpClient::CloseHandler;

    static constexpr std::chrono::milliseconds kDefaultTimeout = QmpClient::kDefaultTimeout;

    // Take a connected socket: greeting and capability negotiation within
    // `greeting_timeout`, then commands wait `command_timeout` each. The
    // handlers run on the transport's reader thread (see qmp.hpp: never call
    // a command from them, post the work elsewhere).
    static Result<std::shared_ptr<Monitor>> open(UniqueFd fd, std::chrono::milliseconds greeting_timeout,
                                                 EventHandler on_event = {}, CloseHandler on_close = {},
                                                 std::chrono::milliseconds command_timeout = kDefaultTimeout);
    static Result<std::shared_ptr<Monitor>> connect(const std::filesystem::path& path,
                                                    std::chrono::milliseconds greeting_timeout,
                                                    EventHandler on_event = {}, CloseHandler on_close = {},
                                                    std::chrono::milliseconds command_timeout = kDefaultTimeout);

    // Where the transport's reader records DEVICE_DELETED for
    // wait_device_deleted: `waiting` holds the ids a detach waits for (from
    // forget_device_deleted until wait_device_deleted returns); a
    // DEVICE_DELETED of another id goes to the event handler instead (the
    // guest released a device after its detach gave up).
    struct DeletedDevices {
        std::mutex mutex;
        std::condition_variable cv;
        std::set<std::string, std::less<>> ids;
        std::multiset<std::string, std::less<>> waiting;
        // The top block node of a disk whose detach gave up (id -> node):
        // deleted when the guest releases the disk late.
        std::map<std::string, std::string, std::less<>> late_nodes;
    };

    Monitor(std::unique_ptr<QmpClient> transport, std::chrono::milliseconds command_timeout,
            std::shared_ptr<DeletedDevices> deleted = nullptr);
    Monitor(const Monitor&) = delete;
    Monitor& operator=(const Monitor&) = delete;

    // --- the guest's vCPUs and power --------------------------------------
    Status stop();              // pause the vCPUs
    Status cont();              // run them
    Status system_reset();      // hard reset
    Status system_powerdown();  // press the ACPI power button
    Status quit();              // QEMU exits
    Result<StatusInfo> query_status();
    // The character devices and their backends (the ptys QEMU opened).
    Result<std::vector<ChardevInfo>> query_chardev();

    // --- devices ------------------------------------------------------------
    // The vCPU and iothread host threads (thread affinity, <cputune>).
    Result<std::vector<GuestThread>> query_cpus_fast();
    Result<std::vector<GuestThread>> query_iothreads();
    // Removable media (change-media) of the device with qdev id `device`:
    // the node inserted ("" = none) and whether its tray is open (query-block).
    struct MediumInfo {
        bool found = false;
        std::string node;
        bool tray_open = false;
    };
    Result<MediumInfo> query_medium(std::string_view device);
    Status blockdev_open_tray(std::string_view device, bool force);
    Status blockdev_close_tray(std::string_view device);
    Status blockdev_remove_medium(std::string_view device);
    Status blockdev_insert_medium(std::string_view device, std::string_view node);
    Status blockdev_add(const nlohmann::json& args);
    Status blockdev_del(std::string_view node);
    // Hotplug: add a device (QMP device_add; `args` holds "driver", "id"
    // and the properties, typed as QMP wants them), ask the guest to release
    // one (device_del: it is gone only once QEMU sends DEVICE_DELETED).
    Status device_add(const nlohmann::json& args);
    Status device_del(std::string_view id);
    // A NIC's host side (QMP netdev_add: "type", "id" and its properties;
    // tap descriptors named as getfd named them), and its removal.
    Status netdev_add(const nlohmann::json& args);
    Status netdev_del(std::string_view id);
    // A QOM object (QMP object-add: "qom-type", "id" and its properties, as
    // the command line's -object JSON has them: a memory module's backend),
    // and its removal.
    Status object_add(const nlohmann::json& args);
    Status object_del(std::string_view id);
    // A character device (QMP chardev-add: "id" and "backend", as
    // chardev_json makes them): the pty path QEMU opened for a pty backend
    // ("" for the others); and its removal (chardev-remove).
    Result<std::string> chardev_add(const nlohmann::json& args);
    Status chardev_remove(std::string_view id);
    // Wait at most `timeout` for DEVICE_DELETED of the device `id`; true when
    // it came (also when it came before the call, after forget_device_deleted).
    bool wait_device_deleted(std::string_view id, std::chrono::milliseconds timeout);
    // Drop a DEVICE_DELETED already seen for `id` and start waiting for it
    // (before a device_del; wait_device_deleted ends the wait).
    void forget_device_deleted(std::string_view id);
    // A disk's top block node, kept while its device `id` may still go late
    // (a detach gave up); take_late_node hands it out once ("" if none).
    void keep_late_node(std::string_view id, std::string node);
    std::string take_late_node(std::string_view id);
    // The memory modules and where the guest sees them.
    Result<std::vector<MemoryDeviceInfo>> query_memory_devices();
    // vCPU hotplug: the slots, present or not.
    Result<std::vector<HotpluggableCpu>> query_hotpluggable_cpus();
    // The balloon: ask the guest to give memory back down to `bytes`
    // (balloon), and its current size (query-balloon "actual").
    Status balloon(std::uint64_t bytes);
    Result<std::uint64_t> query_balloon();
    // A QOM property (qom-get / qom-set), e.g. the balloon's guest-stats.
    Result<nlohmann::json> qom_get(std::string_view path, std::string_view property);
    Status qom_set(std::string_view path, std::string_view property, const nlohmann::json& value);
    // A NIC's link (its device id, "net0"): down = the guest sees no carrier.
    Status set_link(std::string_view device, bool up);
    // What QEMU does when the guest's watchdog fires (watchdog-set-action:
    // reset, shutdown, poweroff, pause, none, inject-nmi).
    Status watchdog_set_action(std::string_view action);

    // Every block device with its top node (query-block).
    Result<std::vector<BlockDeviceInfo>> query_block();
    // Every block device's I/O counters (query-blockstats).
    Result<std::vector<BlockStatsInfo>> query_blockstats();
    // Grow (or shrink) the image under node `node` to `bytes` (block_resize);
    // the guest's device follows.
    Status block_resize(std::string_view node, std::uint64_t bytes);

    // --- block jobs (blockcommit, blockpull, blockcopy) -------------------------
    // Each starts the block job `job_id` with auto-dismiss off: it stays in
    // query_block_jobs() once concluded until job_dismiss(). `speed` in
    // bytes/s, 0 = unlimited. `device` is the root node of the disk's chain.
    // block-commit: `top` ("" = the active layer) into `base`.
    Status block_commit(std::string_view job_id, std::string_view device, std::string_view top, std::string_view base,
                        std::uint64_t speed);
    // block-stream: the layers above `base` ("" = all of them) into `device`.
    Status block_stream(std::string_view job_id, std::string_view device, std::string_view base, std::uint64_t speed);
    // blockdev-mirror of `device` into the node `target`: sync "full" or "top".
    Status blockdev_mirror(std::string_view job_id, std::string_view device, std::string_view target, std::string_view sync,
                           std::uint64_t speed);
    Status block_job_complete(std::string_view job_id);
    Status block_job_cancel(std::string_view job_id, bool force);
    Status block_job_set_speed(std::string_view job_id, std::uint64_t speed);
    Result<std::vector<BlockJobProgress>> query_block_jobs();
    Result<std::vector<NamedBlockNode>> query_named_block_nodes();
    // --- internal snapshots (QEMU 7.2's snapshot jobs) -------------------------
    // Each starts job `job_id` on the format nodes `devices`; the memory
    // state goes into (comes from) the node `vmstate`. The job runs in QEMU:
    // follow it with query_jobs(), then job_dismiss() it.
    Status snapshot_save(std::string_view job_id, std::string_view tag, std::string_view vmstate,
                         const std::vector<std::string>& devices);
    Status snapshot_load(std::string_view job_id, std::string_view tag, std::string_view vmstate,
                         const std::vector<std::string>& devices);
    Status snapshot_delete(std::string_view job_id, std::string_view tag, const std::vector<std::string>& devices);
    Result<std::vector<QemuJobInfo>> query_jobs();
    Status job_dismiss(std::string_view job_id);

    // --- external snapshots -----------------------------------------------------
    // One `transaction` of blockdev-snapshot actions: each (node, overlay)
    // pair puts the format node `overlay` (added with no backing) on top of
    // `node`; QEMU does all of them or none.
    Status blockdev_snapshot(const std::vector<std::pair<std::string, std::string>>& node_overlay);

    // --- the display ------------------------------------------------------------
    // Write the screen to `path` as PNG (screendump format=png); `device`
    // and `head` pick a display other than the primary one ("" = primary).
    Status screendump_png(const std::filesystem::path& path, std::string_view device = {}, std::optional<unsigned> head = {});
    // Press and release keys, given as QEMU key numbers (qnum: XT scancodes,
    // 0x80 | code for the 0xe0-prefixed ones), held `hold_ms` (0: QEMU's default).
    Status send_key(const std::vector<unsigned>& qnums, unsigned hold_ms);

    // --- migration (save, restore) ------------------------------------------
    Status migrate(std::string_view uri);           // "fd:<name>", "tcp:host:port", ...
    Status migrate_cancel();
    Status migrate_incoming(std::string_view uri);  // QEMU started with -incoming defer
    Result<MigrationInfo> query_migrate();
    // Hand `fd` to QEMU under `name` (SCM_RIGHTS), for "fd:<name>" URIs.
    Status getfd(std::string_view name, int fd);
    // Close a descriptor given with getfd that nothing took (a failed hotplug).
    Status closefd(std::string_view name);

    // --- what the binary can do (probe) ---------------------------------------
    Result<QemuVersionInfo> query_version();
    Result<std::vector<MachineInfo>> query_machines();
    // Names of the non-abstract (unless `abstract`) types implementing `implements`.
    Result<std::vector<std::string>> qom_list_types(std::string_view implements, bool abstract = false);
    Result<std::vector<std::string>> query_cpu_definitions();
    Result<QmpSchema> query_qmp_schema();

    // --- the connection ---------------------------------------------------------
    [[nodiscard]] const nlohmann::json& greeting() const;
    [[nodiscard]] bool closed() const;
    void close();
    [[nodiscard]] std::chrono::milliseconds command_timeout() const { return timeout_; }

private:
    Result<nlohmann::json> run(std::string_view command, const nlohmann::json& arguments = nullptr, int fd = -1);
    std::unique_ptr<QmpClient> qmp_;
    std::chrono::milliseconds timeout_;
    std::shared_ptr<DeletedDevices> deleted_;
};

}  // namespace vireo::qemu
