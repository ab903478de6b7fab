// The disk-booted test guest (tests/guest/build-disk.sh) under the QEMU
// driver: firmware, GRUB from the disk, the same kernel and marker as the
// direct-boot guest. SeaBIOS on pc and q35 (GRUB i386-pc from the BIOS boot
// partition), OVMF on q35 (shim + GRUB from the ESP's removable-media path,
// no NVRAM boot entry). Each boot uses its own overlay of the shared image.
#include <gtest/gtest.h>

#include <filesystem>

#include "helpers.hpp"
#include "support/guest.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::qemu::test;
namespace fs = std::filesystem;

namespace {

class DiskGuest : public ::testing::Test {
protected:
    void SetUp() override {
        if (auto why = vireo::test::disk_guest_unavailable_reason(); !why.empty()) VIREO_SKIP(why);
    }

    // Define `name` on `machine` with `os_extra` in <os>, start it and wait
    // for the marker.
    void boot(const std::string& name, const std::string& machine, const std::string& os_extra = "",
              const std::string& needs = "") {
        const fs::path overlay = g_.tmp / (name + ".qcow2");
        ASSERT_EQ(vireo::test::disk_guest_overlay(overlay), "");
        auto d = g_.drv->define_domain(vireo::test::disk_guest_domain_xml(name, machine, overlay, os_extra), true);
        ASSERT_TRUE(d) << d.error().full_message();
        auto st = g_.drv->start_domain(name, {});
        ASSERT_TRUE(st) << st.error().full_message() << needs;
        g_.wait_ready(name);
        auto ready = vireo::test::parse_guest_ready(*files::read(g_.drv->console_log_path(name)));
        ASSERT_TRUE(ready);
        EXPECT_EQ(ready->disks, std::vector<std::string>{"vda"});
    }

    GuestFixture g_;
};

}  // namespace

TEST_F(DiskGuest, BootsUnderSeaBiosOnPc) { boot("disk-bios-pc", "pc"); }

TEST_F(DiskGuest, BootsUnderSeaBiosOnQ35) { boot("disk-bios-q35", "q35"); }

// OVMF named explicitly, the NVRAM file made by the test from the template
// (what libvirt's loader/nvram elements name, without relying on the copy).
TEST_F(DiskGuest, BootsUnderOvmfOnQ35) {
    if (!fs::exists(vireo::test::kOvmfCode)) VIREO_SKIP("OVMF is not installed (Debian package ovmf)");
    const fs::path vars = g_.tmp / "disk-uefi-q35_VARS.fd";
    fs::copy_file(vireo::test::kOvmfVars, vars);
    boot("disk-uefi-q35", "q35",
         fmt::format("<loader readonly='yes' type='pflash'>{}</loader><nvram template='{}'>{}</nvram>",
                     vireo::test::kOvmfCode, vireo::test::kOvmfVars, vars.string()));
}

// As virt-install and libvirt users write it: the NVRAM file does not exist
// yet, start makes it from the template.
TEST_F(DiskGuest, BootsUnderOvmfWithNvramFromItsTemplate) {
    if (!fs::exists(vireo::test::kOvmfCode)) VIREO_SKIP("OVMF is not installed (Debian package ovmf)");
    const fs::path vars = g_.tmp / "nvram" / "disk-uefi-tmpl_VARS.fd";
    boot("disk-uefi-tmpl", "q35",
         fmt::format("<loader readonly='yes' type='pflash'>{}</loader><nvram template='{}'>{}</nvram>",
                     vireo::test::kOvmfCode, vireo::test::kOvmfVars, vars.string()));
    EXPECT_TRUE(fs::exists(vars));
}
