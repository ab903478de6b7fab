// The disk verbs' text forms: domblkstat's lines (plain, --human, the sum
// over every disk), domblkinfo's block and --all table (a cdrom without a
// medium), blockresize's size syntax. The layouts are virsh 9.0's (checked
// against real virsh in tests/integration/rpc/virsh_test.cpp).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "cli/vireo/block_format.hpp"

namespace vireo::cli {
namespace {

driver::BlockStats stats() {
    driver::BlockStats s;
    s.device = "vda";
    s.rd_req = 12;
    s.rd_bytes = 4096;
    s.wr_req = 3;
    s.wr_bytes = 1536;
    s.flush_operations = 2;
    s.rd_total_times = 1000;
    s.wr_total_times = 2000;
    s.flush_total_times = 300;
    return s;
}

TEST(BlockFormat, DomblkstatLinesInVirshOrder) {
    EXPECT_EQ(format_block_stats(stats(), "vda", false),
              "vda rd_req 12\n"
              "vda rd_bytes 4096\n"
              "vda wr_req 3\n"
              "vda wr_bytes 1536\n"
              "vda flush_operations 2\n"
              "vda rd_total_times 1000\n"
              "vda wr_total_times 2000\n"
              "vda flush_total_times 300\n");
    // The device as the user named it (a source path too).
    EXPECT_TRUE(format_block_stats(stats(), "/images/a.qcow2", false).starts_with("/images/a.qcow2 rd_req 12\n"));
}

TEST(BlockFormat, DomblkstatSumOverEveryDiskStartsWithASpace) {
    const std::string out = format_block_stats(stats(), "", false);
    EXPECT_TRUE(out.starts_with(" rd_req 12\n rd_bytes 4096\n")) << out;
}

TEST(BlockFormat, DomblkstatHuman) {
    EXPECT_EQ(format_block_stats(stats(), "vda", true),
              "Device: vda\n"
              " number of read operations:      12\n"
              " number of bytes read:           4096\n"
              " number of write operations:     3\n"
              " number of bytes written:        1536\n"
              " number of flush operations:     2\n"
              " total duration of reads (ns):   1000\n"
              " total duration of writes (ns):  2000\n"
              " total duration of flushes (ns): 300\n");
}

TEST(BlockFormat, DomblkinfoBlock) {
    const driver::BlockInfo b{"vda", 1099506450432, 1099511627776, 1099511627776};
    EXPECT_EQ(format_block_info(b, false),
              "Capacity:       1099506450432\nAllocation:     1099511627776\nPhysical:       1099511627776\n");
    EXPECT_EQ(format_block_info(b, true), "Capacity:       1023.995 GiB\nAllocation:     1.000 TiB\nPhysical:       1.000 TiB\n");
    EXPECT_EQ(format_block_info({"vdb", 512, 0, 16 << 20}, true),
              "Capacity:       512.000 B\nAllocation:     0.000 B\nPhysical:       16.000 MiB\n");
}

TEST(BlockFormat, DomblkinfoAllTableWithAnEmptyCdrom) {
    const std::vector<driver::BlockInfo> disks{{"vda", 1099506450432, 1099511627776, 1099511627776}, {"hdc", 0, 0, 0}};
    EXPECT_EQ(format_block_info_table(disks, false, true),
              " Target   Capacity        Allocation      Physical\n"
              "---------------------------------------------------------\n"
              " vda      1099506450432   1099511627776   1099511627776\n"
              " hdc      -               -               -\n");
    EXPECT_EQ(format_block_info_table(disks, true, true),
              " Target   Capacity       Allocation   Physical\n"
              "-------------------------------------------------\n"
              " vda      1023.995 GiB   1.000 TiB    1.000 TiB\n"
              " hdc      -              -            -\n");
    EXPECT_EQ(format_block_info_table(disks, false, false),
              " vda   1099506450432   1099511627776   1099511627776\n"
              " hdc   -               -               -\n");
}

TEST(BlockFormat, ResizeSizeIsKibUnlessScaled) {
    EXPECT_EQ(parse_resize_size("1024", false).value_or(0), 1048576U);
    EXPECT_EQ(parse_resize_size("1024", true).value_or(0), 1024U);
    EXPECT_EQ(parse_resize_size("32M", false).value_or(0), 32U << 20);
    EXPECT_EQ(parse_resize_size("32MiB", true).value_or(0), 32U << 20);
    EXPECT_EQ(parse_resize_size("1G", false).value_or(0), 1U << 30);
    EXPECT_EQ(parse_resize_size("1GB", false).value_or(0), 1000000000U);
    EXPECT_EQ(parse_resize_size("513b", false).value_or(0), 513U);
    EXPECT_EQ(parse_resize_size("2kib", false).value_or(0), 2048U);
    EXPECT_EQ(parse_resize_size("7bytes", false).value_or(0), 7U);
    // virsh's headline; libvirt's reason (as virsh prints it next) where it has one.
    const std::pair<const char*, const char*> bad[] = {
        {"", ""},
        {"-1", ""},
        {"abc", ""},
        {"99999999999999999999", ""},
        {"1.5G", "invalid argument: unknown suffix '.5G'"},
        {"12X", "invalid argument: unknown suffix 'X'"},
        {"12KX", "invalid argument: unknown suffix 'KX'"},
        {"18446744073709551615", "numerical overflow: value too large: 18446744073709551615"},
        {"17179869184G", "numerical overflow: value too large: 17179869184G"},
    };
    for (const auto& [text, reason] : bad) {
        auto r = parse_resize_size(text, false);
        ASSERT_FALSE(r) << text;
        EXPECT_EQ(r.error().message,
                  fmt::format("Scaled numeric value '{}' for <size> option is malformed or out of range", text));
        EXPECT_EQ(r.error().cause ? r.error().cause->message : "", reason) << text;
    }
    EXPECT_EQ(parse_resize_size("18446744073709551615", true).value_or(0), 18446744073709551615U) << "--bytes: no scaling";
}

// --- block jobs ---------------------------------------------------------------------

std::vector<driver::TypedParam> job_params(std::string type, std::string state, std::uint64_t cur, std::uint64_t end,
                                           std::uint64_t bandwidth) {
    return {{"type", "string", std::move(type)},
            {"state", "string", std::move(state)},
            {"cur", "ullong", std::to_string(cur)},
            {"end", "ullong", std::to_string(end)},
            {"bandwidth", "ullong", std::to_string(bandwidth)}};
}

TEST(BlockFormat, BlockJobViewReadsTheTypedParameters) {
    auto v = block_job_view(job_params("copy", "ready", 5, 10, 1048576));
    EXPECT_TRUE(v.present);
    EXPECT_TRUE(v.active());
    EXPECT_EQ(v.type, "copy");
    EXPECT_EQ(v.cur, 5U);
    EXPECT_EQ(v.end, 10U);
    EXPECT_EQ(v.bandwidth, 1048576U);
    EXPECT_FALSE(block_job_view({}).present);
    EXPECT_FALSE(block_job_view(job_params("pull", "completed", 10, 10, 0)).active());
}

TEST(BlockFormat, BlockJobLabelsAndPercentAsVirsh) {
    EXPECT_EQ(block_job_label("pull"), "Block Pull");
    EXPECT_EQ(block_job_label("copy"), "Block Copy");
    EXPECT_EQ(block_job_label("commit"), "Block Commit");
    EXPECT_EQ(block_job_label("active_commit"), "Active Block Commit");
    EXPECT_EQ(block_job_label("backup"), "Unknown job");
    EXPECT_EQ(block_job_percent(0, 0), 100);
    EXPECT_EQ(block_job_percent(45, 100), 45);
    EXPECT_EQ(block_job_percent(999, 1000), 99) << "never 100 before the end";
    EXPECT_EQ(block_job_percent(1000, 1000), 100);
}

TEST(BlockFormat, BlockjobInfoAsVirsh) {
    auto t = format_block_job_info(block_job_view(job_params("commit", "running", 45, 100, 0)), "vda", false, false);
    EXPECT_EQ(t.err, "\rBlock Commit: [ 45 %]");
    EXPECT_EQ(t.out, "\n");
    t = format_block_job_info(block_job_view(job_params("copy", "ready", 100, 100, 1048576)), "vda", false, false);
    EXPECT_EQ(t.err, "\rBlock Copy: [100 %]");
    EXPECT_EQ(t.out, "    Bandwidth limit: 1048576 bytes/s (1.000 MiB/s)\n");
    t = format_block_job_info(block_job_view(job_params("copy", "ready", 7, 9, 2097152)), "vda", true, false);
    EXPECT_EQ(t.err, "");
    EXPECT_EQ(t.out, " type=Block Copy\n bandwidth=2\n cur=7\n end=9\n\n");
    t = format_block_job_info(block_job_view(job_params("copy", "ready", 7, 9, 2097152)), "vda", true, true);
    EXPECT_EQ(t.out, " type=Block Copy\n bandwidth=2097152\n cur=7\n end=9\n\n");
    // No job, or only the record of an ended one.
    for (const auto& params : {std::vector<driver::TypedParam>{}, job_params("pull", "completed", 1, 1, 0)}) {
        t = format_block_job_info(block_job_view(params), "vda", false, false);
        EXPECT_EQ(t.out, "No current block job for vda\n");
        EXPECT_EQ(format_block_job_info(block_job_view(params), "vda", true, false).out, "");
    }
}

TEST(BlockFormat, BandwidthInMibOrBytes) {
    EXPECT_EQ(parse_block_bandwidth("1", false).value_or(0), 1048576U);
    EXPECT_EQ(parse_block_bandwidth("1", true).value_or(0), 1U);
    EXPECT_EQ(parse_block_bandwidth("0", false).value_or(1), 0U);
    for (const auto* bad : {"", "x", "-1", "1M", "17592186044416"}) {
        auto r = parse_block_bandwidth(bad, false);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().message, fmt::format("Numeric value '{}' for <bandwidth> option is malformed or out of range", bad));
    }
}

}  // namespace
}  // namespace vireo::cli
