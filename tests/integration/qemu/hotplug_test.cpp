// Disk hotplug on the real test guest under TCG: a virtio disk attached to
// the running guest appears in its /sys/block, the guest writes to it, the
// detach waits for the guest to let it go (the host then reads what it
// wrote); --config changes appear only after a restart; --live --config
// both; bad input changes neither definition.
#include <gtest/gtest.h>

#include "driver/ops/domain.hpp"
#include "helpers.hpp"
#include "support/guest.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::qemu::test;
using std::chrono::seconds;
namespace ops = driver::ops;
namespace fs = std::filesystem;

namespace {

std::string disk_doc(const fs::path& file, const std::string& target, const std::string& serial) {
    return fmt::format("<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/>"
                       "<target dev='{}' bus='virtio'/><serial>{}</serial></disk>",
                       file.string(), target, serial);
}

fs::path make_image(const fs::path& dir, const std::string& name) {
    const fs::path p = dir / name;
    auto r = vireo::test::run({"qemu-img", "create", "-q", "-f", "raw", p.string(), "16M"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return p;
}

// The guest's name (vda, ...) of the virtio disk with `serial`, waiting up
// to `wait_s` seconds for it to appear; "" when it does not. The command is
// longer than the console's line, so its echo wraps past the line run()
// drops: FOU''ND keeps the echo from looking like the answer.
std::string guest_disk(Console& c, const std::string& serial, int wait_s = 60) {
    auto out = c.run(fmt::format("for i in $(seq 1 {}); do for d in /sys/block/vd*; do "
                                 "[ \"$(cat $d/serial 2>/dev/null)\" = {} ] && echo FOU''ND=${{d##*/}} && break 2; done; sleep 1; done",
                                 wait_s, serial),
                     seconds(wait_s + 30));
    if (!out) return "";
    const auto at = out->find("FOUND=");
    if (at == std::string::npos) return "";
    std::string dev = out->substr(at + 6);
    return dev.substr(0, dev.find_first_of("\r\n"));
}

struct Xml {
    std::string live, config;
};

Xml both(GuestFixture& f, const std::string& name) {
    auto live = f.drv->domain_xml(name, false);
    auto config = f.drv->domain_xml(name, true);
    EXPECT_TRUE(live && config);
    return {live.value_or(""), config.value_or("")};
}

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

TEST(QemuHotplug, VirtioDiskLiveAttachWriteDetach) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    f.define_and_start("hp");
    f.wait_ready("hp");
    auto c = f.console("hp");
    const fs::path img = make_image(f.tmp.path(), "hot.raw");

    // Bad input first: a missing source, changing nothing.
    const Xml before = both(f, "hp");
    auto missing = f.drv->call<ops::DomainAttachDevice>(
        {.ref = "hp", .xml = disk_doc(f.tmp.path() / "nope.raw", "vdb", "HPX"), .live = true, .config = true});
    ASSERT_FALSE(missing);
    EXPECT_TRUE(has(missing.error().full_message(), "nope.raw")) << missing.error().full_message();
    EXPECT_EQ(both(f, "hp").live, before.live);
    EXPECT_EQ(both(f, "hp").config, before.config);

    // Live attach: the guest sees the disk and writes to it.
    auto st = f.drv->call<ops::DomainAttachDevice>({.ref = "hp", .xml = disk_doc(img, "vdb", "HP1")});
    ASSERT_TRUE(st) << st.error().full_message();
    Xml after = both(f, "hp");
    EXPECT_TRUE(has(after.live, img.string())) << after.live;
    EXPECT_TRUE(has(after.live, "<alias name='virtio-disk1'/>")) << after.live;
    EXPECT_FALSE(has(after.config, img.string())) << "current = live on a running domain";
    const std::string dev = guest_disk(c, "HP1");
    ASSERT_FALSE(dev.empty()) << "the hotplugged disk never appeared in the guest's /sys/block";
    auto wrote = c.run(fmt::format("echo VIREO-HOTPLUG-WRITE > /tmp/m; dd if=/tmp/m of=/dev/{} bs=512 count=1 conv=sync,fsync "
                                   "2>/dev/null; sync; echo WROTE",
                                   dev),
                       seconds(60));
    ASSERT_TRUE(wrote && has(*wrote, "WROTE")) << wrote.value_or("<no answer>");

    // A taken target and a device the domain does not have: errors, both
    // definitions unchanged.
    const Xml attached = both(f, "hp");
    auto taken = f.drv->call<ops::DomainAttachDevice>({.ref = "hp", .xml = disk_doc(img, "vdb", "HP9"), .live = true});
    ASSERT_FALSE(taken);
    EXPECT_TRUE(has(taken.error().full_message(), "target vdb already exists")) << taken.error().full_message();
    auto unknown = f.drv->call<ops::DomainDetachDeviceAlias>({.ref = "hp", .alias = "virtio-disk9", .live = true});
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, ErrorCode::NotFound);
    auto unknown_cfg = f.drv->call<ops::DomainDetachDevice>(
        {.ref = "hp", .xml = "<disk type='file'><target dev='vdb'/></disk>", .config = true});
    ASSERT_FALSE(unknown_cfg) << "vdb is only in the live definition";
    EXPECT_EQ(both(f, "hp").live, attached.live);
    EXPECT_EQ(both(f, "hp").config, attached.config);

    // Detach: the guest lets it go, the event says so, the host reads
    // what the guest wrote.
    st = f.drv->call<ops::DomainDetachDevice>(
        {.ref = "hp", .xml = "<disk type='file'><target dev='vdb'/></disk>", .live = true, .timeout_ms = 60000});
    ASSERT_TRUE(st) << st.error().full_message();
    EXPECT_TRUE(f.events.wait_for("hp", "DeviceRemoved/virtio-disk1", seconds(5)));
    EXPECT_FALSE(has(both(f, "hp").live, img.string()));
    auto gone = c.run(fmt::format("[ -e /sys/block/{} ] && echo STILL || echo GONE", dev), seconds(30));
    EXPECT_TRUE(gone && has(*gone, "GONE")) << gone.value_or("<no answer>");
    auto data = files::read(img);
    ASSERT_TRUE(data);
    EXPECT_TRUE(has(data->substr(0, 512), "VIREO-HOTPLUG-WRITE"));

    // Attach and detach again: the same alias, new nodes (the old ones were deleted).
    st = f.drv->call<ops::DomainAttachDevice>({.ref = "hp", .xml = disk_doc(img, "vdb", "HP1"), .live = true});
    ASSERT_TRUE(st) << st.error().full_message();
    EXPECT_FALSE(guest_disk(c, "HP1").empty());
    st = f.drv->call<ops::DomainDetachDeviceAlias>({.ref = "hp", .alias = "virtio-disk1", .timeout_ms = 60000});
    ASSERT_TRUE(st) << st.error().full_message();
}

TEST(QemuHotplug, ConfigOnlyAfterRestartAndLiveConfigBoth) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    f.define_and_start("hpc");
    f.wait_ready("hpc");
    const fs::path cold = make_image(f.tmp.path(), "cold.raw");
    const fs::path hot = make_image(f.tmp.path(), "hot.raw");

    // --config: the persistent definition only.
    auto st = f.drv->call<ops::DomainAttachDevice>({.ref = "hpc", .xml = disk_doc(cold, "vdb", "COLD1"), .config = true});
    ASSERT_TRUE(st) << st.error().full_message();
    Xml x = both(f, "hpc");
    EXPECT_FALSE(has(x.live, cold.string()));
    EXPECT_TRUE(has(x.config, cold.string()));
    {
        auto c = f.console("hpc");
        auto out = c.run("cat /sys/block/vd*/serial 2>/dev/null; echo END", seconds(30));
        EXPECT_TRUE(out && !has(*out, "COLD1")) << out.value_or("<no answer>");
    }

    // --live --config: both.
    st = f.drv->call<ops::DomainAttachDevice>(
        {.ref = "hpc", .xml = disk_doc(hot, "vdc", "HOT1"), .live = true, .config = true});
    ASSERT_TRUE(st) << st.error().full_message();
    x = both(f, "hpc");
    EXPECT_TRUE(has(x.live, hot.string()));
    EXPECT_TRUE(has(x.config, hot.string()));
    {
        auto c = f.console("hpc");
        EXPECT_FALSE(guest_disk(c, "HOT1").empty());
    }

    // After a restart the guest has both.
    ASSERT_TRUE(f.drv->destroy_domain("hpc", {}));
    ASSERT_TRUE(f.drv->start_domain("hpc", {}));
    f.wait_ready("hpc", 2);
    auto c = f.console("hpc");
    EXPECT_FALSE(guest_disk(c, "COLD1").empty());
    EXPECT_FALSE(guest_disk(c, "HOT1").empty());

    // --live on a shut-off domain: refused; --config detach works then.
    ASSERT_TRUE(f.drv->destroy_domain("hpc", {}));
    auto live_off = f.drv->call<ops::DomainAttachDevice>({.ref = "hpc", .xml = disk_doc(hot, "vdd", "X"), .live = true});
    ASSERT_FALSE(live_off);
    EXPECT_TRUE(has(live_off.error().full_message(), "domain is not running")) << live_off.error().full_message();
    st = f.drv->call<ops::DomainDetachDevice>({.ref = "hpc", .xml = "<disk type='file'><target dev='vdb'/></disk>"});
    ASSERT_TRUE(st) << st.error().full_message();
    EXPECT_FALSE(has(*f.drv->domain_xml("hpc", true), cold.string()));
}

}  // namespace
