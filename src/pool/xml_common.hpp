// Pieces shared by the pool and volume XML code: <permissions>, scaled sizes
// (<capacity unit='G'>10</capacity>), and the document/root boilerplate.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <pugixml.hpp>

#include "conf/xml_reader.hpp"
#include "conf/xml_writer.hpp"
#include "pool/pool_xml.hpp"
#include "util/error.hpp"
#include "util/assign.hpp"

namespace vireo::pool::xmlc {

using conf::xml::XmlElement;

using conf::xml::Document;
using conf::xml::open_document;

// <capacity unit='G'>10</capacity> in bytes (libvirt's scaledInteger; bytes default).
Result<std::uint64_t> parse_scaled(XmlElement& e);
// Optional child holding a scaled integer.
Result<std::optional<std::uint64_t>> parse_scaled_child(XmlElement& parent, std::string_view name);
// Optional child's trimmed text.
Result<std::string> parse_text_child(XmlElement& parent, std::string_view name);

Result<Permissions> parse_permissions(XmlElement& e);
// <permissions> node (nullopt when there is nothing to say).
std::optional<conf::xml::Node> format_permissions(const Permissions& p);

// <name unit='bytes'>value</name>
void add_bytes(conf::xml::Node& parent, std::string_view name, std::uint64_t value);

}  // namespace vireo::pool::xmlc
