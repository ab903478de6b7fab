// vireo-img against the oracle: real qemu-img and qemu-io, both directions.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "img_support.hpp"

using vireo::test::run;
using vireo::test::TempDir;
using namespace vireo::test::img;

namespace {

// Raw export through both tools must be byte-identical.
void expect_same_export(const TempDir& d, const std::string& img, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> q{"qemu-img", "convert"}, v{vimg(), "convert"};
    q.insert(q.end(), extra.begin(), extra.end());
    v.insert(v.end(), extra.begin(), extra.end());
    for (auto* a : {&q, &v}) a->insert(a->end(), {"-O", "raw", img});
    q.push_back((d / "q.raw").string());
    v.push_back((d / "v.raw").string());
    ok(q);
    ok(v);
    EXPECT_TRUE(slurp(d / "q.raw") == slurp(d / "v.raw")) << "raw exports of " << img << " differ";
}

void write_random_raw(const std::filesystem::path& p, uint64_t size, unsigned seed) {
    std::mt19937 rng(seed);
    std::string data(size, '\0');
    for (int i = 0; i < 120; ++i) {
        uint64_t len = 512 + rng() % 70000;
        uint64_t off = rng() % (size - len);
        for (uint64_t k = 0; k < len; ++k) data[off + k] = static_cast<char>(k < len / 2 ? (i + 1) : (rng() & 0xff));
    }
    std::ofstream(p, std::ios::binary).write(data.data(), static_cast<long>(data.size()));
}

}  // namespace

// Images qemu-io wrote, with every feature, read identically through vireo.
TEST(ImgInterop, QemuWrittenChainReadsIdentically) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const char* n) { return (d / n).string(); };
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096,refcount_bits=8", p("b0.qcow2"), "32M"});
    qemu_io(p("b0.qcow2"), {"write -P 0x11 0 1M", "write -c -P 0x22 4M 256k", "write -P 0x33 8M 64k"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "-b", "b0.qcow2", "-F", "qcow2", p("b1.qcow2")});
    qemu_io(p("b1.qcow2"), {"write -P 0x44 512k 8k", "write -z 4M 64k", "discard 8M 64k", "write -P 0x45 20M 3k"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", "compression_type=zstd", "-b", "b1.qcow2", "-F", "qcow2", p("b2.qcow2")});
    qemu_io(p("b2.qcow2"), {"write -c -P 0x55 12M 128k", "write -P 0x66 700k 5k", "write -z 0 64k"});
    ok({"qemu-img", "snapshot", "-c", "snap1", p("b2.qcow2")});
    qemu_io(p("b2.qcow2"), {"write -P 0x77 12M 4k", "discard 700k 64k"});
    expect_same_export(d, p("b2.qcow2"));
    expect_same_export(d, p("b2.qcow2"), {"-l", "snap1"});
    expect_same_export(d, p("b1.qcow2"));
    // v2 image with a snapshot
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", p("v2.qcow2"), "8M"});
    qemu_io(p("v2.qcow2"), {"write -P 1 0 100k"});
    ok({"qemu-img", "snapshot", "-c", "s", p("v2.qcow2")});
    qemu_io(p("v2.qcow2"), {"write -P 2 50k 100k"});
    expect_same_export(d, p("v2.qcow2"));
    auto cmp = run({vimg(), "compare", p("v2.qcow2"), p("b2.qcow2")});
    EXPECT_EQ(cmp.exit_code, 1);
    EXPECT_NE(cmp.out.find("Content mismatch at offset"), std::string::npos);
}

// Images vireo-img created and wrote pass qemu-img check and read the same.
TEST(ImgInterop, VireoWrittenImagesPassQemuCheck) {
    NEED_QEMU();
    TempDir d;
    auto src = (d / "src.raw").string();
    write_random_raw(src, 24 << 20, 3);
    const std::vector<std::vector<std::string>> variants = {
        {}, {"-o", "compat=0.10"}, {"-o", "cluster_size=512"}, {"-o", "cluster_size=2M"},
        {"-o", "refcount_bits=1,cluster_size=4096"}, {"-o", "refcount_bits=64"}, {"-o", "extended_l2=on"},
        {"-c"}, {"-c", "-o", "compression_type=zstd"}, {"-o", "lazy_refcounts=on"}, {"-o", "preallocation=metadata"}};
    for (const auto& v : variants) {
        auto out = (d / "t.qcow2").string();
        std::filesystem::remove(out);
        std::vector<std::string> argv{vimg(), "convert", "-O", "qcow2"};
        argv.insert(argv.end(), v.begin(), v.end());
        argv.insert(argv.end(), {src, out});
        ok(argv);
        auto chk = run({"qemu-img", "check", out});
        EXPECT_EQ(chk.exit_code, 0) << "variant " << (v.empty() ? "default" : v.back()) << ": " << chk.out << chk.err;
        auto cmp = run({"qemu-img", "compare", "-f", "raw", "-F", "qcow2", src, out});
        EXPECT_EQ(cmp.exit_code, 0) << "variant " << (v.empty() ? "default" : v.back()) << ": " << cmp.out;
    }
}

// Snapshot, resize, rebase, commit done by vireo-img leave images that
// qemu-img accepts and whose contents are what they should be.
TEST(ImgInterop, VireoImageOperationsPassQemuCheck) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const char* n) { return (d / n).string(); };
    write_random_raw(p("a.raw"), 8 << 20, 5);
    write_random_raw(p("b.raw"), 8 << 20, 6);
    ok({vimg(), "convert", "-O", "qcow2", p("a.raw"), p("base.qcow2")});
    ok({vimg(), "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", p("top.qcow2")});
    // Overwrite the whole overlay with b's data, then snapshot it.
    ok({vimg(), "convert", "-n", "-O", "qcow2", p("b.raw"), p("top.qcow2")});
    ok({vimg(), "snapshot", "-c", "s1", p("top.qcow2")});
    auto list = run({"qemu-img", "snapshot", "-l", p("top.qcow2")});
    EXPECT_NE(list.out.find("s1"), std::string::npos);
    ok({"qemu-img", "check", p("top.qcow2")});
    ok({"qemu-img", "compare", "-F", "raw", p("top.qcow2"), p("b.raw")});
    ok({vimg(), "snapshot", "-a", "s1", p("top.qcow2")});
    ok({vimg(), "snapshot", "-d", "s1", p("top.qcow2")});
    ok({"qemu-img", "check", p("top.qcow2")});
    // commit into the base: base now reads like b
    auto c = run({vimg(), "commit", p("top.qcow2")});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    EXPECT_EQ(c.out, "Image committed.\n");
    ok({"qemu-img", "check", p("base.qcow2")});
    ok({"qemu-img", "compare", "-F", "raw", p("base.qcow2"), p("b.raw")});
    ok({"qemu-img", "check", p("top.qcow2")});
    // safe rebase of top onto a copy of a: top must still read like b
    ok({vimg(), "convert", "-O", "qcow2", p("a.raw"), p("other.qcow2")});
    ok({vimg(), "rebase", "-b", "other.qcow2", "-F", "qcow2", p("top.qcow2")});
    ok({"qemu-img", "check", p("top.qcow2")});
    ok({"qemu-img", "compare", "-F", "raw", p("top.qcow2"), p("b.raw")});
    // resize grow, then qemu-img agrees on size and consistency
    auto r = run({vimg(), "resize", p("top.qcow2"), "+1G"});
    EXPECT_EQ(r.out, "Image resized.\n");
    ok({"qemu-img", "check", p("top.qcow2")});
    auto info = run({"qemu-img", "info", "--output=json", p("top.qcow2")});
    EXPECT_EQ(nlohmann::json::parse(info.out)["virtual-size"], (8ULL << 20) + (1ULL << 30));
}

// info/check JSON and human output agree with qemu-img on the same image.
TEST(ImgInterop, InfoCheckMapOutputMatchesQemu) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const char* n) { return (d / n).string(); };
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("base.qcow2"), "64M"});
    qemu_io(p("base.qcow2"), {"write -P 1 0 1M", "write -P 2 10M 64k"});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", "compression_type=zstd,lazy_refcounts=on", "-b", "base.qcow2",
        "-F", "qcow2", p("top.qcow2")});
    qemu_io(p("top.qcow2"), {"write -P 3 512k 8k", "write -z 10M 64k", "write -c -P 4 20M 64k"});
    ok({"qemu-img", "snapshot", "-c", "snap", p("top.qcow2")});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10,cluster_size=4096", p("v2.qcow2"), "1G"});
    ok({"qemu-img", "create", "-q", "-f", "raw", p("r.raw"), "10M"});
    for (const char* img : {"top.qcow2", "v2.qcow2", "r.raw", "base.qcow2"}) {
        for (const std::vector<std::string>& args :
             std::vector<std::vector<std::string>>{{"info"}, {"info", "--output=json"}, {"info", "--backing-chain"},
                                                   {"info", "--backing-chain", "--output=json"}, {"check"},
                                                   {"check", "--output=json"}, {"map", "--output=json"}}) {
            std::vector<std::string> q{"qemu-img"}, v{vimg()};
            q.insert(q.end(), args.begin(), args.end());
            v.insert(v.end(), args.begin(), args.end());
            q.push_back(p(img));
            v.push_back(p(img));
            auto rq = run(q), rv = run(v);
            std::string what = std::string(img) + " " + args[0] + (args.size() > 1 ? " " + args.back() : "");
            EXPECT_EQ(rq.exit_code, rv.exit_code) << what << "\n" << rv.err;
            if (args.back() == "--output=json" && args[0] != "map" && !rq.out.empty() && !rv.out.empty()) {
                EXPECT_EQ(nlohmann::json::parse(rq.out), nlohmann::json::parse(rv.out)) << what;
            }
            EXPECT_EQ(rq.out, rv.out) << what;
        }
    }
    // map (human) on an image without compressed clusters
    auto rq = run({"qemu-img", "map", p("base.qcow2")}), rv = run({vimg(), "map", p("base.qcow2")});
    EXPECT_EQ(rq.out, rv.out);
    // measure
    rq = run({"qemu-img", "measure", "-O", "qcow2", p("top.qcow2")});
    rv = run({vimg(), "measure", "-O", "qcow2", p("top.qcow2")});
    EXPECT_EQ(rq.out, rv.out);
    rq = run({"qemu-img", "measure", "--size", "10G", "-O", "qcow2", "-o", "cluster_size=4096"});
    rv = run({vimg(), "measure", "--size", "10G", "-O", "qcow2", "-o", "cluster_size=4096"});
    EXPECT_EQ(rq.out, rv.out);
}

// vireo-img create produces the same bytes and the same message as qemu-img.
TEST(ImgInterop, CreateMatchesQemu) {
    NEED_QEMU();
    TempDir d;
    for (const std::vector<std::string>& o : std::vector<std::vector<std::string>>{
             {"-f", "qcow2"}, {"-f", "qcow2", "-o", "compat=0.10"}, {"-f", "qcow2", "-o", "compression_type=zstd"},
             {"-f", "qcow2", "-o", "lazy_refcounts=on,refcount_bits=64"}, {"-f", "raw"}}) {
        std::vector<std::string> q{"qemu-img", "create"}, v{vimg(), "create"};
        q.insert(q.end(), o.begin(), o.end());
        v.insert(v.end(), o.begin(), o.end());
        q.insert(q.end(), {"x.img", "100M"});
        v.insert(v.end(), {"x.img", "100M"});
        std::filesystem::current_path(d.path());
        auto rq = run(q);
        auto qbytes = slurp(d / "x.img");
        auto rv = run(v);
        auto vbytes = slurp(d / "x.img");
        EXPECT_EQ(rq.out, rv.out);
        EXPECT_TRUE(qbytes == vbytes) << "created images differ for " << o.back();
    }
}

// Deliberately damaged images: same verdict class and exit code as qemu-img.
TEST(ImgInterop, CorruptedImagesGetQemuVerdict) {
    NEED_QEMU();
    TempDir d;
    struct Patch {
        const char* name;
        uint64_t off;          // absolute, or relative to the first L2 table
        bool in_l2;
        std::string bytes;
        uint64_t grow = 0;     // extend the file first
    };
    auto be16 = [](uint16_t v) { return std::string{static_cast<char>(v >> 8), static_cast<char>(v)}; };
    auto be64 = [](uint64_t v) {
        std::string s(8, '\0');
        for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (56 - 8 * i));
        return s;
    };
    std::vector<Patch> patches = {
        {"clean", 0, false, ""},
        {"leak", 0x20000 + 2 * 9, false, be16(1), 0x10000},  // refcount on an unused cluster
        {"refcount-zero", 0x20000 + 2 * 5, false, be16(0)},
        {"refcount-high", 0x20000 + 2 * 6, false, be16(2)},
        {"l2-unaligned", 0, true, be64(0x8000000000050200ULL)},
        {"l1-past-eof", 0x30000, false, be64(0x8000000100000000ULL)},
        {"reftable-past-eof", 48, false, be64(0x7000000)},
        {"unknown-incompat", 72, false, be64(1ULL << 40)},
        {"bad-magic", 0, false, "XXXX"},
    };
    for (const auto& pt : patches) {
        auto img = (d / (std::string(pt.name) + ".qcow2")).string();
        ok({"qemu-img", "create", "-q", "-f", "qcow2", img, "16M"});
        qemu_io(img, {"write -P 1 0 256k"});
        if (pt.grow) std::filesystem::resize_file(img, std::filesystem::file_size(img) + pt.grow);
        if (!pt.bytes.empty()) {
            std::fstream f(img, std::ios::in | std::ios::out | std::ios::binary);
            uint64_t off = pt.off;
            if (pt.in_l2) {
                char b[8];
                f.seekg(0x30000);
                f.read(b, 8);
                uint64_t l2 = 0;
                for (int i = 0; i < 8; ++i) l2 = (l2 << 8) | static_cast<unsigned char>(b[i]);
                off += l2 & 0x00fffffffffffe00ULL;
            }
            f.seekp(static_cast<long>(off));
            f.write(pt.bytes.data(), static_cast<long>(pt.bytes.size()));
        }
        auto rq = run({"qemu-img", "check", img});
        auto rv = run({vimg(), "check", img});
        EXPECT_EQ(rq.exit_code, rv.exit_code) << pt.name << "\nqemu: " << rq.out << rq.err << "\nvireo: " << rv.out << rv.err;
        EXPECT_EQ(rq.out, rv.out) << pt.name;
        auto jq = run({"qemu-img", "check", "--output=json", img});
        auto jv = run({vimg(), "check", "--output=json", img});
        EXPECT_EQ(jq.exit_code, jv.exit_code) << pt.name;
        if (jq.exit_code != 1 && !jq.out.empty() && !jv.out.empty()) {
            EXPECT_EQ(nlohmann::json::parse(jq.out), nlohmann::json::parse(jv.out)) << pt.name;
        }
    }
    // Repairing leaks with vireo leaves an image qemu-img finds clean.
    auto leak = (d / "leak.qcow2").string();
    auto rep = run({vimg(), "check", "-r", "leaks", leak});
    EXPECT_EQ(rep.exit_code, 0) << rep.out << rep.err;
    EXPECT_NE(rep.out.find("The following inconsistencies were found and repaired"), std::string::npos);
    ok({"qemu-img", "check", leak});
    auto hi = (d / "refcount-high.qcow2").string();
    EXPECT_EQ(run({vimg(), "check", "-r", "all", hi}).exit_code, 0);
    ok({"qemu-img", "check", hi});
    // raw: checks not supported
    ok({"qemu-img", "create", "-q", "-f", "raw", (d / "r.raw").string(), "1M"});
    EXPECT_EQ(run({vimg(), "check", (d / "r.raw").string()}).exit_code, 63);
    EXPECT_EQ(run({"qemu-img", "check", (d / "r.raw").string()}).exit_code, 63);
}

// Persistent bitmaps follow vireo's writes (never left stale: QEMU finds
// them consistent, check is clean); external data files are read and written.
TEST(ImgInterop, BitmapsAndExternalDataFiles) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const char* n) { return (d / n).string(); };
    write_random_raw(p("src.raw"), 8 << 20, 9);
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("bm.qcow2"), "8M"});
    qemu_io(p("bm.qcow2"), {"write -P 1 0 1M"});
    ok({"qemu-img", "bitmap", "--add", p("bm.qcow2"), "b0"});
    qemu_io(p("bm.qcow2"), {"write -P 2 2M 1M"});
    auto chk = run({vimg(), "check", p("bm.qcow2")});
    EXPECT_EQ(chk.exit_code, 0) << chk.out << chk.err;  // bitmap clusters are accounted for
    ok({vimg(), "convert", "-n", "-O", "qcow2", p("src.raw"), p("bm.qcow2")});
    ok({"qemu-img", "check", p("bm.qcow2")});
    ok({"qemu-img", "compare", "-F", "raw", p("bm.qcow2"), p("src.raw")});
    auto info = nlohmann::json::parse(run({"qemu-img", "info", "--output=json", p("bm.qcow2")}).out);
    EXPECT_EQ(info["format-specific"]["data"]["bitmaps"][0]["flags"], nlohmann::json::array({"auto"})) << info.dump();

    // External data file written by vireo, read by qemu; and the reverse.
    ok({vimg(), "create", "-q", "-f", "qcow2", "-o", "data_file=" + p("df.data"), p("df.qcow2"), "8M"});
    ok({vimg(), "convert", "-n", "-O", "qcow2", p("src.raw"), p("df.qcow2")});
    ok({"qemu-img", "check", p("df.qcow2")});
    ok({"qemu-img", "compare", "-F", "raw", p("df.qcow2"), p("src.raw")});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file=" + p("dq.data") + ",data_file_raw=on", p("dq.qcow2"), "8M"});
    qemu_io(p("dq.qcow2"), {"write -P 7 1M 3M"});
    expect_same_export(d, p("dq.qcow2"));
}

// dd, amend, compare -s and exit codes.
TEST(ImgInterop, DdAmendCompare) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const char* n) { return (d / n).string(); };
    write_random_raw(p("src.raw"), 4 << 20, 11);
    ok({vimg(), "convert", "-O", "qcow2", p("src.raw"), p("a.qcow2")});
    ok({vimg(), "dd", "-O", "raw", "bs=64k", "skip=2", "count=10", "if=" + p("a.qcow2"), "of=" + p("v.raw")});
    ok({"qemu-img", "dd", "-O", "raw", "bs=64k", "skip=2", "count=10", "if=" + p("a.qcow2"), "of=" + p("q.raw")});
    EXPECT_TRUE(slurp(d / "v.raw") == slurp(d / "q.raw"));
    // amend: v3 -> v2 -> lazy refcounts back on v3
    ok({vimg(), "amend", "-o", "compat=0.10", p("a.qcow2")});
    ok({"qemu-img", "check", p("a.qcow2")});
    auto info = run({"qemu-img", "info", "--output=json", p("a.qcow2")});
    EXPECT_EQ(nlohmann::json::parse(info.out)["format-specific"]["data"]["compat"], "0.10");
    ok({vimg(), "amend", "-o", "compat=1.1,lazy_refcounts=on", p("a.qcow2")});
    info = run({"qemu-img", "info", "--output=json", p("a.qcow2")});
    EXPECT_EQ(nlohmann::json::parse(info.out)["format-specific"]["data"]["lazy-refcounts"], true);
    ok({"qemu-img", "compare", "-F", "raw", p("a.qcow2"), p("src.raw")});
    // compare: identical, mismatch, strict size mismatch, missing file
    auto r = run({vimg(), "compare", p("a.qcow2"), p("src.raw")});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, "Images are identical.\n");
    ok({"qemu-img", "create", "-q", "-f", "raw", p("big.raw"), "5M"});
    auto rq = run({"qemu-img", "compare", "-s", p("src.raw"), p("big.raw")});
    auto rv = run({vimg(), "compare", "-s", p("src.raw"), p("big.raw")});
    EXPECT_EQ(rq.exit_code, rv.exit_code);
    EXPECT_EQ(rq.out, rv.out);
    rq = run({"qemu-img", "compare", p("src.raw"), p("big.raw")});
    rv = run({vimg(), "compare", p("src.raw"), p("big.raw")});
    EXPECT_EQ(rq.exit_code, rv.exit_code);
    EXPECT_EQ(rq.out, rv.out);
    EXPECT_EQ(run({vimg(), "compare", p("src.raw"), p("nope.raw")}).exit_code, 2);
}
