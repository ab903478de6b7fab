// libvirt's own clients against vireod's libvirt socket, with no guest:
// Debian's virsh running the pool and volume verbs (output compared with
// what vireo prints over the HTTP API), vol-upload / vol-download round
// trips (byte-identical; a sparse download keeps its holes), and a
// python3-libvirt script (python_client.py) driving domains, events,
// pools, volumes and streams; domain capabilities and virt-install
// defining and starting a guest.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>

#include "libvirt_clients.hpp"

namespace vireo::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kPython = "/usr/bin/python3";  // Debian's, where python3-libvirt is

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::uint64_t allocated(const fs::path& p) {
    struct stat st{};
    if (::stat(p.c_str(), &st) != 0) return 0;
    return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

class LibvirtClients : public LibvirtClientsTest {
protected:
    // The same, for a pool's figures that other writers of the filesystem
    // change between the two calls (allocation, available): those masked.
    void same_pool_figures(const std::vector<std::string>& args) {
        static const std::regex kFigures(R"((Allocation|Available):\s+.*|<(allocation|available) unit='bytes'>\d+<)");
        auto a = virsh(args);
        auto b = vireo(args);
        ASSERT_EQ(a.exit_code, 0) << a.err;
        ASSERT_EQ(b.exit_code, 0) << b.err;
        EXPECT_EQ(std::regex_replace(a.out, kFigures, "$1$2 (masked)"),
                  std::regex_replace(b.out, kFigures, "$1$2 (masked)"));
    }
};

TEST_F(LibvirtClients, VirshPoolAndVolumeVerbsAsVireoPrintsThem) {
    const fs::path target = dir_ / "pool";
    const std::string xml = (dir_ / "pool.xml").string();
    std::ofstream(xml) << "<pool type='dir'><name>p1</name><target><path>" << target.native()
                       << "</path></target></pool>";

    EXPECT_EQ(ok({"pool-define", xml}), "Pool p1 defined from " + xml + "\n\n");
    EXPECT_EQ(ok({"pool-build", "p1"}), "Pool p1 built\n\n");
    EXPECT_TRUE(fs::is_directory(target));
    same({"pool-list", "--all"});
    same({"pool-list", "--inactive"});
    EXPECT_EQ(ok({"pool-start", "p1"}), "Pool p1 started\n\n");
    EXPECT_EQ(ok({"pool-autostart", "p1"}), "Pool p1 marked as autostarted\n\n");
    same({"pool-list", "--all"});
    auto details = ok({"pool-list", "--all", "--details"});
    EXPECT_TRUE(std::regex_search(details, std::regex(R"(\n p1 +running +yes +yes +\d)"))) << details;
    same({"pool-list", "--type", "dir"});
    same_pool_figures({"pool-info", "p1"});
    same_pool_figures({"pool-dumpxml", "p1"});
    same({"pool-uuid", "p1"});

    EXPECT_EQ(ok({"vol-create-as", "p1", "v1", "4M", "--format", "raw"}), "Vol v1 created\n\n");
    same({"vol-list", "p1"});
    same({"vol-list", "--details", "p1"});
    same({"vol-info", "--pool", "p1", "v1"});
    same({"vol-dumpxml", "--pool", "p1", "v1"});
    same({"vol-path", "--pool", "p1", "v1"});
    same({"vol-key", "--pool", "p1", "v1"});
    same({"vol-pool", (target / "v1").string()});
    same({"vol-info", (target / "v1").string()});  // by path alone

    // Errors read as vireo's; a volume not in the pool, after virsh's
    // fallbacks (by key, by path), reads as libvirt's.
    same({"pool-info", "nosuch"});
    auto no_vol = virsh({"vol-info", "--pool", "p1", "nosuch"});
    EXPECT_EQ(no_vol.exit_code, 1);
    EXPECT_NE(no_vol.err.find("error: failed to get vol 'nosuch'"), std::string::npos) << no_vol.err;
    EXPECT_NE(no_vol.err.find("no storage vol with matching path 'nosuch'"), std::string::npos) << no_vol.err;

    // vol-upload then vol-download: the same bytes.
    std::string bytes(3'000'000, '\0');
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131 + i / 4099) & 0xff);
    std::ofstream(dir_ / "up.bin", std::ios::binary) << bytes;
    EXPECT_EQ(ok({"vol-upload", "--pool", "p1", "v1", (dir_ / "up.bin").string()}), "\n");
    EXPECT_EQ(ok({"vol-download", "--pool", "p1", "v1", (dir_ / "down.bin").string()}), "\n");
    const std::string down = slurp(dir_ / "down.bin");
    ASSERT_EQ(down.size(), 4u << 20);  // the whole volume
    EXPECT_TRUE(down.compare(0, bytes.size(), bytes) == 0);
    EXPECT_EQ(down.find_first_not_of('\0', bytes.size()), std::string::npos);
    // Offset and length travel too.
    EXPECT_EQ(ok({"vol-download", "--pool", "p1", "v1", (dir_ / "part.bin").string(), "--offset", "1000",
                  "--length", "5000"}),
              "\n");
    EXPECT_TRUE(slurp(dir_ / "part.bin") == bytes.substr(1000, 5000));

    // Sparse: 64 MiB with two data extents; --sparse upload and download keep the holes.
    {
        std::ofstream f(dir_ / "sparse.bin", std::ios::binary);
        f.seekp(8 << 20);
        f << bytes.substr(0, 1 << 20);
        f.seekp(40 << 20);
        f << bytes.substr(0, 1 << 20);
    }
    fs::resize_file(dir_ / "sparse.bin", 64 << 20);
    EXPECT_EQ(ok({"vol-create-as", "p1", "sp", "64M", "--format", "raw"}), "Vol sp created\n\n");
    EXPECT_EQ(ok({"vol-upload", "--sparse", "--pool", "p1", "sp", (dir_ / "sparse.bin").string()}), "\n");
    EXPECT_LT(allocated(target / "sp"), 8u << 20);
    EXPECT_EQ(ok({"vol-download", "--sparse", "--pool", "p1", "sp", (dir_ / "sparse-down.bin").string()}), "\n");
    EXPECT_TRUE(slurp(dir_ / "sparse-down.bin") == slurp(dir_ / "sparse.bin"));
    EXPECT_LT(allocated(dir_ / "sparse-down.bin"), 8u << 20) << "the holes were written as zeros";

    // Clone (create-xml-from), resize, wipe, delete.
    EXPECT_EQ(ok({"vol-clone", "--pool", "p1", "v1", "v2"}), "Vol v2 cloned from v1\n\n");
    EXPECT_EQ(ok({"vol-download", "--pool", "p1", "v2", (dir_ / "clone.bin").string()}), "\n");
    EXPECT_TRUE(slurp(dir_ / "clone.bin") == down);
    EXPECT_EQ(ok({"vol-resize", "--pool", "p1", "v2", "8M"}), "Size of volume 'v2' successfully changed to 8M\n\n");
    same({"vol-info", "--pool", "p1", "v2"});
    EXPECT_EQ(ok({"vol-wipe", "--pool", "p1", "v2"}), "Vol v2 wiped\n\n");
    EXPECT_EQ(ok({"vol-delete", "--pool", "p1", "v2"}), "Vol v2 deleted\n\n");
    same({"vol-list", "p1"});

    // The read-only socket lists and refuses changes (an upload too).
    auto ro_list = virsh({"vol-list", "p1"}, "libvirt-ro.sock");
    EXPECT_EQ(ro_list.exit_code, 0) << ro_list.err;
    auto ro_up = virsh({"vol-upload", "--pool", "p1", "v1", (dir_ / "up.bin").string()}, "libvirt-ro.sock");
    EXPECT_EQ(ro_up.exit_code, 1);
    EXPECT_NE(ro_up.err.find("operation forbidden: read only access prevents"), std::string::npos) << ro_up.err;
    auto ro_destroy = virsh({"pool-destroy", "p1"}, "libvirt-ro.sock");
    EXPECT_NE(ro_destroy.err.find("operation forbidden"), std::string::npos) << ro_destroy.err;

    // An upload larger than the volume fails with the driver's reason.
    auto too_big = virsh({"vol-upload", "--pool", "p1", "v1", (dir_ / "sparse.bin").string()});
    EXPECT_EQ(too_big.exit_code, 1);
    EXPECT_NE(too_big.err.find("larger than"), std::string::npos) << too_big.err << slurp(dir_ / "vireod.log");

    EXPECT_EQ(ok({"vol-delete", "--pool", "p1", "sp"}), "Vol sp deleted\n\n");
    EXPECT_EQ(ok({"vol-delete", "--pool", "p1", "v1"}), "Vol v1 deleted\n\n");
    EXPECT_EQ(ok({"pool-destroy", "p1"}), "Pool p1 destroyed\n\n");
    EXPECT_EQ(ok({"pool-delete", "p1"}), "Pool p1 deleted\n\n");
    EXPECT_FALSE(fs::exists(target));
    EXPECT_EQ(ok({"pool-undefine", "p1"}), "Pool p1 has been undefined\n\n");
    same({"pool-list", "--all"});
}

TEST_F(LibvirtClients, PythonLibvirtScript) {
    if (!fs::exists(kPython)) VIREO_SKIP("/usr/bin/python3 is not installed");
    if (run({kPython, "-c", "import libvirt"}).exit_code != 0) VIREO_SKIP("python3-libvirt is not installed");
    if (which("qemu-system-x86_64").empty()) VIREO_SKIP("qemu-system-x86_64 is not installed");
    auto r = run({"timeout", "180", kPython, (source_dir() / "tests/integration/rpc/python_client.py").string(), uri(),
                  dir_.path().string()});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err << "\n" << slurp(dir_ / "vireod.log");
    EXPECT_NE(r.out.find("PYTHON-LIBVIRT-OK"), std::string::npos) << r.out << r.err;
}

// virsh domcapabilities (virConnectGetDomainCapabilities) answers vireo's
// document; virt-install, which reads it with the host's capabilities and
// pools, defines and starts a guest from an imported qcow2 disk (an empty
// disk: the guest sits in the firmware, no OS needed), as vireo sees it.
TEST_F(LibvirtClients, VirtInstallImportsAndStartsAGuest) {
    auto caps = virsh({"domcapabilities"});
    ASSERT_EQ(caps.exit_code, 0) << caps.err;
    auto vcaps = vireo({"domcapabilities"});
    ASSERT_EQ(vcaps.exit_code, 0) << vcaps.err;
    auto trimmed = [](std::string s) { return s.erase(s.find_last_not_of('\n') + 1); };
    EXPECT_EQ(trimmed(caps.out), trimmed(vcaps.out));
    EXPECT_NE(caps.out.find("<domainCapabilities>"), std::string::npos) << caps.out;
    auto q35 = virsh({"domcapabilities", "--virttype", "qemu", "--arch", "x86_64", "--machine", "q35"});
    ASSERT_EQ(q35.exit_code, 0) << q35.err;
    EXPECT_NE(q35.out.find("<machine>pc-q35-"), std::string::npos) << q35.out;

    if (!fs::exists("/usr/bin/virt-install")) VIREO_SKIP("virt-install (virtinst) is not installed");
    const fs::path disk = dir_ / "t1.qcow2";
    ASSERT_EQ(run({"qemu-img", "create", "-q", "-f", "qcow2", disk.string(), "64M"}).exit_code, 0);
    auto vi = run({"/usr/bin/virt-install", "--connect", uri(), "--name", "vi1", "--memory", "128", "--vcpus", "1",
                   "--import", "--disk", disk.string(), "--osinfo", "linux2020", "--network", "none", "--graphics",
                   "none", "--noautoconsole"});
    ASSERT_EQ(vi.exit_code, 0) << vi.out << vi.err << slurp(dir_ / "vireod.log");
    EXPECT_NE(vi.out.find("Domain creation completed."), std::string::npos) << vi.out;

    auto state = vireo({"domstate", "vi1"});
    EXPECT_EQ(state.out, "running\n\n") << state.err;
    auto xml = vireo({"dumpxml", "vi1"});
    EXPECT_NE(xml.out.find("<source file='" + disk.string() + "'/>"), std::string::npos) << xml.out;
    EXPECT_NE(xml.out.find("<memory unit='KiB'>131072</memory>"), std::string::npos) << xml.out;
    EXPECT_NE(xml.out.find("libosinfo.org/linux/2020"), std::string::npos) << xml.out;  // virt-install's metadata kept
    // virt-install adds the guest agent's channel for a Linux guest (vireod's
    // version and domain capabilities let it), and vireod gives it its socket.
    EXPECT_TRUE(std::regex_search(xml.out, std::regex("<channel type='unix'>\\s*<source mode='bind' path='[^']+'/>\\s*"
                                                      "<target type='virtio' name='org.qemu.guest_agent.0'")))
        << xml.out;

    EXPECT_EQ(ok({"destroy", "vi1"}), "Domain 'vi1' destroyed\n\n");
    EXPECT_EQ(ok({"undefine", "vi1"}), "Domain 'vi1' has been undefined\n\n");
}

}  // namespace
}  // namespace vireo::test
