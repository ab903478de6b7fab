// change-media on the real test guest under TCG: a cdrom's ISO swapped in a
// running guest through QMP, the guest reading each one, the live XML
// following; and the persistent definition's side; the same through
// update-device with the cdrom's XML.
#include <gtest/gtest.h>

#include "helpers.hpp"
#include "support/guest.hpp"
#include "driver/ops/domain.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::qemu::test;
using std::chrono::seconds;

namespace {

namespace fs = std::filesystem;

// An ISO 9660 image holding marker.txt with `text` (xorriso, as Debian ships it).
fs::path make_iso(const fs::path& dir, const std::string& name, const std::string& text) {
    const fs::path tree = dir / (name + ".d");
    fs::create_directories(tree);
    EXPECT_TRUE(files::write_atomic(tree / "marker.txt", text + "\n"));
    const fs::path iso = dir / (name + ".iso");
    auto r = vireo::test::run({"xorriso", "-as", "mkisofs", "-quiet", "-V", name, "-o", iso.string(), tree.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return iso;
}

constexpr const char* kCdrom =
    "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='{}'/>"
    "<target dev='hdc' bus='ide'/><readonly/></disk>";

std::string read_cd(Console& c) {
    // The guest mounts the medium it finds in the drive, reads the marker, lets go.
    // The kernel notices a changed medium on its next look at the drive:
    // retry the mount for a few seconds.
    auto out = c.run("mkdir -p /mnt/cd; for i in 1 2 3 4 5 6 7 8 9 10; do dd if=/dev/sr0 of=/dev/null bs=2048 count=1 2>/dev/null; "
                     "mount -t iso9660 -o ro /dev/sr0 /mnt/cd 2>/dev/null && break; sleep 1; done; cat /mnt/cd/marker.txt; umount /mnt/cd",
                     seconds(90));
    return out.value_or("<no answer>");
}

Status change_media(GuestFixture& f, const std::string& path, const std::string& action, const std::string& source, bool live,
                    bool config, bool force) {
    return f.drv->call<driver::ops::DomainChangeMedia>(
        {.ref = "cd", .path = path, .action = action, .source = source, .live = live, .config = config, .force = force});
}

TEST(QemuMedia, ChangeMediaSwapsTheIsoTheGuestReads) {
    VIREO_REQUIRE_GUEST();
    if (vireo::test::which("xorriso").empty()) GTEST_SKIP() << "xorriso is not installed (scripts/deps/test-guest.txt)";
    GuestFixture f;
    const fs::path one = make_iso(f.tmp.path(), "one", "FIRST-MEDIUM");
    const fs::path two = make_iso(f.tmp.path(), "two", "SECOND-MEDIUM");
    f.define_and_start("cd", fmt::format(kCdrom, one.string()));
    f.wait_ready("cd");
    auto c = f.console("cd");
    EXPECT_NE(read_cd(c).find("FIRST-MEDIUM"), std::string::npos);

    // update: the second ISO replaces the first.
    auto st = change_media(f, "hdc", "update", two.string(), false, false, false);
    ASSERT_TRUE(st) << st.error().full_message();
    const std::string second = read_cd(c);
    EXPECT_NE(second.find("SECOND-MEDIUM"), std::string::npos) << second;
    auto live = f.drv->domain_xml("cd", false);
    ASSERT_TRUE(live);
    EXPECT_NE(live->find(two.string()), std::string::npos) << *live;

    // eject: no medium, then insert the first one again (by its target).
    st = change_media(f, "hdc", "eject", "", true, false, true);
    ASSERT_TRUE(st) << st.error().full_message();
    live = f.drv->domain_xml("cd", false);
    EXPECT_EQ(live->find(two.string()), std::string::npos) << *live;
    auto again = change_media(f, "hdc", "eject", "", false, false, false);
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().full_message().find("The disk device 'hdc' doesn't have media"), std::string::npos);
    st = change_media(f, "hdc", "insert", one.string(), false, false, false);
    ASSERT_TRUE(st) << st.error().full_message();
    const std::string first = read_cd(c);
    EXPECT_NE(first.find("FIRST-MEDIUM"), std::string::npos) << first;

    // The persistent definition kept the first ISO all along; --config changes it.
    auto inactive = f.drv->domain_xml("cd", true);
    ASSERT_TRUE(inactive);
    EXPECT_NE(inactive->find(one.string()), std::string::npos) << *inactive;
    st = change_media(f, "hdc", "update", two.string(), false, true, false);
    ASSERT_TRUE(st) << st.error().full_message();
    inactive = f.drv->domain_xml("cd", true);
    EXPECT_NE(inactive->find(two.string()), std::string::npos) << *inactive;

    // A disk that is not removable.
    auto vda = change_media(f, "vda", "eject", "", false, false, false);
    ASSERT_FALSE(vda);

    // update-device with the cdrom's document: its <source> is the medium,
    // none ejects; a disk's document is refused.
    auto update = [&](const std::string& doc) {
        return f.drv->call<driver::ops::DomainUpdateDevice>({.ref = "cd", .xml = doc, .live = true});
    };
    st = update(fmt::format(kCdrom, two.string()));
    ASSERT_TRUE(st) << st.error().full_message();
    const std::string updated = read_cd(c);
    EXPECT_NE(updated.find("SECOND-MEDIUM"), std::string::npos) << updated;
    st = update("<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>");
    ASSERT_TRUE(st) << st.error().full_message();
    live = f.drv->domain_xml("cd", false);
    EXPECT_EQ(live->find(two.string()), std::string::npos) << *live;
    auto disk = update("<disk type='file' device='disk'><source file='/x.qcow2'/><target dev='vda' bus='virtio'/></disk>");
    ASSERT_FALSE(disk);
    EXPECT_NE(disk.error().full_message().find("cannot be updated"), std::string::npos) << disk.error().full_message();
}

}  // namespace
