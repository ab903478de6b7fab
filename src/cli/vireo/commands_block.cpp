// A domain's disks: domblkstat, domblkinfo, blockresize (domblklist is in
// commands_domain.cpp). Output as virsh's (block_format.hpp).
#include <nlohmann/json.hpp>

#include "cli/vireo/block_format.hpp"
#include "cli/vireo/commands.hpp"
#include "cli/vireo/session.hpp"
#include "driver/ops/domain.hpp"

namespace vireo::cli {

namespace ops = driver::ops;

namespace {

int cmd_domblkstat(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::string device = a.get("device");
    auto st = s.conn()->call<ops::DomainBlockStats>({.ref = dom->name, .device = device});
    if (!st) {  // virsh: the reason alone (its first call, asking how many counters, fails)
        s.error(st.error().full_message());
        return 1;
    }
    if (a.has("json")) {
        s.out("{}\n", block_stats_json(*st).dump(2));
        return 0;
    }
    s.out("{}", format_block_stats(*st, device, a.has("human")));
    s.info("\n");
    return 0;
}

int cmd_domblkinfo(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const bool all = a.has("all"), human = a.has("human");
    if (!all && !a.has("device")) {
        s.error("command 'domblkinfo' requires <device> option");
        return 1;
    }
    if (!all) {
        auto info = s.conn()->call<ops::DomainBlockInfo>({.ref = dom->name, .device = a.get("device")});
        if (!info) {
            s.error(info.error().full_message());
            return 1;
        }
        if (a.has("json")) {
            s.out("{}\n", block_info_json(*info).dump(2));
            return 0;
        }
        s.out("{}", format_block_info(*info, human));
        s.info("\n");
        return 0;
    }
    // --all: every disk of the current definition, as virsh walks the XML;
    // a disk without a medium is "-" without asking.
    auto disks = s.conn()->domain_disks(dom->name, false);
    if (!disks) {
        s.error(disks.error().full_message());
        return 1;
    }
    std::vector<driver::BlockInfo> rows;
    for (const auto& d : *disks) {
        if (d.source == "-") {
            rows.push_back({d.target, 0, 0, 0});
            continue;
        }
        auto info = s.conn()->call<ops::DomainBlockInfo>({.ref = dom->name, .device = d.target});
        if (!info) {
            s.error(info.error().full_message());
            return 1;
        }
        rows.push_back(std::move(*info));
    }
    if (a.has("json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& r : rows) out.push_back(block_info_json(r));
        s.out("{}\n", out.dump(2));
        return 0;
    }
    s.out("{}", format_block_info_table(rows, human, !s.quiet()));
    s.info("\n");
    return 0;
}

int cmd_blockresize(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::string path = a.get("path");
    auto size = parse_resize_size(a.get("size"), a.has("bytes"));
    if (!size) {  // virsh's headline, then libvirt's reason when it has one
        s.error(size.error().message);
        if (size.error().cause) s.error(size.error().cause->full_message());
        return 1;
    }
    auto st = s.conn()->call<ops::DomainBlockResize>({.ref = dom->name, .path = path, .size = *size});
    if (!st) {
        s.error(fmt::format("Failed to resize block device '{}'", path), st.error());
        return 1;
    }
    s.info("Block device '{}' is resized\n", path);
    return 0;
}

}  // namespace

void add_block_commands(std::vector<CommandSpec>& t) {
    const std::string_view mgmt = "Domain Management", mon = "Domain Monitoring";
    const OptSpec device{"device", OptType::String, "block device", false, true};
    const OptSpec human{"human", OptType::Bool, "Human readable output"};
    t.push_back({"domblkstat", mon, "get device block stats for a domain",
                 "Get device block stats for a running domain. See man page or use --human for explanation of fields",
                 {kDomainOpt, device, {"human", OptType::Bool, "print a more human readable output"}, kJsonOpt},
                 cmd_domblkstat});
    t.push_back({"domblkinfo", mon, "domain block device size information", "Get block device size info for a domain.",
                 {kDomainOpt, device, human, {"all", OptType::Bool, "display all block devices info"}, kJsonOpt},
                 cmd_domblkinfo});
    t.push_back({"blockresize", mgmt, "Resize block device of domain.", "Resize block device of domain.",
                 {kDomainOpt, {"path", OptType::String, "Fully-qualified path of block device", true, true},
                  {"size", OptType::String, "New size of the block device, as scaled integer (default KiB)", true, true},
                  {"bytes", OptType::Bool, "a size without a suffix is in bytes instead of KiB"}},
                 cmd_blockresize, true, true});
}

}  // namespace vireo::cli
