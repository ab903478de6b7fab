// vireo-img -p prints progress as qemu-img 7.2 does: the same lines, byte
// for byte, on the same images (convert, compare, rebase), and the same shape for
// commit, whose steps in qemu-img follow its event loop's timing.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <regex>

#include "img_support.hpp"

using vireo::test::run;
using vireo::test::TempDir;
using namespace vireo::test::img;

namespace {

// Run `args` with qemu-img and with vireo-img (each on its own copy of the
// files `fresh` makes) and expect the same stdout.
void same_progress(const std::vector<std::string>& args, const std::function<void()>& fresh = [] {}) {
    std::vector<std::string> q{"qemu-img"}, v{vimg()};
    q.insert(q.end(), args.begin(), args.end());
    v.insert(v.end(), args.begin(), args.end());
    fresh();
    auto rq = run(q);
    fresh();
    auto rv = run(v);
    ASSERT_EQ(rq.exit_code, rv.exit_code) << rq.err << " / " << rv.err;
    EXPECT_EQ(rv.out, rq.out) << "args: " << ::testing::PrintToString(args);
    EXPECT_NE(rv.out.find("    (0.00/100%)\r"), std::string::npos);
    EXPECT_TRUE(rv.out.ends_with("\n"));
}

}  // namespace

TEST(ImgProgress, ConvertPrintsQemuImgLinesByteForByte) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const char* n) { return (d / n).string(); };
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("full.qcow2"), "64M"});
    qemu_io(p("full.qcow2"), {"write -P 1 0 64M"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("sparse.qcow2"), "1G"});
    qemu_io(p("sparse.qcow2"), {"write -P 1 0 3M", "write -P 2 500M 64k", "write -P 3 700M 5M", "write -z 800M 10M"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("empty.qcow2"), "256M"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-b", "full.qcow2", "-F", "qcow2", p("top.qcow2"), "64M"});
    qemu_io(p("top.qcow2"), {"write -P 7 10M 3M"});
    {
        // A raw source with data runs at odd places and holes between them.
        std::mt19937 rng(5);
        std::fstream f(p("src.raw"), std::ios::out | std::ios::binary);
        f.seekp((96 << 20) - 1);
        f.put('\0');
        for (int i = 0; i < 24; ++i) {
            std::string data(512 + rng() % (3 << 20), static_cast<char>(1 + i));
            f.seekp(static_cast<std::streamoff>(rng() % ((93 << 20) - data.size())));
            f.write(data.data(), static_cast<std::streamsize>(data.size()));
        }
    }
    const std::string out = p("out");
    auto clean = [&] { std::filesystem::remove(out); };
    for (const auto& extra : std::vector<std::vector<std::string>>{
             {"-O", "raw", p("full.qcow2")},
             {"-O", "raw", p("sparse.qcow2")},
             {"-O", "qcow2", p("sparse.qcow2"), p("full.qcow2")},
             {"-c", "-O", "qcow2", p("sparse.qcow2")},
             {"-S", "0", "-O", "qcow2", p("sparse.qcow2")},
             {"-O", "raw", p("empty.qcow2")},
             {"-O", "qcow2", p("top.qcow2")},
             {"-O", "qcow2", p("src.raw")},
             {"-c", "-O", "qcow2", p("src.raw")},
             {"-O", "raw", p("missing.qcow2")},
         }) {
        std::vector<std::string> args{"convert", "-p"};
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back(out);
        same_progress(args, clean);
    }
    // compare -p: one step per block-status run of both images.
    ok({"qemu-img", "convert", "-O", "raw", p("full.qcow2"), p("full.raw")});
    for (const auto& pair : std::vector<std::pair<std::string, std::string>>{
             {p("full.qcow2"), p("full.raw")}, {p("sparse.qcow2"), p("sparse.qcow2")},
             {p("sparse.qcow2"), p("full.qcow2")}, {p("top.qcow2"), p("full.qcow2")}})
        same_progress({"compare", "-p", pair.first, pair.second});
    // -q wins over -p, as in qemu-img: nothing on stdout.
    clean();
    auto r = run({vimg(), "convert", "-p", "-q", "-O", "raw", p("full.qcow2"), out});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "");
}

TEST(ImgProgress, RebasePrintsQemuImgLinesByteForByte) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const std::string& n) { return (d / n).string(); };
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("base.qcow2"), "64M"});
    qemu_io(p("base.qcow2"), {"write -P 1 0 64M"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("big.qcow2"), "1G"});
    qemu_io(p("big.qcow2"), {"write -P 1 0 100M"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("new.qcow2"), "1G"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", p("top0.qcow2")});
    qemu_io(p("top0.qcow2"), {"write -P 2 0 5M", "write -P 3 30M 10M", "write -z 50M 1M"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-b", "big.qcow2", "-F", "qcow2", p("bt0.qcow2")});
    qemu_io(p("bt0.qcow2"), {"write -P 2 0 10M"});
    auto copy = [&](const std::string& from, const std::string& to) {
        return [=] {
            std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
        };
    };
    // 2 MiB steps of 3.125% each printed; 0.195% steps printed past 2%.
    same_progress({"rebase", "-p", "-b", "new.qcow2", "-F", "qcow2", p("top.qcow2")}, copy(p("top0.qcow2"), p("top.qcow2")));
    same_progress({"rebase", "-p", "-b", "new.qcow2", "-F", "qcow2", p("bt.qcow2")}, copy(p("bt0.qcow2"), p("bt.qcow2")));
    same_progress({"rebase", "-p", "-b", "", p("bt.qcow2")}, copy(p("bt0.qcow2"), p("bt.qcow2")));
    same_progress({"rebase", "-p", "-u", "-b", "new.qcow2", "-F", "qcow2", p("bt.qcow2")}, copy(p("bt0.qcow2"), p("bt.qcow2")));
    same_progress({"rebase", "-p", "-b", "big.qcow2", "-F", "qcow2", p("bt.qcow2")}, copy(p("bt0.qcow2"), p("bt.qcow2")));
    same_progress({"rebase", "-p", "-b", "new.qcow2", p("missing.qcow2")});
}

// qemu-img commit's lines follow its block job's polling (how many "0.00"
// and "100.00" lines it prints varies from run to run): vireo-img prints
// the same kind of lines, by the same rule, in the same order.
TEST(ImgProgress, CommitPrintsQemuImgKindOfLines) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const std::string& n) { return (d / n).string(); };
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("base.qcow2"), "64M"});
    qemu_io(p("base.qcow2"), {"write -P 1 0 64M"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", p("top.qcow2")});
    qemu_io(p("top.qcow2"), {"write -P 2 0 5M", "write -P 3 30M 10M"});
    std::filesystem::copy_file(p("base.qcow2"), p("qbase.qcow2"));
    std::filesystem::copy_file(p("top.qcow2"), p("qtop.qcow2"));
    ok({"qemu-img", "rebase", "-u", "-b", "qbase.qcow2", "-F", "qcow2", p("qtop.qcow2")});
    auto q = run({"qemu-img", "commit", "-p", p("qtop.qcow2")});
    auto v = run({vimg(), "commit", "-p", p("top.qcow2")});
    ASSERT_EQ(q.exit_code, 0) << q.err;
    ASSERT_EQ(v.exit_code, 0) << v.err;
    auto lines = [](const std::string& out) {
        std::vector<double> vals;
        static const std::regex kLine(R"(    \(([0-9]+\.[0-9][0-9])/100%\)\r)");
        std::string rest = out.substr(0, out.find('\n'));
        for (std::sregex_iterator it(rest.begin(), rest.end(), kLine), end; it != end; ++it)
            vals.push_back(std::stod((*it)[1]));
        return vals;
    };
    for (const auto* r : {&q, &v}) {
        auto vals = lines(r->out);
        ASSERT_GE(vals.size(), 3U) << r->out;
        EXPECT_EQ(vals.front(), 0.0);
        EXPECT_EQ(vals.back(), 100.0);
        EXPECT_TRUE(std::is_sorted(vals.begin(), vals.end()));
        EXPECT_TRUE(r->out.ends_with("\r\nImage committed.\n")) << r->out;
    }
    ok({"qemu-img", "compare", p("qbase.qcow2"), p("base.qcow2")});
}
