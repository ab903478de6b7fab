// The QEMU command line of a domain definition.
//
// Pure function of its inputs (no I/O), so golden tests can check it:
// tests/data/qemu/<case>.xml in, tests/data/qemu/<case>.args out.
//
// Shape (in this order): identity (-name, -uuid, -msg), -S, machine and
// accelerator, CPU/memory/SMP, monitor, clock and lifecycle flags, boot and
// direct kernel boot, controllers, disks (-blockdev storage node + format
// node per layer of the backing chain, then -device), NICs (-netdev +
// -device with the defined MAC), serials/consoles/channels (-chardev +
// -device), input, audio backends, graphics, video, sound, USB redirection,
// balloon, RNG, panic, watchdog, SMBIOS tables, sandbox.
//
// The definition must have been through conf::assign_addresses_and_aliases
// (aliases name the QEMU device ids, addresses place PCI devices).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "conf/device_hotplug.hpp"
#include "conf/domain.hpp"
#include "qemu/memory_backends.hpp"
#include "util/error.hpp"

namespace vireo::qemu {

struct QemuCaps;

struct CommandLineOptions {
    std::filesystem::path emulator;       // the binary (argv[0])
    const QemuCaps* caps = nullptr;       // null: no capability checks (golden tests)
    int monitor_fd = 3;                   // listening QMP socket QEMU inherits
    // Other descriptors QEMU inherits, by name ("tap0" -> 4): what the
    // command line refers to as fd=<number> (the launch plan assigns them).
    std::map<std::string, int> passed_fds;
    // Hotplug (nic_hotplug_args): -netdev names its descriptors by their
    // passed_fds names, the names they are given to QEMU with getfd, not
    // by number.
    bool fds_by_name = false;
    // Prefix for the domain's runtime sockets: a serial of type 'pty' becomes
    // a unix socket server "<prefix>.<alias>.sock" that the console attaches to.
    std::string runtime_prefix;
    // Log of the first serial port's output (QEMU's logfile= chardev option);
    // empty = none.
    std::filesystem::path console_log;
    // Start waiting for an incoming migration (restore from a save image).
    bool incoming_defer = false;
    // The host's hugetlbfs mounts and memory backing directory (guest
    // memory backends, memory_backends.hpp).
    MemoryHost memory_host;
};

// One disk's part of the command line as QMP arguments, for hotplug: the
// blockdev-add arguments of its node chain, bottom-up, exactly as the start
// path's -blockdev (node names "<node_prefix><n>-storage|format", n from 1),
// and the device_add arguments of its -device. `def` is the definition with
// the disk in it (addresses, aliases assigned).
// The NOLINT: the implicit destructor runs nlohmann::json's, which
// bugprone-exception-escape counts as throwing (json flattens nested values
// through a std::vector).
struct DiskHotplug {  // NOLINT(bugprone-exception-escape)
    std::vector<nlohmann::json> nodes;
    nlohmann::json device;
};
Result<DiskHotplug> disk_hotplug_args(const conf::DomainDef& def, const conf::Disk& disk, const CommandLineOptions& opts,
                                      std::string node_prefix);

// One NIC's part of the command line as QMP arguments, for hotplug: the
// netdev_add arguments of its -netdev, the descriptors it names (tap and
// vhost-net ones, by their nic_tap_fd_name / nic_vhost_fd_name names, to be
// handed over with getfd first) and the device_add arguments of its -device.
// `def` is the definition with the NIC in it (address and alias assigned);
// opts.passed_fds holds its descriptors' names. The passt backend cannot be
// hotplugged (QEMU connects its socket once, at start).
struct NicHotplug {  // NOLINT(bugprone-exception-escape): as DiskHotplug
    nlohmann::json netdev;
    std::vector<std::string> fd_names;
    nlohmann::json device;
};
// Whether `nic` can be hotplugged at all (not the passt backend), before
// anything is made for it.
Status nic_hotpluggable(const conf::Interface& nic);
Result<NicHotplug> nic_hotplug_args(const conf::DomainDef& def, const conf::Interface& nic, CommandLineOptions opts);

// One <rng>, <input>, <watchdog> or <channel>'s part of the command line as
// QMP arguments, for hotplug: the object-add arguments of its -object (an
// RNG's backend), the chardev-add arguments of its -chardev (a channel's;
// null for the others), the device_add arguments of its -device, and the
// watchdog action of its -action (watchdog-set-action). `def` is the definition with
// the device in it (address and alias assigned).
struct DeviceHotplug {  // NOLINT(bugprone-exception-escape): as DiskHotplug
    std::vector<nlohmann::json> objects;
    nlohmann::json chardev;
    nlohmann::json device;
    std::string watchdog_action;
};
Result<DeviceHotplug> device_hotplug_args(const conf::DomainDef& def, const conf::PluggableDevice& dev, const CommandLineOptions& opts);

// A -chardev option string ("socket,id=charchannel0,path=/x,server=on,
// wait=off") as chardev-add arguments ({"id", "backend": {"type", "data"}},
// QMP's form of the same backend).
Result<nlohmann::json> chardev_json(std::string_view opts);

// The id of a channel's chardev: "char" + its alias.
std::string channel_chardev_id(const conf::CharDev& ch);

// The id of an RNG's backend object: "obj" + its alias ("objrng0").
std::string rng_object_id(const conf::Rng& r);

// A -device option string ("virtio-blk-pci,drive=x,id=y,bus=pci.0,addr=0x4")
// as device_add arguments, the integer and boolean properties typed.
Result<nlohmann::json> device_json(std::string_view opts);

// Socket path of a serial/console chardev for `alias` ("serial0").
std::string serial_socket_path(const std::string& runtime_prefix, const std::string& alias);

// Guest NICs. The driver makes the host side (taps, macvtaps, passt) at
// launch; the command line only refers to it:
//   - network, bridge, ethernet, direct: one tap descriptor per queue in
//     passed_fds under nic_tap_fd_name(alias, q) (-netdev tap,fd= / fds=),
//     and vhost-net descriptors under nic_vhost_fd_name(alias, q) when the
//     driver opened /dev/vhost-net (vhost=on,vhostfd= / vhostfds=);
//   - user with <backend type='passt'/>: the passt socket at
//     passt_socket_path(runtime_prefix, alias) (-netdev stream, QEMU 7.2+);
//   - user: QEMU's slirp (-netdev user).
// A tap NIC whose descriptors are missing is an error, never a QEMU-opened tap.
bool nic_uses_tap(const conf::Interface& nic);
unsigned nic_queues(const conf::Interface& nic);  // <driver queues>, 1 by default
std::string nic_tap_fd_name(const std::string& alias, unsigned queue);
std::string nic_vhost_fd_name(const std::string& alias, unsigned queue);
std::string nic_netdev_id(const std::string& alias);  // "host<alias>", QEMU's id of its -netdev
std::string passt_socket_path(const std::string& runtime_prefix, const std::string& alias);

// Graphics (-vnc, -spice). Ports: a fixed port is used as given; with
// autoport the driver chooses a free one before the command line is built
// and writes it into the live definition (graphics_needs_port() says which
// need one), as libvirt does; a VNC display left at port -1 lets QEMU pick
// (to=100). TLS is off (a tlsPort or defaultMode='secure' is refused). A
// password never appears on the command line: it is a secret object read
// from a descriptor the driver passes under graphics_secret_fd_name(i)
// (password-secret=, QEMU 7.0+).
bool graphics_needs_port(const conf::Graphics& g);
std::string graphics_secret_fd_name(std::size_t index);

// The accelerator a domain type asks for: "kvm" for type='kvm', "tcg" for
// type='qemu'; Unsupported otherwise.
Result<std::string> accelerator_for(const conf::DomainDef& def);

// The whole argv, argv[0] = emulator. Errors (Unsupported) name the
// definition element QEMU cannot be given.
Result<std::vector<std::string>> build_command_line(const conf::DomainDef& def, const CommandLineOptions& opts);

// Escape a value for QEMU's key=value option syntax (',' doubles).
std::string qemu_opt_escape(std::string_view value);

// The environment variables vireo sets for a QEMU it starts (the rest is
// the daemon's environment). With `malloc_hugepages` (qemu.conf, default
// on) glibc's malloc asks for transparent huge pages for QEMU's own heap:
// GLIBC_TUNABLES gets glibc.malloc.hugetlb=1 after the tunables already in
// `inherited_tunables` (the daemon's GLIBC_TUNABLES, may be null), unless
// those set glibc.malloc.hugetlb themselves. Why: QEMU copies the kernel,
// the initrd and its ROMs into fresh heap buffers while it starts; with 4 KiB
// pages that is one page fault per page, which is what makes QEMU's start
// slow where faults are costly (nested or paravirtual hosts: 150 -> 90 ms
// here). The guest sees no difference; QEMU's RSS stays the same.
std::vector<std::pair<std::string, std::string>> qemu_environment(bool malloc_hugepages,
                                                                  const char* inherited_tunables);

}  // namespace vireo::qemu
