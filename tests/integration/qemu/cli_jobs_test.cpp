// Jobs as a user meets them, with libvirt's words: a 512 MiB test guest
// saved by `vireo save` while a second vireo watches and stops it.
//   - domjobinfo during the save shows the save's bytes growing, domstate
//     says "paused (saving)", job-list lists it;
//   - domjobabort cancels it: the save fails with libvirt's message, the
//     guest runs on ("running (save canceled)"), no file is left, and
//     domjobinfo --completed reports the Cancelled job;
//   - save --verbose prints virsh's progress lines, restore --verbose too.
// The daemon's qemu.conf sets a save_image_format: QEMU's stream then goes
// through the compressor, and the save of the ~100 MiB an idle guest has in
// use takes seconds (bzip2: tens of seconds, long enough to be watched and
// stopped; gzip: a few, for the runs that must end), where QEMU alone
// writes it in a fraction of a second.
#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <regex>
#include <thread>

#include "helpers.hpp"
#include "support/guest.hpp"
#include "support/session_cli.hpp"
#include "util/files.hpp"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class QemuCliJobs : public ::testing::Test {
protected:
    void SetUp() override {
        if (!fs::exists(bin_dir() / "vireod")) VIREO_SKIP("vireod is not built");
        fs::create_directories(dir_.path() / "config");
        fs::create_directories(images_);
        in_use_ = true;
    }

    // Saves go through `program` (before the first command starts the daemon).
    void compress_with(const std::string& program) {
        if (which(program).empty()) VIREO_SKIP(program + " is not installed");
        ASSERT_TRUE(files::write_atomic(dir_.path() / "config" / "qemu.conf",
                                        "save_image_format = \"" + program + "\"\n"));
    }
    void TearDown() override {
        if (!in_use_) return;
        cli_.destroy_guests();
        cli_.stop_daemon();
    }

    // Define and start the test guest with 512 MiB, and wait for its shell.
    void start_guest(const std::string& name) {
        std::string xml = qemu::test::guest_xml(name);
        const std::string small = "<memory unit='MiB'>160</memory>";
        ASSERT_NE(xml.find(small), std::string::npos);
        xml.replace(xml.find(small), small.size(), "<memory unit='MiB'>512</memory>");
        const fs::path file = dir_.path() / (name + ".xml");
        std::ofstream(file) << xml;
        ASSERT_EQ(cli_({"define", file.string()}).exit_code, 0);
        ASSERT_EQ(cli_({"start", name}).exit_code, 0);
        ASSERT_TRUE(on_console(name, "echo up-$((6*7))", "up-42\r?\n")) << "the guest never answered";
    }

    // Run `command` on the guest's console until `expect` (a regex) shows.
    bool on_console(const std::string& name, const std::string& command, const std::string& expect) {
        return cli_.on_console(name, command, expect);
    }

    // domjobinfo --rawstats' value of `name`, nullopt while no job runs.
    std::optional<std::uint64_t> raw_stat(const std::string& domain, const std::string& name) {
        auto r = cli_({"domjobinfo", domain, "--rawstats"});
        std::smatch m;
        if (r.exit_code != 0 || !r.out.starts_with("Job type: 2\n")) return std::nullopt;
        if (!std::regex_search(r.out, m, std::regex("\n" + name + ": (\\d+)\n"))) return std::nullopt;
        return std::stoull(m[1].str());
    }

    // The bytes the running save has processed once it has processed some.
    std::optional<std::uint64_t> wait_processed(const std::string& domain, std::uint64_t above,
                                                std::chrono::seconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (auto p = raw_stat(domain, "data_processed"); p && *p > above) return p;
            std::this_thread::sleep_for(50ms);
        }
        return std::nullopt;
    }

    TempDir dir_;
    SessionCli cli_{dir_.path()};
    fs::path images_ = dir_.path() / "images";
    bool in_use_ = false;
};

TEST_F(QemuCliJobs, DomjobinfoWatchesTheSaveAndDomjobabortCancelsIt) {
    VIREO_REQUIRE_GUEST();
    ASSERT_NO_FATAL_FAILURE(compress_with("bzip2"));
    if (IsSkipped()) return;
    ASSERT_NO_FATAL_FAILURE(start_guest("jobs"));
    const std::string image = (images_ / "jobs.save").string();
    auto save = std::async(std::launch::async, [&] { return cli_({"save", "jobs", image}); });

    // Two looks at the running job: the processed bytes grow.
    auto first = wait_processed("jobs", 0, 60s);
    ASSERT_TRUE(first) << "no save job seen running";
    auto info = cli_({"domjobinfo", "jobs"});
    EXPECT_TRUE(info.out.starts_with("Job type:         Unbounded   \nOperation:        Save        \nTime elapsed:  "))
        << info.out;
    EXPECT_NE(info.out.find("\nMemory total:     512."), std::string::npos) << info.out;
    EXPECT_NE(info.out.find("\nPage size:        4096         bytes\n"), std::string::npos) << info.out;
    EXPECT_EQ(cli_({"domstate", "jobs", "--reason"}).out, "paused (saving)\n\n");
    auto listed = cli_({"job-list"});
    EXPECT_TRUE(std::regex_search(listed.out, std::regex(R"(\n \d+ +Save +\d+ % +[\d.]+ s +domain 'jobs'\n)")))
        << listed.out;
    auto second = wait_processed("jobs", *first, 30s);
    ASSERT_TRUE(second) << "the processed bytes did not grow past " << *first;
    EXPECT_GT(*second, *first);

    // domjobabort from this second client stops it.
    auto aborted = cli_({"domjobabort", "jobs"});
    EXPECT_EQ(aborted.exit_code, 0) << aborted.err;
    EXPECT_EQ(aborted.out, "\n");
    ASSERT_EQ(save.wait_for(60s), std::future_status::ready) << "the aborted save did not end";
    auto saved = save.get();
    EXPECT_EQ(saved.exit_code, 1) << saved.out;
    EXPECT_EQ(saved.err, "error: Failed to save domain 'jobs' to " + image +
                             "\nerror: operation aborted: job 'domain save' canceled by client\n");
    EXPECT_EQ(cli_({"domstate", "jobs", "--reason"}).out, "running (save canceled)\n\n");
    EXPECT_TRUE(fs::is_empty(images_)) << "neither the temporary file nor the image is left";

    // The record of the cancelled job: its figures with --anystats, read
    // once without --keep-completed.
    auto full = cli_({"domjobinfo", "jobs", "--completed", "--keep-completed", "--anystats"});
    EXPECT_TRUE(full.out.starts_with("Job type:         Cancelled   \nOperation:        Save        \n")) << full.out;
    EXPECT_NE(full.out.find("\nError message:    operation aborted: job 'domain save' canceled by client\n"),
              std::string::npos)
        << full.out;
    EXPECT_EQ(cli_({"domjobinfo", "jobs", "--completed"}).out, "Job type:         Cancelled   \n\n");
    EXPECT_EQ(cli_({"domjobinfo", "jobs", "--completed"}).out, "Job type:         None        \n\n");
    EXPECT_EQ(cli_({"domjobinfo", "jobs"}).out, "Job type:         None        \n\n");
    auto nothing = cli_({"domjobabort", "jobs"});
    EXPECT_EQ(nothing.exit_code, 1);
    EXPECT_EQ(nothing.err, "error: Requested operation is not valid: no job is active on the domain\n");
    EXPECT_TRUE(on_console("jobs", "echo still-$((6*7))", "still-42\r?\n")) << "the guest runs on";
}

// The progress lines on stderr: "\rSave: [ NN %]" while the save runs
// (never going back), the 100 % one at the end, then virsh's message.
void expect_progress(const std::string& err, const std::string& label) {
    const std::regex line("\r" + label + R"(: \[([ \d]{3}) %\])");
    std::vector<int> seen;
    std::string rest = err;
    for (std::smatch m; std::regex_search(rest, m, line); rest = m.suffix()) {
        EXPECT_EQ(m.prefix().str(), "") << "only progress lines: " << err;
        seen.push_back(std::stoi(m[1].str()));
    }
    EXPECT_EQ(rest, "") << err;
    ASSERT_GE(seen.size(), 1u) << err;
    EXPECT_EQ(seen.back(), 100) << err;
    for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i], seen[i - 1]) << err;
}

TEST_F(QemuCliJobs, SaveAndRestoreVerbosePrintProgress) {
    VIREO_REQUIRE_GUEST();
    ASSERT_NO_FATAL_FAILURE(compress_with("gzip"));
    if (IsSkipped()) return;
    ASSERT_NO_FATAL_FAILURE(start_guest("verbose"));
    const std::string image = (images_ / "verbose.save").string();
    auto saved = cli_({"save", "verbose", image, "--verbose"});
    ASSERT_EQ(saved.exit_code, 0) << saved.err;
    EXPECT_EQ(saved.out, "\nDomain 'verbose' saved to " + image + "\n\n");
    expect_progress(saved.err, "Save");
    EXPECT_NE(saved.err.find("\rSave: ["), saved.err.rfind("\rSave: [100 %]")) << "lines while it ran: " << saved.err;

    auto done = cli_({"domjobinfo", "verbose", "--completed"});
    EXPECT_TRUE(done.out.starts_with("Job type:         Completed   \nOperation:        Save        \n")) << done.out;
    EXPECT_NE(done.out.find("\nTotal downtime:   "), std::string::npos) << done.out;
    EXPECT_NE(done.out.find("\nData remaining:   0.000 B\n"), std::string::npos) << done.out;

    auto restored = cli_({"restore", image, "--verbose"});
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    EXPECT_EQ(restored.out, "\nDomain restored from " + image + "\n\n");
    expect_progress(restored.err, "Restore");
    EXPECT_EQ(cli_({"domstate", "verbose", "--reason"}).out, "running (restored)\n\n");
}

}  // namespace
}  // namespace vireo::test
