#include "storage/compress.hpp"

#include <algorithm>

#include <zlib.h>
#include <zstd.h>

namespace vireo::storage {

namespace {

// One compression context per thread, reset between clusters: setting up
// a deflate stream costs more than compressing a small cluster.
struct DeflateCtx {
    z_stream s{};
    bool ok = false;
    DeflateCtx() {
        // windowBits -12: raw deflate with a 4 KiB window, which is what
        // qcow2 readers (QEMU) expect.
        ok = deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) == Z_OK;
    }
    ~DeflateCtx() {
        if (ok) deflateEnd(&s);
    }
};

// Deflate is as slow on data it cannot shrink as on text, so samples of a
// cluster (its first, middle and last 4 KiB) first go through zstd's
// fastest level, which gives up on such data almost at once. A cluster in
// which no sample shrinks by at least 1/64 is stored uncompressed: reading
// it back compressed would cost more than the few bytes deflate might save.
bool worth_deflating(const void* in, size_t len, void* scratch, size_t scratch_cap) {
    struct Probe {
        ZSTD_CCtx* c = ZSTD_createCCtx();
        ~Probe() { ZSTD_freeCCtx(c); }
    };
    thread_local Probe probe;
    constexpr size_t kSample = 4096;
    if (!probe.c || len < 4 * kSample || scratch_cap < kSample) return true;
    const auto* p = static_cast<const char*>(in);
    for (size_t at : {size_t{0}, (len / 2) & ~(kSample - 1), len - kSample}) {
        size_t cap = kSample - kSample / 64;
        size_t r = ZSTD_compressCCtx(probe.c, scratch, cap, p + at, kSample, 1);
        if (!ZSTD_isError(r) && r < cap) return true;
    }
    return false;
}

Result<size_t> deflate_raw(const void* in, size_t len, void* out, size_t out_cap) {
    if (!worth_deflating(in, len, out, out_cap)) return size_t{0};
    thread_local DeflateCtx ctx;
    if (!ctx.ok) return fail(ErrorCode::Internal, "deflateInit2 failed");
    z_stream& s = ctx.s;
    deflateReset(&s);
    s.next_in = static_cast<Bytef*>(const_cast<void*>(in));
    s.avail_in = static_cast<uInt>(len);
    s.next_out = static_cast<Bytef*>(out);
    s.avail_out = static_cast<uInt>(out_cap);
    int ret = deflate(&s, Z_FINISH);
    size_t produced = out_cap - s.avail_out;
    if (ret != Z_STREAM_END) return size_t{0};
    return produced;
}

Status inflate_raw(const void* in, size_t in_len, void* out, size_t out_len) {
    z_stream s{};
    if (inflateInit2(&s, -12) != Z_OK) return fail(ErrorCode::Internal, "inflateInit2 failed");
    s.next_in = static_cast<Bytef*>(const_cast<void*>(in));
    s.avail_in = static_cast<uInt>(in_len);
    s.next_out = static_cast<Bytef*>(out);
    s.avail_out = static_cast<uInt>(out_len);
    int ret = inflate(&s, Z_FINISH);
    size_t produced = out_len - s.avail_out;
    inflateEnd(&s);
    // Z_BUF_ERROR with a full output buffer is fine: the stream may carry
    // padding after the cluster's data.
    if ((ret != Z_STREAM_END && ret != Z_BUF_ERROR) || produced != out_len)
        return fail(ErrorCode::Corrupt, "compressed cluster is corrupt (zlib)");
    return {};
}

Result<size_t> zstd_compress(const void* in, size_t len, void* out, size_t out_cap) {
    struct Ctx {
        ZSTD_CCtx* c = ZSTD_createCCtx();
        ~Ctx() { ZSTD_freeCCtx(c); }
    };
    thread_local Ctx ctx;
    if (!ctx.c) return fail(ErrorCode::Internal, "ZSTD_createCCtx failed");
    size_t r = ZSTD_compressCCtx(ctx.c, out, out_cap, in, len, ZSTD_CLEVEL_DEFAULT);
    if (ZSTD_isError(r)) return size_t{0};
    return r;
}

Status zstd_decompress(const void* in, size_t in_len, void* out, size_t out_len) {
    ZSTD_DCtx* ctx = ZSTD_createDCtx();
    if (!ctx) return fail(ErrorCode::Internal, "ZSTD_createDCtx failed");
    ZSTD_inBuffer ib{in, in_len, 0};
    ZSTD_outBuffer ob{out, out_len, 0};
    // Stream until the output is full: trailing sector padding is ignored.
    while (ob.pos < ob.size) {
        size_t r = ZSTD_decompressStream(ctx, &ob, &ib);
        if (ZSTD_isError(r)) {
            ZSTD_freeDCtx(ctx);
            return fail(ErrorCode::Corrupt, "compressed cluster is corrupt (zstd: {})", ZSTD_getErrorName(r));
        }
        if (r == 0 && ob.pos < ob.size && ib.pos >= ib.size) break;
        if (ib.pos >= ib.size && ob.pos < ob.size && r != 0) break;
    }
    ZSTD_freeDCtx(ctx);
    if (ob.pos != out_len) return fail(ErrorCode::Corrupt, "compressed cluster is corrupt (zstd: short output)");
    return {};
}

}  // namespace

Result<size_t> compress_buffer(CompressionType type, const void* in, size_t len, void* out, size_t out_cap) {
    return type == CompressionType::Zlib ? deflate_raw(in, len, out, out_cap) : zstd_compress(in, len, out, out_cap);
}

Status decompress_buffer(CompressionType type, const void* in, size_t in_len, void* out, size_t out_len) {
    return type == CompressionType::Zlib ? inflate_raw(in, in_len, out, out_len)
                                         : zstd_decompress(in, in_len, out, out_len);
}

}  // namespace vireo::storage
