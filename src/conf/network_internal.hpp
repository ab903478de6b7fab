// Internal helpers shared by the network and interface XML files.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <pugixml.hpp>

#include "conf/network.hpp"
#include "conf/xml_reader.hpp"
#include "util/assign.hpp"

namespace vireo::conf::netxml {

using xml::XmlElement;

using xml::Document;
using xml::open_document;

// A semantic problem with the path of the offending node
// ("/network/ip[2]/dhcp/range/@end"); `located` adds the line from the document.
struct Problem {
    ErrorCode code = ErrorCode::XmlError;
    std::string path;
    std::string message;
};
Error located(const Problem& p, const Document* d);

// "name" or "name[i+1]" when there are several (the path convention of XmlElement).
std::string indexed(std::string_view name, std::size_t i, std::size_t count);

// Optional single child holding only text (<name>web</name>).
Result<std::optional<std::string>> text_child(XmlElement& parent, std::string_view name);
// Attribute that must be an IP address (of `family` when given: "ipv4"/"ipv6").
Result<std::optional<IpAddr>> attr_ip(XmlElement& e, std::string_view name, std::string_view family = {});
// Attribute that must be an interface name (at most 15 bytes, no '/' or space).
Result<std::string> attr_ifname(XmlElement& e, std::string_view name);

// Whether `name` can be a Linux interface name.
bool valid_ifname(std::string_view name);
// libvirt's dnsName: [a-zA-Z0-9.-]+
bool valid_dns_name(std::string_view name);

std::optional<Problem> find_network_problem(const NetworkDef& def);

}  // namespace vireo::conf::netxml
