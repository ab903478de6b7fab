// UEFI firmware autoselection (qemu/firmware.hpp) against descriptors written
// for the tests (tests/data/qemu/firmware: Debian's OVMF descriptors).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "qemu/firmware.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

namespace fs = std::filesystem;
using namespace vireo;

namespace {

fs::path data_dir() { return test::source_dir() / "tests" / "data" / "qemu" / "firmware"; }

std::vector<qemu::FirmwareDescriptor> debian_descriptors() {
    auto d = qemu::load_firmware_descriptors({data_dir()});
    EXPECT_TRUE(d) << d.error().full_message();
    return d ? *d : std::vector<qemu::FirmwareDescriptor>{};
}

conf::DomainDef efi_domain(std::string machine, std::vector<std::pair<std::string, std::string>> features = {}) {
    conf::DomainDef def;
    def.name = "guest";
    def.os.type = "hvm";
    def.os.arch = "x86_64";
    def.os.machine = std::move(machine);
    def.os.firmware = "efi";
    def.os.firmware_features = std::move(features);
    def.features_present = true;
    def.features.push_back({"acpi", {}, {}});
    def.features.push_back({"apic", {}, {}});
    return def;
}

std::string chosen(const conf::DomainDef& def) {
    auto all = debian_descriptors();
    auto c = qemu::select_firmware(def, all);
    if (!c) return "error: " + c.error().message;
    return c->descriptor->path.filename().string();
}

}  // namespace

TEST(Firmware, ParsesAFlashDescriptor) {
    auto all = debian_descriptors();
    ASSERT_EQ(all.size(), 3u);
    const auto& d = all.front();
    EXPECT_EQ(d.path.filename().string(), "40-edk2-x86_64-secure-enrolled.json");
    EXPECT_EQ(d.interface_types, std::vector<std::string>{"uefi"});
    EXPECT_EQ(d.device, "flash");
    EXPECT_EQ(d.mode, "split");
    EXPECT_EQ(d.executable, "/usr/share/OVMF/OVMF_CODE_4M.ms.fd");
    EXPECT_EQ(d.nvram_template, "/usr/share/OVMF/OVMF_VARS_4M.ms.fd");
    ASSERT_EQ(d.targets.size(), 1u);
    EXPECT_EQ(d.targets[0].architecture, "x86_64");
    EXPECT_EQ(d.targets[0].machines, std::vector<std::string>{"pc-q35-*"});
    EXPECT_TRUE(d.has_feature("requires-smm"));
    EXPECT_TRUE(d.has_feature("enrolled-keys"));
}

TEST(Firmware, MalformedDescriptorIsAnErrorNamingTheFile) {
    auto d = qemu::parse_firmware_descriptor("{\"interface-types\": [\"uefi\"]}", "/x/10-bad.json");
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().message.find("/x/10-bad.json"), std::string::npos);
    EXPECT_FALSE(qemu::parse_firmware_descriptor("not json", "/x/y.json"));
}

// libvirt 9.0 with Debian's descriptors: q35 takes the first (secure boot,
// keys enrolled), i440fx the plain one (the others need SMM, q35 only).
TEST(Firmware, SelectsByPriorityMachineAndFeatures) {
    EXPECT_EQ(chosen(efi_domain("pc-q35-7.2")), "40-edk2-x86_64-secure-enrolled.json");
    EXPECT_EQ(chosen(efi_domain("pc-i440fx-7.2")), "60-edk2-x86_64.json");
    EXPECT_EQ(chosen(efi_domain("pc-q35-7.2", {{"secure-boot", "no"}})), "60-edk2-x86_64.json");
    EXPECT_EQ(chosen(efi_domain("pc-q35-7.2", {{"secure-boot", "yes"}, {"enrolled-keys", "no"}})),
              "50-edk2-x86_64-secure.json");
    EXPECT_EQ(chosen(efi_domain("pc-q35-7.2", {{"enrolled-keys", "yes"}})), "40-edk2-x86_64-secure-enrolled.json");
    EXPECT_EQ(chosen(efi_domain("pc-i440fx-7.2", {{"secure-boot", "yes"}})),
              "error: operation failed: Unable to find any firmware to satisfy 'efi'");
    auto arm = efi_domain("virt-7.2");
    arm.os.arch = "aarch64";
    EXPECT_EQ(chosen(arm), "error: operation failed: Unable to find any firmware to satisfy 'efi'");
}

TEST(Firmware, LoaderSecureAttributeActsAsAFeatureRequest) {
    auto def = efi_domain("pc-q35-7.2");
    def.os.loader_secure = "no";
    EXPECT_EQ(chosen(def), "60-edk2-x86_64.json");
}

// A file in a higher-priority directory replaces the one of the same name;
// an empty one hides it; the order is by file name across directories.
TEST(Firmware, HigherPriorityDirectoriesOverrideByName) {
    test::TempDir tmp;
    const fs::path sys = tmp / "usr", etc = tmp / "etc", user = tmp / "user";
    for (const auto& d : {sys, etc, user}) fs::create_directories(d);
    for (const auto& e : fs::directory_iterator(data_dir())) fs::copy_file(e.path(), sys / e.path().filename());
    // etc: the enrolled one hidden, and a plain one for q35 first of all.
    ASSERT_TRUE(files::write_atomic(etc / "40-edk2-x86_64-secure-enrolled.json", ""));
    auto plain = files::read(data_dir() / "60-edk2-x86_64.json");
    ASSERT_TRUE(plain);
    std::string mine = *plain;
    mine.replace(mine.find("/usr/share/OVMF/OVMF_CODE_4M.fd"), 31, "/opt/mine/CODE.fd");
    ASSERT_TRUE(files::write_atomic(user / "10-mine.json", mine));
    ASSERT_TRUE(files::write_atomic(etc / "10-mine.json", *plain));  // replaced by the user's

    auto all = qemu::load_firmware_descriptors({sys, etc, user});
    ASSERT_TRUE(all) << all.error().full_message();
    ASSERT_EQ(all->size(), 3u);
    EXPECT_EQ((*all)[0].path.string(), (user / "10-mine.json").string());
    EXPECT_EQ((*all)[0].executable, "/opt/mine/CODE.fd");
    EXPECT_EQ((*all)[1].path.filename().string(), "50-edk2-x86_64-secure.json");
    EXPECT_EQ((*all)[2].path.filename().string(), "60-edk2-x86_64.json");
    auto c = qemu::select_firmware(efi_domain("pc-q35-7.2"), *all);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->descriptor->executable, "/opt/mine/CODE.fd");
}

TEST(Firmware, ApplyFillsTheLiveDefinitionAsLibvirt) {
    auto all = debian_descriptors();
    auto def = efi_domain("pc-q35-7.2");
    ASSERT_TRUE(qemu::apply_firmware(def, all, "/var/lib/vireo/qemu/nvram/guest_VARS.fd"));
    EXPECT_EQ(def.os.firmware, "");  // the live XML shows the choice, as libvirt's
    EXPECT_EQ(def.os.loader, "/usr/share/OVMF/OVMF_CODE_4M.ms.fd");
    EXPECT_EQ(def.os.loader_readonly, "yes");
    EXPECT_EQ(def.os.loader_type, "pflash");
    EXPECT_EQ(def.os.loader_secure, "yes");
    EXPECT_EQ(def.os.nvram_template, "/usr/share/OVMF/OVMF_VARS_4M.ms.fd");
    EXPECT_EQ(def.os.nvram, "/var/lib/vireo/qemu/nvram/guest_VARS.fd");
    ASSERT_EQ(def.features.size(), 3u);
    EXPECT_EQ(def.features[2].name, "smm");

    auto pc = efi_domain("pc-i440fx-7.2");
    ASSERT_TRUE(qemu::apply_firmware(pc, all, "/n/pc_VARS.fd"));
    EXPECT_EQ(pc.os.loader, "/usr/share/OVMF/OVMF_CODE_4M.fd");
    EXPECT_EQ(pc.os.loader_secure, "");
    EXPECT_EQ(pc.features.size(), 2u);  // no SMM

    auto off = efi_domain("pc-q35-7.2");
    off.features.push_back({"smm", {{"state", "off"}}, {}});
    auto r = qemu::apply_firmware(off, all, "/n/off_VARS.fd");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message,
              "Requested operation is not valid: domain has SMM turned off but chosen firmware requires it");
}

TEST(Firmware, ExplicitLoaderGetsTheTemplateOfItsDescriptor) {
    auto all = debian_descriptors();
    conf::DomainDef def;
    def.name = "explicit";
    def.os.loader = "/usr/share/OVMF/OVMF_CODE_4M.fd";
    def.os.loader_type = "pflash";
    def.os.nvram = "/n/explicit_VARS.fd";
    ASSERT_TRUE(qemu::apply_firmware(def, all, ""));
    EXPECT_EQ(def.os.nvram_template, "/usr/share/OVMF/OVMF_VARS_4M.fd");
    EXPECT_EQ(def.os.nvram, "/n/explicit_VARS.fd");
}

TEST(Firmware, NvramPathOfADefinition) {
    auto def = efi_domain("pc-q35-7.2");
    EXPECT_EQ(qemu::domain_nvram_path(def, "/var/lib/vireo/qemu/nvram").string(), "/var/lib/vireo/qemu/nvram/guest_VARS.fd");
    def.os.nvram = "/elsewhere/g.fd";
    EXPECT_EQ(qemu::domain_nvram_path(def, "/var/lib/vireo/qemu/nvram").string(), "/elsewhere/g.fd");
    conf::DomainDef bios;
    bios.name = "bios";
    EXPECT_TRUE(qemu::domain_nvram_path(bios, "/d").empty());
}

TEST(Firmware, NvramIsCopiedFromItsTemplateOnceAndKept) {
    test::TempDir tmp;
    ASSERT_TRUE(files::write_atomic(tmp / "VARS.fd", std::string(4096, 'v')));
    const fs::path nvram = tmp / "nvram" / "guest_VARS.fd";
    ASSERT_TRUE(qemu::ensure_nvram(nvram, tmp / "VARS.fd"));
    auto first = files::read(nvram);
    ASSERT_TRUE(first);
    EXPECT_EQ(*first, std::string(4096, 'v'));
    struct stat st{};
    ASSERT_EQ(::stat(nvram.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // What the guest wrote survives: an existing store is never replaced.
    ASSERT_TRUE(files::write_replace(nvram, "guest wrote this"));
    ASSERT_TRUE(qemu::ensure_nvram(nvram, tmp / "VARS.fd"));
    EXPECT_EQ(*files::read(nvram), "guest wrote this");
    // No template and no store: refused, naming the file.
    auto r = qemu::ensure_nvram(tmp / "other_VARS.fd", "");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("other_VARS.fd"), std::string::npos);
    // No leftovers beside it.
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp / "nvram")) ++n;
    EXPECT_EQ(n, 1u);
}
