#include "driver/security_info.hpp"

#include <fmt/format.h>

namespace vireo::driver {

namespace {

// The text of the first <tag>...</tag> in `xml`.
std::string element_text(std::string_view xml, std::string_view tag) {
    const std::string open = fmt::format("<{}>", tag), close = fmt::format("</{}>", tag);
    const auto b = xml.find(open);
    if (b == std::string_view::npos) return "";
    const auto e = xml.find(close, b);
    if (e == std::string_view::npos) return "";
    return std::string(xml.substr(b + open.size(), e - b - open.size()));
}

}  // namespace

std::string secmodel_of_capabilities(std::string_view caps_xml) {
    const auto at = caps_xml.find("<secmodel>");
    if (at == std::string_view::npos) return "none";
    const auto end = caps_xml.find("</secmodel>", at);
    std::string model = element_text(caps_xml.substr(at, end == std::string_view::npos ? end : end - at), "model");
    return model.empty() ? "none" : model;
}

std::string dac_label_of_domain(std::string_view domain_xml) {
    for (auto at = domain_xml.find("<seclabel"); at != std::string_view::npos; at = domain_xml.find("<seclabel", at + 1)) {
        const auto end = domain_xml.find("</seclabel>", at);
        const std::string_view sl = domain_xml.substr(at, end == std::string_view::npos ? end : end - at);
        const std::string_view tag = sl.substr(0, sl.find('>'));
        if (tag.find("model='dac'") == std::string_view::npos && tag.find("model=\"dac\"") == std::string_view::npos)
            continue;
        return element_text(sl, "label");
    }
    return "";
}

}  // namespace vireo::driver
