#include "qemu/save_image.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vireo::qemu {

namespace {

constexpr char kMagic[16] = {'V', 'i', 'r', 'e', 'o', 'Q', 'e', 'm', 'u', 'S', 'a', 'v', 'e', '\n', 0, 0};
constexpr std::uint32_t kVersion = 1;
constexpr std::uint64_t kAlign = 4096;
constexpr std::size_t kMaxXml = 16u << 20;
constexpr std::uint64_t kLegacyQemuCompress = 1;

void put_u32(std::string& out, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out[at + static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_u64(std::string& out, std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out[at + static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
}
std::uint64_t get_le(std::string_view in, std::size_t at, int bytes) {
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[at + static_cast<std::size_t>(i)]);
    return v;
}

Status write_all(int fd, std::string_view data) {
    if (!write_fully(fd, data.data(), data.size())) return fail_errno("write save image header");
    return {};
}

}  // namespace

std::string encode_save_header(SaveHeader& h) {
    // Room to grow the XML later: at least 4 KiB or half its size again.
    std::size_t xml_len = h.xml.size() + 1 + std::max<std::size_t>(4096, h.xml.size() / 2);
    std::uint64_t end = kSaveHeaderFixedSize + xml_len;
    h.data_offset = (end + kAlign - 1) / kAlign * kAlign;
    xml_len = static_cast<std::size_t>(h.data_offset - kSaveHeaderFixedSize);
    std::string out(static_cast<std::size_t>(h.data_offset), '\0');
    std::memcpy(out.data(), kMagic, sizeof(kMagic));
    put_u32(out, 16, kVersion);
    put_u32(out, 20, static_cast<std::uint32_t>(xml_len));
    put_u32(out, 24, h.was_running ? 1 : 0);
    put_u32(out, 28, static_cast<std::uint32_t>(h.compression));
    put_u64(out, 32, h.data_offset);
    std::memcpy(out.data() + kSaveHeaderFixedSize, h.xml.data(), h.xml.size());
    return out;
}

Result<SaveHeader> decode_save_header(std::string_view bytes) {
    if (bytes.size() < kSaveHeaderFixedSize || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0)
        return fail(ErrorCode::Corrupt, "not a vireo save image (bad magic)");
    auto version = get_le(bytes, 16, 4);
    if (version != kVersion) return fail(ErrorCode::Corrupt, "save image version {} is not supported", version);
    auto xml_len = get_le(bytes, 20, 4);
    SaveHeader h;
    h.was_running = get_le(bytes, 24, 4) != 0;
    auto comp = get_le(bytes, 28, 4);
    if (comp == kLegacyQemuCompress)
        return fail(ErrorCode::Unsupported,
                    "save image was written with QEMU's 'compress' migration capability, which vireo no longer reads");
    if (comp > static_cast<std::uint64_t>(SaveCompression::Zstd))
        return fail(ErrorCode::Corrupt, "save image uses unknown compression {}", comp);
    h.compression = static_cast<SaveCompression>(comp);
    h.data_offset = get_le(bytes, 32, 8);
    if (xml_len == 0 || xml_len > kMaxXml || h.data_offset < kSaveHeaderFixedSize + xml_len)
        return fail(ErrorCode::Corrupt, "save image header is inconsistent (xml length {}, data offset {})", xml_len,
                    h.data_offset);
    if (bytes.size() < kSaveHeaderFixedSize + xml_len)
        return fail(ErrorCode::Corrupt, "save image is truncated inside its header");
    std::string_view xml = bytes.substr(kSaveHeaderFixedSize, static_cast<std::size_t>(xml_len));
    auto nul = xml.find('\0');
    if (nul == std::string_view::npos) return fail(ErrorCode::Corrupt, "save image XML is not terminated");
    h.xml = std::string(xml.substr(0, nul));
    if (h.xml.empty()) return fail(ErrorCode::Corrupt, "save image holds no domain XML");
    return h;
}

Result<UniqueFd> create_save_file(const std::filesystem::path& path, SaveHeader& header, bool overwrite) {
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL);
    UniqueFd fd(::open(path.c_str(), flags, 0600));
    if (!fd) return fail_errno(fmt::format("create save image '{}'", path.string()));
    std::string bytes = encode_save_header(header);
    auto w = write_all(fd.get(), bytes);
    if (!w) {
        ::unlink(path.c_str());
        return std::unexpected(w.error());
    }
    return fd;
}

Result<std::pair<SaveHeader, UniqueFd>> open_save_file(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno(fmt::format("open save image '{}'", path.string()));
    std::string head(kSaveHeaderFixedSize, '\0');
    ssize_t n = ::pread(fd.get(), head.data(), head.size(), 0);
    if (n != static_cast<ssize_t>(head.size()))
        return fail(ErrorCode::Corrupt, "'{}' is not a vireo save image (too short)", path.string());
    auto xml_len = get_le(head, 20, 4);
    if (std::memcmp(head.data(), kMagic, sizeof(kMagic)) != 0 || xml_len > kMaxXml)
        return fail(ErrorCode::Corrupt, "'{}' is not a vireo save image", path.string());
    head.resize(kSaveHeaderFixedSize + static_cast<std::size_t>(xml_len));
    n = ::pread(fd.get(), head.data() + kSaveHeaderFixedSize, static_cast<std::size_t>(xml_len), kSaveHeaderFixedSize);
    if (n != static_cast<ssize_t>(xml_len))
        return fail(ErrorCode::Corrupt, "save image '{}' is truncated", path.string());
    auto h = decode_save_header(head);
    if (!h) return std::unexpected(h.error().context(fmt::format("cannot restore from '{}'", path.string())));
    if (::lseek(fd.get(), static_cast<off_t>(h->data_offset), SEEK_SET) < 0)
        return fail_errno(fmt::format("seek in save image '{}'", path.string()));
    return std::pair{std::move(*h), std::move(fd)};
}

}  // namespace vireo::qemu
