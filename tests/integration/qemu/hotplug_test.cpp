// Disk hotplug on the real test guest under TCG: a virtio disk attached to
// the running guest appears in its /sys/block, the guest writes to it, the
// detach waits for the guest to let it go (the host then reads what it
// wrote); --config changes appear only after a restart; --live --config
// both; bad input changes neither definition.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
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

}  // namespace

