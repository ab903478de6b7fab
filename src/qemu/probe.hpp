// What a QEMU binary can do, asked of the binary itself over QMP, and an
// on-disk cache of the answer so a daemon start does not pay the probe
// (~250 ms per binary) again.
//
// The cache entry of a binary is keyed by its identity (path, size, mtime,
// inode) plus the cache format version: upgrading QEMU (a new file) or
// vireo (a new format) re-probes, nothing else does.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/error.hpp"

namespace vireo::qemu {

struct MachineType {
    std::string name;   // "pc-q35-7.2"
    std::string alias;  // "q35" (empty when none)
    bool is_default = false;
    int cpu_max = 1;
    bool deprecated = false;
};

// Identity of a binary file; a change in any field means "another binary".
struct BinaryIdentity {
    std::string path;
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::uint64_t inode = 0;
    friend bool operator==(const BinaryIdentity&, const BinaryIdentity&) = default;
};
Result<BinaryIdentity> identify_binary(const std::filesystem::path& path);

struct QemuCaps { // NOLINT(bugprone-exception-escape): clang-tidy 16 counts an implicit member's possible throw (set/json copies) here
    BinaryIdentity binary;
    std::string arch;  // "x86_64" (from the binary name qemu-system-<arch>)
    int major = 0, minor = 0, micro = 0;
    std::string package;                  // distribution package string
    std::vector<MachineType> machines;
    std::set<std::string> accelerators;   // "tcg", "kvm", ... compiled in
    std::set<std::string> cpu_models;
    std::set<std::string> devices;        // non-abstract device types
    std::set<std::string> commands;       // QMP commands (from the schema)
    std::set<std::string> events;         // QMP events (from the schema)
    // The full QMP schema is not kept: as JSON in memory it is megabytes,
    // held for the daemon's life from its first define, and no check needs
    // more than the names above. A finer check adds the fact it needs here.

    [[nodiscard]] std::string version_string() const;  // "7.2.22"
    [[nodiscard]] unsigned version_number() const;     // 7002022
    [[nodiscard]] bool has_device(std::string_view name) const { return devices.contains(std::string(name)); }
    [[nodiscard]] bool has_command(std::string_view name) const { return commands.contains(std::string(name)); }
    // Resolve an alias ("q35", "pc") or full name to the canonical machine
    // type; nullptr when unknown. Empty name = the binary's default machine.
    [[nodiscard]] const MachineType* find_machine(std::string_view name) const;

    [[nodiscard]] nlohmann::json to_json() const;
    static Result<QemuCaps> from_json(const nlohmann::json& j);
};

// Run the binary (no guest, TCG, paused) and ask it over QMP.
Result<QemuCaps> probe_binary(const std::filesystem::path& binary);

// Every qemu-system-* binary in $PATH and the usual directories, sorted.
std::vector<std::filesystem::path> find_qemu_binaries();
// qemu-system-<arch> for an architecture ("x86_64"); NotFound when absent.
Result<std::filesystem::path> find_qemu_binary(std::string_view arch);

// Thread-safe memory + disk cache of probe results.
class CapsCache {
public:
    // Entries live in <cache_dir>/capabilities/*.json; an empty dir means
    // memory only.
    explicit CapsCache(std::filesystem::path cache_dir);

    // Cached answer when the binary is unchanged, else probe and store.
    Result<std::shared_ptr<const QemuCaps>> get(const std::filesystem::path& binary);
    // How many real probes this cache ran (for tests).
    [[nodiscard]] unsigned probes_run() const;
    // Take `caps` as the answer for its binary (caps->binary must be that
    // binary's identity) without probing: for tests that run a fake QEMU.
    void remember(std::shared_ptr<const QemuCaps> caps);

    static constexpr int kFormatVersion = 2;  // 2: no "schema"

private:
    std::filesystem::path entry_path(const std::filesystem::path& binary) const;

    std::filesystem::path dir_;
    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<const QemuCaps>> memory_;
    unsigned probes_ = 0;
};

}  // namespace vireo::qemu
