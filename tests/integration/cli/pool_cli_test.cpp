// Storage pools and volumes through the vireo CLI and a real session daemon
// (auto-started on temporary directories): every pool-* and vol-* verb on a
// dir pool, an fs pool (an image file on a loop device, formatted by
// pool-build) and a disk pool (partitions on a loop device); a 1 GiB sparse
// upload/download checked by hash and allocated size; a guest booted from a
// volume cloned from a base volume. qemu-img is the oracle for image files.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <regex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "integration/pool/loop_device.hpp"
#include "support/guest.hpp"
#include "support/session_cli.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

namespace vireo::test {
namespace {

using namespace std::chrono_literals;
using pool::test_support::LoopDevice;
using pool::test_support::MountGuard;

class PoolCli : public ::testing::Test {
protected:
    void SetUp() override {
        if (!std::filesystem::exists(bin_dir() / "vireod")) VIREO_SKIP("vireod is not built");
        in_use_ = true;
    }

    void TearDown() override {
        if (!in_use_) return;
        cli_.destroy_guests();
        // Stop pools so that fs pools are unmounted before the loop devices go.
        for (const auto& name : lines(vireo({"pool-list", "--name"}).out))
            if (!name.empty()) vireo({"pool-destroy", name});
        cli_.stop_daemon();
    }

    // Lines of `text`, trailing blanks removed (pool-list --name pads names).
    static std::vector<std::string> lines(const std::string& text) {
        std::vector<std::string> out;
        std::size_t start = 0;
        for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
            std::string line = text.substr(start, nl - start);
            while (!line.empty() && line.back() == ' ') line.pop_back();
            out.push_back(line);
        }
        return out;
    }

    std::vector<std::string> vireo_argv(const std::vector<std::string>& args) { return cli_.argv(args); }
    CommandResult vireo(const std::vector<std::string>& args) { return cli_(args); }

    // Run a verb that must succeed; its stdout.
    std::string ok(const std::vector<std::string>& args) {
        auto r = vireo(args);
        EXPECT_EQ(r.exit_code, 0) << fmt::format("vireo {}\n", fmt::join(args, " ")) << r.err;
        EXPECT_EQ(r.err, "") << fmt::format("vireo {}", fmt::join(args, " "));
        return r.out;
    }

    // Run a verb that must fail; its stderr.
    std::string refused(const std::vector<std::string>& args) {
        auto r = vireo(args);
        EXPECT_EQ(r.exit_code, 1) << fmt::format("vireo {} should fail\n", fmt::join(args, " ")) << r.out;
        EXPECT_TRUE(r.err.starts_with("error: ")) << r.err;
        return r.err;
    }

    static nlohmann::json img_info(const std::string& path) {
        auto r = run({"qemu-img", "info", "--output=json", "-U", path});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
    }

    std::string write_file(const std::string& name, const std::string& text) {
        const std::string path = (dir_ / name).string();
        std::ofstream(path) << text;
        return path;
    }

    TempDir dir_;
    SessionCli cli_{dir_.path()};
    bool in_use_ = false;  // SetUp did not skip: stop what the test started
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string sha256(const std::string& path) {
    auto r = run({"sha256sum", path});
    return r.out.substr(0, r.out.find(' '));
}

std::uint64_t allocated_bytes(const std::string& path) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) return ~0ULL;
    return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

// ---------------------------------------------------------------------------

TEST_F(PoolCli, DirPoolLifecycle) {
    const std::string target = (dir_ / "images").string();
    EXPECT_EQ(ok({"pool-define-as", "images", "dir", "--target", target}), "Pool images defined\n\n");
    EXPECT_EQ(ok({"pool-build", "images"}), "Pool images built\n\n");
    EXPECT_TRUE(std::filesystem::is_directory(target));
    EXPECT_EQ(ok({"pool-start", "images"}), "Pool images started\n\n");
    EXPECT_EQ(ok({"pool-autostart", "images"}), "Pool images marked as autostarted\n\n");

    auto list = ok({"pool-list", "--all"});
    EXPECT_TRUE(list.starts_with(" Name ")) << list;
    EXPECT_TRUE(std::regex_search(list, std::regex(R"(\n images +active +yes\n)"))) << list;
    auto details = ok({"pool-list", "--all", "--details"});
    EXPECT_TRUE(std::regex_search(details, std::regex(R"(\n images +running +yes +yes +[0-9.]+ [KMGT]iB +)")))
        << details;
    auto json = nlohmann::json::parse(ok({"pool-list", "--all", "--json"}));
    bool found = false;
    for (const auto& p : json)
        if (p["name"] == "images") {
            found = true;
            EXPECT_EQ(p["type"], "dir");
            EXPECT_EQ(p["state"], "running");
            EXPECT_EQ(p["target"], target);
        }
    EXPECT_TRUE(found) << json.dump();
    EXPECT_TRUE(contains(ok({"pool-list", "--type", "dir", "--name"}), "images"));
    EXPECT_FALSE(contains(ok({"pool-list", "--type", "fs", "--name"}), "images"));

    auto info = ok({"pool-info", "images"});
    EXPECT_TRUE(info.starts_with("Name:           images\nUUID:           ")) << info;
    EXPECT_TRUE(contains(info, "State:          running\nPersistent:     yes\nAutostart:      yes\nCapacity:       "));
    const std::string uuid = lines(ok({"pool-uuid", "images"})).at(0);
    EXPECT_EQ(uuid.size(), 36u);
    EXPECT_EQ(ok({"pool-name", uuid}), "images\n\n");
    auto xml = ok({"pool-dumpxml", "images"});
    EXPECT_TRUE(contains(xml, "<pool type='dir'>") || contains(xml, "<pool type=\"dir\">")) << xml;
    EXPECT_TRUE(contains(xml, "<path>" + target + "</path>")) << xml;
    EXPECT_TRUE(contains(ok({"pool-dumpxml", "--inactive", "images"}), "<name>images</name>"));

    // pool-edit: the editor is a sed script; the change goes back through the daemon.
    {
        auto same = run(cli_.argv({"pool-edit", "images"}, "EDITOR=sed -i 's|</pool>|</pool>|'"));
        EXPECT_EQ(same.exit_code, 0) << same.err;
        EXPECT_EQ(same.out, "Pool images XML configuration not changed.\n\n");
    }

    // A file put there behind the pool's back shows up after pool-refresh.
    std::filesystem::resize_file(write_file("images/outside.img", ""), 1 << 20);
    EXPECT_EQ(ok({"pool-refresh", "images"}), "Pool images refreshed\n\n");
    EXPECT_TRUE(contains(ok({"vol-list", "images"}), "outside.img"));

    EXPECT_EQ(ok({"pool-autostart", "images", "--disable"}), "Pool images unmarked as autostarted\n\n");
    EXPECT_EQ(ok({"pool-destroy", "images"}), "Pool images destroyed\n\n");
    EXPECT_TRUE(contains(ok({"pool-info", "images"}), "State:          inactive\n"));
    EXPECT_TRUE(std::regex_search(ok({"pool-list", "--inactive"}), std::regex(R"(\n images +inactive +no\n)")));
    std::filesystem::remove(target + "/outside.img");
    EXPECT_EQ(ok({"pool-delete", "images"}), "Pool images deleted\n\n");
    EXPECT_FALSE(std::filesystem::exists(target)) << "pool-delete removes the empty directory";
    EXPECT_EQ(ok({"pool-undefine", "images"}), "Pool images has been undefined\n\n");
    EXPECT_EQ(refused({"pool-info", "images"}).substr(0, 34), "error: failed to get pool 'images'");

    // pool-create-as: transient, gone once destroyed.
    EXPECT_EQ(ok({"pool-create-as", "scratch", "dir", "--target", (dir_ / "scratch").string(), "--build"}),
              "Pool scratch created\n\n");
    EXPECT_TRUE(contains(ok({"pool-list", "--transient", "--name"}), "scratch"));
    EXPECT_EQ(ok({"pool-destroy", "scratch"}), "Pool scratch destroyed\n\n");
    refused({"pool-info", "scratch"});

    // pool-define / pool-create from files.
    const std::string pool_xml = write_file("p.xml", fmt::format("<pool type='dir'><name>fromfile</name><target><path>{}</path></target></pool>",
                                                                 (dir_ / "fromfile").string()));
    EXPECT_EQ(ok({"pool-define", pool_xml}), fmt::format("Pool fromfile defined from {}\n\n", pool_xml));
    EXPECT_EQ(ok({"pool-start", "fromfile", "--build"}), "Pool fromfile started\n\n");
    EXPECT_EQ(ok({"pool-destroy", "fromfile"}), "Pool fromfile destroyed\n\n");
    EXPECT_EQ(ok({"pool-undefine", "fromfile"}), "Pool fromfile has been undefined\n\n");
    EXPECT_EQ(ok({"pool-create", pool_xml}), fmt::format("Pool fromfile created from {}\n\n", pool_xml));
    EXPECT_EQ(ok({"pool-destroy", "fromfile"}), "Pool fromfile destroyed\n\n");
}

TEST_F(PoolCli, DirPoolVolumes) {
    const std::string target = (dir_ / "vols").string();
    EXPECT_EQ(ok({"pool-create-as", "vols", "dir", "--target", target, "--build"}), "Pool vols created\n\n");

    EXPECT_EQ(ok({"vol-create-as", "vols", "a.qcow2", "1G", "--format", "qcow2"}), "Vol a.qcow2 created\n\n");
    auto a = img_info(target + "/a.qcow2");
    EXPECT_EQ(a["format"], "qcow2");
    EXPECT_EQ(a["virtual-size"], 1LL << 30);
    EXPECT_EQ(ok({"vol-create-as", "--pool", "vols", "--name", "b.img", "--capacity", "10M", "--format", "raw"}),
              "Vol b.img created\n\n");
    EXPECT_EQ(img_info(target + "/b.img")["virtual-size"], 10LL << 20);
    EXPECT_EQ(ok({"vol-create-as", "vols", "over.qcow2", "1G", "--format", "qcow2", "--backing-vol", "a.qcow2"}),
              "Vol over.qcow2 created\n\n");
    auto over = img_info(target + "/over.qcow2");
    EXPECT_EQ(over["backing-filename"], target + "/a.qcow2");
    EXPECT_EQ(over["backing-filename-format"], "qcow2");

    auto list = ok({"vol-list", "vols"});
    EXPECT_TRUE(list.starts_with(" Name         Path\n")) << list;
    EXPECT_TRUE(contains(list, " a.qcow2      " + target + "/a.qcow2\n")) << list;
    auto details = ok({"vol-list", "vols", "--details"});
    EXPECT_TRUE(std::regex_search(details, std::regex(R"( b\.img +\S+ +file +10\.00 MiB +)"))) << details;
    auto json = nlohmann::json::parse(ok({"vol-list", "vols", "--json"}));
    ASSERT_EQ(json.size(), 3u);
    EXPECT_EQ(json[0]["name"], "a.qcow2");
    EXPECT_EQ(json[0]["format"], "qcow2");
    EXPECT_EQ(json[0]["capacity"], 1LL << 30);

    EXPECT_TRUE(ok({"vol-info", "a.qcow2", "--pool", "vols"})
                    .starts_with("Name:           a.qcow2\nType:           file\nCapacity:       1.00 GiB\nAllocation:   "));
    EXPECT_TRUE(contains(ok({"vol-info", "--bytes", "b.img", "--pool", "vols"}), "Capacity:       10485760 bytes\n"));
    EXPECT_EQ(ok({"vol-path", "a.qcow2", "--pool", "vols"}), target + "/a.qcow2\n\n");
    EXPECT_EQ(ok({"vol-key", "a.qcow2", "--pool", "vols"}), target + "/a.qcow2\n\n");
    EXPECT_EQ(ok({"vol-name", target + "/a.qcow2"}), "a.qcow2\n\n");
    EXPECT_EQ(ok({"vol-pool", target + "/a.qcow2"}), "vols\n\n");
    EXPECT_EQ(ok({"vol-pool", "--uuid", target + "/a.qcow2"}), ok({"pool-uuid", "vols"}));
    EXPECT_EQ(ok({"vol-info", target + "/b.img"}).substr(0, 22), "Name:           b.img\n");
    auto vxml = ok({"vol-dumpxml", "a.qcow2", "--pool", "vols"});
    EXPECT_TRUE(contains(vxml, "<name>a.qcow2</name>")) << vxml;
    EXPECT_TRUE(contains(vxml, "qcow2")) << vxml;

    // vol-create from an XML file, vol-create-from and vol-clone copy contents.
    const std::string vol_file = write_file("v.xml", "<volume><name>fromxml.img</name><capacity unit='M'>4</capacity>"
                                                     "<target><format type='raw'/></target></volume>");
    EXPECT_EQ(ok({"vol-create", "vols", vol_file}), fmt::format("Vol fromxml.img created from {}\n\n", vol_file));
    const std::string payload = write_file("payload", std::string(4096, 'v'));
    ok({"vol-upload", "b.img", payload, "--pool", "vols", "--offset", "8192"});
    const std::string conv = write_file("conv.xml", "<volume><name>conv.qcow2</name><capacity unit='M'>10</capacity>"
                                                    "<target><format type='qcow2'/></target></volume>");
    EXPECT_EQ(ok({"vol-create-from", "vols", conv, "b.img", "--inputpool", "vols"}),
              "Vol conv.qcow2 created from input vol b.img\n\n");
    EXPECT_EQ(img_info(target + "/conv.qcow2")["format"], "qcow2");
    EXPECT_EQ(ok({"vol-clone", "b.img", "copy.img", "--pool", "vols"}), "Vol copy.img cloned from b.img\n\n");
    EXPECT_EQ(run({"qemu-img", "compare", "-U", target + "/b.img", target + "/conv.qcow2"}).exit_code, 0);
    EXPECT_EQ(sha256(target + "/b.img"), sha256(target + "/copy.img"));

    // vol-download with offset and length.
    const std::string part = (dir_ / "part").string();
    ok({"vol-download", "copy.img", part, "--pool", "vols", "--offset", "8192", "--length", "4096"});
    EXPECT_EQ(files::read(part).value_or(""), std::string(4096, 'v'));

    // vol-resize: to, by (--delta), and smaller only with --shrink.
    EXPECT_EQ(ok({"vol-resize", "a.qcow2", "2G", "--pool", "vols"}),
              "Size of volume 'a.qcow2' successfully changed to 2G\n\n");
    EXPECT_EQ(img_info(target + "/a.qcow2")["virtual-size"], 2LL << 30);
    EXPECT_EQ(ok({"vol-resize", "b.img", "6M", "--pool", "vols", "--delta"}),
              "Size of volume 'b.img' successfully changed by 6M\n\n");
    EXPECT_EQ(std::filesystem::file_size(target + "/b.img"), 16u << 20);
    auto no_shrink = refused({"vol-resize", "b.img", "1M", "--pool", "vols"});
    EXPECT_TRUE(no_shrink.starts_with("error: Failed to change size of volume 'b.img' to 1M\n")) << no_shrink;
    ok({"vol-resize", "b.img", "-8M", "--pool", "vols", "--delta", "--shrink"});
    EXPECT_EQ(std::filesystem::file_size(target + "/b.img"), 8u << 20);
    EXPECT_TRUE(contains(refused({"vol-resize", "b.img", "-1M", "--pool", "vols"}), "--delta and --shrink"));

    // vol-wipe: the data is gone, the size stays.
    EXPECT_EQ(ok({"vol-wipe", "b.img", "--pool", "vols"}), "Vol b.img wiped\n\n");
    ok({"vol-download", "b.img", part, "--pool", "vols", "--offset", "8192", "--length", "4096"});
    EXPECT_EQ(files::read(part).value_or(""), std::string(4096, '\0'));
    EXPECT_TRUE(contains(refused({"vol-wipe", "b.img", "--pool", "vols", "--algorithm", "gutmann"}), "gutmann"));

    // Refusals that keep data safe.
    EXPECT_TRUE(contains(refused({"vol-create-as", "vols", "a.qcow2", "1M"}), "Failed to create vol a.qcow2"));
    EXPECT_EQ(img_info(target + "/a.qcow2")["virtual-size"], 2LL << 30) << "the existing volume is untouched";
    refused({"vol-create-as", "vols", "../escape.img", "1M"});
    refused({"vol-create-as", "vols", "sub/x.img", "1M"});
    EXPECT_FALSE(std::filesystem::exists(dir_ / "escape.img"));
    refused({"vol-create-as", "vols", "huge.img", "1E", "--allocation", "1E"});
    EXPECT_TRUE(contains(refused({"vol-create-as", "vols", "x.img", "1.5G"}), "Malformed size 1.5G"));
    auto missing = refused({"vol-info", "nosuch.img"});
    EXPECT_TRUE(missing.starts_with("error: failed to get vol 'nosuch.img', specifying --pool might help\n")) << missing;
    auto nopool = refused({"vol-list", "nosuch"});
    EXPECT_TRUE(nopool.starts_with("error: failed to get pool 'nosuch'\n")) << nopool;

    // vol-delete
    EXPECT_EQ(ok({"vol-delete", "over.qcow2", "--pool", "vols"}), "Vol over.qcow2 deleted\n\n");
    EXPECT_FALSE(std::filesystem::exists(target + "/over.qcow2"));
    EXPECT_EQ(ok({"vol-delete", target + "/copy.img"}), fmt::format("Vol {}/copy.img deleted\n\n", target));
    EXPECT_FALSE(contains(ok({"vol-list", "vols"}), "copy.img"));
}

TEST_F(PoolCli, FsPoolOnLoopBackedImage) {
    if (::geteuid() != 0) VIREO_SKIP("fs pools need root (losetup, mkfs, mount)");
    LoopDevice loop(dir_ / "fs.img", 64 << 20, false);
    if (!loop.ok()) VIREO_SKIP(loop.why());
    const auto target = dir_ / "fsmnt";
    MountGuard guard(target);
    EXPECT_EQ(ok({"pool-define-as", "fsp", "fs", "--source-dev", loop.device(), "--source-format", "ext4", "--target",
                  target.string()}),
              "Pool fsp defined\n\n");
    EXPECT_EQ(ok({"pool-build", "fsp"}), "Pool fsp built\n\n");
    EXPECT_EQ(run({"blkid", "-p", "-o", "value", "-s", "TYPE", loop.device()}).out, "ext4\n");
    EXPECT_EQ(ok({"pool-start", "fsp"}), "Pool fsp started\n\n");
    EXPECT_EQ(run({"mountpoint", "-q", target.string()}).exit_code, 0);
    auto info = ok({"pool-info", "fsp", "--bytes"});
    EXPECT_TRUE(std::regex_search(info, std::regex(R"(Capacity: +[4-6][0-9]{7}\n)"))) << info;

    EXPECT_EQ(ok({"vol-create-as", "fsp", "d.qcow2", "1G", "--format", "qcow2"}), "Vol d.qcow2 created\n\n");
    EXPECT_EQ(img_info((target / "d.qcow2").string())["virtual-size"], 1LL << 30);
    EXPECT_EQ(ok({"vol-clone", "d.qcow2", "e.qcow2", "--pool", "fsp"}), "Vol e.qcow2 cloned from d.qcow2\n\n");
    EXPECT_TRUE(contains(ok({"vol-list", "fsp", "--details"}), "e.qcow2"));
    refused({"vol-create-as", "fsp", "big.img", "200M", "--allocation", "200M"});
    EXPECT_EQ(ok({"vol-delete", "e.qcow2", "--pool", "fsp"}), "Vol e.qcow2 deleted\n\n");

    EXPECT_EQ(ok({"pool-destroy", "fsp"}), "Pool fsp destroyed\n\n");
    EXPECT_NE(run({"mountpoint", "-q", target.string()}).exit_code, 0) << "pool-destroy unmounts";
    refused({"pool-build", "fsp", "--no-overwrite"});
    EXPECT_EQ(ok({"pool-start", "fsp"}), "Pool fsp started\n\n");
    EXPECT_TRUE(contains(ok({"vol-list", "fsp"}), "d.qcow2")) << "volumes survive a remount";
    EXPECT_EQ(ok({"pool-destroy", "fsp"}), "Pool fsp destroyed\n\n");
    EXPECT_EQ(ok({"pool-delete", "fsp"}), "Pool fsp deleted\n\n");
    EXPECT_EQ(run({"blkid", "-p", "-o", "value", "-s", "TYPE", loop.device()}).out, "");
    EXPECT_EQ(ok({"pool-undefine", "fsp"}), "Pool fsp has been undefined\n\n");
}

TEST_F(PoolCli, DiskPoolPartitions) {
    if (::geteuid() != 0) VIREO_SKIP("disk pools need root (losetup, parted)");
    if (which("parted").empty() && !std::filesystem::exists("/usr/sbin/parted")) VIREO_SKIP("parted is not installed");
    LoopDevice loop(dir_ / "disk.img", 64 << 20, true);
    if (!loop.ok()) VIREO_SKIP(loop.why());
    EXPECT_EQ(ok({"pool-define-as", "dp", "disk", "--source-dev", loop.device(), "--source-format", "gpt", "--target",
                  "/dev"}),
              "Pool dp defined\n\n");
    EXPECT_EQ(ok({"pool-start", "dp", "--build"}), "Pool dp started\n\n");
    EXPECT_EQ(run({"blkid", "-p", "-o", "value", "-s", "PTTYPE", loop.device()}).out, "gpt\n");

    const std::string p1 = loop.name() + "p1";
    EXPECT_EQ(ok({"vol-create-as", "dp", p1, "16M"}), fmt::format("Vol {} created\n\n", p1));
    auto details = ok({"vol-list", "dp", "--details"});
    EXPECT_TRUE(std::regex_search(details, std::regex(" " + p1 + " +/dev/" + p1 + " +block +16\\.00 MiB"))) << details;
    EXPECT_TRUE(contains(ok({"vol-info", p1, "--pool", "dp"}), "Type:           block\n"));
    refused({"vol-create-as", "dp", loop.name() + "p2", "100M"});

    const std::string payload = write_file("payload", std::string(8192, 'd'));
    ok({"vol-upload", p1, payload, "--pool", "dp", "--offset", "4096"});
    const std::string back = (dir_ / "back").string();
    ok({"vol-download", p1, back, "--pool", "dp", "--offset", "4096", "--length", "8192"});
    EXPECT_EQ(files::read(back).value_or(""), std::string(8192, 'd'));
    EXPECT_EQ(ok({"vol-wipe", p1, "--pool", "dp"}), fmt::format("Vol {} wiped\n\n", p1));

    EXPECT_EQ(ok({"vol-delete", p1, "--pool", "dp"}), fmt::format("Vol {} deleted\n\n", p1));
    EXPECT_EQ(ok({"pool-refresh", "dp"}), "Pool dp refreshed\n\n");
    EXPECT_FALSE(contains(ok({"vol-list", "dp"}), p1));
    EXPECT_EQ(ok({"pool-destroy", "dp"}), "Pool dp destroyed\n\n");
    EXPECT_EQ(ok({"pool-delete", "dp"}), "Pool dp deleted\n\n");
    EXPECT_EQ(run({"blkid", "-p", "-o", "value", "-s", "PTTYPE", loop.device()}).out, "");
    EXPECT_EQ(ok({"pool-undefine", "dp"}), "Pool dp has been undefined\n\n");
}

TEST_F(PoolCli, SparseUploadDownloadOf1GiB) {
    ok({"pool-create-as", "xfer", "dir", "--target", (dir_ / "xfer").string(), "--build"});
    // 1 GiB with 3 MiB of data in three places (start, middle, end).
    const std::string source = (dir_ / "source.img").string();
    {
        std::ofstream(source).close();
        std::filesystem::resize_file(source, 1ULL << 30);
        std::fstream f(source, std::ios::in | std::ios::out | std::ios::binary);
        const std::string block(1 << 20, 'S');
        for (std::uint64_t at : {0ULL, 512ULL << 20, (1ULL << 30) - (1 << 20)}) {
            f.seekp(static_cast<std::streamoff>(at));
            f.write(block.data(), static_cast<std::streamsize>(block.size()));
        }
    }
    ok({"vol-create-as", "xfer", "big.img", "1G", "--format", "raw"});
    ok({"vol-upload", "big.img", source, "--pool", "xfer", "--sparse"});
    const std::string volume = (dir_ / "xfer" / "big.img").string();
    EXPECT_LT(allocated_bytes(volume), 16ULL << 20) << "the holes were not written into the volume";

    const std::string copy = (dir_ / "copy.img").string();
    ok({"vol-download", "big.img", copy, "--pool", "xfer", "--sparse"});
    EXPECT_EQ(std::filesystem::file_size(copy), 1ULL << 30);
    EXPECT_EQ(sha256(copy), sha256(source));
    EXPECT_LT(allocated_bytes(copy), 16ULL << 20) << "the download kept the holes";
    EXPECT_GE(allocated_bytes(copy), 3ULL << 20);

    // Without --sparse the download is fully written, same bytes.
    const std::string full = (dir_ / "full.img").string();
    ok({"vol-download", "big.img", full, "--pool", "xfer", "--offset", "0", "--length", "134217728"});
    EXPECT_EQ(std::filesystem::file_size(full), 128ULL << 20);
    EXPECT_GE(allocated_bytes(full), 128ULL << 20);
}

TEST_F(PoolCli, GuestBootsFromClonedVolume) {
    VIREO_REQUIRE_GUEST();
    const std::string target = (dir_ / "guests").string();
    ok({"pool-create-as", "guests", "dir", "--target", target, "--build"});
    ok({"vol-create-as", "guests", "base.qcow2", "64M", "--format", "qcow2"});
    // A marker in the base volume, read back by the guest from its clone.
    const std::string marker = write_file("marker", "VIREO-VOLUME-MARKER\n");
    ok({"vol-upload", "base.qcow2", marker, "--pool", "guests"});
    EXPECT_EQ(ok({"vol-clone", "base.qcow2", "web.qcow2", "--pool", "guests"}), "Vol web.qcow2 cloned from base.qcow2\n\n");

    const std::string xml = write_file("web.xml", guest_domain_xml("web", R"(<disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='guests' volume='web.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>)"));
    ok({"define", xml});
    auto started = vireo({"start", "web"});
    ASSERT_EQ(started.exit_code, 0) << started.err;

    auto console = QemuProcess::start(vireo_argv({"console", "web"}));
    ASSERT_TRUE(console) << console.error().full_message();
    bool seen = false;
    const auto deadline = std::chrono::steady_clock::now() + 180s;
    while (!seen && std::chrono::steady_clock::now() < deadline) {
        console->send("head -c 19 /dev/vda; echo\n");
        seen = console->wait_for(std::regex("VIREO-VOLUME-MARKER"), 5s).has_value();
    }
    EXPECT_TRUE(seen) << "the guest reads the cloned volume as /dev/vda";

    // Refusals while the guest runs.
    auto busy_vol = refused({"vol-delete", "web.qcow2", "--pool", "guests"});
    EXPECT_TRUE(contains(busy_vol, "web")) << busy_vol;
    EXPECT_TRUE(std::filesystem::exists(target + "/web.qcow2"));
    auto busy_pool = refused({"pool-destroy", "guests"});
    EXPECT_TRUE(contains(busy_pool, "web")) << busy_pool;
    ok({"destroy", "web"});
    EXPECT_EQ(ok({"vol-delete", "web.qcow2", "--pool", "guests"}), "Vol web.qcow2 deleted\n\n");

    // A domain whose volume is gone does not start, and says why.
    auto missing = vireo({"start", "web"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_TRUE(contains(missing.err, "web.qcow2")) << missing.err;
    ok({"undefine", "web"});
}

// A restarted daemon still knows which volumes its running guests use: it
// reattaches to QEMU and keeps refusing to delete them or stop their pool.
TEST_F(PoolCli, VolumeInUseStaysProtectedAcrossDaemonRestart) {
    VIREO_REQUIRE_GUEST();
    const std::string target = (dir_ / "guests").string();
    ok({"pool-create-as", "guests", "dir", "--target", target, "--build"});
    ok({"vol-create-as", "guests", "disk.qcow2", "16M", "--format", "qcow2"});
    const std::string xml = write_file("web.xml", guest_domain_xml("web", R"(<disk type='volume' device='disk'>
      <source pool='guests' volume='disk.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>)"));
    ok({"define", xml});
    ok({"start", "web"});

    cli_.stop_daemon();  // the guest keeps running; the next call starts a new daemon
    EXPECT_EQ(ok({"domstate", "web"}), "running\n\n") << "the new daemon reattached to the guest";

    auto busy_vol = refused({"vol-delete", "disk.qcow2", "--pool", "guests"});
    EXPECT_TRUE(contains(busy_vol, "'web'")) << busy_vol;
    EXPECT_TRUE(std::filesystem::exists(target + "/disk.qcow2"));
    auto busy_pool = refused({"pool-destroy", "guests"});
    EXPECT_TRUE(contains(busy_pool, "'web'")) << busy_pool;

    ok({"destroy", "web"});
    EXPECT_EQ(ok({"vol-delete", "disk.qcow2", "--pool", "guests"}), "Vol disk.qcow2 deleted\n\n");
    ok({"undefine", "web"});
}

}  // namespace
}  // namespace vireo::test

namespace vireo::test {
namespace {

// A volume job stopped from another client: vol-clone of a volume with
// 1 GiB of data runs in one vireo while a second one finds it with job-list
// and aborts it with job-abort. The first fails with libvirt's words for an
// aborted job and no half-made copy is left; the pool clones it afterwards.
TEST_F(PoolCli, VolCloneAbortedFromAnotherClient) {
    if (which("qemu-io").empty()) VIREO_SKIP("qemu-io is not installed");
    const std::string target = (dir_ / "vols").string();
    ok({"pool-create-as", "vols", "dir", "--target", target, "--build"});
    ok({"vol-create-as", "vols", "src.qcow2", "2G", "--format", "qcow2"});
    for (const char* cmd : {"write -P 0x11 0 512M", "write -P 0x22 1G 512M"}) {
        auto w = run({"qemu-io", "-f", "qcow2", "-c", cmd, target + "/src.qcow2"});
        ASSERT_EQ(w.exit_code, 0) << w.err << w.out;
    }
    ok({"pool-refresh", "vols"});

    auto clone = std::async(std::launch::async,
                            [&] { return vireo({"vol-clone", "src.qcow2", "copy.qcow2", "--pool", "vols"}); });
    std::string id;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (id.empty() && std::chrono::steady_clock::now() < deadline) {
        auto jobs = nlohmann::json::parse(ok({"job-list", "--json"}));
        for (const auto& j : jobs)
            if (j["operation"] == "volume_clone") {
                EXPECT_EQ(j["object"], "volume 'copy.qcow2' in pool 'vols'");
                id = std::to_string(j["id"].get<std::uint64_t>());
            }
    }
    if (id.empty()) {  // say why: the clone's own error (a full disk, ...) if it ended
        auto early = clone.get();
        FAIL() << "no clone job seen; vol-clone exited " << early.exit_code << ":\n" << early.out << early.err;
    }
    auto table = ok({"job-list"});
    EXPECT_TRUE(contains(table, " Volume clone ")) << table;
    EXPECT_EQ(ok({"job-abort", id}), "Job " + id + " aborted\n\n");

    auto cloned = clone.get();
    EXPECT_EQ(cloned.exit_code, 1) << "the clone ended before the abort reached it:\n" << cloned.out;
    EXPECT_TRUE(contains(cloned.err, "operation aborted: job 'volume clone' canceled by client")) << cloned.err;
    EXPECT_FALSE(std::filesystem::exists(target + "/copy.qcow2"));
    EXPECT_FALSE(contains(ok({"vol-list", "vols"}), "copy.qcow2"));
    EXPECT_EQ(ok({"job-list", "--json"}), "[]\n");
    EXPECT_TRUE(contains(refused({"job-abort", id}), "no job with id " + id + " is running"));

    ok({"vol-clone", "src.qcow2", "copy.qcow2", "--pool", "vols"});
    auto cmp = run({"qemu-img", "compare", target + "/src.qcow2", target + "/copy.qcow2"});
    EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
}

}  // namespace
}  // namespace vireo::test
