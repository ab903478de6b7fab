// snapshot-list / snapshot-info formats (see snapshot_format.hpp).
#include "cli/vireo/snapshot_format.hpp"

#include <algorithm>
#include <ctime>
#include <map>
#include <set>

#include <fmt/format.h>

#include "cli/vireo/text.hpp"
#include "conf/xml_writer.hpp"
#include "conf/snapshot.hpp"

namespace vireo::cli {

namespace {

conf::SnapshotTree tree_of(const std::vector<driver::SnapshotSummary>& rows) {
    std::map<std::string, std::string> parents;
    for (const auto& r : rows) parents.emplace(r.name, r.parent);
    return conf::SnapshotTree(parents);
}

}  // namespace

Result<std::vector<driver::SnapshotSummary>> select_snapshots(const std::vector<driver::SnapshotSummary>& all,
                                                             const SnapshotFilter& f) {
    const auto tree = tree_of(all);
    std::set<std::string> below;
    if (!f.from.empty()) {
        if (!tree.contains(f.from))
            return fail(ErrorCode::NotFound, "Domain snapshot not found: no domain snapshot with matching name '{}'", f.from);
        auto names = f.descendants ? tree.descendants(f.from) : tree.children(f.from);
        below.insert(names.begin(), names.end());
    }
    const auto leaves = tree.leaves();
    std::vector<driver::SnapshotSummary> out;
    for (const auto& s : all) {
        if (!f.from.empty() && !below.contains(s.name)) continue;
        if (f.roots && !s.parent.empty() && tree.contains(s.parent)) continue;
        const bool leaf = std::find(leaves.begin(), leaves.end(), s.name) != leaves.end();
        if (f.leaves && !leaf) continue;
        if (f.no_leaves && leaf) continue;
        // The state filters combine as libvirt's: any of those given.
        if (f.inactive || f.active || f.disk_only) {
            const bool inactive = s.state == "shutoff";
            const bool disk_only = s.state == "disk-snapshot";
            if (!((f.inactive && inactive) || (f.disk_only && disk_only) || (f.active && !inactive && !disk_only))) continue;
        }
        if (f.internal || f.external) {
            if (!((f.internal && s.location == "internal") || (f.external && s.location == "external"))) continue;
        }
        out.push_back(s);
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

std::string format_snapshot_time(std::uint64_t seconds) {
    const auto t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    ::localtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %z", &tm);
    return buf;
}

std::string format_snapshot_table(const std::vector<driver::SnapshotSummary>& rows, bool with_parent) {
    std::vector<std::string> header{"Name", "Creation Time", "State"};
    if (with_parent) header.emplace_back("Parent");
    Table table(header);
    for (const auto& s : rows) {
        std::vector<std::string> row{s.name, format_snapshot_time(s.creation_time), s.state};
        if (with_parent) row.push_back(s.parent);
        table.add_row(std::move(row));
    }
    return table.render() + "\n";
}

std::string format_snapshot_tree(const std::vector<driver::SnapshotSummary>& rows) { return tree_of(rows).render(); }

std::string format_snapshot_info(const std::vector<driver::SnapshotSummary>& all, const driver::SnapshotSummary& s,
                                 const std::string& domain) {
    const auto tree = tree_of(all);
    std::string out;
    auto line = [&](std::string_view label, const std::string& value) { out += fmt::format("{:<15} {}\n", label, value); };
    line("Name:", s.name);
    line("Domain:", domain);
    line("Current:", s.current ? "yes" : "no");
    line("State:", s.state);
    line("Location:", s.location);
    line("Parent:", s.parent.empty() ? "-" : s.parent);
    line("Children:", std::to_string(tree.children(s.name).size()));
    line("Descendants:", std::to_string(tree.descendants(s.name).size()));
    line("Metadata:", "yes");
    return out;
}

namespace {

// "a,,b,c" -> {"a,b", "c"}: virsh's comma-separated list with ",," escapes.
std::vector<std::string> split_spec(const std::string& spec) {
    std::vector<std::string> out(1);
    for (std::size_t i = 0; i < spec.size(); ++i) {
        if (spec[i] != ',') {
            out.back() += spec[i];
        } else if (i + 1 < spec.size() && spec[i + 1] == ',') {
            out.back() += ',';
            ++i;
        } else {
            out.emplace_back();
        }
    }
    return out;
}

Result<std::string> diskspec_xml(const std::string& spec) {
    auto parts = split_spec(spec);
    const std::string& name = parts.front();
    if (name.empty()) return fail(ErrorCode::InvalidArg, "unable to parse diskspec: {}", spec);
    std::string snapshot, driver, stype, file;
    for (std::size_t i = 1; i < parts.size(); ++i) {
        const auto eq = parts[i].find('=');
        const std::string key = parts[i].substr(0, eq);
        const std::string value = eq == std::string::npos ? std::string() : parts[i].substr(eq + 1);
        std::string* slot = key == "snapshot" ? &snapshot : key == "driver" ? &driver : key == "stype" ? &stype
                          : key == "file" ? &file : nullptr;
        if (!slot || eq == std::string::npos || !slot->empty()) return fail(ErrorCode::InvalidArg, "unable to parse diskspec: {}", spec);
        *slot = value;
    }
    if (!stype.empty() && stype != "file" && stype != "block")
        return fail(ErrorCode::InvalidArg, "unable to parse diskspec: {}: stype must be file or block", spec);
    std::string out = fmt::format("    <disk name='{}'", conf::xml::escape(name));
    if (!snapshot.empty()) out += fmt::format(" snapshot='{}'", conf::xml::escape(snapshot));
    if (!stype.empty()) out += fmt::format(" type='{}'", stype);
    if (driver.empty() && file.empty()) return out + "/>\n";
    out += ">\n";
    if (!driver.empty()) out += fmt::format("      <driver type='{}'/>\n", conf::xml::escape(driver));
    if (!file.empty()) out += fmt::format("      <source {}='{}'/>\n", stype == "block" ? "dev" : "file", conf::xml::escape(file));
    return out + "    </disk>\n";
}

}  // namespace

Result<std::string> snapshot_create_as_xml(const std::string& name, const std::string& description,
                                           const std::vector<std::string>& diskspecs) {
    std::string out = "<domainsnapshot>\n";
    if (!name.empty()) out += fmt::format("  <name>{}</name>\n", conf::xml::escape(name));
    if (!description.empty()) out += fmt::format("  <description>{}</description>\n", conf::xml::escape(description));
    if (!diskspecs.empty()) {
        out += "  <disks>\n";
        for (const auto& spec : diskspecs) {
            auto disk = diskspec_xml(spec);
            if (!disk) return std::unexpected(disk.error());
            out += *disk;
        }
        out += "  </disks>\n";
    }
    out += "</domainsnapshot>\n";
    return out;
}

nlohmann::json snapshot_json(const driver::SnapshotSummary& s) {
    return nlohmann::json{{"name", s.name},
                          {"parent", s.parent.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.parent)},
                          {"state", s.state},
                          {"creation_time", s.creation_time},
                          {"location", s.location},
                          {"current", s.current}};
}

}  // namespace vireo::cli
