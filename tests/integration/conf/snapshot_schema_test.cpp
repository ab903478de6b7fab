// libvirt's own schema as the oracle: every domain snapshot document vireo
// formats (create documents and the daemon's full metadata with the domain
// definition) passes virt-xml-validate (libvirt-clients) as domainsnapshot.
#include <gtest/gtest.h>

#include <fstream>

#include <fmt/format.h>

#include "conf/snapshot.hpp"
#include "support/support.hpp"

using namespace vireo;

namespace {

constexpr std::string_view kDomain = R"(<domain type='qemu'><name>web</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='KiB'>131072</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/vireo/web.qcow2'/>
  <target dev='vda' bus='virtio'/></disk></devices></domain>)";

const std::string kSnapshots[] = {
    "<domainsnapshot><name>plain</name></domainsnapshot>",
    "<domainsnapshot><name>i</name><description>with memory</description><memory snapshot='internal'/>"
    "<disks><disk name='vda' snapshot='internal'/><disk name='vdb' snapshot='no'/></disks></domainsnapshot>",
    "<domainsnapshot><name>e</name><memory snapshot='external' file='/var/lib/vireo/e.mem'/><disks>"
    "<disk name='vda'><driver type='qcow2'/><source file='/var/lib/vireo/e.qcow2'/></disk>"
    "<disk name='vdb' type='block' snapshot='external'><source dev='/dev/vg/e'/></disk></disks></domainsnapshot>",
    "<domainsnapshot><name>off</name><state>shutoff</state><parent><name>plain</name></parent><creationTime>1765000000</creationTime>"
    "<memory snapshot='no'/><disks><disk name='vda' snapshot='internal'/></disks>" +
        std::string(kDomain) + "</domainsnapshot>",
    "<domainsnapshot><name>run</name><state>running</state><creationTime>1765000001</creationTime><memory snapshot='internal'/>" +
        std::string(kDomain) + "</domainsnapshot>",
};

}  // namespace

TEST(SnapshotSchema, FormattedSnapshotsValidate) {
    if (test::which("virt-xml-validate").empty()) VIREO_SKIP("virt-xml-validate (Debian package libvirt-clients) is not installed");
    test::TempDir dir;
    int n = 0;
    for (const auto& doc : kSnapshots) {
        auto def = conf::parse_snapshot_xml(doc, {.redefine = doc.find("<state>") != std::string::npos});
        ASSERT_TRUE(def) << def.error().message << "\n" << doc;
        const std::string out = conf::format_snapshot_xml(*def);
        const auto p = dir.path() / fmt::format("snap{}.xml", n++);
        std::ofstream(p) << out;
        auto r = test::run({"virt-xml-validate", p.string(), "domainsnapshot"});
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err << "\n" << out;
    }
}
