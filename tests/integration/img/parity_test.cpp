// vireo-img against qemu-img 7.2 on the cases where the two used to differ:
// data and metadata after resize/check/amend, refusals of unsafe guesses
// and of images QEMU rejects, values and layout (measure, convert -B,
// rebase, commit, map), and messages. Both tools run on twin images; what
// they print and what they leave behind is compared (maps byte for byte,
// headers byte for byte, read-back through qemu-io).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "img_support.hpp"

using vireo::test::run;
using vireo::test::TempDir;
using namespace vireo::test::img;

namespace {

using Args = std::vector<std::string>;

// The same command through qemu-img and vireo-img.
struct Both {
    vireo::test::CommandResult q, v;
};
Both both(const Args& args) {
    Args q{"qemu-img"}, v{vimg()};
    q.insert(q.end(), args.begin(), args.end());
    v.insert(v.end(), args.begin(), args.end());
    return {run(q), run(v)};
}

// vireo-img's messages start with the program name as invoked: compare
// with qemu-img's after swapping the name.
std::string as_qemu(std::string s) {
    for (size_t p; (p = s.find("vireo-img")) != std::string::npos;) s.replace(p, 9, "qemu-img");
    return s;
}

// Expect the same exit code, stdout and (named alike) stderr.
void expect_same(const Args& args, const std::string& what = "") {
    auto r = both(args);
    std::string label = what.empty() ? args[0] : what;
    EXPECT_EQ(r.q.exit_code, r.v.exit_code) << label << "\nqemu: " << r.q.err << "\nvireo: " << r.v.err;
    EXPECT_EQ(r.q.out, r.v.out) << label;
    EXPECT_EQ(r.q.err, as_qemu(r.v.err)) << label;
}

[[maybe_unused]] std::string map_json(const std::string& img, const Args& extra = {}) {
    Args a{"qemu-img", "map", "--output=json"};
    a.insert(a.end(), extra.begin(), extra.end());
    a.push_back(img);
    auto r = run(a);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
}

std::string read_bytes(const std::string& path, uint64_t off, uint64_t len) {
    std::ifstream f(path, std::ios::binary);
    std::string b(len, '\0');
    f.seekg(static_cast<long>(off));
    f.read(b.data(), static_cast<long>(len));
    b.resize(static_cast<size_t>(f.gcount()));
    return b;
}

void write_bytes(const std::string& path, uint64_t off, const std::string& bytes) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<long>(off));
    f.write(bytes.data(), static_cast<long>(bytes.size()));
}

std::string be(uint64_t v, int n) {
    std::string s(static_cast<size_t>(n), '\0');
    for (int i = 0; i < n; ++i) s[static_cast<size_t>(i)] = static_cast<char>(v >> (8 * (n - 1 - i)));
    return s;
}
uint64_t load(const std::string& s, size_t off, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(s[off + static_cast<size_t>(i)]);
    return v;
}

// Header extensions of a qcow2 file: (offset of the extension, type, length).
struct Ext {
    uint64_t at;
    uint32_t type, len;
};
std::vector<Ext> extensions(const std::string& path) {
    std::string h = read_bytes(path, 0, 65536);
    uint64_t off = load(h, 4, 4) >= 3 ? load(h, 100, 4) : 72;
    std::vector<Ext> out;
    while (off + 8 <= h.size()) {
        auto type = static_cast<uint32_t>(load(h, off, 4));
        auto len = static_cast<uint32_t>(load(h, off + 4, 4));
        if (type == 0) break;
        out.push_back({off, type, len});
        off += 8 + ((len + 7) & ~7U);
    }
    return out;
}

// Insert an extension vireo does not know after the first one, move the
// backing file name `gap` bytes further, as another writer may have.
void add_unknown_extension(const std::string& path, uint64_t gap) {
    std::string h = read_bytes(path, 0, 4096);
    uint64_t start = load(h, 4, 4) >= 3 ? load(h, 100, 4) : 72;
    auto exts = extensions(path);
    std::string name = h.substr(load(h, 8, 8), load(h, 16, 4));
    std::string out = h.substr(0, start);
    std::string unknown = be(0x12345678, 4) + be(17, 4) + std::string("hello unknown ext") + std::string(7, '\0');
    for (size_t i = 0; i < exts.size(); ++i) {
        out += h.substr(exts[i].at, 8 + ((exts[i].len + 7) & ~7U));
        if (i == 0) out += unknown;
    }
    out += std::string(8 + gap, '\0');
    uint64_t name_at = out.size();
    out += name;
    out.replace(8, 8, be(name_at, 8));
    out.resize(4096, '\0');
    write_bytes(path, 0, out);
}

}  // namespace

// resize --shrink then a grow, on an overlay: the new tail reads as zero
// (zero clusters, as qemu-img leaves), not as the backing file's old bytes;
// a version 2 image cannot do that and is refused with qemu-img's message.
TEST(ImgInterop, ShrinkThenGrowOverBackingZeroesTheTail) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const std::string& n) { return (d / n).string(); };
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("base.qcow2"), "4M"});
    qemu_io(p("base.qcow2"), {"write -P 0x11 0 4M"});
    for (const std::string t : {"q", "v"}) {
        const std::string tool = t == "q" ? "qemu-img" : vimg();
        for (const std::string compat : {"1.1", "0.10"}) {
            auto img = p(t + compat + ".qcow2");
            ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=" + compat, "-b", "base.qcow2", "-F", "qcow2", img});
            ok({tool, "resize", "--shrink", img, "1M"});
        }
    }
    auto grow = both({"resize", p("q1.1.qcow2"), "4M"});
    auto growv = run({vimg(), "resize", p("v1.1.qcow2"), "4M"});
    EXPECT_EQ(grow.q.out, growv.out);
    EXPECT_EQ(growv.exit_code, 0) << growv.err;
    qemu_io(p("v1.1.qcow2"), {"read -P 0x11 0 1M", "read -P 0 1M 3M"});
    EXPECT_EQ(map_json(p("q1.1.qcow2")), map_json(p("v1.1.qcow2")));
    auto q2 = run({"qemu-img", "resize", p("q0.10.qcow2"), "4M"});
    auto v2 = run({vimg(), "resize", p("v0.10.qcow2"), "4M"});
    EXPECT_EQ(q2.exit_code, 1);
    EXPECT_EQ(v2.exit_code, q2.exit_code);
    EXPECT_EQ(q2.err, as_qemu(v2.err));
    auto info = run({"qemu-img", "info", "--output=json", p("v0.10.qcow2")});
    EXPECT_EQ(nlohmann::json::parse(info.out)["virtual-size"], 1 << 20) << "the failed grow left the size as it was";
}

// amend rewrites the header in qemu-img's layout whatever it changes:
// extensions vireo does not know stay (in version 2 too, and across a
// downgrade), the backing file name goes right after the extensions and
// nothing of the old header is left behind. Both tools leave the same bytes.
TEST(ImgInterop, AmendKeepsUnknownExtensionsAndBackingNameLikeQemu) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const std::string& n) { return (d / n).string(); };
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("base.qcow2"), "4M"});
    struct Case {
        std::string create_opts;
        uint64_t gap;
        std::string amend;
    };
    const std::vector<Case> cases = {
        {"compat=1.1", 0, "compat=1.1"},         {"compat=1.1", 200, "lazy_refcounts=on"},
        {"compat=0.10", 200, "compat=0.10"},     {"compat=1.1", 0, "compat=0.10"},
        {"compat=0.10", 0, "compat=1.1"},        {"cluster_size=4096", 64, "lazy_refcounts=on"},
    };
    for (const auto& c : cases) {
        for (const std::string t : {"q", "v"}) {
            auto img = p(t + ".qcow2");
            std::filesystem::remove(img);
            ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", c.create_opts, "-b", "base.qcow2", "-F", "qcow2", img});
            add_unknown_extension(img, c.gap);
        }
        ok({"qemu-img", "amend", "-o", c.amend, p("q.qcow2")});
        ok({vimg(), "amend", "-o", c.amend, p("v.qcow2")});
        EXPECT_TRUE(slurp(d / "q.qcow2") == slurp(d / "v.qcow2"))
            << c.create_opts << " gap " << c.gap << " amend " << c.amend << ": images differ";
        bool kept = false;
        for (const auto& e : extensions(p("v.qcow2"))) kept |= e.type == 0x12345678;
        EXPECT_TRUE(kept) << c.amend;
        ok({"qemu-img", "check", p("v.qcow2")});
    }
}

// Run through a link named qemu-img, vireo-img names itself qemu-img in
// its messages, as scripts that match on qemu-img's output expect.
TEST(ImgOptions, MessagesCarryTheProgramNameAsInvoked) {
    NEED_QEMU();
    TempDir d;
    auto link = (d / "qemu-img").string();
    ASSERT_EQ(::symlink(vimg().c_str(), link.c_str()), 0);
    for (const Args& a : std::vector<Args>{{"info", (d / "missing.qcow2").string()},
                                          {"frobnicate"},
                                          {"check", "-r", "sideways", (d / "x").string()},
                                          {"info", "--bogus", "x"}}) {
        Args q{"qemu-img"}, v{link};
        q.insert(q.end(), a.begin(), a.end());
        v.insert(v.end(), a.begin(), a.end());
        auto rq = run(q), rv = run(v);
        EXPECT_EQ(rq.exit_code, rv.exit_code) << a[0];
        EXPECT_EQ(rq.err, rv.err) << a[0];
        EXPECT_EQ(rv.err.rfind("qemu-img: ", 0), 0U) << rv.err;
    }
}

// check -r: what is wrong is reported first ("Leaked cluster", "ERROR
// cluster ... refcount=0"), then repaired ("Repairing", or the refcount
// structure rebuilt); a repair that leaves nothing wrong clears the corrupt
// bit, and closing the image the dirty bit (even after -r leaks, which
// cannot rebuild and fails as qemu-img does). Same messages, exit codes and
// resulting bytes as qemu-img.
TEST(ImgInterop, CheckRepairLikeQemu) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const std::string& n) { return (d / n).string(); };
    auto dirty = [&](const std::string& img) {
        ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", img, "4M"});
        // qemu-io dies before it can write the refcounts back.
        run({"qemu-io", "-c", "write -P 0x11 0 1M", "-c", "abort", img});
    };
    auto leaky = [&](const std::string& img) {
        ok({"qemu-img", "create", "-q", "-f", "qcow2", img, "16M"});
        qemu_io(img, {"write -P 1 0 256k"});
        std::filesystem::resize_file(img, std::filesystem::file_size(img) + 65536);
        write_bytes(img, 0x20000 + 18, be(1, 2));  // refcount 1 on the unused cluster 9
    };
    struct Case {
        std::string name;
        std::function<void(const std::string&)> make;
        Args args;
    };
    const std::vector<Case> cases = {
        {"dirty-all", dirty, {"check", "-r", "all"}},
        {"dirty-leaks", dirty, {"check", "-r", "leaks"}},
        {"dirty-all-json", dirty, {"check", "-r", "all", "--output=json"}},
        {"leak-leaks", leaky, {"check", "-r", "leaks"}},
        {"leak-all", leaky, {"check", "-r", "all"}},
    };
    for (const auto& c : cases) {
        auto qi = p("q-" + c.name + ".qcow2"), vi = p("v-" + c.name + ".qcow2");
        c.make(qi);
        std::filesystem::copy_file(qi, vi);
        Args q{"qemu-img"}, v{vimg()};
        q.insert(q.end(), c.args.begin(), c.args.end());
        v.insert(v.end(), c.args.begin(), c.args.end());
        q.push_back(qi);
        v.push_back(vi);
        auto rq = run(q), rv = run(v);
        EXPECT_EQ(rq.exit_code, rv.exit_code) << c.name;
        EXPECT_EQ(rq.err, as_qemu(rv.err)) << c.name;
        if (c.args.back() == "--output=json") {
            auto jq = nlohmann::json::parse(rq.out), jv = nlohmann::json::parse(rv.out);
            jq.erase("filename");
            jv.erase("filename");
            EXPECT_EQ(jq, jv) << c.name;
        } else {
            EXPECT_EQ(rq.out, rv.out) << c.name;
        }
        EXPECT_TRUE(slurp(qi) == slurp(vi)) << c.name << ": repaired images differ";
        auto info = run({"qemu-img", "info", "--output=json", vi});
        EXPECT_EQ(nlohmann::json::parse(info.out)["dirty-flag"], false) << c.name;
    }
    // A corrupt image repaired without findings is consistent again.
    auto qc = p("q-corrupt.qcow2"), vc = p("v-corrupt.qcow2");
    ok({"qemu-img", "create", "-q", "-f", "qcow2", qc, "1M"});
    write_bytes(qc, 72 + 7, std::string(1, '\x02'));
    std::filesystem::copy_file(qc, vc);
    auto rq = run({"qemu-img", "check", "-r", "all", qc}), rv = run({vimg(), "check", "-r", "all", vc});
    EXPECT_EQ(rq.exit_code, rv.exit_code);
    EXPECT_EQ(rq.out, rv.out);
    EXPECT_TRUE(slurp(qc) == slurp(vc)) << "the corrupt bit is cleared as qemu-img clears it";
}

// A backing format is never guessed (QEMU 7.2 refuses: a guest-written
// backing file could pass for another format): create -b, rebase -b and
// convert -B without -F are refused with qemu-img's words, while -u create
// and the rest of create's backing checks behave as qemu-img's.
TEST(ImgInterop, BackingFormatIsNeverGuessed) {
    NEED_QEMU();
    TempDir d;
    std::filesystem::current_path(d.path());
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", "4M"});
    const std::vector<Args> creates = {
        {"-f", "qcow2", "-b", "base.qcow2", "t.qcow2"},
        {"-f", "qcow2", "-o", "backing_file=base.qcow2", "t.qcow2", "1M"},
        {"-f", "qcow2", "-u", "-b", "base.qcow2", "t.qcow2", "1M"},
        {"-f", "qcow2", "-b", "missing.qcow2", "t.qcow2", "1M"},
        {"-f", "qcow2", "-b", "missing.qcow2", "-F", "qcow2", "t.qcow2"},
        {"-f", "qcow2", "-u", "-b", "missing.qcow2", "-F", "qcow2", "t.qcow2", "1M"},
        {"-f", "qcow2", "-b", "base.qcow2", "-F", "nosuchfmt", "t.qcow2"},
        {"-f", "qcow2", "-u", "-b", "base.qcow2", "-F", "nosuchfmt", "t.qcow2", "1M"},
        {"-f", "qcow2", "-b", "t.qcow2", "-F", "qcow2", "t.qcow2"},
        {"-f", "qcow2", "-b", "", "t.qcow2", "1M"},
        {"-f", "qcow2", "t.qcow2"},
        {"-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "t.qcow2"},
    };
    for (const auto& c : creates) {
        Args a{"create"};
        a.insert(a.end(), c.begin(), c.end());
        std::filesystem::remove("t.qcow2");
        auto rq = run([&] { Args q{"qemu-img"}; q.insert(q.end(), a.begin(), a.end()); return q; }());
        auto qbytes = slurp("t.qcow2");
        std::filesystem::remove("t.qcow2");
        auto rv = run([&] { Args v{vimg()}; v.insert(v.end(), a.begin(), a.end()); return v; }());
        std::string what;
        for (const auto& s : c) what += s + " ";
        EXPECT_EQ(rq.exit_code, rv.exit_code) << what << rv.err;
        EXPECT_EQ(rq.out, rv.out) << what;
        EXPECT_EQ(rq.err, as_qemu(rv.err)) << what;
        EXPECT_TRUE(qbytes == slurp("t.qcow2")) << what;
    }
    // rebase: unsafe is refused at once; safe copies what differs, then is
    // refused (the image keeps its backing file), both as qemu-img.
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "other.qcow2", "4M"});
    qemu_io("other.qcow2", {"write -P 7 0 64k"});
    for (const Args& r : std::vector<Args>{{"-u", "-b", "other.qcow2"}, {"-b", "other.qcow2"}}) {
        for (const std::string t : {"q", "v"})
            ok({"qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", t + ".qcow2"});
        Args q{"qemu-img", "rebase"}, v{vimg(), "rebase"};
        q.insert(q.end(), r.begin(), r.end());
        v.insert(v.end(), r.begin(), r.end());
        q.push_back("q.qcow2");
        v.push_back("v.qcow2");
        auto rq = run(q), rv = run(v);
        EXPECT_EQ(rq.exit_code, 1) << rq.err;
        EXPECT_EQ(rv.exit_code, 1);
        EXPECT_EQ(rq.err, as_qemu(rv.err));
        EXPECT_EQ(map_json("q.qcow2"), map_json("v.qcow2"));
        auto info = run({"qemu-img", "info", "--output=json", "v.qcow2"});
        EXPECT_EQ(nlohmann::json::parse(info.out)["backing-filename"], "base.qcow2");
    }
    auto cq = run({"qemu-img", "convert", "-O", "qcow2", "-B", "base.qcow2", "other.qcow2", "cq.qcow2"});
    auto cv = run({vimg(), "convert", "-O", "qcow2", "-B", "base.qcow2", "other.qcow2", "cv.qcow2"});
    EXPECT_EQ(cq.exit_code, cv.exit_code);
    EXPECT_EQ(cq.err, as_qemu(cv.err));
    EXPECT_FALSE(std::filesystem::exists("cv.qcow2"));
}

// An image whose backing format vireo does not know (here a name no
// driver has, written into the header) is shown by info; what needs the
// backing file fails as qemu-img fails, with its words.
TEST(ImgInterop, InfoShowsImageWithUnknownBackingFormat) {
    NEED_QEMU();
    TempDir d;
    std::filesystem::current_path(d.path());
    ok({"qemu-img", "create", "-q", "-f", "raw", "base.raw", "1M"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "p.qcow2"});
    std::string h = read_bytes("p.qcow2", 0, 4096);
    auto at = h.find(std::string("raw\0", 4));
    ASSERT_NE(at, std::string::npos);
    write_bytes("p.qcow2", at, "foo");
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "base.vmdk", "-F", "vmdk", "v.qcow2", "1M"});
    for (const Args& a : std::vector<Args>{{"info", "p.qcow2"},
                                          {"info", "--output=json", "p.qcow2"},
                                          {"info", "-U", "p.qcow2"},
                                          {"info", "v.qcow2"},
                                          {"info", "--backing-chain", "p.qcow2"},
                                          {"map", "p.qcow2"},
                                          {"compare", "p.qcow2", "base.raw"},
                                          {"convert", "-O", "raw", "p.qcow2", "x.raw"}})
        expect_same(a, a[0] + " " + a[1]);
}

// Images QEMU refuses to open are refused by vireo too, with qemu-img's
// message: the compression-type bit that does not match the header's
// compression type, persistent bitmaps that break the format's
// constraints, and incompatible features (named from the image's own
// feature name table).
TEST(ImgInterop, RefusesImagesQemuRejects) {
    NEED_QEMU();
    TempDir d;
    std::filesystem::current_path(d.path());
    const std::string img = "x.qcow2";
    auto check_both = [&](const std::string& what) {
        for (const Args& a : std::vector<Args>{{"info", img}, {"check", img}, {"map", img}}) {
            auto r = both(a);
            EXPECT_EQ(r.q.exit_code, r.v.exit_code) << what << " " << a[0] << "\n" << r.q.err << r.v.err;
            EXPECT_EQ(r.q.out, r.v.out) << what << " " << a[0];
            EXPECT_EQ(r.q.err, as_qemu(r.v.err)) << what << " " << a[0];
        }
    };
    auto fresh = [&] {
        std::filesystem::remove(img);
        ok({"qemu-img", "create", "-q", "-f", "qcow2", img, "1M"});
    };
    auto set_incompat = [&](uint64_t bits) { write_bytes(img, 72, be(load(read_bytes(img, 72, 8), 0, 8) | bits, 8)); };
    // zlib header with the compression-type bit, and zstd without it.
    fresh();
    set_incompat(8);
    check_both("zlib with the compression bit");
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", "compression_type=zstd", "z.qcow2", "1M"});
    std::filesystem::rename("z.qcow2", img);
    write_bytes(img, 72, be(load(read_bytes(img, 72, 8), 0, 8) & ~8ULL, 8));
    check_both("zstd without the compression bit");
    // Unknown incompatible features: one named by the image's feature table.
    fresh();
    set_incompat((1ULL << 5) | (1ULL << 40));
    for (const auto& e : extensions(img)) {
        if (e.type != 0x6803f857) continue;
        std::string t = read_bytes(img, e.at + 8, e.len);
        for (size_t k = 0; k + 48 <= t.size(); k += 48)
            if (t[k] == 0 && t[k + 1] == 4) write_bytes(img, e.at + 8 + k + 1, std::string("\x05my fancy feature", 17));
    }
    check_both("unknown features");
    // Bitmaps: every constraint of the directory and its tables.
    struct Patch {
        std::string name;
        int where;  // 0: extension, 1: directory entry, 2: first bitmap table entry
        size_t off;
        std::string bytes;
    };
    const std::vector<Patch> patches = {
        {"granularity below 512", 1, 17, std::string(1, '\x08')},
        {"reserved flag", 1, 12, be(4, 4)},
        {"type", 1, 16, std::string(1, '\x02')},
        {"table size 0", 1, 8, be(0, 4)},
        {"table offset 0", 1, 0, be(0, 8)},
        {"table offset unaligned", 1, 0, be(0x10200, 8)},
        {"table too large for the image", 1, 8, be(5, 4)},
        {"extra data", 1, 20, be(8, 4)},
        {"zero bitmaps", 0, 0, be(0, 4)},
        {"reserved field", 0, 4, be(1, 4)},
        {"directory unaligned", 0, 16, be(0x10100, 8)},
        {"directory too large", 0, 8, be(0x7000000, 8)},
        {"fewer bitmaps than counted", 0, 0, be(2, 4)},
        {"table entry reserved bits", 2, 0, be(0x100, 8)},
        {"table entry all-ones with data", 2, 0, be(0x10001, 8)},
    };
    for (const auto& pt : patches) {
        fresh();
        qemu_io(img, {"write 0 64k"});
        ok({"qemu-img", "bitmap", "--add", img, "b0"});
        qemu_io(img, {"write 0 64k"});
        uint64_t ext = 0;
        for (const auto& e : extensions(img))
            if (e.type == 0x23852875) ext = e.at + 8;
        ASSERT_NE(ext, 0U);
        const uint64_t dir = load(read_bytes(img, ext + 16, 8), 0, 8);
        const uint64_t table = load(read_bytes(img, dir, 8), 0, 8);
        const uint64_t base = pt.where == 0 ? ext : pt.where == 1 ? dir : table;
        write_bytes(img, base + pt.off, pt.bytes);
        check_both(pt.name);
    }
}

// map --output=json (and human) byte for byte as qemu-img: allocated zero
// clusters keep their offset, extents with and without host clusters stay
// apart, a data cluster past the end of the file stays data, ranges past a
// shorter backing file read zero at the overlay's depth, a raw file counts
// in whole sectors. measure's values too (raw targets: every sector; qcow2:
// whole clusters, bitmaps only where both sides have them).
TEST(ImgInterop, MapAndMeasureMatchQemu) {
    NEED_QEMU();
    TempDir d;
    std::filesystem::current_path(d.path());
    auto q = [](const std::string& img, const std::vector<std::string>& cmds) { qemu_io(img, cmds); };
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "a.qcow2", "4M"});
    q("a.qcow2", {"write -P 1 0 256k", "write -z 64k 64k", "write -z -u 128k 64k", "write -z 1M 64k"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", "preallocation=metadata", "pm.qcow2", "4M"});
    q("pm.qcow2", {"write -P 1 0 64k"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "eof.qcow2", "4M"});
    q("eof.qcow2", {"write -P 1 0 256k"});
    std::filesystem::resize_file("eof.qcow2", 393216);  // the last data clusters are past the end
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "x.qcow2", "4M"});
    q("x.qcow2", {"write -P 1 0 256k", "write -z 4k 8k", "write -z -u 64k 32k", "write -P 2 1M 4k"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "small.qcow2", "1M"});
    q("small.qcow2", {"write -P 1 0 1M"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-b", "small.qcow2", "-F", "qcow2", "big.qcow2", "4M"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-b", "big.qcow2", "-F", "qcow2", "big2.qcow2", "8M"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "-b", "a.qcow2", "-F", "qcow2", "xe.qcow2"});
    q("xe.qcow2", {"write -P 1 0 4k", "write -z 8k 4k"});
    {
        std::ofstream odd("odd.raw", std::ios::binary);
        odd << std::string(1000, 'x');
    }
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "e2t.qcow2", "2T"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "s.qcow2", "64M"});
    q("s.qcow2", {"write 0 1M", "write -z 4M 1M"});
    ok({"qemu-img", "bitmap", "--add", "s.qcow2", "bitmap0"});
    ok({"qemu-img", "bitmap", "--add", "-g", "4096", "s.qcow2", "b2"});
    for (const char* img : {"a.qcow2", "pm.qcow2", "eof.qcow2", "x.qcow2", "big.qcow2", "big2.qcow2", "xe.qcow2", "odd.raw"}) {
        expect_same({"map", "--output=json", img}, std::string("map json ") + img);
        expect_same({"map", img}, std::string("map ") + img);
    }
    expect_same({"map", "--output=json", "--start-offset", "64k", "--max-length", "200k", "a.qcow2"}, "map range");
    expect_same({"info", "odd.raw"}, "info odd.raw");
    for (const Args& m : std::vector<Args>{
             {"-O", "raw", "e2t.qcow2"}, {"-O", "qcow2", "e2t.qcow2"}, {"-O", "raw", "odd.raw"},
             {"-O", "qcow2", "odd.raw"}, {"-O", "raw", "--size", "1000"}, {"-O", "qcow2", "pm.qcow2"},
             {"-O", "qcow2", "s.qcow2"}, {"-O", "qcow2", "--output=json", "s.qcow2"},
             {"-O", "qcow2", "-o", "compat=0.10", "s.qcow2"}, {"-O", "qcow2", "-o", "backing_file=x", "s.qcow2"},
             {"-O", "qcow2", "-o", "preallocation=falloc", "s.qcow2"},
             {"--size", "1G", "-O", "qcow2", "-o", "preallocation=full"},
             {"-O", "qcow2", "-o", "cluster_size=512", "s.qcow2"}}) {
        Args a{"measure"};
        a.insert(a.end(), m.begin(), m.end());
        expect_same(a, "measure " + m.back());
    }
}

// What convert -B, rebase and commit leave behind is laid out as qemu-img
// lays it out (maps compared byte for byte, contents with qemu-img compare):
// convert -B copies what the source's top layer has, zeroes what reads
// zero in it (not past the new backing file's end), and leaves the rest to
// the backing file; rebase writes zero clusters where the old backing file
// has ended; commit turns zero runs into zero clusters in the base (freed,
// or holes in a raw base) and copies data as it reads, zeroes included;
// commit -b leaves the top as it was (-b implies -d).
TEST(ImgInterop, CopyLayoutsMatchQemu) {
    NEED_QEMU();
    TempDir d;
    std::filesystem::current_path(d.path());
    auto make = [](const std::string& img, const std::string& fmt, const std::string& size, const std::vector<std::string>& io,
                   const std::string& backing = "", const std::string& bfmt = "qcow2", const std::string& opts = "") {
        Args a{"qemu-img", "create", "-q", "-f", fmt};
        if (!opts.empty()) a.insert(a.end(), {"-o", opts});
        if (!backing.empty()) a.insert(a.end(), {"-b", backing, "-F", bfmt});
        a.push_back(img);
        if (!size.empty()) a.push_back(size);
        ok(a);
        if (!io.empty()) {
            Args q{"qemu-io", "-f", fmt};
            for (const auto& c : io) q.insert(q.end(), {"-c", c});
            q.push_back(img);
            ok(q);
        }
    };
    auto same_layout = [](const std::string& qi, const std::string& vi, const std::string& what) {
        EXPECT_EQ(map_json(qi), map_json(vi)) << what;
        auto c = run({"qemu-img", "compare", qi, vi});
        EXPECT_EQ(c.exit_code, 0) << what << ": " << c.out;
    };
    // convert -B
    make("base.qcow2", "qcow2", "4M", {"write -P 1 0 1M", "write -P 2 2M 1M"});
    make("src.qcow2", "qcow2", "4M",
         {"write -P 1 0 512k", "write -P 3 512k 512k", "write -P 2 2M 64k", "write -z 2176k 64k", "write -P 4 3M 64k",
          "write -P 0 3200k 64k"});
    make("ov.qcow2", "qcow2", "", {"write -P 1 0 64k", "write -z 2M 64k", "write -P 5 3M 64k", "write -P 0 1M 64k", "write -P 6 1M 4k"}, "base.qcow2");
    make("small.qcow2", "qcow2", "1M", {});
    make("ov2.qcow2", "qcow2", "4M", {"write -P 9 1536k 64k"}, "small.qcow2");
    make("ov3.qcow2", "qcow2", "64M", {"write -P 9 40M 64k"}, "small.qcow2");
    make("s64.qcow2", "qcow2", "64M", {"write -P 3 10M 64k", "write -z 20M 1M"});
    make("r.raw", "raw", "4M", {"write -P 1 0 64k", "write -P 0 1M 64k"});
    int n = 0;
    for (const Args& c : std::vector<Args>{{"src.qcow2"}, {"ov.qcow2"}, {"ov2.qcow2"}, {"ov3.qcow2"}, {"s64.qcow2"},
                                          {"-f", "raw", "r.raw"}, {"-c", "ov.qcow2"}}) {
        const std::string qi = "cq" + std::to_string(n) + ".qcow2", vi = "cv" + std::to_string(n++) + ".qcow2";
        Args q{"qemu-img", "convert", "-O", "qcow2", "-B", "base.qcow2", "-F", "qcow2"}, v{vimg(), "convert", "-O", "qcow2", "-B", "base.qcow2", "-F", "qcow2"};
        q.insert(q.end(), c.begin(), c.end());
        v.insert(v.end(), c.begin(), c.end());
        q.push_back(qi);
        v.push_back(vi);
        ok(q);
        ok(v);
        same_layout(qi, vi, "convert -B " + c.back());
    }
    // rebase onto a longer backing file, and onto none
    make("old.qcow2", "qcow2", "1M", {"write -P 1 0 1M"});
    make("new.qcow2", "qcow2", "4M", {"write -P 1 0 512k", "write -P 2 512k 1M", "write -P 3 3M 64k"});
    for (const std::string t : {"q", "v"}) {
        make("rb" + t + ".qcow2", "qcow2", "4M", {"write -P 9 1536k 64k"}, "old.qcow2");
        make("rn" + t + ".qcow2", "qcow2", "4M", {}, "old.qcow2");
    }
    ok({"qemu-img", "rebase", "-b", "new.qcow2", "-F", "qcow2", "rbq.qcow2"});
    ok({vimg(), "rebase", "-b", "new.qcow2", "-F", "qcow2", "rbv.qcow2"});
    same_layout("rbq.qcow2", "rbv.qcow2", "rebase onto a longer backing file");
    ok({"qemu-img", "rebase", "-b", "", "rnq.qcow2"});
    ok({vimg(), "rebase", "-b", "", "rnv.qcow2"});
    same_layout("rnq.qcow2", "rnv.qcow2", "rebase onto nothing");
    // commit of zeroes into qcow2 and raw bases, from a 4 KiB-cluster
    // overlay, and with -b
    for (const std::string t : {"q", "v"}) {
        make("b" + t + ".qcow2", "qcow2", "4M", {"write -P 1 0 2M"});
        make("t" + t + ".qcow2", "qcow2", "", {"write -z 0 1M", "write -P 0 1M 64k", "write -z 3M 64k", "write -z -u 1536k 64k"}, "b" + t + ".qcow2");
        make("b" + t + ".raw", "raw", "4M", {"write -P 1 0 2M"});
        make("r" + t + ".qcow2", "qcow2", "", {"write -z 0 1M", "write -P 0 1M 64k"}, "b" + t + ".raw", "raw");
        make("c" + t + ".qcow2", "qcow2", "4M", {"write -P 1 0 4M"});
        make("d" + t + ".qcow2", "qcow2", "", {"write -z 0 8k", "write -z 64k 64k", "write -P 2 200k 4k", "write -z 1M 128k", "write -P 0 2M 64k"},
             "c" + t + ".qcow2", "qcow2", "cluster_size=4096");
        make("e" + t + ".qcow2", "qcow2", "4M", {"write -P 1 0 4M"});
        make("f" + t + ".qcow2", "qcow2", "", {"write -P 3 0 1M"}, "e" + t + ".qcow2");
        make("g" + t + ".qcow2", "qcow2", "", {"write -z 0 4M"}, "f" + t + ".qcow2");
    }
    for (const Args& c : std::vector<Args>{{"t"}, {"r"}, {"d"}, {"-b", "e", "g"}}) {
        auto name = [&](const std::string& x, const std::string& t) { return x + t + ".qcow2"; };
        Args q{"qemu-img", "commit", "-q"}, v{vimg(), "commit", "-q"};
        if (c.size() > 1) {
            q.insert(q.end(), {"-b", name(c[1], "q")});
            v.insert(v.end(), {"-b", name(c[1], "v")});
        }
        q.push_back(name(c.back(), "q"));
        v.push_back(name(c.back(), "v"));
        ok(q);
        ok(v);
    }
    same_layout("bq.qcow2", "bv.qcow2", "commit into qcow2");
    same_layout("tq.qcow2", "tv.qcow2", "committed overlay");
    EXPECT_EQ(map_json("bq.raw"), map_json("bv.raw")) << "commit into raw";
    same_layout("cq.qcow2", "cv.qcow2", "commit from 4 KiB clusters");
    for (const char* x : {"e", "f", "g"}) same_layout(std::string(x) + "q.qcow2", std::string(x) + "v.qcow2", std::string("commit -b: ") + x);
}

// Messages and option handling as qemu-img's: compare warns of differing
// sizes, -o help lists each format's options (the file protocol's merged in
// when a file name is given), ",," stays a comma in values and is printed
// back doubled, option values are checked in qemu-img's two stages
// (types before the "Formatting" line, format checks after), and
// -o extent_size_hint / nocow are taken (an explicit hint the file system
// refuses is a warning).
TEST(ImgOptions, MessagesAndOptionHelpLikeQemu) {
    NEED_QEMU();
    TempDir d;
    std::filesystem::current_path(d.path());
    ok({"qemu-img", "create", "-q", "-f", "raw", "a.raw", "4M"});
    ok({"qemu-img", "create", "-q", "-f", "raw", "b.raw", "5M"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "c.qcow2", "5M"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "a,b.qcow2", "1M"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", "4M"});
    const std::vector<Args> cases = {
        {"compare", "a.raw", "b.raw"}, {"compare", "a.raw", "c.qcow2"}, {"compare", "-q", "a.raw", "b.raw"},
        {"compare", "-f", "raw", "a.raw", "a,b.qcow2"},
        {"create", "-f", "qcow2", "-o", "help"}, {"create", "-f", "qcow2", "-o", "help", "x.img"},
        {"create", "-f", "raw", "-o", "help", "x.img"}, {"create", "-o", "help"},
        {"create", "-f", "qcow2", "-o", "cluster_size=4k,help", "x", "1M"}, {"create", "-f", "nosuch", "-o", "help"},
        {"convert", "-O", "qcow2", "-o", "help"}, {"convert", "-O", "raw", "-o", "help", "a.raw", "x.img"},
        {"amend", "-f", "qcow2", "-o", "help"}, {"amend", "-f", "raw", "-o", "help"}, {"amend", "-o", "help", "c.qcow2"},
        {"amend", "-o", "help", "missing.qcow2"}, {"create", "-f", "luks", "-o", "help"},
        {"create", "-f", "vmdk", "-o", "help"}, {"create", "-f", "vmdk", "-o", "help", "x.vmdk"},
        {"create", "-f", "luks", "-o", "help", "x.luks"},
    };
    for (const auto& c : cases) {
        std::string what;
        for (const auto& s : c) what += s + " ";
        expect_same(c, what);
    }
    // create: every line and file as qemu-img's.
    const std::vector<std::string> creates = {
        "-f raw -o extent_size_hint=1M e.raw 1M", "-f qcow2 -o extent_size_hint=4M e.qcow2 1M",
        "-f raw -o extent_size_hint=5G e.raw 1M", "-f raw -o extent_size_hint=abc e.raw 1M",
        "-f raw -o nocow=off,preallocation=falloc e.raw 1M",
        "-f qcow2 -o nocow=on,extent_size_hint=2M,preallocation=metadata e.qcow2 1M",
        "-f qcow2 -o backing_file=a,,b.qcow2,backing_fmt=qcow2 e.qcow2", "-f qcow2 -b a,b.qcow2 -F qcow2 e.qcow2",
        "-f qcow2 -o data_file=d,,x e.qcow2 1M", "-f qcow2 -o cluster_size=abc e.qcow2 1M", "-f qcow2 -o foo=1 e.qcow2 1M",
        "-f qcow2 -o compat=9 e.qcow2 1M", "-f qcow2 -o lazy_refcounts=maybe e.qcow2 1M",
        "-f qcow2 -o preallocation=bogus e.qcow2 1M", "-f qcow2 -o size=abc e.qcow2", "-f qcow2 -o refcount_bits=3 e.qcow2 1M",
        "-f qcow2 -o compression_type=lz4 e.qcow2 1M", "-f raw -o preallocation=bogus e.raw 1M",
        "-f raw -o preallocation=metadata e.raw 1M", "-f qcow2 -o compat=v3 e.qcow2 1M",
        "-f qcow2 -o lazy_refcounts=yes,extended_l2=true,cluster_size=32k e.qcow2 1M", "-f qcow2 -o size=1000 e.qcow2",
        "-f qcow2 -u -o compat=1.1,cluster_size=4k,extended_l2=on,preallocation=off,compression_type=zstd,backing_file=x,"
        "backing_fmt=raw,data_file=d,data_file_raw=on,lazy_refcounts=on,refcount_bits=8,nocow=off,extent_size_hint=0 e.qcow2 1M",
    };
    for (const auto& line : creates) {
        Args a{"create"};
        for (size_t p = 0, q; p < line.size(); p = q + 1) {
            q = line.find(' ', p);
            if (q == std::string::npos) q = line.size();
            a.push_back(line.substr(p, q - p));
        }
        auto clean = [] {
            for (const char* f : {"e.raw", "e.qcow2", "d,x", "d"}) std::filesystem::remove(f);
        };
        clean();
        auto rq = run([&] { Args q{"qemu-img"}; q.insert(q.end(), a.begin(), a.end()); return q; }());
        const std::string qe = slurp("e.qcow2") + slurp("e.raw");
        const bool q_made = std::filesystem::exists("e.qcow2") || std::filesystem::exists("e.raw");
        clean();
        auto rv = run([&] { Args v{vimg()}; v.insert(v.end(), a.begin(), a.end()); return v; }());
        const bool v_made = std::filesystem::exists("e.qcow2") || std::filesystem::exists("e.raw");
        EXPECT_EQ(rq.exit_code, rv.exit_code) << line;
        EXPECT_EQ(rq.out, rv.out) << line;
        EXPECT_EQ(rq.err, as_qemu(rv.err)) << line;
        EXPECT_EQ(q_made, v_made) << line;
        if (rq.exit_code == 0) {
            EXPECT_TRUE(qe == slurp("e.qcow2") + slurp("e.raw")) << line << ": created images differ";
        }
    }
    // An explicit extent size hint a file system refuses (tmpfs) is a
    // warning; the default one is tried silently.
    if (std::filesystem::is_directory("/dev/shm")) {
        for (const Args& a : std::vector<Args>{{"-o", "extent_size_hint=4M"}, {}}) {
            const std::string img = "/dev/shm/vireo-img-esh-" + std::to_string(::getpid()) + ".raw";
            Args q{"qemu-img", "create", "-q", "-f", "raw"}, v{vimg(), "create", "-q", "-f", "raw"};
            q.insert(q.end(), a.begin(), a.end());
            v.insert(v.end(), a.begin(), a.end());
            q.insert(q.end(), {img, "1M"});
            v.insert(v.end(), {img, "1M"});
            auto rq = run(q);
            std::filesystem::remove(img);
            auto rv = run(v);
            std::filesystem::remove(img);
            EXPECT_EQ(rq.err, as_qemu(rv.err));
            EXPECT_EQ(rq.exit_code, rv.exit_code);
        }
    }
}

namespace {

// The dirty areas of a bitmap as QEMU sees them: qemu-nbd exports it and
// qemu-img map reads it back (dirty runs show as "data": false).
std::string dirty_map(const std::string& img, const std::string& bitmap) {
    const std::string sock = std::filesystem::absolute(img + ".sock").string();  // qemu-nbd wants it absolute
    std::filesystem::remove(sock);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::execlp("qemu-nbd", "qemu-nbd", "-r", "-t", "-k", sock.c_str(), "-B", bitmap.c_str(), "-f", "qcow2", img.c_str(),
                 static_cast<char*>(nullptr));
        ::_exit(127);
    }
    for (int i = 0; i < 100 && !std::filesystem::exists(sock); ++i) ::usleep(50000);
    auto r = run({"qemu-img", "map", "--output=json", "--image-opts",
                  "driver=nbd,server.type=unix,server.path=" + sock + ",x-dirty-bitmap=qemu:dirty-bitmap:" + bitmap});
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
    EXPECT_EQ(r.exit_code, 0) << img << " " << bitmap << ": " << r.err;
    return r.out;
}

}  // namespace

// vireo-img bitmap: every operation, their order on one command line, the
// checks and the messages as qemu-img's; what is left in the image reads the
// same to QEMU (info lists the same bitmaps, check is clean, the dirty areas
// exported by qemu-nbd are the same).
TEST(ImgOptions, BitmapSubcommandLikeQemu) {
    NEED_QEMU();
    if (vireo::test::which("qemu-nbd").empty()) VIREO_SKIP("qemu-nbd not installed");
    TempDir d;
    std::filesystem::current_path(d.path());
    for (const std::string t : {"q", "v"}) {
        ok({"qemu-img", "create", "-q", "-f", "qcow2", t + ".qcow2", "4M"});
        ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "v2" + t + ".qcow2", "4M"});
    }
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "src.qcow2", "4M"});
    ok({"qemu-img", "bitmap", "--add", "-g", "4096", "src.qcow2", "sb"});
    qemu_io("src.qcow2", {"write 64k 64k", "write 2M 4k"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "big.qcow2", "8M"});
    ok({"qemu-img", "bitmap", "--add", "big.qcow2", "bb"});
    // X stands for the image of each tool.
    const std::vector<Args> steps = {
        {"--add", "X.qcow2", "b0"}, {"--add", "X.qcow2", "b0"}, {"--remove", "X.qcow2", "nope"},
        {"--enable", "X.qcow2", "nope"}, {"--add", "-g", "4096", "X.qcow2", "b1"}, {"--add", "-g", "1000", "X.qcow2", "b2"},
        {"--add", "-g", "abc", "X.qcow2", "b2"}, {"--add", "--disable", "X.qcow2", "b3"},
        {"--merge", "sb", "-b", "src.qcow2", "-F", "qcow2", "X.qcow2", "b1"}, {"--merge", "b1", "X.qcow2", "b0"},
        {"--merge", "nope", "X.qcow2", "b1"}, {"--merge", "bb", "-b", "big.qcow2", "X.qcow2", "b1"},
        {"-g", "4096", "X.qcow2", "b4"}, {"--add", "X.qcow2"}, {"--remove", "--add", "X.qcow2", "b6"},
        {"--add", "-g", "4096", "--remove", "X.qcow2", "b7"}, {"--add", "X.qcow2", "b8", "--remove", "--remove"},
        {"--disable", "X.qcow2", "b0"}, {"--enable", "X.qcow2", "b3"}, {"--clear", "X.qcow2", "b3"},
        {"-b", "src.qcow2", "--add", "X.qcow2", "b9"}, {"-F", "qcow2", "--merge", "b0", "X.qcow2", "b1"},
        {"--add", "X.qcow2", ""}, {"--add", "-g", "0", "X.qcow2", "g0"}, {"--add", "-g", "2G", "X.qcow2", "g2"},
        {"--add", "missing.qcow2", "x"}, {"--add", "--merge", "b1", "X.qcow2", "b10"},
    };
    for (const auto& s : steps) {
        Args q{"qemu-img", "bitmap"}, v{vimg(), "bitmap"};
        std::string what;
        for (const auto& a : s) {
            q.push_back(a == "X.qcow2" ? "q.qcow2" : a);
            v.push_back(a == "X.qcow2" ? "v.qcow2" : a);
            what += a + " ";
        }
        auto rq = run(q), rv = run(v);
        EXPECT_EQ(rq.exit_code, rv.exit_code) << what << rq.err << rv.err;
        EXPECT_EQ(rq.err, as_qemu(rv.err)) << what;
    }
    auto bitmaps = [](const std::string& img) {
        auto j = nlohmann::json::parse(run({"qemu-img", "info", "--output=json", img}).out);
        return j["format-specific"]["data"]["bitmaps"];
    };
    EXPECT_EQ(bitmaps("q.qcow2"), bitmaps("v.qcow2"));
    ok({"qemu-img", "check", "v.qcow2"});
    for (const char* b : {"b0", "b1", "b3", "b10"}) EXPECT_EQ(dirty_map("q.qcow2", b), dirty_map("v.qcow2", b)) << b;
    // The messages QEMU words with its own node names name the file here.
    auto v2 = run({vimg(), "bitmap", "--add", "v2v.qcow2", "x"});
    EXPECT_EQ(v2.exit_code, 1);
    EXPECT_NE(v2.err.find("Cannot store dirty bitmaps in qcow2 v2 files"), std::string::npos) << v2.err;
    // An inconsistent (in-use) bitmap can only be removed.
    for (const std::string t : {"q", "v"}) {
        uint64_t ext = 0;
        for (const auto& e : extensions(t + ".qcow2"))
            if (e.type == 0x23852875) ext = e.at + 8;
        ASSERT_NE(ext, 0U);
        const uint64_t dir = load(read_bytes(t + ".qcow2", ext + 16, 8), 0, 8);
        write_bytes(t + ".qcow2", dir + 12, be(3, 4));  // the first bitmap (b0): in use
    }
    for (const Args& s : std::vector<Args>{{"--clear"}, {"--enable"}, {"--disable"}, {"--merge", "b1"}, {"--remove"}}) {
        Args q{"qemu-img", "bitmap"}, v{vimg(), "bitmap"};
        q.insert(q.end(), s.begin(), s.end());
        v.insert(v.end(), s.begin(), s.end());
        q.insert(q.end(), {"q.qcow2", "b0"});
        v.insert(v.end(), {"v.qcow2", "b0"});
        auto rq = run(q), rv = run(v);
        EXPECT_EQ(rq.exit_code, rv.exit_code) << s[0];
        EXPECT_EQ(rq.err, as_qemu(rv.err)) << s[0];
    }
    EXPECT_EQ(bitmaps("q.qcow2"), bitmaps("v.qcow2"));
    ok({"qemu-img", "check", "v.qcow2"});
}

// Persistent bitmaps follow the writes of every vireo-img subcommand as
// QEMU's follow qemu-img's: enabled bitmaps gain the written areas, disabled
// ones stay as they were, a resize resizes them (refused while one is
// inconsistent), a snapshot cannot be applied under them, and an extension
// left by a program without bitmap support is dropped at the first write.
// Twin images written by each tool: info lists the same bitmaps, check is
// clean, the dirty areas qemu-nbd exports are the same.
TEST(ImgInterop, BitmapsFollowWritesLikeQemu) {
    NEED_QEMU();
    if (vireo::test::which("qemu-nbd").empty()) VIREO_SKIP("qemu-nbd not installed");
    TempDir d;
    std::filesystem::current_path(d.path());
    ok({"qemu-img", "create", "-q", "-f", "raw", "src.raw", "8M"});
    qemu_io("src.raw", {"write -P 1 128k 128k", "write -P 2 3M 1M", "write -P 3 7M 64k"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", "8M"});
    ok({"qemu-img", "bitmap", "--add", "base.qcow2", "b0"});
    ok({"qemu-img", "bitmap", "--add", "-g", "128k", "base.qcow2", "b1"});
    ok({"qemu-img", "bitmap", "--add", "-g", "4k", "base.qcow2", "b2"});
    qemu_io("base.qcow2", {"write -P 9 6M 64k"});  // b1 keeps these bits only
    ok({"qemu-img", "bitmap", "--disable", "base.qcow2", "b1"});
    for (const std::string t : {"q", "v"}) {
        std::filesystem::copy_file("base.qcow2", t + ".qcow2");
        ok({"qemu-img", "create", "-q", "-f", "qcow2", "-b", t + ".qcow2", "-F", "qcow2", t + "-ov.qcow2"});
        qemu_io(t + "-ov.qcow2", {"write -P 4 1M 64k", "write -P 5 5M 192k"});
    }
    auto bitmaps = [](const std::string& img) {
        auto j = nlohmann::json::parse(run({"qemu-img", "info", "--output=json", img}).out);
        return j["format-specific"]["data"]["bitmaps"];
    };
    auto expect_twins = [&](const std::string& step) {
        EXPECT_EQ(bitmaps("q.qcow2"), bitmaps("v.qcow2")) << step;
        auto c = run({"qemu-img", "check", "v.qcow2"});
        EXPECT_EQ(c.exit_code, 0) << step << ": " << c.out << c.err;
        for (const char* b : {"b0", "b1", "b2"}) {
            const std::string q = dirty_map("q.qcow2", b);
            EXPECT_NE(q.find("\"data\": false"), std::string::npos) << step << " " << b << ": no dirty area";
            EXPECT_EQ(q, dirty_map("v.qcow2", b)) << step << " " << b;
        }
        ok({"qemu-img", "compare", "q.qcow2", "v.qcow2"});
    };
    // Writes of convert -n (only the data: the target reads as zeroes).
    for (const std::string t : {"q", "v"}) {
        Args a{t == "q" ? "qemu-img" : vimg(), "convert", "-n", "--target-is-zero", "-f", "raw", "-O", "qcow2", "src.raw",
               t + ".qcow2"};
        ok(a);
    }
    expect_twins("convert -n");
    // Writes of commit into the image.
    ok({"qemu-img", "commit", "-q", "q-ov.qcow2"});
    ok({vimg(), "commit", "-q", "v-ov.qcow2"});
    expect_twins("commit");
    // A grow: the bitmaps grow with clear bits; then writes in the new tail.
    ok({"qemu-img", "resize", "-q", "q.qcow2", "12M"});
    ok({vimg(), "resize", "-q", "v.qcow2", "12M"});
    expect_twins("resize");
    ok({"qemu-img", "create", "-q", "-f", "raw", "tail.raw", "12M"});
    qemu_io("tail.raw", {"write -P 6 10M 64k"});
    ok({"qemu-img", "convert", "-n", "--target-is-zero", "-f", "raw", "-O", "qcow2", "tail.raw", "q.qcow2"});
    ok({vimg(), "convert", "-n", "--target-is-zero", "-f", "raw", "-O", "qcow2", "tail.raw", "v.qcow2"});
    expect_twins("write after resize");
    // A snapshot cannot be applied under bitmaps.
    ok({"qemu-img", "snapshot", "-c", "s1", "q.qcow2"});
    ok({vimg(), "snapshot", "-c", "s1", "v.qcow2"});
    for (const std::string t : {"q", "v"}) {
        auto a = run({t == "q" ? "qemu-img" : vimg(), "snapshot", "-a", "s1", t + ".qcow2"});
        EXPECT_EQ(a.exit_code, 1);
        EXPECT_EQ(as_qemu(a.err), "qemu-img: Could not apply snapshot 's1': Device has active dirty bitmaps\n");
    }
    expect_twins("snapshot");

    // An inconsistent bitmap refuses a resize, and is kept as it is.
    for (const std::string t : {"q", "v"}) {
        uint64_t ext = 0;
        for (const auto& e : extensions(t + ".qcow2"))
            if (e.type == 0x23852875) ext = e.at + 8;
        ASSERT_NE(ext, 0U);
        const uint64_t dir = load(read_bytes(t + ".qcow2", ext + 16, 8), 0, 8);
        write_bytes(t + ".qcow2", dir + 12, be(3, 4));  // b0: in use
    }
    auto rv = run({vimg(), "resize", "v.qcow2", "16M"});
    auto rq = run({"qemu-img", "resize", "q.qcow2", "16M"});
    EXPECT_EQ(rq.exit_code, rv.exit_code);
    EXPECT_EQ(rq.err, as_qemu(rv.err));
    qemu_io("q.qcow2", {"write -P 7 0 64k"});
    ok({"qemu-img", "convert", "-n", "--target-is-zero", "-f", "raw", "-O", "qcow2", "tail.raw", "v.qcow2"});
    ok({"qemu-img", "convert", "-n", "--target-is-zero", "-f", "raw", "-O", "qcow2", "tail.raw", "q.qcow2"});
    EXPECT_EQ(bitmaps("q.qcow2"), bitmaps("v.qcow2"));
    ok({"qemu-img", "check", "v.qcow2"});

    // An extension a program without bitmap support left (autoclear bit
    // clear) goes at the first write; its clusters are leaks, as QEMU's.
    for (const std::string t : {"q", "v"}) {
        ok({"qemu-img", "create", "-q", "-f", "qcow2", "s" + t + ".qcow2", "4M"});
        ok({"qemu-img", "bitmap", "--add", "s" + t + ".qcow2", "b0"});
        write_bytes("s" + t + ".qcow2", 88, std::string(8, '\0'));
    }
    qemu_io("sq.qcow2", {"write -P 1 0 64k"});
    ok({"qemu-img", "create", "-q", "-f", "raw", "small.raw", "4M"});
    qemu_io("small.raw", {"write -P 1 0 64k"});
    ok({vimg(), "convert", "-n", "--target-is-zero", "-f", "raw", "-O", "qcow2", "small.raw", "sv.qcow2"});
    EXPECT_EQ(read_bytes("sq.qcow2", 0, 65536), read_bytes("sv.qcow2", 0, 65536));
    auto cq = run({"qemu-img", "check", "--output=json", "sq.qcow2"});
    auto cv = run({"qemu-img", "check", "--output=json", "sv.qcow2"});
    EXPECT_EQ(cq.exit_code, cv.exit_code);
    EXPECT_EQ(nlohmann::json::parse(cq.out)["leaks"], nlohmann::json::parse(cv.out)["leaks"]);
}

namespace {

// A qemu-nbd serving `img` (as qcow2) on a unix socket or 127.0.0.1,
// stopped when this goes.
class QemuNbd {
public:
    QemuNbd(const std::string& img, const std::string& sock, int port, const std::string& export_name, bool read_only) {
        Args a{"qemu-nbd", "-t", "-f", "qcow2"};
        if (read_only) a.push_back("-r");
        if (!export_name.empty()) a.insert(a.end(), {"-x", export_name});
        if (port) a.insert(a.end(), {"-b", "127.0.0.1", "-p", std::to_string(port)});
        else a.insert(a.end(), {"-k", sock});
        a.push_back(img);
        pid_ = ::fork();
        if (pid_ == 0) {
            std::vector<char*> argv;
            for (auto& s : a) argv.push_back(s.data());
            argv.push_back(nullptr);
            ::execvp("qemu-nbd", argv.data());
            ::_exit(127);
        }
        // Ready once it accepts connections.
        for (int i = 0; i < 100; ++i) {
            if (port ? run({"qemu-img", "info", fmt::format("nbd://127.0.0.1:{}/{}", port, export_name)}).exit_code == 0
                     : std::filesystem::exists(sock))
                break;
            ::usleep(50000);
        }
    }
    ~QemuNbd() {
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
    }
    QemuNbd(const QemuNbd&) = delete;
    QemuNbd& operator=(const QemuNbd&) = delete;

private:
    pid_t pid_ = -1;
};

// A TCP port on 127.0.0.1 nothing listens on now.
int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    socklen_t len = sizeof sa;
    (void)::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    ::close(fd);
    return ntohs(sa.sin_port);
}

}  // namespace

// Image names beyond paths, as qemu-img takes them: NBD exports of a real
// qemu-nbd (unix socket and 127.0.0.1, new and old URI syntax; info, map
// with holes from block status, compare, convert from and into an export),
// json: names (nbd, qcow2 over file, dotted keys), file: and --image-opts;
// and the refusals of names that do not work, in qemu-img's words.
TEST(ImgInterop, NbdJsonAndImageOptsNamesLikeQemu) {
    NEED_QEMU();
    if (vireo::test::which("qemu-nbd").empty()) VIREO_SKIP("qemu-nbd not installed");
    TempDir d;
    std::filesystem::current_path(d.path());
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "x.qcow2", "4M"});
    qemu_io("x.qcow2", {"write -P 5 0 64k", "write -P 6 1M 4k", "write -z 2M 64k"});
    std::filesystem::copy_file("x.qcow2", "y.qcow2");
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "w.qcow2", "4M"});
    const std::string sock = (d / "n.sock").string(), wsock = (d / "w.sock").string();
    const int port = free_port();
    QemuNbd unix_export("x.qcow2", sock, 0, "", true);
    QemuNbd tcp_export("y.qcow2", "", port, "exp1", true);
    QemuNbd target("w.qcow2", wsock, 0, "", false);
    const std::string u = "nbd+unix://?socket=" + sock, t = fmt::format("nbd://127.0.0.1:{}/exp1", port);
    const std::vector<Args> cases = {
        {"info", u}, {"info", "--output=json", u}, {"info", "nbd:unix:" + sock}, {"info", t},
        {"info", fmt::format("nbd:127.0.0.1:{}:exportname=exp1", port)}, {"map", "--output=json", u}, {"map", t},
        {"compare", u, t}, {"compare", "-U", u, "x.qcow2"},
        {"info", fmt::format("nbd://127.0.0.1:{}/nope", port)}, {"info", "nbd+unix://?socket=" + sock + ".missing"},
        {"info", fmt::format("nbd://127.0.0.1:{}/x", free_port())}, {"info", "nbd+unix://"}, {"info", "nbd+ssh://x"},
        {"info", "json:{\"driver\":\"nbd\",\"server\":{\"type\":\"unix\",\"path\":\"" + sock + "\"}}"},
        {"info", "-U", "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"x.qcow2\"}}"},
        {"info", "-U", "json:{\"file.filename\":\"x.qcow2\",\"driver\":\"qcow2\"}"},
        {"info", "-U", "json:{\"driver\":\"qcow2\",\"file\":\"x.qcow2\"}"},
        {"info", "-U", "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"x.qcow2\"},\"foo\":\"1\"}"},
        {"info", "-U", "file:x.qcow2"}, {"map", "-U", "--output=json", "file:x.qcow2"},
        {"info", "-U", "--image-opts", "driver=qcow2,file.filename=x.qcow2"},
        {"info", "--image-opts", "driver=nbd,server.type=unix,server.path=" + sock},
        {"map", "--output=json", "--image-opts", "driver=raw,file.driver=nbd,file.server.type=unix,file.server.path=" + sock},
        {"create", "-f", "qcow2", "json:{\"driver\":\"file\",\"filename\":\"j.qcow2\"}", "1M"},
    };
    for (const auto& c : cases) {
        std::string what;
        for (const auto& s : c) what += s + " ";
        expect_same(c, what);
    }
    // Copies out of an export are the same bytes; into one, the same data.
    ok({"qemu-img", "convert", "-O", "raw", u, "q.raw"});
    ok({vimg(), "convert", "-O", "raw", u, "v.raw"});
    EXPECT_TRUE(slurp("q.raw") == slurp("v.raw"));
    EXPECT_EQ(map_json("q.raw"), map_json("v.raw"));
    ok({vimg(), "convert", "-n", "-O", "raw", "-U", "x.qcow2", "nbd+unix://?socket=" + wsock});
    ok({vimg(), "convert", "-O", "raw", "-U", "x.qcow2", "nbd+unix://?socket=" + wsock});
    auto cmp = run({"qemu-img", "compare", "-U", "x.qcow2", "w.qcow2"});
    EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
    // A read-only export refuses writes.
    auto ro = run({vimg(), "convert", "-n", "-O", "raw", "-U", "x.qcow2", u});
    EXPECT_EQ(ro.exit_code, 1);
}
