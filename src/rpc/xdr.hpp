// XDR (RFC 4506) as libvirt's remote protocol uses it: big-endian 32-bit
// words, 64-bit hypers, strings and variable opaques with a length word and
// padding to 4 bytes, optional values as a 0/1 word ("pointers").
//
// XdrWriter appends to a byte string; XdrReader reads a received body and
// answers every shortfall (truncated data, an over-long string or array, a
// bad boolean) as a Protocol error, never by reading past the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "util/error.hpp"

// Bind `var` to the value of a Result, or return its error. (`var` names a
// variable: it cannot be parenthesized.)
// NOLINTBEGIN(bugprone-macro-parentheses)
#define VIREO_RPC_GET(var, expr)                                  \
    auto var##_result_ = (expr);                                  \
    if (!var##_result_) return std::unexpected(var##_result_.error()); \
    auto var = std::move(*var##_result_)
// NOLINTEND(bugprone-macro-parentheses)

namespace vireo::rpc {

// libvirt's bound on strings (REMOTE_STRING_MAX).
inline constexpr std::uint32_t kStringMax = 4u << 20;

class XdrWriter {
public:
    void u32(std::uint32_t v);
    void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
    void u64(std::uint64_t v);
    void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
    void boolean(bool b) { u32(b ? 1 : 0); }
    // Variable-length: length word, bytes, padding.
    void string(std::string_view s);
    void opaque(std::span<const std::uint8_t> bytes) {
        string({reinterpret_cast<const char*>(bytes.data()), bytes.size()});
    }
    // Fixed-length: bytes and padding only.
    void fixed_opaque(std::span<const std::uint8_t> bytes);
    // An optional string (libvirt's remote_string).
    void optional_string(const std::optional<std::string>& s);

    [[nodiscard]] const std::string& data() const { return out_; }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

class XdrReader {
public:
    explicit XdrReader(std::string_view data) : in_(data) {}

    Result<std::uint32_t> u32();
    Result<std::int32_t> i32();
    Result<std::uint64_t> u64();
    Result<std::int64_t> i64();
    Result<bool> boolean();
    Result<std::string> string(std::uint32_t max = kStringMax);
    Result<std::string> fixed_opaque(std::size_t n);
    Result<std::optional<std::string>> optional_string(std::uint32_t max = kStringMax);
    // An array's element count, refused above `max`.
    Result<std::uint32_t> count(std::uint32_t max);

    [[nodiscard]] std::size_t remaining() const { return in_.size() - pos_; }

private:
    Result<std::string_view> take(std::size_t n, std::string_view what);
    std::string_view in_;
    std::size_t pos_ = 0;
};

}  // namespace vireo::rpc
