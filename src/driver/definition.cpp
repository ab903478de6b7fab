// DomainDefinition helpers and the views (summary, disk and interface rows)
// every driver derives from a definition.
#include "driver/registry.hpp"

namespace vireo::driver {

Result<DomainDefinition> make_definition(std::string_view xml, conf::ParseFlags flags, const DefineContext& ctx) {
    auto def = conf::parse_domain_xml(xml, flags);
    if (!def) return std::unexpected(def.error());
    if (ctx.host) VIREO_TRY(conf::apply_define_host(*def, *ctx.host));
    conf::assign_unique_macs(*def, ctx.mac_in_use);
    VIREO_TRY(conf::assign_addresses_and_aliases(*def));
    def->id.reset();  // an inactive document never carries a runtime id
    return make_definition(std::move(*def));
}

DomainDefinition make_definition(conf::DomainDef def) {
    conf::FormatFlags flags;
    if (def.id) {
        flags.live = true;
        flags.id = def.id;
    }
    DomainDefinition out;
    out.xml = conf::format_domain_xml(def, flags);
    out.def = std::make_shared<const conf::DomainDef>(std::move(def));
    return out;
}

DomainDefinition make_live_definition(const DomainDefinition& inactive, int id) {
    conf::DomainDef def = *inactive.def;
    def.id = id;
    return make_definition(std::move(def));
}

std::string domain_xml_of(const DomainDefinition& d, bool security_info) {
    if (security_info) return d.xml.str();
    const conf::DomainDef& model = *d.def;
    bool secret = false;
    for (const auto& g : model.devices.graphics) secret |= !g.passwd.empty();
    if (!secret) return d.xml.str();
    conf::DomainDef copy = model;
    for (auto& g : copy.devices.graphics) g.passwd.clear();
    conf::FormatFlags flags;
    if (copy.id) {
        flags.live = true;
        flags.id = copy.id;
    }
    return conf::format_domain_xml(copy, flags);
}

DomainSummary summarize(const DomainSnapshot& snap) {
    const DomainFields& f = snap.fields;
    // The facts, not the model: a list must not parse every stored definition.
    const DefinitionFacts facts = f.current().def.facts();
    DomainSummary s;
    s.name = snap.name;
    s.uuid = snap.uuid;
    s.id = f.active() ? f.id : -1;
    s.state = f.state;
    s.reason = f.reason;
    s.persistent = f.persistent();
    s.autostart = f.autostart;
    s.managed_save = f.managed_save;
    s.title = facts.title;
    s.max_memory_kib = facts.max_memory_kib;
    s.memory_kib = facts.memory_kib;
    s.vcpus = facts.vcpus;
    s.cpu_time_ns = f.active() ? f.cpu_time_ns : 0;
    s.os_type = facts.os_type;
    return s;
}

namespace {

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

std::string disk_source(const conf::Disk& d) {
    const auto& src = d.source;
    if (!src.file.empty()) return src.file;
    if (!src.dev.empty()) return src.dev;
    if (!src.volume.empty()) return src.pool.empty() ? src.volume : src.pool + "/" + src.volume;
    if (!src.name.empty()) return src.name;
    return "-";
}

}  // namespace

std::vector<DiskInfo> disk_rows(const conf::DomainDef& def) {
    std::vector<DiskInfo> rows;
    for (const auto& d : def.devices.disks) rows.push_back(DiskInfo{d.type, d.device, d.target_dev, disk_source(d)});
    return rows;
}

std::vector<InterfaceInfo> interface_rows(const conf::DomainDef& def) {
    std::vector<InterfaceInfo> rows;
    for (const auto& i : def.devices.interfaces) {
        const std::string& source = !i.source_network.empty() ? i.source_network : i.source_bridge;
        rows.push_back(InterfaceInfo{or_dash(i.target_dev), i.type, or_dash(source), or_dash(i.model), i.mac});
    }
    return rows;
}

}  // namespace vireo::driver
