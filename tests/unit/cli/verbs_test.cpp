// Runs the built vireo binary against test:///default (the in-process test
// driver: every invocation starts from the same sample host with the running
// domain "test") and checks what a user sees: output, messages, exit codes.
// Sequences that need state run as one command string ("define f; start x").
#include <gtest/gtest.h>

#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/support.hpp"

namespace vireo::test {
namespace {

CommandResult vireo(std::vector<std::string> args, const std::string& input = {}) {
    std::vector<std::string> argv{(bin_dir() / "vireo").string(), "-c", "test:///default"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, input);
}

// A persistent domain "demo" derived from the sample domain's XML.
std::string demo_xml_file(const TempDir& dir) {
    auto xml = vireo({"dumpxml", "test", "--inactive"});
    EXPECT_EQ(xml.exit_code, 0) << xml.err;
    std::string text = xml.out;
    auto replace = [&](const std::string& from, const std::string& to) {
        auto at = text.find(from);
        if (at != std::string::npos) text.replace(at, from.size(), to);
    };
    replace("<name>test</name>", "<name>demo</name>");
    const auto u = text.find("<uuid>");
    if (u != std::string::npos) text.erase(u, text.find("</uuid>") + 7 - u);
    const std::string path = (dir / "demo.xml").string();
    std::ofstream(path) << text;
    return path;
}

TEST(CliVerbs, ListShowsTheRunningSampleDomain) {
    auto r = vireo({"list"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, " Id   Name   State\n----------------------\n 1    test   running\n\n");
    EXPECT_EQ(r.err, "");
}

TEST(CliVerbs, ListOptions) {
    EXPECT_EQ(vireo({"list", "--all", "--name"}).out, "test\n\n");
    EXPECT_EQ(vireo({"list", "--uuid"}).out, "6695eb01-f6a4-8304-79aa-97f2502e193f\n\n");
    EXPECT_EQ(vireo({"list", "--inactive"}).out, " Id   Name   State\n--------------------\n\n");
    EXPECT_EQ(vireo({"list", "--state-paused"}).out, " Id   Name   State\n--------------------\n\n");
    EXPECT_EQ(vireo({"list", "--transient"}).out, " Id   Name   State\n--------------------\n\n");
    EXPECT_EQ(vireo({"list", "--persistent", "--name"}).out, "test\n\n");
    EXPECT_EQ(vireo({"list", "--autostart", "--all", "--name"}).out, "\n");
    EXPECT_EQ(vireo({"-q", "list"}).out, " 1   test   running\n\n");
    auto titled = vireo({"desc test --title 'My VM'; list --title"});
    EXPECT_NE(titled.out.find(" Id   Name   State     Title\n"), std::string::npos) << titled.out;
    EXPECT_NE(titled.out.find(" 1    test   running   My VM\n"), std::string::npos) << titled.out;
}

TEST(CliVerbs, ListJson) {
    auto r = vireo({"list", "--all", "--json"});
    ASSERT_EQ(r.exit_code, 0);
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 1u);
    EXPECT_EQ(j[0]["name"], "test");
    EXPECT_EQ(j[0]["id"], 1);
    EXPECT_EQ(j[0]["state"], "running");
    EXPECT_EQ(j[0]["uuid"], "6695eb01-f6a4-8304-79aa-97f2502e193f");
}

TEST(CliVerbs, HostVerbs) {
    EXPECT_EQ(vireo({"uri"}).out, "test:///default\n\n");
    auto h = vireo({"hostname"});
    EXPECT_EQ(h.exit_code, 0);
    EXPECT_TRUE(h.out.ends_with("\n\n"));
    auto n = vireo({"nodeinfo"});
    EXPECT_TRUE(n.out.starts_with("CPU model:           x86_64\nCPU(s):              8\n")) << n.out;
    EXPECT_EQ(nlohmann::json::parse(vireo({"nodeinfo", "--json"}).out)["cpus"], 8);
    auto v = vireo({"version"});
    EXPECT_NE(v.out.find("Compiled against library: vireo "), std::string::npos);
    EXPECT_NE(v.out.find("Running hypervisor: Test 1.0\n"), std::string::npos);
    auto caps = vireo({"capabilities"});
    EXPECT_EQ(caps.exit_code, 0);
    EXPECT_NE(caps.out.find("<capabilities>"), std::string::npos);
    auto dcaps = vireo({"domcapabilities"});
    EXPECT_EQ(dcaps.exit_code, 0) << dcaps.err;
    EXPECT_NE(dcaps.out.find("<domainCapabilities>"), std::string::npos);
}

TEST(CliVerbs, DomainQueries) {
    auto info = vireo({"dominfo", "test"});
    EXPECT_TRUE(info.out.starts_with("Id:             1\nName:           test\n"
                                     "UUID:           6695eb01-f6a4-8304-79aa-97f2502e193f\n"))
        << info.out;
    EXPECT_NE(info.out.find("State:          running\n"), std::string::npos);
    EXPECT_EQ(nlohmann::json::parse(vireo({"dominfo", "test", "--json"}).out)["vcpus"], 2);
    EXPECT_EQ(vireo({"domstate", "test"}).out, "running\n\n");
    EXPECT_EQ(vireo({"domstate", "--domain", "test", "--reason"}).out, "running (booted)\n\n");
    EXPECT_EQ(vireo({"domid", "test"}).out, "1\n\n");
    EXPECT_EQ(vireo({"domname", "1"}).out, "test\n\n");
    EXPECT_EQ(vireo({"domname", "6695eb01-f6a4-8304-79aa-97f2502e193f"}).out, "test\n\n");
    EXPECT_EQ(vireo({"domuuid", "test"}).out, "6695eb01-f6a4-8304-79aa-97f2502e193f\n\n");
    auto xml = vireo({"dumpxml", "test"});
    EXPECT_NE(xml.out.find("<name>test</name>"), std::string::npos);
    EXPECT_TRUE(xml.out.ends_with("</domain>\n\n"));
    EXPECT_EQ(vireo({"dumpxml", "--inactive", "test"}).exit_code, 0);
}

TEST(CliVerbs, BlockAndInterfaceLists) {
    auto blk = vireo({"domblklist", "test"});
    EXPECT_EQ(blk.exit_code, 0);
    EXPECT_TRUE(blk.out.starts_with(" Target   Source\n")) << blk.out;
    EXPECT_NE(blk.out.find(" vda      "), std::string::npos);
    auto details = vireo({"domblklist", "test", "--details"});
    EXPECT_TRUE(details.out.starts_with(" Type   Device   Target   Source\n")) << details.out;
    EXPECT_EQ(nlohmann::json::parse(vireo({"domblklist", "test", "--json"}).out)[0]["target"], "vda");
    // domif-getlink: by MAC (or host-side name, which the test driver's
    // guest does not have), printed as virsh prints it.
    EXPECT_EQ(vireo({"domif-getlink", "test", "aa:bb:cc:dd:ee:ff"}).out, "aa:bb:cc:dd:ee:ff up\n");
    auto nolink = vireo({"domif-getlink", "test", "vnet9"});
    EXPECT_EQ(nolink.exit_code, 1);
    EXPECT_NE(nolink.err.find("invalid path, 'vnet9' is not a known interface"), std::string::npos) << nolink.err;
    auto ifl = vireo({"domiflist", "test"});
    EXPECT_TRUE(ifl.out.starts_with(" Interface   Type      Source    Model    MAC\n") ||
                ifl.out.starts_with(" Interface   Type"))
        << ifl.out;
    EXPECT_NE(ifl.out.find("aa:bb:cc:dd:ee:ff"), std::string::npos) << ifl.out;
    EXPECT_EQ(nlohmann::json::parse(vireo({"domiflist", "test", "--json"}).out)[0]["mac"], "aa:bb:cc:dd:ee:ff");
}

TEST(CliVerbs, DefineStartStopUndefine) {
    TempDir dir;
    const std::string file = demo_xml_file(dir);
    auto r = vireo({fmt::format("define --validate {}; start demo; domstate demo --reason; suspend demo; "
                                "domstate demo --reason; resume demo; shutdown demo; domstate demo --reason; "
                                "start demo --paused; list --all --state-paused --name; destroy demo; "
                                "domstate demo --reason; undefine demo; list --all --name",
                                file)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(r.out, fmt::format("Domain 'demo' defined from {}\n\n"
                                 "Domain 'demo' started\n\n"
                                 "running (booted)\n\n"
                                 "Domain 'demo' suspended\n\n"
                                 "paused (user)\n\n"
                                 "Domain 'demo' resumed\n\n"
                                 "Domain 'demo' is being shutdown\n\n"
                                 "shut off (shutdown)\n\n"
                                 "Domain 'demo' started\n\n"
                                 "demo\n\n"
                                 "Domain 'demo' destroyed\n\n"
                                 "shut off (destroyed)\n\n"
                                 "Domain 'demo' has been undefined\n\n"
                                 "test\n\n",
                                 file));
}

TEST(CliVerbs, CreateIsTransient) {
    TempDir dir;
    const std::string file = demo_xml_file(dir);
    auto r = vireo({fmt::format("create {}; list --transient --name; destroy demo; list --all --name", file)});
    EXPECT_EQ(r.out, fmt::format("Domain 'demo' created from {}\n\ndemo\n\nDomain 'demo' destroyed\n\ntest\n\n", file));
}

TEST(CliVerbs, RebootResetDestroyGraceful) {
    EXPECT_EQ(vireo({"reboot", "test"}).out, "Domain 'test' is being rebooted\n\n");
    EXPECT_EQ(vireo({"reset", "test"}).out, "Domain 'test' was reset\n\n");
    EXPECT_EQ(vireo({"destroy", "test", "--graceful"}).out, "Domain 'test' destroyed\n\n");
}

TEST(CliVerbs, SaveAndRestore) {
    TempDir dir;
    const std::string img = (dir / "test.save").string();
    auto r = vireo({fmt::format("save test {0}; domstate test --reason; restore {0}; domstate test --reason", img)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, fmt::format("\nDomain 'test' saved to {0}\n\nshut off (saved)\n\n"
                                 "Domain restored from {0}\n\nrunning (restored)\n\n",
                                 img));
}

TEST(CliVerbs, ManagedSave) {
    auto r = vireo({"managedsave test; dominfo test; list --all --managed-save; managedsave-remove test; "
                    "managedsave-remove test"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("\nDomain 'test' state saved by vireo\n\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Managed save:   yes\n"), std::string::npos);
    EXPECT_NE(r.out.find(" -    test   saved\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Removed managedsave image for domain 'test'\n"
                         "Domain 'test' has no manage save image; removal skipped\n"),
              std::string::npos)
        << r.out;
}

TEST(CliVerbs, AutostartAndDesc) {
    auto r = vireo({"autostart test; list --autostart --name; autostart test --disable; desc test; "
                    "desc test new words here; desc test; desc test --title; desc test --title --new-desc T; "
                    "desc test --title"});
    EXPECT_EQ(r.out,
              "Domain 'test' marked as autostarted\n\ntest\n\n"
              "Domain 'test' unmarked as autostarted\n\n"
              "No description for domain: test\n"
              "Domain description updated successfully\n"
              "new words here\n"
              "No title for domain: test\n"
              "Domain title updated successfully\n"
              "T\n");
}

TEST(CliVerbs, UndefineFlags) {
    auto r = vireo({"destroy test; managedsave-remove test; undefine test --managed-save --nvram; list --all --name"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Domain 'test' has been undefined\n\n\n"), std::string::npos) << r.out;
}

TEST(CliVerbs, ErrorsReadLikeVirshAndExitOne) {
    auto missing = vireo({"dominfo", "nosuch"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_EQ(missing.err, "error: failed to get domain 'nosuch'\n");
    EXPECT_EQ(missing.out, "");
    auto twice = vireo({"suspend test; suspend test"});
    EXPECT_NE(twice.err.find("error: Failed to suspend domain 'test'\nerror: "), std::string::npos) << twice.err;
    auto unknown = vireo({"frobnicate"});
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_EQ(unknown.err, "error: unknown command: 'frobnicate'\n");
    auto bad = vireo({"list", "--bogus"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_EQ(bad.err, "error: command 'list' doesn't support option --bogus\n");
    auto noarg = vireo({"start"});
    EXPECT_EQ(noarg.err, "error: command 'start' requires <domain> option\n");
    auto nofile = vireo({"define", "/nonexistent/x.xml"});
    EXPECT_EQ(nofile.exit_code, 1);
    EXPECT_TRUE(nofile.err.starts_with("error: Failed to open file '/nonexistent/x.xml'\nerror: ")) << nofile.err;
    auto noconn = run({(bin_dir() / "vireo").string(), "-c", "bogus:///nowhere", "list"});
    EXPECT_EQ(noconn.exit_code, 1);
    EXPECT_TRUE(noconn.err.starts_with("error: failed to connect to the hypervisor\nerror: ")) << noconn.err;
}

TEST(CliVerbs, ReadonlyRefusesChanges) {
    auto r = run({(bin_dir() / "vireo").string(), "-r", "-c", "test:///default", "destroy", "test"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("read only"), std::string::npos) << r.err;
    EXPECT_EQ(run({(bin_dir() / "vireo").string(), "-r", "-c", "test:///default", "list"}).exit_code, 0);
}

TEST(CliVerbs, HelpForEveryVerb) {
    auto all = vireo({"help"});
    EXPECT_EQ(all.exit_code, 0);
    for (const char* verb : {"uri", "version", "hostname", "nodeinfo", "capabilities", "domcapabilities", "list",
                             "define", "undefine", "create", "start", "shutdown", "reboot", "reset", "destroy",
                             "suspend", "resume", "save", "restore", "managedsave", "managedsave-remove", "dominfo",
                             "domstate", "domid", "domname", "domuuid", "dumpxml", "edit", "autostart", "console",
                             "desc", "event", "domblklist", "domiflist", "domifstat", "domif-getlink",
                             "domif-setlink", "domifaddr", "change-media", "snapshot-create", "snapshot-create-as",
                             "snapshot-list", "snapshot-info", "snapshot-dumpxml", "snapshot-current",
                             "snapshot-parent", "snapshot-revert", "snapshot-delete"}) {
        EXPECT_NE(all.out.find(fmt::format("    {} ", verb)), std::string::npos) << verb;
        auto h = vireo({verb, "--help"});
        EXPECT_EQ(h.exit_code, 0) << verb;
        EXPECT_TRUE(h.out.starts_with(fmt::format("  NAME\n    {} - ", verb))) << verb;
        EXPECT_EQ(vireo({"help", verb}).out, h.out) << verb;
    }
    EXPECT_EQ(vireo({"help", "nosuch"}).err, "error: command or command group 'nosuch' doesn't exist\n");
}

// The disk verbs: their help, virsh's checks before any call, and the
// completion of a domain's disks (test:///default's "test" has vda).
TEST(CliVerbs, DiskVerbsHelpChecksAndCompletion) {
    for (const char* verb : {"domblkstat", "domblkinfo", "blockresize"}) EXPECT_EQ(vireo({verb, "--help"}).exit_code, 0) << verb;
    EXPECT_NE(vireo({"help", "blockresize"}).out.find("blockresize <domain> <path> <size> [--bytes]"), std::string::npos);
    auto no_device = vireo({"domblkinfo", "test"});
    EXPECT_EQ(no_device.exit_code, 1);
    EXPECT_EQ(no_device.err, "error: command 'domblkinfo' requires <device> option\n");
    auto bad_size = vireo({"blockresize", "test", "vda", "12X"});
    EXPECT_EQ(bad_size.exit_code, 1);
    EXPECT_EQ(bad_size.err,
              "error: Scaled numeric value '12X' for <size> option is malformed or out of range\n"
              "error: invalid argument: unknown suffix 'X'\n");
    const std::string bin = (bin_dir() / "vireo").string();
    EXPECT_EQ(run({bin, "_complete", "-c", "test:///default", "domblkstat", "test", ""}).out, "vda\n");
    EXPECT_EQ(run({bin, "_complete", "-c", "test:///default", "domblkinfo", "--all", "test", "v"}).out, "vda\n");
    EXPECT_EQ(run({bin, "_complete", "-c", "test:///default", "blockresize", "test", "--path", ""}).out, "vda\n");
    EXPECT_EQ(run({bin, "_complete", "-c", "test:///default", "blockresize", "test", "vda", ""}).out, "");
}

// snapshot-create-as --print-xml needs no snapshot support; what is not
// supported yet is refused before any call.
TEST(CliVerbs, SnapshotCreateAsPrintsItsDocumentAndRefusesExternalSpecs) {
    auto r = vireo({"snapshot-create-as", "test", "s1", "first & best", "--print-xml"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "<domainsnapshot>\n  <name>s1</name>\n  <description>first &amp; best</description>\n</domainsnapshot>\n");
    r = vireo({"snapshot-create-as", "test", "s1", "--memspec", "file=/tmp/m"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "error: unsupported configuration: --memspec (external memory snapshots) is not supported yet\n");
    // --diskspec is repeatable (and also takes the words after the positional ones, as virsh's).
    r = vireo({"snapshot-create-as", "test", "s1", "--print-xml", "--diskspec", "vda,file=/x/a.ovl", "--diskspec=vdb,snapshot=no"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "<domainsnapshot>\n  <name>s1</name>\n  <disks>\n    <disk name='vda'>\n      <source file='/x/a.ovl'/>\n"
                     "    </disk>\n    <disk name='vdb' snapshot='no'/>\n  </disks>\n</domainsnapshot>\n");
    r = vireo({"snapshot-create-as", "test", "s1", "--print-xml", "--diskspec", "vda,nosuch=1"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "error: unable to parse diskspec: vda,nosuch=1\n");
    r = vireo({"snapshot-info", "test"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "error: --snapshotname or --current is required\n");
}

TEST(CliVerbs, ChangeMediaRefusesConflictingOptions) {
    auto r = vireo({"change-media", "test", "hdc", "--eject", "--insert"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "error: Options --eject, --insert and --update are mutually exclusive\n");
    r = vireo({"change-media", "test", "hdc", "/tmp/x.iso", "--current", "--live"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "error: Options --current and --live/--config are mutually exclusive\n");
}

TEST(CliVerbs, GlobalOptions) {
    const std::string bin = (bin_dir() / "vireo").string();
    auto v = run({bin, "--version"});
    EXPECT_EQ(v.exit_code, 0);
    EXPECT_FALSE(v.out.empty());
    EXPECT_EQ(run({bin, "-v"}).out, v.out);
    auto h = run({bin, "-h"});
    EXPECT_NE(h.out.find("-c | --connect=URI"), std::string::npos);
    EXPECT_EQ(run({bin, "--connect=test:///default", "uri"}).out, "test:///default\n\n");
    auto bad = run({bin, "--frob"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("--frob"), std::string::npos);
    // -q silences the informational messages, not the results.
    EXPECT_EQ(run({bin, "-q", "-c", "test:///default", "suspend test; domstate test"}).out, "paused\n\n");
}

TEST(CliVerbs, InteractiveShellReadsCommandsUntilQuit) {
    auto r = vireo({}, "list --name\ndomid test\nquit\ndomid test\n");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, "test\n\n1\n\n");
    auto eof = vireo({}, "suspend test\ndomstate test\n");
    EXPECT_EQ(eof.out, "Domain 'test' suspended\n\npaused\n\n");
}

TEST(CliVerbs, ConsoleRelaysUntilEndOfInput) {
    auto r = vireo({"console", "test"}, "hello\n");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out.starts_with("Connected to domain 'test'\nEscape character is ^] (Ctrl + ])\n")) << r.out;
    EXPECT_NE(r.out.find("test console: hello"), std::string::npos) << r.out;
    EXPECT_EQ(vireo({"console", "nosuch"}).err, "error: failed to get domain 'nosuch'\n");
}

TEST(CliVerbs, StartWithConsole) {
    auto r = vireo({"destroy test; start test --console"}, "ping\n");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Domain 'test' started\n\nConnected to domain 'test'\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("test console: ping"), std::string::npos) << r.out;
}

TEST(CliVerbs, EventListAndTimeout) {
    EXPECT_EQ(vireo({"event", "--list"}).out, "lifecycle\ndevice-removed\ndevice-removal-failed\nagent-lifecycle\nmemory-device-size-change\n");
    auto r = vireo({"event", "--loop", "--event", "lifecycle", "--timeout", "1"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "event loop timed out\nevents received: 0\n\n");
    EXPECT_EQ(vireo({"event", "--event", "rtc-change"}).exit_code, 1);
}

// An $EDITOR script that applies a sed expression to the file.
std::string sed_editor(const TempDir& dir, const std::string& name, const std::string& expr) {
    const std::string path = (dir / name).string();
    std::ofstream(path) << "#!/bin/sh\nsed -i '" << expr << "' \"$1\"\n";
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
    return path;
}

CommandResult vireo_with_editor(const std::string& editor, const std::string& commands, const std::string& input = {}) {
    return run({"env", "EDITOR=" + editor, "VISUAL=", (bin_dir() / "vireo").string(), "-c", "test:///default",
                commands},
               input);
}

TEST(CliVerbs, EditUnchanged) {
    auto r = vireo_with_editor("true", "edit test");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "Domain 'test' XML configuration not changed.\n\n");
}

TEST(CliVerbs, EditRedefines) {
    TempDir dir;
    auto ed = sed_editor(dir, "ed.sh", "s|<vcpu placement=.static.>2</vcpu>|<vcpu placement=\"static\">3</vcpu>|");
    auto r = vireo_with_editor(ed, "edit test; dumpxml test --inactive");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out.starts_with("Domain 'test' XML configuration edited.\n\n")) << r.out;
    EXPECT_NE(r.out.find(">3</vcpu>"), std::string::npos) << r.out;
}

TEST(CliVerbs, EditErrorOffersToEditAgain) {
    TempDir dir;
    auto ed = sed_editor(dir, "bad.sh", "s|</domain>|</domai>|");
    auto no = vireo_with_editor(ed, "edit test", "?\nn\n");
    EXPECT_EQ(no.exit_code, 1);
    EXPECT_NE(no.out.find("Failed. Try again? [y,n,i,f,?]: "), std::string::npos) << no.out;
    EXPECT_NE(no.out.find("y - yes, start editor again\n"), std::string::npos) << no.out;
    EXPECT_TRUE(no.err.starts_with("error: ")) << no.err;
    // "y" runs the editor again (which breaks it once more), then "n" gives up.
    auto again = vireo_with_editor(ed, "edit test", "y\nn\n");
    EXPECT_EQ(again.exit_code, 1);
    const auto first = again.out.find("Failed. Try again?");
    ASSERT_NE(first, std::string::npos);
    EXPECT_NE(again.out.find("Failed. Try again?", first + 1), std::string::npos) << again.out;
}

TEST(CliVerbs, CommandStringRunsInOrderAndReturnsTheLastStatus) {
    auto r = vireo({"dominfo nosuch; domid test"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, "1\n\n");
    EXPECT_EQ(r.err, "error: failed to get domain 'nosuch'\n");
}

TEST(CliVerbs, BashCompletion) {
    auto r = vireo({"_complete", "dom"});
    EXPECT_NE(r.out.find("dominfo\n"), std::string::npos);
    EXPECT_NE(r.out.find("domstate\n"), std::string::npos);
    EXPECT_FALSE(r.out.starts_with("list\n"));
    EXPECT_EQ(r.out.find("\nlist\n"), std::string::npos);
}

}  // namespace
}  // namespace vireo::test

namespace vireo::test {
namespace {

TEST(CliVerbs, HostValidateUsesVirtHostValidateFormat) {
    auto r = run({(bin_dir() / "vireo").string(), "host-validate"});
    ASSERT_FALSE(r.out.empty()) << r.err;
    bool any_fail = false;
    std::size_t start = 0;
    for (std::size_t nl; (nl = r.out.find('\n', start)) != std::string::npos; start = nl + 1) {
        const std::string line = r.out.substr(start, nl - start);
        EXPECT_TRUE(line.starts_with("  QEMU: Checking ")) << line;
        const bool pass = line.find(": PASS") != std::string::npos, warn = line.find(": WARN") != std::string::npos,
                   failed = line.find(": FAIL") != std::string::npos;
        EXPECT_TRUE(pass || warn || failed) << line;
        any_fail = any_fail || failed;
    }
    EXPECT_EQ(r.exit_code, any_fail ? 1 : 0);
}

}  // namespace
}  // namespace vireo::test
