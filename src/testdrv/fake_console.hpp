// FakeConsole: serial consoles for the test driver. Each open() returns one
// end of a socketpair; a thread on the other end acts as a guest shell that
// answers every line it receives with "test console: <line>\n".
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "util/error.hpp"
#include "util/fd.hpp"

namespace vireo::testdrv {

class FakeConsole {
public:
    FakeConsole();
    // Disconnects every open console and waits for their threads.
    ~FakeConsole();
    FakeConsole(const FakeConsole&) = delete;
    FakeConsole& operator=(const FakeConsole&) = delete;

    // A new console stream; `banner` (may be empty) is sent first.
    Result<UniqueFd> open(const std::string& banner);

    struct Session;

private:
    void reap_finished();

    std::mutex mutex_;
    std::vector<std::unique_ptr<Session>> sessions_;
};

}  // namespace vireo::testdrv
