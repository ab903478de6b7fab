// A guest QEMU's own mount namespace: a private /dev holding only the
// device nodes the guest uses, a private /tmp, the rest of the host's
// mounts seen as they are (as a slave: nothing mounted inside leaks out).
//
// The plan is computed by the daemon (dev_entries, tmp_entries); the nodes
// are read from the host when the namespace is prepared (MountSetup::
// prepare, before the fork), and MountSetup::enter makes the namespace in
// the child, between fork and exec, with async-signal-safe calls only:
//   - unshare(CLONE_NEWNS), / made a recursive slave;
//   - a tmpfs on /dev with copies (mknod, same mode and owner) of the
//     host's device nodes in the plan, the host's /dev/pts bind-mounted
//     (so ptys QEMU opens are the host's /dev/pts/N the console opens), a
//     private /dev/shm, and the /dev/fd, stdin, stdout, stderr links;
//   - a tmpfs on /tmp, into which the /tmp entries the command line names
//     are bind-mounted back (a disk image under /tmp stays reachable).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "util/error.hpp"

namespace vireo::security {

// What every QEMU needs in /dev: null, zero, full, random, urandom, ptmx
// and pts.
std::vector<std::string> basic_dev_entries();

// Absolute paths below `root` ("/dev/" or "/tmp/") that `argv` names: in a
// plain argument, after '=', ':', ',' or '"' (QEMU's option and JSON
// syntax), up to the next ',' (not ",,", QEMU's escaped comma), '"' or the
// end. Sorted, without duplicates.
std::vector<std::string> paths_named(const std::vector<std::string>& argv, std::string_view root);

// The /dev entries of a guest: the basics, /dev/kvm when it runs on KVM,
// /dev/net/tun when it has tap NICs, and every /dev path its command line
// names (block disks, an RNG's device, hugepage directories).
std::vector<std::string> dev_entries(const std::vector<std::string>& argv, bool kvm, bool tun);

// The entries of /tmp (first component below /tmp) a command line names,
// as absolute paths ("/tmp/vireo-test.abc").
std::vector<std::string> tmp_entries(const std::vector<std::string>& argv);

class MountSetup {
public:
    // Read the host's entries: device nodes are copied (their mode, device
    // number and owner as they are now, after any relabelling), directories
    // and other files bind-mounted. A /dev entry that does not exist is
    // left out when it is optional (kvm, tun); a named one that does not
    // exist is walked up to its existing parent below /dev. Errors name the
    // entry.
    static Result<MountSetup> prepare(const std::vector<std::string>& dev, const std::vector<std::string>& tmp);

    // In the child before exec: make the namespace. 0 on success, else an
    // errno, with *step set to what failed (a string of this object).
    int enter(const char** step) const;

    // The /dev entries of the private /dev as they will be made (tests, logs).
    [[nodiscard]] std::vector<std::string> dev_paths() const;

private:
    struct Entry {
        std::string path;
        std::vector<std::string> parents;  // directories to make first, top-down
        bool node = false;                  // mknod a copy (else bind-mount the host's)
        bool dir = false;                   // a directory (bind mount point is a directory)
        mode_t mode = 0;
        dev_t rdev = 0;
        uid_t uid = 0;
        gid_t gid = 0;
        std::string what;                   // "bind-mount /dev/pts", for the step message
    };
    std::vector<Entry> entries_;
    mutable std::vector<int> fds_;          // O_PATH descriptors of bind sources (child only)
    mutable std::vector<char> proc_path_;   // "/proc/self/fd/NNN" buffer (child only)
};

}  // namespace vireo::security
