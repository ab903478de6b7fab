#include "cli/vireo/pool_format.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>
#include <sstream>

#include <fmt/format.h>
#include <pugixml.hpp>

#include "cli/vireo/text.hpp"
#include "conf/xml_writer.hpp"

namespace vireo::cli {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

std::string yes_no(bool b) { return b ? "yes" : "no"; }

bool pool_active(const driver::PoolSummary& p) { return p.state != driver::PoolState::Inactive; }

// A pair of opposite flags: neither or both set means "don't filter".
bool matches_pair(bool value, bool want_true, bool want_false) {
    if (want_true == want_false) return true;
    return value ? want_true : want_false;
}

std::string info_line(std::string_view label, std::string_view value) {
    return fmt::format("{:<15} {}\n", fmt::format("{}:", label), value);
}

}  // namespace

// The multiplier a size suffix stands for, as libvirt's virScaleInteger reads it.
Result<std::uint64_t> suffix_scale(std::string_view suffix) {
    if (suffix.empty() || iequals(suffix, "b") || iequals(suffix, "byte") || iequals(suffix, "bytes")) return 1;
    std::uint64_t base = 0;
    if (suffix.size() == 1 || iequals(suffix.substr(1), "iB"))
        base = 1024;
    else if (suffix.size() == 2 && (suffix[1] == 'b' || suffix[1] == 'B'))
        base = 1000;
    else
        return fail(ErrorCode::InvalidArg, "unknown suffix '{}'", suffix);
    constexpr std::string_view kUnits = "kmgtpe";
    const auto power = kUnits.find(static_cast<char>(std::tolower(static_cast<unsigned char>(suffix[0]))));
    if (power == std::string_view::npos) return fail(ErrorCode::InvalidArg, "unknown suffix '{}'", suffix);
    std::uint64_t scale = 1;
    for (std::size_t i = 0; i <= power; ++i) scale *= base;
    return scale;
}

Result<std::uint64_t> parse_size(std::string_view text) {
    std::uint64_t value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ptr == text.data()) return fail(ErrorCode::InvalidArg, "'{}' is not a size (expected a number like 10G)", text);
    if (ec != std::errc{}) return fail(ErrorCode::InvalidArg, "value too large: {}", text);
    auto scale = suffix_scale(std::string_view(ptr, static_cast<std::size_t>(end - ptr)));
    if (!scale) return std::unexpected(scale.error());
    if (value > std::numeric_limits<std::uint64_t>::max() / *scale)
        return fail(ErrorCode::InvalidArg, "value too large: {}", text);
    return value * *scale;
}

std::string pretty_size(std::uint64_t bytes, int decimals) {
    constexpr std::array<std::string_view, 7> kUnits{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    std::size_t unit = 0;
    auto value = static_cast<double>(bytes);
    while (value >= 1024.0 && unit + 1 < kUnits.size()) {
        value /= 1024.0;
        ++unit;
    }
    return fmt::format("{:.{}f} {}", value, decimals, kUnits[unit]);
}

Result<std::vector<std::string>> parse_pool_types(std::string_view list) {
    // Every pool type libvirt knows: a filter on one that vireo has no backend
    // for is valid (and matches nothing), a misspelt one is an error.
    static constexpr std::string_view kKnown[] = {"dir",  "fs",   "netfs", "logical", "disk",   "iscsi",       "iscsi-direct",
                                                  "scsi", "mpath", "rbd",   "sheepdog", "gluster", "zfs", "vstorage"};
    std::vector<std::string> types;
    std::stringstream in{std::string(list)};
    for (std::string t; std::getline(in, t, ',');) {
        if (t.empty()) continue;
        if (std::find(std::begin(kKnown), std::end(kKnown), t) == std::end(kKnown))
            return fail(ErrorCode::InvalidArg, "Invalid pool type '{}'", t);
        types.push_back(t);
    }
    return types;
}

std::vector<driver::PoolSummary> select_pools(std::vector<driver::PoolSummary> all, const PoolListFilter& f) {
    std::vector<driver::PoolSummary> out;
    for (auto& p : all) {
        if (pool_active(p) ? !f.active : !f.inactive) continue;
        if (!matches_pair(p.persistent, f.persistent, f.transient)) continue;
        if (!matches_pair(p.autostart, f.autostart, f.no_autostart)) continue;
        if (!f.types.empty() && std::find(f.types.begin(), f.types.end(), p.type) == f.types.end()) continue;
        out.push_back(std::move(p));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

std::string format_pool_table(const std::vector<driver::PoolSummary>& pools, bool details, bool with_header) {
    if (!details) {
        Table table({"Name", "State", "Autostart"});
        for (const auto& p : pools)
            table.add_row({p.name, pool_active(p) ? "active" : "inactive", yes_no(p.autostart)});
        return table.render(with_header);
    }
    Table table({"Name", "State", "Autostart", "Persistent", "Capacity", "Allocation", "Available"});
    for (const auto& p : pools) {
        const bool sized = pool_active(p);
        table.add_row({p.name, std::string(driver::pool_state_name(p.state)), yes_no(p.autostart), yes_no(p.persistent),
                       sized ? pretty_size(p.capacity) : "-", sized ? pretty_size(p.allocation) : "-",
                       sized ? pretty_size(p.available) : "-"});
    }
    return table.render(with_header);
}

std::string format_pool_names(const std::vector<driver::PoolSummary>& pools, bool uuid, bool name) {
    std::string out;
    for (const auto& p : pools) {
        if (uuid && name)
            out += fmt::format("{:<36} {:<20}\n", p.uuid.str(), p.name);
        else if (uuid)
            out += fmt::format("{:<36}\n", p.uuid.str());
        else
            out += fmt::format("{:<20}\n", p.name);
    }
    return out;
}

std::string format_pool_info(const driver::PoolSummary& p, bool bytes) {
    std::string out = info_line("Name", p.name);
    out += info_line("UUID", p.uuid.str());
    out += info_line("State", driver::pool_state_name(p.state));
    out += info_line("Persistent", yes_no(p.persistent));
    out += info_line("Autostart", yes_no(p.autostart));
    // Sizes are known only while the pool is in use (as virsh shows them).
    if (p.state == driver::PoolState::Running || p.state == driver::PoolState::Degraded) {
        auto size = [&](std::uint64_t v) { return bytes ? std::to_string(v) : pretty_size(v); };
        out += info_line("Capacity", size(p.capacity));
        out += info_line("Allocation", size(p.allocation));
        out += info_line("Available", size(p.available));
    }
    return out;
}

std::string format_volume_table(std::vector<driver::VolumeSummary> vols, bool details, bool with_header) {
    std::sort(vols.begin(), vols.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    if (!details) {
        Table table({"Name", "Path"});
        for (const auto& v : vols) table.add_row({v.name, v.path});
        return table.render(with_header);
    }
    Table table({"Name", "Path", "Type", "Capacity", "Allocation"});
    for (const auto& v : vols)
        table.add_row({v.name, v.path, std::string(driver::volume_type_name(v.type)), pretty_size(v.capacity),
                       pretty_size(v.allocation)});
    return table.render(with_header);
}

std::string format_volume_info(const driver::VolumeSummary& v, bool bytes, bool physical) {
    auto size = [&](std::uint64_t n) { return bytes ? fmt::format("{} bytes", n) : pretty_size(n); };
    std::string out = info_line("Name", v.name);
    out += info_line("Type", driver::volume_type_name(v.type));
    out += info_line("Capacity", size(v.capacity));
    out += info_line(physical ? "Physical" : "Allocation", size(physical ? v.physical : v.allocation));
    return out;
}

std::string build_pool_xml(const PoolXmlSpec& s) {
    std::string out = fmt::format("<pool type='{}'>\n  <name>{}</name>\n", conf::xml::escape(s.type), conf::xml::escape(s.name));
    const bool has_source = !s.source_host.empty() || !s.source_path.empty() || !s.source_dev.empty() ||
                            !s.source_format.empty() || !s.source_name.empty();
    if (has_source) {
        out += "  <source>\n";
        if (!s.source_host.empty()) out += fmt::format("    <host name='{}'/>\n", conf::xml::escape(s.source_host));
        if (!s.source_path.empty()) out += fmt::format("    <dir path='{}'/>\n", conf::xml::escape(s.source_path));
        if (!s.source_dev.empty()) out += fmt::format("    <device path='{}'/>\n", conf::xml::escape(s.source_dev));
        if (!s.source_format.empty()) out += fmt::format("    <format type='{}'/>\n", conf::xml::escape(s.source_format));
        if (!s.source_name.empty()) out += fmt::format("    <name>{}</name>\n", conf::xml::escape(s.source_name));
        out += "  </source>\n";
    }
    if (!s.target.empty()) out += fmt::format("  <target>\n    <path>{}</path>\n  </target>\n", conf::xml::escape(s.target));
    out += "</pool>\n";
    return out;
}

std::string build_volume_xml(const VolumeXmlSpec& s) {
    std::string out = fmt::format("<volume>\n  <name>{}</name>\n  <capacity>{}</capacity>\n", conf::xml::escape(s.name),
                                  s.capacity);
    if (s.allocation) out += fmt::format("  <allocation>{}</allocation>\n", *s.allocation);
    if (!s.format.empty()) out += fmt::format("  <target>\n    <format type='{}'/>\n  </target>\n", conf::xml::escape(s.format));
    if (!s.backing_path.empty()) {
        out += fmt::format("  <backingStore>\n    <path>{}</path>\n", conf::xml::escape(s.backing_path));
        if (!s.backing_format.empty()) out += fmt::format("    <format type='{}'/>\n", conf::xml::escape(s.backing_format));
        out += "  </backingStore>\n";
    }
    out += "</volume>\n";
    return out;
}

Result<std::string> clone_volume_xml(std::string_view source_xml, std::string_view new_name) {
    pugi::xml_document doc;
    if (!doc.load_buffer(source_xml.data(), source_xml.size()))
        return fail(ErrorCode::XmlError, "the source volume's XML cannot be parsed");
    auto vol = doc.child("volume");
    if (!vol) return fail(ErrorCode::XmlError, "the source volume's XML has no <volume> element");
    auto name = vol.child("name");
    if (!name) name = vol.prepend_child("name");
    name.text().set(std::string(new_name).c_str());
    vol.remove_child("key");
    if (auto target = vol.child("target")) target.remove_child("path");
    std::ostringstream out;
    doc.save(out, "  ", pugi::format_indent | pugi::format_no_declaration);
    return out.str();
}

nlohmann::json pool_json(const driver::PoolSummary& p) {
    return {{"name", p.name},
            {"uuid", p.uuid.str()},
            {"type", p.type},
            {"state", std::string(driver::pool_state_name(p.state))},
            {"active", pool_active(p)},
            {"persistent", p.persistent},
            {"autostart", p.autostart},
            {"capacity", p.capacity},
            {"allocation", p.allocation},
            {"available", p.available},
            {"target", p.target_path}};
}

nlohmann::json volume_json(const driver::VolumeSummary& v) {
    return {{"name", v.name},
            {"pool", v.pool},
            {"key", v.key},
            {"path", v.path},
            {"type", std::string(driver::volume_type_name(v.type))},
            {"format", v.format},
            {"capacity", v.capacity},
            {"allocation", v.allocation},
            {"physical", v.physical}};
}

}  // namespace vireo::cli
