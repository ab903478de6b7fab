// Domain lifecycle verbs: start, shutdown, reboot, reset, destroy, suspend,
// resume, save, restore, managedsave (with --verbose progress),
// managedsave-remove.
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>

#include "cli/vireo/commands.hpp"
#include "cli/vireo/job_watch.hpp"
#include "cli/vireo/session.hpp"

namespace vireo::cli {

namespace {

// `tmpl` with its first "{}" replaced by the domain name (no fmt: a file
// name in the message may contain braces).
std::string with_name(std::string_view tmpl, const std::string& name) {
    std::string out(tmpl);
    if (auto at = out.find("{}"); at != std::string::npos) out.replace(at, 2, name);
    return out;
}

// Resolve the domain, run `op` on its name, then print `done` ("Domain 'x' started")
// or virsh's "error: Failed to <verb> domain 'x'" followed by the reason.
template <class Op>
int domain_op(Session& s, const Args& a, std::string_view verb, std::string_view done, Op op) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    Status st = op(*s.conn(), dom->name);
    if (!st) {
        s.error(fmt::format("Failed to {} domain '{}'", verb, dom->name), st.error());
        return 1;
    }
    s.info("{}\n\n", with_name(done, dom->name));
    return 0;
}

std::optional<driver::ShutdownMode> shutdown_mode(Session& s, const Args& a) {
    const std::string mode = a.get("mode");
    if (mode.empty()) return driver::ShutdownMode::Default;
    if (mode == "acpi") return driver::ShutdownMode::Acpi;
    if (mode == "agent") return driver::ShutdownMode::Agent;
    s.error(fmt::format("Unknown mode {} value, expecting 'acpi' or 'agent'", mode));
    return std::nullopt;
}

int cmd_start(Session& s, const Args& a) {
    driver::StartFlags flags;
    flags.paused = a.has("paused");
    flags.force_boot = a.has("force-boot");
    int rc = domain_op(s, a, "start", "Domain '{}' started",
                       [&](driver::Driver& d, const std::string& n) { return d.start_domain(n, flags); });
    if (rc == 0 && a.has("console")) {
        auto dom = s.domain(a.get("domain"));
        if (!dom) return 1;
        return attach_console(s, dom->name, "");
    }
    return rc;
}

// Waits until a domain is shut off, for every driver: woken by the driver's
// lifecycle events, and asking for the state once a second anyway, so that a
// missed event (or a driver that cannot deliver events) only delays the answer.
// A transient domain that is gone counts as shut off.
class ShutoffWaiter {
public:
    ShutoffWaiter(driver::Driver& d, std::string name) : driver_(d), name_(std::move(name)) {
        // Subscribe before the shutdown request so that no event is missed.
        auto sub = driver_.subscribe([this](const driver::DomainEvent& e) {
            if (e.domain != name_ || e.type != driver::EventType::Stopped) return;
            std::lock_guard lk(mutex_);
            stopped_ = true;
            cv_.notify_all();
        });
        if (sub) sub_ = std::move(*sub);
    }
    ~ShutoffWaiter() { sub_.reset(); }  // no callback runs once this returns
    ShutoffWaiter(const ShutoffWaiter&) = delete;
    ShutoffWaiter& operator=(const ShutoffWaiter&) = delete;

    // True once shut off; false at the deadline (nullopt: no deadline), an
    // Error when the state cannot be read.
    Result<bool> wait(std::optional<std::chrono::steady_clock::time_point> deadline) {
        for (;;) {
            auto off = is_shut_off();
            if (!off || *off) return off;
            auto next = std::chrono::steady_clock::now() + std::chrono::seconds(1);
            if (deadline && *deadline <= std::chrono::steady_clock::now()) return false;
            if (deadline && *deadline < next) next = *deadline;
            std::unique_lock lk(mutex_);
            cv_.wait_until(lk, next, [&] { return stopped_; });
            stopped_ = false;
        }
    }

private:
    Result<bool> is_shut_off() {
        auto dom = driver_.lookup_domain(name_);
        if (!dom) {
            if (dom.error().code == ErrorCode::NotFound) return true;
            return std::unexpected(dom.error());
        }
        return dom->state == driver::DomainState::Shutoff;
    }

    driver::Driver& driver_;
    const std::string name_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stopped_ = false;
    std::unique_ptr<driver::Subscription> sub_;
};

// shutdown returns once the guest was asked to power off (as virsh does);
// with --wait it returns when the domain is shut off, and with --timeout
// gives up (exit 1) after that many seconds.
int cmd_shutdown(Session& s, const Args& a) {
    auto mode = shutdown_mode(s, a);
    if (!mode) return 1;
    const bool wait = a.has("wait");
    if (!wait) {
        if (a.has("timeout")) {
            s.error("--timeout requires --wait");
            return 1;
        }
        return domain_op(s, a, "shutdown", "Domain '{}' is being shutdown",
                         [&](driver::Driver& d, const std::string& n) { return d.shutdown_domain(n, *mode); });
    }
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    std::optional<std::chrono::steady_clock::time_point> deadline;
    const auto timeout = a.number("timeout");
    if (timeout) deadline = std::chrono::steady_clock::now() + std::chrono::seconds(*timeout);
    ShutoffWaiter waiter(*s.conn(), dom->name);
    if (Status st = s.conn()->shutdown_domain(dom->name, *mode); !st) {
        s.error(fmt::format("Failed to shutdown domain '{}'", dom->name), st.error());
        return 1;
    }
    s.info("Domain '{}' is being shutdown\n", dom->name);
    auto off = waiter.wait(deadline);
    if (!off) {
        s.error(fmt::format("Failed to wait for domain '{}' to shut off", dom->name), off.error());
        return 1;
    }
    if (!*off) {
        auto now = s.conn()->lookup_domain(dom->name);
        s.error(fmt::format("Domain '{}' did not shut off within {} seconds (it is {}); "
                            "'vireo destroy {}' stops it at once",
                            dom->name, *timeout, now ? driver::state_name(now->state) : "in an unknown state",
                            dom->name));
        return 1;
    }
    s.info("Domain '{}' is shut off\n\n", dom->name);
    return 0;
}

int cmd_reboot(Session& s, const Args& a) {
    auto mode = shutdown_mode(s, a);
    if (!mode) return 1;
    return domain_op(s, a, "reboot", "Domain '{}' is being rebooted",
                     [&](driver::Driver& d, const std::string& n) { return d.reboot_domain(n, *mode); });
}

int cmd_reset(Session& s, const Args& a) {
    return domain_op(s, a, "reset", "Domain '{}' was reset",
                     [](driver::Driver& d, const std::string& n) { return d.reset_domain(n); });
}

int cmd_destroy(Session& s, const Args& a) {
    driver::DestroyFlags flags;
    flags.graceful = a.has("graceful");
    return domain_op(s, a, "destroy", "Domain '{}' destroyed",
                     [&](driver::Driver& d, const std::string& n) { return d.destroy_domain(n, flags); });
}

int cmd_suspend(Session& s, const Args& a) {
    return domain_op(s, a, "suspend", "Domain '{}' suspended",
                     [](driver::Driver& d, const std::string& n) { return d.suspend_domain(n); });
}

int cmd_resume(Session& s, const Args& a) {
    return domain_op(s, a, "resume", "Domain '{}' resumed",
                     [](driver::Driver& d, const std::string& n) { return d.resume_domain(n); });
}

// The daemon opens save files itself, from its own working directory: send
// the path as the user meant it, relative to where vireo runs.
static std::string absolute_path(const std::string& file) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(file, ec);
    return ec ? file : abs.lexically_normal().string();
}

// save and managedsave: the async job on the domain, its progress with
// --verbose (job_watch.hpp), and virsh's words for the end.
using NameText = std::function<std::string(const std::string&)>;
int save_job(Session& s, const Args& a, std::string_view label,
             const std::function<Status(driver::Driver&, const std::string&)>& op, const NameText& failed,
             const NameText& done) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    std::optional<JobWatch> watch;
    if (a.has("verbose")) watch.emplace(s, std::string(label), domain_job_query(dom->name));
    Status st = op(*s.conn(), dom->name);
    if (watch) watch->finish(st.has_value());
    if (!st) {
        s.error(failed(dom->name), st.error());
        return 1;
    }
    // virsh starts with a line end (which ends the --verbose line).
    s.info("\n{}\n\n", done(dom->name));
    return 0;
}

int cmd_save(Session& s, const Args& a) {
    const std::string file = a.get("file");
    return save_job(
        s, a, "Save", [&](driver::Driver& d, const std::string& n) { return d.save_domain(n, absolute_path(file)); },
        [&](const std::string& n) { return fmt::format("Failed to save domain '{}' to {}", n, file); },
        [&](const std::string& n) { return fmt::format("Domain '{}' saved to {}", n, file); });
}

int cmd_managedsave(Session& s, const Args& a) {
    return save_job(
        s, a, "Managedsave", [](driver::Driver& d, const std::string& n) { return d.managed_save(n); },
        [](const std::string& n) { return fmt::format("Failed to save domain '{}' state", n); },
        [](const std::string& n) { return fmt::format("Domain '{}' state saved by vireo", n); });
}

// restore --verbose (vireo's; virsh's restore has no progress): the domain
// is not known before the call, so the watch looks for the new restore job.
int cmd_restore(Session& s, const Args& a) {
    auto* d = s.conn();
    if (!d) return 1;
    const std::string file = a.get("file");
    std::optional<JobWatch> watch;
    if (a.has("verbose")) watch.emplace(s, "Restore", new_job_query(*d, driver::JobOperation::Restore));
    auto dom = d->restore_domain(absolute_path(file), a.has("paused"));
    if (watch) watch->finish(dom.has_value());
    if (!dom) {
        s.error(fmt::format("Failed to restore domain from {}", file), dom.error());
        return 1;
    }
    s.info("{}Domain restored from {}\n\n", watch ? "\n" : "", file);
    return 0;
}

int cmd_managedsave_remove(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    if (!dom->managed_save) {
        s.info("Domain '{}' has no manage save image; removal skipped\n", dom->name);
        return 0;
    }
    auto st = s.conn()->managed_save_remove(dom->name);
    if (!st) {
        s.error(fmt::format("Failed to remove managed save image for domain '{}'", dom->name), st.error());
        return 1;
    }
    s.info("Removed managedsave image for domain '{}'\n", dom->name);
    return 0;
}

}  // namespace

void add_lifecycle_commands(std::vector<CommandSpec>& t) {
    const std::string_view g = "Domain Management";
    const OptSpec mode{"mode", OptType::String, "shutdown mode: acpi|agent"};
    t.push_back({"start", g, "start a (previously defined) inactive domain",
                 "Start a domain, either from the last managedsave\nstate, or via a fresh boot if no managedsave state\nis present.",
                 {{"domain", OptType::String, "name of the inactive domain", true, true},
                  {"console", OptType::Bool, "attach to console after creation"},
                  {"paused", OptType::Bool, "leave the guest paused after creation"},
                  {"force-boot", OptType::Bool, "force fresh boot by discarding any managed save"}},
                 cmd_start, true, true});
    t.push_back({"shutdown", g, "gracefully shutdown a domain",
                 "Run shutdown in the target domain.\nWith --wait, return only once the domain is shut off.",
                 {kDomainOpt,
                  mode,
                  {"wait", OptType::Bool, "wait until the domain is shut off"},
                  {"timeout", OptType::Number, "with --wait: give up (exit 1) after this many seconds"}},
                 cmd_shutdown, true, true});
    t.push_back({"reboot", g, "reboot a domain", "Run a reboot command in the target domain.", {kDomainOpt, mode},
                 cmd_reboot, true, true});
    t.push_back({"reset", g, "reset a domain", "Reset the target domain as if by power button", {kDomainOpt},
                 cmd_reset, true, true});
    t.push_back({"destroy", g, "destroy (stop) a domain", "Forcefully stop a given domain, but leave its resources intact.",
                 {kDomainOpt, {"graceful", OptType::Bool, "terminate gracefully"}}, cmd_destroy, true, true});
    t.push_back({"suspend", g, "suspend a domain", "Suspend a running domain.", {kDomainOpt}, cmd_suspend, true, true});
    t.push_back({"resume", g, "resume a domain", "Resume a previously suspended domain.", {kDomainOpt}, cmd_resume,
                 true, true});
    t.push_back({"save", g, "save a domain state to a file", "Save the RAM state of a running domain.",
                 {kDomainOpt,
                  {"file", OptType::String, "where to save the data", true, true},
                  {"verbose", OptType::Bool, "display the progress of save"}},
                 cmd_save, true, true});
    t.push_back({"restore", g, "restore a domain from a saved state in a file", "Restore a domain.",
                 {{"file", OptType::String, "the state to restore", true, true},
                  {"paused", OptType::Bool, "restore domain into paused state"},
                  {"verbose", OptType::Bool, "display the progress of restore"}},
                 cmd_restore, true, true});
    t.push_back({"managedsave", g, "managed save of a domain state",
                 "Save and destroy a running domain, so it can be restarted from\nthe same state at a later time.",
                 {kDomainOpt, {"verbose", OptType::Bool, "display the progress of save"}}, cmd_managedsave, true,
                 true});
    t.push_back({"managedsave-remove", g, "Remove managed save of a domain", "Remove an existing managed save state file from a domain",
                 {kDomainOpt}, cmd_managedsave_remove, true, true});
}

}  // namespace vireo::cli
