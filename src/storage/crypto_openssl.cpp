// The OpenSSL implementation of storage/crypto.hpp (see enable_openssl).
// PBKDF2 uses the low-level SHA transforms (deprecated in OpenSSL 3, but
// without them every iteration goes through the EVP/HMAC machinery at half
// the speed: see fast_pbkdf2).
#define OPENSSL_SUPPRESS_DEPRECATED

#include "storage/crypto.hpp"

#include <algorithm>
#include <cstring>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

namespace vireo::storage::crypto {

namespace {

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    if (!e) return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

const char* openssl_hash_name(const std::string& h) {
    if (h == "md5") return "MD5";
    if (h == "sha1") return "SHA1";
    if (h == "sha224") return "SHA224";
    if (h == "sha256") return "SHA256";
    if (h == "sha384") return "SHA384";
    if (h == "sha512") return "SHA512";
    if (h == "ripemd160") return "RIPEMD160";
    return nullptr;
}

struct MdDeleter {
    void operator()(EVP_MD* m) const { EVP_MD_free(m); }
};
using MdPtr = std::unique_ptr<EVP_MD, MdDeleter>;

Result<MdPtr> fetch_md(const std::string& hash) {
    const char* n = openssl_hash_name(hash);
    if (!n) return fail(ErrorCode::InvalidArg, "Parameter 'hash-alg' does not accept value '{}'", hash);
    MdPtr md(EVP_MD_fetch(nullptr, n, nullptr));
    if (!md) return fail(ErrorCode::Unsupported, "Hash algorithm {} not supported: {}", hash, openssl_error());
    return md;
}

struct CipherDeleter {
    void operator()(EVP_CIPHER* c) const { EVP_CIPHER_free(c); }
};
struct CtxDeleter {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherPtr = std::unique_ptr<EVP_CIPHER, CipherDeleter>;
using CtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

// A keyed context for one direction, ready to take IVs.
Result<CtxPtr> keyed_ctx(EVP_CIPHER* cipher, const uint8_t* key, bool enc) {
    CtxPtr ctx(EVP_CIPHER_CTX_new());
    if (!ctx || EVP_CipherInit_ex(ctx.get(), cipher, nullptr, key, nullptr, enc ? 1 : 0) != 1)
        return fail(ErrorCode::Internal, "Cannot initialise cipher: {}", openssl_error());
    EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
    return ctx;
}

Status ossl_check_hash(const std::string& name) {
    if (!openssl_hash_name(name)) return fail(ErrorCode::InvalidArg, "Parameter 'hash-alg' does not accept value '{}'", name);
    auto md = fetch_md(name);
    if (!md) return std::unexpected(md.error());
    return {};
}

Result<size_t> ossl_digest_bytes(const std::string& hash) {
    auto md = fetch_md(hash);
    if (!md) return std::unexpected(md.error());
    return static_cast<size_t>(EVP_MD_get_size(md->get()));
}

Result<std::vector<uint8_t>> ossl_digest(const std::string& hash, const void* data, size_t len) {
    auto md = fetch_md(hash);
    if (!md) return std::unexpected(md.error());
    std::vector<uint8_t> out(static_cast<size_t>(EVP_MD_get_size(md->get())));
    unsigned n = 0;
    if (EVP_Digest(data, len, out.data(), &n, md->get(), nullptr) != 1)
        return fail(ErrorCode::Internal, "Hash {} failed: {}", hash, openssl_error());
    return out;
}

// The SHA family members PBKDF2 runs on directly: their context, block
// and digest sizes, and access to the chaining state.
template <class Ctx, size_t Block, size_t Digest, class Word>
struct ShaAlgo {
    using CtxT = Ctx;
    static constexpr size_t kBlock = Block, kDigest = Digest, kLenBytes = Block / 8;
};
void put_be(uint8_t* o, uint32_t v) {
    for (int i = 0; i < 4; ++i) o[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
void put_be(uint8_t* o, uint64_t v) {
    for (int i = 0; i < 8; ++i) o[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}
struct Sha1 : ShaAlgo<SHA_CTX, 64, 20, uint32_t> {
    static void init(SHA_CTX* c) { SHA1_Init(c); }
    static void update(SHA_CTX* c, const void* d, size_t n) { SHA1_Update(c, d, n); }
    static void final(uint8_t* o, SHA_CTX* c) { SHA1_Final(o, c); }
    static void transform(SHA_CTX* c, const uint8_t* b) { SHA1_Transform(c, b); }
    static void state(const SHA_CTX& c, uint8_t* o) {
        const uint32_t h[5] = {c.h0, c.h1, c.h2, c.h3, c.h4};
        for (std::size_t i = 0; i < 5; ++i) put_be(o + 4 * i, h[i]);
    }
};
template <size_t Digest>
struct Sha256Like : ShaAlgo<SHA256_CTX, 64, Digest, uint32_t> {
    static void init(SHA256_CTX* c) { Digest == 28 ? SHA224_Init(c) : SHA256_Init(c); }
    static void update(SHA256_CTX* c, const void* d, size_t n) { SHA256_Update(c, d, n); }
    static void final(uint8_t* o, SHA256_CTX* c) { Digest == 28 ? SHA224_Final(o, c) : SHA256_Final(o, c); }
    static void transform(SHA256_CTX* c, const uint8_t* b) { SHA256_Transform(c, b); }
    static void state(const SHA256_CTX& c, uint8_t* o) {
        for (size_t i = 0; i < Digest / 4; ++i) put_be(o + 4 * i, static_cast<uint32_t>(c.h[i]));
    }
};
template <size_t Digest>
struct Sha512Like : ShaAlgo<SHA512_CTX, 128, Digest, uint64_t> {
    static void init(SHA512_CTX* c) { Digest == 48 ? SHA384_Init(c) : SHA512_Init(c); }
    static void update(SHA512_CTX* c, const void* d, size_t n) { SHA512_Update(c, d, n); }
    static void final(uint8_t* o, SHA512_CTX* c) { Digest == 48 ? SHA384_Final(o, c) : SHA512_Final(o, c); }
    static void transform(SHA512_CTX* c, const uint8_t* b) { SHA512_Transform(c, b); }
    static void state(const SHA512_CTX& c, uint8_t* o) {
        for (size_t i = 0; i < Digest / 8; ++i) put_be(o + 8 * i, static_cast<uint64_t>(c.h[i]));
    }
};

// PBKDF2-HMAC (RFC 8018) with the HMAC pads hashed once: every further
// iteration is two compression-function calls on a prepared block.
template <class A>
void fast_pbkdf2(const std::string& pw, const uint8_t* salt, size_t salt_len, uint64_t iterations, uint8_t* out,
                 size_t out_len) {
    using Ctx = typename A::CtxT;
    uint8_t key[A::kBlock] = {};
    if (pw.size() > A::kBlock) {
        Ctx c;
        A::init(&c);
        A::update(&c, pw.data(), pw.size());
        A::final(key, &c);
    } else {
        std::copy_n(pw.data(), pw.size(), key);
    }
    Ctx ipad, opad;
    uint8_t pad[A::kBlock];
    for (size_t i = 0; i < A::kBlock; ++i) pad[i] = static_cast<uint8_t>(key[i] ^ 0x36);
    A::init(&ipad);
    A::update(&ipad, pad, A::kBlock);
    for (size_t i = 0; i < A::kBlock; ++i) pad[i] = static_cast<uint8_t>(key[i] ^ 0x5c);
    A::init(&opad);
    A::update(&opad, pad, A::kBlock);
    // The one block each later iteration hashes: U, padding, bit length
    // of pad block + U.
    uint8_t blk[A::kBlock] = {};
    blk[A::kDigest] = 0x80;
    const uint64_t bits = (A::kBlock + A::kDigest) * 8;
    put_be(blk + A::kBlock - 8, bits);
    uint8_t u[A::kDigest], t[A::kDigest];
    for (uint32_t index = 1; out_len > 0; ++index) {
        uint8_t be_index[4];
        put_be(be_index, index);
        Ctx c = ipad;
        A::update(&c, salt, salt_len);
        A::update(&c, be_index, 4);
        A::final(u, &c);
        c = opad;
        A::update(&c, u, A::kDigest);
        A::final(u, &c);
        std::memcpy(t, u, A::kDigest);
        for (uint64_t j = 1; j < iterations; ++j) {
            Ctx x = ipad;
            std::memcpy(blk, u, A::kDigest);
            A::transform(&x, blk);
            A::state(x, u);
            x = opad;
            std::memcpy(blk, u, A::kDigest);
            A::transform(&x, blk);
            A::state(x, u);
            for (size_t k = 0; k < A::kDigest; ++k) t[k] ^= u[k];
        }
        size_t n = std::min(out_len, A::kDigest);
        std::memcpy(out, t, n);
        out += n;
        out_len -= n;
    }
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(t, sizeof t);
}

Status ossl_pbkdf2(const std::string& hash, const std::string& password, const uint8_t* salt, size_t salt_len,
                   uint64_t iterations, uint8_t* out, size_t out_len) {
    if (iterations == 0 || iterations > 0xffffffffULL)
        return fail(ErrorCode::InvalidArg, "PBKDF2 iteration count {} out of range", iterations);
    using Fn = void (*)(const std::string&, const uint8_t*, size_t, uint64_t, uint8_t*, size_t);
    Fn fast = hash == "sha1"     ? &fast_pbkdf2<Sha1>
              : hash == "sha224" ? &fast_pbkdf2<Sha256Like<28>>
              : hash == "sha256" ? &fast_pbkdf2<Sha256Like<32>>
              : hash == "sha384" ? &fast_pbkdf2<Sha512Like<48>>
              : hash == "sha512" ? &fast_pbkdf2<Sha512Like<64>>
                                 : nullptr;
    if (fast) {
        fast(password, salt, salt_len, iterations, out, out_len);
        return {};
    }
    auto md = fetch_md(hash);
    if (!md) return std::unexpected(md.error());
    if (iterations > 0x7fffffff) return fail(ErrorCode::Unsupported, "PBKDF2 iteration count {} too large", iterations);
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt, static_cast<int>(salt_len),
                          static_cast<int>(iterations), md->get(), static_cast<int>(out_len), out) != 1)
        return fail(ErrorCode::Internal, "PBKDF2 failed: {}", openssl_error());
    return {};
}

Status ossl_random_bytes(uint8_t* out, size_t len) {
    if (RAND_bytes(out, static_cast<int>(len)) != 1)
        return fail(ErrorCode::Internal, "Cannot generate random bytes: {}", openssl_error());
    return {};
}

// ---------------------------------------------------------------- ciphers

// The IV of a sector: its number, 32 (plain) or 64 bits little-endian,
// zero padded to the block.
void make_iv(const std::string& ivgen, uint64_t sector, uint8_t* iv) {
    std::memset(iv, 0, 16);
    uint64_t v = ivgen == "plain" ? (sector & 0xffffffffULL) : sector;
    for (int i = 0; i < 8; ++i) iv[i] = static_cast<uint8_t>(v >> (8 * i));
}

// An AES mode through EVP: keyed contexts for each direction (copied per
// call, so calls may run on several threads) and, for essiv, an ECB
// context keyed with hash(key) that turns sector numbers into IVs.
class OpenSslCipher final : public SectorCipher {
public:
    static Result<std::unique_ptr<SectorCipher>> make(const CipherSpec& spec, const std::vector<uint8_t>& key) {
        auto kb = key_bytes(spec);
        if (!kb) return std::unexpected(kb.error());
        if (key.size() != *kb)
            return fail(ErrorCode::InvalidArg, "Cipher {}-{} needs a {} byte key, not {}", spec.alg, spec.mode, *kb, key.size());
        std::string name = fmt::format("{}-{}", spec.alg, spec.mode);  // "aes-256-xts"
        for (auto& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        std::unique_ptr<OpenSslCipher> c(new OpenSslCipher(spec));
        c->cipher_.reset(EVP_CIPHER_fetch(nullptr, name.c_str(), nullptr));
        if (!c->cipher_) return fail(ErrorCode::Unsupported, "Cipher {} not available: {}", name, openssl_error());
        auto e = keyed_ctx(c->cipher_.get(), key.data(), true);
        if (!e) return std::unexpected(e.error());
        auto d = keyed_ctx(c->cipher_.get(), key.data(), false);
        if (!d) return std::unexpected(d.error());
        c->enc_ = std::move(*e);
        c->dec_ = std::move(*d);
        c->iv_len_ = static_cast<size_t>(std::max(0, EVP_CIPHER_get_iv_length(c->cipher_.get())));
        if (spec.ivgen == "essiv") {
            // The IV key is hash(key); the IV cipher AES with a key of that
            // length, in ECB mode (dm-crypt's and QEMU's choice).
            if (spec.ivgen_hash.empty())
                return fail(ErrorCode::InvalidArg, "Parameter 'ivgen-hash-alg' is required for essiv");
            auto h = ossl_digest(spec.ivgen_hash, key.data(), key.size());
            if (!h) return std::unexpected(h.error());
            size_t bits = h->size() * 8;
            if (bits != 128 && bits != 192 && bits != 256)
                return fail(ErrorCode::InvalidArg, "No AES cipher with key size {} available", h->size());
            CipherPtr ecb(EVP_CIPHER_fetch(nullptr, fmt::format("AES-{}-ECB", bits).c_str(), nullptr));
            if (!ecb) return fail(ErrorCode::Unsupported, "essiv cipher not available: {}", openssl_error());
            auto ctx = keyed_ctx(ecb.get(), h->data(), true);
            if (!ctx) return std::unexpected(ctx.error());
            c->essiv_ = std::move(*ctx);
        }
        return std::unique_ptr<SectorCipher>(std::move(c));
    }

    Status encrypt(uint64_t sector, void* buf, size_t len) const override { return run(sector, buf, len, true); }
    Status decrypt(uint64_t sector, void* buf, size_t len) const override { return run(sector, buf, len, false); }

private:
    explicit OpenSslCipher(const CipherSpec& spec) : SectorCipher(spec) {}

    Status run(uint64_t sector, void* vbuf, size_t len, bool enc) const {
        if (len % 16)
            return fail(ErrorCode::InvalidArg, "encrypted I/O of {} bytes is not a multiple of the block size", len);
        auto* buf = static_cast<uint8_t*>(vbuf);
        CtxPtr ctx(EVP_CIPHER_CTX_new());
        CtxPtr ivctx;
        if (!ctx || EVP_CIPHER_CTX_copy(ctx.get(), enc ? enc_.get() : dec_.get()) != 1)
            return fail(ErrorCode::Internal, "Cannot copy cipher context: {}", openssl_error());
        if (essiv_) {
            ivctx.reset(EVP_CIPHER_CTX_new());
            if (!ivctx || EVP_CIPHER_CTX_copy(ivctx.get(), essiv_.get()) != 1)
                return fail(ErrorCode::Internal, "Cannot copy cipher context: {}", openssl_error());
        }
        uint8_t iv[16], plain_iv[16];
        for (size_t off = 0; off < len; off += kSectorSize, ++sector) {
            const size_t n = std::min<size_t>(kSectorSize, len - off);
            const uint8_t* ivp = nullptr;
            if (iv_len_ > 0) {
                make_iv(spec().ivgen, sector, plain_iv);
                if (ivctx) {
                    int outl = 0;
                    if (EVP_CipherUpdate(ivctx.get(), iv, &outl, plain_iv, 16) != 1)
                        return fail(ErrorCode::Internal, "essiv failed: {}", openssl_error());
                } else {
                    std::memcpy(iv, plain_iv, 16);
                }
                ivp = iv;
            }
            int outl = 0;
            if (EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, nullptr, ivp, enc ? 1 : 0) != 1 ||
                EVP_CipherUpdate(ctx.get(), buf + off, &outl, buf + off, static_cast<int>(n)) != 1)
                return fail(ErrorCode::Internal, "{} failed: {}", enc ? "Encryption" : "Decryption", openssl_error());
        }
        return {};
    }

    CipherPtr cipher_;
    CtxPtr enc_, dec_;
    CtxPtr essiv_;
    size_t iv_len_ = 16;
};

const Backend kOpenSsl = {&ossl_check_hash, &ossl_digest_bytes, &ossl_digest, &ossl_pbkdf2, &ossl_random_bytes,
                          &OpenSslCipher::make};

}  // namespace

void enable_openssl() { install_backend(&kOpenSsl); }

}  // namespace vireo::storage::crypto
