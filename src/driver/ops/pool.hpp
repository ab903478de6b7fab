// Storage pool operations (virsh pool-*). (op.hpp explains the declarations.)
//
// {pool} is a pool name or UUID, tried in that order.
#pragma once

#include <string>
#include <tuple>
#include <vector>

#include "driver/ops/op.hpp"
#include "driver/pool_types.hpp"

namespace vireo::driver::ops {

struct PoolList {
    static constexpr OpInfo info{.name = "pool.list", .method = Method::Get, .path = "/v1/pools", .kind = Kind::Query,
                                 .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Storage,
                                 .summary = "Every storage pool, active and inactive (virsh pool-list --all)"};
    struct Request {};
    using Reply = std::vector<PoolSummary>;  // sorted by name
    static constexpr std::tuple<> fields{};
};

struct PoolDefine {
    static constexpr OpInfo info{.name = "pool.define", .method = Method::Post, .path = "/v1/pools", .kind = Kind::Job,
                                 .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Storage,
                                 .summary = "Define a persistent pool (pool-define); body = libvirt pool XML"};
    struct Request {
        std::string xml{};
    };
    using Reply = PoolSummary;
    static constexpr unsigned http_success = 201;
    static constexpr auto fields = std::tuple{document("xml", &Request::xml)};
};

// Define a transient pool and start it; build it first if asked.
struct PoolCreate {
    static constexpr OpInfo info{.name = "pool.create", .method = Method::Post, .path = "/v1/pools:create",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Storage,
                                 .summary = "Create and start a transient pool (pool-create); body = pool XML"};
    struct Request {
        std::string xml{};
        bool build = false;
        bool overwrite = false;
        bool no_overwrite = false;
    };
    using Reply = PoolSummary;  // running
    static constexpr unsigned http_success = 201;
    static constexpr auto fields =
        std::tuple{document("xml", &Request::xml), field("build", &Request::build, "build it first"),
                   field("overwrite", &Request::overwrite), field("no_overwrite", &Request::no_overwrite)};
};

struct PoolLookup {
    static constexpr OpInfo info{.name = "pool.lookup", .method = Method::Get, .path = "/v1/pools/{pool}",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Storage, .summary = "One pool (pool-info)"};
    struct Request {
        std::string pool{};
    };
    using Reply = PoolSummary;
    static constexpr auto fields = std::tuple{field("pool", &Request::pool)};
};

struct PoolUndefine {
    static constexpr OpInfo info{.name = "pool.undefine", .method = Method::Delete, .path = "/v1/pools/{pool}",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Storage,
                                 .summary = "Undefine the pool (pool-undefine)"};
    struct Request {
        std::string pool{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("pool", &Request::pool)};
};

struct PoolXml {
    static constexpr OpInfo info{.name = "pool.xml", .method = Method::Get, .path = "/v1/pools/{pool}/xml",
                                 .kind = Kind::Query, .lane = Lane::Query, .read_only_allowed = true,
                                 .libvirt_domain = LibvirtDomain::Storage, .summary = "Pool XML (pool-dumpxml)"};
    struct Request {
        std::string pool{};
        bool inactive = false;
    };
    using Reply = std::string;  // libvirt pool XML
    static constexpr auto fields = std::tuple{field("pool", &Request::pool), field("inactive", &Request::inactive)};
};

struct PoolSetAutostart {
    static constexpr OpInfo info{.name = "pool.set_autostart", .method = Method::Put,
                                 .path = "/v1/pools/{pool}/autostart", .kind = Kind::Job, .lane = Lane::Job,
                                 .read_only_allowed = false, .libvirt_domain = LibvirtDomain::Storage,
                                 .summary = "Set autostart (pool-autostart [--disable])"};
    struct Request {
        std::string pool{};
        bool enabled = false;
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("pool", &Request::pool), field("enabled", &Request::enabled)};
};

struct PoolBuild {
    static constexpr OpInfo info{.name = "pool.build", .method = Method::Post, .path = "/v1/pools/{pool}/build",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Storage,
                                 .summary = "Build the pool's storage (pool-build)"};
    struct Request {
        std::string pool{};
        bool overwrite = false;     // format even if a filesystem / partition table is there
        bool no_overwrite = false;  // refuse if one is there
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("pool", &Request::pool), field("overwrite", &Request::overwrite),
                                              field("no_overwrite", &Request::no_overwrite)};
};

struct PoolStart {
    static constexpr OpInfo info{.name = "pool.start", .method = Method::Post, .path = "/v1/pools/{pool}/start",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Storage,
                                 .summary = "Start the pool (pool-start [--build])"};
    struct Request {
        std::string pool{};
        bool build = false;
        bool overwrite = false;
        bool no_overwrite = false;
    };
    using Reply = void;
    static constexpr auto fields =
        std::tuple{field("pool", &Request::pool), field("build", &Request::build, "build it first (pool-start --build)"),
                   field("overwrite", &Request::overwrite), field("no_overwrite", &Request::no_overwrite)};
};

// Refused while a running domain uses one of the pool's volumes; a transient
// pool is gone afterwards.
struct PoolDestroy {
    static constexpr OpInfo info{.name = "pool.destroy", .method = Method::Post, .path = "/v1/pools/{pool}/destroy",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Storage,
                                 .summary = "Stop using the pool (pool-destroy); refused while a running domain "
                                            "uses one of its volumes"};
    struct Request {
        std::string pool{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("pool", &Request::pool)};
};

// Remove the pool's storage (dir: the empty directory; fs: the filesystem
// signature; disk: the partition table). Only when inactive.
struct PoolDelete {
    static constexpr OpInfo info{.name = "pool.delete", .method = Method::Post, .path = "/v1/pools/{pool}/delete",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Storage,
                                 .summary = "Remove the pool's storage (pool-delete); only when inactive"};
    struct Request {
        std::string pool{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("pool", &Request::pool)};
};

struct PoolRefresh {
    static constexpr OpInfo info{.name = "pool.refresh", .method = Method::Post, .path = "/v1/pools/{pool}/refresh",
                                 .kind = Kind::Job, .lane = Lane::Job, .read_only_allowed = false,
                                 .libvirt_domain = LibvirtDomain::Storage,
                                 .summary = "Scan the pool's volumes again (pool-refresh)"};
    struct Request {
        std::string pool{};
    };
    using Reply = void;
    static constexpr auto fields = std::tuple{field("pool", &Request::pool)};
};

using PoolOps = List<PoolList, PoolDefine, PoolCreate, PoolLookup, PoolUndefine, PoolXml, PoolSetAutostart, PoolBuild,
                     PoolStart, PoolDestroy, PoolDelete, PoolRefresh>;

}  // namespace vireo::driver::ops
