#include "host/validate.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <sstream>

#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "util/fd.hpp"
#include "util/files.hpp"

namespace vireo::host {

namespace fs = std::filesystem;

std::string_view to_string(CheckResult r) {
    switch (r) {
        case CheckResult::Pass: return "PASS";
        case CheckResult::Warn: return "WARN";
        case CheckResult::Fail: return "FAIL";
    }
    return "FAIL";
}

namespace {

HostCheck pass(std::string name) { return {std::move(name), CheckResult::Pass, ""}; }
HostCheck warn(std::string name, std::string msg) { return {std::move(name), CheckResult::Warn, std::move(msg)}; }
HostCheck failed(std::string name, std::string msg) { return {std::move(name), CheckResult::Fail, std::move(msg)}; }

bool path_exists(const fs::path& p) {
    std::error_code ec;
    return fs::exists(p, ec);
}

// cgroup controllers available: v2 (cgroup.controllers) or v1 mounts.
std::set<std::string> cgroup_controllers(const HostPaths& paths) {
    std::set<std::string> out;
    if (auto v2 = files::read(paths.sys / "fs/cgroup/cgroup.controllers")) {
        std::istringstream in(*v2);
        std::string c;
        while (in >> c) out.insert(c);
        // v2 has no separate cpuacct/devices/blkio controllers: their roles are
        // covered by cpu, BPF device filters and io.
        if (out.contains("cpu")) out.insert("cpuacct");
        if (out.contains("io")) out.insert("blkio");
        out.insert("devices");
        return out;
    }
    if (auto v1 = files::read(paths.proc / "cgroups")) {
        std::istringstream in(*v1);
        std::string line;
        while (std::getline(in, line)) {
            if (line.empty() || line[0] == '#') continue;
            std::istringstream ls(line);
            std::string name;
            int hier = 0, num = 0, enabled = 0;
            if (ls >> name >> hier >> num >> enabled && enabled) out.insert(name);
        }
    }
    return out;
}

bool acpi_table(const HostPaths& paths, const char* name) { return path_exists(paths.sys / "firmware/acpi/tables" / name); }

HostCheck check_iommu(const HostPaths& paths, const CpuInfo* cpu) {
    const std::string name = "Checking for device assignment IOMMU support";
    const bool intel = cpu && cpu->vendor == "Intel";
    const bool table = acpi_table(paths, intel ? "DMAR" : "IVRS") || acpi_table(paths, "DMAR") || acpi_table(paths, "IVRS");
    if (!table)
        return warn(name, fmt::format("No ACPI {} table found, IOMMU either disabled in BIOS or not supported by this hardware platform",
                                      intel ? "DMAR" : "IVRS"));
    std::error_code ec;
    if (!path_exists(paths.sys / "kernel/iommu_groups") || fs::is_empty(paths.sys / "kernel/iommu_groups", ec))
        return warn(name, fmt::format("IOMMU appears to be disabled in kernel. Add {} to kernel cmdline arguments",
                                      intel ? "intel_iommu=on" : "amd_iommu=on"));
    return pass(name);
}

HostCheck check_daemon_access(const fs::path& socket_path) {
    const std::string name = "Checking if this user may reach the system daemon";
    if (!path_exists(socket_path))
        return warn(name, fmt::format("the system daemon is not running ({} does not exist); qemu:///session works without it", socket_path.string()));
    if (::access(socket_path.c_str(), R_OK | W_OK) != 0)
        return warn(name, fmt::format("{} is not writable by this user: run as root or join the 'vireo' group (usermod -aG vireo $USER)",
                                      socket_path.string()));
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string p = socket_path.string();
    if (!fd || p.size() >= sizeof addr.sun_path) return warn(name, fmt::format("cannot open a connection to {}", p));
    std::copy(p.begin(), p.end(), addr.sun_path);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        return warn(name, fmt::format("{} exists but nothing accepts connections (is vireod running?)", p));
    return pass(name);
}

// SELinux or AppArmor: vireo has no driver for either yet, so the check
// says what confines guests instead (qemu:///system: a user per guest, a
// mount namespace, seccomp; capabilities' <secmodel> says dac).
HostCheck check_mac(const HostPaths& paths) {
    const std::string name = "Checking for a MAC security module (SELinux or AppArmor)";
    std::ifstream lsm_file(paths.sys / "kernel/security/lsm");
    std::string lsms;
    std::getline(lsm_file, lsms);
    std::ifstream aa_file(paths.sys / "module/apparmor/parameters/enabled");
    std::string aa;
    std::getline(aa_file, aa);
    std::vector<std::string> active;
    if (lsms.find("selinux") != std::string::npos || path_exists(paths.sys / "fs/selinux/enforce")) active.emplace_back("SELinux");
    if (lsms.find("apparmor") != std::string::npos || aa.starts_with("Y")) active.emplace_back("AppArmor");
    if (active.empty())
        return warn(name, "none is active on this host: guests are confined by DAC (a user per guest), a mount namespace "
                          "each and QEMU's seccomp sandbox");
    return warn(name, fmt::format("{} is active, but vireo does not label guests for it yet: they are confined by DAC, "
                                  "a mount namespace each and QEMU's seccomp sandbox",
                                  fmt::join(active, " and ")));
}

}  // namespace

std::vector<HostCheck> run_host_checks(const ValidateOptions& opts) {
    std::vector<HostCheck> out;
    const HostPaths& paths = opts.paths;
    auto cpu = read_cpu_info(paths);
    const AcceleratorInfo acc = detect_accelerators(paths, opts.detect);
    const KvmStatus& kvm = acc.kvm;

    const std::string hw = "Checking for hardware virtualization";
    if (kvm.cpu_virt_flags) out.push_back(pass(hw));
    else out.push_back(warn(hw, "Only emulated CPUs are available, performance will be significantly limited"));

    const std::string kvm_dev = (paths.dev / "kvm").string();
    if (kvm.device_exists) {
        out.push_back(pass(fmt::format("Checking if device {} exists", kvm_dev)));
        if (kvm.device_accessible) out.push_back(pass(fmt::format("Checking if device {} is accessible", kvm_dev)));
        else out.push_back(failed(fmt::format("Checking if device {} is accessible", kvm_dev),
                                  "Check /dev/kvm is world writable or you are in a group that is allowed to access it"));
    } else {
        out.push_back(failed(fmt::format("Checking if device {} exists", kvm_dev),
                             kvm.module.empty() ? "Check that the 'kvm-intel' or 'kvm-amd' modules are loaded & the BIOS has enabled virtualization"
                                                : fmt::format("module {} is loaded but the device node is missing", kvm.module)));
    }
    const std::string std_guest = "Checking if KVM can run standard guests";
    if (kvm.usable) out.push_back(pass(std_guest));
    else out.push_back(failed(std_guest, fmt::format("{}; guests need <domain type='qemu'> (TCG emulation)", kvm.reason)));

    for (const char* dev : {"vhost-net", "net/tun"}) {
        const fs::path p = paths.dev / dev;
        const std::string name = fmt::format("Checking if device {} exists", p.string());
        if (path_exists(p)) out.push_back(pass(name));
        else if (std::string_view(dev) == "vhost-net")
            out.push_back(warn(name, "Load the 'vhost_net' module to improve performance of virtio networking"));
        else out.push_back(failed(name, "Load the 'tun' module to enable networking for QEMU guests"));
    }

    const auto ctrls = cgroup_controllers(paths);
    for (const char* c : {"cpu", "cpuacct", "cpuset", "memory", "devices", "blkio"}) {
        const std::string name = fmt::format("Checking for cgroup '{}' controller support", c);
        if (ctrls.contains(c)) out.push_back(pass(name));
        else out.push_back(warn(name, fmt::format("Enable '{}' in kernel Kconfig file or mount/enable cgroup controller in your system", c)));
    }
    out.push_back(check_iommu(paths, cpu ? &*cpu : nullptr));
    out.push_back(check_mac(paths));
    out.push_back(check_daemon_access(opts.system_socket));
    return out;
}

std::string format_host_checks(const std::vector<HostCheck>& checks) {
    std::string out;
    for (const auto& c : checks) {
        out += fmt::format("{:>6}: {:<69}: {}", "QEMU", c.name, to_string(c.result));
        if (!c.message.empty()) out += fmt::format(" ({})", c.message);
        out += "\n";
    }
    return out;
}

int host_checks_exit_code(const std::vector<HostCheck>& checks) {
    return std::any_of(checks.begin(), checks.end(), [](const HostCheck& c) { return c.result == CheckResult::Fail; }) ? 1 : 0;
}

}  // namespace vireo::host
