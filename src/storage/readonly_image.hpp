// Base of the formats vireo reads for conversion only (vpc, vhdx, vdi):
// one host file, guest reads, block status and info; every change is
// refused. Internal to src/storage.
#pragma once

#include <algorithm>
#include <cstring>
#include <optional>

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

// A read-only image stored in blocks of one size, each either at one host
// offset or reading zero (vpc dynamic, vhdx, vdi): reads and block status
// walk the blocks through the format's own lookup, block_host().
class BlockMappedImage : public ReadOnlyImage {
public:
    Status read(uint64_t off, void* vbuf, size_t len) override {
        VIREO_TRY(check_range(off, len));
        char* buf = static_cast<char*>(vbuf);
        while (len > 0) {
            const uint64_t in = off % block_size_;
            const auto n = static_cast<size_t>(std::min<uint64_t>(len, block_size_ - in));
            auto h = block_host(off);
            if (!h) return std::unexpected(h.error());
            if (*h) VIREO_TRY(file_.read(buf, n, **h));
            else std::memset(buf, 0, n);
            off += n;
            buf += n;
            len -= n;
        }
        return {};
    }

    // Whole blocks of one kind: data contiguous in the host file, or zero.
    Result<Extent> block_status(uint64_t off, uint64_t len) override {
        VIREO_TRY(check_range(off, len));
        auto h0 = block_host(off);
        if (!h0) return std::unexpected(h0.error());
        uint64_t n = std::min<uint64_t>(len, block_size_ - off % block_size_);
        while (n < len) {
            auto h = block_host(off + n);
            if (!h) return std::unexpected(h.error());
            if (h->has_value() != h0->has_value() || (*h0 && **h != **h0 + n)) break;
            n = std::min<uint64_t>(len, n + block_size_);
        }
        Extent e;
        e.start = off;
        e.length = n;
        e.kind = *h0 ? ExtentKind::Data : ExtentKind::Zero;
        e.host_offset = *h0;
        return e;
    }

protected:
    // Host offset of guest byte `off` (nullopt: its block reads zero).
    virtual Result<std::optional<uint64_t>> block_host(uint64_t off) const = 0;

    uint32_t block_size_ = 0;
};

}  // namespace vireo::storage
