// Document handling and small attribute readers shared by the network and
// interface XML parsers (see network_internal.hpp).
#include <fmt/format.h>

#include "conf/network_internal.hpp"

namespace vireo::conf::netxml {

Error located(const Problem& p, const Document* d) {
    const char* prefix = p.code == ErrorCode::Unsupported ? "unsupported configuration" : "XML error";
    pugi::xml_node node;
    if (d) {
        // Walk up the path until a node exists (an attribute may be absent).
        std::string xpath = p.path;
        while (!xpath.empty() && !node) {
            try {
                auto found = d->doc.select_node(xpath.c_str());
                node = found.attribute() ? found.parent() : found.node();
            } catch (const std::exception&) {
                node = {};
            }
            if (node) break;
            auto slash = xpath.rfind('/');
            if (slash == std::string::npos || slash == 0) break;
            xpath.resize(slash);
        }
    }
    if (!node) return Error{p.code, fmt::format("{}: {}: {}", prefix, p.path, p.message)};
    return Error{p.code, fmt::format("{}: line {}: {}: {}", prefix, d->src->line_of(node.offset_debug()), p.path, p.message)};
}

std::string indexed(std::string_view name, std::size_t i, std::size_t count) {
    return count > 1 ? fmt::format("{}[{}]", name, i + 1) : std::string(name);
}

Result<std::optional<std::string>> text_child(XmlElement& parent, std::string_view name) {
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, parent.child(name));
    if (!c) return std::optional<std::string>();
    std::string t = c->text();
    VIREO_TRY(c->finish());
    return std::optional<std::string>(std::move(t));
}

Result<std::optional<IpAddr>> attr_ip(XmlElement& e, std::string_view name, std::string_view family) {
    auto v = e.attr(name);
    if (!v) return std::optional<IpAddr>();
    auto a = IpAddr::parse(*v);
    const std::string at = fmt::format("@{}", name);
    if (!a) return std::unexpected(e.xml_error(at, fmt::format("invalid IP address '{}'", *v)));
    if (family == "ipv4" && a->v6)
        return std::unexpected(e.xml_error(at, fmt::format("'{}' is not an IPv4 address", *v)));
    if (family == "ipv6" && !a->v6)
        return std::unexpected(e.xml_error(at, fmt::format("'{}' is not an IPv6 address", *v)));
    return a;
}

bool valid_ifname(std::string_view name) {
    if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
    for (char c : name)
        if (c == '/' || c == ':' || static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
    return true;
}

Result<std::string> attr_ifname(XmlElement& e, std::string_view name) {
    auto v = e.attr(name);
    if (!v) return std::string();
    if (!valid_ifname(*v))
        return std::unexpected(e.xml_error(fmt::format("@{}", name),
                                           fmt::format("invalid interface name '{}': 1 to 15 characters, no '/', ':' or whitespace", *v)));
    return *v;
}

bool valid_dns_name(std::string_view name) {
    if (name.empty()) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) return false;
    return true;
}

}  // namespace vireo::conf::netxml
