#include "pool/pool_ops.hpp"

namespace vireo::pool {

namespace {

namespace ops = driver::ops;

// Serve Op with `fn(manager, request)`.
template <class Op, class F>
void serve(driver::Driver& conn, const PoolManagerSource& source, F fn) {
    conn.on<Op>([source, fn](const typename Op::Request& r) -> Result<typename Op::Reply> {
        auto mgr = source();
        if (!mgr) return std::unexpected(mgr.error());
        return fn(**mgr, r);
    });
}

driver::TransferRange range_of(const auto& r) { return {.offset = r.offset, .length = r.length, .sparse = r.sparse}; }

}  // namespace

void install_pool_ops(driver::Driver& c, const PoolManagerSource& s) {
    // pools
    serve<ops::PoolList>(c, s, [](PoolManager& m, const auto&) { return m.list_pools(); });
    serve<ops::PoolLookup>(c, s, [](PoolManager& m, const auto& r) { return m.lookup_pool(r.pool); });
    serve<ops::PoolXml>(c, s, [](PoolManager& m, const auto& r) { return m.pool_xml(r.pool, r.inactive); });
    serve<ops::PoolDefine>(c, s, [](PoolManager& m, const auto& r) { return m.define_pool(r.xml); });
    serve<ops::PoolUndefine>(c, s, [](PoolManager& m, const auto& r) { return m.undefine_pool(r.pool); });
    serve<ops::PoolCreate>(c, s, [](PoolManager& m, const auto& r) {
        return m.create_pool(r.xml, r.build, {.overwrite = r.overwrite, .no_overwrite = r.no_overwrite});
    });
    serve<ops::PoolBuild>(c, s, [](PoolManager& m, const auto& r) {
        return m.build_pool(r.pool, {.overwrite = r.overwrite, .no_overwrite = r.no_overwrite});
    });
    serve<ops::PoolStart>(c, s, [](PoolManager& m, const auto& r) {
        return m.start_pool(r.pool, r.build, {.overwrite = r.overwrite, .no_overwrite = r.no_overwrite});
    });
    serve<ops::PoolDestroy>(c, s, [](PoolManager& m, const auto& r) { return m.destroy_pool(r.pool); });
    serve<ops::PoolDelete>(c, s, [](PoolManager& m, const auto& r) { return m.delete_pool(r.pool); });
    serve<ops::PoolSetAutostart>(c, s, [](PoolManager& m, const auto& r) { return m.set_pool_autostart(r.pool, r.enabled); });
    serve<ops::PoolRefresh>(c, s, [](PoolManager& m, const auto& r) { return m.refresh_pool(r.pool); });
    // volumes
    serve<ops::VolumeList>(c, s, [](PoolManager& m, const auto& r) { return m.list_volumes(r.pool); });
    serve<ops::VolumeLookup>(c, s, [](PoolManager& m, const auto& r) { return m.lookup_volume(r.pool, r.vol); });
    serve<ops::VolumeLookupByKey>(c, s, [](PoolManager& m, const auto& r) { return m.lookup_volume("", r.key); });
    serve<ops::VolumeXml>(c, s, [](PoolManager& m, const auto& r) { return m.volume_xml(r.pool, r.vol); });
    serve<ops::VolumeCreate>(c, s, [](PoolManager& m, const auto& r) {
        return m.create_volume(r.pool, r.xml, {.prealloc_metadata = r.prealloc_metadata, .reflink = r.reflink});
    });
    serve<ops::VolumeCreateFrom>(c, s, [](PoolManager& m, const auto& r) {
        return m.create_volume_from(r.pool, r.xml, r.source_pool, r.source_volume,
                                    {.prealloc_metadata = r.prealloc_metadata, .reflink = r.reflink});
    });
    serve<ops::VolumeDelete>(c, s, [](PoolManager& m, const auto& r) { return m.delete_volume(r.pool, r.vol); });
    serve<ops::VolumeWipe>(c, s, [](PoolManager& m, const auto& r) { return m.wipe_volume(r.pool, r.vol, r.algorithm); });
    serve<ops::VolumeResize>(c, s, [](PoolManager& m, const auto& r) {
        return m.resize_volume(r.pool, r.vol, r.capacity, {.delta = r.delta, .shrink = r.shrink, .allocate = r.allocate});
    });
    serve<ops::VolumeDownload>(c, s, [](PoolManager& m, const auto& r) {
        return m.download_volume(r.pool, r.vol, range_of(r), r.sink);
    });
    serve<ops::VolumeUpload>(c, s, [](PoolManager& m, const auto& r) {
        return m.upload_volume(r.pool, r.vol, range_of(r), r.source);
    });
}

}  // namespace vireo::pool
