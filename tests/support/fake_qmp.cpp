#include "support/fake_qmp.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vireo::test {

using nlohmann::json;

std::unique_ptr<FakeQmpServer> FakeQmpServer::listen(UniqueFd listener, Handler handler) {
    return std::unique_ptr<FakeQmpServer>(new FakeQmpServer(std::move(listener), UniqueFd(), std::move(handler)));
}

std::unique_ptr<FakeQmpServer> FakeQmpServer::serve(UniqueFd connected, Handler handler) {
    return std::unique_ptr<FakeQmpServer>(new FakeQmpServer(UniqueFd(), std::move(connected), std::move(handler)));
}

FakeQmpServer::FakeQmpServer(UniqueFd listener, UniqueFd connected, Handler handler)
    : listener_(std::move(listener)), first_client_(std::move(connected)),
      wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)), handler_(std::move(handler)) {
    writer_ = std::thread([this] { write_loop(); });
    io_ = std::thread([this] { io_loop(); });
}

FakeQmpServer::~FakeQmpServer() {
    {
        std::lock_guard lk(mutex_);
        stopping_ = true;
        if (client_fd_ >= 0) ::shutdown(client_fd_, SHUT_RDWR);
        cv_.notify_all();
    }
    std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof(one));
    if (io_.joinable()) io_.join();
    if (writer_.joinable()) writer_.join();
}

void FakeQmpServer::io_loop() {
    if (first_client_) {
        serve_client(first_client_.get());
        first_client_.reset();
        std::lock_guard lk(mutex_);
        hung_up_ = true;
        cv_.notify_all();
        return;
    }
    for (;;) {
        pollfd p[2] = {{listener_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
        int r = ::poll(p, 2, -1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 || p[1].revents) {
            std::lock_guard lk(mutex_);
            listener_.reset();  // a QEMU that exited refuses new clients
            return;
        }
        UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!client) continue;
        serve_client(client.get());
        std::lock_guard lk(mutex_);
        if (hung_up_ || stopping_) {
            listener_.reset();  // a QEMU that exited refuses new clients
            return;
        }
    }
}

void FakeQmpServer::serve_client(int fd) {
    {
        std::lock_guard lk(mutex_);
        client_fd_ = fd;
        ++client_;
        cv_.notify_all();
    }
    enqueue(json{{"QMP", {{"version", {{"qemu", {{"major", 7}, {"minor", 2}, {"micro", 0}}}, {"package", "fake"}}},
                          {"capabilities", json::array()}}}}
                .dump(),
            Ms(0));
    std::string buffer;
    std::vector<UniqueFd> fds;
    for (;;) {
        pollfd p[2] = {{fd, POLLIN, 0}, {wake_.get(), POLLIN, 0}};
        int r = ::poll(p, 2, -1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 || p[1].revents) break;
        char chunk[65536];
        iovec iov{chunk, sizeof(chunk)};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 16)];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
        ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
            std::size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int received;
                std::memcpy(&received, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                fds.emplace_back(received);
            }
        }
        buffer.append(chunk, static_cast<std::size_t>(n));
        std::size_t start = 0;
        for (std::size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1)
            dispatch(buffer.substr(start, nl - start), fds);
        buffer.erase(0, start);
    }
    std::lock_guard lk(mutex_);
    client_fd_ = -1;
    cv_.notify_all();
}

void FakeQmpServer::dispatch(const std::string& line, std::vector<UniqueFd>& fds) {
    json msg = json::parse(line, nullptr, false);
    if (msg.is_discarded() || !msg.is_object() || !msg.contains("execute")) return;
    Command c;
    c.name = msg["execute"].is_string() ? msg["execute"].get<std::string>() : "";
    c.arguments = msg.value("arguments", json());
    c.id = msg.value("id", json());
    c.fds = std::move(fds);
    fds.clear();
    {
        std::lock_guard lk(mutex_);
        commands_.push_back(c.name);
        cv_.notify_all();
    }
    if (c.name == "qmp_capabilities") {
        reply(c);
        return;
    }
    if (handler_) handler_(*this, c);
    else reply_error(c, "The command " + c.name + " has not been found", "CommandNotFound");
}

void FakeQmpServer::enqueue(std::string line, Ms after) {
    std::lock_guard lk(mutex_);
    outgoing_.push_back(Outgoing{std::chrono::steady_clock::now() + after, next_seq_++, std::move(line), client_});
    cv_.notify_all();
}

void FakeQmpServer::reply(const Command& c, json ret, Ms after) {
    json msg = {{"return", std::move(ret)}};
    if (!c.id.is_null()) msg["id"] = c.id;
    enqueue(msg.dump(), after);
}

void FakeQmpServer::reply_error(const Command& c, std::string desc, std::string cls, Ms after) {
    json msg = {{"error", {{"class", std::move(cls)}, {"desc", std::move(desc)}}}};
    if (!c.id.is_null()) msg["id"] = c.id;
    enqueue(msg.dump(), after);
}

void FakeQmpServer::event(std::string name, json data, Ms after) {
    auto now = std::chrono::system_clock::now().time_since_epoch();
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
    json msg = {{"event", std::move(name)},
                {"timestamp", {{"seconds", us / 1000000}, {"microseconds", us % 1000000}}}};
    if (!data.is_null()) msg["data"] = std::move(data);
    enqueue(msg.dump(), after);
}

void FakeQmpServer::hang_up(Ms after) { enqueue("", after); }

void FakeQmpServer::write_loop() {
    std::unique_lock lk(mutex_);
    while (!stopping_) {
        if (outgoing_.empty()) {
            cv_.wait(lk);
            continue;
        }
        auto next = std::min_element(outgoing_.begin(), outgoing_.end(), [](const Outgoing& a, const Outgoing& b) {
            return a.due != b.due ? a.due < b.due : a.seq < b.seq;
        });
        if (next->due > std::chrono::steady_clock::now()) {
            // A copy: wait_until takes the deadline by reference and reads it
            // again after the lock is dropped, when enqueue() may have moved
            // the vector's elements.
            const auto due = next->due;
            cv_.wait_until(lk, due);
            continue;
        }
        Outgoing item = std::move(*next);
        outgoing_.erase(next);
        if (item.line.empty()) {
            // The process exits: whoever is connected sees EOF, and nobody
            // connects any more.
            hung_up_ = true;
            if (client_fd_ >= 0) ::shutdown(client_fd_, SHUT_RDWR);
            std::uint64_t one = 1;
            (void)!::write(wake_.get(), &one, sizeof(one));
            cv_.notify_all();
            continue;
        }
        if (item.client != client_ || client_fd_ < 0) continue;  // that client is gone
        std::string data = item.line + "\n";
        (void)!::send(client_fd_, data.data(), data.size(), MSG_NOSIGNAL);
    }
}

std::vector<std::string> FakeQmpServer::commands() const {
    std::lock_guard lk(mutex_);
    return commands_;
}

bool FakeQmpServer::wait_for_command(std::string_view name, Ms timeout, int count) const {
    std::unique_lock lk(mutex_);
    return cv_.wait_for(lk, timeout, [&] { return std::count(commands_.begin(), commands_.end(), name) >= count; });
}

int FakeQmpServer::clients() const {
    std::lock_guard lk(mutex_);
    return client_;
}

bool FakeQmpServer::wait_client_gone(int client, Ms timeout) const {
    std::unique_lock lk(mutex_);
    return cv_.wait_for(lk, timeout, [&] { return client_ != client || client_fd_ < 0; });
}

bool FakeQmpServer::hung_up() const {
    std::lock_guard lk(mutex_);
    return hung_up_;
}

}  // namespace vireo::test
