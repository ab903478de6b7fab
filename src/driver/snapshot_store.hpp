// SnapshotStore: the snapshot metadata a driver keeps for its domains, on
// disk beside the domain definitions, crash-safe, and found again by a
// restarted daemon.
//
// Layout (as libvirt's, under the driver's config directory):
//   <root>/<domain>/<snapshot>.xml   one <domainsnapshot> per snapshot (with
//                                    its state, parent, creationTime and the
//                                    domain definition at snapshot time)
//   <root>/<domain>/current          the current snapshot's name ("" or no
//                                    file: none)
//
// Each document is written as the ObjectStore writes definitions
// (files::write_atomic: a temporary name, fsync, rename, fsync of the
// directory), so a kill at any moment leaves the old or the new document;
// temporary names start with '.', which no snapshot name may. The tree is not stored:
// each snapshot names its parent, and SnapshotTree derives the rest. The
// order of the writes keeps the metadata consistent at every step: a child
// is written after its parent, reparented children before their parent is
// removed, and the current marker moved before the snapshot it names goes.
//
// A snapshot being taken is first recorded as pending (<snapshot>.pending,
// the document it will have): a daemon killed between the data step (QEMU's
// snapshot-save, the image engine) and the metadata write leaves that
// record, and the next start settles it by looking at the images: every
// disk has the tag -> commit_pending() (the snapshot exists, as if the
// create had ended), else the partial tags are removed and the record
// dropped. load() never lists a pending snapshot.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "conf/snapshot.hpp"
#include "util/error.hpp"

namespace vireo::driver {

// One domain's snapshots as loaded: by name, the current one, and the
// files that could not be used ("<path>: <why>", left in place).
struct DomainSnapshots {
    std::map<std::string, conf::SnapshotDef> snapshots;
    std::string current;
    std::vector<std::string> skipped;

    [[nodiscard]] conf::SnapshotTree tree() const;
    // NotFound "Domain snapshot not found: no domain snapshot with matching name 'x'" (libvirt's words).
    [[nodiscard]] Result<const conf::SnapshotDef*> find(std::string_view name) const;
};

class SnapshotStore {
public:
    explicit SnapshotStore(std::filesystem::path root) : root_(std::move(root)) {}

    [[nodiscard]] const std::filesystem::path& root() const { return root_; }
    [[nodiscard]] std::filesystem::path domain_dir(std::string_view domain) const { return root_ / std::string(domain); }

    // Every snapshot of `domain` (none when it has no directory). A
    // document whose name differs from its file, or that does not parse,
    // is skipped and reported; a current marker naming a missing snapshot
    // counts as no current snapshot.
    [[nodiscard]] DomainSnapshots load(std::string_view domain) const;
    // Whether `domain` has any snapshot metadata (undefine's check).
    [[nodiscard]] bool has_any(std::string_view domain) const;

    // Write (create or replace) one snapshot's metadata.
    Status save(std::string_view domain, const conf::SnapshotDef& def) const;
    // Remove one snapshot's metadata (a missing file is fine).
    Status remove(std::string_view domain, std::string_view name) const;
    // Make `name` the current snapshot ("" = none).
    Status set_current(std::string_view domain, std::string_view name) const;
    // Remove every snapshot of `domain` and its directory (undefine
    // --snapshots-metadata).
    Status remove_all(std::string_view domain) const;

    // --- snapshots being taken (see above) ---------------------------------
    // Record `def` (complete: name, parent, state, domain) as being taken.
    Status save_pending(std::string_view domain, const conf::SnapshotDef& def) const;
    // The pending records of `domain` (unreadable ones are skipped with a warning).
    [[nodiscard]] std::vector<conf::SnapshotDef> pending(std::string_view domain) const;
    // The snapshot exists: its metadata written, made current, the record gone.
    Status commit_pending(std::string_view domain, const conf::SnapshotDef& def) const;
    // Forget the record (a missing one is fine).
    Status remove_pending(std::string_view domain, std::string_view name) const;

private:
    // InvalidArg unless `domain` and `snapshot` can each be one file name.
    Status check_names(std::string_view domain, std::string_view snapshot) const;
    std::filesystem::path root_;
};

}  // namespace vireo::driver
