// Internals of the QEMU driver shared by its source files (not an interface).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "driver/event_bus.hpp"
#include "driver/persistence.hpp"
#include "driver/registry.hpp"
#include "driver/storage_links.hpp"
#include "qemu/probe.hpp"
#include "qemu/process.hpp"
#include "qemu/qemu_driver.hpp"
#include "qemu/qmp.hpp"

namespace vireo::qemu {

using driver::DomainDefinition;
using driver::DomainFields;
using driver::DomainObject;
using driver::DomainState;
using driver::EventType;
using driver::JobGuard;

// Per running instance of a domain, in DomainFields::priv.
// One look at a migration (save: outgoing, restore: incoming): true once
// completed, false while it runs, an error starting with `failure` when QEMU
// reports it failed or cancelled.
Result<bool> migration_completed(QmpClient& qmp, std::string_view failure);

struct QemuPrivate final : driver::DomainPrivate {
    std::uint64_t instance = 0;  // unique per start, to match events to a run
    ProcessId proc;
    std::shared_ptr<QmpClient> qmp;
    std::string runtime_prefix;  // <rundir>/<name> (or uuid)
    std::string monitor_path;
    std::string console_socket;  // first serial's socket ("" when none)

    // Set by jobs, read by event handling (under the domain's mutex).
    bool job_owns_state = false;  // a job sets state itself; ignore STOP/RESUME
    bool stopping = false;        // destroy/save in progress: EOF is expected
    bool fake_reboot = false;     // reboot: on SHUTDOWN, reset and continue
    bool got_shutdown = false;    // QEMU reported SHUTDOWN
    bool destroy_requested = false;  // destroy sent SIGTERM: its end is 'destroyed'
    bool restarting = false;      // on_*=restart reset the guest: not a pause/resume

    // Serializes the writes of this instance's runtime status file with its
    // removal (see write_status); status_closed: removed, never write again.
    std::mutex status_mutex;
    bool status_closed = false;
    // Paths of the <disk type='volume'> disks as resolved at start (the live
    // XML keeps pool/volume), reported as disk users to the pools.
    std::vector<std::string> volume_paths;
};

// Everything the driver owns.
struct QemuDriverImpl {
    QemuDriverConfig cfg;
    driver::DomainRegistry registry;
    driver::EventBus events;
    driver::Persistence persistence;
    CapsCache caps;
    std::atomic<std::uint64_t> next_instance{1};

    // The event worker: QMP reader threads post here, so that handling an
    // event may issue QMP commands and kill processes.
    std::mutex queue_mutex;
    std::condition_variable queue_cv;
    std::deque<std::function<void()>> queue;
    bool stopping_worker = false;
    std::thread worker;

    // Wakes wait_for_state() callers on every state change.
    std::mutex state_mutex;
    std::condition_variable state_cv;

    explicit QemuDriverImpl(QemuDriverConfig c);
    ~QemuDriverImpl();

    void post(std::function<void()> fn);
    void worker_loop();
    void notify_state() {
        std::lock_guard lk(state_mutex);
        state_cv.notify_all();
    }
    void emit(EventType type, std::string detail, const DomainObject& obj) {
        events.publish(type, std::move(detail), obj.name(), obj.uuid());
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

    // --- lifecycle (qemu_lifecycle.cpp) ---------------------------------------
    struct RestoreSource {
        UniqueFd fd;  // the save image, positioned at the migration stream
        // How the stream is compressed: start() runs the decompressor
        // between fd and QEMU.
        SaveCompression compression = SaveCompression::None;
        bool was_running = true;
    };
    // Start the (job-held) inactive domain with `definition`.
    Status start(JobGuard& job, const DomainDefinition& definition, bool paused, RestoreSource* restore);
    // Attach the QMP client of a live process; events go to the worker.
    Result<std::shared_ptr<QmpClient>> attach_monitor(const std::shared_ptr<DomainObject>& obj,
                                                      std::uint64_t instance, const std::string& path,
                                                      std::chrono::milliseconds timeout, UniqueFd connected = {});
    // End an instance: mark shut off, emit, remove runtime files, drop a
    // transient domain. No-op (false) when `instance` is no longer current.
    bool finish_instance(const std::shared_ptr<DomainObject>& obj, std::uint64_t instance, const std::string& reason,
                         EventType event, const std::string& detail);
    // Kill the instance's process (SIGTERM then SIGKILL) and finish it.
    Status kill_and_finish(const std::shared_ptr<DomainObject>& obj, std::uint64_t instance, bool graceful,
                           const std::string& reason, EventType event, const std::string& detail);
    void handle_event(const std::weak_ptr<DomainObject>& weak, std::uint64_t instance, const QmpEvent& ev);
    // Reset the guest QEMU stopped at a poweroff/reboot/panic and let it run.
    void restart_guest(DomainObject& obj, QemuPrivate& priv);
    void handle_eof(const std::weak_ptr<DomainObject>& weak, std::uint64_t instance);
    Status write_status(DomainObject& obj);
    void remove_runtime_files(const std::string& name, const std::string& prefix);
    void reattach_all();
    // Kill QEMUs left paused by a daemon that died mid-start (pid file, no status).
    void reap_unfinished_starts(const std::set<std::string>& known_prefixes);
    void autostart_all();

    // Running-instance accessors (copied under the domain's mutex).
    struct Running {
        std::shared_ptr<QemuPrivate> priv;
        DomainState state;
        std::shared_ptr<const conf::DomainDef> def;
    };
    Result<Running> running(DomainObject& obj);

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
    Status save(JobGuard& job, const std::filesystem::path& path, const std::string& reason_detail);
    Result<RestoreSource> open_restore(const std::filesystem::path& path, DomainDefinition& definition);
};

std::shared_ptr<QemuPrivate> qemu_private(const DomainFields& f);

}  // namespace vireo::qemu
