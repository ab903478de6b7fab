// change-media's definition side: which disk a path names and the medium
// ejected, inserted or updated, with virsh's refusals.
#include <gtest/gtest.h>

#include "qemu/media.hpp"

using namespace vireo;
using qemu::MediaAction;

namespace {

conf::DomainDef domain() {
    auto def = conf::parse_domain_xml(R"(<domain type='qemu'><name>m</name><memory unit='MiB'>128</memory>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<disk type='file' device='disk'><source file='/img/root.qcow2'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='cdrom'><source file='/iso/a.iso' startupPolicy='optional'/><target dev='hdc' bus='ide'/><readonly/></disk>
<disk type='file' device='cdrom'><target dev='hdd' bus='ide'/><readonly/></disk>
</devices></domain>)");
    EXPECT_TRUE(def) << def.error().message;
    return *def;
}

TEST(Media, PathsNameTargetsOrSources) {
    auto def = domain();
    EXPECT_EQ(*qemu::find_media_disk(def, "hdc"), 1u);
    EXPECT_EQ(*qemu::find_media_disk(def, "/iso/a.iso"), 1u);
    EXPECT_EQ(qemu::find_media_disk(def, "vda").error().message, "The disk device 'vda' is not removable");
    EXPECT_EQ(qemu::find_media_disk(def, "sdz").error().message, "No disk found whose source path or target is sdz");
}

TEST(Media, EjectInsertUpdate) {
    auto def = domain();
    auto ejected = qemu::with_media(def, "hdc", MediaAction::Eject, "");
    ASSERT_TRUE(ejected);
    EXPECT_TRUE(ejected->devices.disks[1].source.empty());
    EXPECT_EQ(ejected->devices.disks[1].source.startup_policy, "optional");
    EXPECT_EQ(qemu::with_media(*ejected, "hdc", MediaAction::Eject, "").error().message, "The disk device 'hdc' doesn't have media");

    auto inserted = qemu::with_media(def, "hdd", MediaAction::Insert, "/iso/b.iso");
    ASSERT_TRUE(inserted);
    EXPECT_EQ(inserted->devices.disks[2].source.file, "/iso/b.iso");
    EXPECT_EQ(qemu::with_media(def, "hdc", MediaAction::Insert, "/iso/b.iso").error().message,
              "The disk device 'hdc' already has media");
    EXPECT_EQ(qemu::with_media(def, "hdd", MediaAction::Insert, "").error().message, "No disk source specified for inserting media");

    auto updated = qemu::with_media(def, "/iso/a.iso", MediaAction::Update, "/iso/c.iso");
    ASSERT_TRUE(updated);
    EXPECT_EQ(updated->devices.disks[1].source.file, "/iso/c.iso");
    auto emptied = qemu::with_media(def, "hdc", MediaAction::Update, "");
    ASSERT_TRUE(emptied);
    EXPECT_TRUE(emptied->devices.disks[1].source.empty());
}

TEST(Media, Actions) {
    EXPECT_EQ(*qemu::parse_media_action("eject"), MediaAction::Eject);
    EXPECT_EQ(*qemu::parse_media_action(""), MediaAction::Update);
    EXPECT_FALSE(qemu::parse_media_action("spin"));
}

}  // namespace
