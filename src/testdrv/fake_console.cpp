#include "testdrv/fake_console.hpp"

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <string_view>
#include <thread>

namespace vireo::testdrv {

struct FakeConsole::Session {
    UniqueFd fd;  // the guest's end; owned here, closed after the thread ends
    std::thread thread;
    std::atomic<bool> finished{false};
};

namespace {

// send() instead of write() so that a client that went away gives EPIPE,
// not SIGPIPE.
bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

void run_guest_shell(FakeConsole::Session& s) {
    std::string pending;
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(s.fd.get(), buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // client closed (or we are shutting down)
        pending.append(buf, static_cast<size_t>(n));
        std::size_t nl;
        bool ok = true;
        while (ok && (nl = pending.find('\n')) != std::string::npos) {
            std::string line = pending.substr(0, nl);
            pending.erase(0, nl + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            ok = send_all(s.fd.get(), "test console: " + line + "\n");
        }
        if (!ok) break;
    }
    s.finished = true;
}

}  // namespace

FakeConsole::FakeConsole() = default;

FakeConsole::~FakeConsole() {
    std::lock_guard lk(mutex_);
    for (auto& s : sessions_) {
        ::shutdown(s->fd.get(), SHUT_RDWR);  // wakes the recv() in the thread
        if (s->thread.joinable()) s->thread.join();
    }
}

void FakeConsole::reap_finished() {
    std::erase_if(sessions_, [](const std::unique_ptr<Session>& s) {
        if (!s->finished) return false;
        s->thread.join();
        return true;
    });
}

Result<UniqueFd> FakeConsole::open(const std::string& banner) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return fail_errno("cannot create console socket pair");
    UniqueFd client{fds[0]};
    auto session = std::make_unique<Session>();
    session->fd.reset(fds[1]);
    if (!banner.empty() && !send_all(session->fd.get(), banner)) return fail_errno("cannot write console banner");
    std::lock_guard lk(mutex_);
    reap_finished();
    Session& ref = *session;
    session->thread = std::thread([&ref] { run_guest_shell(ref); });
    sessions_.push_back(std::move(session));
    return client;
}

}  // namespace vireo::testdrv
