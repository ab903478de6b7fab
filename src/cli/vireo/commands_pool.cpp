// Storage pool verbs, as virsh has them: pool-define, pool-define-as,
// pool-create, pool-create-as, pool-build, pool-start, pool-destroy,
// pool-delete, pool-undefine, pool-autostart, pool-refresh, pool-info,
// pool-list, pool-dumpxml, pool-edit, pool-name, pool-uuid.
#include "cli/vireo/commands.hpp"
#include "cli/vireo/pool_format.hpp"
#include "cli/vireo/session.hpp"
#include "cli/vireo/storage_lookup.hpp"
#include "util/files.hpp"

namespace vireo::cli {

driver::PoolApi* pool_api(Session& session) {
    auto* conn = session.conn();
    return conn == nullptr ? nullptr : &conn->pools();
}

std::optional<driver::PoolSummary> find_pool(Session& s, std::string_view ref) {
    auto* api = pool_api(s);
    if (api == nullptr) return std::nullopt;
    auto found = api->lookup_pool(ref);
    if (found) return *found;
    s.error(fmt::format("failed to get pool '{}'", ref), found.error());
    return std::nullopt;
}

std::optional<driver::VolumeSummary> find_volume(Session& s, std::string_view vol, std::string_view pool,
                                                 std::string_view pool_option) {
    auto* api = pool_api(s);
    if (api == nullptr) return std::nullopt;
    if (!pool.empty()) {
        auto p = find_pool(s, pool);
        if (!p) return std::nullopt;
        auto by_name = api->lookup_volume(p->name, vol);
        if (by_name) return *by_name;
        // virsh falls back to the key or path when the name is not in the pool.
        if (auto by_key = api->lookup_volume("", vol); by_key) return *by_key;
        s.error(fmt::format("failed to get vol '{}'", vol), by_name.error());
        return std::nullopt;
    }
    auto found = api->lookup_volume("", vol);
    if (found) return *found;
    s.error(fmt::format("failed to get vol '{}', specifying --{} might help", vol, pool_option), found.error());
    return std::nullopt;
}

namespace {

constexpr OptSpec kPoolOpt{"pool", OptType::String, "pool name or uuid", true, true};
constexpr OptSpec kBuildOpt{"build", OptType::Bool, "build the pool as normal"};
constexpr OptSpec kNoOverwriteOpt{"no-overwrite", OptType::Bool,
                                  "do not overwrite any existing data (fs, disk: refuse if formatted)"};
constexpr OptSpec kOverwriteOpt{"overwrite", OptType::Bool, "overwrite any existing data"};

std::optional<driver::PoolBuildFlags> build_flags(Session& s, const Args& a) {
    if (a.has("overwrite") && a.has("no-overwrite")) {
        s.error("Options --overwrite and --no-overwrite are mutually exclusive");
        return std::nullopt;
    }
    driver::PoolBuildFlags flags;
    flags.overwrite = a.has("overwrite");
    flags.no_overwrite = a.has("no-overwrite");
    return flags;
}

// Run one action on a named pool and print virsh's message for it.
template <class Action>
int on_pool(Session& s, const Args& a, std::string_view failed, std::string_view done, Action action) {
    auto pool = find_pool(s, a.get("pool"));
    if (!pool) return 1;
    if (auto st = action(*pool_api(s), pool->name); !st) {
        s.error(fmt::format(fmt::runtime(failed), pool->name), st.error());
        return 1;
    }
    s.info("{}\n\n", fmt::format(fmt::runtime(done), pool->name));
    return 0;
}

int cmd_pool_define(Session& s, const Args& a) {
    const std::string file = a.get("file");
    auto xml = read_xml_file(s, file);
    if (!xml) return 1;
    auto* api = pool_api(s);
    if (api == nullptr) return 1;
    auto pool = api->define_pool(*xml);
    if (!pool) {
        s.error(fmt::format("Failed to define pool from {}", file), pool.error());
        return 1;
    }
    s.info("Pool {} defined from {}\n\n", pool->name, file);
    return 0;
}

int cmd_pool_create(Session& s, const Args& a) {
    const std::string file = a.get("file");
    auto flags = build_flags(s, a);
    if (!flags) return 1;
    auto xml = read_xml_file(s, file);
    if (!xml) return 1;
    auto* api = pool_api(s);
    if (api == nullptr) return 1;
    auto pool = api->create_pool(*xml, a.has("build"), *flags);
    if (!pool) {
        s.error(fmt::format("Failed to create pool from {}", file), pool.error());
        return 1;
    }
    s.info("Pool {} created from {}\n\n", pool->name, file);
    return 0;
}

PoolXmlSpec pool_spec(const Args& a) {
    PoolXmlSpec spec;
    spec.name = a.get("name");
    spec.type = a.get("type");
    spec.source_host = a.get("source-host");
    spec.source_path = a.get("source-path");
    spec.source_dev = a.get("source-dev");
    spec.source_name = a.get("source-name");
    spec.source_format = a.get("source-format");
    spec.target = a.get("target");
    return spec;
}

int cmd_pool_define_as(Session& s, const Args& a) {
    const std::string xml = build_pool_xml(pool_spec(a));
    if (a.has("print-xml")) {
        s.out("{}\n", xml);
        return 0;
    }
    auto* api = pool_api(s);
    if (api == nullptr) return 1;
    auto pool = api->define_pool(xml);
    if (!pool) {
        s.error(fmt::format("Failed to define pool {}", a.get("name")), pool.error());
        return 1;
    }
    s.info("Pool {} defined\n\n", pool->name);
    return 0;
}

int cmd_pool_create_as(Session& s, const Args& a) {
    auto flags = build_flags(s, a);
    if (!flags) return 1;
    const std::string xml = build_pool_xml(pool_spec(a));
    if (a.has("print-xml")) {
        s.out("{}\n", xml);
        return 0;
    }
    auto* api = pool_api(s);
    if (api == nullptr) return 1;
    auto pool = api->create_pool(xml, a.has("build"), *flags);
    if (!pool) {
        s.error(fmt::format("Failed to create pool {}", a.get("name")), pool.error());
        return 1;
    }
    s.info("Pool {} created\n\n", pool->name);
    return 0;
}

int cmd_pool_build(Session& s, const Args& a) {
    auto flags = build_flags(s, a);
    if (!flags) return 1;
    return on_pool(s, a, "Failed to build pool {}", "Pool {} built",
                   [&](driver::PoolApi& api, const std::string& name) { return api.build_pool(name, *flags); });
}

int cmd_pool_start(Session& s, const Args& a) {
    auto flags = build_flags(s, a);
    if (!flags) return 1;
    const bool build = a.has("build") || a.has("overwrite") || a.has("no-overwrite");
    return on_pool(s, a, "Failed to start pool {}", "Pool {} started", [&](driver::PoolApi& api, const std::string& name) {
        return api.start_pool(name, build, *flags);
    });
}

int cmd_pool_destroy(Session& s, const Args& a) {
    return on_pool(s, a, "Failed to destroy pool {}", "Pool {} destroyed",
                   [](driver::PoolApi& api, const std::string& name) { return api.destroy_pool(name); });
}

int cmd_pool_delete(Session& s, const Args& a) {
    return on_pool(s, a, "Failed to delete pool {}", "Pool {} deleted",
                   [](driver::PoolApi& api, const std::string& name) { return api.delete_pool(name); });
}

int cmd_pool_undefine(Session& s, const Args& a) {
    return on_pool(s, a, "Failed to undefine pool {}", "Pool {} has been undefined",
                   [](driver::PoolApi& api, const std::string& name) { return api.undefine_pool(name); });
}

int cmd_pool_refresh(Session& s, const Args& a) {
    return on_pool(s, a, "Failed to refresh pool {}", "Pool {} refreshed",
                   [](driver::PoolApi& api, const std::string& name) { return api.refresh_pool(name); });
}

int cmd_pool_autostart(Session& s, const Args& a) {
    const bool enable = !a.has("disable");
    return on_pool(s, a, enable ? "failed to mark pool {} as autostarted" : "failed to unmark pool {} as autostarted",
                   enable ? "Pool {} marked as autostarted" : "Pool {} unmarked as autostarted",
                   [&](driver::PoolApi& api, const std::string& name) { return api.set_pool_autostart(name, enable); });
}

int cmd_pool_info(Session& s, const Args& a) {
    auto pool = find_pool(s, a.get("pool"));
    if (!pool) return 1;
    if (a.has("json"))
        s.out("{}\n", pool_json(*pool).dump(2));
    else
        s.out("{}\n", format_pool_info(*pool, a.has("bytes")));
    return 0;
}

std::optional<PoolListFilter> pool_list_filter(Session& s, const Args& a) {
    if (a.has("all") && a.has("inactive")) {
        s.error("Options --all and --inactive are mutually exclusive");
        return std::nullopt;
    }
    PoolListFilter f;
    f.active = !a.has("inactive");
    f.inactive = a.has("inactive") || a.has("all");
    f.persistent = a.has("persistent");
    f.transient = a.has("transient");
    f.autostart = a.has("autostart");
    f.no_autostart = a.has("no-autostart");
    if (a.has("type")) {
        auto types = parse_pool_types(a.get("type"));
        if (!types) {
            s.error(types.error().message);
            return std::nullopt;
        }
        f.types = std::move(*types);
    }
    return f;
}

int cmd_pool_list(Session& s, const Args& a) {
    const bool details = a.has("details"), names = a.has("name"), uuids = a.has("uuid");
    for (std::string_view other : {"name", "uuid"})
        if (details && a.has(other)) {
            s.error(fmt::format("Options --details and --{} are mutually exclusive", other));
            return 1;
        }
    auto filter = pool_list_filter(s, a);
    if (!filter) return 1;
    auto* api = pool_api(s);
    if (api == nullptr) return 1;
    auto all = api->list_pools();
    if (!all) {
        s.error("Failed to list pools", all.error());
        return 1;
    }
    auto pools = select_pools(std::move(*all), *filter);
    if (a.has("json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& p : pools) out.push_back(pool_json(p));
        s.out("{}\n", out.dump(2));
        return 0;
    }
    if (names || uuids)
        s.out("{}\n", format_pool_names(pools, uuids, names));
    else
        s.out("{}\n", format_pool_table(pools, details, !s.quiet()));
    return 0;
}

int cmd_pool_dumpxml(Session& s, const Args& a) {
    auto pool = find_pool(s, a.get("pool"));
    if (!pool) return 1;
    auto xml = pool_api(s)->pool_xml(pool->name, a.has("inactive"));
    if (!xml) {
        s.error(fmt::format("failed to get the XML of pool {}", pool->name), xml.error());
        return 1;
    }
    s.out("{}{}\n", *xml, xml->ends_with('\n') ? "" : "\n");
    return 0;
}

int cmd_pool_edit(Session& s, const Args& a) {
    auto pool = find_pool(s, a.get("pool"));
    if (!pool) return 1;
    auto* api = pool_api(s);
    auto original = api->pool_xml(pool->name, true);
    if (!original) {
        s.error(fmt::format("failed to get the XML of pool {}", pool->name), original.error());
        return 1;
    }
    XmlEdit edit;
    edit.original = std::move(*original);
    edit.name = pool->name;
    edit.label = [](std::string_view name) { return fmt::format("Pool {}", name); };
    // Pool XML has no schema switch: `validate` only matters for domains.
    edit.redefine = [api](std::string_view xml, bool /*validate*/) -> Result<std::string> {
        auto defined = api->define_pool(xml);
        if (!defined) return std::unexpected(defined.error());
        return defined->name;
    };
    return edit_xml(s, edit);
}

int cmd_pool_name(Session& s, const Args& a) {
    auto pool = find_pool(s, a.get("pool"));
    if (!pool) return 1;
    s.out("{}\n\n", pool->name);
    return 0;
}

int cmd_pool_uuid(Session& s, const Args& a) {
    auto pool = find_pool(s, a.get("pool"));
    if (!pool) return 1;
    s.out("{}\n\n", pool->uuid.str());
    return 0;
}

// pool-define-as / pool-create-as: virsh takes the source and target
// options positionally too (`pool-define-as p dir - - - - /srv/p`).
std::vector<OptSpec> pool_as_options(bool create) {
    std::vector<OptSpec> opts{
        {"name", OptType::String, "name of the pool", true, true},
        {"type", OptType::String, "type of the pool (dir, fs, disk)", true, true},
        {"source-host", OptType::String, "source-host for underlying storage", false, true},
        {"source-path", OptType::String, "source path for underlying storage", false, true},
        {"source-dev", OptType::String, "source device for underlying storage (fs: device or image file, disk: the disk)",
         false, true},
        {"source-name", OptType::String, "source name for underlying storage", false, true},
        {"target", OptType::String, "target for underlying storage (dir, fs: the directory)", false, true},
        {"source-format", OptType::String, "format for underlying storage (fs: ext4, xfs, ...; disk: gpt, dos)"},
        {"print-xml", OptType::Bool, "print XML document, but don't define/create"},
    };
    if (create) {
        opts.push_back(kBuildOpt);
        opts.push_back(kNoOverwriteOpt);
        opts.push_back(kOverwriteOpt);
    }
    return opts;
}

}  // namespace

void add_pool_commands(std::vector<CommandSpec>& t) {
    const std::string_view g = "Storage Pool";
    t.push_back({"pool-define", g, "define an inactive persistent storage pool from an XML file",
                 "Define a new persistent storage pool from an XML file (libvirt's pool format).",
                 {{"file", OptType::String, "file containing an XML pool description", true, true}},
                 cmd_pool_define, true, true});
    t.push_back({"pool-define-as", g, "define a pool from a set of args",
                 "Define a persistent storage pool from the options given.", pool_as_options(false), cmd_pool_define_as,
                 true, true});
    t.push_back({"pool-create", g, "create a pool from an XML file",
                 "Create and start a transient storage pool from an XML file.",
                 {{"file", OptType::String, "file containing an XML pool description", true, true}, kBuildOpt,
                  kNoOverwriteOpt, kOverwriteOpt},
                 cmd_pool_create, true, true});
    t.push_back({"pool-create-as", g, "create a pool from a set of args",
                 "Create and start a transient storage pool from the options given.", pool_as_options(true),
                 cmd_pool_create_as, true, true});
    t.push_back({"pool-build", g, "build a pool",
                 "Build a given pool (dir: make the directory; fs: mkfs on the source; disk: write a partition table).",
                 {kPoolOpt, kNoOverwriteOpt, kOverwriteOpt}, cmd_pool_build, true, true});
    t.push_back({"pool-start", g, "start a pool", "Start a (previously defined) inactive pool.",
                 {kPoolOpt, kBuildOpt, kNoOverwriteOpt, kOverwriteOpt}, cmd_pool_start, true, true});
    t.push_back({"pool-destroy", g, "destroy (stop) a pool",
                 "Forcefully stop a given pool. Raw data in the pool is untouched.\n"
                 "Refused while a running domain uses one of its volumes.",
                 {kPoolOpt}, cmd_pool_destroy, true, true});
    t.push_back({"pool-delete", g, "delete a pool", "Delete a given pool's storage (only while it is inactive).",
                 {kPoolOpt}, cmd_pool_delete, true, true});
    t.push_back({"pool-undefine", g, "undefine an inactive pool", "Undefine the configuration for an inactive pool.",
                 {kPoolOpt}, cmd_pool_undefine, true, true});
    t.push_back({"pool-autostart", g, "autostart a pool", "Configure a pool to be automatically started at boot.",
                 {kPoolOpt, {"disable", OptType::Bool, "disable autostarting"}}, cmd_pool_autostart, true, true});
    t.push_back({"pool-refresh", g, "refresh a pool", "Refresh a given pool's list of volumes.", {kPoolOpt},
                 cmd_pool_refresh, true, true});
    t.push_back({"pool-info", g, "storage pool information", "Returns basic information about the storage pool.",
                 {kPoolOpt, {"bytes", OptType::Bool, "return pool info in bytes"}, kJsonOpt}, cmd_pool_info});
    t.push_back({"pool-list", g, "list pools", "Returns list of pools.",
                 {{"inactive", OptType::Bool, "list inactive pools"},
                  {"all", OptType::Bool, "list inactive & active pools"},
                  {"transient", OptType::Bool, "list transient pools"},
                  {"persistent", OptType::Bool, "list persistent pools"},
                  {"autostart", OptType::Bool, "list pools with autostart enabled"},
                  {"no-autostart", OptType::Bool, "list pools with autostart disabled"},
                  {"type", OptType::String, "only list pool of specified type(s) (if supported)"},
                  {"details", OptType::Bool, "display extended details for pools"},
                  {"uuid", OptType::Bool, "list UUID of active pools only"},
                  {"name", OptType::Bool, "list name of active pools only"},
                  kJsonOpt},
                 cmd_pool_list});
    t.push_back({"pool-dumpxml", g, "pool information in XML", "Output the pool information as an XML dump to stdout.",
                 {kPoolOpt, {"inactive", OptType::Bool, "show inactive defined XML"}}, cmd_pool_dumpxml});
    t.push_back({"pool-edit", g, "edit XML configuration for a storage pool",
                 "Edit the XML configuration for a storage pool in $VISUAL or $EDITOR.\n"
                 "The result is redefined through the connection; on an error you may edit again.",
                 {kPoolOpt}, cmd_pool_edit, true, true});
    t.push_back({"pool-name", g, "convert a pool UUID to pool name", "",
                 {{"pool", OptType::String, "pool uuid", true, true}}, cmd_pool_name});
    t.push_back({"pool-uuid", g, "convert a pool name to pool UUID", "",
                 {{"pool", OptType::String, "pool name", true, true}}, cmd_pool_uuid});
}

}  // namespace vireo::cli
