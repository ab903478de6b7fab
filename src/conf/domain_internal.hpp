// Internal helpers shared by the domain parse/validate/defaults files.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "conf/domain.hpp"

namespace vireo::conf {

// A semantic problem found by validation: the node path ("/domain/devices/
// disk[2]/target/@dev") lets parse_domain_xml add the line number.
struct ValidationProblem {
    ErrorCode code;
    std::string path;
    std::string message;
};

std::optional<ValidationProblem> find_validation_problem(const DomainDef& def);

// Decimal TCP port text -> number (nullopt if not a number).
std::optional<unsigned> xml_port(std::string_view text);

}  // namespace vireo::conf
