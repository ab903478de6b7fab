// How the long image operations (convert, commit, rebase, and the volume
// work built on them) report progress and are cancelled.
//
// The operation calls the ProgressFn with the work done so far and the
// total (bytes; each operation says which bytes and when it calls). The
// function returns true to go on, false to ask the operation to stop: it
// then stops promptly, cleans up what it alone made (a target it created),
// and fails with cancelled_error(). Calls come from the thread running the
// operation. The library itself never prints.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "util/error.hpp"

namespace vireo::storage {

using ProgressFn = std::function<bool(uint64_t done, uint64_t total)>;

// Warnings the operation would print as it goes (qemu-img's words, e.g.
// "warning: error while reading offset 512: ..."); ignored when empty.
using WarnFn = std::function<void(const std::string&)>;

// The error of an operation stopped by its ProgressFn.
inline Error cancelled_error() { return Error{ErrorCode::OperationFailed, "the operation was cancelled"}; }
inline bool is_cancelled(const Error& e) {
    return e.code == ErrorCode::OperationFailed && e.message == "the operation was cancelled";
}

}  // namespace vireo::storage
