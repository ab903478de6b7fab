// Rollback: undo actions of a multi-step change (a bridge made, an address
// added, a port joined), run in reverse order unless the change succeeded
// and dismissed them. Used where a failed step must leave the host as it was.
#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace vireo {

class Rollback {
public:
    Rollback() = default;
    Rollback(const Rollback&) = delete;
    Rollback& operator=(const Rollback&) = delete;
    ~Rollback() {
        if (armed_)
            for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) (*it)();
    }
    void add(std::function<void()> f) { undo_.push_back(std::move(f)); }
    void dismiss() { armed_ = false; }

private:
    std::vector<std::function<void()>> undo_;
    bool armed_ = true;
};

}  // namespace vireo
