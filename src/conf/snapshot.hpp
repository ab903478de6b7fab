// libvirt's domain snapshot XML (<domainsnapshot>) and the snapshot tree.
//
// The model holds what a snapshot is: its name, description, the domain
// state it was taken in, when, its parent in the tree, where the memory
// state went (<memory snapshot='no|internal|external' file=.../>), how each
// disk was snapshotted (<disks><disk name='vda' snapshot='internal'/>, an
// external one with its new <source>/<driver>), and the domain definition at
// snapshot time. parse_snapshot_xml() is strict like the domain parser: what
// it does not model is refused by name, never dropped; format_snapshot_xml()
// writes libvirt's element order, and parse(format(x)) formats to itself.
//
// SnapshotTree answers the tree questions of snapshot-list and
// snapshot-delete (roots, children, descendants, leaves) from the parent
// names alone, so the metadata on disk stores only each snapshot's parent.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/domain.hpp"
#include "util/error.hpp"

namespace vireo::conf {

// <disk name='vda' snapshot='...' type='file'><driver type='qcow2'/><source file='...'/></disk>
struct SnapshotDisk {
    std::string name{};         // the disk's target dev (vda) or its source path
    std::string snapshot{};     // "", no, internal, external, manual
    std::string type{};         // external only: "" (file), file, block
    std::string source{};       // external only: <source file=> / <source dev=>
    std::string driver_type{};  // external only: <driver type='qcow2'/>
};

struct SnapshotDef {
    std::string name;         // defaults to creation_time in seconds (libvirt)
    std::string description;
    std::string state;        // running, paused, shutoff, disk-snapshot, ... ("" until taken)
    std::string parent;       // parent snapshot's name, "" for a root
    std::optional<std::int64_t> creation_time;  // seconds since the epoch
    std::string memory;       // "", no, internal, external
    std::string memory_file;  // external memory: the state file
    bool disks_present = false;  // <disks> was given (even empty)
    std::vector<SnapshotDisk> disks;
    std::optional<DomainDef> domain;  // the definition at snapshot time

    // internal when any of memory or the disks is internal, external when
    // any is external (libvirt's snapshot-list --internal/--external).
    [[nodiscard]] bool is_external() const;
    [[nodiscard]] bool is_internal() const;
};

struct SnapshotParseFlags {
    // snapshot-create --redefine (and the daemon's own metadata): state,
    // creationTime, parent and the domain definition are part of the input.
    // Without it they are what the snapshot will record, and giving them is
    // an error rather than being ignored as libvirt does.
    bool redefine = false;
};

// Errors: ErrorCode::XmlError for malformed or invalid documents,
// ErrorCode::Unsupported for valid libvirt snapshot XML vireo does not model.
Result<SnapshotDef> parse_snapshot_xml(std::string_view xml, SnapshotParseFlags flags = {});

// libvirt's layout: name, description, state, parent, creationTime, memory,
// disks, domain.
std::string format_snapshot_xml(const SnapshotDef& def);

// libvirt's default file of an external disk snapshot: the disk's image
// path with the suffix of its file name (from the last '.') replaced by the
// snapshot name, or the snapshot name appended after a '.' when the file
// name has no suffix: /x/disk.qcow2 -> /x/disk.snap1, /x/disk -> /x/disk.snap1.
std::string default_external_snapshot_path(std::string_view disk_path, std::string_view snapshot_name);

// A snapshot name is one file name of the metadata directory and one qcow2
// snapshot tag: not empty, no '/', not "." or "..", no control characters.
Status validate_snapshot_name(std::string_view name);

// The tree of one domain's snapshots, by name (names sorted, as virsh lists).
class SnapshotTree {
public:
    SnapshotTree() = default;
    // name -> parent name ("" for a root); a parent not in the map makes
    // its child a root (metadata of a deleted parent, as libvirt reparents).
    explicit SnapshotTree(const std::map<std::string, std::string>& parents);

    [[nodiscard]] bool contains(std::string_view name) const;
    [[nodiscard]] std::string parent(std::string_view name) const;
    [[nodiscard]] std::vector<std::string> names() const;
    [[nodiscard]] std::vector<std::string> roots() const;
    [[nodiscard]] std::vector<std::string> children(std::string_view name) const;
    // Every snapshot below `name`, parents before their children.
    [[nodiscard]] std::vector<std::string> descendants(std::string_view name) const;
    [[nodiscard]] std::vector<std::string> leaves() const;
    // virsh snapshot-list --tree: each root then its subtree, with the
    // "  |" / "  +- " drawing of virsh.
    [[nodiscard]] std::string render() const;

private:
    std::map<std::string, std::string, std::less<>> parents_;
};

}  // namespace vireo::conf
