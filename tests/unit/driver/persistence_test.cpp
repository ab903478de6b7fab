#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "driver/persistence.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::driver;
namespace fs = std::filesystem;

namespace {

DomainDefinition def_of(const std::string& name, const Uuid& uuid) {
    conf::DomainDef d;
    d.name = name;
    d.uuid = uuid;
    d.memory_kib = 65536;
    // Through the XML path, as define does, so the document is canonical.
    return *make_definition(make_definition(std::move(d)).xml);
}

void write_file(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary);
    out << text;
}

}  // namespace

TEST(Persistence, DefinitionsRoundTripThroughDisk) {
    test::TempDir dir;
    Persistence store(dir / "conf", dir / "run");
    ASSERT_TRUE(store.prepare());
    auto web = def_of("web", Uuid::generate());
    auto db = def_of("db", Uuid::generate());
    ASSERT_TRUE(store.save_config("web", web.xml));
    ASSERT_TRUE(store.save_config("db", db.xml));
    EXPECT_TRUE(fs::exists(dir / "conf" / "web.xml"));

    auto report = store.load_configs();
    EXPECT_TRUE(report.skipped.empty());
    ASSERT_EQ(report.definitions.size(), 2u);
    EXPECT_EQ(report.definitions[0].name, "db");
    EXPECT_EQ(report.definitions[1].name, "web");
    EXPECT_EQ(report.definitions[1].definition.def->uuid, web.def->uuid);
    EXPECT_EQ(report.definitions[1].definition.xml, web.xml);

    ASSERT_TRUE(store.remove_config("web"));
    EXPECT_FALSE(fs::exists(dir / "conf" / "web.xml"));
    EXPECT_EQ(store.load_configs().definitions.size(), 1u);
    EXPECT_TRUE(store.remove_config("web"));  // already gone: fine
}

TEST(Persistence, TornGarbageAndMisnamedFilesAreSkippedAndKept) {
    test::TempDir dir;
    Persistence store(dir / "conf", dir / "run");
    ASSERT_TRUE(store.prepare());
    auto good = def_of("good", Uuid::generate());
    ASSERT_TRUE(store.save_config("good", good.xml));
    // A definition cut in the middle, random bytes, and a file whose name
    // does not match the domain inside.
    write_file(dir / "conf" / "torn.xml", def_of("torn", Uuid::generate()).xml.substr(0, 40));
    write_file(dir / "conf" / "garbage.xml", std::string("\x01\x02not xml at all\xff", 17));
    write_file(dir / "conf" / "alias.xml", def_of("real", Uuid::generate()).xml);
    write_file(dir / "conf" / ".good.xml.tmp1234", "leftover temp file");
    write_file(dir / "conf" / "notes.txt", "not a definition");

    auto report = store.load_configs();
    ASSERT_EQ(report.definitions.size(), 1u);
    EXPECT_EQ(report.definitions[0].name, "good");
    EXPECT_EQ(report.skipped.size(), 3u);
    bool mentions_alias = false;
    for (const auto& s : report.skipped)
        if (s.find("alias.xml") != std::string::npos && s.find("'real'") != std::string::npos) mentions_alias = true;
    EXPECT_TRUE(mentions_alias);
    // Bad files are left for the operator to inspect.
    EXPECT_TRUE(fs::exists(dir / "conf" / "torn.xml"));
    EXPECT_TRUE(fs::exists(dir / "conf" / "garbage.xml"));
    EXPECT_TRUE(fs::exists(dir / "conf" / "alias.xml"));
}

TEST(Persistence, MissingConfigDirLoadsNothing) {
    test::TempDir dir;
    Persistence store(dir / "nope", dir / "run");
    auto report = store.load_configs();
    EXPECT_TRUE(report.definitions.empty());
    EXPECT_TRUE(report.skipped.empty());
}

TEST(Persistence, AutostartIsARelativeSymlink) {
    test::TempDir dir;
    Persistence store(dir / "conf", dir / "run");
    ASSERT_TRUE(store.prepare());
    ASSERT_TRUE(store.save_config("web", def_of("web", Uuid::generate()).xml));
    EXPECT_FALSE(store.autostart("web"));
    ASSERT_TRUE(store.set_autostart("web", true));
    ASSERT_TRUE(store.set_autostart("web", true));  // idempotent
    const fs::path link = dir / "conf" / "autostart" / "web.xml";
    ASSERT_TRUE(fs::is_symlink(link));
    EXPECT_EQ(fs::read_symlink(link), fs::path("../web.xml"));
    EXPECT_TRUE(fs::exists(link));  // resolves to the definition
    EXPECT_TRUE(store.autostart("web"));
    auto report = store.load_configs();
    ASSERT_EQ(report.definitions.size(), 1u);
    EXPECT_TRUE(report.definitions[0].autostart);

    ASSERT_TRUE(store.set_autostart("web", false));
    EXPECT_FALSE(fs::exists(link));
    ASSERT_TRUE(store.set_autostart("web", true));
    ASSERT_TRUE(store.remove_config("web"));  // undefine drops the link too
    EXPECT_FALSE(fs::is_symlink(link));
}

TEST(Persistence, LoadIntoRegistryKeepsAutostartAndSkipsConflicts) {
    test::TempDir dir;
    Persistence store(dir / "conf", dir / "run");
    ASSERT_TRUE(store.prepare());
    const Uuid shared = Uuid::generate();
    ASSERT_TRUE(store.save_config("a", def_of("a", shared).xml));
    ASSERT_TRUE(store.save_config("b", def_of("b", shared).xml));  // same uuid, other name
    ASSERT_TRUE(store.set_autostart("a", true));
    DomainRegistry reg;
    auto report = store.load_into(reg);
    EXPECT_EQ(reg.size(), 1u);
    ASSERT_EQ(report.definitions.size(), 1u);
    EXPECT_EQ(report.skipped.size(), 1u);
    auto a = reg.find_by_name("a");
    ASSERT_TRUE(a);
    auto snap = a->snapshot();
    EXPECT_TRUE(snap.fields.autostart);
    EXPECT_TRUE(snap.fields.persistent());
    EXPECT_FALSE(snap.active());
}

TEST(Persistence, RuntimeStatusRoundTrip) {
    test::TempDir dir;
    Persistence store(dir / "conf", dir / "run");
    ASSERT_TRUE(store.prepare());
    auto live = def_of("web", Uuid::generate());
    RuntimeStatus st;
    st.set("pid", std::int64_t{4242});
    st.set("qmp_socket", std::string("/run/vireo/web.qmp"));
    st.set("state", std::string("running"));
    st.live_xml = live.xml;
    ASSERT_TRUE(store.write_status("web", st));
    EXPECT_EQ(store.status_names(), std::vector<std::string>{"web"});

    auto back = store.read_status("web");
    ASSERT_TRUE(back) << back.error().full_message();
    EXPECT_EQ(back->get_int("pid"), 4242);
    EXPECT_EQ(back->get("qmp_socket"), "/run/vireo/web.qmp");
    EXPECT_EQ(back->get("missing"), std::nullopt);
    EXPECT_EQ(back->get_int("qmp_socket"), std::nullopt);
    auto reparsed = make_definition(back->live_xml);
    ASSERT_TRUE(reparsed) << reparsed.error().full_message();
    EXPECT_EQ(reparsed->def->uuid, live.def->uuid);

    ASSERT_TRUE(store.remove_status("web"));
    auto gone = store.read_status("web");
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, ErrorCode::NotFound);
}

TEST(Persistence, CorruptStatusFileIsAnError) {
    test::TempDir dir;
    Persistence store(dir / "conf", dir / "run");
    ASSERT_TRUE(store.prepare());
    write_file(dir / "run" / "web.xml", "<domstatus><value key='pid'>12");
    auto r = store.read_status("web");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::Corrupt);
}

TEST(Persistence, RefusesUnsafeNames) {
    test::TempDir dir;
    Persistence store(dir / "conf", dir / "run");
    EXPECT_FALSE(store.save_config("../evil", "<domain/>"));
    EXPECT_FALSE(store.write_status("a/b", RuntimeStatus{}));
}
