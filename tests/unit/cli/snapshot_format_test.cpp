// snapshot-list's filters and layouts, snapshot-info's block,
// snapshot-create-as's document.
#include <gtest/gtest.h>

#include <cstdlib>

#include "cli/vireo/snapshot_format.hpp"

using namespace vireo;
using namespace vireo::cli;

namespace {

// off1 (shutoff) -> run1 (running) -> {run2 (running), off2 (shutoff)}; lone (paused) a second root.
std::vector<driver::SnapshotSummary> sample() {
    return {{"run1", "off1", "running", 1765090000, "internal", false},
            {"off1", "", "shutoff", 1765080000, "internal", false},
            {"run2", "run1", "running", 1765100000, "internal", true},
            {"off2", "run1", "shutoff", 1765110000, "internal", false},
            {"lone", "", "paused", 1765120000, "internal", false}};
}

std::vector<std::string> names(const Result<std::vector<driver::SnapshotSummary>>& rows) {
    std::vector<std::string> out;
    if (rows)
        for (const auto& r : *rows) out.push_back(r.name);
    return out;
}

using Names = std::vector<std::string>;

// A filter with `set` applied to it.
template <class F>
SnapshotFilter filter(F set) {
    SnapshotFilter f;
    set(f);
    return f;
}

}  // namespace

TEST(SnapshotFormat, FiltersSelectAsVirshDoes) {
    const auto all = sample();
    EXPECT_EQ(names(select_snapshots(all, {})), (Names{"lone", "off1", "off2", "run1", "run2"}));
    EXPECT_EQ(names(select_snapshots(all, filter([](auto& f) { f.roots = true; }))), (Names{"lone", "off1"}));
    EXPECT_EQ(names(select_snapshots(all, filter([](auto& f) { f.leaves = true; }))), (Names{"lone", "off2", "run2"}));
    EXPECT_EQ(names(select_snapshots(all, filter([](auto& f) { f.no_leaves = true; }))), (Names{"off1", "run1"}));
    EXPECT_EQ(names(select_snapshots(all, filter([](auto& f) { f.inactive = true; }))), (Names{"off1", "off2"}));
    EXPECT_EQ(names(select_snapshots(all, filter([](auto& f) { f.active = true; }))), (Names{"lone", "run1", "run2"}));
    EXPECT_EQ(names(select_snapshots(all, filter([](auto& f) { f.external = true; }))), Names{});
    EXPECT_EQ(names(select_snapshots(all, filter([](auto& f) { f.internal = true; }))).size(), 5u);
    EXPECT_EQ(names(select_snapshots(all, filter([](auto& f) { f.from = "off1"; }))), (Names{"run1"}));
    EXPECT_EQ(names(select_snapshots(all, filter([](auto& f) {
                  f.from = "off1";
                  f.descendants = true;
              }))), (Names{"off2", "run1", "run2"}));
    auto missing = select_snapshots(all, filter([](auto& f) { f.from = "nope"; }));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::NotFound);
}

TEST(SnapshotFormat, TableTreeAndInfoAreVirshs) {
    ::setenv("TZ", "UTC", 1);
    ::tzset();
    const auto all = sample();
    auto rows = select_snapshots(all, filter([](auto& f) { f.roots = true; }));
    ASSERT_TRUE(rows);
    EXPECT_EQ(format_snapshot_table(*rows, false),
              " Name   Creation Time               State\n"
              "---------------------------------------------\n"
              " lone   2025-12-07 15:06:40 +0000   paused\n"
              " off1   2025-12-07 04:00:00 +0000   shutoff\n"
              "\n");
    EXPECT_TRUE(format_snapshot_table(*rows, true).starts_with(" Name   Creation Time               State     Parent\n"));
    EXPECT_EQ(format_snapshot_tree(all),
              "lone\n"
              "\n"
              "off1\n"
              "  |\n"
              "  +- run1\n"
              "      |\n"
              "      +- off2\n"
              "      +- run2\n"
              "        \n");
    EXPECT_EQ(format_snapshot_info(all, all[0], "web"),
              "Name:           run1\n"
              "Domain:         web\n"
              "Current:        no\n"
              "State:          running\n"
              "Location:       internal\n"
              "Parent:         off1\n"
              "Children:       2\n"
              "Descendants:    2\n"
              "Metadata:       yes\n");
    EXPECT_EQ(format_snapshot_info(all, all[1], "web").find("Parent:         -\n") != std::string::npos, true);
    auto j = snapshot_json(all[1]);
    EXPECT_TRUE(j["parent"].is_null());
    EXPECT_EQ(j["state"], "shutoff");
    EXPECT_EQ(j["creation_time"], 1765080000u);
}

TEST(SnapshotFormat, CreateAsDocumentEscapesItsText) {
    EXPECT_EQ(snapshot_create_as_xml("s1", "a <b> & 'c'").value(),
              "<domainsnapshot>\n  <name>s1</name>\n  <description>a &lt;b&gt; &amp; &apos;c&apos;</description>\n"
              "</domainsnapshot>\n");
    EXPECT_EQ(snapshot_create_as_xml("", "").value(), "<domainsnapshot>\n</domainsnapshot>\n");
}

TEST(SnapshotFormat, DiskspecsBecomeDisksAsVirshWritesThem) {
    auto xml = snapshot_create_as_xml("s1", "", {"vda,snapshot=external,file=/x/a,,b.ovl", "vdb,snapshot=no",
                                                 "sda,stype=block,driver=qcow2,file=/dev/vg/s"});
    ASSERT_TRUE(xml) << xml.error().message;
    EXPECT_EQ(*xml, "<domainsnapshot>\n  <name>s1</name>\n  <disks>\n"
                    "    <disk name='vda' snapshot='external'>\n      <source file='/x/a,b.ovl'/>\n    </disk>\n"
                    "    <disk name='vdb' snapshot='no'/>\n"
                    "    <disk name='sda' type='block'>\n      <driver type='qcow2'/>\n      <source dev='/dev/vg/s'/>\n"
                    "    </disk>\n  </disks>\n</domainsnapshot>\n");
    for (const std::string bad : {",snapshot=external", "vda,bogus=1", "vda,file", "vda,file=/a,file=/b", "vda,stype=net"}) {
        auto r = snapshot_create_as_xml("s1", "", {bad});
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.error().message.find("unable to parse diskspec: " + bad), std::string::npos) << r.error().message;
    }
}
