// dnsmasq configuration and process (see dnsmasq.hpp).
#include "network/dnsmasq.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "network/leases.hpp"
#include "util/fd.hpp"
#include "util/files.hpp"
#include "util/path_search.hpp"

extern char** environ;

namespace vireo::network {

using conf::ForwardMode;
using conf::NetworkDef;
using conf::NetworkIp;

namespace {

// dnsmasq's lease time: seconds or "infinite".
std::string lease_time(const std::optional<conf::DhcpLease>& l) {
    if (!l) return {};
    if (l->expiry == 0) return "infinite";
    std::uint64_t s = l->expiry;
    if (l->unit == "minutes" || l->unit.empty()) s *= 60;
    else if (l->unit == "hours") s *= 3600;
    return std::to_string(s);
}

std::string txt_quoted(std::string_view v) {
    std::string out = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

void dns_options(std::ostringstream& out, const NetworkDef& def) {
    const auto& dns = def.dns;
    if (dns.enable == "no") {
        out << "port=0\n";
        return;
    }
    if (!def.domain_name.empty()) {
        out << "domain=" << def.domain_name << "\n";
        out << "expand-hosts\n";
        if (def.domain_local_only == "yes") out << "local=/" << def.domain_name << "/\n";
    }
    if (dns.forward_plain_names == "no") out << "domain-needed\nlocal=//\n";
    bool own_upstreams = false;
    for (const auto& f : dns.forwarders) {
        if (!f.domain.empty() && f.addr) out << "server=/" << f.domain << "/" << f.addr->str() << "\n";
        else if (f.addr) {
            out << "server=" << f.addr->str() << "\n";
            own_upstreams = true;
        } else out << "server=/" << f.domain << "/\n";
    }
    if (own_upstreams) out << "no-resolv\n";
    for (const auto& s : dns.srvs) {
        out << "srv-host=_" << s.service << "._" << s.protocol;
        if (!s.domain.empty()) out << "." << s.domain;
        if (!s.target.empty() || s.port || s.priority || s.weight) out << "," << s.target;
        if (s.port || s.priority || s.weight) out << "," << s.port.value_or(0);
        if (s.priority || s.weight) out << "," << s.priority.value_or(0);
        if (s.weight) out << "," << *s.weight;
        out << "\n";
    }
    for (const auto& t : dns.txts) out << "txt-record=" << t.name << "," << txt_quoted(t.value) << "\n";
}

std::uint64_t lease_count(const NetworkDef& def) {
    std::uint64_t n = 0;
    for (const auto& ip : def.ips) {
        for (const auto& r : ip.ranges) n += conf::range_size(r.start, r.end);
        n += ip.hosts.size();
    }
    return n;
}

void dhcp_options(std::ostringstream& out, const NetworkDef& def, const DnsmasqFiles& files, const std::filesystem::path& helper) {
    bool any_dhcp = false, any_v6 = false;
    for (const auto& ip : def.ips) {
        any_v6 = any_v6 || ip.is_v6();
        for (const auto& r : ip.ranges) {
            out << "dhcp-range=" << r.start.str() << "," << r.end.str() << ",";
            if (ip.is_v6()) out << ip.prefix_length();
            else out << conf::prefix_netmask_v4(ip.prefix_length()).str();
            if (auto t = lease_time(r.lease); !t.empty()) out << "," << t;
            out << "\n";
            any_dhcp = true;
        }
        if (ip.dhcp && ip.ranges.empty() && !ip.hosts.empty()) {
            // Static hosts only: dnsmasq needs a range to serve the subnet.
            out << "dhcp-range=" << ip.address.network(ip.prefix_length()).str() << ",static";
            if (ip.is_v6()) out << "," << ip.prefix_length();
            else out << "," << conf::prefix_netmask_v4(ip.prefix_length()).str();
            out << "\n";
            any_dhcp = true;
        }
        if (ip.is_v6() && !ip.dhcp) out << "dhcp-range=" << ip.address.network(ip.prefix_length()).str() << ",ra-only\n";
        if (!ip.tftp_root.empty()) out << "enable-tftp\ntftp-root=" << ip.tftp_root << "\n";
        if (!ip.bootp_file.empty()) {
            out << "dhcp-boot=" << ip.bootp_file;
            if (!ip.bootp_server.empty()) out << ",," << ip.bootp_server;
            out << "\n";
        }
    }
    if (any_dhcp) {
        out << "dhcp-no-override\ndhcp-authoritative\n";
        // dnsmasq pings an address before it first offers it and waits 3 s
        // for an answer: every new guest's first lease (a CI guest's only
        // one) came 3 s late. The subnet belongs to this network, so the
        // only hosts on it are its guests, whose addresses dnsmasq gives;
        // libvirt keeps the probe (see docs/network.md for the difference).
        out << "no-ping\n";  // IPv4 only; dnsmasq ignores it for DHCPv6
        out << "dhcp-lease-max=" << std::min<std::uint64_t>(lease_count(def), 1u << 24) << "\n";
        out << "dhcp-hostsfile=" << files.hostsfile.string() << "\n";
        out << "dhcp-leasefile=" << files.leases.string() << "\n";
        if (!helper.empty()) out << "dhcp-script=" << helper.string() << "\nscript-on-renewal\n";
    }
    if (any_v6) out << "enable-ra\n";
}

Result<std::filesystem::path> dnsmasq_binary(const DnsmasqOptions& o) {
    if (!o.binary.empty()) return o.binary;
    auto dirs = path_dirs({"/usr/sbin", "/usr/bin", "/sbin", "/bin"});
    for (const char* extra : {"/usr/sbin", "/sbin"}) dirs.emplace_back(extra);
    if (auto p = find_executable("dnsmasq", dirs)) return *p;
    return fail(ErrorCode::NotFound, "dnsmasq is not installed (Debian package dnsmasq-base)");
}

bool process_alive(pid_t pid) {
    auto stat = files::read(fmt::format("/proc/{}/stat", pid));
    if (!stat) return false;
    const auto paren = stat->rfind(')');
    return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] != 'Z';
}

// Wait until `pid` has exited (a zombie counts): on its pidfd when there
// is one, else by looking at /proc every few milliseconds.
bool wait_exit(pid_t pid, const UniqueFd& pidfd, std::chrono::milliseconds timeout) {
    if (pidfd) {
        pollfd p{pidfd.get(), POLLIN, 0};
        int rc = 0;
        do rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
        while (rc < 0 && errno == EINTR);
        if (rc > 0) return true;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (process_alive(pid)) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

Status write_hosts_files(const NetworkDef& def, const DnsmasqFiles& files) {
    // Regenerated from the network's definition at every start and update:
    // atomic for dnsmasq's readers, not worth an fsync each (6 per start).
    VIREO_TRY(files::write_replace(files.hostsfile, dnsmasq_hostsfile(def)));
    return files::write_replace(files.addnhosts, dnsmasq_addnhosts(def));
}

}  // namespace

DnsmasqFiles DnsmasqFiles::in(const std::filesystem::path& dir, std::string_view name) {
    const std::string n(name);
    return {dir / (n + ".conf"), dir / (n + ".pid"), dir / (n + ".leases"), dir / (n + ".hostsfile"), dir / (n + ".addnhosts"), dir / (n + ".status")};
}

bool needs_dnsmasq(const NetworkDef& def) {
    if (!def.has_own_bridge() || def.ips.empty()) return false;
    if (def.dns.enable != "no") return true;
    for (const auto& ip : def.ips)
        if (ip.dhcp) return true;
    return false;
}

std::string dnsmasq_config(const NetworkDef& def, const DnsmasqFiles& files, const std::filesystem::path& lease_helper) {
    std::ostringstream out;
    out << "##WARNING:  THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\n"
           "##OVERWRITTEN AND LOST.  Changes to this configuration should be made using:\n"
           "##    vireo net-edit " << def.name << "\n"
           "## or other application using the vireo API.\n\n";
    out << "strict-order\n";
    out << "pid-file=" << files.pid.string() << "\n";
    out << "except-interface=lo\nbind-dynamic\n";
    out << "interface=" << def.bridge.name << "\n";
    dns_options(out, def);
    dhcp_options(out, def, files, lease_helper);
    out << "addn-hosts=" << files.addnhosts.string() << "\n";
    return out.str();
}

std::string dnsmasq_hostsfile(const NetworkDef& def) {
    std::ostringstream out;
    for (const auto& ip : def.ips)
        for (const auto& h : ip.hosts) {
            std::vector<std::string> fields;
            if (ip.is_v6()) {
                if (!h.id.empty()) fields.push_back("id:" + h.id);
                if (!h.name.empty()) fields.push_back(h.name);
                if (h.ip) fields.push_back("[" + h.ip->str() + "]");
            } else {
                if (!h.mac.empty()) fields.push_back(h.mac);
                if (h.ip) fields.push_back(h.ip->str());
                if (!h.name.empty()) fields.push_back(h.name);
            }
            if (auto t = lease_time(h.lease); !t.empty()) fields.push_back(t);
            for (std::size_t i = 0; i < fields.size(); ++i) out << (i ? "," : "") << fields[i];
            out << "\n";
        }
    return out.str();
}

std::string dnsmasq_addnhosts(const NetworkDef& def) {
    std::ostringstream out;
    for (const auto& h : def.dns.hosts) {
        out << h.ip.str();
        for (std::size_t i = 0; i < h.hostnames.size(); ++i) out << (i ? " " : "\t") << h.hostnames[i];
        out << "\n";
    }
    return out.str();
}

Result<std::optional<pid_t>> find_dnsmasq(const DnsmasqFiles& files) {
    auto text = files::read(files.pid);
    if (!text) {
        if (text.error().code == ErrorCode::NotFound) return std::optional<pid_t>();
        return std::unexpected(text.error());
    }
    char* end = nullptr;
    const long pid = std::strtol(text->c_str(), &end, 10);
    if (pid <= 0 || end == text->c_str()) return std::optional<pid_t>();
    auto cmdline = files::read(fmt::format("/proc/{}/cmdline", pid));
    if (!cmdline || !process_alive(static_cast<pid_t>(pid))) return std::optional<pid_t>();
    // argv is NUL-separated: the program must be dnsmasq, with our config.
    std::vector<std::string> argv;
    std::string cur;
    for (char c : *cmdline) {
        if (c == '\0') {
            argv.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (argv.empty() || std::filesystem::path(argv[0]).filename() != "dnsmasq") return std::optional<pid_t>();
    const std::string want = "--conf-file=" + files.config.string();
    for (const auto& a : argv)
        if (a == want) return std::optional<pid_t>(static_cast<pid_t>(pid));
    return std::optional<pid_t>();
}

Result<pid_t> start_dnsmasq(const NetworkDef& def, const DnsmasqFiles& files, const DnsmasqOptions& options) {
    auto running = find_dnsmasq(files);
    if (!running) return std::unexpected(running.error());
    if (*running) return fail(ErrorCode::Exists, "dnsmasq of network '{}' is already running (pid {})", def.name, **running);
    auto binary = dnsmasq_binary(options);
    if (!binary) return std::unexpected(binary.error());
    VIREO_TRY(files::make_dirs(files.config.parent_path()));
    // dnsmasq reads its hosts files after dropping root privileges.
    struct stat st{};
    if (::stat(files.config.parent_path().c_str(), &st) == 0 && (st.st_mode & 0005) != 0005)
        return fail(ErrorCode::PermissionDenied, "dnsmasq for network '{}' cannot read its files: {} must be readable and searchable by all (mode 0755)",
                    def.name, files.config.parent_path().string());
    VIREO_TRY(write_hosts_files(def, files));
    VIREO_TRY(files::write_replace(files.config, dnsmasq_config(def, files, options.lease_helper)));
    std::error_code ignored;
    std::filesystem::remove(files.pid, ignored);  // a stale one; find_dnsmasq never trusts it alone

    // The helper learns where to write from the environment dnsmasq passes on.
    std::vector<std::string> env_storage;
    for (char** e = environ; e && *e; ++e) {
        const std::string_view v(*e);
        if (!v.starts_with("VIREO_LEASE_") && !v.starts_with("VIREO_NETWORK=")) env_storage.emplace_back(v);
    }
    env_storage.push_back(fmt::format("{}={}", kLeaseStatusEnv, files.status.string()));
    env_storage.push_back(fmt::format("{}={}", kLeaseNetworkEnv, def.name));
    if (!options.notify_socket.empty()) env_storage.push_back(fmt::format("{}={}", kLeaseNotifyEnv, options.notify_socket));
    std::vector<char*> envp;
    for (auto& s : env_storage) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string arg0 = binary->string(), arg1 = "--conf-file=" + files.config.string();
    char* argv[] = {arg0.data(), arg1.data(), nullptr};

    // stderr into a memory file: the daemonised dnsmasq may keep it open,
    // so a pipe would never reach EOF.
    UniqueFd err(::memfd_create("dnsmasq-stderr", MFD_CLOEXEC));
    if (!err) return fail_errno("cannot create a buffer for dnsmasq's errors");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, err.get(), 2);
    // dnsmasq must not inherit the caller's signal state: vireod blocks
    // SIGTERM for its signal thread and ignores SIGPIPE, and a dnsmasq with
    // SIGTERM blocked only ends with SIGKILL (net-destroy took 7 s).
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2}) sigaddset(&defaults, sig);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t child = 0;
    const int rc = posix_spawn(&child, arg0.c_str(), &actions, &attr, argv, envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) return std::unexpected(errno_error(fmt::format("cannot run {}", arg0), rc));
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::string msg(4096, '\0');
        const ssize_t n = ::pread(err.get(), msg.data(), msg.size(), 0);
        msg.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
        return fail(ErrorCode::OperationFailed, "dnsmasq for network '{}' failed to start: {}", def.name,
                    msg.empty() ? fmt::format("exit status {}", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) : msg);
    }
    // The pid file is written by the daemon itself: give it a moment.
    for (int i = 0; i < 100; ++i) {
        auto found = find_dnsmasq(files);
        if (!found) return std::unexpected(found.error());
        if (*found) return **found;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return fail(ErrorCode::OperationFailed, "dnsmasq for network '{}' started but wrote no pid file {}", def.name, files.pid.string());
}

DnsmasqStopping::DnsmasqStopping(DnsmasqStopping&& o) noexcept
    : pid(std::exchange(o.pid, -1)), pidfd(std::exchange(o.pidfd, -1)), pid_file(std::move(o.pid_file)) {}

DnsmasqStopping::~DnsmasqStopping() {
    if (pidfd >= 0) ::close(pidfd);
}

Result<DnsmasqStopping> begin_stop_dnsmasq(const DnsmasqFiles& files) {
    auto running = find_dnsmasq(files);
    if (!running) return std::unexpected(running.error());
    DnsmasqStopping s;
    s.pid_file = files.pid;
    if (!*running) return s;
    s.pid = **running;
    // Opened before the signal, the pidfd is this process even if the pid
    // is reused, and becomes readable the moment it exits (dnsmasq is not
    // our child: there is nothing to wait for).
    s.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, s.pid, 0));
    ::kill(s.pid, SIGTERM);
    return s;
}

Status finish_stop_dnsmasq(DnsmasqStopping& s) {
    if (s.pid > 0) {
        const UniqueFd pidfd(std::exchange(s.pidfd, -1));
        if (!wait_exit(s.pid, pidfd, std::chrono::seconds(5))) {
            ::kill(s.pid, SIGKILL);
            if (!wait_exit(s.pid, pidfd, std::chrono::seconds(2)))
                return fail(ErrorCode::OperationFailed, "dnsmasq (pid {}) did not exit after SIGKILL", s.pid);
        }
    }
    // No fsync: a pid file that comes back after a crash names no live
    // dnsmasq of this network, which find_dnsmasq checks.
    std::error_code ec;
    std::filesystem::remove(s.pid_file, ec);
    if (ec) return fail(ErrorCode::System, "cannot remove '{}': {}", s.pid_file.string(), ec.message());
    return {};
}

Status stop_dnsmasq(const DnsmasqFiles& files) {
    auto stopping = begin_stop_dnsmasq(files);
    if (!stopping) return std::unexpected(stopping.error());
    return finish_stop_dnsmasq(*stopping);
}

Status reload_dnsmasq(const NetworkDef& def, const DnsmasqFiles& files) {
    VIREO_TRY(write_hosts_files(def, files));
    auto running = find_dnsmasq(files);
    if (!running) return std::unexpected(running.error());
    if (!*running) return fail(ErrorCode::InvalidState, "dnsmasq of network '{}' is not running", def.name);
    if (::kill(**running, SIGHUP) < 0) return fail_errno(fmt::format("cannot signal dnsmasq of network '{}'", def.name));
    return {};
}

}  // namespace vireo::network
