// Pools and volumes in libvirt's remote protocol: remote_nonnull_storage_pool
// (name, uuid) and remote_nonnull_storage_vol (pool, name, key), decoded
// and encoded, for the procedures of storage.cpp and the volume streams of
// streams.cpp.
#pragma once

#include <string>
#include <string_view>

#include "driver/pool_types.hpp"
#include "rpc/xdr.hpp"

namespace vireo::rpc {

struct PoolRef {
    std::string name;
    Uuid uuid;
};

// Volumes are addressed by (pool, name) in the operation table, as libvirt's
// servers look them up.
struct VolumeRef {
    std::string pool;
    std::string name;
    std::string key;
};

void put_pool(XdrWriter& w, const driver::PoolSummary& p);
void put_volume(XdrWriter& w, const driver::VolumeSummary& v);
Result<PoolRef> get_pool(XdrReader& r);
Result<VolumeRef> get_volume(XdrReader& r);

// The "not supported" error of flags a call does not know.
Error unsupported_flags(std::string_view what, std::uint32_t flags);

}  // namespace vireo::rpc
