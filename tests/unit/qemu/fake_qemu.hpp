// A fake QEMU for the QEMU driver's unit tests: the driver's real code
// (start phases, the instance machine and its actions, save and restore,
// reattach) runs against it instead of a qemu-system process.
//
// FakeQemuHost is the driver's ProcessControl: spawn() starts a FakeQemu
// on the monitor socket the driver created (a FakeQmpServer, a real socket
// peer), and signals and kills act on it. FakeQemu answers the commands the
// driver sends the way QEMU 7.2 does (stop/cont with their STOP/RESUME
// events before the reply, system_powerdown with a guest that powers off,
// migrate writing a stream into the descriptor it was given, ...); a test
// overrides a command with a script to reorder, delay, drop or fail
// answers, injects events, or makes QEMU die at a chosen point.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "qemu/process.hpp"
#include "support/fake_qmp.hpp"

namespace vireo::qemu::test {

using vireo::test::FakeQmpServer;
using Ms = std::chrono::milliseconds;

class FakeQemu {
public:
    using Command = FakeQmpServer::Command;
    // A script for one command: handle it (answer or not, events, hang up)
    // and return true, or return false to let the default behaviour run.
    using Script = std::function<bool(FakeQemu&, Command&)>;

    FakeQemu(std::string name, ProcessId id, UniqueFd monitor_listener, bool incoming);
    ~FakeQemu();

    const std::string name;
    const ProcessId id;

    // --- scripting --------------------------------------------------------------
    // Every later `command` goes to `script` first.
    void on(const std::string& command, Script script);
    // Ready-made scripts.
    static Script never();                           // no reply, ever
    static Script fail(std::string desc);            // an error reply
    static Script delay(Ms by);                      // the default behaviour, replies `by` later
    static Script reply_then_event(Ms event_after);  // stop/cont: the reply first, the event later

    // What the guest does when the power button is pressed.
    enum class Guest { PowersOff, Ignores };
    Guest on_power_button = Guest::PowersOff;
    // What the process does on SIGTERM.
    enum class Sigterm { Exits, Ignored };
    Sigterm on_sigterm = Sigterm::Exits;
    // An outgoing migration: this many bytes, written over this long.
    std::size_t migration_bytes = 256 * 1024;
    Ms migration_duration{150};
    // Stop writing after this many bytes (the migration then stays active
    // until cancelled): a save that takes forever.
    std::optional<std::size_t> migration_stall_at;
    // The ids of the command line's pty chardevs: query-chardev reports them
    // as /dev/pts/90, /dev/pts/91, ...
    std::vector<std::string> pty_chardevs;

    // --- the guest and the process ------------------------------------------------
    void guest_powers_off(Ms after = Ms(0));  // SHUTDOWN (guest) then STOP, as with -no-shutdown
    void guest_reboots_with_no_reboot();      // SHUTDOWN guest-reset (QEMU with -no-reboot)
    void guest_panics();                      // GUEST_PANICKED then STOP
    void event(std::string name, nlohmann::json data = nullptr, Ms after = Ms(0));
    void die(Ms after = Ms(0));               // the process exits at once (monitor EOF)
    // The vCPUs stopped and an outgoing migration into `fd` running, as a
    // save that a daemon started and left when it died.
    void begin_outgoing_migration(UniqueFd fd);
    void signal(int sig);

    [[nodiscard]] bool alive() const;
    bool wait_dead(Ms timeout) const;
    [[nodiscard]] std::string runstate() const;
    [[nodiscard]] std::string migration_status() const;
    // Commands received, in order (qmp_capabilities included).
    [[nodiscard]] std::vector<std::string> commands() const { return server_->commands(); }
    bool wait_for_command(const std::string& name, Ms timeout, int count = 1) const {
        return server_->wait_for_command(name, timeout, count);
    }
    FakeQmpServer& server() { return *server_; }

    // The default behaviour of a command (for scripts that add to it).
    void default_behaviour(Command& c, Ms reply_after = Ms(0), Ms event_after = Ms(0));

private:
    void handle(Command& c);
    void start_outgoing(int fd);
    void start_incoming(int fd);
    bool alive_locked() const;

    mutable std::mutex mutex_;
    mutable std::condition_variable cv_;
    std::map<std::string, Script> scripts_;
    std::string runstate_;
    std::string migration_ = "none";
    std::uint64_t transferred_ = 0;
    std::map<std::string, UniqueFd> fds_;  // getfd
    bool alive_ = true;
    std::optional<std::chrono::steady_clock::time_point> dies_at_;
    bool stop_migration_ = false;
    std::thread migration_thread_;
    std::unique_ptr<FakeQmpServer> server_;  // last: its thread calls into the members above
};

class FakeQemuHost final : public ProcessControl {
public:
    Result<ProcessId> spawn(const SpawnSpec& spec) override;
    bool alive(const ProcessId& id) override;
    bool wait_exit(const ProcessId& id, std::chrono::milliseconds timeout) override;
    Status signal(const ProcessId& id, int sig) override;
    Status terminate(const ProcessId& id, std::chrono::milliseconds grace, bool graceful) override;

    // Called with each new fake before its monitor answers (scripts go here).
    std::function<void(FakeQemu&)> on_spawn;
    // The next spawn fails with this error.
    std::optional<Error> spawn_error;

    // The last fake started for domain `name` (nullptr when none).
    std::shared_ptr<FakeQemu> find(const std::string& name) const;
    int spawned() const;

private:
    std::shared_ptr<FakeQemu> by_id(const ProcessId& id) const;
    mutable std::mutex mutex_;
    std::vector<std::shared_ptr<FakeQemu>> fakes_;
};

}  // namespace vireo::qemu::test
