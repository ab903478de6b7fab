// Connection URIs in libvirt's scheme:
//   driver[+transport]://[user@][host[:port]]/path[?key=value&...]
// e.g. qemu:///session, qemu+unix:///system?socket=/run/x.sock,
// qemu+ssh://root@host/system, test:///default.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "util/error.hpp"

namespace vireo::client {

struct ConnectionUri {
    std::string text;       // as given
    std::string driver;     // "qemu", "test"
    std::string transport;  // "" (local default), "unix", "ssh", "tls"
    std::string user;
    std::string host;
    std::optional<unsigned> port;
    std::string path;       // "/session", "/system", "/default"
    std::map<std::string, std::string, std::less<>> params;

    [[nodiscard]] bool is_session() const { return path == "/session"; }
    [[nodiscard]] bool is_system() const { return path == "/system"; }
    [[nodiscard]] std::optional<std::string> param(std::string_view key) const;
};

// Parse a URI; InvalidArg errors quote it and say what is wrong.
Result<ConnectionUri> parse_uri(std::string_view text);

}  // namespace vireo::client
