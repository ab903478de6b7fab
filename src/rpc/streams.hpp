// libvirt's data streams over the remote protocol, for volume upload and
// download (virsh vol-upload / vol-download, virStorageVolUpload/Download)
// and the serial console (virsh console, virDomainOpenConsole).
//
// A stream belongs to the call that opened it and carries that call's
// procedure and serial. After the call's own reply (OK, or the error that
// no stream starts), data travels as packets of type STREAM, status
// CONTINUE, whose bodies are the raw bytes; a hole of a sparse stream is a
// packet of type STREAM_HOLE whose body is (hyper length, unsigned flags).
// The daemon ends a download with an empty data packet, or fails a transfer
// with STREAM of status ERROR. The client's final word (STREAM OK after a
// download's end or its upload's last byte; STREAM ERROR to abort) waits
// for an answer: vireod answers every one, with STREAM OK when the transfer
// completed or the client aborted, else with STREAM ERROR (the failure).
//
// Each transfer runs on a job thread (the operation's lane) through the
// operation table's volume.upload / volume.download. Downloads wait while
// more than kWriteWindow bytes are queued for the client; an upload stops
// the daemon reading the client's socket while more than kReadWindow bytes
// wait to be written to the volume.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "driver/pool_types.hpp"
#include "rpc/connection.hpp"
#include "rpc/packet.hpp"

namespace vireo::rpc {

inline constexpr std::size_t kWriteWindow = 8u << 20;
inline constexpr std::size_t kReadWindow = 8u << 20;

class Stream {
public:
    // `upload`: the client sends data (an upload, a console); a console's
    // data flows both ways.
    Stream(const Header& call, bool upload, bool sparse, std::weak_ptr<Transport> transport);

    [[nodiscard]] bool upload() const { return upload_; }
    // A console: the daemon sends too (and ends with an empty data packet).
    void set_console() { console_ = true; }
    // Written to (an eventfd) whenever the client sends something: the
    // console's thread polls it beside the console.
    void set_wake_fd(int fd);
    // Console: the bytes the client sent so far (nothing blocks); `stop`
    // when the client finished, aborted or went away.
    std::string take_input(bool& stop);

    // A STREAM or STREAM_HOLE packet from the client. True when the stream
    // is over (the client's final word is answered): forget it.
    bool on_packet(const Packet& p);
    // The client went away: stop the transfer.
    void cancel();
    // An upload's queued bytes exceed kReadWindow.
    [[nodiscard]] bool backlogged() const;

    // Job side. The call's reply (once, before any data).
    void reply_ok();
    void reply_error(const RemoteError& e);
    // Upload: the next chunk from the client (blocks); length 0 = the end.
    Result<driver::StreamChunk> next();
    // Download: send one chunk (blocks while the client is behind).
    Status send(const driver::StreamChunk& chunk);
    // The transfer ended with `outcome`. True when the stream is over (no
    // answer of the client is pending any more): forget it.
    bool finish(const Status& outcome, int error_domain);

private:
    enum class Word { None, Finish, Abort };
    struct Item {
        bool hole = false;
        std::uint64_t hole_length = 0;
        std::string data;
    };

    void send_packet(MessageType type, MessageStatus status, std::string_view body);
    void answer_client_locked();
    void resume_reader();
    void wake();  // m_ held

    Header call_;
    bool upload_;
    bool sparse_;
    std::weak_ptr<Transport> transport_;

    mutable std::mutex m_;
    std::condition_variable cv_;
    std::deque<Item> items_;
    std::size_t queued_ = 0;
    Word client_word_ = Word::None;
    bool cancelled_ = false;
    std::optional<Error> client_error_;  // a bad packet from the client
    bool replied_ = false;  // the call's own reply went out
    bool server_done_ = false;
    std::optional<RemoteError> server_error_;
    std::string current_;  // the chunk next() handed out
    int wake_fd_ = -1;
    bool console_ = false;
};

// The upload and download procedures (in the storage table).
Status vol_upload(Connection& c, Connection::Call& call);
Status vol_download(Connection& c, Connection::Call& call);
// virDomainOpenConsole: the console's bytes both ways as one stream, moved
// by a thread of its own (the operation's lane only opens the console).
Status open_console(Connection& c, Connection::Call& call);

}  // namespace vireo::rpc
