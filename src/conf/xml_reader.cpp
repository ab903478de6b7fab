#include "conf/xml_reader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include <fmt/format.h>

namespace vireo::conf::xml {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

std::string join(std::initializer_list<std::string_view> items) {
    std::string out;
    for (auto it : items) {
        if (!out.empty()) out += ", ";
        out += it;
    }
    return out;
}

}  // namespace

std::optional<std::uint64_t> parse_uint(std::string_view text) {
    text = trim(text);
    int base = 10;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        text.remove_prefix(2);
    }
    if (text.empty()) return std::nullopt;
    std::uint64_t value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
    if (ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
    return value;
}

SourceText::SourceText(std::string_view text) {
    for (std::size_t i = 0; i < text.size(); ++i)
        if (text[i] == '\n') newlines_.push_back(i);
}

unsigned SourceText::line_of(std::ptrdiff_t offset) const {
    if (offset < 0) return 0;
    auto it = std::lower_bound(newlines_.begin(), newlines_.end(), static_cast<std::size_t>(offset));
    return static_cast<unsigned>(it - newlines_.begin()) + 1;
}

XmlElement::XmlElement(const SourceText& src, pugi::xml_node node, std::string path)
    : src_(&src), node_(node), path_(std::move(path)) {}

unsigned XmlElement::line() const { return src_->line_of(node_.offset_debug()); }

std::optional<std::string> XmlElement::attr(std::string_view name) {
    used_attrs_.emplace(name);
    auto a = node_.attribute(std::string(name).c_str());
    if (!a) return std::nullopt;
    return std::string(a.value());
}

std::string XmlElement::attr_or_empty(std::string_view name) { return attr(name).value_or(std::string()); }

Result<std::string> XmlElement::attr_enum(std::string_view name, std::initializer_list<std::string_view> allowed,
                                          std::string_view what, std::initializer_list<std::string_view> unimplemented) {
    auto v = attr(name);
    if (!v) return std::string();
    if (std::find(allowed.begin(), allowed.end(), *v) != allowed.end()) return *v;
    const std::string at = fmt::format("@{}", name);
    if (std::find(unimplemented.begin(), unimplemented.end(), *v) != unimplemented.end())
        return std::unexpected(unsupported(at, fmt::format("{} '{}' is not supported by vireo (supported: {})", what, *v, join(allowed))));
    return std::unexpected(xml_error(at, fmt::format("unsupported {} '{}' (expected one of {})", what, *v, join(allowed))));
}

Result<std::optional<unsigned>> XmlElement::attr_uint(std::string_view name) {
    auto v = attr(name);
    if (!v) return std::optional<unsigned>();
    auto n = parse_uint(*v);
    if (!n || *n > std::numeric_limits<unsigned>::max())
        return std::unexpected(xml_error(fmt::format("@{}", name), fmt::format("invalid value '{}': expected a non-negative integer", *v)));
    return std::optional<unsigned>(static_cast<unsigned>(*n));
}

Result<std::string> XmlElement::attr_yesno(std::string_view name) {
    return attr_enum(name, {"yes", "no"}, "value");
}

Result<std::string> XmlElement::attr_onoff(std::string_view name) {
    return attr_enum(name, {"on", "off"}, "value");
}

XmlElement XmlElement::make_child(pugi::xml_node child) const {
    unsigned index = 0, total = 0;
    for (auto sib : node_.children(child.name())) {
        ++total;
        if (sib == child) index = total;
    }
    std::string p = fmt::format("{}/{}", path_, child.name());
    if (total > 1) p += fmt::format("[{}]", index);
    return XmlElement(*src_, child, std::move(p));
}

std::vector<XmlElement> XmlElement::children(std::string_view name) {
    used_children_.emplace(name);
    std::vector<XmlElement> out;
    const std::string key(name);  // pugi's range keeps the pointer: must outlive the loop
    for (auto c : node_.children(key.c_str()))
        if (c.type() == pugi::node_element) out.push_back(make_child(c));
    return out;
}

Result<std::optional<XmlElement>> XmlElement::child(std::string_view name) {
    auto all = children(name);
    if (all.empty()) return std::optional<XmlElement>();
    if (all.size() > 1)
        return std::unexpected(all[1].xml_error("", fmt::format("element '{}' may appear only once in <{}>", name, node_.name())));
    return std::optional<XmlElement>(std::move(all[0]));
}

std::vector<XmlElement> XmlElement::all_children() {
    std::vector<XmlElement> out;
    for (auto c : node_.children())
        if (c.type() == pugi::node_element) {
            used_children_.emplace(c.name());
            out.push_back(make_child(c));
        }
    return out;
}

std::string XmlElement::text() {
    text_used_ = true;
    std::string out;
    for (auto c : node_.children())
        if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) out += c.value();
    return std::string(trim(out));
}

bool XmlElement::has_element_children() const {
    for (auto c : node_.children())
        if (c.type() == pugi::node_element) return true;
    return false;
}

Error XmlElement::xml_error(std::string_view attribute, std::string_view message) const {
    std::string where = path_;
    if (!attribute.empty()) where += fmt::format("/{}", attribute);
    return Error{ErrorCode::XmlError, fmt::format("XML error: line {}: {}: {}", line(), where, message)};
}

Error XmlElement::unsupported(std::string_view attribute, std::string_view message) const {
    std::string where = path_;
    if (!attribute.empty()) where += fmt::format("/{}", attribute);
    return Error{ErrorCode::Unsupported, fmt::format("unsupported configuration: line {}: {}: {}", line(), where, message)};
}

Status XmlElement::finish() const {
    if (all_used_) return {};
    for (auto a : node_.attributes()) {
        if (!used_attrs_.contains(std::string_view(a.name())))
            return std::unexpected(unsupported(fmt::format("@{}", a.name()),
                                               fmt::format("attribute '{}' of <{}> is not supported by vireo", a.name(), node_.name())));
    }
    for (auto c : node_.children()) {
        if (c.type() == pugi::node_element && !used_children_.contains(std::string_view(c.name()))) {
            auto child_el = make_child(c);
            return std::unexpected(child_el.unsupported("", fmt::format("element <{}> in <{}> is not supported by vireo", c.name(), node_.name())));
        }
        if (!text_used_ && (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) && !trim(c.value()).empty())
            return std::unexpected(xml_error("", fmt::format("unexpected text '{}' in <{}>", trim(c.value()).substr(0, 40), node_.name())));
    }
    return {};
}

void XmlElement::consume_all() { all_used_ = true; }

Result<XmlElement> open_document(Document& d, std::string_view text, std::string_view root_name) {
    auto res = d.doc.load_buffer(text.data(), text.size(), pugi::parse_default, pugi::encoding_utf8);
    const SourceText& src = d.src.emplace(text);
    if (!res)
        return fail(ErrorCode::XmlError, "XML error: line {}: malformed document: {}", src.line_of(res.offset),
                    res.description());
    pugi::xml_node root = d.doc.document_element();
    if (!root && root_name.empty()) return fail(ErrorCode::XmlError, "XML error: line 1: empty document");
    if (!root_name.empty() && (!root || std::string_view(root.name()) != root_name))
        return fail(ErrorCode::XmlError, "XML error: line {}: expected root element <{}>, found <{}>",
                    root ? src.line_of(root.offset_debug()) : 1, root_name, root ? root.name() : "");
    return XmlElement(src, root, fmt::format("/{}", root.name()));
}

}  // namespace vireo::conf::xml
