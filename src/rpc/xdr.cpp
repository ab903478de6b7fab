#include "rpc/xdr.hpp"

namespace vireo::rpc {

namespace {
constexpr std::size_t padding(std::size_t n) { return (4 - n % 4) % 4; }
}  // namespace

void XdrWriter::u32(std::uint32_t v) {
    const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
    out_.append(b, 4);
}

void XdrWriter::u64(std::uint64_t v) {
    u32(static_cast<std::uint32_t>(v >> 32));
    u32(static_cast<std::uint32_t>(v));
}

void XdrWriter::string(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
    out_.append(padding(s.size()), '\0');
}

void XdrWriter::fixed_opaque(std::span<const std::uint8_t> bytes) {
    out_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    out_.append(padding(bytes.size()), '\0');
}

void XdrWriter::optional_string(const std::optional<std::string>& s) {
    boolean(s.has_value());
    if (s) string(*s);
}

Result<std::string_view> XdrReader::take(std::size_t n, std::string_view what) {
    if (n > remaining()) return fail(ErrorCode::Protocol, "truncated XDR data: {} needs {} bytes, {} left", what, n, remaining());
    auto v = in_.substr(pos_, n);
    pos_ += n;
    return v;
}

Result<std::uint32_t> XdrReader::u32() {
    VIREO_RPC_GET(b, take(4, "an int"));
    auto u = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(b[i])); };
    return u(0) << 24 | u(1) << 16 | u(2) << 8 | u(3);
}

Result<std::int32_t> XdrReader::i32() {
    VIREO_RPC_GET(v, u32());
    return static_cast<std::int32_t>(v);
}

Result<std::uint64_t> XdrReader::u64() {
    VIREO_RPC_GET(hi, u32());
    VIREO_RPC_GET(lo, u32());
    return static_cast<std::uint64_t>(hi) << 32 | lo;
}

Result<std::int64_t> XdrReader::i64() {
    VIREO_RPC_GET(v, u64());
    return static_cast<std::int64_t>(v);
}

Result<bool> XdrReader::boolean() {
    VIREO_RPC_GET(v, u32());
    if (v > 1) return fail(ErrorCode::Protocol, "bad XDR boolean {}", v);
    return v == 1;
}

Result<std::string> XdrReader::string(std::uint32_t max) {
    VIREO_RPC_GET(n, u32());
    if (n > max) return fail(ErrorCode::Protocol, "XDR string of {} bytes exceeds {}", n, max);
    VIREO_RPC_GET(s, take(n, "a string"));
    VIREO_TRY(take(padding(n), "string padding"));
    return std::string(s);
}

Result<std::string> XdrReader::fixed_opaque(std::size_t n) {
    VIREO_RPC_GET(s, take(n, "a fixed opaque"));
    VIREO_TRY(take(padding(n), "opaque padding"));
    return std::string(s);
}

Result<std::optional<std::string>> XdrReader::optional_string(std::uint32_t max) {
    VIREO_RPC_GET(present, boolean());
    if (!present) return std::optional<std::string>{};
    VIREO_RPC_GET(s, string(max));
    return std::optional<std::string>(std::move(s));
}

Result<std::uint32_t> XdrReader::count(std::uint32_t max) {
    VIREO_RPC_GET(n, u32());
    if (n > max) return fail(ErrorCode::Protocol, "XDR array of {} elements exceeds {}", n, max);
    return n;
}

}  // namespace vireo::rpc
