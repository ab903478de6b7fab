// Domain snapshot verbs, as virsh's: snapshot-create, snapshot-create-as,
// snapshot-list, snapshot-info, snapshot-dumpxml, snapshot-current,
// snapshot-edit, snapshot-parent, snapshot-revert, snapshot-delete. The tree
// questions (--roots, --leaves, --parent, info's counts) are answered here
// from snapshot.list; the daemon refuses what is not supported yet (external
// memory, --quiesce, --live) before changing anything.
#include "cli/vireo/commands.hpp"
#include "cli/vireo/session.hpp"
#include "cli/vireo/snapshot_format.hpp"
#include "driver/ops/snapshot.hpp"

namespace vireo::cli {

namespace ops = driver::ops;

namespace {

const OptSpec kSnapName{"snapshotname", OptType::String, "snapshot name", false, true};
const OptSpec kCurrentSnap{"current", OptType::Bool, "use the current snapshot"};

Result<std::vector<driver::SnapshotSummary>> list_of(Session& s, const std::string& dom) {
    return s.conn()->call<ops::SnapshotList>({.ref = dom});
}

// The snapshot a verb is about: --snapshotname, or the current one with
// --current (or when neither is given, for the verbs where virsh does so).
std::optional<std::string> pick_snapshot(Session& s, const Args& a, const std::string& dom, bool current_by_default) {
    if (a.has("snapshotname") && a.has("current")) {
        s.error("Options --snapshotname and --current are mutually exclusive");
        return std::nullopt;
    }
    if (a.has("snapshotname")) return a.get("snapshotname");
    if (!a.has("current") && !current_by_default) {
        s.error("--snapshotname or --current is required");
        return std::nullopt;
    }
    auto all = list_of(s, dom);
    if (!all) {
        s.error(all.error().full_message());
        return std::nullopt;
    }
    for (const auto& x : *all)
        if (x.current) return x.name;
    s.error("Domain snapshot not found: the domain does not have a current snapshot");
    return std::nullopt;
}

// The snapshot a query verb names (--snapshotname or --current), with the
// domain's whole list (info counts children and descendants from it).
struct ChosenSnapshot {
    std::string domain;
    std::vector<driver::SnapshotSummary> all;
    std::size_t index = 0;
    [[nodiscard]] const driver::SnapshotSummary& snapshot() const { return all[index]; }
};

// nullopt once the error is printed.
std::optional<ChosenSnapshot> chosen_snapshot(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return std::nullopt;
    auto name = pick_snapshot(s, a, dom->name, false);
    if (!name) return std::nullopt;
    auto all = list_of(s, dom->name);
    if (!all) {
        s.error(all.error().full_message());
        return std::nullopt;
    }
    for (std::size_t i = 0; i < all->size(); ++i) {
        if ((*all)[i].name == *name) return ChosenSnapshot{dom->name, std::move(*all), i};
    }
    s.error(fmt::format("Domain snapshot not found: no domain snapshot with matching name '{}'", *name));
    return std::nullopt;
}

int create(Session& s, const std::string& dom, ops::SnapshotCreate::Request req, const std::string& from) {
    req.ref = dom;
    auto name = s.conn()->call<ops::SnapshotCreate>(req);
    if (!name) {
        s.error(name.error().full_message());
        return 1;
    }
    if (from.empty()) s.info("Domain snapshot {} created\n", *name);
    else s.info("Domain snapshot {} created from '{}'\n", *name, from);
    return 0;
}

ops::SnapshotCreate::Request create_flags(const Args& a) {
    return {.redefine = a.has("redefine"), .current = a.has("current"), .no_metadata = a.has("no-metadata"),
            .halt = a.has("halt"), .disk_only = a.has("disk-only"), .reuse_external = a.has("reuse-external"),
            .quiesce = a.has("quiesce"), .atomic = a.has("atomic"), .live = a.has("live")};
}

int cmd_snapshot_create(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto req = create_flags(a);
    std::string from;
    if (a.has("xmlfile")) {
        from = a.get("xmlfile");
        auto xml = read_xml_file(s, from);
        if (!xml) return 1;
        req.xml = *xml;
    } else if (req.redefine) {
        s.error("--redefine requires --xmlfile");
        return 1;
    }
    return create(s, dom->name, std::move(req), from);
}

int cmd_snapshot_create_as(Session& s, const Args& a) {
    if (a.has("memspec")) {
        s.error("unsupported configuration: --memspec (external memory snapshots) is not supported yet");
        return 1;
    }
    auto xml = snapshot_create_as_xml(a.get("name"), a.get("description"), a.rest);
    if (!xml) {
        s.error(xml.error().full_message());
        return 1;
    }
    if (a.has("print-xml")) {
        s.out("{}", *xml);
        return 0;
    }
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto req = create_flags(a);
    req.xml = std::move(*xml);
    return create(s, dom->name, std::move(req), "");
}

int cmd_snapshot_list(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const bool tree = a.has("tree");
    if (tree && (a.has("parent") || a.has("roots") || a.has("name"))) {
        s.error("--tree cannot be combined with --parent, --roots or --name");
        return 1;
    }
    if (a.has("parent") && a.has("roots")) {
        s.error("--parent and --roots are mutually exclusive");
        return 1;
    }
    if (a.has("from") && a.has("current")) {
        s.error("Options --from and --current are mutually exclusive");
        return 1;
    }
    if (a.has("no-metadata")) {  // vireo keeps metadata of every snapshot it lists
        if (!a.has("metadata")) s.out("{}", a.has("name") || tree ? "" : format_snapshot_table({}, a.has("parent")));
        return 0;
    }
    auto all = list_of(s, dom->name);
    if (!all) {
        s.error(all.error().full_message());
        return 1;
    }
    SnapshotFilter f{.roots = a.has("roots"), .leaves = a.has("leaves"), .no_leaves = a.has("no-leaves"),
                     .inactive = a.has("inactive"), .active = a.has("active"), .disk_only = a.has("disk-only"),
                     .internal = a.has("internal"), .external = a.has("external"), .from = a.get("from"),
                     .descendants = a.has("descendants") || tree};
    if (a.has("current")) {
        for (const auto& x : *all)
            if (x.current) f.from = x.name;
        if (f.from.empty()) {
            s.error("Domain snapshot not found: the domain does not have a current snapshot");
            return 1;
        }
    }
    auto rows = select_snapshots(*all, f);
    if (!rows) {
        s.error(rows.error().full_message());
        return 1;
    }
    if (a.has("json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& r : *rows) out.push_back(snapshot_json(r));
        s.out("{}\n", out.dump(2));
    } else if (tree) {
        s.out("{}", format_snapshot_tree(*rows));
    } else if (a.has("name")) {
        for (const auto& r : *rows) s.out("{}\n", r.name);
    } else {
        s.out("{}", format_snapshot_table(*rows, a.has("parent")));
    }
    return 0;
}

int cmd_snapshot_info(Session& s, const Args& a) {
    auto found = chosen_snapshot(s, a);
    if (!found) return 1;
    if (a.has("json")) {
        auto j = snapshot_json(found->snapshot());
        j["domain"] = found->domain;
        s.out("{}\n", j.dump(2));
    } else {
        s.out("{}", format_snapshot_info(found->all, found->snapshot(), found->domain));
    }
    return 0;
}

int cmd_snapshot_dumpxml(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto xml = s.conn()->call<ops::SnapshotXml>({.ref = dom->name, .name = a.get("snapshotname"),
                                                 .security_info = a.has("security-info")});
    if (!xml) {
        s.error(xml.error().full_message());
        return 1;
    }
    s.out("{}", *xml);
    return 0;
}

int cmd_snapshot_current(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    if (a.has("snapshotname")) {  // make it the current one: redefine it as current
        if (a.has("name")) {
            s.error("--name and snapshotname are mutually exclusive");
            return 1;
        }
        const std::string name = a.get("snapshotname");
        auto xml = s.conn()->call<ops::SnapshotXml>({.ref = dom->name, .name = name});
        auto set = xml ? s.conn()->call<ops::SnapshotCreate>({.ref = dom->name, .xml = *xml, .redefine = true, .current = true})
                       : Result<std::string>(std::unexpected(xml.error()));
        if (!set) {
            s.error(set.error().full_message());
            return 1;
        }
        s.info("Snapshot {} set as current\n", name);
        return 0;
    }
    auto name = pick_snapshot(s, a, dom->name, true);
    if (!name) return 1;
    if (a.has("name")) {
        s.out("{}\n", *name);
        return 0;
    }
    auto xml = s.conn()->call<ops::SnapshotXml>({.ref = dom->name, .name = *name, .security_info = a.has("security-info")});
    if (!xml) {
        s.error(xml.error().full_message());
        return 1;
    }
    s.out("{}", *xml);
    return 0;
}

// virsh snapshot-edit: the snapshot's XML (secrets included) in $EDITOR,
// redefined from the edited text. A name with --current also makes it the
// current snapshot (redefined even when the text is unchanged). A changed
// name needs --clone (both stay) or --rename (the old metadata goes);
// without either the new copy is removed again and the edit refused. Only
// metadata changes: an internal snapshot's data keeps its tag in the images.
int cmd_snapshot_edit(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const bool rename = a.has("rename");
    const bool clone = a.has("clone");
    if (rename && clone) {
        s.error("Options --rename and --clone are mutually exclusive");
        return 1;
    }
    std::string name = a.get("snapshotname");
    if (name.empty()) {
        auto current = pick_snapshot(s, a, dom->name, false);
        if (!current) return 1;
        name = *current;
    }
    const bool make_current = a.has("snapshotname") && a.has("current");
    auto xml = s.conn()->call<ops::SnapshotXml>({.ref = dom->name, .name = name, .security_info = true});
    if (!xml) {
        s.error(xml.error().full_message());
        return 1;
    }
    XmlEdit edit;
    edit.original = std::move(*xml);
    edit.name = name;
    edit.redefine_unchanged = make_current;
    edit.not_changed_message = [](std::string_view n) { return fmt::format("Snapshot {} XML configuration not changed.\n", n); };
    edit.edited_message = [clone](std::string_view before, std::string_view after) -> std::string {
        if (before == after) return fmt::format("Snapshot {} edited.\n", before);
        return clone ? fmt::format("Snapshot {} cloned to {}.\n", before, after) : std::string();
    };
    const std::string domain = dom->name;
    edit.redefine = [&s, domain, name, rename, clone, make_current](std::string_view text, bool) -> Result<std::string> {
        auto defined = s.conn()->call<ops::SnapshotCreate>(
            {.ref = domain, .xml = std::string(text), .redefine = true, .current = make_current});
        if (!defined) return std::unexpected(defined.error());
        if (*defined == name || clone) return *defined;
        const std::string& gone = rename ? name : *defined;
        if (auto removed = s.conn()->call<ops::SnapshotDelete>({.ref = domain, .name = gone, .metadata = true}); !removed)
            return std::unexpected(removed.error().context(fmt::format("Failed to clean up {}", gone)));
        if (!rename) return fail(ErrorCode::InvalidArg, "Must use --rename or --clone to change {} to {}", name, *defined);
        return *defined;
    };
    return edit_xml(s, edit);
}

int cmd_snapshot_parent(Session& s, const Args& a) {
    auto found = chosen_snapshot(s, a);
    if (!found) return 1;
    const auto& x = found->snapshot();
    if (x.parent.empty()) {
        s.error(fmt::format("snapshot '{}' has no parent", x.name));
        return 1;
    }
    s.out("{}\n", x.parent);
    return 0;
}

int cmd_snapshot_revert(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    if (a.has("reset-nvram")) {
        s.error("unsupported configuration: --reset-nvram is not supported yet");
        return 1;
    }
    auto name = pick_snapshot(s, a, dom->name, false);
    if (!name) return 1;
    auto st = s.conn()->call<ops::SnapshotRevert>(
        {.ref = dom->name, .name = *name, .running = a.has("running"), .paused = a.has("paused"), .force = a.has("force")});
    if (!st) {
        s.error(st.error().full_message());
        return 1;
    }
    return 0;
}

int cmd_snapshot_delete(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto name = pick_snapshot(s, a, dom->name, false);
    if (!name) return 1;
    auto st = s.conn()->call<ops::SnapshotDelete>({.ref = dom->name, .name = *name, .children = a.has("children"),
                                                   .children_only = a.has("children-only"), .metadata = a.has("metadata")});
    if (!st) {
        s.error(fmt::format("Failed to delete snapshot {}", *name), st.error());
        return 1;
    }
    if (a.has("children-only")) s.info("Domain snapshot {} children deleted\n", *name);
    else s.info("Domain snapshot {} deleted\n", *name);
    return 0;
}

}  // namespace

void add_snapshot_commands(std::vector<CommandSpec>& t) {
    const std::string_view g = "Snapshot";
    const std::vector<OptSpec> create_opts{
        {"no-metadata", OptType::Bool, "take snapshot but create no metadata"},
        {"halt", OptType::Bool, "halt domain after snapshot is created"},
        {"disk-only", OptType::Bool, "capture disk state but not vm state"},
        {"reuse-external", OptType::Bool, "reuse any existing external files"},
        {"quiesce", OptType::Bool, "quiesce guest's file systems (not supported yet)"},
        {"atomic", OptType::Bool, "require atomic operation"},
        {"live", OptType::Bool, "take a live snapshot (not supported yet)"},
        {"validate", OptType::Bool, "validate the XML against the schema"}};
    std::vector<OptSpec> create{kDomainOpt,
                                {"xmlfile", OptType::String, "domain snapshot XML", false, true},
                                {"redefine", OptType::Bool, "redefine metadata for existing snapshot"},
                                {"current", OptType::Bool, "with redefine, set current snapshot"}};
    create.insert(create.end(), create_opts.begin(), create_opts.end());
    t.push_back({"snapshot-create", g, "Create a snapshot from XML",
                 "Create a snapshot (disk and RAM) from XML", create, cmd_snapshot_create, true, true});
    std::vector<OptSpec> create_as{kDomainOpt,
                                   {"name", OptType::String, "name of snapshot", false, true},
                                   {"description", OptType::String, "description of snapshot", false, true},
                                   {"print-xml", OptType::Bool, "print XML document rather than create"},
                                   {"memspec", OptType::String, "memory attributes (not supported yet)"},
                                   {"diskspec", OptType::Argv,
                                    "disk attributes: disk[,snapshot=type][,driver=type][,stype=type][,file=name]"}};
    create_as.insert(create_as.end(), create_opts.begin(), create_opts.end());
    t.push_back({"snapshot-create-as", g, "Create a snapshot from a set of args",
                 "Create a snapshot (disk and RAM) from arguments", create_as, cmd_snapshot_create_as, true, true});
    t.push_back({"snapshot-list", g, "List snapshots for a domain", "Snapshot List",
                 {kDomainOpt,
                  {"parent", OptType::Bool, "add a column showing parent snapshot"},
                  {"roots", OptType::Bool, "list only snapshots without parents"},
                  {"leaves", OptType::Bool, "list only snapshots without children"},
                  {"no-leaves", OptType::Bool, "list only snapshots that are not leaves (with children)"},
                  {"metadata", OptType::Bool, "list only snapshots that have metadata that would prevent undefine"},
                  {"no-metadata", OptType::Bool, "list only snapshots that have no metadata managed by libvirt"},
                  {"inactive", OptType::Bool, "filter by snapshots taken while inactive"},
                  {"active", OptType::Bool, "filter by snapshots taken while active (full system snapshots)"},
                  {"disk-only", OptType::Bool, "filter by disk-only snapshots"},
                  {"internal", OptType::Bool, "filter by internal snapshots"},
                  {"external", OptType::Bool, "filter by external snapshots"},
                  {"tree", OptType::Bool, "list snapshots in a tree"},
                  {"from", OptType::String, "limit list to children of given snapshot"},
                  {"current", OptType::Bool, "limit list to children of current snapshot"},
                  {"descendants", OptType::Bool, "with --from, list all descendants"},
                  {"name", OptType::Bool, "list snapshot names only"},
                  kJsonOpt},
                 cmd_snapshot_list, true, false});
    t.push_back({"snapshot-info", g, "snapshot information", "Returns basic information about a snapshot.",
                 {kDomainOpt, kSnapName, kCurrentSnap, kJsonOpt}, cmd_snapshot_info, true, false});
    t.push_back({"snapshot-dumpxml", g, "Dump XML for a domain snapshot", "Snapshot Dump XML",
                 {kDomainOpt,
                  {"snapshotname", OptType::String, "snapshot name", true, true},
                  {"security-info", OptType::Bool, "include security sensitive information in XML dump"}},
                 cmd_snapshot_dumpxml, true, false});
    t.push_back({"snapshot-current", g, "Get or set the current snapshot", "Get or set the current snapshot",
                 {kDomainOpt,
                  {"name", OptType::Bool, "list the name, rather than the full xml"},
                  {"security-info", OptType::Bool, "include security sensitive information in XML dump"},
                  {"snapshotname", OptType::String, "name of existing snapshot to make current", false, true}},
                 cmd_snapshot_current, true, false});
    t.push_back({"snapshot-edit", g, "edit XML for a snapshot", "Edit the domain snapshot XML for a named snapshot",
                 {kDomainOpt, kSnapName,
                  {"current", OptType::Bool, "also set edited snapshot as current"},
                  {"rename", OptType::Bool, "allow renaming an existing snapshot"},
                  {"clone", OptType::Bool, "allow cloning to new name"}},
                 cmd_snapshot_edit, true, true});
    t.push_back({"snapshot-parent", g, "Get the name of the parent of a snapshot",
                 "Extract the snapshot's parent, if any", {kDomainOpt, kSnapName, kCurrentSnap}, cmd_snapshot_parent,
                 true, false});
    t.push_back({"snapshot-revert", g, "Revert a domain to a snapshot", "Revert domain to snapshot",
                 {kDomainOpt, kSnapName, kCurrentSnap,
                  {"running", OptType::Bool, "after reverting, change state to running"},
                  {"paused", OptType::Bool, "after reverting, change state to paused"},
                  {"force", OptType::Bool, "try harder on risky reverts"},
                  {"reset-nvram", OptType::Bool, "re-initialize NVRAM from its pristine template (not supported yet)"}},
                 cmd_snapshot_revert, true, true});
    t.push_back({"snapshot-delete", g, "Delete a domain snapshot", "Snapshot Delete",
                 {kDomainOpt, kSnapName, kCurrentSnap,
                  {"children", OptType::Bool, "delete snapshot and all children"},
                  {"children-only", OptType::Bool, "delete children but not snapshot"},
                  {"metadata", OptType::Bool, "delete only libvirt metadata, leaving snapshot contents behind"}},
                 cmd_snapshot_delete, true, true});
}

}  // namespace vireo::cli
