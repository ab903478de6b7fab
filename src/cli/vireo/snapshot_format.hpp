// snapshot-list's selection and layouts, and snapshot-info's block, kept
// apart from the verbs so that they can be tested on their own. Layouts are
// virsh's; the --json forms are vireo's own.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "driver/types.hpp"
#include "util/error.hpp"

namespace vireo::cli {

// virsh snapshot-list's filters.
struct SnapshotFilter {
    bool roots = false;        // only snapshots without a parent
    bool leaves = false, no_leaves = false;
    bool inactive = false;     // taken of a shut-off domain
    bool active = false;       // taken of a running or paused domain (with memory)
    bool disk_only = false;    // disk-snapshot state
    bool internal = false, external = false;
    std::string from;          // with descendants: every snapshot below it, else its children
    bool descendants = false;
};

// The snapshots matching `filter`, by name. InvalidArg when --from names no
// snapshot (virsh's "Domain snapshot not found" words).
Result<std::vector<driver::SnapshotSummary>> select_snapshots(const std::vector<driver::SnapshotSummary>& all,
                                                             const SnapshotFilter& filter);

// The default table (Name, Creation Time, State; Parent with --parent), with
// virsh's trailing blank line. Times in the local time zone.
std::string format_snapshot_table(const std::vector<driver::SnapshotSummary>& rows, bool with_parent);
// --tree: the tree of `rows` (a row whose parent is not in `rows` is a root).
std::string format_snapshot_tree(const std::vector<driver::SnapshotSummary>& rows);
// snapshot-info's block for `name` among `all` of domain `domain`.
std::string format_snapshot_info(const std::vector<driver::SnapshotSummary>& all, const driver::SnapshotSummary& s,
                                 const std::string& domain);
// "2026-12-07 06:10:00 +0000" (virsh's creation time, local time zone).
std::string format_snapshot_time(std::uint64_t seconds);

// snapshot-create-as's document (what --print-xml prints), with one
// <disk> per --diskspec "disk[,snapshot=type][,driver=type][,stype=type][,file=name]"
// (virsh's syntax: ",," is a comma inside a value). InvalidArg for a
// diskspec virsh would refuse.
Result<std::string> snapshot_create_as_xml(const std::string& name, const std::string& description,
                                           const std::vector<std::string>& diskspecs = {});

nlohmann::json snapshot_json(const driver::SnapshotSummary& s);

}  // namespace vireo::cli
