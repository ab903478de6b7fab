// The domain snapshot XML model and the snapshot tree: libvirt's documents
// parse, format in libvirt's order, round-trip as a fixed point, refusals
// name what they are about, and the tree answers snapshot-list's questions.
#include <gtest/gtest.h>

#include "conf/snapshot.hpp"

using namespace vireo;
using namespace vireo::conf;

namespace {

constexpr std::string_view kDomain = R"(<domain type='qemu'>
  <name>web</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='KiB'>131072</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/vireo/web.qcow2'/><target dev='vda' bus='virtio'/></disk>
  </devices>
</domain>)";

SnapshotDef parse_ok(std::string_view xml, SnapshotParseFlags flags = {}) {
    auto def = parse_snapshot_xml(xml, flags);
    EXPECT_TRUE(def) << (def ? "" : def.error().message) << "\n" << xml;
    return def ? *def : SnapshotDef{};
}

std::string parse_error(std::string_view xml, SnapshotParseFlags flags = {}) {
    auto def = parse_snapshot_xml(xml, flags);
    EXPECT_FALSE(def) << "accepted:\n" << xml;
    return def ? std::string() : def.error().message;
}

void expect_fixed_point(const SnapshotDef& def) {
    const std::string once = format_snapshot_xml(def);
    auto again = parse_snapshot_xml(once, {.redefine = !def.state.empty()});
    ASSERT_TRUE(again) << again.error().message << "\n" << once;
    EXPECT_EQ(format_snapshot_xml(*again), once);
}

}  // namespace

TEST(SnapshotXml, CreateDocumentParsesNameDescriptionMemoryAndDisks) {
    auto def = parse_ok(R"(<domainsnapshot>
  <name>before-upgrade</name>
  <description>clean system</description>
  <memory snapshot='internal'/>
  <disks><disk name='vda' snapshot='internal'/><disk name='vdb' snapshot='no'/></disks>
</domainsnapshot>)");
    EXPECT_EQ(def.name, "before-upgrade");
    EXPECT_EQ(def.description, "clean system");
    EXPECT_EQ(def.memory, "internal");
    ASSERT_EQ(def.disks.size(), 2u);
    EXPECT_EQ(def.disks[0].snapshot, "internal");
    EXPECT_EQ(def.disks[1].snapshot, "no");
    EXPECT_TRUE(def.is_internal());
    EXPECT_FALSE(def.is_external());
    EXPECT_TRUE(def.state.empty());
    EXPECT_FALSE(def.creation_time);
}

TEST(SnapshotXml, ExternalTargetsInferTheModeAsLibvirtDoes) {
    auto def = parse_ok(R"(<domainsnapshot><memory file='/var/lib/vireo/mem.save'/>
  <disks><disk name='vda'><driver type='qcow2'/><source file='/var/lib/vireo/web.ovl'/></disk>
  <disk name='vdb' type='block' snapshot='external'><source dev='/dev/vg/snap'/></disk></disks></domainsnapshot>)");
    EXPECT_EQ(def.memory, "external");
    EXPECT_EQ(def.memory_file, "/var/lib/vireo/mem.save");
    EXPECT_EQ(def.disks[0].snapshot, "external");
    EXPECT_EQ(def.disks[0].source, "/var/lib/vireo/web.ovl");
    EXPECT_EQ(def.disks[0].driver_type, "qcow2");
    EXPECT_EQ(def.disks[1].source, "/dev/vg/snap");
    EXPECT_TRUE(def.is_external());
    expect_fixed_point(def);
}

TEST(SnapshotXml, RedefineDocumentKeepsStateTimeParentAndDomain) {
    const std::string xml = std::string(R"(<domainsnapshot>
  <name>s2</name>
  <state>running</state>
  <parent><name>s1</name></parent>
  <creationTime>1765000000</creationTime>
  <memory snapshot='internal'/>
  <disks><disk name='vda' snapshot='internal'/></disks>
)") + std::string(kDomain) + "\n</domainsnapshot>";
    auto def = parse_ok(xml, {.redefine = true});
    EXPECT_EQ(def.state, "running");
    EXPECT_EQ(def.parent, "s1");
    ASSERT_TRUE(def.creation_time);
    EXPECT_EQ(*def.creation_time, 1765000000);
    ASSERT_TRUE(def.domain);
    EXPECT_EQ(def.domain->name, "web");
    const std::string out = format_snapshot_xml(def);
    // libvirt's order: name, state, parent, creationTime, memory, disks, domain
    const auto pos = [&](std::string_view s) { return out.find(s); };
    EXPECT_LT(pos("<name>s2"), pos("<state>"));
    EXPECT_LT(pos("<state>"), pos("<parent>"));
    EXPECT_LT(pos("<parent>"), pos("<creationTime>"));
    EXPECT_LT(pos("<creationTime>"), pos("<memory"));
    EXPECT_LT(pos("<memory"), pos("<disks>"));
    EXPECT_LT(pos("<disks>"), pos("  <domain type='qemu'>"));
    EXPECT_TRUE(out.ends_with("  </domain>\n</domainsnapshot>\n")) << out;
    expect_fixed_point(def);
}

TEST(SnapshotXml, OnlyTheDomainStillFormatsAnOpenRoot) {
    SnapshotDef def;
    def.domain = parse_ok(std::string("<domainsnapshot><name>x</name><state>shutoff</state>") + std::string(kDomain) + "</domainsnapshot>",
                          {.redefine = true})
                     .domain;
    const std::string out = format_snapshot_xml(def);
    EXPECT_TRUE(out.starts_with("<domainsnapshot>\n  <domain")) << out;
}

TEST(SnapshotXml, RecordedFieldsAreRefusedWithoutRedefine) {
    EXPECT_NE(parse_error("<domainsnapshot><state>running</state></domainsnapshot>").find("only with --redefine"), std::string::npos);
    EXPECT_NE(parse_error("<domainsnapshot><parent><name>a</name></parent></domainsnapshot>").find("<parent>"), std::string::npos);
    EXPECT_NE(parse_error("<domainsnapshot><creationTime>5</creationTime></domainsnapshot>").find("creationTime"), std::string::npos);
}

TEST(SnapshotXml, BadInputIsAClearError) {
    EXPECT_NE(parse_error("<domain/>").find("expected root element <domainsnapshot>"), std::string::npos);
    EXPECT_NE(parse_error("<domainsnapshot><name>a/b</name></domainsnapshot>").find("'/'"), std::string::npos);
    EXPECT_NE(parse_error("<domainsnapshot><name>..</name></domainsnapshot>").find("invalid snapshot name"), std::string::npos);
    EXPECT_NE(parse_error("<domainsnapshot><memory snapshot='later'/></domainsnapshot>").find("memory snapshot mode"), std::string::npos);
    EXPECT_NE(parse_error("<domainsnapshot><memory snapshot='internal' file='/x'/></domainsnapshot>").find("only for snapshot='external'"),
              std::string::npos);
    EXPECT_NE(parse_error("<domainsnapshot><memory snapshot='external'/></domainsnapshot>").find("needs a file"), std::string::npos);
    EXPECT_NE(parse_error("<domainsnapshot><memory file='rel.save'/></domainsnapshot>").find("absolute"), std::string::npos);
    EXPECT_NE(parse_error("<domainsnapshot><disks><disk name='vda' snapshot='internal'><source file='/x'/></disk></disks></domainsnapshot>")
                  .find("only for snapshot='external'"),
              std::string::npos);
    EXPECT_NE(parse_error("<domainsnapshot><disks><disk name='vda'/><disk name='vda'/></disks></domainsnapshot>").find("named twice"),
              std::string::npos);
    EXPECT_NE(parse_error("<domainsnapshot><disks><disk snapshot='no'/></disks></domainsnapshot>").find("missing disk name"), std::string::npos);
    EXPECT_NE(parse_error("<domainsnapshot><state>on</state></domainsnapshot>", {.redefine = true}).find("invalid snapshot state"),
              std::string::npos);
    EXPECT_NE(parse_error("<domainsnapshot><name>a</name></domainsnapshot>", {.redefine = true}).find("missing <state>"), std::string::npos);
    EXPECT_NE(parse_error("<domainsnapshot><state>running</state><creationTime>soon</creationTime></domainsnapshot>", {.redefine = true})
                  .find("invalid creationTime"),
              std::string::npos);
}

TEST(SnapshotXml, UnmodelledElementsAreRefusedByName) {
    auto r = parse_snapshot_xml("<domainsnapshot><cookie/></domainsnapshot>");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("cookie"), std::string::npos) << r.error().message;
    auto net = parse_snapshot_xml("<domainsnapshot><disks><disk name='vda' type='network'/></disks></domainsnapshot>");
    ASSERT_FALSE(net);
    EXPECT_EQ(net.error().code, ErrorCode::Unsupported) << net.error().message;
    auto bad_domain = parse_snapshot_xml("<domainsnapshot><state>running</state><domain type='qemu'><name>x</name><bogus/></domain></domainsnapshot>",
                                         {.redefine = true});
    ASSERT_FALSE(bad_domain);
    EXPECT_NE(bad_domain.error().message.find("/domainsnapshot/domain"), std::string::npos) << bad_domain.error().message;
}

TEST(SnapshotXml, EmptyDisksAndNamelessDocumentsFormat) {
    auto def = parse_ok("<domainsnapshot><description>d &amp; e</description><disks/></domainsnapshot>");
    EXPECT_TRUE(def.name.empty());
    EXPECT_EQ(format_snapshot_xml(def), "<domainsnapshot>\n  <description>d &amp; e</description>\n  <disks>\n  </disks>\n</domainsnapshot>\n");
}

TEST(SnapshotTree, RootsChildrenDescendantsLeaves) {
    // a -> b -> c, a -> d ; e alone ; f's parent is gone (a root)
    SnapshotTree t({{"a", ""}, {"b", "a"}, {"c", "b"}, {"d", "a"}, {"e", ""}, {"f", "gone"}});
    EXPECT_EQ(t.roots(), (std::vector<std::string>{"a", "e", "f"}));
    EXPECT_EQ(t.children("a"), (std::vector<std::string>{"b", "d"}));
    EXPECT_EQ(t.descendants("a"), (std::vector<std::string>{"b", "d", "c"}));
    EXPECT_EQ(t.leaves(), (std::vector<std::string>{"c", "d", "e", "f"}));
    EXPECT_EQ(t.parent("c"), "b");
    EXPECT_EQ(t.parent("f"), "");
    EXPECT_TRUE(t.contains("d"));
    EXPECT_FALSE(t.contains("gone"));
    EXPECT_TRUE(t.descendants("c").empty());
}

TEST(SnapshotTree, RendersAsVirshTree) {
    SnapshotTree t({{"s1", ""}, {"s2", "s1"}, {"s3", "s2"}, {"s4", "s1"}, {"t", ""}});
    EXPECT_EQ(t.render(),
              "s1\n"
              "  |\n"
              "  +- s2\n"
              "  |   |\n"
              "  |   +- s3\n"
              "  |     \n"
              "  +- s4\n"
              "    \n"
              "t\n"
              "\n");
}

TEST(SnapshotXml, DefaultExternalFileReplacesTheSuffixAsLibvirt) {
    EXPECT_EQ(default_external_snapshot_path("/x/disk.qcow2", "snap1"), "/x/disk.snap1");
    EXPECT_EQ(default_external_snapshot_path("/x/disk.img.raw", "s"), "/x/disk.img.s");
    EXPECT_EQ(default_external_snapshot_path("/x/disk", "snap1"), "/x/disk.snap1");
    EXPECT_EQ(default_external_snapshot_path("/x.d/disk", "snap1"), "/x.d/disk.snap1") << "a dot in a directory is no suffix";
    EXPECT_EQ(default_external_snapshot_path("/x/.disk", "snap1"), "/x/.disk.snap1") << "a leading dot is no suffix";
}

TEST(SnapshotXml, RecordedExternalDiskOnlySnapshotRoundTrips) {
    const std::string xml = std::string(R"(<domainsnapshot><name>ext1</name><state>disk-snapshot</state>
  <creationTime>1700000000</creationTime><memory snapshot='no'/>
  <disks><disk name='vda' snapshot='external' type='file'><driver type='qcow2'/><source file='/var/lib/vireo/web.ext1'/></disk>
  <disk name='hdc' snapshot='no'/></disks>)") + std::string(kDomain) + "</domainsnapshot>";
    auto def = parse_ok(xml, {.redefine = true});
    EXPECT_EQ(def.state, "disk-snapshot");
    EXPECT_EQ(def.memory, "no");
    ASSERT_EQ(def.disks.size(), 2u);
    EXPECT_EQ(def.disks[0].type, "file");
    EXPECT_EQ(def.disks[0].source, "/var/lib/vireo/web.ext1");
    EXPECT_TRUE(def.is_external());
    EXPECT_FALSE(def.is_internal());
    const std::string out = format_snapshot_xml(def);
    EXPECT_NE(out.find("<disk name='vda' snapshot='external' type='file'>\n      <driver type='qcow2'/>\n"
                       "      <source file='/var/lib/vireo/web.ext1'/>\n    </disk>"),
              std::string::npos)
        << out;
    expect_fixed_point(def);
}
