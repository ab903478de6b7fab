#include "qemu/swtpm.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/path_search.hpp"

namespace vireo::qemu {

namespace fs = std::filesystem;

namespace {

bool is_tpm2(const std::string& version) { return version.empty() || version == "2.0"; }

Result<fs::path> find_program(std::string_view name) {
    auto found = find_executable(name, path_dirs({"/usr/local/bin", "/usr/bin", "/bin"}));
    if (!found)
        return fail(ErrorCode::NotFound,
                    "{} is not installed (apt-get install swtpm swtpm-tools); it is needed for <tpm><backend "
                    "type='emulator'/>",
                    name);
    return *found;
}

}  // namespace

fs::path swtpm_domain_dir(const fs::path& swtpmdir, const Uuid& uuid) { return swtpmdir / uuid.str(); }

fs::path swtpm_state_dir(const fs::path& swtpmdir, const Uuid& uuid, const std::string& version) {
    return swtpm_domain_dir(swtpmdir, uuid) / (is_tpm2(version) ? "tpm2" : "tpm1.2");
}

std::string swtpm_socket_path(const std::string& runtime_prefix, const std::string& alias) {
    return fmt::format("{}.{}-swtpm.sock", runtime_prefix, alias);
}

std::vector<std::string> tpm_arguments(const conf::Tpm& tpm, const std::string& socket) {
    const std::string alias = tpm.info.alias.empty() ? "tpm0" : tpm.info.alias;
    nlohmann::ordered_json dev = {{"driver", tpm.model.empty() ? "tpm-tis" : tpm.model},
                                  {"tpmdev", "tpm-" + alias},
                                  {"id", alias}};
    return {"-chardev", fmt::format("socket,id=chrtpm,path={}", socket),
            "-tpmdev",  fmt::format("emulator,id=tpm-{},chardev=chrtpm", alias),
            "-device",  dev.dump()};
}

Result<SwtpmPrograms> check_tpms(const conf::DomainDef& def) {
    const auto& tpms = def.devices.tpms;
    if (tpms.empty()) return SwtpmPrograms{};
    if (tpms.size() > 1) return fail(ErrorCode::Unsupported, "only a single TPM device is supported");
    const conf::Tpm& t = tpms.front();
    if (t.backend_type == "passthrough")
        return fail(ErrorCode::Unsupported,
                    "TPM backend type 'passthrough' is not supported by vireo (use <backend type='emulator'/>)");
    if (t.backend_type != "emulator")
        return fail(ErrorCode::Unsupported, "TPM backend type '{}' is not supported", t.backend_type);
    if (t.model != "tpm-tis" && t.model != "tpm-crb" && !t.model.empty())
        return fail(ErrorCode::Unsupported, "TPM model '{}' is not supported (use tpm-crb or tpm-tis)", t.model);
    if (t.model == "tpm-crb" && !is_tpm2(t.backend_version))
        return fail(ErrorCode::Unsupported, "unsupported configuration: TPM 1.2 is not supported with the tpm-crb model");
    SwtpmPrograms p;
    auto swtpm = find_program("swtpm");
    if (!swtpm) return std::unexpected(swtpm.error());
    auto setup = find_program("swtpm_setup");
    if (!setup) return std::unexpected(setup.error());
    p.swtpm = *swtpm;
    p.swtpm_setup = *setup;
    return p;
}

bool swtpm_state_exists(const fs::path& state_dir, const std::string& version) {
    std::error_code ec;
    return fs::exists(state_dir / (is_tpm2(version) ? "tpm2-00.permall" : "tpm-00.permall"), ec);
}

std::vector<std::string> swtpm_setup_argv(const SwtpmPrograms& p, const fs::path& state_dir,
                                          const std::string& version, const std::string& vmid, const fs::path& log) {
    std::vector<std::string> argv{p.swtpm_setup.string(), "--tpm-state", state_dir.string(), "--vmid", vmid,
                                  "--logfile", log.string(), "--createek", "--lock-nvram", "--not-overwrite"};
    if (is_tpm2(version)) {
        argv.emplace_back("--tpm2");
        argv.emplace_back("--pcr-banks");
        argv.emplace_back("sha256");
    }
    return argv;
}

std::vector<std::string> swtpm_argv(const SwtpmPrograms& p, const fs::path& state_dir, const std::string& version,
                                    const std::string& socket, const fs::path& log) {
    std::vector<std::string> argv{p.swtpm.string(),
                                  "socket",
                                  "--ctrl",
                                  fmt::format("type=unixio,path={},mode=0600", socket),
                                  "--tpmstate",
                                  fmt::format("dir={},mode=0600", state_dir.string()),
                                  "--log",
                                  fmt::format("file={}", log.string()),
                                  "--terminate"};
    if (is_tpm2(version)) argv.emplace_back("--tpm2");
    return argv;
}

}  // namespace vireo::qemu
