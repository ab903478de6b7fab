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
