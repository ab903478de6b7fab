#include "conf/xml_writer.hpp"

namespace vireo::conf::xml {

std::string escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '\'': out += "&apos;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

Node& Node::attr(std::string_view key, std::string_view value) {
    if (!value.empty()) attrs.emplace_back(std::string(key), std::string(value));
    return *this;
}

Node& Node::set_text(std::string_view t) {
    text = std::string(t);
    return *this;
}

Node& Node::add(std::string_view child_name) {
    children.emplace_back(std::string(child_name));
    return children.back();
}

void Node::add_if_nonempty(Node child) {
    if (!child.empty()) children.push_back(std::move(child));
}

void Node::add_text(std::string_view child_name, std::string_view t) {
    if (!t.empty()) add(child_name).set_text(t);
}

std::string Node::str(int indent) const {
    const std::string pad(static_cast<std::size_t>(indent), ' ');
    std::string out = pad + "<" + name;
    for (const auto& [k, v] : attrs) out += " " + k + "='" + escape(v) + "'";
    if (children.empty() && text.empty() && raw.empty())
        return keep_open ? out + ">\n" + pad + "</" + name + ">\n" : out + "/>\n";
    out += ">";
    if (!text.empty() && children.empty() && raw.empty()) return out + escape(text) + "</" + name + ">\n";
    out += "\n";
    if (!raw.empty()) out += raw;
    for (const auto& c : children) out += c.str(indent + 2);
    return out + pad + "</" + name + ">\n";
}

}  // namespace vireo::conf::xml
