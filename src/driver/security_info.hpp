// The security model and labels as clients show them (virsh dominfo, the
// libvirt protocol's node_get_security_model / domain_get_security_label),
// read from the documents that carry them: the capabilities' <secmodel>
// and a running domain's live <seclabel model='dac'>.
#pragma once

#include <string>
#include <string_view>

namespace vireo::driver {

// <secmodel><model> of a capabilities document ("none" when absent).
std::string secmodel_of_capabilities(std::string_view caps_xml);
// The <label> of a domain XML's <seclabel model='dac'> ("" when none).
std::string dac_label_of_domain(std::string_view domain_xml);

}  // namespace vireo::driver
