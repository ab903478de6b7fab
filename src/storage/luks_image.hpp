// The LUKS image format (QEMU's `luks` driver): a LUKS1 header and key
// slots (storage/luks.hpp), then the payload, every 512-byte sector
// encrypted with the master key and an IV from its sector number
// (counted from the payload's start). Internal to src/storage.
#pragma once

#include <memory>

#include "storage/image.hpp"
#include "storage/luks.hpp"

namespace vireo::storage {

class LuksImage final : public Image {
public:
    static Result<ImagePtr> open(const std::filesystem::path& path, const OpenOptions& opts);
    static Status create(const std::filesystem::path& path, const CreateOptions& opts);

    ImageFormat format() const override { return ImageFormat::Luks; }
    uint64_t size() const override { return size_; }
    const std::string& filename() const override { return filename_; }
    bool writable() const override { return file_.writable(); }
    Status read(uint64_t off, void* buf, size_t len) override;
    Status write(uint64_t off, const void* buf, size_t len) override;
    Status write_zeroes(uint64_t off, uint64_t len, bool unmap) override;
    Status discard(uint64_t, uint64_t) override { return {}; }  // QEMU's crypto driver ignores discards
    Status flush() override { return file_.flush(); }
    Status close() override { return {}; }
    Status resize(uint64_t new_size, bool shrink, Preallocation prealloc) override;
    Result<Extent> block_status(uint64_t off, uint64_t len) override;
    bool zero_init() const override { return false; }
    Result<ImageInfo> info() override;

    // amend: key slots (state, new-secret, old-secret, keyslot, iter-time).
    luks::Volume* volume() { return vol_.get(); }
    luks::HeaderIo header_io();

private:
    Status check_range(uint64_t off, uint64_t len) const;
    Status need_volume() const;

    FileIo file_;
    std::string filename_;
    uint64_t size_ = 0;
    uint64_t payload_ = 0;
    luks::Header header_;
    std::unique_ptr<luks::Volume> vol_;  // null when opened without a key (info)
};

// The LuksImage behind an Image, or nullptr.
LuksImage* luks_cast(Image* img);

// Encrypted I/O shared with qcow2: `len` bytes of plaintext at host
// offset `file_off` of `f`, whose IV position (byte offset the sector
// numbers count) is `iv_off`; the two are equal modulo 512. Unaligned
// edges are read-modify-write of whole sectors.
Status encrypted_read(const FileIo& f, const crypto::SectorCipher& c, uint64_t file_off, uint64_t iv_off, char* buf,
                      size_t len);
Status encrypted_write(FileIo& f, const crypto::SectorCipher& c, uint64_t file_off, uint64_t iv_off, const char* buf,
                       size_t len);

}  // namespace vireo::storage
