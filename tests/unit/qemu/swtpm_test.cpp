// Emulated TPMs (qemu/swtpm.hpp): paths, the swtpm commands, the checks of
// a definition's TPMs.
#include <gtest/gtest.h>

#include <algorithm>

#include "qemu/swtpm.hpp"
#include "support/support.hpp"

namespace fs = std::filesystem;
using namespace vireo;

namespace {

conf::DomainDef with_tpm(std::string model, std::string backend, std::string version) {
    conf::DomainDef def;
    def.name = "g";
    conf::Tpm t;
    t.model = std::move(model);
    t.backend_type = std::move(backend);
    t.backend_version = std::move(version);
    t.info.alias = "tpm0";
    def.devices.tpms.push_back(t);
    return def;
}

}  // namespace

TEST(Swtpm, StateLivesPerUuidAndVersion) {
    auto uuid = Uuid::parse("11111111-2222-3333-4444-666666666666");
    ASSERT_TRUE(uuid);
    EXPECT_EQ(qemu::swtpm_state_dir("/var/lib/vireo/swtpm", *uuid, "2.0").string(),
              "/var/lib/vireo/swtpm/11111111-2222-3333-4444-666666666666/tpm2");
    EXPECT_EQ(qemu::swtpm_state_dir("/s", *uuid, "1.2").string(), "/s/11111111-2222-3333-4444-666666666666/tpm1.2");
    EXPECT_EQ(qemu::swtpm_socket_path("/run/vireo/qemu/g", "tpm0"), "/run/vireo/qemu/g.tpm0-swtpm.sock");
}

TEST(Swtpm, QemuArgumentsAsLibvirt) {
    auto def = with_tpm("tpm-crb", "emulator", "2.0");
    EXPECT_EQ(qemu::tpm_arguments(def.devices.tpms[0], "/r/g.tpm0-swtpm.sock"),
              (std::vector<std::string>{"-chardev", "socket,id=chrtpm,path=/r/g.tpm0-swtpm.sock", "-tpmdev",
                                        "emulator,id=tpm-tpm0,chardev=chrtpm", "-device",
                                        R"({"driver":"tpm-crb","tpmdev":"tpm-tpm0","id":"tpm0"})"}));
}

TEST(Swtpm, Commands) {
    qemu::SwtpmPrograms p{"/usr/bin/swtpm", "/usr/bin/swtpm_setup"};
    auto setup = qemu::swtpm_setup_argv(p, "/s/u/tpm2", "2.0", "g:u", "/l/g-swtpm.log");
    EXPECT_EQ(setup, (std::vector<std::string>{"/usr/bin/swtpm_setup", "--tpm-state", "/s/u/tpm2", "--vmid", "g:u",
                                               "--logfile", "/l/g-swtpm.log", "--createek", "--lock-nvram",
                                               "--not-overwrite", "--tpm2", "--pcr-banks", "sha256"}));
    auto run = qemu::swtpm_argv(p, "/s/u/tpm2", "2.0", "/r/g.tpm0-swtpm.sock", "/l/g-swtpm.log");
    EXPECT_EQ(run, (std::vector<std::string>{"/usr/bin/swtpm", "socket", "--ctrl",
                                             "type=unixio,path=/r/g.tpm0-swtpm.sock,mode=0600", "--tpmstate",
                                             "dir=/s/u/tpm2,mode=0600", "--log", "file=/l/g-swtpm.log",
                                             "--terminate", "--tpm2"}));
    auto v12 = qemu::swtpm_argv(p, "/s/u/tpm1.2", "1.2", "/r/s", "/l/x");
    EXPECT_EQ(std::find(v12.begin(), v12.end(), "--tpm2"), v12.end());
}

TEST(Swtpm, DefinitionChecks) {
    auto pass = qemu::check_tpms(with_tpm("tpm-tis", "passthrough", ""));
    ASSERT_FALSE(pass);
    EXPECT_NE(pass.error().message.find("'passthrough' is not supported"), std::string::npos);
    auto crb12 = qemu::check_tpms(with_tpm("tpm-crb", "emulator", "1.2"));
    ASSERT_FALSE(crb12);
    EXPECT_NE(crb12.error().message.find("TPM 1.2"), std::string::npos);
    auto two = with_tpm("tpm-crb", "emulator", "2.0");
    two.devices.tpms.push_back(two.devices.tpms[0]);
    EXPECT_FALSE(qemu::check_tpms(two));
    EXPECT_TRUE(qemu::check_tpms(conf::DomainDef{}));  // no TPM: nothing needed
    if (test::which("swtpm").empty() || test::which("swtpm_setup").empty()) VIREO_SKIP("swtpm is not installed");
    auto ok = qemu::check_tpms(with_tpm("tpm-crb", "emulator", "2.0"));
    ASSERT_TRUE(ok) << ok.error().full_message();
    EXPECT_EQ(ok->swtpm.filename().string(), "swtpm");
}
