// A small XML tree for writing libvirt-style documents: two-space indent,
// single-quoted attributes, empty elements self-closed (<target dev='vda'/>)
// unless marked keep_open.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vireo::conf::xml {

struct Node {
    std::string name;
    std::vector<std::pair<std::string, std::string>> attrs;
    std::string text;
    std::string raw;  // pre-formatted inner XML (metadata), written as is
    std::vector<Node> children;
    // Written as an open and a close tag even without content
    // (libvirt's <ip ...>\n  </ip>), never self-closed.
    bool keep_open = false;

    explicit Node(std::string n) : name(std::move(n)) {}
    // Add an attribute unless value is empty.
    Node& attr(std::string_view key, std::string_view value);
    Node& set_text(std::string_view t);
    // Append a child and return it.
    Node& add(std::string_view child_name);
    // Append a child only when it carries something (attrs, text, children).
    void add_if_nonempty(Node child);
    // Append a text child <name>text</name> unless text is empty.
    void add_text(std::string_view child_name, std::string_view t);
    [[nodiscard]] bool empty() const { return attrs.empty() && text.empty() && raw.empty() && children.empty(); }

    [[nodiscard]] std::string str(int indent = 0) const;
};

// XML-escape for attribute values and text.
std::string escape(std::string_view s);

}  // namespace vireo::conf::xml
