#include "pool/xml_common.hpp"

#include <fmt/format.h>

#include "conf/units.hpp"

namespace vireo::pool::xmlc {

Result<std::uint64_t> parse_scaled(XmlElement& e) {
    const std::string unit = e.attr_or_empty("unit");
    const std::string text = e.text();
    auto value = conf::xml::parse_uint(text);
    if (!value)
        return std::unexpected(e.xml_error("", fmt::format("invalid size '{}': expected a non-negative integer", text)));
    auto bytes = conf::scale_to_bytes(*value, unit, "bytes");
    if (!bytes) return std::unexpected(e.xml_error(unit.empty() ? "" : "@unit", bytes.error().message));
    VIREO_TRY(e.finish());
    return *bytes;
}

Result<std::optional<std::uint64_t>> parse_scaled_child(XmlElement& parent, std::string_view name) {
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, parent.child(name));
    if (!c) return std::optional<std::uint64_t>();
    std::uint64_t v = 0;
    VIREO_ASSIGN(v, parse_scaled(*c));
    return std::optional<std::uint64_t>(v);
}

Result<std::string> parse_text_child(XmlElement& parent, std::string_view name) {
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, parent.child(name));
    if (!c) return std::string();
    std::string t = c->text();
    VIREO_TRY(c->finish());
    return t;
}

namespace {

// <owner>/<group>: a number, -1 meaning "leave as it is".
Result<std::optional<long>> parse_id_child(XmlElement& parent, std::string_view name) {
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, parent.child(name));
    if (!c) return std::optional<long>();
    std::string t = c->text();
    VIREO_TRY(c->finish());
    if (t == "-1") return std::optional<long>(-1);
    auto v = conf::xml::parse_uint(t);
    if (!v || *v > 0xffffffffULL)
        return std::unexpected(c->xml_error("", fmt::format("invalid {} '{}': expected a numeric id or -1", name, t)));
    return std::optional<long>(static_cast<long>(*v));
}

}  // namespace

Result<Permissions> parse_permissions(XmlElement& e) {
    Permissions p;
    std::optional<XmlElement> mode;
    VIREO_ASSIGN(mode, e.child("mode"));
    if (mode) {
        std::string t = mode->text();
        VIREO_TRY(mode->finish());
        unsigned v = 0;
        bool ok = !t.empty() && t.size() <= 4;
        for (char ch : t) {
            if (ch < '0' || ch > '7') ok = false;
            else v = v * 8 + static_cast<unsigned>(ch - '0');
        }
        if (!ok) return std::unexpected(mode->xml_error("", fmt::format("invalid mode '{}': expected an octal mode like 0755", t)));
        p.mode = v;
    }
    VIREO_ASSIGN(p.owner, parse_id_child(e, "owner"));
    VIREO_ASSIGN(p.group, parse_id_child(e, "group"));
    VIREO_ASSIGN(p.label, parse_text_child(e, "label"));
    VIREO_TRY(e.finish());
    return p;
}

std::optional<conf::xml::Node> format_permissions(const Permissions& p) {
    conf::xml::Node n("permissions");
    if (p.mode) n.add_text("mode", fmt::format("{:04o}", *p.mode));
    if (p.owner) n.add_text("owner", std::to_string(*p.owner));
    if (p.group) n.add_text("group", std::to_string(*p.group));
    n.add_text("label", p.label);
    if (n.children.empty()) return std::nullopt;
    return n;
}

void add_bytes(conf::xml::Node& parent, std::string_view name, std::uint64_t value) {
    parent.add(name).attr("unit", "bytes").set_text(std::to_string(value));
}

}  // namespace vireo::pool::xmlc
