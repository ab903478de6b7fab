// Domain operations: queries, definitions, lifecycle, save/restore, the
// serial console. (op.hpp explains the declarations.)
//
// {ref} is a domain reference as virsh takes it: a name, a UUID or the id of
// a running domain, tried in that order (registry.hpp).
#pragma once

#include <string>
#include <tuple>
#include <vector>

#include "driver/job.hpp"
#include "driver/keycodes.hpp"
#include "driver/ops/op.hpp"
#include "driver/types.hpp"
#include "util/fd.hpp"

namespace vireo::driver::ops {

template <>
struct EnumNames<ShutdownMode> {
    static constexpr std::string_view what = "shutdown mode";
    static constexpr std::array<std::pair<ShutdownMode, std::string_view>, 3> values{
        {{ShutdownMode::Default, "default"}, {ShutdownMode::Acpi, "acpi"}, {ShutdownMode::Agent, "agent"}}};
};

template <>
struct EnumNames<MetadataKind> {
    static constexpr std::string_view what = "metadata kind";
    static constexpr std::array<std::pair<MetadataKind, std::string_view>, 2> values{
        {{MetadataKind::Title, "title"}, {MetadataKind::Description, "description"}}};
};

// --- queries (never wait behind a job) --------------------------------------------

struct DomainList {
    static constexpr OpInfo info{.name = "domain.list", .method = Method::Get, .path = "/v1/domains",
                                 .kind = Kind::Query, .lane = Lane::Inline, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Every domain, active and inactive, with its state (one round trip)"};
    struct Request {};
    using Reply = std::vector<DomainSummary>;  // sorted by name
    static constexpr std::tuple<> fields{};
};

struct DomainLookup {
    static constexpr OpInfo info{.name = "domain.lookup", .method = Method::Get, .path = "/v1/domains/{ref}",
                                 .kind = Kind::Query, .lane = Lane::Inline, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "One domain (virsh dominfo / domstate)"};
    struct Request {
        std::string ref{};
    };
    using Reply = DomainSummary;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref)};
};

struct DomainXml {
    static constexpr OpInfo info{.name = "domain.xml", .method = Method::Get, .path = "/v1/domains/{ref}/xml",
                                 .kind = Kind::Query, .lane = Lane::Inline, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "The domain's XML (virsh dumpxml)"};
    struct Request {
        std::string ref{};
        bool inactive = false;
        bool security_info = false;
    };
    using Reply = std::string;  // domain XML
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref),
                   field("inactive", &Request::inactive, "the persistent definition instead of the live one"),
                   field("security_info", &Request::security_info,
                         "include security sensitive information (graphics passwords), as virsh dumpxml --security-info")};
};

struct DomainDisks {
    static constexpr OpInfo info{.name = "domain.disks", .method = Method::Get, .path = "/v1/domains/{ref}/disks",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Domain, .summary = "Disks (virsh domblklist)"};
    struct Request {
        std::string ref{};
        bool inactive = false;
    };
    using Reply = std::vector<DiskInfo>;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref), field("inactive", &Request::inactive)};
};

struct DomainInterfaces {
    static constexpr OpInfo info{.name = "domain.interfaces", .method = Method::Get,
                                 .path = "/v1/domains/{ref}/interfaces", .kind = Kind::Query, .lane = Lane::Query,
                                 .read_only_allowed = true, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Network interfaces (virsh domiflist)"};
    struct Request {
        std::string ref{};
        bool inactive = false;
    };
    using Reply = std::vector<InterfaceInfo>;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref), field("inactive", &Request::inactive)};
};

template <>
struct EnumNames<LinkState> {
    static constexpr std::string_view what = "link state";
    static constexpr std::array<std::pair<LinkState, std::string_view>, 2> values{
        {{LinkState::Up, "up"}, {LinkState::Down, "down"}}};
};

template <>
struct EnumNames<AddressSource> {
    static constexpr std::string_view what = "address source";
    static constexpr std::array<std::pair<AddressSource, std::string_view>, 3> values{
        {{AddressSource::Lease, "lease"}, {AddressSource::Arp, "arp"}, {AddressSource::Agent, "agent"}}};
};

// {device}: the host-side name (vnet0) or the MAC, as virsh takes them.
struct DomainInterfaceStats {
    static constexpr OpInfo info{.name = "domain.interface_stats", .method = Method::Get,
                                 .path = "/v1/domains/{ref}/interfaces/{device}/stats", .kind = Kind::Query,
                                 .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Traffic counters of a running domain's interface (virsh domifstat)"};
    struct Request {
        std::string ref{};
        std::string device{};
    };
    using Reply = InterfaceStats;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref), field("device", &Request::device)};
};

struct DomainInterfaceLink {
    static constexpr OpInfo info{.name = "domain.interface_link", .method = Method::Get,
                                 .path = "/v1/domains/{ref}/interfaces/{device}/link", .kind = Kind::Query,
                                 .lane = Lane::Inline, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Link state of an interface (virsh domif-getlink)"};
    struct Request {
        std::string ref{};
        std::string device{};
        bool config = false;
    };
    using Reply = std::string;  // "up" / "down"
    static constexpr std::string_view reply_field = "state";
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref), field("device", &Request::device),
                   field("config", &Request::config, "the persistent definition instead of the live one")};
};

struct DomainInterfaceAddresses {
    static constexpr OpInfo info{.name = "domain.interface_addresses", .method = Method::Get,
                                 .path = "/v1/domains/{ref}/interface-addresses", .kind = Kind::Query,
                                 .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Addresses of a running domain's interfaces (virsh domifaddr)"};
    struct Request {
        std::string ref{};
        AddressSource source = AddressSource::Lease;
    };
    using Reply = std::vector<InterfaceAddress>;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref),
                                              field("source", &Request::source, "lease (default), arp or agent")};
};

// --- disks (domblkstat, domblkinfo, blockresize) -------------------------------------
//
// `device` / `path`: the disk's target (vda) or its source path, as virsh
// takes them.

struct DomainBlockStats {
    static constexpr OpInfo info{.name = "domain.block_stats", .method = Method::Get,
                                 .path = "/v1/domains/{ref}/block-stats", .kind = Kind::Query,
                                 .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "I/O counters of a running domain's disk, or their sum over every disk "
                                            "(virsh domblkstat)"};
    struct Request {
        std::string ref{};
        std::string device{};  // empty: the sum over every disk
    };
    using Reply = BlockStats;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref),
        field("device", &Request::device, "the disk's target (vda) or source path; empty: the sum over every disk")};
};

struct DomainBlockInfo {
    static constexpr OpInfo info{.name = "domain.block_info", .method = Method::Get,
                                 .path = "/v1/domains/{ref}/block-info", .kind = Kind::Query,
                                 .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Capacity, allocation and physical size of a disk (virsh domblkinfo)"};
    struct Request {
        std::string ref{};
        std::string device{};
    };
    using Reply = BlockInfo;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), required("device", &Request::device, "the disk's target (vda) or source path")};
};

struct DomainBlockResize {
    static constexpr OpInfo info{.name = "domain.block_resize", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/block-resize", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Resize a disk of a running domain (virsh blockresize)"};
    struct Request {
        std::string ref{};
        std::string path{};
        std::uint64_t size = 0;  // bytes (qcow2: rounded up to 512)
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref), required("path", &Request::path, "the disk's target (vda) or source path"),
                   required("size", &Request::size, "the new size in bytes (qcow2: rounded up to a multiple of 512)")};
};

struct DomainGetMetadata {
    static constexpr OpInfo info{.name = "domain.get_metadata", .method = Method::Get,
                                 .path = "/v1/domains/{ref}/metadata", .kind = Kind::Query, .lane = Lane::Query,
                                 .read_only_allowed = true, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Title or description (virsh desc)"};
    struct Request {
        std::string ref{};
        MetadataKind kind = MetadataKind::Title;
        bool inactive = false;
    };
    using Reply = std::string;  // the text; empty when not set
    static constexpr std::string_view reply_field = "text";
    static constexpr auto fields = std::tuple{field("ref", &Request::ref), required("kind", &Request::kind),
                                              field("inactive", &Request::inactive)};
};

// --- definitions -------------------------------------------------------------------

struct DomainDefine {
    static constexpr OpInfo info{.name = "domain.define", .method = Method::Post, .path = "/v1/domains",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Define (or redefine) a persistent domain (virsh define)"};
    struct Request {
        std::string xml{};
        bool validate = true;
    };
    using Reply = DomainSummary;  // the defined domain
    static constexpr unsigned http_success = 201;
    static constexpr auto fields = std::tuple{document("xml", &Request::xml),
                                              field("validate", &Request::validate, "validate the document (default 1)")};
};

struct DomainCreate {
    static constexpr OpInfo info{
        .name = "domain.create", .method = Method::Post, .path = "/v1/domains:create", .kind = Kind::Job,
        .lane = Lane::Job, .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
        .summary = "Create and start a transient domain (virsh create); it vanishes at shutoff"};
    struct Request {
        std::string xml{};
        bool paused = false;
        bool force_boot = false;
    };
    using Reply = DomainSummary;  // the running domain
    static constexpr unsigned http_success = 201;
    static constexpr auto fields = std::tuple{document("xml", &Request::xml), field("paused", &Request::paused),
                                              field("force_boot", &Request::force_boot)};
};

struct DomainRestore {
    static constexpr OpInfo info{.name = "domain.restore", .method = Method::Post, .path = "/v1/domains:restore",
                                 .kind = Kind::AsyncJob, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Start a domain from a save file (virsh restore)"};
    struct Request {
        std::string path{};
        bool paused = false;
    };
    using Reply = DomainSummary;  // the restored domain
    static constexpr auto fields = std::tuple{required("path", &Request::path, "absolute path on the daemon's host"),
                                              field("paused", &Request::paused)};
};

struct DomainUndefine {
    static constexpr OpInfo info{
        .name = "domain.undefine", .method = Method::Delete, .path = "/v1/domains/{ref}", .kind = Kind::Job,
        .lane = Lane::Job, .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
        .summary = "Undefine (virsh undefine). A running persistent domain becomes transient."};
    struct Request {
        std::string ref{};
        bool managed_save = false;
        bool nvram = false;
        bool remove_all_storage = false;
        bool keep_nvram = false;
        bool tpm = false;
        bool keep_tpm = false;
        bool snapshots_metadata = false;
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref),
                   field("managed_save", &Request::managed_save, "also remove the managed save image"),
                   field("nvram", &Request::nvram, "also remove the UEFI NVRAM file"),
                   field("remove_all_storage", &Request::remove_all_storage, "also remove the disk images"),
                   field("keep_nvram", &Request::keep_nvram, "keep the UEFI NVRAM file"),
                   field("tpm", &Request::tpm, "remove the emulated TPM's state (also the default)"),
                   field("keep_tpm", &Request::keep_tpm, "keep the emulated TPM's state"),
                   field("snapshots_metadata", &Request::snapshots_metadata,
                         "also remove the snapshot metadata (else a domain with snapshots is refused)")};
};

struct DomainSetMetadata {
    static constexpr OpInfo info{.name = "domain.set_metadata", .method = Method::Put,
                                 .path = "/v1/domains/{ref}/metadata", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Set title or description"};
    struct Request {
        std::string ref{};
        MetadataKind kind = MetadataKind::Title;
        std::string text{};
        bool live = false;    // live/config: which definition(s) to change;
        bool config = false;  // both false = the current state's
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref), required("kind", &Request::kind), field("text", &Request::text),
                   field("live", &Request::live), field("config", &Request::config)};
};

struct DomainSetAutostart {
    static constexpr OpInfo info{.name = "domain.set_autostart", .method = Method::Put,
                                 .path = "/v1/domains/{ref}/autostart", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Enable or disable autostart (virsh autostart [--disable])"};
    struct Request {
        std::string ref{};
        bool enabled = false;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref), field("enabled", &Request::enabled)};
};

// --- lifecycle -----------------------------------------------------------------------

struct DomainStart {
    static constexpr OpInfo info{.name = "domain.start", .method = Method::Post, .path = "/v1/domains/{ref}/start",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain, .summary = "Start (virsh start)"};
    struct Request {
        std::string ref{};
        bool paused = false;
        bool force_boot = false;
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref), field("paused", &Request::paused),
                   field("force_boot", &Request::force_boot, "discard a managed save image")};
};

struct DomainShutdown {
    static constexpr OpInfo info{.name = "domain.shutdown", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/shutdown", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Request a guest shutdown and return at once (virsh shutdown)"};
    struct Request {
        std::string ref{};
        ShutdownMode mode = ShutdownMode::Default;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref), field("mode", &Request::mode)};
};

struct DomainReboot {
    static constexpr OpInfo info{.name = "domain.reboot", .method = Method::Post, .path = "/v1/domains/{ref}/reboot",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Request a guest reboot (virsh reboot)"};
    struct Request {
        std::string ref{};
        ShutdownMode mode = ShutdownMode::Default;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref), field("mode", &Request::mode)};
};

// Urgent: destroy must work while another job is stuck (it kills first, then
// takes the domain's job), so it never queues behind jobs.
struct DomainDestroy {
    static constexpr OpInfo info{.name = "domain.destroy", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/destroy", .kind = Kind::Job, .lane = Lane::Urgent,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Stop at once (virsh destroy)"};
    struct Request {
        std::string ref{};
        bool graceful = false;
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref), field("graceful", &Request::graceful, "SIGTERM only")};
};

struct DomainReset {
    static constexpr OpInfo info{.name = "domain.reset", .method = Method::Post, .path = "/v1/domains/{ref}/reset",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain, .summary = "Hard reset (virsh reset)"};
    struct Request {
        std::string ref{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref)};
};

struct DomainSuspend {
    static constexpr OpInfo info{.name = "domain.suspend", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/suspend", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Pause the vCPUs (virsh suspend)"};
    struct Request {
        std::string ref{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref)};
};

struct DomainResume {
    static constexpr OpInfo info{.name = "domain.resume", .method = Method::Post, .path = "/v1/domains/{ref}/resume",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain, .summary = "Resume (virsh resume)"};
    struct Request {
        std::string ref{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref)};
};

struct DomainSave {
    static constexpr OpInfo info{.name = "domain.save", .method = Method::Post, .path = "/v1/domains/{ref}/save",
                                 .kind = Kind::AsyncJob, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Save the state to a file and stop (virsh save)"};
    struct Request {
        std::string ref{};
        std::string path{};
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref), required("path", &Request::path, "absolute path on the daemon's host")};
};

struct DomainManagedSave {
    static constexpr OpInfo info{
        .name = "domain.managed_save", .method = Method::Post, .path = "/v1/domains/{ref}/managedsave",
        .kind = Kind::AsyncJob, .lane = Lane::Job, .read_only_allowed = false,
        .libvirt_domain = LibvirtDomain::Domain,
        .summary = "Save to the managed image and stop; the next start restores it (virsh managedsave)"};
    struct Request {
        std::string ref{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref)};
};

struct DomainManagedSaveRemove {
    static constexpr OpInfo info{.name = "domain.managed_save_remove", .method = Method::Delete,
                                 .path = "/v1/domains/{ref}/managedsave", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Remove the managed save image (virsh managedsave-remove)"};
    struct Request {
        std::string ref{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref)};
};

// The domain's async job (save, restore, managedsave): running, or how the
// last one ended. Answered from memory, so it never waits behind the job it
// reports on. With `completed` and without `keep_completed` the record of
// the ended job is read once, as libvirt's (the only change a query makes).
struct DomainJobInfo {
    static constexpr OpInfo info{.name = "domain.jobinfo", .method = Method::Get, .path = "/v1/domains/{ref}/job",
                                 .kind = Kind::Query, .lane = Lane::Inline, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "The domain's running job and its progress, or how the last one ended "
                                            "(virsh domjobinfo)"};
    struct Request {
        std::string ref{};
        bool completed = false;
        bool keep_completed = false;
    };
    using Reply = JobInfo;  // status none when there is no job
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref),
                   field("completed", &Request::completed, "how the last job ended instead of the running one"),
                   field("keep_completed", &Request::keep_completed,
                         "with completed: keep the record (else it is read once)")};
};

struct DomainSetInterfaceLink {
    static constexpr OpInfo info{.name = "domain.set_interface_link", .method = Method::Put,
                                 .path = "/v1/domains/{ref}/interfaces/{device}/link", .kind = Kind::Job,
                                 .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Set an interface's link up or down (virsh domif-setlink)"};
    struct Request {
        std::string ref{};
        std::string device{};
        LinkState state = LinkState::Up;
        bool config = false;  // also (or, when not running, only) the persistent definition
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref), field("device", &Request::device), required("state", &Request::state),
                   field("config", &Request::config, "change the persistent definition (of a running domain: only it)")};
};

// virsh change-media: a cdrom or floppy's medium ejected, inserted or
// replaced, in the running domain (live), its persistent definition
// (config), or both.
struct DomainChangeMedia {
    static constexpr OpInfo info{.name = "domain.change_media", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/change-media", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Eject, insert or update a cdrom or floppy medium (virsh change-media)"};
    struct Request {
        std::string ref{};
        std::string path{};    // the disk's target (hdc) or its current source path
        std::string action{};  // eject, insert, update
        std::string source{};  // the new medium's path (insert, update)
        bool live = false;
        bool config = false;   // neither: the current state (live when running)
        bool force = false;    // open a tray the guest locked
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), required("path", &Request::path, "the disk's target or source path"),
        required("action", &Request::action, "eject, insert or update"), field("source", &Request::source, "the new medium"),
        field("live", &Request::live, "change the running domain"), field("config", &Request::config, "change the persistent definition"),
        field("force", &Request::force, "force the tray open")};
};

// --- devices (attach-device, detach-device, detach-device-alias) ------------------------
//
// The document is one device (<disk> or <interface> today; other kinds are
// refused as not supported yet). live/config/current/persistent as libvirt's
// modification impact (driver/impact.hpp): neither = the current state's.
// A live detach asks the guest and waits for it (timeout_ms, 0 = virsh's
// 5 s); a guest that does not release the device leaves it in place and
// the detach fails, live XML unchanged.
struct DomainAttachDevice {
    static constexpr OpInfo info{.name = "domain.attach_device", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/devices", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Attach a device from its XML (virsh attach-device, attach-disk)"};
    struct Request {
        std::string ref{};
        std::string xml{};
        bool live = false;
        bool config = false;
        bool current = false;
        bool persistent = false;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), document("xml", &Request::xml, "one device element"),
        field("live", &Request::live, "change the running domain"),
        field("config", &Request::config, "change the persistent definition"),
        field("current", &Request::current, "the current state's definition (the default)"),
        field("persistent", &Request::persistent, "the persistent definition, and the running domain when running")};
};

struct DomainDetachDevice {
    static constexpr OpInfo info{.name = "domain.detach_device", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/devices/detach", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Detach the device an XML names (virsh detach-device, detach-disk)"};
    struct Request {
        std::string ref{};
        std::string xml{};
        bool live = false;
        bool config = false;
        bool current = false;
        bool persistent = false;
        std::uint64_t timeout_ms = 0;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), document("xml", &Request::xml, "one device element (a disk: its target)"),
        field("live", &Request::live, "change the running domain"),
        field("config", &Request::config, "change the persistent definition"),
        field("current", &Request::current, "the current state's definition (the default)"),
        field("persistent", &Request::persistent, "the persistent definition, and the running domain when running"),
        field("timeout_ms", &Request::timeout_ms, "how long the guest may take to release it (0 = 5000)")};
};

// update-device: a device changed in place from its XML: a cdrom or
// floppy's medium (as change-media: no <source> ejects), an interface's
// link state live, an interface replaced in the persistent definition.
struct DomainUpdateDevice {
    static constexpr OpInfo info{.name = "domain.update_device", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/devices/update", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Update a device from its XML (virsh update-device)"};
    struct Request {
        std::string ref{};
        std::string xml{};
        bool live = false;
        bool config = false;
        bool current = false;
        bool persistent = false;
        bool force = false;  // open a tray the guest locked
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), document("xml", &Request::xml, "one device element: a cdrom/floppy <disk> or an <interface>"),
        field("live", &Request::live, "change the running domain"),
        field("config", &Request::config, "change the persistent definition"),
        field("current", &Request::current, "the current state's definition (the default)"),
        field("persistent", &Request::persistent, "the persistent definition, and the running domain when running"),
        field("force", &Request::force, "force the tray open (a medium change)")};
};

struct DomainDetachDeviceAlias {
    static constexpr OpInfo info{.name = "domain.detach_device_alias", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/devices/{alias}/detach", .kind = Kind::Job,
                                 .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Detach the device with an alias (virsh detach-device-alias)"};
    struct Request {
        std::string ref{};
        std::string alias{};
        bool live = false;
        bool config = false;
        bool current = false;
        std::uint64_t timeout_ms = 0;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), field("alias", &Request::alias),
        field("live", &Request::live, "change the running domain"),
        field("config", &Request::config, "change the persistent definition"),
        field("current", &Request::current, "the current state's definition (the default)"),
        field("timeout_ms", &Request::timeout_ms, "how long the guest may take to release it (0 = 5000)")};
};

// --- vCPUs and memory (setvcpus, vcpuinfo, vcpupin, emulatorpin, setmem,
// setmaxmem, dommemstat) ---------------------------------------------------------------------
// live/config/current as the device verbs (driver/impact.hpp).

struct DomainVcpuInfo {
    static constexpr OpInfo info{.name = "domain.vcpu_info", .method = Method::Get, .path = "/v1/domains/{ref}/vcpus",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "The vCPUs of a running domain: host CPU, time, affinity (virsh vcpuinfo)"};
    struct Request {
        std::string ref{};
    };
    using Reply = std::vector<VcpuInfo>;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref)};
};

struct DomainSetVcpus {
    static constexpr OpInfo info{.name = "domain.set_vcpus", .method = Method::Post, .path = "/v1/domains/{ref}/vcpus",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Change the number of vCPUs, live by vCPU hotplug (virsh setvcpus)"};
    struct Request {
        std::string ref{};
        std::uint64_t count = 0;
        bool maximum = false;  // the maximum (config only), not the current count
        bool live = false;
        bool config = false;
        bool current = false;
        bool guest = false;  // how many the guest has online, through its agent
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), required("count", &Request::count, "the number of vCPUs"),
        field("maximum", &Request::maximum, "set the maximum (with config) instead of the current count"),
        field("live", &Request::live, "change the running domain"),
        field("config", &Request::config, "change the persistent definition"),
        field("current", &Request::current, "the current state's definition (the default)"),
        field("guest", &Request::guest, "bring vCPUs online or offline in the guest, through its agent")};
};

// setvcpu: the vCPUs of vcpulist ("1,3-4") enabled or disabled one by one,
// live by plugging or unplugging each; <vcpus> of the definitions follows.
struct DomainSetVcpu {
    static constexpr OpInfo info{.name = "domain.set_vcpu", .method = Method::Post, .path = "/v1/domains/{ref}/vcpus/state",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Enable or disable individual vCPUs, live by vCPU hotplug (virsh setvcpu)"};
    struct Request {
        std::string ref{};
        std::string vcpulist{};
        bool enable = false;  // enable them (else disable)
        bool live = false;
        bool config = false;
        bool current = false;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), required("vcpulist", &Request::vcpulist, "the vCPU ids, e.g. 1,3-4"),
        field("enable", &Request::enable, "enable the vCPUs (false: disable them)"),
        field("live", &Request::live, "change the running domain"),
        field("config", &Request::config, "change the persistent definition"),
        field("current", &Request::current, "the current state's definition (the default)")};
};

// vcpupin (thread "vcpu", its number in vcpu) and emulatorpin (thread
// "emulator"): the host CPUs the thread may run on.
struct DomainPinThread {
    static constexpr OpInfo info{.name = "domain.pin_thread", .method = Method::Post, .path = "/v1/domains/{ref}/pin",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Pin a vCPU or the emulator threads to host CPUs (virsh vcpupin, emulatorpin)"};
    struct Request {
        std::string ref{};
        std::string thread{};  // vcpu, emulator
        std::uint64_t vcpu = 0;
        std::string cpulist{};  // "0-1,3", "r" = every host CPU
        bool live = false;
        bool config = false;
        bool current = false;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), required("thread", &Request::thread, "vcpu or emulator"),
        field("vcpu", &Request::vcpu, "the vCPU (thread vcpu)"),
        required("cpulist", &Request::cpulist, "host CPUs: \"0-1,3\", or \"r\" for all"),
        field("live", &Request::live, "change the running domain"),
        field("config", &Request::config, "change the persistent definition"),
        field("current", &Request::current, "the current state's definition (the default)")};
};

struct DomainSetMemory {
    static constexpr OpInfo info{.name = "domain.set_memory", .method = Method::Post, .path = "/v1/domains/{ref}/memory",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Change the memory through the balloon, or the maximum (virsh setmem, setmaxmem)"};
    struct Request {
        std::string ref{};
        std::uint64_t kib = 0;
        bool maximum = false;  // setmaxmem: <memory>, not <currentMemory>
        bool live = false;
        bool config = false;
        bool current = false;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), required("kib", &Request::kib, "the size in KiB"),
        field("maximum", &Request::maximum, "the maximum memory (setmaxmem) instead of the current"),
        field("live", &Request::live, "change the running domain"),
        field("config", &Request::config, "change the persistent definition"),
        field("current", &Request::current, "the current state's definition (the default)")};
};

struct DomainMemoryStats {
    static constexpr OpInfo info{.name = "domain.memory_stats", .method = Method::Get,
                                 .path = "/v1/domains/{ref}/memory-stats", .kind = Kind::Query, .lane = Lane::Query,
                                 .read_only_allowed = true, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Memory statistics of a running domain: the balloon's, the guest's (virsh dommemstat)"};
    struct Request {
        std::string ref{};
    };
    using Reply = std::vector<MemoryStat>;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref)};
};

// dommemstat --period: how often the guest reports its statistics
// (<memballoon><stats period>), 0 = never.
struct DomainSetMemoryStatsPeriod {
    static constexpr OpInfo info{.name = "domain.set_memory_stats_period", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/memory-stats/period", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Set the balloon's statistics period (virsh dommemstat --period)"};
    struct Request {
        std::string ref{};
        std::uint64_t seconds = 0;
        bool live = false;
        bool config = false;
        bool current = false;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), required("seconds", &Request::seconds, "the period in seconds, 0 = off"),
        field("live", &Request::live, "change the running domain"),
        field("config", &Request::config, "change the persistent definition"),
        field("current", &Request::current, "the current state's definition (the default)")};
};

// --- the guest agent --------------------------------------------------------------------
//
// Each needs a running domain with the agent's channel (<channel
// type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>)
// and the agent answering in the guest; otherwise an error ("QEMU guest agent
// is not configured", "... is not connected") within the timeout, never a
// hang. shutdown/reboot --mode agent and domifaddr --source agent use it too.

// virsh qemu-agent-command: one command of the agent's protocol as JSON.
struct DomainAgentCommand {
    static constexpr OpInfo info{.name = "domain.agent_command", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/agent-command", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Run a guest agent command given as JSON (virsh qemu-agent-command)"};
    struct Request {
        std::string ref{};
        std::string command{};       // {"execute": ..., "arguments": ...}
        std::uint64_t timeout_s = 0;  // 0 = the default (5 s)
        bool block = false;           // wait as long as the agent takes
        bool async = false;           // send it, do not wait for the reply
    };
    using Reply = std::string;  // the agent's reply object ({"return": ...}); "" with async
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), required("command", &Request::command, "the command, as JSON"),
        field("timeout_s", &Request::timeout_s, "seconds to wait for the reply (0 = 5)"),
        field("block", &Request::block, "wait without a time limit"),
        field("async", &Request::async, "do not wait for the reply")};
};

// virsh domtime: the guest's clock (guest-get-time).
struct DomainGetTime {
    static constexpr OpInfo info{.name = "domain.get_time", .method = Method::Get, .path = "/v1/domains/{ref}/time",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "The guest's time, read by its agent (virsh domtime)"};
    struct Request {
        std::string ref{};
    };
    using Reply = GuestTime;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref)};
};

// virsh domtime --time/--now/--sync: set the guest's clock (guest-set-time);
// sync: the guest reads its hardware clock again.
struct DomainSetTime {
    static constexpr OpInfo info{.name = "domain.set_time", .method = Method::Post, .path = "/v1/domains/{ref}/time",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Set the guest's time through its agent (virsh domtime --time, --now, --sync)"};
    struct Request {
        std::string ref{};
        std::uint64_t seconds = 0;
        std::uint64_t nseconds = 0;
        bool sync = false;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), field("seconds", &Request::seconds, "the time, seconds since the epoch"),
        field("nseconds", &Request::nseconds, "and nanoseconds"),
        field("sync", &Request::sync, "the guest sets its clock from its RTC instead")};
};

// virsh domhostname (--source agent): the guest's hostname.
struct DomainHostname {
    static constexpr OpInfo info{.name = "domain.hostname", .method = Method::Get, .path = "/v1/domains/{ref}/hostname",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "The guest's hostname, from its agent (virsh domhostname)"};
    struct Request {
        std::string ref{};
    };
    using Reply = std::string;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref)};
};

// virsh guest-agent-timeout: how long each later agent call of the running
// domain may take, libvirt's values: -2 no limit (block), -1 vireo's default
// (5 s), 0 no wait, else seconds. Kept while the domain runs (across a
// daemon restart too); qemu-agent-command --timeout/--block override it.
struct DomainAgentTimeout {
    static constexpr OpInfo info{.name = "domain.agent_timeout", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/agent-timeout", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Set how long guest agent calls may take (virsh guest-agent-timeout)"};
    struct Request {
        std::string ref{};
        std::string timeout{};  // "-2", "-1", "0" or seconds
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref),
        required("timeout", &Request::timeout, "-2 no limit, -1 the default (5 s), 0 no wait, else seconds")};
};

// virsh guestinfo: what the guest agent tells of the guest, as libvirt's
// typed parameters (user.*, os.*, timezone.*, hostname, fs.*, disk.*, if.*),
// the groups asked for, or all it supports when none is.
struct DomainGuestInfo {
    static constexpr OpInfo info{.name = "domain.guest_info", .method = Method::Get, .path = "/v1/domains/{ref}/guest-info",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Information about the guest from its agent (virsh guestinfo)"};
    struct Request {
        std::string ref{};
        bool users = false;
        bool os = false;
        bool timezone = false;
        bool hostname = false;
        bool filesystem = false;
        bool disks = false;
        bool interfaces = false;
    };
    using Reply = std::vector<TypedParam>;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), field("users", &Request::users, "active users (user.*)"),
        field("os", &Request::os, "operating system (os.*)"), field("timezone", &Request::timezone, "timezone (timezone.*)"),
        field("hostname", &Request::hostname, "hostname"), field("filesystem", &Request::filesystem, "filesystems (fs.*)"),
        field("disks", &Request::disks, "disks (disk.*)"), field("interfaces", &Request::interfaces, "interfaces (if.*)")};
};

// virsh domfsinfo: the filesystems the guest has mounted (guest-get-fsinfo),
// each with the domain's disks under it.
struct DomainFsInfo {
    static constexpr OpInfo info{.name = "domain.fs_info", .method = Method::Get, .path = "/v1/domains/{ref}/filesystems",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "The guest's mounted filesystems, from its agent (virsh domfsinfo)"};
    struct Request {
        std::string ref{};
    };
    using Reply = std::vector<FsInfo>;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref)};
};

// virsh domfsfreeze/domfsthaw: freeze (thaw) the guest's filesystems, all
// or the ones mounted at `mountpoints`; how many it froze (thawed).
struct FsMountpoints {
    std::string ref{};
    std::string mountpoints{};  // one a line; empty: every filesystem
};
inline constexpr auto kFsMountpointsFields =
    std::tuple{field("ref", &FsMountpoints::ref),
               field("mountpoints", &FsMountpoints::mountpoints, "mount points, one a line; empty = all")};

struct DomainFsFreeze {
    static constexpr OpInfo info{.name = "domain.fs_freeze", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/filesystems/freeze", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Freeze the guest's filesystems through its agent (virsh domfsfreeze)"};
    using Request = FsMountpoints;
    using Reply = FsCount;
    static constexpr auto fields = kFsMountpointsFields;
};

struct DomainFsThaw {
    static constexpr OpInfo info{.name = "domain.fs_thaw", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/filesystems/thaw", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Thaw the guest's frozen filesystems through its agent (virsh domfsthaw)"};
    using Request = FsMountpoints;
    using Reply = FsCount;
    static constexpr auto fields = kFsMountpointsFields;
};

// virsh set-user-password: a guest user's password (guest-set-user-password);
// `encrypted`: `password` is already a crypt(3) hash.
struct DomainSetUserPassword {
    static constexpr OpInfo info{.name = "domain.set_user_password", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/user-password", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Set a guest user's password through its agent (virsh set-user-password)"};
    struct Request {
        std::string ref{};
        std::string user{};
        std::string password{};
        bool encrypted = false;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), required("user", &Request::user, "the guest user"),
        required("password", &Request::password, "the new password"),
        field("encrypted", &Request::encrypted, "the password is already encrypted (a crypt(3) hash)")};
};

// virsh guestvcpus: the guest's vCPUs, online and offlinable (guest-get-vcpus).
struct DomainGuestVcpus {
    static constexpr OpInfo info{.name = "domain.guest_vcpus", .method = Method::Get, .path = "/v1/domains/{ref}/guest-vcpus",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "The guest's vCPUs as its agent sees them (virsh guestvcpus)"};
    struct Request {
        std::string ref{};
    };
    using Reply = GuestVcpus;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref)};
};

// virsh guestvcpus --cpulist L --enable/--disable: bring the guest's vCPUs
// in `cpulist` online (offline) inside the guest (guest-set-vcpus).
struct DomainSetGuestVcpus {
    static constexpr OpInfo info{.name = "domain.set_guest_vcpus", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/guest-vcpus", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Bring guest vCPUs online or offline through its agent (virsh guestvcpus --enable/--disable)"};
    struct Request {
        std::string ref{};
        std::string cpulist{};  // "1-3,^2"
        bool enable = false;    // false: take them offline
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), required("cpulist", &Request::cpulist, "vCPU list as libvirt writes it (1-3,^2)"),
        field("enable", &Request::enable, "bring them online; false takes them offline")};
};

template <>
struct EnumNames<KeyCodeset> {
    static constexpr std::string_view what = "codeset";
    static constexpr std::array<std::pair<KeyCodeset, std::string_view>, 5> values{
        {{KeyCodeset::Linux, "linux"}, {KeyCodeset::Xt, "xt"}, {KeyCodeset::Atset1, "atset1"},
         {KeyCodeset::XtKbd, "xt_kbd"}, {KeyCodeset::Qnum, "qnum"}}};
};

// Screen 0 is the primary video's first head; the heads of each video
// follow in order (libvirt's numbering).
struct DomainScreenshot {
    static constexpr OpInfo info{.name = "domain.screenshot", .method = Method::Get,
                                 .path = "/v1/domains/{ref}/screenshot", .kind = Kind::Query,
                                 .lane = Lane::Query, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "An image of a running domain's screen (virsh screenshot)"};
    struct Request {
        std::string ref{};
        std::uint64_t screen = 0;
    };
    using Reply = Screenshot;
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref), field("screen", &Request::screen, "screen number (0 = the primary)")};
};

struct DomainSendKey {
    static constexpr OpInfo info{.name = "domain.send_key", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/send-key", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Press keys in a running domain (virsh send-key)"};
    struct Request {
        std::string ref{};
        KeyCodeset codeset = KeyCodeset::Linux;
        std::uint64_t holdtime = 0;  // milliseconds; 0: QEMU's default
        std::string keys{};          // key codes of the codeset, comma-separated ("29,56,111")
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref), field("codeset", &Request::codeset, "linux (default), xt, atset1, xt_kbd or qnum"),
                   field("holdtime", &Request::holdtime, "milliseconds each key is held"),
                   required("keys", &Request::keys, "key codes of the codeset, comma-separated, at most 16")};
};

// Urgent: an abort must reach the job it aborts while jobs occupy every job
// thread. It takes the domain's Abort job, which async jobs allow.
struct DomainAbortJob {
    static constexpr OpInfo info{.name = "domain.abort_job", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/job/abort", .kind = Kind::Job, .lane = Lane::Urgent,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Abort the domain's async job (virsh domjobabort)"};
    struct Request {
        std::string ref{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("ref", &Request::ref)};
};

// --- console ---------------------------------------------------------------------------

// --- block jobs (blockcommit, blockpull, blockcopy, blockjob) ---------------------
//
// A block job runs in QEMU on one disk of a running domain, as the domain's
// async job (domjobinfo shows it, domjobabort cancels it). It starts with
// DomainBlockCommit / DomainBlockPull / DomainBlockCopy and is then followed
// with DomainBlockJobInfo; a copy or an active commit that is ready waits
// for DomainBlockJobAbort (pivot: the disk moves to the new image; without:
// the disk stays where it was). `path`: the disk's target (vda) or source
// path. Bandwidths are bytes/s, 0 = unlimited.

struct DomainBlockCommit {
    static constexpr OpInfo info{.name = "domain.block_commit", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/block-commit", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Start committing layers of a running disk's backing chain into a lower one "
                                            "(virsh blockcommit)"};
    struct Request {
        std::string ref{};
        std::string path{};
        std::string base{};  // "" = the bottom of the chain (with shallow: the top's backing image)
        std::string top{};   // "" = the active layer
        bool active = false;   // committing the active layer (needs pivot or abort to end)
        bool shallow = false;  // base is the top's backing image
        bool delete_images = false;  // remove the committed images once the commit completed
        std::uint64_t bandwidth = 0;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), required("path", &Request::path, "the disk's target (vda) or source path"),
        field("base", &Request::base, "image to commit into; empty: the bottom of the chain"),
        field("top", &Request::top, "top image of what is committed; empty: the active layer"),
        field("active", &Request::active, "allow committing the active layer"),
        field("shallow", &Request::shallow, "commit into the top image's backing image"),
        field("delete", &Request::delete_images, "remove the committed images once the commit completed"),
        field("bandwidth", &Request::bandwidth, "bytes per second, 0: unlimited")};
};

struct DomainBlockPull {
    static constexpr OpInfo info{.name = "domain.block_pull", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/block-pull", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Start pulling a running disk's backing images into its active layer "
                                            "(virsh blockpull)"};
    struct Request {
        std::string ref{};
        std::string path{};
        std::string base{};  // "" = every backing image
        std::uint64_t bandwidth = 0;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), required("path", &Request::path, "the disk's target (vda) or source path"),
        field("base", &Request::base, "the image that stays below; empty: every backing image is pulled"),
        field("bandwidth", &Request::bandwidth, "bytes per second, 0: unlimited")};
};

struct DomainBlockCopy {
    static constexpr OpInfo info{.name = "domain.block_copy", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/block-copy", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Start copying a running disk to a new image, mirrored until pivot or abort "
                                            "(virsh blockcopy)"};
    struct Request {
        std::string ref{};
        std::string path{};
        std::string dest{};
        std::string format{};  // "" = the disk's format (reused: probed)
        bool shallow = false;
        bool reuse_external = false;
        std::uint64_t bandwidth = 0;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{
        field("ref", &Request::ref), required("path", &Request::path, "the disk's target (vda) or source path"),
        required("dest", &Request::dest, "the copy's file"),
        field("format", &Request::format, "the copy's format (raw, qcow2); empty: the disk's"),
        field("shallow", &Request::shallow, "copy only the active layer; the copy is backed by the disk's backing image"),
        field("reuse_external", &Request::reuse_external, "use the existing file dest instead of creating it"),
        field("bandwidth", &Request::bandwidth, "bytes per second, 0: unlimited")};
};

struct DomainBlockJobInfo {
    static constexpr OpInfo info{.name = "domain.block_job_info", .method = Method::Get,
                                 .path = "/v1/domains/{ref}/block-job", .kind = Kind::Query, .lane = Lane::Query,
                                 .read_only_allowed = true, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "The block job of a disk: type, progress, bandwidth (virsh blockjob --info)"};
    static constexpr std::string_view description =
        "The disk's block job as typed parameters: type (pull, copy, commit,\n"
        "active_commit), state (running, ready; completed, failed or cancelled\n"
        "for the last job once it ended), cur and end (bytes), bandwidth\n"
        "(bytes/s) and error (why it failed). An empty list: the disk never\n"
        "had a block job in this run.";
    struct Request {
        std::string ref{};
        std::string path{};
    };
    using Reply = std::vector<TypedParam>;
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref), required("path", &Request::path, "the disk's target (vda) or source path")};
};

struct DomainBlockJobAbort {
    static constexpr OpInfo info{.name = "domain.block_job_abort", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/block-job/abort", .kind = Kind::Job, .lane = Lane::Urgent,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "End a disk's block job: cancel it, or pivot a ready copy or active commit "
                                            "(virsh blockjob --abort / --pivot)"};
    struct Request {
        std::string ref{};
        std::string path{};
        bool pivot = false;      // move the disk to the job's new image (ready jobs only)
        bool async_end = false;  // return once asked, without waiting for the job to end
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref), required("path", &Request::path, "the disk's target (vda) or source path"),
                   field("pivot", &Request::pivot, "move the disk to the copy (or the commit's base)"),
                   field("async", &Request::async_end, "do not wait for the job to end")};
};

struct DomainBlockJobSetSpeed {
    static constexpr OpInfo info{.name = "domain.block_job_set_speed", .method = Method::Post,
                                 .path = "/v1/domains/{ref}/block-job/speed", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Change the bandwidth of a disk's block job (virsh blockjob --bandwidth)"};
    struct Request {
        std::string ref{};
        std::string path{};
        std::uint64_t bandwidth = 0;
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref), required("path", &Request::path, "the disk's target (vda) or source path"),
                   required("bandwidth", &Request::bandwidth, "bytes per second, 0: unlimited")};
};

// A bidirectional byte stream to the domain's serial console; the caller owns
// the fd, closing it detaches. Console input drives the guest: not for
// read-only clients (as libvirt).
struct DomainConsole {
    static constexpr OpInfo info{.name = "domain.console", .method = Method::Get,
                                 .path = "/v1/domains/{ref}/console", .kind = Kind::JobStream, .lane = Lane::Query,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Domain,
                                 .summary = "Serial console (WebSocket)"};
    static constexpr std::string_view description =
        "Upgrade to WebSocket. Binary messages carry the console's bytes in\n"
        "both directions. Closing the WebSocket detaches; the daemon closes it\n"
        "when the domain stops. Refused on the read-only socket. Errors (no\n"
        "such domain, not running) come back as the usual error answer instead\n"
        "of the 101 upgrade.";
    struct Request {
        std::string ref{};
        std::string device{};  // as virsh console; empty = the first serial/console
    };
    using Reply = UniqueFd;
    static constexpr auto fields =
        std::tuple{field("ref", &Request::ref), field("device", &Request::device, "serial device alias; empty = the first")};
};

using DomainOps = List<DomainList, DomainDefine, DomainCreate, DomainRestore, DomainLookup, DomainUndefine, DomainXml,
                       DomainDisks, DomainInterfaces, DomainInterfaceStats, DomainInterfaceLink,
                       DomainInterfaceAddresses, DomainSetInterfaceLink, DomainBlockStats, DomainBlockInfo, DomainBlockResize,
                       DomainBlockCommit, DomainBlockPull, DomainBlockCopy, DomainBlockJobInfo, DomainBlockJobAbort,
                       DomainBlockJobSetSpeed, DomainGetMetadata, DomainSetMetadata, DomainSetAutostart,
                       DomainStart, DomainShutdown, DomainReboot, DomainDestroy, DomainReset, DomainSuspend,
                       DomainResume, DomainSave, DomainManagedSave, DomainManagedSaveRemove, DomainJobInfo,
                       DomainAbortJob, DomainConsole, DomainScreenshot, DomainSendKey, DomainChangeMedia,
                       DomainAttachDevice, DomainDetachDevice, DomainUpdateDevice, DomainDetachDeviceAlias, DomainVcpuInfo, DomainSetVcpus,
                       DomainSetVcpu,
                       DomainPinThread, DomainSetMemory, DomainMemoryStats, DomainSetMemoryStatsPeriod,
                       DomainAgentCommand, DomainGetTime, DomainSetTime, DomainHostname, DomainAgentTimeout, DomainGuestInfo, DomainFsInfo,
                       DomainFsFreeze, DomainFsThaw, DomainSetUserPassword, DomainGuestVcpus, DomainSetGuestVcpus>;

}  // namespace vireo::driver::ops
