// PoolManager on dir pools: the lifecycle a user drives with pool-* / vol-*
// verbs, checked with qemu-img as the oracle where image contents matter.
#include <sys/stat.h>

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "pool/pool_manager.hpp"
#include "support/support.hpp"

namespace vireo::pool {
namespace {

using test::TempDir;

std::string dir_pool_xml(const std::string& name, const std::filesystem::path& target) {
    return "<pool type='dir'><name>" + name + "</name><target><path>" + target.string() + "</path></target></pool>";
}

std::string vol_xml(const std::string& name, const std::string& capacity, const std::string& format,
                    const std::string& extra = "") {
    return "<volume><name>" + name + "</name><capacity unit='" + "bytes" + "'>" + capacity +
           "</capacity><target><format type='" + format + "'/></target>" + extra + "</volume>";
}

nlohmann::json qemu_img_info(const std::string& path) {
    auto r = test::run({"qemu-img", "info", "--output=json", "-U", path});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out);
}

std::unique_ptr<PoolManager> open_manager(const TempDir& dir, std::function<std::vector<DiskUser>()> users = {}) {
    PoolManagerConfig cfg;
    cfg.confdir = dir / "conf";
    cfg.rundir = dir / "run";
    cfg.default_pool_path = dir / "default";
    cfg.disk_users = std::move(users);
    auto m = PoolManager::open(cfg);
    EXPECT_TRUE(m) << m.error().full_message();
    return m ? std::move(*m) : nullptr;
}

TEST(DirPool, DefaultPoolExistsRunningAndAutostarted) {
    TempDir dir;
    auto m = open_manager(dir);
    auto p = m->lookup_pool("default");
    ASSERT_TRUE(p) << p.error().full_message();
    EXPECT_EQ(p->state, driver::PoolState::Running);
    EXPECT_TRUE(p->autostart);
    EXPECT_TRUE(p->persistent);
    EXPECT_GT(p->capacity, 0u);
    EXPECT_TRUE(std::filesystem::is_directory(dir / "default"));
    EXPECT_TRUE(std::filesystem::exists(dir / "conf" / "default.xml"));
    EXPECT_TRUE(std::filesystem::is_symlink(dir / "conf" / "autostart" / "default.xml"));
}

TEST(DirPool, DefineBuildStartCreateListDelete) {
    TempDir dir;
    auto m = open_manager(dir);
    auto def = m->define_pool(dir_pool_xml("images", dir / "images"));
    ASSERT_TRUE(def) << def.error().full_message();
    EXPECT_EQ(def->state, driver::PoolState::Inactive);
    auto st = m->start_pool("images", false, {});
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().full_message().find("pool-build"), std::string::npos) << st.error().full_message();
    ASSERT_TRUE(m->build_pool("images", {}));
    ASSERT_TRUE(m->start_pool("images", false, {}));

    auto raw = m->create_volume("images", vol_xml("a.img", "1048576", "raw"), {});
    ASSERT_TRUE(raw) << raw.error().full_message();
    EXPECT_EQ(raw->path, (dir / "images" / "a.img").string());
    EXPECT_EQ(raw->capacity, 1048576u);
    auto q = m->create_volume("images", vol_xml("b.qcow2", "1073741824", "qcow2"), {});
    ASSERT_TRUE(q) << q.error().full_message();
    auto info = qemu_img_info(q->path);
    EXPECT_EQ(info["format"], "qcow2");
    EXPECT_EQ(info["virtual-size"], 1073741824u);

    auto list = m->list_volumes("images");
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 2u);
    EXPECT_EQ((*list)[0].name, "a.img");
    EXPECT_EQ((*list)[1].name, "b.qcow2");
    EXPECT_EQ((*list)[1].format, "qcow2");
    EXPECT_EQ((*list)[1].capacity, 1073741824u);

    auto dup = m->create_volume("images", vol_xml("a.img", "1024", "raw"), {});
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().code, ErrorCode::Exists);

    auto by_path = m->lookup_volume("", q->path);
    ASSERT_TRUE(by_path);
    EXPECT_EQ(by_path->name, "b.qcow2");
    EXPECT_EQ(by_path->pool, "images");

    ASSERT_TRUE(m->delete_volume("images", "a.img"));
    EXPECT_FALSE(std::filesystem::exists(dir / "images" / "a.img"));
    auto gone = m->lookup_volume("images", "a.img");
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, ErrorCode::NoVolume);
}

TEST(DirPool, BackingVolumeByName) {
    TempDir dir;
    auto m = open_manager(dir);
    ASSERT_TRUE(m->create_volume("default", vol_xml("base.qcow2", "67108864", "qcow2"), {}));
    auto overlay = m->create_volume(
        "default",
        "<volume><name>top.qcow2</name><target><format type='qcow2'/></target>"
        "<backingStore><path>base.qcow2</path></backingStore></volume>",
        {});
    ASSERT_TRUE(overlay) << overlay.error().full_message();
    EXPECT_EQ(overlay->capacity, 67108864u);
    auto info = qemu_img_info(overlay->path);
    EXPECT_EQ(info["backing-filename"], (dir / "default" / "base.qcow2").string());
    EXPECT_EQ(info["backing-filename-format"], "qcow2");
    auto xml = m->volume_xml("default", "top.qcow2");
    ASSERT_TRUE(xml);
    EXPECT_NE(xml->find("<backingStore>"), std::string::npos) << *xml;

    // an image outside the pool, by absolute path; its format is probed
    const auto outside = dir / "outside.qcow2";
    ASSERT_EQ(test::run({"qemu-img", "create", "-q", "-f", "qcow2", outside.string(), "32M"}).exit_code, 0);
    auto ext = m->create_volume("default",
                                "<volume><name>ext.qcow2</name><target><format type='qcow2'/></target>"
                                "<backingStore><path>" + outside.string() + "</path></backingStore></volume>", {});
    ASSERT_TRUE(ext) << ext.error().full_message();
    EXPECT_EQ(qemu_img_info(ext->path)["backing-filename-format"], "qcow2");
    EXPECT_EQ(qemu_img_info(ext->path)["virtual-size"], 32u << 20);
    auto missing = m->create_volume("default",
                                    "<volume><name>m.qcow2</name><target><format type='qcow2'/></target>"
                                    "<backingStore><path>/nonexistent/b.qcow2</path></backingStore></volume>", {});
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().full_message().find("does not exist"), std::string::npos) << missing.error().full_message();
}

TEST(DirPool, RestartFindsPoolsAndVolumes) {
    TempDir dir;
    {
        auto m = open_manager(dir);
        ASSERT_TRUE(m->define_pool(dir_pool_xml("p1", dir / "p1")));
        ASSERT_TRUE(m->start_pool("p1", true, {}));
        ASSERT_TRUE(m->create_volume("p1", vol_xml("v", "4096", "raw"), {}));
        ASSERT_TRUE(m->create_pool(dir_pool_xml("t1", dir / "t1"), true, {}));
    }
    auto m = open_manager(dir);
    auto p1 = m->lookup_pool("p1");
    ASSERT_TRUE(p1);
    EXPECT_EQ(p1->state, driver::PoolState::Running);
    auto t1 = m->lookup_pool("t1");
    ASSERT_TRUE(t1) << "a running transient pool survives a daemon restart";
    EXPECT_FALSE(t1->persistent);
    auto v = m->lookup_volume("p1", "v");
    ASSERT_TRUE(v);
    ASSERT_TRUE(m->destroy_pool("t1"));
    EXPECT_FALSE(m->lookup_pool("t1")) << "a destroyed transient pool is gone";
}

TEST(DirPool, VolumeUsedByRunningDomainIsProtected) {
    TempDir dir;
    std::filesystem::path used = dir / "default" / "disk.qcow2";
    auto m = open_manager(dir, [&] { return std::vector<DiskUser>{{"web", used}}; });
    ASSERT_TRUE(m->create_volume("default", vol_xml("disk.qcow2", "1048576", "qcow2"), {}));
    auto del = m->delete_volume("default", "disk.qcow2");
    ASSERT_FALSE(del);
    EXPECT_NE(del.error().full_message().find("'web'"), std::string::npos) << del.error().full_message();
    EXPECT_FALSE(m->wipe_volume("default", "disk.qcow2", driver::WipeAlgorithm::Zero));
    EXPECT_FALSE(m->resize_volume("default", "disk.qcow2", 2 << 20, {}));
    auto destroy = m->destroy_pool("default");
    ASSERT_FALSE(destroy);
    EXPECT_NE(destroy.error().full_message().find("running domain 'web'"), std::string::npos) << destroy.error().full_message();
}


TEST(DirPool, DumpedXmlIsSchemaValid) {
    if (test::which("virt-xml-validate").empty()) VIREO_SKIP("virt-xml-validate (libvirt-clients) is not installed");
    TempDir dir;
    auto m = open_manager(dir);
    ASSERT_TRUE(m->create_volume("default", vol_xml("v.qcow2", "1048576", "qcow2"), {}));
    auto pxml = m->pool_xml("default", false);
    ASSERT_TRUE(pxml);
    auto vxml = m->volume_xml("default", "v.qcow2");
    ASSERT_TRUE(vxml);
    for (auto [doc, schema] : {std::pair{*pxml, "storagepool"}, std::pair{*vxml, "storagevol"}}) {
        std::ofstream(dir / "doc.xml") << doc;
        auto r = test::run({"virt-xml-validate", (dir / "doc.xml").string(), schema});
        EXPECT_EQ(r.exit_code, 0) << doc << r.out << r.err;
    }
    // what vol-dumpxml shows can be fed back to vol-create (under a new name)
    std::string copy = *vxml;
    copy.replace(copy.find("<name>v.qcow2</name>"), 20, "<name>w.qcow2</name>");
    auto again = m->create_volume("default", copy, {});
    EXPECT_TRUE(again) << again.error().full_message();
}

TEST(DirPool, TypesThisHostCannotRunAreRefusedWithTheReason) {
    TempDir dir;
    auto m = open_manager(dir);
    auto r = m->define_pool("<pool type='logical'><name>vg</name><source><name>vg0</name></source>"
                            "<target><path>/dev/vg0</path></target></pool>");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::Unsupported);
    EXPECT_NE(r.error().full_message().find("device-mapper"), std::string::npos) << r.error().full_message();
    auto n = m->define_pool("<pool type='netfs'><name>nfs</name><source><host name='h'/><dir path='/e'/></source>"
                            "<target><path>/mnt/n</path></target></pool>");
    ASSERT_FALSE(n);
    EXPECT_NE(n.error().full_message().find("NFS"), std::string::npos) << n.error().full_message();
}

TEST(DirPool, RedefineWhileActiveAppliesAtNextStart) {
    TempDir dir;
    auto m = open_manager(dir);
    auto p = m->define_pool(dir_pool_xml("p", dir / "p"));
    ASSERT_TRUE(p);
    ASSERT_TRUE(m->start_pool("p", true, {}));
    const std::string uuid = p->uuid.str();
    auto redef = m->define_pool("<pool type='dir'><name>p</name><uuid>" + uuid + "</uuid><target><path>" + (dir / "p2").string() +
                                "</path></target></pool>");
    ASSERT_TRUE(redef) << redef.error().full_message();
    EXPECT_EQ(m->lookup_pool("p")->target_path, (dir / "p").string()) << "the running pool keeps its definition";
    EXPECT_NE(m->pool_xml("p", true)->find((dir / "p2").string()), std::string::npos);
    ASSERT_TRUE(m->destroy_pool("p"));
    ASSERT_TRUE(m->start_pool("p", true, {}));
    EXPECT_EQ(m->lookup_pool("p")->target_path, (dir / "p2").string());
    auto clash = m->define_pool("<pool type='dir'><name>p</name><target><path>/x</path></target></pool>");
    ASSERT_FALSE(clash) << "same name, another uuid";
    EXPECT_EQ(clash.error().code, ErrorCode::Exists);
}


TEST(DirPool, UnreadableDefinitionIsSkippedAndKept) {
    TempDir dir;
    std::filesystem::create_directories(dir / "conf");
    std::ofstream(dir / "conf" / "torn.xml") << "<pool type='dir'><name>torn</na";
    auto m = open_manager(dir);
    ASSERT_TRUE(m) << "one bad file does not stop the pools";
    EXPECT_TRUE(m->lookup_pool("default"));
    EXPECT_FALSE(m->lookup_pool("torn"));
    EXPECT_TRUE(std::filesystem::exists(dir / "conf" / "torn.xml")) << "left in place for the operator";
}


TEST(DirPool, DefaultPoolThatCannotBeMadeLeavesTheOthersUsable) {
    TempDir dir;
    {
        PoolManagerConfig cfg;
        cfg.confdir = dir / "conf";
        auto m = PoolManager::open(cfg);
        ASSERT_TRUE(m);
        // a user pool that already owns the directory the default pool would use
        ASSERT_TRUE((*m)->define_pool(dir_pool_xml("mine", dir / "default")));
    }
    auto m = open_manager(dir);
    ASSERT_TRUE(m);
    EXPECT_TRUE(m->lookup_pool("mine"));
    EXPECT_FALSE(m->lookup_pool("default"));
}

}  // namespace
}  // namespace vireo::pool
