// Text forms of the storage verbs (pool-* / vol-*), kept apart from the verbs
// so that they can be tested on their own: virsh's size syntax ("1G",
// "10MiB", "1GB") and its pretty sizes ("1.00 GiB"), the pool-list and
// vol-list tables, pool-info / vol-info blocks, the XML that pool-define-as
// and vol-create-as build, and the --json forms (vireo's own, see docs/cli.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "driver/pool_api.hpp"
#include "util/error.hpp"

namespace vireo::cli {

// A scaled integer as virsh reads sizes: digits, then an optional suffix
// b/byte/bytes, K/KiB (1024), KB (1000), M, G, T, P, E likewise; no suffix
// means bytes. "1.5G" and overflow are errors ("unknown suffix '.5G'").
Result<std::uint64_t> parse_size(std::string_view text);

// The factor of a size suffix as virsh reads it: "" and b/byte/bytes 1,
// K/KiB 1024, KB 1000, M, G, T, P, E likewise; else "unknown suffix 'X'".
Result<std::uint64_t> suffix_scale(std::string_view suffix);

// virsh's pretty size: "0.00 B", "512.00 KiB", "1.00 GiB" (two decimals by
// default, as pool-info; domblkinfo --human has three), binary units up to EiB.
std::string pretty_size(std::uint64_t bytes, int decimals = 2);

// Which pools pool-list shows (virsh's flags).
struct PoolListFilter {
    bool active = true;
    bool inactive = false;
    bool persistent = false, transient = false;    // neither: both
    bool autostart = false, no_autostart = false;  // neither: both
    std::vector<std::string> types;                // empty: any type
};

// "dir,fs" -> {"dir", "fs"}; an unknown pool type is an error, as in virsh.
Result<std::vector<std::string>> parse_pool_types(std::string_view list);

// The pools matching `filter`, sorted by name.
std::vector<driver::PoolSummary> select_pools(std::vector<driver::PoolSummary> all, const PoolListFilter& filter);

// pool-list's table (Name State Autostart), or with `details` the long one
// (Name State Autostart Persistent Capacity Allocation Available).
std::string format_pool_table(const std::vector<driver::PoolSummary>& pools, bool details, bool with_header);
// pool-list --name / --uuid: one line per pool ("%-36s %-20s" as virsh).
std::string format_pool_names(const std::vector<driver::PoolSummary>& pools, bool uuid, bool name);
// pool-info's block; sizes as plain byte counts with `bytes`.
std::string format_pool_info(const driver::PoolSummary& p, bool bytes);

// vol-list's table (Name Path), or with `details` Name Path Type Capacity Allocation.
// Volumes are shown sorted by name.
std::string format_volume_table(std::vector<driver::VolumeSummary> vols, bool details, bool with_header);
// vol-info's block; "N bytes" with `bytes`, and the Physical line with `physical`.
std::string format_volume_info(const driver::VolumeSummary& v, bool bytes, bool physical);

// pool-define-as / pool-create-as: the pool XML virsh builds from its options.
struct PoolXmlSpec {
    std::string name, type;
    std::string source_host, source_path, source_dev, source_name, source_format;
    std::string target;
};
std::string build_pool_xml(const PoolXmlSpec& spec);

// vol-create-as: the volume XML virsh builds from its options.
struct VolumeXmlSpec {
    std::string name;
    std::uint64_t capacity = 0;
    std::optional<std::uint64_t> allocation;
    std::string format;
    std::string backing_path, backing_format;
};
std::string build_volume_xml(const VolumeXmlSpec& spec);

// vol-clone: the source volume's XML with a new name, its identity (key,
// path) dropped so that the pool assigns new ones.
Result<std::string> clone_volume_xml(std::string_view source_xml, std::string_view new_name);

nlohmann::json pool_json(const driver::PoolSummary& p);
nlohmann::json volume_json(const driver::VolumeSummary& v);

}  // namespace vireo::cli
