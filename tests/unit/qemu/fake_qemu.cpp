#include "fake_qemu.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "util/files.hpp"

namespace vireo::qemu::test {

using nlohmann::json;

FakeQemu::FakeQemu(std::string domain, ProcessId pid, UniqueFd monitor_listener, bool incoming)
    : name(std::move(domain)), id(pid), runstate_(incoming ? "inmigrate" : "prelaunch") {
    server_ = FakeQmpServer::listen(std::move(monitor_listener), [this](FakeQmpServer&, Command& c) { handle(c); });
}

FakeQemu::~FakeQemu() {
    server_.reset();
    {
        std::lock_guard lk(mutex_);
        stop_migration_ = true;
        cv_.notify_all();
    }
    if (migration_thread_.joinable()) migration_thread_.join();
}

void FakeQemu::on(const std::string& command, Script script) {
    std::lock_guard lk(mutex_);
    scripts_[command] = std::move(script);
}

FakeQemu::Script FakeQemu::never() {
    return [](FakeQemu&, Command&) { return true; };
}

FakeQemu::Script FakeQemu::fail(std::string desc) {
    return [desc](FakeQemu& q, Command& c) {
        q.server().reply_error(c, desc);
        return true;
    };
}

FakeQemu::Script FakeQemu::delay(Ms by) {
    return [by](FakeQemu& q, Command& c) {
        q.default_behaviour(c, by, by);
        return true;
    };
}

FakeQemu::Script FakeQemu::reply_then_event(Ms event_after) {
    return [event_after](FakeQemu& q, Command& c) {
        q.default_behaviour(c, Ms(0), event_after);
        return true;
    };
}

void FakeQemu::handle(Command& c) {
    Script script;
    {
        std::lock_guard lk(mutex_);
        if (auto it = scripts_.find(c.name); it != scripts_.end()) script = it->second;
    }
    if (script && script(*this, c)) return;
    default_behaviour(c);
}

namespace {

std::string fd_name_of(const json& arguments) {
    std::string uri = arguments.is_object() ? arguments.value("uri", "") : "";
    return uri.starts_with("fd:") ? uri.substr(3) : "";
}

}  // namespace

void FakeQemu::default_behaviour(Command& c, Ms reply_after, Ms event_after) {
    FakeQmpServer& srv = *server_;
    std::unique_lock lk(mutex_);
    if (c.name == "stop") {
        runstate_ = "paused";
        lk.unlock();
        srv.event("STOP", nullptr, event_after);  // QEMU: the event, then the reply
        srv.reply(c, json::object(), reply_after);
    } else if (c.name == "cont") {
        if (runstate_ == "shutdown" || runstate_ == "guest-panicked") {
            lk.unlock();
            srv.reply_error(c, "Resetting the Virtual Machine is required", "GenericError", reply_after);
            return;
        }
        runstate_ = "running";
        lk.unlock();
        srv.event("RESUME", nullptr, event_after);
        srv.reply(c, json::object(), reply_after);
    } else if (c.name == "system_reset") {
        if (runstate_ == "shutdown" || runstate_ == "guest-panicked") runstate_ = "prelaunch";
        lk.unlock();
        srv.reply(c, json::object(), reply_after);
        srv.event("RESET", {{"guest", false}, {"reason", "host-qmp-system-reset"}}, std::max(reply_after, event_after));
    } else if (c.name == "system_powerdown") {
        const bool powers_off = on_power_button == Guest::PowersOff;
        lk.unlock();
        srv.reply(c, json::object(), reply_after);
        srv.event("POWERDOWN", nullptr, event_after);
        if (powers_off) guest_powers_off(std::max(reply_after, event_after) + Ms(10));
    } else if (c.name == "quit") {
        lk.unlock();
        srv.reply(c, json::object(), reply_after);
        srv.event("SHUTDOWN", {{"guest", false}, {"reason", "host-qmp-quit"}}, reply_after);
        die(reply_after);
    } else if (c.name == "query-chardev") {
        json out = json::array();
        for (std::size_t i = 0; i < pty_chardevs.size(); ++i)
            out.push_back({{"label", pty_chardevs[i]}, {"filename", fmt::format("pty:/dev/pts/{}", 90 + i)}, {"frontend-open", true}});
        lk.unlock();
        srv.reply(c, out, reply_after);
    } else if (c.name == "query-status") {
        json st = {{"status", runstate_}, {"running", runstate_ == "running"}};
        lk.unlock();
        srv.reply(c, st, reply_after);
    } else if (c.name == "getfd") {
        std::string fdname = c.arguments.is_object() ? c.arguments.value("fdname", "") : "";
        if (c.fds.empty()) {
            lk.unlock();
            srv.reply_error(c, "No file descriptor supplied via SCM_RIGHTS", "GenericError", reply_after);
            return;
        }
        fds_[fdname] = std::move(c.fds.front());
        lk.unlock();
        srv.reply(c, json::object(), reply_after);
    } else if (c.name == "migrate" || c.name == "migrate-incoming") {
        auto it = fds_.find(fd_name_of(c.arguments));
        if (it == fds_.end()) {
            lk.unlock();
            srv.reply_error(c, "File descriptor named '" + fd_name_of(c.arguments) + "' not found", "GenericError",
                            reply_after);
            return;
        }
        int fd = it->second.release();
        fds_.erase(it);
        lk.unlock();
        if (c.name == "migrate") start_outgoing(fd);
        else start_incoming(fd);
        srv.reply(c, json::object(), reply_after);
    } else if (c.name == "migrate_cancel") {
        if (migration_ == "active" || migration_ == "setup") {
            stop_migration_ = true;
            cv_.notify_all();
        }
        lk.unlock();
        srv.reply(c, json::object(), reply_after);
    } else if (c.name == "query-migrate") {
        json out = json::object();
        if (migration_ != "none") {
            out["status"] = migration_;
            const std::uint64_t total = migration_bytes;
            out["ram"] = {{"transferred", transferred_},
                          {"remaining", total > transferred_ ? total - transferred_ : 0},
                          {"total", total},
                          {"mbps", 800.0}};
            if (migration_ == "failed") out["error-desc"] = "fake: the stream could not be written";
        }
        lk.unlock();
        srv.reply(c, out, reply_after);
    } else {
        lk.unlock();
        srv.reply_error(c, "The command " + c.name + " has not been found", "CommandNotFound", reply_after);
    }
}

void FakeQemu::start_outgoing(int raw_fd) {
    if (migration_thread_.joinable()) migration_thread_.join();
    {
        std::lock_guard lk(mutex_);
        migration_ = "active";
        transferred_ = 0;
        stop_migration_ = false;
    }
    migration_thread_ = std::thread([this, fd = UniqueFd(raw_fd)]() {
        const std::size_t chunk = 16 * 1024;
        const std::size_t total = migration_bytes;
        const auto pause = migration_duration * chunk / std::max<std::size_t>(total, 1);
        std::string data(chunk, 'Q');
        std::string outcome = "completed";
        std::unique_lock lk(mutex_);
        while (transferred_ < total) {
            if (stop_migration_) {
                outcome = "cancelled";
                break;
            }
            if (migration_stall_at && transferred_ >= *migration_stall_at) {
                cv_.wait(lk, [&] { return stop_migration_; });
                continue;
            }
            std::size_t n = std::min(chunk, total - transferred_);
            lk.unlock();
            ssize_t w = ::write(fd.get(), data.data(), n);
            lk.lock();
            if (w <= 0) {
                outcome = "failed";
                break;
            }
            transferred_ += static_cast<std::uint64_t>(w);
            cv_.wait_for(lk, pause, [&] { return stop_migration_; });
        }
        migration_ = outcome;
        if (outcome == "completed") runstate_ = "postmigrate";
    });
}

void FakeQemu::start_incoming(int raw_fd) {
    if (migration_thread_.joinable()) migration_thread_.join();
    {
        std::lock_guard lk(mutex_);
        migration_ = "active";
        transferred_ = 0;
        stop_migration_ = false;
    }
    migration_thread_ = std::thread([this, fd = UniqueFd(raw_fd)]() {
        char buf[65536];
        for (;;) {
            ssize_t n = ::read(fd.get(), buf, sizeof(buf));
            if (n < 0 && errno == EINTR) continue;
            std::lock_guard lk(mutex_);
            if (n <= 0 || stop_migration_) break;
            transferred_ += static_cast<std::uint64_t>(n);
        }
        std::lock_guard lk(mutex_);
        migration_ = "completed";
        runstate_ = "paused";
    });
}

void FakeQemu::begin_outgoing_migration(UniqueFd fd) {
    {
        std::lock_guard lk(mutex_);
        runstate_ = "paused";
    }
    start_outgoing(fd.release());
}

void FakeQemu::guest_powers_off(Ms after) {
    {
        std::lock_guard lk(mutex_);
        runstate_ = "shutdown";
    }
    server_->event("SHUTDOWN", {{"guest", true}, {"reason", "guest-shutdown"}}, after);
    server_->event("STOP", nullptr, after);
}

void FakeQemu::guest_reboots_with_no_reboot() {
    {
        std::lock_guard lk(mutex_);
        runstate_ = "shutdown";
    }
    server_->event("SHUTDOWN", {{"guest", true}, {"reason", "guest-reset"}});
    server_->event("STOP");
}

void FakeQemu::guest_panics() {
    {
        std::lock_guard lk(mutex_);
        runstate_ = "guest-panicked";
    }
    server_->event("GUEST_PANICKED", {{"action", "pause"}});
    server_->event("STOP");
}

void FakeQemu::event(std::string event_name, json data, Ms after) { server_->event(std::move(event_name), std::move(data), after); }

void FakeQemu::die(Ms after) {
    {
        // The process is gone when its monitor closes.
        std::lock_guard lk(mutex_);
        if (after.count() > 0) {
            dies_at_ = std::chrono::steady_clock::now() + after;
        } else {
            alive_ = false;
            stop_migration_ = true;
            cv_.notify_all();
        }
    }
    server_->hang_up(after);
}

void FakeQemu::signal(int sig) {
    if (!alive()) return;
    if (sig == SIGKILL) {
        die();
    } else if (sig == SIGTERM && on_sigterm == Sigterm::Exits) {
        server_->event("SHUTDOWN", {{"guest", false}, {"reason", "host-signal"}});
        die();
    }
}

bool FakeQemu::alive_locked() const {
    return alive_ && !(dies_at_ && std::chrono::steady_clock::now() >= *dies_at_);
}

bool FakeQemu::alive() const {
    std::lock_guard lk(mutex_);
    return alive_locked();
}

bool FakeQemu::wait_dead(Ms timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lk(mutex_);
    while (alive_locked()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        cv_.wait_for(lk, Ms(2));
    }
    return true;
}

std::string FakeQemu::runstate() const {
    std::lock_guard lk(mutex_);
    return runstate_;
}

std::string FakeQemu::migration_status() const {
    std::lock_guard lk(mutex_);
    return migration_;
}

// --- the host ---------------------------------------------------------------------

Result<ProcessId> FakeQemuHost::spawn(const SpawnSpec& spec) {
    std::lock_guard lk(mutex_);
    if (spawn_error) {
        Error e = *spawn_error;
        spawn_error.reset();
        return std::unexpected(e);
    }
    std::string domain;
    bool incoming = false;
    for (std::size_t i = 0; i + 1 < spec.argv.size(); ++i) {
        if (spec.argv[i] == "-name" && spec.argv[i + 1].starts_with("guest="))
            domain = spec.argv[i + 1].substr(6, spec.argv[i + 1].find(',') - 6);
        if (spec.argv[i] == "-incoming") incoming = true;
    }
    UniqueFd listener;
    for (const auto& fd : spec.fds)
        if (fd.name == "monitor") listener.reset(::fcntl(fd.fd, F_DUPFD_CLOEXEC, 3));
    if (!listener) return vireo::fail(ErrorCode::Internal, "fake QEMU: no monitor socket handed over");
    ProcessId id{static_cast<pid_t>(2'000'000'000 + static_cast<int>(fakes_.size())), 1};
    if (!spec.pid_path.empty()) (void)files::write_atomic(spec.pid_path, std::to_string(id.pid) + "\n");
    auto fake = std::make_shared<FakeQemu>(domain, id, std::move(listener), incoming);
    for (std::size_t i = 0; i + 1 < spec.argv.size(); ++i)
        if (spec.argv[i] == "-chardev" && spec.argv[i + 1].starts_with("pty,id="))
            fake->pty_chardevs.push_back(spec.argv[i + 1].substr(7, spec.argv[i + 1].find(',', 7) - 7));
    if (on_spawn) on_spawn(*fake);
    fakes_.push_back(fake);
    return id;
}

std::shared_ptr<FakeQemu> FakeQemuHost::by_id(const ProcessId& id) const {
    std::lock_guard lk(mutex_);
    for (const auto& f : fakes_)
        if (f->id.pid == id.pid && f->id.start_time == id.start_time) return f;
    return nullptr;
}

std::shared_ptr<FakeQemu> FakeQemuHost::find(const std::string& domain) const {
    std::lock_guard lk(mutex_);
    for (auto it = fakes_.rbegin(); it != fakes_.rend(); ++it)
        if ((*it)->name == domain) return *it;
    return nullptr;
}

int FakeQemuHost::spawned() const {
    std::lock_guard lk(mutex_);
    return static_cast<int>(fakes_.size());
}

bool FakeQemuHost::alive(const ProcessId& id) {
    auto f = by_id(id);
    return f && f->alive();
}

bool FakeQemuHost::wait_exit(const ProcessId& id, std::chrono::milliseconds timeout) {
    auto f = by_id(id);
    return !f || f->wait_dead(timeout);
}

Status FakeQemuHost::signal(const ProcessId& id, int sig) {
    if (auto f = by_id(id)) f->signal(sig);
    return {};
}

Status FakeQemuHost::terminate(const ProcessId& id, std::chrono::milliseconds grace, bool graceful) {
    auto f = by_id(id);
    if (!f) return {};
    f->signal(SIGTERM);
    if (f->wait_dead(grace)) return {};
    if (graceful) return vireo::fail(ErrorCode::Timeout, "process {} did not exit within {} ms of SIGTERM", id.pid, grace.count());
    f->signal(SIGKILL);
    f->wait_dead(std::chrono::seconds(1));
    return {};
}

}  // namespace vireo::qemu::test
