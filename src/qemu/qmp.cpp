#include "qemu/qmp.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

namespace vireo::qemu {

using nlohmann::json;

namespace {

Result<sockaddr_un> unix_address(const std::filesystem::path& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string& p = path.native();
    if (p.size() >= sizeof(addr.sun_path))
        return fail(ErrorCode::InvalidArg, "socket path '{}' is too long (at most {} bytes)", p,
                    sizeof(addr.sun_path) - 1);
    std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
    return addr;
}

// Wait until fd is readable; false on timeout.
Result<bool> wait_readable(int fd, std::chrono::milliseconds timeout) {
    pollfd pfd{fd, POLLIN, 0};
    for (;;) {
        int r = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return fail_errno("poll on QEMU monitor");
        return r > 0;
    }
}

Status send_all(int fd, std::string_view data, int pass_fd) {
    bool fd_sent = pass_fd < 0;
    while (!data.empty()) {
        ssize_t n;
        if (!fd_sent) {
            iovec iov{const_cast<char*>(data.data()), data.size()};
            alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control;
            msg.msg_controllen = sizeof(control);
            cmsghdr* cm = CMSG_FIRSTHDR(&msg);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            std::memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
            n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
        } else {
            n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::unexpected(errno_error("write to QEMU monitor", errno));
        fd_sent = true;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

}  // namespace

struct QmpClient::Impl { // NOLINT(bugprone-exception-escape): clang-tidy 16 counts an implicit member's possible throw (set/json copies) here
    UniqueFd fd;
    json greeting;
    EventHandler on_event;
    CloseHandler on_close;

    std::mutex write_mutex;
    std::mutex mutex;  // guards everything below
    std::condition_variable cv;
    std::map<std::uint64_t, std::optional<Result<json>>> pending;
    std::uint64_t next_id = 1;
    bool is_closed = false;
    bool closed_by_us = false;
    std::optional<Error> close_reason;
    std::thread reader;

    std::string buffer;  // reader-thread only

    void dispatch(const std::string& line) {
        json msg = json::parse(line, nullptr, false);
        if (msg.is_discarded() || !msg.is_object()) return;  // not ours to crash on
        if (msg.contains("event")) {
            if (!on_event) return;
            QmpEvent ev;
            ev.name = msg["event"].is_string() ? msg["event"].get<std::string>() : "";
            ev.data = msg.value("data", json());
            if (auto ts = msg.find("timestamp"); ts != msg.end() && ts->is_object())
                ev.timestamp = ts->value("seconds", 0.0) + ts->value("microseconds", 0.0) / 1e6;
            on_event(ev);
            return;
        }
        auto id_it = msg.find("id");
        if (id_it == msg.end() || !id_it->is_number_unsigned()) return;  // reply to nobody
        Result<json> result;
        if (auto r = msg.find("return"); r != msg.end()) {
            result = *r;
        } else if (auto e = msg.find("error"); e != msg.end() && e->is_object()) {
            result = std::unexpected(Error{ErrorCode::Hypervisor,
                                           fmt::format("{}", e->value("desc", std::string("unknown QEMU error")))});
        } else {
            result = std::unexpected(Error{ErrorCode::Protocol, "malformed QMP reply: " + line.substr(0, 200)});
        }
        std::lock_guard lk(mutex);
        auto p = pending.find(id_it->get<std::uint64_t>());
        if (p == pending.end()) return;  // timed out earlier
        p->second = std::move(result);
        cv.notify_all();
    }

    void finish(const Error& reason) {
        bool notify = false;
        {
            std::lock_guard lk(mutex);
            if (is_closed && close_reason) return;
            is_closed = true;
            close_reason = reason;
            for (auto& [id, slot] : pending)
                if (!slot) slot = std::unexpected(Error{ErrorCode::Connection, reason.message});
            notify = !closed_by_us;
            cv.notify_all();
        }
        if (notify && on_close) on_close(reason);
    }

    void read_loop() {
        char chunk[65536];
        for (;;) {
            ssize_t n = ::read(fd.get(), chunk, sizeof(chunk));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                finish(n == 0 ? Error{ErrorCode::Connection, "QEMU monitor closed the connection"}
                              : errno_error("read from QEMU monitor", errno));
                return;
            }
            buffer.append(chunk, static_cast<std::size_t>(n));
            std::size_t start = 0;
            for (std::size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
                std::string line = buffer.substr(start, nl - start);
                if (!line.empty() && line.find_first_not_of(" \r\t") != std::string::npos) dispatch(line);
            }
            buffer.erase(0, start);
        }
    }

    Result<json> execute(std::string_view command, const json& arguments, int pass_fd,
                         std::chrono::milliseconds timeout) {
        std::uint64_t id;
        {
            std::lock_guard lk(mutex);
            if (is_closed)
                return fail(ErrorCode::Connection, "QEMU monitor is closed ({})",
                            close_reason ? close_reason->message : "closed");
            id = next_id++;
            pending[id];
        }
        json req = {{"execute", command}, {"id", id}};
        if (!arguments.is_null()) req["arguments"] = arguments;
        std::string text = req.dump() + "\n";
        Status sent;
        {
            std::lock_guard wl(write_mutex);
            sent = send_all(fd.get(), text, pass_fd);
        }
        std::unique_lock lk(mutex);
        if (!sent) {
            pending.erase(id);
            return std::unexpected(sent.error());
        }
        bool done = cv.wait_for(lk, timeout, [&] { return pending[id].has_value(); });
        if (!done) {
            pending.erase(id);
            return fail(ErrorCode::Timeout, "QEMU did not answer '{}' within {} ms", command, timeout.count());
        }
        Result<json> out = std::move(*pending[id]);
        pending.erase(id);
        if (!out) return std::unexpected(out.error().context(fmt::format("QEMU command '{}' failed", command)));
        return out;
    }

    void shutdown_socket() {
        {
            std::lock_guard lk(mutex);
            closed_by_us = true;
        }
        ::shutdown(fd.get(), SHUT_RDWR);
    }
};

Result<UniqueFd> connect_unix(const std::filesystem::path& path) {
    auto addr = unix_address(path);
    if (!addr) return std::unexpected(addr.error());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fail_errno("socket");
    for (;;) {
        if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) == 0) return fd;
        if (errno == EINTR) continue;
        return std::unexpected(errno_error(fmt::format("connect to '{}'", path.string()), errno));
    }
}

Result<UniqueFd> listen_unix(const std::filesystem::path& path) {
    auto addr = unix_address(path);
    if (!addr) return std::unexpected(addr.error());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fail_errno("socket");
    ::unlink(path.c_str());
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0)
        return fail_errno(fmt::format("bind '{}'", path.string()));
    if (::listen(fd.get(), 8) != 0) return fail_errno(fmt::format("listen on '{}'", path.string()));
    return fd;
}

QmpClient::QmpClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<QmpClient>> QmpClient::open(UniqueFd fd, std::chrono::milliseconds timeout,
                                                   EventHandler on_event, CloseHandler on_close) {
    auto impl = std::make_shared<Impl>();
    impl->fd = std::move(fd);
    impl->on_event = std::move(on_event);
    impl->on_close = std::move(on_close);

    // The greeting is the first line; read it before anything else.
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string& buf = impl->buffer;
    std::size_t nl;
    while ((nl = buf.find('\n')) == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return fail(ErrorCode::Timeout, "QEMU monitor sent no greeting within {} ms", timeout.count());
        auto ready = wait_readable(impl->fd.get(), left);
        if (!ready) return std::unexpected(ready.error());
        if (!*ready) continue;
        char chunk[4096];
        ssize_t n = ::read(impl->fd.get(), chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::unexpected(errno_error("read QEMU monitor greeting", errno));
        if (n == 0) return fail(ErrorCode::Connection, "QEMU monitor closed before its greeting");
        buf.append(chunk, static_cast<std::size_t>(n));
    }
    json greeting = json::parse(buf.substr(0, nl), nullptr, false);
    buf.erase(0, nl + 1);
    if (greeting.is_discarded() || !greeting.contains("QMP"))
        return fail(ErrorCode::Protocol, "the socket did not answer with a QMP greeting");
    impl->greeting = greeting["QMP"];

    // The reader owns a reference so that it can outlive a client destroyed
    // from inside one of its own callbacks.
    impl->reader = std::thread([impl] { impl->read_loop(); });
    std::unique_ptr<QmpClient> client(new QmpClient(impl));
    auto caps = client->execute("qmp_capabilities", nullptr, timeout);
    if (!caps) return std::unexpected(caps.error());
    return client;
}

Result<std::unique_ptr<QmpClient>> QmpClient::connect(const std::filesystem::path& path,
                                                      std::chrono::milliseconds timeout, EventHandler on_event,
                                                      CloseHandler on_close) {
    auto fd = connect_unix(path);
    if (!fd) return std::unexpected(fd.error());
    return open(std::move(*fd), timeout, std::move(on_event), std::move(on_close));
}

QmpClient::~QmpClient() { close(); }

void QmpClient::close() {
    if (!impl_) return;
    impl_->shutdown_socket();
    if (impl_->reader.joinable()) {
        if (impl_->reader.get_id() == std::this_thread::get_id())
            impl_->reader.detach();
        else
            impl_->reader.join();
    }
}

Result<json> QmpClient::execute(std::string_view command, const json& arguments, std::chrono::milliseconds timeout) {
    return impl_->execute(command, arguments, -1, timeout);
}

Result<json> QmpClient::execute_with_fd(std::string_view command, const json& arguments, int fd,
                                        std::chrono::milliseconds timeout) {
    return impl_->execute(command, arguments, fd, timeout);
}

const json& QmpClient::greeting() const { return impl_->greeting; }

bool QmpClient::closed() const {
    std::lock_guard lk(impl_->mutex);
    return impl_->is_closed;
}

}  // namespace vireo::qemu
