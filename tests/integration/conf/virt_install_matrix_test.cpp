// The virt-install matrix: real `virt-install --print-xml` documents, as users
// make them (BIOS / UEFI / secure boot, pc / q35, graphics none / VNC /
// SPICE, user / network / bridge NICs, TPM, virtio-scsi, cdroms, NUMA), each
// defined in vireo, started, booted to the disk test guest's marker
// (tests/guest/build-disk.sh), and its dumpxml (live and inactive) checked by
// libvirt's schema (virt-xml-validate).
//
// virt-install runs at test time against vireo's own capabilities and
// domcapabilities (virtinst's test URI, as in virt_install_test.cpp), so the
// documents stay what the real tool writes; only the disk is ours: a fresh
// qcow2 overlay of the disk guest per row. A system vireod runs in a network
// namespace the test makes ("mx"), with a virtual network (mxnet) and a host
// bridge (mxbr0) for the NIC rows.
//
// The rows run in order, one guest at a time, in one process (one CTest test,
// VirtInstallMatrix), each with its own boot timeout. Rows that need work not
// on this branch are in the matrix all the same and fail, saying which branch
// they wait for. The suite prints each row's result and time at the end.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <optional>
#include <ostream>
#include <regex>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "netns.hpp"
#include "ns_daemon.hpp"
#include "support/guest.hpp"
#include "util/files.hpp"

using namespace vireo;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kNetwork = "mxnet";
constexpr const char* kBridge = "mxbr0";

struct Row {
    const char* name;
    const char* machine;           // pc or q35
    std::vector<std::string> args; // virt-install options besides the common ones
    // What has to land before the row can pass ("" when this branch suffices),
    // named in every failure message of the row.
    const char* needs = "";
    bool uefi = false;             // OVMF: a longer boot, a per-domain NVRAM file
    int vcpus = 1;
    bool secure_boot = false;      // the live loader must say secure='yes'
};

// The secure boot firmware as virt-install asks for it.
const std::string kSecureBoot =
    "uefi,firmware.feature0.name=secure-boot,firmware.feature0.enabled=yes,"
    "firmware.feature1.name=enrolled-keys,firmware.feature1.enabled=yes";
// virt-install gives UEFI guests a TPM (swtpm) by default: those rows need both.
const std::string kFw15 = "<os firmware='efi'> autoselection from the firmware descriptors, the NVRAM made from its template, the TPM virt-install adds";
const std::string kNvram = "the per-domain NVRAM file made from its template";
const std::string kTpm = "TPM 2.0 through swtpm";
const std::string kNuma = "guest NUMA cells";

std::vector<Row> rows() {
    const std::string net = fmt::format("network={}", kNetwork), bridge = fmt::format("bridge={}", kBridge);
    return {
        {"bios_pc_none_user", "pc", {"--graphics", "none", "--network", "user"}},
        {"bios_pc_vnc_network", "pc", {"--graphics", "vnc", "--network", net}},
        {"bios_pc_spice_bridge", "pc", {"--graphics", "spice", "--network", bridge}},
        {"bios_pc_vnc_cdrom", "pc", {"--graphics", "vnc,listen=127.0.0.1", "--network", "user", "--disk", "device=cdrom,bus=ide"}},
        {"bios_q35_none_bridge", "q35", {"--graphics", "none", "--network", bridge}},
        {"bios_q35_vnc_user", "q35", {"--graphics", "vnc", "--network", "user", "--video", "virtio"}},
        {"bios_q35_spice_network", "q35", {"--graphics", "spice", "--network", net}},
        {"bios_q35_virtio_scsi_cdrom", "q35",
         {"--graphics", "none", "--network", "user", "--controller", "type=scsi,model=virtio-scsi",
          "--disk", "device=cdrom,bus=scsi"}},
        {"bios_q35_tpm", "q35", {"--graphics", "none", "--network", "user", "--tpm", "emulator,model=tpm-crb,version=2.0"}, kTpm.c_str()},
        {"bios_q35_numa", "q35",
         {"--graphics", "none", "--network", "user", "--cpu",
          "cell0.id=0,cell0.cpus=0,cell0.memory=262144,cell1.id=1,cell1.cpus=1,cell1.memory=262144"},
         kNuma.c_str(), false, 2},
        {"uefi_q35_vnc_user", "q35", {"--boot", "uefi", "--graphics", "vnc", "--network", "user"}, kFw15.c_str(), true},
        {"uefi_pc_none_network", "pc", {"--boot", "uefi", "--graphics", "none", "--network", net}, kFw15.c_str(), true},
        {"uefi_q35_spice_bridge_scsi", "q35",
         {"--boot", "uefi", "--graphics", "spice", "--network", bridge, "--controller", "type=scsi,model=virtio-scsi",
          "--disk", "device=cdrom,bus=sata"},
         kFw15.c_str(), true},
        {"uefi_q35_secure_boot", "q35", {"--boot", kSecureBoot, "--graphics", "none", "--network", "user"}, kFw15.c_str(), true,
         1, true},
        {"uefi_q35_tpm", "q35", {"--boot", "uefi", "--graphics", "vnc", "--network", "user", "--tpm", "emulator,model=tpm-crb,version=2.0"},
         kTpm.c_str(), true},
        // OVMF named by path (no autoselection): loader and NVRAM template;
        // no TPM (virt-install adds one to UEFI guests by default).
        // <nvram template=...> names no file: the start derives the
        // per-domain one and copies the template into it.
        {"uefi_q35_explicit_loader", "q35",
         {"--boot",
          fmt::format("loader={},loader.readonly=yes,loader.type=pflash,nvram.template={}", test::kOvmfCode, test::kOvmfVars),
          "--graphics", "none", "--network", "user", "--tpm", "none"},
         kNvram.c_str(), true},
    };
}

std::string row_name(const ::testing::TestParamInfo<Row>& info) { return info.param.name; }
// gtest prints a row by its name (not its bytes).
[[maybe_unused]] void PrintTo(const Row& row, std::ostream* out) { *out << row.name; }

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// The namespace, its daemon, the network and the bridge, the capabilities.
struct World {
    test::TempDir dir;
    std::unique_ptr<test::NetNs> ns;
    std::unique_ptr<test::NsDaemon> daemon;
    std::map<std::string, fs::path> domcaps;  // machine -> file
    fs::path caps;
    std::string error;

    test::CommandResult vireo(const std::vector<std::string>& args) const { return daemon->vireo(args); }

    bool fail(std::string why) {
        error = std::move(why);
        return false;
    }

    bool make() {
        ns = std::make_unique<test::NetNs>("mx");
        if (!ns->ok()) return fail("cannot make the namespace");
        fs::permissions(dir.path(), fs::perms(0755));
        for (const auto& argv : std::vector<std::vector<std::string>>{{"ip", "link", "add", kBridge, "type", "bridge"},
                                                                      {"ip", "link", "set", kBridge, "up"}})
            if (auto r = ns->exec(argv); r.exit_code != 0) return fail(fmt::format("{}: {}", fmt::join(argv, " "), r.err));
        daemon = std::make_unique<test::NsDaemon>(*ns, dir.path());
        if (std::string why; !daemon->start(&why)) return fail(why);
        const fs::path net = dir / "mxnet.xml";
        (void)files::write_atomic(net, fmt::format("<network><name>{}</name><bridge name='vtmxbr1'/>"
                                                   "<ip address='10.232.1.1' netmask='255.255.255.0'/></network>\n",
                                                   kNetwork));
        if (auto r = vireo({"net-define", net.native()}); r.exit_code != 0) return fail(r.err);
        if (auto r = vireo({"net-start", kNetwork}); r.exit_code != 0) return fail(r.err + daemon->log());
        // What virt-install reads, from the daemon under test.
        caps = dir / "caps.xml";
        auto c = vireo({"capabilities"});
        if (c.exit_code != 0 || !files::write_atomic(caps, c.out)) return fail("vireo capabilities: " + c.err);
        for (const char* machine : {"pc", "q35"}) {
            auto d = vireo({"domcapabilities", "--virttype", "qemu", "--arch", "x86_64", "--machine", machine});
            domcaps[machine] = dir / fmt::format("domcaps-{}.xml", machine);
            if (d.exit_code != 0 || !files::write_atomic(domcaps[machine], d.out))
                return fail(fmt::format("vireo domcapabilities --machine {}: {}", machine, d.err));
        }
        return true;
    }

    ~World() {
        if (daemon) {
            (void)vireo({"net-destroy", kNetwork});
            daemon->stop();
        }
        if (ns) {
            const auto pids = test::run({"ip", "netns", "pids", ns->name()}).out;
            std::istringstream in(pids);
            for (std::string pid; in >> pid;) test::run({"kill", "-9", pid});
        }
    }
};

// A row's outcome, for the summary.
struct Outcome {
    std::string name, needs;
    bool passed = false;
    double seconds = 0;
};

class VirtInstallMatrix : public ::testing::TestWithParam<Row> {
protected:
    static void SetUpTestSuite() {
        for (const auto& why : {test::netns_unavailable(), test::disk_guest_unavailable_reason()}) {
            if (!why.empty()) {
                skip_ = why;
                return;
            }
        }
        for (const char* tool : {"virt-install", "virt-xml-validate", "nft"}) {
            if (test::which(tool).empty()) {
                skip_ = fmt::format("{} is not installed (scripts/deps)", tool);
                return;
            }
        }
        if (test::which("dnsmasq").empty() && !fs::exists("/usr/sbin/dnsmasq")) {
            skip_ = "dnsmasq is not installed";
            return;
        }
        world_ = std::make_unique<World>();
        if (!world_->make()) {
            error_ = world_->error;
            world_.reset();
        }
    }

    static void TearDownTestSuite() {
        world_.reset();
        if (outcomes_.empty()) return;
        double total = 0;
        std::string table = "virt-install matrix:\n";
        for (const auto& o : outcomes_) {
            total += o.seconds;
            table += fmt::format("  {:<30} {:<4} {:6.1f} s{}\n", o.name, o.passed ? "ok" : "FAIL", o.seconds,
                                 o.passed || o.needs.empty() ? "" : "  (exercises " + o.needs + ")");
        }
        table += fmt::format("  {} rows, {:.1f} s in the rows\n", outcomes_.size(), total);
        std::fputs(table.c_str(), stdout);
    }

    void SetUp() override {
        if (!skip_.empty()) VIREO_SKIP(skip_);
        ASSERT_TRUE(world_) << "the matrix's world could not be made: " << error_;
    }

    static test::CommandResult vireo(const std::vector<std::string>& args) { return world_->vireo(args); }

    // virt-install --print-xml for the row, its disk being `disk`.
    static test::CommandResult print_xml(const Row& row, const std::string& name, const fs::path& disk) {
        std::vector<std::string> argv = {
            "virt-install", "--print-xml", "--connect",
            fmt::format("__virtinst_test__test:///default,caps={},domcaps={},fakeuri=qemu:///system",
                        world_->caps.native(), world_->domcaps.at(row.machine).native()),
            "--virt-type", "qemu", "--name", name, "--memory", "512", "--vcpus", std::to_string(row.vcpus),
            "--osinfo", "linux2022", "--import", "--machine", row.machine,
            // driver.type: through the test URI virt-install cannot read the
            // image's format (format= alone leaves <driver> without a type).
            "--disk", fmt::format("path={},format=qcow2,driver.type=qcow2,bus={}", disk.native(), contains(fmt::format("{}", fmt::join(row.args, " ")), "virtio-scsi") ? "scsi" : "virtio"),
            "--console", "pty,target.type=serial", "--noautoconsole"};
        argv.insert(argv.end(), row.args.begin(), row.args.end());
        return test::run(argv);
    }

    // virt-xml-validate on `xml` (saved as `file`): "" when valid.
    static std::string schema_errors(const fs::path& file, const std::string& xml) {
        (void)files::write_atomic(file, xml);
        auto r = test::run({"virt-xml-validate", file.native(), "domain"});
        return r.exit_code == 0 ? std::string() : r.out + r.err;
    }

    // Wait for the marker on the domain's console log; "" or why not. The
    // marker's content in *ready.
    static std::string wait_marker(const std::string& name, std::chrono::seconds timeout, test::GuestReady* ready) {
        const fs::path log = world_->daemon->root() / "run/qemu/log" / (name + "-console.log");
        const auto deadline = Clock::now() + timeout;
        auto next_state = Clock::now() + 2s;
        std::string text;
        for (;;) {
            auto t = files::read(log);
            text = t ? *t : "";
            if (auto r = test::parse_guest_ready(text)) {
                *ready = *r;
                return {};
            }
            if (Clock::now() > deadline) return fmt::format("no boot marker within {} s; console:\n{}", timeout.count(), text);
            if (Clock::now() > next_state) {
                // A guest that died (QEMU exited) will never print it.
                if (auto s = vireo({"domstate", name}); !contains(s.out, "running"))
                    return fmt::format("the guest is '{}' before its marker; console:\n{}", s.out, text);
                next_state = Clock::now() + 2s;
            }
            std::this_thread::sleep_for(100ms);
        }
    }

    // Destroy and undefine whatever the row left.
    static void clean(const std::string& name, const fs::path& overlay) {
        (void)vireo({"destroy", name});
        if (vireo({"undefine", "--nvram", name}).exit_code != 0) (void)vireo({"undefine", name});
        std::error_code ec;
        fs::remove(overlay, ec);
    }

    static inline std::unique_ptr<World> world_;
    static inline std::string skip_, error_;
    static inline std::vector<Outcome> outcomes_;
};

}  // namespace

TEST_P(VirtInstallMatrix, DefinesStartsBootsAndValidates) {
    const Row& row = GetParam();
    const std::string name = fmt::format("mx-{}", row.name);
    const std::string needs = *row.needs ? fmt::format("\n[this row exercises {}]", row.needs) : "";
    const fs::path overlay = world_->dir / (name + ".qcow2");
    const auto t0 = Clock::now();
    outcomes_.push_back({row.name, row.needs});
    struct Record {
        Outcome& o;
        Clock::time_point t0;
        ~Record() {
            o.passed = !::testing::Test::HasFailure();
            o.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        }
    } record{outcomes_.back(), t0};

    ASSERT_EQ(test::disk_guest_overlay(overlay), "");
    auto xml = print_xml(row, name, overlay);
    ASSERT_EQ(xml.exit_code, 0) << xml.err << needs;
    ASSERT_TRUE(contains(xml.out, "<domain type=\"qemu\"")) << xml.out;
    const fs::path file = world_->dir / (name + ".xml");
    ASSERT_TRUE(files::write_atomic(file, xml.out));

    auto def = vireo({"define", file.native()});
    ASSERT_EQ(def.exit_code, 0) << def.err << "\n" << xml.out << needs;
    auto start = vireo({"start", name});
    if (start.exit_code != 0) {
        clean(name, overlay);
        FAIL() << start.err << "\n" << xml.out << needs;
    }
    test::GuestReady ready;
    const std::string why = wait_marker(name, row.uefi ? 240s : 150s, &ready);
    EXPECT_EQ(why, "") << xml.out << needs;
    // Every row has one NIC, which the guest sees.
    if (why.empty()) {
        EXPECT_EQ(ready.nics, std::vector<std::string>{"eth0"}) << xml.out;
    }

    auto live = vireo({"dumpxml", name});
    EXPECT_EQ(live.exit_code, 0) << live.err;
    EXPECT_EQ(schema_errors(world_->dir / (name + "-live.xml"), live.out), "") << live.out << needs;
    if (row.uefi) {
        // The guest's own NVRAM: a file, there while it runs.
        std::smatch m;
        static const std::regex nvram(R"(<nvram[^>]*>([^<]+)</nvram>)");
        if (std::regex_search(live.out, m, nvram)) {
            EXPECT_TRUE(fs::exists(m[1].str())) << "NVRAM file " << m[1] << " is missing" << needs;
        } else {
            ADD_FAILURE() << "no NVRAM file in the live XML:\n" << live.out << needs;
        }
    }
    if (row.secure_boot) {
        EXPECT_TRUE(contains(live.out, "secure='yes'")) << live.out << needs;
    }
    auto inactive = vireo({"dumpxml", "--inactive", name});
    EXPECT_EQ(inactive.exit_code, 0) << inactive.err;
    EXPECT_EQ(schema_errors(world_->dir / (name + "-inactive.xml"), inactive.out), "") << inactive.out << needs;
    clean(name, overlay);
}

INSTANTIATE_TEST_SUITE_P(Rows, VirtInstallMatrix, ::testing::ValuesIn(rows()), row_name);
