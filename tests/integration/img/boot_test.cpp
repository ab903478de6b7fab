// QEMU boots the test guest from a qcow2 overlay that vireo-img created
// over a base; the guest reads the base through it and its writes land in
// the overlay, never in the base.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "storage/image.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

using namespace vireo;
using vireo::test::run;
using vireo::test::TempDir;

namespace {

class Guest {
public:
    explicit Guest(const std::vector<std::string>& argv) {
        int in[2], out[2];
        if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC)) return;
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(in[0], 0);
            ::dup2(out[1], 1);
            ::dup2(out[1], 2);
            std::vector<char*> a;
            for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
            a.push_back(nullptr);
            ::execvp(a[0], a.data());
            ::_exit(127);
        }
        ::close(in[0]);
        ::close(out[1]);
        to_ = in[1];
        from_ = out[0];
    }
    ~Guest() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (to_ >= 0) ::close(to_);
        if (from_ >= 0) ::close(from_);
    }
    // Read console output until `needle` appears (after `from`), or timeout.
    bool wait_for(const std::string& needle, int seconds, size_t from = 0) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
        while (output_.find(needle, from) == std::string::npos) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
            if (left <= 0) return false;
            pollfd p{from_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(std::min<long>(left, 1000))) <= 0) continue;
            char buf[4096];
            ssize_t n = ::read(from_, buf, sizeof buf);
            if (n <= 0) return false;
            output_.append(buf, static_cast<size_t>(n));
        }
        return true;
    }
    void send(const std::string& s) { (void)!::write(to_, s.data(), s.size()); }
    // Stop QEMU the way a host shutdown would (SIGTERM: QEMU flushes and exits).
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 100; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            ::usleep(100000);
        }
    }
    [[nodiscard]] const std::string& output() const { return output_; }

private:
    pid_t pid_ = -1;
    int to_ = -1, from_ = -1;
    std::string output_;
};

}  // namespace

TEST(ImgBoot, GuestBootsFromVireoOverlayAndWritesLandInOverlay) {
    auto kernel = vireo::test::guest_dir() / "vmlinuz";
    auto initrd = vireo::test::guest_dir() / "initrd.img";
    if (!std::filesystem::exists(kernel) || !std::filesystem::exists(initrd)) VIREO_SKIP("test guest not built");
    if (vireo::test::which("qemu-system-x86_64").empty()) VIREO_SKIP("qemu-system-x86_64 not installed");
    TempDir d;
    auto vimg = (vireo::test::bin_dir() / "vireo-img").string();
    {
        std::string raw(1 << 20, '\0');
        std::memcpy(raw.data(), "BASEDATA", 8);
        std::ofstream((d / "seed.raw").string(), std::ios::binary).write(raw.data(), static_cast<long>(raw.size()));
    }
    ASSERT_EQ(run({vimg, "create", "-q", "-f", "qcow2", (d / "base.qcow2").string(), "64M"}).exit_code, 0);
    ASSERT_EQ(run({vimg, "convert", "-n", "-f", "raw", "-O", "qcow2", (d / "seed.raw").string(), (d / "base.qcow2").string()}).exit_code, 0);
    auto cr = run({vimg, "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", (d / "overlay.qcow2").string()});
    ASSERT_EQ(cr.exit_code, 0) << cr.err;

    Guest g({"qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-display", "none", "-monitor", "none",
             "-serial", "stdio", "-no-reboot", "-kernel", kernel.string(), "-initrd", initrd.string(), "-append",
             "console=ttyS0 panic=-1", "-drive",
             "file=" + (d / "overlay.qcow2").string() + ",format=qcow2,if=virtio,cache=writeback"});
    ASSERT_TRUE(g.wait_for("VIREO-GUEST-READY", 300)) << g.output();
    ASSERT_TRUE(g.wait_for("\n", 30, g.output().find("VIREO-GUEST-READY"))) << g.output();
    auto ready = g.output().substr(g.output().find("VIREO-GUEST-READY"));
    ready = ready.substr(0, ready.find('\n'));
    auto disks = ready.substr(ready.find("disks=") + 6);
    disks = "," + disks.substr(0, disks.find(' ')) + ",";
    EXPECT_NE(disks.find(",vda,"), std::string::npos) << ready;
    ASSERT_TRUE(g.wait_for("vireo-guest# ", 60)) << g.output();
    size_t mark = g.output().size();
    g.send("head -c 8 /dev/vda; echo; printf GUESTWROTE | dd of=/dev/vda bs=512 seek=4096 conv=fsync 2>/dev/null; "
           "echo STEP-$((40+2))\n");
    ASSERT_TRUE(g.wait_for("STEP-42", 120, mark)) << g.output();
    EXPECT_NE(g.output().find("BASEDATA", mark), std::string::npos) << "guest did not see the base's data";
    g.stop();

    // The write is in the overlay; the base is untouched.
    auto ov = storage::open_image(d / "overlay.qcow2");
    ASSERT_TRUE(ov) << ov.error().message;
    auto st = (*ov)->block_status(4096 * 512, 512);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->kind, storage::ExtentKind::Data);
    char buf[10];
    ASSERT_TRUE((*ov)->read(4096 * 512, buf, 10));
    EXPECT_EQ(std::string(buf, 10), "GUESTWROTE");
    auto base = storage::open_image(d / "base.qcow2");
    ASSERT_TRUE(base);
    ASSERT_TRUE((*base)->read(4096 * 512, buf, 10));
    EXPECT_EQ(std::string(buf, 10), std::string(10, '\0'));
    if (!vireo::test::which("qemu-img").empty()) {
        auto chk = run({"qemu-img", "check", (d / "overlay.qcow2").string()});
        EXPECT_EQ(chk.exit_code, 0) << chk.out << chk.err;
    }
}

// QEMU runs the test guest on two disks vireo-img encrypted (a LUKS file
// and a qcow2 with encrypt.format=luks), unlocked with the secret from a
// file: the guest reads what vireo-img put there, and vireo-img reads what
// the guest wrote. (vireo's domains have no <encryption>/secret store yet:
// this drives QEMU directly.)
TEST(ImgBoot, GuestRunsOnVireoLuksDisks) {
    auto kernel = vireo::test::guest_dir() / "vmlinuz";
    auto initrd = vireo::test::guest_dir() / "initrd.img";
    if (!std::filesystem::exists(kernel) || !std::filesystem::exists(initrd)) VIREO_SKIP("test guest not built");
    if (vireo::test::which("qemu-system-x86_64").empty()) VIREO_SKIP("qemu-system-x86_64 not installed");
    TempDir d;
    auto vimg = (vireo::test::bin_dir() / "vireo-img").string();
    std::ofstream((d / "key").string()) << "guest disk passphrase";
    const std::string secret = "secret,id=s0,file=" + (d / "key").string();
    {
        std::string raw(8 << 20, '\0');
        std::memcpy(raw.data(), "LUKSDATA", 8);
        std::ofstream((d / "seed.raw").string(), std::ios::binary).write(raw.data(), static_cast<long>(raw.size()));
    }
    auto c1 = run({vimg, "convert", "--object", secret, "-O", "luks", "-o", "key-secret=s0,iter-time=50",
                   (d / "seed.raw").string(), (d / "disk.luks").string()});
    ASSERT_EQ(c1.exit_code, 0) << c1.err;
    auto c2 = run({vimg, "convert", "--object", secret, "-O", "qcow2", "-o",
                   "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=50", (d / "seed.raw").string(),
                   (d / "disk.qcow2").string()});
    ASSERT_EQ(c2.exit_code, 0) << c2.err;

    Guest g({"qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-display", "none", "-monitor", "none",
             "-serial", "stdio", "-no-reboot", "-kernel", kernel.string(), "-initrd", initrd.string(), "-append",
             "console=ttyS0 panic=-1", "-object", secret, "-drive",
             "file=" + (d / "disk.luks").string() + ",format=luks,key-secret=s0,if=virtio,cache=writeback", "-drive",
             "file=" + (d / "disk.qcow2").string() + ",format=qcow2,encrypt.key-secret=s0,if=virtio,cache=writeback"});
    ASSERT_TRUE(g.wait_for("VIREO-GUEST-READY", 300)) << g.output();
    ASSERT_TRUE(g.wait_for("vireo-guest# ", 60)) << g.output();
    size_t mark = g.output().size();
    g.send("head -c 8 /dev/vda; echo; head -c 8 /dev/vdb; echo; "
           "printf GUESTWROTE | dd of=/dev/vda bs=512 seek=4097 conv=fsync 2>/dev/null; "
           "printf GUESTWROTE | dd of=/dev/vdb bs=512 seek=4097 conv=fsync 2>/dev/null; echo STEP-$((40+2))\n");
    ASSERT_TRUE(g.wait_for("STEP-42", 120, mark)) << g.output();
    auto seen = g.output().substr(mark);
    EXPECT_NE(seen.find("LUKSDATA\r\nLUKSDATA"), std::string::npos) << seen;
    g.stop();

    for (const char* opts : {"driver=luks,key-secret=s0,file.filename=", "driver=qcow2,encrypt.key-secret=s0,file.filename="}) {
        std::string disk = (d / (std::string(opts).starts_with("driver=luks") ? "disk.luks" : "disk.qcow2")).string();
        auto out = (d / "back.raw").string();
        std::filesystem::remove(out);
        auto r = run({vimg, "convert", "--object", secret, "--image-opts", opts + disk, "-O", "raw", out});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        auto read = vireo::files::read(out);
        ASSERT_TRUE(read);
        const std::string& back = *read;
        EXPECT_EQ(back.substr(0, 8), "LUKSDATA") << disk;
        EXPECT_EQ(back.substr(4097 * 512, 10), "GUESTWROTE") << disk;
    }
}
