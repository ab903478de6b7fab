// Disk hotplug arguments: the start path's -blockdev/-device of one disk as
// QMP blockdev-add / device_add arguments (qemu/command_line.hpp).
#include <gtest/gtest.h>

#include "conf/domain.hpp"
#include "qemu/command_line.hpp"

using namespace vireo;

TEST(HotplugArgs, DeviceOptionsBecomeTypedJson) {
    auto j = qemu::device_json("virtio-blk-pci,drive=n1,,x,id=virtio-disk1,bus=pci.0,addr=0x4,share-rw=on,bootindex=2");
    ASSERT_TRUE(j) << j.error().message;
    EXPECT_EQ((*j)["driver"], "virtio-blk-pci");
    EXPECT_EQ((*j)["drive"], "n1,x");
    EXPECT_EQ((*j)["addr"], "0x4");
    EXPECT_EQ((*j)["share-rw"], true);
    EXPECT_EQ((*j)["bootindex"], 2);
}

TEST(HotplugArgs, NodeChainAndDeviceOfOneDisk) {
    auto def = conf::parse_domain_xml(R"(<domain type='qemu'><name>h</name><memory unit='MiB'>64</memory>
      <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
      <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/b.qcow2'/>
      <target dev='vdb' bus='virtio'/></disk></devices></domain>)");
    ASSERT_TRUE(def) << def.error().message;
    ASSERT_TRUE(conf::assign_addresses_and_aliases(*def));
    const conf::Disk& disk = def->devices.disks.front();
    auto args = qemu::disk_hotplug_args(*def, disk, {}, "vireo-virtio-disk1-");
    ASSERT_TRUE(args) << args.error().message;
    ASSERT_EQ(args->nodes.size(), 2u);
    EXPECT_EQ(args->nodes[0]["node-name"], "vireo-virtio-disk1-1-storage");
    EXPECT_EQ(args->nodes[0]["filename"], "/img/b.qcow2");
    EXPECT_EQ(args->nodes[1]["node-name"], "vireo-virtio-disk1-1-format");
    EXPECT_EQ(args->nodes[1]["driver"], "qcow2");
    EXPECT_EQ(args->device["driver"], "virtio-blk-pci");
    EXPECT_EQ(args->device["drive"], "vireo-virtio-disk1-1-format");
    EXPECT_EQ(args->device["id"], "virtio-disk1");
}

namespace {

conf::DomainDef domain_with_nics(const std::string& nics) {
    auto def = conf::parse_domain_xml(R"(<domain type='qemu'><name>h</name><memory unit='MiB'>64</memory>
      <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>)" +
                                      nics + "</devices></domain>");
    EXPECT_TRUE(def) << def.error().message;
    return def.value_or(conf::DomainDef{});
}

}  // namespace

// A tap NIC's -netdev names its descriptors by their getfd names (two
// queues, vhost-net), and its -device is the start path's.
TEST(HotplugArgs, TapNicNamesItsDescriptors) {
    auto def = domain_with_nics("<interface type='bridge'><mac address='52:54:00:00:00:09'/><source bridge='br0'/>"
                                "<model type='virtio'/><driver queues='2'/></interface>");
    ASSERT_TRUE(conf::assign_addresses_and_aliases(def));
    const conf::Interface& nic = def.devices.interfaces.front();
    qemu::CommandLineOptions opts;
    for (unsigned q = 0; q < 2; ++q) {
        opts.passed_fds[qemu::nic_tap_fd_name("net0", q)] = 10 + static_cast<int>(q);
        opts.passed_fds[qemu::nic_vhost_fd_name("net0", q)] = 20 + static_cast<int>(q);
    }
    auto args = qemu::nic_hotplug_args(def, nic, opts);
    ASSERT_TRUE(args) << args.error().message;
    EXPECT_EQ(args->netdev["type"], "tap");
    EXPECT_EQ(args->netdev["id"], "hostnet0");
    EXPECT_EQ(args->netdev["fds"], "net0-tap0:net0-tap1");
    EXPECT_EQ(args->netdev["vhost"], true);
    EXPECT_EQ(args->netdev["vhostfds"], qemu::nic_vhost_fd_name("net0", 0) + ":" + qemu::nic_vhost_fd_name("net0", 1));
    EXPECT_EQ(args->fd_names.size(), 4u);
    EXPECT_EQ(args->device["driver"], "virtio-net-pci");
    EXPECT_EQ(args->device["netdev"], "hostnet0");
    EXPECT_EQ(args->device["mac"], "52:54:00:00:00:09");
    EXPECT_EQ(args->device["id"], "net0");
    EXPECT_EQ(args->device["mq"], true);
}

TEST(HotplugArgs, UserNicAndRefusals) {
    auto def = domain_with_nics("<interface type='user'><mac address='52:54:00:00:00:0a'/><model type='e1000'/></interface>");
    ASSERT_TRUE(conf::assign_addresses_and_aliases(def));
    auto args = qemu::nic_hotplug_args(def, def.devices.interfaces.front(), {});
    ASSERT_TRUE(args) << args.error().message;
    EXPECT_EQ(args->netdev, (nlohmann::json{{"type", "user"}, {"id", "hostnet0"}}));
    EXPECT_TRUE(args->fd_names.empty());
    EXPECT_EQ(args->device["driver"], "e1000");

    // A tap NIC without its descriptor, and passt, are refused.
    auto tap = domain_with_nics("<interface type='bridge'><source bridge='br0'/></interface>");
    ASSERT_TRUE(conf::assign_addresses_and_aliases(tap));
    EXPECT_FALSE(qemu::nic_hotplug_args(tap, tap.devices.interfaces.front(), {}));
    auto passt = domain_with_nics("<interface type='user'><backend type='passt'/></interface>");
    ASSERT_TRUE(conf::assign_addresses_and_aliases(passt));
    auto refused = qemu::nic_hotplug_args(passt, passt.devices.interfaces.front(), {});
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("cannot be hotplugged"), std::string::npos) << refused.error().message;
}

namespace {

conf::DomainDef domain_with(const std::string& devices) {
    auto def = conf::parse_domain_xml(R"(<domain type='qemu'><name>h</name><memory unit='MiB'>64</memory>
      <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>)" +
                                      devices + "</devices></domain>");
    EXPECT_TRUE(def) << def.error().message;
    auto out = def.value_or(conf::DomainDef{});
    EXPECT_TRUE(conf::assign_addresses_and_aliases(out));
    return out;
}

const std::string kScsiBase = "<controller type='scsi' index='0' model='virtio-scsi'/>"
                              "<disk type='file' device='disk'><source file='/img/a.raw'/><target dev='sda' bus='scsi'/></disk>";

}  // namespace

// A SCSI disk attached to a domain gets the address and alias a cold
// define gives it, and its arguments are the start path's scsi-hd on the
// existing controller; an empty SCSI cdrom has no node, only its scsi-cd.
TEST(HotplugArgs, ScsiDiskAndCdromOnTheExistingController) {
    const std::string sdb = "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/img/b.raw'/>"
                            "<target dev='sdb' bus='scsi'/></disk>";
    const conf::DomainDef base = domain_with(kScsiBase);
    auto disk = conf::parse_disk_xml(sdb);
    ASSERT_TRUE(disk) << disk.error().message;
    auto next = conf::with_disk_attached(base, *disk);
    ASSERT_TRUE(next) << next.error().message;
    EXPECT_EQ(next->devices.controllers.size(), base.devices.controllers.size());  // no new controller
    const conf::DomainDef cold = domain_with(kScsiBase + sdb);
    const conf::Disk* placed = conf::find_disk_by_target(*next, "sdb");
    const conf::Disk* defined = conf::find_disk_by_target(cold, "sdb");
    ASSERT_TRUE(placed && defined);
    EXPECT_EQ(placed->info.alias, defined->info.alias);
    EXPECT_EQ(placed->info.address, defined->info.address);

    auto args = qemu::disk_hotplug_args(*next, *placed, {}, "vireo-scsi0-0-0-1-");
    ASSERT_TRUE(args) << args.error().message;
    ASSERT_EQ(args->nodes.size(), 2u);
    EXPECT_EQ(args->nodes[0]["filename"], "/img/b.raw");
    EXPECT_EQ(args->device["driver"], "scsi-hd");
    EXPECT_EQ(args->device["bus"], "scsi0.0");
    EXPECT_EQ(args->device["scsi-id"], 0);
    EXPECT_EQ(args->device["lun"], placed->info.address.unit);
    EXPECT_EQ(args->device["drive"], "vireo-scsi0-0-0-1-1-format");
    EXPECT_EQ(args->device["id"], placed->info.alias);

    auto cd = conf::parse_disk_xml("<disk type='file' device='cdrom'><target dev='sdc' bus='scsi'/><readonly/></disk>");
    ASSERT_TRUE(cd) << cd.error().message;
    auto with_cd = conf::with_disk_attached(base, *cd);
    ASSERT_TRUE(with_cd) << with_cd.error().message;
    const conf::Disk* cd_placed = conf::find_disk_by_target(*with_cd, "sdc");
    ASSERT_TRUE(cd_placed);
    auto cd_args = qemu::disk_hotplug_args(*with_cd, *cd_placed, {}, "vireo-x-");
    ASSERT_TRUE(cd_args) << cd_args.error().message;
    EXPECT_TRUE(cd_args->nodes.empty());
    EXPECT_EQ(cd_args->device["driver"], "scsi-cd");
    EXPECT_FALSE(cd_args->device.contains("drive"));
}

// A USB disk is the start path's usb-storage on the domain's USB controller.
TEST(HotplugArgs, UsbDiskOnTheUsbController) {
    const conf::DomainDef base = domain_with("<controller type='usb' index='0' model='piix3-uhci'/>");
    auto disk = conf::parse_disk_xml("<disk type='file' device='disk'><source file='/img/u.raw'/><target dev='sdb' bus='usb'/></disk>");
    ASSERT_TRUE(disk) << disk.error().message;
    auto next = conf::with_disk_attached(base, *disk);
    ASSERT_TRUE(next) << next.error().message;
    const conf::Disk* placed = conf::find_disk_by_target(*next, "sdb");
    ASSERT_TRUE(placed);
    EXPECT_EQ(placed->info.address.type, "usb");
    auto args = qemu::disk_hotplug_args(*next, *placed, {}, "vireo-usb-disk1-");
    ASSERT_TRUE(args) << args.error().message;
    EXPECT_EQ(args->nodes.size(), 2u);
    EXPECT_EQ(args->device["driver"], "usb-storage");
    EXPECT_EQ(args->device["bus"], "usb.0");
    EXPECT_EQ(args->device["port"], placed->info.address.port);
    EXPECT_EQ(args->device["id"], placed->info.alias);
}

// -chardev option strings as chardev-add's backends.
TEST(HotplugArgs, ChardevOptionsBecomeQmpBackends) {
    auto unix_sock = qemu::chardev_json("socket,id=charchannel0,path=/run/a,,b/org.qemu.guest_agent.0,server=on,wait=off");
    ASSERT_TRUE(unix_sock) << unix_sock.error().message;
    EXPECT_EQ(*unix_sock, nlohmann::json::parse(R"({"id":"charchannel0","backend":{"type":"socket","data":{
        "addr":{"type":"unix","data":{"path":"/run/a,b/org.qemu.guest_agent.0"}},"server":true,"wait":false}}})"));
    auto connect = qemu::chardev_json("socket,id=c1,host=127.0.0.1,port=4555,telnet=on");
    ASSERT_TRUE(connect) << connect.error().message;
    EXPECT_EQ((*connect)["backend"]["data"], nlohmann::json::parse(R"({"addr":{"type":"inet","data":{"host":"127.0.0.1",
        "port":"4555"}},"server":false,"telnet":true})"));
    auto pty = qemu::chardev_json("pty,id=charchannel1,logfile=/var/log/x,logappend=on");
    ASSERT_TRUE(pty) << pty.error().message;
    EXPECT_EQ(*pty, nlohmann::json::parse(R"({"id":"charchannel1","backend":{"type":"pty","data":{"logfile":"/var/log/x",
        "logappend":true}}})"));
    auto file = qemu::chardev_json("file,id=c2,path=/tmp/out,append=on");
    ASSERT_TRUE(file) << file.error().message;
    EXPECT_EQ((*file)["backend"], nlohmann::json::parse(R"({"type":"file","data":{"out":"/tmp/out","append":true}})"));
    auto udp = qemu::chardev_json("udp,id=c3,host=10.0.0.1,port=99,localaddr=0.0.0.0,localport=98");
    ASSERT_TRUE(udp) << udp.error().message;
    EXPECT_EQ((*udp)["backend"]["data"]["local"]["data"]["port"], "98");
    // An option with no QMP form is an error, never dropped.
    EXPECT_FALSE(qemu::chardev_json("socket,id=c4,path=/x,reconnect=5"));
    EXPECT_FALSE(qemu::chardev_json("pty"));  // no id
}

// A channel attached gets the port and alias a cold define gives it; its
// arguments are the start path's -chardev (as chardev-add) and its
// virtserialport. A second port of the same name is refused.
TEST(HotplugArgs, ChannelOnTheExistingVirtioSerialController) {
    const std::string base_xml = "<controller type='virtio-serial' index='0'/>"
                                 "<channel type='pty'><target type='virtio' name='org.example.one'/></channel>";
    const std::string agent = "<channel type='unix'><source mode='bind' path='/run/ga.sock'/>"
                              "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>";
    const conf::DomainDef base = domain_with(base_xml);
    auto dev = conf::parse_pluggable_device_xml(agent);
    ASSERT_TRUE(dev) << dev.error().message;
    auto next = conf::with_device_attached(base, *dev);
    ASSERT_TRUE(next) << next.error().message;
    EXPECT_EQ(next->devices.controllers.size(), base.devices.controllers.size());
    const conf::DomainDef cold = domain_with(base_xml + agent);
    const conf::CharDev& placed = next->devices.channels.back();
    EXPECT_EQ(placed.info.alias, "channel1");
    EXPECT_EQ(placed.info.alias, cold.devices.channels.back().info.alias);
    EXPECT_EQ(placed.info.address, cold.devices.channels.back().info.address);
    EXPECT_EQ(placed.info.address.port, "2");

    auto args = qemu::device_hotplug_args(*next, conf::PluggableDevice(placed), {});
    ASSERT_TRUE(args) << args.error().message;
    EXPECT_TRUE(args->objects.empty());
    EXPECT_EQ(args->chardev["id"], "charchannel1");
    EXPECT_EQ(args->chardev["backend"]["type"], "socket");
    EXPECT_EQ(args->chardev["backend"]["data"]["addr"]["data"]["path"], "/run/ga.sock");
    EXPECT_EQ(args->chardev["backend"]["data"]["server"], true);
    EXPECT_EQ(args->device, nlohmann::json::parse(R"({"driver":"virtserialport","bus":"virtio-serial0.0","nr":2,
        "chardev":"charchannel1","id":"channel1","name":"org.qemu.guest_agent.0"})"));

    auto pty = conf::parse_pluggable_device_xml("<channel type='pty'><target type='virtio' name='org.example.two'/></channel>");
    ASSERT_TRUE(pty) << pty.error().message;
    auto with_pty = conf::with_device_attached(base, *pty);
    ASSERT_TRUE(with_pty) << with_pty.error().message;
    auto pty_args = qemu::device_hotplug_args(*with_pty, conf::PluggableDevice(with_pty->devices.channels.back()), {});
    ASSERT_TRUE(pty_args) << pty_args.error().message;
    EXPECT_EQ(pty_args->chardev["backend"]["type"], "pty");

    // The same port name twice: refused, the definition unchanged.
    auto dup = conf::parse_pluggable_device_xml("<channel type='unix'><target type='virtio' name='org.example.one'/></channel>");
    ASSERT_TRUE(dup) << dup.error().message;
    auto refused = conf::with_device_attached(base, *dup);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("chardev already exists"), std::string::npos) << refused.error().message;
    // The detach document finds the channel by its port name.
    auto found = conf::find_device_for_detach(*next, *dev);
    ASSERT_TRUE(found) << found.error().message;
    EXPECT_EQ(*found, 1u);
}
