// LUKS1 (the LUKS on-disk format specification 1.2, as QEMU's `luks`
// driver writes it): a 592-byte header, eight key slots each holding the
// master key split by the anti-forensic splitter and encrypted with a
// PBKDF2-derived key, then the encrypted payload.
//
// The header and key material are reached through a HeaderIo, so the same
// code serves a LUKS file (header at offset 0) and LUKS inside qcow2
// (header in clusters that the crypto header extension names).
//
// Layout as QEMU makes it: the header in the first 4 KiB, key slots one
// after the other each rounded up to 4 KiB, the payload right after the
// last slot.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/crypto.hpp"
#include "storage/image.hpp"
#include "util/error.hpp"

namespace vireo::storage::luks {

constexpr size_t kHeaderSize = 592;
constexpr uint32_t kSlotActive = 0x00AC71F3;
constexpr uint32_t kSlotInactive = 0x0000DEAD;
constexpr int kSlots = 8;
constexpr uint32_t kStripes = 4000;
constexpr uint64_t kMinIterations = 1000;

// Reads/writes at byte offsets relative to the start of the LUKS header.
struct HeaderIo {
    std::function<Status(uint64_t off, void* buf, size_t len)> read;
    std::function<Status(uint64_t off, const void* buf, size_t len)> write;
};

struct KeySlot {
    bool active = false;
    uint32_t iterations = 0;
    std::array<uint8_t, 32> salt{};
    uint32_t key_offset = 0;  // sectors from the header start
    uint32_t stripes = kStripes;
};

struct Header {
    std::string cipher_name;  // "aes"
    std::string cipher_mode;  // "xts-plain64", "cbc-essiv:sha256"
    std::string hash_spec;    // "sha256"
    uint32_t payload_offset = 0;  // sectors
    uint32_t key_bytes = 0;
    std::array<uint8_t, 20> mk_digest{};
    std::array<uint8_t, 32> mk_digest_salt{};
    uint32_t mk_digest_iterations = 0;
    std::string uuid;
    std::array<KeySlot, kSlots> slots{};

    // The header's cipher as QEMU's options name it (aes-256, xts, plain64).
    [[nodiscard]] crypto::CipherSpec cipher_spec() const;
};

// Parse / serialise the 592-byte header (QEMU's checks and messages).
Result<Header> parse_header(const uint8_t* buf, size_t len);
std::vector<uint8_t> serialize_header(const Header& h);

// Creation options (QEMU's luks create options).
struct CreateSpec {
    crypto::CipherSpec cipher;         // alg, mode, ivgen, ivgen hash
    std::string hash = "sha256";       // hash-alg
    uint64_t iter_time_ms = 2000;      // iter-time
};

// The unlocked volume: header and master key.
class Volume {
public:
    // Make a new header with a fresh master key in slot 0 protected by
    // `password`, and write header and key material through io.
    static Result<std::unique_ptr<Volume>> create(const CreateSpec& spec, const std::string& password,
                                                  const HeaderIo& io);
    // Read the header; with a password, unlock it (QEMU's "Invalid
    // password, cannot unlock any keyslot" when none opens).
    static Result<Header> read_header(const HeaderIo& io);
    static Result<std::unique_ptr<Volume>> open(const HeaderIo& io, const std::string& password);

    [[nodiscard]] const Header& header() const { return h_; }
    [[nodiscard]] const crypto::SectorCipher& cipher() const { return *cipher_; }
    [[nodiscard]] uint64_t payload_offset() const { return uint64_t{h_.payload_offset} * crypto::kSectorSize; }

    // Key slot management (qemu-img amend of luks / encrypt.*):
    // state=active: put the master key in slot `slot` (or the first free
    // one) under `password`.
    Status add_key(std::optional<int> slot, const std::string& password, uint64_t iter_time_ms, const HeaderIo& io);
    // state=inactive: erase slot `slot`, or every slot `old_password`
    // opens. `force` allows erasing the last active slot.
    Status erase_keys(std::optional<int> slot, const std::optional<std::string>& old_password, bool force,
                      const HeaderIo& io);

private:
    Volume() = default;
    Status write_slot(int slot, const std::string& password, uint64_t iterations, const HeaderIo& io);
    Status wipe_slot(int slot, const HeaderIo& io);
    // The master key when `password` opens slot `slot`, nullopt if not.
    Result<std::optional<std::vector<uint8_t>>> unlock_slot(int slot, const std::string& password,
                                                            const HeaderIo& io) const;
    Status write_header(const HeaderIo& io) const;

    Header h_;
    std::vector<uint8_t> master_key_;
    std::unique_ptr<crypto::SectorCipher> cipher_;
};

// Bytes of key material per slot, rounded up to 4 KiB (QEMU's layout).
uint64_t slot_size(uint32_t key_bytes, uint32_t stripes);

// The header as `info` shows it.
LuksInfo info_of(const Header& h);

// What `create` and `amend` take from EncryptOptions.
CreateSpec create_spec(const EncryptOptions& e);

// The passphrase of an image to be read or written: QEMU's message
// ("Parameter '<prefix>key-secret' is required for cipher") without one.
Result<std::string> need_key(const std::optional<std::string>& key, const std::string& prefix);
// The same for a new image: also "No secret with id 'x'" when the
// key-secret named no secret object.
Result<std::string> need_key(const EncryptOptions& e, const std::string& prefix);

}  // namespace vireo::storage::luks
