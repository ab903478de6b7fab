#include "rpc/streams.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "driver/ops/all.hpp"
#include "rpc/events.hpp"
#include "rpc/storage.hpp"
#include "util/fd.hpp"

namespace vireo::rpc {

namespace ops = driver::ops;

namespace {

RemoteError rpc_error(std::string message) {
    return RemoteError{static_cast<int>(ErrNum::Rpc), kFromRpc, std::move(message)};
}

}  // namespace

Stream::Stream(const Header& call, bool upload, bool sparse, std::weak_ptr<Transport> transport)
    : call_(call), upload_(upload), sparse_(sparse), transport_(std::move(transport)) {}

void Stream::send_packet(MessageType type, MessageStatus status, std::string_view body) {
    Header h = call_;
    h.type = type;
    h.status = status;
    if (auto t = transport_.lock()) t->send(encode_packet(h, body));
}

void Stream::reply_ok() {
    {
        std::lock_guard lock(m_);
        replied_ = true;
    }
    Header h = call_;
    h.type = MessageType::Reply;
    h.status = MessageStatus::Ok;
    if (auto t = transport_.lock()) t->send(encode_packet(h, {}));
}

void Stream::reply_error(const RemoteError& e) {
    {
        std::lock_guard lock(m_);
        replied_ = true;
    }
    Header h = call_;
    h.type = MessageType::Reply;
    h.status = MessageStatus::Error;
    if (auto t = transport_.lock()) t->send(encode_packet(h, encode_error(e)));
}

// The answer to the client's final word, once the daemon's side is over:
// OK when the transfer completed and the client finished, else the error.
// An abort is confirmed as done (the client asked for the end it got).
void Stream::answer_client_locked() {
    if (client_word_ == Word::Abort || (client_word_ == Word::Finish && !server_error_)) {
        send_packet(MessageType::Stream, MessageStatus::Ok, {});
        return;
    }
    send_packet(MessageType::Stream, MessageStatus::Error,
                encode_error(server_error_.value_or(rpc_error("stream ended"))));
}

bool Stream::on_packet(const Packet& p) {
    std::lock_guard lock(m_);
    const Header& h = p.header;
    if (h.status == MessageStatus::Continue) {
        if (server_done_ || client_word_ != Word::None || client_error_) return false;  // late data: dropped
        if (!upload_) {
            client_error_ = Error{ErrorCode::Protocol, "data sent into a download stream"};
        } else if (h.type == MessageType::StreamHole) {
            XdrReader r(p.body);
            auto length = r.i64();
            auto flags = r.u32();
            if (!sparse_) client_error_ = Error{ErrorCode::Protocol, "a hole in a stream that is not sparse"};
            else if (!length || !flags || *length < 0)
                client_error_ = Error{ErrorCode::Protocol, "a malformed stream hole"};
            else {
                items_.push_back(Item{true, static_cast<std::uint64_t>(*length), {}});
            }
        } else if (!p.body.empty()) {
            queued_ += p.body.size();
            items_.push_back(Item{false, 0, p.body});
        }
        cv_.notify_all();
        wake();
        return false;
    }
    // OK (the client finished) or ERROR (the client aborts): both wait for an answer.
    client_word_ = h.status == MessageStatus::Ok ? Word::Finish : Word::Abort;
    cv_.notify_all();
    wake();
    if (!server_done_) return false;  // the job answers when it ends
    answer_client_locked();
    return true;
}

void Stream::cancel() {
    std::lock_guard lock(m_);
    cancelled_ = true;
    cv_.notify_all();
    wake();
}

void Stream::set_wake_fd(int fd) {
    std::lock_guard lock(m_);
    wake_fd_ = fd;
}

void Stream::wake() {
    if (wake_fd_ < 0) return;
    const std::uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);  // an eventfd: never blocks, a full counter is still a wakeup
}

std::string Stream::take_input(bool& stop) {
    std::string out;
    bool resume = false;
    {
        std::lock_guard lock(m_);
        const bool was = queued_ > kReadWindow;
        for (auto& item : items_)
            if (!item.hole) out += item.data;
        items_.clear();
        queued_ = 0;
        resume = was;
        stop = cancelled_ || client_word_ != Word::None || client_error_.has_value();
    }
    if (resume) resume_reader();
    return out;
}

bool Stream::backlogged() const {
    std::lock_guard lock(m_);
    return queued_ > kReadWindow;
}

void Stream::resume_reader() {
    if (auto t = transport_.lock()) t->resume_reading();
}

Result<driver::StreamChunk> Stream::next() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [this] {
        return cancelled_ || client_error_ || !items_.empty() || client_word_ != Word::None;
    });
    if (cancelled_) return fail(ErrorCode::Connection, "the client went away during the upload");
    if (!items_.empty()) {
        Item item = std::move(items_.front());
        items_.pop_front();
        if (item.hole) return driver::StreamChunk{true, item.hole_length, {}};
        const bool was = queued_ > kReadWindow;
        queued_ -= item.data.size();
        current_ = std::move(item.data);
        if (was && queued_ <= kReadWindow) {
            lock.unlock();
            resume_reader();
        }
        return driver::StreamChunk{false, current_.size(), std::span<const char>(current_.data(), current_.size())};
    }
    if (client_error_) return std::unexpected(*client_error_);
    if (client_word_ == Word::Abort) return fail(ErrorCode::OperationFailed, "the client aborted the upload");
    return driver::StreamChunk{};  // the client finished: the end
}

Status Stream::send(const driver::StreamChunk& chunk) {
    auto t = transport_.lock();
    if (!t) return fail(ErrorCode::Connection, "the client went away during the download");
    auto stopped = [this]() -> Status {
        std::lock_guard lock(m_);
        if (cancelled_) return fail(ErrorCode::Connection, "the client went away during the download");
        if (client_word_ == Word::Abort) return fail(ErrorCode::OperationFailed, "the client aborted the download");
        if (client_error_) return std::unexpected(*client_error_);
        return {};
    };
    if (chunk.length == 0) return {};
    if (chunk.hole) {
        VIREO_TRY(stopped());
        XdrWriter w;
        w.i64(static_cast<std::int64_t>(chunk.length));
        w.u32(0);
        send_packet(MessageType::StreamHole, MessageStatus::Continue, w.data());
        return {};
    }
    for (std::size_t off = 0; off < chunk.data.size(); off += kStreamChunk) {
        VIREO_TRY(stopped());
        if (!t->wait_writable(kWriteWindow))
            return fail(ErrorCode::Connection, "the client went away during the download");
        const std::size_t n = std::min(kStreamChunk, chunk.data.size() - off);
        send_packet(MessageType::Stream, MessageStatus::Continue, std::string_view(chunk.data.data() + off, n));
    }
    return {};
}

bool Stream::finish(const Status& outcome, int error_domain) {
    std::lock_guard lock(m_);
    server_done_ = true;
    // Bytes still queued will never be written: drop them, read the client on.
    items_.clear();
    if (std::exchange(queued_, 0) > kReadWindow) resume_reader();
    if (!outcome) server_error_ = to_remote_error(outcome.error(), error_domain);
    if (!replied_) {
        // The call itself is still unanswered (its work never ran): no stream started.
        replied_ = true;
        Header h = call_;
        h.type = MessageType::Reply;
        h.status = MessageStatus::Error;
        if (auto t = transport_.lock())
            t->send(encode_packet(h, encode_error(server_error_.value_or(rpc_error("the stream did not start")))));
        return true;
    }
    if (client_word_ != Word::None) {
        // The client waits for this answer (its finish or its abort).
        answer_client_locked();
        return true;
    }
    if (cancelled_) return true;
    // The daemon's last word; the client's own comes later (on_packet answers
    // it). A download's end is an empty data packet (a STREAM OK is only
    // ever the answer to the client's finish).
    if (server_error_) send_packet(MessageType::Stream, MessageStatus::Error, encode_error(*server_error_));
    else if (!upload_ || console_) send_packet(MessageType::Stream, MessageStatus::Continue, {});
    return false;
}

// --- the procedures ---------------------------------------------------------------------

namespace {

struct TransferArgs {
    VolumeRef vol;
    driver::TransferRange range;
};

Result<TransferArgs> transfer_args(Connection::Call& call, std::string_view what) {
    VIREO_RPC_GET(vol, get_volume(call.args));
    VIREO_RPC_GET(offset, call.args.u64());
    VIREO_RPC_GET(length, call.args.u64());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags & ~kVolStreamSparse) return std::unexpected(unsupported_flags(what, flags));
    return TransferArgs{std::move(vol), {.offset = offset, .length = length, .sparse = (flags & kVolStreamSparse) != 0}};
}

// Run the transfer of `op` on its lane: check the volume, answer the call,
// move the bytes with `move`, end the stream.
template <class Op, class Move>
Status transfer(Connection& c, Connection::Call& call, const TransferArgs& args, Move move) {
    auto stream = c.open_stream(call.header, Op::info.kind == ops::Kind::JobStream, args.range.sparse);
    if (!stream) return std::unexpected(stream.error());
    constexpr int from = static_cast<int>(Op::info.libvirt_domain);
    auto conn = c.weak_from_this();
    const auto serial = call.header.serial;
    auto end = [conn, serial](const std::shared_ptr<Stream>& s, const Status& outcome, int domain) {
        if (s->finish(outcome, domain))
            if (auto cc = conn.lock()) cc->forget_stream(serial);
    };
    auto work = [&d = c.driver(), s = *stream, args, move, end, conn, serial]() -> std::string {
        auto vol = d.call<ops::VolumeLookup>({.pool = args.vol.pool, .vol = args.vol.name});
        if (!vol) {
            s->reply_error(to_remote_error(vol.error(), from));
            if (auto cc = conn.lock()) cc->forget_stream(serial);
            return fmt::format("error: {}", vol.error().message);
        }
        s->reply_ok();
        Status r = move(d, *s, args);
        end(s, r, from);
        return r ? std::string("ok") : fmt::format("error: {}", r.error().full_message());
    };
    auto fail = [s = *stream, end](const Error& e) -> std::string {
        end(s, std::unexpected(e), from);
        return fmt::format("error: {}", e.message);
    };
    c.submit_raw(Op::info, fmt::format("remote procedure {} ({})", call.header.procedure, Op::info.name),
                 std::move(work), std::move(fail));
    return {};
}

}  // namespace

Status vol_upload(Connection& c, Connection::Call& call) {
    VIREO_RPC_GET(args, transfer_args(call, "vol-upload"));
    return transfer<ops::VolumeUpload>(c, call, args,
                                       [](driver::Driver& d, Stream& s, const TransferArgs& a) -> Status {
                                           return d.call<ops::VolumeUpload>({.pool = a.vol.pool,
                                                                             .vol = a.vol.name,
                                                                             .offset = a.range.offset,
                                                                             .length = a.range.length,
                                                                             .sparse = a.range.sparse,
                                                                             .source = [&s] { return s.next(); }});
                                       });
}

Status vol_download(Connection& c, Connection::Call& call) {
    VIREO_RPC_GET(args, transfer_args(call, "vol-download"));
    return transfer<ops::VolumeDownload>(
        c, call, args, [](driver::Driver& d, Stream& s, const TransferArgs& a) -> Status {
            return d.call<ops::VolumeDownload>({.pool = a.vol.pool,
                                                .vol = a.vol.name,
                                                .offset = a.range.offset,
                                                .length = a.range.length,
                                                .sparse = a.range.sparse,
                                                .sink = [&s](const driver::StreamChunk& ch) { return s.send(ch); }});
        });
}

namespace {

Status write_all(int fd, std::string_view bytes) {
    if (!write_fully(fd, bytes.data(), bytes.size())) return fail_errno("cannot write to the console");
    return {};
}

// Move the console's bytes both ways until the console closes (the domain
// stopped: a success, the stream's end) or the client finishes, aborts or
// goes away.
Status pump_console(Stream& s, int fd) {
    UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake) return fail_errno("cannot create an eventfd for the console");
    s.set_wake_fd(wake.get());
    std::vector<char> buf(std::size_t{64} * 1024);
    Status out{};
    for (;;) {
        bool stop = false;
        const std::string in = s.take_input(stop);
        if (!in.empty()) {
            if (out = write_all(fd, in); !out) break;
        }
        if (stop) break;
        std::array<pollfd, 2> p{{{fd, POLLIN, 0}, {wake.get(), POLLIN, 0}}};
        if (::poll(p.data(), p.size(), -1) < 0) {
            if (errno == EINTR) continue;
            out = fail_errno("cannot wait for the console");
            break;
        }
        if (p[1].revents != 0) {
            std::uint64_t count = 0;
            (void)!::read(wake.get(), &count, sizeof count);
        }
        if (p[0].revents == 0) continue;
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) break;  // EOF, or EIO of a pty whose other side closed: the console ended
        const auto len = static_cast<std::size_t>(n);
        if (out = s.send(driver::StreamChunk{false, len, std::span<const char>(buf.data(), len)}); !out) break;
    }
    s.set_wake_fd(-1);
    return out;
}

}  // namespace

Status open_console(Connection& c, Connection::Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(device, call.args.optional_string());
    VIREO_RPC_GET(flags, call.args.u32());
    // --force (take the console from another client) and --safe are not served.
    if (flags != 0) return std::unexpected(unsupported_flags("console (--force, --safe)", flags));
    auto stream = c.open_stream(call.header, true, false);
    if (!stream) return std::unexpected(stream.error());
    (*stream)->set_console();
    using Op = ops::DomainConsole;
    constexpr int from = static_cast<int>(Op::info.libvirt_domain);
    auto conn = c.weak_from_this();
    const auto serial = call.header.serial;
    ops::DomainConsole::Request req{.ref = dom.ref(), .device = device.value_or("")};
    auto work = [&d = c.driver(), s = *stream, req, conn, serial]() -> std::string {
        auto fd = d.call<Op>(req);
        if (!fd) {
            s->reply_error(to_remote_error(fd.error(), from));
            if (auto cc = conn.lock()) cc->forget_stream(serial);
            return fmt::format("error: {}", fd.error().full_message());
        }
        s->reply_ok();
        // The console lives as long as the guest's or the client's interest:
        // a thread of its own, not a thread of the operation's lane.
        std::thread([s, fd = std::move(*fd), conn, serial] {
            const Status r = pump_console(*s, fd.get());
            if (s->finish(r, from))
                if (auto cc = conn.lock()) cc->forget_stream(serial);
        }).detach();
        return "ok, console attached";
    };
    auto failed = [s = *stream, conn, serial](const Error& e) -> std::string {
        if (s->finish(std::unexpected(e), from))
            if (auto cc = conn.lock()) cc->forget_stream(serial);
        return fmt::format("error: {}", e.message);
    };
    c.submit_raw(Op::info, fmt::format("remote procedure {} ({})", call.header.procedure, Op::info.name),
                 std::move(work), std::move(failed));
    return {};
}

}  // namespace vireo::rpc
