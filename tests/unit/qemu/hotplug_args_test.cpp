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
