// Raw images: guest offset == file offset.
#pragma once

#include "storage/image.hpp"

namespace vireo::storage {

class RawImage final : public Image {
public:
    static Result<ImagePtr> open(const std::filesystem::path& path, const OpenOptions& opts);
    static Status create(const std::filesystem::path& path, const CreateOptions& opts);

    ImageFormat format() const override { return ImageFormat::Raw; }
    uint64_t size() const override { return size_; }
    const std::string& filename() const override { return filename_; }
    bool writable() const override { return file_.writable(); }
    Status read(uint64_t off, void* buf, size_t len) override;
    Status write(uint64_t off, const void* buf, size_t len) override;
    Status write_zeroes(uint64_t off, uint64_t len, bool unmap) override;
    Status discard(uint64_t off, uint64_t len) override;
    Status flush() override { return file_.flush(); }
    Status close() override { return {}; }
    Status resize(uint64_t new_size, bool shrink, Preallocation prealloc) override;
    Result<Extent> block_status(uint64_t off, uint64_t len) override;
    // qemu-img convert finds zeroes in 4 KiB blocks of a raw target.
    uint32_t cluster_size() const override { return 4096; }
    int data_fd() const override { return file_.fd(); }
    Result<Extent> map_range(uint64_t off, uint64_t len) override {
        VIREO_TRY(check_range(off, len));
        Extent e;
        e.start = off;
        e.length = len;
        e.kind = ExtentKind::Data;
        e.host_offset = off;
        e.in_place = file_.writable();
        return e;
    }
    Result<ImageInfo> info() override;

private:
    Status check_range(uint64_t off, uint64_t len) const;
    FileIo file_;
    std::string filename_;
    uint64_t size_ = 0;
};

}  // namespace vireo::storage
