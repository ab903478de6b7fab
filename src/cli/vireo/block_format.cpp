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

#include "cli/vireo/text.hpp"

namespace vireo::cli {

namespace {

// virsh's pretty capacity of domblkinfo --human: three decimals.
std::string human_size(std::uint64_t bytes) {
    constexpr std::array<std::string_view, 7> kUnits{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    std::size_t unit = 0;
    auto value = static_cast<double>(bytes);
    while (value >= 1024.0 && unit + 1 < kUnits.size()) {
        value /= 1024.0;
        ++unit;
    }
    return fmt::format("{:.3f} {}", value, kUnits[unit]);
}

}  // namespace

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
    auto size = [&](std::uint64_t v) { return human ? human_size(v) : std::to_string(v); };
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
    auto iequals = [](std::string_view a, std::string_view b) {
        return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
                   return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
               });
    };
    std::uint64_t scale = 1;
    if (suffix.empty()) {
        scale = bytes ? 1 : 1024;
    } else if (!iequals(suffix, "b") && !iequals(suffix, "byte") && !iequals(suffix, "bytes")) {
        std::uint64_t base = 0;
        if (suffix.size() == 1 || iequals(suffix.substr(1), "iB"))
            base = 1024;
        else if (suffix.size() == 2 && (suffix[1] == 'b' || suffix[1] == 'B'))
            base = 1000;
        constexpr std::string_view kUnits = "kmgtpe";
        const auto power = kUnits.find(static_cast<char>(std::tolower(static_cast<unsigned char>(suffix[0]))));
        if (base == 0 || power == std::string_view::npos)
            return malformed(fmt::format("invalid argument: unknown suffix '{}'", suffix));
        for (std::size_t i = 0; i <= power; ++i) scale *= base;
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

}  // namespace vireo::cli
