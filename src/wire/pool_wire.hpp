// How the storage API (driver/pool_api.hpp) travels between vireod and the
// RemoteDriver: JSON shapes of pools, volumes and flags, and the framing of
// volume streams (vol-upload / vol-download). docs/api/openapi.yaml and
// docs/api/README.md document the same for curl users.
//
// Volume streams run over a WebSocket (GET .../volumes/{vol}/download or
// .../upload, with ?offset=&length=&sparse=):
//   binary message         the next bytes of the stream (data)
//   text {"hole": N}       N bytes that read as zeros and are not sent
//   text {"end": true}     the sender has sent everything
//   text {"abort": "why"}  the uploading client gives up (upload only)
//   text {"error": {"code","message"}}  the daemon failed; the stream ends
//   text {"done": true}    upload only: the daemon wrote everything
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "driver/pool_api.hpp"
#include "util/error.hpp"

namespace vireo::wire {

nlohmann::json to_json(const driver::PoolSummary& p);
nlohmann::json to_json(const driver::VolumeSummary& v);
Result<driver::PoolSummary> pool_from_json(const nlohmann::json& j);
Result<driver::VolumeSummary> volume_from_json(const nlohmann::json& j);

// Wire names: "inactive", "running", ... / "file", "block", ... / "zero", "random", "trim".
std::string_view pool_state_wire_name(driver::PoolState s);
std::optional<driver::PoolState> pool_state_from_wire(std::string_view name);
std::string_view volume_type_wire_name(driver::VolumeType t);
std::optional<driver::VolumeType> volume_type_from_wire(std::string_view name);
std::string_view wipe_algorithm_name(driver::WipeAlgorithm a);
std::optional<driver::WipeAlgorithm> wipe_algorithm_from_name(std::string_view name);

// ?offset=..&length=..&sparse=0|1 of a stream route, and back.
std::string transfer_query(const driver::TransferRange& r);
Result<driver::TransferRange> transfer_from_query(const std::map<std::string, std::string, std::less<>>& query);

// One control message of a volume stream (a text message).
struct StreamControl {
    enum class Kind { Hole, End, Abort, Error, Done } kind = Kind::End;
    std::uint64_t hole = 0;  // Hole: its length
    Error error;             // Error / Abort: why
};
std::string stream_hole(std::uint64_t length);
std::string stream_end();
std::string stream_abort(std::string_view why);
std::string stream_error(const Error& e);
std::string stream_done();
// Protocol error when the text is no control message.
Result<StreamControl> parse_stream_control(std::string_view text);

}  // namespace vireo::wire
