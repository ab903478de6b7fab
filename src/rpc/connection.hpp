// One client connection speaking libvirt's remote protocol, independent of
// sockets: the daemon feeds it the bytes it reads and gives it a Transport
// to send packets on and a Runner that runs work on an operation's lane
// (daemon/dispatcher.hpp), so the codec is the same in the daemon, the unit
// tests and the fuzzer.
//
// Every call of the remote program is looked up in the procedure table
// (procedures.cpp). A procedure that maps to an operation of the operation
// table (driver/ops) runs through the driver's call<Op>() on that
// operation's lane, exactly as the HTTP API runs it; the read-only socket
// refuses every operation the table does not allow it with libvirt's
// "operation denied". Connection-level procedures (auth, open, features,
// event callbacks) are answered at once. Unknown procedures get libvirt's
// "not supported" error, so clients fall back. Keepalive pings are answered
// as soon as they are read, whatever calls are still running; replies go
// out when their call ends, so pipelined calls may be answered out of order.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "driver/driver.hpp"
#include "rpc/packet.hpp"
#include "rpc/xdr.hpp"

namespace vireo::rpc {

// Where a connection's packets go. send() is called from any thread.
class Transport {
public:
    virtual ~Transport() = default;
    virtual void send(std::string packet) = 0;
    // Block (a job thread, never the connection's own) until at most `limit`
    // bytes wait to be written to the client; false once it is gone.
    virtual bool wait_writable(std::size_t limit) {
        (void)limit;
        return true;
    }
    // Reading was paused because Connection::backlogged(): read again.
    virtual void resume_reading() {}
};

class Stream;

// Runs `work` for `op` on the op's lane; `fail` answers instead when work threw.
using Runner = std::function<void(const driver::ops::OpInfo& op, std::string what, std::function<std::string()> work,
                                  std::function<std::string(const Error&)> fail)>;

// libvirt's error as a reply carries it.
struct RemoteError {
    int code = 1;
    int domain = 0;
    std::string message;
};

// The libvirt error (code, domain) of a vireo error from an operation whose
// errors come from `from` (driver::ops::LibvirtDomain; 0 = the driver's).
RemoteError to_remote_error(const Error& e, int from);
// The body of an error reply (remote_error).
std::string encode_error(const RemoteError& e);

class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(driver::Driver& driver, bool read_only, std::weak_ptr<Transport> transport, Runner runner);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Bytes read from the client. False: the stream is broken (bad length),
    // close the connection (the reason is in last_error()).
    bool feed(std::string_view bytes);
    // The client went away: drop its event callbacks.
    void closed();

    [[nodiscard]] const std::string& last_error() const { return last_error_; }

    // Used by the procedure handlers (procedures.cpp).
    struct Call {
        Header header;
        XdrReader args;
    };
    [[nodiscard]] driver::Driver& driver() const { return driver_; }
    [[nodiscard]] bool opened() const { return opened_; }
    [[nodiscard]] bool read_only() const { return read_only_; }
    // A client may open a read-write socket read-only (VIR_CONNECT_RO), never the reverse.
    void make_read_only() { read_only_ = true; }
    void set_opened(bool o) { opened_ = o; }
    void reply(const Header& call, const std::string& body);
    void reply_error(const Header& call, const RemoteError& e);
    // Run `work` on the lane of `op` and answer with what it returns.
    void submit(const Header& call, const driver::ops::OpInfo& op, std::function<Result<std::string>()> work);
    // Like submit(), for work that answers the call itself (streams).
    void submit_raw(const driver::ops::OpInfo& op, std::string what, std::function<std::string()> work,
                    std::function<std::string(const Error&)> fail);
    // Domain event callbacks of virDomainEventID `event_id` (lifecycle and
    // the device removal events), of one domain or all.
    Result<int> register_event(int event_id, const std::optional<std::string>& uuid);
    // A callback of another event family (network events): `subscribe`
    // makes the driver's subscription for callback `id`, whose messages it
    // sends on `transport`. Deregistered with deregister().
    using Subscribe =
        std::function<Result<std::unique_ptr<driver::Subscription>>(int id, const std::weak_ptr<Transport>& transport)>;
    Result<int> register_callback(const Subscribe& subscribe);
    bool deregister(int id);

    // Streams (streams.hpp), by the serial of the call that opened them.
    Result<std::shared_ptr<Stream>> open_stream(const Header& call, bool upload, bool sparse);
    void forget_stream(std::uint32_t serial);
    // An upload has more bytes queued than it may: stop reading the client.
    [[nodiscard]] bool backlogged() const;

private:
    void handle(const Packet& p);
    void handle_stream(const Packet& p);
    void send(const Header& h, std::string_view body);

    driver::Driver& driver_;
    bool read_only_;
    std::weak_ptr<Transport> transport_;
    Runner runner_;
    FrameDecoder frames_;
    bool opened_ = false;
    std::string last_error_;
    std::mutex events_mutex_;
    std::map<int, std::unique_ptr<driver::Subscription>> events_;
    int next_callback_ = 1;
    mutable std::mutex streams_mutex_;
    std::map<std::uint32_t, std::shared_ptr<Stream>> streams_;
};

// Procedure table lookups (procedures.cpp).
struct ProcDef;
const ProcDef* find_procedure(int number);
// Decode and run one call (the header says program, version and type are right).
void dispatch(Connection& c, const ProcDef& def, Connection::Call call);

}  // namespace vireo::rpc
