// Domain XML: parse / validate / format / address assignment.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <set>

#include "conf/domain.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::conf;
namespace fs = std::filesystem;

namespace {

std::string read_data(const fs::path& p) {
    auto text = files::read(p);
    EXPECT_TRUE(text) << p;
    return text ? *text : std::string();
}

std::vector<fs::path> data_files(const std::string& sub) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(test::source_dir() / "tests/data/conf" / sub))
        if (e.path().extension() == ".xml") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

const char* kMinimal = R"(<domain type='qemu'>
  <name>web</name>
  <memory unit='MiB'>512</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>/boot/vmlinuz</kernel>
    <initrd>/boot/initrd.img</initrd>
    <cmdline>console=ttyS0</cmdline>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/images/web.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'>
      <mac address='52:54:00:AB:CD:EF'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'/>
    <console type='pty'/>
  </devices>
</domain>
)";

}  // namespace

TEST(ConfDomain, ParsesTheMinimalModel) {
    auto def = parse_domain_xml(kMinimal);
    ASSERT_TRUE(def) << def.error().message;
    EXPECT_EQ(def->type, "qemu");
    EXPECT_EQ(def->name, "web");
    EXPECT_FALSE(def->uuid.is_null());  // generated
    EXPECT_EQ(def->memory_kib, 512u * 1024);
    EXPECT_EQ(def->vcpus, 2u);
    EXPECT_EQ(def->os.kernel, "/boot/vmlinuz");
    EXPECT_EQ(def->os.initrd, "/boot/initrd.img");
    EXPECT_EQ(def->os.cmdline, "console=ttyS0");
    ASSERT_EQ(def->devices.disks.size(), 1u);
    EXPECT_EQ(def->devices.disks[0].driver_type, "qcow2");
    EXPECT_EQ(def->devices.disks[0].source.file, "/images/web.qcow2");
    EXPECT_EQ(def->devices.disks[0].target_bus, "virtio");
    ASSERT_EQ(def->devices.interfaces.size(), 1u);
    EXPECT_EQ(def->devices.interfaces[0].mac, "52:54:00:ab:cd:ef");  // normalised
    EXPECT_EQ(def->devices.serials.size(), 1u);
    EXPECT_EQ(def->devices.consoles.size(), 1u);
}

TEST(ConfDomain, GeneratedUuidIsKeptAcrossFormat) {
    auto def = parse_domain_xml(kMinimal);
    ASSERT_TRUE(def);
    auto again = parse_domain_xml(format_domain_xml(*def));
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(again->uuid, def->uuid);
}

TEST(ConfDomain, ErrorNamesLinePathAndExpectedValues) {
    const std::string xml = R"(<domain type='qemu'>
  <name>x</name>
  <memory>65536</memory>
  <os>
    <type>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/a'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/b'/>
      <target dev='vdb' bus='foo'/>
    </disk>
  </devices>
</domain>)";
    auto def = parse_domain_xml(xml);
    ASSERT_FALSE(def);
    EXPECT_EQ(def.error().code, ErrorCode::XmlError);
    EXPECT_EQ(def.error().message,
              "XML error: line 14: /domain/devices/disk[2]/target/@bus: unsupported bus 'foo' (expected one of virtio, sata, scsi, ide, usb, fdc)");
}

// Every file in tests/data/conf/invalid starts with <!-- expect: MESSAGE -->;
// parsing must fail with a message that starts with MESSAGE.
TEST(ConfDomain, InvalidDocumentsAreRefusedWithTheExpectedMessage) {
    auto files = data_files("invalid");
    ASSERT_GT(files.size(), 20u);
    std::regex expect_re("<!-- expect: (.*) -->");
    for (const auto& f : files) {
        const std::string text = read_data(f);
        std::smatch m;
        ASSERT_TRUE(std::regex_search(text, m, expect_re)) << f << " has no expect comment";
        auto def = parse_domain_xml(text);
        ASSERT_FALSE(def) << f << " was accepted";
        EXPECT_EQ(def.error().message.substr(0, m[1].length()), m[1].str()) << f << "\n  got: " << def.error().message;
        if (m[1].str().starts_with("unsupported configuration")) EXPECT_EQ(def.error().code, ErrorCode::Unsupported) << f;
        else EXPECT_EQ(def.error().code, ErrorCode::XmlError) << f;
    }
}

TEST(ConfDomain, ValidDocumentsRoundTripToAFixedPoint) {
    auto files = data_files("valid");
    ASSERT_GE(files.size(), 5u);
    for (const auto& f : files) {
        auto def = parse_domain_xml(read_data(f));
        ASSERT_TRUE(def) << f << ": " << def.error().message;
        const std::string once = format_domain_xml(*def);
        auto again = parse_domain_xml(once);
        ASSERT_TRUE(again) << f << ": formatted output does not parse: " << again.error().message << "\n" << once;
        EXPECT_EQ(format_domain_xml(*again), once) << f;
        // the same after libvirt-style defaults: defining the defined
        // document again is stable once libvirt's parser has put the
        // implicit controllers (appended) next to their kind
        ASSERT_TRUE(assign_addresses_and_aliases(*def));
        std::string defined = format_domain_xml(*def);
        for (int round = 0; round < 2; ++round) {
            auto reparsed = parse_domain_xml(defined);
            ASSERT_TRUE(reparsed) << f << ": " << reparsed.error().message << "\n" << defined;
            ASSERT_TRUE(assign_addresses_and_aliases(*reparsed));
            const std::string redefined = format_domain_xml(*reparsed);
            if (round == 1) {
                EXPECT_EQ(redefined, defined) << f << ": address assignment is not stable";
            }
            defined = redefined;
            def = std::move(reparsed);
        }
        // and the live document
        const std::string live = format_domain_xml(*def, {.live = true, .id = 3});
        auto live_def = parse_domain_xml(live);
        ASSERT_TRUE(live_def) << f << ": " << live_def.error().message << "\n" << live;
        EXPECT_EQ(format_domain_xml(*live_def, {.live = true, .id = {}}), live) << f;
    }
}

// Inputs the fuzzer once broke: whatever parses must round-trip and define
// to a document that parses again.
TEST(ConfDomain, FuzzRegressionsHoldTheFuzzProperty) {
    for (const auto& f : data_files("fuzz-regressions")) {
        auto def = parse_domain_xml(read_data(f));
        if (!def) {
            EXPECT_FALSE(def.error().message.empty()) << f;
            continue;
        }
        const std::string once = format_domain_xml(*def);
        auto again = parse_domain_xml(once);
        ASSERT_TRUE(again) << f << ": " << again.error().message;
        EXPECT_EQ(format_domain_xml(*again), once) << f;
        // Defaults may refuse it (libvirt's define does, e.g. two devices on
        // one PCI address), with a message; what they accept parses again.
        if (auto st = assign_addresses_and_aliases(*def); !st) {
            EXPECT_FALSE(st.error().message.empty()) << f;
            continue;
        }
        auto defined = parse_domain_xml(format_domain_xml(*def));
        EXPECT_TRUE(defined) << f << ": " << defined.error().message;
    }
}

TEST(ConfDomain, MetadataIsKeptVerbatimWithNamespaces) {
    auto def = parse_domain_xml(read_data(test::source_dir() / "tests/data/conf/valid/full-q35-uefi.xml"));
    ASSERT_TRUE(def) << def.error().message;
    const std::string out = format_domain_xml(*def);
    // libvirt writes metadata back as libxml2 serialises it: double quotes
    EXPECT_NE(out.find("<app1:foo xmlns:app1=\"http://app1.example.org/\">fooish</app1:foo>"), std::string::npos) << out;
    EXPECT_NE(out.find("<app2:nested>barish</app2:nested>"), std::string::npos) << out;
}

TEST(ConfDomain, LiveFormatAddsIdAndAliasesInactiveDoesNot) {
    auto def = parse_domain_xml(kMinimal);
    ASSERT_TRUE(def);
    ASSERT_TRUE(assign_addresses_and_aliases(*def));
    const std::string inactive = format_domain_xml(*def);
    const std::string live = format_domain_xml(*def, {.live = true, .id = 42});
    EXPECT_EQ(inactive.find("id='42'"), std::string::npos);
    EXPECT_EQ(inactive.find("<alias"), std::string::npos);
    EXPECT_NE(live.find("<domain type='qemu' id='42'>"), std::string::npos) << live;
    EXPECT_NE(live.find("<alias name='virtio-disk0'/>"), std::string::npos) << live;
    EXPECT_NE(live.find("<alias name='net0'/>"), std::string::npos) << live;
}

TEST(ConfDomain, PcMachineGetsLibvirtsSlotLayout) {
    auto def = parse_domain_xml(kMinimal);
    ASSERT_TRUE(def);
    ASSERT_TRUE(assign_addresses_and_aliases(*def));
    const std::string out = format_domain_xml(*def);
    // libvirt on i440fx: PIIX3 USB at 1.2; no video here, so the NIC, the
    // disk and the balloon from slot 2.
    EXPECT_NE(out.find("<controller type='usb' index='0' model='piix3-uhci'>\n      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x2'/>"),
              std::string::npos) << out;
    const auto& d = def->devices;
    EXPECT_EQ(d.interfaces[0].info.address.slot, 2u);
    EXPECT_EQ(d.disks[0].info.address.slot, 3u);
    ASSERT_TRUE(d.memballoon);
    EXPECT_EQ(d.memballoon->info.address.slot, 4u);
    EXPECT_EQ(d.serials[0].target_type, "isa-serial");
    EXPECT_EQ(d.consoles[0].target_type, "serial");
}

TEST(ConfDomain, Q35MachineGivesEachPcieDeviceARootPort) {
    std::string xml = kMinimal;
    xml.replace(xml.find("machine='pc'"), 12, "machine='q35'");
    auto def = parse_domain_xml(xml);
    ASSERT_TRUE(def);
    ASSERT_TRUE(assign_addresses_and_aliases(*def));
    const auto& d = def->devices;
    // disk, nic, usb controller and balloon each sit at slot 0 of their own root port bus
    std::set<unsigned> buses;
    for (const auto* info : {&d.disks[0].info, &d.interfaces[0].info, &d.memballoon->info}) {
        EXPECT_EQ(info->address.type, "pci");
        EXPECT_EQ(info->address.slot, 0u);
        EXPECT_GT(info->address.bus, 0u);
        buses.insert(info->address.bus);
    }
    EXPECT_EQ(buses.size(), 3u);
    unsigned root_ports = 0;
    for (const auto& c : d.controllers)
        if (c.model == "pcie-root-port") ++root_ports;
    EXPECT_GE(root_ports, 3u);
    const std::string out = format_domain_xml(*def);
    EXPECT_NE(out.find("<controller type='sata' index='0'>\n      <address type='pci' domain='0x0000' bus='0x00' slot='0x1f' function='0x2'/>"),
              std::string::npos) << out;
}

TEST(ConfDomain, UserAddressesAreKept) {
    std::string xml = kMinimal;
    xml.replace(xml.find("<target dev='vda' bus='virtio'/>"), 32,
                "<target dev='vda' bus='virtio'/><address type='pci' domain='0x0000' bus='0x00' slot='0x0a' function='0x0'/>");
    auto def = parse_domain_xml(xml);
    ASSERT_TRUE(def) << def.error().message;
    ASSERT_TRUE(assign_addresses_and_aliases(*def));
    EXPECT_EQ(def->devices.disks[0].info.address.slot, 10u);
    EXPECT_NE(def->devices.interfaces[0].info.address.slot, 10u);
}

TEST(ConfDomain, MemoryUnitsAreConvertedToKib) {
    for (auto [unit, value, kib] : std::vector<std::tuple<std::string, std::string, std::uint64_t>>{
             {"b", "1073741824", 1048576}, {"KiB", "1048576", 1048576}, {"k", "1048576", 1048576}, {"MiB", "1024", 1048576},
             {"M", "1024", 1048576}, {"GiB", "1", 1048576}, {"G", "1", 1048576}, {"TiB", "1", 1073741824}, {"KB", "1024", 1000},
             {"MB", "1", 977}, {"GB", "1", 976563}, {"bytes", "2048", 2}}) {
        const std::string xml = fmt::format("<domain type='qemu'><name>u</name><memory unit='{}'>{}</memory><os><type>hvm</type></os></domain>", unit, value);
        auto def = parse_domain_xml(xml);
        ASSERT_TRUE(def) << unit << ": " << def.error().message;
        EXPECT_EQ(def->memory_kib, kib) << unit;
    }
}

TEST(ConfDomain, MaxMemoryWithSlots) {
    auto def = parse_domain_xml(
        "<domain type='qemu'><name>m</name><maxMemory slots='16' unit='GiB'>8</maxMemory><memory unit='GiB'>2</memory>"
        "<currentMemory unit='GiB'>4</currentMemory><os><type>hvm</type></os>"
        "<cpu><numa><cell id='0' cpus='0' memory='2' unit='GiB'/></numa></cpu></domain>");
    ASSERT_TRUE(def) << def.error().message;
    EXPECT_EQ(*def->max_memory_slots, 16u);
    EXPECT_EQ(*def->max_memory_kib, 8u << 20);
    EXPECT_EQ(*def->current_memory_kib, 2u << 20);  // clamped to <memory>, as libvirt does
    auto no_slots = parse_domain_xml(
        "<domain type='qemu'><name>m</name><maxMemory unit='GiB'>8</maxMemory><memory unit='GiB'>2</memory><os><type>hvm</type></os></domain>");
    ASSERT_FALSE(no_slots);
    EXPECT_NE(no_slots.error().message.find("slot count"), std::string::npos);
    // memory hotplug needs guest NUMA (libvirt: "At least one numa node has to be configured")
    auto no_numa = parse_domain_xml(
        "<domain type='qemu'><name>m</name><maxMemory slots='16' unit='GiB'>8</maxMemory><memory unit='GiB'>2</memory><os><type>hvm</type></os></domain>");
    ASSERT_FALSE(no_numa);
    EXPECT_NE(no_numa.error().message.find("/domain/maxMemory: memory hotplug"), std::string::npos) << no_numa.error().message;
}

TEST(ConfDomain, ValidateCatchesProgrammaticMistakes) {
    auto def = parse_domain_xml(kMinimal);
    ASSERT_TRUE(def);
    EXPECT_TRUE(validate_domain(*def));
    def->name = "../etc";
    auto st = validate_domain(*def);
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find("/domain/name"), std::string::npos);
    def->name = "ok";
    def->memory_kib = 0;
    EXPECT_FALSE(validate_domain(*def));
}

TEST(ConfDomain, FindDiskByTarget) {
    auto def = parse_domain_xml(kMinimal);
    ASSERT_TRUE(def);
    ASSERT_NE(find_disk_by_target(*def, "vda"), nullptr);
    EXPECT_EQ(find_disk_by_target(*def, "vdz"), nullptr);
    EXPECT_TRUE(is_q35_machine("pc-q35-7.2"));
    EXPECT_FALSE(is_q35_machine("pc-i440fx-7.2"));
}

TEST(ConfDomain, ControllersWithoutIndexGetTheNextFreeOne) {
    auto def = parse_domain_xml(
        "<domain type='qemu'><name>c</name><memory>65536</memory><os><type machine='q35'>hvm</type></os><devices>"
        "<controller type='pci' model='pcie-root'/><controller type='pci' model='pcie-root-port'/>"
        "<controller type='pci' index='1' model='pcie-root-port'/><controller type='pci' model='pcie-root-port'/>"
        "</devices></domain>");
    ASSERT_TRUE(def) << def.error().message;
    std::vector<unsigned> idx;
    for (const auto& c : def->devices.controllers) idx.push_back(c.index);
    EXPECT_EQ(idx, (std::vector<unsigned>{0, 2, 1, 3}));
}

TEST(ConfDomain, GeneratedMacsAvoidThoseInUseAndEachOther) {
    auto def = parse_domain_xml(R"(<domain type='qemu'><name>m</name><memory>65536</memory>
      <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
      <interface type='user'/><interface type='user'/><interface type='user'><mac address='52:54:00:00:00:07'/></interface>
      </devices></domain>)");
    ASSERT_TRUE(def) << def.error().message;
    // A scripted generator: it first offers MACs another domain has, then one
    // this definition already has, then repeats itself.
    std::vector<std::array<std::uint8_t, 3>> draws{{0, 0, 1}, {0, 0, 1}, {0, 0, 7}, {0, 0, 2}, {0, 0, 2}, {0, 0, 3}};
    std::size_t next = 0;
    auto in_use = [](std::string_view mac) { return mac == "52:54:00:00:00:01"; };
    assign_unique_macs(*def, in_use, [&] { return draws.at(next++); });
    const auto& nics = def->devices.interfaces;
    EXPECT_EQ(nics[0].mac, "52:54:00:00:00:02");
    EXPECT_EQ(nics[1].mac, "52:54:00:00:00:03");
    EXPECT_EQ(nics[2].mac, "52:54:00:00:00:07") << "a MAC the user gave is kept";
    // The real generator: libvirt's prefix, all different.
    auto many = parse_domain_xml(R"(<domain type='qemu'><name>m</name><memory>65536</memory>
      <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
      <interface type='user'/><interface type='user'/><interface type='user'/></devices></domain>)");
    ASSERT_TRUE(many);
    assign_unique_macs(*many, {});
    std::set<std::string> seen;
    for (const auto& n : many->devices.interfaces) {
        EXPECT_TRUE(n.mac.starts_with("52:54:00:")) << n.mac;
        seen.insert(n.mac);
    }
    EXPECT_EQ(seen.size(), 3u);
}

// <vcpus>: each vCPU's state, as libvirt writes it; setvcpu --config.
TEST(ConfDomain, IndividualVcpus) {
    std::string xml = kMinimal;
    xml.replace(xml.find("<vcpu>2</vcpu>"), 14,
                "<vcpu current='3'>4</vcpu><vcpus><vcpu id='0' enabled='yes' hotpluggable='no' order='1'/>"
                "<vcpu id='1' enabled='yes' hotpluggable='no' order='2'/><vcpu id='2' enabled='no' hotpluggable='yes'/>"
                "<vcpu id='3' enabled='yes' hotpluggable='yes' order='3'/></vcpus>");
    auto def = parse_domain_xml(xml);
    ASSERT_TRUE(def) << def.error().message;
    ASSERT_EQ(def->vcpu_states.size(), 4u);
    EXPECT_EQ(def->vcpus_current, 3u);
    EXPECT_EQ(def->vcpu_states[3], (VcpuState{.enabled = true, .hotpluggable = "yes", .order = 3}));
    const std::string out = format_domain_xml(*def);
    EXPECT_NE(out.find("  <vcpu placement='static' current='3'>4</vcpu>\n  <vcpus>\n"
                       "    <vcpu id='0' enabled='yes' hotpluggable='no' order='1'/>\n"
                       "    <vcpu id='1' enabled='yes' hotpluggable='no' order='2'/>\n"
                       "    <vcpu id='2' enabled='no' hotpluggable='yes'/>\n"
                       "    <vcpu id='3' enabled='yes' hotpluggable='yes' order='3'/>\n  </vcpus>\n"),
              std::string::npos)
        << out;
    // The enabled ones give the current count, whatever current= said.
    std::string two = xml;
    two.replace(two.find("<vcpu id='3' enabled='yes'"), 26, "<vcpu id='3' enabled='no' ");
    EXPECT_EQ(parse_domain_xml(two)->vcpus_current, 2u);
    std::string beyond = xml;
    beyond.replace(beyond.find("<vcpu id='3'"), 12, "<vcpu id='4'");
    EXPECT_FALSE(parse_domain_xml(beyond));
    std::string first_off = xml;
    first_off.replace(first_off.find("<vcpu id='0' enabled='yes'"), 26, "<vcpu id='0' enabled='no' ");
    auto off = parse_domain_xml(first_off);
    ASSERT_FALSE(off);
    EXPECT_NE(off.error().message.find("vcpu 0 can't be offline"), std::string::npos) << off.error().message;

    // setvcpu --config on a definition without <vcpus>: 1 of 2 -> vCPU 1 on.
    auto plain = parse_domain_xml(kMinimal);
    ASSERT_TRUE(plain);
    plain->vcpus_current = 1;
    auto on = with_vcpus_enabled(*plain, {1}, true);
    ASSERT_TRUE(on) << on.error().message;
    EXPECT_FALSE(on->vcpus_current);
    EXPECT_EQ(on->vcpu_states[1], (VcpuState{.enabled = true, .hotpluggable = "yes", .order = 0}));
    auto back = with_vcpus_enabled(*on, {1}, false);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->vcpus_current, 1u);
    auto zero = with_vcpus_enabled(*plain, {0}, false);
    ASSERT_FALSE(zero);
    EXPECT_EQ(zero.error().message, "invalid argument: vCPU '0' can't be modified");
    auto absent = with_vcpus_enabled(*plain, {1, 5}, true);
    ASSERT_FALSE(absent);
    EXPECT_EQ(absent.error().message, "invalid argument: vcpu 5 is not present in persistent config");
    // Enabled vCPUs that can't be unplugged come first.
    auto four = parse_domain_xml(xml);
    ASSERT_TRUE(four);
    four->vcpu_states[2] = {.enabled = true, .hotpluggable = "no", .order = 0};
    auto cluster = with_vcpus_enabled(*four, {1}, false);
    ASSERT_FALSE(cluster);
    EXPECT_EQ(cluster.error().message,
              "invalid argument: vcpu '1' can't be modified as it is followed by non-hotpluggable online vcpus");
    EXPECT_TRUE(with_vcpus_enabled(*four, {3}, false)) << "the last one";
}
