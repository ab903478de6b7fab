// DAC isolation of guests (libvirt's "dac" security model): the identity
// (uid, gid, groups) a guest's QEMU runs as, the ids handed out per guest,
// the files given to that identity for the run and given back after it,
// and the check that the identity can open what QEMU will open.
//
// A system-mode QEMU never runs as root. By default each running guest has
// its own uid and gid (the same number) from a range no Debian tool hands
// out (kDefaultIdRange), so two guests cannot open each other's files even
// where no SELinux/AppArmor exists; qemu.conf's user/group switch to one
// shared account. The files a guest writes (its disks, NVRAM, console log,
// channel directory) are chowned to its identity at start; their original
// owners are first written to an owner journal (a file in the run directory,
// crash-safe), and given back from it at stop, or by the next daemon when
// this one died meanwhile.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"

namespace vireo::security {

struct Identity {
    uid_t uid = 0;
    gid_t gid = 0;
    // Supplementary groups (setgroups); a per-guest identity has none.
    std::vector<gid_t> groups;

    friend bool operator==(const Identity&, const Identity&) = default;
};

// libvirt's DAC label text: "+UID:+GID".
std::string label_text(const Identity& id);

// A DAC label as a seclabel or qemu.conf gives it: "+UID:+GID", "user:group",
// "user" (its primary group), names or "+N" numbers on either side. Names
// are looked up on the host; a missing one is NotFound naming it. The
// groups of a named user are its supplementary groups.
Result<Identity> parse_dac_label(std::string_view label);

// qemu.conf's user and group as the identity every QEMU runs as. A named
// user (or group) this host does not have is created, as a system account
// without home or login shell (useradd/groupadd); "+N" numbers are used as
// they are. `group` empty: the user's primary group.
Result<Identity> ensure_account(const std::string& user, const std::string& group);

// The uid/gid range per-guest identities come from. The default
// 65536-98303 lies above everything Debian hands out (system users below
// 1000, regular users up to UID_MAX 60000, globally allocated ids such as
// libvirt-qemu's 64055 in 60000-64999, nobody 65534) and below the
// subordinate ids useradd gives (SUB_UID_MIN 100000).
struct IdRange {
    uid_t first = 65536;
    uid_t last = 98303;
};
inline constexpr std::string_view kDefaultIdRange = "65536-98303";
// "FIRST-LAST": non-root, FIRST <= LAST, below 2^31.
Result<IdRange> parse_id_range(std::string_view text);

// Hands out one id per running guest: the lowest in the range that no
// other guest holds and that no user or group of the host has (an id named
// in /etc/passwd or /etc/group is never used, so a guest never gets a real
// account's files). Thread-safe.
class IdAllocator {
public:
    // `host_has` says whether the host knows the id as a user or a group
    // (default: getpwuid/getgrgid).
    explicit IdAllocator(IdRange range = {}, std::function<bool(uid_t)> host_has = {});

    // A free id for `owner` (a domain name); Unsupported when every id of
    // the range is taken.
    Result<uid_t> allocate(const std::string& owner);
    // Mark `id` as `owner`'s (reattach); false when another owner holds it.
    bool reserve(uid_t id, const std::string& owner);
    void release(uid_t id);
    // The owner of `id` when a guest holds it.
    std::optional<std::string> owner_of(uid_t id) const;
    [[nodiscard]] const IdRange& range() const { return range_; }

private:
    IdRange range_;
    std::function<bool(uid_t)> host_has_;
    mutable std::mutex mutex_;
    std::map<uid_t, std::string> held_;
};

// One file given to a guest: its path and the owner it had before.
struct OwnerRecord {
    std::string path;
    uid_t uid = 0;
    gid_t gid = 0;
};

// The owner journal: "given UID GID" (the identity the files were given
// to), then one "UID GID PATH" line per file (its owner before).
struct OwnerJournal {
    uid_t given_uid = 0;
    gid_t given_gid = 0;
    std::vector<OwnerRecord> records;
};
std::string format_owner_journal(const OwnerJournal& journal);
Result<OwnerJournal> parse_owner_journal(std::string_view text);

// Give `paths` to `id`: their owners are written to `journal` (atomically,
// before any chown; records already there are kept), then each is chowned.
// A file that already belongs to `id` is left out. On a failure what was
// chowned is given back, and the error names the file.
Status give_files(const std::vector<std::string>& paths, const Identity& id, const std::filesystem::path& journal);

// Give back every file of `journal` that still belongs to the identity it
// was given to (one that someone chowned meanwhile is left as it is), then
// remove the journal. A missing journal is nothing to do. The files that
// could not be given back are named in the error (the journal stays, for
// the next attempt). Used at stop and by a restarted daemon alike.
Status restore_files(const std::filesystem::path& journal);

// What QEMU will open, and how.
struct AccessNeed {
    std::string path;
    bool write = false;
    std::string what;  // for the message: "disk 'vda'", "kernel", ...
};

// Check, in a child process with `id`'s credentials, that each path can be
// opened as needed (access(2): permissions, ACLs and every directory on the
// way). The first that cannot is PermissionDenied (or NotFound) naming it,
// the identity and the reason.
Status check_access(const Identity& id, const std::vector<AccessNeed>& needs);

}  // namespace vireo::security
