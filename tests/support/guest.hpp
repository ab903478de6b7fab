// Helpers for tests that boot vireo's test guest or talk to QEMU directly.
//
// The test guest (tests/guest/build-guest.sh, built by the CTest fixture
// `guest`, so say FIXTURES guest in vireo_add_tests) is Debian's cloud kernel
// plus a busybox initramfs. On its serial console (ttyS0) it prints
//
//   VIREO-GUEST-READY uptime=1.23 cpus=2 disks=vda,vdb nics=eth0
//
// once its modules are loaded and acpid listens for the power button, then
// offers a root shell with the prompt "vireo-guest# ". The ACPI power button
// (QMP system_powerdown, virsh shutdown) prints VIREO-GUEST-POWEROFF and
// powers off cleanly (QEMU exits with 0). With vireo.poweroff=1 on the
// kernel command line it powers off right after the marker.
//
// Typical use:
//
//   VIREO_REQUIRE_GUEST();
//   TempDir tmp;
//   GuestOptions opt;
//   opt.qmp_socket = tmp / "qmp.sock";
//   opt.extra = virtio_disk_args(tmp / "disk.qcow2", "qcow2");
//   auto qemu = QemuProcess::start(guest_qemu_argv(opt));
//   ASSERT_TRUE(qemu) << qemu.error().message;
//   auto ready = wait_guest_ready(*qemu, std::chrono::seconds(120));
//   ASSERT_TRUE(ready) << qemu->output();
//   auto qmp = QmpClient::connect(opt.qmp_socket);
//   ASSERT_TRUE(qmp->execute("system_powerdown"));
//   EXPECT_EQ(qemu->wait_exit(std::chrono::seconds(120)), 0);
#pragma once

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"
#include "util/fd.hpp"

namespace vireo::test {

// Kernel command line every test boot starts from: console on the first
// serial port, no kernel chatter, reboot (= QEMU exit with -no-reboot) on panic.
inline constexpr const char* kGuestCmdline = "console=ttyS0 quiet panic=-1";
// The marker line; groups: 1 uptime (s), 2 cpus, 3 disks, 4 nics, 5 addrs
// (comma lists, possibly empty; addrs is name=address/prefix, absent from
// guests built before it). It ends with the line break, so that a line
// still arriving on the console never matches half-way.
inline constexpr const char* kGuestReadyPattern =
    R"(VIREO-GUEST-READY uptime=([0-9.]+) cpus=([0-9]+) disks=([^ \r\n]*) nics=([^ \r\n]*)(?: addrs=([^ \r\n]*))?\r?\n)";
// Printed by the guest just before a clean poweroff.
inline constexpr const char* kGuestPoweroffMarker = "VIREO-GUEST-POWEROFF";
// The guest shell's prompt on ttyS0.
inline constexpr const char* kGuestPrompt = "vireo-guest# ";

// Why the test guest cannot be booted here (no qemu-system-x86_64, guest not
// built), or an empty string when it can.
std::string guest_unavailable_reason();

// Skip the current test (with the reason) unless the guest can be booted.
#define VIREO_REQUIRE_GUEST()                                                   \
    do {                                                                        \
        if (auto vireo_guest_reason_ = ::vireo::test::guest_unavailable_reason(); \
            !vireo_guest_reason_.empty())                                       \
            VIREO_SKIP(vireo_guest_reason_);                                    \
    } while (0)

// The disk-booted test guest (tests/guest/build-disk.sh, built with the
// direct-boot one): a GPT qcow2 image whose GRUB boots the same kernel and
// initramfs, so the same marker, from SeaBIOS (any disk bus) or OVMF (with or
// without secure boot: Debian's signed shim and GRUB as EFI/BOOT/BOOTX64.EFI).
// Boot it through a fresh overlay (disk_guest_overlay), never directly: the
// image is shared by every test of the build tree.
std::filesystem::path disk_guest_image();
// Why the disk guest cannot be booted here, or "" when it can.
std::string disk_guest_unavailable_reason();
// Create `overlay`, a qcow2 overlay of disk_guest_image(); "" or the error.
std::string disk_guest_overlay(const std::filesystem::path& overlay);

// The disk guest as a domain definition (type qemu, `machine`, 256 MiB, one
// vCPU, `disk` as a virtio disk vda, serial console on a pty, boot from hd).
// `os_extra` goes into <os> (e.g. <loader>/<nvram>), `extra_devices` into
// <devices>.
std::string disk_guest_domain_xml(const std::string& name, const std::string& machine,
                                  const std::filesystem::path& disk, const std::string& os_extra = "",
                                  const std::string& extra_devices = "");

// OVMF as Debian installs it (package ovmf), for explicit <loader>/<nvram>.
inline constexpr const char* kOvmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd";
inline constexpr const char* kOvmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd";

// How to boot the test guest straight under QEMU/TCG (no vireo involved).
struct GuestOptions {
    std::string machine = "pc";  // pc or q35
    int memory_mb = 256;
    int cpus = 1;
    std::string cmdline_extra;           // appended to kGuestCmdline
    bool no_reboot = true;               // -no-reboot: a guest reboot/panic exits QEMU
    std::filesystem::path qmp_socket;    // when set: -qmp unix:<path>,server=on,wait=off
    std::vector<std::string> extra;      // more QEMU arguments (disks, NICs, ...)
};

// The full argv: qemu-system-x86_64 -machine <m> -accel tcg -m .. -smp ..
// -nodefaults -no-user-config -display none -serial stdio [-no-reboot]
// -kernel/-initrd of guest_dir() -append <cmdline> [-qmp ...] <extra...>.
std::vector<std::string> guest_qemu_argv(const GuestOptions& options);

// The test guest as a vireo/libvirt domain definition (type qemu, pc machine,
// direct kernel boot, serial console on a pty). `extra_devices` is inserted
// into <devices>, `extra_top` (e.g. "<on_crash>preserve</on_crash>") after <os>,
// `cmdline_extra` after kGuestCmdline.
std::string guest_domain_xml(const std::string& name, const std::string& extra_devices = "",
                             const std::string& cmdline_extra = "", const std::string& extra_top = "");

// QEMU arguments for a virtio-blk disk backed by `image` in `format`.
std::vector<std::string> virtio_disk_args(const std::filesystem::path& image, const std::string& format);
// QEMU arguments for a virtio NIC on a user-mode (slirp) netdev named `id`.
std::vector<std::string> virtio_user_nic_args(const std::string& id = "net0");

// A child process (usually QEMU with -serial stdio) whose stdout and stderr
// are collected together, so a test can wait for lines of serial console
// output and type into the console through stdin. The child runs in its own
// process group; the destructor kills it (SIGKILL) if it still runs.
class QemuProcess {
public:
    // Start argv[0] (looked up on PATH) with the other elements as arguments.
    static Result<QemuProcess> start(const std::vector<std::string>& argv);

    QemuProcess(QemuProcess&& other) noexcept;
    QemuProcess& operator=(QemuProcess&&) = delete;
    QemuProcess(const QemuProcess&) = delete;
    QemuProcess& operator=(const QemuProcess&) = delete;
    ~QemuProcess();

    [[nodiscard]] pid_t pid() const { return pid_; }

    // Wait until everything printed so far matches `pattern` (std::regex,
    // ECMAScript, searched anywhere); the match, or nullopt on timeout or when
    // the process closed its output without matching. Output arrives in
    // chunks: end a pattern that captures up to the end of a line with
    // \r?\n, or it may match a line that is only half printed.
    std::optional<std::smatch> wait_for(const std::regex& pattern, std::chrono::milliseconds timeout);
    std::optional<std::smatch> wait_for(const std::string& pattern, std::chrono::milliseconds timeout) {
        return wait_for(std::regex(pattern), timeout);
    }

    // Write to the child's stdin (the guest's serial console). False when the
    // pipe is closed.
    bool send(std::string_view text);

    // Wait for the child to exit: its exit code (128+signal if killed), or
    // nullopt if it still runs after `timeout`. Output keeps being collected.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);

    // SIGKILL the child's process group and reap it (no-op once exited).
    void kill();

    // Everything the child printed so far (stdout and stderr interleaved).
    [[nodiscard]] const std::string& output() const { return output_; }

private:
    QemuProcess(pid_t pid, UniqueFd input, UniqueFd output);
    // Append what the child printed, waiting at most `timeout` for something;
    // the number of bytes read (output_fd_ is closed at EOF).
    size_t pump(std::chrono::milliseconds timeout);
    // Collect the exit status if the child has exited.
    void reap(bool block);

    pid_t pid_ = -1;
    std::optional<int> exit_code_;
    UniqueFd input_;
    UniqueFd output_fd_;
    std::string output_;
};

// What the marker line reported.
struct GuestReady {
    double uptime_seconds = 0;
    int cpus = 0;
    std::vector<std::string> disks;  // e.g. {"vda", "vdb"}
    std::vector<std::string> nics;   // e.g. {"eth0"}
    std::vector<std::string> addrs;  // e.g. {"eth0=10.9.0.2/24"}: IPv4 addresses (vireo.ip=, vireo.dhcp=1)
};

// Wait for the marker line on `qemu`'s output and parse it; nullopt on
// timeout or if QEMU exited first.
std::optional<GuestReady> wait_guest_ready(QemuProcess& qemu, std::chrono::milliseconds timeout);

// Parse a marker line (or any text containing one).
std::optional<GuestReady> parse_guest_ready(const std::string& text);

// Run a shell command in the guest through its serial console and return
// what it printed (without the echoed command and the prompt); nullopt on
// timeout. Waits for a prompt first, so it can follow wait_guest_ready.
std::optional<std::string> guest_shell(QemuProcess& qemu, const std::string& command,
                                       std::chrono::milliseconds timeout);

// A minimal QMP client (QEMU Machine Protocol, JSON lines over a unix
// socket): greeting, qmp_capabilities, commands, events. Independent of
// vireo's own QMP code so that it can serve as an oracle in tests.
class QmpClient {
public:
    // Connect to the QMP server socket (waiting up to `timeout` for QEMU to
    // create it), read the greeting and leave capabilities negotiation mode.
    static Result<QmpClient> connect(const std::filesystem::path& socket,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(30));

    // Execute a command; its "return" value, or an Error with QEMU's "desc"
    // (Hypervisor), a timeout or a closed connection. Events that arrive in
    // between are kept for wait_event().
    Result<nlohmann::json> execute(std::string_view command, const nlohmann::json& arguments = nullptr,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(30));

    // The next event named `name` (already received or arriving within
    // `timeout`); other events are kept.
    Result<nlohmann::json> wait_event(std::string_view name, std::chrono::milliseconds timeout);

    // The greeting's QMP.version object.
    [[nodiscard]] const nlohmann::json& version() const { return version_; }

private:
    explicit QmpClient(UniqueFd fd) : fd_(std::move(fd)) {}
    Result<nlohmann::json> read_message(std::chrono::steady_clock::time_point deadline);

    UniqueFd fd_;
    std::string buffer_;
    std::deque<nlohmann::json> events_;
    nlohmann::json version_;
    unsigned next_id_ = 1;
};

}  // namespace vireo::test
