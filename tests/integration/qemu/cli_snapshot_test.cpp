// Domain snapshots as a user meets them: the vireo CLI against a session
// daemon, one real TCG guest with a qcow2 data disk (vda) its shell writes
// to, and real qemu-img as the oracle of what the image holds.
//
// One guest serves every step (CI time): a shut-off snapshot (image engine),
// undefine refused, snapshots of the running guest with memory (QEMU's
// snapshot jobs), a revert that brings back the disk and the shell's state
// without a reboot, a snapshot deleted in the middle of the tree whose child
// keeps the right parent and stays revertable, what is not supported yet
// refused with nothing changed, and a record left by a killed daemon
// settled by the next one. A second guest takes external disk-only
// snapshots: shut off (image engine) and running (QEMU's blockdev-snapshot
// transaction), checked against qemu-img's backing chain, a revert onto a
// new overlay, a delete that commits, and the refusals.
#include <gtest/gtest.h>

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "support/guest.hpp"
#include "support/session_cli.hpp"
#include "util/files.hpp"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class QemuCliSnapshot : public ::testing::Test {
protected:
    void SetUp() override {
        if (!fs::exists(bin_dir() / "vireod")) VIREO_SKIP("vireod is not built");
        if (which("qemu-img").empty()) VIREO_SKIP("qemu-img is not installed");
        in_use_ = true;
    }
    void TearDown() override {
        if (!in_use_) return;
        cli_.destroy_guests();
        cli_.stop_daemon();
    }

    // Run `command` on the guest's console until `expect` (a regex) shows.
    bool on_console(const std::string& command, const std::string& expect, std::chrono::seconds timeout = 180s) {
        return cli_.on_console("snap", command, expect, timeout, &console_output_);
    }

    // What the guest reads from its disk (page cache dropped, so the
    // image's bytes) and its in-memory shell state (/tmp is RAM).
    bool guest_sees(const std::string& data, const std::string& state) {
        return on_console("sync; echo 3 > /proc/sys/vm/drop_caches; echo \"disk=$(head -c 12 /dev/vda) mem=$(cat /tmp/mark)\"",
                          "disk=" + data + " mem=" + state + "\r?\n");
    }
    bool guest_writes(const std::string& data, const std::string& state) {
        return on_console("printf " + data + " > /dev/vda; sync; echo " + state + " > /tmp/mark; echo wrote-$((40+2))",
                          "wrote-42\r?\n");
    }

    // The snapshot names qemu-img lists in the image (-U: QEMU may hold it).
    std::vector<std::string> image_tags() {
        auto r = run({"qemu-img", "snapshot", "-U", "-l", image_.string()});
        std::vector<std::string> tags;
        for (const auto& line : split_lines(r.out)) {
            std::smatch m;
            static const std::regex row(R"(^\d+\s+(\S+)\s)");
            if (std::regex_search(line, m, row)) tags.push_back(m[1]);
        }
        std::sort(tags.begin(), tags.end());
        return tags;
    }

    CommandResult ok(const std::vector<std::string>& args) {
        auto r = cli_(args);
        EXPECT_EQ(r.exit_code, 0) << "vireo " << fmt::format("{}", fmt::join(args, " ")) << ": " << r.err;
        return r;
    }

    TempDir dir_;
    SessionCli cli_{dir_.path()};
    fs::path image_ = dir_.path() / "data.qcow2";
    bool in_use_ = false;
    std::string console_output_;
};

using Names = std::vector<std::string>;

TEST_F(QemuCliSnapshot, InternalSnapshotsOfOneGuestThroughTheirWholeLife) {
    VIREO_REQUIRE_GUEST();
    ASSERT_EQ(run({"qemu-img", "create", "-q", "-f", "qcow2", image_.string(), "16M"}).exit_code, 0);
    const std::string disk = fmt::format(
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{}'/>"
        "<target dev='vda' bus='virtio'/></disk>",
        image_.string());
    const fs::path xml_file = dir_.path() / "snap.xml";
    std::ofstream(xml_file) << qemu::test::guest_xml("snap", disk);
    ASSERT_EQ(cli_({"define", xml_file.string()}).exit_code, 0);

    // Shut off: the image engine takes it; qemu-img sees it in the image.
    auto r = ok({"snapshot-create-as", "snap", "off1", "before the first boot"});
    EXPECT_EQ(r.out, "Domain snapshot off1 created\n");
    EXPECT_EQ(image_tags(), (Names{"off1"}));
    r = ok({"snapshot-info", "snap", "off1"});
    EXPECT_NE(r.out.find("State:          shutoff\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Location:       internal\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Current:        yes\n"), std::string::npos) << r.out;
    fs::path meta_dir;  // the daemon's metadata of the domain's snapshots
    for (const auto& e : fs::recursive_directory_iterator(dir_.path() / "config"))
        if (e.path().filename() == "off1.xml") meta_dir = e.path().parent_path();
    ASSERT_FALSE(meta_dir.empty());
    r = ok({"snapshot-dumpxml", "snap", "off1"});
    EXPECT_NE(r.out.find("<description>before the first boot</description>"), std::string::npos) << r.out;

    // undefine refuses a domain with snapshots, as virsh.
    r = cli_({"undefine", "snap"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "error: Failed to undefine domain 'snap'\n"
                     "error: Requested operation is not valid: cannot delete inactive domain with 1 snapshots\n");

    // Running, with memory: write A, snapshot, write B, snapshot.
    ASSERT_EQ(cli_({"start", "snap"}).exit_code, 0);
    const auto pids = qemu::test::qemu_pids_for("snap");
    ASSERT_EQ(pids.size(), 1u);
    ASSERT_TRUE(guest_writes("vireo-data-A", "state-A")) << console_output_;
    ok({"snapshot-create-as", "--domain", "snap", "--name", "run1"});
    ASSERT_TRUE(guest_writes("vireo-data-B", "state-B")) << console_output_;
    ok({"snapshot-create-as", "snap", "run2"});
    EXPECT_EQ(image_tags(), (Names{"off1", "run1", "run2"}));
    EXPECT_EQ(ok({"snapshot-parent", "snap", "run2"}).out, "run1\n");
    EXPECT_EQ(ok({"snapshot-list", "snap", "--tree"}).out, "off1\n  |\n  +- run1\n      |\n      +- run2\n        \n");
    EXPECT_EQ(ok({"domstate", "snap"}).out, "running\n\n");

    // Revert to run1: disk and shell state A, the same QEMU, no reboot.
    ok({"snapshot-revert", "snap", "run1"});
    EXPECT_EQ(ok({"domstate", "snap"}).out, "running\n\n");
    EXPECT_EQ(qemu::test::qemu_pids_for("snap"), pids);
    EXPECT_TRUE(guest_sees("vireo-data-A", "state-A")) << console_output_;
    EXPECT_EQ(ok({"snapshot-current", "snap", "--name"}).out, "run1\n");
    r = ok({"snapshot-info", "snap", "--current"});
    EXPECT_NE(r.out.find("Children:       1\n"), std::string::npos) << r.out;

    // Delete run1 in the middle: run2's parent is off1, and it reverts.
    EXPECT_EQ(ok({"snapshot-delete", "snap", "run1"}).out, "Domain snapshot run1 deleted\n");
    EXPECT_EQ(image_tags(), (Names{"off1", "run2"}));
    EXPECT_EQ(ok({"snapshot-parent", "snap", "run2"}).out, "off1\n");
    EXPECT_EQ(ok({"snapshot-list", "snap", "--roots", "--name"}).out, "off1\n");
    EXPECT_EQ(ok({"snapshot-current", "snap", "--name"}).out, "off1\n") << "the current marker moved up";
    ok({"snapshot-revert", "snap", "run2"});
    EXPECT_TRUE(guest_sees("vireo-data-B", "state-B")) << console_output_;

    // Not supported yet: refused, nothing changed.
    for (const auto& args : {Names{"snapshot-create-as", "snap", "q", "--quiesce"},
                             Names{"snapshot-create-as", "snap", "m", "--memspec", "file=/tmp/x"}}) {
        r = cli_(args);
        EXPECT_EQ(r.exit_code, 1) << args[2];
        EXPECT_NE(r.err.find("not supported yet"), std::string::npos) << r.err;
    }
    EXPECT_EQ(ok({"snapshot-list", "snap", "--name"}).out, "off1\nrun2\n");
    EXPECT_EQ(image_tags(), (Names{"off1", "run2"}));

    // The daemon SIGKILLed while it snapshots the running guest: the next
    // one either finds the snapshot in the image and lists it, or finds
    // nothing and lists nothing; the guest runs on either way.
    const auto daemon = files::read(cli_.runtime_dir() / "vireod.pid");
    ASSERT_TRUE(daemon);
    const int pid = std::atoi(daemon->c_str());
    ASSERT_GT(pid, 1);
    auto create = QemuProcess::start(cli_.argv({"snapshot-create-as", "snap", "killed"}));
    ASSERT_TRUE(create) << create.error().message;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!fs::exists(meta_dir / "killed.pending") && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    (void)create->wait_exit(30s);
    for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(50ms);
    const bool kept = ok({"snapshot-list", "snap", "--name"}).out == "killed\noff1\nrun2\n";
    std::fprintf(stderr, "the snapshot cut short by the kill was %s\n", kept ? "kept" : "discarded");
    const auto tags = image_tags();
    EXPECT_EQ(kept, std::find(tags.begin(), tags.end(), "killed") != tags.end()) << "metadata and image agree";
    EXPECT_FALSE(fs::exists(meta_dir / "killed.pending"));
    EXPECT_EQ(ok({"domstate", "snap"}).out, "running\n\n");
    EXPECT_TRUE(guest_sees("vireo-data-B", "state-B")) << console_output_;
    if (kept) ok({"snapshot-delete", "snap", "killed"});
    EXPECT_EQ(image_tags(), (Names{"off1", "run2"}));

    // Back to the shut-off snapshot: the domain stops, the image reverts.
    ok({"snapshot-revert", "snap", "off1"});
    EXPECT_EQ(ok({"domstate", "snap"}).out, "shut off\n\n");
    EXPECT_EQ(ok({"snapshot-current", "snap", "--name"}).out, "off1\n");
    if (!which("qemu-io").empty()) {
        auto bytes = run({"qemu-io", "-f", "qcow2", "-r", "-c", "read -P 0 0 4096", image_.string()});
        EXPECT_EQ(bytes.exit_code, 0) << "off1 held zeros: " << bytes.out << bytes.err;
        EXPECT_EQ(bytes.out.find("Pattern verification failed"), std::string::npos) << bytes.out;
    }

    // --no-metadata: the image has it, the metadata not. delete --metadata
    // and create --redefine: the metadata goes and comes back, the image
    // untouched.
    ok({"snapshot-create-as", "snap", "nometa", "--no-metadata"});
    EXPECT_EQ(image_tags(), (Names{"nometa", "off1", "run2"}));
    EXPECT_EQ(ok({"snapshot-list", "snap", "--name"}).out, "off1\nrun2\n");
    const fs::path run2_xml = dir_.path() / "run2.xml";
    std::ofstream(run2_xml) << ok({"snapshot-dumpxml", "snap", "run2"}).out;
    ok({"snapshot-delete", "snap", "run2", "--metadata"});
    EXPECT_EQ(image_tags(), (Names{"nometa", "off1", "run2"}));
    EXPECT_EQ(ok({"snapshot-list", "snap", "--name"}).out, "off1\n");
    EXPECT_EQ(ok({"snapshot-create", "snap", run2_xml.string(), "--redefine"}).out,
              fmt::format("Domain snapshot run2 created from '{}'\n", run2_xml.string()));
    EXPECT_EQ(ok({"snapshot-parent", "snap", "run2"}).out, "off1\n");
    EXPECT_EQ(ok({"snapshot-current", "snap", "--name"}).out, "off1\n");
    ASSERT_EQ(run({"qemu-img", "snapshot", "-d", "nometa", image_.string()}).exit_code, 0);
    // A name in use is refused, nothing changed.
    r = cli_({"snapshot-create-as", "snap", "off1"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("'off1' already exists"), std::string::npos) << r.err;
    EXPECT_EQ(image_tags(), (Names{"off1", "run2"}));

    // snapshot-edit changes metadata only (the images keep their tags): an
    // unchanged text says so; an edit is redefined; a new name needs
    // --clone (both stay) or --rename (the old one goes), and without either
    // nothing changes; a name with --current makes it current.
    auto edit = [&](std::vector<std::string> args, const std::string& sed) {
        args.insert(args.begin(), "snapshot-edit");
        return run(cli_.argv(args, "EDITOR=sed -i '" + sed + "'"), "n\n");
    };
    r = edit({"snap", "run2"}, "s|</domainsnapshot>|</domainsnapshot>|");
    EXPECT_EQ(r.out, "Snapshot run2 XML configuration not changed.\n") << r.err;
    r = edit({"snap", "run2"}, "s|<name>run2</name>|<name>run2</name><description>edited</description>|");
    EXPECT_EQ(r.out, "Snapshot run2 edited.\n") << r.err;
    EXPECT_NE(ok({"snapshot-dumpxml", "snap", "run2"}).out.find("<description>edited</description>"), std::string::npos);
    r = edit({"snap", "run2"}, "s|<name>run2</name>|<name>run3</name>|");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("Must use --rename or --clone to change run2 to run3"), std::string::npos) << r.err;
    EXPECT_EQ(ok({"snapshot-list", "snap", "--name"}).out, "off1\nrun2\n");
    r = edit({"snap", "run2", "--clone"}, "s|<name>run2</name>|<name>run2b</name>|");
    EXPECT_EQ(r.out, "Snapshot run2 cloned to run2b.\n") << r.err;
    EXPECT_EQ(ok({"snapshot-list", "snap", "--name"}).out, "off1\nrun2\nrun2b\n");
    ok({"snapshot-delete", "snap", "run2b", "--metadata"});
    r = edit({"snap", "run2", "--rename"}, "s|<name>run2</name>|<name>run3</name>|");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(ok({"snapshot-list", "snap", "--name"}).out, "off1\nrun3\n");
    EXPECT_EQ(ok({"snapshot-parent", "snap", "run3"}).out, "off1\n");
    r = edit({"snap", "run3", "--rename", "--current"}, "s|<name>run3</name>|<name>run2</name>|");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(ok({"snapshot-list", "snap", "--name"}).out, "off1\nrun2\n");
    EXPECT_EQ(ok({"snapshot-current", "snap", "--name"}).out, "run2\n");
    r = edit({"snap", "--rename", "--clone"}, "s|x|x|");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("--rename and --clone are mutually exclusive"), std::string::npos) << r.err;
    EXPECT_EQ(image_tags(), (Names{"off1", "run2"}));
    ok({"snapshot-current", "snap", "off1"});

    // A record a killed daemon left (a snapshot being taken: the image got
    // the tag, the metadata was not written yet) and one whose data step
    // never happened: the next daemon commits the first, drops the second.
    cli_.stop_daemon();
    auto text = files::read(meta_dir / "off1.xml");
    ASSERT_TRUE(text);
    auto renamed = [&](const std::string& name) {
        std::string t = *text;
        t.replace(t.find("<name>off1</name>"), 17, "<name>" + name + "</name>");
        return t;
    };
    ASSERT_EQ(run({"qemu-img", "snapshot", "-c", "taken", image_.string()}).exit_code, 0);
    std::ofstream(meta_dir / "taken.pending") << renamed("taken");
    std::ofstream(meta_dir / "never.pending") << renamed("never");
    EXPECT_EQ(ok({"snapshot-list", "snap", "--name"}).out, "off1\nrun2\ntaken\n");
    EXPECT_EQ(ok({"snapshot-current", "snap", "--name"}).out, "taken\n");
    EXPECT_FALSE(fs::exists(meta_dir / "taken.pending"));
    EXPECT_FALSE(fs::exists(meta_dir / "never.pending"));
    EXPECT_EQ(image_tags(), (Names{"off1", "run2", "taken"}));

    // undefine --snapshots-metadata: the domain and its metadata go.
    EXPECT_EQ(ok({"undefine", "snap", "--snapshots-metadata"}).out, "Domain 'snap' has been undefined\n\n");
    EXPECT_FALSE(fs::exists(meta_dir));
}

// The guest-visible first bytes of `image` through its whole backing chain
// (qemu-img convert as the oracle; -U: QEMU may hold it).
std::string image_head(const fs::path& image, const fs::path& scratch, std::size_t n = 12) {
    const fs::path raw = scratch / "head.raw";
    auto r = run({"qemu-img", "convert", "-U", "-O", "raw", image.string(), raw.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto bytes = files::read(raw);
    fs::remove(raw);
    return bytes ? bytes->substr(0, n) : std::string();
}

using qemu::test::backing_chain;

TEST_F(QemuCliSnapshot, ExternalDiskOnlySnapshotsOfAShutOffAndARunningGuest) {
    VIREO_REQUIRE_GUEST();
    if (which("qemu-io").empty()) VIREO_SKIP("qemu-io is not installed");
    ASSERT_EQ(run({"qemu-img", "create", "-q", "-f", "qcow2", image_.string(), "16M"}).exit_code, 0);
    auto disk_xml = [](const fs::path& file) {
        return fmt::format("<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{}'/>"
                           "<target dev='vda' bus='virtio'/></disk>",
                           file.string());
    };
    const fs::path xml_file = dir_.path() / "snap.xml";
    std::ofstream(xml_file) << qemu::test::guest_xml("snap", disk_xml(image_));
    ASSERT_EQ(cli_({"define", xml_file.string()}).exit_code, 0);
    const fs::path other_image = dir_.path() / "other.qcow2";
    ASSERT_EQ(run({"qemu-img", "create", "-q", "-f", "qcow2", other_image.string(), "16M"}).exit_code, 0);
    const fs::path other_xml = dir_.path() / "other.xml";
    std::ofstream(other_xml) << qemu::test::guest_xml("other", disk_xml(other_image));
    ASSERT_EQ(cli_({"define", other_xml.string()}).exit_code, 0);

    // --print-xml: one <disk> per --diskspec, as virsh writes them.
    auto r = ok({"snapshot-create-as", "snap", "p", "--print-xml", "--diskspec", "vda,snapshot=external,file=/x/a.ovl",
                 "--diskspec", "vdb,snapshot=no"});
    EXPECT_EQ(r.out, "<domainsnapshot>\n  <name>p</name>\n  <disks>\n    <disk name='vda' snapshot='external'>\n"
                     "      <source file='/x/a.ovl'/>\n    </disk>\n    <disk name='vdb' snapshot='no'/>\n  </disks>\n"
                     "</domainsnapshot>\n");

    // Shut off: the image engine makes data.off1 (libvirt's default name)
    // on data.qcow2, and the definition points at it.
    const fs::path off1 = dir_.path() / "data.off1";
    EXPECT_EQ(ok({"snapshot-create-as", "snap", "off1", "--disk-only"}).out, "Domain snapshot off1 created\n");
    EXPECT_EQ(backing_chain(off1), (Names{"data.off1", "data.qcow2"}));
    r = ok({"snapshot-dumpxml", "snap", "off1"});
    EXPECT_NE(r.out.find("<state>disk-snapshot</state>"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(fmt::format("<disk name='vda' snapshot='external' type='file'>\n      <driver type='qcow2'/>\n"
                                     "      <source file='{}'/>",
                                     off1.string())),
              std::string::npos)
        << r.out;
    r = ok({"dumpxml", "snap", "--inactive"});
    EXPECT_NE(r.out.find(fmt::format("<source file='{}'/>", off1.string())), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(fmt::format("<backingStore type='file'>\n        <format type='qcow2'/>\n        <source file='{}'/>",
                                     image_.string())),
              std::string::npos)
        << r.out;
    EXPECT_EQ(ok({"snapshot-list", "snap", "--external", "--name"}).out, "off1\n");
    EXPECT_EQ(ok({"snapshot-list", "snap", "--disk-only", "--name"}).out, "off1\n");
    EXPECT_EQ(ok({"snapshot-list", "snap", "--internal", "--name"}).out, "");
    EXPECT_NE(ok({"snapshot-info", "snap", "off1"}).out.find("Location:       external\n"), std::string::npos);

    // Refused, nothing changed: an existing file without --reuse-external, a
    // reused file that is not qcow2, another domain's image, --quiesce, an
    // internal disk in a disk-only snapshot.
    const fs::path raw_file = dir_.path() / "taken.raw";
    ASSERT_EQ(run({"qemu-img", "create", "-q", "-f", "raw", raw_file.string(), "16M"}).exit_code, 0);
    const std::vector<std::pair<Names, std::string>> refusals{
        {{"snapshot-create-as", "snap", "x", "--disk-only", "--diskspec", "vda,file=" + raw_file.string()},
         "external snapshot file for disk vda already exists and is not a block device: " + raw_file.string()},
        {{"snapshot-create-as", "snap", "x", "--disk-only", "--reuse-external", "--diskspec", "vda,file=" + raw_file.string()},
         "is not qcow2"},
        {{"snapshot-create-as", "snap", "x", "--disk-only", "--diskspec", "vda,file=" + other_image.string()},
         "is in use by domain 'other'"},
        {{"snapshot-create-as", "snap", "x", "--disk-only", "--quiesce"}, "not supported yet"},
        {{"snapshot-create-as", "snap", "x", "--disk-only", "--diskspec", "vda,snapshot=internal"}, "cannot be internal"},
    };
    for (const auto& [args, message] : refusals) {
        r = cli_(args);
        EXPECT_EQ(r.exit_code, 1) << fmt::format("{}", fmt::join(args, " "));
        EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    }
    EXPECT_EQ(ok({"snapshot-list", "snap", "--name"}).out, "off1\n");
    EXPECT_FALSE(fs::exists(dir_.path() / "data.x"));
    EXPECT_EQ(run({"qemu-img", "info", "--output=json", raw_file.string()}).out.find("backing"), std::string::npos);

    // Running: A, a disk-only snapshot (QEMU's blockdev-snapshot), B. The
    // frozen data.off1 keeps A, the overlay shows B, qemu-img's chain is the
    // one the XML claims.
    ASSERT_EQ(cli_({"start", "snap"}).exit_code, 0);
    ASSERT_TRUE(guest_writes("vireo-data-A", "state-A")) << console_output_;
    const fs::path run1 = dir_.path() / "data.run1";
    ok({"snapshot-create-as", "snap", "run1", "--disk-only", "--atomic"});
    ASSERT_TRUE(guest_writes("vireo-data-B", "state-B")) << console_output_;
    EXPECT_EQ(ok({"domstate", "snap"}).out, "running\n\n");
    EXPECT_EQ(backing_chain(run1), (Names{"data.run1", "data.off1", "data.qcow2"}));
    r = ok({"dumpxml", "snap"});
    EXPECT_NE(r.out.find(fmt::format("<source file='{}'/>", run1.string())), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(fmt::format("<source file='{}'/>", off1.string())), std::string::npos) << r.out;
    r = ok({"snapshot-dumpxml", "snap", "run1"});
    EXPECT_NE(r.out.find(fmt::format("<source file='{}'/>", run1.string())), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("<parent>\n    <name>off1</name>"), std::string::npos) << r.out;
    EXPECT_EQ(image_head(off1, dir_.path()), "vireo-data-A");
    EXPECT_TRUE(guest_sees("vireo-data-B", "state-B")) << console_output_;
    ok({"destroy", "snap"});
    // The overlay's new clusters are on disk once QEMU is gone.
    EXPECT_EQ(image_head(run1, dir_.path()), "vireo-data-B");
    for (const auto& f : {run1, off1, image_}) {
        auto check = run({"qemu-img", "check", f.string()});
        EXPECT_EQ(check.exit_code, 0) << f << ": " << check.out << check.err;
    }

    // Revert to run1: a new overlay on data.off1 (which stays untouched, so
    // run1 stays revertable); the guest's disk shows A again. data.run1
    // keeps B.
    ok({"snapshot-revert", "snap", "run1"});
    EXPECT_EQ(ok({"domstate", "snap"}).out, "shut off\n\n");
    const fs::path reverted = dir_.path() / "data.run1-revert1";
    EXPECT_EQ(backing_chain(reverted), (Names{"data.run1-revert1", "data.off1", "data.qcow2"}));
    EXPECT_EQ(image_head(reverted, dir_.path()), "vireo-data-A");
    EXPECT_EQ(image_head(run1, dir_.path()), "vireo-data-B");
    EXPECT_NE(ok({"dumpxml", "snap", "--inactive"}).out.find(fmt::format("<source file='{}'/>", reverted.string())),
              std::string::npos);
    EXPECT_EQ(ok({"snapshot-current", "snap", "--name"}).out, "run1\n");

    // Delete: run1's overlay is not the disk's image any more: refused,
    // nothing changed; --metadata drops the metadata, the files stay.
    r = cli_({"snapshot-delete", "snap", "run1"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("is no longer the current image of disk 'vda'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--metadata"), std::string::npos) << r.err;
    EXPECT_EQ(ok({"snapshot-list", "snap", "--name"}).out, "off1\nrun1\n");
    // A leaf whose overlay is the current image of the shut-off domain: its
    // data is committed into the image below, the overlay goes.
    const fs::path last = dir_.path() / "data.last";
    ok({"snapshot-create-as", "snap", "last", "--disk-only"});
    EXPECT_EQ(backing_chain(last), (Names{"data.last", "data.run1-revert1", "data.off1", "data.qcow2"}));
    ASSERT_EQ(run({"qemu-io", "-f", "qcow2", "-c", "write -P 0x43 4096 4096", last.string()}).exit_code, 0);
    r = cli_({"snapshot-delete", "snap", "run1", "--children"});
    EXPECT_EQ(r.exit_code, 1) << "an external snapshot with others at once";
    EXPECT_EQ(ok({"snapshot-delete", "snap", "last"}).out, "Domain snapshot last deleted\n");
    EXPECT_FALSE(fs::exists(last));
    auto bytes = run({"qemu-io", "-f", "qcow2", "-r", "-c", "read -P 0x43 4096 4096", reverted.string()});
    EXPECT_EQ(bytes.out.find("Pattern verification failed"), std::string::npos) << bytes.out << bytes.err;
    EXPECT_EQ(run({"qemu-img", "check", reverted.string()}).exit_code, 0);
    EXPECT_NE(ok({"dumpxml", "snap", "--inactive"}).out.find(fmt::format("<source file='{}'/>", reverted.string())),
              std::string::npos);
    EXPECT_EQ(ok({"snapshot-current", "snap", "--name"}).out, "run1\n");
    ok({"snapshot-delete", "snap", "run1", "--metadata"});
    EXPECT_EQ(ok({"snapshot-list", "snap", "--name"}).out, "off1\n");
    EXPECT_TRUE(fs::exists(run1));
    EXPECT_EQ(image_head(reverted, dir_.path()), "vireo-data-A");

    // snapshot-create from a document naming the file; --no-metadata makes
    // the overlay and keeps no metadata; --reuse-external takes a qcow2 file
    // made beforehand on the disk's image.
    const fs::path custom = dir_.path() / "custom.ovl";
    const fs::path doc = dir_.path() / "ext.xml";
    std::ofstream(doc) << fmt::format("<domainsnapshot><name>fromxml</name><disks><disk name='vda' snapshot='external'>"
                                      "<source file='{}'/></disk></disks></domainsnapshot>",
                                      custom.string());
    EXPECT_EQ(ok({"snapshot-create", "snap", doc.string(), "--disk-only"}).out,
              fmt::format("Domain snapshot fromxml created from '{}'\n", doc.string()));
    EXPECT_EQ(backing_chain(custom), (Names{"custom.ovl", "data.run1-revert1", "data.off1", "data.qcow2"}));
    ok({"snapshot-create-as", "snap", "nm", "--disk-only", "--no-metadata"});
    const fs::path nm = dir_.path() / "custom.nm";
    EXPECT_EQ(backing_chain(nm), (Names{"custom.nm", "custom.ovl", "data.run1-revert1", "data.off1", "data.qcow2"}));
    const fs::path pre = dir_.path() / "pre.qcow2";
    ASSERT_EQ(run({"qemu-img", "create", "-q", "-f", "qcow2", "-b", nm.string(), "-F", "qcow2", pre.string()}).exit_code, 0);
    ok({"snapshot-create-as", "snap", "pre", "--disk-only", "--reuse-external", "--diskspec", "vda,file=" + pre.string()});
    EXPECT_NE(ok({"dumpxml", "snap", "--inactive"}).out.find(fmt::format("<source file='{}'/>", pre.string())), std::string::npos);
    EXPECT_EQ(ok({"snapshot-list", "snap", "--name"}).out, "fromxml\noff1\npre\n");
    EXPECT_EQ(ok({"snapshot-parent", "snap", "pre"}).out, "fromxml\n");
    // A reused file backed by another image, or one of the disk's chain, is refused.
    const fs::path elsewhere = dir_.path() / "elsewhere.qcow2";
    ASSERT_EQ(run({"qemu-img", "create", "-q", "-f", "qcow2", "-b", image_.string(), "-F", "qcow2", elsewhere.string()}).exit_code, 0);
    r = cli_({"snapshot-create-as", "snap", "bad", "--disk-only", "--reuse-external", "--diskspec", "vda,file=" + elsewhere.string()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(fmt::format("has backing file '{}', not the disk's image '{}'", image_.string(), pre.string())),
              std::string::npos)
        << r.err;
    r = cli_({"snapshot-create-as", "snap", "bad", "--disk-only", "--reuse-external", "--diskspec", "vda,file=" + nm.string()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("is an image the domain already uses"), std::string::npos) << r.err;
    EXPECT_EQ(ok({"snapshot-list", "snap", "--name"}).out, "fromxml\noff1\npre\n");
    for (const auto& f : {pre, nm, custom}) EXPECT_EQ(run({"qemu-img", "check", f.string()}).exit_code, 0) << f;
}

}  // namespace
}  // namespace vireo::test
