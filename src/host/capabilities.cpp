#include "host/capabilities.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <sstream>

#include <fmt/format.h>

#include "conf/xml_writer.hpp"
#include "util/files.hpp"
#include "util/uuid.hpp"

extern char** environ;

namespace vireo::host {

namespace fs = std::filesystem;
using conf::xml::Node;

std::vector<MachineType> parse_machine_help(std::string_view text) {
    std::vector<MachineType> out;
    std::istringstream in{std::string(text)};
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line.starts_with("Supported machines") || line[0] == ' ') continue;
        auto space = line.find(' ');
        if (space == std::string::npos) continue;
        MachineType m;
        m.name = line.substr(0, space);
        const std::string desc = line.substr(space);
        static constexpr std::string_view alias = "(alias of ";
        if (auto p = desc.find(alias); p != std::string::npos) {
            auto end = desc.find(')', p);
            m.canonical = desc.substr(p + alias.size(), end - p - alias.size());
        }
        m.is_default = desc.find("(default)") != std::string::npos;
        m.deprecated = desc.find("(deprecated)") != std::string::npos;
        if (m.name == "none") continue;
        out.push_back(std::move(m));
    }
    return out;
}

namespace {

// Run argv and capture stdout (stderr discarded); error if it fails.
Result<std::string> run_capture(const std::vector<std::string>& argv) {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return fail_errno("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipefd[1]);
    if (rc != 0) {
        ::close(pipefd[0]);
        return std::unexpected(errno_error(fmt::format("cannot run {}", argv[0]), rc));
    }
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(pipefd[0], buf, sizeof buf);
        if (n > 0) out.append(buf, static_cast<std::size_t>(n));
        else if (n == 0 || errno != EINTR) break;
    }
    ::close(pipefd[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return fail(ErrorCode::OperationFailed, "{} failed (status {})", argv[0], status);
    return out;
}

}  // namespace

Result<std::vector<MachineType>> query_machine_types(const fs::path& qemu_binary) {
    static std::mutex mutex;
    static std::map<std::string, std::pair<std::int64_t, std::vector<MachineType>>> cache;
    struct stat st{};
    if (::stat(qemu_binary.c_str(), &st) != 0) return fail_errno(fmt::format("cannot find QEMU binary {}", qemu_binary.string()));
    const std::int64_t mtime = static_cast<std::int64_t>(st.st_mtime);
    {
        std::lock_guard lock(mutex);
        auto it = cache.find(qemu_binary.string());
        if (it != cache.end() && it->second.first == mtime) return it->second.second;
    }
    auto text = run_capture({qemu_binary.string(), "-machine", "help"});
    if (!text) return std::unexpected(text.error().context("cannot list QEMU machine types"));
    auto machines = parse_machine_help(*text);
    if (machines.empty()) return fail(ErrorCode::Hypervisor, "{} -machine help listed no machine types", qemu_binary.string());
    std::lock_guard lock(mutex);
    cache[qemu_binary.string()] = {mtime, machines};
    return machines;
}

std::vector<GuestArch> discover_guest_arches() {
    std::vector<GuestArch> out;
    const std::pair<const char*, const char*> known[] = {{"x86_64", "qemu-system-x86_64"}, {"i686", "qemu-system-i386"}};
    for (auto [arch, binary] : known) {
        for (const char* dir : {"/usr/bin", "/usr/local/bin"}) {
            const fs::path p = fs::path(dir) / binary;
            if (::access(p.c_str(), X_OK) != 0) continue;
            GuestArch g;
            g.arch = arch;
            g.wordsize = std::string_view(arch) == "x86_64" ? 64 : 32;
            g.emulator = p.string();
            if (auto m = query_machine_types(p)) g.machines = std::move(*m);
            out.push_back(std::move(g));
            break;
        }
    }
    return out;
}

std::vector<std::string> find_uefi_firmware(const fs::path& root) {
    std::vector<std::string> out;
    for (const char* f : {"OVMF/OVMF_CODE_4M.fd", "OVMF/OVMF_CODE_4M.secboot.fd", "OVMF/OVMF_CODE.fd", "OVMF/OVMF_CODE.secboot.fd",
                          "qemu/edk2-x86_64-code.fd", "qemu/edk2-x86_64-secure-code.fd"}) {
        std::error_code ec;
        if (fs::exists(root / f, ec)) out.push_back((root / f).string());
    }
    return out;
}

std::string host_cpu_model(const CpuInfo& cpu) {
    if (cpu.vendor == "AMD") {
        if (cpu.family >= 0x19) return "EPYC-Milan";
        if (cpu.family == 0x17) return cpu.model >= 0x30 ? "EPYC-Rome" : "EPYC";
        if (cpu.family >= 0x15) return "Opteron_G5";
        return "qemu64";
    }
    if (cpu.vendor == "Intel" && cpu.family == 6) {
        if (cpu.has_flag("avx512f")) return cpu.has_flag("avx512_vnni") ? "Cascadelake-Server" : "Skylake-Server";
        if (cpu.has_flag("avx2")) return "Haswell";
        if (cpu.has_flag("avx")) return "SandyBridge";
        if (cpu.has_flag("sse4_2")) return "Nehalem";
        return "core2duo";
    }
    return "qemu64";
}

Result<HostFacts> gather_host_facts(const HostPaths& paths) {
    HostFacts f;
    auto cpu = read_cpu_info(paths);
    if (!cpu) return std::unexpected(cpu.error());
    f.cpu = std::move(*cpu);
    f.cells = read_numa_cells(paths);
    f.accel = detect_accelerators(paths);
    f.guests = discover_guest_arches();
    f.uefi_loaders = find_uefi_firmware();
    auto machine_id = files::read("/etc/machine-id");
    std::optional<Uuid> uuid;
    if (machine_id) {
        std::string id = *machine_id;
        while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
        uuid = Uuid::parse(id);
    }
    f.host_uuid = uuid ? uuid->str() : Uuid::generate().str();
    std::error_code ec;
    f.iommu = fs::exists(paths.sys / "class/iommu", ec) && !fs::is_empty(paths.sys / "class/iommu", ec);
    return f;
}

namespace {

void add_cells(Node& host, const HostFacts& f) {
    Node& topo = host.add("topology");
    Node& cells = topo.add("cells");
    cells.attr("num", std::to_string(f.cells.size()));
    for (const auto& c : f.cells) {
        Node& cell = cells.add("cell");
        cell.attr("id", std::to_string(c.id));
        cell.add("memory").attr("unit", "KiB").set_text(std::to_string(c.memory_kib));
        Node& dist = cell.add("distances");
        for (const auto& other : f.cells) dist.add("sibling").attr("id", std::to_string(other.id)).attr("value", other.id == c.id ? "10" : "20");
        Node& cpus = cell.add("cpus");
        cpus.attr("num", std::to_string(c.cpus.size()));
        for (unsigned id : c.cpus) {
            const fs::path t = fmt::format("/sys/devices/system/cpu/cpu{}/topology", id);
            auto read = [&](const char* name) {
                auto v = files::read(t / name);
                std::string s = v ? *v : std::string("0");
                while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
                return s.empty() ? std::string("0") : s;
            };
            cpus.add("cpu").attr("id", std::to_string(id)).attr("socket_id", read("physical_package_id")).attr("die_id", read("die_id"))
                .attr("core_id", read("core_id")).attr("siblings", read("thread_siblings_list"));
        }
    }
}

const GuestArch* find_guest(const HostFacts& f, std::string_view arch) {
    for (const auto& g : f.guests)
        if (g.arch == arch) return &g;
    return nullptr;
}

}  // namespace

std::string capabilities_xml(const HostFacts& f) {
    Node root("capabilities");
    Node& host = root.add("host");
    host.add_text("uuid", f.host_uuid);
    Node& cpu = host.add("cpu");
    cpu.add_text("arch", f.cpu.arch);
    cpu.add_text("model", host_cpu_model(f.cpu));
    cpu.add_text("vendor", f.cpu.vendor.empty() ? "unknown" : f.cpu.vendor);
    cpu.add("topology").attr("sockets", std::to_string(f.cpu.sockets)).attr("dies", "1").attr("cores", std::to_string(f.cpu.cores))
        .attr("threads", std::to_string(f.cpu.threads));
    for (const auto& flag : f.cpu.flags) cpu.add("feature").attr("name", flag);
    cpu.add("pages").attr("unit", "KiB").attr("size", "4");
    cpu.add("pages").attr("unit", "KiB").attr("size", "2048");
    host.add("power_management");
    host.add("iommu").attr("support", f.iommu ? "yes" : "no");
    Node& mig = host.add("migration_features");
    mig.add("live");
    Node& transports = mig.add("uri_transports");
    transports.add_text("uri_transport", "tcp");
    add_cells(host, f);
    Node& sec = host.add("secmodel");
    sec.add_text("model", f.secmodel);
    sec.add_text("doi", "0");
    if (!f.secmodel_baselabel.empty())
        for (const char* type : {"kvm", "qemu"}) sec.add("baselabel").attr("type", type).set_text(f.secmodel_baselabel);
    for (const auto& g : f.guests) {
        Node& guest = root.add("guest");
        guest.add_text("os_type", "hvm");
        Node& arch = guest.add("arch");
        arch.attr("name", g.arch);
        arch.add_text("wordsize", std::to_string(g.wordsize));
        arch.add_text("emulator", g.emulator);
        for (const auto& m : g.machines) {
            if (m.deprecated) continue;
            arch.add("machine").attr("canonical", m.canonical).set_text(m.name);
        }
        arch.add("domain").attr("type", "qemu");
        // Only when KVM really runs standard guests here (see probe.hpp).
        if (f.accel.kvm.usable && (g.arch == "x86_64" || g.arch == "i686")) arch.add("domain").attr("type", "kvm");
        Node& feats = guest.add("features");
        if (g.arch == "i686") {
            feats.add("pae");
            feats.add("nonpae");
        }
        feats.add("acpi").attr("default", "on").attr("toggle", "yes");
        feats.add("apic").attr("default", "on").attr("toggle", "no");
        feats.add("cpuselection");
        feats.add("deviceboot");
        feats.add("disksnapshot").attr("default", "on").attr("toggle", "no");
    }
    return root.str();
}

namespace {

void add_enum(Node& parent, std::string_view name, std::initializer_list<std::string_view> values) {
    Node& e = parent.add("enum");
    e.attr("name", name);
    for (auto v : values) e.add("value").set_text(v);
}

}  // namespace

Result<std::string> domain_capabilities_xml(const HostFacts& f, std::string_view emulator, std::string_view arch_in, std::string_view machine_in,
                                            std::string_view virttype_in) {
    const std::string virttype = virttype_in.empty() ? std::string("qemu") : std::string(virttype_in);
    if (virttype != "qemu" && virttype != "kvm")
        return fail(ErrorCode::Unsupported, "unsupported configuration: virtualization type '{}' is not supported (expected kvm or qemu)", virttype);
    if (virttype == "kvm" && !f.accel.kvm.usable)
        return fail(ErrorCode::Unsupported, "unsupported configuration: KVM is not usable on this host: {}; use virttype 'qemu' (TCG emulation) instead",
                    f.accel.kvm.reason);
    const GuestArch* g = nullptr;
    if (!emulator.empty()) {
        for (const auto& cand : f.guests)
            if (cand.emulator == emulator) g = &cand;
        if (!g) return fail(ErrorCode::InvalidArg, "emulator '{}' is not a known QEMU binary on this host", emulator);
        if (!arch_in.empty() && g->arch != arch_in)
            return fail(ErrorCode::InvalidArg, "emulator '{}' does not emulate architecture '{}'", emulator, arch_in);
    } else {
        const std::string arch = arch_in.empty() ? std::string("x86_64") : std::string(arch_in);
        g = find_guest(f, arch);
        if (!g) return fail(ErrorCode::Unsupported, "unsupported configuration: no QEMU emulator for architecture '{}' on this host", arch);
    }
    std::string machine(machine_in);
    if (machine.empty()) {
        for (const auto& m : g->machines)
            if (m.is_default) machine = m.name;
    } else {
        bool found = false;
        for (const auto& m : g->machines)
            if (m.name == machine) {
                found = true;
                if (!m.canonical.empty()) machine = m.canonical;
            }
        if (!found) return fail(ErrorCode::InvalidArg, "the machine '{}' is not supported by emulator '{}'", machine, g->emulator);
    }
    const bool q35 = machine.find("q35") != std::string::npos;

    Node root("domainCapabilities");
    root.add_text("path", g->emulator);
    root.add_text("domain", virttype);
    root.add_text("machine", machine);
    root.add_text("arch", g->arch);
    root.add("vcpu").attr("max", q35 ? "288" : "255");
    root.add("iothreads").attr("supported", "yes");
    Node& os = root.add("os");
    os.attr("supported", "yes");
    const bool efi = !f.uefi_loaders.empty() && g->arch == "x86_64";
    if (efi) add_enum(os, "firmware", {"efi"});
    else os.add("enum").attr("name", "firmware");
    Node& loader = os.add("loader");
    loader.attr("supported", "yes");
    for (const auto& l : f.uefi_loaders) loader.add("value").set_text(l);
    add_enum(loader, "type", {"rom", "pflash"});
    add_enum(loader, "readonly", {"yes", "no"});
    add_enum(loader, "secure", {"no"});
    Node& cpu = root.add("cpu");
    Node& passthrough = cpu.add("mode");
    passthrough.attr("name", "host-passthrough").attr("supported", virttype == "kvm" ? "yes" : "no");
    if (virttype == "kvm") add_enum(passthrough, "hostPassthroughMigratable", {"on", "off"});
    Node& maximum = cpu.add("mode");
    maximum.attr("name", "maximum").attr("supported", "yes");
    add_enum(maximum, "maximumMigratable", {"on", "off"});
    Node& host_model = cpu.add("mode");
    host_model.attr("name", "host-model").attr("supported", "no");
    Node& custom = cpu.add("mode");
    custom.attr("name", "custom").attr("supported", "yes");
    for (const char* m : {"qemu64", "qemu32", "kvm64", "max", "Nehalem", "Haswell", "Skylake-Client", "Skylake-Server", "EPYC", "EPYC-Rome", "EPYC-Milan"})
        custom.add("model").attr("usable", "unknown").attr("vendor", std::string_view(m).starts_with("EPYC") ? "AMD" : (std::string_view(m).starts_with("qemu") || std::string_view(m) == "max" || std::string_view(m) == "kvm64") ? "unknown" : "Intel").set_text(m);
    Node& mb = root.add("memoryBacking");
    mb.attr("supported", "yes");
    add_enum(mb, "sourceType", {"file", "anonymous", "memfd"});
    // Devices: exactly the values vireo's domain parser accepts.
    Node& dev = root.add("devices");
    Node& disk = dev.add("disk");
    disk.attr("supported", "yes");
    add_enum(disk, "diskDevice", {"disk", "cdrom", "floppy", "lun"});
    add_enum(disk, "bus", {"ide", "fdc", "scsi", "virtio", "usb", "sata"});
    add_enum(disk, "model", {"virtio"});
    Node& gr = dev.add("graphics");
    gr.attr("supported", "yes");
    add_enum(gr, "type", {"vnc", "spice"});
    Node& video = dev.add("video");
    video.attr("supported", "yes");
    add_enum(video, "modelType", {"vga", "cirrus", "virtio", "none", "bochs", "ramfb", "qxl"});
    Node& hostdev = dev.add("hostdev");
    hostdev.attr("supported", "no");
    Node& rng = dev.add("rng");
    rng.attr("supported", "yes");
    add_enum(rng, "model", {"virtio"});
    add_enum(rng, "backendModel", {"random", "builtin"});
    Node& fsdev = dev.add("filesystem");
    fsdev.attr("supported", "yes");
    add_enum(fsdev, "driverType", {"path", "handle", "virtiofs"});
    Node& tpm = dev.add("tpm");
    tpm.attr("supported", "yes");
    add_enum(tpm, "model", {"tpm-tis", "tpm-crb"});
    add_enum(tpm, "backendModel", {"passthrough", "emulator"});
    add_enum(tpm, "backendVersion", {"1.2", "2.0"});
    Node& redir = dev.add("redirdev");
    redir.attr("supported", "yes");
    add_enum(redir, "bus", {"usb"});
    Node& chan = dev.add("channel");
    chan.attr("supported", "yes");
    add_enum(chan, "type", {"pty", "unix", "spicevmc"});
    Node& feat = root.add("features");
    feat.add("gic").attr("supported", "no");
    feat.add("vmcoreinfo").attr("supported", "yes");
    feat.add("genid").attr("supported", "yes");
    feat.add("backingStoreInput").attr("supported", "yes");
    feat.add("backup").attr("supported", "no");
    feat.add("sev").attr("supported", "no");
    return root.str();
}

}  // namespace vireo::host
