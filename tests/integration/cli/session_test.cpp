// vireo against a real vireod (qemu:///session, auto-started by the CLI on
// temporary directories, so the user's ~/.config is never touched) running
// the real test guest under QEMU/TCG: every verb as a user types it, with
// the output and exit codes a user sees.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include <fmt/format.h>

#include "support/guest.hpp"
#include "support/session_cli.hpp"
#include "support/support.hpp"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;

class CliSession : public SessionGuestTest {
protected:
    std::vector<std::string> vireo_argv(const std::vector<std::string>& args, const std::string& extra_env = {}) {
        return cli_.argv(args, extra_env);
    }
    CommandResult vireo(const std::vector<std::string>& args, const std::string& input = {}) {
        return cli_(args, input);
    }

    // Define the test guest as `name`; returns the XML file's path.
    std::string define_guest(const std::string& name) {
        const std::string path = (dir_ / (name + ".xml")).string();
        std::ofstream(path) << guest_domain_xml(name);
        return path;
    }

    // Attach `vireo console` and run a shell command in the guest until its
    // output shows up (the command is re-sent while the guest still boots).
    // With `condition`, the answer counts only once that shell test holds.
    bool guest_answers(const std::string& name, const std::string& condition = "true") {
        auto console = QemuProcess::start(vireo_argv({"console", name}));
        if (!console) {
            ADD_FAILURE() << console.error().full_message();
            return false;
        }
        const auto deadline = std::chrono::steady_clock::now() + 180s;
        while (std::chrono::steady_clock::now() < deadline) {
            console->send(condition + " && echo VIREO-CLI-$((40+2))\n");
            if (console->wait_for(std::regex("VIREO-CLI-42"), 5s)) return true;
        }
        return false;
    }
};

TEST_F(CliSession, HostVerbs) {
    auto uri = vireo({"uri"});
    ASSERT_EQ(uri.exit_code, 0) << uri.err;
    EXPECT_EQ(uri.out, "qemu:///session\n\n");
    auto version = vireo({"version", "--daemon"});
    EXPECT_EQ(version.exit_code, 0) << version.err;
    EXPECT_NE(version.out.find("Running hypervisor: QEMU "), std::string::npos) << version.out;
    EXPECT_NE(version.out.find("Running against daemon: "), std::string::npos) << version.out;
    EXPECT_EQ(vireo({"hostname"}).exit_code, 0);
    auto node = vireo({"nodeinfo"});
    EXPECT_TRUE(node.out.starts_with("CPU model:           x86_64\n")) << node.out << node.err;
    EXPECT_NE(vireo({"capabilities"}).out.find("<capabilities>"), std::string::npos);
    auto dcaps = vireo({"domcapabilities", "--virttype", "qemu"});
    EXPECT_EQ(dcaps.exit_code, 0) << dcaps.err;
    EXPECT_NE(dcaps.out.find("<domainCapabilities>"), std::string::npos);
    EXPECT_EQ(vireo({"list", "--all"}).out, " Id   Name   State\n--------------------\n\n");
    auto missing = vireo({"dominfo", "nosuch"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_EQ(missing.err, "error: failed to get domain 'nosuch'\n");
}

TEST_F(CliSession, DefineEditCreateUndefine) {
    const std::string file = define_guest("cli-def");
    auto def = vireo({"define", file, "--validate"});
    ASSERT_EQ(def.exit_code, 0) << def.err;
    EXPECT_EQ(def.out, fmt::format("Domain 'cli-def' defined from {}\n\n", file));
    EXPECT_EQ(vireo({"list", "--all"}).out,
              " Id   Name      State\n--------------------------\n -    cli-def   shut off\n\n");
    EXPECT_EQ(vireo({"domstate", "cli-def", "--reason"}).out, "shut off (unknown)\n\n");
    EXPECT_EQ(vireo({"domid", "cli-def"}).out, "-\n\n");
    auto uuid = vireo({"domuuid", "cli-def"});
    ASSERT_EQ(uuid.exit_code, 0);
    EXPECT_EQ(vireo({"domname", uuid.out.substr(0, 36)}).out, "cli-def\n\n");
    EXPECT_NE(vireo({"dumpxml", "cli-def", "--inactive"}).out.find("<name>cli-def</name>"), std::string::npos);
    EXPECT_EQ(vireo({"autostart", "cli-def"}).out, "Domain 'cli-def' marked as autostarted\n\n");
    EXPECT_EQ(vireo({"list", "--all", "--autostart", "--name"}).out, "cli-def\n\n");
    EXPECT_EQ(vireo({"autostart", "--disable", "cli-def"}).out, "Domain 'cli-def' unmarked as autostarted\n\n");
    EXPECT_EQ(vireo({"desc", "cli-def", "--config", "a test guest"}).out, "Domain description updated successfully\n");
    EXPECT_EQ(vireo({"desc", "cli-def", "--config"}).out, "a test guest\n");

    // edit: the change goes through the daemon (define), never to its files directly.
    const std::string editor = (dir_ / "ed.sh").string();
    std::ofstream(editor) << "#!/bin/sh\nsed -i 's|<vcpu placement=.static.>1</vcpu>|<vcpu placement=\"static\">2</vcpu>|' \"$1\"\n";
    std::filesystem::permissions(editor, std::filesystem::perms::owner_all);
    auto edit = run(vireo_argv({"edit", "cli-def"}, "EDITOR=" + editor));
    EXPECT_EQ(edit.exit_code, 0) << edit.err;
    EXPECT_EQ(edit.out, "Domain 'cli-def' XML configuration edited.\n\n");
    EXPECT_NE(vireo({"dominfo", "cli-def"}).out.find("CPU(s):         2\n"), std::string::npos);
    const std::string breaker = (dir_ / "bad.sh").string();
    std::ofstream(breaker) << "#!/bin/sh\nsed -i 's|</domain>|</domai>|' \"$1\"\n";
    std::filesystem::permissions(breaker, std::filesystem::perms::owner_all);
    auto bad = run(vireo_argv({"edit", "cli-def"}, "EDITOR=" + breaker), "n\n");
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.out.find("Failed. Try again? [y,n,i,f,?]: "), std::string::npos) << bad.out;

    auto undef = vireo({"undefine", "cli-def", "--nvram", "--managed-save"});
    EXPECT_EQ(undef.exit_code, 0) << undef.err;
    EXPECT_EQ(undef.out, "Domain 'cli-def' has been undefined\n\n");
    EXPECT_EQ(vireo({"list", "--all", "--name"}).out, "\n");

    // create: a transient guest, gone once destroyed.
    const std::string tfile = define_guest("cli-tr");
    auto create = vireo({"create", tfile});
    ASSERT_EQ(create.exit_code, 0) << create.err;
    EXPECT_EQ(create.out, fmt::format("Domain 'cli-tr' created from {}\n\n", tfile));
    EXPECT_EQ(vireo({"list", "--transient", "--name"}).out, "cli-tr\n\n");
    EXPECT_EQ(vireo({"destroy", "cli-tr"}).out, "Domain 'cli-tr' destroyed\n\n");
    EXPECT_EQ(vireo({"list", "--all", "--name"}).out, "\n");
}

TEST_F(CliSession, LifecycleConsoleAndEvents) {
    const std::string file = define_guest("cli-vm");
    ASSERT_EQ(vireo({"define", file}).exit_code, 0);
    auto events = QemuProcess::start(vireo_argv({"event", "--loop", "--event", "lifecycle", "--timeout", "400"}));
    ASSERT_TRUE(events) << events.error().full_message();

    auto start = vireo({"start", "cli-vm"});
    ASSERT_EQ(start.exit_code, 0) << start.err;
    EXPECT_EQ(start.out, "Domain 'cli-vm' started\n\n");
    EXPECT_TRUE(events->wait_for(std::regex("event 'lifecycle' for domain 'cli-vm': Started Booted"), 60s));
    ASSERT_TRUE(guest_answers("cli-vm")) << "the guest never answered on its serial console";

    auto list = vireo({"list"});
    EXPECT_TRUE(std::regex_search(list.out, std::regex(R"( [0-9]+ +cli-vm +running\n)"))) << list.out;
    EXPECT_EQ(vireo({"domstate", "cli-vm", "--reason"}).out, "running (booted)\n\n");
    auto info = vireo({"dominfo", "cli-vm"});
    EXPECT_NE(info.out.find("State:          running\n"), std::string::npos) << info.out;
    EXPECT_NE(info.out.find("Max memory:     163840 KiB\n"), std::string::npos) << info.out;
    EXPECT_EQ(vireo({"domblklist", "cli-vm"}).exit_code, 0);
    EXPECT_EQ(vireo({"domiflist", "cli-vm"}).exit_code, 0);
    EXPECT_NE(vireo({"dumpxml", "cli-vm"}).out.find("<domain type='qemu' id="), std::string::npos);

    EXPECT_EQ(vireo({"suspend", "cli-vm"}).out, "Domain 'cli-vm' suspended\n\n");
    EXPECT_EQ(vireo({"domstate", "cli-vm", "--reason"}).out, "paused (user)\n\n");
    EXPECT_TRUE(events->wait_for(std::regex("for domain 'cli-vm': Suspended Paused"), 30s));
    EXPECT_EQ(vireo({"resume", "cli-vm"}).out, "Domain 'cli-vm' resumed\n\n");
    EXPECT_TRUE(events->wait_for(std::regex("for domain 'cli-vm': Resumed Unpaused"), 30s));

    EXPECT_EQ(vireo({"reset", "cli-vm"}).out, "Domain 'cli-vm' was reset\n\n");
    ASSERT_TRUE(guest_answers("cli-vm")) << "no answer after reset";
    // reboot goes through the guest (ACPI), so the old shell may still answer
    // for a while: a file made before the reboot tells the two boots apart.
    ASSERT_TRUE(guest_answers("cli-vm", "touch /tmp/before-reboot"));
    EXPECT_EQ(vireo({"reboot", "cli-vm"}).out, "Domain 'cli-vm' is being rebooted\n\n");
    ASSERT_TRUE(guest_answers("cli-vm", "! test -e /tmp/before-reboot")) << "no answer after reboot";

    // shutdown asks the guest (ACPI) and returns at once; the guest powers off.
    EXPECT_EQ(vireo({"shutdown", "cli-vm"}).out, "Domain 'cli-vm' is being shutdown\n\n");
    EXPECT_TRUE(events->wait_for(std::regex("for domain 'cli-vm': Stopped Shutdown"), 120s));
    EXPECT_EQ(vireo({"domstate", "cli-vm"}).out, "shut off\n\n");

    // start --paused, then destroy --graceful.
    EXPECT_EQ(vireo({"start", "--paused", "cli-vm"}).exit_code, 0);
    EXPECT_EQ(vireo({"domstate", "cli-vm"}).out, "paused\n\n");
    EXPECT_EQ(vireo({"destroy", "cli-vm", "--graceful"}).out, "Domain 'cli-vm' destroyed\n\n");
    EXPECT_EQ(vireo({"domstate", "cli-vm", "--reason"}).out, "shut off (destroyed)\n\n");
    EXPECT_TRUE(events->wait_for(std::regex("for domain 'cli-vm': Stopped Destroyed"), 30s));
}

TEST_F(CliSession, SaveRestoreAndManagedSave) {
    const std::string file = define_guest("cli-sv");
    ASSERT_EQ(vireo({"define", file}).exit_code, 0);
    ASSERT_EQ(vireo({"start", "cli-sv"}).exit_code, 0);
    ASSERT_TRUE(guest_answers("cli-sv"));

    const std::string image = (dir_ / "cli-sv.save").string();
    auto save = vireo({"save", "cli-sv", image});
    ASSERT_EQ(save.exit_code, 0) << save.err;
    EXPECT_EQ(save.out, fmt::format("\nDomain 'cli-sv' saved to {}\n\n", image));
    EXPECT_EQ(vireo({"domstate", "cli-sv", "--reason"}).out, "shut off (saved)\n\n");
    auto restore = vireo({"restore", image});
    ASSERT_EQ(restore.exit_code, 0) << restore.err;
    EXPECT_EQ(restore.out, fmt::format("Domain restored from {}\n\n", image));
    EXPECT_EQ(vireo({"domstate", "cli-sv"}).out, "running\n\n");
    ASSERT_TRUE(guest_answers("cli-sv")) << "the restored guest does not answer";

    auto managed = vireo({"managedsave", "cli-sv"});
    ASSERT_EQ(managed.exit_code, 0) << managed.err;
    EXPECT_EQ(managed.out, "\nDomain 'cli-sv' state saved by vireo\n\n");
    EXPECT_NE(vireo({"dominfo", "cli-sv"}).out.find("Managed save:   yes\n"), std::string::npos);
    EXPECT_EQ(vireo({"start", "cli-sv"}).out, "Domain 'cli-sv' started\n\n");
    EXPECT_EQ(vireo({"domstate", "cli-sv", "--reason"}).out, "running (restored)\n\n");
    ASSERT_TRUE(guest_answers("cli-sv")) << "the guest restored from its managed save does not answer";

    ASSERT_EQ(vireo({"managedsave", "cli-sv"}).exit_code, 0);
    EXPECT_EQ(vireo({"managedsave-remove", "cli-sv"}).out, "Removed managedsave image for domain 'cli-sv'\n");
    EXPECT_EQ(vireo({"managedsave-remove", "cli-sv"}).out,
              "Domain 'cli-sv' has no manage save image; removal skipped\n");
}

}  // namespace
}  // namespace vireo::test
