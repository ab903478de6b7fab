// A guest with the devices virt-install gives an ordinary desktop guest
// (SPICE, its agent channel, USB redirection, QXL, ich9 sound, virtio-rng,
// i6300esb, pvpanic, the guest agent's channel, SMBIOS tables), end to end
// through the CLI and a real session daemon on QEMU/TCG: it starts, its live
// XML shows what QEMU was given and passes libvirt's schema, domdisplay
// answers, a screenshot shows the text the guest printed, send-key reaches
// the guest's keyboard. One booted guest serves every check (TCG is slow).
#include <gtest/gtest.h>

#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <thread>

#include "helpers.hpp"
#include "support/guest.hpp"
#include "support/session_cli.hpp"
#include "util/files.hpp"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kDevices = R"(
    <channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>
    <input type='tablet' bus='usb'/>
    <graphics type='spice' port='-1' tlsPort='-1' autoport='yes'><image compression='off'/></graphics>
    <sound model='ich9'/>
    <video><model type='qxl'/></video>
    <redirdev bus='usb' type='spicevmc'/>
    <redirdev bus='usb' type='spicevmc'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <watchdog model='i6300esb' action='reset'/>
    <panic model='isa'/>)";

constexpr std::string_view kSysinfo = R"(<sysinfo type='smbios'>
    <system><entry name='manufacturer'>Vireo Project</entry><entry name='product'>DisplayGuest</entry></system>
  </sysinfo>
  <os>)";

// The distinct pixel values of an 8-bit RGB / RGBA / grey PNG (QEMU's
// screendump writes RGB); nullopt when it is not one.
std::optional<std::set<std::uint32_t>> png_colours(const std::string& png) {
    auto be32 = [&](std::size_t at) {
        return (std::uint32_t(std::uint8_t(png[at])) << 24) | (std::uint32_t(std::uint8_t(png[at + 1])) << 16) |
               (std::uint32_t(std::uint8_t(png[at + 2])) << 8) | std::uint32_t(std::uint8_t(png[at + 3]));
    };
    if (png.size() < 33 || !png.starts_with("\x89PNG\r\n\x1a\n")) return std::nullopt;
    const std::uint32_t width = be32(16), height = be32(20);
    const int depth = std::uint8_t(png[24]), type = std::uint8_t(png[25]), interlace = std::uint8_t(png[28]);
    const std::size_t bpp = type == 2 ? 3 : type == 6 ? 4 : type == 0 ? 1 : 0;
    if (depth != 8 || bpp == 0 || interlace != 0) return std::nullopt;
    std::string idat;
    for (std::size_t at = 8; at + 12 <= png.size();) {
        const std::uint32_t len = be32(at);
        if (png.compare(at + 4, 4, "IDAT") == 0) idat += png.substr(at + 8, len);
        at += 12 + len;
    }
    const std::size_t stride = width * bpp;
    std::string raw(height * (stride + 1), '\0');
    uLongf size = raw.size();
    if (uncompress(reinterpret_cast<Bytef*>(raw.data()), &size, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) != Z_OK ||
        size != raw.size())
        return std::nullopt;
    std::vector<std::uint8_t> prev(stride, 0), line(stride);
    std::set<std::uint32_t> colours;
    for (std::uint32_t y = 0; y < height; ++y) {
        const auto* in = reinterpret_cast<const std::uint8_t*>(raw.data()) + y * (stride + 1);
        const int filter = in[0];
        for (std::size_t x = 0; x < stride; ++x) {
            const int a = x >= bpp ? line[x - bpp] : 0, b = prev[x], c = x >= bpp ? prev[x - bpp] : 0;
            int pred = 0;
            if (filter == 1) pred = a;
            else if (filter == 2) pred = b;
            else if (filter == 3) pred = (a + b) / 2;
            else if (filter == 4) {
                const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
                pred = (pa <= pb && pa <= pc) ? a : pb <= pc ? b : c;
            }
            line[x] = static_cast<std::uint8_t>(in[1 + x] + pred);
        }
        for (std::size_t x = 0; x < stride; x += bpp) {
            std::uint32_t v = 0;
            for (std::size_t k = 0; k < bpp; ++k) v = (v << 8) | line[x + k];
            colours.insert(v);
        }
        prev = line;
    }
    return colours;
}

using QemuCliDisplay = SessionGuestTest;

TEST_F(QemuCliDisplay, DesktopGuestStartsShowsItsDevicesAndTakesKeysAndScreenshots) {
    std::string xml = qemu::test::guest_xml("desktop", std::string(kDevices));
    xml.replace(xml.find("<os>"), 4, kSysinfo);
    xml.replace(xml.find("</os>"), 5, "<smbios mode='sysinfo'/></os>");
    const std::string file = (dir_ / "desktop.xml").string();
    std::ofstream(file) << xml;
    ASSERT_EQ(vireo({"define", file}).exit_code, 0);
    auto started = vireo({"start", "desktop"});
    ASSERT_EQ(started.exit_code, 0) << started.err;

    // The live XML: the SPICE port autoport chose, the agent channels'
    // paths and states, aliases; libvirt's schema accepts it.
    auto live = vireo({"dumpxml", "desktop"});
    ASSERT_EQ(live.exit_code, 0) << live.err;
    std::smatch port;
    ASSERT_TRUE(std::regex_search(live.out, port, std::regex("<graphics type='spice' port='(59[0-9][0-9])' autoport='yes'")))
        << live.out;
    EXPECT_NE(live.out.find("domain-1-desktop/org.qemu.guest_agent.0'/>"), std::string::npos) << live.out;
    EXPECT_NE(live.out.find("<target type='virtio' name='org.qemu.guest_agent.0' state='disconnected'/>"), std::string::npos);
    EXPECT_NE(live.out.find("<target type='virtio' name='com.redhat.spice.0' state='disconnected'/>"), std::string::npos);
    for (const char* alias : {"redir0", "redir1", "sound0", "video0", "rng0", "watchdog0", "channel1"})
        EXPECT_NE(live.out.find(fmt::format("<alias name='{}'/>", alias)), std::string::npos) << alias;
    if (!which("virt-xml-validate").empty()) {
        const std::string live_file = (dir_ / "live.xml").string();
        std::ofstream(live_file) << live.out;
        auto valid = run({"virt-xml-validate", live_file, "domain"});
        EXPECT_EQ(valid.exit_code, 0) << valid.out << valid.err << live.out;
    }
    // The agent's socket exists where the live XML says.
    std::smatch agent;
    ASSERT_TRUE(std::regex_search(live.out, agent, std::regex("<source mode='bind' path='([^']*org.qemu.guest_agent.0)'/>")));
    EXPECT_TRUE(std::filesystem::exists(agent[1].str())) << agent[1].str();
    // What QEMU was given (its command line in the domain log).
    auto cmdline = files::read(dir_ / "cache" / "qemu" / "log" / "desktop.log");
    ASSERT_TRUE(cmdline) << cmdline.error().message;
    for (const char* arg : {"-spice", "usb-redir", "usb-hub", "qxl-vga", "ich9-intel-hda", "hda-duplex", "i6300esb",
                            "virtio-rng-pci", "spicevmc,id=charchannel1,name=vdagent", "-smbios", "pvpanic"})
        EXPECT_NE(cmdline->find(arg), std::string::npos) << arg;

    // domdisplay / vncdisplay as virsh.
    auto display = vireo({"domdisplay", "desktop"});
    EXPECT_EQ(display.out, fmt::format("spice://127.0.0.1:{}\n", port[1].str())) << display.err;
    EXPECT_EQ(vireo({"domdisplay", "desktop", "--type", "vnc"}).exit_code, 1);
    EXPECT_EQ(vireo({"vncdisplay", "desktop"}).err, "error: Failed to get VNC port. Is this domain using VNC?\n");

    // The guest: booted, its SMBIOS tables are ours.
    auto console = QemuProcess::start(cli_.argv({"console", "desktop"}));
    ASSERT_TRUE(console);
    auto say = [&](const std::string& command, const std::string& expect) {
        const auto deadline = std::chrono::steady_clock::now() + 180s;
        while (std::chrono::steady_clock::now() < deadline) {
            console->send(command + "\n");
            if (console->wait_for(std::regex(expect), 5s)) return true;
        }
        return false;
    };
    ASSERT_TRUE(say("cat /sys/class/dmi/id/product_name", "\nDisplayGuest")) << console->output();
    // Text on the VGA console (tty1), then a screenshot of it: a PNG that
    // is not one flat colour.
    ASSERT_TRUE(say("echo 1 > /proc/sys/kernel/sysrq; for i in 1 2 3 4 5 6 7 8; do echo VIREO SCREEN TEXT $i > /dev/tty1; done; echo tty-$((6*7))",
                    "tty-42"));
    const std::string shot = (dir_ / "shot.png").string();
    auto taken = vireo({"screenshot", "desktop", shot});
    ASSERT_EQ(taken.exit_code, 0) << taken.err;
    EXPECT_EQ(taken.out, fmt::format("Screenshot saved to {}, with type of image/png\n", shot));
    auto png = files::read(shot);
    ASSERT_TRUE(png);
    auto colours = png_colours(*png);
    ASSERT_TRUE(colours) << "not an 8-bit PNG";
    EXPECT_GE(colours->size(), 2u) << "the screenshot is blank";
    auto no_screen = vireo({"screenshot", "desktop", (dir_ / "x.png").string(), "--screen", "3"});
    EXPECT_NE(no_screen.err.find("no screen with ID '3'"), std::string::npos) << no_screen.err;

    // send-key reaches the guest's keyboard: Alt+SysRq+H makes the kernel
    // print its SysRq help on the console.
    auto keys = vireo({"send-key", "desktop", "KEY_LEFTALT", "KEY_SYSRQ", "KEY_H"});
    EXPECT_EQ(keys.exit_code, 0) << keys.err;
    EXPECT_TRUE(console->wait_for(std::regex("sysrq: HELP"), 30s)) << console->output();
    auto bad = vireo({"send-key", "desktop", "--codeset", "xt", "0x90"});
    EXPECT_NE(bad.err.find("cannot translate keycode 144 of xt codeset to qnum keycode"), std::string::npos) << bad.err;
    console->kill();

    // The end of the run frees the channel's directory.
    ASSERT_EQ(vireo({"destroy", "desktop"}).exit_code, 0);
    EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(agent[1].str()).parent_path()));
}

}  // namespace
}  // namespace vireo::test
