// Stored persistent definitions keep their XML and the facts a list shows,
// and rebuild the parsed model from the XML only when asked: the model read
// back is the one that was defined, and listing never parses.
#include <gtest/gtest.h>

#include "driver/registry.hpp"

namespace vireo::driver {
namespace {

constexpr const char* kXml = R"(<domain type='qemu'>
  <name>lazy</name>
  <title>a "titled" guest</title>
  <memory unit='MiB'>256</memory>
  <currentMemory unit='MiB'>128</currentMemory>
  <vcpu current='2'>4</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><source file='/images/lazy.qcow2'/><target dev='vda' bus='virtio'/></disk>
  </devices>
</domain>)";

TEST(LazyDefinition, RegistryKeepsConfigLazyWithItsFacts) {
    auto def = make_definition(kXml);
    ASSERT_TRUE(def) << def.error().message;
    const std::string xml = def->xml;
    const conf::DomainDef eager = *def->def;
    DomainRegistry reg;
    auto added = reg.define(std::move(*def));
    ASSERT_TRUE(added) << added.error().message;

    auto snap = reg.find_by_name("lazy")->snapshot();
    ASSERT_TRUE(snap.fields.config);
    EXPECT_TRUE(snap.fields.config->def.is_lazy());
    EXPECT_EQ(snap.fields.config->xml, xml);

    DomainSummary s = summarize(snap);
    EXPECT_EQ(s.name, "lazy");
    EXPECT_EQ(s.title, "a \"titled\" guest");
    EXPECT_EQ(s.max_memory_kib, 256u * 1024);
    EXPECT_EQ(s.memory_kib, 128u * 1024);
    EXPECT_EQ(s.vcpus, 2u);
    EXPECT_EQ(s.os_type, "hvm");

    // The model, rebuilt on demand, is the defined one; copies share it.
    const conf::DomainDef& model = *snap.fields.config->def;
    EXPECT_EQ(model.name, eager.name);
    EXPECT_EQ(model.uuid, eager.uuid);
    EXPECT_EQ(model.memory_kib, eager.memory_kib);
    ASSERT_EQ(model.devices.disks.size(), 1u);
    EXPECT_EQ(model.devices.disks[0].source.file, "/images/lazy.qcow2");
    EXPECT_EQ(conf::format_domain_xml(model, {}), xml);
    auto again = reg.find_by_name("lazy")->snapshot();
    EXPECT_EQ(again.fields.config->def.get(), &model);
    std::shared_ptr<const conf::DomainDef> shared = again.fields.config->def;
    EXPECT_EQ(shared.get(), &model);
}

// A define that generates a MAC must avoid every MAC of the connection: the
// facts carry them, so asking does not parse (and keep) every stored model.
TEST(LazyDefinition, FactsCarryTheInterfaceMacsWithoutParsing) {
    auto def = make_definition(R"(<domain type='qemu'><name>nics</name><memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <interface type='user'><mac address='52:54:00:aa:bb:01'/></interface>
    <interface type='user'><mac address='52:54:00:aa:bb:02'/></interface>
  </devices></domain>)");
    ASSERT_TRUE(def) << def.error().message;
    DomainRegistry reg;
    ASSERT_TRUE(reg.define(std::move(*def)));
    auto snap = reg.find_by_name("nics")->snapshot();
    ASSERT_TRUE(snap.fields.config->def.is_lazy());
    EXPECT_EQ(snap.fields.config->def.facts().macs, (std::vector<std::string>{"52:54:00:aa:bb:01", "52:54:00:aa:bb:02"}));
    EXPECT_TRUE(reg.find_by_name("nics")->snapshot().fields.config->def.is_lazy());
}

TEST(LazyDefinition, SharedXmlBehavesLikeAString) {
    SharedXml x(std::string("<domain/>"));
    SharedXml copy = x;
    EXPECT_EQ(copy.data(), x.data());  // shared, not copied
    std::string s = x;
    EXPECT_EQ(s, "<domain/>");
    EXPECT_EQ(x, "<domain/>");
    EXPECT_EQ(fmt::format("[{}]", x), "[<domain/>]");
    EXPECT_EQ(x.substr(1, 6), "domain");
    EXPECT_TRUE(SharedXml().empty());
}

}  // namespace
}  // namespace vireo::driver
