// vireo-img options checked against qemu-img's behaviour: bitmaps in
// `info`, convert's -m/-W/-r/--salvage/--bitmaps/--skip-broken-bitmaps, bench's -i/--no-drain.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include <nlohmann/json.hpp>

#include "img_support.hpp"
#include "storage/qcow2.hpp"

using vireo::test::run;
using vireo::test::TempDir;
using namespace vireo::test::img;

namespace {

// Both tools give the same exit code for the same arguments (after the
// program name); returns vireo-img's result.
vireo::test::CommandResult same_exit(const std::vector<std::string>& args) {
    std::vector<std::string> q{"qemu-img"}, v{vimg()};
    q.insert(q.end(), args.begin(), args.end());
    v.insert(v.end(), args.begin(), args.end());
    auto rq = run(q);
    auto rv = run(v);
    EXPECT_EQ(rq.exit_code, rv.exit_code) << "qemu-img " << args[0] << ": " << rq.err << "\nvireo-img: " << rv.err;
    return rv;
}

// Set the flags of the first bitmap directory entry (found through the
// bitmaps header extension).
void set_first_bitmap_flags(const std::string& path, uint32_t flags) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    std::string h(65536, '\0');
    f.read(h.data(), static_cast<std::streamsize>(h.size()));
    auto be32 = [&](size_t o) {
        return (uint32_t{static_cast<unsigned char>(h[o])} << 24) | (uint32_t{static_cast<unsigned char>(h[o + 1])} << 16) |
               (uint32_t{static_cast<unsigned char>(h[o + 2])} << 8) | uint32_t{static_cast<unsigned char>(h[o + 3])};
    };
    auto be64 = [&](size_t o) { return (uint64_t{be32(o)} << 32) | be32(o + 4); };
    size_t off = be32(100);
    f.clear();
    while (off + 8 <= h.size()) {
        uint32_t type = be32(off), len = be32(off + 4);
        ASSERT_NE(type, 0U) << "no bitmaps extension in " << path;
        if (type == 0x23852875) {
            uint64_t dir = be64(off + 8 + 16);
            char b[4] = {static_cast<char>(flags >> 24), static_cast<char>(flags >> 16), static_cast<char>(flags >> 8),
                         static_cast<char>(flags)};
            f.seekp(static_cast<std::streamoff>(dir + 12));
            f.write(b, 4);
            return;
        }
        off += 8 + ((len + 7) & ~7U);
    }
}

}  // namespace

// `info` lists persistent bitmaps (name, granularity, flags) exactly as
// qemu-img does, for bitmaps QEMU made, including one left in use.
TEST(ImgOptions, InfoListsBitmapsLikeQemu) {
    NEED_QEMU();
    TempDir d;
    std::string img = (d / "bm.qcow2").string();
    ok({"qemu-img", "create", "-q", "-f", "qcow2", img, "64M"});
    ok({"qemu-img", "bitmap", "--add", img, "b0"});
    ok({"qemu-img", "bitmap", "--add", "-g", "128k", img, "wide"});
    ok({"qemu-img", "bitmap", "--add", "--disable", img, "off"});
    for (int pass = 0; pass < 2; ++pass) {
        for (std::string fmt : {"human", "json"}) {
            auto q = run({"qemu-img", "info", "--output=" + fmt, img});
            auto v = run({vimg(), "info", "--output=" + fmt, img});
            ASSERT_EQ(q.exit_code, 0) << q.err;
            EXPECT_EQ(v.exit_code, 0) << v.err;
            EXPECT_EQ(v.out, q.out) << "pass " << pass << " " << fmt;
        }
        if (pass == 0) set_first_bitmap_flags(img, 3);  // in-use + auto
    }
    auto j = nlohmann::json::parse(run({vimg(), "info", "--output=json", img}).out);
    auto& bms = j["format-specific"]["data"]["bitmaps"];
    ASSERT_EQ(bms.size(), 3U);
    EXPECT_EQ(bms[0]["flags"], nlohmann::json({"in-use", "auto"}));
    EXPECT_EQ(bms[1]["granularity"], 131072);
}

// convert -m (parallel requests), -W (out-of-order writes), -r (rate
// limit): same validation as qemu-img, and the copies are exact.
TEST(ImgOptions, ConvertParallelismOrderAndRateLimit) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const char* n) { return (d / n).string(); };
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("src.qcow2"), "8M"});
    qemu_io(p("src.qcow2"), {"write -P 3 0 3M", "write -P 9 5M 1M"});
    for (const char* bad : {"0", "17", "x"}) {
        auto r = same_exit({"convert", "-m", bad, "-O", "qcow2", p("src.qcow2"), p("bad.qcow2")});
        EXPECT_NE(r.err.find("Invalid number of coroutines"), std::string::npos) << r.err;
    }
    auto r = same_exit({"convert", "-r", "x", "-O", "qcow2", p("src.qcow2"), p("bad.qcow2")});
    EXPECT_NE(r.err.find("Invalid rate limit"), std::string::npos) << r.err;
    for (const auto& args : std::vector<std::vector<std::string>>{{"-m", "1"}, {"-m", "16", "-W"}, {"-W", "-c"}}) {
        std::vector<std::string> v{vimg(), "convert", "-O", "qcow2"};
        v.insert(v.end(), args.begin(), args.end());
        v.push_back(p("src.qcow2"));
        v.push_back(p("out.qcow2"));
        ok(v);
        ok({"qemu-img", "check", p("out.qcow2")});
        ok({"qemu-img", "compare", p("src.qcow2"), p("out.qcow2")});
    }
    // 4 MiB of data at 1 MiB/s cannot take less than about 4 seconds.
    auto t0 = std::chrono::steady_clock::now();
    ok({vimg(), "convert", "-r", "1M", "-O", "raw", p("src.qcow2"), p("slow.raw")});
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_GE(secs, 3.5);
    ok({"qemu-img", "compare", "-F", "raw", p("src.qcow2"), p("slow.raw")});
}

// --salvage: an unreadable (corrupt compressed) cluster fails the copy, or
// with --salvage is copied as zeroes, as in qemu-img.
TEST(ImgOptions, ConvertSalvage) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const char* n) { return (d / n).string(); };
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("sv.qcow2"), "1M"});
    qemu_io(p("sv.qcow2"), {"write -P 0x11 0 256k"});
    auto before = std::filesystem::file_size(p("sv.qcow2"));
    qemu_io(p("sv.qcow2"), {"write -c -P 0x55 256k 64k"});
    {
        std::fstream f(p("sv.qcow2"), std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(before + 16));
        std::string junk(64, '\xff');
        f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    auto r = same_exit({"convert", "-O", "raw", p("sv.qcow2"), p("fail.raw")});
    EXPECT_EQ(r.exit_code, 1);
    ok({"qemu-img", "convert", "--salvage", "-O", "raw", p("sv.qcow2"), p("q.raw")});
    auto v = run({vimg(), "convert", "--salvage", "-O", "raw", p("sv.qcow2"), p("v.raw")});
    EXPECT_EQ(v.exit_code, 0) << v.err;
    EXPECT_NE(v.err.find("warning: error while reading offset 262144"), std::string::npos) << v.err;
    EXPECT_TRUE(slurp(d / "q.raw") == slurp(d / "v.raw"));
}

namespace {

// The persistent bitmaps of a qcow2 image read through our engine.
std::vector<vireo::storage::qcow2::Bitmap> bitmaps_of(const std::string& path) {
    auto img = vireo::storage::open_image(path);
    EXPECT_TRUE(img.has_value()) << path << ": " << img.error().message;
    if (!img) return {};
    auto* q = vireo::storage::qcow2_cast(img->get());
    EXPECT_NE(q, nullptr);
    if (!q) return {};
    auto b = q->read_bitmaps();
    EXPECT_TRUE(b.has_value()) << path << ": " << b.error().message;
    return b ? *b : std::vector<vireo::storage::qcow2::Bitmap>{};
}

// The set bits of a bitmap, as indices.
std::vector<uint64_t> set_bits(const vireo::storage::qcow2::Bitmap& b) {
    std::vector<uint64_t> out;
    for (uint64_t i = 0; i < b.bits.size() * 8; ++i)
        if (b.bits[i / 8] & (1U << (i % 8))) out.push_back(i);
    return out;
}

std::vector<uint64_t> range(uint64_t from, uint64_t n) {
    std::vector<uint64_t> v;
    for (uint64_t i = 0; i < n; ++i) v.push_back(from + i);
    return v;
}

}  // namespace

// --bitmaps copies persistent bitmaps as qemu-img 7.2 does: same bitmaps
// (names, granularity, flags) and the same dirty bits on the target, which
// qemu-img checks clean and QEMU itself reads back; inconsistent bitmaps
// stop the copy before the target is made, or are skipped with
// --skip-broken-bitmaps; the same refusals and exit codes as qemu-img.
TEST(ImgOptions, ConvertBitmaps) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const char* n) { return (d / n).string(); };
    const std::string src = p("src.qcow2");
    ok({"qemu-img", "create", "-q", "-f", "qcow2", src, "64M"});
    ok({"qemu-img", "bitmap", "--add", src, "b1"});
    ok({"qemu-img", "bitmap", "--add", "-g", "512k", "--disable", src, "b2"});
    ok({"qemu-img", "bitmap", "--add", "-g", "1M", src, "clean"});
    ok({"qemu-img", "bitmap", "--clear", src, "clean"});
    qemu_io(src, {"write -P 1 1M 64k", "write -P 2 40M 3M"});
    ok({"qemu-img", "bitmap", "--enable", src, "b2"});
    ok({"qemu-img", "bitmap", "--clear", src, "clean"});
    qemu_io(src, {"write -P 3 60M 64k"});

    // Our reader sees what QEMU wrote: b1 tracked everything, b2 and
    // `clean` (cleared after the second write) only the last write.
    auto orig = bitmaps_of(src);
    ASSERT_EQ(orig.size(), 3U);
    std::vector<uint64_t> b1_bits = range(16, 1), more = range(640, 48);
    b1_bits.insert(b1_bits.end(), more.begin(), more.end());
    b1_bits.push_back(960);
    EXPECT_EQ(set_bits(orig[0]), b1_bits);
    EXPECT_EQ(set_bits(orig[1]), range(120, 1));
    EXPECT_EQ(set_bits(orig[2]), range(60, 1));

    // Refusals, as qemu-img.
    EXPECT_EQ(same_exit({"convert", "--bitmaps", "-O", "raw", src, p("a.raw")}).exit_code, 1);
    auto r = same_exit({"convert", "--bitmaps", "-O", "qcow2", src, src, p("two.qcow2")});
    EXPECT_NE(r.err.find("Copying bitmaps only possible with single source"), std::string::npos) << r.err;
    r = same_exit({"convert", "--skip-broken-bitmaps", "-O", "qcow2", src, p("skip.qcow2")});
    EXPECT_NE(r.err.find("requires --bitmaps"), std::string::npos) << r.err;
    r = same_exit({"convert", "--bitmaps", "-f", "raw", "-O", "qcow2", src, p("raw-src.qcow2")});
    EXPECT_NE(r.err.find("Source lacks bitmap support"), std::string::npos) << r.err;
    r = same_exit({"convert", "--bitmaps", "-O", "qcow2", "-o", "compat=0.10", src, p("v2.qcow2")});
    EXPECT_NE(r.err.find("Format driver 'qcow2' does not support bitmaps"), std::string::npos) << r.err;
    // convert -n onto an image that already has a bitmap of that name.
    for (const char* t : {"taken-q.qcow2", "taken-v.qcow2"}) {
        ok({"qemu-img", "create", "-q", "-f", "qcow2", p(t), "64M"});
        ok({"qemu-img", "bitmap", "--add", p(t), "b2"});
    }
    auto rq = run({"qemu-img", "convert", "--bitmaps", "-n", "-O", "qcow2", src, p("taken-q.qcow2")});
    r = run({vimg(), "convert", "--bitmaps", "-n", "-O", "qcow2", src, p("taken-v.qcow2")});
    EXPECT_EQ(r.exit_code, rq.exit_code);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("Failed to create bitmap b2: Bitmap already exists: b2"), std::string::npos) << r.err;
    EXPECT_EQ(run({"qemu-img", "check", p("taken-v.qcow2")}).exit_code, 0);

    ok({"qemu-img", "convert", "--bitmaps", "-O", "qcow2", src, p("q.qcow2")});
    auto info = [&](const std::string& img) {
        auto j = nlohmann::json::parse(run({"qemu-img", "info", "--output=json", img}).out);
        return j["format-specific"]["data"]["bitmaps"];
    };
    const auto want_bits = bitmaps_of(p("q.qcow2"));
    ASSERT_EQ(want_bits.size(), 3U);
    // Default layout, small clusters (other table geometry), compressed.
    for (const auto& extra : std::vector<std::vector<std::string>>{{}, {"-o", "cluster_size=4096"}, {"-c"}}) {
        std::vector<std::string> argv{vimg(), "convert", "--bitmaps", "-O", "qcow2"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.push_back(src);
        argv.push_back(p("v.qcow2"));
        std::filesystem::remove(p("v.qcow2"));
        ok(argv);
        auto chk = run({"qemu-img", "check", p("v.qcow2")});
        EXPECT_EQ(chk.exit_code, 0) << chk.out << chk.err;
        EXPECT_NE(chk.out.find("No errors were found"), std::string::npos) << chk.out;
        ok({"qemu-img", "compare", src, p("v.qcow2")});
        EXPECT_EQ(info(p("v.qcow2")), info(p("q.qcow2")));
        auto got = bitmaps_of(p("v.qcow2"));
        ASSERT_EQ(got.size(), want_bits.size());
        for (size_t i = 0; i < got.size(); ++i) {
            EXPECT_EQ(got[i].name, want_bits[i].name);
            EXPECT_EQ(got[i].granularity_bits, want_bits[i].granularity_bits);
            EXPECT_EQ(got[i].auto_enabled, want_bits[i].auto_enabled);
            EXPECT_TRUE(got[i].bits == want_bits[i].bits) << got[i].name;
        }
    }
    // QEMU reads our b1 back: merged into a bitmap of a fresh image it
    // has the same dirty bits.
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("m.qcow2"), "64M"});
    ok({"qemu-img", "bitmap", "--add", p("m.qcow2"), "m"});
    ok({"qemu-img", "bitmap", "--merge", "b1", "-b", p("v.qcow2"), "-F", "qcow2", p("m.qcow2"), "m"});
    auto merged = bitmaps_of(p("m.qcow2"));
    ASSERT_EQ(merged.size(), 1U);
    EXPECT_EQ(set_bits(merged[0]), b1_bits);

    // An inconsistent bitmap stops the copy before the target exists ...
    std::filesystem::copy_file(src, p("bad.qcow2"));
    set_first_bitmap_flags(p("bad.qcow2"), 3);  // in-use + auto
    r = same_exit({"convert", "--bitmaps", "-O", "qcow2", p("bad.qcow2"), p("bad-out.qcow2")});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("Cannot copy inconsistent bitmap 'b1'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("Try --skip-broken-bitmaps"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(p("bad-out.qcow2")));
    // ... or is left out with a warning.
    ok({"qemu-img", "convert", "--bitmaps", "--skip-broken-bitmaps", "-O", "qcow2", p("bad.qcow2"), p("bq.qcow2")});
    r = run({vimg(), "convert", "--bitmaps", "--skip-broken-bitmaps", "-O", "qcow2", p("bad.qcow2"), p("bv.qcow2")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("warning: Skipping inconsistent bitmap 'b1'"), std::string::npos) << r.err;
    EXPECT_EQ(info(p("bv.qcow2")), info(p("bq.qcow2")));
    EXPECT_EQ(info(p("bv.qcow2")).size(), 2U);
    EXPECT_EQ(run({"qemu-img", "check", p("bv.qcow2")}).exit_code, 0);
}

// bench -i / -n and --flush-interval / --no-drain: validated as qemu-img
// validates them; draining and non-draining write runs leave a clean image.
TEST(ImgOptions, BenchAioAndDrain) {
    NEED_QEMU();
    TempDir d;
    std::string img = (d / "b.qcow2").string();
    ok({"qemu-img", "create", "-q", "-f", "qcow2", img, "16M"});
    EXPECT_EQ(same_exit({"bench", "-c", "100", "-i", "threads", img}).exit_code, 0);
    EXPECT_EQ(same_exit({"bench", "-c", "100", "-i", "bogus", img}).exit_code, 1);
    EXPECT_EQ(same_exit({"bench", "-c", "100", "-i", "native", img}).exit_code, 1);  // needs cache=none
    EXPECT_EQ(same_exit({"bench", "-c", "100", "-n", img}).exit_code, 1);
    EXPECT_EQ(same_exit({"bench", "-c", "100", "--flush-interval=64", img}).exit_code, 1);  // reads only
    EXPECT_EQ(same_exit({"bench", "-c", "100", "-w", "--flush-interval=4", img}).exit_code, 1);  // < depth
    EXPECT_EQ(same_exit({"bench", "-c", "100", "--no-drain", img}).exit_code, 0);
    // aio=native with O_DIRECT is valid in qemu-img but not implemented here:
    // refused, never silently run with threads.
    auto r = run({vimg(), "bench", "-c", "100", "-t", "none", "-i", "native", img});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("aio=native is not supported"), std::string::npos) << r.err;
    for (bool drain : {true, false}) {
        std::vector<std::string> v{vimg(), "bench", "-w", "-c", "2000", "-d", "8", "--flush-interval=16", "-S", "68k", img};
        if (!drain) v.push_back("--no-drain");
        auto b = run(v);
        EXPECT_EQ(b.exit_code, 0) << b.err;
        EXPECT_NE(b.out.find("Sending flush every 16 requests"), std::string::npos) << b.out;
        ok({"qemu-img", "check", img});
    }
}

// amend: every qcow2 option qemu-img 7.2 amends (compat both ways,
// refcount_bits, lazy_refcounts, size, data_file, data_file_raw) leaves an
// image qemu-img checks clean, with the same contents and the same `info`
// as qemu-img's own amend; what qemu-img refuses is refused the same way.
TEST(ImgOptions, AmendLikeQemu) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const std::string& n) { return (d / n).string(); };
    ok({"qemu-img", "create", "-q", "-f", "qcow2", p("base.qcow2"), "8M"});
    qemu_io(p("base.qcow2"), {"write -P 1 0 1M", "write -P 2 3M 64k"});
    ok({"qemu-img", "snapshot", "-c", "s1", p("base.qcow2")});
    qemu_io(p("base.qcow2"), {"write -P 3 0 64k", "write -z 5M 1M"});
    auto info_without_size = [&](const std::string& img) {
        auto j = nlohmann::json::parse(run({"qemu-img", "info", "--output=json", img}).out);
        j.erase("actual-size");
        j.erase("filename");
        return j;
    };
    const std::vector<std::string> cases = {
        "refcount_bits=8", "refcount_bits=64", "refcount_bits=1", "refcount_bits=3", "compat=0.10",
        "compat=0.10,lazy_refcounts=on", "compat=0.10,refcount_bits=8", "lazy_refcounts=on", "size=16M", "size=4M",
        "compat=2", "compression_type=zstd", "data_file_raw=on", "data_file=x.data", "backing_file=b.qcow2", "foo=1"};
    for (const auto& o : cases) {
        std::filesystem::copy_file(p("base.qcow2"), p("q.qcow2"), std::filesystem::copy_options::overwrite_existing);
        std::filesystem::copy_file(p("base.qcow2"), p("v.qcow2"), std::filesystem::copy_options::overwrite_existing);
        auto rq = run({"qemu-img", "amend", "-o", o, p("q.qcow2")});
        auto rv = run({vimg(), "amend", "-o", o, p("v.qcow2")});
        EXPECT_EQ(rq.exit_code, rv.exit_code) << o << ": " << rq.err << " / " << rv.err;
        if (rq.exit_code != 0) {
            EXPECT_EQ(rv.err.substr(rv.err.find(':')), rq.err.substr(rq.err.find(':'))) << o;
            continue;
        }
        ok({"qemu-img", "check", p("v.qcow2")});
        ok({"qemu-img", "compare", p("q.qcow2"), p("v.qcow2")});
        EXPECT_EQ(info_without_size(p("v.qcow2")), info_without_size(p("q.qcow2"))) << o;
    }
    // v2 -> v3 round trip and an image with an external raw data file.
    ok({vimg(), "amend", "-o", "compat=0.10", p("v.qcow2")});
    ok({vimg(), "amend", "-o", "compat=1.1,lazy_refcounts=on,refcount_bits=32", p("v.qcow2")});
    ok({"qemu-img", "check", p("v.qcow2")});
    ok({"qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file=" + p("d1.data") + ",data_file_raw=on", p("df.qcow2"), "4M"});
    qemu_io(p("df.qcow2"), {"write -P 5 0 1M"});
    std::filesystem::copy_file(p("d1.data"), p("d2.data"));
    ok({vimg(), "amend", "-o", "data_file=" + p("d2.data") + ",data_file_raw=off", p("df.qcow2")});
    auto j = nlohmann::json::parse(run({"qemu-img", "info", "--output=json", p("df.qcow2")}).out);
    EXPECT_EQ(j["format-specific"]["data"]["data-file"], p("d2.data"));
    EXPECT_EQ(j["format-specific"]["data"]["data-file-raw"], false);
    ok({"qemu-img", "check", p("df.qcow2")});
}
