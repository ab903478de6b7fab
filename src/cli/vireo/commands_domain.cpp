// Domain listing, queries and definitions: list, dominfo, domstate, domid,
// domname, domuuid, dumpxml, domblklist, domiflist, desc, autostart, define,
// undefine, create.
#include <filesystem>

#include "cli/vireo/commands.hpp"
#include "cli/vireo/format.hpp"
#include "driver/security_info.hpp"
#include "cli/vireo/session.hpp"
#include "util/files.hpp"

namespace vireo::cli {

namespace {

ListFilter list_filter(const Args& a) {
    ListFilter f;
    f.active = !a.has("inactive");
    f.inactive = a.has("inactive") || a.has("all");
    f.persistent = a.has("persistent");
    f.transient = a.has("transient");
    f.autostart = a.has("autostart");
    f.no_autostart = a.has("no-autostart");
    f.with_managed_save = a.has("with-managed-save");
    f.without_managed_save = a.has("without-managed-save");
    f.state_running = a.has("state-running");
    f.state_paused = a.has("state-paused");
    f.state_shutoff = a.has("state-shutoff");
    f.state_other = a.has("state-other");
    // A state filter naming an inactive state implies looking at inactive domains.
    if (f.state_shutoff || f.state_other) f.inactive = true;
    return f;
}

std::string list_state(const driver::DomainSummary& d, bool mark_managed_save) {
    if (mark_managed_save && d.id < 0 && d.managed_save) return "saved";
    return std::string(driver::state_name(d.state));
}

int cmd_list(Session& s, const Args& a) {
    auto* d = s.conn();
    if (!d) return 1;
    auto all = d->list_domains();
    if (!all) {
        s.error("failed to list domains", all.error());
        return 1;
    }
    auto domains = select_domains(std::move(*all), list_filter(a));
    if (a.has("json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& dom : domains) out.push_back(domain_json(dom));
        s.out("{}\n", out.dump(2));
        return 0;
    }
    const bool name = a.has("name"), uuid = a.has("uuid"), id = a.has("id");
    if (name || uuid || id) {
        // One line per domain with the requested fields, as virsh prints them.
        for (const auto& dom : domains) {
            if (id && dom.id < 0) continue;  // virsh --id lists running domains only
            std::vector<std::string> fields;
            if (id) fields.push_back(std::to_string(dom.id));
            if (uuid) fields.push_back(dom.uuid.str());
            if (name) fields.push_back(dom.name);
            s.out("{}\n", fmt::join(fields, " "));
        }
        s.out("\n");
        return 0;
    }
    std::vector<std::string> header{"Id", "Name", "State"};
    if (a.has("title")) header.emplace_back("Title");
    Table table(header);
    for (const auto& dom : domains) {
        std::vector<std::string> row{dom.id >= 0 ? std::to_string(dom.id) : "-", dom.name,
                                     list_state(dom, a.has("managed-save"))};
        if (a.has("title")) row.push_back(dom.title);
        table.add_row(std::move(row));
    }
    s.out("{}\n", table.render(!s.quiet()));
    return 0;
}

int cmd_dominfo(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    if (a.has("json")) {
        s.out("{}\n", domain_json(*dom).dump(2));
        return 0;
    }
    // virsh: the host's security model, and the running domain's label.
    SecurityInfo security;
    if (auto caps = s.conn()->capabilities_xml()) security.model = driver::secmodel_of_capabilities(*caps);
    if (dom->id >= 0 && security.model != "none")
        if (auto xml = s.conn()->domain_xml(dom->name, false, true)) security.label = driver::dac_label_of_domain(*xml);
    s.out("{}\n", format_dominfo(*dom, security));
    return 0;
}

int cmd_domstate(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    s.out("{}\n\n", format_state(*dom, a.has("reason")));
    return 0;
}

int cmd_domid(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    s.out("{}\n\n", dom->id >= 0 ? std::to_string(dom->id) : "-");
    return 0;
}

int cmd_domname(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    s.out("{}\n\n", dom->name);
    return 0;
}

int cmd_domuuid(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    s.out("{}\n\n", dom->uuid.str());
    return 0;
}

int cmd_dumpxml(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto xml = s.conn()->domain_xml(dom->name, a.has("inactive"), a.has("security-info"));
    if (!xml) {
        s.error(fmt::format("failed to get the XML of domain '{}'", dom->name), xml.error());
        return 1;
    }
    s.out("{}{}\n", *xml, xml->ends_with('\n') ? "" : "\n");
    return 0;
}

int cmd_domblklist(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto disks = s.conn()->domain_disks(dom->name, a.has("inactive"));
    if (!disks) {
        s.error(fmt::format("failed to get the disks of domain '{}'", dom->name), disks.error());
        return 1;
    }
    if (a.has("json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& disk : *disks) out.push_back(disk_json(disk));
        s.out("{}\n", out.dump(2));
        return 0;
    }
    const bool details = a.has("details");
    Table table(details ? std::vector<std::string>{"Type", "Device", "Target", "Source"}
                        : std::vector<std::string>{"Target", "Source"});
    for (const auto& disk : *disks) {
        if (details)
            table.add_row({disk.type, disk.device, disk.target, disk.source});
        else
            table.add_row({disk.target, disk.source});
    }
    s.out("{}\n", table.render(!s.quiet()));
    return 0;
}

int cmd_domiflist(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto ifaces = s.conn()->domain_interfaces(dom->name, a.has("inactive"));
    if (!ifaces) {
        s.error(fmt::format("failed to get the interfaces of domain '{}'", dom->name), ifaces.error());
        return 1;
    }
    if (a.has("json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& iface : *ifaces) out.push_back(interface_json(iface));
        s.out("{}\n", out.dump(2));
        return 0;
    }
    Table table({"Interface", "Type", "Source", "Model", "MAC"});
    for (const auto& i : *ifaces) table.add_row({i.name, i.type, i.source, i.model, i.mac});
    s.out("{}\n", table.render(!s.quiet()));
    return 0;
}

int cmd_desc(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const bool title = a.has("title");
    const auto kind = title ? driver::MetadataKind::Title : driver::MetadataKind::Description;
    const bool config = a.has("config"), live = a.has("live");
    if (!a.has("new-desc") && a.rest.empty()) {
        auto text = s.conn()->get_metadata(dom->name, kind, config);
        if (!text) {
            s.error(fmt::format("failed to get the {} of domain '{}'", title ? "title" : "description", dom->name),
                    text.error());
            return 1;
        }
        if (text->empty())
            s.out("No {} for domain: {}\n", title ? "title" : "description", dom->name);
        else
            s.out("{}\n", *text);
        return 0;
    }
    std::string text = a.has("new-desc") ? a.get("new-desc") : fmt::format("{}", fmt::join(a.rest, " "));
    auto st = s.conn()->set_metadata(dom->name, kind, text, live, config);
    if (!st) {
        s.error(fmt::format("Failed to set new domain {}", title ? "title" : "description"), st.error());
        return 1;
    }
    s.info("Domain {} updated successfully\n", title ? "title" : "description");
    return 0;
}

int cmd_autostart(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const bool enable = !a.has("disable");
    auto st = s.conn()->set_autostart(dom->name, enable);
    if (!st) {
        s.error(fmt::format("Failed to {}mark domain '{}' as autostarted", enable ? "" : "un", dom->name), st.error());
        return 1;
    }
    s.info("Domain '{}' {} as autostarted\n\n", dom->name, enable ? "marked" : "unmarked");
    return 0;
}

int cmd_define(Session& s, const Args& a) {
    const std::string file = a.get("file");
    auto xml = read_xml_file(s, file);
    if (!xml) return 1;
    auto dom = s.conn()->define_domain(*xml, a.has("validate"));
    if (!dom) {
        s.error(fmt::format("Failed to define domain from {}", file), dom.error());
        return 1;
    }
    s.info("Domain '{}' defined from {}\n\n", dom->name, file);
    return 0;
}

int cmd_create(Session& s, const Args& a) {
    const std::string file = a.get("file");
    auto xml = read_xml_file(s, file);
    if (!xml) return 1;
    driver::StartFlags flags;
    flags.paused = a.has("paused");
    auto dom = s.conn()->create_domain(*xml, flags);
    if (!dom) {
        s.error(fmt::format("Failed to create domain from {}", file), dom.error());
        return 1;
    }
    s.info("Domain '{}' created from {}\n\n", dom->name, file);
    if (a.has("console")) return attach_console(s, dom->name, "");
    return 0;
}

int cmd_undefine(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    driver::UndefineFlags flags;
    flags.managed_save = a.has("managed-save");
    flags.nvram = a.has("nvram");
    flags.keep_nvram = a.has("keep-nvram");
    flags.tpm = a.has("tpm");
    flags.keep_tpm = a.has("keep-tpm");
    flags.snapshots_metadata = a.has("snapshots-metadata");
    flags.remove_all_storage = a.has("remove-all-storage");
    for (const auto& [one, other] : {std::pair{"nvram", "keep-nvram"}, std::pair{"tpm", "keep-tpm"}}) {
        if (a.has(one) && a.has(other)) {
            s.error(fmt::format("Options --{} and --{} are mutually exclusive", one, other));
            return 1;
        }
    }
    auto st = s.conn()->undefine_domain(dom->name, flags);
    if (!st) {
        s.error(fmt::format("Failed to undefine domain '{}'", dom->name), st.error());
        return 1;
    }
    s.info("Domain '{}' has been undefined\n\n", dom->name);
    return 0;
}

}  // namespace

void add_domain_commands(std::vector<CommandSpec>& t) {
    const std::string_view mgmt = "Domain Management", mon = "Domain Monitoring";
    t.push_back({"list", mon, "list domains", "Returns list of domains.",
                 {{"inactive", OptType::Bool, "list inactive domains"},
                  {"all", OptType::Bool, "list inactive & active domains"},
                  {"transient", OptType::Bool, "list transient domains"},
                  {"persistent", OptType::Bool, "list persistent domains"},
                  {"state-running", OptType::Bool, "list domains in running state"},
                  {"state-paused", OptType::Bool, "list domains in paused state"},
                  {"state-shutoff", OptType::Bool, "list domains in shutoff state"},
                  {"state-other", OptType::Bool, "list domains in other states"},
                  {"autostart", OptType::Bool, "list domains with autostart enabled"},
                  {"no-autostart", OptType::Bool, "list domains with autostart disabled"},
                  {"with-managed-save", OptType::Bool, "list domains with managed save state"},
                  {"without-managed-save", OptType::Bool, "list domains without managed save"},
                  {"uuid", OptType::Bool, "list uuid's only"},
                  {"name", OptType::Bool, "list domain names only"},
                  {"id", OptType::Bool, "list domain IDs only"},
                  {"table", OptType::Bool, "list table (default)"},
                  {"managed-save", OptType::Bool, "mark inactive domains with managed save state"},
                  {"title", OptType::Bool, "show domain title"},
                  kJsonOpt},
                 cmd_list});
    t.push_back({"dominfo", mon, "domain information", "Returns basic information about the domain.",
                 {kDomainOpt, kJsonOpt}, cmd_dominfo});
    t.push_back({"domstate", mon, "domain state", "Returns state about a domain.",
                 {kDomainOpt, {"reason", OptType::Bool, "also print reason for the state"}}, cmd_domstate});
    t.push_back({"domid", mgmt, "convert a domain name or UUID to domain id", "", {kDomainOpt}, cmd_domid});
    t.push_back({"domname", mgmt, "convert a domain id or UUID to domain name", "", {kDomainOpt}, cmd_domname});
    t.push_back({"domuuid", mgmt, "convert a domain name or id to domain UUID", "", {kDomainOpt}, cmd_domuuid});
    t.push_back({"dumpxml", mgmt, "domain information in XML", "Output the domain information as an XML dump to stdout.",
                 {kDomainOpt, {"inactive", OptType::Bool, "show inactive defined XML"},
                  {"security-info", OptType::Bool, "include security sensitive information in XML dump"}},
                 cmd_dumpxml});
    t.push_back({"domblklist", mon, "list all domain blocks", "Get the summary of block devices for a domain.",
                 {kDomainOpt, {"inactive", OptType::Bool, "get inactive rather than running configuration"},
                  {"details", OptType::Bool, "additionally display the type and device value"}, kJsonOpt},
                 cmd_domblklist});
    t.push_back({"domiflist", mon, "list all domain virtual interfaces",
                 "Get the summary of virtual interfaces for a domain.",
                 {kDomainOpt, {"inactive", OptType::Bool, "get inactive rather than running configuration"}, kJsonOpt},
                 cmd_domiflist});
    t.push_back({"desc", mgmt, "show or set domain's description or title",
                 "Allows setting or modifying the description or title of a domain.",
                 {kDomainOpt,
                  {"live", OptType::Bool, "modify/get running state"},
                  {"config", OptType::Bool, "modify/get persistent state"},
                  {"current", OptType::Bool, "modify/get current state"},
                  {"title", OptType::Bool, "modify/get the title instead of description"},
                  {"new-desc", OptType::String, "message"},
                  {"text", OptType::Argv, "new description or title (words are joined)", false, true}},
                 cmd_desc, true, false});
    t.push_back({"autostart", mgmt, "autostart a domain", "Configure a domain to be automatically started at boot.",
                 {kDomainOpt, {"disable", OptType::Bool, "disable autostarting"}}, cmd_autostart, true, true});
    t.push_back({"define", mgmt, "define (but don't start) a domain from an XML file",
                 "Define a domain.",
                 {{"file", OptType::String, "file containing an XML domain description", true, true},
                  {"validate", OptType::Bool, "validate the XML against the schema"}},
                 cmd_define, true, true});
    t.push_back({"create", mgmt, "create a domain from an XML file",
                 "Create a domain (transient: it is gone once it stops).",
                 {{"file", OptType::String, "file containing an XML domain description", true, true},
                  {"console", OptType::Bool, "attach to console after creation"},
                  {"paused", OptType::Bool, "leave the guest paused after creation"}},
                 cmd_create, true, true});
    t.push_back({"undefine", mgmt, "undefine a domain",
                 "Undefine an inactive domain, or convert persistent to transient.",
                 {kDomainOpt,
                  {"managed-save", OptType::Bool, "remove domain managed state file"},
                  {"snapshots-metadata", OptType::Bool, "remove all domain snapshot metadata (vm must be inactive)"},
                  {"remove-all-storage", OptType::Bool, "remove all associated storage volumes (use with caution)"},
                  {"nvram", OptType::Bool, "remove nvram file"},
                  {"keep-nvram", OptType::Bool, "keep nvram file"},
                  {"tpm", OptType::Bool, "remove TPM state"},
                  {"keep-tpm", OptType::Bool, "keep TPM state"}},
                 cmd_undefine, true, true});
}

}  // namespace vireo::cli
