// The framing of libvirt's remote protocol: every packet is a 4-byte
// big-endian length (counting itself), a 24-byte header (program, version,
// procedure, type, serial, status) and an XDR body.
//
// FrameDecoder cuts a byte stream into packets; a length under 28 bytes or
// over 32 MiB is a fatal error for the connection (it cannot resynchronize).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rpc/protocol.hpp"
#include "util/error.hpp"

namespace vireo::rpc {

struct Header {
    std::uint32_t program = kRemoteProgram;
    std::uint32_t version = kProtocolVersion;
    std::int32_t procedure = 0;
    MessageType type = MessageType::Call;
    std::uint32_t serial = 0;
    MessageStatus status = MessageStatus::Ok;
};

struct Packet {
    Header header;
    std::string body;
};

// The whole packet: length, header, body.
std::string encode_packet(const Header& header, std::string_view body);

// Header and body of one complete packet (without its length word).
Result<Packet> decode_packet(std::string_view after_length);

class FrameDecoder {
public:
    // Append received bytes; the complete packets so far, or the fatal error.
    Result<std::vector<Packet>> feed(std::string_view bytes);

private:
    std::string buffer_;
};

}  // namespace vireo::rpc
