#include "client/pool_wire.hpp"

#include <array>
#include <charconv>
#include <utility>

#include "client/wire.hpp"

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

constexpr std::array<std::pair<driver::WipeAlgorithm, std::string_view>, 3> kWipe{{
    {driver::WipeAlgorithm::Zero, "zero"},
    {driver::WipeAlgorithm::Random, "random"},
    {driver::WipeAlgorithm::Trim, "trim"},
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

std::unexpected<Error> malformed(std::string_view what, std::string_view field) {
    return fail(ErrorCode::Protocol, "malformed {} from vireod: field '{}' missing or of the wrong type", what,
                field);
}

bool get_string(const json& j, const char* key, std::string& out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return false;
    out = it->get<std::string>();
    return true;
}

bool get_bool(const json& j, const char* key, bool& out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_boolean()) return false;
    out = it->get<bool>();
    return true;
}

bool get_u64(const json& j, const char* key, std::uint64_t& out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned()) return false;
    out = it->get<std::uint64_t>();
    return true;
}

Result<std::uint64_t> query_u64(const std::map<std::string, std::string, std::less<>>& q, std::string_view key) {
    auto it = q.find(key);
    if (it == q.end() || it->second.empty()) return 0;
    std::uint64_t v = 0;
    const auto& s = it->second;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || ptr != s.data() + s.size())
        return fail(ErrorCode::InvalidArg, "'{}' must be a number of bytes, not '{}'", key, s);
    return v;
}

}  // namespace

std::string_view pool_state_wire_name(driver::PoolState s) { return name_of(kPoolStates, s); }
std::optional<driver::PoolState> pool_state_from_wire(std::string_view name) { return value_of(kPoolStates, name); }
std::string_view volume_type_wire_name(driver::VolumeType t) { return name_of(kVolumeTypes, t); }
std::optional<driver::VolumeType> volume_type_from_wire(std::string_view name) {
    return value_of(kVolumeTypes, name);
}
std::string_view wipe_algorithm_name(driver::WipeAlgorithm a) { return name_of(kWipe, a); }
std::optional<driver::WipeAlgorithm> wipe_algorithm_from_name(std::string_view name) { return value_of(kWipe, name); }

json to_json(const driver::PoolSummary& p) {
    return json{{"name", p.name},
                {"uuid", p.uuid.str()},
                {"type", p.type},
                {"state", pool_state_wire_name(p.state)},
                {"persistent", p.persistent},
                {"autostart", p.autostart},
                {"capacity", p.capacity},
                {"allocation", p.allocation},
                {"available", p.available},
                {"target_path", p.target_path}};
}

json to_json(const driver::VolumeSummary& v) {
    return json{{"name", v.name},
                {"pool", v.pool},
                {"key", v.key},
                {"path", v.path},
                {"type", volume_type_wire_name(v.type)},
                {"format", v.format},
                {"capacity", v.capacity},
                {"allocation", v.allocation},
                {"physical", v.physical}};
}

Result<driver::PoolSummary> pool_from_json(const json& j) {
    static constexpr std::string_view what = "pool";
    if (!j.is_object()) return malformed(what, "(object)");
    driver::PoolSummary p;
    std::string uuid, state;
    if (!get_string(j, "name", p.name)) return malformed(what, "name");
    if (!get_string(j, "uuid", uuid)) return malformed(what, "uuid");
    auto parsed = Uuid::parse(uuid);
    if (!parsed) return malformed(what, "uuid");
    p.uuid = *parsed;
    if (!get_string(j, "state", state)) return malformed(what, "state");
    auto st = pool_state_from_wire(state);
    if (!st) return malformed(what, "state");
    p.state = *st;
    // Optional fields keep their defaults when a (newer/older) daemon omits them.
    get_string(j, "type", p.type);
    get_bool(j, "persistent", p.persistent);
    get_bool(j, "autostart", p.autostart);
    get_u64(j, "capacity", p.capacity);
    get_u64(j, "allocation", p.allocation);
    get_u64(j, "available", p.available);
    get_string(j, "target_path", p.target_path);
    return p;
}

Result<driver::VolumeSummary> volume_from_json(const json& j) {
    static constexpr std::string_view what = "volume";
    if (!j.is_object()) return malformed(what, "(object)");
    driver::VolumeSummary v;
    std::string type;
    if (!get_string(j, "name", v.name)) return malformed(what, "name");
    if (!get_string(j, "pool", v.pool)) return malformed(what, "pool");
    if (!get_string(j, "type", type)) return malformed(what, "type");
    auto t = volume_type_from_wire(type);
    if (!t) return malformed(what, "type");
    v.type = *t;
    get_string(j, "key", v.key);
    get_string(j, "path", v.path);
    get_string(j, "format", v.format);
    get_u64(j, "capacity", v.capacity);
    get_u64(j, "allocation", v.allocation);
    get_u64(j, "physical", v.physical);
    return v;
}

std::string transfer_query(const driver::TransferRange& r) {
    return fmt::format("offset={}&length={}&sparse={}", r.offset, r.length, r.sparse ? 1 : 0);
}

Result<driver::TransferRange> transfer_from_query(const std::map<std::string, std::string, std::less<>>& query) {
    driver::TransferRange r;
    auto offset = query_u64(query, "offset");
    if (!offset) return std::unexpected(offset.error());
    auto length = query_u64(query, "length");
    if (!length) return std::unexpected(length.error());
    r.offset = *offset;
    r.length = *length;
    r.sparse = query_flag(query, "sparse");
    return r;
}

std::string stream_hole(std::uint64_t length) { return json{{"hole", length}}.dump(); }
std::string stream_end() { return R"({"end":true})"; }
std::string stream_abort(std::string_view why) { return json{{"abort", why}}.dump(); }
std::string stream_error(const Error& e) { return json{{"error", to_json(e)}}.dump(); }
std::string stream_done() { return R"({"done":true})"; }

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
        c.error = Error{ErrorCode::OperationFailed,
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
