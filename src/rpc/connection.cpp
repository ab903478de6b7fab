#include "rpc/connection.hpp"

#include <spdlog/spdlog.h>

#include "rpc/events.hpp"

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
    if (h.type != MessageType::Call) {
        // Streams are not served yet; replies and messages have no meaning here.
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

Result<int> Connection::register_lifecycle(const std::optional<std::string>& uuid) {
    std::lock_guard lock(events_mutex_);
    const int id = next_callback_++;
    auto tx = transport_;
    auto sub = driver_.call<driver::ops::HostEvents>({.callback = [tx, id, uuid](const driver::DomainEvent& ev) {
        if (!is_lifecycle_event(ev.type)) return;
        if (uuid && *uuid != std::string(reinterpret_cast<const char*>(ev.uuid.bytes.data()), ev.uuid.bytes.size()))
            return;
        if (auto t = tx.lock())
            t->send(encode_packet(Header{kRemoteProgram, kProtocolVersion,
                                         static_cast<int>(Proc::DomainEventCallbackLifecycle), MessageType::Message, 0,
                                         MessageStatus::Ok},
                                  encode_lifecycle_event(id, ev)));
    }});
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
