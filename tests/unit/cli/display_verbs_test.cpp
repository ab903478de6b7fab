// domdisplay, vncdisplay, screenshot and send-key against test:///default,
// worded as virsh's (checked against virsh on libvirt's test driver).
#include <gtest/gtest.h>

#include <fstream>

#include <fmt/format.h>

#include "support/support.hpp"
#include "util/files.hpp"

namespace vireo::test {
namespace {

CommandResult vireo(std::vector<std::string> args) {
    std::vector<std::string> argv{(bin_dir() / "vireo").string(), "-c", "test:///default"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

// A domain "g1" with VNC on 127.0.0.1:5901 (password pw) and SPICE on
// 0.0.0.0:5902, defined and started in the same invocation as `then`
// (whose output ends the result).
CommandResult with_graphics(const TempDir& dir, const std::string& then) {
    const std::string path = (dir / "g1.xml").string();
    std::ofstream(path) << R"(<domain type='qemu'><name>g1</name><memory>65536</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <graphics type='vnc' port='5901' autoport='no' listen='127.0.0.1' passwd='pw'/>
    <graphics type='spice' port='5902' autoport='no' listen='0.0.0.0'/>
  </devices>
</domain>)";
    return vireo({fmt::format("define {}; start g1; {}", path, then)});
}

TEST(CliDisplay, DomdisplayAndVncdisplayAsVirsh) {
    TempDir dir;
    EXPECT_TRUE(with_graphics(dir, "domdisplay g1").out.ends_with("vnc://127.0.0.1:1\n")) << "domdisplay g1";
    EXPECT_TRUE(with_graphics(dir, "domdisplay g1 --include-password").out.ends_with("vnc://:pw@127.0.0.1:1\n")) << "domdisplay g1 --include-password";
    EXPECT_TRUE(with_graphics(dir, "domdisplay g1 --all").out.ends_with("vnc://127.0.0.1:1\nspice://localhost:5902\n\n")) << "domdisplay g1 --all";
    EXPECT_TRUE(with_graphics(dir, "domdisplay g1 --type spice").out.ends_with("spice://localhost:5902\n")) << "domdisplay g1 --type spice";
    EXPECT_TRUE(with_graphics(dir, "vncdisplay g1").out.ends_with("127.0.0.1:1\n\n")) << "vncdisplay g1";
    auto rdp = with_graphics(dir, "domdisplay g1 --type rdp");
    EXPECT_NE(rdp.err.find("error: No graphical display with type 'rdp' found"), std::string::npos) << rdp.err;
    auto none = vireo({"domdisplay", "test"});
    EXPECT_EQ(none.exit_code, 1);
    EXPECT_EQ(none.err, "error: No graphical display found\n");
    auto novnc = vireo({"vncdisplay", "test"});
    EXPECT_EQ(novnc.err, "error: Failed to get VNC port. Is this domain using VNC?\n");
    auto off = vireo({"destroy test; domdisplay test"});
    EXPECT_NE(off.err.find("error: Domain is not running"), std::string::npos) << off.err;
}

TEST(CliDisplay, ScreenshotWritesThePng) {
    TempDir dir;
    const std::string file = (dir / "shot.png").string();
    auto r = vireo({"screenshot", "test", file});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, fmt::format("Screenshot saved to {}, with type of image/png\n", file));
    auto data = files::read(file);
    ASSERT_TRUE(data);
    EXPECT_TRUE(data->starts_with("\x89PNG\r\n\x1a\n"));
    auto bad = vireo({"screenshot", "test", "--file", "/nonexistent/dir/x.png"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_EQ(bad.err, "error: cannot create file /nonexistent/dir/x.png\n");
    auto nosuch = vireo({"screenshot", "nosuch"});
    EXPECT_EQ(nosuch.exit_code, 1);
}

TEST(CliDisplay, SendKeyChecksKeysAsVirsh) {
    auto ok = vireo({"send-key", "test", "KEY_LEFTCTRL", "KEY_LEFTALT", "KEY_DELETE"});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_EQ(ok.out, "\n");
    EXPECT_EQ(vireo({"send-key", "test", "--codeset", "xt", "--holdtime", "50", "0x1e"}).exit_code, 0);
    EXPECT_EQ(vireo({"send-key", "test", "FOO"}).err, "error: invalid keycode: 'FOO'\n");
    EXPECT_EQ(vireo({"send-key", "test", "--codeset", "bar", "1"}).err, "error: unknown codeset: 'bar'\n");
    std::vector<std::string> many{"send-key", "test"};
    for (int i = 1; i <= 17; ++i) many.push_back(std::to_string(i));
    EXPECT_EQ(vireo(many).err, "error: too many keycodes\n");
    auto off = vireo({"destroy test; send-key test KEY_A"});
    EXPECT_NE(off.err.find("is not running"), std::string::npos) << off.err;
}

}  // namespace
}  // namespace vireo::test
