// The devices of a virt-install style guest beyond disks and NICs: SMBIOS
// <sysinfo>, the qemu-vdagent and spicevmc channels, graphics ports kept
// in live documents.
#include <gtest/gtest.h>

#include "conf/domain.hpp"

using namespace vireo;
using namespace vireo::conf;

namespace {

std::string domain_with(std::string_view before_os, std::string_view devices, std::string_view os_extra = "") {
    return fmt::format(R"(<domain type='qemu'>
  <name>d</name>
  <uuid>5934a5a8-2d1c-493a-8141-e2eb3a48e7a9</uuid>
  <memory unit='MiB'>256</memory>
  {}
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    {}
  </os>
  <devices>
    {}
  </devices>
</domain>
)",
                       before_os, os_extra, devices);
}

constexpr std::string_view kSysinfo = R"(<sysinfo type='smbios'>
    <bios><entry name='vendor'>Vireo</entry><entry name='date'>01/01/2026</entry></bios>
    <system><entry name='manufacturer'>Maker</entry><entry name='uuid'>5934a5a8-2d1c-493a-8141-e2eb3a48e7a9</entry></system>
    <baseBoard><entry name='product'>B1</entry></baseBoard>
    <baseBoard><entry name='product'>B2</entry></baseBoard>
    <chassis><entry name='asset'>A</entry></chassis>
    <oemStrings><entry>one</entry><entry>two</entry></oemStrings>
  </sysinfo>)";

}  // namespace

TEST(ConfDisplayDevices, SysinfoRoundTripsInLibvirtsOrder) {
    auto def = parse_domain_xml(domain_with(kSysinfo, "", "<smbios mode='sysinfo'/>"));
    ASSERT_TRUE(def) << def.error().message;
    EXPECT_EQ(def->os.smbios_mode, "sysinfo");
    ASSERT_EQ(def->sysinfo.base_boards.size(), 2u);
    EXPECT_EQ(def->sysinfo.oem_strings, (std::vector<std::string>{"one", "two"}));
    const std::string out = format_domain_xml(*def);
    const auto si = out.find("<sysinfo type='smbios'>"), os = out.find("<os>");
    ASSERT_NE(si, std::string::npos) << out;
    EXPECT_LT(si, os) << "sysinfo comes before <os>, as libvirt writes it";
    EXPECT_NE(out.find("<entry name='vendor'>Vireo</entry>"), std::string::npos) << out;
    EXPECT_LT(out.find("<bios>"), out.find("<system>"));
    EXPECT_LT(out.find("<chassis>"), out.find("<oemStrings>"));
    auto again = parse_domain_xml(out);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(format_domain_xml(*again), out);
}

TEST(ConfDisplayDevices, SysinfoUuidMustBeTheDomains) {
    std::string doc = domain_with(kSysinfo, "");
    const std::string other = "<entry name='uuid'>00000000-2d1c-493a-8141-e2eb3a48e7a9</entry>";
    doc.replace(doc.find("<entry name='uuid'>"), other.size(), other);
    auto def = parse_domain_xml(doc);
    ASSERT_FALSE(def);
    EXPECT_NE(def.error().message.find("UUID mismatch between <uuid> and <sysinfo>"), std::string::npos) << def.error().message;
}

TEST(ConfDisplayDevices, WhatSysinfoDoesNotModelIsRefusedByName) {
    auto fwcfg = parse_domain_xml(domain_with("<sysinfo type='fwcfg'><entry name='opt/x'>y</entry></sysinfo>", ""));
    ASSERT_FALSE(fwcfg);
    EXPECT_EQ(fwcfg.error().code, ErrorCode::Unsupported);
    EXPECT_NE(fwcfg.error().message.find("fwcfg"), std::string::npos) << fwcfg.error().message;
    auto processor = parse_domain_xml(
        domain_with("<sysinfo type='smbios'><processor><entry name='family'>x</entry></processor></sysinfo>", ""));
    ASSERT_FALSE(processor);
    EXPECT_NE(processor.error().message.find("<processor>"), std::string::npos) << processor.error().message;
    auto entry = parse_domain_xml(domain_with("<sysinfo type='smbios'><bios><entry name='colour'>x</entry></bios></sysinfo>", ""));
    ASSERT_FALSE(entry);
    EXPECT_NE(entry.error().message.find("colour"), std::string::npos) << entry.error().message;
}

TEST(ConfDisplayDevices, QemuVdagentChannelRoundTrips) {
    auto def = parse_domain_xml(domain_with("", R"(<channel type='qemu-vdagent'>
      <source><clipboard copypaste='yes'/><mouse mode='client'/></source>
      <target type='virtio' name='com.redhat.spice.0'/>
    </channel>)"));
    ASSERT_TRUE(def) << def.error().message;
    ASSERT_EQ(def->devices.channels.size(), 1u);
    EXPECT_EQ(def->devices.channels[0].vdagent_copypaste, "yes");
    EXPECT_EQ(def->devices.channels[0].vdagent_mouse, "client");
    ASSERT_TRUE(assign_addresses_and_aliases(*def));
    const std::string out = format_domain_xml(*def);
    EXPECT_NE(out.find("<channel type='qemu-vdagent'>\n      <source>\n        <clipboard copypaste='yes'/>\n        <mouse mode='client'/>\n      </source>\n      <target type='virtio' name='com.redhat.spice.0'/>"),
              std::string::npos)
        << out;
    auto again = parse_domain_xml(out);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(format_domain_xml(*again), out);
}

TEST(ConfDisplayDevices, SpiceAgentChannelsGetTheirName) {
    auto def = parse_domain_xml(domain_with("", "<channel type='spicevmc'><target type='virtio'/></channel><graphics type='spice' autoport='yes'/>"));
    ASSERT_TRUE(def) << def.error().message;
    ASSERT_TRUE(assign_addresses_and_aliases(*def));
    EXPECT_EQ(def->devices.channels[0].target_name, "com.redhat.spice.0");
    EXPECT_EQ(def->devices.channels[0].info.address.type, "virtio-serial");
}

TEST(ConfDisplayDevices, ChosenGraphicsPortsStayInTheLiveDocumentOnly) {
    auto def = parse_domain_xml(domain_with("", "<graphics type='vnc' port='-1' autoport='yes'/><graphics type='spice' autoport='yes'/>"));
    ASSERT_TRUE(def) << def.error().message;
    ASSERT_TRUE(assign_addresses_and_aliases(*def));
    def->devices.graphics[0].port = "5900";  // what the driver chose at start
    def->devices.graphics[1].port = "5901";
    const std::string live = format_domain_xml(*def, {.live = true, .id = 3});
    EXPECT_NE(live.find("<graphics type='vnc' port='5900' autoport='yes'"), std::string::npos) << live;
    EXPECT_NE(live.find("<graphics type='spice' port='5901' autoport='yes'"), std::string::npos) << live;
    // A restarted daemon reads the live document back: the ports stay.
    auto reread = parse_domain_xml(live, {.no_validate = true, .live = true});
    ASSERT_TRUE(reread) << reread.error().message;
    ASSERT_TRUE(assign_addresses_and_aliases(*reread));
    EXPECT_EQ(reread->devices.graphics[0].port, "5900");
    EXPECT_EQ(reread->devices.graphics[1].port, "5901");
    const std::string inactive = format_domain_xml(*reread);
    EXPECT_NE(inactive.find("<graphics type='vnc' port='-1' autoport='yes'"), std::string::npos) << inactive;
    EXPECT_NE(inactive.find("<graphics type='spice' autoport='yes'"), std::string::npos) << inactive;
}
