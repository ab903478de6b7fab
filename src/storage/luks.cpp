#include "storage/luks.hpp"

#include <algorithm>
#include <cstring>

#include "storage/endian.hpp"

namespace vireo::storage::luks {

namespace {

constexpr uint8_t kMagic[6] = {'L', 'U', 'K', 'S', 0xba, 0xbe};
constexpr uint64_t kSlotAlign = 4096;  // key material of each slot, and slot 0's start

std::string field(const uint8_t* p, size_t n) {
    const auto* c = reinterpret_cast<const char*>(p);
    return std::string(c, strnlen(c, n));
}

void put_field(uint8_t* p, size_t n, const std::string& s) {
    std::copy_n(s.data(), std::min(n - 1, s.size()), p);
}

// Offsets inside the 592-byte header.
constexpr size_t kOffVersion = 6, kOffCipherName = 8, kOffCipherMode = 40, kOffHash = 72, kOffPayload = 104,
                 kOffKeyBytes = 108, kOffDigest = 112, kOffDigestSalt = 132, kOffDigestIter = 164, kOffUuid = 168,
                 kOffSlots = 208, kSlotLen = 48;

std::string make_uuid() {
    uint8_t b[16];
    if (!crypto::random_bytes(b, sizeof b)) std::memset(b, 0x5a, sizeof b);
    b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
    return fmt::format("{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                       b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                       b[15]);
}

// The key material of one slot: the split key encrypted with the slot's
// key (the cipher of the header, sectors counted from 0).
Result<std::unique_ptr<crypto::SectorCipher>> slot_cipher(const Header& h, const std::vector<uint8_t>& slot_key) {
    return crypto::SectorCipher::create(h.cipher_spec(), slot_key);
}

Result<uint64_t> slot_iterations(const std::string& hash, size_t key_len, uint64_t iter_time_ms) {
    auto it = crypto::pbkdf2_iterations_for(hash, key_len, iter_time_ms);
    if (!it) return std::unexpected(it.error());
    if (*it > UINT32_MAX) return fail(ErrorCode::InvalidArg, "PBKDF iterations {} larger than {}", *it, UINT32_MAX);
    return std::max<uint64_t>(*it, kMinIterations);
}

}  // namespace

uint64_t slot_size(uint32_t key_bytes, uint32_t stripes) {
    uint64_t bytes = uint64_t{key_bytes} * stripes;
    uint64_t sectors = (bytes + crypto::kSectorSize - 1) / crypto::kSectorSize;
    const uint64_t align = kSlotAlign / crypto::kSectorSize;
    return (sectors + align - 1) / align * align * crypto::kSectorSize;
}

crypto::CipherSpec Header::cipher_spec() const {
    crypto::CipherSpec s;
    std::string mode = cipher_mode;
    auto dash = mode.find('-');
    std::string ivspec = dash == std::string::npos ? "" : mode.substr(dash + 1);
    s.mode = mode.substr(0, dash);
    auto colon = ivspec.find(':');
    s.ivgen = ivspec.substr(0, colon);
    if (colon != std::string::npos) s.ivgen_hash = ivspec.substr(colon + 1);
    uint32_t kb = s.mode == "xts" ? key_bytes / 2 : key_bytes;
    s.alg = cipher_name == "aes" ? fmt::format("aes-{}", kb * 8) : fmt::format("{}-{}", cipher_name, kb * 8);
    return s;
}

Result<Header> parse_header(const uint8_t* b, size_t len) {
    if (len < kHeaderSize || std::memcmp(b, kMagic, sizeof kMagic) != 0)
        return fail(ErrorCode::InvalidArg, "Volume is not in LUKS format");
    uint16_t version = load_be16(b + kOffVersion);
    if (version != 1) return fail(ErrorCode::Unsupported, "LUKS version {} is not supported", version);
    Header h;
    h.cipher_name = field(b + kOffCipherName, 32);
    h.cipher_mode = field(b + kOffCipherMode, 32);
    h.hash_spec = field(b + kOffHash, 32);
    h.payload_offset = load_be32(b + kOffPayload);
    h.key_bytes = load_be32(b + kOffKeyBytes);
    std::memcpy(h.mk_digest.data(), b + kOffDigest, 20);
    std::memcpy(h.mk_digest_salt.data(), b + kOffDigestSalt, 32);
    h.mk_digest_iterations = load_be32(b + kOffDigestIter);
    h.uuid = field(b + kOffUuid, 40);
    for (int i = 0; i < kSlots; ++i) {
        const uint8_t* s = b + kOffSlots + static_cast<size_t>(i) * kSlotLen;
        KeySlot& k = h.slots[static_cast<size_t>(i)];
        k.active = load_be32(s) == kSlotActive;
        k.iterations = load_be32(s + 4);
        std::memcpy(k.salt.data(), s + 8, 32);
        k.key_offset = load_be32(s + 40);
        k.stripes = load_be32(s + 44);
    }
    // The mode string is <mode>-<ivgen>[:<hash>] (QEMU's checks).
    if (h.cipher_mode.find('-') == std::string::npos)
        return fail(ErrorCode::InvalidArg, "Unexpected cipher mode string format {}", h.cipher_mode);
    auto spec = h.cipher_spec();
    if (spec.mode != "xts" && spec.mode != "cbc" && spec.mode != "ecb" && spec.mode != "ctr")
        return fail(ErrorCode::Unsupported, "Cipher mode {} not supported", spec.mode);
    if (spec.ivgen != "plain" && spec.ivgen != "plain64" && spec.ivgen != "essiv")
        return fail(ErrorCode::Unsupported, "IV generator {} not supported", spec.ivgen);
    if (spec.ivgen == "essiv" && spec.ivgen_hash.empty())
        return fail(ErrorCode::InvalidArg, "Missing IV generator hash specification");
    auto kb = crypto::key_bytes(spec);
    if (!kb || *kb != h.key_bytes)
        return fail(ErrorCode::Unsupported, "Algorithm {} with key size {} bytes not supported", h.cipher_name,
                    spec.mode == "xts" ? h.key_bytes / 2 : h.key_bytes);
    if (!crypto::check_hash(h.hash_spec)) return fail(ErrorCode::Unsupported, "Hash algorithm {} not supported", h.hash_spec);
    // Key material must lie between the header and the payload, and a
    // slot's stripes must not make us read gigabytes.
    for (int i = 0; i < kSlots; ++i) {
        const KeySlot& k = h.slots[static_cast<size_t>(i)];
        if (!k.active) continue;
        if (k.stripes == 0 || k.stripes > 100000 || k.iterations == 0)
            return fail(ErrorCode::Corrupt, "Keyslot {} is corrupted (stripes {}, iterations {})", i, k.stripes, k.iterations);
        uint64_t start = uint64_t{k.key_offset} * crypto::kSectorSize;
        uint64_t end = start + uint64_t{h.key_bytes} * k.stripes;
        if (start < kHeaderSize || end > uint64_t{h.payload_offset} * crypto::kSectorSize)
            return fail(ErrorCode::Corrupt, "Keyslot {} is overlapping with the encrypted payload", i);
    }
    return h;
}

std::vector<uint8_t> serialize_header(const Header& h) {
    std::vector<uint8_t> b(kHeaderSize, 0);
    std::memcpy(b.data(), kMagic, sizeof kMagic);
    store_be16(b.data() + kOffVersion, 1);
    put_field(b.data() + kOffCipherName, 32, h.cipher_name);
    put_field(b.data() + kOffCipherMode, 32, h.cipher_mode);
    put_field(b.data() + kOffHash, 32, h.hash_spec);
    store_be32(b.data() + kOffPayload, h.payload_offset);
    store_be32(b.data() + kOffKeyBytes, h.key_bytes);
    std::memcpy(b.data() + kOffDigest, h.mk_digest.data(), 20);
    std::memcpy(b.data() + kOffDigestSalt, h.mk_digest_salt.data(), 32);
    store_be32(b.data() + kOffDigestIter, h.mk_digest_iterations);
    put_field(b.data() + kOffUuid, 40, h.uuid);
    for (int i = 0; i < kSlots; ++i) {
        uint8_t* s = b.data() + kOffSlots + static_cast<size_t>(i) * kSlotLen;
        const KeySlot& k = h.slots[static_cast<size_t>(i)];
        store_be32(s, k.active ? kSlotActive : kSlotInactive);
        store_be32(s + 4, k.iterations);
        std::memcpy(s + 8, k.salt.data(), 32);
        store_be32(s + 40, k.key_offset);
        store_be32(s + 44, k.stripes);
    }
    return b;
}

LuksInfo info_of(const Header& h) {
    LuksInfo i;
    auto spec = h.cipher_spec();
    i.cipher_alg = spec.alg;
    i.cipher_mode = spec.mode;
    i.ivgen_alg = spec.ivgen;
    if (spec.ivgen == "essiv") i.ivgen_hash_alg = spec.ivgen_hash;
    i.hash_alg = h.hash_spec;
    i.uuid = h.uuid;
    i.payload_offset = uint64_t{h.payload_offset} * crypto::kSectorSize;
    i.master_key_iters = h.mk_digest_iterations;
    for (const auto& k : h.slots)
        i.slots.push_back(LuksSlotInfo{k.active, k.iterations, k.stripes, uint64_t{k.key_offset} * crypto::kSectorSize});
    return i;
}

CreateSpec create_spec(const EncryptOptions& e) {
    CreateSpec s;
    s.cipher.alg = e.cipher_alg;
    s.cipher.mode = e.cipher_mode;
    s.cipher.ivgen = e.ivgen_alg;
    s.cipher.ivgen_hash = e.ivgen_hash_alg;
    s.hash = e.hash_alg;
    s.iter_time_ms = e.iter_time;
    return s;
}

Result<std::string> need_key(const std::optional<std::string>& key, const std::string& prefix) {
    if (!key) return fail(ErrorCode::InvalidArg, "Parameter '{}key-secret' is required for cipher", prefix);
    return *key;
}

Result<std::string> need_key(const EncryptOptions& e, const std::string& prefix) {
    if (!e.key && !e.key_secret_id.empty()) return fail(ErrorCode::InvalidArg, "No secret with id '{}'", e.key_secret_id);
    return need_key(e.key, prefix);
}

Result<Header> Volume::read_header(const HeaderIo& io) {
    std::vector<uint8_t> b(kHeaderSize);
    VIREO_TRY(io.read(0, b.data(), b.size()));
    return parse_header(b.data(), b.size());
}

Status Volume::write_header(const HeaderIo& io) const {
    auto b = serialize_header(h_);
    return io.write(0, b.data(), b.size());
}

Result<std::unique_ptr<Volume>> Volume::create(const CreateSpec& spec, const std::string& password,
                                               const HeaderIo& io) {
    auto kb = crypto::key_bytes(spec.cipher);
    if (!kb) return std::unexpected(kb.error());
    VIREO_TRY(crypto::check_hash(spec.hash));
    crypto::CipherSpec cs = spec.cipher;
    if (cs.ivgen == "essiv" && cs.ivgen_hash.empty()) cs.ivgen_hash = "sha256";
    if (!cs.ivgen_hash.empty()) VIREO_TRY(crypto::check_hash(cs.ivgen_hash));
    if (spec.iter_time_ms == 0) return fail(ErrorCode::InvalidArg, "Parameter 'iter-time' must be greater than 0");

    std::unique_ptr<Volume> v(new Volume());
    Header& h = v->h_;
    h.cipher_name = "aes";
    h.cipher_mode = cs.ivgen_hash.empty() ? fmt::format("{}-{}", cs.mode, cs.ivgen)
                                          : fmt::format("{}-{}:{}", cs.mode, cs.ivgen, cs.ivgen_hash);
    h.hash_spec = spec.hash;
    h.key_bytes = static_cast<uint32_t>(*kb);
    h.uuid = make_uuid();
    v->master_key_.resize(*kb);
    VIREO_TRY(crypto::random_bytes(v->master_key_.data(), v->master_key_.size()));
    VIREO_TRY(crypto::random_bytes(h.mk_digest_salt.data(), h.mk_digest_salt.size()));
    auto cipher = crypto::SectorCipher::create(cs, v->master_key_);
    if (!cipher) return std::unexpected(cipher.error());
    v->cipher_ = std::move(*cipher);

    // The master key digest takes an eighth of iter-time (as cryptsetup
    // and QEMU), a key slot all of it.
    auto mk_iters = crypto::pbkdf2_iterations_for(spec.hash, 20, spec.iter_time_ms);
    if (!mk_iters) return std::unexpected(mk_iters.error());
    h.mk_digest_iterations = static_cast<uint32_t>(std::max<uint64_t>(*mk_iters / 8, kMinIterations));
    VIREO_TRY(crypto::pbkdf2(spec.hash, std::string(v->master_key_.begin(), v->master_key_.end()),
                             h.mk_digest_salt.data(), h.mk_digest_salt.size(), h.mk_digest_iterations,
                             h.mk_digest.data(), h.mk_digest.size()));

    const uint64_t ssize = slot_size(h.key_bytes, kStripes);
    for (int i = 0; i < kSlots; ++i) {
        KeySlot& k = h.slots[static_cast<size_t>(i)];
        k.active = false;
        k.stripes = kStripes;
        k.key_offset = static_cast<uint32_t>((kSlotAlign + ssize * static_cast<uint64_t>(i)) / crypto::kSectorSize);
    }
    h.payload_offset = static_cast<uint32_t>((kSlotAlign + ssize * kSlots) / crypto::kSectorSize);
    auto iters = slot_iterations(spec.hash, h.key_bytes, spec.iter_time_ms);
    if (!iters) return std::unexpected(iters.error());
    VIREO_TRY(v->write_slot(0, password, *iters, io));
    VIREO_TRY(v->write_header(io));
    return v;
}

Status Volume::write_slot(int slot, const std::string& password, uint64_t iterations, const HeaderIo& io) {
    KeySlot& k = h_.slots[static_cast<size_t>(slot)];
    VIREO_TRY(crypto::random_bytes(k.salt.data(), k.salt.size()));
    k.iterations = static_cast<uint32_t>(iterations);
    k.stripes = kStripes;
    std::vector<uint8_t> slot_key(h_.key_bytes);
    VIREO_TRY(crypto::pbkdf2(h_.hash_spec, password, k.salt.data(), k.salt.size(), k.iterations, slot_key.data(),
                             slot_key.size()));
    auto split = crypto::af_split(h_.hash_spec, master_key_, k.stripes);
    if (!split) return std::unexpected(split.error());
    auto c = slot_cipher(h_, slot_key);
    if (!c) return std::unexpected(c.error());
    // Encrypted in place as whole 512-byte sectors (the last one short).
    VIREO_TRY((*c)->encrypt(0, split->data(), split->size()));
    VIREO_TRY(io.write(uint64_t{k.key_offset} * crypto::kSectorSize, split->data(), split->size()));
    k.active = true;
    return {};
}

Result<std::optional<std::vector<uint8_t>>> Volume::unlock_slot(int slot, const std::string& password,
                                                                const HeaderIo& io) const {
    const KeySlot& k = h_.slots[static_cast<size_t>(slot)];
    if (!k.active) return std::nullopt;
    std::vector<uint8_t> slot_key(h_.key_bytes);
    VIREO_TRY(crypto::pbkdf2(h_.hash_spec, password, k.salt.data(), k.salt.size(), k.iterations, slot_key.data(),
                             slot_key.size()));
    std::vector<uint8_t> split(uint64_t{h_.key_bytes} * k.stripes);
    VIREO_TRY(io.read(uint64_t{k.key_offset} * crypto::kSectorSize, split.data(), split.size()));
    auto c = slot_cipher(h_, slot_key);
    if (!c) return std::unexpected(c.error());
    VIREO_TRY((*c)->decrypt(0, split.data(), split.size()));
    auto mk = crypto::af_merge(h_.hash_spec, split, h_.key_bytes, k.stripes);
    if (!mk) return std::unexpected(mk.error());
    uint8_t d[20];
    VIREO_TRY(crypto::pbkdf2(h_.hash_spec, std::string(mk->begin(), mk->end()), h_.mk_digest_salt.data(),
                             h_.mk_digest_salt.size(), h_.mk_digest_iterations, d, sizeof d));
    if (std::memcmp(d, h_.mk_digest.data(), sizeof d) != 0) return std::nullopt;
    return std::move(*mk);
}

Result<std::unique_ptr<Volume>> Volume::open(const HeaderIo& io, const std::string& password) {
    auto h = read_header(io);
    if (!h) return std::unexpected(h.error());
    std::unique_ptr<Volume> v(new Volume());
    v->h_ = std::move(*h);
    for (int i = 0; i < kSlots && v->master_key_.empty(); ++i) {
        auto mk = v->unlock_slot(i, password, io);
        if (!mk) return std::unexpected(mk.error());
        if (*mk) v->master_key_ = std::move(**mk);
    }
    if (v->master_key_.empty()) return fail(ErrorCode::PermissionDenied, "Invalid password, cannot unlock any keyslot");
    auto c = crypto::SectorCipher::create(v->h_.cipher_spec(), v->master_key_);
    if (!c) return std::unexpected(c.error());
    v->cipher_ = std::move(*c);
    return v;
}

Status Volume::wipe_slot(int slot, const HeaderIo& io) {
    KeySlot& k = h_.slots[static_cast<size_t>(slot)];
    // Overwrite the key material with random data, then mark the slot
    // free in the header.
    std::vector<uint8_t> junk(uint64_t{h_.key_bytes} * k.stripes);
    VIREO_TRY(crypto::random_bytes(junk.data(), junk.size()));
    VIREO_TRY(io.write(uint64_t{k.key_offset} * crypto::kSectorSize, junk.data(), junk.size()));
    k.active = false;
    k.iterations = 0;
    k.salt.fill(0);
    return {};
}

Status Volume::add_key(std::optional<int> slot, const std::string& password, uint64_t iter_time_ms,
                       const HeaderIo& io) {
    int target = -1;
    if (slot) {
        if (*slot < 0 || *slot >= kSlots)
            return fail(ErrorCode::InvalidArg, "Invalid keyslot {} specified, must be between 0 and {}", *slot, kSlots - 1);
        if (h_.slots[static_cast<size_t>(*slot)].active)
            return fail(ErrorCode::InvalidArg, "Refusing to overwrite active keyslot {} - please erase it first", *slot);
        target = *slot;
    } else {
        for (int i = 0; i < kSlots && target < 0; ++i)
            if (!h_.slots[static_cast<size_t>(i)].active) target = i;
        if (target < 0) return fail(ErrorCode::InvalidArg, "Can't add a keyslot - all keyslots are in use");
    }
    auto iters = slot_iterations(h_.hash_spec, h_.key_bytes, iter_time_ms);
    if (!iters) return std::unexpected(iters.error());
    VIREO_TRY(write_slot(target, password, *iters, io));
    return write_header(io);
}

Status Volume::erase_keys(std::optional<int> slot, const std::optional<std::string>& old_password, bool force,
                          const HeaderIo& io) {
    int active = 0;
    for (const auto& k : h_.slots) active += k.active ? 1 : 0;
    std::vector<int> erase;
    if (slot) {
        if (*slot < 0 || *slot >= kSlots)
            return fail(ErrorCode::InvalidArg, "Invalid keyslot {} specified, must be between 0 and {}", *slot, kSlots - 1);
        if (!h_.slots[static_cast<size_t>(*slot)].active)
            return fail(ErrorCode::InvalidArg, "Given keyslot {} is already erased (inactive) ", *slot);
        erase.push_back(*slot);
    } else if (old_password) {
        for (int i = 0; i < kSlots; ++i) {
            auto mk = unlock_slot(i, *old_password, io);
            if (!mk) return std::unexpected(mk.error());
            if (*mk) erase.push_back(i);
        }
        if (erase.empty())
            return fail(ErrorCode::InvalidArg, "No keyslots match given (old) password for erase operation");
    } else {
        return fail(ErrorCode::InvalidArg,
                    "To erase keyslot(s), either explicit keyslot index or the password currently contained in them "
                    "must be given");
    }
    if (!force && static_cast<int>(erase.size()) >= active) {
        if (slot)
            return fail(ErrorCode::InvalidArg,
                        "Attempt to erase the only active keyslot {} which will erase all the data in the image "
                        "irreversibly - refusing operation", *slot);
        return fail(ErrorCode::InvalidArg,
                    "All the active keyslots match the (old) password that was given and erasing them will erase all "
                    "the data in the image irreversibly - refusing operation");
    }
    for (int i : erase) VIREO_TRY(wipe_slot(i, io));
    return write_header(io);
}

}  // namespace vireo::storage::luks
