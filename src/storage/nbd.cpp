#include "storage/nbd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "storage/endian.hpp"

namespace vireo::storage {

namespace {

// Protocol constants (doc/proto.md).
constexpr uint64_t kNbdMagic = 0x4e42444d41474943ULL;    // "NBDMAGIC"
constexpr uint64_t kIHaveOpt = 0x49484156454F5054ULL;    // "IHAVEOPT"
constexpr uint64_t kOldstyleMagic = 0x00420281861253ULL;
constexpr uint64_t kOptReplyMagic = 0x3e889045565a9ULL;
constexpr uint32_t kRequestMagic = 0x25609513;
constexpr uint32_t kSimpleReplyMagic = 0x67446698;

constexpr uint16_t kFlagFixedNewstyle = 1;
constexpr uint16_t kFlagNoZeroes = 2;

constexpr uint32_t kOptExportName = 1;
constexpr uint32_t kOptAbort = 2;
constexpr uint32_t kOptGo = 7;
constexpr uint32_t kOptStructuredReply = 8;
constexpr uint32_t kOptSetMetaContext = 10;
constexpr uint32_t kRepMetaContext = 4;
constexpr uint32_t kStructuredReplyMagic = 0x668e33ef;
constexpr uint16_t kReplyFlagDone = 1;
constexpr uint16_t kReplyNone = 0;
constexpr uint16_t kReplyOffsetData = 1;
constexpr uint16_t kReplyOffsetHole = 2;
constexpr uint16_t kReplyBlockStatus = 5;
constexpr uint16_t kReplyTypeError = 1 << 15;
constexpr uint16_t kCmdBlockStatus = 7;
constexpr uint32_t kStateHole = 1;
constexpr uint32_t kStateZero = 2;

constexpr uint32_t kRepAck = 1;
constexpr uint32_t kRepInfo = 3;
constexpr uint32_t kRepFlagError = 1U << 31;
constexpr uint32_t kRepErrUnsup = kRepFlagError | 1;
constexpr uint32_t kRepErrUnknown = kRepFlagError | 6;

constexpr uint16_t kInfoExport = 0;
constexpr uint16_t kInfoBlockSize = 3;

constexpr uint16_t kTFlagReadOnly = 1 << 1;
constexpr uint16_t kTFlagSendFlush = 1 << 2;
constexpr uint16_t kTFlagSendTrim = 1 << 5;
constexpr uint16_t kTFlagSendWriteZeroes = 1 << 6;

constexpr uint16_t kCmdRead = 0;
constexpr uint16_t kCmdWrite = 1;
constexpr uint16_t kCmdDisc = 2;
constexpr uint16_t kCmdFlush = 3;
constexpr uint16_t kCmdTrim = 4;
constexpr uint16_t kCmdWriteZeroes = 6;
constexpr uint16_t kCmdFlagNoHole = 1 << 1;

std::unexpected<Error> bad_url() { return fail(ErrorCode::InvalidArg, "No valid URL specified"); }

// Percent-decoding of a URI component.
std::string uri_decode(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
            out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

bool is_nbd_name(std::string_view name) {
    return name.starts_with("nbd:") || name.starts_with("nbd+");
}

Result<NbdAddress> parse_nbd_uri(std::string_view name) {
    NbdAddress a;
    if (name.starts_with("nbd:") && !name.starts_with("nbd://")) {
        // The older syntax: nbd:unix:<path>[:exportname=<name>] or
        // nbd:<host>:<port>[:exportname=<name>].
        std::string_view rest = name.substr(4);
        auto take_export = [&](std::string_view& s) {
            auto at = s.find(":exportname=");
            if (at != std::string_view::npos) {
                a.export_name = std::string(s.substr(at + 12));
                s = s.substr(0, at);
            }
        };
        take_export(rest);
        if (rest.starts_with("unix:")) {
            a.unix_socket = true;
            a.path = std::string(rest.substr(5));
            if (a.path.empty()) return bad_url();
            return a;
        }
        auto colon = rest.rfind(':');
        if (colon == std::string_view::npos || colon == 0) return bad_url();
        a.host = std::string(rest.substr(0, colon));
        a.port = std::string(rest.substr(colon + 1));
        return a;
    }
    const auto sep = name.find("://");
    if (sep == std::string_view::npos) return bad_url();
    const std::string_view scheme = name.substr(0, sep);
    if (scheme == "nbd+unix") a.unix_socket = true;
    else if (scheme != "nbd" && scheme != "nbd+tcp") return fail(ErrorCode::InvalidArg, "Unknown protocol '{}'", scheme);
    std::string_view rest = name.substr(sep + 3);
    std::string_view query;
    if (auto q = rest.find('?'); q != std::string_view::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    std::string_view authority = rest, path;
    if (auto slash = rest.find('/'); slash != std::string_view::npos) {
        authority = rest.substr(0, slash);
        path = rest.substr(slash + 1);
    }
    if (!path.empty()) a.export_name = uri_decode(path);
    if (a.unix_socket) {
        // nbd+unix: no host; exactly one query parameter, socket=.
        if (!authority.empty() || !query.starts_with("socket=") || query.find('&') != std::string_view::npos)
            return bad_url();
        a.path = uri_decode(query.substr(7));
        if (a.path.empty()) return bad_url();
        return a;
    }
    if (!query.empty() || authority.empty()) return bad_url();
    if (authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return bad_url();
        a.host = std::string(authority.substr(1, close - 1));
        authority = authority.substr(close + 1);
        if (authority.starts_with(":")) a.port = std::string(authority.substr(1));
        else if (!authority.empty()) return bad_url();
    } else if (auto colon = authority.find(':'); colon != std::string_view::npos) {
        a.host = std::string(authority.substr(0, colon));
        a.port = std::string(authority.substr(colon + 1));
        if (a.port.find(':') != std::string::npos || a.port.empty()) return bad_url();
        for (char c : a.port)
            if (c < '0' || c > '9') return bad_url();
    } else {
        a.host = std::string(authority);
    }
    if (a.host.empty()) return bad_url();
    return a;
}

std::string nbd_canonical_name(const NbdAddress& a) {
    const bool named = a.export_name && !a.export_name->empty();
    if (a.unix_socket)
        return named ? fmt::format("nbd+unix:///{}?socket={}", *a.export_name, a.path)
                     : fmt::format("nbd+unix://?socket={}", a.path);
    const std::string host = a.host.find(':') != std::string::npos ? "" : a.host;
    return named ? fmt::format("nbd://{}:{}/{}", host, a.port, *a.export_name) : fmt::format("nbd://{}:{}", host, a.port);
}

NbdImage::~NbdImage() { (void)close(); }

Status NbdImage::send_all(const void* p, size_t n) {
    const auto* c = static_cast<const char*>(p);
    while (n > 0) {
        ssize_t w = ::send(fd_.get(), c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return fail(ErrorCode::Io, "Failed to send to the NBD server: {}", errno_text(errno));
        c += w;
        n -= static_cast<size_t>(w);
    }
    return {};
}

Status NbdImage::recv_all(void* p, size_t n) {
    auto* c = static_cast<char*>(p);
    while (n > 0) {
        ssize_t r = ::recv(fd_.get(), c, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return fail(ErrorCode::Io, "Unexpected end-of-file before all data were read");
        if (r < 0) return fail(ErrorCode::Io, "Failed to read from the NBD server: {}", errno_text(errno));
        c += r;
        n -= static_cast<size_t>(r);
    }
    return {};
}

Status NbdImage::connect(const NbdAddress& a) {
    if (a.unix_socket) {
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        if (a.path.size() >= sizeof sa.sun_path)
            return fail(ErrorCode::InvalidArg, "UNIX socket path '{}' is too long", a.path);
        std::memcpy(sa.sun_path, a.path.data(), a.path.size());
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd) return fail(ErrorCode::System, "Failed to create socket: {}", errno_text(errno));
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
            return fail(ErrorCode::Connection, "Failed to connect to '{}': {}", a.path, errno_text(errno));
        fd_ = std::move(fd);
        return {};
    }
    // Numeric addresses (and localhost) only: name lookups would pull the
    // resolver (NSS) into the statically linked tools that carry this code.
    sockaddr_storage ss{};
    socklen_t ss_len = 0;
    char* end = nullptr;
    const unsigned long port = std::strtoul(a.port.c_str(), &end, 10);
    if (a.port.empty() || *end || port > 65535) return fail(ErrorCode::InvalidArg, "Invalid port '{}'", a.port);
    const std::string host = a.host == "localhost" ? "127.0.0.1" : a.host;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        ss_len = sizeof(sockaddr_in);
    } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        ss_len = sizeof(sockaddr_in6);
    } else {
        return fail(ErrorCode::InvalidArg, "address resolution failed for {}:{}: vireo takes numeric addresses (or localhost)",
                    a.host, a.port);
    }
    UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fail(ErrorCode::System, "Failed to create socket: {}", errno_text(errno));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), ss_len) == 0) {
        int one = 1;
        (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // latency only
        fd_ = std::move(fd);
    }
    const int last = errno;
    if (!fd_) return fail(ErrorCode::Connection, "Failed to connect to '{}:{}': {}", a.host, a.port, errno_text(last));
    return {};
}

Status NbdImage::option(uint32_t opt, const std::string& data,
                         const std::function<Status(uint32_t, const std::string&)>& on_reply) {
    char head[16];
    store_be64(head, kIHaveOpt);
    store_be32(head + 8, opt);
    store_be32(head + 12, static_cast<uint32_t>(data.size()));
    VIREO_TRY(send_all(head, sizeof head));
    VIREO_TRY(send_all(data.data(), data.size()));
    for (;;) {
        char r[20];
        VIREO_TRY(recv_all(r, sizeof r));
        if (load_be64(r) != kOptReplyMagic) return fail(ErrorCode::Protocol, "Unexpected option reply magic");
        const uint32_t type = load_be32(r + 12), len = load_be32(r + 16);
        if (len > (1U << 20)) return fail(ErrorCode::Protocol, "NBD option reply of {} bytes is too long", len);
        std::string body(len, '\0');
        VIREO_TRY(recv_all(body.data(), len));
        if (type == kRepAck) return {};
        VIREO_TRY(on_reply(type, body));
        if (type & kRepFlagError) return {};
    }
}

Result<bool> NbdImage::option_structured() {
    bool ok = true;
    VIREO_TRY(option(kOptStructuredReply, "", [&](uint32_t type, const std::string&) -> Status {
        if (type & kRepFlagError) ok = false;
        return {};
    }));
    return ok;
}

Result<bool> NbdImage::option_meta_context(const std::string& name) {
    static constexpr std::string_view kContext = "base:allocation";
    std::string data(4, '\0');
    store_be32(data.data(), static_cast<uint32_t>(name.size()));
    data += name;
    char n[8];
    store_be32(n, 1);
    store_be32(n + 4, static_cast<uint32_t>(kContext.size()));
    data.append(n, 8);
    data += kContext;
    VIREO_TRY(option(kOptSetMetaContext, data, [&](uint32_t type, const std::string& body) -> Status {
        if (type == kRepMetaContext && body.size() >= 4 && std::string_view(body).substr(4) == kContext)
            alloc_context_ = load_be32(body.data());
        return {};
    }));
    return alloc_context_.has_value();
}

Status NbdImage::option_go(const std::string& name) {
    // NBD_OPT_GO: the export name, and one information request (block
    // size constraints); the server answers with NBD_REP_INFO replies and
    // NBD_REP_ACK, or an error.
    std::string data(4, '\0');
    store_be32(data.data(), static_cast<uint32_t>(name.size()));
    data += name;
    char req[4];
    store_be16(req, 1);
    store_be16(req + 2, kInfoBlockSize);
    data.append(req, 4);
    char head[16];
    store_be64(head, kIHaveOpt);
    store_be32(head + 8, kOptGo);
    store_be32(head + 12, static_cast<uint32_t>(data.size()));
    VIREO_TRY(send_all(head, sizeof head));
    VIREO_TRY(send_all(data.data(), data.size()));
    bool have_export = false;
    for (;;) {
        char r[20];
        VIREO_TRY(recv_all(r, sizeof r));
        if (load_be64(r) != kOptReplyMagic) return fail(ErrorCode::Protocol, "Unexpected option reply magic");
        const uint32_t type = load_be32(r + 12), len = load_be32(r + 16);
        if (len > (1U << 20)) return fail(ErrorCode::Protocol, "NBD option reply of {} bytes is too long", len);
        std::string body(len, '\0');
        VIREO_TRY(recv_all(body.data(), len));
        if (type == kRepAck) break;
        if (type == kRepInfo && len >= 2) {
            const uint16_t info = load_be16(body.data());
            if (info == kInfoExport && len >= 12) {
                size_ = load_be64(body.data() + 2);
                tflags_ = load_be16(body.data() + 10);
                have_export = true;
            } else if (info == kInfoBlockSize && len >= 14) {
                min_block_ = std::max<uint32_t>(1, load_be32(body.data() + 2));
                max_block_ = std::min<uint32_t>(32U << 20, load_be32(body.data() + 10));
            }
            continue;
        }
        if (type == kRepErrUnsup) return fail(ErrorCode::Unsupported, "go unsupported");
        if (type & kRepFlagError) {
            if (type == kRepErrUnknown)
                return fail(ErrorCode::NotFound, "Requested export not available\nserver reported: {}", body);
            return fail(ErrorCode::Protocol, "Server rejected the export: {}", body.empty() ? fmt::format("error {:#x}", type) : body);
        }
        // Other replies are ignored, as the protocol allows.
    }
    if (!have_export) return fail(ErrorCode::Protocol, "server sent no export information");
    return {};
}

Status NbdImage::option_export_name(const std::string& name) {
    char head[16];
    store_be64(head, kIHaveOpt);
    store_be32(head + 8, kOptExportName);
    store_be32(head + 12, static_cast<uint32_t>(name.size()));
    VIREO_TRY(send_all(head, sizeof head));
    VIREO_TRY(send_all(name.data(), name.size()));
    char r[10];
    VIREO_TRY(recv_all(r, sizeof r));
    size_ = load_be64(r);
    tflags_ = load_be16(r + 8);
    return {};
}

Status NbdImage::handshake(const NbdAddress& a) {
    char hello[18];
    VIREO_TRY(recv_all(hello, 16));
    if (load_be64(hello) != kNbdMagic) return fail(ErrorCode::Protocol, "Invalid magic received");
    if (load_be64(hello + 8) == kOldstyleMagic)
        return fail(ErrorCode::Unsupported, "Server uses the oldstyle NBD negotiation, which vireo does not speak");
    if (load_be64(hello + 8) != kIHaveOpt) return fail(ErrorCode::Protocol, "Invalid magic received");
    VIREO_TRY(recv_all(hello + 16, 2));
    const uint16_t server_flags = load_be16(hello + 16);
    if (!(server_flags & kFlagFixedNewstyle)) return fail(ErrorCode::Unsupported, "Server does not support fixed newstyle negotiation");
    const bool no_zeroes = server_flags & kFlagNoZeroes;
    char cf[4];
    store_be32(cf, kFlagFixedNewstyle | (no_zeroes ? kFlagNoZeroes : 0));
    VIREO_TRY(send_all(cf, 4));
    const std::string name = a.export_name.value_or("");
    // Structured replies and block status when offered (QEMU asks too).
    auto sr = option_structured();
    if (!sr) return std::unexpected(sr.error());
    structured_ = *sr;
    if (structured_) {
        auto mc = option_meta_context(name);
        if (!mc) return std::unexpected(mc.error());
    }
    auto go = option_go(name);
    if (!go && go.error().message == "go unsupported") {
        VIREO_TRY(option_export_name(name));
        if (!no_zeroes) {
            char zeroes[124];
            VIREO_TRY(recv_all(zeroes, sizeof zeroes));
        }
        return {};
    }
    return go;
}

Result<ImagePtr> NbdImage::open(const NbdAddress& a, const OpenOptions& opts, std::string label) {
    auto img = std::unique_ptr<NbdImage>(new NbdImage());
    img->filename_ = nbd_canonical_name(a);
    img->label_ = std::move(label);
    VIREO_TRY(img->connect(a));
    if (auto st = img->handshake(a); !st) {
        // Leave politely: the server is still negotiating options.
        char abort[16];
        store_be64(abort, kIHaveOpt);
        store_be32(abort + 8, kOptAbort);
        store_be32(abort + 12, 0);
        (void)img->send_all(abort, sizeof abort);  // it may be gone already
        img->closed_ = true;
        return std::unexpected(st.error());
    }
    if (opts.writable && (img->tflags_ & kTFlagReadOnly))
        return fail(ErrorCode::PermissionDenied, "Could not open '{}': export is read-only", img->filename_);
    img->writable_ = opts.writable;
    return ImagePtr(std::move(img));
}

Status NbdImage::check_range(uint64_t off, uint64_t len) const {
    if (off > size_ || len > size_ - off)
        return fail(ErrorCode::InvalidArg, "request [{}, +{}) is outside the image (size {})", off, len, size_);
    return {};
}

Status NbdImage::request(uint16_t type, uint16_t flags, uint64_t off, uint32_t len, const void* out, void* in,
                         StatusOut* status) {
    if (closed_ || !fd_) return fail(ErrorCode::InvalidState, "'{}' is closed", filename_);
    char req[28];
    store_be32(req, kRequestMagic);
    store_be16(req + 4, flags);
    store_be16(req + 6, type);
    const uint64_t handle = ++handle_;
    store_be64(req + 8, handle);
    store_be64(req + 16, off);
    store_be32(req + 24, len);
    VIREO_TRY(send_all(req, sizeof req));
    if (out) VIREO_TRY(send_all(out, len));
    Status result;
    for (;;) {
        char magic[4];
        VIREO_TRY(recv_all(magic, 4));
        if (load_be32(magic) == kSimpleReplyMagic) {
            char rep[12];
            VIREO_TRY(recv_all(rep, sizeof rep));
            if (load_be64(rep + 4) != handle) return fail(ErrorCode::Protocol, "NBD reply for an unknown request");
            if (uint32_t err = load_be32(rep); err != 0)
                return fail(ErrorCode::Io, "NBD request failed: {}", errno_text(static_cast<int>(err)));
            if (in) VIREO_TRY(recv_all(in, len));
            return {};
        }
        if (load_be32(magic) != kStructuredReplyMagic || !structured_)
            return fail(ErrorCode::Protocol, "Invalid reply magic from the NBD server");
        char rep[16];
        VIREO_TRY(recv_all(rep, sizeof rep));
        const uint16_t rflags = load_be16(rep), rtype = load_be16(rep + 2);
        const uint32_t plen = load_be32(rep + 12);
        if (load_be64(rep + 4) != handle) return fail(ErrorCode::Protocol, "NBD reply for an unknown request");
        if (plen > len + 64 + (1U << 16) && rtype != kReplyBlockStatus)
            return fail(ErrorCode::Protocol, "NBD reply chunk of {} bytes is too long", plen);
        if (plen > (64U << 20)) return fail(ErrorCode::Protocol, "NBD reply chunk of {} bytes is too long", plen);
        std::string payload(plen, '\0');
        if (rtype == kReplyOffsetData && in && plen >= 8) {
            // Read the data straight into place.
            char o[8];
            VIREO_TRY(recv_all(o, 8));
            const uint64_t at = load_be64(o);
            if (at < off || at - off + (plen - 8) > len) return fail(ErrorCode::Protocol, "NBD data chunk outside the request");
            VIREO_TRY(recv_all(static_cast<char*>(in) + (at - off), plen - 8));
        } else {
            VIREO_TRY(recv_all(payload.data(), plen));
            if (rtype == kReplyOffsetHole && in && plen >= 12) {
                const uint64_t at = load_be64(payload.data());
                const uint32_t n = load_be32(payload.data() + 8);
                if (at < off || at - off + n > len) return fail(ErrorCode::Protocol, "NBD hole chunk outside the request");
                std::memset(static_cast<char*>(in) + (at - off), 0, n);
            } else if (rtype == kReplyBlockStatus && status && plen >= 12 && !status->got) {
                status->length = load_be32(payload.data() + 4);
                status->flags = load_be32(payload.data() + 8);
                status->got = true;
            } else if (rtype & kReplyTypeError) {
                const uint32_t err = plen >= 4 ? load_be32(payload.data()) : EIO;
                const uint16_t mlen = plen >= 6 ? load_be16(payload.data() + 4) : 0;
                std::string msg = mlen && 6U + mlen <= plen ? payload.substr(6, mlen) : errno_text(static_cast<int>(err));
                if (result) result = fail(ErrorCode::Io, "NBD request failed: {}", msg);
            } else if (rtype != kReplyNone && rtype != kReplyOffsetHole && rtype != kReplyBlockStatus) {
                // Unknown chunk types that are not errors may be ignored.
            }
        }
        if (rflags & kReplyFlagDone) return result;
    }
}

Status NbdImage::read(uint64_t off, void* vbuf, size_t len) {
    VIREO_TRY(check_range(off, len));
    auto* buf = static_cast<char*>(vbuf);
    const uint64_t align = min_block_;
    if (off % align || len % align) {
        // Whole blocks of the server's minimum size, copied out.
        const uint64_t start = off / align * align, end = (off + len + align - 1) / align * align;
        std::vector<char> tmp(end - start);
        for (uint64_t p = start; p < end;) {
            const auto n = static_cast<uint32_t>(std::min<uint64_t>(max_block_ / align * align, end - p));
            VIREO_TRY(request(kCmdRead, 0, p, n, nullptr, tmp.data() + (p - start)));
            p += n;
        }
        std::memcpy(buf, tmp.data() + (off - start), len);
        return {};
    }
    for (uint64_t done = 0; done < len;) {
        const auto n = static_cast<uint32_t>(std::min<uint64_t>(max_block_ / align * align, len - done));
        VIREO_TRY(request(kCmdRead, 0, off + done, n, nullptr, buf + done));
        done += n;
    }
    return {};
}

Status NbdImage::write(uint64_t off, const void* vbuf, size_t len) {
    if (!writable_) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    VIREO_TRY(check_range(off, len));
    const auto* buf = static_cast<const char*>(vbuf);
    const uint64_t align = min_block_;
    if (off % align || len % align) {
        // Read, modify, write whole blocks.
        const uint64_t start = off / align * align, end = (off + len + align - 1) / align * align;
        std::vector<char> tmp(end - start);
        VIREO_TRY(read(start, tmp.data(), tmp.size()));
        std::memcpy(tmp.data() + (off - start), buf, len);
        return write(start, tmp.data(), tmp.size());
    }
    for (uint64_t done = 0; done < len;) {
        const auto n = static_cast<uint32_t>(std::min<uint64_t>(max_block_ / align * align, len - done));
        VIREO_TRY(request(kCmdWrite, 0, off + done, n, buf + done, nullptr));
        done += n;
    }
    return {};
}

Status NbdImage::write_zeroes(uint64_t off, uint64_t len, bool unmap) {
    if (!writable_) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    VIREO_TRY(check_range(off, len));
    if (!(tflags_ & kTFlagSendWriteZeroes) || off % min_block_ || len % min_block_) {
        std::vector<char> z(std::min<uint64_t>(len, 1 << 20), 0);
        for (uint64_t done = 0; done < len;) {
            const uint64_t n = std::min<uint64_t>(z.size(), len - done);
            VIREO_TRY(write(off + done, z.data(), n));
            done += n;
        }
        return {};
    }
    for (uint64_t done = 0; done < len;) {
        const auto n = static_cast<uint32_t>(std::min<uint64_t>(1U << 30, len - done) / min_block_ * min_block_);
        VIREO_TRY(request(kCmdWriteZeroes, unmap ? 0 : kCmdFlagNoHole, off + done, n, nullptr, nullptr));
        done += n;
    }
    return {};
}

Status NbdImage::discard(uint64_t off, uint64_t len) {
    if (!writable_) return fail(ErrorCode::PermissionDenied, "'{}' is opened read-only", filename_);
    VIREO_TRY(check_range(off, len));
    if (!(tflags_ & kTFlagSendTrim)) return {};  // discard is advisory
    const uint64_t start = (off + min_block_ - 1) / min_block_ * min_block_, end = (off + len) / min_block_ * min_block_;
    for (uint64_t p = start; p < end;) {
        const auto n = static_cast<uint32_t>(std::min<uint64_t>(1U << 30, end - p) / min_block_ * min_block_);
        VIREO_TRY(request(kCmdTrim, 0, p, n, nullptr, nullptr));
        p += n;
    }
    return {};
}

Status NbdImage::flush() {
    if (!writable_ || !(tflags_ & kTFlagSendFlush)) return {};
    return request(kCmdFlush, 0, 0, 0, nullptr, nullptr);
}

Status NbdImage::close() {
    if (closed_ || !fd_) return {};
    auto st = flush();
    // NBD_CMD_DISC has no reply.
    char req[28];
    store_be32(req, kRequestMagic);
    store_be16(req + 4, 0);
    store_be16(req + 6, kCmdDisc);
    store_be64(req + 8, ++handle_);
    store_be64(req + 16, 0);
    store_be32(req + 24, 0);
    (void)send_all(req, sizeof req);  // the server may already be gone
    closed_ = true;
    fd_.reset();
    return st;
}

Status NbdImage::resize(uint64_t, bool, Preallocation) {
    return fail(ErrorCode::Unsupported, "Image format driver does not support resize");
}

Result<Extent> NbdImage::block_status(uint64_t off, uint64_t len) {
    VIREO_TRY(check_range(off, len));
    Extent e;
    e.start = off;
    e.length = len;
    e.kind = ExtentKind::Data;
    e.host_offset = off;
    if (!alloc_context_ || len == 0) return e;
    // As QEMU reads base:allocation: a hole that reads zero is a zero run
    // of the file (raw: "zero", not "data"), a hole that does not is not
    // allocated, anything else is data.
    StatusOut st;
    const auto ask = static_cast<uint32_t>(std::min<uint64_t>(len, 0xfffffe00ULL));
    VIREO_TRY(request(kCmdBlockStatus, 0, off, ask, nullptr, nullptr, &st));
    if (!st.got || st.length == 0) return e;
    e.length = std::min<uint64_t>(len, st.length);
    const bool hole = st.flags & kStateHole, zero = st.flags & kStateZero;
    if (hole && !zero) e.kind = ExtentKind::Unallocated;
    else e.host_zero = zero;
    return e;
}

Result<ImageInfo> NbdImage::info() {
    ImageInfo i;
    i.filename = filename_;
    i.format = ImageFormat::Raw;
    i.format_label = label_;
    i.virtual_size = size_;
    i.actual_size_known = false;  // nothing to measure behind a socket
    i.has_dirty_flag = false;
    return i;
}

}  // namespace vireo::storage
