#include "rpc/connection.hpp"

#include <spdlog/spdlog.h>

#include "rpc/events.hpp"
#include "rpc/streams.hpp"

namespace vireo::rpc {

using driver::ops::LibvirtDomain;

RemoteError to_remote_error(const Error& e, int from) {
    if (from == static_cast<int>(LibvirtDomain::None)) from = static_cast<int>(LibvirtDomain::Qemu);
    ErrNum n = ErrNum::InternalError;
    switch (e.code) {
        case ErrorCode::Internal: n = ErrNum::InternalError; break;
        case ErrorCode::InvalidArg: n = ErrNum::InvalidArg; break;
        case ErrorCode::XmlError: n = ErrNum::XmlError; break;
        case ErrorCode::Unsupported: n = ErrNum::NoSupport; break;
        case ErrorCode::NoDomain: n = ErrNum::NoDomain; break;
        case ErrorCode::NoPool: n = ErrNum::NoStoragePool; break;
        case ErrorCode::NoVolume: n = ErrNum::NoStorageVol; break;
        case ErrorCode::NoNetwork: n = ErrNum::NoNetwork; break;
        case ErrorCode::Exists: n = ErrNum::DomExist; break;
        case ErrorCode::InvalidState: n = ErrNum::OperationInvalid; break;
        case ErrorCode::Busy:
        case ErrorCode::Timeout: n = ErrNum::OperationTimeout; break;
        case ErrorCode::PermissionDenied: n = ErrNum::OperationDenied; break;
        case ErrorCode::System:
        case ErrorCode::Io: n = ErrNum::SystemError; break;
        case ErrorCode::Connection:
        case ErrorCode::Protocol: n = ErrNum::Rpc; from = kFromRpc; break;
        case ErrorCode::NotFound:
        case ErrorCode::Corrupt:
        case ErrorCode::Hypervisor:
        case ErrorCode::OperationFailed: n = ErrNum::OperationFailed; break;
    }
    return RemoteError{static_cast<int>(n), from, e.full_message()};
}

std::string encode_error(const RemoteError& e) {
    XdrWriter w;
    w.i32(e.code);
    w.i32(e.domain);
    w.optional_string(e.message);
    w.i32(kErrorLevel);
    w.boolean(false);  // dom
    w.optional_string(std::nullopt);  // str1
    w.optional_string(std::nullopt);  // str2
    w.optional_string(std::nullopt);  // str3
    w.i32(0);          // int1
    w.i32(0);          // int2
    w.boolean(false);  // net
    return w.take();
}

Connection::Connection(driver::Driver& driver, bool read_only, std::weak_ptr<Transport> transport, Runner runner)
    : driver_(driver), read_only_(read_only), transport_(std::move(transport)), runner_(std::move(runner)) {}

Connection::~Connection() { closed(); }

void Connection::closed() {
    std::map<int, std::unique_ptr<driver::Subscription>> gone;
    {
        std::lock_guard lock(events_mutex_);
        gone.swap(events_);
    }
    std::map<std::uint32_t, std::shared_ptr<Stream>> streams;
    {
        std::lock_guard lock(streams_mutex_);
        streams.swap(streams_);
    }
    for (auto& [serial, s] : streams) s->cancel();
}

bool Connection::feed(std::string_view bytes) {
    auto packets = frames_.feed(bytes);
    if (!packets) {
        last_error_ = packets.error().message;
        return false;
    }
    for (const auto& p : *packets) handle(p);
    return true;
}

void Connection::send(const Header& h, std::string_view body) {
    if (auto t = transport_.lock()) t->send(encode_packet(h, body));
}

void Connection::reply(const Header& call, const std::string& body) {
    Header h = call;
    h.type = MessageType::Reply;
    h.status = MessageStatus::Ok;
    send(h, body);
}

void Connection::reply_error(const Header& call, const RemoteError& e) {
    Header h = call;
    h.type = MessageType::Reply;
    h.status = MessageStatus::Error;
    send(h, encode_error(e));
}

void Connection::handle(const Packet& p) {
    const Header& h = p.header;
    if (h.program == kKeepaliveProgram) {
        // PING -> PONG at once; a PONG (answer to nobody's ping) is ignored.
        if (h.procedure == kKeepalivePing && h.type == MessageType::Message)
            send(Header{kKeepaliveProgram, kProtocolVersion, kKeepalivePong, MessageType::Message, 0,
                        MessageStatus::Ok},
                 {});
        return;
    }
    if (h.program == kRemoteProgram && (h.type == MessageType::Stream || h.type == MessageType::StreamHole)) {
        handle_stream(p);
        return;
    }
    if (h.type != MessageType::Call) {
        // Replies and messages from a client have no meaning here.
        spdlog::debug("libvirt client: ignored a packet of type {} for procedure {}", static_cast<unsigned>(h.type),
                      h.procedure);
        return;
    }
    if (h.program != kRemoteProgram) {
        reply_error(h, {static_cast<int>(ErrNum::Rpc), kFromRpc, fmt::format("unknown program {:#x}", h.program)});
        return;
    }
    if (h.version != kProtocolVersion) {
        reply_error(h, {static_cast<int>(ErrNum::Rpc), kFromRpc,
                        fmt::format("unknown protocol version {} of program {:#x}", h.version, h.program)});
        return;
    }
    const ProcDef* def = find_procedure(h.procedure);
    if (!def) {
        reply_error(h, {static_cast<int>(ErrNum::NoSupport), kFromRpc,
                        fmt::format("this function is not supported by the connection driver: remote procedure {}",
                                    h.procedure)});
        return;
    }
    dispatch(*this, *def, Call{h, XdrReader(p.body)});
    // The reader points into p.body: dispatch decodes before it returns.
}

void Connection::handle_stream(const Packet& p) {
    std::shared_ptr<Stream> s;
    {
        std::lock_guard lock(streams_mutex_);
        if (auto it = streams_.find(p.header.serial); it != streams_.end()) s = it->second;
    }
    if (!s) {
        // Late data of a stream that ended is dropped; a final word (finish or
        // abort) waits for an answer, so it gets one.
        spdlog::debug("libvirt client: stream packet for no stream (serial {})", p.header.serial);
        if (p.header.status != MessageStatus::Continue) {
            Header h = p.header;
            h.type = MessageType::Stream;
            h.status = MessageStatus::Error;
            send(h, encode_error({static_cast<int>(ErrNum::Rpc), kFromRpc,
                                  fmt::format("no stream with serial {}", p.header.serial)}));
        }
        return;
    }
    if (s->on_packet(p)) forget_stream(p.header.serial);
}

Result<std::shared_ptr<Stream>> Connection::open_stream(const Header& call, bool upload, bool sparse) {
    std::lock_guard lock(streams_mutex_);
    if (streams_.contains(call.serial))
        return fail(ErrorCode::Protocol, "a stream with serial {} is already open", call.serial);
    auto s = std::make_shared<Stream>(call, upload, sparse, transport_);
    streams_[call.serial] = s;
    return s;
}

void Connection::forget_stream(std::uint32_t serial) {
    std::lock_guard lock(streams_mutex_);
    streams_.erase(serial);
}

bool Connection::backlogged() const {
    std::lock_guard lock(streams_mutex_);
    for (const auto& [serial, s] : streams_)
        if (s->upload() && s->backlogged()) return true;
    return false;
}

void Connection::submit_raw(const driver::ops::OpInfo& op, std::string what, std::function<std::string()> work,
                            std::function<std::string(const Error&)> fail) {
    runner_(op, std::move(what), std::move(work), std::move(fail));
}

void Connection::submit(const Header& call, const driver::ops::OpInfo& op, std::function<Result<std::string>()> work) {
    auto tx = transport_;
    const int from = static_cast<int>(op.libvirt_domain);
    auto answer = [tx, call, from](const Result<std::string>& r) -> std::string {
        Header h = call;
        h.type = MessageType::Reply;
        h.status = r ? MessageStatus::Ok : MessageStatus::Error;
        std::string body = r ? *r : encode_error(to_remote_error(r.error(), from));
        if (auto t = tx.lock()) t->send(encode_packet(h, body));
        return r ? std::string("ok") : fmt::format("error: {}", r.error().message);
    };
    runner_(op, fmt::format("remote procedure {} ({})", call.procedure, op.name),
            [answer, work = std::move(work)] { return answer(work()); },
            [answer](const Error& e) { return answer(std::unexpected(e)); });
}

Result<int> Connection::register_event(int event_id, const std::optional<std::string>& uuid) {
    std::lock_guard lock(events_mutex_);
    const int id = next_callback_++;
    auto tx = transport_;
    auto sub = driver_.call<driver::ops::HostEvents>({.callback = [tx, id, event_id, uuid](const driver::DomainEvent& ev) {
        if (uuid && *uuid != std::string(reinterpret_cast<const char*>(ev.uuid.bytes.data()), ev.uuid.bytes.size()))
            return;
        auto message = encode_event(event_id, id, ev);
        if (!message) return;  // another family's event
        if (auto t = tx.lock())
            t->send(encode_packet(Header{kRemoteProgram, kProtocolVersion, message->first, MessageType::Message, 0,
                                         MessageStatus::Ok},
                                  message->second));
    }});
    if (!sub) return std::unexpected(sub.error());
    events_[id] = std::move(*sub);
    return id;
}

Result<int> Connection::register_callback(const Subscribe& subscribe) {
    std::lock_guard lock(events_mutex_);
    const int id = next_callback_++;
    auto sub = subscribe(id, transport_);
    if (!sub) return std::unexpected(sub.error());
    events_[id] = std::move(*sub);
    return id;
}

bool Connection::deregister(int id) {
    std::unique_ptr<driver::Subscription> gone;
    std::lock_guard lock(events_mutex_);
    auto it = events_.find(id);
    if (it == events_.end()) return false;
    gone = std::move(it->second);
    events_.erase(it);
    return true;
}

}  // namespace vireo::rpc
