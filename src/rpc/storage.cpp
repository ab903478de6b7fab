// The storage pool and volume procedures of libvirt's remote program: each
// decodes its arguments, runs the pool or volume operation of the operation
// table the HTTP API runs for the same virsh verb, and encodes the reply in
// the public protocol's layout. Flags vireo has no meaning for are refused
// with "not supported", never dropped. (Volume streams: rpc/streams.cpp.)
#include <algorithm>
#include <array>

#include "rpc/handlers.hpp"
#include "rpc/storage.hpp"
#include "rpc/streams.hpp"

namespace vireo::rpc {

namespace ops = driver::ops;
using driver::PoolSummary;
using driver::VolumeSummary;
using Call = Connection::Call;

void put_pool(XdrWriter& w, const PoolSummary& p) {
    w.string(p.name);
    w.fixed_opaque(p.uuid.bytes);
}

void put_volume(XdrWriter& w, const VolumeSummary& v) {
    w.string(v.pool);
    w.string(v.name);
    w.string(v.key);
}

Result<PoolRef> get_pool(XdrReader& r) {
    PoolRef p;
    VIREO_RPC_GET(name, r.string());
    VIREO_RPC_GET(uuid, r.fixed_opaque(16));
    p.name = std::move(name);
    std::copy(uuid.begin(), uuid.end(), p.uuid.bytes.begin());
    return p;
}

Result<VolumeRef> get_volume(XdrReader& r) {
    VolumeRef v;
    VIREO_RPC_GET(pool, r.string());
    VIREO_RPC_GET(name, r.string());
    VIREO_RPC_GET(key, r.string());
    v.pool = std::move(pool);
    v.name = std::move(name);
    v.key = std::move(key);
    return v;
}

Error unsupported_flags(std::string_view what, std::uint32_t flags) {
    return Error{ErrorCode::Unsupported, fmt::format("{}: flags {:#x} are not supported", what, flags)};
}

namespace {

using namespace handlers;

std::string pool_body(const PoolSummary& p) {
    XdrWriter w;
    put_pool(w, p);
    return w.take();
}

std::string volume_body(const VolumeSummary& v) {
    XdrWriter w;
    put_volume(w, v);
    return w.take();
}

std::string string_body(const std::string& s) {
    XdrWriter w;
    w.string(s);
    return w.take();
}

bool active(const PoolSummary& p) { return p.state != driver::PoolState::Inactive; }

Result<PoolSummary> pool_of(driver::Driver& d, const std::string& ref) { return d.call<ops::PoolLookup>({.pool = ref}); }

Result<VolumeSummary> volume_of(driver::Driver& d, const VolumeRef& v) {
    return d.call<ops::VolumeLookup>({.pool = v.pool, .vol = v.name});
}

// --- listings -------------------------------------------------------------------------

// One bit of virConnectListAllStoragePools' type filter, 0 for a type libvirt has no bit for.
std::uint32_t type_bit(std::string_view type) {
    std::uint32_t bit = pool_flags::kFirstType;
    for (const char* t : pool_flags::kTypes) {
        if (type == t) return bit;
        bit <<= 1;
    }
    return 0;
}

bool pool_matches(const PoolSummary& p, std::uint32_t f) {
    using namespace pool_flags;
    if (!keeps(f, Active, Inactive, active(p))) return false;
    if (!keeps(f, Persistent, Transient, p.persistent)) return false;
    if (!keeps(f, Autostart, NoAutostart, p.autostart)) return false;
    const std::uint32_t types = f & ~(kFirstType - 1);
    return types == 0 || (types & type_bit(p.type)) != 0;
}

Status list_all_pools(Connection& c, Call& call) {
    VIREO_RPC_GET(need_results, call.args.i32());
    VIREO_RPC_GET(flags, call.args.u32());
    return run<ops::PoolList>(c, call, [need_results, flags](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(all, d.call<ops::PoolList>({}));
        std::vector<const PoolSummary*> hit;
        for (const auto& p : all)
            if (pool_matches(p, flags)) hit.push_back(&p);
        return list_all_reply(need_results != 0, hit, [](XdrWriter& w, const PoolSummary& p) { put_pool(w, p); });
    });
}

// The older listings: names (or a count) of the active or the inactive pools.
Status pool_names(Connection& c, Call& call, bool want_active, bool count_only) {
    std::int32_t max = 0;
    if (!count_only) {
        VIREO_RPC_GET(m, call.args.i32());
        max = m;
    }
    return run<ops::PoolList>(c, call, [=](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(all, d.call<ops::PoolList>({}));
        std::vector<std::string> names;
        for (const auto& p : all)
            if (active(p) == want_active) names.push_back(p.name);
        return names_reply(std::move(names), count_only, max);
    });
}
Status num_of_pools(Connection& c, Call& call) { return pool_names(c, call, true, true); }
Status list_pools(Connection& c, Call& call) { return pool_names(c, call, true, false); }
Status num_of_defined_pools(Connection& c, Call& call) { return pool_names(c, call, false, true); }
Status list_defined_pools(Connection& c, Call& call) { return pool_names(c, call, false, false); }

// --- pool lookups and queries -----------------------------------------------------------

Status pool_lookup_by_name(Connection& c, Call& call) {
    VIREO_RPC_GET(name, call.args.string());
    return run<ops::PoolLookup>(c, call, [name](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(p, pool_of(d, name));
        if (p.name != name)
            return fail(ErrorCode::NoPool, "Storage pool not found: no storage pool with matching name '{}'", name);
        return pool_body(p);
    });
}

Status pool_lookup_by_uuid(Connection& c, Call& call) {
    VIREO_RPC_GET(u, read_uuid(call.args));
    return run<ops::PoolLookup>(c, call, [u](driver::Driver& d) -> Result<std::string> {
        auto p = pool_of(d, u.str());
        if (!p || p->uuid != u)
            return fail(ErrorCode::NoPool, "Storage pool not found: no storage pool with matching uuid '{}'", u.str());
        return pool_body(*p);
    });
}

Status pool_lookup_by_volume(Connection& c, Call& call) {
    VIREO_RPC_GET(vol, get_volume(call.args));
    return run<ops::PoolLookup>(c, call, [vol](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(p, pool_of(d, vol.pool));
        return pool_body(p);
    });
}

Status pool_lookup_by_target_path(Connection& c, Call& call) {
    VIREO_RPC_GET(path, call.args.string());
    return run<ops::PoolList>(c, call, [path](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(all, d.call<ops::PoolList>({}));
        for (const auto& p : all)
            if (active(p) && p.target_path == path) return pool_body(p);
        return fail(ErrorCode::NoPool, "Storage pool not found: no storage pool with matching target path '{}'", path);
    });
}

// A query answered from the pool's summary.
template <class Encode>
Status pool_query(Connection& c, Call& call, Encode encode) {
    VIREO_RPC_GET(pool, get_pool(call.args));
    return run<ops::PoolLookup>(c, call, [ref = pool.name, encode](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(p, pool_of(d, ref));
        XdrWriter w;
        encode(w, p);
        return w.take();
    });
}

Status pool_get_info(Connection& c, Call& call) {
    return pool_query(c, call, [](XdrWriter& w, const PoolSummary& p) {
        w.u32(static_cast<std::uint32_t>(p.state));  // unsigned char, one word
        w.u64(p.capacity);
        w.u64(p.allocation);
        w.u64(p.available);
    });
}
Status pool_get_autostart(Connection& c, Call& call) {
    return pool_query(c, call, [](XdrWriter& w, const PoolSummary& p) { w.i32(p.autostart); });
}
Status pool_is_active(Connection& c, Call& call) {
    return pool_query(c, call, [](XdrWriter& w, const PoolSummary& p) { w.i32(active(p)); });
}
Status pool_is_persistent(Connection& c, Call& call) {
    return pool_query(c, call, [](XdrWriter& w, const PoolSummary& p) { w.i32(p.persistent); });
}

Status pool_get_xml_desc(Connection& c, Call& call) {
    VIREO_RPC_GET(pool, get_pool(call.args));
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~kPoolXmlInactive) return std::unexpected(unsupported_flags("pool XML", flags));
    ops::PoolXml::Request req{.pool = pool.name, .inactive = (flags & kPoolXmlInactive) != 0};
    return run<ops::PoolXml>(c, call, [req](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(xml, d.call<ops::PoolXml>(req));
        return string_body(xml);
    });
}

// --- pool definitions and lifecycle --------------------------------------------------------

Status pool_define_xml(Connection& c, Call& call) {
    VIREO_RPC_GET(xml, call.args.string());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags != 0) return std::unexpected(unsupported_flags("pool-define", flags));  // --validate
    return run<ops::PoolDefine>(c, call, [xml](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(p, d.call<ops::PoolDefine>({.xml = xml}));
        return pool_body(p);
    });
}

constexpr std::uint32_t kCreateFlags = kPoolCreateWithBuild | kPoolCreateOverwrite | kPoolCreateNoOverwrite;

Status pool_create_xml(Connection& c, Call& call) {
    VIREO_RPC_GET(xml, call.args.string());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~kCreateFlags) return std::unexpected(unsupported_flags("pool-create", flags));
    ops::PoolCreate::Request req{.xml = std::move(xml),
                                 .build = (flags & kPoolCreateWithBuild) != 0,
                                 .overwrite = (flags & kPoolCreateOverwrite) != 0,
                                 .no_overwrite = (flags & kPoolCreateNoOverwrite) != 0};
    return run<ops::PoolCreate>(c, call, [req](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(p, d.call<ops::PoolCreate>(req));
        return pool_body(p);
    });
}

Status pool_create(Connection& c, Call& call) {
    VIREO_RPC_GET(pool, get_pool(call.args));
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~kCreateFlags) return std::unexpected(unsupported_flags("pool-start", flags));
    ops::PoolStart::Request req{.pool = pool.name,
                                .build = (flags & kPoolCreateWithBuild) != 0,
                                .overwrite = (flags & kPoolCreateOverwrite) != 0,
                                .no_overwrite = (flags & kPoolCreateNoOverwrite) != 0};
    return run_empty<ops::PoolStart>(c, call, std::move(req));
}

Status pool_build(Connection& c, Call& call) {
    VIREO_RPC_GET(pool, get_pool(call.args));
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~(kPoolBuildNoOverwrite | kPoolBuildOverwrite))
        return std::unexpected(unsupported_flags("pool-build (repair and resize)", flags));
    ops::PoolBuild::Request req{.pool = pool.name,
                                .overwrite = (flags & kPoolBuildOverwrite) != 0,
                                .no_overwrite = (flags & kPoolBuildNoOverwrite) != 0};
    return run_empty<ops::PoolBuild>(c, call, std::move(req));
}

// A pool call whose request is the pool's name alone; `has_flags`: the
// arguments end with flags, of which vireo knows none.
template <class Op>
Status pool_void(Connection& c, Call& call, bool has_flags) {
    VIREO_RPC_GET(pool, get_pool(call.args));
    if (has_flags) {
        VIREO_RPC_GET(flags, call.args.u32());
        if (flags != 0) return std::unexpected(unsupported_flags(Op::info.name, flags));
    }
    typename Op::Request req{.pool = pool.name};
    return run<Op>(c, call, [req](driver::Driver& d) -> Result<std::string> {
        VIREO_TRY(d.call<Op>(req));
        return empty();
    });
}
Status pool_destroy(Connection& c, Call& call) { return pool_void<ops::PoolDestroy>(c, call, false); }
Status pool_undefine(Connection& c, Call& call) { return pool_void<ops::PoolUndefine>(c, call, false); }
Status pool_delete(Connection& c, Call& call) { return pool_void<ops::PoolDelete>(c, call, true); }
Status pool_refresh(Connection& c, Call& call) { return pool_void<ops::PoolRefresh>(c, call, true); }

Status pool_set_autostart(Connection& c, Call& call) {
    VIREO_RPC_GET(pool, get_pool(call.args));
    VIREO_RPC_GET(on, call.args.i32());
    ops::PoolSetAutostart::Request req{.pool = pool.name, .enabled = on != 0};
    return run_empty<ops::PoolSetAutostart>(c, call, std::move(req));
}

// --- volume listings -------------------------------------------------------------------------

Status list_all_volumes(Connection& c, Call& call) {
    VIREO_RPC_GET(pool, get_pool(call.args));
    VIREO_RPC_GET(need_results, call.args.i32());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags != 0) return std::unexpected(unsupported_flags("listing volumes", flags));
    return run<ops::VolumeList>(c, call, [ref = pool.name, need_results](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(vols, d.call<ops::VolumeList>({.pool = ref}));
        XdrWriter w;
        w.u32(need_results ? static_cast<std::uint32_t>(vols.size()) : 0);
        if (need_results)
            for (const auto& v : vols) put_volume(w, v);
        w.u32(static_cast<std::uint32_t>(vols.size()));
        return w.take();
    });
}

Status num_of_volumes(Connection& c, Call& call) {
    VIREO_RPC_GET(pool, get_pool(call.args));
    return run<ops::VolumeList>(c, call, [ref = pool.name](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(vols, d.call<ops::VolumeList>({.pool = ref}));
        return one_int(static_cast<std::int32_t>(vols.size()));
    });
}

Status list_volumes(Connection& c, Call& call) {
    VIREO_RPC_GET(pool, get_pool(call.args));
    VIREO_RPC_GET(max, call.args.i32());
    return run<ops::VolumeList>(c, call, [ref = pool.name, max](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(vols, d.call<ops::VolumeList>({.pool = ref}));
        const auto n = std::min(vols.size(), static_cast<std::size_t>(std::max(max, 0)));
        XdrWriter w;
        w.u32(static_cast<std::uint32_t>(n));
        for (std::size_t i = 0; i < n; ++i) w.string(vols[i].name);
        return w.take();
    });
}

// --- volume lookups and queries ----------------------------------------------------------------

Status vol_lookup_by_name(Connection& c, Call& call) {
    VIREO_RPC_GET(pool, get_pool(call.args));
    VIREO_RPC_GET(name, call.args.string());
    return run<ops::VolumeLookup>(c, call, [ref = pool.name, name](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(v, d.call<ops::VolumeLookup>({.pool = ref, .vol = name}));
        return volume_body(v);
    });
}

// By key or by path: the same operation (volume.lookup_by_key takes either);
// not found reads as libvirt's, which virsh prints after its last attempt.
Status vol_lookup_by(Connection& c, Call& call, std::string_view what) {
    VIREO_RPC_GET(key, call.args.string());
    return run<ops::VolumeLookupByKey>(c, call, [key, what](driver::Driver& d) -> Result<std::string> {
        auto v = d.call<ops::VolumeLookupByKey>({.key = key});
        if (!v && v.error().code == ErrorCode::NoVolume)
            return fail(ErrorCode::NoVolume, "Storage volume not found: no storage vol with matching {} '{}'", what, key);
        if (!v) return std::unexpected(v.error());
        return volume_body(*v);
    });
}
Status vol_lookup_by_key(Connection& c, Call& call) { return vol_lookup_by(c, call, "key"); }
Status vol_lookup_by_path(Connection& c, Call& call) { return vol_lookup_by(c, call, "path"); }

void put_volume_info(XdrWriter& w, const VolumeSummary& v, bool physical) {
    w.i32(static_cast<std::int32_t>(v.type));  // char, one word
    w.u64(v.capacity);
    w.u64(physical ? v.physical : v.allocation);
}

Status vol_info(Connection& c, Call& call, bool has_flags) {
    VIREO_RPC_GET(vol, get_volume(call.args));
    std::uint32_t flags = 0;
    if (has_flags) {
        VIREO_RPC_GET(f, call.args.u32());
        flags = f;
    }
    if (flags & ~kVolGetPhysical) return std::unexpected(unsupported_flags("volume info", flags));
    return run<ops::VolumeLookup>(c, call, [vol, flags](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(v, volume_of(d, vol));
        XdrWriter w;
        put_volume_info(w, v, (flags & kVolGetPhysical) != 0);
        return w.take();
    });
}
Status vol_get_info(Connection& c, Call& call) { return vol_info(c, call, false); }
Status vol_get_info_flags(Connection& c, Call& call) { return vol_info(c, call, true); }

Status vol_get_path(Connection& c, Call& call) {
    VIREO_RPC_GET(vol, get_volume(call.args));
    return run<ops::VolumeLookup>(c, call, [vol](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(v, volume_of(d, vol));
        return string_body(v.path);
    });
}

Status vol_get_xml_desc(Connection& c, Call& call) {
    VIREO_RPC_GET(vol, get_volume(call.args));
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags != 0) return std::unexpected(unsupported_flags("volume XML", flags));
    return run<ops::VolumeXml>(c, call, [vol](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(xml, d.call<ops::VolumeXml>({.pool = vol.pool, .vol = vol.name}));
        return string_body(xml);
    });
}

// --- volume changes ------------------------------------------------------------------------------

Status vol_create_xml(Connection& c, Call& call) {
    VIREO_RPC_GET(pool, get_pool(call.args));
    VIREO_RPC_GET(xml, call.args.string());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~(kVolCreatePreallocMetadata | kVolCreateReflink))
        return std::unexpected(unsupported_flags("vol-create", flags));
    ops::VolumeCreate::Request req{.pool = pool.name, .xml = std::move(xml),
                                   .prealloc_metadata = (flags & kVolCreatePreallocMetadata) != 0,
                                   .reflink = (flags & kVolCreateReflink) != 0};
    return run<ops::VolumeCreate>(c, call, [req](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(v, d.call<ops::VolumeCreate>(req));
        return volume_body(v);
    });
}

Status vol_create_xml_from(Connection& c, Call& call) {
    VIREO_RPC_GET(pool, get_pool(call.args));
    VIREO_RPC_GET(xml, call.args.string());
    VIREO_RPC_GET(from, get_volume(call.args));
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~(kVolCreatePreallocMetadata | kVolCreateReflink))
        return std::unexpected(unsupported_flags("vol-create-from", flags));
    ops::VolumeCreateFrom::Request req{.pool = pool.name, .xml = std::move(xml), .source_pool = from.pool,
                                       .source_volume = from.name,
                                       .prealloc_metadata = (flags & kVolCreatePreallocMetadata) != 0,
                                       .reflink = (flags & kVolCreateReflink) != 0};
    return run<ops::VolumeCreateFrom>(c, call, [req](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(v, d.call<ops::VolumeCreateFrom>(req));
        return volume_body(v);
    });
}

Status vol_delete(Connection& c, Call& call) {
    VIREO_RPC_GET(vol, get_volume(call.args));
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags != 0) return std::unexpected(unsupported_flags("vol-delete (--wipe-storage, --delete-snapshots)", flags));
    return run<ops::VolumeDelete>(c, call, [vol](driver::Driver& d) -> Result<std::string> {
        VIREO_TRY(d.call<ops::VolumeDelete>({.pool = vol.pool, .vol = vol.name}));
        return empty();
    });
}

Status wipe(Connection& c, Call& call, const VolumeRef& vol, std::uint32_t algorithm, std::uint32_t flags) {
    if (flags != 0) return std::unexpected(unsupported_flags("vol-wipe", flags));
    driver::WipeAlgorithm a = driver::WipeAlgorithm::Zero;
    switch (algorithm) {
        case kWipeZero: a = driver::WipeAlgorithm::Zero; break;
        case kWipeRandom: a = driver::WipeAlgorithm::Random; break;
        case kWipeTrim: a = driver::WipeAlgorithm::Trim; break;
        default:
            return fail(ErrorCode::Unsupported,
                        "vol-wipe: algorithm {} is not supported (zero, random and trim are)", algorithm);
    }
    ops::VolumeWipe::Request req{.pool = vol.pool, .vol = vol.name, .algorithm = a};
    return run_empty<ops::VolumeWipe>(c, call, std::move(req));
}

Status vol_wipe(Connection& c, Call& call) {
    VIREO_RPC_GET(vol, get_volume(call.args));
    VIREO_RPC_GET(flags, call.args.u32());
    return wipe(c, call, vol, kWipeZero, flags);
}

Status vol_wipe_pattern(Connection& c, Call& call) {
    VIREO_RPC_GET(vol, get_volume(call.args));
    VIREO_RPC_GET(algorithm, call.args.u32());
    VIREO_RPC_GET(flags, call.args.u32());
    return wipe(c, call, vol, algorithm, flags);
}

Status vol_resize(Connection& c, Call& call) {
    VIREO_RPC_GET(vol, get_volume(call.args));
    VIREO_RPC_GET(capacity, call.args.u64());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~(kVolResizeAllocate | kVolResizeDelta | kVolResizeShrink))
        return std::unexpected(unsupported_flags("vol-resize", flags));
    ops::VolumeResize::Request req{.pool = vol.pool, .vol = vol.name, .capacity = capacity,
                                   .delta = (flags & kVolResizeDelta) != 0,
                                   .shrink = (flags & kVolResizeShrink) != 0,
                                   .allocate = (flags & kVolResizeAllocate) != 0};
    return run_empty<ops::VolumeResize>(c, call, std::move(req));
}

// --- the table ----------------------------------------------------------------------------------

#define VIREO_OP(T) op_of(Tag<ops::T>{})

const std::array kStorage = std::to_array<ProcDef>({
    {Proc::ConnectListAllStoragePools, "connect_list_all_storage_pools", VIREO_OP(PoolList), list_all_pools},
    {Proc::ConnectNumOfStoragePools, "connect_num_of_storage_pools", VIREO_OP(PoolList), num_of_pools},
    {Proc::ConnectListStoragePools, "connect_list_storage_pools", VIREO_OP(PoolList), list_pools},
    {Proc::ConnectNumOfDefinedStoragePools, "connect_num_of_defined_storage_pools", VIREO_OP(PoolList),
     num_of_defined_pools},
    {Proc::ConnectListDefinedStoragePools, "connect_list_defined_storage_pools", VIREO_OP(PoolList),
     list_defined_pools},
    {Proc::StoragePoolLookupByName, "storage_pool_lookup_by_name", VIREO_OP(PoolLookup), pool_lookup_by_name},
    {Proc::StoragePoolLookupByUuid, "storage_pool_lookup_by_uuid", VIREO_OP(PoolLookup), pool_lookup_by_uuid},
    {Proc::StoragePoolLookupByVolume, "storage_pool_lookup_by_volume", VIREO_OP(PoolLookup), pool_lookup_by_volume},
    {Proc::StoragePoolLookupByTargetPath, "storage_pool_lookup_by_target_path", VIREO_OP(PoolList),
     pool_lookup_by_target_path},
    {Proc::StoragePoolGetInfo, "storage_pool_get_info", VIREO_OP(PoolLookup), pool_get_info},
    {Proc::StoragePoolGetAutostart, "storage_pool_get_autostart", VIREO_OP(PoolLookup), pool_get_autostart},
    {Proc::StoragePoolIsActive, "storage_pool_is_active", VIREO_OP(PoolLookup), pool_is_active},
    {Proc::StoragePoolIsPersistent, "storage_pool_is_persistent", VIREO_OP(PoolLookup), pool_is_persistent},
    {Proc::StoragePoolGetXmlDesc, "storage_pool_get_xml_desc", VIREO_OP(PoolXml), pool_get_xml_desc},
    {Proc::StoragePoolDefineXml, "storage_pool_define_xml", VIREO_OP(PoolDefine), pool_define_xml},
    {Proc::StoragePoolCreateXml, "storage_pool_create_xml", VIREO_OP(PoolCreate), pool_create_xml},
    {Proc::StoragePoolCreate, "storage_pool_create", VIREO_OP(PoolStart), pool_create},
    {Proc::StoragePoolBuild, "storage_pool_build", VIREO_OP(PoolBuild), pool_build},
    {Proc::StoragePoolDestroy, "storage_pool_destroy", VIREO_OP(PoolDestroy), pool_destroy},
    {Proc::StoragePoolUndefine, "storage_pool_undefine", VIREO_OP(PoolUndefine), pool_undefine},
    {Proc::StoragePoolDelete, "storage_pool_delete", VIREO_OP(PoolDelete), pool_delete},
    {Proc::StoragePoolRefresh, "storage_pool_refresh", VIREO_OP(PoolRefresh), pool_refresh},
    {Proc::StoragePoolSetAutostart, "storage_pool_set_autostart", VIREO_OP(PoolSetAutostart), pool_set_autostart},
    {Proc::StoragePoolListAllVolumes, "storage_pool_list_all_volumes", VIREO_OP(VolumeList), list_all_volumes},
    {Proc::StoragePoolNumOfVolumes, "storage_pool_num_of_volumes", VIREO_OP(VolumeList), num_of_volumes},
    {Proc::StoragePoolListVolumes, "storage_pool_list_volumes", VIREO_OP(VolumeList), list_volumes},
    {Proc::StorageVolLookupByName, "storage_vol_lookup_by_name", VIREO_OP(VolumeLookup), vol_lookup_by_name},
    {Proc::StorageVolLookupByKey, "storage_vol_lookup_by_key", VIREO_OP(VolumeLookupByKey), vol_lookup_by_key},
    {Proc::StorageVolLookupByPath, "storage_vol_lookup_by_path", VIREO_OP(VolumeLookupByKey), vol_lookup_by_path},
    {Proc::StorageVolGetInfo, "storage_vol_get_info", VIREO_OP(VolumeLookup), vol_get_info},
    {Proc::StorageVolGetInfoFlags, "storage_vol_get_info_flags", VIREO_OP(VolumeLookup), vol_get_info_flags},
    {Proc::StorageVolGetPath, "storage_vol_get_path", VIREO_OP(VolumeLookup), vol_get_path},
    {Proc::StorageVolGetXmlDesc, "storage_vol_get_xml_desc", VIREO_OP(VolumeXml), vol_get_xml_desc},
    {Proc::StorageVolCreateXml, "storage_vol_create_xml", VIREO_OP(VolumeCreate), vol_create_xml},
    {Proc::StorageVolCreateXmlFrom, "storage_vol_create_xml_from", VIREO_OP(VolumeCreateFrom), vol_create_xml_from},
    {Proc::StorageVolDelete, "storage_vol_delete", VIREO_OP(VolumeDelete), vol_delete},
    {Proc::StorageVolWipe, "storage_vol_wipe", VIREO_OP(VolumeWipe), vol_wipe},
    {Proc::StorageVolWipePattern, "storage_vol_wipe_pattern", VIREO_OP(VolumeWipe), vol_wipe_pattern},
    {Proc::StorageVolResize, "storage_vol_resize", VIREO_OP(VolumeResize), vol_resize},
    {Proc::StorageVolUpload, "storage_vol_upload", VIREO_OP(VolumeUpload), vol_upload},
    {Proc::StorageVolDownload, "storage_vol_download", VIREO_OP(VolumeDownload), vol_download},
});
#undef VIREO_OP

}  // namespace

std::span<const ProcDef> storage_procedures() { return kStorage; }

}  // namespace vireo::rpc
