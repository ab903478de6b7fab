// The instance state machine (qemu/instance.hpp) as plain data: each test
// feeds a sequence of monitor events and driver requests and checks the
// actions and the state, for the paths that matter (both orders of a reply
// and its event, every lifecycle policy, destroy and QEMU's death in every
// phase, the steps of a save and a reattach after a daemon crash).
#include <gtest/gtest.h>

#include "qemu/instance.hpp"

using namespace vireo;
using namespace vireo::qemu;
using driver::DomainState;
using Command = Expectation::Command;

namespace {

MonitorEvent event(EventKind kind) { return MonitorEvent::of(kind); }
MonitorEvent guest_shutdown(std::string reason = "guest-shutdown") { return MonitorEvent::shutdown(true, std::move(reason)); }
MonitorEvent host_shutdown() { return MonitorEvent::shutdown(false, "host-signal"); }

LifecyclePolicy policy(std::string poweroff = "destroy", std::string reboot = "restart", std::string crash = "destroy") {
    return LifecyclePolicy{std::move(poweroff), std::move(reboot), std::move(crash)};
}

// A machine fed one input at a time; remembers the last step's actions.
struct Machine {
    InstanceState s;
    std::string last;  // describe() of the last step's actions
    Status verdict;

    explicit Machine(InstanceState start) : s(std::move(start)) {}

    std::string feed(const Input& input) {
        Step step = transition(s, input);
        verdict = step.verdict;
        s = std::move(step.state);
        last = describe(step.actions);
        return last;
    }
    std::string on(EventKind kind) { return feed(in::Event{event(kind)}); }
    std::string on(const MonitorEvent& ev) { return feed(in::Event{ev}); }
};

Machine starting(LifecyclePolicy p = policy()) { return Machine(starting_state(std::move(p))); }

// A machine whose guest booted and runs.
Machine running(LifecyclePolicy p = policy()) {
    Machine m = starting(std::move(p));
    m.feed(in::Resume{"booted", "Booted"});
    m.feed(in::Reply{Command::Cont, true});
    EXPECT_EQ(m.s.phase, Phase::Running);
    return m;
}

Machine paused_by_user(LifecyclePolicy p = policy()) {
    Machine m = running(std::move(p));
    m.feed(in::Pause{"user"});
    m.feed(in::Reply{Command::Stop, true});
    EXPECT_EQ(m.s.phase, Phase::Paused);
    return m;
}

SaveRecord record() {
    SaveRecord r;
    r.temp_file = "/save/.g.save.part";
    r.target = "/save/g.save";
    return r;
}

// --- start ---------------------------------------------------------------------

TEST(InstanceMachine, StartConfirmedByTheReplyThenItsResumeEventIsNothingNew) {
    Machine m = starting();
    EXPECT_EQ(m.s.state, DomainState::Paused);
    EXPECT_EQ(m.s.reason, "starting up");
    EXPECT_EQ(m.feed(in::Resume{"booted", "Booted"}), "");
    EXPECT_EQ(m.feed(in::Reply{Command::Cont, true}), "SetState(running, booted); WriteStatus; Emit(Started/Booted)");
    EXPECT_EQ(m.on(EventKind::Resume), "");
    EXPECT_EQ(m.s.phase, Phase::Running);
}

TEST(InstanceMachine, StartConfirmedByTheResumeEventBeforeTheReply) {
    Machine m = starting();
    m.feed(in::Resume{"booted", "Booted"});
    EXPECT_EQ(m.on(EventKind::Resume), "SetState(running, booted); WriteStatus; Emit(Started/Booted)");
    EXPECT_EQ(m.feed(in::Reply{Command::Cont, true}), "");
    EXPECT_EQ(m.s.phase, Phase::Running);
}

TEST(InstanceMachine, ResumeEventWithoutAStartContIsIgnored) {
    Machine m = starting();
    EXPECT_EQ(m.on(EventKind::Resume), "");
    EXPECT_EQ(m.s.phase, Phase::Starting);
}

TEST(InstanceMachine, RestoreStartsThroughRestoring) {
    Machine m = starting();
    EXPECT_EQ(m.feed(in::Incoming{}), "WriteStatus");
    EXPECT_EQ(m.s.phase, Phase::Restoring);
    m.feed(in::Resume{"restored", "Restored"});
    EXPECT_EQ(m.feed(in::Reply{Command::Cont, true}),
              "SetState(running, restored); WriteStatus; Emit(Started/Restored)");
}

TEST(InstanceMachine, StartLeftPaused) {
    Machine m = starting();
    EXPECT_EQ(m.feed(in::StartedPaused{"Booted"}),
              "SetState(paused, user); WriteStatus; Emit(Started/Booted); Emit(Suspended/Paused)");
    EXPECT_EQ(m.s.phase, Phase::Paused);
}

TEST(InstanceMachine, ContFailingDuringStartAbortsIt) {
    Machine m = starting();
    m.feed(in::Resume{"booted", "Booted"});
    EXPECT_EQ(m.feed(in::Reply{Command::Cont, false}), "");
    EXPECT_EQ(m.s.expect.command, Command::None);
    EXPECT_EQ(m.feed(in::StartAborted{}), "Kill; Finish(failed)");
    EXPECT_EQ(m.s.phase, Phase::Ending);
    EXPECT_EQ(m.feed(in::Finished{}), "");
    EXPECT_EQ(m.s.phase, Phase::Ended);
    EXPECT_EQ(m.s.state, DomainState::Shutoff);
    EXPECT_EQ(m.s.reason, "failed");
}

TEST(InstanceMachine, ShutdownDuringStartEndsItAsFailed) {
    Machine m = starting();
    m.feed(in::Resume{"booted", "Booted"});
    EXPECT_EQ(m.on(host_shutdown()), "");
    EXPECT_EQ(m.s.phase, Phase::Ending);
    // The start's reply then means nothing; the job aborts, the EOF finishes.
    EXPECT_EQ(m.feed(in::Reply{Command::Cont, true}), "");
    EXPECT_EQ(m.feed(in::StartAborted{}), "Kill; Finish(failed)");
    EXPECT_EQ(m.feed(in::Eof{}), "Reap; Finish(failed)");
}

TEST(InstanceMachine, EofDuringStartFinishesAsFailed) {
    Machine m = starting();
    EXPECT_EQ(m.feed(in::Eof{}), "Reap; Finish(failed)");
    EXPECT_FALSE(transition(m.s, in::StartedPaused{"Booted"}).verdict) << "too late to complete the start";
}

TEST(InstanceMachine, DestroyDuringStartCancelsIt) {
    Machine m = starting();
    EXPECT_EQ(m.feed(in::Destroy{}), "SignalTerm");
    EXPECT_EQ(m.s.end, EndCause::Destroyed);
    m.feed(in::Resume{"booted", "Booted"});
    EXPECT_FALSE(m.verdict) << "a start cannot resume a domain being destroyed";
    EXPECT_EQ(m.feed(in::StartAborted{}), "Kill; Finish(destroyed)") << "the destroy's cause stays";
}

// --- pause and resume ------------------------------------------------------------

TEST(InstanceMachine, UserPauseReplyBeforeEvent) {
    Machine m = running();
    EXPECT_EQ(m.feed(in::Pause{"user"}), "");
    EXPECT_EQ(m.feed(in::Reply{Command::Stop, true}), "SetState(paused, user); WriteStatus; Emit(Suspended/Paused)");
    EXPECT_EQ(m.on(EventKind::Stop), "");
}

TEST(InstanceMachine, UserPauseEventBeforeReply) {
    Machine m = running();
    m.feed(in::Pause{"user"});
    EXPECT_EQ(m.on(EventKind::Stop), "SetState(paused, user); WriteStatus; Emit(Suspended/Paused)");
    EXPECT_EQ(m.feed(in::Reply{Command::Stop, true}), "");
    EXPECT_EQ(m.s.reason, "user");
}

TEST(InstanceMachine, StopNobodyAskedForIsAPauseForAnUnknownReason) {
    Machine m = running();
    EXPECT_EQ(m.on(EventKind::Stop), "SetState(paused, unknown); WriteStatus; Emit(Suspended/Paused)");
    EXPECT_EQ(m.on(EventKind::Resume), "SetState(running, unpaused); WriteStatus; Emit(Resumed/Unpaused)");
}

TEST(InstanceMachine, LateStopAfterAFailedPauseIsStillSeen) {
    Machine m = running();
    m.feed(in::Pause{"user"});
    EXPECT_EQ(m.feed(in::Reply{Command::Stop, false}), "") << "the reply timed out";
    EXPECT_EQ(m.on(EventKind::Stop), "SetState(paused, unknown); WriteStatus; Emit(Suspended/Paused)")
        << "QEMU did pause after all: the state follows QEMU";
}

TEST(InstanceMachine, UserResumeEitherOrder) {
    for (bool event_first : {false, true}) {
        Machine m = paused_by_user();
        EXPECT_EQ(m.feed(in::Resume{"unpaused", ""}), "");
        const std::string want = "SetState(running, unpaused); WriteStatus; Emit(Resumed/Unpaused)";
        if (event_first) {
            EXPECT_EQ(m.on(EventKind::Resume), want);
            EXPECT_EQ(m.feed(in::Reply{Command::Cont, true}), "");
        } else {
            EXPECT_EQ(m.feed(in::Reply{Command::Cont, true}), want);
            EXPECT_EQ(m.on(EventKind::Resume), "");
        }
    }
}

TEST(InstanceMachine, PauseAndResumeAreRefusedWhereTheyMeanNothing) {
    Machine m = running();
    EXPECT_FALSE(transition(m.s, in::Resume{"unpaused", ""}).verdict);
    EXPECT_EQ(transition(m.s, in::Resume{"unpaused", ""}).verdict.error().message,
              "Requested operation is not valid: domain is not paused");
    m.feed(in::Destroy{});
    EXPECT_FALSE(transition(m.s, in::Pause{"user"}).verdict);
}

// --- guest power and lifecycle policies --------------------------------------------

TEST(InstanceMachine, GuestPoweroffWithOnPoweroffDestroy) {
    Machine m = running();
    EXPECT_EQ(m.on(guest_shutdown()), "Emit(Shutdown/Finished); Kill; Finish(shutdown)");
    EXPECT_EQ(m.on(EventKind::Stop), "") << "QEMU's STOP after SHUTDOWN (-no-shutdown) is no pause";
    EXPECT_EQ(m.feed(in::Eof{}), "Reap; Finish(shutdown)");
}

TEST(InstanceMachine, GuestPoweroffWithOnPoweroffPreserve) {
    Machine m = running(policy("preserve"));
    EXPECT_EQ(m.on(guest_shutdown()), "Emit(Shutdown/Finished); SetState(in shutdown, user); WriteStatus");
    EXPECT_EQ(m.s.phase, Phase::PoweredOff);
    EXPECT_EQ(m.on(EventKind::Stop), "");
    EXPECT_EQ(m.feed(in::Eof{}), "Reap; Finish(shutdown)");
}

TEST(InstanceMachine, GuestPoweroffWithOnPoweroffRestart) {
    Machine m = running(policy("restart"));
    EXPECT_EQ(m.on(guest_shutdown()), "ResetAndCont");
    // The reply to reset + cont comes before the events still queued: the
    // STOP of the poweroff (-no-shutdown), then RESET and RESUME.
    EXPECT_EQ(m.feed(in::RestartDone{true}), "");
    EXPECT_EQ(m.s.phase, Phase::Restarting);
    EXPECT_EQ(m.on(EventKind::Stop), "") << "the poweroff's STOP is no pause";
    EXPECT_EQ(m.on(EventKind::Reset), "");
    EXPECT_EQ(m.on(EventKind::Resume), "WriteStatus") << "a restart is no resume: state and reason unchanged";
    EXPECT_EQ(m.s.phase, Phase::Running);
    EXPECT_EQ(m.s.reason, "booted");
}

TEST(InstanceMachine, RestartThatFailsLeavesTheGuestPaused) {
    Machine m = running(policy("restart"));
    m.on(guest_shutdown());
    EXPECT_EQ(m.feed(in::RestartDone{false}), "SetState(paused, unknown); WriteStatus");
}

TEST(InstanceMachine, RebootRequestTurnsThePoweroffIntoAReset) {
    Machine m = running();
    EXPECT_EQ(m.feed(in::PowerButton{true}), "");
    EXPECT_TRUE(m.s.reboot_requested);
    EXPECT_EQ(m.on(EventKind::Powerdown), "");
    EXPECT_EQ(m.on(guest_shutdown()), "ResetAndCont");
    EXPECT_FALSE(m.s.reboot_requested) << "one reboot per request";
    m.on(EventKind::Resume);
    EXPECT_EQ(m.on(guest_shutdown()), "Emit(Shutdown/Finished); Kill; Finish(shutdown)");
}

TEST(InstanceMachine, FailedPowerButtonForgetsTheReboot) {
    Machine m = running();
    m.feed(in::PowerButton{true});
    m.feed(in::PowerButtonFailed{});
    EXPECT_EQ(m.on(guest_shutdown()), "Emit(Shutdown/Finished); Kill; Finish(shutdown)");
}

TEST(InstanceMachine, ResetDuringPowerdownChangesNothing) {
    Machine m = running();
    m.feed(in::PowerButton{false});
    EXPECT_EQ(m.on(EventKind::Reset), "");
    EXPECT_EQ(m.s.phase, Phase::Running);
    EXPECT_EQ(m.on(guest_shutdown()), "Emit(Shutdown/Finished); Kill; Finish(shutdown)");
}

TEST(InstanceMachine, GuestRebootWithOnRebootDestroyIsADestroy) {
    Machine m = running(policy("destroy", "destroy"));
    EXPECT_EQ(m.on(guest_shutdown("guest-reset")), "Kill; Finish(destroyed)");
}

TEST(InstanceMachine, GuestPanicPolicies) {
    {
        Machine m = running();
        EXPECT_EQ(m.on(EventKind::GuestPanicked), "Emit(Crashed/Panicked); Kill; Finish(crashed)");
        EXPECT_EQ(m.s.end, EndCause::Panicked);
    }
    {
        Machine m = running(policy("destroy", "restart", "preserve"));
        EXPECT_EQ(m.on(EventKind::GuestPanicked), "Emit(Crashed/Panicked); SetState(crashed, panicked); WriteStatus");
        EXPECT_EQ(m.on(EventKind::Stop), "");
        EXPECT_EQ(m.feed(in::Eof{}), "Reap; Finish(crashed)");
    }
    {
        Machine m = running(policy("destroy", "restart", "restart"));
        EXPECT_EQ(m.on(EventKind::GuestPanicked), "Emit(Crashed/Panicked); ResetAndCont");
        m.on(EventKind::Stop);
        EXPECT_EQ(m.on(EventKind::Resume), "WriteStatus");
        EXPECT_EQ(m.s.state, DomainState::Running);
    }
}

TEST(InstanceMachine, PanicWhilePausedAppliesOnCrash) {
    Machine m = paused_by_user(policy("destroy", "restart", "preserve"));
    EXPECT_EQ(m.on(EventKind::GuestPanicked), "Emit(Crashed/Panicked); SetState(crashed, panicked); WriteStatus");
    Machine r = paused_by_user(policy("destroy", "restart", "restart"));
    EXPECT_EQ(r.on(EventKind::GuestPanicked), "Emit(Crashed/Panicked); ResetAndCont");
    EXPECT_EQ(r.on(EventKind::Resume), "SetState(running, booted); WriteStatus") << "it boots again";
}

TEST(InstanceMachine, QemuDyingUnexpectedlyIsACrash) {
    Machine m = running();
    EXPECT_EQ(m.feed(in::Eof{}), "Reap; Finish(crashed)");
    EXPECT_EQ(m.s.end, EndCause::Crashed);
    Machine p = paused_by_user();
    EXPECT_EQ(p.feed(in::Eof{}), "Reap; Finish(crashed)");
}

TEST(InstanceMachine, ExternalSigtermEndsAsShutdownAtEof) {
    Machine m = running();
    EXPECT_EQ(m.on(host_shutdown()), "");
    EXPECT_EQ(m.feed(in::Eof{}), "Reap; Finish(shutdown)");
}

// --- destroy ---------------------------------------------------------------------

TEST(InstanceMachine, DestroySignalsFirstThenKillsHoldingItsJob) {
    Machine m = running();
    EXPECT_EQ(m.feed(in::Destroy{}), "SignalTerm");
    EXPECT_EQ(m.on(host_shutdown()), "") << "the SHUTDOWN caused by destroy's SIGTERM";
    EXPECT_EQ(m.on(guest_shutdown()), "") << "nor a guest poweroff racing with it";
    EXPECT_EQ(m.feed(in::DestroyKill{false}), "Kill; Finish(destroyed)");
    EXPECT_EQ(m.feed(in::Eof{}), "Reap; Finish(destroyed)") << "whoever comes first finishes, the same way";
}

TEST(InstanceMachine, GracefulDestroy) {
    Machine m = running();
    m.feed(in::Destroy{});
    EXPECT_EQ(m.feed(in::DestroyKill{true}), "Kill(graceful); Finish(destroyed)");
}

TEST(InstanceMachine, DestroyWhileTheGuestIsAlreadyPoweringOffKeepsThatEnd) {
    Machine m = running();
    m.on(guest_shutdown());
    EXPECT_EQ(m.feed(in::Destroy{}), "SignalTerm");
    EXPECT_EQ(m.s.end, EndCause::Shutdown);
    EXPECT_EQ(m.feed(in::DestroyKill{false}), "Kill; Finish(shutdown)");
}

TEST(InstanceMachine, NothingHappensAfterTheEnd) {
    Machine m = running();
    m.feed(in::Eof{});
    m.feed(in::Finished{});
    EXPECT_EQ(m.s.phase, Phase::Ended);
    EXPECT_EQ(m.on(guest_shutdown()), "");
    EXPECT_EQ(m.feed(in::Eof{}), "");
    EXPECT_EQ(m.feed(in::DestroyKill{false}), "");
    EXPECT_FALSE(transition(m.s, in::Destroy{}).verdict);
    EXPECT_FALSE(transition(m.s, in::SaveBegin{record()}).verdict);
}

// --- save ------------------------------------------------------------------------------

TEST(InstanceMachine, SaveOfARunningGuest) {
    Machine m = running();
    EXPECT_EQ(m.feed(in::SaveBegin{record()}), "SetState(paused, saving); WriteStatus; Emit(Suspended/Paused)");
    ASSERT_TRUE(m.s.save);
    EXPECT_TRUE(m.s.save->was_running);
    EXPECT_EQ(m.s.save->prior_reason, "booted");
    EXPECT_EQ(m.on(EventKind::Stop), "") << "the save's own stop";
    EXPECT_EQ(m.feed(in::SaveWritten{}), "WriteStatus");
    EXPECT_TRUE(m.s.save->written);
    EXPECT_EQ(m.feed(in::SaveDone{}), "Kill; Finish(saved)");
    EXPECT_EQ(m.feed(in::Eof{}), "Reap; Finish(saved)");
}

TEST(InstanceMachine, FailedSaveRunsTheGuestAgain) {
    for (bool event_first : {false, true}) {
        Machine m = running();
        m.feed(in::SaveBegin{record()});
        EXPECT_EQ(m.feed(in::SaveFailed{}), "SetState(paused, unknown); WriteStatus; Cont");
        EXPECT_FALSE(m.s.save);
        const std::string want = "SetState(running, save canceled); WriteStatus; Emit(Resumed/Unpaused)";
        if (event_first) {
            EXPECT_EQ(m.on(EventKind::Resume), want);
            EXPECT_EQ(m.feed(in::Reply{Command::Cont, true}), "");
        } else {
            EXPECT_EQ(m.feed(in::Reply{Command::Cont, true}), want);
            EXPECT_EQ(m.on(EventKind::Resume), "");
        }
    }
}

TEST(InstanceMachine, FailedSaveOfAPausedGuestLeavesItAsItWas) {
    Machine m = paused_by_user();
    EXPECT_EQ(m.feed(in::SaveBegin{record()}), "SetState(paused, saving); WriteStatus");
    EXPECT_EQ(m.feed(in::SaveFailed{}), "SetState(paused, user); WriteStatus");
}

TEST(InstanceMachine, DestroyDuringSave) {
    Machine m = running();
    m.feed(in::SaveBegin{record()});
    EXPECT_EQ(m.feed(in::Destroy{}), "SignalTerm");
    EXPECT_EQ(m.feed(in::SaveFailed{}), "") << "nothing to resume";
    EXPECT_FALSE(transition(m.s, in::SaveDone{}).verdict);
    EXPECT_EQ(m.feed(in::DestroyKill{false}), "Kill; Finish(destroyed)");
}

TEST(InstanceMachine, QemuDyingDuringSave) {
    Machine m = running();
    m.feed(in::SaveBegin{record()});
    EXPECT_EQ(m.feed(in::Eof{}), "Reap; Finish(crashed)");
    EXPECT_EQ(m.feed(in::SaveFailed{}), "");
    EXPECT_FALSE(transition(m.s, in::SaveWritten{}).verdict);
}

TEST(InstanceMachine, SaveIsRefusedOutsideRunningAndPaused) {
    Machine m = running(policy("preserve"));
    m.on(guest_shutdown());
    auto step = transition(m.s, in::SaveBegin{record()});
    ASSERT_FALSE(step.verdict);
    EXPECT_EQ(step.verdict.error().message, "Requested operation is not valid: domain is in shutdown");
    EXPECT_TRUE(step.actions.empty());
    EXPECT_FALSE(transition(starting().s, in::SaveBegin{record()}).verdict);
}

// --- reattach ------------------------------------------------------------------------------

in::Reattach reattach(std::optional<RunState> qemu, std::optional<Phase> phase, DomainState state,
                      std::string reason) {
    return in::Reattach{qemu, phase, state, std::move(reason), std::nullopt};
}

TEST(InstanceMachine, ReattachToARunningGuest) {
    Machine m = starting();
    EXPECT_EQ(m.feed(reattach(RunState::Running, Phase::Running, DomainState::Running, "booted")),
              "SetState(running, booted); WriteStatus");
    Machine p = starting();
    EXPECT_EQ(p.feed(reattach(RunState::Running, Phase::Paused, DomainState::Paused, "user")),
              "SetState(running, unpaused); WriteStatus") << "someone resumed it while no daemon watched";
}

TEST(InstanceMachine, ReattachToAPausedGuest) {
    Machine m = starting();
    EXPECT_EQ(m.feed(reattach(RunState::Paused, Phase::Paused, DomainState::Paused, "user")),
              "SetState(paused, user); WriteStatus");
    Machine r = starting();
    EXPECT_EQ(r.feed(reattach(RunState::Paused, Phase::Running, DomainState::Running, "booted")),
              "SetState(paused, unknown); WriteStatus");
    Machine q = starting();
    EXPECT_EQ(q.feed(reattach(std::nullopt, Phase::Running, DomainState::Running, "booted")),
              "SetState(paused, unknown); WriteStatus") << "QEMU did not answer query-status";
}

TEST(InstanceMachine, ReattachAppliesAPoweroffThatHappenedWhileAway) {
    Machine m = starting();
    EXPECT_EQ(m.feed(reattach(RunState::Shutdown, Phase::Running, DomainState::Running, "booted")),
              "Emit(Shutdown/Finished); Kill; Finish(shutdown)");
    Machine kept = starting(policy("preserve"));
    EXPECT_EQ(kept.feed(reattach(RunState::Shutdown, Phase::PoweredOff, DomainState::Shutdown, "user")),
              "SetState(in shutdown, user); WriteStatus")
        << "preserved and recorded: nothing is applied again";
}

TEST(InstanceMachine, ReattachKillsAStartThatNeverCompleted) {
    Machine m = starting();
    EXPECT_EQ(m.feed(reattach(RunState::Prelaunch, Phase::Starting, DomainState::Paused, "starting up")),
              "Kill; Finish(failed)");
    Machine old = starting();
    EXPECT_EQ(old.feed(reattach(RunState::Prelaunch, std::nullopt, DomainState::Paused, "starting up")),
              "Kill; Finish(failed)") << "a status without a phase says it by its reason";
}

TEST(InstanceMachine, ReattachUndoesASaveCutShort) {
    Machine m = starting();
    m.s.state = DomainState::Paused;
    m.s.reason = "saving";
    in::Reattach r = reattach(RunState::FinishMigrate, Phase::Saving, DomainState::Paused, "saving");
    SaveRecord rec = record();
    rec.was_running = true;
    r.save = rec;
    EXPECT_EQ(m.feed(r),
              "CancelMigration; DiscardFile(/save/.g.save.part); RecordJob(Save, failed); "
              "SetState(paused, unknown); WriteStatus; Cont");
    EXPECT_EQ(m.feed(in::Reply{Command::Cont, true}),
              "SetState(running, save canceled); WriteStatus; Emit(Resumed/Unpaused)");
}

TEST(InstanceMachine, ReattachFinishesASaveThatWasWritten) {
    Machine m = starting();
    in::Reattach r = reattach(RunState::PostMigrate, Phase::Saving, DomainState::Paused, "saving");
    SaveRecord rec = record();
    rec.was_running = true;
    rec.written = true;
    r.save = rec;
    EXPECT_EQ(m.feed(r),
              "CompleteFile(/save/.g.save.part -> /save/g.save); RecordJob(Save, completed); Kill; Finish(saved)");
}

TEST(InstanceMachine, PhaseNamesRoundTrip) {
    for (Phase p : {Phase::Starting, Phase::Restoring, Phase::Running, Phase::Paused, Phase::Saving,
                    Phase::Restarting, Phase::PoweredOff, Phase::Crashed, Phase::Ending, Phase::Ended})
        EXPECT_EQ(parse_phase(phase_name(p)), p) << phase_name(p);
    EXPECT_FALSE(parse_phase("bogus"));
}

}  // namespace
