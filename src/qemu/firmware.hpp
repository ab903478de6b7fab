// UEFI firmware autoselection from QEMU's firmware descriptors
// (docs/interop/firmware.json in QEMU): what `<os firmware='efi'>` becomes
// when a domain starts, as libvirt 9.0 does it.
//
// Descriptors are JSON files in, by rising priority,
//   /usr/share/qemu/firmware, /etc/qemu/firmware, $XDG_CONFIG_HOME/qemu/firmware
// A file in a higher-priority directory replaces the one of the same name
// below it (an empty file only hides it); the survivors are tried in the
// order of their file names. The first that fits the domain is taken:
// interface 'uefi', a flash mapping, a target with the guest's architecture
// and a machine glob matching its machine type, and the features the
// domain's <firmware><feature enabled='yes|no' name='...'/> asks for
// (secure-boot, enrolled-keys) present or absent.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "conf/domain.hpp"
#include "util/error.hpp"

namespace vireo::qemu {

struct FirmwareTarget {
    std::string architecture;           // x86_64
    std::vector<std::string> machines;  // globs: pc-q35-*
};

struct FirmwareDescriptor {
    std::filesystem::path path;  // the JSON file it came from
    std::vector<std::string> interface_types;
    std::string device;  // mapping.device: flash, memory, kernel
    std::string mode;    // mapping.mode (flash): split (default), combined, stateless
    std::string executable, executable_format;
    std::string nvram_template, nvram_template_format;
    std::vector<FirmwareTarget> targets;
    std::vector<std::string> features;

    [[nodiscard]] bool has_feature(std::string_view f) const;
};

// Parse one descriptor (`path` is kept for messages).
Result<FirmwareDescriptor> parse_firmware_descriptor(std::string_view json, const std::filesystem::path& path);

// The descriptor directories in rising priority (see above).
std::vector<std::filesystem::path> firmware_search_dirs();

// The descriptors of `dirs` (rising priority), overridden by name and
// sorted by file name. An unreadable or malformed file is an error naming it.
Result<std::vector<FirmwareDescriptor>> load_firmware_descriptors(const std::vector<std::filesystem::path>& dirs);

// What autoselection chose for a domain.
struct FirmwareChoice {
    const FirmwareDescriptor* descriptor = nullptr;
    bool secure = false;        // the firmware does secure boot (<loader secure='yes'>)
    bool requires_smm = false;  // QEMU must run it with SMM on
};

// The first descriptor that fits `def` (arch and canonical machine type
// filled in); libvirt's "Unable to find any firmware to satisfy 'efi'"
// when none does.
Result<FirmwareChoice> select_firmware(const conf::DomainDef& def, const std::vector<FirmwareDescriptor>& descriptors);

// The live definition of a start: <loader>, <nvram template> and the NVRAM
// path `nvram_path` filled in for `<os firmware='efi'>` (the attribute goes,
// as in libvirt's live XML), <smm state='on'/> added when the firmware
// needs SMM -- refused when the domain turned SMM off. A definition with an
// explicit pflash loader gets its NVRAM template from the descriptor of
// that loader when it names none. Other definitions are left alone.
Status apply_firmware(conf::DomainDef& live, const std::vector<FirmwareDescriptor>& descriptors,
                      const std::string& nvram_path);

// The per-domain NVRAM file of a persistent definition: its <nvram> when
// given, else `<nvramdir>/<name>_VARS.fd` for `<os firmware='efi'>` and for
// a pflash `<loader>` with at most a template, else empty (no NVRAM).
std::filesystem::path domain_nvram_path(const conf::DomainDef& def, const std::filesystem::path& nvramdir);

// Create `nvram` from `template_path` when it does not exist yet (a copy
// written beside it and renamed, so that a crash leaves no half file).
Status ensure_nvram(const std::filesystem::path& nvram, const std::filesystem::path& template_path);

}  // namespace vireo::qemu
