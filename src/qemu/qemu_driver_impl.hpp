// Internals of the QEMU driver shared by its source files (not an interface).
//
//   qemu_instance.cpp   a running instance: its state machine (instance.hpp)
//                       fed with monitor events and job requests, the actions
//                       applied, the runtime status, the end of an instance
//   qemu_lifecycle.cpp  start in phases (prepare, launch, connect, incoming,
//                       resume), reattach after a daemon restart, autostart
//   qemu_save.cpp       save / managedsave / restore as async jobs
//   qemu_driver.cpp     the Driver API on top of these
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "driver/event_bus.hpp"
#include "driver/job.hpp"
#include "driver/keycodes.hpp"
#include "driver/ops/domain.hpp"
#include "driver/ops/snapshot.hpp"
#include "driver/persistence.hpp"
#include "driver/registry.hpp"
#include "driver/snapshot_store.hpp"
#include "driver/storage_links.hpp"
#include "qemu/instance.hpp"
#include "qemu/monitor.hpp"
#include "qemu/probe.hpp"
#include "qemu/process.hpp"
#include "qemu/qemu_driver.hpp"
#include "qemu/save_image.hpp"
#include "qemu/swtpm.hpp"
#include "security/dac.hpp"
#include "security/mount_ns.hpp"

namespace vireo::qemu {

using driver::DomainDefinition;
using driver::DomainFields;
using driver::DomainObject;
using driver::DomainState;
using driver::EventType;
using driver::JobGuard;

// Per running instance of a domain, in DomainFields::priv. Every field but
// `machine` is set when the instance is installed and never changes; the
// machine changes only under the domain's mutex, through
// QemuDriverImpl::apply().
// libvirt's guest agent timeout values (virDomainAgentResponseTimeoutValues).
inline constexpr int kAgentTimeoutBlock = -2, kAgentTimeoutDefault = -1, kAgentTimeoutNoWait = 0;

struct BlockJobRun;    // qemu_block_jobs.cpp
struct BlockWatcher;  // qemu_block_jobs.cpp

struct QemuPrivate final : driver::DomainPrivate {
    std::uint64_t instance = 0;  // unique per start, to match events to a run
    ProcessId proc;
    std::shared_ptr<Monitor> monitor;
    std::string runtime_prefix;  // <rundir>/<name> (or uuid)
    std::string monitor_path;
    std::string console_socket;  // first serial's socket ("" when none)
    // Paths of the <disk type='volume'> disks as resolved at start (the live
    // XML keeps pool/volume), reported as disk users to the pools.
    std::vector<std::string> volume_paths;
    // The passt processes of the NICs with <backend type='passt'/>.
    std::vector<ProcessId> passt;
    // The swtpm of an emulated TPM (it also ends by itself with QEMU).
    std::vector<ProcessId> swtpm;

    InstanceState machine;

    // Serializes the writes of this instance's runtime status file with its
    // removal (see write_status); status_closed: removed, never write again.
    std::mutex status_mutex;
    bool status_closed = false;
    // The instance was finished (finish_instance() is done).
    bool finished = false;
    std::condition_variable finished_cv;

    // One guest agent call at a time (QEMU serves one client on the
    // agent's socket; a second would wait behind the first's timeout).
    std::mutex agent_mutex;
    // guest-agent-timeout as libvirt has it: kAgentTimeoutBlock,
    // kAgentTimeoutDefault, kAgentTimeoutNoWait or seconds.
    std::atomic<int> agent_timeout{kAgentTimeoutDefault};

    // Block jobs (qemu_block_jobs.cpp), by disk target: the running one, or
    // the last one's record once it ended (blockjob --info, --wait).
    std::mutex block_jobs_mutex;
    std::map<std::string, std::shared_ptr<BlockJobRun>, std::less<>> block_jobs;
};

std::shared_ptr<QemuPrivate> qemu_private(const DomainFields& f);

// The save image a start restores from: the file positioned at QEMU's
// migration stream, and how that stream is compressed.
struct RestoreSource {
    UniqueFd fd;
    SaveCompression compression = SaveCompression::None;
    bool was_running = true;
    std::uint64_t data_offset = 0;  // where the stream starts
    std::uint64_t size = 0;         // the file's size (progress)
};

// A descriptor to hand to QEMU at exec under a name (a tap, vhost-net).
struct LaunchFd {
    std::string name;
    UniqueFd fd;
};

struct StartOptions {
    StartOptions() = default;
    explicit StartOptions(bool leave_paused) : paused(leave_paused) {}

    bool paused = false;
    RestoreSource* restore = nullptr;  // incoming: restore this saved state
    std::vector<LaunchFd> fds;
    driver::AsyncJob* job = nullptr;   // the async job to report to (restore), if any
};

// Everything a start needs, decided before anything is created (prepare()):
// the live definition, the command line (descriptor numbers included), the
// runtime paths.
struct LaunchPlan {
    static constexpr int kMonitorFd = 3;  // QEMU's number of the monitor socket

    std::string name;
    std::filesystem::path emulator;
    std::shared_ptr<const QemuCaps> caps;
    DomainDefinition live;
    int id = -1;
    std::vector<std::string> argv;
    std::string prefix;        // runtime files: <prefix>.monitor, .pid, .<alias>.sock
    std::string monitor_path;
    std::string console_socket;
    std::vector<std::string> volume_paths;
    std::vector<LaunchFd> fds;  // QEMU numbers kMonitorFd + 1, + 2, ... in this order
    LifecyclePolicy policy;
    // The NICs' host side made at launch (plug_nics), undone by unplug_nics.
    std::vector<ProcessId> passt;
    // swtpm of an emulated TPM: the programs (prepare), the process (launch).
    SwtpmPrograms swtpm_programs;
    std::vector<ProcessId> swtpm;
    // Guest isolation (system mode, qemu_security.cpp): the identity QEMU
    // runs as (none: the daemon's), whether its files are given to it, and
    // whether the id was allocated for this start (freed with the devices).
    std::optional<security::Identity> identity;
    bool relabel = false;
    bool dynamic_id = false;
    bool kvm = false;
    // <disk type='volume'> disks: target dev -> the resolved path.
    std::vector<std::pair<std::string, std::string>> for_qemu_disks;
    // QEMU's private /dev and /tmp (null: the daemon's mounts).
    std::shared_ptr<const security::MountSetup> mounts;

    // The number QEMU knows the descriptor `name` by (-1 when none).
    [[nodiscard]] int fd_number(std::string_view name) const;
};

// Everything the driver owns.
struct QemuDriverImpl {
    QemuDriverConfig cfg;
    driver::DomainRegistry registry;
    driver::EventBus events;
    driver::Persistence persistence;
    // Snapshot metadata: <confdir>/snapshot/<domain>/ (qemu_snapshot.cpp).
    driver::SnapshotStore snapshots;
    CapsCache caps;
    // The async jobs (save, restore) in progress: cfg.jobs when given (the
    // daemon shares one with the pools), else the driver's own.
    std::shared_ptr<driver::JobTracker> jobs;
    // How QEMU processes are spawned, watched and killed (a fake in unit tests).
    std::shared_ptr<ProcessControl> processes = host_processes();
    std::atomic<std::uint64_t> next_instance{1};

    // The event worker: monitor reader threads post here, so that handling
    // an event may issue monitor commands and kill processes.
    std::mutex queue_mutex;
    std::condition_variable queue_cv;
    std::deque<std::function<void()>> queue;
    bool stopping_worker = false;
    std::thread worker;
    // The job worker: work an event starts that must take the domain's job
    // (a device the guest released late). Not the event worker: a job may
    // wait for that one (apply_in_order).
    std::deque<std::function<void()>> job_queue;
    std::thread job_worker;

    // Wakes wait_for_state() callers on every state change.
    std::mutex state_mutex;
    std::condition_variable state_cv;

    explicit QemuDriverImpl(QemuDriverConfig c);
    ~QemuDriverImpl();

    // Queue work for the event worker; false when it has stopped.
    bool post(std::function<void()> fn);
    bool post_job_work(std::function<void()> fn);
    bool post_to(std::deque<std::function<void()>>& to, std::function<void()> fn);
    void worker_loop(std::deque<std::function<void()>>& from);
    void notify_state() {
        std::lock_guard lk(state_mutex);
        state_cv.notify_all();
    }
    void emit(EventType type, std::string detail, const DomainObject& obj, std::uint64_t size_kib = 0) {
        events.publish(type, std::move(detail), obj.name(), obj.uuid(), size_kib);
        notify_state();
    }

    // --- paths ---------------------------------------------------------------
    std::string runtime_prefix(const std::string& name, const Uuid& uuid) const;
    std::filesystem::path log_file(std::string_view name) const { return cfg.logdir / (std::string(name) + ".log"); }
    std::filesystem::path console_log(std::string_view name) const {
        return cfg.logdir / (std::string(name) + "-console.log");
    }
    std::filesystem::path managed_save_path(std::string_view name) const {
        return cfg.savedir / (std::string(name) + ".save");
    }

    // --- a running instance (qemu_instance.cpp) --------------------------------
    // Feed `input` to the instance's machine and apply the actions (and the
    // inputs their results produce) on the calling thread. The request's
    // verdict (a refusal) or the first action that failed is the result;
    // NotRunning when `priv` is no longer the domain's instance.
    Status apply(const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv, Input input);
    // apply() on the event worker, after every monitor event received so
    // far, and wait for it. For the reply to a stop or cont: QEMU sends
    // their STOP/RESUME event before the reply, and the machine must see
    // them in that order (else an event still queued from before, such as
    // the STOP of a save's pause, would be taken for a new one later).
    Status apply_in_order(const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv,
                          Input input);
    // Open the monitor of a live process; its events and EOF are fed to the
    // instance `instance` of `obj` on the event worker.
    Result<std::shared_ptr<Monitor>> attach_monitor(const std::shared_ptr<DomainObject>& obj, std::uint64_t instance,
                                                    const std::string& path, std::chrono::milliseconds timeout,
                                                    UniqueFd connected = {});
    // Make `priv` the domain's running instance (active, with the state
    // and reason of its machine) and record it.
    void install(const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv,
                 const DomainDefinition& live, int id);
    // install() and apply(first) at once (reattach: the recorded state is
    // interpreted before any event is).
    Status install_with(const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv,
                        const DomainDefinition& live, int id, Input first);
    struct Installation {
        const DomainDefinition& live;
        int id;
    };
    Status apply(const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv, Input input,
                 const Installation* installation);
    // An EOF that came before the instance was installed found nobody to
    // tell: apply it now.
    void check_monitor(const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv);
    // The instance `instance` of obj if it is still the current one.
    std::shared_ptr<QemuPrivate> current(DomainObject& obj, std::uint64_t instance);
    void on_monitor_event(const std::weak_ptr<DomainObject>& weak, std::uint64_t instance, const MonitorEvent& ev);
    void on_monitor_eof(const std::weak_ptr<DomainObject>& weak, std::uint64_t instance);
    void on_port_change(DomainObject& obj, const QemuPrivate& priv, const MonitorEvent& ev);
    void on_memory_size_change(DomainObject& obj, const QemuPrivate& priv, const MonitorEvent& ev);
    // The guest released device `alias` after its detach gave up: as the
    // detach would have, its host side goes, the live definition drops it
    // and device-removed tells (under the domain's job; on the job worker).
    void on_device_released(const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv,
                            const std::string& alias);
    // The new live definition becomes the domain's (and its status file's).
    void publish_live(DomainObject& obj, conf::DomainDef next);
    // End the instance: shut off as `cause` says, event, runtime files
    // removed, a transient domain dropped. False when `priv` already ended.
    bool finish_instance(const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv,
                         EndCause cause);
    Status write_status(DomainObject& obj);
    void remove_runtime_files(const std::string& name, const std::string& prefix);
    // What to report when a monitor command of a job failed: once the
    // instance ends (destroy kills QEMU without waiting for jobs), the
    // domain is not running, which is what the caller needs to hear.
    Error command_error(DomainObject& obj, const std::shared_ptr<QemuPrivate>& priv, const Error& e);

    // Running-instance accessors (copied under the domain's mutex).
    struct Running {
        std::shared_ptr<QemuPrivate> priv;
        DomainState state;
        std::shared_ptr<const conf::DomainDef> def;
    };
    Result<Running> running(DomainObject& obj);

    // --- the guest agent (qemu_agent.cpp) -------------------------------------------
    // Each call runs alone per domain (QemuPrivate::agent_mutex), bounded by
    // its timeout (0 = none).
    // `timeout`: nullopt is the domain's guest-agent-timeout.
    Result<std::string> agent_command(std::string_view ref, std::string_view json,
                                      std::optional<std::chrono::milliseconds> timeout, bool wait_reply);
    Result<driver::GuestTime> agent_get_time(std::string_view ref);
    Status agent_set_time(std::string_view ref, std::optional<std::uint64_t> ns_since_epoch);
    Result<std::string> agent_hostname(std::string_view ref);
    Status agent_shutdown(std::string_view ref, bool reboot);
    Result<std::vector<driver::InterfaceAddress>> agent_interface_addresses(std::string_view ref);
    Result<std::vector<driver::FsInfo>> agent_fs_info(std::string_view ref);
    // Freeze (thaw) the guest's filesystems, all or those at `mountpoints`
    // (one a line); how many.
    Result<driver::FsCount> agent_fs_freeze(std::string_view ref, std::string_view mountpoints, bool thaw);
    Status agent_set_user_password(std::string_view ref, std::string_view user, std::string_view password, bool encrypted);
    Result<driver::GuestVcpus> agent_guest_vcpus(std::string_view ref);
    Status agent_set_guest_vcpus(std::string_view ref, std::string_view cpulist, bool enable);
    Status agent_set_guest_vcpu_count(std::string_view ref, std::uint64_t count);
    Status set_agent_timeout(std::string_view ref, int value);
    // `groups`: driver::guest_info bits; 0 is every group the agent has.
    Result<std::vector<driver::TypedParam>> agent_guest_info(std::string_view ref, unsigned groups);

    // --- disks (qemu_blocks.cpp) ------------------------------------------------------
    // virsh domblkstat: a running domain's counters of disk `device` (its
    // target or source path), or their sum over every disk ("").
    Result<driver::BlockStats> block_stats(std::string_view ref, std::string_view device);
    // virsh domblkinfo: QEMU's view of a running domain's disk, the image
    // itself for a shut-off one.
    Result<driver::BlockInfo> block_info(std::string_view ref, std::string_view device);
    // virsh blockresize: the running domain's disk `path` resized to `bytes`
    // (qcow2: rounded up to 512), under the domain's job.
    Status block_resize(std::string_view ref, std::string_view path, std::uint64_t bytes);

    // --- block jobs (qemu_block_jobs.cpp) -----------------------------------------
    // Each starts a QEMU block job on a running domain's disk, as the domain's
    // async job; a watcher thread follows it to its end and applies it to the
    // definitions.
    Status block_commit(const driver::ops::DomainBlockCommit::Request& r);
    Status block_pull(const driver::ops::DomainBlockPull::Request& r);
    Status block_copy(const driver::ops::DomainBlockCopy::Request& r);
    Result<std::vector<driver::TypedParam>> block_job_info(std::string_view ref, std::string_view path);
    Status block_job_abort(std::string_view ref, std::string_view path, bool pivot, bool async_end);
    Status block_job_set_speed(std::string_view ref, std::string_view path, std::uint64_t bandwidth);
    // True while a block job runs on one of the instance's disks.
    static bool has_block_job(QemuPrivate& priv);
    // The watchers, joined when the driver goes (QEMU's jobs keep running).
    std::mutex block_watch_mutex;
    std::vector<std::shared_ptr<BlockWatcher>> block_watchers;
    std::atomic<bool> block_watch_stop{false};
    void stop_block_watchers();

    // --- lifecycle (qemu_lifecycle.cpp) -------------------------------------------
    // Start the inactive domain (its job held by the caller) with `definition`.
    Status start(const std::shared_ptr<DomainObject>& obj, const DomainDefinition& definition, StartOptions options);
    // The phases of a start. Each failure undoes exactly what the phases
    // before it made: prepare creates nothing; launch creates the runtime
    // files and QEMU; from connect on, the instance is installed and its
    // machine ends it (StartAborted).
    // What define needs to know about this host (conf::DefineHost): the
    // emulator of a guest architecture and its canonical machine types.
    conf::DefineHost define_host();

    Result<LaunchPlan> prepare(const std::shared_ptr<DomainObject>& obj, const DomainDefinition& definition,
                               StartOptions& options);
    void reattach_all();
    // Kill QEMUs left paused by a daemon that died mid-start (pid file, no status).
    void reap_unfinished_starts(const std::set<std::string>& known_prefixes);
    void autostart_all();

    // --- guest NICs (qemu_nics.cpp) ------------------------------------------------
    // prepare: every NIC's host side can be made here (networks configured,
    // privileges, the bridge or host interface exists, vhost-net) -- nothing
    // is created. Names the descriptors each tap NIC will pass in plan.fds
    // (empty until launch) and notes in `live` what the host gives (vhost or
    // not).
    Status prepare_nics(conf::DomainDef& live, LaunchPlan& plan);
    // launch: plug network ports, make the taps / macvtaps / passt, fill
    // plan.fds and the live definition's <target dev>. A failure undoes
    // what it made, and the error names the interface.
    Status plug_nics(LaunchPlan& plan);
    // The end of an instance (or a failed launch): network ports unplugged,
    // macvtaps deleted, passt stopped. Taps go with QEMU's descriptors.
    void unplug_nics(const std::string& domain, const conf::DomainDef& live, const std::vector<ProcessId>& passt);
    // After a daemon restart, for a QEMU still running: the network ports
    // again (plug is idempotent), so that a restarted network driver knows them.
    void replug_nics(const std::string& domain, const conf::DomainDef& live);
    // Hotplug: the host side of one NIC of a running domain, as plug_nics
    // makes it at start. `running` is the live definition with `nic` in it;
    // `nic` gets its <target dev>, the network's bridge and its driver. The
    // descriptors come back under their nic_tap_fd_name / nic_vhost_fd_name
    // names. A failure undoes what it made.
    Result<std::vector<LaunchFd>> plug_hotplug_nic(const std::string& domain, const std::string& prefix,
                                                   const conf::DomainDef& running, conf::Interface& nic);
    // Undo plug_hotplug_nic (the NIC unplugged, or its hotplug failed).
    void unplug_hotplug_nic(const std::string& domain, const conf::Interface& nic);
    // <link state='down'> NICs: QEMU has no option for it, so set_link
    // before the vCPUs run.
    Status apply_link_states(Monitor& monitor, const conf::DomainDef& live);
    // MACs of every domain's current and persistent definitions (for MACs
    // generated at define), except the domain `except`.
    std::set<std::string> macs_in_use(std::string_view except = {});
    // make_definition's mac_in_use: the connection's MACs, collected on the
    // first question only (a definition whose NICs carry MACs never asks).
    std::function<bool(std::string_view)> mac_in_use_check();

    // --- emulated TPM (qemu_swtpm.cpp) ---------------------------------------------
    // launch, before QEMU: the TPM state made by swtpm_setup the first time,
    // swtpm started on its control socket (plan.swtpm) and waited for. A
    // failure stops what it started.
    Status start_swtpm(LaunchPlan& plan, const Uuid& uuid);
    // The end of an instance (or a failed start): swtpm stopped.
    void stop_swtpm(const std::vector<ProcessId>& swtpm);
    // undefine: the domain's TPM state removed (nothing when it has none).
    Status remove_tpm_state(const Uuid& uuid);
    std::filesystem::path swtpm_log(std::string_view name) const {
        return cfg.logdir / (std::string(name) + "-swtpm.log");
    }

    // --- graphics and channels (qemu_devices.cpp) --------------------------------
    // prepare: a free port for each autoport graphics (written into `live`,
    // reserved until release_devices), a descriptor with each graphics
    // password for its secret object (plan.fds).
    Status prepare_graphics(conf::DomainDef& live, LaunchPlan& plan);
    // prepare, once the id is known: the sockets of unix channels without a
    // path, where libvirt puts them (<channeldir>/domain-<id>-<name>/<target
    // name>), and the state of named virtio channels (disconnected).
    Status prepare_channels(conf::DomainDef& live, int id);
    // The same for one channel (attach-device of a channel).
    Status prepare_channel(conf::CharDev& ch, const std::string& domain, int id);
    // A channel's generated socket (and its directory, once empty) removed:
    // release_devices, and a channel's detach.
    void release_channel(const conf::CharDev& ch);
    // launch: the channel directories of prepare_channels.
    Status make_channel_dirs(const conf::DomainDef& live);
    // The end of an instance (or a failed start): its graphics ports free
    // again, its channel sockets and directory removed.
    void release_devices(const conf::DomainDef& live);
    // After a daemon restart: the running domain's graphics ports reserved.
    void reserve_devices(const conf::DomainDef& live);
    std::filesystem::path channel_dir() const;
    // virsh screenshot of a running instance: PNG of `screen` (libvirt's
    // numbering: the heads of the videos in order, 0 = the primary's first).
    Result<driver::Screenshot> screenshot(DomainObject& obj, const Running& run, unsigned screen);
    // virsh send-key: `keys` of `codeset`, held `hold_ms`.
    Status send_key(DomainObject& obj, const Running& run, driver::KeyCodeset codeset, unsigned hold_ms,
                    const std::vector<unsigned>& keys);
    std::mutex ports_mutex;
    std::set<int> graphics_ports;  // autoport ports of this driver's running domains

    // --- guest isolation (qemu_security.cpp) -------------------------------------
    // prepare: the DAC identity of the guest's QEMU (system mode) in `plan`
    // and as the live <seclabel model='dac'>; selinux/apparmor models, a
    // static label naming a missing user, what a non-root QEMU could not do
    // are refused. Nothing is created (a per-guest id is reserved; freed by
    // release_devices).
    Status prepare_security(const std::string& name, conf::DomainDef& live, LaunchPlan& plan);
    // launch, before QEMU: the guest's files given to its identity (owner
    // journal first), the check that it can open everything QEMU will, the
    // mount namespace plan. A failure gives back what it gave.
    Status apply_security(LaunchPlan& plan, const Uuid& uuid);
    // attach-device, change-media of a running instance (live definition
    // `live`): the disk's file given to its QEMU user (writable) or checked
    // readable by it (read-only, shareable), as at start; a block device
    // into a private /dev is refused (not supported yet). What is given is
    // given back when the instance ends.
    Status admit_disk(const conf::DomainDef& live, const conf::Disk& disk, const std::string& prefix);
    // attach-device of a channel: the directory of its generated socket made
    // and, as at start, given to the guest's QEMU user.
    Status admit_channel(const conf::DomainDef& live, const conf::CharDev& ch, const std::string& prefix);
    // The files of the instance with runtime prefix `prefix` given back.
    void restore_labels(const std::string& prefix);
    static std::string owner_journal(const std::string& prefix) { return prefix + ".owners"; }
    // The per-guest id of a live definition freed / held again (reattach).
    void release_identity(const std::string& name, const conf::DomainDef& live);
    void reserve_identity(const std::string& name, const conf::DomainDef& live);
    // qemu.conf's user/group resolved (none: per-guest ids).
    std::optional<security::Identity> shared_identity;
    security::IdAllocator guest_ids;

    // --- storage pools (qemu_pools.cpp) ----------------------------------------
    // File and block disks of the running domains, plus the volumes their
    // runs resolved (what the pools ask before deleting or destroying).
    std::vector<driver::DiskUser> disk_users();
    // Resolve every <disk type='volume'> of `def` to its file or block path
    // and format, in place (for the command line), through cfg.volumes; the
    // paths go to *paths.
    Status resolve_volume_disks(conf::DomainDef& def, std::vector<std::string>* paths);
    // The resolved volume paths of a run, kept in its runtime status so that a
    // restarted driver still reports them as disk users.
    static void save_volume_paths(const std::vector<std::string>& paths, driver::RuntimeStatus& status);
    // At reattach: the recorded paths; for a status written before they were
    // recorded, the live definition's volume disks resolved again.
    std::vector<std::string> load_volume_paths(const std::string& domain, const driver::RuntimeStatus& status,
                                               const conf::DomainDef& live);

    // --- save / restore (qemu_save.cpp) ----------------------------------------
    // Save the running domain into `target` under the async job `job`:
    // written to a temporary file beside it, synced, renamed; on failure or
    // abort no file is left and the guest runs again if it ran.
    Status save(driver::AsyncJobGuard& job, const std::filesystem::path& target);
    Result<RestoreSource> open_restore(const std::filesystem::path& path, DomainDefinition& definition);
    // Feed the saved state to QEMU (started with -incoming defer), reporting
    // progress to `job` and stopping when it is aborted.
    Status receive_saved_state(Monitor& monitor, const RestoreSource& restore, driver::AsyncJob* job);
    // A migration QEMU still runs (a save cut short by a daemon crash): cancel
    // it and wait until QEMU says it ended.
    void cancel_migration(Monitor& monitor);

    // --- snapshots (qemu_snapshot.cpp) ------------------------------------------
    // Each runs under the domain's async job held by the caller.
    Result<std::string> snapshot_create(driver::AsyncJobGuard& job, const driver::ops::SnapshotCreate::Request& r);
    Status snapshot_revert(driver::AsyncJobGuard& job, const driver::ops::SnapshotRevert::Request& r);
    Status snapshot_delete(driver::AsyncJobGuard& job, const driver::ops::SnapshotDelete::Request& r);
    Result<std::vector<driver::SnapshotSummary>> snapshot_list(DomainObject& obj);
    Result<std::string> snapshot_xml(DomainObject& obj, std::string_view name);
    static driver::SnapshotSummary snapshot_summary(const conf::SnapshotDef& s, const std::string& current);
    // A running domain stopped (destroyed) for a revert.
    Status stop_for_revert(const std::shared_ptr<DomainObject>& obj);
    // One disk an internal snapshot covers: its target, image, alias in QEMU.
    struct SnapDisk {
        std::string target;
        std::string path;
        std::string alias;
    };
    Status delete_live_tag(const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv,
                           std::string_view tag, const std::vector<SnapDisk>& disks);
    // External disk-only snapshots (qemu_snapshot_external.cpp): qcow2
    // overlays made on the disks (QEMU's blockdev-snapshot transaction on a
    // running domain, the image engine on a shut-off one), a revert onto a
    // new overlay of the snapshot's images, a delete that commits a shut-off
    // domain's leaf overlay into its base. Nothing changes when they fail.
    Status create_external(const std::shared_ptr<DomainObject>& obj, const conf::SnapshotDef& snap, bool reuse);
    Status revert_external(const std::shared_ptr<DomainObject>& obj, const conf::SnapshotDef& snap,
                           const driver::ops::SnapshotRevert::Request& r);
    Status delete_external(const std::shared_ptr<DomainObject>& obj, const conf::SnapshotDef& snap, bool has_children);
    // The domain other than `except` whose definitions (persistent or live)
    // use image `path` (a disk or a layer of its backing chain).
    std::optional<std::string> image_user(const std::string& path, std::string_view except);
    // `next` becomes the persistent definition (on disk, then in memory).
    Status save_config_def(DomainObject& obj, conf::DomainDef next);
    // Crash safety (snapshot_store.hpp): settle the records of snapshots a
    // stopped daemon was taking: under the domain's job (every snapshot
    // operation starts with it), and for every domain at start-up.
    Status settle_pending(const std::shared_ptr<DomainObject>& obj, const conf::SnapshotDef& pending);
    void settle_pending_snapshots(const std::shared_ptr<DomainObject>& obj);
    void settle_all_pending_snapshots();
};

// Wrap an impl configured by the caller (tests replace `processes` first):
// loads the definitions, reattaches, autostarts, as make_qemu_driver does.
Result<std::unique_ptr<QemuDriver>> make_qemu_driver(std::unique_ptr<QemuDriverImpl> impl);

}  // namespace vireo::qemu
