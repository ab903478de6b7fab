#include "util/error.hpp"

#include <array>
#include <cerrno>
#include <cstring>

namespace vireo {

namespace {
struct CodeName {
    ErrorCode code;
    std::string_view name;
};
constexpr std::array kCodeNames{
    CodeName{ErrorCode::Internal, "internal"},
    CodeName{ErrorCode::InvalidArg, "invalid-arg"},
    CodeName{ErrorCode::XmlError, "xml-error"},
    CodeName{ErrorCode::Unsupported, "unsupported"},
    CodeName{ErrorCode::NoDomain, "no-domain"},
    CodeName{ErrorCode::NoPool, "no-pool"},
    CodeName{ErrorCode::NoVolume, "no-volume"},
    CodeName{ErrorCode::NoNetwork, "no-network"},
    CodeName{ErrorCode::Exists, "exists"},
    CodeName{ErrorCode::InvalidState, "invalid-state"},
    CodeName{ErrorCode::Busy, "busy"},
    CodeName{ErrorCode::Timeout, "timeout"},
    CodeName{ErrorCode::NotFound, "not-found"},
    CodeName{ErrorCode::PermissionDenied, "permission-denied"},
    CodeName{ErrorCode::System, "system"},
    CodeName{ErrorCode::Io, "io"},
    CodeName{ErrorCode::Corrupt, "corrupt"},
    CodeName{ErrorCode::Hypervisor, "hypervisor"},
    CodeName{ErrorCode::Connection, "connection"},
    CodeName{ErrorCode::Protocol, "protocol"},
    CodeName{ErrorCode::OperationFailed, "operation-failed"},
};
}  // namespace

std::string_view to_string(ErrorCode code) {
    for (const auto& cn : kCodeNames)
        if (cn.code == code) return cn.name;
    return "internal";
}

ErrorCode error_code_from_string(std::string_view name) {
    for (const auto& cn : kCodeNames)
        if (cn.name == name) return cn.code;
    return ErrorCode::Internal;
}

bool is_retryable(ErrorCode code) {
    return code == ErrorCode::Busy || code == ErrorCode::Timeout || code == ErrorCode::Connection;
}

Error Error::context(std::string prefix) const {
    Error wrapped{code, std::move(prefix)};
    wrapped.cause = std::make_shared<const Error>(*this);
    wrapped.sys_errno = system_errno();
    return wrapped;
}

int Error::system_errno() const {
    for (const Error* e = this; e != nullptr; e = e->cause.get())
        if (e->sys_errno != 0) return e->sys_errno;
    return 0;
}

std::string Error::full_message() const {
    std::string out = message;
    for (const Error* c = cause.get(); c != nullptr; c = c->cause.get()) {
        out += ": ";
        out += c->message;
    }
    return out;
}

Error errno_error(std::string_view what, int err) {
    ErrorCode code = ErrorCode::System;
    if (err == EACCES || err == EPERM) code = ErrorCode::PermissionDenied;
    else if (err == ENOENT) code = ErrorCode::NotFound;
    else if (err == EEXIST) code = ErrorCode::Exists;
    else if (err == EIO) code = ErrorCode::Io;
    Error e{code, fmt::format("{}: {}", what, std::strerror(err))};
    e.sys_errno = err;
    return e;
}

std::unexpected<Error> fail_errno(std::string_view what) {
    const int err = errno;  // before anything below can change it
    return std::unexpected(errno_error(what, err));
}

}  // namespace vireo
