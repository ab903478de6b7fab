// vmdk (VMware's Virtual Disk Format 1.1, as QEMU reads and writes it): a
// text descriptor naming extents, each flat (raw data at an offset of a
// file), sparse (a "KDMV" hosted sparse extent: grain directory, grain
// tables, 64 KiB grains; zlib-compressed grains behind markers in
// streamOptimized) or zero. The subformats are layouts of these:
//   monolithicSparse      one sparse file, descriptor embedded
//   streamOptimized       the same with compressed grains
//   monolithicFlat        descriptor file + one flat file
//   twoGbMaxExtentSparse  descriptor file + 2 GiB sparse extent files
//   twoGbMaxExtentFlat    descriptor file + 2 GiB flat extent files
// A parentFileNameHint makes another vmdk the backing image.
// Internal to src/storage.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "storage/image.hpp"
#include "storage/qcow2.hpp"

namespace vireo::storage {

class VmdkImage final : public Image {
public:
    static Result<ImagePtr> open(const std::filesystem::path& path, const OpenOptions& opts);
    static Status create(const std::filesystem::path& path, const CreateOptions& opts);

    ImageFormat format() const override { return ImageFormat::Vmdk; }
    uint64_t size() const override { return size_; }
    const std::string& filename() const override { return filename_; }
    bool writable() const override { return writable_; }
    Status read(uint64_t off, void* buf, size_t len) override;
    Status write(uint64_t off, const void* buf, size_t len) override;
    Status write_zeroes(uint64_t off, uint64_t len, bool unmap) override;
    Status discard(uint64_t, uint64_t) override { return {}; }  // vmdk has no discard (as QEMU's driver)
    Status flush() override;
    Status close() override { return flush(); }
    Status resize(uint64_t new_size, bool shrink, Preallocation prealloc) override;
    Result<Extent> block_status(uint64_t off, uint64_t len) override;
    Image* backing() const override { return backing_.get(); }
    uint32_t cluster_size() const override;
    Result<ImageInfo> info() override;

    // qemu-img check: grains pointing past the end of their file.
    Result<qcow2::CheckResult> check();

    struct VExtent;  // one extent (vmdk.cpp)
    ~VmdkImage() override;

private:
    VmdkImage() = default;
    Status parse_descriptor(const std::string& text, bool embedded, const OpenOptions& opts);
    Status open_parent(const OpenOptions& opts);
    // The extent holding guest byte `off`, and the offset inside it.
    std::pair<VExtent*, uint64_t> find(uint64_t off);
    Status check_range(uint64_t off, uint64_t len) const;

    std::string filename_;
    std::string descriptor_;
    bool writable_ = false;
    uint64_t size_ = 0;
    uint32_t cid_ = 0, parent_cid_ = 0xffffffff;
    std::string create_type_;
    std::string parent_hint_;
    std::vector<std::unique_ptr<VExtent>> extents_;
    std::shared_ptr<FileIo> desc_file_;  // the file opened (descriptor or monolithic extent)
    ImagePtr backing_;
};

// The VmdkImage behind an Image, or nullptr.
VmdkImage* vmdk_cast(Image* img);

}  // namespace vireo::storage
