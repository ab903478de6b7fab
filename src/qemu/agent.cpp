#include "qemu/agent.hpp"

#include <poll.h>
#include <unistd.h>

#include <fmt/format.h>

#include "qemu/qmp.hpp"
#include "util/fd.hpp"
#include "util/random.hpp"

namespace vireo::qemu::agent {

namespace {

using Clock = std::chrono::steady_clock;

Error not_connected() {
    return Error{ErrorCode::Timeout, "Guest agent is not responding: QEMU guest agent is not connected"};
}

// One call's connection: lines read until a deadline.
class Session {
public:
    Session(UniqueFd fd, std::chrono::milliseconds timeout) : fd_(std::move(fd)) { bound(timeout); }

    // From now on, reads wait at most `timeout` (zero or negative: no bound).
    void bound(std::chrono::milliseconds timeout) {
        deadline_ = timeout.count() > 0 ? Clock::now() + timeout : Clock::time_point::max();
    }

    Status send(const nlohmann::json& message, bool reset_parser = false) {
        std::string text = (reset_parser ? std::string("\xff") : std::string()) + message.dump() + "\n";
        if (!write_fully(fd_.get(), text.data(), text.size()))
            return std::unexpected(errno_error("write to the guest agent's socket", errno));
        return {};
    }

    // guest-sync-delimited: everything before the agent's 0xFF is stale;
    // then the line returning our id.
    Status sync() {
        std::uint32_t id = 0;
        random_bytes(std::span(reinterpret_cast<std::uint8_t*>(&id), sizeof(id)));
        id &= 0x7fffffff;  // the agent reads an int
        // A leading 0xFF makes the agent's parser drop a half-written command.
        VIREO_TRY(send({{"execute", "guest-sync-delimited"}, {"arguments", {{"id", id}}}}, true));
        for (;;) {
            if (auto pos = buf_.find('\xff'); pos != std::string::npos) {
                buf_.erase(0, pos + 1);
                synced_marker_ = true;
            } else if (!synced_marker_) {
                buf_.clear();
            }
            if (synced_marker_) {
                while (auto line = take_line()) {
                    auto reply = nlohmann::json::parse(*line, nullptr, false);
                    if (reply.is_object() && reply.contains("return") && reply["return"] == id) return {};
                }
            }
            if (auto r = fill(); !r) return std::unexpected(r.error().code == ErrorCode::Timeout ? not_connected() : r.error());
        }
    }

    // The next reply object.
    Result<nlohmann::json> reply(std::string_view command) {
        for (;;) {
            while (auto line = take_line()) {
                auto reply = nlohmann::json::parse(*line, nullptr, false);
                if (!reply.is_object()) continue;  // blank line or noise
                if (reply.contains("error")) {
                    const auto& e = reply["error"];
                    const std::string desc = e.is_object() && e.contains("desc") && e["desc"].is_string()
                                                 ? e["desc"].get<std::string>()
                                                 : e.dump();
                    // An agent without the command, or one that disabled
                    // it (frozen filesystems), cannot do it: Unsupported.
                    const std::string cls = e.is_object() ? e.value("class", "") : "";
                    const bool unsupported = cls == "CommandNotFound" || cls == "CommandDisabled";
                    return fail(unsupported ? ErrorCode::Unsupported : ErrorCode::OperationFailed,
                                "internal error: unable to execute QEMU agent command '{}': {}", command, desc);
                }
                if (reply.contains("return")) return reply;
            }
            if (auto r = fill(); !r) {
                if (r.error().code == ErrorCode::Timeout)
                    return fail(ErrorCode::Timeout, "Guest agent is not responding: the agent did not answer '{}' in time",
                                command);
                return std::unexpected(r.error());
            }
        }
    }

private:
    std::optional<std::string> take_line() {
        auto nl = buf_.find('\n');
        if (nl == std::string::npos) return std::nullopt;
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
    }

    // Read what is there, waiting until the deadline.
    Status fill() {
        for (;;) {
            int wait_ms = -1;
            if (deadline_ != Clock::time_point::max()) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
                if (left <= 0) return fail(ErrorCode::Timeout, "the guest agent did not answer in time");
                wait_ms = static_cast<int>(std::min<long long>(left, 60'000));
            }
            pollfd p{fd_.get(), POLLIN, 0};
            const int n = ::poll(&p, 1, wait_ms);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return std::unexpected(errno_error("poll on the guest agent's socket", errno));
            if (n == 0) continue;  // the deadline is checked above
            char chunk[4096];
            const ssize_t got = ::read(fd_.get(), chunk, sizeof(chunk));
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) return std::unexpected(errno_error("read from the guest agent's socket", errno));
            if (got == 0) return fail(ErrorCode::Connection, "the guest agent's socket was closed (the domain stopped?)");
            buf_.append(chunk, static_cast<std::size_t>(got));
            return {};
        }
    }

    UniqueFd fd_;
    Clock::time_point deadline_;
    std::string buf_;
    bool synced_marker_ = false;
};

Result<Session> open_synced(const std::filesystem::path& socket, std::chrono::milliseconds timeout) {
    auto fd = connect_unix(socket);
    if (!fd) return std::unexpected(fd.error().context("cannot reach the guest agent's socket"));
    // The sync gets at least the default bound (see agent.hpp), the
    // command then its own.
    const bool unbounded = timeout.count() <= 0;
    Session s(std::move(*fd), unbounded ? timeout : std::max(timeout, kDefaultTimeout));
    VIREO_TRY(s.sync());
    s.bound(timeout);
    return s;
}

nlohmann::json command_object(std::string_view command, const nlohmann::json& arguments) {
    nlohmann::json cmd{{"execute", command}};
    if (!arguments.is_null()) cmd["arguments"] = arguments;
    return cmd;
}

}  // namespace

Result<nlohmann::json> execute(const std::filesystem::path& socket, std::string_view command,
                               const nlohmann::json& arguments, std::chrono::milliseconds timeout) {
    auto s = open_synced(socket, timeout);
    if (!s) return std::unexpected(s.error());
    VIREO_TRY(s->send(command_object(command, arguments)));
    auto r = s->reply(command);
    if (!r) return std::unexpected(r.error());
    return (*r)["return"];
}

Status send_no_reply(const std::filesystem::path& socket, std::string_view command, const nlohmann::json& arguments,
                     std::chrono::milliseconds timeout) {
    auto s = open_synced(socket, timeout);
    if (!s) return std::unexpected(s.error());
    return s->send(command_object(command, arguments));
}

Result<std::string> execute_text(const std::filesystem::path& socket, std::string_view json,
                                 std::chrono::milliseconds timeout) {
    auto cmd = nlohmann::json::parse(json, nullptr, false);
    if (!cmd.is_object() || !cmd.contains("execute") || !cmd["execute"].is_string())
        return fail(ErrorCode::InvalidArg, "invalid argument: the agent command must be a JSON object with \"execute\": {}",
                    std::string(json.substr(0, 200)));
    auto s = open_synced(socket, timeout);
    if (!s) return std::unexpected(s.error());
    VIREO_TRY(s->send(cmd));
    auto r = s->reply(cmd["execute"].get<std::string>());
    if (!r) return std::unexpected(r.error());
    return r->dump();
}

}  // namespace vireo::qemu::agent
