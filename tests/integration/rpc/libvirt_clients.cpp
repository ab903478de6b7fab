#include "libvirt_clients.hpp"

#include <csignal>
#include <regex>

namespace vireo::test {

using namespace std::chrono_literals;

void LibvirtClientsTest::SetUp() {
    if (!std::filesystem::exists(kVirsh)) VIREO_SKIP("virsh (libvirt-clients) is not installed");
    if (!std::filesystem::exists(bin_dir() / "vireod")) VIREO_SKIP("vireod is not built");
    auto d = QemuProcess::start({(bin_dir() / "vireod").string(), "--socket", (dir_ / "vireo.sock").string(),
                                 "--libvirt-socket", (dir_ / "libvirt.sock").string(), "--libvirt-ro-socket",
                                 (dir_ / "libvirt-ro.sock").string(), "--config-dir", (dir_ / "config").string(),
                                 "--run-dir", (dir_ / "run").string(), "--log-file", (dir_ / "vireod.log").string(),
                                 "-t", "0"});
    ASSERT_TRUE(d) << d.error().full_message();
    daemon_.emplace(std::move(*d));
    ASSERT_TRUE(daemon_->wait_for(std::regex("listening on .*libvirt-ro.sock"), 60s)) << daemon_->output();
}

void LibvirtClientsTest::TearDown() {
    if (!daemon_) return;
    ::kill(daemon_->pid(), SIGTERM);
    EXPECT_EQ(daemon_->wait_exit(30s), 0) << daemon_->output();
}

CommandResult LibvirtClientsTest::virsh(std::vector<std::string> args, const std::string& socket) const {
    args.insert(args.begin(), {kVirsh, "-c", uri(socket)});
    return run(args);
}

CommandResult LibvirtClientsTest::vireo(std::vector<std::string> args) const {
    args.insert(args.begin(), {(bin_dir() / "vireo").string(), "-c", uri("vireo.sock")});
    return run(args);
}

std::string LibvirtClientsTest::ok(const std::vector<std::string>& args) const {
    auto r = virsh(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
    return r.out;
}

namespace {

// A running guest's CPU time moves between the two calls (0.1s, then 0.2s):
// the line's layout is compared, its value is not.
std::string without_cpu_time(const std::string& out) {
    static const std::regex cpu_time("(CPU time: +)[0-9.]+s");
    return std::regex_replace(out, cpu_time, "$1<t>s");
}

}  // namespace

void LibvirtClientsTest::same(const std::vector<std::string>& args) const {
    auto a = virsh(args);
    auto b = vireo(args);
    a.out = without_cpu_time(a.out);
    b.out = without_cpu_time(b.out);
    std::string what;
    for (const auto& s : args) what += s + " ";
    EXPECT_EQ(a.exit_code, b.exit_code) << what << "\nvirsh: " << a.err << "\nvireo: " << b.err;
    if (a.exit_code == 0) EXPECT_EQ(a.out, b.out) << what;
    else EXPECT_EQ(a.out, "\n") << what;
    EXPECT_EQ(a.err, b.err) << what;
}

}  // namespace vireo::test
