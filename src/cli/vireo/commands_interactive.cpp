// Verbs that interact with the user or wait: edit, event (console is in console.cpp).
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <ranges>

#include <fmt/ranges.h>

#include "cli/vireo/commands.hpp"
#include "cli/vireo/format.hpp"
#include "cli/vireo/session.hpp"
#include "util/files.hpp"

namespace vireo::cli {

namespace {

// ---- edit -----------------------------------------------------------------

// A temporary copy of the XML for the editor; removed when done. The
// definition on disk is never touched: the edited text goes back through
// define_domain(), exactly like `vireo define`.
class TempXmlFile {
public:
    static Result<TempXmlFile> create(std::string_view content) {
        const char* dir = std::getenv("TMPDIR");
        std::string path = std::string(dir && *dir ? dir : "/tmp") + "/vireo-edit-XXXXXX.xml";
        const int fd = ::mkstemps(path.data(), 4);
        if (fd < 0) return fail_errno(fmt::format("cannot create a temporary file in {}", dir ? dir : "/tmp"));
        ::close(fd);
        TempXmlFile file(path);
        VIREO_TRY(file.write(content));
        return file;
    }
    TempXmlFile(TempXmlFile&& o) noexcept : path_(std::exchange(o.path_, {})) {}
    TempXmlFile& operator=(TempXmlFile&&) = delete;
    ~TempXmlFile() {
        if (!path_.empty()) ::unlink(path_.c_str());
    }
    [[nodiscard]] const std::string& path() const { return path_; }
    Status write(std::string_view content) const { return files::write_atomic(path_, content, 0600); }
    [[nodiscard]] Result<std::string> read() const { return files::read(path_); }

private:
    explicit TempXmlFile(std::string path) : path_(std::move(path)) {}
    std::string path_;
};

// $VISUAL, else $EDITOR, else vi; run through the shell as virsh does, so
// that EDITOR="emacs -nw" works.
std::string editor_command() {
    for (const char* var : {"VISUAL", "EDITOR"})
        if (const char* value = std::getenv(var); value != nullptr && *value != '\0') return value;
    return "vi";
}

Status run_editor(const std::string& path) {
    const std::string editor = editor_command();
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid < 0) return fail_errno("cannot start the editor");
    if (pid == 0) {
        // "$1" keeps any character of the file name literal.
        const std::string script = editor + " \"$1\"";
        ::execl("/bin/sh", "sh", "-c", script.c_str(), "sh", path.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return fail_errno("waiting for the editor");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(ErrorCode::OperationFailed, "the editor '{}' failed (exit status {})", editor,
                    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return {};
}

enum class Retry { Edit, Discard, NoValidate };

// virsh's "Failed. Try again? [y,n,i,f,?]:" prompt. End of input means no.
Retry ask_retry(Session& s) {
    for (;;) {
        s.out("Failed. Try again? [y,n,i,f,?]: ");
        std::fflush(stdout);
        std::string answer;
        if (!read_stdin_line(answer)) {
            s.out("\n");
            return Retry::Discard;
        }
        if (answer == "y" || answer == "Y") return Retry::Edit;
        if (answer == "n" || answer == "N") return Retry::Discard;
        if (answer == "i" || answer == "I" || answer == "f" || answer == "F") return Retry::NoValidate;
        s.out("y - yes, start editor again\n"
              "n - no, throw away my changes\n"
              "i - turn off validation and try to redefine again\n"
              "f - force, try to redefine again\n"
              "? - print this help\n");
    }
}

}  // namespace

int edit_xml(Session& s, const XmlEdit& edit) {
    auto file = TempXmlFile::create(edit.original);
    if (!file) {
        s.error(file.error().full_message());
        return 1;
    }
    bool validate = edit.validate;
    bool need_edit = true;
    for (;;) {
        if (need_edit) {
            if (auto st = run_editor(file->path()); !st) {
                s.error(st.error().full_message());
                return 1;
            }
        }
        auto edited = file->read();
        if (!edited) {
            s.error(edited.error().full_message());
            return 1;
        }
        if (*edited == edit.original && !edit.redefine_unchanged) {
            if (edit.not_changed_message) s.info("{}", edit.not_changed_message(edit.name));
            else s.info("{} XML configuration not changed.\n\n", edit.label(edit.name));
            return 0;
        }
        auto defined = edit.redefine(*edited, validate);
        if (defined) {
            if (edit.edited_message) s.info("{}", edit.edited_message(edit.name, *defined));
            else s.info("{} XML configuration edited.\n\n", edit.label(*defined));
            return 0;
        }
        s.error(defined.error().full_message());
        switch (ask_retry(s)) {
            case Retry::Edit: need_edit = true; break;
            case Retry::NoValidate:
                validate = false;
                need_edit = false;
                break;
            case Retry::Discard: return 1;
        }
    }
}

namespace {

int cmd_edit(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto original = s.conn()->domain_xml(dom->name, true, true);  // virsh edit keeps the passwords
    if (!original) {
        s.error(fmt::format("failed to get the XML of domain '{}'", dom->name), original.error());
        return 1;
    }
    XmlEdit edit;
    edit.original = std::move(*original);
    edit.name = dom->name;
    edit.validate = !a.has("skip-validate");
    edit.label = [](std::string_view name) { return fmt::format("Domain '{}'", name); };
    edit.redefine = [&s](std::string_view xml, bool validate) -> Result<std::string> {
        auto defined = s.conn()->define_domain(xml, validate);
        if (!defined) return std::unexpected(defined.error());
        return defined->name;
    };
    return edit_xml(s, edit);
}

// ---- event ----------------------------------------------------------------

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted = true; }

// Restores the previous SIGINT disposition when done.
class SigintGuard {
public:
    SigintGuard() {
        g_interrupted = false;
        struct sigaction sa{};
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGINT, &sa, &saved_);
    }
    ~SigintGuard() { ::sigaction(SIGINT, &saved_, nullptr); }
    SigintGuard(const SigintGuard&) = delete;
    SigintGuard& operator=(const SigintGuard&) = delete;

private:
    struct sigaction saved_{};
};

// Events handed from the driver's thread to the waiting command.
struct EventQueue {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<driver::DomainEvent> events;
};

// The event kinds vireo reports, by virsh's names.
constexpr std::array<std::string_view, 5> kEventKinds{"lifecycle", "device-removed", "device-removal-failed",
                                                      "agent-lifecycle", "memory-device-size-change"};

std::string_view event_kind(driver::EventType t) {
    switch (t) {
        case driver::EventType::DeviceRemoved: return kEventKinds[1];
        case driver::EventType::DeviceRemovalFailed: return kEventKinds[2];
        case driver::EventType::AgentLifecycle: return kEventKinds[3];
        case driver::EventType::MemoryDeviceSizeChange: return kEventKinds[4];
        default: return kEventKinds[0];
    }
}

int cmd_event(Session& s, const Args& a) {
    if (a.has("list")) {
        for (auto k : kEventKinds) s.out("{}\n", k);
        return 0;
    }
    const std::string kind = a.has("event") ? a.get("event") : "";
    if (!kind.empty() && std::find(kEventKinds.begin(), kEventKinds.end(), kind) == kEventKinds.end()) {
        s.error(fmt::format("unknown event type {} (vireo reports {} events)", kind,
                            fmt::join(kEventKinds | std::views::transform([](std::string_view k) {
                                          return fmt::format("'{}'", k);
                                      }),
                                      ", ")));
        return 1;
    }
    auto* d = s.conn();
    if (!d) return 1;
    std::optional<Uuid> only;
    if (a.has("domain")) {
        auto dom = s.domain(a.get("domain"));
        if (!dom) return 1;
        only = dom->uuid;
    }
    auto queue = std::make_shared<EventQueue>();
    auto sub = d->subscribe([queue](const driver::DomainEvent& e) {
        std::lock_guard lock(queue->mutex);
        queue->events.push_back(e);
        queue->ready.notify_one();
    });
    if (!sub) {
        s.error("failed to register for domain events", sub.error());
        return 1;
    }
    SigintGuard sigint;
    using Clock = std::chrono::steady_clock;
    const auto timeout = a.number("timeout");
    const auto deadline = timeout ? Clock::now() + std::chrono::seconds(*timeout) : Clock::time_point::max();
    const bool loop = a.has("loop");
    int count = 0;
    bool timed_out = false;
    for (bool done = false; !done;) {
        std::unique_lock lock(queue->mutex);
        // Wake up regularly to notice ^C (the handler cannot notify a condition variable).
        queue->ready.wait_for(lock, std::chrono::milliseconds(100), [&] { return !queue->events.empty(); });
        while (!queue->events.empty() && !done) {
            auto e = std::move(queue->events.front());
            queue->events.pop_front();
            if (only && !(e.uuid == *only)) continue;
            if (!kind.empty() && event_kind(e.type) != kind) continue;
            s.out("{}\n", format_event(e, a.has("timestamp")));
            std::fflush(stdout);
            ++count;
            done = !loop;
        }
        if (done) break;
        if (g_interrupted) break;
        if (auto lost = (*sub)->lost()) {
            // The daemon died or closed the stream: no event can come any more.
            lock.unlock();
            s.error("connection to the daemon was lost", *lost);
            return 1;
        }
        if (Clock::now() >= deadline) {
            timed_out = true;
            break;
        }
    }
    if (timed_out) s.out("event loop timed out\n");
    s.out("events received: {}\n\n", count);
    return count > 0 ? 0 : 1;
}

}  // namespace

void add_interactive_commands(std::vector<CommandSpec>& t) {
    add_console_command(t);
    t.push_back({"edit", "Domain Management", "edit XML configuration for a domain",
                 "Edit the XML configuration for a domain in $VISUAL or $EDITOR.\n"
                 "The result is validated and redefined through the connection, never\n"
                 "written to the daemon's files directly. On an error you may edit again.",
                 {kDomainOpt, {"skip-validate", OptType::Bool, "skip validation of the XML against the schema"}},
                 cmd_edit, true, true});
    t.push_back({"event", "Domain Events", "Domain Events", "List event types, or wait for domain events to occur",
                 {{"domain", OptType::String, "filter by domain name, id or uuid"},
                  {"event", OptType::String, "which event type to wait for (lifecycle, device-removed, device-removal-failed, agent-lifecycle, memory-device-size-change)"},
                  {"all", OptType::Bool, "wait for all events instead of just one type"},
                  {"loop", OptType::Bool, "loop until timeout or interrupt, rather than one-shot"},
                  {"timeout", OptType::Number, "timeout seconds"},
                  {"list", OptType::Bool, "list valid event types"},
                  {"timestamp", OptType::Bool, "show timestamp for each printed event"}},
                 cmd_event});
}

}  // namespace vireo::cli
