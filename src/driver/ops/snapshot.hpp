// Domain snapshot operations (virsh snapshot-*). (op.hpp explains the
// declarations.)
//
// {ref} is a domain reference as virsh takes it; {name} a snapshot name.
// The tree questions of snapshot-list (--roots, --leaves, --parent, ...),
// snapshot-info, snapshot-parent and snapshot-current are answered by the
// client from snapshot.list, which carries every snapshot's parent, state,
// location and whether it is the current one.
#pragma once

#include <string>
#include <tuple>
#include <vector>

#include "driver/ops/op.hpp"
#include "driver/types.hpp"

namespace vireo::driver::ops {

struct SnapshotCreate {
    static constexpr OpInfo info{.name = "snapshot.create", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/snapshots", .kind = Kind::AsyncJob, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::DomainSnapshot,
                                 .summary = "Create a snapshot from a <domainsnapshot> document, or redefine one's "
                                            "metadata (virsh snapshot-create / snapshot-create-as)"};
    struct Request {
        std::string ref{};
        std::string xml{};  // <domainsnapshot>; empty: a snapshot named by its creation time
        bool redefine = false;
        bool current = false;
        bool no_metadata = false;
        bool halt = false;
        bool disk_only = false;
        bool reuse_external = false;
        bool quiesce = false;
        bool atomic = false;
        bool live = false;
    };
    using Reply = std::string;  // the snapshot's name
    static constexpr std::string_view reply_field = "name";
    static constexpr unsigned http_success = 201;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), document("xml", &Request::xml),
        field("redefine", &Request::redefine, "take the document as the metadata of an existing snapshot"),
        field("current", &Request::current, "with redefine: make it the current snapshot"),
        field("no_metadata", &Request::no_metadata, "take the snapshot but keep no metadata of it"),
        field("halt", &Request::halt, "stop the domain once the snapshot is taken"),
        field("disk_only", &Request::disk_only, "disks only: external qcow2 overlays by default"),
        field("reuse_external", &Request::reuse_external, "use existing qcow2 overlay files instead of creating them"),
        field("quiesce", &Request::quiesce, "freeze the guest's file systems (not supported yet)"),
        field("atomic", &Request::atomic, "all or nothing (always the case)"),
        field("live", &Request::live, "keep the guest running while memory is written (not supported yet)")};
};

struct SnapshotList {
    static constexpr OpInfo info{.name = "snapshot.list", .method = Method::Get,
                                 .path = "/v1/domains/{ref}/snapshots", .kind = Kind::Query, .lane = Lane::Query,
                                 .read_only_allowed = true, .libvirt_domain = LibvirtDomain::DomainSnapshot,
                                 .summary = "Every snapshot of the domain with its parent, state and location "
                                            "(virsh snapshot-list)"};
    struct Request {
        std::string ref{};
    };
    using Reply = std::vector<SnapshotSummary>;  // sorted by name
    static constexpr auto fields = std::tuple{field("ref", &Request::ref)};
};

struct SnapshotXml {
    static constexpr OpInfo info{.name = "snapshot.xml", .method = Method::Get,
                                 .path = "/v1/domains/{ref}/snapshots/{name}/xml", .kind = Kind::Query,
                                 .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::DomainSnapshot,
                                 .summary = "The snapshot's XML (virsh snapshot-dumpxml)"};
    struct Request {
        std::string ref{};
        std::string name{};
        bool security_info = false;
    };
    using Reply = std::string;  // <domainsnapshot>
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref), field("name", &Request::name),
                   field("security_info", &Request::security_info, "include security sensitive information")};
};

struct SnapshotRevert {
    static constexpr OpInfo info{.name = "snapshot.revert", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/snapshots/{name}/revert", .kind = Kind::AsyncJob,
                                 .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::DomainSnapshot,
                                 .summary = "Revert the domain to the snapshot (virsh snapshot-revert)"};
    struct Request {
        std::string ref{};
        std::string name{};
        bool running = false;
        bool paused = false;
        bool force = false;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), field("name", &Request::name),
        field("running", &Request::running, "run the domain after the revert"),
        field("paused", &Request::paused, "leave the domain paused after the revert"),
        field("force", &Request::force, "revert even where it is risky")};
};

struct SnapshotDelete {
    static constexpr OpInfo info{.name = "snapshot.delete", .method = Method::Delete,
                                 .path = "/v1/domains/{ref}/snapshots/{name}", .kind = Kind::AsyncJob,
                                 .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::DomainSnapshot,
                                 .summary = "Delete the snapshot (virsh snapshot-delete)"};
    struct Request {
        std::string ref{};
        std::string name{};
        bool children = false;
        bool children_only = false;
        bool metadata = false;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), field("name", &Request::name),
        field("children", &Request::children, "also delete its descendants"),
        field("children_only", &Request::children_only, "delete its descendants only"),
        field("metadata", &Request::metadata, "delete only the metadata, keep the snapshot data")};
};

using SnapshotOps = List<SnapshotCreate, SnapshotList, SnapshotXml, SnapshotRevert, SnapshotDelete>;

}  // namespace vireo::driver::ops
