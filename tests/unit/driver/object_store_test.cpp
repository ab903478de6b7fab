// ObjectStore: layout, name checks, atomic autostart links, loading that
// skips bad files, and kill -9 safety of every write.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "driver/object_store.hpp"
#include "support/support.hpp"
#include "util/files.hpp"

using namespace vireo;
using namespace vireo::driver;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary);
    out << text;
}

std::string read_file(const fs::path& p) {
    auto text = files::read(p);
    return text ? *text : std::string("<unreadable: ") + text.error().message + ">";
}

unsigned mode_of(const fs::path& p) {
    struct stat st{};
    if (::stat(p.c_str(), &st) != 0) return 0;
    return st.st_mode & 07777;
}

// Every name in `dir`, to check nothing else was created or left.
std::vector<std::string> entries(const fs::path& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
    std::ranges::sort(out);
    return out;
}

// A visitor that accepts documents ending in "</doc>" (a stand-in for a
// parser) and records the names it saw.
ObjectStore::Visitor accept_complete(std::vector<std::string>& seen) {
    return [&seen](ObjectStore::Document& doc) -> Status {
        if (!doc.text.ends_with("</doc>")) return fail(ErrorCode::XmlError, "document is cut short");
        seen.push_back(doc.name);
        return {};
    };
}

}  // namespace

TEST(ObjectStore, KeepsTheLibvirtLayout) {
    test::TempDir dir;
    ObjectStore store(ObjectKind::Pool, dir / "conf", dir / "run");
    ASSERT_TRUE(store.prepare());
    EXPECT_EQ(mode_of(dir / "run"), 0700u);
    EXPECT_TRUE(fs::is_directory(dir / "conf" / "autostart"));

    ASSERT_TRUE(store.save_config("p1", "<doc>1</doc>"));
    EXPECT_EQ(store.config_path("p1"), dir / "conf" / "p1.xml");
    EXPECT_EQ(read_file(dir / "conf" / "p1.xml"), "<doc>1</doc>");
    EXPECT_EQ(mode_of(dir / "conf" / "p1.xml"), 0600u);
    EXPECT_EQ(store.read_config("p1"), std::string("<doc>1</doc>"));

    ASSERT_TRUE(store.set_autostart("p1", true));
    const fs::path link = dir / "conf" / "autostart" / "p1.xml";
    ASSERT_TRUE(fs::is_symlink(link));
    EXPECT_EQ(fs::read_symlink(link), fs::path("../p1.xml"));
    EXPECT_EQ(read_file(link), "<doc>1</doc>");

    ASSERT_TRUE(store.save_status("p1", "<doc>live</doc>"));
    EXPECT_EQ(read_file(dir / "run" / "p1.xml"), "<doc>live</doc>");
    EXPECT_EQ(store.read_status("p1"), std::string("<doc>live</doc>"));
    EXPECT_EQ(store.status_names(), std::vector<std::string>{"p1"});

    // No temp file left anywhere.
    EXPECT_EQ(entries(dir / "conf"), (std::vector<std::string>{"autostart", "p1.xml"}));
    EXPECT_EQ(entries(dir / "conf" / "autostart"), std::vector<std::string>{"p1.xml"});
    EXPECT_EQ(entries(dir / "run"), std::vector<std::string>{"p1.xml"});

    ASSERT_TRUE(store.remove_status("p1"));
    EXPECT_TRUE(store.remove_status("p1"));  // already gone: fine
    auto gone = store.read_status("p1");
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, ErrorCode::NotFound);

    ASSERT_TRUE(store.remove_config("p1"));  // drops the autostart link too
    EXPECT_FALSE(fs::exists(dir / "conf" / "p1.xml"));
    EXPECT_FALSE(fs::is_symlink(link));
    EXPECT_TRUE(store.remove_config("p1"));
}

TEST(ObjectStore, FindsWhatAnOlderDaemonWrote) {
    // Files as the pool and domain code wrote them before the store existed.
    test::TempDir dir;
    fs::create_directories(dir / "conf" / "autostart");
    fs::create_directories(dir / "run");
    write_file(dir / "conf" / "web.xml", "<doc>web</doc>");
    write_file(dir / "conf" / "db.xml", "<doc>db</doc>");
    fs::create_symlink("../web.xml", dir / "conf" / "autostart" / "web.xml");
    write_file(dir / "run" / "web.xml", "<doc>status</doc>");
    ObjectStore store(ObjectKind::Domain, dir / "conf", dir / "run");
    std::vector<std::string> seen;
    EXPECT_TRUE(store.load_configs(accept_complete(seen)).empty());
    EXPECT_EQ(seen, (std::vector<std::string>{"db", "web"}));  // name order
    EXPECT_TRUE(store.autostart("web"));
    EXPECT_FALSE(store.autostart("db"));
    EXPECT_EQ(store.status_names(), std::vector<std::string>{"web"});
}

TEST(ObjectStore, RefusesNamesThatAreNotOneFileName) {
    test::TempDir dir;
    ObjectStore store(ObjectKind::Pool, dir / "conf", dir / "run");
    ASSERT_TRUE(store.prepare());
    const std::vector<std::string> bad_names{"../x", "a/b", "/abs", "", ".", "..", "tab\there", std::string(256, 'n')};
    for (const std::string& bad : bad_names) {
        SCOPED_TRACE(bad);
        auto st = store.save_config(bad, "<doc/>");
        ASSERT_FALSE(st);
        EXPECT_EQ(st.error().code, ErrorCode::InvalidArg);
        EXPECT_NE(st.error().message.find("invalid storage pool name"), std::string::npos) << st.error().message;
        EXPECT_EQ(store.set_autostart(bad, true).error().code, ErrorCode::InvalidArg);
        EXPECT_EQ(store.set_autostart(bad, false).error().code, ErrorCode::InvalidArg);
        EXPECT_EQ(store.save_status(bad, "<doc/>").error().code, ErrorCode::InvalidArg);
        EXPECT_EQ(store.read_config(bad).error().code, ErrorCode::InvalidArg);
        EXPECT_EQ(store.read_status(bad).error().code, ErrorCode::InvalidArg);
        EXPECT_EQ(store.remove_config(bad).error().code, ErrorCode::InvalidArg);
        EXPECT_EQ(store.remove_status(bad).error().code, ErrorCode::InvalidArg);
        EXPECT_FALSE(store.autostart(bad));
    }
    // Nothing was written anywhere, in the store or beside it.
    EXPECT_EQ(entries(dir.path()), (std::vector<std::string>{"conf", "run"}));
    EXPECT_EQ(entries(dir / "conf"), std::vector<std::string>{"autostart"});
    EXPECT_TRUE(entries(dir / "run").empty());
    EXPECT_TRUE(entries(dir / "conf" / "autostart").empty());

    ObjectStore domains(ObjectKind::Domain, dir / "conf", dir / "run");
    EXPECT_NE(domains.save_config("../evil", "x").error().message.find("invalid domain name '../evil'"),
              std::string::npos);
}

TEST(ObjectStore, NamesStartingWithADotAreKept) {
    // Temp files never end in ".xml", so a hidden name is a real object.
    test::TempDir dir;
    ObjectStore store(ObjectKind::Domain, dir / "conf", dir / "run");
    ASSERT_TRUE(store.save_config(".hidden", "<doc>h</doc>"));
    std::vector<std::string> seen;
    EXPECT_TRUE(store.load_configs(accept_complete(seen)).empty());
    EXPECT_EQ(seen, std::vector<std::string>{".hidden"});
}

TEST(ObjectStore, TornAndForeignFilesAreSkippedReportedAndKept) {
    test::TempDir dir;
    ObjectStore store(ObjectKind::Domain, dir / "conf", dir / "run");
    ASSERT_TRUE(store.prepare());
    ASSERT_TRUE(store.save_config("good", "<doc>good</doc>"));
    ASSERT_TRUE(store.save_config("zeta", "<doc>zeta</doc>"));
    write_file(dir / "conf" / "torn.xml", "<doc>to");                 // cut short
    write_file(dir / "conf" / ".good.xml.tmp1f2e", "<doc>tmp</doc>");  // a kill's leftover
    write_file(dir / "conf" / "notes.txt", "not a document");
    fs::create_directories(dir / "conf" / "dir.xml");               // not a file
    fs::create_symlink("nowhere.xml", dir / "conf" / "dangling.xml");  // points to nothing
    std::vector<std::string> seen;
    auto skipped = store.load_configs(accept_complete(seen));
    EXPECT_EQ(seen, (std::vector<std::string>{"good", "zeta"}));  // the load goes on after the bad file
    ASSERT_EQ(skipped.size(), 1u);
    EXPECT_EQ(skipped[0], (dir / "conf" / "torn.xml").string() + ": document is cut short");
    EXPECT_EQ(read_file(dir / "conf" / "torn.xml"), "<doc>to");  // left for the operator

    // The same for status documents.
    write_file(dir / "run" / "torn.xml", "<doc>");
    ASSERT_TRUE(store.save_status("good", "<doc>live</doc>"));
    seen.clear();
    skipped = store.load_statuses(accept_complete(seen));
    EXPECT_EQ(seen, std::vector<std::string>{"good"});
    ASSERT_EQ(skipped.size(), 1u);
    EXPECT_NE(skipped[0].find("run/torn.xml: document is cut short"), std::string::npos);
    EXPECT_TRUE(fs::exists(dir / "run" / "torn.xml"));
}

TEST(ObjectStore, MissingDirectoriesLoadNothing) {
    test::TempDir dir;
    ObjectStore store(ObjectKind::Pool, dir / "nope", dir / "nope-either");
    std::vector<std::string> seen;
    EXPECT_TRUE(store.load_configs(accept_complete(seen)).empty());
    EXPECT_TRUE(store.load_statuses(accept_complete(seen)).empty());
    EXPECT_TRUE(seen.empty());
    EXPECT_TRUE(store.status_names().empty());
    EXPECT_FALSE(store.autostart("x"));
    EXPECT_TRUE(store.set_autostart("x", false));  // nothing to disable
}

TEST(ObjectStore, AutostartLinkIsNeverAbsentWhileReEnablingOrRePointing) {
    test::TempDir dir;
    ObjectStore store(ObjectKind::Pool, dir / "conf", dir / "run");
    ASSERT_TRUE(store.save_config("p", "<doc/>"));
    const fs::path link = store.autostart_path("p");
    // An older daemon (or an operator) left a link pointing elsewhere:
    // enabling re-points it without removing it first.
    fs::create_directories(link.parent_path());
    fs::create_symlink("/somewhere/else/p.xml", link);

    std::atomic<bool> stop{false};
    std::atomic<long> checks{0}, missing{0}, wrong{0};
    std::thread reader([&] {
        char buf[256];
        while (!stop.load()) {
            ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
            if (n < 0) ++missing;
            else if (std::string_view(buf, static_cast<size_t>(n)) != "../p.xml" &&
                     std::string_view(buf, static_cast<size_t>(n)) != "/somewhere/else/p.xml")
                ++wrong;
            ++checks;
        }
    });
    for (int i = 0; i < 500; ++i) ASSERT_TRUE(store.set_autostart("p", true));
    stop = true;
    reader.join();
    EXPECT_GT(checks.load(), 0);
    EXPECT_EQ(missing.load(), 0) << "the link was absent " << missing << " times in " << checks << " checks";
    EXPECT_EQ(wrong.load(), 0);
    EXPECT_EQ(fs::read_symlink(link), fs::path("../p.xml"));
    EXPECT_EQ(entries(link.parent_path()), std::vector<std::string>{"p.xml"});  // no temp link left

    ASSERT_TRUE(store.set_autostart("p", false));
    EXPECT_FALSE(fs::is_symlink(link));
    EXPECT_FALSE(store.autostart("p"));
}

TEST(ObjectStore, ConcurrentEnablesOfOneObjectDoNotCollide) {
    test::TempDir dir;
    ObjectStore store(ObjectKind::Domain, dir / "conf", dir / "run");
    ASSERT_TRUE(store.save_config("web", "<doc/>"));
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 100; ++i)
                if (!store.set_autostart("web", true)) ++failures;
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(entries(dir / "conf" / "autostart"), std::vector<std::string>{"web.xml"});
}

// kill -9 at random moments of a process that rewrites a definition, a
// status document and the autostart link in a loop: afterwards every
// document is one complete version, the link (enabled before the loop) is
// there, and loading reports nothing bad.
TEST(ObjectStore, KillAtAnyMomentLeavesCompleteDocumentsAndTheLink) {
    test::TempDir dir;
    ObjectStore store(ObjectKind::Domain, dir / "conf", dir / "run");
    ASSERT_TRUE(store.prepare());
    const std::string a = "<doc>" + std::string(20000, 'a') + "</doc>";
    const std::string b = "<doc>" + std::string(30000, 'b') + "</doc>";
    ASSERT_TRUE(store.save_config("web", a));
    ASSERT_TRUE(store.save_status("web", a));
    ASSERT_TRUE(store.set_autostart("web", true));
    std::mt19937 rng{std::random_device{}()};
    for (int round = 0; round < 25; ++round) {
        SCOPED_TRACE(round);
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            for (int i = 0;; ++i) {
                const std::string& doc = i % 2 ? a : b;
                Status st = store.save_config("web", doc);
                if (st) st = store.set_autostart("web", true);
                if (st) st = store.save_status("web", doc);
                if (!st) {
                    const std::string msg = st.error().full_message() + "\n";
                    (void)!::write(2, msg.data(), msg.size());
                    ::_exit(1);
                }
            }
        }
        std::this_thread::sleep_for(std::chrono::microseconds(500 + rng() % 20000));
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself: a write failed";
        const std::string conf = read_file(store.config_path("web"));
        EXPECT_TRUE(conf == a || conf == b) << conf.substr(0, 40) << "... (" << conf.size() << " bytes)";
        const std::string stat = read_file(store.status_path("web"));
        EXPECT_TRUE(stat == a || stat == b) << stat.substr(0, 40) << "... (" << stat.size() << " bytes)";
        EXPECT_TRUE(store.autostart("web"));
        EXPECT_EQ(fs::read_symlink(store.autostart_path("web")), fs::path("../web.xml"));
        std::vector<std::string> seen;
        EXPECT_TRUE(store.load_configs(accept_complete(seen)).empty());
        EXPECT_EQ(seen, std::vector<std::string>{"web"});  // temp files are never documents
        EXPECT_EQ(store.status_names(), std::vector<std::string>{"web"});
    }
}
