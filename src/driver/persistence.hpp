// On-disk state of the domains of a driver: persistent definitions,
// autostart links and runtime status files. A thin layer over the
// ObjectStore every object kind shares (object_store.hpp: layout, crash
// safety, name checks); this one knows the domain formats: definitions
// parse into DomainDefinition, status documents are <domstatus>.
//
// Layout (as libvirt's):
//   <confdir>/<name>.xml                      persistent definition
//   <confdir>/autostart/<name>.xml -> ../<name>.xml   autostart link
//   <rundir>/<name>.xml                       runtime status of a running domain
//
// Loading never fails as a whole: a torn, unparsable or misnamed file is
// logged, reported in LoadReport::skipped and left in place (never deleted),
// so an operator can inspect and fix it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "driver/object_store.hpp"
#include "driver/registry.hpp"
#include "util/error.hpp"

namespace vireo::driver {

// A runtime status document: generic key/value pairs plus the live XML.
// The QEMU driver stores e.g. pid, pid_start_time, qmp_socket, state,
// reason, id; the format does not care which keys exist.
//
// On disk:
//   <domstatus version='1'>
//     <value key='pid'>1234</value>
//     ...
//     <domain type='kvm'>...live definition...</domain>
//   </domstatus>
struct RuntimeStatus {
    std::map<std::string, std::string> values;
    std::string live_xml;

    void set(const std::string& key, std::string value) { values[key] = std::move(value); }
    void set(const std::string& key, std::int64_t value) { values[key] = std::to_string(value); }
    [[nodiscard]] std::optional<std::string> get(std::string_view key) const;
    // nullopt when absent or not an integer.
    [[nodiscard]] std::optional<std::int64_t> get_int(std::string_view key) const;
};

// Serialize / parse the document above (exposed for tests and tools).
Result<std::string> format_runtime_status(const RuntimeStatus& status);
Result<RuntimeStatus> parse_runtime_status(std::string_view text);

struct LoadedDefinition {
    std::string name;
    DomainDefinition definition;
    bool autostart = false;
};

struct LoadReport {
    std::vector<LoadedDefinition> definitions;  // sorted by name
    std::vector<std::string> skipped;           // "<path>: <why>", one per bad file
};

class Persistence {
public:
    Persistence(std::filesystem::path confdir, std::filesystem::path rundir);

    [[nodiscard]] const std::filesystem::path& config_dir() const { return store_.config_dir(); }
    [[nodiscard]] const std::filesystem::path& run_dir() const { return store_.run_dir(); }
    [[nodiscard]] std::filesystem::path config_path(std::string_view name) const { return store_.config_path(name); }
    [[nodiscard]] std::filesystem::path autostart_path(std::string_view name) const {
        return store_.autostart_path(name);
    }
    [[nodiscard]] std::filesystem::path status_path(std::string_view name) const { return store_.status_path(name); }
    // The store underneath (files, no formats).
    [[nodiscard]] const ObjectStore& store() const { return store_; }

    // Create confdir, confdir/autostart and rundir (0755 / 0700 for rundir).
    Status prepare() const;

    // --- persistent definitions -------------------------------------------
    Status save_config(std::string_view name, std::string_view xml) const;
    // Remove the definition and its autostart link (missing files are fine).
    Status remove_config(std::string_view name) const;
    // Every <confdir>/*.xml that parses and whose <name> matches the file
    // name, with its autostart flag. Never fails: bad files are skipped.
    [[nodiscard]] LoadReport load_configs() const;

    // Load every definition into a registry as inactive persistent domains
    // (with autostart set). Definitions that conflict with objects already in
    // the registry are skipped and reported like bad files.
    LoadReport load_into(DomainRegistry& registry) const;

    // --- autostart -----------------------------------------------------------
    Status set_autostart(std::string_view name, bool enabled) const;
    [[nodiscard]] bool autostart(std::string_view name) const;

    // --- runtime status (written by the driver of running domains) ---------
    Status write_status(std::string_view name, const RuntimeStatus& status) const;
    // NotFound when there is no status file; Corrupt when it cannot be parsed.
    Result<RuntimeStatus> read_status(std::string_view name) const;
    Status remove_status(std::string_view name) const;
    // Names that have a status file (candidates for reattach at startup).
    [[nodiscard]] std::vector<std::string> status_names() const;

private:
    ObjectStore store_;
};

}  // namespace vireo::driver
