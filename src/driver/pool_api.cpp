// Names of the pool_types.hpp enums, as virsh prints them, and the PoolApi
// wrappers over the pool and volume operations.
#include "driver/pool_api.hpp"

#include "driver/driver.hpp"

namespace vireo::driver {

std::string_view pool_state_name(PoolState s) {
    switch (s) {
    case PoolState::Inactive: return "inactive";
    case PoolState::Building: return "building";
    case PoolState::Running: return "running";
    case PoolState::Degraded: return "degraded";
    case PoolState::Inaccessible: return "inaccessible";
    }
    return "unknown";
}

std::string_view volume_type_name(VolumeType t) {
    switch (t) {
    case VolumeType::File: return "file";
    case VolumeType::Block: return "block";
    case VolumeType::Dir: return "dir";
    case VolumeType::Network: return "network";
    case VolumeType::NetDir: return "netdir";
    case VolumeType::Ploop: return "ploop";
    }
    return "unknown";
}

// --- PoolApi: one line per operation ----------------------------------------------------

Result<std::vector<PoolSummary>> PoolApi::list_pools() { return conn_.call<ops::PoolList>({}); }
Result<PoolSummary> PoolApi::lookup_pool(std::string_view ref) { return conn_.call<ops::PoolLookup>({std::string(ref)}); }
Result<std::string> PoolApi::pool_xml(std::string_view ref, bool inactive) {
    return conn_.call<ops::PoolXml>({std::string(ref), inactive});
}
Result<PoolSummary> PoolApi::define_pool(std::string_view xml) { return conn_.call<ops::PoolDefine>({std::string(xml)}); }
Status PoolApi::undefine_pool(std::string_view ref) { return conn_.call<ops::PoolUndefine>({std::string(ref)}); }
Result<PoolSummary> PoolApi::create_pool(std::string_view xml, bool build, PoolBuildFlags f) {
    return conn_.call<ops::PoolCreate>({std::string(xml), build, f.overwrite, f.no_overwrite});
}
Status PoolApi::build_pool(std::string_view ref, PoolBuildFlags f) {
    return conn_.call<ops::PoolBuild>({std::string(ref), f.overwrite, f.no_overwrite});
}
Status PoolApi::start_pool(std::string_view ref, bool build, PoolBuildFlags f) {
    return conn_.call<ops::PoolStart>({std::string(ref), build, f.overwrite, f.no_overwrite});
}
Status PoolApi::destroy_pool(std::string_view ref) { return conn_.call<ops::PoolDestroy>({std::string(ref)}); }
Status PoolApi::delete_pool(std::string_view ref) { return conn_.call<ops::PoolDelete>({std::string(ref)}); }
Status PoolApi::set_pool_autostart(std::string_view ref, bool enabled) {
    return conn_.call<ops::PoolSetAutostart>({std::string(ref), enabled});
}
Status PoolApi::refresh_pool(std::string_view ref) { return conn_.call<ops::PoolRefresh>({std::string(ref)}); }

Result<std::vector<VolumeSummary>> PoolApi::list_volumes(std::string_view pool) {
    return conn_.call<ops::VolumeList>({std::string(pool)});
}
Result<VolumeSummary> PoolApi::lookup_volume(std::string_view pool, std::string_view vol) {
    if (pool.empty()) return conn_.call<ops::VolumeLookupByKey>({std::string(vol)});
    return conn_.call<ops::VolumeLookup>({std::string(pool), std::string(vol)});
}
Result<std::string> PoolApi::volume_xml(std::string_view pool, std::string_view vol) {
    return conn_.call<ops::VolumeXml>({std::string(pool), std::string(vol)});
}
Result<VolumeSummary> PoolApi::create_volume(std::string_view pool, std::string_view xml, VolumeCreateFlags f) {
    return conn_.call<ops::VolumeCreate>({std::string(pool), std::string(xml), f.prealloc_metadata, f.reflink});
}
Result<VolumeSummary> PoolApi::create_volume_from(std::string_view pool, std::string_view xml,
                                                  std::string_view src_pool, std::string_view src_vol,
                                                  VolumeCreateFlags f) {
    return conn_.call<ops::VolumeCreateFrom>({std::string(pool), std::string(xml), std::string(src_pool),
                                              std::string(src_vol), f.prealloc_metadata, f.reflink});
}
Status PoolApi::delete_volume(std::string_view pool, std::string_view vol) {
    return conn_.call<ops::VolumeDelete>({std::string(pool), std::string(vol)});
}
Status PoolApi::wipe_volume(std::string_view pool, std::string_view vol, WipeAlgorithm algorithm) {
    return conn_.call<ops::VolumeWipe>({std::string(pool), std::string(vol), algorithm});
}
Status PoolApi::resize_volume(std::string_view pool, std::string_view vol, std::uint64_t capacity,
                              VolumeResizeFlags f) {
    return conn_.call<ops::VolumeResize>({std::string(pool), std::string(vol), capacity, f.delta, f.shrink, f.allocate});
}
Status PoolApi::download_volume(std::string_view pool, std::string_view vol, TransferRange r, const StreamSink& sink) {
    return conn_.call<ops::VolumeDownload>({std::string(pool), std::string(vol), r.offset, r.length, r.sparse, sink});
}
Status PoolApi::upload_volume(std::string_view pool, std::string_view vol, TransferRange r,
                              const StreamSource& source) {
    return conn_.call<ops::VolumeUpload>({std::string(pool), std::string(vol), r.offset, r.length, r.sparse, source});
}

}  // namespace vireo::driver
