#include "client/uri.hpp"

#include <charconv>

#include "wire/wire.hpp"

namespace vireo::client {

std::optional<std::string> ConnectionUri::param(std::string_view key) const {
    auto it = params.find(key);
    if (it == params.end()) return std::nullopt;
    return it->second;
}

Result<ConnectionUri> parse_uri(std::string_view text) {
    auto bad = [&](std::string_view why) {
        return fail(ErrorCode::InvalidArg, "invalid connection URI '{}': {}", text, why);
    };
    ConnectionUri uri;
    uri.text = std::string(text);
    auto sep = text.find("://");
    if (sep == std::string_view::npos || sep == 0) return bad("expected driver://[host]/path, e.g. qemu:///system");
    auto scheme = text.substr(0, sep);
    auto plus = scheme.find('+');
    uri.driver = std::string(scheme.substr(0, plus));
    if (plus != std::string_view::npos) uri.transport = std::string(scheme.substr(plus + 1));
    auto rest = text.substr(sep + 3);

    auto qmark = rest.find('?');
    if (qmark != std::string_view::npos) {
        auto query = wire::parse_query(rest.substr(qmark + 1));
        if (!query) return bad("malformed query string");
        uri.params = std::move(*query);
        rest = rest.substr(0, qmark);
    }
    auto slash = rest.find('/');
    auto authority = rest.substr(0, slash);
    uri.path = slash == std::string_view::npos ? std::string("/") : std::string(rest.substr(slash));

    if (auto at = authority.find('@'); at != std::string_view::npos) {
        uri.user = std::string(authority.substr(0, at));
        authority = authority.substr(at + 1);
    }
    if (auto colon = authority.rfind(':'); colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
        auto port_text = authority.substr(colon + 1);
        unsigned port = 0;
        auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (ec != std::errc{} || ptr != port_text.data() + port_text.size() || port == 0 || port > 65535)
            return bad("invalid port");
        uri.port = port;
        authority = authority.substr(0, colon);
    }
    uri.host = std::string(authority);

    if (uri.driver != "qemu" && uri.driver != "test")
        return bad(fmt::format("unknown driver '{}' (known: qemu, test)", uri.driver));
    if (uri.transport != "" && uri.transport != "unix" && uri.transport != "ssh" && uri.transport != "tls")
        return bad(fmt::format("unknown transport '{}' (known: unix, ssh, tls)", uri.transport));
    if (uri.driver == "qemu" && !uri.is_session() && !uri.is_system())
        return bad("the path must be /session or /system");
    if (uri.driver == "test" && uri.path != "/default") return bad("the test driver only offers test:///default");
    if (uri.transport == "unix" && !uri.host.empty()) return bad("a unix socket URI has no host");
    if ((uri.transport == "ssh" || uri.transport == "tls") && uri.host.empty()) return bad("a remote URI needs a host");
    if (uri.transport.empty() && !uri.host.empty())
        return bad("a host needs a transport (qemu+ssh://host/system or qemu+tls://host/system)");
    return uri;
}

}  // namespace vireo::client
