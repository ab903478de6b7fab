// PBKDF2 uses the low-level SHA transforms (deprecated in OpenSSL 3, but
// without them every iteration goes through the EVP/HMAC machinery at half
// the speed: see fast_pbkdf2).
#define OPENSSL_SUPPRESS_DEPRECATED

#include "storage/crypto.hpp"

#include <time.h>

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

// The AES key size of "aes-128" / "aes-192" / "aes-256" (0: not AES).
size_t aes_bits(const std::string& alg) {
    if (alg == "aes-128") return 128;
    if (alg == "aes-192") return 192;
    if (alg == "aes-256") return 256;
    return 0;
}

// QEMU's names of every cipher algorithm it has: the ones vireo cannot
// run (no OpenSSL implementation) are refused as unsupported, not unknown.
bool qemu_knows_cipher(const std::string& alg) {
    static const char* const kAll[] = {"aes-128", "aes-192", "aes-256", "des", "3des", "cast5-128", "serpent-128",
                                       "serpent-192", "serpent-256", "twofish-128", "twofish-192", "twofish-256",
                                       "sm4"};
    return std::find(std::begin(kAll), std::end(kAll), alg) != std::end(kAll);
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

double thread_cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
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

}  // namespace

Result<size_t> key_bytes(const CipherSpec& s) {
    size_t bits = aes_bits(s.alg);
    if (!bits) {
        if (qemu_knows_cipher(s.alg))
            return fail(ErrorCode::Unsupported, "Cipher algorithm {} not supported by vireo (only aes-128, aes-192, aes-256)", s.alg);
        return fail(ErrorCode::InvalidArg, "Parameter 'cipher-alg' does not accept value '{}'", s.alg);
    }
    if (s.mode != "xts" && s.mode != "cbc" && s.mode != "ecb" && s.mode != "ctr")
        return fail(ErrorCode::InvalidArg, "Parameter 'cipher-mode' does not accept value '{}'", s.mode);
    if (s.mode == "xts" && bits == 192) return fail(ErrorCode::InvalidArg, "Cipher mode xts not supported with aes-192");
    if (s.ivgen != "plain" && s.ivgen != "plain64" && s.ivgen != "essiv")
        return fail(ErrorCode::InvalidArg, "Parameter 'ivgen-alg' does not accept value '{}'", s.ivgen);
    return bits / 8 * (s.mode == "xts" ? 2 : 1);
}

Status check_hash(const std::string& name) {
    if (!openssl_hash_name(name)) return fail(ErrorCode::InvalidArg, "Parameter 'hash-alg' does not accept value '{}'", name);
    auto md = fetch_md(name);
    if (!md) return std::unexpected(md.error());
    return {};
}

Result<size_t> digest_bytes(const std::string& hash) {
    auto md = fetch_md(hash);
    if (!md) return std::unexpected(md.error());
    return static_cast<size_t>(EVP_MD_get_size(md->get()));
}

Result<std::vector<uint8_t>> digest(const std::string& hash, const void* data, size_t len) {
    auto md = fetch_md(hash);
    if (!md) return std::unexpected(md.error());
    std::vector<uint8_t> out(static_cast<size_t>(EVP_MD_get_size(md->get())));
    unsigned n = 0;
    if (EVP_Digest(data, len, out.data(), &n, md->get(), nullptr) != 1)
        return fail(ErrorCode::Internal, "Hash {} failed: {}", hash, openssl_error());
    return out;
}

namespace {

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

}  // namespace

Status pbkdf2(const std::string& hash, const std::string& password, const uint8_t* salt, size_t salt_len,
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

Result<uint64_t> pbkdf2_iterations_for(const std::string& hash, size_t key_len, uint64_t ms) {
    auto dlen = digest_bytes(hash);
    if (!dlen) return std::unexpected(dlen.error());
    // Time one output block (what one iteration costs per block), with
    // doubling counts until the run is long enough to measure; a key of
    // n blocks costs n times as much.
    const std::string pw = "vireo pbkdf2 benchmark";
    uint8_t salt[32] = {}, out[64] = {};
    uint64_t iters = 1 << 12;
    double took = 0;
    for (;;) {
        double t0 = thread_cpu_ms();
        VIREO_TRY(pbkdf2(hash, pw, salt, sizeof salt, iters, out, std::min<size_t>(*dlen, sizeof out)));
        took = thread_cpu_ms() - t0;
        if (took >= 100 || iters >= (1ULL << 30)) break;
        iters *= 2;
    }
    const uint64_t blocks = (key_len + *dlen - 1) / *dlen;
    const double per_ms = static_cast<double>(iters) / std::max(took, 0.001) / static_cast<double>(blocks);
    double total = per_ms * static_cast<double>(ms);
    if (total > 0x7fffffff) return fail(ErrorCode::InvalidArg, "Too many PBKDF2 iterations for iter-time {}", ms);
    return static_cast<uint64_t>(total);
}

Status random_bytes(uint8_t* out, size_t len) {
    if (RAND_bytes(out, static_cast<int>(len)) != 1)
        return fail(ErrorCode::Internal, "Cannot generate random bytes: {}", openssl_error());
    return {};
}

namespace {
// LUKS1's diffuser: each digest-sized piece of `buf` (the last one maybe
// shorter) replaced by hash(be32(piece index) || piece), truncated.
Status diffuse(const EVP_MD* md, size_t dlen, uint8_t* buf, size_t len) {
    std::vector<uint8_t> tmp(dlen);
    for (size_t i = 0, off = 0; off < len; ++i, off += dlen) {
        size_t n = std::min(dlen, len - off);
        uint8_t iv[4] = {static_cast<uint8_t>(i >> 24), static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8),
                         static_cast<uint8_t>(i)};
        EVP_MD_CTX* c = EVP_MD_CTX_new();
        unsigned outl = 0;
        bool okay = c && EVP_DigestInit_ex(c, md, nullptr) == 1 && EVP_DigestUpdate(c, iv, 4) == 1 &&
                    EVP_DigestUpdate(c, buf + off, n) == 1 && EVP_DigestFinal_ex(c, tmp.data(), &outl) == 1;
        EVP_MD_CTX_free(c);
        if (!okay) return fail(ErrorCode::Internal, "Hash failed: {}", openssl_error());
        std::memcpy(buf + off, tmp.data(), n);
    }
    return {};
}
}  // namespace

Result<std::vector<uint8_t>> af_split(const std::string& hash, const std::vector<uint8_t>& key, uint32_t stripes) {
    auto md = fetch_md(hash);
    if (!md) return std::unexpected(md.error());
    const size_t dlen = static_cast<size_t>(EVP_MD_get_size(md->get()));
    const size_t bs = key.size();
    std::vector<uint8_t> out(bs * stripes);
    std::vector<uint8_t> block(bs, 0);
    for (uint32_t i = 0; i + 1 < stripes; ++i) {
        uint8_t* d = out.data() + i * bs;
        VIREO_TRY(random_bytes(d, bs));
        for (size_t k = 0; k < bs; ++k) block[k] ^= d[k];
        VIREO_TRY(diffuse(md->get(), dlen, block.data(), bs));
    }
    uint8_t* last = out.data() + (stripes - 1) * bs;
    for (size_t k = 0; k < bs; ++k) last[k] = block[k] ^ key[k];
    return out;
}

Result<std::vector<uint8_t>> af_merge(const std::string& hash, const std::vector<uint8_t>& split, size_t bs,
                                      uint32_t stripes) {
    auto md = fetch_md(hash);
    if (!md) return std::unexpected(md.error());
    if (split.size() < bs * stripes || stripes == 0) return fail(ErrorCode::Corrupt, "LUKS key material too short");
    const size_t dlen = static_cast<size_t>(EVP_MD_get_size(md->get()));
    std::vector<uint8_t> block(bs, 0);
    for (uint32_t i = 0; i + 1 < stripes; ++i) {
        const uint8_t* d = split.data() + i * bs;
        for (size_t k = 0; k < bs; ++k) block[k] ^= d[k];
        VIREO_TRY(diffuse(md->get(), dlen, block.data(), bs));
    }
    const uint8_t* last = split.data() + (stripes - 1) * bs;
    for (size_t k = 0; k < bs; ++k) block[k] ^= last[k];
    return block;
}

// ---------------------------------------------------------------- SectorCipher

struct SectorCipher::Impl {
    CipherPtr cipher;
    CtxPtr enc, dec;
    CtxPtr essiv;  // ECB encryptor of IVs (essiv)
    size_t iv_len = 16;
};

SectorCipher::~SectorCipher() = default;

Result<std::unique_ptr<SectorCipher>> SectorCipher::create(const CipherSpec& spec, const std::vector<uint8_t>& key) {
    auto kb = key_bytes(spec);
    if (!kb) return std::unexpected(kb.error());
    if (key.size() != *kb) return fail(ErrorCode::InvalidArg, "Cipher {}-{} needs a {} byte key, not {}", spec.alg, spec.mode, *kb, key.size());
    std::string name = fmt::format("AES-{}-{}", aes_bits(spec.alg), spec.mode);
    for (auto& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    std::unique_ptr<SectorCipher> sc(new SectorCipher());
    sc->spec_ = spec;
    sc->impl_ = std::make_unique<Impl>();
    sc->impl_->cipher.reset(EVP_CIPHER_fetch(nullptr, name.c_str(), nullptr));
    if (!sc->impl_->cipher) return fail(ErrorCode::Unsupported, "Cipher {} not available: {}", name, openssl_error());
    auto e = keyed_ctx(sc->impl_->cipher.get(), key.data(), true);
    if (!e) return std::unexpected(e.error());
    auto d = keyed_ctx(sc->impl_->cipher.get(), key.data(), false);
    if (!d) return std::unexpected(d.error());
    sc->impl_->enc = std::move(*e);
    sc->impl_->dec = std::move(*d);
    sc->impl_->iv_len = static_cast<size_t>(std::max(0, EVP_CIPHER_get_iv_length(sc->impl_->cipher.get())));
    if (spec.ivgen == "essiv") {
        // The IV key is hash(key); the IV cipher the same algorithm with a
        // key of that length, in ECB mode.
        if (spec.ivgen_hash.empty()) return fail(ErrorCode::InvalidArg, "Parameter 'ivgen-hash-alg' is required for essiv");
        auto h = digest(spec.ivgen_hash, key.data(), key.size());
        if (!h) return std::unexpected(h.error());
        size_t bits = h->size() * 8;
        if (bits != 128 && bits != 192 && bits != 256)
            return fail(ErrorCode::InvalidArg, "Cannot use hash {} with cipher {} for essiv", spec.ivgen_hash, spec.alg);
        CipherPtr ecb(EVP_CIPHER_fetch(nullptr, fmt::format("AES-{}-ECB", bits).c_str(), nullptr));
        if (!ecb) return fail(ErrorCode::Unsupported, "essiv cipher not available: {}", openssl_error());
        auto ctx = keyed_ctx(ecb.get(), h->data(), true);
        if (!ctx) return std::unexpected(ctx.error());
        sc->impl_->essiv = std::move(*ctx);
    }
    return sc;
}

void SectorCipher::make_iv(uint64_t sector, uint8_t* iv) const {
    std::memset(iv, 0, 16);
    uint64_t v = spec_.ivgen == "plain" ? (sector & 0xffffffffULL) : sector;
    for (int i = 0; i < 8; ++i) iv[i] = static_cast<uint8_t>(v >> (8 * i));
}

Status SectorCipher::run(uint64_t sector, void* vbuf, size_t len, bool enc) const {
    if (len % 16) return fail(ErrorCode::InvalidArg, "encrypted I/O of {} bytes is not a multiple of the block size", len);
    auto* buf = static_cast<uint8_t*>(vbuf);
    CtxPtr ctx(EVP_CIPHER_CTX_new());
    CtxPtr ivctx;
    if (!ctx || EVP_CIPHER_CTX_copy(ctx.get(), enc ? impl_->enc.get() : impl_->dec.get()) != 1)
        return fail(ErrorCode::Internal, "Cannot copy cipher context: {}", openssl_error());
    if (impl_->essiv) {
        ivctx.reset(EVP_CIPHER_CTX_new());
        if (!ivctx || EVP_CIPHER_CTX_copy(ivctx.get(), impl_->essiv.get()) != 1)
            return fail(ErrorCode::Internal, "Cannot copy cipher context: {}", openssl_error());
    }
    const bool need_iv = impl_->iv_len > 0;
    uint8_t iv[16], plain_iv[16];
    for (size_t off = 0; off < len; off += kSectorSize, ++sector) {
        const size_t n = std::min<size_t>(kSectorSize, len - off);
        const uint8_t* ivp = nullptr;
        if (need_iv) {
            make_iv(sector, plain_iv);
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

Status SectorCipher::encrypt(uint64_t sector, void* buf, size_t len) const { return run(sector, buf, len, true); }
Status SectorCipher::decrypt(uint64_t sector, void* buf, size_t len) const { return run(sector, buf, len, false); }

}  // namespace vireo::storage::crypto
