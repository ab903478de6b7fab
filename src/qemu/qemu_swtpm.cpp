// The driver's side of emulated TPMs (qemu/swtpm.hpp): the state made at the
// first start, swtpm run beside QEMU, the state removed at undefine.
#include <unistd.h>

#include <chrono>
#include <thread>

#include "qemu/qemu_driver_impl.hpp"
#include "util/files.hpp"

namespace vireo::qemu {

namespace fs = std::filesystem;

Status QemuDriverImpl::start_swtpm(LaunchPlan& plan, const Uuid& uuid) {
    const auto& tpms = plan.live.def->devices.tpms;
    if (tpms.empty()) return {};
    const conf::Tpm& tpm = tpms.front();
    const fs::path state = swtpm_state_dir(cfg.swtpmdir, uuid, tpm.backend_version);
    const fs::path log = swtpm_log(plan.name);
    VIREO_TRY(files::make_dirs(state, 0700));
    if (!swtpm_state_exists(state, tpm.backend_version)) {
        SpawnSpec setup;
        setup.argv = swtpm_setup_argv(plan.swtpm_programs, state, tpm.backend_version,
                                      fmt::format("{}:{}", plan.name, uuid.str()), log);
        setup.log_path = log;
        auto proc = processes->spawn(setup);
        if (!proc) return std::unexpected(proc.error().context("cannot run swtpm_setup"));
        if (!processes->wait_exit(*proc, std::chrono::seconds(60))) {
            (void)processes->terminate(*proc, std::chrono::seconds(1), false);
            return fail(ErrorCode::Timeout, "swtpm_setup did not finish within 60 s (see {})", log.string());
        }
        if (!swtpm_state_exists(state, tpm.backend_version))
            return fail(ErrorCode::OperationFailed, "swtpm_setup could not create the TPM state in '{}' (see {})",
                        state.string(), log.string());
    }
    const std::string alias = tpm.info.alias.empty() ? "tpm0" : tpm.info.alias;
    const std::string sock = swtpm_socket_path(plan.prefix, alias);
    ::unlink(sock.c_str());
    SpawnSpec spec;
    spec.argv = swtpm_argv(plan.swtpm_programs, state, tpm.backend_version, sock, log);
    spec.log_path = log;
    auto proc = processes->spawn(spec);
    if (!proc) return std::unexpected(proc.error().context("cannot start swtpm"));
    plan.swtpm.push_back(*proc);
    // QEMU connects once, at start: wait for the socket.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!fs::exists(sock)) {
        if (!processes->alive(*proc) || std::chrono::steady_clock::now() > deadline) {
            const bool died = !processes->alive(*proc);
            stop_swtpm(plan.swtpm);
            plan.swtpm.clear();
            if (died)
                return fail(ErrorCode::OperationFailed, "swtpm exited before it listened on {} (see {})", sock,
                            log.string());
            return fail(ErrorCode::Timeout, "swtpm did not listen on {} within 10 s", sock);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return {};
}

void QemuDriverImpl::stop_swtpm(const std::vector<ProcessId>& swtpm) {
    for (const auto& p : swtpm) (void)processes->terminate(p, std::chrono::seconds(1), false);
}

Status QemuDriverImpl::remove_tpm_state(const Uuid& uuid) {
    const fs::path dir = swtpm_domain_dir(cfg.swtpmdir, uuid);
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) return fail(ErrorCode::System, "cannot remove the TPM state '{}': {}", dir.string(), ec.message());
    return {};
}

}  // namespace vireo::qemu
