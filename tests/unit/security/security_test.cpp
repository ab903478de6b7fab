// The DAC pieces (labels, id allocation, the owner journal, giving files to
// a guest's identity and back, the access check) and the private /dev list.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "security/dac.hpp"
#include "security/mount_ns.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

namespace vireo::security {
namespace {

namespace fs = std::filesystem;
using vireo::test::TempDir;

TEST(DacLabel, NumericAndNamedLabels) {
    auto id = parse_dac_label("+65536:+65537");
    ASSERT_TRUE(id) << id.error().message;
    EXPECT_EQ(id->uid, 65536u);
    EXPECT_EQ(id->gid, 65537u);
    EXPECT_TRUE(id->groups.empty());
    EXPECT_EQ(label_text(*id), "+65536:+65537");
    auto root = parse_dac_label("root:root");
    ASSERT_TRUE(root);
    EXPECT_EQ(root->uid, 0u);
    auto nobody = parse_dac_label("nobody");  // the user's primary group
    ASSERT_TRUE(nobody);
    EXPECT_EQ(nobody->uid, 65534u);
    EXPECT_EQ(nobody->gid, 65534u);
}

TEST(DacLabel, MissingUserOrGroupIsNamed) {
    auto u = parse_dac_label("no-such-vireo-user:root");
    ASSERT_FALSE(u);
    EXPECT_EQ(u.error().code, ErrorCode::NotFound);
    EXPECT_NE(u.error().message.find("user 'no-such-vireo-user' does not exist"), std::string::npos);
    auto g = parse_dac_label("+70000:no-such-vireo-group");
    ASSERT_FALSE(g);
    EXPECT_NE(g.error().message.find("group 'no-such-vireo-group'"), std::string::npos);
    EXPECT_FALSE(parse_dac_label(""));
}

TEST(SharedAccount, AnExistingAccountOrNumbersAreUsedAsTheyAre) {
    auto nobody = ensure_account("nobody", "");
    ASSERT_TRUE(nobody) << nobody.error().message;
    EXPECT_EQ(nobody->uid, 65534u);
    EXPECT_EQ(nobody->gid, 65534u);
    auto numbers = ensure_account("+70200", "+70201");
    ASSERT_TRUE(numbers) << numbers.error().message;
    EXPECT_EQ(label_text(*numbers), "+70200:+70201");
    auto group_only = ensure_account("", "kvm");
    ASSERT_FALSE(group_only);
    EXPECT_NE(group_only.error().message.find("needs a user too"), std::string::npos);
}

TEST(IdRangeText, ParsesAndRefusesBadRanges) {
    auto r = parse_id_range(kDefaultIdRange);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->first, 65536u);
    EXPECT_EQ(r->last, 98303u);
    EXPECT_FALSE(parse_id_range("0-10"));
    EXPECT_FALSE(parse_id_range("20-10"));
    EXPECT_FALSE(parse_id_range("abc"));
    EXPECT_FALSE(parse_id_range("5-"));
}

TEST(IdAllocator, DefaultRangeClashesWithNoHostAccount) {
    // The documented default must not hand out an id this host's passwd or
    // group names (nobody is 65534, below it).
    IdAllocator a;
    auto id = a.allocate("g");
    ASSERT_TRUE(id);
    EXPECT_GE(*id, 65536u);
}

TEST(IdAllocator, LowestFreeSkippingHostIdsAndHeldOnes) {
    IdAllocator a({100, 104}, [](uid_t id) { return id == 101; });
    EXPECT_EQ(a.allocate("a").value(), 100u);
    EXPECT_EQ(a.allocate("b").value(), 102u);  // 101 is a host account
    EXPECT_EQ(a.owner_of(102).value_or(""), "b");
    a.release(100);
    EXPECT_EQ(a.allocate("c").value(), 100u);
    EXPECT_TRUE(a.reserve(103, "d"));
    EXPECT_TRUE(a.reserve(103, "d"));   // again by the same: fine
    EXPECT_FALSE(a.reserve(103, "e"));  // held by another guest
    EXPECT_EQ(a.allocate("f").value(), 104u);
    auto full = a.allocate("g");
    ASSERT_FALSE(full);
    EXPECT_NE(full.error().message.find("100-104"), std::string::npos);
}

TEST(OwnerJournal, RoundTripsAndRefusesGarbage) {
    OwnerJournal j{70000, 70000, {{"/a b/c.qcow2", 0, 0}, {"/d", 1000, 100}}};
    const std::string text = format_owner_journal(j);
    EXPECT_EQ(text, "given 70000 70000\n0 0 /a b/c.qcow2\n1000 100 /d\n");
    auto back = parse_owner_journal(text);
    ASSERT_TRUE(back);
    ASSERT_EQ(back->records.size(), 2u);
    EXPECT_EQ(back->records[0].path, "/a b/c.qcow2");
    EXPECT_EQ(back->records[1].gid, 100u);
    EXPECT_FALSE(parse_owner_journal("0 0 /x\n"));          // no header
    EXPECT_FALSE(parse_owner_journal("given 1 1\n0 0 x\n"));  // relative path
    EXPECT_FALSE(parse_owner_journal("given 1 1\nzz\n"));
}

bool running_as_root() { return ::geteuid() == 0; }

struct Owner {
    uid_t uid;
    gid_t gid;
};
Owner owner(const fs::path& p) {
    struct stat st{};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return {st.st_uid, st.st_gid};
}

TEST(GiveFiles, GivenAndGivenBackFromTheJournal) {
    if (!running_as_root()) VIREO_SKIP("chown needs root");
    TempDir tmp;
    const fs::path a = tmp / "a.img", b = tmp / "b.img", journal = tmp / "guest.owners";
    ASSERT_TRUE(files::write_atomic(a, "x"));
    ASSERT_TRUE(files::write_atomic(b, "y"));
    ASSERT_EQ(::chown(b.c_str(), 1234, 4321), 0);
    const Identity id{70001, 70001, {}};
    ASSERT_TRUE(give_files({a.string(), b.string()}, id, journal));
    EXPECT_EQ(owner(a).uid, 70001u);
    EXPECT_EQ(owner(b).gid, 70001u);
    // Remembered before the chown, in the journal a restarted daemon reads.
    auto j = parse_owner_journal(files::read(journal).value());
    ASSERT_TRUE(j);
    ASSERT_EQ(j->records.size(), 2u);
    EXPECT_EQ(j->records[1].uid, 1234u);
    // Given again (a second call of the same start): nothing recorded twice.
    ASSERT_TRUE(give_files({a.string()}, id, journal));
    EXPECT_EQ(parse_owner_journal(files::read(journal).value())->records.size(), 2u);
    // Another identity may not take files over from this journal.
    EXPECT_FALSE(give_files({a.string()}, Identity{70002, 70002, {}}, journal));

    ASSERT_TRUE(restore_files(journal));
    EXPECT_EQ(owner(a).uid, 0u);
    EXPECT_EQ(owner(b).uid, 1234u);
    EXPECT_EQ(owner(b).gid, 4321u);
    EXPECT_FALSE(fs::exists(journal));
    EXPECT_TRUE(restore_files(journal));  // nothing left to do
}

TEST(GiveFiles, AFileChownedMeanwhileIsLeftAlone) {
    if (!running_as_root()) VIREO_SKIP("chown needs root");
    TempDir tmp;
    const fs::path a = tmp / "a.img", journal = tmp / "guest.owners";
    ASSERT_TRUE(files::write_atomic(a, "x"));
    ASSERT_TRUE(give_files({a.string()}, Identity{70001, 70001, {}}, journal));
    ASSERT_EQ(::chown(a.c_str(), 555, 555), 0);
    ASSERT_TRUE(restore_files(journal));
    EXPECT_EQ(owner(a).uid, 555u);
}

TEST(GiveFiles, AMissingFileIsNamedAndNothingIsChanged) {
    if (!running_as_root()) VIREO_SKIP("chown needs root");
    TempDir tmp;
    const fs::path a = tmp / "a.img", journal = tmp / "guest.owners";
    ASSERT_TRUE(files::write_atomic(a, "x"));
    auto r = give_files({a.string(), (tmp / "missing.img").string()}, Identity{70001, 70001, {}}, journal);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("missing.img"), std::string::npos);
    EXPECT_EQ(owner(a).uid, 0u);
    EXPECT_FALSE(fs::exists(journal));
}

TEST(CheckAccess, NamesTheFileTheIdentityCannotOpen) {
    if (!running_as_root()) VIREO_SKIP("changing credentials needs root");
    TempDir tmp;
    ::chmod(tmp.path().c_str(), 0755);
    const fs::path open_file = tmp / "open.img", closed = tmp / "closed.img";
    ASSERT_TRUE(files::write_atomic(open_file, "x", 0644));
    ASSERT_TRUE(files::write_atomic(closed, "x", 0600));
    const Identity id{70003, 70003, {}};
    EXPECT_TRUE(check_access(id, {{open_file.string(), false, "kernel"}}));
    auto w = check_access(id, {{open_file.string(), true, "disk 'vda'"}});
    ASSERT_FALSE(w);
    EXPECT_NE(w.error().message.find("for writing"), std::string::npos);
    auto r = check_access(id, {{open_file.string(), false, "kernel"}, {closed.string(), false, "disk 'vdb'"}});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::PermissionDenied);
    EXPECT_NE(r.error().message.find("disk 'vdb': the QEMU user +70003:+70003 cannot open '" + closed.string() +
                                     "' for reading"),
              std::string::npos)
        << r.error().message;
    ASSERT_EQ(::chown(closed.c_str(), 70003, 70003), 0);
    EXPECT_TRUE(check_access(id, {{closed.string(), true, "disk 'vdb'"}}));
}

TEST(DevEntries, BasicsKvmTunAndWhatTheCommandLineNames) {
    const std::vector<std::string> argv = {
        "/usr/bin/qemu-system-x86_64",
        R"(-blockdev)",
        R"({"driver":"host_device","filename":"/dev/loop7","node-name":"x"})",
        "-object",
        "rng-random,id=objrng0,filename=/dev/hwrng",
        "-chardev",
        "pty,id=charserial0",
        "-drive",
        "file=/tmp/vireo-test.abc/disk,,x.img,format=raw",
        "-kernel",
        "/tmp/vireo-test.abc/vmlinuz",
        "-append",
        "console=ttyS0 root=/dev/vda",  // not a path argument of QEMU's
    };
    auto dev = dev_entries(argv, false, false);
    std::set<std::string> got(dev.begin(), dev.end());
    for (const auto& b : basic_dev_entries()) EXPECT_TRUE(got.contains(b)) << b;
    EXPECT_TRUE(got.contains("/dev/loop7"));
    EXPECT_TRUE(got.contains("/dev/hwrng"));
    EXPECT_TRUE(got.contains("/dev/vda"));  // named after '=': harmless, it does not exist on the host
    EXPECT_FALSE(got.contains("/dev/kvm"));
    EXPECT_FALSE(got.contains("/dev/net/tun"));
    auto with = dev_entries(argv, true, true);
    EXPECT_NE(std::find(with.begin(), with.end(), "/dev/kvm"), with.end());
    EXPECT_NE(std::find(with.begin(), with.end(), "/dev/net/tun"), with.end());

    EXPECT_EQ(paths_named(argv, "/tmp/"),
              (std::vector<std::string>{"/tmp/vireo-test.abc/disk,x.img", "/tmp/vireo-test.abc/vmlinuz"}));
    EXPECT_EQ(tmp_entries(argv), std::vector<std::string>{"/tmp/vireo-test.abc"});
}

TEST(DevEntries, PrepareCopiesNodesAndLeavesOutMissingOptionalOnes) {
    auto setup = MountSetup::prepare({"/dev/null", "/dev/pts", "/dev/net/tun", "/dev/kvm"}, {});
    ASSERT_TRUE(setup) << setup.error().message;
    auto paths = setup->dev_paths();
    EXPECT_NE(std::find(paths.begin(), paths.end(), "/dev/null"), paths.end());
    EXPECT_NE(std::find(paths.begin(), paths.end(), "/dev/pts"), paths.end());
    auto bad = MountSetup::prepare({"/etc/passwd"}, {});
    EXPECT_FALSE(bad);
}

TEST(MountNamespace, APrivateDevHoldsOnlyThePlannedNodes) {
    if (!running_as_root()) VIREO_SKIP("a mount namespace needs root");
    TempDir tmp;
    auto setup = MountSetup::prepare({"/dev/null", "/dev/zero", "/dev/ptmx", "/dev/pts", "/dev/urandom"},
                                     {tmp.path().string()});
    ASSERT_TRUE(setup) << setup.error().message;
    ASSERT_TRUE(files::write_atomic(tmp / "kept", "kept"));
    const fs::path report = tmp / "report";
    const pid_t child = ::fork();
    if (child == 0) {
        const char* step = "";
        int err = setup->enter(&step);
        std::ofstream out(report);
        if (err != 0) {
            out << "error " << step << " " << err << "\n";
            out.close();
            ::_exit(1);
        }
        for (const auto& e : fs::directory_iterator("/dev")) out << e.path().filename().string() << "\n";
        out << "tmp:";
        for (const auto& e : fs::directory_iterator("/tmp")) out << e.path().string() << "\n";
        out << (fs::exists(tmp / "kept") ? "kept-visible" : "kept-missing") << "\n";
        out.close();
        ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    const std::string text = files::read(report).value_or("no report");
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << text;
    for (const char* e : {"null\n", "zero\n", "ptmx\n", "pts\n", "urandom\n", "shm\n", "fd\n"})
        EXPECT_NE(text.find(e), std::string::npos) << e << " in " << text;
    EXPECT_EQ(text.find("kvm\n"), std::string::npos) << text;
    EXPECT_EQ(text.find("vda"), std::string::npos) << text;
    EXPECT_NE(text.find("tmp:" + tmp.path().string() + "\nkept-visible"), std::string::npos) << text;
    // The host's /dev is as it was.
    EXPECT_TRUE(fs::exists("/dev/zero"));
}

}  // namespace
}  // namespace vireo::security
