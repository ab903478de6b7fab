// The pool-* and vol-* verbs of the built vireo binary against test:///default
// (in-process test driver with its "default-pool", a dir pool in a temporary
// directory): output layouts, messages and exit codes as a user sees them.
// State lives as long as one vireo process, so sequences run as one command string.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/vireo/commands.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

namespace vireo::test {
namespace {

CommandResult vireo(std::vector<std::string> args, const std::string& input = {}) {
    std::vector<std::string> argv{(bin_dir() / "vireo").string(), "-c", "test:///default"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, input);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(CliPoolVerbs, DefaultPoolIsListed) {
    auto r = vireo({"pool-list"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out.starts_with(" Name           State    Autostart\n------------------------------------\n"
                                  " default-pool   active   "))
        << r.out;
    EXPECT_TRUE(r.out.ends_with("\n\n"));
    auto names = vireo({"pool-list", "--all", "--name"});
    EXPECT_EQ(names.out, "default-pool        \n\n");
    auto details = vireo({"pool-list", "--details"});
    EXPECT_TRUE(std::regex_search(details.out, std::regex(R"(\n default-pool   running   (yes|no) +yes +[0-9.]+ [KMGTP]?i?B)")))
        << details.out;
    auto json = nlohmann::json::parse(vireo({"pool-list", "--json"}).out);
    ASSERT_EQ(json.size(), 1u);
    EXPECT_EQ(json[0]["name"], "default-pool");
    EXPECT_EQ(json[0]["type"], "dir");
    EXPECT_EQ(json[0]["state"], "running");
    EXPECT_EQ(vireo({"pool-list", "--inactive", "--name"}).out, "\n");
    EXPECT_EQ(vireo({"pool-list", "--type", "fs", "--name"}).out, "\n");
}

TEST(CliPoolVerbs, PoolListRefusals) {
    auto both = vireo({"pool-list", "--all", "--inactive"});
    EXPECT_EQ(both.exit_code, 1);
    EXPECT_EQ(both.err, "error: Options --all and --inactive are mutually exclusive\n");
    auto names = vireo({"pool-list", "--details", "--name"});
    EXPECT_EQ(names.err, "error: Options --details and --name are mutually exclusive\n");
    auto type = vireo({"pool-list", "--type", "dri"});
    EXPECT_EQ(type.err, "error: Invalid pool type 'dri'\n");
}

TEST(CliPoolVerbs, PoolInfoNameUuidDumpxml) {
    auto info = vireo({"pool-info", "default-pool"});
    ASSERT_EQ(info.exit_code, 0) << info.err;
    EXPECT_TRUE(info.out.starts_with("Name:           default-pool\nUUID:           ")) << info.out;
    EXPECT_TRUE(contains(info.out, "\nState:          running\nPersistent:     yes\n")) << info.out;
    EXPECT_TRUE(contains(info.out, "\nCapacity:       ")) << info.out;
    // Each vireo process has its own test driver: look the UUID up in the same one.
    auto uuid = vireo({"pool-uuid", "default-pool"});
    ASSERT_EQ(uuid.exit_code, 0);
    ASSERT_EQ(uuid.out.size(), 38u) << uuid.out;
    auto name = vireo({"pool-uuid default-pool; pool-name default-pool"});
    EXPECT_TRUE(name.out.ends_with("\n\ndefault-pool\n\n")) << name.out;
    auto xml = vireo({"pool-dumpxml", "default-pool"});
    EXPECT_TRUE(contains(xml.out, "<name>default-pool</name>")) << xml.out;
    EXPECT_TRUE(xml.out.ends_with(">\n\n")) << xml.out;
}

TEST(CliPoolVerbs, MissingPoolIsAnError) {
    for (std::string verb : {"pool-info", "pool-start", "pool-destroy", "pool-dumpxml", "vol-list"}) {
        auto r = vireo({verb, "nosuch"});
        EXPECT_EQ(r.exit_code, 1) << verb;
        EXPECT_TRUE(r.err.starts_with("error: failed to get pool 'nosuch'\nerror: ")) << verb << ": " << r.err;
        EXPECT_EQ(r.out, "") << verb;
    }
}

TEST(CliPoolVerbs, DefineAsPrintsVirshXml) {
    auto r = vireo({"pool-define-as", "x", "dir", "--target", "/srv/x", "--print-xml"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, "<pool type='dir'>\n  <name>x</name>\n  <target>\n    <path>/srv/x</path>\n  </target>\n</pool>\n\n");
    auto positional = vireo({"pool-define-as", "x", "fs", "-", "-", "/dev/loop0", "-", "/mnt/x", "--print-xml"});
    EXPECT_TRUE(contains(positional.out, "<device path='/dev/loop0'/>")) << positional.out;
    EXPECT_TRUE(contains(positional.out, "<path>/mnt/x</path>")) << positional.out;
}

TEST(CliPoolVerbs, PoolLifecycleInOneSession) {
    TempDir dir;
    const std::string target = (dir / "p1").string();
    auto r = vireo({fmt::format("pool-define-as p1 dir --target {}; pool-build p1; pool-start p1; pool-autostart p1; "
                                "pool-autostart p1 --disable; pool-refresh p1; "
                                "pool-destroy p1; pool-info p1; pool-delete p1; pool-undefine p1; pool-list --all --name",
                                target)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(r.out,
              "Pool p1 defined\n\n"
              "Pool p1 built\n\n"
              "Pool p1 started\n\n"
              "Pool p1 marked as autostarted\n\n"
              "Pool p1 unmarked as autostarted\n\n"
              "Pool p1 refreshed\n\n"
              "Pool p1 destroyed\n\n" +
                  fmt::format("Name:           p1\nUUID:           {}\nState:          inactive\nPersistent:     yes\n"
                              "Autostart:      no\n\n",
                              r.out.substr(r.out.find("UUID:           ") + 16, 36)) +
                  "Pool p1 deleted\n\n"
                  "Pool p1 has been undefined\n\n"
                  "default-pool        \n\n");
    EXPECT_FALSE(std::filesystem::exists(target));
}

TEST(CliPoolVerbs, VolumesInTheDefaultPool) {
    auto r = vireo({"vol-create-as default-pool a.qcow2 1G --format qcow2; vol-create-as default-pool b.img 10M; "
                    "vol-list default-pool; vol-info a.qcow2 --pool default-pool; "
                    "vol-info --bytes b.img --pool default-pool; vol-list default-pool --details"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out.starts_with("Vol a.qcow2 created\n\nVol b.img created\n\n Name      Path\n")) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\n a\.qcow2   /\S+/a\.qcow2\n b\.img     /\S+/b\.img\n\n)"))) << r.out;
    EXPECT_TRUE(contains(r.out, "Name:           a.qcow2\nType:           file\nCapacity:       1.00 GiB\nAllocation:     "))
        << r.out;
    EXPECT_TRUE(contains(r.out, "Name:           b.img\nType:           file\nCapacity:       10485760 bytes\n")) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\n a\.qcow2   \S+   file   1\.00 GiB   )"))) << r.out;
}

TEST(CliPoolVerbs, VolumeLookupsByNameKeyAndPath) {
    // Each process has its own test driver (and pool directory), so lookups by
    // path (vol-name, vol-pool) are covered by tests/integration/cli instead.
    auto r = vireo({"vol-create-as default-pool a.img 1M; vol-path a.img --pool default-pool; "
                    "vol-key a.img --pool default-pool; vol-dumpxml a.img --pool default-pool"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.out, m, std::regex(R"(Vol a\.img created\n\n(/\S+/a\.img)\n\n(\S+)\n\n)"))) << r.out;
    EXPECT_EQ(m[2].str(), m[1].str()) << "the key of a dir pool volume is its path";
    EXPECT_TRUE(contains(r.out, "<name>a.img</name>")) << r.out;
    auto missing = vireo({"vol-info", "nosuch"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_TRUE(missing.err.starts_with("error: failed to get vol 'nosuch', specifying --pool might help\nerror: "))
        << missing.err;
    auto in_pool = vireo({"vol-info", "nosuch", "--pool", "default-pool"});
    EXPECT_TRUE(in_pool.err.starts_with("error: failed to get vol 'nosuch'\nerror: ")) << in_pool.err;
}

TEST(CliPoolVerbs, VolumeChangesAndMessages) {
    auto r = vireo({"vol-create-as default-pool a.img 1M; vol-clone a.img b.img --pool default-pool; "
                    "vol-resize a.img 2M --pool default-pool; vol-resize a.img 1M --pool default-pool --delta; "
                    "vol-resize a.img -1M --pool default-pool --delta --shrink; vol-wipe a.img --pool default-pool; "
                    "vol-info --bytes a.img --pool default-pool; vol-delete b.img --pool default-pool; vol-list default-pool"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_TRUE(r.out.starts_with("Vol a.img created\n\n"
                                  "Vol b.img cloned from a.img\n\n"
                                  "Size of volume 'a.img' successfully changed to 2M\n\n"
                                  "Size of volume 'a.img' successfully changed by 1M\n\n"
                                  "Size of volume 'a.img' successfully changed by -1M\n\n"
                                  "Vol a.img wiped\n\n"
                                  "Name:           a.img\nType:           file\nCapacity:       2097152 bytes\n"))
        << r.out;
    EXPECT_TRUE(contains(r.out, "Vol b.img deleted\n\n")) << r.out;
    EXPECT_FALSE(contains(r.out.substr(r.out.find("Vol b.img deleted\n\n") + 19), " b.img ")) << r.out;
}

TEST(CliPoolVerbs, VolumeRefusals) {
    auto exists = vireo({"vol-create-as default-pool a.img 1M; vol-create-as default-pool a.img 1M"});
    EXPECT_EQ(exists.exit_code, 1);
    EXPECT_TRUE(exists.err.starts_with("error: Failed to create vol a.img\nerror: ")) << exists.err;
    auto slash = vireo({"vol-create-as", "default-pool", "../x.img", "1M"});
    EXPECT_EQ(slash.exit_code, 1);
    EXPECT_TRUE(slash.err.starts_with("error: Failed to create vol ../x.img\nerror: ")) << slash.err;
    auto size = vireo({"vol-create-as", "default-pool", "x.img", "1.5G"});
    EXPECT_EQ(size.err, "error: Malformed size 1.5G\nerror: unknown suffix '.5G'\n");
    auto negative = vireo({"vol-resize", "x.img", "-1M", "--pool", "default-pool"});
    EXPECT_EQ(negative.err, "error: negative size requires --delta and --shrink\n");
    auto shrink = vireo({"vol-create-as default-pool a.img 2M; vol-resize a.img 1M --pool default-pool"});
    EXPECT_EQ(shrink.exit_code, 1);
    EXPECT_TRUE(contains(shrink.err, "error: Failed to change size of volume 'a.img' to 1M\nerror: ")) << shrink.err;
    auto algorithm = vireo({"vol-wipe", "x.img", "--pool", "default-pool", "--algorithm", "gutmann"});
    EXPECT_EQ(algorithm.exit_code, 1);
    EXPECT_TRUE(contains(algorithm.err, "gutmann")) << algorithm.err;
    auto unknown = vireo({"vol-wipe", "x.img", "--algorithm", "nope"});
    EXPECT_EQ(unknown.err, "error: Unsupported algorithm 'nope'\n");
}

TEST(CliPoolVerbs, VolumeCreateAsPrintsVirshXml) {
    auto r = vireo({"vol-create-as", "default-pool", "b.qcow2", "1G", "--format", "qcow2", "--allocation", "10M",
                    "--print-xml"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "<volume>\n  <name>b.qcow2</name>\n  <capacity>1073741824</capacity>\n"
                     "  <allocation>10485760</allocation>\n  <target>\n    <format type='qcow2'/>\n  </target>\n"
                     "</volume>\n\n");
}

TEST(CliPoolVerbs, UploadAndDownloadThroughTheCli) {
    TempDir dir;
    const std::string src = (dir / "src").string(), dst = (dir / "dst").string();
    std::ofstream(src) << std::string(5000, 'u');
    auto r = vireo({fmt::format("vol-create-as default-pool t.img 1M; vol-upload t.img {} --pool default-pool --offset 100; "
                                "vol-download t.img {} --pool default-pool --offset 100 --length 5000",
                                src, dst)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "Vol t.img created\n\n") << "transfers print nothing, as virsh";
    EXPECT_EQ(files::read(dst).value_or(""), std::string(5000, 'u'));
    auto missing = vireo({"vol-create-as default-pool t.img 1M; vol-upload t.img /nonexistent --pool default-pool"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_TRUE(missing.err.starts_with("error: cannot upload to volume t.img\nerror: cannot read /nonexistent"))
        << missing.err;
}

TEST(CliPoolVerbs, EveryVerbHasHelp) {
    for (const auto& spec : cli::command_table()) {
        if (!spec.name.starts_with("pool-") && !spec.name.starts_with("vol-")) continue;
        auto r = vireo({std::string(spec.name), "--help"});
        EXPECT_EQ(r.exit_code, 0) << spec.name;
        EXPECT_TRUE(r.out.starts_with(fmt::format("  NAME\n    {} - ", spec.name))) << r.out;
    }
    auto help = vireo({"help"});
    EXPECT_TRUE(contains(help.out, "vol-create-as")) << help.out;
}

TEST(CliPoolVerbs, CompletionOffersPoolsAndVolumes) {
    auto pools = run({(bin_dir() / "vireo").string(), "_complete", "-c", "test:///default", "vol-list", ""});
    EXPECT_EQ(pools.out, "default-pool\n");
    auto opts = run({(bin_dir() / "vireo").string(), "_complete", "vol-upload", "--sp"});
    EXPECT_EQ(opts.out, "--sparse\n");
    auto verbs = run({(bin_dir() / "vireo").string(), "_complete", "pool-li"});
    EXPECT_EQ(verbs.out, "pool-list\n");
}

}  // namespace
}  // namespace vireo::test
