// A QMP server for tests: what QEMU's monitor looks like from vireo's side,
// over a real unix socket, with every answer scripted by the test.
//
// It listens (or serves an already connected socket), greets each client as
// QEMU does, answers qmp_capabilities itself and hands every other command
// to the test's handler, on its reader thread. The handler answers (or
// never does) through reply() / reply_error(), and may send events or hang
// up; each of these can be delayed, and they reach the client in the order
// they were asked for at their due time, so a test can put an event before
// or after the reply that caused it, let a reply come late or never, and
// close the connection at a chosen point. Descriptors sent with a command
// (SCM_RIGHTS, as getfd does) come with it.
//
// Like QEMU's monitor, a listening server accepts the next client when one
// goes away (a daemon restarting and reattaching), until it hangs up.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/fd.hpp"

namespace vireo::test {

class FakeQmpServer {
public:
    struct Command {
        std::string name;
        nlohmann::json arguments;   // null when absent
        nlohmann::json id;          // null when absent
        std::vector<UniqueFd> fds;  // passed along with it
    };
    // Called on the reader thread for each command but qmp_capabilities.
    using Handler = std::function<void(FakeQmpServer&, Command&)>;
    using Ms = std::chrono::milliseconds;

    // Serve the clients that connect to `listener` (a listening socket), one
    // after the other.
    static std::unique_ptr<FakeQmpServer> listen(UniqueFd listener, Handler handler);
    // Serve one already connected client.
    static std::unique_ptr<FakeQmpServer> serve(UniqueFd connected, Handler handler);

    ~FakeQmpServer();
    FakeQmpServer(const FakeQmpServer&) = delete;
    FakeQmpServer& operator=(const FakeQmpServer&) = delete;

    // To the current client, `after` from now (0: at once), in call order.
    void reply(const Command& c, nlohmann::json ret = nlohmann::json::object(), Ms after = Ms(0));
    void reply_error(const Command& c, std::string desc, std::string cls = "GenericError", Ms after = Ms(0));
    void event(std::string name, nlohmann::json data = nullptr, Ms after = Ms(0));
    // Close the connection and stop serving (QEMU exits): the client sees EOF.
    void hang_up(Ms after = Ms(0));

    // Names of the commands received so far (all clients), in order.
    [[nodiscard]] std::vector<std::string> commands() const;
    // Wait until `count` commands named `name` arrived; false on timeout.
    bool wait_for_command(std::string_view name, Ms timeout, int count = 1) const;
    // Clients accepted so far.
    [[nodiscard]] int clients() const;
    // Wait until the current client went away (or the server hung up).
    bool wait_client_gone(int client, Ms timeout) const;
    [[nodiscard]] bool hung_up() const;

private:
    FakeQmpServer(UniqueFd listener, UniqueFd connected, Handler handler);
    struct Outgoing {
        std::chrono::steady_clock::time_point due;
        std::uint64_t seq = 0;
        std::string line;  // empty: hang up
        int client = 0;
    };
    void io_loop();
    void write_loop();
    void serve_client(int fd);
    void dispatch(const std::string& line, std::vector<UniqueFd>& fds);
    void enqueue(std::string line, Ms after);

    UniqueFd listener_;
    UniqueFd first_client_;
    UniqueFd wake_;  // eventfd: stop the io loop
    Handler handler_;

    mutable std::mutex mutex_;
    mutable std::condition_variable cv_;
    int client_fd_ = -1;  // current client's socket (owned by io loop)
    int client_ = 0;      // number of the current client (1, 2, ...)
    bool stopping_ = false;
    bool hung_up_ = false;
    std::vector<std::string> commands_;
    std::vector<Outgoing> outgoing_;
    std::uint64_t next_seq_ = 0;

    std::thread io_;
    std::thread writer_;
};

}  // namespace vireo::test
