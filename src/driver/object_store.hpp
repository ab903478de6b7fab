// ObjectStore: the one crash-safe on-disk store of every kind of object a
// driver keeps (domains, storage pools, networks, host interfaces). It knows
// files, not formats: the layer above (driver::Persistence for domains,
// PoolManager for pools, the network driver for networks and interfaces)
// turns documents into objects.
//
// Layout (as libvirt's), the same for every kind:
//   <confdir>/<name>.xml                              persistent definition
//   <confdir>/autostart/<name>.xml -> ../<name>.xml   autostart link
//   <rundir>/<name>.xml                               runtime status
//
// Crash safety by construction:
//  - every document is written under a temporary name and renamed over the
//    old one: a kill -9 at any moment leaves the old or the new document,
//    never a torn one. Definitions and autostart links are also fsynced
//    (files::write_atomic, remove_durable), so they survive a power loss;
//    runtime status is not (files::write_replace, remove_file): it lives in
//    the run directory (tmpfs: /run, $XDG_RUNTIME_DIR) and describes
//    processes a power loss ends anyway, and a restart reconciles a stale
//    or missing status with what runs (the pid, the bridge, dnsmasq);
//  - an autostart link is made under a temporary name and renamed over the
//    final one, so enabling (even re-enabling an enabled one) never has a
//    moment without the link; disabling is one unlink;
//  - temporary names ('.<file>.tmp<pid>-<hex>') never end in ".xml", so a temp
//    file left by a kill is never taken for a document.
//
// Loading never fails as a whole: a file that cannot be read or that the
// caller rejects is logged, reported ("<path>: <why>") and left in place for
// an operator to inspect.
//
// Names are checked before any path is built from them: a name that is not
// one safe path component ("../x", "a/b", "") is InvalidArg.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"

namespace vireo::driver {

enum class ObjectKind { Domain, Pool, Network, Interface };

// How messages name an object of this kind: "domain", "storage pool", "network", "interface".
std::string_view kind_noun(ObjectKind kind);

class ObjectStore {
public:
    // One document read by load_configs()/load_statuses(): the object's name
    // (the file name without ".xml"), its path and its text.
    struct Document {
        std::string name;
        std::filesystem::path path;
        std::string text;
    };
    // Takes a document (moves what it keeps); an error rejects the file,
    // which is then reported as skipped with that error's message.
    using Visitor = std::function<Status(Document&)>;

    ObjectStore(ObjectKind kind, std::filesystem::path confdir, std::filesystem::path rundir);

    [[nodiscard]] ObjectKind kind() const { return kind_; }
    [[nodiscard]] const std::filesystem::path& config_dir() const { return confdir_; }
    [[nodiscard]] const std::filesystem::path& run_dir() const { return rundir_; }
    [[nodiscard]] std::filesystem::path config_path(std::string_view name) const;
    [[nodiscard]] std::filesystem::path autostart_path(std::string_view name) const;
    [[nodiscard]] std::filesystem::path status_path(std::string_view name) const;

    // InvalidArg unless `name` can be one file name (files::is_safe_name).
    Status check_name(std::string_view name) const;

    // Create confdir, confdir/autostart (0755) and rundir (0700).
    Status prepare() const;

    // --- persistent definitions ---------------------------------------------
    Status save_config(std::string_view name, std::string_view xml) const;
    // NotFound when there is none.
    Result<std::string> read_config(std::string_view name) const;
    // Remove the autostart link, then the definition (missing files are fine):
    // a kill in between leaves a definition without autostart, never a link
    // to nothing.
    Status remove_config(std::string_view name) const;
    // Visit every <confdir>/<name>.xml in name order; returns the skipped
    // files ("<path>: <why>"). A missing confdir is no definition at all.
    std::vector<std::string> load_configs(const Visitor& visit) const;

    // --- autostart --------------------------------------------------------------
    Status set_autostart(std::string_view name, bool enabled) const;
    [[nodiscard]] bool autostart(std::string_view name) const;

    // --- runtime status -----------------------------------------------------------
    Status save_status(std::string_view name, std::string_view text) const;
    // NotFound when there is none.
    Result<std::string> read_status(std::string_view name) const;
    Status remove_status(std::string_view name) const;
    // Names that have a status document, sorted.
    [[nodiscard]] std::vector<std::string> status_names() const;
    // As load_configs(), over <rundir>/<name>.xml.
    std::vector<std::string> load_statuses(const Visitor& visit) const;

private:
    std::vector<std::string> load_dir(const std::filesystem::path& dir, std::string_view what,
                                      const Visitor& visit) const;

    ObjectKind kind_;
    std::filesystem::path confdir_;
    std::filesystem::path rundir_;
};

}  // namespace vireo::driver
