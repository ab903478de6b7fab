// Strict XML reading helpers shared by the conf parsers.
//
// An XmlElement wraps one element together with its path
// ("/domain/devices/disk[2]/target") and remembers which attributes and child
// elements the parser looked at. finish() then refuses anything left over as
// "unsupported configuration", so no input is ever silently dropped.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <pugixml.hpp>

#include "util/error.hpp"

namespace vireo::conf::xml {

// The source text, to turn node offsets into line numbers.
class SourceText {
public:
    explicit SourceText(std::string_view text);
    [[nodiscard]] unsigned line_of(std::ptrdiff_t offset) const;

private:
    std::vector<std::size_t> newlines_;
};

class XmlElement;

// A parsed document: pugixml's tree and its source text (for line numbers).
// Kept together, since every XmlElement of the document points into both.
struct Document {
    pugi::xml_document doc;
    std::optional<SourceText> src;
};

// Parses `text` into `d` and returns its root element, which must be
// <root_name> (any element when root_name is empty): "XML error: line N:
// malformed document: ..." or "... expected root element <x>, found <y>".
Result<XmlElement> open_document(Document& d, std::string_view text, std::string_view root_name);

class XmlElement {
public:
    XmlElement(const SourceText& src, pugi::xml_node node, std::string path);

    [[nodiscard]] pugi::xml_node node() const { return node_; }
    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] std::string_view name() const { return node_.name(); }
    [[nodiscard]] unsigned line() const;

    // Attribute value, or nullopt when absent. Marks the attribute as used.
    std::optional<std::string> attr(std::string_view name);
    // Attribute value or "" when absent.
    std::string attr_or_empty(std::string_view name);
    // Attribute that must be one of `allowed`. `unimplemented` are values
    // libvirt knows that vireo does not (-> Unsupported instead of XmlError).
    Result<std::string> attr_enum(std::string_view name, std::initializer_list<std::string_view> allowed,
                                  std::string_view what, std::initializer_list<std::string_view> unimplemented = {});
    // Unsigned attribute (decimal, or 0x-prefixed hex).
    Result<std::optional<unsigned>> attr_uint(std::string_view name);
    // yes/no or on/off attributes as given (validated).
    Result<std::string> attr_yesno(std::string_view name);
    Result<std::string> attr_onoff(std::string_view name);

    // Child elements named `name` (all of them are marked used).
    std::vector<XmlElement> children(std::string_view name);
    // The single child named `name`; an error if it appears more than once.
    Result<std::optional<XmlElement>> child(std::string_view name);
    // Every child element, in order (all marked used).
    std::vector<XmlElement> all_children();

    // Text content (trimmed of surrounding whitespace). Marks text as used.
    std::string text();
    [[nodiscard]] bool has_element_children() const;

    // Errors pointing at this element or one of its attributes ("@bus").
    [[nodiscard]] Error xml_error(std::string_view attribute, std::string_view message) const;
    [[nodiscard]] Error unsupported(std::string_view attribute, std::string_view message) const;

    // Refuse attributes/children/text nobody consumed.
    Status finish() const;

    // Mark everything under this element as consumed (for verbatim blobs).
    void consume_all();

private:
    XmlElement make_child(pugi::xml_node child) const;

    const SourceText* src_;
    pugi::xml_node node_;
    std::string path_;
    std::set<std::string, std::less<>> used_attrs_;
    std::set<std::string, std::less<>> used_children_;
    bool text_used_ = false;
    bool all_used_ = false;
};

// Parse an unsigned integer (decimal or 0x hex); nullopt if not a number.
std::optional<std::uint64_t> parse_uint(std::string_view text);

}  // namespace vireo::conf::xml
