// Block jobs as a user meets them: the vireo CLI against a session daemon,
// one real TCG guest whose shell writes to its qcow2 data disk (vda), and
// qemu-img as the oracle of what the images hold and how they chain.
//
// One guest serves every step of one test (CI time; ctest runs each TEST
// alone, so the steps are blocks of one), in order: refusals with nothing
// changed; an active commit pivoted while the guest writes; a copy pivoted
// while it writes; a copy waited for, looked at, refused company and
// aborted (domjobabort, blockjob --abort) with the guest left on its disk;
// a commit of an inactive layer with --delete and a pull; a job the
// domain's stop ends. Each checks the guest's own checksum of its disk
// against the image the definition names, and qemu-img's chain against the
// definition's.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <regex>
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
using Names = std::vector<std::string>;
using qemu::test::backing_chain;

struct Shared {
    TempDir dir;
    SessionCli cli{dir.path()};
    bool booted = false;
    std::string console;
};

class QemuCliBlockJob : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (!fs::exists(bin_dir() / "vireod") || which("qemu-img").empty() || which("md5sum").empty()) return;
        if (!fs::exists(guest_dir())) return;
        shared_ = std::make_unique<Shared>();
        auto& s = *shared_;
        const fs::path image = s.dir.path() / "data.qcow2";
        if (run({"qemu-img", "create", "-q", "-f", "qcow2", image.string(), "16M"}).exit_code != 0) return;
        const std::string disk = fmt::format(
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{}'/>"
            "<target dev='vda' bus='virtio'/></disk>",
            image.string());
        const fs::path xml = s.dir.path() / "bj.xml";
        std::ofstream(xml) << qemu::test::guest_xml("bj", disk);
        if (s.cli({"define", xml.string()}).exit_code != 0 || s.cli({"start", "bj"}).exit_code != 0) return;
        s.booted = s.cli.on_console("bj", "printf vireo-data-A > /dev/vda; sync; echo done > /tmp/wd; echo wrote-$((40+2))", "wrote-42\r?\n", 180s,
                                    &s.console);
    }
    static void TearDownTestSuite() {
        if (!shared_) return;
        shared_->cli.destroy_guests();
        shared_->cli.stop_daemon();
        shared_.reset();
    }
    void SetUp() override {
        VIREO_REQUIRE_GUEST();
        if (!shared_) VIREO_SKIP("vireod, qemu-img or md5sum missing");
        ASSERT_TRUE(shared_->booted) << shared_->console;
    }

    static SessionCli& cli() { return shared_->cli; }
    static fs::path path(const std::string& name) { return shared_->dir.path() / name; }

    CommandResult ok(const std::vector<std::string>& args) {
        auto r = cli()(args);
        EXPECT_EQ(r.exit_code, 0) << "vireo " << fmt::format("{}", fmt::join(args, " ")) << ": " << r.err;
        return r;
    }
    bool on_console(const std::string& command, const std::string& expect) {
        return cli().on_console("bj", command, expect, 180s, &shared_->console);
    }
    // Start the guest writing random data over its disk (8 MiB in 64 KiB
    // pieces, each synced) in the background.
    bool start_writer() {
        return on_console("rm -f /tmp/wd; (i=0; while [ $i -lt 16 ]; do dd if=/dev/urandom of=/dev/vda bs=64k count=8 "
                          "seek=$((16+i*8)) conv=fsync 2>/dev/null; i=$((i+1)); done; echo done > /tmp/wd) & echo started-$((1+1))",
                          "started-2\r?\n");
    }
    // The writer finished; the guest's md5 of its whole disk, read past its page cache.
    std::string guest_md5() {
        shared_->console.clear();
        if (!on_console("while [ ! -f /tmp/wd ]; do sleep 0.2; done; sync; echo 3 > /proc/sys/vm/drop_caches; "
                        "echo \"sum=$(md5sum /dev/vda)\"",
                        "sum=[0-9a-f]{32}"))
            return "";
        std::smatch m;
        static const std::regex sum("sum=([0-9a-f]{32})");
        return std::regex_search(shared_->console, m, sum) ? m[1].str() : "";
    }
    // md5 of what `image` shows the guest (qemu-img convert; -U as QEMU holds it).
    static std::string image_md5(const fs::path& image) {
        const fs::path raw = path("md5.raw");
        auto r = run({"qemu-img", "convert", "-U", "-O", "raw", image.string(), raw.string()});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        auto sum = run({"md5sum", raw.string()});
        fs::remove(raw);
        return sum.out.substr(0, 32);
    }
    // The chain the live definition claims for vda: source, then each <backingStore>'s source.
    Names xml_chain(bool inactive = false) {
        auto r = inactive ? ok({"dumpxml", "bj", "--inactive"}) : ok({"dumpxml", "bj"});
        Names out;
        const auto target = r.out.find("<target dev='vda'");
        if (target == std::string::npos) return out;
        const auto from = r.out.rfind("<disk ", target);
        const auto to = r.out.find("</disk>", target);
        if (from == std::string::npos || to == std::string::npos) return out;
        const std::string disk = r.out.substr(from, to - from);
        static const std::regex src("<source file='([^']+)'");
        for (auto it = std::sregex_iterator(disk.begin(), disk.end(), src); it != std::sregex_iterator(); ++it)
            out.push_back(fs::path((*it)[1].str()).filename().string());
        return out;
    }
    static void expect_check_clean(const fs::path& image) {
        auto r = run({"qemu-img", "check", "-U", image.string()});
        EXPECT_EQ(r.exit_code, 0) << image << ": " << r.out << r.err;
    }
    // Wait (at most 60 s) until the disk has no running block job.
    bool wait_no_job() {
        for (int i = 0; i < 600; ++i) {
            auto r = cli()({"blockjob", "bj", "vda", "--info"});
            if (r.out == "No current block job for vda\n") return true;
            std::this_thread::sleep_for(100ms);
        }
        return false;
    }

    static std::unique_ptr<Shared> shared_;
};

std::unique_ptr<Shared> QemuCliBlockJob::shared_;

// The steps share the guest and build on each other (each one's disks are
// the next one's start): one test, one boot.
TEST_F(QemuCliBlockJob, EveryBlockJobOnOneRunningGuest) {
    // --- Bad input: refused, nothing changed.
    {
        SCOPED_TRACE("BadInputIsRefusedWithNothingChanged");
        ok({"snapshot-create-as", "bj", "s1", "--disk-only", "--diskspec", "vda,file=" + path("s1.qcow2").string()});
        const Names chain{"s1.qcow2", "data.qcow2"};
        ASSERT_EQ(xml_chain(), chain);
        const fs::path taken = path("taken.raw");
        std::ofstream(taken) << "not empty";
        const std::vector<std::pair<Names, std::string>> refusals{
            {{"blockcommit", "bj", "vdz", "--active"}, "error: invalid argument: disk 'vdz' not found in domain\n"},
            {{"blockcommit", "bj", "vda", "--top", "/nowhere.qcow2"},
             "error: invalid argument: could not find image '/nowhere.qcow2' in chain for 'vda'\n"},
            {{"blockcommit", "bj", "vda"}, "error: invalid argument: commit of 'vda' active layer requires active flag\n"},
            {{"blockcopy", "bj", "vda", taken.string()},
             fmt::format("error: unsupported configuration: external destination file for disk vda already exists and is not a "
                         "block device: {}\n",
                         taken.string())},
            {{"blockcopy", "bj", "vda", path("missing.qcow2").string(), "--reuse-external"},
             fmt::format("error: unsupported configuration: missing destination file for disk vda: {}\n", path("missing.qcow2").string())},
            {{"blockjob", "bj", "vda", "--abort"}, "error: invalid argument: disk vda does not have an active block job\n"},
            {{"blockjob", "bj", "vda", "--pivot"}, "error: invalid argument: disk vda does not have an active block job\n"},
        };
        for (const auto& [args, message] : refusals) {
            auto r = cli()(args);
            EXPECT_EQ(r.exit_code, 1) << fmt::format("{}", fmt::join(args, " "));
            EXPECT_EQ(r.err, message);
        }
        EXPECT_EQ(files::read(taken).value_or(""), "not empty");
        EXPECT_FALSE(fs::exists(path("missing.qcow2")));
        EXPECT_EQ(xml_chain(), chain);
        EXPECT_EQ(backing_chain(path("s1.qcow2")), chain);
        EXPECT_EQ(ok({"blockjob", "bj", "vda"}).out, "No current block job for vda\n");
        EXPECT_EQ(ok({"blockjob", "bj", "vda", "--raw"}).out, "");
    }

    // --- An active commit pivoted while the guest writes.
    {
        SCOPED_TRACE("ActiveCommitPivotsWhileTheGuestWrites");
        ASSERT_TRUE(start_writer()) << shared_->console;
        auto r = ok({"blockcommit", "bj", "vda", "--active", "--pivot", "--verbose"});
        EXPECT_EQ(r.out, "\nSuccessfully pivoted\n");
        EXPECT_NE(r.err.find("Active Block Commit: [100 %]"), std::string::npos) << r.err;
        const std::string sum = guest_md5();
        ASSERT_EQ(sum.size(), 32u) << shared_->console;
        EXPECT_EQ(xml_chain(), (Names{"data.qcow2"}));
        EXPECT_EQ(xml_chain(true), (Names{"data.qcow2"})) << "the persistent definition follows";
        EXPECT_EQ(backing_chain(path("data.qcow2")), (Names{"data.qcow2"}));
        EXPECT_EQ(image_md5(path("data.qcow2")), sum);
        expect_check_clean(path("data.qcow2"));
        EXPECT_TRUE(fs::exists(path("s1.qcow2"))) << "without --delete the overlay stays";
        EXPECT_EQ(ok({"blockjob", "bj", "vda", "--info"}).out, "No current block job for vda\n");
    }

    // --- A copy pivoted while the guest writes.
    {
        SCOPED_TRACE("CopyPivotsWhileTheGuestWrites");
        ASSERT_TRUE(start_writer()) << shared_->console;
        auto r = ok({"blockcopy", "bj", "vda", path("copy.qcow2").string(), "--pivot", "--format", "qcow2"});
        EXPECT_EQ(r.out, "\nSuccessfully pivoted\n");
        const std::string sum = guest_md5();
        ASSERT_EQ(sum.size(), 32u) << shared_->console;
        EXPECT_EQ(xml_chain(), (Names{"copy.qcow2"}));
        EXPECT_EQ(backing_chain(path("copy.qcow2")), (Names{"copy.qcow2"}));
        EXPECT_EQ(image_md5(path("copy.qcow2")), sum);
        expect_check_clean(path("copy.qcow2"));
        EXPECT_TRUE(on_console("echo \"head=$(head -c 12 /dev/vda)\"", "head=vireo-data-A\r?\n")) << shared_->console;
    }

    // --- Aborted copies leave the guest on its disk.
    {
        SCOPED_TRACE("AbortedCopiesLeaveTheGuestOnItsDisk");
        const std::string before = guest_md5();
        // Waited for: ready, mirrored until told otherwise.
        auto r = ok({"blockcopy", "bj", "vda", path("abort1.qcow2").string(), "--wait"});
        EXPECT_EQ(r.out, "\nNow in mirroring phase\n");
        r = ok({"blockjob", "bj", "vda", "--info"});
        EXPECT_EQ(r.err, "\rBlock Copy: [100 %]");
        EXPECT_EQ(r.out, "\n");
        r = ok({"blockjob", "bj", "vda", "--raw"});
        EXPECT_NE(r.out.find(" type=Block Copy\n bandwidth=0\n cur="), std::string::npos) << r.out;
        // One job per disk; no snapshot meanwhile.
        r = cli()({"blockcommit", "bj", "vda", "--active"});
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_EQ(r.err, "error: block copy still active: disk 'vda' already in active block job\n");
        r = cli()({"snapshot-create-as", "bj", "x", "--disk-only", "--diskspec", "vda,file=" + path("x.qcow2").string()});
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_NE(r.err.find("domain has active block job"), std::string::npos) << r.err;
        EXPECT_FALSE(fs::exists(path("x.qcow2")));
        // domjobabort: the copy stops, the guest stays on copy.qcow2.
        ok({"domjobabort", "bj"});
        ASSERT_TRUE(wait_no_job());
        EXPECT_EQ(xml_chain(), (Names{"copy.qcow2"}));
        EXPECT_EQ(xml_chain(true), (Names{"copy.qcow2"}));

        // --timeout: the copy is aborted when it takes longer.
        r = cli()({"blockcopy", "bj", "vda", path("abort0.qcow2").string(), "--bandwidth", "1", "--wait", "--timeout", "1"});
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_EQ(r.err, "error: \nCopy aborted\n");
        EXPECT_EQ(ok({"blockjob", "bj", "vda"}).out, "No current block job for vda\n");
        EXPECT_EQ(xml_chain(), (Names{"copy.qcow2"}));

        // Slow (1 MiB/s), looked at, then blockjob --abort.
        r = ok({"blockcopy", "bj", "vda", path("abort2.qcow2").string(), "--bandwidth", "1"});
        EXPECT_EQ(r.out, "Block Copy started\n");
        r = ok({"blockjob", "bj", "vda", "--info"});
        EXPECT_EQ(r.out, "    Bandwidth limit: 1048576 bytes/s (1.000 MiB/s)\n");
        EXPECT_NE(r.err.find("\rBlock Copy: ["), std::string::npos) << r.err;
        ok({"blockjob", "bj", "vda", "--bandwidth", "2"});
        EXPECT_NE(ok({"blockjob", "bj", "vda", "--raw"}).out.find(" bandwidth=2\n"), std::string::npos);
        r = cli()({"blockjob", "bj", "vda", "--pivot"});
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_EQ(r.err, "error: block copy still active: disk 'vda' not ready for pivot yet\n");
        ok({"blockjob", "bj", "vda", "--abort"});
        EXPECT_EQ(ok({"blockjob", "bj", "vda"}).out, "No current block job for vda\n");
        EXPECT_EQ(xml_chain(), (Names{"copy.qcow2"}));
        EXPECT_EQ(guest_md5(), before);
        EXPECT_EQ(image_md5(path("copy.qcow2")), before);
        expect_check_clean(path("copy.qcow2"));
    }

    // --- A commit of an inactive layer (--delete), then a pull.
    {
        SCOPED_TRACE("PullAndInactiveCommit");
        ok({"snapshot-create-as", "bj", "s2", "--disk-only", "--diskspec", "vda,file=" + path("s2.qcow2").string()});
        ASSERT_TRUE(on_console("printf vireo-data-B > /dev/vda; sync; echo wrote-$((40+2))", "wrote-42\r?\n")) << shared_->console;
        ok({"snapshot-create-as", "bj", "s3", "--disk-only", "--diskspec", "vda,file=" + path("s3.qcow2").string()});
        ASSERT_EQ(xml_chain(), (Names{"s3.qcow2", "s2.qcow2", "copy.qcow2"}));

        // Commit s2 (an inactive layer) into copy.qcow2, deleting it.
        auto r = ok({"blockcommit", "bj", "vda", "--top", path("s2.qcow2").string(), "--wait", "--delete"});
        EXPECT_EQ(r.out, "\nCommit complete\n");
        EXPECT_EQ(xml_chain(), (Names{"s3.qcow2", "copy.qcow2"}));
        EXPECT_EQ(backing_chain(path("s3.qcow2")), (Names{"s3.qcow2", "copy.qcow2"}));
        EXPECT_FALSE(fs::exists(path("s2.qcow2")));

        // Pull copy.qcow2 into s3: s3 stands alone.
        ASSERT_TRUE(start_writer()) << shared_->console;
        r = ok({"blockpull", "bj", "vda", "--wait", "--verbose"});
        EXPECT_EQ(r.out, "\nPull complete\n");
        const std::string sum = guest_md5();
        EXPECT_EQ(xml_chain(), (Names{"s3.qcow2"}));
        EXPECT_EQ(xml_chain(true), (Names{"s3.qcow2"}));
        EXPECT_EQ(backing_chain(path("s3.qcow2")), (Names{"s3.qcow2"}));
        EXPECT_EQ(image_md5(path("s3.qcow2")), sum);
        expect_check_clean(path("s3.qcow2"));
        EXPECT_TRUE(on_console("echo \"head=$(head -c 12 /dev/vda)\"", "head=vireo-data-B\r?\n")) << shared_->console;
    }

    // --- Last (it stops the guest): a domain that stops ends its block job, and
    // the persistent definition keeps the disk it had.
    {
        SCOPED_TRACE("StoppingTheDomainEndsItsJob");
        EXPECT_EQ(ok({"blockcopy", "bj", "vda", path("late.qcow2").string(), "--bandwidth", "1"}).out, "Block Copy started\n");
        ok({"destroy", "bj"});
        EXPECT_EQ(ok({"domstate", "bj"}).out, "shut off\n\n");
        EXPECT_EQ(xml_chain(true), (Names{"s3.qcow2"}));
        auto r = cli()({"blockjob", "bj", "vda"});
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_EQ(r.err, "error: Requested operation is not valid: domain is not running\n");
        r = cli()({"blockcommit", "bj", "vda", "--active"});
        EXPECT_EQ(r.err, "error: Requested operation is not valid: domain is not running\n");
        ASSERT_EQ(cli()({"start", "bj"}).exit_code, 0);
        EXPECT_EQ(ok({"blockjob", "bj", "vda"}).out, "No current block job for vda\n");
        EXPECT_EQ(ok({"domjobinfo", "bj"}).out.substr(0, 28), "Job type:         None      ");
    }
}

}  // namespace
}  // namespace vireo::test
