#include "guest.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <thread>

#include "support/support.hpp"

namespace vireo::test {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(left);
}

std::vector<std::string> split_commas(const std::string& list) {
    std::vector<std::string> items;
    std::stringstream in(list);
    std::string item;
    while (std::getline(in, item, ','))
        if (!item.empty()) items.push_back(item);
    return items;
}

}  // namespace

std::string guest_unavailable_reason() {
    if (which("qemu-system-x86_64").empty()) return "qemu-system-x86_64 is not installed";
    for (const char* file : {"vmlinuz", "initrd.img"}) {
        if (!fs::exists(guest_dir() / file))
            return "test guest not built: " + (guest_dir() / file).string() +
                   " is missing (run the guest_build test or tests/guest/build-guest.sh " + guest_dir().string() +
                   ")";
    }
    return {};
}

fs::path disk_guest_image() { return guest_dir() / "disk.qcow2"; }

std::string disk_guest_unavailable_reason() {
    if (auto why = guest_unavailable_reason(); !why.empty()) return why;
    if (!fs::exists(disk_guest_image()))
        return "disk test guest not built: " + disk_guest_image().string() +
               " is missing (run the guest_build test or tests/guest/build-guest.sh " + guest_dir().string() + ")";
    if (which("qemu-img").empty()) return "qemu-img is not installed";
    return {};
}

std::string disk_guest_overlay(const fs::path& overlay) {
    // The backing file by its resolved path: the symlink moves to a new
    // kernel's image on --refresh, an overlay must keep its own.
    std::error_code ec;
    const fs::path base = fs::canonical(disk_guest_image(), ec);
    if (ec) return "cannot resolve " + disk_guest_image().string() + ": " + ec.message();
    auto r = run({"qemu-img", "create", "-q", "-f", "qcow2", "-b", base.string(), "-F", "qcow2", overlay.string()});
    return r.exit_code == 0 ? std::string() : "qemu-img create " + overlay.string() + ": " + r.out + r.err;
}

std::vector<std::string> guest_qemu_argv(const GuestOptions& options) {
    std::string cmdline = kGuestCmdline;
    if (!options.cmdline_extra.empty()) cmdline += " " + options.cmdline_extra;
    std::vector<std::string> argv = {
        "qemu-system-x86_64", "-machine", options.machine, "-accel", "tcg",
        "-m", std::to_string(options.memory_mb), "-smp", std::to_string(options.cpus),
        "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
        "-kernel", (guest_dir() / "vmlinuz").string(), "-initrd", (guest_dir() / "initrd.img").string(),
        "-append", cmdline,
    };
    if (options.no_reboot) argv.emplace_back("-no-reboot");
    if (!options.qmp_socket.empty()) {
        argv.emplace_back("-qmp");
        argv.push_back("unix:" + options.qmp_socket.string() + ",server=on,wait=off");
    }
    argv.insert(argv.end(), options.extra.begin(), options.extra.end());
    return argv;
}

std::string guest_domain_xml(const std::string& name, const std::string& extra_devices,
                             const std::string& cmdline_extra, const std::string& extra_top) {
    const std::filesystem::path g = guest_dir();
    return fmt::format(R"(<domain type='qemu'>
  <name>{}</name>
  <memory unit='MiB'>160</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{}</kernel>
    <initrd>{}</initrd>
    <cmdline>{}{}{}</cmdline>
  </os>
  {}
  <features><acpi/><apic/></features>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
    {}
  </devices>
</domain>
)",
                       name, (g / "vmlinuz").string(), (g / "initrd.img").string(), kGuestCmdline,
                       cmdline_extra.empty() ? "" : " ", cmdline_extra, extra_top, extra_devices);
}

std::string disk_guest_domain_xml(const std::string& name, const std::string& machine, const fs::path& disk,
                                  const std::string& os_extra, const std::string& extra_devices) {
    return fmt::format(R"(<domain type='qemu'>
  <name>{}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='{}'>hvm</type>
    {}
    <boot dev='hd'/>
  </os>
  <features><acpi/><apic/></features>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
    {}
  </devices>
</domain>
)",
                       name, machine, os_extra, disk.string(), extra_devices);
}

std::vector<std::string> virtio_disk_args(const fs::path& image, const std::string& format) {
    return {"-drive", "file=" + image.string() + ",format=" + format + ",if=virtio"};
}

std::vector<std::string> virtio_user_nic_args(const std::string& id) {
    // romfile= : no iPXE option ROM, the guest boots from -kernel anyway.
    return {"-netdev", "user,id=" + id, "-device", "virtio-net-pci,netdev=" + id + ",romfile="};
}

// ---- QemuProcess ----------------------------------------------------------

Result<QemuProcess> QemuProcess::start(const std::vector<std::string>& argv) {
    if (argv.empty()) return fail(ErrorCode::InvalidArg, "QemuProcess::start: empty argv");
    int in_pipe[2];
    int out_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) != 0) return fail_errno("pipe");
    UniqueFd in_read(in_pipe[0]), in_write(in_pipe[1]);
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) return fail_errno("pipe");
    UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);

    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    pid_t pid = ::fork();
    if (pid < 0) return fail_errno("fork");
    if (pid == 0) {
        ::setpgid(0, 0);
        ::dup2(in_read.get(), 0);
        ::dup2(out_write.get(), 1);
        ::dup2(out_write.get(), 2);
        ::execvp(args[0], args.data());
        const char msg[] = "QemuProcess: exec failed\n";
        [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
        ::_exit(127);
    }
    ::setpgid(pid, pid);  // also from the parent, so kill() never races the child's setpgid
    ::fcntl(out_read.get(), F_SETFL, O_NONBLOCK);
    // A guest that stops reading its console must not kill the test with SIGPIPE.
    ::signal(SIGPIPE, SIG_IGN);
    return QemuProcess(pid, std::move(in_write), std::move(out_read));
}

QemuProcess::QemuProcess(pid_t pid, UniqueFd input, UniqueFd output)
    : pid_(pid), input_(std::move(input)), output_fd_(std::move(output)) {}

QemuProcess::QemuProcess(QemuProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      exit_code_(other.exit_code_),
      input_(std::move(other.input_)),
      output_fd_(std::move(other.output_fd_)),
      output_(std::move(other.output_)) {}

QemuProcess::~QemuProcess() { kill(); }

size_t QemuProcess::pump(milliseconds timeout) {
    if (!output_fd_) return 0;
    pollfd pfd{output_fd_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return 0;  // timeout or EINTR
    size_t total = 0;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(output_fd_.get(), buf, sizeof buf);
        if (n > 0) {
            output_.append(buf, static_cast<size_t>(n));
            total += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return total;
        output_fd_.reset();  // EOF or error: the child closed its output
        return total;
    }
}

std::optional<std::smatch> QemuProcess::wait_for(const std::regex& pattern, milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        std::smatch match;
        if (std::regex_search(output_, match, pattern)) return match;
        if (!output_fd_ || Clock::now() >= deadline) return std::nullopt;
        pump(milliseconds(std::min(remaining_ms(deadline), 200)));
    }
}

bool QemuProcess::send(std::string_view text) {
    while (!text.empty() && input_) {
        ssize_t n = ::write(input_.get(), text.data(), text.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        text.remove_prefix(static_cast<size_t>(n));
    }
    return text.empty();
}

void QemuProcess::reap(bool block) {
    if (pid_ <= 0 || exit_code_) return;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r == pid_) exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::optional<int> QemuProcess::wait_exit(milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        reap(false);
        if (exit_code_) {
            while (output_fd_ && pump(milliseconds(0)) > 0) {
            }
            return exit_code_;
        }
        if (Clock::now() >= deadline) return std::nullopt;
        if (output_fd_)
            pump(milliseconds(std::min(remaining_ms(deadline), 50)));
        else
            std::this_thread::sleep_for(milliseconds(20));  // output closed: just poll for the exit
    }
}

void QemuProcess::kill() {
    if (pid_ <= 0) return;
    reap(false);
    if (!exit_code_) {
        ::kill(-pid_, SIGKILL);
        reap(true);
    }
}

// ---- the guest's marker and shell ----------------------------------------

std::optional<GuestReady> parse_guest_ready(const std::string& text) {
    std::smatch m;
    if (!std::regex_search(text, m, std::regex(kGuestReadyPattern))) return std::nullopt;
    GuestReady ready;
    ready.uptime_seconds = std::stod(m[1].str());
    ready.cpus = std::stoi(m[2].str());
    ready.disks = split_commas(m[3].str());
    ready.nics = split_commas(m[4].str());
    if (m[5].matched) ready.addrs = split_commas(m[5].str());
    return ready;
}

std::optional<GuestReady> wait_guest_ready(QemuProcess& qemu, milliseconds timeout) {
    auto match = qemu.wait_for(std::regex(kGuestReadyPattern), timeout);
    if (!match) return std::nullopt;
    return parse_guest_ready(match->str());
}

std::optional<std::string> guest_shell(QemuProcess& qemu, const std::string& command, milliseconds timeout) {
    static unsigned counter = 0;
    auto deadline = Clock::now() + timeout;
    if (!qemu.wait_for(std::regex(kGuestPrompt), timeout)) return std::nullopt;
    // The quotes keep the console's echo of the typed line from matching.
    std::string tag = "VIREO" + std::to_string(::getpid()) + "X" + std::to_string(++counter);
    std::string begin = "__" + tag + "_BEGIN__", end = "__" + tag + "_END__";
    std::string quoted_begin = "__" + tag + "_\"\"BEGIN__", quoted_end = "__" + tag + "_\"\"END__";
    if (!qemu.send("echo " + quoted_begin + "; " + command + "; echo " + quoted_end + "\n")) return std::nullopt;
    auto match = qemu.wait_for(std::regex(begin + "\r?\n([\\s\\S]*?)" + end), milliseconds(remaining_ms(deadline)));
    if (!match) return std::nullopt;
    std::string out = (*match)[1].str();
    std::erase(out, '\r');
    return out;
}

// ---- QmpClient ------------------------------------------------------------

Result<QmpClient> QmpClient::connect(const fs::path& socket, milliseconds timeout) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket.native().size() >= sizeof addr.sun_path)
        return fail(ErrorCode::InvalidArg, "QMP socket path '{}' is too long for a unix socket", socket.string());
    std::memcpy(addr.sun_path, socket.c_str(), socket.native().size() + 1);

    auto deadline = Clock::now() + timeout;
    for (;;) {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd) return fail_errno("socket");
        if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
            QmpClient client(std::move(fd));
            auto greeting = client.read_message(deadline);
            if (!greeting) return std::unexpected(greeting.error().context("QMP greeting"));
            if (!greeting->contains("QMP"))
                return fail(ErrorCode::Protocol, "unexpected QMP greeting: {}", greeting->dump());
            client.version_ = (*greeting)["QMP"].value("version", nlohmann::json::object());
            auto caps = client.execute("qmp_capabilities", nullptr, milliseconds(remaining_ms(deadline) + 1000));
            if (!caps) return std::unexpected(caps.error().context("qmp_capabilities"));
            return client;
        }
        if (errno != ENOENT && errno != ECONNREFUSED) return fail_errno("connect to " + socket.string());
        if (Clock::now() >= deadline)
            return fail(ErrorCode::Timeout, "QMP socket '{}' did not accept a connection within {} ms",
                        socket.string(), timeout.count());
        std::this_thread::sleep_for(milliseconds(50));
    }
}

Result<nlohmann::json> QmpClient::read_message(Clock::time_point deadline) {
    for (;;) {
        auto nl = buffer_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
            auto message = nlohmann::json::parse(line, nullptr, false);
            if (message.is_discarded()) return fail(ErrorCode::Protocol, "QMP sent invalid JSON: {}", line);
            return message;
        }
        pollfd pfd{fd_.get(), POLLIN, 0};
        int ready = ::poll(&pfd, 1, remaining_ms(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) return fail_errno("poll on QMP socket");
        if (ready == 0) return fail(ErrorCode::Timeout, "no QMP message in time");
        char buf[4096];
        ssize_t n = ::read(fd_.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("read from QMP socket");
        if (n == 0) return fail(ErrorCode::Connection, "QEMU closed the QMP connection");
        buffer_.append(buf, static_cast<size_t>(n));
    }
}

Result<nlohmann::json> QmpClient::execute(std::string_view command, const nlohmann::json& arguments,
                                          milliseconds timeout) {
    auto id = next_id_++;
    nlohmann::json request = {{"execute", command}, {"id", id}};
    if (!arguments.is_null()) request["arguments"] = arguments;
    std::string wire = request.dump() + "\n";
    for (size_t off = 0; off < wire.size();) {
        ssize_t n = ::send(fd_.get(), wire.data() + off, wire.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("write to QMP socket");
        off += static_cast<size_t>(n);
    }
    auto deadline = Clock::now() + timeout;
    for (;;) {
        auto message = read_message(deadline);
        if (!message) return std::unexpected(message.error().context(fmt::format("QMP '{}'", command)));
        if (message->contains("event")) {
            events_.push_back(std::move(*message));
            continue;
        }
        if (message->value("id", 0u) != id) continue;  // a reply to someone else's command
        if (message->contains("error")) {
            const auto& err = (*message)["error"];
            return fail(ErrorCode::Hypervisor, "QMP '{}' failed: {} ({})", command, err.value("desc", "?"),
                        err.value("class", "?"));
        }
        return message->value("return", nlohmann::json::object());
    }
}

Result<nlohmann::json> QmpClient::wait_event(std::string_view name, milliseconds timeout) {
    for (auto it = events_.begin(); it != events_.end(); ++it) {
        if ((*it)["event"] == name) {
            auto event = std::move(*it);
            events_.erase(it);
            return event;
        }
    }
    auto deadline = Clock::now() + timeout;
    for (;;) {
        auto message = read_message(deadline);
        if (!message) return std::unexpected(message.error().context(fmt::format("waiting for QMP event {}", name)));
        if (!message->contains("event")) continue;
        if ((*message)["event"] == name) return message;
        events_.push_back(std::move(*message));
    }
}

}  // namespace vireo::test
