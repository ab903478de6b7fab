// The job verbs on test:///default (whose domain operations are instant, so
// no job ever runs there): what domjobinfo, domjobabort, job-list and
// job-abort print when there is nothing to report, their option checks, and
// save / managedsave / restore --verbose, whose last progress line is
// virsh's 100 % one.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/support.hpp"

namespace vireo::test {
namespace {

CommandResult vireo(std::vector<std::string> args) {
    std::vector<std::string> argv{(bin_dir() / "vireo").string(), "-c", "test:///default"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, "");
}

TEST(CliJobs, DomjobinfoWithoutJobIsNone) {
    auto r = vireo({"domjobinfo", "test"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "Job type:         None        \n\n");
    EXPECT_EQ(vireo({"domjobinfo", "test", "--completed"}).out, "Job type:         None        \n\n");
    EXPECT_EQ(vireo({"domjobinfo", "test", "--rawstats"}).out, "Job type: 0\n\n\n");
    auto json = vireo({"domjobinfo", "test", "--json"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    EXPECT_EQ(nlohmann::json::parse(json.out)["status"], "none");
}

TEST(CliJobs, DomjobinfoRefusesWhatVirshRefuses) {
    auto keep = vireo({"domjobinfo", "test", "--keep-completed"});
    EXPECT_EQ(keep.exit_code, 1);
    EXPECT_EQ(keep.err, "error: Option --completed is required by option --keep-completed\n");
    // The running job of a shut off domain: libvirt's words.
    auto off = vireo({"destroy test; domjobinfo test"});
    EXPECT_EQ(off.exit_code, 1);
    EXPECT_EQ(off.err, "error: Requested operation is not valid: domain is not running\n");
    auto none = vireo({"domjobinfo", "nope"});
    EXPECT_EQ(none.exit_code, 1);
    EXPECT_EQ(none.err, "error: failed to get domain 'nope'\n");
}

TEST(CliJobs, DomjobabortWithoutJobIsLibvirtsError) {
    auto r = vireo({"domjobabort", "test"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "error: Requested operation is not valid: no job is active on the domain\n");
    auto off = vireo({"destroy test; domjobabort test"});
    EXPECT_EQ(off.exit_code, 1);
    EXPECT_EQ(off.err, "error: Requested operation is not valid: domain is not running\n");
    auto ro = vireo({"-r", "domjobabort", "test"});
    EXPECT_EQ(ro.exit_code, 1);
    EXPECT_EQ(ro.err, "error: operation forbidden: read only access prevents 'domjobabort'\n");
}

TEST(CliJobs, JobListAndJobAbort) {
    EXPECT_EQ(vireo({"job-list"}).out, " Id   Operation   Progress   Elapsed   Object\n"
                                       "-----------------------------------------------\n\n");
    EXPECT_EQ(vireo({"-q", "job-list"}).out, "\n");
    EXPECT_EQ(vireo({"job-list", "--json"}).out, "[]\n");
    auto missing = vireo({"job-abort", "7"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_EQ(missing.err, "error: Failed to abort job 7\nerror: no job with id 7 is running\n");
    auto bad = vireo({"job-abort", "x7"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_EQ(bad.err,
              "error: Failed to abort job x7\nerror: invalid job id 'x7' (job-list shows the ids of running jobs)\n");
    auto none = vireo({"job-abort"});
    EXPECT_EQ(none.exit_code, 1);
}

TEST(CliJobs, VerboseSaveEndsWithTheHundredPercentLine) {
    TempDir dir;
    const std::string img = (dir / "test.save").string();
    auto saved = vireo({"save", "test", img, "--verbose"});
    EXPECT_EQ(saved.exit_code, 0) << saved.err;
    EXPECT_EQ(saved.err, "\rSave: [100 %]");
    EXPECT_EQ(saved.out, fmt::format("\nDomain 'test' saved to {}\n\n", img));

    auto restored = vireo({fmt::format("save test {0}; restore {0} --verbose", img)});
    EXPECT_EQ(restored.exit_code, 0) << restored.err;
    EXPECT_EQ(restored.err, "\rRestore: [100 %]");
    EXPECT_EQ(restored.out, fmt::format("\nDomain 'test' saved to {0}\n\n\nDomain restored from {0}\n\n", img));

    auto managed = vireo({"managedsave", "test", "--verbose"});
    EXPECT_EQ(managed.exit_code, 0) << managed.err;
    EXPECT_EQ(managed.err, "\rManagedsave: [100 %]");
    EXPECT_EQ(managed.out, "\nDomain 'test' state saved by vireo\n\n");

    // A failed save prints no progress, and virsh's headline.
    auto failed = vireo({"destroy test; save test " + img + " --verbose"});
    EXPECT_EQ(failed.exit_code, 1);
    EXPECT_EQ(failed.err.find("\r"), std::string::npos) << failed.err;
    EXPECT_EQ(failed.err.rfind(fmt::format("error: Failed to save domain 'test' to {}\n", img), 0), 0u) << failed.err;
}

TEST(CliJobs, HelpAndCompletionKnowTheVerbs) {
    auto help = vireo({"help", "domjobinfo"});
    EXPECT_NE(help.out.find("domjobinfo <domain> [--completed] [--keep-completed] [--anystats] [--rawstats] [--json]"),
              std::string::npos)
        << help.out;
    auto words = run({(bin_dir() / "vireo").string(), "_complete", "-c", "test:///default", "domjob"});
    EXPECT_NE(words.out.find("domjobabort\n"), std::string::npos) << words.out;
    EXPECT_NE(words.out.find("domjobinfo\n"), std::string::npos) << words.out;
    auto opts = run({(bin_dir() / "vireo").string(), "_complete", "-c", "test:///default", "save", "--v"});
    EXPECT_EQ(opts.out, "--verbose\n");
}

}  // namespace
}  // namespace vireo::test
