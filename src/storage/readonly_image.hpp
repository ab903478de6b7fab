// Base of the formats vireo reads for conversion only (vpc, vhdx, vdi):
// one host file, guest reads, block status and info; every change is
// refused. Internal to src/storage.
#pragma once

#include "storage/image.hpp"

namespace vireo::storage {

class ReadOnlyImage : public Image {
public:
    uint64_t size() const override { return size_; }
    const std::string& filename() const override { return filename_; }
    bool writable() const override { return false; }
    Status write(uint64_t, const void*, size_t) override { return refuse(); }
    Status write_zeroes(uint64_t, uint64_t, bool) override { return refuse(); }
    Status discard(uint64_t, uint64_t) override { return refuse(); }
    Status flush() override { return {}; }
    Status close() override { return {}; }
    Status resize(uint64_t, bool, Preallocation) override { return refuse(); }

protected:
    // Open `path` read-only (opening for writing is refused).
    Status open_file(const std::filesystem::path& path, const OpenOptions& opts) {
        if (opts.writable) return refuse();
        auto f = FileIo::open(path, false, opts.cache);
        if (!f) return std::unexpected(f.error());
        file_ = std::move(*f);
        filename_ = path.string();
        return {};
    }
    Status refuse() const {
        return fail(ErrorCode::Unsupported, "vireo reads {} images for conversion only: they cannot be written",
                    format_name(format()));
    }
    Status check_range(uint64_t off, uint64_t len) const {
        if (off > size_ || len > size_ - off)
            return fail(ErrorCode::InvalidArg, "request [{}, +{}) is outside the image (size {})", off, len, size_);
        return {};
    }
    ImageInfo base_info() const {
        ImageInfo i;
        i.filename = filename_;
        i.format = format();
        i.virtual_size = size_;
        auto a = file_.allocated_bytes();
        if (a) i.actual_size = *a;
        return i;
    }

    FileIo file_;
    std::string filename_;
    uint64_t size_ = 0;
};

}  // namespace vireo::storage
