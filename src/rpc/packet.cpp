#include "rpc/packet.hpp"

#include "rpc/xdr.hpp"

namespace vireo::rpc {

std::string encode_packet(const Header& h, std::string_view body) {
    XdrWriter w;
    w.u32(static_cast<std::uint32_t>(4 + kHeaderSize + body.size()));
    w.u32(h.program);
    w.u32(h.version);
    w.i32(h.procedure);
    w.u32(static_cast<std::uint32_t>(h.type));
    w.u32(h.serial);
    w.u32(static_cast<std::uint32_t>(h.status));
    std::string out = w.take();
    out.append(body);
    return out;
}

Result<Packet> decode_packet(std::string_view after_length) {
    XdrReader r(after_length);
    Packet p;
    VIREO_RPC_GET(program, r.u32());
    VIREO_RPC_GET(version, r.u32());
    VIREO_RPC_GET(procedure, r.i32());
    VIREO_RPC_GET(type, r.u32());
    VIREO_RPC_GET(serial, r.u32());
    VIREO_RPC_GET(status, r.u32());
    if (type > static_cast<std::uint32_t>(MessageType::StreamHole))
        return fail(ErrorCode::Protocol, "unknown message type {}", type);
    if (status > static_cast<std::uint32_t>(MessageStatus::Continue))
        return fail(ErrorCode::Protocol, "unknown message status {}", status);
    p.header = Header{program, version, procedure, static_cast<MessageType>(type), serial,
                      static_cast<MessageStatus>(status)};
    p.body = std::string(after_length.substr(kHeaderSize));
    return p;
}

Result<std::vector<Packet>> FrameDecoder::feed(std::string_view bytes) {
    buffer_.append(bytes);
    std::vector<Packet> out;
    std::size_t pos = 0;
    while (buffer_.size() - pos >= 4) {
        XdrReader r(std::string_view(buffer_).substr(pos, 4));
        const std::uint32_t len = *r.u32();
        if (len < kMinPacket || len > kMaxPacket)
            return fail(ErrorCode::Protocol, "packet length {} outside {}..{}", len, kMinPacket, kMaxPacket);
        if (buffer_.size() - pos < len) break;
        VIREO_RPC_GET(p, decode_packet(std::string_view(buffer_).substr(pos + 4, len - 4)));
        out.push_back(std::move(p));
        pos += len;
    }
    buffer_.erase(0, pos);
    return out;
}

}  // namespace vireo::rpc
