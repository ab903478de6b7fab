// Guest isolation of a system-mode driver (issue 20): each QEMU as its own
// uid/gid, in its own mount namespace with a private /dev and /tmp, under
// QEMU's seccomp sandbox; the guest's disk given to it for the run and
// given back after; what its identity cannot open refused by name.
//
// The QEMUs need not boot their guest for any of this: a started domain
// (its QEMU running, vCPUs on) is enough, and keeps the test short.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <regex>
#include <set>

#include "daemon_process.hpp"
#include "helpers.hpp"
#include "support/guest.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::qemu::test;
namespace fs = std::filesystem;

namespace {

// A raw disk image of 1 MiB.
void make_image(const fs::path& p, unsigned mode = 0644) {
    ASSERT_TRUE(files::write_atomic(p, std::string(1 << 20, '\0'), mode));
}

std::string disk(const fs::path& path, const std::string& dev, bool readonly = false) {
    return fmt::format(R"(<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/>
      <target dev='{}' bus='virtio'/>{}</disk>)",
                       path.string(), dev, readonly ? "<readonly/>" : "");
}

// "Uid:" / "Gid:" / "Seccomp:" / "CapEff:" of /proc/PID/status.
std::string status_field(int pid, const std::string& field) {
    auto text = files::read(fmt::format("/proc/{}/status", pid));
    if (!text) return "";
    auto at = text->find("\n" + field + ":");
    if (at == std::string::npos) return "";
    auto begin = text->find_first_not_of(" \t", at + field.size() + 2);
    return text->substr(begin, text->find('\n', begin) - begin);
}

struct Owner {
    uid_t uid = 0;
    gid_t gid = 0;
};
Owner owner_of(const fs::path& p) {
    struct stat st{};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return {st.st_uid, st.st_gid};
}

std::set<std::string> entries(const fs::path& dir) {
    std::set<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) out.insert(e.path().filename().string());
    return out;
}

// A system-mode driver on the test's directories. Everything below the
// test's temporary directory must be reachable by the guests' QEMU users:
// mkdtemp made it 0700.
std::unique_ptr<qemu::QemuDriver> system_driver(const vireo::test::TempDir& tmp) {
    ::chmod(tmp.path().c_str(), 0755);
    auto cfg = config_in(tmp.path());
    cfg.system_mode = true;
    auto d = qemu::make_qemu_driver(cfg);
    if (!d) {
        ADD_FAILURE() << d.error().full_message();
        return nullptr;
    }
    return std::move(*d);
}

TEST(Isolation, EachGuestHasItsOwnUserNamespaceAndDevAndGetsItsDiskOnlyForTheRun) {
    VIREO_REQUIRE_GUEST();
    vireo::test::TempDir tmp;
    auto drv = system_driver(tmp);
    ASSERT_TRUE(drv);
    // A file of the host's /tmp that no guest's private /tmp may show.
    const fs::path marker = fmt::format("/tmp/vireo-isolation-marker-{}", ::getpid());
    ASSERT_TRUE(files::write_atomic(marker, "host"));
    make_image(tmp / "a.img");
    make_image(tmp / "b.img");
    ASSERT_TRUE(drv->create_domain(guest_xml("iso-a", disk(tmp / "a.img", "vdb")), {}));
    ASSERT_TRUE(drv->create_domain(guest_xml("iso-b", disk(tmp / "b.img", "vdb")), {}));
    const int a = drv->qemu_pid("iso-a"), b = drv->qemu_pid("iso-b");
    ASSERT_GT(a, 0);
    ASSERT_GT(b, 0);

    // Not root, and not each other.
    const std::string uid_a = status_field(a, "Uid"), uid_b = status_field(b, "Uid");
    const unsigned ua = std::stoul(uid_a), ub = std::stoul(uid_b);
    EXPECT_NE(ua, 0u) << uid_a;
    EXPECT_NE(ub, 0u) << uid_b;
    EXPECT_NE(ua, ub);
    EXPECT_EQ(uid_a, fmt::format("{0}\t{0}\t{0}\t{0}", ua)) << "real, effective, saved and fs uid";
    EXPECT_EQ(status_field(a, "Gid"), fmt::format("{0}\t{0}\t{0}\t{0}", ua));
    EXPECT_EQ(status_field(a, "Groups"), "");
    EXPECT_EQ(status_field(a, "CapEff"), "0000000000000000");
    EXPECT_EQ(status_field(a, "CapPrm"), "0000000000000000");
    EXPECT_EQ(status_field(a, "NoNewPrivs"), "1");
    EXPECT_EQ(status_field(a, "Seccomp"), "2");
    EXPECT_EQ(status_field(b, "Seccomp"), "2");

    // Its own mount namespace, with only the basics in /dev (TCG: no kvm;
    // no tap: no net/tun) and a /tmp that keeps only what it uses.
    const auto ns_a = fs::read_symlink(fmt::format("/proc/{}/ns/mnt", a));
    EXPECT_NE(ns_a, fs::read_symlink("/proc/self/ns/mnt"));
    EXPECT_NE(ns_a, fs::read_symlink(fmt::format("/proc/{}/ns/mnt", b)));
    const fs::path root_a = fmt::format("/proc/{}/root", a);
    EXPECT_EQ(entries(root_a / "dev"), (std::set<std::string>{"fd", "full", "null", "ptmx", "pts", "random", "shm",
                                                              "stderr", "stdin", "stdout", "urandom", "zero"}));
    EXPECT_EQ(entries(root_a / "tmp"), std::set<std::string>{tmp.path().filename().string()});
    EXPECT_FALSE(fs::exists(root_a / marker.relative_path()));
    ::unlink(marker.c_str());

    // The disks belong to their guests for the run, as the live XML says.
    EXPECT_EQ(owner_of(tmp / "a.img").uid, ua);
    EXPECT_EQ(owner_of(tmp / "a.img").gid, ua);
    EXPECT_EQ(owner_of(tmp / "b.img").uid, ub);
    auto live = drv->domain_xml("iso-a", false, true);
    ASSERT_TRUE(live);
    EXPECT_NE(live->find(fmt::format("<seclabel type='dynamic' model='dac' relabel='yes'>")), std::string::npos) << *live;
    EXPECT_NE(live->find(fmt::format("<label>+{0}:+{0}</label>", ua)), std::string::npos) << *live;
    auto caps = drv->capabilities_xml();
    ASSERT_TRUE(caps);
    EXPECT_NE(caps->find("<model>dac</model>"), std::string::npos);

    // And it works as that user in there: the guest boots, writes its
    // console (a pty of the host's /dev/pts, a log given to it) and sees
    // its disk.
    std::string console;
    auto ready = wait_file(drv->console_log_path("iso-a"), std::regex(vireo::test::kGuestReadyPattern),
                           std::chrono::seconds(120), &console);
    ASSERT_TRUE(ready) << console;
    EXPECT_EQ((*ready)[3].str(), "vda") << console;  // the guest names its one disk vda

    // Guest a's image is not b's to take, even when b's definition names it.
    ASSERT_TRUE(drv->destroy_domain("iso-b", {}));
    auto stolen = drv->create_domain(guest_xml("iso-c", disk(tmp / "a.img", "vdb")), {});
    ASSERT_FALSE(stolen);
    EXPECT_NE(stolen.error().full_message().find("is in use by domain 'iso-a'"), std::string::npos)
        << stolen.error().full_message();
    EXPECT_EQ(owner_of(tmp / "a.img").uid, ua);

    // Given back after the run.
    ASSERT_TRUE(drv->destroy_domain("iso-a", {}));
    EXPECT_EQ(owner_of(tmp / "a.img").uid, 0u);
    EXPECT_EQ(owner_of(tmp / "a.img").gid, 0u);
    EXPECT_EQ(owner_of(tmp / "b.img").uid, 0u);
    EXPECT_TRUE(files_starting_with(tmp / "run", "iso-").empty());
}

TEST(Isolation, WhatTheGuestsUserCannotOpenIsRefusedByNameAndNothingIsLeftChanged) {
    VIREO_REQUIRE_GUEST();
    vireo::test::TempDir tmp;
    auto drv = system_driver(tmp);
    ASSERT_TRUE(drv);
    make_image(tmp / "mine.img");
    // A read-only disk is never given away: its owner's 0600 keeps it closed.
    make_image(tmp / "secret.img", 0600);
    auto st = drv->create_domain(
        guest_xml("iso-ro", disk(tmp / "mine.img", "vdb") + disk(tmp / "secret.img", "vdc", true)), {});
    ASSERT_FALSE(st);
    const std::string msg = st.error().full_message();
    EXPECT_NE(msg.find("disk 'vdc': the QEMU user +"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cannot open '" + (tmp / "secret.img").string() + "' for reading: Permission denied"),
              std::string::npos)
        << msg;
    EXPECT_EQ(owner_of(tmp / "mine.img").uid, 0u) << "given back";
    EXPECT_TRUE(qemu_pids_for("iso-ro").empty());
    EXPECT_TRUE(files_starting_with(tmp / "run", "iso-ro").empty());

    // A static label naming a user this host does not have; a MAC model.
    auto missing = drv->create_domain(guest_xml("iso-static", "", "",
                                                "<seclabel type='static' model='dac' relabel='yes'>"
                                                "<label>no-such-vireo-user:root</label></seclabel>"),
                                      {});
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().full_message().find("user 'no-such-vireo-user' does not exist"), std::string::npos)
        << missing.error().full_message();
    auto selinux = drv->create_domain(
        guest_xml("iso-selinux", "", "", "<seclabel type='dynamic' model='selinux'/>"), {});
    ASSERT_FALSE(selinux);
    EXPECT_NE(selinux.error().full_message().find("security model 'selinux' is not available on this host"),
              std::string::npos)
        << selinux.error().full_message();

    // A static label that names an identity runs QEMU as it.
    auto fixed = drv->create_domain(guest_xml("iso-fixed", disk(tmp / "mine.img", "vdb"), "",
                                              "<seclabel type='static' model='dac' relabel='yes'>"
                                              "<label>+70123:+70124</label></seclabel>"),
                                    {});
    ASSERT_TRUE(fixed) << fixed.error().full_message();
    const int pid = drv->qemu_pid("iso-fixed");
    EXPECT_EQ(status_field(pid, "Uid"), "70123\t70123\t70123\t70123");
    EXPECT_EQ(status_field(pid, "Gid"), "70124\t70124\t70124\t70124");
    EXPECT_EQ(owner_of(tmp / "mine.img").uid, 70123u);
    // A disk attached to the running guest is given to it too, for the run.
    make_image(tmp / "hot.img");
    auto attached = drv->call<driver::ops::DomainAttachDevice>(
        {.ref = "iso-fixed", .xml = disk(tmp / "hot.img", "vdc"), .live = true});
    ASSERT_TRUE(attached) << attached.error().full_message();
    EXPECT_EQ(owner_of(tmp / "hot.img").uid, 70123u);
    ASSERT_TRUE(drv->destroy_domain("iso-fixed", {}));
    EXPECT_EQ(owner_of(tmp / "mine.img").uid, 0u);
    EXPECT_EQ(owner_of(tmp / "hot.img").uid, 0u);
}

// Through a system daemon and the CLI: dominfo and capabilities say dac and
// the label as virsh does; a daemon killed while the guest runs and started
// again still gives the disk back at the end.
TEST(Isolation, DominfoShowsTheLabelAndARestartedDaemonGivesTheDiskBack) {
    VIREO_REQUIRE_GUEST();
    vireo::test::TempDir dir;
    ::chmod(dir.path().c_str(), 0755);
    make_image(dir / "d.img");
    const fs::path rw = dir / "sock", ro = dir / "sock-ro";
    const std::vector<std::string> args = {"--system", "--driver=qemu", "--timeout", "0", "--socket", rw.native(),
                                           "--ro-socket", ro.native(), "--socket-group", "root", "--log-file",
                                           (dir / "vireod.log").native(), "--config-dir", (dir / "etc/qemu").native(),
                                           "--run-dir", (dir / "run").native()};
    vireo::test::DaemonProcess daemon;
    std::string why;
    ASSERT_TRUE(daemon.start(args, rw, dir / "out", &why)) << why;
    const std::string uri = "qemu+unix:///system?socket=" + rw.native();
    auto vireo_cli = [&](std::vector<std::string> argv) {
        argv.insert(argv.begin(), {(vireo::test::bin_dir() / "vireo").native(), "-c", uri});
        return vireo::test::run(argv);
    };
    ASSERT_TRUE(files::write_atomic(dir / "d.xml", guest_xml("iso-d", disk(dir / "d.img", "vdb"))));
    auto created = vireo_cli({"create", (dir / "d.xml").native()});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    const uid_t uid = owner_of(dir / "d.img").uid;
    EXPECT_GE(uid, 65536u);
    auto info = vireo_cli({"dominfo", "iso-d"});
    ASSERT_EQ(info.exit_code, 0) << info.err;
    EXPECT_NE(info.out.find(fmt::format("Security model: dac\nSecurity DOI:   0\nSecurity label: +{0}:+{0} (enforcing)\n", uid)),
              std::string::npos)
        << info.out;
    auto caps = vireo_cli({"capabilities"});
    EXPECT_NE(caps.out.find("<secmodel>\n      <model>dac</model>\n      <doi>0</doi>\n    </secmodel>"), std::string::npos)
        << caps.out;

    daemon.kill();
    ASSERT_TRUE(daemon.start(args, rw, dir / "out", &why)) << why;
    EXPECT_EQ(owner_of(dir / "d.img").uid, uid) << "still the running guest's";
    auto again = vireo_cli({"dominfo", "iso-d"});
    EXPECT_NE(again.out.find(fmt::format("Security label: +{0}:+{0} (enforcing)", uid)), std::string::npos) << again.out;
    auto destroyed = vireo_cli({"destroy", "iso-d"});
    ASSERT_EQ(destroyed.exit_code, 0) << destroyed.err;
    EXPECT_EQ(owner_of(dir / "d.img").uid, 0u);
    EXPECT_FALSE(fs::exists(dir / "run/iso-d.owners"));
}

}  // namespace
