// The storage verbs' text forms: virsh's size syntax and pretty sizes, the
// pool-list / vol-list tables, the info blocks and the XML the *-as verbs build.
#include <gtest/gtest.h>

#include "cli/vireo/pool_format.hpp"

namespace vireo::cli {
namespace {

driver::PoolSummary pool(std::string name, driver::PoolState state, bool autostart = false, bool persistent = true) {
    driver::PoolSummary p;
    p.name = std::move(name);
    p.uuid = *Uuid::parse("dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566");
    p.type = "dir";
    p.state = state;
    p.autostart = autostart;
    p.persistent = persistent;
    if (state == driver::PoolState::Running) {
        p.capacity = 100ULL << 30;
        p.available = 100ULL << 30;
    }
    return p;
}

driver::VolumeSummary volume(std::string name, std::uint64_t capacity, std::uint64_t allocation) {
    driver::VolumeSummary v;
    v.pool = "default";
    v.path = "/var/lib/vireo/images/" + name;
    v.key = v.path;
    v.name = std::move(name);
    v.format = "qcow2";
    v.capacity = capacity;
    v.allocation = allocation;
    v.physical = allocation;
    return v;
}

TEST(PoolFormat, SizesParseAsVirshReadsThem) {
    EXPECT_EQ(parse_size("512").value(), 512u);
    EXPECT_EQ(parse_size("1G").value(), 1ULL << 30);
    EXPECT_EQ(parse_size("1GiB").value(), 1ULL << 30);
    EXPECT_EQ(parse_size("1GB").value(), 1000000000u);
    EXPECT_EQ(parse_size("10M").value(), 10ULL << 20);
    EXPECT_EQ(parse_size("2k").value(), 2048u);
    EXPECT_EQ(parse_size("3T").value(), 3ULL << 40);
    EXPECT_EQ(parse_size("7b").value(), 7u);
    EXPECT_EQ(parse_size("7bytes").value(), 7u);
    EXPECT_EQ(parse_size("1.5G").error().message, "unknown suffix '.5G'");
    EXPECT_EQ(parse_size("1x").error().message, "unknown suffix 'x'");
    EXPECT_FALSE(parse_size("G").has_value());
    EXPECT_FALSE(parse_size("").has_value());
    EXPECT_FALSE(parse_size("-1G").has_value());
    EXPECT_FALSE(parse_size("20E").has_value());  // overflows 64 bits
}

TEST(PoolFormat, PrettySizes) {
    EXPECT_EQ(pretty_size(0), "0.00 B");
    EXPECT_EQ(pretty_size(1023), "1023.00 B");
    EXPECT_EQ(pretty_size(1024), "1.00 KiB");
    EXPECT_EQ(pretty_size(1ULL << 30), "1.00 GiB");
    EXPECT_EQ(pretty_size(100ULL << 30), "100.00 GiB");
    EXPECT_EQ(pretty_size(1536ULL << 20), "1.50 GiB");
    EXPECT_EQ(pretty_size(5ULL << 40), "5.00 TiB");
}

TEST(PoolFormat, PoolListTablesMatchVirsh) {
    std::vector<driver::PoolSummary> pools{pool("default-pool", driver::PoolState::Running)};
    EXPECT_EQ(format_pool_table(pools, false, true),
              " Name           State    Autostart\n"
              "------------------------------------\n"
              " default-pool   active   no\n");
    pools.push_back(pool("p1", driver::PoolState::Inactive));
    EXPECT_EQ(format_pool_table(pools, true, true),
              " Name           State      Autostart   Persistent   Capacity     Allocation   Available\n"
              "------------------------------------------------------------------------------------------\n"
              " default-pool   running    no          yes          100.00 GiB   0.00 B       100.00 GiB\n"
              " p1             inactive   no          yes          -            -            -\n");
    EXPECT_EQ(format_pool_table({}, false, true), " Name   State   Autostart\n---------------------------\n");
    EXPECT_EQ(format_pool_names({pools[0]}, false, true), "default-pool        \n");
    EXPECT_EQ(format_pool_names({pools[0]}, true, true), "dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566 default-pool        \n");
}

TEST(PoolFormat, PoolListFilters) {
    std::vector<driver::PoolSummary> all{pool("b", driver::PoolState::Running, true),
                                         pool("a", driver::PoolState::Inactive),
                                         pool("c", driver::PoolState::Running, false, false)};
    auto names = [](const std::vector<driver::PoolSummary>& ps) {
        std::string out;
        for (const auto& p : ps) out += p.name;
        return out;
    };
    PoolListFilter f;
    EXPECT_EQ(names(select_pools(all, f)), "bc");
    f.inactive = true;
    EXPECT_EQ(names(select_pools(all, f)), "abc");
    f.transient = true;
    EXPECT_EQ(names(select_pools(all, f)), "c");
    f = {};
    f.autostart = true;
    EXPECT_EQ(names(select_pools(all, f)), "b");
    f = {};
    f.types = {"fs"};
    EXPECT_EQ(names(select_pools(all, f)), "");
    EXPECT_EQ(parse_pool_types("dir,fs").value(), (std::vector<std::string>{"dir", "fs"}));
    EXPECT_EQ(parse_pool_types("dri").error().message, "Invalid pool type 'dri'");
}

TEST(PoolFormat, PoolInfoBlock) {
    EXPECT_EQ(format_pool_info(pool("default-pool", driver::PoolState::Running), false),
              "Name:           default-pool\n"
              "UUID:           dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566\n"
              "State:          running\n"
              "Persistent:     yes\n"
              "Autostart:      no\n"
              "Capacity:       100.00 GiB\n"
              "Allocation:     0.00 B\n"
              "Available:      100.00 GiB\n");
    EXPECT_EQ(format_pool_info(pool("p1", driver::PoolState::Inactive), false),
              "Name:           p1\n"
              "UUID:           dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566\n"
              "State:          inactive\n"
              "Persistent:     yes\n"
              "Autostart:      no\n");
    EXPECT_NE(format_pool_info(pool("p", driver::PoolState::Running), true).find("Capacity:       107374182400\n"),
              std::string::npos);
}

TEST(PoolFormat, VolumeTablesAndInfo) {
    std::vector<driver::VolumeSummary> vols{volume("b.img", 1ULL << 30, 1ULL << 30), volume("a.qcow2", 1ULL << 30, 196608)};
    EXPECT_EQ(format_volume_table(vols, false, true),
              " Name      Path\n"
              "------------------------------------------\n"
              " a.qcow2   /var/lib/vireo/images/a.qcow2\n"
              " b.img     /var/lib/vireo/images/b.img\n");
    EXPECT_EQ(format_volume_table(vols, true, true),
              " Name      Path                            Type   Capacity   Allocation\n"
              "-------------------------------------------------------------------------\n"
              " a.qcow2   /var/lib/vireo/images/a.qcow2   file   1.00 GiB   192.00 KiB\n"
              " b.img     /var/lib/vireo/images/b.img     file   1.00 GiB   1.00 GiB\n");
    EXPECT_EQ(format_volume_info(vols[1], false, false),
              "Name:           a.qcow2\nType:           file\nCapacity:       1.00 GiB\nAllocation:     192.00 KiB\n");
    EXPECT_EQ(format_volume_info(vols[1], true, true),
              "Name:           a.qcow2\nType:           file\nCapacity:       1073741824 bytes\n"
              "Physical:       196608 bytes\n");
}

TEST(PoolFormat, PoolXmlAsVirshBuildsIt) {
    PoolXmlSpec spec;
    spec.name = "x";
    spec.type = "fs";
    spec.source_dev = "/dev/loop0";
    spec.source_format = "ext4";
    spec.target = "/mnt/x";
    EXPECT_EQ(build_pool_xml(spec),
              "<pool type='fs'>\n  <name>x</name>\n  <source>\n    <device path='/dev/loop0'/>\n"
              "    <format type='ext4'/>\n  </source>\n  <target>\n    <path>/mnt/x</path>\n  </target>\n</pool>\n");
    PoolXmlSpec dir;
    dir.name = "a&b";
    dir.type = "dir";
    EXPECT_EQ(build_pool_xml(dir), "<pool type='dir'>\n  <name>a&amp;b</name>\n</pool>\n");
}

TEST(PoolFormat, VolumeXmlAsVirshBuildsIt) {
    VolumeXmlSpec spec;
    spec.name = "b.qcow2";
    spec.capacity = 1ULL << 30;
    spec.allocation = 10ULL << 20;
    spec.format = "qcow2";
    spec.backing_path = "/p/a";
    spec.backing_format = "raw";
    EXPECT_EQ(build_volume_xml(spec),
              "<volume>\n  <name>b.qcow2</name>\n  <capacity>1073741824</capacity>\n"
              "  <allocation>10485760</allocation>\n  <target>\n    <format type='qcow2'/>\n  </target>\n"
              "  <backingStore>\n    <path>/p/a</path>\n    <format type='raw'/>\n  </backingStore>\n</volume>\n");
}

TEST(PoolFormat, CloneXmlRenamesAndDropsIdentity) {
    auto xml = clone_volume_xml("<volume type='file'><name>a</name><key>/p/a</key><capacity>5</capacity>"
                                "<target><path>/p/a</path><format type='qcow2'/></target></volume>",
                                "b");
    ASSERT_TRUE(xml.has_value());
    EXPECT_NE(xml->find("<name>b</name>"), std::string::npos) << *xml;
    EXPECT_EQ(xml->find("<key>"), std::string::npos) << *xml;
    EXPECT_EQ(xml->find("/p/a"), std::string::npos) << *xml;
    EXPECT_NE(xml->find("<format type=\"qcow2\" />"), std::string::npos) << *xml;
    EXPECT_FALSE(clone_volume_xml("<not xml", "b").has_value());
}

}  // namespace
}  // namespace vireo::cli
