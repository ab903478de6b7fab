#include "qemu/firmware.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <cstdlib>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/files.hpp"

namespace vireo::qemu {

namespace fs = std::filesystem;
using json = nlohmann::json;

bool FirmwareDescriptor::has_feature(std::string_view f) const {
    return std::find(features.begin(), features.end(), f) != features.end();
}

namespace {

Error malformed(const fs::path& path, std::string_view what) {
    return Error{ErrorCode::XmlError, fmt::format("firmware descriptor '{}': {}", path.string(), what)};
}

std::vector<std::string> string_list(const json& j, std::string_view key) {
    std::vector<std::string> out;
    auto it = j.find(key);
    if (it == j.end() || !it->is_array()) return out;
    for (const auto& v : *it)
        if (v.is_string()) out.push_back(v.get<std::string>());
    return out;
}

// {"filename": ..., "format": ...} of a flash mapping.
void flash_file(const json& mapping, std::string_view key, std::string& filename, std::string& format) {
    auto it = mapping.find(key);
    if (it == mapping.end() || !it->is_object()) return;
    filename = it->value("filename", "");
    format = it->value("format", "raw");
}

}  // namespace

Result<FirmwareDescriptor> parse_firmware_descriptor(std::string_view text, const fs::path& path) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::unexpected(malformed(path, "not a JSON object"));
    FirmwareDescriptor d;
    d.path = path;
    d.interface_types = string_list(j, "interface-types");
    d.features = string_list(j, "features");
    auto mapping = j.find("mapping");
    if (mapping == j.end() || !mapping->is_object()) return std::unexpected(malformed(path, "no 'mapping' object"));
    d.device = mapping->value("device", "");
    if (d.device == "flash") {
        d.mode = mapping->value("mode", "split");
        flash_file(*mapping, "executable", d.executable, d.executable_format);
        flash_file(*mapping, "nvram-template", d.nvram_template, d.nvram_template_format);
        if (d.executable.empty()) return std::unexpected(malformed(path, "a flash mapping without 'executable'"));
    } else if (d.device == "memory" || d.device == "kernel") {
        d.executable = mapping->value("filename", "");
    }
    auto targets = j.find("targets");
    if (targets != j.end() && targets->is_array()) {
        for (const auto& t : *targets) {
            if (!t.is_object()) continue;
            d.targets.push_back({t.value("architecture", ""), string_list(t, "machines")});
        }
    }
    return d;
}

std::vector<fs::path> firmware_search_dirs() {
    std::vector<fs::path> dirs{"/usr/share/qemu/firmware", "/etc/qemu/firmware"};
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    const char* home = std::getenv("HOME");
    if (xdg && *xdg) dirs.push_back(fs::path(xdg) / "qemu" / "firmware");
    else if (home && *home) dirs.push_back(fs::path(home) / ".config" / "qemu" / "firmware");
    return dirs;
}

Result<std::vector<FirmwareDescriptor>> load_firmware_descriptors(const std::vector<fs::path>& dirs) {
    // name -> path: a later (higher-priority) directory replaces the file.
    std::map<std::string, fs::path> by_name;
    for (const auto& dir : dirs) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) continue;
        for (const auto& entry : fs::directory_iterator(dir, ec)) {
            const std::string name = entry.path().filename().string();
            if (!name.ends_with(".json")) continue;
            by_name[name] = entry.path();
        }
        if (ec) return fail(ErrorCode::System, "cannot list firmware descriptors in '{}': {}", dir.string(), ec.message());
    }
    std::vector<FirmwareDescriptor> out;
    for (const auto& [name, path] : by_name) {
        auto text = files::read(path);
        if (!text) return std::unexpected(text.error());
        if (text->empty()) continue;  // an empty file hides the one of lower priority
        auto d = parse_firmware_descriptor(*text, path);
        if (!d) return std::unexpected(d.error());
        out.push_back(std::move(*d));
    }
    return out;
}

namespace {

bool fits_target(const FirmwareDescriptor& d, const conf::DomainDef& def) {
    const std::string arch = def.os.arch.empty() ? "x86_64" : def.os.arch;
    for (const auto& t : d.targets) {
        if (t.architecture != arch) continue;
        for (const auto& glob : t.machines)
            if (::fnmatch(glob.c_str(), def.os.machine.c_str(), 0) == 0) return true;
    }
    return false;
}

// The domain's <firmware><feature/> requests: present when enabled='yes',
// absent when 'no'.
bool fits_features(const FirmwareDescriptor& d, const conf::DomainDef& def) {
    for (const auto& [name, enabled] : def.os.firmware_features) {
        const bool want = enabled == "yes";
        if (d.has_feature(name) != want) return false;
    }
    // <loader secure='yes|no'/> beside firmware='efi' asks the same of secure-boot.
    if (!def.os.loader_secure.empty() && d.has_feature("secure-boot") != (def.os.loader_secure == "yes")) return false;
    return true;
}

bool fits(const FirmwareDescriptor& d, const conf::DomainDef& def) {
    if (std::find(d.interface_types.begin(), d.interface_types.end(), "uefi") == d.interface_types.end()) return false;
    // What vireo can run: split flash (code read-only, a per-domain NVRAM
    // from a raw template).
    if (d.device != "flash" || d.mode != "split" || d.nvram_template.empty()) return false;
    if (d.executable_format != "raw" || d.nvram_template_format != "raw") return false;
    return fits_target(d, def) && fits_features(d, def);
}

const conf::Feature* find_feature(const conf::DomainDef& def, std::string_view name) {
    for (const auto& f : def.features)
        if (f.name == name) return &f;
    return nullptr;
}

std::string attr_of(const conf::Feature& f, std::string_view key) {
    for (const auto& [k, v] : f.attrs)
        if (k == key) return v;
    return "";
}

// <smm state='on'/> where libvirt's feature order puts it (before the
// features that follow smm in that order).
void add_smm(conf::DomainDef& def) {
    static constexpr std::string_view after_smm[] = {"ioapic", "hpt", "vmcoreinfo", "htm", "nested-hv", "msrs",
                                                     "ccf-assist", "xen", "cfpc", "sbbc", "ibs", "tcg",
                                                     "async-teardown"};
    auto pos = std::find_if(def.features.begin(), def.features.end(), [](const conf::Feature& f) {
        return std::find(std::begin(after_smm), std::end(after_smm), f.name) != std::end(after_smm);
    });
    def.features.insert(pos, conf::Feature{"smm", {{"state", "on"}}, {}});
    def.features_present = true;
}

}  // namespace

Result<FirmwareChoice> select_firmware(const conf::DomainDef& def, const std::vector<FirmwareDescriptor>& descriptors) {
    for (const auto& d : descriptors) {
        if (!fits(d, def)) continue;
        return FirmwareChoice{&d, d.has_feature("secure-boot") && d.has_feature("requires-smm"),
                              d.has_feature("requires-smm")};
    }
    return fail(ErrorCode::OperationFailed, "operation failed: Unable to find any firmware to satisfy '{}'",
                def.os.firmware.empty() ? "efi" : def.os.firmware);
}

Status apply_firmware(conf::DomainDef& live, const std::vector<FirmwareDescriptor>& descriptors,
                      const std::string& nvram_path) {
    auto& os = live.os;
    if (os.firmware == "efi" && os.loader.empty()) {
        auto choice = select_firmware(live, descriptors);
        if (!choice) return std::unexpected(choice.error());
        if (choice->requires_smm) {
            const conf::Feature* smm = find_feature(live, "smm");
            if (smm && attr_of(*smm, "state") == "off")
                return fail(ErrorCode::InvalidState,
                            "Requested operation is not valid: domain has SMM turned off but chosen firmware requires it");
            if (!smm) add_smm(live);
        }
        os.loader = choice->descriptor->executable;
        os.loader_readonly = "yes";
        os.loader_type = "pflash";
        os.loader_secure = choice->secure ? "yes" : "";
        os.nvram_template = choice->descriptor->nvram_template;
        if (os.nvram.empty()) os.nvram = nvram_path;
        os.firmware.clear();  // libvirt's live XML shows what was chosen, not the request
        return {};
    }
    if (os.firmware == "bios" && os.loader.empty()) return {};  // SeaBIOS, QEMU's default
    if (os.loader_type == "pflash" && os.nvram.empty()) os.nvram = nvram_path;
    if (os.loader_type == "pflash" && !os.nvram.empty() && os.nvram_template.empty()) {
        // An explicit loader: the template of its descriptor, if there is one
        // (needed only when the NVRAM file does not exist yet).
        for (const auto& d : descriptors)
            if (d.device == "flash" && d.executable == os.loader && !d.nvram_template.empty()) {
                os.nvram_template = d.nvram_template;
                break;
            }
    }
    return {};
}

fs::path domain_nvram_path(const conf::DomainDef& def, const fs::path& nvramdir) {
    if (!def.os.nvram.empty()) return def.os.nvram;
    // Autoselected firmware, or an explicit pflash loader with only an NVRAM
    // template (virt-install --boot loader=...,nvram.template=...): the
    // per-domain store lives in vireo's nvram directory.
    const bool autoselected = def.os.firmware == "efi" && def.os.loader.empty();
    const bool explicit_pflash = !def.os.loader.empty() && def.os.loader_type == "pflash";
    if (autoselected || explicit_pflash) return nvramdir / (def.name + "_VARS.fd");
    return {};
}

Status ensure_nvram(const fs::path& nvram, const fs::path& template_path) {
    auto present = files::exists(nvram);
    if (!present) return std::unexpected(present.error());
    if (*present) return {};
    if (template_path.empty())
        return fail(ErrorCode::OperationFailed, "operation failed: unable to find any master var store for loader: NVRAM file '{}' does not exist and no template is known",
                    nvram.string());
    auto content = files::read(template_path);
    if (!content) return std::unexpected(content.error().context(fmt::format("cannot read NVRAM template '{}'", template_path.string())));
    VIREO_TRY(files::make_dirs(nvram.parent_path(), 0755));
    auto written = files::write_atomic(nvram, *content, 0600);
    if (!written) return std::unexpected(written.error().context(fmt::format("cannot create NVRAM file '{}'", nvram.string())));
    return {};
}

}  // namespace vireo::qemu
