#include "host/probe.hpp"

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>

#include <fmt/format.h>

#include "util/files.hpp"
#include "util/number.hpp"

namespace vireo::host {

namespace fs = std::filesystem;

namespace {

std::string trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t\n");
    auto e = s.find_last_not_of(" \t\n");
    return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

std::string read_trimmed(const fs::path& p) {
    auto t = files::read(p);
    return t ? trim(*t) : std::string();
}

// "0-3,8,10-11" -> {0,1,2,3,8,10,11}
std::vector<unsigned> parse_cpu_list(const std::string& text) {
    std::vector<unsigned> out;
    std::stringstream ss(text);
    std::string part;
    while (std::getline(ss, part, ',')) {
        part = trim(part);
        if (part.empty()) continue;
        // A part that is no number or range ("0-3", "5") is skipped: the
        // kernel writes none, and a host fact is best effort.
        const auto dash = part.find('-');
        const std::string_view whole(part);
        auto a = util::parse_number<unsigned>(whole.substr(0, dash));
        auto b = dash == std::string::npos ? a : util::parse_number<unsigned>(whole.substr(dash + 1));
        if (!a || !b) continue;
        for (unsigned i = *a; i <= *b && i - *a < 65536; ++i) out.push_back(i);
    }
    return out;
}

}  // namespace

bool CpuInfo::has_flag(std::string_view f) const { return std::find(flags.begin(), flags.end(), f) != flags.end(); }

Result<CpuInfo> read_cpu_info(const HostPaths& paths) {
    auto text = files::read(paths.proc / "cpuinfo");
    if (!text) return std::unexpected(text.error().context("cannot read CPU information"));
    CpuInfo info;
    std::set<std::pair<std::string, std::string>> cores;  // (physical id, core id)
    std::set<std::string> sockets;
    std::istringstream in(*text);
    std::string line;
    unsigned siblings = 0, cpu_cores = 0;
    while (std::getline(in, line)) {
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        const std::string key = trim(line.substr(0, colon));
        const std::string value = trim(line.substr(colon + 1));
        if (key == "processor") ++info.cpus;
        else if (key == "vendor_id" && info.vendor.empty()) info.vendor = value == "GenuineIntel" ? "Intel" : value == "AuthenticAMD" ? "AMD" : value;
        else if (key == "model name" && info.model_name.empty()) info.model_name = value;
        else if (key == "cpu family" && info.family == 0) info.family = util::parse_number<unsigned>(value).value_or(0);
        else if (key == "model" && info.model == 0) info.model = util::parse_number<unsigned>(value).value_or(0);
        else if (key == "cpu MHz" && info.mhz == 0) info.mhz = static_cast<unsigned>(util::parse_number<double>(value).value_or(0));
        else if (key == "physical id") sockets.insert(value);
        else if (key == "siblings" && siblings == 0) siblings = util::parse_number<unsigned>(value).value_or(0);
        else if (key == "cpu cores" && cpu_cores == 0) cpu_cores = util::parse_number<unsigned>(value).value_or(0);
        else if (key == "flags" && info.flags.empty()) {
            std::istringstream fl(value);
            std::string f;
            while (fl >> f) info.flags.push_back(f);
        }
    }
    if (info.cpus == 0) return fail(ErrorCode::OperationFailed, "no processors listed in {}", (paths.proc / "cpuinfo").string());
    info.sockets = sockets.empty() ? 1 : static_cast<unsigned>(sockets.size());
    info.cores = cpu_cores ? cpu_cores : std::max(1u, info.cpus / info.sockets);
    info.threads = (siblings && cpu_cores) ? std::max(1u, siblings / cpu_cores) : 1;
    if (info.sockets * info.cores * info.threads != info.cpus) {
        // Odd (e.g. partially online) layouts: report what adds up.
        info.sockets = 1;
        info.threads = 1;
        info.cores = info.cpus;
    }
    return info;
}

std::uint64_t read_memory_kib(const HostPaths& paths) {
    auto text = files::read(paths.proc / "meminfo");
    if (!text) return 0;
    std::istringstream in(*text);
    std::string key;
    std::uint64_t value = 0;
    while (in >> key >> value) {
        if (key == "MemTotal:") return value;
        in.ignore(1024, '\n');
    }
    return 0;
}

std::vector<NumaCell> read_numa_cells(const HostPaths& paths) {
    std::vector<NumaCell> cells;
    const fs::path nodes = paths.sys / "devices/system/node";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(nodes, ec)) {
        const std::string name = e.path().filename().string();
        if (!name.starts_with("node") || name.size() < 5 || !std::isdigit(static_cast<unsigned char>(name[4]))) continue;
        NumaCell cell;
        cell.id = util::parse_number<unsigned>(std::string_view(name).substr(4)).value_or(0);
        cell.cpus = parse_cpu_list(read_trimmed(e.path() / "cpulist"));
        auto meminfo = files::read(e.path() / "meminfo");
        if (meminfo) {
            auto pos = meminfo->find("MemTotal:");
            if (pos != std::string::npos) cell.memory_kib = std::strtoull(meminfo->c_str() + pos + 9, nullptr, 10);
        }
        cells.push_back(std::move(cell));
    }
    std::sort(cells.begin(), cells.end(), [](const NumaCell& a, const NumaCell& b) { return a.id < b.id; });
    if (cells.empty()) {
        // No NUMA information exported: one cell with everything.
        NumaCell cell;
        cell.memory_kib = read_memory_kib(paths);
        auto cpu = read_cpu_info(paths);
        for (unsigned i = 0; cpu && i < cpu->cpus; ++i) cell.cpus.push_back(i);
        cells.push_back(std::move(cell));
    }
    return cells;
}

namespace {

// The code run by the probe, in 16-bit real mode at guest address 0x1000:
//   mov dx, 0x3f8 ; add al, bl ; add al, '0' ; out dx, al ; hlt
constexpr std::uint8_t kProbeCode[] = {0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, '0', 0xee, 0xf4};

// Runs in the forked child: returns the exit status (0 = success).
int probe_child(const char* device) {
    const int kvm = ::open(device, O_RDWR | O_CLOEXEC);
    if (kvm < 0) return 10;
    if (::ioctl(kvm, KVM_GET_API_VERSION, 0) != 12) return 11;
    const int vm = ::ioctl(kvm, KVM_CREATE_VM, 0UL);
    if (vm < 0) return 12;
    void* mem = ::mmap(nullptr, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return 13;
    std::memcpy(mem, kProbeCode, sizeof kProbeCode);
    kvm_userspace_memory_region region{};
    region.slot = 0;
    region.guest_phys_addr = 0x1000;
    region.memory_size = 0x1000;
    region.userspace_addr = reinterpret_cast<std::uint64_t>(mem);
    if (::ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) return 14;
    const int vcpu = ::ioctl(vm, KVM_CREATE_VCPU, 0UL);
    if (vcpu < 0) return 15;
    const int run_size = ::ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, nullptr);
    if (run_size <= 0) return 16;
    auto* run = static_cast<kvm_run*>(::mmap(nullptr, static_cast<std::size_t>(run_size), PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0));
    if (run == MAP_FAILED) return 17;
    kvm_sregs sregs{};
    if (::ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) return 18;
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (::ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) return 19;
    kvm_regs regs{};
    regs.rip = 0x1000;
    regs.rax = 2;
    regs.rbx = 2;
    regs.rflags = 0x2;
    if (::ioctl(vcpu, KVM_SET_REGS, &regs) < 0) return 20;
    bool saw_io = false;
    for (int i = 0; i < 16; ++i) {
        if (::ioctl(vcpu, KVM_RUN, nullptr) < 0) return 21;
        if (run->exit_reason == KVM_EXIT_IO) {
            const char* data = reinterpret_cast<const char*>(run) + run->io.data_offset;
            if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != 0x3f8 || *data != '4') return 22;
            saw_io = true;
        } else if (run->exit_reason == KVM_EXIT_HLT) {
            return saw_io ? 0 : 23;
        } else {
            return 24;
        }
    }
    return 25;
}

std::string probe_failure(int status) {
    switch (status) {
        case 10: return "cannot open the KVM device";
        case 11: return "unexpected KVM API version";
        case 12: return "KVM_CREATE_VM failed";
        case 14: return "KVM_SET_USER_MEMORY_REGION failed";
        case 15: return "KVM_CREATE_VCPU failed";
        case 18:
        case 19:
        case 20: return "setting the vCPU registers failed";
        case 21: return "KVM_RUN failed";
        case 22:
        case 23:
        case 24: return "the test instructions did not execute as on real hardware";
        default: return fmt::format("probe failed (status {})", status);
    }
}

}  // namespace

Result<std::string> probe_kvm_run(const fs::path& kvm_device, std::chrono::milliseconds timeout) {
    const std::string device = kvm_device.string();
    const pid_t pid = ::fork();
    if (pid < 0) return fail_errno("fork for the KVM probe");
    if (pid == 0) ::_exit(probe_child(device.c_str()));
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    for (;;) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0) return fail_errno("waiting for the KVM probe");
        if (std::chrono::steady_clock::now() >= deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return fail(ErrorCode::Timeout, "a test vCPU did not finish a few real-mode instructions within {} ms (KVM_RUN hangs)", timeout.count());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return std::string("a test vCPU ran real-mode instructions with KVM_RUN");
    if (WIFSIGNALED(status)) return fail(ErrorCode::OperationFailed, "the KVM probe was killed by signal {}", WTERMSIG(status));
    return fail(ErrorCode::OperationFailed, "{}", probe_failure(WEXITSTATUS(status)));
}

AcceleratorInfo detect_accelerators(const HostPaths& paths, DetectOptions opts) {
    AcceleratorInfo acc;
    KvmStatus& k = acc.kvm;
    auto cpu = read_cpu_info(paths);
    k.cpu_virt_flags = cpu && (cpu->has_flag("vmx") || cpu->has_flag("svm"));
    for (const char* m : {"kvm_pvm", "kvm_intel", "kvm_amd"}) {
        std::error_code ec;
        if (fs::exists(paths.sys / "module" / m, ec)) {
            k.module = m;
            break;
        }
    }
    const fs::path dev = paths.dev / "kvm";
    std::error_code ec;
    k.device_exists = fs::exists(dev, ec);
    if (k.device_exists) k.device_accessible = ::access(dev.c_str(), R_OK | W_OK) == 0;

    if (k.module == "kvm_pvm") {
        k.reason = "KVM is provided by kvm_pvm (paravirtual), which cannot run standard guest kernels";
        return acc;
    }
    if (!k.device_exists) {
        k.reason = k.cpu_virt_flags ? fmt::format("{} does not exist (load kvm_intel or kvm_amd)", dev.string())
                                    : fmt::format("{} does not exist and the CPU has no hardware virtualization (vmx/svm)", dev.string());
        return acc;
    }
    if (!k.device_accessible) {
        k.reason = fmt::format("{} is not accessible to this user (add the user to the 'kvm' group)", dev.string());
        return acc;
    }
    if (!opts.probe) {
        k.usable = k.module == "kvm_intel" || k.module == "kvm_amd";
        k.reason = k.usable ? fmt::format("KVM is provided by {}", k.module) : "the kernel module behind /dev/kvm is unknown (not probed)";
        return acc;
    }
    k.probed = true;
    auto probe = probe_kvm_run(dev, opts.probe_timeout);
    k.usable = probe.has_value();
    k.reason = probe ? *probe : probe.error().message;
    return acc;
}

Status check_domain_type(std::string_view domain_type, const AcceleratorInfo& accel) {
    if (domain_type == "qemu") return {};
    if (domain_type != "kvm") return fail(ErrorCode::Unsupported, "unsupported configuration: domain type '{}' is not supported (expected kvm or qemu)", domain_type);
    if (accel.kvm.usable) return {};
    return fail(ErrorCode::Unsupported,
                "unsupported configuration: KVM is not usable on this host: {}; use <domain type='qemu'> (TCG emulation) instead", accel.kvm.reason);
}

NodeInfo read_node_info(const HostPaths& paths) {
    NodeInfo n;
    n.model = "x86_64";
    auto cpu = read_cpu_info(paths);
    if (cpu) {
        n.model = cpu->arch;
        n.cpus = cpu->cpus;
        n.mhz = cpu->mhz;
        n.sockets = cpu->sockets;
        n.cores = cpu->cores;
        n.threads = cpu->threads;
    }
    n.memory_kib = read_memory_kib(paths);
    n.nodes = static_cast<unsigned>(std::max<std::size_t>(1, read_numa_cells(paths).size()));
    // libvirt reports sockets per NUMA node
    if (n.nodes > 1 && n.sockets % n.nodes == 0) n.sockets /= n.nodes;
    return n;
}

}  // namespace vireo::host
