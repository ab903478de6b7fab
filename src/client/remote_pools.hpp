// RemotePools: the storage half of the RemoteDriver (Driver::pools() of
// qemu:// URIs). Pool and volume calls are HTTP requests on the driver's
// connection (routes under /v1/pools, see docs/api/openapi.yaml); volume
// uploads and downloads each open their own WebSocket (wire/pool_wire.hpp
// has the framing), so a transfer never holds a whole volume in memory and
// never blocks the driver's other calls.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "client/api_calls.hpp"
#include "client/transport.hpp"
#include "driver/pool_api.hpp"

namespace vireo::client {

class RemotePools final : public driver::PoolApi {
public:
    // Requests go through the owner's helpers (its connection); `api` must
    // outlive this object.
    RemotePools(const ApiCalls& api, std::shared_ptr<Transport> transport);

    Result<std::vector<driver::PoolSummary>> list_pools() override;
    Result<driver::PoolSummary> lookup_pool(std::string_view ref) override;
    Result<std::string> pool_xml(std::string_view ref, bool inactive) override;
    Result<driver::PoolSummary> define_pool(std::string_view xml) override;
    Status undefine_pool(std::string_view ref) override;
    Result<driver::PoolSummary> create_pool(std::string_view xml, bool build,
                                            driver::PoolBuildFlags flags) override;
    Status build_pool(std::string_view ref, driver::PoolBuildFlags flags) override;
    Status start_pool(std::string_view ref, bool build, driver::PoolBuildFlags flags) override;
    Status destroy_pool(std::string_view ref) override;
    Status delete_pool(std::string_view ref) override;
    Status set_pool_autostart(std::string_view ref, bool enabled) override;
    Status refresh_pool(std::string_view ref) override;
    Result<std::vector<driver::VolumeSummary>> list_volumes(std::string_view pool) override;
    Result<driver::VolumeSummary> lookup_volume(std::string_view pool, std::string_view vol) override;
    Result<std::string> volume_xml(std::string_view pool, std::string_view vol) override;
    Result<driver::VolumeSummary> create_volume(std::string_view pool, std::string_view xml,
                                                driver::VolumeCreateFlags flags) override;
    Result<driver::VolumeSummary> create_volume_from(std::string_view pool, std::string_view xml,
                                                     std::string_view src_pool, std::string_view src_vol,
                                                     driver::VolumeCreateFlags flags) override;
    Status delete_volume(std::string_view pool, std::string_view vol) override;
    Status wipe_volume(std::string_view pool, std::string_view vol, driver::WipeAlgorithm algorithm) override;
    Status resize_volume(std::string_view pool, std::string_view vol, std::uint64_t capacity,
                         driver::VolumeResizeFlags flags) override;
    Status download_volume(std::string_view pool, std::string_view vol, driver::TransferRange range,
                           const driver::StreamSink& sink) override;
    Status upload_volume(std::string_view pool, std::string_view vol, driver::TransferRange range,
                         const driver::StreamSource& source) override;

    // "/v1/pools/<ref>" and "/v1/pools/<ref>/volumes/<vol>", percent-encoded.
    static std::string pool_path(std::string_view ref);
    static std::string volume_path(std::string_view pool, std::string_view vol);

private:
    const ApiCalls& api_;
    std::shared_ptr<Transport> transport_;
};

}  // namespace vireo::client
