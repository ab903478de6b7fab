// The parts of storage/crypto.hpp that need no cipher implementation, and
// the dispatch to the one enable_openssl() installs.
#include "storage/crypto.hpp"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstring>

namespace vireo::storage::crypto {

namespace {

std::atomic<const Backend*> g_backend{nullptr};

Result<const Backend*> backend() {
    const Backend* b = g_backend.load(std::memory_order_acquire);
    if (!b) return fail(ErrorCode::Unsupported, "Encryption is not available in this program");
    return b;
}

// The AES key size of "aes-128" / "aes-192" / "aes-256" (0: not AES).
size_t aes_bits(const std::string& alg) {
    if (alg == "aes-128") return 128;
    if (alg == "aes-192") return 192;
    if (alg == "aes-256") return 256;
    return 0;
}

// QEMU's names of every cipher algorithm it has: the ones vireo cannot
// run are refused as unsupported, not unknown.
bool qemu_knows_cipher(const std::string& alg) {
    static const char* const kAll[] = {"aes-128", "aes-192", "aes-256", "des", "3des", "cast5-128", "serpent-128",
                                       "serpent-192", "serpent-256", "twofish-128", "twofish-192", "twofish-256",
                                       "sm4"};
    return std::find(std::begin(kAll), std::end(kAll), alg) != std::end(kAll);
}

double thread_cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// LUKS1's diffuser: each digest-sized piece of `buf` (the last one maybe
// shorter) replaced by hash(be32(piece index) || piece), truncated.
Status diffuse(const Backend& b, const std::string& hash, size_t dlen, uint8_t* buf, size_t len) {
    std::vector<uint8_t> in(4 + dlen);
    for (size_t i = 0, off = 0; off < len; ++i, off += dlen) {
        size_t n = std::min(dlen, len - off);
        in[0] = static_cast<uint8_t>(i >> 24);
        in[1] = static_cast<uint8_t>(i >> 16);
        in[2] = static_cast<uint8_t>(i >> 8);
        in[3] = static_cast<uint8_t>(i);
        std::memcpy(in.data() + 4, buf + off, n);
        auto d = b.digest(hash, in.data(), 4 + n);
        if (!d) return std::unexpected(d.error());
        std::memcpy(buf + off, d->data(), n);
    }
    return {};
}

}  // namespace

void install_backend(const Backend* b) { g_backend.store(b, std::memory_order_release); }

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
    auto b = backend();
    if (!b) return std::unexpected(b.error());
    return (*b)->check_hash(name);
}

Result<size_t> digest_bytes(const std::string& hash) {
    auto b = backend();
    if (!b) return std::unexpected(b.error());
    return (*b)->digest_bytes(hash);
}

Result<std::vector<uint8_t>> digest(const std::string& hash, const void* data, size_t len) {
    auto b = backend();
    if (!b) return std::unexpected(b.error());
    return (*b)->digest(hash, data, len);
}

Status pbkdf2(const std::string& hash, const std::string& password, const uint8_t* salt, size_t salt_len,
              uint64_t iterations, uint8_t* out, size_t out_len) {
    auto b = backend();
    if (!b) return std::unexpected(b.error());
    return (*b)->pbkdf2(hash, password, salt, salt_len, iterations, out, out_len);
}

Status random_bytes(uint8_t* out, size_t len) {
    auto b = backend();
    if (!b) return std::unexpected(b.error());
    return (*b)->random_bytes(out, len);
}

Result<std::unique_ptr<SectorCipher>> SectorCipher::create(const CipherSpec& spec, const std::vector<uint8_t>& key) {
    auto b = backend();
    if (!b) return std::unexpected(b.error());
    return (*b)->make_cipher(spec, key);
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

Result<std::vector<uint8_t>> af_split(const std::string& hash, const std::vector<uint8_t>& key, uint32_t stripes) {
    auto b = backend();
    if (!b) return std::unexpected(b.error());
    auto dlen = (*b)->digest_bytes(hash);
    if (!dlen) return std::unexpected(dlen.error());
    const size_t bs = key.size();
    std::vector<uint8_t> out(bs * stripes);
    std::vector<uint8_t> block(bs, 0);
    for (uint32_t i = 0; i + 1 < stripes; ++i) {
        uint8_t* d = out.data() + i * bs;
        VIREO_TRY((*b)->random_bytes(d, bs));
        for (size_t k = 0; k < bs; ++k) block[k] ^= d[k];
        VIREO_TRY(diffuse(**b, hash, *dlen, block.data(), bs));
    }
    uint8_t* last = out.data() + (stripes - 1) * bs;
    for (size_t k = 0; k < bs; ++k) last[k] = block[k] ^ key[k];
    return out;
}

Result<std::vector<uint8_t>> af_merge(const std::string& hash, const std::vector<uint8_t>& split, size_t bs,
                                      uint32_t stripes) {
    auto b = backend();
    if (!b) return std::unexpected(b.error());
    if (split.size() < bs * stripes || stripes == 0) return fail(ErrorCode::Corrupt, "LUKS key material too short");
    auto dlen = (*b)->digest_bytes(hash);
    if (!dlen) return std::unexpected(dlen.error());
    std::vector<uint8_t> block(bs, 0);
    for (uint32_t i = 0; i + 1 < stripes; ++i) {
        const uint8_t* d = split.data() + i * bs;
        for (size_t k = 0; k < bs; ++k) block[k] ^= d[k];
        VIREO_TRY(diffuse(**b, hash, *dlen, block.data(), bs));
    }
    const uint8_t* last = split.data() + (stripes - 1) * bs;
    for (size_t k = 0; k < bs; ++k) block[k] ^= last[k];
    return block;
}

}  // namespace vireo::storage::crypto
