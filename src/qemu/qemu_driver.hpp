// QemuDriver: the Driver (src/driver/driver.hpp) that runs domains as QEMU
// processes on this host. vireod serves it for qemu:///session|system.
//
// Each running domain is one qemu-system-* process started detached (own
// session, parent pid 1) so it outlives the daemon, with in the run dir:
//   <rundir>/<name>.xml        runtime status (pid + start time, paths, live XML)
//   <rundir>/<name>.pid        pid file
//   <rundir>/<name>.monitor    QMP socket (QEMU listens; the driver connects)
//   <rundir>/<name>.<alias>.sock   a 'unix' serial without a path
// A 'pty' serial is a pty QEMU opens (query-chardev gives its path to the
// live XML, as <source path='/dev/pts/N'/>); the console opens it.
// and in the log dir:
//   <logdir>/<name>.log          command line + QEMU's stderr, per start
//   <logdir>/<name>-console.log  everything the guest wrote on its first serial
// (<name> is replaced by the UUID where a socket path would be too long.)
//
// A new QemuDriver on the same directories finds running domains again
// (reattach): a live process with the recorded pid *and* start time is
// reconnected; a dead one is reported shut off and its runtime files removed.
//
// States follow libvirt: running/booted|unpaused|restored|save canceled,
// paused/starting up|user|saving|unknown, shut off/shutdown|destroyed|
// crashed|saved|failed, crashed/panicked, in shutdown/user (preserved).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

#include "driver/driver.hpp"
#include "driver/job.hpp"
#include "driver/network_links.hpp"
#include "driver/storage_links.hpp"
#include "qemu/save_image.hpp"
#include "security/dac.hpp"
#include "util/error.hpp"

namespace vireo::qemu {

struct QemuDriverConfig {
    std::filesystem::path confdir;   // persistent definitions (+ autostart/)
    std::filesystem::path rundir;    // runtime status, sockets, pid files
    std::filesystem::path cachedir;  // QEMU capabilities cache
    std::filesystem::path logdir;    // per-domain QEMU and console logs
    std::filesystem::path savedir;   // managed save images (empty: <confdir>/save)
    // Sockets of unix channels without a path, as libvirt's channel target
    // dir (empty: <rundir>/channel/target).
    std::filesystem::path channeldir;
    // Per-domain UEFI variable stores (<name>_VARS.fd) of <os firmware='efi'>
    // domains, as libvirt's /var/lib/libvirt/qemu/nvram (empty: <confdir>/nvram).
    std::filesystem::path nvramdir;
    // Per-domain swtpm state (<uuid>/tpm2), as libvirt's /var/lib/libvirt/swtpm
    // (empty: <confdir>/swtpm).
    std::filesystem::path swtpmdir;
    // QEMU firmware descriptor directories, in rising priority (empty:
    // firmware_search_dirs() of qemu/firmware.hpp).
    std::vector<std::filesystem::path> firmware_dirs;
    bool system_mode = false;        // qemu:///system (else qemu:///session)
    // QEMU binary for domains whose definition names no <emulator>
    // (empty: qemu-system-<arch> from PATH).
    std::filesystem::path qemu_binary;
    // destroy: time between SIGTERM and SIGKILL.
    std::chrono::milliseconds destroy_grace{10000};
    // start: how long QEMU may take to answer on its monitor.
    std::chrono::milliseconds start_timeout{30000};
    // How long any monitor command may go unanswered before it fails
    // (Timeout): a QEMU that stops answering ends a save, a pause, ... with
    // an error instead of a hang.
    std::chrono::milliseconds monitor_timeout{30000};
    // save_image_format of qemu.conf: how save and managedsave compress the
    // image (a compressor program between QEMU and the file); restore reads
    // the format from the image's header.
    SaveCompression save_image_format = SaveCompression::None;
    // malloc_hugepages of qemu.conf: QEMU's heap on transparent huge pages
    // (qemu_environment() in command_line.hpp says why).
    bool malloc_hugepages = true;
    // Start the autostart domains when the driver is created.
    bool autostart = true;
    // Where <disk type='volume'> disks find their volumes: the connection's
    // storage pools (not owned; must outlive the driver). Null: such disks
    // cannot start, and say why.
    driver::VolumeResolver* volumes = nullptr;
    // Where the async jobs (save, restore, managedsave) are listed: the
    // connection's one tracker, shared with the pools' volume jobs so that
    // job.list sees both. Null: the driver keeps its own.
    std::shared_ptr<driver::JobTracker> jobs;
    // The virtual networks <interface type='network'> joins (not owned; must
    // outlive the driver). Null (a session daemon, no network driver): such
    // interfaces cannot start, and say why.
    driver::NetworkPorts* networks = nullptr;
    // passt, for <interface type='user'><backend type='passt'/> (empty: from PATH).
    std::filesystem::path passt_binary;

    // Guest isolation (system mode only; a session daemon's QEMU runs as
    // its user, in its namespaces). docs/qemu-conf.md has the keys.
    // user/group of qemu.conf: every QEMU runs as this one account (made by
    // the daemon when a named one does not exist); empty: each guest gets
    // its own uid and gid from guest_id_range.
    std::string dac_user;
    std::string dac_group;
    security::IdRange guest_id_range;
    // dynamic_ownership: give the guest's files to its identity at start
    // and back at stop (else only check that it can open them).
    bool dynamic_ownership = true;
    // namespaces = [ "mount" ] (the default) | []: each QEMU in its own
    // mount namespace with a private /dev and /tmp.
    bool mount_namespace = true;
};

// The standard directories: system mode /etc/vireo/qemu, /run/vireo/qemu,
// /var/cache/vireo, /var/log/vireo/qemu, /var/lib/vireo/qemu/save (nvram,
// channel), /var/lib/vireo/swtpm; session mode the XDG directories of the user.
QemuDriverConfig default_qemu_config(bool system_mode);

// The QEMU sub-driver as a connection: it installs the host and domain
// operations; the daemon installs a PoolManager's pool and volume operations
// beside them (daemon/driver_factory.cpp). It tells the pools which disks its
// running domains use (driver::DiskUsers). Below: operations beyond the
// operation table (tests, the daemon).
class QemuDriver : public driver::Driver, public driver::DiskUsers {
public:
    explicit QemuDriver(std::string uri) : Driver(std::move(uri)) {}

    // Wait until the domain reaches `state` (e.g. Shutoff after a shutdown
    // request); Timeout error otherwise. Does not hold the domain's job.
    virtual Status wait_for_state(std::string_view ref, driver::DomainState state,
                                  std::chrono::milliseconds timeout) = 0;
    // Pid of the domain's QEMU process (-1 when not running).
    virtual int qemu_pid(std::string_view ref) = 0;
    // The per-domain log files.
    virtual std::filesystem::path log_path(std::string_view name) const = 0;
    virtual std::filesystem::path console_log_path(std::string_view name) const = 0;
};

// Create the driver: prepares the directories, loads the definitions and
// reattaches to the domains that are still running.
Result<std::unique_ptr<QemuDriver>> make_qemu_driver(QemuDriverConfig config);

}  // namespace vireo::qemu
