// Starting domains that cannot start: a clear error, nothing left behind.
#include <gtest/gtest.h>

#include "helpers.hpp"
#include "qemu/host.hpp"
#include "qemu/probe.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::qemu::test;
namespace fs = std::filesystem;

namespace {

std::string disk_xml(const std::string& path, const std::string& format = "raw") {
    return fmt::format(R"(<disk type='file' device='disk'><driver name='qemu' type='{}'/><source file='{}'/>
      <target dev='vda' bus='virtio'/></disk>)",
                       format, path);
}

// Defines `xml`, starts it, and checks the failure left no process and no
// runtime file; returns the error message.
std::string start_must_fail(const fs::path& root, const std::string& name, const std::string& xml) {
    auto drv = make_driver(root);
    if (!drv) return "";
    auto def = drv->define_domain(xml, true);
    EXPECT_TRUE(def) << def.error().full_message();
    auto st = drv->start_domain(name, {});
    EXPECT_FALSE(st) << "start of '" << name << "' should fail";
    EXPECT_TRUE(qemu_pids_for(name).empty()) << "stray QEMU process";
    const auto stray = files_starting_with(root / "run", name);
    EXPECT_TRUE(stray.empty()) << "stray runtime file " << (stray.empty() ? "" : stray.front());
    auto dom = drv->lookup_domain(name);
    EXPECT_TRUE(dom);
    if (dom) {
        EXPECT_EQ(dom->state, driver::DomainState::Shutoff);
    }
    return st ? "" : st.error().full_message();
}

TEST(StartErrors, MissingDiskNamesTheDisk) {
    if (!qemu::find_qemu_binary("x86_64")) VIREO_SKIP("qemu-system-x86_64 not installed");
    vireo::test::TempDir tmp;
    std::string msg = start_must_fail(tmp.path(), "nodisk",
                                      guest_xml("nodisk", disk_xml((tmp / "missing.qcow2").string(), "qcow2")));
    EXPECT_NE(msg.find("failed to start domain 'nodisk'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing.qcow2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(tmp / "log" / "nodisk.log")) << "failed before anything was created";
}

TEST(StartErrors, MissingEmulator) {
    vireo::test::TempDir tmp;
    std::string xml = guest_xml("noemu", "<emulator>/usr/bin/qemu-system-nonexistent</emulator>");
    std::string msg = start_must_fail(tmp.path(), "noemu", xml);
    EXPECT_NE(msg.find("emulator '/usr/bin/qemu-system-nonexistent' not found"), std::string::npos) << msg;
}

TEST(StartErrors, KvmWhereKvmCannotRunGuests) {
    if (qemu::check_kvm_usable()) VIREO_SKIP("KVM is usable on this host");
    vireo::test::TempDir tmp;
    std::string xml = guest_xml("kvmdom");
    xml.replace(xml.find("type='qemu'"), 11, "type='kvm'");
    std::string msg = start_must_fail(tmp.path(), "kvmdom", xml);
    EXPECT_NE(msg.find("type='qemu'"), std::string::npos) << "must say what to use instead: " << msg;
}

TEST(StartErrors, QemuOwnErrorIsReported) {
    if (!qemu::find_qemu_binary("x86_64")) VIREO_SKIP("qemu-system-x86_64 not installed");
    vireo::test::TempDir tmp;
    // The file exists but is not a qcow2 image: only QEMU can tell.
    ASSERT_TRUE(files::write_atomic(tmp / "bad.qcow2", std::string(4096, 'x')));
    std::string msg = start_must_fail(tmp.path(), "badimg", guest_xml("badimg", disk_xml((tmp / "bad.qcow2").string(), "qcow2")));
    EXPECT_NE(msg.find("qcow2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("qemu-system-x86_64:"), std::string::npos) << "QEMU's own words: " << msg;
}

}  // namespace
