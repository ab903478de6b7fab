#include "storage/chain.hpp"

#include <cstring>

namespace vireo::storage {

bool buffer_is_zero(const char* p, size_t n) {
    if (n == 0) return true;
    if (p[0] != 0) return false;
    return std::memcmp(p, p + 1, n - 1) == 0;
}

Result<ChainExtent> chain_status(Image* top, uint64_t off, uint64_t len) {
    ChainExtent c;
    Image* layer = top;
    int depth = 0;
    for (;;) {
        if (off >= layer->size()) {
            // Past the end of a shorter backing file: reads zero.
            c.length = len;
            c.present = false;
            c.zero = true;
            c.depth = depth;
            c.file = layer->filename();
            return c;
        }
        uint64_t l = std::min<uint64_t>(len, layer->size() - off);
        auto e = layer->block_status(off, l);
        if (!e) return std::unexpected(e.error());
        len = e->length;
        c.depth = depth;
        c.file = layer->filename();
        switch (e->kind) {
            case ExtentKind::Data:
                c.present = true;
                // raw: a hole is not data; other formats: allocated is
                // data, maybe zero
                c.data = layer->format() != ImageFormat::Raw || !e->host_zero;
                if (!e->host_file.empty()) c.file = e->host_file;
                c.zero = e->host_zero;
                c.offset = e->host_offset;
                c.length = len;
                return c;
            case ExtentKind::Compressed:
                c.present = c.data = true;
                c.length = len;
                return c;
            case ExtentKind::Zero:
                c.present = c.zero = true;
                c.offset = e->host_offset;
                c.length = len;
                return c;
            case ExtentKind::Unallocated:
                // Without a backing file, or past the end of a shorter one,
                // the range reads as zero at this layer (QEMU's depth).
                if (!layer->backing() || off >= layer->backing()->size()) {
                    c.zero = true;
                    c.offset = e->host_offset;
                    c.length = len;
                    return c;
                }
                layer = layer->backing();
                ++depth;
                break;
        }
    }
}

}  // namespace vireo::storage
