// Network namespaces for the network integration tests. Every test works in
// namespaces it makes (named vireo-t<pid>-<role>, removed at the end), on
// addresses it assigns: nothing reaches the machine's own network.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "support/support.hpp"
#include "util/fd.hpp"

namespace vireo::test {

// Why network tests cannot run here, or "" when they can (root, ip, netns).
std::string netns_unavailable();

class NetNs {
public:
    explicit NetNs(const std::string& role);
    ~NetNs();
    NetNs(const NetNs&) = delete;
    NetNs& operator=(const NetNs&) = delete;

    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] bool ok() const { return static_cast<bool>(fd_); }
    // Run argv inside the namespace (ip netns exec).
    CommandResult exec(const std::vector<std::string>& argv) const;

private:
    std::string name_;
    UniqueFd fd_;
};

// Moves the calling thread into a namespace for its lifetime, then back.
class EnterNs {
public:
    explicit EnterNs(const NetNs& ns);
    ~EnterNs();
    EnterNs(const EnterNs&) = delete;
    EnterNs& operator=(const EnterNs&) = delete;
    [[nodiscard]] bool ok() const { return ok_; }

private:
    UniqueFd original_;
    bool ok_ = false;
};

// A program running in the background (killed and reaped at destruction).
class Background {
public:
    explicit Background(const std::vector<std::string>& argv);
    ~Background();
    Background(const Background&) = delete;
    Background& operator=(const Background&) = delete;

private:
    pid_t pid_ = -1;
};

}  // namespace vireo::test
