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

// --- block jobs (blockcommit, blockpull, blockcopy, blockjob) ----------------------

// A disk's block job as domain.block_job_info answers it (typed parameters).
struct BlockJobView {
    bool present = false;  // the disk had a job in this run
    std::string type;      // pull, copy, commit, active_commit
    std::string state;     // running, ready, completed, failed, cancelled
    std::uint64_t cur = 0, end = 0, bandwidth = 0;  // bytes, bytes/s
    std::string error;
    // The job still runs (running or ready).
    [[nodiscard]] bool active() const { return present && (state == "running" || state == "ready"); }
};
BlockJobView block_job_view(const std::vector<driver::TypedParam>& params);

// virsh's name of a job type: "Block Pull", "Block Copy", "Block Commit",
// "Active Block Commit", "Unknown job".
std::string_view block_job_label(std::string_view type);

// virsh's percentage of a job: 100 when nothing remains, else at most 99.
int block_job_percent(std::uint64_t cur, std::uint64_t end);

// blockjob --info: what goes to stderr (the progress line, "\rBlock Copy:
// [ 45 %]", as virsh's) and to stdout (the bandwidth line when limited,
// then the end of line); without a running job "No current block job for
// vda" on stdout. --raw: " type=Block Copy\n bandwidth=0\n cur=..\n end=..\n"
// and virsh's blank line on stdout (nothing without a job), the bandwidth in
// MiB/s unless `bytes`.
struct BlockJobText {
    std::string err, out;
};
BlockJobText format_block_job_info(const BlockJobView& job, std::string_view disk, bool raw, bool bytes);

// --bandwidth as virsh reads it: MiB/s, or bytes/s with `bytes`; in bytes/s.
Result<std::uint64_t> parse_block_bandwidth(std::string_view text, bool bytes);

// The --json forms (vireo's own).
nlohmann::json block_stats_json(const driver::BlockStats& s);
nlohmann::json block_info_json(const driver::BlockInfo& b);

}  // namespace vireo::cli
