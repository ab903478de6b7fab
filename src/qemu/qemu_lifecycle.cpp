// Starting QEMU, watching it (QMP events and EOF), ending an instance, and
// reattaching to running QEMU processes after a driver restart.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <optional>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "qemu/command_line.hpp"
#include "qemu/host.hpp"
#include "qemu/qemu_driver_impl.hpp"
#include "qemu/save_compressor.hpp"
#include "util/files.hpp"

#ifndef VIREO_VERSION
#define VIREO_VERSION "0.0.0"
#endif

namespace vireo::qemu {

namespace fs = std::filesystem;
using nlohmann::json;

std::shared_ptr<QemuPrivate> qemu_private(const DomainFields& f) {
    return std::dynamic_pointer_cast<QemuPrivate>(f.priv);
}

namespace {

std::string now_stamp() {
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    return fmt::format("{}.{:03d}+0000", buf, ms);
}

std::uint64_t size_of_file(const fs::path& p) {
    std::error_code ec;
    auto s = fs::file_size(p, ec);
    return ec ? 0 : s;
}

// QEMU's own words from the log, after `offset`: each line without the
// "-msg timestamp=on" prefix.
std::string qemu_error_text(const fs::path& log, std::uint64_t offset) {
    auto text = files::read(log);
    if (!text || text->size() <= offset) return "";
    std::string tail = text->substr(static_cast<std::size_t>(offset));
    std::string out;
    std::size_t pos = 0;
    while (pos < tail.size()) {
        auto nl = tail.find('\n', pos);
        std::string line = tail.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? tail.size() : nl + 1;
        // "2026-11-24T10:00:00.123456Z qemu-system-x86_64: ..." -> drop the stamp.
        if (line.size() > 28 && line[4] == '-' && line[10] == 'T') {
            auto sp = line.find(' ');
            if (sp != std::string::npos) line = line.substr(sp + 1);
        }
        if (line.empty()) continue;
        if (!out.empty()) out += '\n';
        out += line;
    }
    return out;
}

std::string state_reason_name(DomainState s) { return std::string(driver::state_name(s)); }

Status check_disk_sources(const conf::DomainDef& def) {
    auto check = [](const conf::Disk& d, const std::string& type, const conf::DiskSource& src) -> Status {
        std::string path = type == "file" ? src.file : type == "block" ? src.dev : "";
        if (path.empty()) return {};
        struct stat st{};
        if (::stat(path.c_str(), &st) == 0) return {};
        int err = errno;
        if (err == ENOENT)
            return fail(ErrorCode::NotFound, "disk '{}': source '{}' does not exist", d.target_dev, path);
        return std::unexpected(errno_error(fmt::format("disk '{}': source '{}'", d.target_dev, path), err));
    };
    for (const auto& d : def.devices.disks) {
        if (d.source.startup_policy == "optional") continue;
        VIREO_TRY(check(d, d.type, d.source));
        const conf::BackingStore* b = &d.backing;
        while (b && b->present && !b->type.empty()) {
            VIREO_TRY(check(d, b->type, b->source));
            b = b->chain.empty() ? nullptr : &b->chain.front();
        }
    }
    return {};
}

// Wait for QEMU's incoming migration to end. With a decompressor, its
// failure ends the wait with its own words; and a decompressor that ended
// without QEMU completing means the stream was cut short (QEMU 7.2 may not
// notice the end of a pipe in the middle of a stream: it spins on it).
Status wait_incoming(QmpClient& qmp, FilterProcess* decompressor) {
    using Clock = std::chrono::steady_clock;
    std::optional<Clock::time_point> source_ended;
    for (;;) {
        auto completed = migration_completed(qmp, "restoring the saved state failed");
        if (!completed) return std::unexpected(completed.error());
        if (*completed) return {};
        if (decompressor && !source_ended) {
            if (auto done = decompressor->poll()) {
                if (!*done) return std::unexpected(done->error().context("the save image decompressor failed"));
                source_ended = Clock::now();
            }
        }
        if (source_ended && Clock::now() - *source_ended > std::chrono::seconds(10))
            return fail(ErrorCode::Corrupt, "the saved state ends before QEMU's migration stream is complete");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

// Feed a save image's migration stream to QEMU (started with -incoming
// defer): the file itself, or a decompressor's output through a pipe.
Status receive_saved_state(QmpClient& qmp, const QemuDriverImpl::RestoreSource& restore) {
    int from_image = restore.fd.get();
    UniqueFd pipe_read;
    std::optional<FilterProcess> decompressor;
    if (restore.compression != SaveCompression::None) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("create the pipe from the decompressor");
        pipe_read.reset(p[0]);
        UniqueFd pipe_write(p[1]);
        auto started = start_decompressor(restore.compression, restore.fd.get(), pipe_write.get());
        if (!started) return std::unexpected(started.error());
        decompressor = std::move(*started);
        from_image = pipe_read.get();
    }
    Status received = [&]() -> Status {
        VIREO_TRY(qmp.execute_with_fd("getfd", {{"fdname", "vireo-restore"}}, from_image));
        VIREO_TRY(qmp.execute("migrate-incoming", {{"uri", "fd:vireo-restore"}}));
        return wait_incoming(qmp, decompressor ? &*decompressor : nullptr);
    }();
    pipe_read.reset();
    return finish_through_filter(decompressor, std::move(received), "save image decompressor");
}

Result<fs::path> choose_emulator(const conf::DomainDef& def, const QemuDriverConfig& cfg) {
    fs::path emulator = !def.devices.emulator.empty() ? fs::path(def.devices.emulator) : cfg.qemu_binary;
    if (emulator.empty()) {
        auto found = find_qemu_binary(def.os.arch.empty() ? "x86_64" : def.os.arch);
        if (!found) return std::unexpected(found.error());
        emulator = *found;
    }
    if (::access(emulator.c_str(), X_OK) != 0)
        return fail(ErrorCode::NotFound, "emulator '{}' not found or not executable", emulator.string());
    return emulator;
}

}  // namespace

std::string QemuDriverImpl::runtime_prefix(const std::string& name, const Uuid& uuid) const {
    // The longest socket is "<prefix>.channel12.sock"; sun_path holds 107 bytes.
    std::string by_name = (cfg.rundir / name).string();
    if (by_name.size() + 20 < 107 && name.find_first_of(",") == std::string::npos) return by_name;
    return (cfg.rundir / uuid.str()).string();
}

void QemuDriverImpl::remove_runtime_files(const std::string& name, const std::string& prefix) {
    (void)persistence.remove_status(name);
    ::unlink((prefix + ".monitor").c_str());
    ::unlink((prefix + ".pid").c_str());
    std::string base = fs::path(prefix).filename().string() + ".";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(cfg.rundir, ec)) {
        std::string f = e.path().filename().string();
        if (!f.starts_with(base) || !f.ends_with(".sock")) continue;
        std::string middle = f.substr(base.size(), f.size() - base.size() - 5);
        if (!middle.empty() && middle.find('.') == std::string::npos) ::unlink(e.path().c_str());
    }
}

Result<QemuDriverImpl::Running> QemuDriverImpl::running(DomainObject& obj) {
    return obj.with([&](DomainFields& f) -> Result<Running> {
        auto p = qemu_private(f);
        if (!f.active() || !p) return std::unexpected(driver::not_running_error(obj.name()));
        return Running{p, f.state, f.current().def};
    });
}

// The status is copied under the domain's lock but written after it (no
// disk I/O under that lock). Two writers could then put an older snapshot
// over a newer one, or a writer could recreate the file just after the
// instance ended and finish_instance() removed it -- a stale status that a
// restarted daemon would take for a running domain. So each instance has a
// status mutex held from the copy to the end of the write, and
// finish_instance() takes it to mark the instance closed before removing the
// file: every write then happens in copy order and none after the removal.
Status QemuDriverImpl::write_status(DomainObject& obj) {
    auto priv = obj.with([&](DomainFields& f) { return f.active() ? qemu_private(f) : nullptr; });
    if (!priv) return {};
    std::lock_guard status_lock(priv->status_mutex);
    if (priv->status_closed) return {};
    driver::RuntimeStatus st;
    bool ok = obj.with([&](DomainFields& f) {
        auto p = qemu_private(f);
        if (!f.active() || p != priv) return false;
        st.set("pid", static_cast<std::int64_t>(p->proc.pid));
        st.set("pid_start_time", std::to_string(p->proc.start_time));
        st.set("monitor", p->monitor_path);
        st.set("runtime_prefix", p->runtime_prefix);
        st.set("console_socket", p->console_socket);
        st.set("id", static_cast<std::int64_t>(f.id));
        st.set("state", state_reason_name(f.state));
        st.set("reason", f.reason);
        save_volume_paths(p->volume_paths, st);
        st.live_xml = f.current().xml;
        return true;
    });
    if (!ok) return {};
    return persistence.write_status(obj.name(), st);
}

Result<std::shared_ptr<QmpClient>> QemuDriverImpl::attach_monitor(const std::shared_ptr<DomainObject>& obj,
                                                                   std::uint64_t instance, const std::string& path,
                                                                   std::chrono::milliseconds timeout,
                                                                   UniqueFd connected) {
    std::weak_ptr<DomainObject> weak = obj;
    auto on_event = [this, weak, instance](const QmpEvent& ev) {
        post([this, weak, instance, ev] { handle_event(weak, instance, ev); });
    };
    auto on_close = [this, weak, instance](const Error&) { post([this, weak, instance] { handle_eof(weak, instance); }); };
    Result<std::unique_ptr<QmpClient>> client =
        connected ? QmpClient::open(std::move(connected), timeout, on_event, on_close)
                  : QmpClient::connect(path, timeout, on_event, on_close);
    if (!client) return std::unexpected(client.error());
    return std::shared_ptr<QmpClient>(std::move(*client));
}

Status QemuDriverImpl::start(JobGuard& job, const DomainDefinition& definition, bool paused, RestoreSource* restore) {
    const auto& obj = job.ptr();
    const std::string name = obj->name();
    auto failed = [&](const Error& e) { return std::unexpected(e.context(fmt::format("failed to start domain '{}'", name))); };
    const conf::DomainDef& src = *definition.def;

    // Everything that can be checked is checked before anything is created,
    // so that these failures leave no file and no process behind.
    auto accel = accelerator_for(src);
    if (!accel) return failed(accel.error());
    if (*accel == "kvm") {
        if (auto kvm = check_kvm_usable(); !kvm) return failed(kvm.error());
    }
    auto emulator = choose_emulator(src, cfg);
    if (!emulator) return failed(emulator.error());
    auto caps_r = caps.get(*emulator);
    if (!caps_r) return failed(caps_r.error());
    const auto& qcaps = **caps_r;
    if (auto disks = check_disk_sources(src); !disks) return failed(disks.error());
    // <disk type='volume'>: QEMU gets the volume's path; the live XML keeps
    // pool/volume (as libvirt's does).
    conf::DomainDef resolved = src;
    std::vector<std::string> volume_paths;
    if (auto r = resolve_volume_disks(resolved, &volume_paths); !r) return failed(r.error());
    if (!volume_paths.empty()) {
        if (auto disks = check_disk_sources(resolved); !disks) return failed(disks.error());
    }

    conf::DomainDef live = src;
    // Aliases (and addresses) as the live XML and the command line need them,
    // whether or not the model we were given has them (a definition rebuilt
    // from its inactive XML has none: aliases are live-only). Idempotent.
    conf::assign_addresses_and_aliases(live);
    const MachineType* machine = qcaps.find_machine(live.os.machine);
    if (!machine)
        return failed(Error{ErrorCode::Unsupported, fmt::format("machine type '{}' is not supported by {}",
                                                                live.os.machine, emulator->string())});
    live.os.machine = machine->name;
    if (live.os.arch.empty()) live.os.arch = qcaps.arch;
    live.devices.emulator = emulator->string();
    const int id = registry.allocate_id();
    live.id = id;
    DomainDefinition live_def = driver::make_definition(std::move(live));

    VIREO_TRY(files::make_dirs(cfg.rundir, 0700));
    VIREO_TRY(files::make_dirs(cfg.logdir, 0700));
    const std::string prefix = runtime_prefix(name, obj->uuid());
    const std::string monitor_path = prefix + ".monitor";
    auto listener = listen_unix(monitor_path);
    if (!listener) return failed(listener.error());

    CommandLineOptions opts;
    opts.emulator = *emulator;
    opts.caps = &qcaps;
    opts.monitor_fd = listener->get();
    opts.runtime_prefix = prefix;
    opts.console_log = console_log(name);
    opts.incoming_defer = restore != nullptr;
    Result<std::vector<std::string>> argv;
    if (volume_paths.empty()) {
        argv = build_command_line(*live_def.def, opts);
    } else {
        // The live definition (aliases, addresses) with the disks resolved above.
        conf::DomainDef for_qemu = *live_def.def;
        auto& disks = for_qemu.devices.disks;
        for (std::size_t i = 0; i < disks.size() && i < resolved.devices.disks.size(); ++i) {
            if (disks[i].type != "volume") continue;
            disks[i].type = resolved.devices.disks[i].type;
            disks[i].source = resolved.devices.disks[i].source;
            disks[i].driver_type = resolved.devices.disks[i].driver_type;
        }
        argv = build_command_line(for_qemu, opts);
    }
    if (!argv) {
        remove_runtime_files(name, prefix);
        return failed(argv.error());
    }

    const fs::path log = log_file(name);
    {
        std::ofstream out(log, std::ios::app);
        out << fmt::format("{}: starting up vireo {}, QEMU {}\n{}\n", now_stamp(), VIREO_VERSION,
                           qcaps.version_string(), shell_join(*argv));
    }
    const std::uint64_t log_offset = size_of_file(log);

    SpawnSpec spec;
    spec.argv = *argv;
    spec.log_path = log;
    spec.pass_fds = {listener->get()};
    spec.pid_path = prefix + ".pid";
    spec.set_env = qemu_environment(cfg.malloc_hugepages, std::getenv("GLIBC_TUNABLES"));
    auto proc = spawn_detached(spec);
    listener->reset();
    if (!proc) {
        remove_runtime_files(name, prefix);
        return failed(proc.error());
    }
    const std::uint64_t instance = next_instance++;

    // From here on a failure must kill QEMU and report its own words.
    // `ours_first`: our error is the cause and QEMU's words only a detail
    // (a restore whose image cannot be read); else QEMU's words win.
    auto abort_start = [&](const Error& why, bool ours_first = false) {
        (void)terminate_process(*proc, std::chrono::milliseconds(0), false);
        // QEMU writes its error before exiting; a dead process has flushed.
        std::string text = qemu_error_text(log, log_offset);
        remove_runtime_files(name, prefix);
        // Its note of our SIGTERM is no error text.
        if (text.find("terminating on signal") != std::string::npos) text.clear();
        Error e = text.empty() ? why
                  : ours_first ? Error{why.code, fmt::format("{} (QEMU: {})", why.message, text)}
                               : Error{ErrorCode::Hypervisor, text};
        return failed(e);
    };

    auto conn = connect_unix(monitor_path);
    if (!conn) return abort_start(conn.error());
    auto qmp = attach_monitor(obj, instance, monitor_path, cfg.start_timeout, std::move(*conn));
    if (!qmp) return abort_start(qmp.error());

    auto priv = std::make_shared<QemuPrivate>();
    priv->instance = instance;
    priv->proc = *proc;
    priv->qmp = *qmp;
    priv->runtime_prefix = prefix;
    priv->monitor_path = monitor_path;
    priv->job_owns_state = true;
    priv->volume_paths = volume_paths;
    const auto& serials = live_def.def->devices.serials;
    if (!serials.empty() && (serials.front().type == "pty" || serials.front().type == "unix") &&
        serials.front().source_mode != "connect")
        priv->console_socket = serials.front().type == "unix" && !serials.front().source_path.empty()
                                   ? serials.front().source_path
                                   : serial_socket_path(prefix, serials.front().info.alias);

    if (restore) {
        if (auto r = receive_saved_state(**qmp, *restore); !r) return abort_start(r.error(), true);
    }

    // Active (paused, starting up) before the vCPUs run, so that a QEMU death
    // from now on is seen by the event handling.
    obj->with([&](DomainFields& f) {
        f.set_active(live_def, id, DomainState::Paused, "starting up");
        f.priv = priv;
    });
    (void)write_status(*obj);

    // A destroy may kill QEMU as soon as the domain is active, before this
    // start job ends (destroy does not wait for the job to send SIGTERM):
    // then the start did not fail, it was cancelled, and says so.
    auto destroyed_meanwhile = [&] { return obj->with([&](DomainFields&) { return priv->destroy_requested; }); };
    const Error cancelled{ErrorCode::InvalidState,
                          "Requested operation is not valid: the domain was destroyed while it was starting"};

    const bool run = !paused && (!restore || restore->was_running);
    if (run) {
        if (auto r = (*qmp)->execute("cont"); !r) {
            if (destroyed_meanwhile()) return failed(cancelled);
            (void)kill_and_finish(obj, instance, false, "failed", EventType::Stopped, "Failed");
            return failed(r.error());
        }
    }
    std::string reason = run ? (restore ? "restored" : "booted") : "user";
    bool still = obj->with([&](DomainFields& f) {
        auto p = qemu_private(f);
        if (!p || p->instance != instance) return false;
        f.state = run ? DomainState::Running : DomainState::Paused;
        f.reason = reason;
        p->job_owns_state = false;
        return true;
    });
    if (!still) {
        if (destroyed_meanwhile()) return failed(cancelled);
        return failed(Error{ErrorCode::Hypervisor, "QEMU exited while the domain was starting"});
    }
    (void)write_status(*obj);
    emit(EventType::Started, restore ? "Restored" : "Booted", *obj);
    if (!run) emit(EventType::Suspended, "Paused", *obj);
    return {};
}

bool QemuDriverImpl::finish_instance(const std::shared_ptr<DomainObject>& obj, std::uint64_t instance,
                                     const std::string& reason, EventType event, const std::string& detail) {
    std::shared_ptr<QemuPrivate> priv;
    bool transient = false;
    auto owns = [&](DomainFields& f) {
        auto p = qemu_private(f);
        return p && p->instance == instance && f.active() ? p : nullptr;
    };
    auto owned = obj->with([&](DomainFields& f) { return owns(f); });
    if (!owned) return false;
    // Remove the runtime files while the domain is still active: once it is
    // inactive a new start may create files with the same names (monitor
    // socket, pid file), which must not be unlinked here.
    {
        std::lock_guard status_lock(owned->status_mutex);  // see write_status
        owned->status_closed = true;
        remove_runtime_files(obj->name(), owned->runtime_prefix);
    }
    bool ok = obj->with([&](DomainFields& f) {
        auto p = owns(f);
        if (!p) return false;
        priv = p;
        f.set_inactive(reason);
        f.priv.reset();
        transient = !f.persistent();
        return true;
    });
    if (!ok) return false;
    if (priv->qmp) priv->qmp->close();
    emit(event, detail, *obj);
    if (transient) registry.remove(obj);
    notify_state();
    return true;
}

Status QemuDriverImpl::kill_and_finish(const std::shared_ptr<DomainObject>& obj, std::uint64_t instance, bool graceful,
                                       const std::string& reason, EventType event, const std::string& detail) {
    ProcessId proc;
    bool ok = obj->with([&](DomainFields& f) {
        auto p = qemu_private(f);
        if (!p || p->instance != instance) return false;
        p->stopping = true;
        proc = p->proc;
        return true;
    });
    if (!ok) return {};
    auto t = terminate_process(proc, cfg.destroy_grace, graceful);
    if (!t) {
        obj->with([&](DomainFields& f) {
            if (auto p = qemu_private(f); p && p->instance == instance) p->stopping = false;
        });
        return t;
    }
    finish_instance(obj, instance, reason, event, detail);
    return {};
}

void QemuDriverImpl::restart_guest(DomainObject& obj, QemuPrivate& priv) {
    // QEMU stopped the vCPUs (-no-shutdown, or panic=pause); reset and go on.
    obj.with([&](DomainFields&) { priv.restarting = true; });
    auto reset = priv.qmp->execute("system_reset");
    auto cont = reset ? priv.qmp->execute("cont") : Result<nlohmann::json>(std::unexpected(reset.error()));
    if (!cont) {
        obj.with([&](DomainFields&) { priv.restarting = false; });
        spdlog::error("domain '{}': cannot restart the guest: {}", obj.name(), cont.error().message);
    }
}

void QemuDriverImpl::handle_event(const std::weak_ptr<DomainObject>& weak, std::uint64_t instance, const QmpEvent& ev) {
    auto obj = weak.lock();
    if (!obj) return;
    std::shared_ptr<QemuPrivate> priv;
    std::shared_ptr<const conf::DomainDef> def;
    obj->with([&](DomainFields& f) {
        auto p = qemu_private(f);
        if (p && p->instance == instance && f.active()) {
            priv = p;
            def = f.current().def;
        }
    });
    if (!priv) return;

    if (ev.name == "STOP" || ev.name == "RESUME") {
        const bool stop = ev.name == "STOP";
        bool changed = obj->with([&](DomainFields& f) {
            if (priv->job_owns_state || priv->got_shutdown || priv->stopping) return false;
            if (priv->restarting) {
                // The STOP of the poweroff/panic being turned into a reset,
                // and the RESUME of our "cont": a restart, not a pause.
                if (!stop) priv->restarting = false;
                return false;
            }
            if (stop && f.state == DomainState::Running) {
                f.state = DomainState::Paused;
                f.reason = "unknown";
                return true;
            }
            if (!stop && f.state == DomainState::Paused) {
                f.state = DomainState::Running;
                f.reason = "unpaused";
                return true;
            }
            return false;
        });
        if (changed) {
            (void)write_status(*obj);
            emit(stop ? EventType::Suspended : EventType::Resumed, stop ? "Paused" : "Unpaused", *obj);
        }
        return;
    }

    if (ev.name == "SHUTDOWN") {
        std::string why = ev.data.is_object() ? ev.data.value("reason", "") : "";
        if (why.starts_with("host-")) {
            // Host-initiated (SIGTERM from destroy/save, or quit): whoever did
            // it finishes the instance; an external kill ends at EOF as shutdown.
            obj->with([&](DomainFields&) { priv->got_shutdown = true; });
            return;
        }
        bool fake_reboot = obj->with([&](DomainFields&) {
            bool fr = priv->fake_reboot;
            priv->fake_reboot = false;
            if (!fr) priv->got_shutdown = true;
            return fr;
        });
        std::string cause = ev.data.is_object() ? ev.data.value("reason", "") : "";
        const std::string& action = cause == "guest-reset" ? def->on_reboot : def->on_poweroff;
        if (fake_reboot || action == "restart") {
            obj->with([&](DomainFields&) { priv->got_shutdown = false; });
            restart_guest(*obj, *priv);
            return;
        }
        if (cause == "guest-reset" && action == "destroy") {
            // libvirt ends a guest reboot with on_reboot=destroy as a
            // destroy: shut off (destroyed), event Stopped/Destroyed.
            if (auto k = kill_and_finish(obj, instance, false, "destroyed", EventType::Stopped, "Destroyed"); !k)
                spdlog::error("domain '{}': cannot stop QEMU after guest reboot: {}", obj->name(), k.error().message);
            return;
        }
        emit(EventType::Shutdown, "Finished", *obj);
        if (action == "preserve") {
            obj->with([&](DomainFields& f) {
                f.state = DomainState::Shutdown;
                f.reason = "user";
            });
            // Recorded, so that a restarted daemon still shows the preserved
            // domain as it is (reattach_all).
            (void)write_status(*obj);
            notify_state();
            return;
        }
        if (auto k = kill_and_finish(obj, instance, false, "shutdown", EventType::Stopped, "Shutdown"); !k)
            spdlog::error("domain '{}': cannot stop QEMU after guest shutdown: {}", obj->name(), k.error().message);
        return;
    }

    if (ev.name == "GUEST_PANICKED") {
        emit(EventType::Crashed, "Panicked", *obj);
        const std::string& action = def->on_crash;
        if (action == "preserve") {
            obj->with([&](DomainFields& f) {
                f.state = DomainState::Crashed;
                f.reason = "panicked";
            });
            (void)write_status(*obj);
            notify_state();
        } else if (action == "restart" || action == "rename-restart" || action == "coredump-restart") {
            restart_guest(*obj, *priv);
        } else if (auto k = kill_and_finish(obj, instance, false, "crashed", EventType::Stopped, "Crashed"); !k) {
            spdlog::error("domain '{}': cannot stop QEMU after guest panic: {}", obj->name(), k.error().message);
        }
        return;
    }
}

void QemuDriverImpl::handle_eof(const std::weak_ptr<DomainObject>& weak, std::uint64_t instance) {
    auto obj = weak.lock();
    if (!obj) return;
    ProcessId proc;
    bool got_shutdown = false;
    bool destroyed = false;
    bool ours = obj->with([&](DomainFields& f) {
        auto p = qemu_private(f);
        if (!p || p->instance != instance || p->stopping) return false;
        proc = p->proc;
        got_shutdown = p->got_shutdown;
        destroyed = p->destroy_requested;
        return true;
    });
    if (!ours) return;
    // The monitor closed: QEMU is exiting or gone. Make sure it is gone.
    if (!wait_process_exit(proc, std::chrono::seconds(2))) (void)terminate_process(proc, std::chrono::seconds(1), false);
    if (destroyed) finish_instance(obj, instance, "destroyed", EventType::Stopped, "Destroyed");
    else if (got_shutdown) finish_instance(obj, instance, "shutdown", EventType::Stopped, "Shutdown");
    else finish_instance(obj, instance, "crashed", EventType::Stopped, "Failed");
}

namespace {

// Whether `pid` is the QEMU that vireo started for the runtime files named by
// `stem` (a domain name or uuid): its command line carries that name or
// uuid. Guards against killing an unrelated process that reused the pid.
bool is_our_qemu(pid_t pid, const std::string& stem) {
    auto read = files::read(fmt::format("/proc/{}/cmdline", pid));
    if (!read) return false;
    const std::string& cmdline = *read;
    if (cmdline.find("qemu-system") == std::string::npos) return false;
    const std::string by_name = "guest=" + stem + ",";
    const std::string by_uuid = std::string("-uuid") + '\0' + stem + '\0';
    return cmdline.find(by_name) != std::string::npos || cmdline.find(by_uuid) != std::string::npos;
}

}  // namespace

void QemuDriverImpl::reap_unfinished_starts(const std::set<std::string>& known_prefixes) {
    // A QEMU whose pid file exists but which has no runtime status was being
    // started (still paused at -S) when the previous daemon died: that start
    // was never acknowledged, so finish it the way a failed start ends, by
    // killing QEMU and removing its files (libvirt does the same).
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(cfg.rundir, ec)) {
        if (e.path().extension() != ".pid") continue;
        const std::string prefix = (cfg.rundir / e.path().stem()).string();
        if (known_prefixes.contains(prefix)) continue;
        std::ifstream in(e.path());
        long pid = -1;
        in >> pid;
        if (pid > 1 && is_our_qemu(static_cast<pid_t>(pid), e.path().stem().string())) {
            spdlog::warn("QEMU pid {} ({}) was starting when the previous daemon stopped; killing it", pid,
                         e.path().stem().string());
            ProcessId proc{static_cast<pid_t>(pid), process_start_time(static_cast<pid_t>(pid)).value_or(0)};
            (void)terminate_process(proc, std::chrono::seconds(1), false);
        }
        ::unlink(e.path().c_str());
        ::unlink((prefix + ".monitor").c_str());
    }
}

void QemuDriverImpl::reattach_all() {
    int max_id = 0;
    std::set<std::string> known_prefixes;
    for (const auto& name : persistence.status_names()) {
        auto st = persistence.read_status(name);
        if (!st) {
            spdlog::warn("domain '{}': unreadable runtime status: {}", name, st.error().message);
            continue;
        }
        ProcessId proc;
        proc.pid = static_cast<pid_t>(st->get_int("pid").value_or(-1));
        proc.start_time = std::strtoull(st->get("pid_start_time").value_or("0").c_str(), nullptr, 10);
        std::string prefix = st->get("runtime_prefix").value_or((cfg.rundir / name).string());
        known_prefixes.insert(prefix);
        std::string monitor = st->get("monitor").value_or(prefix + ".monitor");
        int id = static_cast<int>(st->get_int("id").value_or(0));
        max_id = std::max(max_id, id);

        if (!process_alive(proc)) {
            spdlog::info("domain '{}': QEMU (pid {}) is gone; marking it shut off", name, proc.pid);
            remove_runtime_files(name, prefix);
            continue;
        }
        conf::ParseFlags live_flags;
        live_flags.live = true;
        live_flags.no_validate = true;
        auto parsed = driver::make_definition(st->live_xml, live_flags);
        if (!parsed) {
            spdlog::error("domain '{}': runtime status has an unusable live definition ({}); leaving QEMU pid {} alone",
                          name, parsed.error().message, proc.pid);
            continue;
        }
        DomainDefinition live = driver::make_live_definition(*parsed, id);
        auto obj = registry.find_by_name(name);
        if (!obj) {
            auto added = registry.add_transient(live);
            if (!added) {
                spdlog::error("domain '{}': cannot register running domain: {}", name, added.error().message);
                continue;
            }
            obj = added->object;
        }
        const std::uint64_t instance = next_instance++;
        auto qmp = attach_monitor(obj, instance, monitor, std::chrono::seconds(10));
        if (!qmp) {
            spdlog::error("domain '{}': QEMU pid {} is alive but its monitor is unusable ({}); killing it", name,
                          proc.pid, qmp.error().message);
            (void)terminate_process(proc, std::chrono::seconds(3), false);
            remove_runtime_files(name, prefix);
            if (obj->with([](DomainFields& f) { return !f.persistent(); })) registry.remove(obj);
            continue;
        }
        auto status = (*qmp)->execute("query-status");
        std::string run_state = status ? status->value("status", "") : "";
        auto priv = std::make_shared<QemuPrivate>();
        priv->instance = instance;
        priv->proc = proc;
        priv->qmp = *qmp;
        priv->runtime_prefix = prefix;
        priv->monitor_path = monitor;
        priv->console_socket = st->get("console_socket").value_or("");
        priv->volume_paths = load_volume_paths(name, *st, *live.def);
        DomainState state = DomainState::Paused;
        std::string reason = st->get("reason").value_or("unknown");
        bool preserved = false;
        if (run_state == "running") {
            state = DomainState::Running;
        } else if (run_state == "guest-panicked") {
            state = DomainState::Crashed;
            reason = "panicked";
        } else if (run_state == "shutdown") {
            priv->got_shutdown = true;
            if (st->get("state").value_or("") == state_reason_name(DomainState::Shutdown)) {
                // Powered off with on_poweroff=preserve, and so recorded:
                // it stays as it was, nothing to apply again.
                state = DomainState::Shutdown;
                preserved = true;
            }
        } else if (state_reason_name(DomainState::Running) == st->get("state").value_or("")) {
            reason = "unknown";  // it was running; something paused it while we were away
        }
        obj->with([&](DomainFields& f) {
            f.set_active(live, id, state, reason);
            f.priv = priv;
        });
        (void)write_status(*obj);
        spdlog::info("domain '{}': reattached to QEMU pid {} ({})", name, proc.pid, run_state);
        if (run_state == "shutdown" && !preserved) {
            // The guest powered off while no driver watched: apply on_poweroff now.
            std::weak_ptr<DomainObject> weak = obj;
            QmpEvent ev{"SHUTDOWN", json{{"guest", true}, {"reason", "guest-shutdown"}}, 0};
            obj->with([&](DomainFields&) { priv->got_shutdown = false; });
            post([this, weak, instance, ev] { handle_event(weak, instance, ev); });
        }
    }
    reap_unfinished_starts(known_prefixes);
    if (max_id + 1 > registry.next_id()) registry.set_next_id(max_id + 1);
}

void QemuDriverImpl::autostart_all() {
    for (const auto& obj : registry.list()) {
        bool want = obj->with([](DomainFields& f) { return f.autostart && !f.active(); });
        if (!want) continue;
        auto job = driver::acquire_job(obj, "start");
        if (!job) continue;
        auto def = obj->with([](DomainFields& f) { return f.config; });
        if (!def || obj->snapshot().active()) continue;
        if (auto s = start(*job, *def, false, nullptr); !s)
            spdlog::error("autostart of domain '{}' failed: {}", obj->name(), s.error().full_message());
    }
}

}  // namespace vireo::qemu
