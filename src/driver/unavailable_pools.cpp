#include "driver/unavailable_pools.hpp"

namespace vireo::driver {

namespace {

class UnavailablePools final : public PoolApi {
public:
    explicit UnavailablePools(Error why) : why_(std::move(why)) {}

    Result<std::vector<PoolSummary>> list_pools() override { return no(); }
    Result<PoolSummary> lookup_pool(std::string_view) override { return no(); }
    Result<std::string> pool_xml(std::string_view, bool) override { return no(); }
    Result<PoolSummary> define_pool(std::string_view) override { return no(); }
    Status undefine_pool(std::string_view) override { return no(); }
    Result<PoolSummary> create_pool(std::string_view, bool, PoolBuildFlags) override { return no(); }
    Status build_pool(std::string_view, PoolBuildFlags) override { return no(); }
    Status start_pool(std::string_view, bool, PoolBuildFlags) override { return no(); }
    Status destroy_pool(std::string_view) override { return no(); }
    Status delete_pool(std::string_view) override { return no(); }
    Status set_pool_autostart(std::string_view, bool) override { return no(); }
    Status refresh_pool(std::string_view) override { return no(); }
    Result<std::vector<VolumeSummary>> list_volumes(std::string_view) override { return no(); }
    Result<VolumeSummary> lookup_volume(std::string_view, std::string_view) override { return no(); }
    Result<std::string> volume_xml(std::string_view, std::string_view) override { return no(); }
    Result<VolumeSummary> create_volume(std::string_view, std::string_view, VolumeCreateFlags) override {
        return no();
    }
    Result<VolumeSummary> create_volume_from(std::string_view, std::string_view, std::string_view, std::string_view,
                                             VolumeCreateFlags) override {
        return no();
    }
    Status delete_volume(std::string_view, std::string_view) override { return no(); }
    Status wipe_volume(std::string_view, std::string_view, WipeAlgorithm) override { return no(); }
    Status resize_volume(std::string_view, std::string_view, std::uint64_t, VolumeResizeFlags) override {
        return no();
    }
    Status download_volume(std::string_view, std::string_view, TransferRange, const StreamSink&) override {
        return no();
    }
    Status upload_volume(std::string_view, std::string_view, TransferRange, const StreamSource&) override {
        return no();
    }

private:
    [[nodiscard]] std::unexpected<Error> no() const { return std::unexpected(why_); }
    Error why_;
};

}  // namespace

std::unique_ptr<PoolApi> make_unavailable_pools(Error why) { return std::make_unique<UnavailablePools>(std::move(why)); }

}  // namespace vireo::driver
