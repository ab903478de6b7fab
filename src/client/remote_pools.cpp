#include "client/remote_pools.hpp"

#include <nlohmann/json.hpp>

#include "wire/pool_wire.hpp"
#include "client/volume_stream.hpp"
#include "wire/wire.hpp"

namespace vireo::client {

using nlohmann::json;

namespace {

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kXml = "application/xml";

std::string flag(bool b) {
    return b ? "1" : "0";
}

json build_body(driver::PoolBuildFlags f) {
    return json{{"overwrite", f.overwrite}, {"no_overwrite", f.no_overwrite}};
}

std::string create_query(driver::VolumeCreateFlags f) {
    return fmt::format("prealloc_metadata={}&reflink={}", flag(f.prealloc_metadata), flag(f.reflink));
}

}  // namespace

RemotePools::RemotePools(const ApiCalls& api, std::shared_ptr<Transport> transport)
    : api_(api), transport_(std::move(transport)) {}

std::string RemotePools::pool_path(std::string_view ref) {
    return fmt::format("{}/pools/{}", wire::kApiPrefix, wire::percent_encode(ref));
}

std::string RemotePools::volume_path(std::string_view pool, std::string_view vol) {
    return fmt::format("{}/volumes/{}", pool_path(pool), wire::percent_encode(vol));
}

// --- pools ---------------------------------------------------------------------

Result<std::vector<driver::PoolSummary>> RemotePools::list_pools() {
    auto j = api_.call_json("GET", fmt::format("{}/pools", wire::kApiPrefix));
    if (!j) return std::unexpected(j.error());
    return decode_array<driver::PoolSummary>(*j, wire::pool_from_json);
}

Result<driver::PoolSummary> RemotePools::lookup_pool(std::string_view ref) {
    return api_.call_decoded(wire::pool_from_json, "GET", pool_path(ref));
}

Result<std::string> RemotePools::pool_xml(std::string_view ref, bool inactive) {
    auto res = api_.call("GET", fmt::format("{}/xml?inactive={}", pool_path(ref), flag(inactive)), {}, {});
    if (!res) return std::unexpected(res.error());
    return std::move(res->body);
}

Result<driver::PoolSummary> RemotePools::define_pool(std::string_view xml) {
    return api_.call_decoded(wire::pool_from_json, "POST", fmt::format("{}/pools", wire::kApiPrefix), xml,
                             kXml);
}

Status RemotePools::undefine_pool(std::string_view ref) {
    return api_.call_status("DELETE", pool_path(ref));
}

Result<driver::PoolSummary> RemotePools::create_pool(std::string_view xml, bool build,
                                                     driver::PoolBuildFlags flags) {
    return api_.call_decoded(
        wire::pool_from_json, "POST",
        fmt::format("{}/pools:create?build={}&overwrite={}&no_overwrite={}", wire::kApiPrefix, flag(build),
                    flag(flags.overwrite), flag(flags.no_overwrite)),
        xml, kXml);
}

Status RemotePools::build_pool(std::string_view ref, driver::PoolBuildFlags flags) {
    return api_.call_status("POST", pool_path(ref) + "/build", build_body(flags).dump(), kJson);
}

Status RemotePools::start_pool(std::string_view ref, bool build, driver::PoolBuildFlags flags) {
    json body = build_body(flags);
    body["build"] = build;
    return api_.call_status("POST", pool_path(ref) + "/start", body.dump(), kJson);
}

Status RemotePools::destroy_pool(std::string_view ref) {
    return api_.call_status("POST", pool_path(ref) + "/destroy");
}

Status RemotePools::delete_pool(std::string_view ref) {
    return api_.call_status("POST", pool_path(ref) + "/delete");
}

Status RemotePools::set_pool_autostart(std::string_view ref, bool enabled) {
    return api_.call_status("PUT", pool_path(ref) + "/autostart", json{{"enabled", enabled}}.dump(), kJson);
}

Status RemotePools::refresh_pool(std::string_view ref) {
    return api_.call_status("POST", pool_path(ref) + "/refresh");
}

// --- volumes -------------------------------------------------------------------

Result<std::vector<driver::VolumeSummary>> RemotePools::list_volumes(std::string_view pool) {
    auto j = api_.call_json("GET", pool_path(pool) + "/volumes");
    if (!j) return std::unexpected(j.error());
    return decode_array<driver::VolumeSummary>(*j, wire::volume_from_json);
}

Result<driver::VolumeSummary> RemotePools::lookup_volume(std::string_view pool, std::string_view vol) {
    // No pool: a key or path, looked up in every pool.
    if (pool.empty())
        return api_.call_decoded(wire::volume_from_json, "GET",
                                 fmt::format("{}/volumes/{}", wire::kApiPrefix, wire::percent_encode(vol)));
    return api_.call_decoded(wire::volume_from_json, "GET", volume_path(pool, vol));
}

Result<std::string> RemotePools::volume_xml(std::string_view pool, std::string_view vol) {
    auto res = api_.call("GET", volume_path(pool, vol) + "/xml", {}, {});
    if (!res) return std::unexpected(res.error());
    return std::move(res->body);
}

Result<driver::VolumeSummary> RemotePools::create_volume(std::string_view pool, std::string_view xml,
                                                         driver::VolumeCreateFlags flags) {
    return api_.call_decoded(wire::volume_from_json, "POST",
                             fmt::format("{}/volumes?{}", pool_path(pool), create_query(flags)), xml, kXml);
}

Result<driver::VolumeSummary> RemotePools::create_volume_from(std::string_view pool, std::string_view xml,
                                                              std::string_view src_pool,
                                                              std::string_view src_vol,
                                                              driver::VolumeCreateFlags flags) {
    return api_.call_decoded(
        wire::volume_from_json, "POST",
        fmt::format("{}/volumes:from?source_pool={}&source_volume={}&{}", pool_path(pool),
                    wire::percent_encode(src_pool), wire::percent_encode(src_vol), create_query(flags)),
        xml, kXml);
}

Status RemotePools::delete_volume(std::string_view pool, std::string_view vol) {
    return api_.call_status("DELETE", volume_path(pool, vol));
}

Status RemotePools::wipe_volume(std::string_view pool, std::string_view vol,
                                driver::WipeAlgorithm algorithm) {
    return api_.call_status("POST", volume_path(pool, vol) + "/wipe",
                            json{{"algorithm", wire::wipe_algorithm_name(algorithm)}}.dump(), kJson);
}

Status RemotePools::resize_volume(std::string_view pool, std::string_view vol, std::uint64_t capacity,
                                  driver::VolumeResizeFlags flags) {
    json body{{"capacity", capacity},
              {"delta", flags.delta},
              {"shrink", flags.shrink},
              {"allocate", flags.allocate}};
    return api_.call_status("POST", volume_path(pool, vol) + "/resize", body.dump(), kJson);
}

Status RemotePools::download_volume(std::string_view pool, std::string_view vol, driver::TransferRange range,
                                    const driver::StreamSink& sink) {
    return download_stream(
        transport_, fmt::format("{}/download?{}", volume_path(pool, vol), wire::transfer_query(range)), sink);
}

Status RemotePools::upload_volume(std::string_view pool, std::string_view vol, driver::TransferRange range,
                                  const driver::StreamSource& source) {
    return upload_stream(
        transport_, fmt::format("{}/upload?{}", volume_path(pool, vol), wire::transfer_query(range)), source);
}

}  // namespace vireo::client
