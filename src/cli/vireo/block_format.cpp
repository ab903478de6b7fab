#include "cli/vireo/block_format.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <memory>
#include <limits>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "cli/vireo/job_format.hpp"
#include "cli/vireo/pool_format.hpp"
#include "cli/vireo/text.hpp"

namespace vireo::cli {

std::string format_block_stats(const driver::BlockStats& s, std::string_view device, bool human) {
    // virsh's field (legacy spelling where it has one) and its human wording.
    const std::array<std::tuple<std::string_view, std::string_view, std::uint64_t>, 8> rows{{
        {"rd_req", "number of read operations:", s.rd_req},
        {"rd_bytes", "number of bytes read:", s.rd_bytes},
        {"wr_req", "number of write operations:", s.wr_req},
        {"wr_bytes", "number of bytes written:", s.wr_bytes},
        {"flush_operations", "number of flush operations:", s.flush_operations},
        {"rd_total_times", "total duration of reads (ns):", s.rd_total_times},
        {"wr_total_times", "total duration of writes (ns):", s.wr_total_times},
        {"flush_total_times", "total duration of flushes (ns):", s.flush_total_times},
    }};
    std::string out;
    if (human) {
        out += fmt::format("Device: {}\n", device);
        device = "";
    }
    for (const auto& [field, words, value] : rows) {
        if (human)
            out += fmt::format("{} {:<31} {}\n", device, words, value);
        else
            out += fmt::format("{} {} {}\n", device, field, value);
    }
    return out;
}

BlockInfoCells block_info_cells(const driver::BlockInfo& b, bool human) {
    if (b.capacity == 0 && b.allocation == 0 && b.physical == 0) return {"-", "-", "-"};
    // virsh prints --human sizes with three decimals.
    auto size = [&](std::uint64_t v) { return human ? pretty_size(v, 3) : std::to_string(v); };
    return {size(b.capacity), size(b.allocation), size(b.physical)};
}

std::string format_block_info(const driver::BlockInfo& b, bool human) {
    const BlockInfoCells c = block_info_cells(b, human);
    return fmt::format("{:<15} {}\n{:<15} {}\n{:<15} {}\n", "Capacity:", c.capacity, "Allocation:", c.allocation,
                       "Physical:", c.physical);
}

std::string format_block_info_table(const std::vector<driver::BlockInfo>& disks, bool human, bool with_header) {
    Table table({"Target", "Capacity", "Allocation", "Physical"});
    for (const auto& d : disks) {
        BlockInfoCells c = block_info_cells(d, human);
        table.add_row({d.device, std::move(c.capacity), std::move(c.allocation), std::move(c.physical)});
    }
    return table.render(with_header);
}

Result<std::uint64_t> parse_resize_size(std::string_view text, bool bytes) {
    // virsh's headline, and libvirt's reason where libvirt gives one (an
    // unknown suffix, an overflow) as its cause.
    auto malformed = [&](std::string reason) -> Result<std::uint64_t> {
        Error e{ErrorCode::InvalidArg,
                fmt::format("Scaled numeric value '{}' for <size> option is malformed or out of range", text)};
        if (!reason.empty()) e.cause = std::make_shared<const Error>(ErrorCode::InvalidArg, std::move(reason));
        return std::unexpected(std::move(e));
    };
    std::uint64_t value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || !std::isdigit(static_cast<unsigned char>(text.front())) || ec != std::errc{}) return malformed({});
    const std::string_view suffix(ptr, static_cast<std::size_t>(end - ptr));
    // A bare number is KiB, as virsh reads blockresize's size (bytes with --bytes).
    std::uint64_t scale = bytes ? 1 : 1024;
    if (!suffix.empty()) {
        auto factor = suffix_scale(suffix);
        if (!factor) return malformed(fmt::format("invalid argument: {}", factor.error().message));
        scale = *factor;
    }
    if (value > std::numeric_limits<std::uint64_t>::max() / scale)
        return malformed(fmt::format("numerical overflow: value too large: {}{}", value, suffix));
    return value * scale;
}

nlohmann::json block_stats_json(const driver::BlockStats& s) {
    return {{"device", s.device},
            {"rd_req", s.rd_req},
            {"rd_bytes", s.rd_bytes},
            {"wr_req", s.wr_req},
            {"wr_bytes", s.wr_bytes},
            {"flush_operations", s.flush_operations},
            {"rd_total_times", s.rd_total_times},
            {"wr_total_times", s.wr_total_times},
            {"flush_total_times", s.flush_total_times}};
}

nlohmann::json block_info_json(const driver::BlockInfo& b) {
    return {{"device", b.device}, {"capacity", b.capacity}, {"allocation", b.allocation}, {"physical", b.physical}};
}

BlockJobView block_job_view(const std::vector<driver::TypedParam>& params) {
    BlockJobView v;
    auto number = [](const std::string& text) {
        std::uint64_t n = 0;
        std::from_chars(text.data(), text.data() + text.size(), n);
        return n;
    };
    for (const auto& p : params) {
        v.present = true;
        if (p.field == "type") v.type = p.value;
        else if (p.field == "state") v.state = p.value;
        else if (p.field == "cur") v.cur = number(p.value);
        else if (p.field == "end") v.end = number(p.value);
        else if (p.field == "bandwidth") v.bandwidth = number(p.value);
        else if (p.field == "error") v.error = p.value;
    }
    return v;
}

std::string_view block_job_label(std::string_view type) {
    if (type == "pull") return "Block Pull";
    if (type == "copy") return "Block Copy";
    if (type == "commit") return "Block Commit";
    if (type == "active_commit") return "Active Block Commit";
    return "Unknown job";
}

int block_job_percent(std::uint64_t cur, std::uint64_t end) {
    const std::uint64_t remaining = end > cur ? end - cur : 0;
    if (remaining == 0) return 100;
    // As virsh: in floating point (no overflow), never 100 before the end.
    const auto p = static_cast<int>(100.0 - static_cast<double>(remaining) * 100.0 / static_cast<double>(end));
    return std::min(p, 99);
}

BlockJobText format_block_job_info(const BlockJobView& job, std::string_view disk, bool raw, bool bytes) {
    BlockJobText t;
    if (!job.active()) {
        if (!raw) t.out = fmt::format("No current block job for {}\n", disk);
        return t;
    }
    const std::string_view label = block_job_label(job.type);
    if (raw) {
        t.out = fmt::format(" type={}\n bandwidth={}\n cur={}\n end={}\n\n", label, bytes ? job.bandwidth : job.bandwidth >> 20,
                            job.cur, job.end);
        return t;
    }
    t.err = format_job_progress(label, block_job_percent(job.cur, job.end));
    if (job.bandwidth != 0) t.out = fmt::format("    Bandwidth limit: {} bytes/s ({}/s)", job.bandwidth, format_job_size(job.bandwidth));
    t.out += "\n";
    return t;
}

Result<std::uint64_t> parse_block_bandwidth(std::string_view text, bool bytes) {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    const std::uint64_t limit = bytes ? std::numeric_limits<std::uint64_t>::max() : std::numeric_limits<std::uint64_t>::max() >> 20;
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n > limit)
        return fail(ErrorCode::InvalidArg, "Numeric value '{}' for <bandwidth> option is malformed or out of range", text);
    return bytes ? n : n << 20;
}

}  // namespace vireo::cli
