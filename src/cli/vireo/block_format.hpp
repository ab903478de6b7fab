// Text forms of the disk verbs (domblkstat, domblkinfo, blockresize), kept
// apart from the verbs so that they can be tested on their own: virsh's
// layouts and its size syntax.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "driver/types.hpp"
#include "util/error.hpp"

namespace vireo::cli {

// domblkstat's lines as virsh prints them: "<device> rd_req 12", ... in
// virsh's order (rd_req, rd_bytes, wr_req, wr_bytes, flush_operations,
// rd_total_times, wr_total_times, flush_total_times), `device` as the user
// gave it ("" for the sum over every disk: the lines start with a space).
// `human`: "Device: vda" then " number of read operations:      12", ...
std::string format_block_stats(const driver::BlockStats& s, std::string_view device, bool human);

// virsh's sizes of domblkinfo: bytes, or with `human` "%.3f <unit>" in
// binary units ("1.000 GiB"); "-" for each when all three are zero (a
// disk without a medium).
struct BlockInfoCells {
    std::string capacity, allocation, physical;
};
BlockInfoCells block_info_cells(const driver::BlockInfo& b, bool human);

// domblkinfo DEVICE: "Capacity:       <n>" / "Allocation:     <n>" / "Physical:       <n>".
std::string format_block_info(const driver::BlockInfo& b, bool human);

// domblkinfo --all: the table Target Capacity Allocation Physical (rows
// only with `with_header` false, virsh -q).
std::string format_block_info_table(const std::vector<driver::BlockInfo>& disks, bool human, bool with_header);

// blockresize's SIZE in bytes: a scaled integer as virsh reads it, KiB
// when it has no suffix (bytes with `bytes`); "1G", "10MiB", "1GB", "512b".
// Malformed or out of range: virsh's error, with libvirt's reason (an
// unknown suffix, an overflow) as its cause.
Result<std::uint64_t> parse_resize_size(std::string_view text, bool bytes);

// The --json forms (vireo's own).
nlohmann::json block_stats_json(const driver::BlockStats& s);
nlohmann::json block_info_json(const driver::BlockInfo& b);

}  // namespace vireo::cli
