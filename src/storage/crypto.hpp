// Block encryption primitives for encrypted images (LUKS, qcow2 encryption),
// on OpenSSL's libcrypto: its EVP ciphers take the AES-NI/VAES paths on
// CPUs that have them, and it provides PBKDF2 and the hashes LUKS names.
//
// The OpenSSL code (crypto_openssl.cpp) is reached through enable_openssl(),
// which the programs that handle encrypted images call once (vireo-img,
// vireod, the tests): only they link libcrypto. `vireo`, the virsh twin, is
// linked fully static for its start-up time and reaches the storage code
// through the test driver's pools; libcrypto's static archive would bring
// glibc's dlopen/getaddrinfo into it (link-time warnings, and a dependency
// on the run-time glibc). Without enable_openssl() every operation here
// fails with "Encryption is not available in this program".
//
// Data is encrypted in 512-byte sectors, each with an IV made from its
// sector number by an IV generator (QEMU's and dm-crypt's names):
//   plain    - the sector number, 32 bits little-endian, zero padded
//   plain64  - the sector number, 64 bits little-endian, zero padded
//   essiv    - plain64 encrypted with a key that is hash(data key)
//
//   auto c = crypto::SectorCipher::create({"aes-256", "xts", "plain64", ""}, key);
//   VIREO_TRY(c->encrypt(first_sector, buf, len));
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace vireo::storage::crypto {

constexpr uint64_t kSectorSize = 512;

// Install the OpenSSL implementation (idempotent, thread-safe).
void enable_openssl();

// A cipher as QEMU's encryption options name it.
struct CipherSpec {
    std::string alg = "aes-256";    // aes-128, aes-192, aes-256
    std::string mode = "xts";       // xts, cbc, ecb, ctr
    std::string ivgen = "plain64";  // plain, plain64, essiv
    std::string ivgen_hash;         // essiv only: the hash of the IV key
};

// Key length in bytes of a cipher (xts takes two keys); errors in QEMU's
// words for algorithms and modes it does not know or vireo cannot run.
Result<size_t> key_bytes(const CipherSpec& spec);

// A hash algorithm QEMU's LUKS driver accepts (md5, sha1, sha224, sha256,
// sha384, sha512, ripemd160).
Status check_hash(const std::string& name);
Result<size_t> digest_bytes(const std::string& hash);
Result<std::vector<uint8_t>> digest(const std::string& hash, const void* data, size_t len);

// PBKDF2-HMAC-<hash>.
Status pbkdf2(const std::string& hash, const std::string& password, const uint8_t* salt, size_t salt_len,
              uint64_t iterations, uint8_t* out, size_t out_len);
// How many PBKDF2 iterations of `hash` this machine runs in `ms`
// milliseconds of CPU time for a key of `key_len` bytes (measured).
Result<uint64_t> pbkdf2_iterations_for(const std::string& hash, size_t key_len, uint64_t ms);

// Cryptographically strong random bytes.
Status random_bytes(uint8_t* out, size_t len);

// The anti-forensic splitter of LUKS1: `key` spread over `stripes` blocks
// of key.size() bytes (each block diffused through `hash`), and back.
Result<std::vector<uint8_t>> af_split(const std::string& hash, const std::vector<uint8_t>& key, uint32_t stripes);
Result<std::vector<uint8_t>> af_merge(const std::string& hash, const std::vector<uint8_t>& split, size_t key_len,
                                      uint32_t stripes);

// Encrypts and decrypts runs of 512-byte sectors with one data key.
// Thread-safe: every call works on its own cipher context.
class SectorCipher {
public:
    static Result<std::unique_ptr<SectorCipher>> create(const CipherSpec& spec, const std::vector<uint8_t>& key);
    virtual ~SectorCipher() = default;
    SectorCipher(const SectorCipher&) = delete;
    SectorCipher& operator=(const SectorCipher&) = delete;

    // In place; `len` a multiple of 16 (the last sector may be short).
    // `sector` numbers the first 512 bytes of buf.
    virtual Status encrypt(uint64_t sector, void* buf, size_t len) const = 0;
    virtual Status decrypt(uint64_t sector, void* buf, size_t len) const = 0;
    [[nodiscard]] const CipherSpec& spec() const { return spec_; }

protected:
    explicit SectorCipher(CipherSpec spec) : spec_(std::move(spec)) {}

private:
    CipherSpec spec_;
};

// What enable_openssl() installs: the functions above that need a cipher
// or hash implementation.
struct Backend {
    Status (*check_hash)(const std::string& name);
    Result<size_t> (*digest_bytes)(const std::string& hash);
    Result<std::vector<uint8_t>> (*digest)(const std::string& hash, const void* data, size_t len);
    Status (*pbkdf2)(const std::string& hash, const std::string& password, const uint8_t* salt, size_t salt_len,
                     uint64_t iterations, uint8_t* out, size_t out_len);
    Status (*random_bytes)(uint8_t* out, size_t len);
    Result<std::unique_ptr<SectorCipher>> (*make_cipher)(const CipherSpec& spec, const std::vector<uint8_t>& key);
};
void install_backend(const Backend* b);

}  // namespace vireo::storage::crypto
