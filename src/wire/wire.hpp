// The JSON wire format shared by vireod's HTTP API and the RemoteDriver:
// how Driver types travel as JSON, how errors travel (HTTP status + body
// {"code":"no-domain","message":"..."}), and small HTTP helpers (percent
// encoding of object references in paths). docs/api/openapi.yaml documents
// the same shapes for curl users.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "driver/driver.hpp"
#include "util/error.hpp"

namespace vireo::wire {

// API version prefix of every path.
inline constexpr std::string_view kApiPrefix = "/v1";

nlohmann::json to_json(const driver::DomainSummary& s);
nlohmann::json to_json(const driver::NodeInfo& n);
nlohmann::json to_json(const driver::VersionInfo& v);
nlohmann::json to_json(const driver::DomainEvent& e);
nlohmann::json to_json(const driver::DiskInfo& d);
nlohmann::json to_json(const driver::InterfaceInfo& i);
nlohmann::json to_json(const driver::InterfaceStats& s);
nlohmann::json to_json(const driver::InterfaceAddress& a);
nlohmann::json to_json(const driver::BlockStats& s);
nlohmann::json to_json(const driver::BlockInfo& b);
nlohmann::json to_json(const driver::SnapshotSummary& s);
nlohmann::json to_json(const driver::VcpuInfo& v);
nlohmann::json to_json(const driver::MemoryStat& m);
nlohmann::json to_json(const driver::GuestTime& t);
nlohmann::json to_json(const driver::FsInfo& f);
nlohmann::json to_json(const driver::FsCount& c);
nlohmann::json to_json(const driver::GuestVcpus& v);
nlohmann::json to_json(const driver::TypedParam& p);
nlohmann::json to_json(const Error& e);

// Decoders: Protocol errors name the missing or malformed field.
Result<driver::DomainSummary> summary_from_json(const nlohmann::json& j);
Result<driver::NodeInfo> node_info_from_json(const nlohmann::json& j);
Result<driver::VersionInfo> version_from_json(const nlohmann::json& j);
Result<driver::DomainEvent> event_from_json(const nlohmann::json& j);
Result<driver::DiskInfo> disk_from_json(const nlohmann::json& j);
Result<driver::InterfaceInfo> interface_from_json(const nlohmann::json& j);
Result<driver::InterfaceStats> interface_stats_from_json(const nlohmann::json& j);
Result<driver::InterfaceAddress> interface_address_from_json(const nlohmann::json& j);
Result<driver::BlockStats> block_stats_from_json(const nlohmann::json& j);
Result<driver::BlockInfo> block_info_from_json(const nlohmann::json& j);
Result<driver::SnapshotSummary> snapshot_from_json(const nlohmann::json& j);
Result<driver::VcpuInfo> vcpu_info_from_json(const nlohmann::json& j);
Result<driver::MemoryStat> memory_stat_from_json(const nlohmann::json& j);
Result<driver::GuestTime> guest_time_from_json(const nlohmann::json& j);
Result<driver::FsInfo> fs_info_from_json(const nlohmann::json& j);
Result<driver::FsCount> fs_count_from_json(const nlohmann::json& j);
Result<driver::GuestVcpus> guest_vcpus_from_json(const nlohmann::json& j);
Result<driver::TypedParam> typed_param_from_json(const nlohmann::json& j);
// An error body; anything unreadable becomes a Protocol error quoting it.
Error error_from_body(unsigned http_status, std::string_view body);

// Parse a JSON text; Protocol error on malformed input.
Result<nlohmann::json> parse_json(std::string_view text);

// HTTP status that carries an error code (404 for no-domain, 409 for
// invalid-state/busy, ...). The body's code is authoritative; the status is
// for curl users and proxies.
unsigned http_status_for(ErrorCode code);

std::optional<driver::EventType> event_type_from_name(std::string_view name);

// RFC 3986 percent-encoding of one path segment / query value, and decoding.
std::string percent_encode(std::string_view text);
// nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view text);

// Split "a=1&b=x%20y" into decoded pairs (last one wins); nullopt when malformed.
std::optional<std::map<std::string, std::string, std::less<>>> parse_query(std::string_view query);
// True for "1", "true", "yes" (how boolean query flags are spelled).
bool query_flag(const std::map<std::string, std::string, std::less<>>& query, std::string_view key);

}  // namespace vireo::wire
