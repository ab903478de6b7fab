#include "qemu/probe.hpp"

#include <malloc.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include "qemu/monitor.hpp"
#include "util/fd.hpp"
#include "util/files.hpp"
#include "util/path_search.hpp"

namespace vireo::qemu {

using nlohmann::json;

Result<BinaryIdentity> identify_binary(const std::filesystem::path& path) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) return fail_errno(fmt::format("QEMU binary '{}'", path.string()));
    if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0)
        return fail(ErrorCode::NotFound, "QEMU binary '{}' is not an executable file", path.string());
    BinaryIdentity id;
    id.path = path.string();
    id.size = static_cast<std::uint64_t>(st.st_size);
    id.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    id.inode = st.st_ino;
    return id;
}

std::string QemuCaps::version_string() const { return fmt::format("{}.{}.{}", major, minor, micro); }
unsigned QemuCaps::version_number() const {
    return static_cast<unsigned>(major) * 1000000u + static_cast<unsigned>(minor) * 1000u +
           static_cast<unsigned>(micro);
}

const MachineType* QemuCaps::find_machine(std::string_view name) const {
    for (const auto& m : machines) {
        if (name.empty() ? m.is_default : (m.name == name || m.alias == name)) return &m;
    }
    return nullptr;
}

json QemuCaps::to_json() const {
    json machines_j = json::array();
    for (const auto& m : machines)
        machines_j.push_back({{"name", m.name}, {"alias", m.alias}, {"default", m.is_default},
                              {"cpu_max", m.cpu_max}, {"deprecated", m.deprecated}});
    return {
        {"format", CapsCache::kFormatVersion},
        {"binary",
         {{"path", binary.path}, {"size", binary.size}, {"mtime_ns", binary.mtime_ns}, {"inode", binary.inode}}},
        {"arch", arch},
        {"version", {{"major", major}, {"minor", minor}, {"micro", micro}, {"package", package}}},
        {"machines", machines_j},
        {"accelerators", accelerators},
        {"cpu_models", cpu_models},
        {"devices", devices},
        {"commands", commands},
        {"events", events},
    };
}

Result<QemuCaps> QemuCaps::from_json(const json& j) {
    try {
        if (j.at("format").get<int>() != CapsCache::kFormatVersion)
            return fail(ErrorCode::Corrupt, "capabilities cache entry has another format version");
        QemuCaps c;
        const auto& b = j.at("binary");
        c.binary.path = b.at("path").get<std::string>();
        c.binary.size = b.at("size").get<std::uint64_t>();
        c.binary.mtime_ns = b.at("mtime_ns").get<std::int64_t>();
        c.binary.inode = b.at("inode").get<std::uint64_t>();
        c.arch = j.at("arch").get<std::string>();
        const auto& v = j.at("version");
        c.major = v.at("major").get<int>();
        c.minor = v.at("minor").get<int>();
        c.micro = v.at("micro").get<int>();
        c.package = v.at("package").get<std::string>();
        for (const auto& m : j.at("machines"))
            c.machines.push_back({m.at("name").get<std::string>(), m.at("alias").get<std::string>(),
                                  m.at("default").get<bool>(), m.at("cpu_max").get<int>(),
                                  m.at("deprecated").get<bool>()});
        c.accelerators = j.at("accelerators").get<std::set<std::string>>();
        c.cpu_models = j.at("cpu_models").get<std::set<std::string>>();
        c.devices = j.at("devices").get<std::set<std::string>>();
        c.commands = j.at("commands").get<std::set<std::string>>();
        c.events = j.at("events").get<std::set<std::string>>();
        return c;
    } catch (const json::exception& e) {
        return fail(ErrorCode::Corrupt, "capabilities cache entry is malformed: {}", e.what());
    }
}

namespace {

std::string arch_of(const std::filesystem::path& binary) {
    std::string name = binary.filename().string();
    constexpr std::string_view prefix = "qemu-system-";
    if (name.starts_with(prefix)) return name.substr(prefix.size());
    return "x86_64";
}

// A probe child: QEMU with no guest, its QMP on one end of a socketpair and
// its stderr in a pipe.
struct ProbeChild {
    pid_t pid = -1;
    UniqueFd qmp;
    UniqueFd err;

    ~ProbeChild() { reap(true); }
    void reap(bool kill_first) {
        if (pid <= 0) return;
        if (kill_first) ::kill(pid, SIGKILL);
        while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        pid = -1;
    }
    std::string stderr_text() {
        std::string out;
        char buf[4096];
        int flags = fcntl(err.get(), F_GETFL);
        fcntl(err.get(), F_SETFL, flags | O_NONBLOCK);
        for (;;) {
            ssize_t n = ::read(err.get(), buf, sizeof(buf));
            if (n <= 0) break;
            out.append(buf, static_cast<std::size_t>(n));
        }
        while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
        return out;
    }
};

Result<void> start_probe_child(const std::filesystem::path& binary, ProbeChild& child) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return fail_errno("socketpair");
    UniqueFd ours(sv[0]), theirs(sv[1]);
    int ep[2];
    if (::pipe2(ep, O_CLOEXEC) != 0) return fail_errno("pipe");
    UniqueFd err_rd(ep[0]), err_wr(ep[1]);

    std::vector<std::string> args = {binary.string(), "-S", "-no-user-config", "-nodefaults", "-nographic",
                                     "-machine", "none", "-accel", "tcg",
                                     "-chardev", fmt::format("socket,id=qmp,fd={}", theirs.get()),
                                     "-mon", "chardev=qmp,mode=control"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));

    pid_t pid = ::fork();
    if (pid < 0) return fail_errno("fork");
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        dup2(devnull.get(), 0);
        dup2(devnull.get(), 1);
        dup2(err_wr.get(), 2);
        close_range(3, UINT_MAX, CLOSE_RANGE_CLOEXEC);
        fcntl(theirs.get(), F_SETFD, 0);
        execv(argv[0], argv.data());
        _exit(127);
    }
    child.pid = pid;
    child.qmp = std::move(ours);
    child.err = std::move(err_rd);
    return {};
}

std::set<std::string> type_names(Monitor& mon, std::string_view implements, std::string_view strip_suffix) {
    std::set<std::string> out;
    auto types = mon.qom_list_types(implements);
    if (!types) return out;
    for (std::string name : *types) {
        if (!strip_suffix.empty() && name.ends_with(strip_suffix)) name.resize(name.size() - strip_suffix.size());
        if (!name.empty()) out.insert(std::move(name));
    }
    return out;
}

Status ask_everything(Monitor& mon, QemuCaps& caps) {
    auto version = mon.query_version();
    if (!version) return std::unexpected(version.error());
    caps.major = version->major;
    caps.minor = version->minor;
    caps.micro = version->micro;
    caps.package = version->package;

    auto machines = mon.query_machines();
    if (!machines) return std::unexpected(machines.error());
    for (const auto& m : *machines)
        caps.machines.push_back(MachineType{m.name, m.alias, m.is_default, m.cpu_max, m.deprecated});
    std::ranges::sort(caps.machines, {}, &MachineType::name);

    caps.accelerators = type_names(mon, "accel", "-accel");
    caps.devices = type_names(mon, "device", "");

    if (auto cpus = mon.query_cpu_definitions())
        caps.cpu_models.insert(cpus->begin(), cpus->end());

    auto schema = mon.query_qmp_schema();
    if (!schema) return std::unexpected(schema.error());
    caps.commands = std::move(schema->commands);
    caps.events = std::move(schema->events);
    return {};
}

}  // namespace

Result<QemuCaps> probe_binary(const std::filesystem::path& binary) {
    auto ident = identify_binary(binary);
    if (!ident) return std::unexpected(ident.error());
    QemuCaps caps;
    caps.binary = *ident;
    caps.arch = arch_of(binary);

    ProbeChild child;
    VIREO_TRY(start_probe_child(binary, child));
    auto mon = Monitor::open(std::move(child.qmp), std::chrono::seconds(30), {}, {}, std::chrono::seconds(30));
    if (!mon) {
        child.reap(true);
        std::string err = child.stderr_text();
        return fail(ErrorCode::Hypervisor, "probing '{}' failed: {}", binary.string(),
                    err.empty() ? mon.error().message : err);
    }
    auto asked = ask_everything(**mon, caps);
    (void)(*mon)->quit();
    (*mon)->close();
    child.reap(false);
    if (!asked) return std::unexpected(asked.error().context(fmt::format("probing '{}' failed", binary.string())));
    return caps;
}

namespace {

// Where QEMU binaries are looked for, in order: $PATH, then the usual
// directories (a daemon may run with a short PATH).
std::vector<std::string> binary_search_dirs() {
    std::vector<std::string> dirs = path_dirs();
    for (const char* d : {"/usr/bin", "/usr/local/bin", "/usr/libexec"}) dirs.emplace_back(d);
    return dirs;
}

}  // namespace

std::vector<std::filesystem::path> find_qemu_binaries() {
    std::set<std::filesystem::path> found;
    std::set<std::string> names;
    for (const auto& d : binary_search_dirs()) {
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(d, ec)) {
            std::string name = e.path().filename().string();
            if (!name.starts_with("qemu-system-") || names.contains(name)) continue;
            if (::access(e.path().c_str(), X_OK) != 0) continue;
            names.insert(name);
            found.insert(e.path());
        }
    }
    return {found.begin(), found.end()};
}

// The first search directory with an executable of that name, as
// find_qemu_binaries() would pick it, without listing whole directories
// (/usr/bin holds a thousand entries; version and start ask for this).
Result<std::filesystem::path> find_qemu_binary(std::string_view arch) {
    std::string want = fmt::format("qemu-system-{}", arch);
    if (auto found = find_executable(want, binary_search_dirs())) return *found;
    return fail(ErrorCode::NotFound, "no QEMU binary '{}' found in PATH or /usr/bin (is QEMU installed?)", want);
}

CapsCache::CapsCache(std::filesystem::path cache_dir) : dir_(std::move(cache_dir)) {}

std::filesystem::path CapsCache::entry_path(const std::filesystem::path& binary) const {
    std::string key = binary.string();
    std::ranges::replace(key, '/', '_');
    return dir_ / "capabilities" / (key + ".json");
}

unsigned CapsCache::probes_run() const {
    std::lock_guard lk(mutex_);
    return probes_;
}

void CapsCache::remember(std::shared_ptr<const QemuCaps> caps) {
    std::lock_guard lk(mutex_);
    memory_[caps->binary.path] = std::move(caps);
}

namespace {

// Loading an entry or probing parses a large JSON document (a probe's QMP
// schema is megabytes as a DOM) and frees it at once; glibc keeps freed
// pages that lie below memory allocated later, so without this the daemon
// would carry the parse's peak for its whole life. Give them back now.
void return_freed_memory() { ::malloc_trim(0); }

}  // namespace

Result<std::shared_ptr<const QemuCaps>> CapsCache::get(const std::filesystem::path& binary) {
    auto ident = identify_binary(binary);
    if (!ident) return std::unexpected(ident.error());
    std::lock_guard lk(mutex_);
    if (auto it = memory_.find(ident->path); it != memory_.end() && it->second->binary == *ident) return it->second;

    if (!dir_.empty()) {
        if (auto text = files::read(entry_path(binary))) {
            json j = json::parse(*text, nullptr, false);
            if (!j.is_discarded()) {
                if (auto caps = QemuCaps::from_json(j); caps && caps->binary == *ident) {
                    auto shared = std::make_shared<const QemuCaps>(std::move(*caps));
                    memory_[ident->path] = shared;
                    return_freed_memory();
                    return shared;
                }
            }
        }
    }
    auto caps = probe_binary(binary);
    ++probes_;
    if (!caps) return std::unexpected(caps.error());
    auto shared = std::make_shared<const QemuCaps>(std::move(*caps));
    memory_[ident->path] = shared;
    if (!dir_.empty()) {
        // A cache that cannot be written only costs the next start a probe.
        if (files::make_dirs(dir_ / "capabilities"))
            (void)files::write_atomic(entry_path(binary), shared->to_json().dump());
    }
    return_freed_memory();
    return shared;
}

}  // namespace vireo::qemu
