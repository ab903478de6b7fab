// Pool and volume XML: round trips, output valid against libvirt's schemas
// (virt-xml-validate), and the message each invalid document gets.
#include <fstream>

#include <gtest/gtest.h>

#include "pool/pool_xml.hpp"
#include "pool/volume_xml.hpp"
#include "support/support.hpp"

namespace vireo::pool {
namespace {

// virt-xml-validate <file> <schema>; empty string when valid, else its output.
std::string schema_problem(const std::string& xml, const std::string& schema) {
    test::TempDir dir;
    const auto file = dir / "doc.xml";
    std::ofstream(file) << xml;
    auto r = test::run({"virt-xml-validate", file.string(), schema});
    return r.exit_code == 0 ? "" : r.out + r.err;
}

bool have_validator() { return !test::which("virt-xml-validate").empty(); }
#define REQUIRE_VALIDATOR() \
    if (!have_validator()) VIREO_SKIP("virt-xml-validate (libvirt-clients) is not installed")

constexpr const char* kUuid = "8e9a1c5c-3f57-4b8e-9d0e-3c2a5d1b7f10";

TEST(PoolXml, DirRoundTripIsSchemaValid) {
    REQUIRE_VALIDATOR();
    const std::string in = std::string("<pool type='dir'><name>images</name><uuid>") + kUuid +
                           "</uuid><target><path>/var/lib/vireo/images/</path>"
                           "<permissions><mode>0711</mode><owner>0</owner><group>0</group></permissions></target></pool>";
    auto def = parse_pool_xml(in);
    ASSERT_TRUE(def) << def.error().full_message();
    EXPECT_EQ(def->target_path, "/var/lib/vireo/images") << "trailing slash dropped, as libvirt";
    EXPECT_EQ(def->target_perms.mode, 0711u);
    const std::string out = format_pool_xml(*def, PoolSizes{100, 40, 60, {}});
    EXPECT_NE(out.find("<capacity unit='bytes'>100</capacity>"), std::string::npos) << out;
    EXPECT_NE(out.find("<mode>0711</mode>"), std::string::npos) << out;
    EXPECT_EQ(schema_problem(out, "storagepool"), "");
    auto again = parse_pool_xml(out);
    ASSERT_TRUE(again) << again.error().full_message();
    EXPECT_EQ(format_pool_xml(*again, PoolSizes{100, 40, 60, {}}), out);
}

// <features><cow/> and part_separator are kept, as libvirt 9.0's
// pool-dumpxml prints them (measured), not dropped.
TEST(PoolXml, CowFeatureAndPartSeparatorAreKept) {
    auto dir = parse_pool_xml(std::string("<pool type='dir'><name>p1</name><uuid>") + kUuid +
                              "</uuid><features><cow state='no'/></features><target><path>/tmp/p1</path></target></pool>");
    ASSERT_TRUE(dir) << dir.error().full_message();
    EXPECT_EQ(dir->features_cow, "no");
    EXPECT_EQ(format_pool_xml(*dir, PoolSizes{}), std::string("<pool type='dir'>\n  <name>p1</name>\n  <uuid>") + kUuid +
                                                       "</uuid>\n  <capacity unit='bytes'>0</capacity>\n"
                                                       "  <allocation unit='bytes'>0</allocation>\n  <available unit='bytes'>0</available>\n"
                                                       "  <features>\n    <cow state='no'/>\n  </features>\n  <source/>\n"
                                                       "  <target>\n    <path>/tmp/p1</path>\n  </target>\n</pool>\n");
    auto disk = parse_pool_xml("<pool type='disk'><name>p2</name><source><device path='/dev/sdz' part_separator='no'/>"
                               "<format type='gpt'/></source><target><path>/dev</path></target></pool>");
    ASSERT_TRUE(disk) << disk.error().full_message();
    const std::string out = format_pool_xml(*disk, PoolSizes{});
    EXPECT_NE(out.find("<device path='/dev/sdz' part_separator='no'/>"), std::string::npos) << out;
    if (have_validator()) {
        EXPECT_EQ(schema_problem(format_pool_xml(*dir, PoolSizes{}), "storagepool"), "");
        EXPECT_EQ(schema_problem(out, "storagepool"), "") << out;
    }
    auto bad = parse_pool_xml("<pool type='dir'><name>p3</name><features><cow state='maybe'/></features><target><path>/tmp/p3</path></target></pool>");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("/pool/features/cow/@state"), std::string::npos) << bad.error().message;
    auto unknown = parse_pool_xml("<pool type='dir'><name>p4</name><features><zap/></features><target><path>/tmp/p4</path></target></pool>");
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().message.find("zap"), std::string::npos) << unknown.error().message;
}

TEST(PoolXml, DiskFreeExtentsAreFormattedAndIgnoredOnParse) {
    auto def = parse_pool_xml("<pool type='disk'><name>d</name><source><device path='/dev/sdz'/><format type='gpt'/>"
                              "</source><target><path>/dev</path></target></pool>");
    ASSERT_TRUE(def) << def.error().full_message();
    const PoolSizes sizes{64 << 20, 16 << 20, 46 << 20, {{17408, 1048576}, {17 << 20, 67091968}}};
    const std::string out = format_pool_xml(*def, sizes);
    EXPECT_NE(out.find("<device path='/dev/sdz'>"), std::string::npos) << out;
    EXPECT_NE(out.find("<freeExtent start='17408' end='1048576'/>"), std::string::npos) << out;
    EXPECT_NE(out.find("<freeExtent start='17825792' end='67091968'/>"), std::string::npos) << out;
    if (have_validator()) {
        EXPECT_EQ(schema_problem(out, "storagepool"), "") << out;
    }
    // What pool-dumpxml prints defines the pool again; the extents are live figures.
    auto again = parse_pool_xml(out);
    ASSERT_TRUE(again) << again.error().full_message();
    EXPECT_EQ(format_pool_xml(*again, std::nullopt).find("freeExtent"), std::string::npos);
}

TEST(PoolXml, FsAndDiskSourcesAreSchemaValid) {
    REQUIRE_VALIDATOR();
    for (const std::string xml :
         {"<pool type='fs'><name>f</name><source><device path='/dev/loop9'/><format type='ext4'/></source>"
          "<target><path>/mnt/f</path></target></pool>",
          "<pool type='disk'><name>d</name><source><device path='/dev/sdz'/><format type='gpt'/></source>"
          "<target><path>/dev</path></target></pool>"}) {
        auto def = parse_pool_xml(xml);
        ASSERT_TRUE(def) << def.error().full_message();
        const std::string out = format_pool_xml(*def, std::nullopt);
        EXPECT_EQ(schema_problem(out, "storagepool"), "") << out;
        EXPECT_FALSE(def->uuid.is_null()) << "a missing uuid is generated";
    }
}

struct BadDoc {
    std::string xml;
    std::string message;  // a piece of the expected message
};

TEST(PoolXml, InvalidDocumentsSayWhatIsWrong) {
    const std::vector<BadDoc> cases = {
        {"<pool type='dir'><name>a/b</name><target><path>/x</path></target></pool>", "/pool/name: invalid pool name 'a/b'"},
        {"<pool type='dir'><name>..</name><target><path>/x</path></target></pool>", "invalid pool name '..'"},
        {"<pool type='dir'><name>a</name></pool>", "/pool: missing <target>"},
        {"<pool type='dir'><name>a</name><target><path>rel</path></target></pool>", "/pool/target/path: target path 'rel' must be an absolute path"},
        {"<pool type='bogus'><name>a</name><target><path>/x</path></target></pool>", "/pool/@type: unsupported pool type 'bogus'"},
        {"<pool type='fs'><name>a</name><target><path>/x</path></target></pool>", "needs exactly one <device"},
        {"<pool type='dir'><name>a</name><uuid>xyz</uuid><target><path>/x</path></target></pool>", "/pool/uuid: malformed uuid 'xyz'"},
        {"<pool type='dir'><name>a</name><target><path>/x</path><permissions><mode>999</mode></permissions></target></pool>",
         "/pool/target/permissions/mode: invalid mode '999'"},
        {"<pool type='dir'><name>a</name><target><path>/x</path></target><extra/></pool>", "element <extra> in <pool> is not supported"},
        {"<pool type='dir'><name>a</name>", "malformed document"},
        {"<volume/>", "expected root element <pool>"},
    };
    for (const auto& c : cases) {
        auto r = parse_pool_xml(c.xml);
        ASSERT_FALSE(r) << c.xml;
        EXPECT_NE(r.error().full_message().find(c.message), std::string::npos)
            << "document: " << c.xml << "\nmessage: " << r.error().full_message();
    }
}

TEST(PoolXml, TypesThisHostCannotRunParseButAreNamed) {
    auto r = parse_pool_xml("<pool type='logical'><name>vg</name><source><name>vg0</name></source>"
                            "<target><path>/dev/vg0</path></target></pool>");
    ASSERT_TRUE(r) << r.error().full_message();
    EXPECT_EQ(r->type, "logical");
}

TEST(VolumeXml, UnitsAndRoundTrip) {
    REQUIRE_VALIDATOR();
    auto def = parse_volume_xml("<volume><name>web.qcow2</name><capacity unit='G'>10</capacity>"
                                "<allocation unit='KiB'>4</allocation>"
                                "<target><format type='qcow2'/><compat>1.1</compat><clusterSize unit='KiB'>128</clusterSize>"
                                "<features><lazy_refcounts/></features></target>"
                                "<backingStore><path>/images/base.qcow2</path><format type='qcow2'/></backingStore></volume>");
    ASSERT_TRUE(def) << def.error().full_message();
    EXPECT_EQ(def->capacity, 10ull << 30);
    EXPECT_EQ(def->allocation, 4096u);
    EXPECT_EQ(def->cluster_size, 131072u);
    EXPECT_TRUE(def->lazy_refcounts);
    EXPECT_EQ(def->backing_path, "/images/base.qcow2");
    def->key = def->path = "/images/web.qcow2";
    def->physical = 200704;
    const std::string out = format_volume_xml(*def);
    EXPECT_EQ(schema_problem(out, "storagevol"), "") << out;
    auto again = parse_volume_xml(out);
    ASSERT_TRUE(again) << again.error().full_message();
    EXPECT_EQ(again->capacity, def->capacity);
    EXPECT_EQ(again->backing_format, "qcow2");
}

TEST(VolumeXml, BytesAreTheDefaultUnit) {
    auto def = parse_volume_xml("<volume><name>a</name><capacity>1000</capacity></volume>");
    ASSERT_TRUE(def);
    EXPECT_EQ(def->capacity, 1000u);
    auto m = parse_volume_xml("<volume><name>a</name><capacity unit='M'>1</capacity></volume>");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->capacity, 1u << 20) << "M is MiB, as libvirt";
}

TEST(VolumeXml, PartitionVolumeIsSchemaValid) {
    REQUIRE_VALIDATOR();
    VolumeDef v;
    v.name = "loop3p1";
    v.type = driver::VolumeType::Block;
    v.key = v.path = "/dev/loop3p1";
    v.capacity = v.allocation = 1 << 20;
    v.physical = 1 << 20;
    v.format = "none";
    v.source_device = "/dev/loop3";
    v.extent_start = 1 << 20;
    v.extent_end = 2 << 20;
    EXPECT_NE(format_volume_xml(v).find("<extent start='1048576' end='2097152'/>"), std::string::npos) << format_volume_xml(v);
    EXPECT_EQ(schema_problem(format_volume_xml(v), "storagevol"), "") << format_volume_xml(v);
}

TEST(VolumeXml, InvalidDocumentsSayWhatIsWrong) {
    const std::vector<BadDoc> cases = {
        {"<volume><name>../etc</name><capacity>1</capacity></volume>", "/volume/name: invalid volume name '../etc'"},
        {"<volume><name>a/b</name><capacity>1</capacity></volume>", "invalid volume name 'a/b'"},
        {"<volume><name>a</name></volume>", "/volume: missing <capacity>"},
        {"<volume><name>a</name><capacity unit='parsec'>1</capacity></volume>", "/volume/capacity/@unit"},
        {"<volume><name>a</name><capacity>ten</capacity></volume>", "/volume/capacity: invalid size 'ten'"},
        {"<volume><name>a</name><capacity>1</capacity><target><format type='vmdk'/></target></volume>",
         "volume format 'vmdk' is not supported by vireo"},
        {"<volume><name>a</name><capacity>1</capacity><target><format type='raw'/></target>"
         "<backingStore><path>/b</path></backingStore></volume>", "a raw volume cannot have a backing store"},
        {"<volume><name>a</name><capacity>1</capacity><target><compat>2.0</compat></target></volume>", "unsupported qcow2 compat '2.0'"},
        {"<volume><name>a</name><capacity>1</capacity><target><encryption format='luks'/></target></volume>",
         "encrypted volumes are not supported"},
    };
    for (const auto& c : cases) {
        auto r = parse_volume_xml(c.xml);
        ASSERT_FALSE(r) << c.xml;
        EXPECT_NE(r.error().full_message().find(c.message), std::string::npos)
            << "document: " << c.xml << "\nmessage: " << r.error().full_message();
    }
}

}  // namespace
}  // namespace vireo::pool
