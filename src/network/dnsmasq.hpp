// One dnsmasq per network, as libvirt runs it: its own configuration file,
// pid file, static hosts files, lease database and lease helper
// (vireo-lease-helper, see leases.hpp), bound dynamically to the network's
// bridge only (bind-dynamic, interface=, except-interface=lo).
//
// A restarted daemon finds the instance again with find_dnsmasq: the pid
// file names a process that must still be dnsmasq started with this
// network's configuration file (/proc/<pid>/cmdline), so a stale pid file
// or a reused pid never passes for it, and start_dnsmasq refuses to start a
// second one.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "conf/network.hpp"
#include "util/error.hpp"

namespace vireo::network {

// The files of one network's dnsmasq, all in one state directory.
struct DnsmasqFiles {
    std::filesystem::path config;     // <dir>/<name>.conf
    std::filesystem::path pid;        // <dir>/<name>.pid
    std::filesystem::path leases;     // <dir>/<name>.leases   (dnsmasq's own database)
    std::filesystem::path hostsfile;  // <dir>/<name>.hostsfile (static DHCP hosts)
    std::filesystem::path addnhosts;  // <dir>/<name>.addnhosts (DNS host records)
    std::filesystem::path status;     // <dir>/<name>.status   (written by the lease helper)

    static DnsmasqFiles in(const std::filesystem::path& dir, std::string_view network_name);
};

struct DnsmasqOptions {
    std::filesystem::path binary;        // empty: "dnsmasq" from PATH, /usr/sbin, /sbin
    std::filesystem::path lease_helper;  // vireo-lease-helper; empty: no dhcp-script
    std::string notify_socket;           // VIREO_LEASE_NOTIFY for the helper; may be empty
};

// Whether the network needs a dnsmasq: a bridge vireo creates, an address,
// and DHCP or DNS (DNS is on unless <dns enable='no'>).
bool needs_dnsmasq(const conf::NetworkDef& def);

// The configuration file's text.
std::string dnsmasq_config(const conf::NetworkDef& def, const DnsmasqFiles& files, const std::filesystem::path& lease_helper);
// dhcp-hostsfile lines ("mac,ip,name[,lease]", "id:duid,[ip6],name") and
// addn-hosts lines ("ip<TAB>name ...").
std::string dnsmasq_hostsfile(const conf::NetworkDef& def);
std::string dnsmasq_addnhosts(const conf::NetworkDef& def);

// Write the files and start dnsmasq; returns its pid once it is serving
// (dnsmasq's parent exits only after the daemon is up, with its error on
// stderr otherwise, which we return).
Result<pid_t> start_dnsmasq(const conf::NetworkDef& def, const DnsmasqFiles& files, const DnsmasqOptions& options);
// The running instance of this network, if any.
Result<std::optional<pid_t>> find_dnsmasq(const DnsmasqFiles& files);
// Stop the running instance (SIGTERM, then SIGKILL after 5 s) and remove its
// pid file; nothing running is not an error.
Status stop_dnsmasq(const DnsmasqFiles& files);
// stop_dnsmasq in two halves, for a caller with other work to do while
// dnsmasq exits (the kernel releasing its sockets takes tens of ms):
// begin sends SIGTERM, finish waits for the exit (SIGKILL after 5 s) and
// removes the pid file.
struct DnsmasqStopping {
    pid_t pid = -1;  // -1: nothing was running
    int pidfd = -1;  // owned; -1 when the kernel has no pidfd_open
    std::filesystem::path pid_file;
    DnsmasqStopping() = default;
    DnsmasqStopping(const DnsmasqStopping&) = delete;
    DnsmasqStopping& operator=(const DnsmasqStopping&) = delete;
    DnsmasqStopping(DnsmasqStopping&& o) noexcept;
    DnsmasqStopping& operator=(DnsmasqStopping&&) = delete;
    ~DnsmasqStopping();
};
Result<DnsmasqStopping> begin_stop_dnsmasq(const DnsmasqFiles& files);
Status finish_stop_dnsmasq(DnsmasqStopping& stopping);
// Rewrite the hosts files and make dnsmasq re-read them (SIGHUP).
Status reload_dnsmasq(const conf::NetworkDef& def, const DnsmasqFiles& files);

}  // namespace vireo::network
