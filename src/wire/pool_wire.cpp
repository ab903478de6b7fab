#include "wire/pool_wire.hpp"

#include <array>
#include <tuple>
#include <utility>

#include "wire/http.hpp"
#include "wire/wire.hpp"
#include "wire/wire_fields.hpp"

namespace vireo::wire {

using nlohmann::json;

namespace {

constexpr std::array<std::pair<driver::PoolState, std::string_view>, 5> kPoolStates{{
    {driver::PoolState::Inactive, "inactive"},
    {driver::PoolState::Building, "building"},
    {driver::PoolState::Running, "running"},
    {driver::PoolState::Degraded, "degraded"},
    {driver::PoolState::Inaccessible, "inaccessible"},
}};

constexpr std::array<std::pair<driver::VolumeType, std::string_view>, 6> kVolumeTypes{{
    {driver::VolumeType::File, "file"},
    {driver::VolumeType::Block, "block"},
    {driver::VolumeType::Dir, "dir"},
    {driver::VolumeType::Network, "network"},
    {driver::VolumeType::NetDir, "netdir"},
    {driver::VolumeType::Ploop, "ploop"},
}};

template <class E, std::size_t N>
std::string_view name_of(const std::array<std::pair<E, std::string_view>, N>& table, E value) {
    for (const auto& [v, n] : table)
        if (v == value) return n;
    return "unknown";
}

template <class E, std::size_t N>
std::optional<E> value_of(const std::array<std::pair<E, std::string_view>, N>& table, std::string_view name) {
    for (const auto& [v, n] : table)
        if (n == name) return v;
    return std::nullopt;
}

using driver::PoolSummary;
using driver::VolumeSummary;
using fields::get;
using fields::missing;
using fields::optional;
using fields::required;

// The plain fields of the storage wire structs (uuid, state and type, which
// need a conversion, are handled by hand).
const auto kPoolFields = std::make_tuple(
    required("name", &PoolSummary::name), optional("type", &PoolSummary::type),
    optional("persistent", &PoolSummary::persistent), optional("autostart", &PoolSummary::autostart),
    optional("capacity", &PoolSummary::capacity), optional("allocation", &PoolSummary::allocation),
    optional("available", &PoolSummary::available), optional("target_path", &PoolSummary::target_path));
const auto kVolumeFields = std::make_tuple(
    required("name", &VolumeSummary::name), required("pool", &VolumeSummary::pool),
    optional("key", &VolumeSummary::key), optional("path", &VolumeSummary::path),
    optional("format", &VolumeSummary::format), optional("capacity", &VolumeSummary::capacity),
    optional("allocation", &VolumeSummary::allocation), optional("physical", &VolumeSummary::physical));

}  // namespace

std::string_view pool_state_wire_name(driver::PoolState s) {
    return name_of(kPoolStates, s);
}
std::optional<driver::PoolState> pool_state_from_wire(std::string_view name) {
    return value_of(kPoolStates, name);
}
std::string_view volume_type_wire_name(driver::VolumeType t) {
    return name_of(kVolumeTypes, t);
}
std::optional<driver::VolumeType> volume_type_from_wire(std::string_view name) {
    return value_of(kVolumeTypes, name);
}
// The algorithm names and the transfer range are the volume operations'
// (driver/ops/volume.hpp, through the HTTP binding): one table, one encoding.
std::string_view wipe_algorithm_name(driver::WipeAlgorithm a) {
    return http::enum_name(a);
}
std::optional<driver::WipeAlgorithm> wipe_algorithm_from_name(std::string_view name) {
    auto a = http::enum_from_name<driver::WipeAlgorithm>(name);
    return a ? std::optional(*a) : std::nullopt;
}

json to_json(const driver::PoolSummary& p) {
    json j = fields::to_json(p, kPoolFields);
    j["uuid"] = p.uuid.str();
    j["state"] = pool_state_wire_name(p.state);
    return j;
}

json to_json(const driver::VolumeSummary& v) {
    json j = fields::to_json(v, kVolumeFields);
    j["type"] = volume_type_wire_name(v.type);
    return j;
}

Result<driver::PoolSummary> pool_from_json(const json& j) {
    static constexpr std::string_view what = "pool";
    driver::PoolSummary p;
    VIREO_TRY(fields::from_json(j, what, kPoolFields, p));
    std::string uuid, state;
    if (!get(j, "uuid", uuid)) return missing(what, "uuid");
    auto parsed = Uuid::parse(uuid);
    if (!parsed) return missing(what, "uuid");
    p.uuid = *parsed;
    if (!get(j, "state", state)) return missing(what, "state");
    auto st = pool_state_from_wire(state);
    if (!st) return missing(what, "state");
    p.state = *st;
    return p;
}

Result<driver::VolumeSummary> volume_from_json(const json& j) {
    static constexpr std::string_view what = "volume";
    driver::VolumeSummary v;
    VIREO_TRY(fields::from_json(j, what, kVolumeFields, v));
    std::string type;
    if (!get(j, "type", type)) return missing(what, "type");
    auto t = volume_type_from_wire(type);
    if (!t) return missing(what, "type");
    v.type = *t;
    return v;
}

std::string transfer_query(const driver::TransferRange& r) {
    auto req = http::encode_request<driver::ops::VolumeDownload>(
        {.pool = "p", .vol = "v", .offset = r.offset, .length = r.length, .sparse = r.sparse});
    return req ? req->target.substr(req->target.find('?') + 1) : std::string{};
}

Result<driver::TransferRange> transfer_from_query(
    const std::map<std::string, std::string, std::less<>>& query) {
    const http::Match m{driver::ops::index_of<driver::ops::VolumeDownload>, {"pools", "p", "volumes", "v", "download"},
                        query};
    auto r = http::decode_request<driver::ops::VolumeDownload>(m, {});
    if (!r) return std::unexpected(r.error());
    return driver::TransferRange{.offset = r->offset, .length = r->length, .sparse = r->sparse};
}

std::string stream_hole(std::uint64_t length) {
    return json{{"hole", length}}.dump();
}
std::string stream_end() {
    return R"({"end":true})";
}
std::string stream_abort(std::string_view why) {
    return json{{"abort", why}}.dump();
}
std::string stream_error(const Error& e) {
    return json{{"error", to_json(e)}}.dump();
}
std::string stream_done() {
    return R"({"done":true})";
}

Result<StreamControl> parse_stream_control(std::string_view text) {
    auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    auto bad = [&] {
        return fail(ErrorCode::Protocol, "malformed volume stream message: '{}'", text.substr(0, 200));
    };
    if (!j.is_object() || j.size() != 1) return bad();
    StreamControl c;
    if (auto it = j.find("hole"); it != j.end()) {
        if (!it->is_number_unsigned() || it->get<std::uint64_t>() == 0) return bad();
        c.kind = StreamControl::Kind::Hole;
        c.hole = it->get<std::uint64_t>();
        return c;
    }
    if (j.contains("end")) {
        c.kind = StreamControl::Kind::End;
        return c;
    }
    if (j.contains("done")) {
        c.kind = StreamControl::Kind::Done;
        return c;
    }
    if (auto it = j.find("abort"); it != j.end()) {
        c.kind = StreamControl::Kind::Abort;
        c.error =
            Error{ErrorCode::OperationFailed,
                  fmt::format("the client aborted the upload: {}",
                              it->is_string() ? it->get<std::string>() : std::string("no reason given"))};
        return c;
    }
    if (auto it = j.find("error"); it != j.end()) {
        c.kind = StreamControl::Kind::Error;
        c.error = error_from_body(500, it->dump());
        return c;
    }
    return bad();
}

}  // namespace vireo::wire
