// Host facts from fake /proc, /sys and /dev trees: accelerator detection
// (including the PVM case), node info, host-validate output, and the
// capabilities documents.
#include <gtest/gtest.h>

#include <fstream>

#include "host/capabilities.hpp"
#include "host/probe.hpp"
#include "host/validate.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::host;
namespace fs = std::filesystem;

namespace {

const char* kCpuinfoTemplate = R"(processor	: {0}
vendor_id	: {1}
cpu family	: {2}
model		: 1
model name	: Test CPU
cpu MHz		: 2400.000
physical id	: 0
siblings	: 2
core id		: {0}
cpu cores	: 2
flags		: fpu sse sse2 {3} lm

)";

// A fake host: /proc, /sys, /dev under a temp dir.
struct FakeHost {
    test::TempDir dir;
    HostPaths paths;

    FakeHost(const std::string& vendor, const std::string& virt_flag, const std::string& module, bool dev_kvm) {
        paths = {dir / "proc", dir / "sys", dir / "dev"};
        fs::create_directories(paths.proc);
        fs::create_directories(paths.sys / "module/kvm");
        fs::create_directories(paths.dev / "net");
        std::string cpuinfo;
        for (int i = 0; i < 2; ++i) cpuinfo += fmt::format(fmt::runtime(kCpuinfoTemplate), i, vendor, vendor == "GenuineIntel" ? 6 : 25, virt_flag);
        write(paths.proc / "cpuinfo", cpuinfo);
        write(paths.proc / "meminfo", "MemTotal:        4026532 kB\nMemFree:  1 kB\n");
        if (!module.empty()) fs::create_directories(paths.sys / "module" / module);
        if (dev_kvm) write(paths.dev / "kvm", "");
        write(paths.dev / "net/tun", "");
        fs::create_directories(paths.sys / "devices/system/node/node0");
        write(paths.sys / "devices/system/node/node0/cpulist", "0-1\n");
        write(paths.sys / "devices/system/node/node0/meminfo", "Node 0 MemTotal:       4026532 kB\n");
        fs::create_directories(paths.sys / "fs/cgroup");
        write(paths.sys / "fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
    }
    static void write(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }
};

}  // namespace

TEST(HostProbe, PvmMakesKvmUnusableWithAReason) {
    FakeHost h("AuthenticAMD", "", "kvm_pvm", true);
    auto acc = detect_accelerators(h.paths);
    EXPECT_EQ(acc.kvm.module, "kvm_pvm");
    EXPECT_TRUE(acc.kvm.device_exists);
    EXPECT_FALSE(acc.kvm.usable);
    EXPECT_FALSE(acc.kvm.probed);  // never probed: it could hang
    EXPECT_NE(acc.kvm.reason.find("kvm_pvm"), std::string::npos);
    auto st = check_domain_type("kvm", acc);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ErrorCode::Unsupported);
    EXPECT_NE(st.error().message.find("KVM is provided by kvm_pvm (paravirtual), which cannot run standard guest kernels"), std::string::npos);
    EXPECT_NE(st.error().message.find("use <domain type='qemu'>"), std::string::npos);
    EXPECT_TRUE(check_domain_type("qemu", acc));
}

TEST(HostProbe, MissingDeviceIsExplained) {
    FakeHost h("GenuineIntel", "vmx", "", false);
    auto acc = detect_accelerators(h.paths);
    EXPECT_TRUE(acc.kvm.cpu_virt_flags);
    EXPECT_FALSE(acc.kvm.device_exists);
    EXPECT_FALSE(acc.kvm.usable);
    EXPECT_NE(acc.kvm.reason.find("does not exist (load kvm_intel or kvm_amd)"), std::string::npos) << acc.kvm.reason;
}

TEST(HostProbe, KvmIntelWithoutProbeIsUsable) {
    FakeHost h("GenuineIntel", "vmx", "kvm_intel", true);
    auto acc = detect_accelerators(h.paths, {.probe = false, .probe_timeout = std::chrono::milliseconds(100)});
    EXPECT_TRUE(acc.kvm.usable) << acc.kvm.reason;
    EXPECT_TRUE(check_domain_type("kvm", acc));
}

TEST(HostProbe, ProbeOfANonKvmDeviceFails) {
    // A regular file is not /dev/kvm: the probe must fail cleanly, not hang.
    FakeHost h("GenuineIntel", "vmx", "kvm_intel", true);
    auto r = probe_kvm_run(h.paths.dev / "kvm", std::chrono::milliseconds(2000));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("KVM API version"), std::string::npos) << r.error().message;
}

TEST(HostProbe, ThisHostReportsAnHonestKvmVerdict) {
    auto acc = detect_accelerators();
    if (acc.kvm.usable) {
        EXPECT_TRUE(acc.kvm.module == "kvm_intel" || acc.kvm.module == "kvm_amd" || acc.kvm.probed);
    } else {
        EXPECT_FALSE(acc.kvm.reason.empty());
        auto st = check_domain_type("kvm", acc);
        ASSERT_FALSE(st);
        EXPECT_NE(st.error().message.find("type='qemu'"), std::string::npos);
    }
}

TEST(HostProbe, NodeInfoFromCpuinfoAndMeminfo) {
    FakeHost h("GenuineIntel", "vmx", "kvm_intel", true);
    auto n = read_node_info(h.paths);
    EXPECT_EQ(n.model, "x86_64");
    EXPECT_EQ(n.cpus, 2u);
    EXPECT_EQ(n.mhz, 2400u);
    EXPECT_EQ(n.sockets, 1u);
    EXPECT_EQ(n.cores, 2u);
    EXPECT_EQ(n.threads, 1u);
    EXPECT_EQ(n.nodes, 1u);
    EXPECT_EQ(n.memory_kib, 4026532u);
}

TEST(HostValidate, PvmHostFailsTheStandardGuestCheck) {
    FakeHost h("AuthenticAMD", "", "kvm_pvm", true);
    ValidateOptions opts;
    opts.paths = h.paths;
    opts.system_socket = h.dir / "no-such-sock";
    auto checks = run_host_checks(opts);
    const std::string text = format_host_checks(checks);
    EXPECT_NE(text.find("  QEMU: Checking for hardware virtualization                                 : WARN"), std::string::npos) << text;
    EXPECT_NE(text.find("Checking if KVM can run standard guests"), std::string::npos);
    EXPECT_NE(text.find(": FAIL (KVM is provided by kvm_pvm"), std::string::npos) << text;
    EXPECT_TRUE(std::any_of(checks.begin(), checks.end(), [](const HostCheck& c) {
        return c.name == "Checking for cgroup 'memory' controller support" && c.result == CheckResult::Pass;
    })) << text;
    EXPECT_NE(text.find("/dev/vhost-net exists"), std::string::npos);
    EXPECT_NE(text.find("IOMMU"), std::string::npos);
    EXPECT_NE(text.find("Checking for a MAC security module (SELinux or AppArmor)"), std::string::npos) << text;
    EXPECT_NE(text.find(": WARN (none is active on this host: guests are confined by DAC"), std::string::npos) << text;
    EXPECT_NE(text.find("system daemon"), std::string::npos);
    EXPECT_EQ(host_checks_exit_code(checks), 1);
    for (const auto& c : checks) {
        if (c.result != CheckResult::Pass) {
            EXPECT_FALSE(c.message.empty()) << c.name;
        }
    }
}

TEST(HostCapabilities, MachineHelpIsParsed) {
    const char* text =
        "Supported machines are:\n"
        "microvm              microvm (i386)\n"
        "pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)\n"
        "pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) (default)\n"
        "pc-i440fx-1.4        Standard PC (i440FX + PIIX, 1996) (deprecated)\n"
        "q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)\n"
        "none                 empty machine\n";
    auto m = parse_machine_help(text);
    ASSERT_EQ(m.size(), 5u);
    EXPECT_EQ(m[1].name, "pc");
    EXPECT_EQ(m[1].canonical, "pc-i440fx-7.2");
    EXPECT_TRUE(m[2].is_default);
    EXPECT_TRUE(m[3].deprecated);
    EXPECT_EQ(m[4].canonical, "pc-q35-7.2");
}

TEST(HostCapabilities, KvmDomainListedOnlyWhenUsable) {
    HostFacts f;
    f.cpu.cpus = 2;
    f.cpu.vendor = "AMD";
    f.cells = {NumaCell{0, 1024, {0, 1}}};
    f.host_uuid = "00000000-0000-0000-0000-000000000001";
    f.guests = {GuestArch{"x86_64", 64, "/usr/bin/qemu-system-x86_64", {{"pc-q35-7.2", "", false, false}, {"q35", "pc-q35-7.2", false, false}}}};
    f.accel.kvm.usable = false;
    f.accel.kvm.reason = "KVM is provided by kvm_pvm (paravirtual), which cannot run standard guest kernels";
    std::string xml = capabilities_xml(f);
    EXPECT_NE(xml.find("<domain type='qemu'/>"), std::string::npos) << xml;
    EXPECT_EQ(xml.find("<domain type='kvm'/>"), std::string::npos) << xml;
    EXPECT_NE(xml.find("<machine canonical='pc-q35-7.2'>q35</machine>"), std::string::npos) << xml;
    auto dc = domain_capabilities_xml(f, "", "x86_64", "q35", "kvm");
    ASSERT_FALSE(dc);
    EXPECT_NE(dc.error().message.find("kvm_pvm"), std::string::npos);
    EXPECT_NE(dc.error().message.find("use virttype 'qemu'"), std::string::npos);
    auto dq = domain_capabilities_xml(f, "", "", "q35", "");
    ASSERT_TRUE(dq) << dq.error().message;
    EXPECT_NE(dq->find("<machine>pc-q35-7.2</machine>"), std::string::npos) << *dq;
    f.accel.kvm.usable = true;
    xml = capabilities_xml(f);
    EXPECT_NE(xml.find("<domain type='kvm'/>"), std::string::npos);
}
