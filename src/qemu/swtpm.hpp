// Emulated TPMs (<tpm model='tpm-crb|tpm-tis'><backend type='emulator'
// version='2.0|1.2'/></tpm>) through swtpm, as libvirt runs them:
//
//   state   <swtpmdir>/<uuid>/tpm2 (tpm1.2), kept across starts; created by
//           swtpm_setup (EK created, NVRAM locked) the first time; removed
//           by undefine (libvirt 9.0's default and --tpm) unless --keep-tpm;
//   process swtpm socket, its control channel a unix socket in the run dir,
//           started before QEMU and stopped with it (--terminate: it also
//           ends by itself when QEMU closes the channel);
//   QEMU    -chardev socket,id=chrtpm,path=<sock> -tpmdev emulator,
//           id=tpm-<alias>,chardev=chrtpm -device <model>,tpmdev=...,id=<alias>.
//
// Passthrough of a host TPM is refused (not implemented).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "conf/domain.hpp"
#include "util/error.hpp"
#include "util/uuid.hpp"

namespace vireo::qemu {

// <swtpmdir>/<uuid>: everything of one domain's emulated TPM.
std::filesystem::path swtpm_domain_dir(const std::filesystem::path& swtpmdir, const Uuid& uuid);
// The state directory of a TPM of that version: .../tpm2 or .../tpm1.2.
std::filesystem::path swtpm_state_dir(const std::filesystem::path& swtpmdir, const Uuid& uuid,
                                      const std::string& version);
// The control socket QEMU connects to: <runtime prefix>.<alias>-swtpm.sock.
std::string swtpm_socket_path(const std::string& runtime_prefix, const std::string& alias);

// The TPM's arguments for QEMU (after its chardevs).
std::vector<std::string> tpm_arguments(const conf::Tpm& tpm, const std::string& socket);

// What a start of `def` needs of swtpm: the programs (from PATH), and the
// definition's TPMs checked (at most one; an emulator backend; a model
// fitting its version). Nothing is created.
struct SwtpmPrograms {
    std::filesystem::path swtpm, swtpm_setup;
};
Result<SwtpmPrograms> check_tpms(const conf::DomainDef& def);

// Whether swtpm_setup has made the state of `state_dir` already.
bool swtpm_state_exists(const std::filesystem::path& state_dir, const std::string& version);

// The swtpm_setup command that manufactures a new TPM state in `state_dir`
// (existing state is never overwritten), logging to `log`.
std::vector<std::string> swtpm_setup_argv(const SwtpmPrograms& p, const std::filesystem::path& state_dir,
                                          const std::string& version, const std::string& vmid,
                                          const std::filesystem::path& log);
// The swtpm command serving that state on the control socket `socket`.
std::vector<std::string> swtpm_argv(const SwtpmPrograms& p, const std::filesystem::path& state_dir,
                                    const std::string& version, const std::string& socket,
                                    const std::filesystem::path& log);

}  // namespace vireo::qemu
