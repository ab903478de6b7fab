// Errors as values: every fallible operation in vireo returns Result<T>.
//
// An Error carries a code (what kind of failure, and so whether retrying can
// help), a message written for the person at the terminal, and optionally the
// cause it wraps. Nothing in vireo throws across a subsystem boundary.
#pragma once

#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace vireo {

// Error codes, modelled on libvirt's virErrorNumber families so that callers
// porting from libvirt find the same distinctions.
enum class ErrorCode {
    Internal,          // a bug in vireo: should never be seen
    InvalidArg,        // the caller passed something malformed
    XmlError,          // a document could not be parsed or failed validation
    Unsupported,       // valid request, not implemented / not possible here
    NoDomain,          // no domain with that name/uuid
    NoPool,            // no storage pool with that name
    NoVolume,          // no storage volume with that name
    NoNetwork,         // no network with that name
    Exists,            // an object with that name/uuid already exists
    InvalidState,      // operation not valid in the object's current state
    Busy,              // another job holds the object; retrying later may help
    Timeout,           // an operation did not complete in time; may be retried
    NotFound,          // a file, binary or other resource is missing
    PermissionDenied,  // the OS refused access
    System,            // a system call failed (errno in the message)
    Io,                // read/write failure on an image or file
    Corrupt,           // on-disk data is inconsistent
    Hypervisor,        // QEMU reported an error or died
    Connection,        // cannot reach the daemon / peer
    Protocol,          // malformed message from a peer
    OperationFailed,   // generic failure of a requested operation
};

// Stable, machine-readable name of a code ("no-domain"), used on the wire.
std::string_view to_string(ErrorCode code);
// Inverse of to_string; unknown names map to Internal.
ErrorCode error_code_from_string(std::string_view name);
// True when repeating the same request later may succeed.
bool is_retryable(ErrorCode code);

struct Error {
    ErrorCode code = ErrorCode::Internal;
    std::string message;
    std::shared_ptr<const Error> cause;
    // The errno of the failed system call (errno_error, fail_errno), 0 when
    // the error does not come from one. Lets a caller tell ENOSPC from EROFS
    // without parsing the message. Local to the process: not on the wire.
    int sys_errno = 0;

    Error() = default;
    Error(ErrorCode c, std::string msg) : code(c), message(std::move(msg)) {}

    // Wrap this error in a new one that adds context in front:
    // err.context("failed to start domain 'web'") ->
    // "failed to start domain 'web': disk '/x.qcow2' not found".
    // The wrapper keeps the code and the errno of this error.
    [[nodiscard]] Error context(std::string prefix) const;

    // The errno behind this error: its own sys_errno, else the nearest one
    // in its chain of causes; 0 when no system call failed.
    [[nodiscard]] int system_errno() const;

    // The message including the chain of causes.
    [[nodiscard]] std::string full_message() const;
};

// std::expected<T, Error> that must not be dropped: a call whose Result is
// ignored does not compile (-Werror=unused-result). Write `(void)call();`
// where ignoring an error is really meant, with a comment saying why.
template <class T>
class [[nodiscard]] Result : public std::expected<T, Error> {
public:
    using std::expected<T, Error>::expected;
    Result() = default;
    // From any std::expected of a convertible value (e.g. what and_then returns).
    template <class U>
        requires std::is_constructible_v<std::expected<T, Error>, std::expected<U, Error>>
    Result(std::expected<U, Error> other) : std::expected<T, Error>(std::move(other)) {}
};
using Status = Result<void>;

// Build an unexpected Error with a fmt-formatted message.
template <class... Args>
[[nodiscard]] std::unexpected<Error> fail(ErrorCode code, fmt::format_string<Args...> f, Args&&... args) {
    return std::unexpected(Error{code, fmt::format(f, std::forward<Args>(args)...)});
}

// An Error for the current errno, "<what>: <strerror>"; EACCES/EPERM map to
// PermissionDenied and ENOENT to NotFound so callers can tell them apart, and
// the errno itself is kept in Error::sys_errno.
[[nodiscard]] Error errno_error(std::string_view what, int err);
[[nodiscard]] std::unexpected<Error> fail_errno(std::string_view what);

}  // namespace vireo

// Propagate an error from an expression returning Result/Status.
#define VIREO_TRY(expr)                                       \
    do {                                                      \
        auto vireo_try_result_ = (expr);                      \
        if (!vireo_try_result_)                               \
            return std::unexpected(vireo_try_result_.error()); \
    } while (0)
