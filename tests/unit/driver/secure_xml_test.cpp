// dumpxml hides graphics passwords unless asked for the security
// information (virsh dumpxml --security-info), inactive and live alike.
#include <gtest/gtest.h>

#include "driver/registry.hpp"

namespace vireo::driver {
namespace {

constexpr const char* kXml = R"(<domain type='qemu'>
  <name>pw</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <graphics type='vnc' port='5901' autoport='no' passwd='secret1'/>
    <graphics type='spice' autoport='yes' passwd='secret2'/>
  </devices>
</domain>)";

TEST(SecureXml, PasswordsOnlyWithSecurityInfo) {
    auto def = make_definition(kXml);
    ASSERT_TRUE(def) << def.error().message;
    const std::string hidden = domain_xml_of(*def, false);
    EXPECT_EQ(hidden.find("passwd"), std::string::npos) << hidden;
    EXPECT_NE(hidden.find("<graphics type='vnc' port='5901'"), std::string::npos) << hidden;
    const std::string shown = domain_xml_of(*def, true);
    EXPECT_NE(shown.find("passwd='secret1'"), std::string::npos) << shown;
    EXPECT_NE(shown.find("passwd='secret2'"), std::string::npos) << shown;
    // Only the passwords differ.
    std::string stripped = shown;
    for (const char* attr : {" passwd='secret1'", " passwd='secret2'"}) stripped.erase(stripped.find(attr), std::string(attr).size());
    EXPECT_EQ(stripped, hidden);

    auto live = make_live_definition(*def, 7);
    const std::string live_hidden = domain_xml_of(live, false);
    EXPECT_NE(live_hidden.find("<domain type='qemu' id='7'>"), std::string::npos) << live_hidden;
    EXPECT_EQ(live_hidden.find("passwd"), std::string::npos);
}

TEST(SecureXml, WithoutPasswordsTheStoredXmlIsReturned) {
    auto def = make_definition(R"(<domain type='qemu'><name>n</name><memory>131072</memory>
      <os><type arch='x86_64' machine='pc'>hvm</type></os></domain>)");
    ASSERT_TRUE(def) << def.error().message;
    EXPECT_EQ(domain_xml_of(*def, false), def->xml.str());
}

}  // namespace
}  // namespace vireo::driver
