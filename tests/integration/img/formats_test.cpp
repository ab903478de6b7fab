// Image formats beyond raw and qcow2 against the oracle, both ways: LUKS
// and qcow2+LUKS (secrets from files), legacy qcow2 AES, vmdk's
// subformats, and vpc/vhdx/vdi read for conversion. Real qemu-img and
// qemu-io 7.2 make, read and check the images.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "img_support.hpp"

using vireo::test::run;
using vireo::test::TempDir;
using namespace vireo::test::img;

namespace {

using Args = std::vector<std::string>;

Args cat(Args a, const Args& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// A raw image with data in some places, holes in others, and a tail that
// is not a whole cluster.
void write_sample(const std::filesystem::path& p, uint64_t size, unsigned seed) {
    std::mt19937 rng(seed);
    std::string data(size, '\0');
    for (int i = 0; i < 40; ++i) {
        uint64_t len = 512 + rng() % 150000;
        uint64_t off = rng() % (size - len);
        for (uint64_t k = 0; k < len; ++k) data[off + k] = static_cast<char>(k % 3 ? (rng() & 0xff) : i + 1);
    }
    std::memcpy(data.data() + size - 7, "THE-END", 7);
    std::ofstream(p, std::ios::binary).write(data.data(), static_cast<long>(data.size()));
}

// qemu-img/qemu-io making a LUKS key slot: QEMU times PBKDF2 with
// getrusage and now and then fails with "Unable to get accurate CPU
// usage" (its measurement saw no CPU time); that run is repeated.
void ok_qemu_keyslot(const Args& argv) {
    for (int attempt = 0;; ++attempt) {
        auto r = run(argv);
        if (r.exit_code == 0) return;
        if (attempt < 4 && r.err.find("Unable to get accurate CPU usage") != std::string::npos) continue;
        ASSERT_EQ(r.exit_code, 0) << argv[0] << " " << argv[1] << ": " << r.err << r.out;
    }
}

// stderr without the program name ("qemu-img: " / "vireo-img: ").
std::string message(const std::string& err) {
    auto c = err.find(": ");
    return c == std::string::npos ? err : err.substr(c + 2);
}

// The same command through both tools: same exit code and stdout.
void same_output(const Args& args, const std::string& what) {
    auto rq = run(cat({"qemu-img"}, args)), rv = run(cat({vimg()}, args));
    EXPECT_EQ(rq.exit_code, rv.exit_code) << what << ": " << rv.err << rq.err;
    EXPECT_EQ(rq.out, rv.out) << what;
}

struct Secrets {
    std::string obj, obj2, wrong;
};

// Secret objects read from files (so no passphrase is on a command line).
Secrets make_secrets(const TempDir& d) {
    std::ofstream(d / "key") << "correct horse";
    std::ofstream(d / "key2") << "battery staple";
    std::ofstream(d / "bad") << "wrong";
    return {"secret,id=s0,file=" + (d / "key").string(), "secret,id=s1,file=" + (d / "key2").string(),
            "secret,id=s0,file=" + (d / "bad").string()};
}

}  // namespace

// LUKS images made by vireo-img read by qemu-img and qemu-io, theirs by
// vireo-img; a wrong secret is refused in qemu-img's words; info agrees.
TEST(ImgFormats, LuksBothWays) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const char* n) { return (d / n).string(); };
    auto s = make_secrets(d);
    write_sample(p("src.raw"), (6 << 20) + 4096, 1);
    const Args luks_o{"-O", "luks", "-o", "key-secret=s0,iter-time=10"};
    const Args qluks_o{"-O", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10"};
    auto opts = [&](const std::string& drv, const std::string& f) {
        return Args{"--image-opts", drv == "luks" ? "driver=luks,key-secret=s0,file.filename=" + f
                                                  : "driver=qcow2,encrypt.key-secret=s0,file.filename=" + f};
    };
    for (const auto& [drv, o] : {std::pair{std::string("luks"), luks_o}, std::pair{std::string("qcow2"), qluks_o}}) {
        SCOPED_TRACE(drv);
        // vireo-img makes it; qemu-img reads it back.
        std::filesystem::remove(p("v.img"));
        ok(cat(cat({vimg(), "convert", "--object", s.obj}, o), {p("src.raw"), p("v.img")}));
        ok(cat(cat({"qemu-img", "convert", "--object", s.obj}, opts(drv, p("v.img"))), {"-O", "raw", p("q.raw")}));
        EXPECT_TRUE(slurp(p("q.raw")) == slurp(p("src.raw"))) << "qemu-img read another content";
        // qemu-io reads the tail pattern through the encryption.
        ok(cat(cat({"qemu-io", "--object", s.obj}, opts(drv, p("v.img"))),
               {"-c", "read -P 0x00 4096 512", "-c", fmt::format("read -v {} 7", (6 << 20) + 4096 - 7)}));
        if (drv == "qcow2") ok(cat(cat({"qemu-img", "check", "--object", s.obj}, opts(drv, p("v.img"))), {}));
        // qemu-img makes one (and qemu-io writes into it); vireo-img reads it.
        std::filesystem::remove(p("q.img"));
        ok_qemu_keyslot(cat(cat({"qemu-img", "convert", "--object", s.obj}, o), {p("src.raw"), p("q.img")}));
        ok(cat(cat({"qemu-io", "--object", s.obj}, opts(drv, p("q.img"))), {"-c", "write -P 0x77 5000 70000"}));
        ok(cat(cat({"qemu-img", "convert", "--object", s.obj}, opts(drv, p("q.img"))), {"-O", "raw", p("q.raw")}));
        ok(cat(cat({vimg(), "convert", "--object", s.obj}, opts(drv, p("q.img"))), {"-O", "raw", p("v.raw")}));
        EXPECT_TRUE(slurp(p("q.raw")) == slurp(p("v.raw"))) << "vireo-img read another content";
        // A wrong secret: qemu-img's message; no secret: its message too.
        auto rq = run(cat(cat({"qemu-img", "convert", "--object", s.wrong}, opts(drv, p("q.img"))), {"-O", "raw", p("x.raw")}));
        auto rv = run(cat(cat({vimg(), "convert", "--object", s.wrong}, opts(drv, p("q.img"))), {"-O", "raw", p("x.raw")}));
        EXPECT_NE(rv.exit_code, 0);
        EXPECT_EQ(message(rv.err), message(rq.err));
        EXPECT_NE(rv.err.find("Invalid password, cannot unlock any keyslot"), std::string::npos) << rv.err;
        rq = run({"qemu-img", "convert", "-O", "raw", p("q.img"), p("x.raw")});
        rv = run({vimg(), "convert", "-O", "raw", p("q.img"), p("x.raw")});
        EXPECT_EQ(message(rv.err), message(rq.err));
        // info (header only: no secret needed) as qemu-img prints it.
        same_output({"info", p("q.img")}, drv + " info");
        auto jq = run({"qemu-img", "info", "--output=json", p("q.img")}), jv = run({vimg(), "info", "--output=json", p("q.img")});
        EXPECT_EQ(jq.out, jv.out);
        EXPECT_EQ(nlohmann::json::parse(jv.out)["encrypted"], true);
    }
    // The create line.
    // (qemu-img prints it before making the key slot, so a run that hits
    // QEMU's timing failure prints it too.)
    auto rq = run({"qemu-img", "create", "--object", s.obj, "-f", "luks", "-o",
                   "key-secret=s0,iter-time=10,cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,hash-alg=sha1",
                   p("c.luks"), "1M"});
    auto rv = run({vimg(), "create", "--object", s.obj, "-f", "luks", "-o",
                   "key-secret=s0,iter-time=10,cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,hash-alg=sha1",
                   p("c2.luks"), "1M"});
    EXPECT_EQ(rv.exit_code, 0) << rv.err;
    EXPECT_EQ(rq.out.substr(rq.out.find(",")), rv.out.substr(rv.out.find(",")));
    // That cipher (aes-128-cbc-essiv:sha256, sha1) made by vireo-img reads in QEMU.
    ok({"qemu-io", "--object", s.obj, "--image-opts", "driver=luks,key-secret=s0,file.filename=" + p("c2.luks"), "-c",
        "write -P 9 1000 3000", "-c", "read -P 9 1000 3000"});
    ok({vimg(), "convert", "--object", s.obj, "--image-opts", "driver=luks,key-secret=s0,file.filename=" + p("c2.luks"),
        "-O", "raw", p("c2.raw")});
    EXPECT_EQ(slurp(p("c2.raw")).substr(1000, 3000), std::string(3000, '\x09'));
}

// Key slots changed by vireo-img amend open in QEMU, and the other way round.
TEST(ImgFormats, LuksKeySlotsAmend) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const char* n) { return (d / n).string(); };
    auto s = make_secrets(d);
    auto opts = [&](const std::string& id, const std::string& f, bool qcow2) {
        return qcow2 ? "driver=qcow2,encrypt.key-secret=" + id + ",file.filename=" + f
                     : "driver=luks,key-secret=" + id + ",file.filename=" + f;
    };
    for (bool qcow2 : {false, true}) {
        SCOPED_TRACE(qcow2 ? "qcow2" : "luks");
        const std::string pre = qcow2 ? "encrypt." : "";
        std::filesystem::remove(p("a.img"));
        if (qcow2)
            ok_qemu_keyslot({"qemu-img", "create", "-q", "--object", s.obj, "-f", "qcow2", "-o",
                             "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10", p("a.img"), "4M"});
        else
            ok_qemu_keyslot({"qemu-img", "create", "-q", "--object", s.obj, "-f", "luks", "-o", "key-secret=s0,iter-time=10",
                             p("a.img"), "4M"});
        ok({"qemu-io", "--object", s.obj, "--image-opts", opts("s0", p("a.img"), qcow2), "-c", "write -P 0x31 0 64k"});
        // vireo-img adds slot 3 for s1; qemu-io reads with s1.
        ok({vimg(), "amend", "--object", s.obj, "--object", s.obj2, "-o",
            pre + "state=active," + pre + "new-secret=s1," + pre + "keyslot=3," + pre + "iter-time=10", "--image-opts",
            opts("s0", p("a.img"), qcow2)});
        ok({"qemu-io", "--object", s.obj2, "--image-opts", opts("s1", p("a.img"), qcow2), "-c", "read -P 0x31 0 64k"});
        // Refusals in qemu-img's words.
        for (const std::string& o : {pre + "state=active," + pre + "new-secret=s1," + pre + "keyslot=3",
                                     pre + "state=active", pre + "state=inactive," + pre + "keyslot=5",
                                     pre + "state=inactive"}) {
            Args base{"amend", "--object", s.obj, "--object", s.obj2, "-o", o, "--image-opts", opts("s0", p("a.img"), qcow2)};
            auto rq = run(cat({"qemu-img"}, base)), rv = run(cat({vimg()}, base));
            EXPECT_EQ(rq.exit_code, rv.exit_code) << o;
            EXPECT_EQ(message(rv.err), message(rq.err)) << o;
        }
        // qemu-img erases slot 0 (s0); vireo-img then opens with s1 only.
        ok({"qemu-img", "amend", "--object", s.obj2, "-o", pre + "state=inactive," + pre + "keyslot=0", "--image-opts",
            opts("s1", p("a.img"), qcow2)});
        auto rv = run({vimg(), "convert", "--object", s.obj, "--image-opts", opts("s0", p("a.img"), qcow2), "-O", "raw", p("x.raw")});
        EXPECT_NE(rv.err.find("Invalid password, cannot unlock any keyslot"), std::string::npos) << rv.err;
        ok({vimg(), "convert", "--object", s.obj2, "--image-opts", opts("s1", p("a.img"), qcow2), "-O", "raw", p("x.raw")});
        EXPECT_EQ(slurp(p("x.raw")).substr(0, 65536), std::string(65536, '\x31'));
        // The last active slot is not erased without --force.
        Args last{"amend", "--object", s.obj2, "-o", pre + "state=inactive," + pre + "keyslot=3", "--image-opts",
                  opts("s1", p("a.img"), qcow2)};
        auto rq = run(cat({"qemu-img"}, last));
        rv = run(cat({vimg()}, last));
        EXPECT_EQ(rv.exit_code, 1);
        EXPECT_EQ(message(rv.err), message(rq.err));
        same_output({"info", p("a.img")}, "info after amend");
    }
}

// Legacy AES qcow2 (made by qemu-img) converts identically; vireo-img
// neither writes nor creates such images.
TEST(ImgFormats, LegacyAesQcow2ReadsForConversion) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const char* n) { return (d / n).string(); };
    auto s = make_secrets(d);
    write_sample(p("src.raw"), 3 << 20, 2);
    ok_qemu_keyslot({"qemu-img", "convert", "--object", s.obj, "-O", "qcow2", "-o",
                     "encrypt.format=aes,encrypt.key-secret=s0", p("src.raw"), p("aes.qcow2")});
    const std::string io = "driver=qcow2,encrypt.key-secret=s0,file.filename=" + p("aes.qcow2");
    ok({"qemu-io", "--object", s.obj, "--image-opts", io, "-c", "write -P 0x5a 1000 70000"});
    ok({"qemu-img", "convert", "--object", s.obj, "--image-opts", io, "-O", "raw", p("q.raw")});
    ok({vimg(), "convert", "--object", s.obj, "--image-opts", io, "-O", "raw", p("v.raw")});
    EXPECT_TRUE(slurp(p("q.raw")) == slurp(p("v.raw")));
    same_output({"info", p("aes.qcow2")}, "aes info");
    EXPECT_NE(run({vimg(), "amend", "--object", s.obj, "-o", "lazy_refcounts=on", "--image-opts", io}).exit_code, 0);
    auto cr = run({vimg(), "convert", "--object", s.obj, "-O", "qcow2", "-o", "encrypt.format=aes,encrypt.key-secret=s0",
                   p("src.raw"), p("new.qcow2")});
    EXPECT_NE(cr.exit_code, 0);
}

// Every vmdk subformat: vireo-img's images read and checked by qemu-img,
// qemu-img's read by vireo-img (also after vireo-img wrote into them), and
// create/info/check/map print what qemu-img prints.
TEST(ImgFormats, VmdkSubformatsBothWays) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const std::string& n) { return (d / n).string(); };
    write_sample(p("src.raw"), (5 << 20) + 512, 3);
    write_sample(p("other.raw"), (5 << 20) + 512, 4);
    for (const char* sub : {"monolithicSparse", "monolithicFlat", "streamOptimized", "twoGbMaxExtentSparse",
                            "twoGbMaxExtentFlat"}) {
        SCOPED_TRACE(sub);
        std::filesystem::create_directory(p(sub));
        const std::string v = p(std::string(sub) + "/v.vmdk"), q = p(std::string(sub) + "/q.vmdk");
        ok({vimg(), "convert", "-O", "vmdk", "-o", std::string("subformat=") + sub, p("src.raw"), v});
        ok({"qemu-img", "check", v});
        ok({"qemu-img", "compare", "-f", "raw", "-F", "vmdk", p("src.raw"), v});
        ok({"qemu-img", "convert", "-O", "vmdk", "-o", std::string("subformat=") + sub, p("src.raw"), q});
        ok({vimg(), "compare", "-f", "raw", "-F", "vmdk", p("src.raw"), q});
        for (const Args& a : {Args{"info"}, Args{"info", "--output=json"}, Args{"check"}, Args{"check", "--output=json"},
                              Args{"map", "--output=json"}})
            same_output(cat(a, {q}), a[0] + " " + a.back());
        same_output({"info", v}, "info of vireo's image");
        if (std::string(sub) != "streamOptimized") {
            // vireo-img writes into qemu-img's image; qemu-io sees it.
            ok({vimg(), "convert", "-n", "-O", "vmdk", p("other.raw"), q});
            ok({"qemu-img", "compare", "-f", "raw", "-F", "vmdk", p("other.raw"), q});
            ok({"qemu-img", "check", q});
        }
        // The create line.
        auto rq = run({"qemu-img", "create", "-f", "vmdk", "-o", std::string("subformat=") + sub + ",adapter_type=lsilogic",
                       p(std::string(sub) + "/c1.vmdk"), "3G"});
        auto rv = run({vimg(), "create", "-f", "vmdk", "-o", std::string("subformat=") + sub + ",adapter_type=lsilogic",
                       p(std::string(sub) + "/c2.vmdk"), "3G"});
        EXPECT_EQ(rq.out.substr(rq.out.find(",")), rv.out.substr(rv.out.find(",")));
        same_output({"info", p(std::string(sub) + "/c2.vmdk")}, "info of a 3G image");
    }
    // A vireo-made overlay on a vmdk parent, written by qemu-io.
    ok({vimg(), "create", "-q", "-f", "vmdk", "-b", "monolithicSparse/q.vmdk", "-F", "vmdk", p("top.vmdk")});
    qemu_io(p("top.vmdk"), {"write -P 0x66 100000 5000"});
    ok({"qemu-img", "convert", "-O", "raw", p("top.vmdk"), p("tq.raw")});
    ok({vimg(), "convert", "-O", "raw", p("top.vmdk"), p("tv.raw")});
    EXPECT_TRUE(slurp(p("tq.raw")) == slurp(p("tv.raw")));
    same_output({"info", p("top.vmdk")}, "overlay info");
}

// vpc, vhdx and vdi images qemu-img makes convert to raw identically, and
// info prints what qemu-img prints.
TEST(ImgFormats, VpcVhdxVdiConvertIdentically) {
    NEED_QEMU();
    TempDir d;
    auto p = [&](const std::string& n) { return (d / n).string(); };
    write_sample(p("src.raw"), 21 << 20, 5);
    const std::vector<Args> variants = {{"vpc"}, {"vpc", "-o", "subformat=fixed"}, {"vpc", "-o", "force_size=on"},
                                        {"vhdx"}, {"vhdx", "-o", "subformat=fixed"}, {"vhdx", "-o", "block_size=1M"},
                                        {"vdi"}, {"vdi", "-o", "static=on"}};
    for (const auto& v : variants) {
        std::string what = v.size() > 1 ? v[0] + " " + v[2] : v[0];
        SCOPED_TRACE(what);
        std::filesystem::remove(p("x.img"));
        ok(cat(cat({"qemu-img", "convert", "-O"}, v), {p("src.raw"), p("x.img")}));
        // qemu-io leaves a partly written block behind too.
        ok({"qemu-io", "-f", v[0], "-c", "write -P 0x42 20M 300k", p("x.img")});
        ok({"qemu-img", "convert", "-f", v[0], "-O", "raw", p("x.img"), p("q.raw")});
        ok({vimg(), "convert", "-f", v[0], "-O", "raw", p("x.img"), p("v.raw")});
        EXPECT_TRUE(slurp(p("q.raw")) == slurp(p("v.raw"))) << what;
        same_output({"info", "-f", v[0], p("x.img")}, what + " info");
        same_output({"info", "-f", v[0], "--output=json", p("x.img")}, what + " info json");
        // Probed without -f (a fixed VHD is raw to both).
        same_output({"info", p("x.img")}, what + " probed info");
        // Converted on into qcow2 by vireo-img: qemu-img sees the same disk.
        std::filesystem::remove(p("x.qcow2"));
        ok({vimg(), "convert", "-f", v[0], "-O", "qcow2", p("x.img"), p("x.qcow2")});
        ok({"qemu-img", "compare", "-f", v[0], "-F", "qcow2", p("x.img"), p("x.qcow2")});
    }
    auto w = run({vimg(), "convert", "-n", "-O", "vdi", p("src.raw"), p("x.img")});
    EXPECT_NE(w.exit_code, 0);
}
