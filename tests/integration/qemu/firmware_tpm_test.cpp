// UEFI (<os firmware='efi'>, the per-domain NVRAM) and emulated TPMs
// (swtpm) under the real QEMU driver: OVMF booted under TCG until it is
// visibly running, the NVRAM and the TPM state kept across restarts and
// removed by undefine as virsh's flags say.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <thread>

#include "helpers.hpp"
#include "qemu/firmware.hpp"
#include "qemu/swtpm.hpp"
#include "support/guest.hpp"
#include "util/files.hpp"

namespace fs = std::filesystem;
using namespace vireo;
using namespace vireo::qemu::test;

namespace {

// A guest without a disk or kernel: OVMF finds nothing to boot and says so
// on the serial console (the internal EFI shell, or with secure boot its
// refusal of that unsigned shell).
std::string efi_xml(const std::string& name, const std::string& machine, const std::string& firmware_features = "",
                    const std::string& features = "") {
    return fmt::format(R"(<domain type='qemu'>
  <name>{}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os firmware='efi'>
    <type arch='x86_64' machine='{}'>hvm</type>
    {}
  </os>
  <features><acpi/><apic/>{}</features>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
)",
                       name, machine, firmware_features, features);
}

std::string skip_reason() {
    if (vireo::test::which("qemu-system-x86_64").empty()) return "qemu-system-x86_64 is not installed";
    auto descriptors = qemu::load_firmware_descriptors(qemu::firmware_search_dirs());
    if (!descriptors || descriptors->empty()) return "no QEMU firmware descriptors (apt-get install ovmf)";
    return {};
}

ino_t inode_of(const fs::path& p) {
    struct stat st{};
    return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

int count_of(const std::string& text, const std::string& needle) {
    int n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
    return n;
}

// Whether no swtpm serves `state` (waited for a little: it ends with QEMU).
bool swtpm_gone(const fs::path& state) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
        bool found = false;
        for (const auto& e : fs::directory_iterator("/proc")) {
            auto cmd = files::read(e.path() / "cmdline");
            if (!cmd) continue;
            std::string c = *cmd;
            for (char& ch : c)
                if (ch == '\0') ch = ' ';
            if (c.find("swtpm socket") != std::string::npos && c.find(state.string()) != std::string::npos) {
                auto st = files::read(e.path() / "stat");
                if (st && st->find(") Z") == std::string::npos) found = true;
            }
        }
        if (!found) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

// Wait until the console log holds `needle` `count` times.
bool wait_console(GuestFixture& f, const std::string& name, const std::string& needle, int count,
                  std::string* text) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
    for (;;) {
        auto r = files::read(f.drv->console_log_path(name));
        *text = r ? *r : "";
        if (count_of(*text, needle) >= count) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

std::string live_xml(GuestFixture& f, const std::string& name, bool inactive) {
    auto x = f.drv->domain_xml(name, inactive);
    EXPECT_TRUE(x) << x.error().full_message();
    return x ? *x : "";
}

}  // namespace

TEST(Uefi, OvmfBootsAndItsNvramSurvivesRestartsUntilUndefineRemovesIt) {
    if (auto why = skip_reason(); !why.empty()) VIREO_SKIP(why);
    GuestFixture f;
    ASSERT_TRUE(f.drv->define_domain(efi_xml("uefi1", "pc"), true));
    // libvirt 9.0 keeps the request in the inactive XML; the choice is made at start.
    const std::string inactive = live_xml(f, "uefi1", true);
    EXPECT_NE(inactive.find("<os firmware='efi'>"), std::string::npos) << inactive;
    EXPECT_EQ(inactive.find("<loader"), std::string::npos) << inactive;

    const fs::path nvram = f.tmp / "conf" / "nvram" / "uefi1_VARS.fd";
    ASSERT_TRUE(f.drv->start_domain("uefi1", {})) << "start";
    const std::string live = live_xml(f, "uefi1", false);
    EXPECT_NE(live.find("<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>"),
              std::string::npos)
        << live;
    EXPECT_NE(live.find(fmt::format("<nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>{}</nvram>", nvram.string())),
              std::string::npos)
        << live;
    std::string console;
    ASSERT_TRUE(wait_console(f, "uefi1", "UEFI Interactive Shell", 1, &console)) << console;
    ASSERT_TRUE(f.drv->destroy_domain("uefi1", {}));
    ASSERT_TRUE(fs::exists(nvram));
    const ino_t inode = inode_of(nvram);
    auto first = files::read(nvram);
    auto tmpl = files::read("/usr/share/OVMF/OVMF_VARS_4M.fd");
    ASSERT_TRUE(first && tmpl);
    EXPECT_NE(*first, *tmpl) << "OVMF wrote its boot options into the NVRAM";

    // A restart uses the same store (not a new copy of the template).
    ASSERT_TRUE(f.drv->start_domain("uefi1", {}));
    ASSERT_TRUE(wait_console(f, "uefi1", "UEFI Interactive Shell", 2, &console)) << console;
    ASSERT_TRUE(f.drv->destroy_domain("uefi1", {}));
    EXPECT_EQ(inode_of(nvram), inode);

    // virsh undefine refuses, --keep-nvram keeps it, --nvram removes it.
    auto refused = f.drv->undefine_domain("uefi1", {});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().message, "Requested operation is not valid: cannot undefine domain with nvram");
    ASSERT_TRUE(f.drv->undefine_domain("uefi1", {.keep_nvram = true}));
    EXPECT_TRUE(fs::exists(nvram));
    EXPECT_FALSE(f.drv->lookup_domain("uefi1"));
    ASSERT_TRUE(f.drv->define_domain(efi_xml("uefi1", "pc"), true));
    ASSERT_TRUE(f.drv->undefine_domain("uefi1", {.nvram = true}));
    EXPECT_FALSE(fs::exists(nvram));
}

// Secure boot as virt-install's --boot uefi on q35 gets it: the enrolled
// firmware with SMM, and OVMF refusing its own unsigned shell.
TEST(Uefi, SecureBootOnQ35RunsWithSmmAndRefusesUnsignedCode) {
    if (auto why = skip_reason(); !why.empty()) VIREO_SKIP(why);
    GuestFixture f;
    ASSERT_TRUE(f.drv->define_domain(efi_xml("uefisb", "q35",
                                             "<firmware><feature enabled='yes' name='secure-boot'/>"
                                             "<feature enabled='yes' name='enrolled-keys'/></firmware>"),
                                     true));
    auto st = f.drv->start_domain("uefisb", {});
    ASSERT_TRUE(st) << st.error().full_message();
    const std::string live = live_xml(f, "uefisb", false);
    EXPECT_NE(live.find("<loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>"),
              std::string::npos)
        << live;
    EXPECT_NE(live.find("<smm state='on'/>"), std::string::npos) << live;
    auto log = files::read(f.drv->log_path("uefisb"));
    ASSERT_TRUE(log);
    EXPECT_NE(log->find("-global driver=cfi.pflash01,property=secure,value=on"), std::string::npos);
    EXPECT_NE(log->find("smm=on"), std::string::npos);
    std::string console;
    EXPECT_TRUE(wait_console(f, "uefisb", "Security Violation", 1, &console)) << console;
    ASSERT_TRUE(f.drv->destroy_domain("uefisb", {}));
    ASSERT_TRUE(f.drv->undefine_domain("uefisb", {.nvram = true}));
}

TEST(Uefi, NoMatchingFirmwareRefusesTheStartAndCreatesNothing) {
    if (auto why = skip_reason(); !why.empty()) VIREO_SKIP(why);
    GuestFixture f;
    ASSERT_TRUE(f.drv->define_domain(
        efi_xml("uefinone", "pc", "<firmware><feature enabled='yes' name='secure-boot'/></firmware>"), true));
    auto st = f.drv->start_domain("uefinone", {});
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().full_message().find("Unable to find any firmware to satisfy 'efi'"), std::string::npos)
        << st.error().full_message();
    EXPECT_FALSE(fs::exists(f.tmp / "conf" / "nvram" / "uefinone_VARS.fd"));
    ASSERT_TRUE(f.drv->undefine_domain("uefinone", {}));  // no NVRAM: no flag needed
}

// An emulated TPM 2.0: the guest's kernel finds it, its state is made once
// and kept across restarts; undefine removes it unless told to keep it.
TEST(Tpm, GuestSeesTpmStateSurvivesRestartAndUndefineRemovesIt) {
    if (auto why = vireo::test::guest_unavailable_reason(); !why.empty()) VIREO_SKIP(why);
    if (vireo::test::which("swtpm").empty() || vireo::test::which("swtpm_setup").empty())
        VIREO_SKIP("swtpm is not installed (apt-get install swtpm swtpm-tools)");
    GuestFixture f;
    const std::string tpm = "<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>";
    f.define_and_start("tpm1", tpm);
    f.wait_ready("tpm1");
    auto uuid = f.drv->lookup_domain("tpm1")->uuid;
    const fs::path swtpmdir = f.tmp / "conf" / "swtpm";
    const fs::path state = qemu::swtpm_state_dir(swtpmdir, uuid, "2.0");
    EXPECT_TRUE(fs::exists(state / "tpm2-00.permall"));
    {
        auto c = f.console("tpm1");
        auto out = c.run("cat /sys/class/tpm/tpm0/tpm_version_major", std::chrono::seconds(30));
        ASSERT_TRUE(out);
        // A line "2" (TPM 2.0); the output may or may not start with the
        // echo of the command, so the first line counts too.
        EXPECT_NE(("\n" + *out).find("\n2\n"), std::string::npos) << *out;
    }
    ASSERT_TRUE(f.drv->destroy_domain("tpm1", {}));
    EXPECT_TRUE(swtpm_gone(state)) << "swtpm stopped with QEMU";

    ASSERT_TRUE(f.drv->start_domain("tpm1", {}));
    f.wait_ready("tpm1", 2);
    {
        auto c = f.console("tpm1");
        auto out = c.run("cat /sys/class/tpm/tpm0/tpm_version_major", std::chrono::seconds(30));
        ASSERT_TRUE(out);
        // A line "2" (TPM 2.0); the output may or may not start with the
        // echo of the command, so the first line counts too.
        EXPECT_NE(("\n" + *out).find("\n2\n"), std::string::npos) << *out;
    }
    ASSERT_TRUE(f.drv->destroy_domain("tpm1", {}));
    // Manufactured once: the second start used the kept state.
    auto log = files::read(f.tmp / "log" / "tpm1-swtpm.log");
    ASSERT_TRUE(log);
    EXPECT_EQ(count_of(*log, "Starting vTPM manufacturing"), 1) << *log;
    EXPECT_TRUE(fs::exists(state / "tpm2-00.permall"));
    EXPECT_TRUE(swtpm_gone(state));

    // --keep-tpm keeps it; the default (libvirt 9.0) and --tpm remove it.
    ASSERT_TRUE(f.drv->undefine_domain("tpm1", {.keep_tpm = true}));
    EXPECT_TRUE(fs::exists(state));
    ASSERT_TRUE(f.drv->define_domain(guest_xml("tpm1", tpm, "", fmt::format("<uuid>{}</uuid>", uuid.str())), true));
    ASSERT_TRUE(f.drv->undefine_domain("tpm1", {.tpm = true}));
    EXPECT_FALSE(fs::exists(state.parent_path()));
}
