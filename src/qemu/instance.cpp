#include "qemu/instance.hpp"

#include <array>
#include <utility>

namespace vireo::qemu {

using driver::DomainState;
using driver::EventType;
using Command = Expectation::Command;

namespace {

constexpr std::array<std::pair<Phase, std::string_view>, 10> kPhases{{
    {Phase::Starting, "starting"},
    {Phase::Restoring, "restoring"},
    {Phase::Running, "running"},
    {Phase::Paused, "paused"},
    {Phase::Saving, "saving"},
    {Phase::Restarting, "restarting"},
    {Phase::PoweredOff, "powered-off"},
    {Phase::Crashed, "crashed"},
    {Phase::Ending, "ending"},
    {Phase::Ended, "ended"},
}};

Error not_valid(std::string_view what) {
    return Error{ErrorCode::InvalidState, fmt::format("Requested operation is not valid: {}", what)};
}

bool is_restart(const std::string& action) {
    return action == "restart" || action == "rename-restart" || action == "coredump-restart";
}

// Builds one Step: the new state and the actions, in order.
class Builder {
public:
    explicit Builder(const InstanceState& s) : s_(s), original_(s) {}

    InstanceState& state() { return s_; }
    Phase phase() const { return s_.phase; }

    // The registry's state and reason (an action only when they change).
    void show(DomainState st, std::string reason) {
        if (s_.state == st && s_.reason == reason) return;
        s_.state = st;
        s_.reason = reason;
        add(act::SetState{st, std::move(reason)});
    }
    void emit(EventType type, std::string detail) { add(act::Emit{type, std::move(detail)}); }
    void write_status() { add(act::WriteStatus{}); }
    void add(Action a) { actions_.push_back(std::move(a)); }

    // The instance ends: `cause` unless it is already ending for another.
    void end(EndCause cause) {
        s_.phase = Phase::Ending;
        if (!s_.end) s_.end = cause;
        s_.expect = {};
    }
    // Kill QEMU and finish the instance (when the driver decides it ends).
    void kill_and_finish(EndCause cause, bool graceful = false) {
        end(cause);
        add(act::Kill{graceful});
        add(act::Finish{*s_.end});
    }
    // Reset the guest and let it run again (QEMU stopped it at a poweroff,
    // a reboot or a panic); the registry keeps showing it running.
    void restart() {
        s_.phase = Phase::Restarting;
        s_.expect = {};
        add(act::ResetAndCont{});
    }

    void running(std::string reason) {
        s_.phase = Phase::Running;
        show(DomainState::Running, std::move(reason));
        write_status();
    }
    void paused(std::string reason) {
        s_.phase = Phase::Paused;
        show(DomainState::Paused, std::move(reason));
        write_status();
    }

    Step done() { return Step{std::move(s_), std::move(actions_), {}}; }
    Step refuse(Error e) const { return Step{original_, {}, std::unexpected(std::move(e))}; }

private:
    InstanceState s_;
    const InstanceState& original_;
    std::vector<Action> actions_;
};

// The vCPUs stopped (event or reply) while running.
void on_stopped(Builder& b) {
    auto& s = b.state();
    const bool ours = s.expect.command == Command::Stop;
    std::string reason = ours ? s.expect.reason : "unknown";
    if (ours) s.expect = {};
    if (s.phase != Phase::Running) return;
    b.paused(reason);
    b.emit(EventType::Suspended, "Paused");
}

// The vCPUs run again (event or reply).
void on_resumed(Builder& b) {
    auto& s = b.state();
    const Expectation e = s.expect.command == Command::Cont ? s.expect : Expectation{};
    if (e.command == Command::Cont) s.expect = {};
    switch (s.phase) {
        case Phase::Paused:
            b.running(e.command == Command::Cont ? e.reason : "unpaused");
            b.emit(EventType::Resumed, "Unpaused");
            return;
        case Phase::Starting:
        case Phase::Restoring:
            // Only a start's own cont counts; a RESUME at -S without one is noise.
            if (e.command != Command::Cont) return;
            b.running(e.reason);
            b.emit(EventType::Started, e.started);
            return;
        case Phase::Restarting: {
            // Our reset + cont: the guest boots again, which is no pause and no resume.
            std::string reason = s.state == DomainState::Running ? s.reason : "booted";
            b.running(reason);
            return;
        }
        default:
            return;
    }
}

// SHUTDOWN while the guest runs (or is paused, or restarting).
void on_shutdown(Builder& b, const MonitorEvent& ev) {
    auto& s = b.state();
    if (!ev.guest) {
        // Host-initiated (a SIGTERM that is not ours, quit): QEMU exits by
        // itself and the EOF finishes the instance.
        b.end(EndCause::Shutdown);
        return;
    }
    if (s.reboot_requested) {
        s.reboot_requested = false;
        b.restart();
        return;
    }
    const bool reboot = ev.reason == "guest-reset";  // -no-reboot turned a reboot into SHUTDOWN
    const std::string& action = reboot ? s.policy.on_reboot : s.policy.on_poweroff;
    if (is_restart(action)) {
        b.restart();
        return;
    }
    if (reboot && action == "destroy") {
        // libvirt ends a reboot with on_reboot=destroy as a destroy.
        b.kill_and_finish(EndCause::Destroyed);
        return;
    }
    b.emit(EventType::Shutdown, "Finished");
    if (action == "preserve") {
        s.phase = Phase::PoweredOff;
        s.expect = {};
        b.show(DomainState::Shutdown, "user");
        b.write_status();  // so that a restarted daemon still shows it preserved
        return;
    }
    b.kill_and_finish(EndCause::Shutdown);
}

void on_panic(Builder& b) {
    auto& s = b.state();
    b.emit(EventType::Crashed, "Panicked");
    const std::string& action = s.policy.on_crash;
    if (action == "preserve") {
        s.phase = Phase::Crashed;
        s.expect = {};
        b.show(DomainState::Crashed, "panicked");
        b.write_status();
        return;
    }
    if (is_restart(action)) {
        b.restart();
        return;
    }
    b.kill_and_finish(EndCause::Panicked);
}

void on_event(Builder& b, const MonitorEvent& ev) {
    auto& s = b.state();
    switch (s.phase) {
        case Phase::Ending:
        case Phase::Ended:
            return;  // whatever QEMU says now, the instance ends as decided
        case Phase::Starting:
        case Phase::Restoring:
            if (ev.kind == EventKind::Resume) on_resumed(b);
            // QEMU goes down before the start completed; the start job
            // reports it and the EOF (or the job) finishes the instance.
            else if (ev.kind == EventKind::Shutdown) b.end(EndCause::StartFailed);
            return;
        case Phase::Saving:
            // The save job stopped the vCPUs and owns them until it ends.
            // A guest event still in flight from before the stop has no
            // effect now; someone else's SIGTERM does.
        case Phase::PoweredOff:
        case Phase::Crashed:
            // The guest is stopped and kept; only QEMU's own exit changes that.
            if (ev.kind == EventKind::Shutdown && !ev.guest) b.end(EndCause::Shutdown);
            return;
        case Phase::Running:
        case Phase::Paused:
        case Phase::Restarting:
            break;
    }
    switch (ev.kind) {
        case EventKind::Stop:
            // The STOP of a poweroff or panic being turned into a reset is no pause.
            if (s.phase != Phase::Restarting) on_stopped(b);
            return;
        case EventKind::Resume:
            on_resumed(b);
            return;
        case EventKind::Shutdown:
            on_shutdown(b, ev);
            return;
        case EventKind::GuestPanicked:
            on_panic(b);
            return;
        default:
            return;  // RESET, POWERDOWN, MIGRATION, ...: no change of state
    }
}

void on_eof(Builder& b) {
    auto& s = b.state();
    switch (s.phase) {
        case Phase::Ended:
            return;
        case Phase::Ending:
            break;
        case Phase::Starting:
        case Phase::Restoring:
            b.end(EndCause::StartFailed);
            break;
        case Phase::PoweredOff:
            b.end(EndCause::Shutdown);
            break;
        default:
            b.end(EndCause::Crashed);  // QEMU died on its own
            break;
    }
    b.add(act::Reap{});
    b.add(act::Finish{*s.end});
}

// A save ends without an image: the guest runs again if it ran before.
void undo_save(Builder& b) {
    auto& s = b.state();
    const SaveRecord record = *s.save;
    s.save.reset();
    if (!record.was_running) {
        b.paused(record.prior_reason.empty() ? "user" : record.prior_reason);
        return;
    }
    b.paused("unknown");  // until QEMU confirms the cont
    s.expect = Expectation{Command::Cont, "save canceled", ""};
    b.add(act::Cont{});
}

std::string describe_phase_for_refusal(const InstanceState& s) {
    switch (s.phase) {
        case Phase::Starting:
        case Phase::Restoring: return "domain is starting up";
        case Phase::Saving: return "domain is being saved";
        case Phase::Ending:
        case Phase::Ended: return "domain is not running";
        default: return fmt::format("domain is {}", driver::state_name(s.state));
    }
}

void on_reattach(Builder& b, const in::Reattach& r) {
    auto& s = b.state();
    s.expect = {};
    const bool was_starting = r.phase ? (*r.phase == Phase::Starting || *r.phase == Phase::Restoring)
                                      : (r.state == DomainState::Paused && r.reason == "starting up");
    if (was_starting) {
        // The previous daemon died before the start completed: it was never
        // acknowledged, so it fails, as a start that QEMU left at -S does.
        b.kill_and_finish(EndCause::StartFailed);
        return;
    }
    if (r.phase == Phase::Saving && r.save) {
        const SaveRecord& save = *r.save;
        if (save.written) {
            // Complete and synced before the daemon died: finish the save.
            b.add(act::CompleteFile{save.temp_file, save.target});
            b.add(act::RecordJob{driver::JobOperation::Save, true, ""});
            b.kill_and_finish(EndCause::Saved);
            return;
        }
        // Cut short: no image, and the guest as it was before the save.
        b.add(act::CancelMigration{});
        b.add(act::DiscardFile{save.temp_file});
        b.add(act::RecordJob{driver::JobOperation::Save, false, "the daemon stopped during the save"});
        s.phase = Phase::Saving;
        s.save = save;
        undo_save(b);
        return;
    }
    const bool was_running = r.state == DomainState::Running;
    if (!r.qemu) {
        b.paused(was_running ? "unknown" : r.reason);
        return;
    }
    switch (*r.qemu) {
        case RunState::Running:
            b.running(was_running ? r.reason : "unpaused");
            return;
        case RunState::GuestPanicked:
            s.phase = Phase::Crashed;
            b.show(DomainState::Crashed, "panicked");
            b.write_status();
            return;
        case RunState::Shutdown:
            if (r.phase == Phase::PoweredOff || r.state == DomainState::Shutdown) {
                // Powered off with on_poweroff=preserve, and so recorded.
                s.phase = Phase::PoweredOff;
                b.show(DomainState::Shutdown, "user");
                b.write_status();
                return;
            }
            // The guest powered off while no driver watched: apply on_poweroff now.
            s.phase = Phase::Running;
            on_shutdown(b, MonitorEvent::shutdown(true, "guest-shutdown"));
            return;
        default:
            b.paused(was_running ? "unknown" : r.reason);
            return;
    }
}

}  // namespace

std::string_view phase_name(Phase p) {
    for (const auto& [v, n] : kPhases)
        if (v == p) return n;
    return "unknown";
}

std::optional<Phase> parse_phase(std::string_view name) {
    for (const auto& [v, n] : kPhases)
        if (n == name) return v;
    return std::nullopt;
}

EndReport end_report(EndCause cause) {
    switch (cause) {
        case EndCause::Shutdown: return {"shutdown", EventType::Stopped, "Shutdown"};
        case EndCause::Destroyed: return {"destroyed", EventType::Stopped, "Destroyed"};
        case EndCause::Crashed: return {"crashed", EventType::Stopped, "Failed"};
        case EndCause::Panicked: return {"crashed", EventType::Stopped, "Crashed"};
        case EndCause::Saved: return {"saved", EventType::Stopped, "Saved"};
        case EndCause::StartFailed: return {"failed", EventType::Stopped, "Failed"};
    }
    return {"unknown", EventType::Stopped, "Failed"};
}

InstanceState starting_state(LifecyclePolicy policy) {
    InstanceState s;
    s.policy = std::move(policy);
    return s;
}

Step transition(const InstanceState& state, const Input& input) {
    Builder b(state);
    auto& s = b.state();
    const Phase phase = state.phase;
    const bool starting = phase == Phase::Starting || phase == Phase::Restoring;

    return std::visit(
        [&](const auto& i) -> Step {
            using T = std::decay_t<decltype(i)>;
            if constexpr (std::is_same_v<T, in::Event>) {
                on_event(b, i.event);
            } else if constexpr (std::is_same_v<T, in::Eof>) {
                on_eof(b);
            } else if constexpr (std::is_same_v<T, in::Finished>) {
                s.phase = Phase::Ended;
                s.state = DomainState::Shutoff;
                if (!s.end) s.end = EndCause::Crashed;
                s.reason = std::string(end_report(*s.end).reason);
                s.expect = {};
            } else if constexpr (std::is_same_v<T, in::Incoming>) {
                if (phase != Phase::Starting) return b.refuse(not_valid(describe_phase_for_refusal(state)));
                s.phase = Phase::Restoring;
                b.write_status();
            } else if constexpr (std::is_same_v<T, in::Resume>) {
                if (phase == Phase::Paused && i.started.empty()) {
                    s.expect = Expectation{Command::Cont, i.reason, ""};
                } else if (starting && !i.started.empty()) {
                    s.expect = Expectation{Command::Cont, i.reason, i.started};
                } else {
                    return b.refuse(not_valid(phase == Phase::Running ? "domain is not paused"
                                                                      : describe_phase_for_refusal(state)));
                }
            } else if constexpr (std::is_same_v<T, in::Pause>) {
                if (phase != Phase::Running) return b.refuse(not_valid(describe_phase_for_refusal(state)));
                s.expect = Expectation{Command::Stop, i.reason, ""};
            } else if constexpr (std::is_same_v<T, in::Reply>) {
                if (s.expect.command != i.command || i.command == Command::None) return b.done();
                if (!i.ok) {
                    s.expect = {};
                } else if (i.command == Command::Stop) {
                    on_stopped(b);
                } else {
                    on_resumed(b);
                }
            } else if constexpr (std::is_same_v<T, in::StartedPaused>) {
                if (!starting) return b.refuse(not_valid(describe_phase_for_refusal(state)));
                b.paused("user");
                b.emit(EventType::Started, i.started);
                b.emit(EventType::Suspended, "Paused");
            } else if constexpr (std::is_same_v<T, in::StartAborted>) {
                if (starting || phase == Phase::Ending) b.kill_and_finish(EndCause::StartFailed);
            } else if constexpr (std::is_same_v<T, in::PowerButton>) {
                if (phase != Phase::Running && phase != Phase::Paused)
                    return b.refuse(not_valid(describe_phase_for_refusal(state)));
                if (i.reboot) s.reboot_requested = true;
            } else if constexpr (std::is_same_v<T, in::PowerButtonFailed>) {
                s.reboot_requested = false;
            } else if constexpr (std::is_same_v<T, in::Destroy>) {
                if (phase == Phase::Ended) return b.refuse(not_valid("domain is not running"));
                b.end(EndCause::Destroyed);
                b.add(act::SignalTerm{});
            } else if constexpr (std::is_same_v<T, in::DestroyKill>) {
                if (phase != Phase::Ended) b.kill_and_finish(EndCause::Destroyed, i.graceful);
            } else if constexpr (std::is_same_v<T, in::SaveBegin>) {
                if (phase != Phase::Running && phase != Phase::Paused)
                    return b.refuse(not_valid(describe_phase_for_refusal(state)));
                SaveRecord record = i.record;
                record.was_running = phase == Phase::Running;
                record.prior_reason = state.reason;
                record.written = false;
                s.phase = Phase::Saving;
                s.save = record;
                s.expect = {};
                b.show(DomainState::Paused, "saving");
                b.write_status();  // before the file exists: a restarted daemon can clean up
                if (record.was_running) b.emit(EventType::Suspended, "Paused");
            } else if constexpr (std::is_same_v<T, in::SaveWritten>) {
                if (phase != Phase::Saving) return b.refuse(not_valid("domain is not running"));
                s.save->written = true;
                b.write_status();
            } else if constexpr (std::is_same_v<T, in::SaveDone>) {
                if (phase != Phase::Saving) return b.refuse(not_valid("domain is not running"));
                b.kill_and_finish(EndCause::Saved);
            } else if constexpr (std::is_same_v<T, in::SaveFailed>) {
                if (phase == Phase::Saving) undo_save(b);
                else s.save.reset();
            } else if constexpr (std::is_same_v<T, in::RestartDone>) {
                // Success is QEMU's RESUME, which comes after the STOP of the
                // poweroff or panic (still queued when the reply is here):
                // until then the phase stays, so that STOP is no pause.
                if (phase == Phase::Restarting && !i.ok) b.paused("unknown");  // QEMU kept the guest stopped
            } else if constexpr (std::is_same_v<T, in::Reattach>) {
                on_reattach(b, i);
            }
            return b.done();
        },
        input);
}

std::string describe(const Action& action) {
    return std::visit(
        [](const auto& a) -> std::string {
            using T = std::decay_t<decltype(a)>;
            if constexpr (std::is_same_v<T, act::SetState>)
                return fmt::format("SetState({}, {})", driver::state_name(a.state), a.reason);
            else if constexpr (std::is_same_v<T, act::Emit>)
                return fmt::format("Emit({}/{})", driver::event_name(a.type), a.detail);
            else if constexpr (std::is_same_v<T, act::WriteStatus>)
                return "WriteStatus";
            else if constexpr (std::is_same_v<T, act::SignalTerm>)
                return "SignalTerm";
            else if constexpr (std::is_same_v<T, act::Kill>)
                return a.graceful ? "Kill(graceful)" : "Kill";
            else if constexpr (std::is_same_v<T, act::Reap>)
                return "Reap";
            else if constexpr (std::is_same_v<T, act::ResetAndCont>)
                return "ResetAndCont";
            else if constexpr (std::is_same_v<T, act::Cont>)
                return "Cont";
            else if constexpr (std::is_same_v<T, act::CancelMigration>)
                return "CancelMigration";
            else if constexpr (std::is_same_v<T, act::DiscardFile>)
                return fmt::format("DiscardFile({})", a.path);
            else if constexpr (std::is_same_v<T, act::CompleteFile>)
                return fmt::format("CompleteFile({} -> {})", a.from, a.to);
            else if constexpr (std::is_same_v<T, act::RecordJob>)
                return fmt::format("RecordJob({}, {})", driver::job_operation_name(a.operation),
                                   a.ok ? "completed" : "failed");
            else
                return fmt::format("Finish({})", end_report(a.cause).reason);
        },
        action);
}

std::string describe(const std::vector<Action>& actions) {
    std::string out;
    for (const auto& a : actions) {
        if (!out.empty()) out += "; ";
        out += describe(a);
    }
    return out;
}

}  // namespace vireo::qemu
