// Golden tests of the QEMU command line (as libvirt's qemuxml2argv):
// tests/data/qemu/cmdline/<case>.xml in, <case>.args (one argument per line)
// out, or <case>.err (the expected error message) for definitions QEMU
// cannot be given. VIREO_REGENERATE_GOLDEN=1 rewrites the .args files.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "conf/domain.hpp"
#include "qemu/command_line.hpp"
#include "qemu/firmware.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

namespace fs = std::filesystem;
using namespace vireo;

namespace {

fs::path golden_dir() { return test::source_dir() / "tests" / "data" / "qemu" / "cmdline"; }

std::vector<std::string> cases() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(golden_dir()))
        if (e.path().extension() == ".xml") out.push_back(e.path().stem().string());
    std::sort(out.begin(), out.end());
    return out;
}

Result<std::vector<std::string>> argv_of(const std::string& name) {
    auto xml = files::read(golden_dir() / (name + ".xml"));
    if (!xml) return std::unexpected(xml.error());
    auto def = conf::parse_domain_xml(*xml);
    if (!def) return std::unexpected(def.error());
    if (auto st = conf::assign_addresses_and_aliases(*def); !st) return std::unexpected(st.error());
    qemu::CommandLineOptions opts;
    opts.emulator = "/usr/bin/qemu-system-x86_64";
    opts.monitor_fd = 3;
    opts.runtime_prefix = "/run/vireo/qemu/" + def->name;
    opts.console_log = "/var/log/vireo/qemu/" + def->name + "-console.log";
    // A host with 2 MiB and 1 GiB hugetlbfs mounts (memory backends).
    opts.memory_host.hugetlbfs = {{"/dev/hugepages", 2048}, {"/dev/hugepages1G", 1048576}};
    opts.memory_host.memory_backing_dir = "/var/lib/vireo/qemu/ram";
    // The descriptors the driver would hand over for tap NICs, numbered as
    // its launch plan numbers them (after the monitor's 3): one tap per
    // queue, and vhost-net ones where the case asks for <driver name='vhost'>.
    int next = 4;
    for (const auto& nic : def->devices.interfaces) {
        if (!qemu::nic_uses_tap(nic)) continue;
        for (unsigned q = 0; q < qemu::nic_queues(nic); ++q) opts.passed_fds[qemu::nic_tap_fd_name(nic.info.alias, q)] = next++;
        if (nic.driver_name == "vhost")
            for (unsigned q = 0; q < qemu::nic_queues(nic); ++q)
                opts.passed_fds[qemu::nic_vhost_fd_name(nic.info.alias, q)] = next++;
    }
    // Unix channels without a path where the system driver puts them.
    for (auto& ch : def->devices.channels)
        if (ch.type == "unix" && ch.source_path.empty() && !ch.target_name.empty())
            ch.source_path = fmt::format("/var/lib/vireo/qemu/channel/target/domain-1-{}/{}", def->name, ch.target_name);
    // Graphics as the driver prepares them: autoport ports chosen from 5900
    // on, a descriptor for each password's secret.
    int port = 5900;
    for (std::size_t i = 0; i < def->devices.graphics.size(); ++i) {
        auto& g = def->devices.graphics[i];
        if (qemu::graphics_needs_port(g)) g.port = std::to_string(port++);
        if (!g.passwd.empty()) opts.passed_fds[qemu::graphics_secret_fd_name(i)] = next++;
    }
    // UEFI as the driver resolves it at start, from the test descriptors
    // (tests/data/qemu/firmware: Debian's, as installed by the ovmf package).
    if (def->os.firmware == "efi" || def->os.loader_type == "pflash") {
        auto descriptors = qemu::load_firmware_descriptors({test::source_dir() / "tests" / "data" / "qemu" / "firmware"});
        if (!descriptors) return std::unexpected(descriptors.error());
        auto fw = qemu::apply_firmware(*def, *descriptors, "/var/lib/vireo/qemu/nvram/" + def->name + "_VARS.fd");
        if (!fw) return std::unexpected(fw.error());
    }
    return qemu::build_command_line(*def, opts);
}

std::string join_lines(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& a : v) out += a + "\n";
    return out;
}

class GoldenCommandLine : public testing::TestWithParam<std::string> {};

TEST_P(GoldenCommandLine, MatchesExpected) {
    const std::string name = GetParam();
    auto argv = argv_of(name);
    const fs::path err_file = golden_dir() / (name + ".err");
    if (fs::exists(err_file)) {
        ASSERT_FALSE(argv) << "expected an error for " << name;
        auto expected = files::read(err_file);
        ASSERT_TRUE(expected);
        std::string want = *expected;
        while (!want.empty() && want.back() == '\n') want.pop_back();
        EXPECT_EQ(argv.error().full_message(), want);
        return;
    }
    ASSERT_TRUE(argv) << argv.error().full_message();
    const fs::path args_file = golden_dir() / (name + ".args");
    const char* regen = std::getenv("VIREO_REGENERATE_GOLDEN");
    if (regen && std::string(regen) == "1") {
        ASSERT_TRUE(files::write_atomic(args_file, join_lines(*argv)));
        return;
    }
    auto expected = files::read(args_file);
    ASSERT_TRUE(expected) << "missing " << args_file << " (run with VIREO_REGENERATE_GOLDEN=1 and review it)";
    EXPECT_EQ(join_lines(*argv), *expected);
}

INSTANTIATE_TEST_SUITE_P(Cases, GoldenCommandLine, testing::ValuesIn(cases()),
                         [](const testing::TestParamInfo<std::string>& param_info) {
                             std::string n = param_info.param;
                             for (char& c : n)
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return n;
                         });

TEST(CommandLine, EveryArgvStartsWithTheEmulatorAndRequiredOptions) {
    for (const auto& name : cases()) {
        auto argv = argv_of(name);
        if (!argv) continue;
        SCOPED_TRACE(name);
        EXPECT_EQ(argv->front(), "/usr/bin/qemu-system-x86_64");
        for (const char* must : {"-no-user-config", "-nodefaults", "-S", "-no-shutdown"})
            EXPECT_NE(std::find(argv->begin(), argv->end(), must), argv->end()) << must;
        auto sandbox = std::find(argv->begin(), argv->end(), "-sandbox");
        ASSERT_NE(sandbox, argv->end());
        EXPECT_TRUE((sandbox + 1)->starts_with("on"));
    }
}

TEST(CommandLine, OptionValuesEscapeCommas) {
    EXPECT_EQ(qemu::qemu_opt_escape("a,b,,c"), "a,,b,,,,c");
    EXPECT_EQ(qemu::qemu_opt_escape("plain"), "plain");
}

TEST(CommandLine, AcceleratorFollowsDomainType) {
    conf::DomainDef def;
    def.type = "qemu";
    EXPECT_EQ(*qemu::accelerator_for(def), "tcg");
    def.type = "kvm";
    EXPECT_EQ(*qemu::accelerator_for(def), "kvm");
}

}  // namespace

TEST(QemuEnvironment, HugePagesTunableIsAddedToTheInheritedOnes) {
    using Env = std::vector<std::pair<std::string, std::string>>;
    EXPECT_EQ(qemu::qemu_environment(true, nullptr), (Env{{"GLIBC_TUNABLES", "glibc.malloc.hugetlb=1"}}));
    EXPECT_EQ(qemu::qemu_environment(true, ""), (Env{{"GLIBC_TUNABLES", "glibc.malloc.hugetlb=1"}}));
    EXPECT_EQ(qemu::qemu_environment(true, "glibc.malloc.arena_max=2"),
              (Env{{"GLIBC_TUNABLES", "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"}}))
        << "the daemon's own tunables are kept";
    EXPECT_TRUE(qemu::qemu_environment(true, "glibc.malloc.hugetlb=0").empty()) << "the user's choice wins";
    EXPECT_TRUE(qemu::qemu_environment(false, nullptr).empty()) << "malloc_hugepages = 0: nothing set";
}
