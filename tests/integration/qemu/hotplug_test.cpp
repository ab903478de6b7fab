// Disk hotplug on the real test guest under TCG: a virtio disk attached to
// the running guest appears in its /sys/block, the guest writes to it, the
// detach waits for the guest to let it go (the host then reads what it
// wrote); --config changes appear only after a restart; --live --config
// both; bad input changes neither definition. SCSI and USB disks and
// cdroms, virtio channels (the guest agent's among them) likewise.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <regex>
#include <thread>

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

// How the guest sees each kind: `probe` prints FOU''ND when the device is
// there (waiting up to `wait_s` seconds for `want`).
bool guest_sees(Console& c, const std::string& probe, bool want, int wait_s = 60) {
    auto out = c.run(fmt::format("for i in $(seq 1 {}); do if {}; then F=1; else F=0; fi; [ $F = {} ] && break; sleep 1; done; "
                                 "[ $F = 1 ] && echo FOU''ND=yes || echo FOU''ND=no",
                                 wait_s, probe, want ? 1 : 0),
                     seconds(wait_s + 30));
    return out && has(*out, want ? "FOUND=yes" : "FOUND=no");
}

// Wait up to `timeout` until the domain's event `what` was seen more than
// `before` times.
bool wait_for_another(const GuestFixture& f, const std::string& name, const std::string& what, std::ptrdiff_t before,
                      std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto v = f.events.for_domain(name);
        if (std::count(v.begin(), v.end(), what) > before) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

std::ptrdiff_t times(const GuestFixture& f, const std::string& name, const std::string& what) {
    const auto v = f.events.for_domain(name);
    return std::count(v.begin(), v.end(), what);
}

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
    auto stats_before = f.drv->call<ops::DomainBlockStats>({.ref = "hp", .device = "vdb"});
    ASSERT_TRUE(stats_before) << stats_before.error().full_message();
    auto wrote = c.run(fmt::format("echo VIREO-HOTPLUG-WRITE > /tmp/m; dd if=/tmp/m of=/dev/{} bs=512 count=1 conv=sync,fsync "
                                   "2>/dev/null; sync; echo WROTE",
                                   dev),
                       seconds(60));
    ASSERT_TRUE(wrote && has(*wrote, "WROTE")) << wrote.value_or("<no answer>");

    // domblkstat: the guest's write is in the disk's counters, named by
    // target or by source path, and in the sum over every disk.
    auto stats_after = f.drv->call<ops::DomainBlockStats>({.ref = "hp", .device = "vdb"});
    ASSERT_TRUE(stats_after) << stats_after.error().full_message();
    EXPECT_EQ(stats_after->device, "vdb");
    EXPECT_GE(stats_after->wr_bytes, stats_before->wr_bytes + 512);
    EXPECT_GT(stats_after->wr_req, stats_before->wr_req);
    EXPECT_GT(stats_after->flush_operations, stats_before->flush_operations) << "conv=fsync flushes";
    auto by_path = f.drv->call<ops::DomainBlockStats>({.ref = "hp", .device = img.string()});
    ASSERT_TRUE(by_path) << by_path.error().full_message();
    EXPECT_EQ(by_path->device, "vdb");
    EXPECT_GE(by_path->wr_bytes, stats_after->wr_bytes);
    auto sum = f.drv->call<ops::DomainBlockStats>({.ref = "hp"});
    ASSERT_TRUE(sum) << sum.error().full_message();
    EXPECT_EQ(sum->device, "");
    EXPECT_GE(sum->wr_bytes, stats_after->wr_bytes);
    auto no_disk = f.drv->call<ops::DomainBlockStats>({.ref = "hp", .device = "vdz"});
    ASSERT_FALSE(no_disk);
    EXPECT_EQ(no_disk.error().full_message(), "invalid argument: invalid path: vdz");

    // domblkinfo: the raw image's 16 MiB; a file's allocation and physical
    // size are both what it occupies on the host.
    auto info = f.drv->call<ops::DomainBlockInfo>({.ref = "hp", .device = "vdb"});
    ASSERT_TRUE(info) << info.error().full_message();
    EXPECT_EQ(info->capacity, 16U << 20);
    EXPECT_GT(info->allocation, 0U);
    EXPECT_EQ(info->allocation, info->physical);

    // blockresize: the guest sees the new size (512-byte sectors in its
    // /sys/block), domblkinfo and the image file too.
    auto resized = f.drv->call<ops::DomainBlockResize>({.ref = "hp", .path = "vdb", .size = 32U << 20});
    ASSERT_TRUE(resized) << resized.error().full_message();
    EXPECT_TRUE(guest_sees(c, fmt::format("[ \"$(cat /sys/block/{}/size)\" = 65536 ]", dev), true))
        << "the guest never saw its disk grow to 32 MiB";
    info = f.drv->call<ops::DomainBlockInfo>({.ref = "hp", .device = "vdb"});
    ASSERT_TRUE(info) << info.error().full_message();
    EXPECT_EQ(info->capacity, 32U << 20);
    EXPECT_EQ(fs::file_size(img), 32U << 20);
    auto bad_resize = f.drv->call<ops::DomainBlockResize>({.ref = "hp", .path = "vdz", .size = 32U << 20});
    ASSERT_FALSE(bad_resize);
    EXPECT_EQ(bad_resize.error().full_message(), "invalid argument: disk 'vdz' was not found in the domain config");

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

    // A detach that gives up before the guest lets go (1 ms): reported,
    // the disk stays in the live XML; once the guest releases it, the live
    // XML drops it, device-removed tells, and its nodes are gone (the same
    // alias attaches again with the same node names).
    const auto removed = times(f, "hp", "DeviceRemoved/virtio-disk1");
    st = f.drv->call<ops::DomainDetachDeviceAlias>({.ref = "hp", .alias = "virtio-disk1", .timeout_ms = 1});
    ASSERT_FALSE(st) << "the guest released the disk within 1 ms";
    EXPECT_TRUE(has(st.error().full_message(), "did not release device 'virtio-disk1'")) << st.error().full_message();
    EXPECT_TRUE(f.events.wait_for("hp", "DeviceRemovalFailed/virtio-disk1", seconds(5)));
    EXPECT_TRUE(has(both(f, "hp").live, img.string()));
    EXPECT_TRUE(wait_for_another(f, "hp", "DeviceRemoved/virtio-disk1", removed, seconds(60))) << "the late release was not handled";
    EXPECT_FALSE(has(both(f, "hp").live, img.string()));
    st = f.drv->call<ops::DomainAttachDevice>({.ref = "hp", .xml = disk_doc(img, "vdb", "HP1"), .live = true});
    ASSERT_TRUE(st) << st.error().full_message();
    EXPECT_FALSE(guest_disk(c, "HP1").empty());
    st = f.drv->call<ops::DomainDetachDeviceAlias>({.ref = "hp", .alias = "virtio-disk1", .timeout_ms = 60000});
    ASSERT_TRUE(st) << st.error().full_message();

    // The same for an RNG: its backend object goes (rng0 is free again).
    const std::string rng = "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>";
    for (int round = 0; round < 2; ++round) {
        SCOPED_TRACE(round);
        st = f.drv->call<ops::DomainAttachDevice>({.ref = "hp", .xml = rng, .live = true});
        ASSERT_TRUE(st) << st.error().full_message();
        ASSERT_TRUE(has(both(f, "hp").live, "<alias name='rng0'/>"));
        ASSERT_TRUE(guest_sees(c, "grep -q virtio_rng /sys/class/misc/hw_random/rng_available 2>/dev/null", true));
        const auto rng_removed = times(f, "hp", "DeviceRemoved/rng0");
        st = f.drv->call<ops::DomainDetachDeviceAlias>({.ref = "hp", .alias = "rng0", .live = true, .timeout_ms = 1});
        ASSERT_FALSE(st) << "the guest released the RNG within 1 ms";
        EXPECT_TRUE(has(both(f, "hp").live, "<alias name='rng0'/>"));
        EXPECT_TRUE(wait_for_another(f, "hp", "DeviceRemoved/rng0", rng_removed, seconds(60))) << "the late release was not handled";
        EXPECT_FALSE(has(both(f, "hp").live, "<rng ")) << both(f, "hp").live;
    }
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

// The element `open` ... `close` of `xml` (the first one starting with
// `open`); "" when it has none.
std::string element(const std::string& xml, const std::string& open, const std::string& close) {
    const auto at = xml.find(open);
    if (at == std::string::npos) return "";
    const auto end = xml.find(close, at);
    return end == std::string::npos ? "" : xml.substr(at, end + close.size() - at);
}

struct PluggableCase {
    std::string doc;    // the attach-device document
    std::string open;   // where its element starts in the XML
    std::string close;  // and ends
    std::string alias;  // libvirt's alias for it
    std::string probe;  // a guest shell condition: the device is there
};

TEST(QemuHotplug, RngInputWatchdogLiveAndConfig) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    f.define_and_start("hpd");
    f.wait_ready("hpd");
    auto c = f.console("hpd");
    const std::vector<PluggableCase> cases = {
        {"<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>", "<rng model='virtio'>", "</rng>", "rng0",
         "grep -q virtio_rng /sys/class/misc/hw_random/rng_available 2>/dev/null"},
        {"<rng model='virtio'><backend model='builtin'/></rng>", "<rng model='virtio'>", "</rng>", "rng0",
         "grep -q virtio_rng /sys/class/misc/hw_random/rng_available 2>/dev/null"},
        {"<input type='tablet' bus='virtio'/>", "<input type='tablet' bus='virtio'>", "</input>", "",
         "grep -q 'Virtio Tablet' /proc/bus/input/devices"},
        {"<input type='keyboard' bus='virtio'/>", "<input type='keyboard' bus='virtio'>", "</input>", "",
         "grep -q 'Virtio Keyboard' /proc/bus/input/devices"},
        // Debian's cloud kernel has no USB at all: QEMU's side only (empty probe).
        {"<input type='tablet' bus='usb'/>", "<input type='tablet' bus='usb'>", "</input>", "", ""},
        // The guest's kernel has no i6300esb driver: the PCI device itself (8086:25ab).
        {"<watchdog model='i6300esb' action='poweroff'/>", "<watchdog model='i6300esb'", "</watchdog>", "watchdog0",
         "grep -q 0x25ab /sys/bus/pci/devices/*/device"},
    };
    for (const auto& k : cases) {
        SCOPED_TRACE(k.doc);
        // What a cold define of the same domain with the device gives it.
        auto ref_xml = vireo::test::guest_domain_xml("hpdref", k.doc);
        ASSERT_TRUE(f.drv->define_domain(ref_xml, true)) << "cold define";
        const std::string cold = element(*f.drv->domain_xml("hpdref", true), k.open, k.close);
        ASSERT_TRUE(f.drv->undefine_domain("hpdref", {}));
        ASSERT_FALSE(cold.empty());
        const bool probe = !k.probe.empty();
        if (probe) {
            ASSERT_TRUE(guest_sees(c, k.probe, false, 1)) << "the guest has it before the attach";
        }

        auto st = f.drv->call<ops::DomainAttachDevice>({.ref = "hpd", .xml = k.doc, .live = true});
        ASSERT_TRUE(st) << st.error().full_message();
        Xml x = both(f, "hpd");
        const std::string live = element(x.live, k.open, k.close);
        // The persistent XML shows no alias; otherwise the same element.
        std::string live_unaliased = live;
        if (const auto at = live.find("<alias "); at != std::string::npos)
            live_unaliased.erase(live.rfind('\n', at), live.find("/>", at) + 2 - live.rfind('\n', at));
        EXPECT_EQ(live_unaliased, cold) << "live XML: " << x.live;
        EXPECT_TRUE(element(x.config, k.open, k.close).empty()) << "--live only";
        if (probe) {
            EXPECT_TRUE(guest_sees(c, k.probe, true)) << "the guest never saw it";
        } else {
            std::printf("%s: the test guest's kernel has no USB support, the guest side is not checked\n", k.doc.c_str());
        }
        const auto a = live.find("<alias name='");
        ASSERT_NE(a, std::string::npos) << live;
        const std::string alias = live.substr(a + 13, live.find('\'', a + 13) - a - 13);
        if (!k.alias.empty()) {
            EXPECT_EQ(alias, k.alias);
        }

        // Bad input changes nothing: the same device at its taken address, a
        // taken alias, a second watchdog.
        const auto addr_at = live.find("<address");
        const std::string taken_addr = live.substr(addr_at, live.find("/>", addr_at) + 2 - addr_at);
        const std::string tag = k.open.substr(1, k.open.find(' ') - 1);
        const std::string body = k.doc.ends_with("/>") ? k.doc.substr(0, k.doc.size() - 2) + ">" : k.doc.substr(0, k.doc.rfind("</"));
        for (const std::string& bad : {body + taken_addr + "</" + tag + ">", body + "<alias name='ua-x'/>" + "</" + tag + ">"}) {
            if (bad.find("ua-x") != std::string::npos) {
                ASSERT_TRUE(f.drv->call<ops::DomainAttachDevice>({.ref = "hpd", .xml = bad, .config = true}));
                x = both(f, "hpd");
                auto twice = f.drv->call<ops::DomainAttachDevice>({.ref = "hpd", .xml = bad, .config = true});
                ASSERT_FALSE(twice) << "a taken alias";
                EXPECT_FALSE(twice.error().full_message().empty());
                EXPECT_EQ(both(f, "hpd").config, x.config);
                ASSERT_TRUE(f.drv->call<ops::DomainDetachDevice>({.ref = "hpd", .xml = bad, .config = true}));
                continue;
            }
            x = both(f, "hpd");
            auto refused = f.drv->call<ops::DomainAttachDevice>({.ref = "hpd", .xml = bad, .live = true});
            ASSERT_FALSE(refused) << bad;
            std::printf("refused %s: %s\n", bad.c_str(), refused.error().full_message().c_str());
            EXPECT_EQ(both(f, "hpd").live, x.live);
            EXPECT_EQ(both(f, "hpd").config, x.config);
        }
        if (tag == "watchdog") {
            auto second = f.drv->call<ops::DomainAttachDevice>({.ref = "hpd", .xml = "<watchdog model='i6300esb'/>", .live = true});
            ASSERT_FALSE(second);
            EXPECT_TRUE(has(second.error().full_message(), "domain already has a watchdog")) << second.error().full_message();
            EXPECT_EQ(both(f, "hpd").live, x.live);
        }

        // Detach: by the document, the watchdog by its alias; the guest lets it go.
        st = tag == "watchdog"
                 ? f.drv->call<ops::DomainDetachDeviceAlias>({.ref = "hpd", .alias = alias, .live = true, .timeout_ms = 60000})
                 : f.drv->call<ops::DomainDetachDevice>({.ref = "hpd", .xml = k.doc, .live = true, .timeout_ms = 60000});
        ASSERT_TRUE(st) << st.error().full_message();
        EXPECT_TRUE(f.events.wait_for("hpd", "DeviceRemoved/" + alias, seconds(5)));
        EXPECT_TRUE(element(both(f, "hpd").live, k.open, k.close).empty());
        if (probe) {
            EXPECT_TRUE(guest_sees(c, k.probe, false)) << "the guest still has it";
        }
    }

    // --config only: the persistent definition, where a cold define puts it;
    // a ps2 input cannot be hotplugged.
    auto st = f.drv->call<ops::DomainAttachDevice>({.ref = "hpd", .xml = cases[0].doc, .config = true});
    ASSERT_TRUE(st) << st.error().full_message();
    Xml x = both(f, "hpd");
    EXPECT_FALSE(element(x.config, cases[0].open, cases[0].close).empty());
    EXPECT_TRUE(element(x.live, cases[0].open, cases[0].close).empty());
    auto ps2 = f.drv->call<ops::DomainAttachDevice>({.ref = "hpd", .xml = "<input type='mouse' bus='ps2'/>", .live = true});
    ASSERT_FALSE(ps2);
    EXPECT_TRUE(has(ps2.error().full_message(), "cannot be hot plugged")) << ps2.error().full_message();
    st = f.drv->call<ops::DomainDetachDevice>({.ref = "hpd", .xml = cases[0].doc, .config = true});
    ASSERT_TRUE(st) << st.error().full_message();
    EXPECT_TRUE(element(both(f, "hpd").config, cases[0].open, cases[0].close).empty());
    auto missing = f.drv->call<ops::DomainDetachDevice>({.ref = "hpd", .xml = cases[0].doc, .live = true});
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::NotFound);
}


// The controllers the SCSI, USB and channel hotplugs need (libvirt plugs
// no new controller into a running guest).
const std::string kScsiSerialUsb = "<controller type='scsi' index='0' model='virtio-scsi'/>"
                                   "<controller type='usb' index='0' model='piix3-uhci'/>"
                                   "<controller type='virtio-serial' index='0'/>";

// Whether something listens on the unix socket `path` (QEMU's server end
// of a channel).
bool socket_listens(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(fd);
    return ok;
}

// Whether a QEMU holds the image: a device using it writable takes its
// "write" lock, so qemu-io cannot open it read-write (it only opens it).
bool image_in_use(const fs::path& img) {
    auto r = vireo::test::run({"qemu-io", "-f", "raw", "-c", "quit", img.string()});
    return r.exit_code != 0 && has(r.err, "lock");
}

// The <disk> element of `xml` whose source is `img`; "" when none.
std::string disk_of(const std::string& xml, const fs::path& img) {
    const auto src = xml.find("<source file='" + img.string() + "'");
    if (src == std::string::npos) return "";
    const auto at = xml.rfind("<disk ", src);
    const auto end = xml.find("</disk>", src);
    return at == std::string::npos || end == std::string::npos ? "" : xml.substr(at, end + 7 - at);
}

std::string attr(const std::string& element_xml, const std::string& name) {
    std::smatch m;
    if (!std::regex_search(element_xml, m, std::regex(name + "='([^']*)'"))) return "";
    return m[1];
}

// The persistent XML a cold define of the test guest with `doc` gives.
std::string cold_xml(GuestFixture& f, const std::string& doc) {
    auto xml = vireo::test::guest_domain_xml("hpsref", kScsiSerialUsb + doc);
    EXPECT_TRUE(f.drv->define_domain(xml, true));
    const std::string out = f.drv->domain_xml("hpsref", true).value_or("");
    EXPECT_TRUE(f.drv->undefine_domain("hpsref", {}));
    return out;
}


TEST(QemuHotplug, ScsiUsbDisksCdromsAndChannels) {
    VIREO_REQUIRE_GUEST();
    GuestFixture f;
    f.define_and_start("hps", kScsiSerialUsb);
    f.wait_ready("hps");
    auto c = f.console("hps");
    const fs::path scsi_img = make_image(f.tmp.path(), "scsi.raw");
    const fs::path usb_img = make_image(f.tmp.path(), "usb.raw");
    const fs::path iso = make_image(f.tmp.path(), "cd.raw");
    const bool guest_scsi = guest_sees(c, "[ -d /sys/bus/scsi ] && grep -q virtio_scsi /proc/modules", true, 1);
    if (!guest_scsi) std::printf("the test guest has no virtio_scsi: the SCSI disk is checked on QEMU's side only\n");

    // Refusals first: none changes either definition.
    const Xml before = both(f, "hps");
    auto sata = f.drv->call<ops::DomainAttachDevice>(
        {.ref = "hps", .xml = "<disk type='file' device='cdrom'><target dev='sdz' bus='sata'/></disk>", .live = true, .config = true});
    ASSERT_FALSE(sata);
    EXPECT_TRUE(has(sata.error().full_message(), "disk bus 'sata' cannot be hotplugged.")) << sata.error().full_message();
    auto ide = f.drv->call<ops::DomainAttachDevice>(
        {.ref = "hps", .xml = fmt::format("<disk type='file'><source file='{}'/><target dev='hdb' bus='ide'/></disk>", scsi_img.string()),
         .live = true});
    ASSERT_FALSE(ide);
    EXPECT_TRUE(has(ide.error().full_message(), "disk bus 'ide' cannot be hotplugged.")) << ide.error().full_message();
    auto unknown = f.drv->call<ops::DomainDetachDeviceAlias>({.ref = "hps", .alias = "channel7", .live = true, .config = true});
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, ErrorCode::NotFound);
    EXPECT_EQ(both(f, "hps").live, before.live);
    EXPECT_EQ(both(f, "hps").config, before.config);

    // A SCSI disk: where a cold define puts it; the guest sees it; detach.
    const std::string scsi_doc = fmt::format(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/><target dev='sda' bus='scsi'/></disk>",
        scsi_img.string());
    const std::string scsi_cold = disk_of(cold_xml(f, scsi_doc), scsi_img);
    ASSERT_FALSE(scsi_cold.empty());
    auto st = f.drv->call<ops::DomainAttachDevice>({.ref = "hps", .xml = scsi_doc, .live = true, .config = true});
    ASSERT_TRUE(st) << st.error().full_message();
    Xml x = both(f, "hps");
    const std::string scsi_live = disk_of(x.live, scsi_img);
    EXPECT_TRUE(has(scsi_live, "<alias name='scsi0-0-0-0'/>")) << x.live;
    EXPECT_TRUE(has(scsi_live, "<address type='drive' controller='0' bus='0' target='0' unit='0'/>")) << scsi_live;
    EXPECT_TRUE(has(scsi_cold, "<address type='drive' controller='0' bus='0' target='0' unit='0'/>")) << scsi_cold;
    EXPECT_TRUE(has(x.config, scsi_img.string()));
    EXPECT_TRUE(image_in_use(scsi_img)) << "QEMU does not hold the SCSI disk's image";
    if (guest_scsi) {
        EXPECT_TRUE(guest_sees(c, "ls /sys/block | grep -q '^sd'", true)) << "the SCSI disk never appeared in the guest";
    }
    st = f.drv->call<ops::DomainDetachDeviceAlias>({.ref = "hps", .alias = "scsi0-0-0-0", .live = true, .config = true, .timeout_ms = 60000});
    ASSERT_TRUE(st) << st.error().full_message();
    x = both(f, "hps");
    EXPECT_FALSE(has(x.live, scsi_img.string()));
    EXPECT_FALSE(has(x.config, scsi_img.string()));
    EXPECT_FALSE(image_in_use(scsi_img)) << "the SCSI disk's nodes were not deleted";
    if (guest_scsi) {
        EXPECT_TRUE(guest_sees(c, "ls /sys/block | grep -q '^sd'", false)) << "the guest still has the SCSI disk";
    }

    // SCSI cdroms, empty and with media; the guest sees the drive.
    st = f.drv->call<ops::DomainAttachDevice>(
        {.ref = "hps", .xml = "<disk type='file' device='cdrom'><target dev='sdb' bus='scsi'/><readonly/></disk>", .live = true});
    ASSERT_TRUE(st) << st.error().full_message();
    if (guest_scsi) {
        EXPECT_TRUE(guest_sees(c, "[ -e /sys/block/sr0 ]", true)) << "the SCSI cdrom never appeared in the guest";
    }
    st = f.drv->call<ops::DomainAttachDevice>(
        {.ref = "hps",
         .xml = fmt::format("<disk type='file' device='cdrom'><source file='{}'/><target dev='sdc' bus='scsi'/><readonly/></disk>", iso.string()),
         .live = true});
    ASSERT_TRUE(st) << st.error().full_message();
    EXPECT_TRUE(has(both(f, "hps").live, iso.string()));
    for (const char* target : {"sdb", "sdc"}) {
        st = f.drv->call<ops::DomainDetachDevice>(
            {.ref = "hps", .xml = fmt::format("<disk device='cdrom'><target dev='{}' bus='scsi'/></disk>", target), .live = true,
             .timeout_ms = 60000});
        ASSERT_TRUE(st) << target << ": " << st.error().full_message();
    }
    EXPECT_FALSE(has(both(f, "hps").live, "<target dev='sdb'"));
    EXPECT_FALSE(has(both(f, "hps").live, iso.string()));
    if (guest_scsi) {
        EXPECT_TRUE(guest_sees(c, "[ -e /sys/block/sr0 ] || [ -e /sys/block/sr1 ]", false)) << "the guest still has a SCSI cdrom";
    }

    // A USB disk: the guest's kernel has no USB; QEMU's side: it holds the
    // image while the disk is there, lets it go after the detach, and the
    // same disk can be attached again (its nodes were deleted).
    std::printf("the test guest's kernel has no USB support: the USB disk is checked on QEMU's side only\n");
    const std::string usb_doc = fmt::format(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/><target dev='sdd' bus='usb'/></disk>",
        usb_img.string());
    for (int round = 0; round < 2; ++round) {
        st = f.drv->call<ops::DomainAttachDevice>({.ref = "hps", .xml = usb_doc, .live = true});
        ASSERT_TRUE(st) << "round " << round << ": " << st.error().full_message();
        const std::string usb_live = disk_of(both(f, "hps").live, usb_img);
        EXPECT_TRUE(has(usb_live, "<address type='usb' bus='0' port='1'/>")) << usb_live;
        EXPECT_TRUE(image_in_use(usb_img)) << "QEMU does not hold the USB disk's image";
        st = f.drv->call<ops::DomainDetachDevice>(
            {.ref = "hps", .xml = "<disk type='file'><target dev='sdd' bus='usb'/></disk>", .live = true, .timeout_ms = 60000});
        ASSERT_TRUE(st) << st.error().full_message();
        EXPECT_FALSE(image_in_use(usb_img)) << "the USB disk's nodes were not deleted";
    }
    auto empty_usb_cd = f.drv->call<ops::DomainAttachDevice>(
        {.ref = "hps", .xml = "<disk type='file' device='cdrom'><target dev='sde' bus='usb'/></disk>", .live = true});
    ASSERT_FALSE(empty_usb_cd);
    std::printf("refused: %s\n", empty_usb_cd.error().full_message().c_str());

    // A pty channel: QEMU's pty in the live XML, the alias and port a cold
    // define gives; gone again after the detach.
    const std::string pty_doc = "<channel type='pty'><target type='virtio' name='org.example.pty'/></channel>";
    const std::string pty_cold = element(cold_xml(f, pty_doc), "<channel type='pty'>", "</channel>");
    st = f.drv->call<ops::DomainAttachDevice>({.ref = "hps", .xml = pty_doc, .live = true});
    ASSERT_TRUE(st) << st.error().full_message();
    std::string pty_live = element(both(f, "hps").live, "<channel type='pty'>", "</channel>");
    EXPECT_EQ(attr(pty_live, "port"), attr(pty_cold, "port")) << pty_live << "\n" << pty_cold;
    EXPECT_TRUE(has(pty_live, "<alias name='channel0'/>")) << pty_live;
    const std::string pty_path = attr(pty_live, "path");
    EXPECT_TRUE(pty_path.starts_with("/dev/pts/")) << pty_live;
    EXPECT_TRUE(fs::exists(pty_path)) << pty_path;
    EXPECT_TRUE(guest_sees(c, "grep -qx org.example.pty /sys/class/virtio-ports/*/name", true)) << "the guest never saw the port";

    // A second port of the same name: refused, nothing changed.
    x = both(f, "hps");
    auto dup = f.drv->call<ops::DomainAttachDevice>(
        {.ref = "hps", .xml = "<channel type='unix'><target type='virtio' name='org.example.pty'/></channel>", .live = true, .config = true});
    ASSERT_FALSE(dup);
    EXPECT_TRUE(has(dup.error().full_message(), "chardev already exists")) << dup.error().full_message();
    EXPECT_EQ(both(f, "hps").live, x.live);
    EXPECT_EQ(both(f, "hps").config, x.config);

    // The guest agent's channel: a socket QEMU listens on, qemu-ga in the
    // guest opens the port (the driver sees it connected) and answers.
    const std::string agent_doc = "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>";
    st = f.drv->call<ops::DomainAttachDevice>({.ref = "hps", .xml = agent_doc, .live = true, .config = true});
    ASSERT_TRUE(st) << st.error().full_message();
    x = both(f, "hps");
    const std::string agent_live = element(x.live, "<channel type='unix'>", "</channel>");
    EXPECT_TRUE(has(agent_live, "<alias name='channel1'/>")) << agent_live;
    EXPECT_TRUE(has(agent_live, "port='2'")) << agent_live;
    EXPECT_FALSE(element(x.config, "<channel type='unix'>", "</channel>").empty());
    const std::string sock = attr(agent_live, "path");
    ASSERT_TRUE(sock.ends_with("/org.qemu.guest_agent.0")) << agent_live;
    EXPECT_TRUE(socket_listens(sock)) << "QEMU does not listen on " << sock;
    bool connected = false;
    for (int i = 0; i < 600 && !connected; ++i) {
        connected = has(*f.drv->domain_xml("hps", false), "name='org.qemu.guest_agent.0' state='connected'");
        if (!connected) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(connected) << "the guest agent never connected: " << *f.drv->domain_xml("hps", false);
    if (connected) {
        auto ping = f.drv->call<ops::DomainAgentCommand>({.ref = "hps", .command = R"({"execute":"guest-ping"})", .timeout_s = 30});
        ASSERT_TRUE(ping) << ping.error().full_message();
        EXPECT_TRUE(has(*ping, "\"return\"")) << *ping;
    }

    // Detach both: by alias and by document; QEMU's side goes too.
    st = f.drv->call<ops::DomainDetachDeviceAlias>({.ref = "hps", .alias = "channel1", .live = true, .config = true, .timeout_ms = 60000});
    ASSERT_TRUE(st) << st.error().full_message();
    EXPECT_TRUE(f.events.wait_for("hps", "DeviceRemoved/channel1", seconds(5)));
    st = f.drv->call<ops::DomainDetachDevice>({.ref = "hps", .xml = pty_doc, .live = true, .timeout_ms = 60000});
    ASSERT_TRUE(st) << st.error().full_message();
    x = both(f, "hps");
    EXPECT_TRUE(element(x.live, "<channel", "</channel>").empty()) << x.live;
    EXPECT_TRUE(element(x.config, "<channel", "</channel>").empty()) << x.config;
    EXPECT_FALSE(socket_listens(sock));
    EXPECT_FALSE(fs::exists(sock));
    EXPECT_TRUE(guest_sees(c, "grep -qx org.example.pty /sys/class/virtio-ports/*/name", false)) << "the guest still has the port";
    auto gone = f.drv->call<ops::DomainAgentCommand>({.ref = "hps", .command = R"({"execute":"guest-ping"})"});
    ASSERT_FALSE(gone);
    EXPECT_TRUE(has(gone.error().full_message(), "QEMU guest agent is not configured")) << gone.error().full_message();
}

}  // namespace

