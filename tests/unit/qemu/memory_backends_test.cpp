// The host side of guest memory backends: hugetlbfs mounts from
// /proc/mounts, and what check_memory_host() refuses before QEMU runs.
#include <gtest/gtest.h>

#include "conf/domain.hpp"
#include "qemu/memory_backends.hpp"

using namespace vireo;

namespace {

conf::DomainDef parsed(const std::string& extra) {
    auto def = conf::parse_domain_xml("<domain type='qemu'><name>m</name><memory unit='MiB'>256</memory><vcpu>2</vcpu>" + extra +
                                      "<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>");
    EXPECT_TRUE(def) << def.error().message;
    return def ? *def : conf::DomainDef{};
}

TEST(MemoryBackends, HugetlbfsMountsAndTheirPageSizes) {
    const std::string mounts =
        "proc /proc proc rw,nosuid 0 0\n"
        "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n"
        "none /mnt/huge\\0401G hugetlbfs rw,pagesize=1024M 0 0\n"
        "hugetlbfs /huge-default hugetlbfs rw 0 0\n";
    auto m = qemu::parse_hugetlbfs_mounts(mounts, 2048);
    ASSERT_EQ(m.size(), 3u);
    EXPECT_EQ(m[0].path, "/dev/hugepages");
    EXPECT_EQ(m[0].page_kib, 2048u);
    EXPECT_EQ(m[1].path, "/mnt/huge 1G");
    EXPECT_EQ(m[1].page_kib, 1048576u);
    EXPECT_EQ(m[2].page_kib, 2048u);
}

TEST(MemoryBackends, HugepagesNeedAMountAndFreePages) {
    auto def = parsed("<memoryBacking><hugepages/></memoryBacking>");
    qemu::MemoryHost host;
    auto st = qemu::check_memory_host(def, host);
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find("hugetlbfs filesystem is not mounted"), std::string::npos) << st.error().message;

    host.hugetlbfs = {{"/dev/hugepages", 2048}};
    host.free_hugepages[2048] = 10;
    st = qemu::check_memory_host(def, host);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message,
              "not enough free huge pages of 2048 KiB: the guest needs 128, the host has 10 free "
              "(reserve them in /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)");

    host.free_hugepages[2048] = 128;
    EXPECT_TRUE(qemu::check_memory_host(def, host));

    auto gig = parsed("<memoryBacking><hugepages><page size='1' unit='GiB'/></hugepages></memoryBacking>");
    st = qemu::check_memory_host(gig, host);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message, "Unable to find any usable hugetlbfs mount for 1048576 KiB");
}

TEST(MemoryBackends, NumatuneNeedsTheHostNodes) {
    auto def = parsed("<numatune><memory mode='strict' nodeset='0-1'/></numatune>");
    qemu::MemoryHost host;  // node 0 only
    auto st = qemu::check_memory_host(def, host);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message, "NUMA node 1 is unavailable (<numatune><memory> nodeset='0-1'; this host has node 0)");
    host.numa_nodes = {0, 1};
    EXPECT_TRUE(qemu::check_memory_host(def, host));
}

TEST(MemoryBackends, RestrictiveModeIsRefusedByName) {
    auto def = parsed("<numatune><memory mode='restrictive' nodeset='0'/></numatune>");
    auto args = qemu::memory_args(def, {});
    ASSERT_FALSE(args);
    EXPECT_NE(args.error().message.find("numatune mode 'restrictive'"), std::string::npos) << args.error().message;
}

TEST(MemoryBackends, IdLists) {
    EXPECT_EQ(qemu::id_list("0-3,^2,5"), (std::vector<unsigned>{0, 1, 3, 5}));
    EXPECT_EQ(qemu::id_list(""), (std::vector<unsigned>{}));
    EXPECT_EQ(qemu::id_list("x"), (std::vector<unsigned>{}));
}

}  // namespace
