// Storage volume operations (virsh vol-*). (op.hpp explains the declarations.)
//
// Volumes are addressed by ({pool}, {vol} = the volume's name), or by key or
// path alone (volume.lookup_by_key).
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "driver/ops/op.hpp"
#include "driver/pool_types.hpp"

namespace vireo::driver::ops {

template <>
struct EnumNames<WipeAlgorithm> {
    static constexpr std::string_view what = "wipe algorithm";
    static constexpr std::array<std::pair<WipeAlgorithm, std::string_view>, 3> values{
        {{WipeAlgorithm::Zero, "zero"}, {WipeAlgorithm::Random, "random"}, {WipeAlgorithm::Trim, "trim"}}};
};

struct VolumeList {
    static constexpr OpInfo info{.name = "volume.list", .method = Method::Get, .path = "/v1/pools/{pool}/volumes",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Storage,
                                 .summary = "Volumes of a running pool (vol-list)"};
    struct Request {
        std::string pool{};
    };
    using Reply = std::vector<VolumeSummary>;
    static constexpr auto fields = std::tuple{field("pool", &Request::pool)};
};

struct VolumeCreate {
    static constexpr OpInfo info{.name = "volume.create", .method = Method::Post, .path = "/v1/pools/{pool}/volumes",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Storage,
                                 .summary = "Create a volume (vol-create); body = libvirt volume XML"};
    struct Request {
        std::string pool{};
        std::string xml{};
        bool prealloc_metadata = false;  // qcow2: preallocation=metadata
        bool reflink = false;
    };
    using Reply = VolumeSummary;
    static constexpr unsigned http_success = 201;
    static constexpr auto fields =
        std::tuple{field("pool", &Request::pool), document("xml", &Request::xml),
                   field("prealloc_metadata", &Request::prealloc_metadata), field("reflink", &Request::reflink)};
};

// A new volume `xml` in {pool}, its contents copied from (source_pool,
// source_volume) and converted to the new volume's format.
struct VolumeCreateFrom {
    static constexpr OpInfo info{
        .name = "volume.create_from", .method = Method::Post, .path = "/v1/pools/{pool}/volumes:from",
        .kind = Kind::AsyncJob, .lane = Lane::Job, .read_only_allowed = false,
        .libvirt_domain = LibvirtDomain::Storage,
        .summary = "Create a volume from another one (vol-create-from, vol-clone); body = new volume XML"};
    struct Request {
        std::string pool{};
        std::string xml{};
        std::string source_pool{};
        std::string source_volume{};
        bool prealloc_metadata = false;
        bool reflink = false;  // refuse unless the filesystem can share blocks
    };
    using Reply = VolumeSummary;
    static constexpr unsigned http_success = 201;
    static constexpr auto fields =
        std::tuple{field("pool", &Request::pool), document("xml", &Request::xml),
                   field("source_pool", &Request::source_pool), required("source_volume", &Request::source_volume),
                   field("prealloc_metadata", &Request::prealloc_metadata), field("reflink", &Request::reflink)};
};

struct VolumeLookup {
    static constexpr OpInfo info{.name = "volume.lookup", .method = Method::Get,
                                 .path = "/v1/pools/{pool}/volumes/{vol}", .kind = Kind::Query, .lane = Lane::Query,
                                 .read_only_allowed = true, .libvirt_domain = LibvirtDomain::Storage,
                                 .summary = "One volume (vol-info, vol-path, vol-key)"};
    struct Request {
        std::string pool{};
        std::string vol{};
    };
    using Reply = VolumeSummary;
    static constexpr auto fields = std::tuple{field("pool", &Request::pool), field("vol", &Request::vol)};
};

struct VolumeLookupByKey {
    static constexpr OpInfo info{.name = "volume.lookup_by_key", .method = Method::Get, .path = "/v1/volumes/{key}",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Storage,
                                 .summary = "A volume by key or path alone, searched in every running pool"};
    struct Request {
        std::string key{};  // a volume key or path
    };
    using Reply = VolumeSummary;
    static constexpr auto fields = std::tuple{
        field("key", &Request::key, "volume key or path, percent-encoded (a slash as %2F)")};
};

// Refused while a running domain uses the volume.
struct VolumeDelete {
    static constexpr OpInfo info{.name = "volume.delete", .method = Method::Delete,
                                 .path = "/v1/pools/{pool}/volumes/{vol}", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Storage,
                                 .summary = "Delete the volume (vol-delete); refused while a running domain uses it"};
    struct Request {
        std::string pool{};
        std::string vol{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("pool", &Request::pool), field("vol", &Request::vol)};
};

struct VolumeXml {
    static constexpr OpInfo info{.name = "volume.xml", .method = Method::Get,
                                 .path = "/v1/pools/{pool}/volumes/{vol}/xml", .kind = Kind::Query,
                                 .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Storage, .summary = "Volume XML (vol-dumpxml)"};
    struct Request {
        std::string pool{};
        std::string vol{};
    };
    using Reply = std::string;  // libvirt volume XML
    static constexpr auto fields = std::tuple{field("pool", &Request::pool), field("vol", &Request::vol)};
};

struct VolumeWipe {
    static constexpr OpInfo info{.name = "volume.wipe", .method = Method::Post,
                                 .path = "/v1/pools/{pool}/volumes/{vol}/wipe", .kind = Kind::AsyncJob,
                                 .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Storage, .summary = "Wipe (vol-wipe)"};
    struct Request {
        std::string pool{};
        std::string vol{};
        WipeAlgorithm algorithm = WipeAlgorithm::Zero;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("pool", &Request::pool), field("vol", &Request::vol),
                                              field("algorithm", &Request::algorithm, "default zero")};
};

struct VolumeResize {
    static constexpr OpInfo info{.name = "volume.resize", .method = Method::Post,
                                 .path = "/v1/pools/{pool}/volumes/{vol}/resize", .kind = Kind::Job,
                                 .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Storage, .summary = "Resize (vol-resize)"};
    struct Request {
        std::string pool{};
        std::string vol{};
        std::uint64_t capacity = 0;  // bytes
        bool delta = false;          // capacity is added to the current one
        bool shrink = false;         // allow making it smaller (else refuse)
        bool allocate = false;       // allocate the new space (fallocate)
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("pool", &Request::pool), field("vol", &Request::vol),
                   required("capacity", &Request::capacity, "bytes"),
                   field("delta", &Request::delta, "capacity is added to the current one"),
                   field("shrink", &Request::shrink, "allow making it smaller"),
                   field("allocate", &Request::allocate, "allocate the new space")};
};

// The volume's guest-visible bytes (raw bytes for raw, the guest view for
// qcow2), handed to `sink` chunk by chunk.
struct VolumeDownload {
    static constexpr OpInfo info{
        .name = "volume.download", .method = Method::Get, .path = "/v1/pools/{pool}/volumes/{vol}/download",
        .kind = Kind::QueryStream, .lane = Lane::Job, .read_only_allowed = true,
        .libvirt_domain = LibvirtDomain::Storage,
        .summary = "Stream the volume's guest-visible bytes (vol-download, WebSocket)"};
    static constexpr std::string_view description =
        "Upgrade to WebSocket; framing in docs/api/README.md (\"Volume\n"
        "streams\"). No such pool/volume: the usual error answer instead of 101.";
    struct Request {
        std::string pool{};
        std::string vol{};
        std::uint64_t offset = 0;
        std::uint64_t length = 0;  // 0 = to the end of the volume
        bool sparse = false;       // holes travel as hole chunks (else as zeros)
        StreamSink sink{};
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("pool", &Request::pool), field("vol", &Request::vol),
                   field("offset", &Request::offset, "first byte (default 0)"),
                   field("length", &Request::length, "bytes; 0 = to the end"),
                   field("sparse", &Request::sparse, "holes travel as hole messages")};
};

// Bytes from `source` written into the volume until a chunk of length 0.
struct VolumeUpload {
    static constexpr OpInfo info{
        .name = "volume.upload", .method = Method::Get, .path = "/v1/pools/{pool}/volumes/{vol}/upload",
        .kind = Kind::JobStream, .lane = Lane::Job, .read_only_allowed = false,
        .libvirt_domain = LibvirtDomain::Storage,
        .summary = "Stream bytes into the volume (vol-upload, WebSocket); refused on the read-only socket"};
    static constexpr std::string_view description =
        "Upgrade to WebSocket; framing in docs/api/README.md (\"Volume streams\").\n"
        "The daemon answers {\"done\":true} once everything is written.";
    struct Request {
        std::string pool{};
        std::string vol{};
        std::uint64_t offset = 0;
        std::uint64_t length = 0;
        bool sparse = false;
        StreamSource source{};
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("pool", &Request::pool), field("vol", &Request::vol),
                   field("offset", &Request::offset, "first byte (default 0)"),
                   field("length", &Request::length, "bytes; 0 = to the end"),
                   field("sparse", &Request::sparse, "holes travel as hole messages")};
};

using VolumeOps = List<VolumeList, VolumeCreate, VolumeCreateFrom, VolumeLookup, VolumeDelete, VolumeXml, VolumeWipe,
                       VolumeResize, VolumeDownload, VolumeUpload, VolumeLookupByKey>;

}  // namespace vireo::driver::ops
