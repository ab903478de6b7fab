// Transports: how a client reaches vireod. Each produces a connected stream
// socket over which the client speaks HTTP/1.1 (and WebSocket for the console
// and event streams). The seam is "give me a connected stream socket":
//   unix  connect(2) to the daemon's socket (qemu://, qemu+unix://)
//   ssh   (later) socketpair(2), spawn `ssh [-p port] [user@]host vireo-bridge
//         <socket>` with one end as its stdin/stdout, hand back the other end;
//         the bridge splices stdio to the remote daemon's unix socket
//   tls   (later) TCP + OpenSSL; either a TLS stream type added beside the
//         socket, or a local pump thread terminating TLS onto a socketpair
// so the HTTP and WebSocket code above never knows which one it runs over.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "client/uri.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace vireo::client {

class Transport {
public:
    virtual ~Transport() = default;
    // A new connected stream socket to the daemon (one per HTTP connection).
    virtual Result<UniqueFd> open() = 0;
    // For messages: "vireod at /run/vireo/vireo-sock".
    [[nodiscard]] virtual std::string describe() const = 0;
};

class UnixTransport final : public Transport {
public:
    explicit UnixTransport(std::filesystem::path socket) : socket_(std::move(socket)) {}
    Result<UniqueFd> open() override;
    [[nodiscard]] std::string describe() const override;
    [[nodiscard]] const std::filesystem::path& socket() const { return socket_; }

private:
    std::filesystem::path socket_;
};

// connect(2) to a unix stream socket; errno of the failure in *err (0 on success).
Result<UniqueFd> connect_unix(const std::filesystem::path& path, int* err = nullptr);

// The transport for a parsed qemu URI (socket chosen from the mode, the
// ?socket= parameter and read-only-ness). Unsupported for ssh/tls for now.
Result<std::shared_ptr<Transport>> make_transport(const ConnectionUri& uri, bool read_only);

}  // namespace vireo::client
