// One device documents (attach-device): the <disk> parse, and the address
// and alias a disk gets, which must be what a cold define gives.
#include <gtest/gtest.h>

#include "conf/device_hotplug.hpp"
#include "conf/domain.hpp"
#include "conf/memory_device.hpp"

using namespace vireo;
using namespace vireo::conf;

namespace {

std::string domain_with(const std::string& disks) {
    return R"(<domain type='qemu'>
  <name>hp</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
)" + disks + R"(  </devices>
</domain>)";
}

const char* kVda = "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                   "<source file='/img/a.qcow2'/><target dev='vda' bus='virtio'/></disk>\n";
const char* kVdb = "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                   "<source file='/img/b.raw'/><target dev='vdb' bus='virtio'/></disk>\n";

DomainDef defined(const std::string& xml) {
    auto def = parse_domain_xml(xml);
    EXPECT_TRUE(def) << (def ? "" : def.error().message);
    if (!def) return {};
    auto st = assign_addresses_and_aliases(*def);
    EXPECT_TRUE(st) << (st ? "" : st.error().message);
    return *def;
}

FormatFlags live_flags() {
    FormatFlags f;
    f.live = true;
    return f;
}

}  // namespace

TEST(DeviceAttach, DiskXmlUsesTheDomainDiskParser) {
    auto d = parse_disk_xml(kVdb);
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->target_dev, "vdb");
    EXPECT_EQ(d->source.file, "/img/b.raw");
    // What the disk parser refuses, the one-device parse refuses.
    auto bad = parse_disk_xml("<disk type='file'><source file='/x'/><target dev='vdb'/><bogus/></disk>");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("bogus"), std::string::npos) << bad.error().message;
    EXPECT_FALSE(parse_disk_xml("<interface type='user'/>"));
    EXPECT_FALSE(parse_disk_xml("<disk"));
    auto kind = device_xml_kind("<interface type='user'/>");
    ASSERT_TRUE(kind);
    EXPECT_EQ(*kind, "interface");
}

TEST(DeviceAttach, AddressAndAliasAsAColdDefine) {
    const DomainDef base = defined(domain_with(kVda));
    auto disk = parse_disk_xml(kVdb);
    ASSERT_TRUE(disk);
    auto hot = with_disk_attached(base, *disk);
    ASSERT_TRUE(hot) << hot.error().message;
    // The existing devices keep their addresses (the balloon at 0x03); the
    // new disk takes the first free slot and libvirt's alias.
    const Disk* vdb = find_disk_by_target(*hot, "vdb");
    ASSERT_NE(vdb, nullptr);
    EXPECT_EQ(vdb->info.alias, "virtio-disk1");
    EXPECT_EQ(vdb->info.address.type, "pci");
    EXPECT_EQ(vdb->info.address.slot, 4u);
    EXPECT_EQ(vdb->driver_name, "qemu");
    ASSERT_TRUE(hot->devices.memballoon);
    EXPECT_EQ(hot->devices.memballoon->info.address.slot, base.devices.memballoon->info.address.slot);
    // Defining the result again changes nothing: the attach assigned what
    // the define's own assignment assigns.
    DomainDef again = defined(format_domain_xml(*hot, live_flags()));
    EXPECT_EQ(format_domain_xml(again, live_flags()), format_domain_xml(*hot, live_flags()));
    // The disk without an address in a cold define of the same document
    // lands where the attach put it when the other devices hold theirs.
    const DomainDef cold = defined(domain_with(
        std::string(kVda) + "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                            "<source file='/img/b.raw'/><target dev='vdb' bus='virtio'/></disk>\n"
                            "<memballoon model='virtio'><address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/></memballoon>\n"));
    const Disk* cold_vdb = find_disk_by_target(cold, "vdb");
    ASSERT_NE(cold_vdb, nullptr);
    EXPECT_EQ(cold_vdb->info.address.slot, vdb->info.address.slot);
    EXPECT_EQ(cold_vdb->info.alias, vdb->info.alias);
}

TEST(DeviceAttach, TakenTargetAddressOrAliasRefused) {
    const DomainDef base = defined(domain_with(kVda));
    auto same = parse_disk_xml("<disk type='file'><source file='/img/c'/><target dev='vda' bus='virtio'/></disk>");
    ASSERT_TRUE(same);
    auto r = with_disk_attached(base, *same);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("target vda already exists"), std::string::npos) << r.error().message;

    const Disk* vda = find_disk_by_target(base, "vda");
    ASSERT_NE(vda, nullptr);
    const auto& a = vda->info.address;
    auto clash = parse_disk_xml(fmt::format("<disk type='file'><source file='/img/c'/><target dev='vdc' bus='virtio'/>"
                                            "<address type='pci' domain='0x0000' bus='0x{:02x}' slot='0x{:02x}' function='0x0'/></disk>",
                                            a.bus, a.slot));
    ASSERT_TRUE(clash) << clash.error().message;
    auto r2 = with_disk_attached(base, *clash);
    ASSERT_FALSE(r2);

    auto alias = parse_disk_xml("<disk type='file'><source file='/img/c'/><target dev='vdc' bus='virtio'/>"
                                "<alias name='ua-x'/></disk>");
    ASSERT_TRUE(alias) << alias.error().message;
    auto with_alias = with_disk_attached(base, *alias);
    ASSERT_TRUE(with_alias) << with_alias.error().message;
    auto alias2 = parse_disk_xml("<disk type='file'><source file='/img/d'/><target dev='vdd' bus='virtio'/>"
                                 "<alias name='ua-x'/></disk>");
    ASSERT_TRUE(alias2);
    EXPECT_FALSE(with_disk_attached(*with_alias, *alias2));
}

TEST(DeviceAttach, FindForDetach) {
    const DomainDef base = defined(domain_with(std::string(kVda) + kVdb));
    auto byt = find_disk_for_detach(base, "vdb");
    ASSERT_TRUE(byt);
    EXPECT_EQ(base.devices.disks[*byt].target_dev, "vdb");
    auto bys = find_disk_for_detach(base, "/img/a.qcow2");
    ASSERT_TRUE(bys);
    EXPECT_EQ(base.devices.disks[*bys].target_dev, "vda");
    auto none = find_disk_for_detach(base, "vdz");
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, ErrorCode::NotFound);
    auto bya = find_disk_by_alias(base, "virtio-disk1");
    ASSERT_TRUE(bya);
    EXPECT_EQ(base.devices.disks[*bya].target_dev, "vdb");
    EXPECT_FALSE(find_disk_by_alias(base, "virtio-disk7"));
}

// A NIC attached gets the next free PCI slot and alias netN, the devices
// already there keep theirs; a MAC the domain has is refused.
TEST(DeviceAttach, InterfaceGetsWhatAColdDefineGives) {
    const std::string nic = "<interface type='bridge'><mac address='52:54:00:00:01:02'/><source bridge='br0'/>"
                            "<model type='virtio'/></interface>\n";
    const DomainDef base = defined(domain_with(kVda));
    auto parsed = parse_domain_interface_xml(nic);
    ASSERT_TRUE(parsed) << parsed.error().message;
    auto hot = with_interface_attached(base, *parsed);
    ASSERT_TRUE(hot) << hot.error().message;
    // The first free slot (a cold define would order NICs before disks, but
    // the running devices keep theirs) and what attach --config gives.
    ASSERT_EQ(hot->devices.interfaces.size(), 1u);
    EXPECT_EQ(hot->devices.interfaces[0].info.alias, "net0");
    const std::string xml = format_domain_xml(*hot, live_flags());
    EXPECT_NE(xml.find("<alias name='net0'/>\n      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>"),
              std::string::npos)
        << xml;
    EXPECT_EQ(format_domain_xml(base, live_flags()).find("slot='0x04'"), std::string::npos);
    for (std::size_t i = 0; i < base.devices.disks.size(); ++i)
        EXPECT_EQ(hot->devices.disks[i].info.address, base.devices.disks[i].info.address) << "the disks keep their slots";

    auto twice = with_interface_attached(*hot, *parsed);
    ASSERT_FALSE(twice);
    EXPECT_NE(twice.error().message.find("already has an interface with MAC address 52:54:00:00:01:02"), std::string::npos);
    // What the domain parser refuses, the one-device parse refuses.
    EXPECT_FALSE(parse_domain_interface_xml("<interface type='bridge'/>"));
    EXPECT_FALSE(parse_domain_interface_xml("<interface type='network'><source network='n'/><bogus/></interface>"));
}

// update-device: live, only the link state of the NIC the MAC names
// changes; the persistent definition takes the whole document, the NIC
// keeping its place, alias and address.
TEST(DeviceAttach, InterfaceUpdate) {
    const DomainDef def = defined(domain_with(
        "<interface type='network'><mac address='52:54:00:00:03:01'/><source network='a'/><model type='virtio'/></interface>\n"
        "<interface type='network'><mac address='52:54:00:00:03:02'/><source network='b'/><model type='virtio'/></interface>\n"));
    auto doc = [](const std::string& inner) {
        auto nic = parse_domain_interface_xml("<interface type='network'><mac address='52:54:00:00:03:02'/>" + inner + "</interface>");
        EXPECT_TRUE(nic) << nic.error().message;
        return nic.value_or(Interface{});
    };
    auto down = with_interface_updated(def, doc("<source network='b'/><link state='down'/>"), true);
    ASSERT_TRUE(down) << down.error().message;
    EXPECT_EQ(down->devices.interfaces[1].link_state, "down");
    EXPECT_EQ(down->devices.interfaces[0].link_state, "");
    auto model = with_interface_updated(def, doc("<source network='b'/><model type='e1000'/>"), true);
    ASSERT_FALSE(model);
    EXPECT_EQ(model.error().code, ErrorCode::Unsupported);
    EXPECT_NE(model.error().message.find("cannot change the model of interface 52:54:00:00:03:02"), std::string::npos)
        << model.error().message;
    EXPECT_FALSE(with_interface_updated(def, doc("<source network='c'/>"), true));
    auto bridge = parse_domain_interface_xml("<interface type='bridge'><mac address='52:54:00:00:03:02'/><source bridge='br0'/></interface>");
    ASSERT_TRUE(bridge);
    EXPECT_FALSE(with_interface_updated(def, *bridge, true)) << "the type never changes";

    auto config = with_interface_updated(def, doc("<source network='c'/><model type='e1000'/>"), false);
    ASSERT_TRUE(config) << config.error().message;
    ASSERT_EQ(config->devices.interfaces.size(), 2u);
    const Interface& changed = config->devices.interfaces[1];
    EXPECT_EQ(changed.source_network, "c");
    EXPECT_EQ(changed.model, "e1000");
    EXPECT_EQ(changed.info.alias, def.devices.interfaces[1].info.alias);
    EXPECT_EQ(changed.info.address, def.devices.interfaces[1].info.address);
    EXPECT_EQ(config->devices.interfaces[0].mac, "52:54:00:00:03:01") << "the other NIC keeps its place";

    auto none = parse_domain_interface_xml("<interface type='network'><mac address='52:54:00:00:09:09'/><source network='a'/></interface>");
    ASSERT_TRUE(none);
    EXPECT_EQ(with_interface_updated(def, *none, true).error().code, ErrorCode::NotFound);
    auto unnamed = parse_domain_interface_xml("<interface type='network'><source network='a'/></interface>");
    ASSERT_TRUE(unnamed);
    EXPECT_EQ(with_interface_updated(def, *unnamed, true).error().code, ErrorCode::InvalidArg) << "two NICs: name one";
}

// detach picks by MAC, else the only NIC of a type; ambiguity is refused.
TEST(DeviceAttach, InterfaceForDetach) {
    const DomainDef def = defined(domain_with(
        "<interface type='network'><mac address='52:54:00:00:02:01'/><source network='a'/></interface>\n"
        "<interface type='network'><mac address='52:54:00:00:02:02'/><source network='b'/></interface>\n"
        "<interface type='user'><mac address='52:54:00:00:02:03'/></interface>\n"));
    EXPECT_EQ(find_interface_for_detach(def, "52:54:00:00:02:02", "").value_or(9), 1u);
    EXPECT_EQ(find_interface_for_detach(def, "", "user").value_or(9), 2u);
    auto ambiguous = find_interface_for_detach(def, "", "network");
    ASSERT_FALSE(ambiguous);
    EXPECT_EQ(ambiguous.error().message, "Domain has 2 interfaces. Please specify which one to detach using --mac");
    EXPECT_EQ(find_interface_for_detach(def, "52:54:00:00:09:09", "").error().code, ErrorCode::NotFound);
    EXPECT_EQ(find_interface_for_detach(def, "52:54:00:00:02:03", "network").error().code, ErrorCode::NotFound);
    EXPECT_EQ(find_interface_by_alias(def, "net2").value_or(9), 2u);

    auto sel = parse_interface_selector_xml("<interface type='network'><mac address='52:54:00:00:02:0A'/><target dev='vnet3'/></interface>");
    ASSERT_TRUE(sel) << sel.error().message;
    EXPECT_EQ(sel->type, "network");
    EXPECT_EQ(sel->mac, "52:54:00:00:02:0a");
    EXPECT_FALSE(parse_interface_selector_xml("<interface type='network'><mac address='nope'/></interface>"));
}

namespace {

std::string memory_domain(const std::string& top, const std::string& devices) {
    return R"(<domain type='qemu'>
  <name>mem</name>
)" + top + R"(  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <cpu><numa><cell id='0' cpus='0' memory='256' unit='MiB'/></numa></cpu>
  <devices>
)" + devices + R"(  </devices>
</domain>)";
}

MemoryDevice dimm(unsigned mib) {
    auto m = parse_memory_device_xml(
        fmt::format("<memory model='dimm'><target><size unit='MiB'>{}</size><node>0</node></target></memory>", mib));
    EXPECT_TRUE(m) << (m ? "" : m.error().message);
    return m.value_or(MemoryDevice{});
}

}  // namespace

TEST(DeviceAttach, MemoryModuleAsLibvirtPlugsIt) {
    const std::string max = "<maxMemory slots='2' unit='MiB'>1024</maxMemory>\n";
    const DomainDef def = defined(memory_domain(max, "<memory model='dimm'><target><size unit='MiB'>128</size><node>0</node></target></memory>\n"));
    auto next = with_memory_attached(def, dimm(256));
    ASSERT_TRUE(next) << next.error().message;
    ASSERT_EQ(next->devices.memories.size(), 2u);
    EXPECT_EQ(next->devices.memories[1].info.alias, "dimm1");
    EXPECT_EQ(next->devices.memories[1].info.address.type, "dimm");
    EXPECT_EQ(next->devices.memories[1].info.address.slot, 1u);
    EXPECT_EQ(next->memory_kib, (256 + 128 + 256) * 1024u);
    EXPECT_EQ(next->current_memory_kib.value_or(next->memory_kib), next->memory_kib);

    // No slot left, beyond maxMemory, no maxMemory: refused as libvirt.
    auto full = with_memory_attached(*next, dimm(128));
    ASSERT_FALSE(full);
    EXPECT_NE(full.error().message.find("no free memory device slot available"), std::string::npos) << full.error().message;
    auto big = with_memory_attached(def, dimm(1024));
    ASSERT_FALSE(big);
    EXPECT_NE(big.error().message.find("Attaching memory device with size '1048576' would exceed domain's maxMemory config size '1048576'"),
              std::string::npos)
        << big.error().message;
    auto none = with_memory_attached(defined(memory_domain("", "")), dimm(128));
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message.find("'maxMemory' is not defined"), std::string::npos) << none.error().message;

    // Detach: found by size and node (and slot when given), the total shrinks.
    EXPECT_EQ(find_memory_for_detach(*next, dimm(256)).value_or(9), 1u);
    EXPECT_EQ(find_memory_for_detach(*next, dimm(64)).error().code, ErrorCode::NotFound);
    MemoryDevice at0 = dimm(256);
    at0.info.address.type = "dimm";
    at0.info.address.slot = 0;
    EXPECT_FALSE(find_memory_for_detach(*next, at0));
    const DomainDef back = with_memory_detached(*next, 1);
    EXPECT_EQ(back.memory_kib, def.memory_kib);
    EXPECT_EQ(back.devices.memories.size(), 1u);
}

// An <rng>, <input>, <watchdog>: where a cold define puts it; libvirt's
// refusals; found again for detach by its kind-defining fields. (A
// <channel> on an existing controller: HotplugArgs in unit_qemu.)
TEST(DeviceAttach, PluggableDevicesAsAColdDefine) {
    const DomainDef base = defined(domain_with(kVda));
    for (const std::string doc : {"<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>",
                                  "<input type='tablet' bus='virtio'/>", "<watchdog model='i6300esb' action='pause'/>"}) {
        SCOPED_TRACE(doc);
        auto dev = parse_pluggable_device_xml(doc);
        ASSERT_TRUE(dev) << dev.error().message;
        auto out = with_device_attached(base, *dev);
        ASSERT_TRUE(out) << out.error().message;
        DomainDef cold = defined(domain_with(std::string(kVda) + doc + "\n"));
        cold.uuid = out->uuid;
        if (doc.starts_with("<input")) {
            // A cold define lists the implicit ps2 inputs after it (input0);
            // hotplugged, it gets the next free index as libvirt gives it.
            EXPECT_EQ(out->devices.inputs.back().info.alias, "input2");
            EXPECT_EQ(out->devices.inputs.back().info.address, cold.devices.inputs.front().info.address);
        } else {
            EXPECT_EQ(format_domain_xml(*out, live_flags()), format_domain_xml(cold, live_flags()));
        }
        auto i = find_device_for_detach(*out, *dev);
        ASSERT_TRUE(i) << i.error().message;
        EXPECT_FALSE(find_device_for_detach(base, *dev));
    }
    // The domain with the device `doc` attached (a watchdog, a builtin RNG).
    auto attached = [&](const DomainDef& def, const char* doc) {
        auto dev = parse_pluggable_device_xml(doc);
        EXPECT_TRUE(dev);
        return dev ? with_device_attached(def, *dev) : Result<DomainDef>(std::unexpected(dev.error()));
    };
    auto one = attached(base, "<watchdog model='i6300esb'/>");
    ASSERT_TRUE(one);
    auto two = attached(*one, "<watchdog model='i6300esb'/>");
    ASSERT_FALSE(two);
    EXPECT_EQ(two.error().message, "Requested operation is not valid: domain already has a watchdog");
    auto with_rng = attached(base, "<rng model='virtio'><backend model='builtin'/></rng>");
    ASSERT_TRUE(with_rng);
    auto random = parse_pluggable_device_xml("<rng model='virtio'><backend model='random'/></rng>");
    ASSERT_TRUE(random);
    auto missing = find_device_for_detach(*with_rng, *random);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::NotFound);
    // One port per name; serial ports are not pluggable.
    auto agent = attached(base, "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>");
    ASSERT_TRUE(agent);
    auto again = attached(*agent, "<channel type='pty'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>");
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().message, "Requested operation is not valid: chardev already exists (virtio port 'org.qemu.guest_agent.0')");
    auto serial = parse_pluggable_device_xml("<serial type='pty'><target port='1'/></serial>");
    ASSERT_FALSE(serial);
    EXPECT_EQ(serial.error().code, ErrorCode::Unsupported);
}

namespace {

MemoryDevice virtio_mem(unsigned mib, unsigned block_kib, unsigned requested_kib) {
    auto m = parse_memory_device_xml(fmt::format(
        "<memory model='virtio-mem'><target><size unit='MiB'>{}</size><node>0</node><block unit='KiB'>{}</block>"
        "<requested unit='KiB'>{}</requested></target></memory>",
        mib, block_kib, requested_kib));
    EXPECT_TRUE(m) << (m ? "" : m.error().message);
    return m.value_or(MemoryDevice{});
}

}  // namespace

TEST(DeviceAttach, VirtioMemIsAPciDeviceWithItsSizes) {
    const std::string max = "<maxMemory slots='1' unit='MiB'>2048</maxMemory>\n";
    const DomainDef def = defined(memory_domain(max, "<memory model='dimm'><target><size unit='MiB'>128</size><node>0</node></target></memory>\n"));
    // A virtio-mem takes no dimm slot: the only slot is taken, it still plugs.
    auto next = with_memory_attached(def, virtio_mem(512, 2048, 131072));
    ASSERT_TRUE(next) << next.error().message;
    const MemoryDevice& m = next->devices.memories.back();
    EXPECT_EQ(m.info.alias, "virtiomem0");
    EXPECT_EQ(m.info.address.type, "pci");
    EXPECT_EQ(next->memory_kib, (256 + 128 + 512) * 1024u);
    const std::string xml = format_domain_xml(*next, live_flags());
    EXPECT_NE(xml.find("<block unit='KiB'>2048</block>"), std::string::npos) << xml;
    EXPECT_NE(xml.find("<requested unit='KiB'>131072</requested>"), std::string::npos) << xml;
    EXPECT_EQ(xml.find("<current unit="), std::string::npos) << xml;

    // libvirt's refusals of bad sizes.
    const std::pair<MemoryDevice, std::string> bad[] = {
        {virtio_mem(128, 2048, 262144), "requested size must be smaller than or equal to @size (131072KiB)"},
        {virtio_mem(128, 2048, 1024), "requested size must be an integer multiple of block size"},
        {virtio_mem(128, 3072, 0), "block size must be a power of two"},
        {virtio_mem(128, 1024, 0), "block size too small, must be at least 2048KiB"},
    };
    for (const auto& [dev, message] : bad) {
        auto r = with_memory_attached(def, dev);
        ASSERT_FALSE(r) << message;
        EXPECT_NE(r.error().message.find(message), std::string::npos) << r.error().message;
    }

    // update-device: only <requested> changes; a virtio-mem cannot be unplugged.
    auto raised = with_memory_updated(*next, virtio_mem(512, 2048, 262144));
    ASSERT_TRUE(raised) << raised.error().message;
    EXPECT_EQ(raised->devices.memories.back().requested_kib, 262144u);
    auto resized = with_memory_updated(*next, virtio_mem(512, 4096, 262144));
    ASSERT_FALSE(resized);
    EXPECT_NE(resized.error().message.find("cannot modify memory block size from '2048' to '4096'"), std::string::npos)
        << resized.error().message;
    auto dimm_update = with_memory_updated(*next, dimm(128));
    ASSERT_FALSE(dimm_update);
    EXPECT_NE(dimm_update.error().message.find("cannot modify memory of model 'dimm'"), std::string::npos) << dimm_update.error().message;
    EXPECT_FALSE(check_memory_unpluggable(m));
    EXPECT_TRUE(check_memory_unpluggable(next->devices.memories.front()));
}
