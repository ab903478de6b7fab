// A running instance: its state machine (instance.hpp) fed with monitor
// events, EOF and the requests of jobs; the actions applied; the runtime
// status written from it; the end of the instance.
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "conf/device_hotplug.hpp"
#include "conf/memory_device.hpp"
#include "qemu/agent.hpp"
#include "qemu/hotplug.hpp"
#include "qemu/qemu_driver_impl.hpp"
#include "util/files.hpp"

namespace vireo::qemu {

namespace fs = std::filesystem;

std::shared_ptr<QemuPrivate> qemu_private(const DomainFields& f) {
    return std::dynamic_pointer_cast<QemuPrivate>(f.priv);
}

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

std::shared_ptr<QemuPrivate> QemuDriverImpl::current(DomainObject& obj, std::uint64_t instance) {
    return obj.with([&](DomainFields& f) -> std::shared_ptr<QemuPrivate> {
        auto p = qemu_private(f);
        return p && p->instance == instance && f.active() ? p : nullptr;
    });
}

Error QemuDriverImpl::command_error(DomainObject& obj, const std::shared_ptr<QemuPrivate>& priv, const Error& e) {
    bool gone = obj.with([&](DomainFields& f) {
        return !priv || qemu_private(f) != priv || priv->machine.phase == Phase::Ending ||
               priv->machine.phase == Phase::Ended;
    });
    return gone ? Error{ErrorCode::InvalidState, "Requested operation is not valid: domain is not running"} : e;
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
        st.set("state", std::string(driver::state_name(f.state)));
        st.set("reason", f.reason);
        st.set("phase", std::string(phase_name(p->machine.phase)));
        st.set("agent_timeout", static_cast<std::int64_t>(p->agent_timeout.load()));
        // The save in progress: a daemon restarted after dying mid-save
        // finishes or undoes it from this (in::Reattach).
        if (const auto& save = p->machine.save) {
            st.set("save_file", save->temp_file);
            st.set("save_target", save->target);
            st.set("save_was_running", static_cast<std::int64_t>(save->was_running));
            st.set("save_prior_reason", save->prior_reason);
            st.set("save_written", static_cast<std::int64_t>(save->written));
        }
        save_volume_paths(p->volume_paths, st);
        st.live_xml = f.current().xml;
        return true;
    });
    if (!ok) return {};
    return persistence.write_status(obj.name(), st);
}

Result<std::shared_ptr<Monitor>> QemuDriverImpl::attach_monitor(const std::shared_ptr<DomainObject>& obj,
                                                                 std::uint64_t instance, const std::string& path,
                                                                 std::chrono::milliseconds timeout,
                                                                 UniqueFd connected) {
    std::weak_ptr<DomainObject> weak = obj;
    auto on_event = [this, weak, instance](const MonitorEvent& ev) {
        post([this, weak, instance, ev] { on_monitor_event(weak, instance, ev); });
    };
    auto on_close = [this, weak, instance](const Error&) {
        post([this, weak, instance] { on_monitor_eof(weak, instance); });
    };
    if (connected)
        return Monitor::open(std::move(connected), timeout, on_event, on_close, cfg.monitor_timeout);
    return Monitor::connect(path, timeout, on_event, on_close, cfg.monitor_timeout);
}

void QemuDriverImpl::install(const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv,
                             const DomainDefinition& live, int id) {
    obj->with([&](DomainFields& f) {
        f.set_active(live, id, priv->machine.state, priv->machine.reason);
        f.priv = priv;
    });
    (void)write_status(*obj);
    notify_state();
}

void QemuDriverImpl::check_monitor(const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv) {
    if (priv->monitor->closed()) (void)apply(obj, priv, in::Eof{});
}

void QemuDriverImpl::on_monitor_event(const std::weak_ptr<DomainObject>& weak, std::uint64_t instance,
                                      const MonitorEvent& ev) {
    auto obj = weak.lock();
    if (!obj) return;
    auto priv = current(*obj, instance);
    if (!priv) return;
    if (ev.kind == EventKind::VserportChange) {
        on_port_change(*obj, *priv, ev);
        return;
    }
    if (ev.kind == EventKind::MemoryDeviceSizeChange) {
        on_memory_size_change(*obj, *priv, ev);
        return;
    }
    if (ev.kind == EventKind::DeviceDeleted) {
        post_job_work([this, obj, priv, alias = ev.device] { on_device_released(obj, priv, alias); });
        return;
    }
    if (auto r = apply(obj, priv, in::Event{ev}); !r)
        spdlog::error("domain '{}': after QEMU event {}: {}", obj->name(), ev.name, r.error().full_message());
}

// The guest opened or closed a virtio-serial port: the channel's state in
// the live XML follows (libvirt's <target state=>), and for the guest
// agent's port an agent-lifecycle event tells who listens.
void QemuDriverImpl::on_port_change(DomainObject& obj, const QemuPrivate& priv, const MonitorEvent& ev) {
    const std::string state = ev.open ? "connected" : "disconnected";
    bool agent = false;
    const bool changed = obj.with([&](DomainFields& f) {
        if (!f.live || qemu_private(f).get() != &priv) return false;
        conf::DomainDef next = *f.live->def;
        for (auto& ch : next.devices.channels) {
            if (ch.info.alias != ev.device || ch.target_state == state) continue;
            ch.target_state = state;
            agent = ch.target_name == agent::kChannelName;
            f.live = driver::make_definition(std::move(next));
            return true;
        }
        return false;
    });
    if (!changed) return;
    (void)write_status(obj);
    if (agent) {
        spdlog::info("domain '{}': the guest agent {}", obj.name(), ev.open ? "connected" : "disconnected");
        emit(EventType::AgentLifecycle, state, obj);
    }
}

// The guest plugged or unplugged virtio-mem blocks: the device's <current>
// in the live XML follows and a memory-device-size-change event tells it,
// as libvirt's do.
void QemuDriverImpl::on_memory_size_change(DomainObject& obj, const QemuPrivate& priv, const MonitorEvent& ev) {
    const bool changed = obj.with([&](DomainFields& f) {
        if (!f.live || qemu_private(f).get() != &priv) return false;
        conf::DomainDef next = *f.live->def;
        for (auto& m : next.devices.memories) {
            if (m.info.alias != ev.device || m.current_kib == ev.size / 1024) continue;
            m.current_kib = ev.size / 1024;
            f.live = driver::make_definition(std::move(next));
            return true;
        }
        return false;
    });
    if (!changed) return;
    (void)write_status(obj);
    emit(EventType::MemoryDeviceSizeChange, ev.device, obj, ev.size / 1024);
}

namespace {

// Index of the device of `alias` in a definition's list, if any.
template <class Device>
std::optional<std::size_t> find_alias(const std::vector<Device>& list, const std::string& alias) {
    for (std::size_t i = 0; i < list.size(); ++i)
        if (list[i].info.alias == alias) return i;
    return std::nullopt;
}

template <class Device>
conf::DomainDef without(const conf::DomainDef& def, std::vector<Device> conf::Devices::*list, std::size_t i) {
    conf::DomainDef out = def;
    auto& v = out.devices.*list;
    v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
    return out;
}

}  // namespace

// The cleanup is the one a timely detach runs after DEVICE_DELETED
// (hotplug.hpp's release_*); an alias the live definition lacks is none of
// vireo's devices (or one a detach already removed).
void QemuDriverImpl::on_device_released(const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv,
                                        const std::string& alias) {
    auto job = driver::acquire_job(obj, "device-removed");
    if (!job) {
        spdlog::warn("domain '{}': the guest released device '{}' late, but: {}", obj->name(), alias, job.error().message);
        return;
    }
    auto run = running(*obj);
    if (!run || run->priv != priv) return;
    Monitor& mon = *priv->monitor;
    const conf::DomainDef& def = *run->def;
    std::optional<conf::DomainDef> next;
    if (auto i = find_alias(def.devices.disks, alias)) {
        const conf::Disk& d = def.devices.disks[*i];
        release_disk_nodes(mon, d, mon.take_late_node(alias));
        next = without(def, &conf::Devices::disks, *i);
    } else if (auto n = find_alias(def.devices.interfaces, alias)) {
        const conf::Interface& nic = def.devices.interfaces[*n];
        release_nic_backend(mon, nic);
        unplug_hotplug_nic(obj->name(), nic);
        next = without(def, &conf::Devices::interfaces, *n);
    } else if (auto m = find_alias(def.devices.memories, alias)) {
        release_memory_backend(mon, def.devices.memories[*m]);
        next = conf::with_memory_detached(def, *m);
    } else {
        auto pluggable = [&]<class Device>(std::type_identity<Device>) {
            const auto list = conf::PluggableKind<Device>::list;
            if (next) return;
            if (auto k = find_alias(def.devices.*list, alias)) {
                release_device_backend(mon, conf::PluggableDevice((def.devices.*list)[*k]));
                if constexpr (std::is_same_v<Device, conf::CharDev>) release_channel((def.devices.*list)[*k]);
                next = without(def, list, *k);
            }
        };
        pluggable(std::type_identity<conf::Rng>{});
        pluggable(std::type_identity<conf::Input>{});
        pluggable(std::type_identity<conf::Watchdog>{});
        pluggable(std::type_identity<conf::CharDev>{});
    }
    if (!next) return;
    spdlog::info("domain '{}': the guest released device '{}' after its detach gave up", obj->name(), alias);
    publish_live(*obj, std::move(*next));
    emit(EventType::DeviceRemoved, alias, *obj);
}

void QemuDriverImpl::publish_live(DomainObject& obj, conf::DomainDef next) {
    auto made = driver::make_definition(std::move(next));
    obj.with([&](DomainFields& f) {
        if (f.live) f.live = made;
    });
    (void)write_status(obj);
}

void QemuDriverImpl::on_monitor_eof(const std::weak_ptr<DomainObject>& weak, std::uint64_t instance) {
    auto obj = weak.lock();
    if (!obj) return;
    auto priv = current(*obj, instance);
    if (!priv) return;
    if (auto r = apply(obj, priv, in::Eof{}); !r)
        spdlog::error("domain '{}': after QEMU's monitor closed: {}", obj->name(), r.error().full_message());
}

namespace {

// system_reset only requests the reset; QEMU performs it in its main loop,
// and a cont before that fails ("Resetting the Virtual Machine is
// required"). Wait until QEMU has left the state that needs the reset.
Status wait_reset_done(Monitor& monitor, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto st = monitor.query_status();
        if (!st) return std::unexpected(st.error());
        if (st->state != RunState::Shutdown && st->state != RunState::GuestPanicked &&
            st->state != RunState::InternalError)
            return {};
        if (std::chrono::steady_clock::now() >= deadline)
            return fail(ErrorCode::Timeout, "QEMU did not reset the guest (still '{}')", run_state_name(st->state));
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

// One action's work. Results of monitor commands come back as inputs
// (`more`), applied after the rest of this step's actions.
struct Executor {
    QemuDriverImpl& d;
    const std::shared_ptr<DomainObject>& obj;
    const std::shared_ptr<QemuPrivate>& priv;
    std::deque<Input>& more;

    Status operator()(const act::SetState&) { return {}; }  // applied under the lock already
    Status operator()(const act::Emit& a) {
        d.emit(a.type, a.detail, *obj);
        return {};
    }
    Status operator()(const act::WriteStatus&) {
        if (auto w = d.write_status(*obj); !w)
            spdlog::warn("domain '{}': cannot write its runtime status: {}", obj->name(), w.error().full_message());
        return {};
    }
    Status operator()(const act::SignalTerm&) { return d.processes->signal(priv->proc, SIGTERM); }
    Status operator()(const act::Kill& a) { return d.processes->terminate(priv->proc, d.cfg.destroy_grace, a.graceful); }
    Status operator()(const act::Reap&) {
        // The monitor closed: QEMU is exiting or gone. Make sure it is gone.
        if (!d.processes->wait_exit(priv->proc, std::chrono::seconds(2)))
            (void)d.processes->terminate(priv->proc, std::chrono::seconds(1), false);
        return {};
    }
    Status operator()(const act::ResetAndCont&) {
        Status r = priv->monitor->system_reset();
        if (r) r = wait_reset_done(*priv->monitor, d.cfg.monitor_timeout);
        if (r) r = priv->monitor->cont();
        if (!r) spdlog::error("domain '{}': cannot restart the guest: {}", obj->name(), r.error().message);
        more.push_back(in::RestartDone{r.has_value()});
        return {};
    }
    Status operator()(const act::Cont&) {
        Status r = priv->monitor->cont();
        if (!r) spdlog::error("domain '{}': cannot resume the guest: {}", obj->name(), r.error().message);
        (void)d.apply_in_order(obj, priv, in::Reply{Expectation::Command::Cont, r.has_value()});
        return {};
    }
    Status operator()(const act::CancelMigration&) {
        d.cancel_migration(*priv->monitor);
        return {};
    }
    Status operator()(const act::DiscardFile& a) {
        if (!a.path.empty() && ::unlink(a.path.c_str()) == 0) (void)files::sync_dir(fs::path(a.path).parent_path());
        return {};
    }
    Status operator()(const act::CompleteFile& a) {
        std::error_code ec;
        if (!fs::exists(a.from, ec)) return {};  // renamed before the daemon died
        if (::rename(a.from.c_str(), a.to.c_str()) != 0)
            return fail_errno(fmt::format("rename the save image '{}' to '{}'", a.from, a.to));
        return files::sync_dir(fs::path(a.to).parent_path());
    }
    Status operator()(const act::RecordJob& a) {
        auto job = driver::begin_async_job(obj, *d.jobs, a.operation, 0, std::chrono::milliseconds(0));
        if (!job) return {};
        job->finish(a.ok ? Status{} : Status{std::unexpected(Error{ErrorCode::OperationFailed, a.error})});
        return {};
    }
    Status operator()(const act::Finish& a) {
        d.finish_instance(obj, priv, a.cause);
        return {};
    }
};

}  // namespace

Status QemuDriverImpl::apply(const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv,
                             Input input) {
    return apply(obj, priv, std::move(input), nullptr);
}

Status QemuDriverImpl::install_with(const std::shared_ptr<DomainObject>& obj,
                                    const std::shared_ptr<QemuPrivate>& priv, const DomainDefinition& live, int id,
                                    Input first) {
    const Installation installation{live, id};
    return apply(obj, priv, std::move(first), &installation);
}

Status QemuDriverImpl::apply(const std::shared_ptr<DomainObject>& obj, const std::shared_ptr<QemuPrivate>& priv,
                             Input input, const Installation* installation) {
    std::deque<Input> pending;
    pending.push_back(std::move(input));
    bool first = true;
    while (!pending.empty()) {
        Input next = std::move(pending.front());
        pending.pop_front();
        std::vector<Action> actions;
        Status verdict;
        bool state_changed = false;
        bool current = obj->with([&](DomainFields& f) {
            if (first && installation) {
                // Installed and given its first input in one critical
                // section: no event can be seen in between.
                f.set_active(installation->live, installation->id, priv->machine.state, priv->machine.reason);
                f.priv = priv;
                state_changed = true;
            }
            if (qemu_private(f) != priv) return false;
            Step step = transition(priv->machine, next);
            if (step.state.phase != priv->machine.phase || !step.actions.empty())
                spdlog::debug("domain '{}': {} -> {}: {}", obj->name(), phase_name(priv->machine.phase),
                              phase_name(step.state.phase), describe(step.actions));
            verdict = std::move(step.verdict);
            priv->machine = std::move(step.state);
            // The registry follows the machine in the same critical section,
            // so that no reader ever sees them disagree.
            for (auto& a : step.actions) {
                if (auto* set = std::get_if<act::SetState>(&a)) {
                    f.state = set->state;
                    f.reason = set->reason;
                    state_changed = true;
                } else {
                    actions.push_back(std::move(a));
                }
            }
            return true;
        });
        if (!current) {
            if (first) return std::unexpected(driver::not_running_error(obj->name()));
            break;
        }
        if (first && !verdict) return verdict;
        first = false;
        if (state_changed) notify_state();
        for (const auto& a : actions) {
            Status r = std::visit(Executor{*this, obj, priv, pending}, a);
            if (!r) return r;  // e.g. a graceful kill that QEMU outlived: the rest waits
        }
    }
    return {};
}

namespace {

// The result of work handed to the event worker; set once (by the work, or
// by the queue dropping it when the driver stops).
struct Completion {
    std::mutex m;
    std::condition_variable cv;
    std::optional<Status> result;
    void set(Status s) {
        std::lock_guard lk(m);
        if (!result) result = std::move(s);
        cv.notify_all();
    }
    Status wait() {
        std::unique_lock lk(m);
        cv.wait(lk, [&] { return result.has_value(); });
        return *result;
    }
};

class SetWhenDropped {
public:
    explicit SetWhenDropped(std::shared_ptr<Completion> c) : completion_(std::move(c)) {}
    SetWhenDropped(const SetWhenDropped&) = delete;
    SetWhenDropped& operator=(const SetWhenDropped&) = delete;
    ~SetWhenDropped() { completion_->set(fail(ErrorCode::InvalidState, "the QEMU driver is stopping")); }

private:
    std::shared_ptr<Completion> completion_;
};

}  // namespace

Status QemuDriverImpl::apply_in_order(const std::shared_ptr<DomainObject>& obj,
                                      const std::shared_ptr<QemuPrivate>& priv, Input input) {
    if (std::this_thread::get_id() == worker.get_id()) return apply(obj, priv, std::move(input));
    auto completion = std::make_shared<Completion>();
    auto dropped = std::make_shared<SetWhenDropped>(completion);
    bool queued = post([this, obj, priv, input, completion, dropped] { completion->set(apply(obj, priv, input)); });
    dropped.reset();
    if (!queued) return apply(obj, priv, std::move(input));
    return completion->wait();
}

bool QemuDriverImpl::finish_instance(const std::shared_ptr<DomainObject>& obj,
                                     const std::shared_ptr<QemuPrivate>& priv, EndCause cause) {
    auto owns = [&](DomainFields& f) { return f.active() && qemu_private(f) == priv; };
    if (!obj->with([&](DomainFields& f) { return owns(f); })) return false;
    // Remove the runtime files while the domain is still active: once it is
    // inactive a new start may create files with the same names (monitor
    // socket, pid file), which must not be unlinked here.
    {
        std::unique_lock status_lock(priv->status_mutex);  // see write_status
        // Two may finish at once (a kill and the EOF it causes): only the
        // first does it -- the second could remove the files of the next
        // start -- and the second returns once it is done, so that its
        // caller (destroy) finds the domain shut off.
        if (priv->status_closed) {
            priv->finished_cv.wait(status_lock, [&] { return priv->finished; });
            return false;
        }
        priv->status_closed = true;
        // The guest's files back to their owners (QEMU is gone or going:
        // its open descriptors do not need the ownership).
        restore_labels(priv->runtime_prefix);
        remove_runtime_files(obj->name(), priv->runtime_prefix);
    }
    auto done = [&] {
        std::lock_guard status_lock(priv->status_mutex);
        priv->finished = true;
        priv->finished_cv.notify_all();
    };
    bool transient = false;
    std::shared_ptr<const conf::DomainDef> live;
    bool ok = obj->with([&](DomainFields& f) {
        if (!owns(f)) return false;
        live = f.current().def.shared();
        if (!priv->machine.end) priv->machine.end = cause;
        priv->machine = transition(priv->machine, in::Finished{}).state;
        f.set_inactive(std::string(end_report(cause).reason));
        f.priv.reset();
        transient = !f.persistent();
        return true;
    });
    if (!ok) {
        done();
        return false;
    }
    priv->monitor->close();
    // What the NICs held outside QEMU (network ports, macvtaps, passt).
    stop_swtpm(priv->swtpm);
    if (live) {
        unplug_nics(obj->name(), *live, priv->passt);
        release_devices(*live);
    }
    const EndReport report = end_report(cause);
    emit(report.event, std::string(report.detail), *obj);
    if (transient) registry.remove(obj);
    notify_state();
    done();
    return true;
}

}  // namespace vireo::qemu
