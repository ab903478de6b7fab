#include "client/transport.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "client/paths.hpp"

namespace vireo::client {

Result<UniqueFd> connect_unix(const std::filesystem::path& path, int* err) {
    if (err) *err = 0;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string& p = path.native();
    if (p.size() >= sizeof(addr.sun_path)) {
        if (err) *err = ENAMETOOLONG;
        return fail(ErrorCode::InvalidArg, "socket path '{}' is too long for a unix socket (max {} bytes)", p,
                    sizeof(addr.sun_path) - 1);
    }
    std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fail_errno("socket");
    int rc;
    do {
        rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        int e = errno;
        if (err) *err = e;
        Error base = errno_error(fmt::format("cannot reach vireod at {}", p), e);
        // Keep PermissionDenied distinguishable (not in the vireo group, ...).
        if (base.code != ErrorCode::PermissionDenied) base.code = ErrorCode::Connection;
        return std::unexpected(base);
    }
    return fd;
}

Result<UniqueFd> UnixTransport::open() { return connect_unix(socket_); }

std::string UnixTransport::describe() const { return fmt::format("vireod at {}", socket_.native()); }

Result<std::shared_ptr<Transport>> make_transport(const ConnectionUri& uri, bool read_only) {
    if (uri.transport == "ssh" || uri.transport == "tls")
        return fail(ErrorCode::Unsupported, "the {} transport of '{}' is not supported yet", uri.transport, uri.text);
    if (auto socket = uri.param("socket")) return std::make_shared<UnixTransport>(*socket);
    auto paths = default_paths(uri.is_system() ? DaemonMode::System : DaemonMode::Session);
    if (read_only && uri.is_system()) return std::make_shared<UnixTransport>(paths.ro_socket);
    return std::make_shared<UnixTransport>(paths.socket);
}

}  // namespace vireo::client
