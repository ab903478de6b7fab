// One running QEMU instance of a domain as a state machine.
//
// Everything that can change a running domain is an input to one pure
// function, transition(state, input) -> (new state, actions):
//   - QEMU's monitor events (SHUTDOWN, STOP, RESUME, GUEST_PANICKED, ...)
//     and the end of the monitor connection (EOF: QEMU exited);
//   - the driver's requests: the phases of a start, pause and resume (and
//     the replies to their stop/cont), the power button, destroy, the steps
//     of a save, a reattach after a daemon restart, the result of an action.
// The driver keeps the state in the domain's private data (under the
// domain's mutex) and only applies the actions: registry state changes,
// lifecycle events, status file writes, signals and kills, monitor commands,
// the end of the instance (QemuDriverImpl::apply, qemu_instance.cpp).
// Nothing here does I/O, so every interleaving of events and requests can be
// tested as plain data (tests/unit/qemu/instance_test.cpp).
//
// Why one machine: an event arrives on the monitor's reader thread while a
// job waits for the reply of its own command; the two orders (event first,
// reply first) must end in the same state, and a job's stop must not be
// reported as if the guest had paused by itself. The expectation below says
// which stop or cont is a job's; the phase says what an event means now.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "driver/driver.hpp"
#include "driver/job.hpp"
#include "qemu/monitor.hpp"
#include "util/error.hpp"

namespace vireo::qemu {

enum class Phase {
    Starting,    // QEMU launched and its monitor connected; the vCPUs never ran yet (a start job holds it)
    Restoring,   // starting, and QEMU reads a saved state (incoming migration)
    Running,     // the vCPUs run
    Paused,      // the vCPUs are stopped (by a user, or by QEMU: I/O error, ...)
    Saving,      // a save: the vCPUs stopped, their state streams into a file
    Restarting,  // on_*=restart or a reboot: system_reset + cont sent, the guest boots again
    PoweredOff,  // the guest powered off; on_poweroff=preserve keeps QEMU (state shutdown)
    Crashed,     // the guest panicked; on_crash=preserve keeps QEMU (state crashed)
    Ending,      // QEMU is being stopped or exits; the instance ends as `end` says
    Ended,       // finished: shut off, runtime files removed
};
std::string_view phase_name(Phase p);  // "starting", "restoring", "running", ...
std::optional<Phase> parse_phase(std::string_view name);

// How an instance ends: the shut-off reason and the Stopped event.
enum class EndCause {
    Shutdown,     // the guest powered off (or QEMU was told to quit): shutoff/shutdown, Stopped/Shutdown
    Destroyed,    // destroy, or a reboot with on_reboot=destroy: shutoff/destroyed, Stopped/Destroyed
    Crashed,      // QEMU died unexpectedly: shutoff/crashed, Stopped/Failed
    Panicked,     // the guest panicked, on_crash=destroy: shutoff/crashed, Stopped/Crashed
    Saved,        // save / managedsave: shutoff/saved, Stopped/Saved
    StartFailed,  // the start did not complete: shutoff/failed, Stopped/Failed
};
struct EndReport {
    std::string_view reason;
    driver::EventType event;
    std::string_view detail;
};
EndReport end_report(EndCause cause);

// <on_poweroff>, <on_reboot>, <on_crash> of the live definition.
struct LifecyclePolicy {
    std::string on_poweroff = "destroy";
    std::string on_reboot = "restart";
    std::string on_crash = "destroy";
};

// The save in progress, as the runtime status records it: a daemon that
// restarts after dying mid-save finishes or undoes it from this.
struct SaveRecord {
    std::string temp_file;     // the image being written, in the target's directory
    std::string target;        // its final name
    bool was_running = false;  // the vCPUs ran before: they run again if the save fails
    std::string prior_reason;  // the state reason before the save
    bool written = false;      // the image is complete and synced; only the rename is left
};

// A stop or cont that a job sent and whose effect is not confirmed yet: the
// first of its reply and QEMU's STOP/RESUME event confirms it, with the
// job's reason (the other one, later, is then nothing new).
struct Expectation {
    enum class Command { None, Stop, Cont };
    Command command = Command::None;
    std::string reason;   // the state reason it leads to ("user", "unpaused", "booted", ...)
    std::string started;  // a start's cont: the Started event's detail ("Booted", "Restored")
};

struct InstanceState {
    Phase phase = Phase::Starting;
    // What the registry shows for the domain (the machine is its only writer
    // while the instance lives).
    driver::DomainState state = driver::DomainState::Paused;
    std::string reason = "starting up";
    LifecyclePolicy policy;
    bool reboot_requested = false;  // a reboot: the guest's next poweroff becomes a reset
    Expectation expect;
    std::optional<EndCause> end;     // Ending/Ended: how
    std::optional<SaveRecord> save;  // Saving: the save in progress
};

// --- inputs ------------------------------------------------------------------
namespace in {
struct Event {  // a monitor event
    MonitorEvent event;
};
struct Eof {};        // the monitor closed: QEMU exited or is exiting
struct Finished {};   // the instance was finished (set by the finish action)
struct Incoming {};   // a start: QEMU is about to read a saved state
struct Resume {       // a job is about to send cont
    std::string reason;   // the state reason once running
    std::string started;  // non-empty for a start: its Started event detail
};
struct Pause {  // a job is about to send stop
    std::string reason;
};
struct Reply {  // the reply to that stop or cont (or to an action's cont)
    Expectation::Command command = Expectation::Command::None;
    bool ok = false;
};
struct StartedPaused {  // a start that leaves the vCPUs paused is complete
    std::string started;
};
struct StartAborted {};  // a start gives up: kill QEMU, end as failed
struct PowerButton {     // shutdown or reboot is about to press the ACPI button
    bool reboot = false;
};
struct PowerButtonFailed {};  // ... and that failed
struct Destroy {};            // destroy, first step (before its job): SIGTERM
struct DestroyKill {          // destroy, holding its job: kill and finish
    bool graceful = false;
};
struct SaveBegin {  // a save starts (temp_file, target; the rest is filled in here)
    SaveRecord record;
};
struct SaveWritten {};  // the image is complete and synced
struct SaveDone {};     // the image has its final name: end the instance as saved
struct SaveFailed {};   // the save failed or was aborted; the file is gone
struct RestartDone {    // the reply to the system_reset + cont of a restart (its
    bool ok = false;   // success shows as QEMU's RESUME event)
};
// A restarted driver found this QEMU running: what it asked QEMU (nullopt
// when QEMU did not answer) and what the runtime status recorded.
struct Reattach {
    std::optional<RunState> qemu;
    std::optional<Phase> phase;  // nullopt: status written before phases were recorded
    driver::DomainState state = driver::DomainState::Running;
    std::string reason;
    std::optional<SaveRecord> save;
};
}  // namespace in

using Input = std::variant<in::Event, in::Eof, in::Finished, in::Incoming, in::Resume, in::Pause, in::Reply,
                           in::StartedPaused, in::StartAborted, in::PowerButton, in::PowerButtonFailed, in::Destroy,
                           in::DestroyKill, in::SaveBegin, in::SaveWritten, in::SaveDone, in::SaveFailed,
                           in::RestartDone, in::Reattach>;

// --- actions, applied in order by the driver ------------------------------------
namespace act {
struct SetState {  // the registry's state and reason
    driver::DomainState state;
    std::string reason;
};
struct Emit {  // a lifecycle event
    driver::EventType type;
    std::string detail;
};
struct WriteStatus {};  // the runtime status file, from the current state
struct SignalTerm {};   // SIGTERM to QEMU, without waiting
struct Kill {           // SIGTERM, grace, SIGKILL (not when graceful); wait for the exit
    bool graceful = false;
};
struct Reap {};          // after EOF: let QEMU exit, kill it if it lingers
struct ResetAndCont {};  // system_reset + cont; the result comes back as in::RestartDone
struct Cont {};          // cont; the result comes back as in::Reply{Cont}
struct CancelMigration {};  // a migration QEMU still runs (a save cut short): cancel it
struct DiscardFile {        // delete a partial save image
    std::string path;
};
struct CompleteFile {  // rename a complete save image to its final name
    std::string from, to;
};
struct RecordJob {  // the async job that a dead daemon left: record how it ended
    driver::JobOperation operation = driver::JobOperation::Unknown;
    bool ok = false;
    std::string error;
};
struct Finish {  // end the instance: shut off, event, runtime files removed
    EndCause cause;
};
}  // namespace act

using Action = std::variant<act::SetState, act::Emit, act::WriteStatus, act::SignalTerm, act::Kill, act::Reap,
                            act::ResetAndCont, act::Cont, act::CancelMigration, act::DiscardFile, act::CompleteFile,
                            act::RecordJob, act::Finish>;

struct Step {
    InstanceState state;
    std::vector<Action> actions;
    // A request that is not valid now: the error (state unchanged, no actions).
    Status verdict;
};

Step transition(const InstanceState& state, const Input& input);

// A one-line description ("SetState(paused, saving)", "Emit(Suspended/Paused)",
// "Kill", "Finish(destroyed)"), for logs and tests.
std::string describe(const Action& action);
std::string describe(const std::vector<Action>& actions);  // "a; b; c"

// The state an instance starts in, with the definition's lifecycle policy.
InstanceState starting_state(LifecyclePolicy policy);

}  // namespace vireo::qemu
