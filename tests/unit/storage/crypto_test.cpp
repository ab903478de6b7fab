// Encryption: PBKDF2 against published vectors, the AF splitter, and LUKS /
// qcow2+LUKS images read and written at unaligned offsets against a plain
// copy (interop with QEMU is in tests/integration/img/formats_test.cpp).
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <random>

#include "storage/crypto.hpp"
#include "storage/image.hpp"
#include "storage/luks_image.hpp"
#include "storage/qcow2.hpp"
#include "support/support.hpp"

using namespace vireo::storage;
using vireo::test::TempDir;

namespace {

// This test program handles encrypted images: the OpenSSL implementation.
const bool kOpenSsl = [] {
    crypto::enable_openssl();
    return true;
}();

std::string hex(const uint8_t* p, size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s += fmt::format("{:02x}", p[i]);
    return s;
}

std::string pbkdf2_hex(const std::string& hash, const std::string& pw, const std::string& salt, uint64_t iters,
                       size_t len) {
    std::vector<uint8_t> out(len);
    auto st = crypto::pbkdf2(hash, pw, reinterpret_cast<const uint8_t*>(salt.data()), salt.size(), iters, out.data(), len);
    EXPECT_TRUE(st) << st.error().message;
    return hex(out.data(), len);
}

std::vector<char> noise(size_t n, unsigned seed) {
    std::vector<char> v(n);
    std::mt19937 rng(seed);
    for (auto& c : v) c = static_cast<char>(rng() & 0xff);
    return v;
}

EncryptOptions quick_luks(const std::string& key) {
    EncryptOptions e;
    e.format = EncryptFormat::Luks;
    e.key = key;
    e.iter_time = 5;
    return e;
}

// Writes at odd offsets and lengths, mirrored into `model`, then the whole
// image compared with it.
void scribble_and_compare(Image& img, std::vector<char>& model, unsigned seed) {
    std::mt19937 rng(seed);
    for (int i = 0; i < 60; ++i) {
        uint64_t len = 1 + rng() % 9000;
        uint64_t off = rng() % (model.size() - len);
        auto d = noise(len, seed + static_cast<unsigned>(i));
        ASSERT_TRUE(img.write(off, d.data(), len));
        std::copy(d.begin(), d.end(), model.begin() + static_cast<long>(off));
    }
    std::vector<char> back(model.size());
    ASSERT_TRUE(img.read(0, back.data(), back.size()));
    EXPECT_TRUE(back == model);
    // Unaligned reads too.
    for (int i = 0; i < 20; ++i) {
        uint64_t len = 1 + rng() % 3000;
        uint64_t off = rng() % (model.size() - len);
        std::vector<char> part(len);
        ASSERT_TRUE(img.read(off, part.data(), len));
        EXPECT_TRUE(std::equal(part.begin(), part.end(), model.begin() + static_cast<long>(off)));
    }
}

}  // namespace

TEST(Crypto, Pbkdf2MatchesPublishedVectors) {
    // RFC 6070 (SHA-1) and the matching SHA-256 / SHA-512 vectors.
    EXPECT_EQ(pbkdf2_hex("sha1", "password", "salt", 1, 20), "0c60c80f961f0e71f3a9b524af6012062fe037a6");
    EXPECT_EQ(pbkdf2_hex("sha1", "password", "salt", 4096, 20), "4b007901b765489abead49d926f721d065a429c1");
    EXPECT_EQ(pbkdf2_hex("sha1", "passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, 25),
              "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038");
    EXPECT_EQ(pbkdf2_hex("sha256", "password", "salt", 1, 32),
              "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b");
    EXPECT_EQ(pbkdf2_hex("sha256", "password", "salt", 4096, 32),
              "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a");
    EXPECT_EQ(pbkdf2_hex("sha512", "password", "salt", 1, 64),
              "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f"
              "050235d7d68b1da55e63f73b60a57fce");
}

TEST(Crypto, Pbkdf2FastPathAgreesWithOpenSsl) {
    // Long passwords (hashed first), keys of several blocks, every hash.
    const std::string long_pw(200, 'k');
    for (const char* h : {"sha1", "sha224", "sha256", "sha384", "sha512"}) {
        for (const std::string& pw : {std::string("x"), long_pw}) {
            const std::string salt = "0123456789abcdef0123456789abcdef";
            std::vector<uint8_t> want(100);
            PKCS5_PBKDF2_HMAC(pw.data(), static_cast<int>(pw.size()), reinterpret_cast<const uint8_t*>(salt.data()),
                              static_cast<int>(salt.size()), 1234, EVP_get_digestbyname(h), 100, want.data());
            EXPECT_EQ(pbkdf2_hex(h, pw, salt, 1234, 100), hex(want.data(), want.size())) << h;
        }
    }
}

TEST(Crypto, AfSplitRoundTrips) {
    std::vector<uint8_t> key(64);
    for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 7);
    auto split = crypto::af_split("sha256", key, 4000);
    ASSERT_TRUE(split);
    EXPECT_EQ(split->size(), 64U * 4000U);
    auto back = crypto::af_merge("sha256", *split, 64, 4000);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, key);
    (*split)[100] ^= 1;  // any damaged stripe gives another key
    auto bad = crypto::af_merge("sha256", *split, 64, 4000);
    ASSERT_TRUE(bad);
    EXPECT_NE(*bad, key);
}

TEST(Crypto, LuksImageUnalignedIoAndKeys) {
    TempDir d;
    auto p = d / "a.luks";
    for (const char* mode : {"xts", "cbc"}) {
        CreateOptions c;
        c.format = ImageFormat::Luks;
        c.size = 1 << 20;
        c.encrypt = quick_luks("secret");
        c.encrypt.cipher_mode = mode;
        if (std::string(mode) == "cbc") {
            c.encrypt.cipher_alg = "aes-128";
            c.encrypt.ivgen_alg = "essiv";
        }
        ASSERT_TRUE(create_image(p, c));
        OpenOptions o;
        o.writable = true;
        auto nokey = open_image(p, o);
        ASSERT_FALSE(nokey);
        EXPECT_EQ(nokey.error().message, "Parameter 'key-secret' is required for cipher");
        o.key_secret = "wrong";
        auto wrong = open_image(p, o);
        ASSERT_FALSE(wrong);
        EXPECT_EQ(wrong.error().message, "Invalid password, cannot unlock any keyslot");
        o.key_secret = "secret";
        auto img = open_image(p, o);
        ASSERT_TRUE(img) << img.error().message;
        EXPECT_FALSE((*img)->zero_init());
        std::vector<char> model(1 << 20);
        ASSERT_TRUE((*img)->write_zeroes(0, model.size(), true));
        scribble_and_compare(**img, model, 11);

        // A second key slot opens the same volume; erasing the first leaves it.
        auto* l = luks_cast(img->get());
        ASSERT_TRUE(l);
        ASSERT_TRUE(l->volume()->add_key(std::nullopt, "second", 5, l->header_io()));
        auto only = l->volume()->erase_keys(1, std::nullopt, false, l->header_io());
        ASSERT_TRUE(only);
        auto last = l->volume()->erase_keys(0, std::nullopt, false, l->header_io());
        EXPECT_FALSE(last);  // slot 1 is gone: 0 is the only one
        img->reset();
        o.key_secret = "second";
        EXPECT_FALSE(open_image(p, o));
        o.key_secret = "secret";
        auto again = open_image(p, o);
        ASSERT_TRUE(again);
        std::vector<char> back(model.size());
        ASSERT_TRUE((*again)->read(0, back.data(), back.size()));
        EXPECT_TRUE(back == model);
    }
}

TEST(Crypto, Qcow2LuksUnalignedIoStaysConsistent) {
    TempDir d;
    auto p = d / "e.qcow2";
    for (bool ext_l2 : {false, true}) {
        CreateOptions c;
        c.format = ImageFormat::Qcow2;
        c.size = 4 << 20;
        c.cluster_size = 32768;
        c.extended_l2 = ext_l2;
        c.encrypt = quick_luks("pw");
        ASSERT_TRUE(create_image(p, c));
        OpenOptions o;
        o.writable = true;
        o.key_secret = "pw";
        auto img = open_image(p, o);
        ASSERT_TRUE(img) << img.error().message;
        EXPECT_EQ((*img)->data_fd(), -1);
        std::vector<char> model(4 << 20, 0);
        scribble_and_compare(**img, model, 5);
        ASSERT_TRUE((*img)->write_zeroes(65536, 100000, false));
        std::fill(model.begin() + 65536, model.begin() + 65536 + 100000, 0);
        auto e = (*img)->block_status(0, 4 << 20);
        ASSERT_TRUE(e);
        EXPECT_FALSE(e->host_offset);  // encrypted: no host offsets shown
        auto* q = qcow2_cast(img->get());
        auto chk = q->check(qcow2::RepairMode::None);
        ASSERT_TRUE(chk);
        EXPECT_EQ(chk->corruptions + chk->leaks, 0) << (chk->messages.empty() ? "" : chk->messages[0]);
        EXPECT_FALSE(q->write_compressed(0, model.data(), 32768));
        ASSERT_TRUE((*img)->close());
        img->reset();
        auto ro = open_image(p, o);
        ASSERT_TRUE(ro);
        std::vector<char> back(model.size());
        ASSERT_TRUE((*ro)->read(0, back.data(), back.size()));
        EXPECT_TRUE(back == model);
        auto info = (*ro)->info();
        ASSERT_TRUE(info);
        EXPECT_TRUE(info->encrypted);
        EXPECT_EQ(info->encrypt_format, "luks");
        ASSERT_TRUE(info->luks);
        EXPECT_EQ(info->luks->cipher_alg, "aes-256");
        EXPECT_EQ(info->luks->payload_offset, 2068480U);
    }
}
