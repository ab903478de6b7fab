// `vireo console`: relay bytes between the terminal and a domain's serial
// console (Driver::open_console gives a bidirectional fd).
//
// On a terminal, stdin is put in raw mode (restored on every exit path) and
// ^] (0x1d) detaches, as in virsh. When stdin is not a terminal (scripts,
// tests) the input is relayed until its end; the console's output is then
// still relayed until the guest has been quiet for a moment, so that the
// answer to the last line sent is not lost.
#include <poll.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

#include "cli/vireo/commands.hpp"
#include "cli/vireo/session.hpp"

namespace vireo::cli {

namespace {

constexpr char kEscape = 0x1d;  // ^]
// How long the console must stay quiet after the end of a non-terminal stdin.
constexpr int kDrainQuietMs = 1500;

// Puts a terminal in raw mode for its lifetime.
class RawTerminal {
public:
    explicit RawTerminal(int fd) : fd_(fd) {
        if (::tcgetattr(fd_, &saved_) != 0) return;
        termios raw = saved_;
        ::cfmakeraw(&raw);
        active_ = ::tcsetattr(fd_, TCSAFLUSH, &raw) == 0;
    }
    ~RawTerminal() {
        if (active_) ::tcsetattr(fd_, TCSAFLUSH, &saved_);
    }
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;

private:
    int fd_;
    termios saved_{};
    bool active_ = false;
};

bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

enum class RelayEnd { Detached, ConsoleClosed, InputEnded, Failed };

// Relay until the user detaches, the console closes, or (non-tty) the input
// ends and the console has drained.
RelayEnd relay(int console, bool tty) {
    bool input_open = true;
    char buf[4096];
    for (;;) {
        pollfd fds[2] = {{console, POLLIN, 0}, {input_open ? STDIN_FILENO : -1, POLLIN, 0}};
        const int ready = ::poll(fds, 2, input_open ? -1 : kDrainQuietMs);
        if (ready < 0) {
            if (errno == EINTR) continue;
            return RelayEnd::Failed;
        }
        if (ready == 0) return RelayEnd::InputEnded;  // drained after end of input
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            const ssize_t n = ::read(console, buf, sizeof buf);
            if (n <= 0) return RelayEnd::ConsoleClosed;
            if (!write_all(STDOUT_FILENO, buf, static_cast<std::size_t>(n))) return RelayEnd::Failed;
        }
        if (input_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
            if (n <= 0) {
                input_open = false;
                continue;
            }
            std::size_t len = static_cast<std::size_t>(n);
            bool detach = false;
            if (tty) {
                for (std::size_t i = 0; i < len; ++i)
                    if (buf[i] == kEscape) {
                        len = i;
                        detach = true;
                        break;
                    }
            }
            if (!write_all(console, buf, len)) return RelayEnd::ConsoleClosed;
            if (detach) return RelayEnd::Detached;
        }
    }
}

}  // namespace

int attach_console(Session& s, const std::string& domain, std::string_view device) {
    auto* d = s.conn();
    if (!d) return 1;
    auto fd = d->open_console(domain, device);
    if (!fd) {
        s.error(fmt::format("Failed to get console for domain '{}'", domain), fd.error());
        return 1;
    }
    const bool tty = ::isatty(STDIN_FILENO) == 1;
    s.info("Connected to domain '{}'\nEscape character is ^] (Ctrl + ])\n", domain);
    std::fflush(stdout);
    RelayEnd end;
    {
        std::optional<RawTerminal> raw;
        if (tty) raw.emplace(STDIN_FILENO);
        end = relay(fd->get(), tty);
    }
    if (tty) s.out("\n");
    if (end == RelayEnd::Failed) {
        s.error(fmt::format("console of domain '{}' failed", domain), errno_error("relay", errno));
        return 1;
    }
    return 0;
}

namespace {

int cmd_console(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    return attach_console(s, dom->name, a.get("devname"));
}

}  // namespace

void add_console_command(std::vector<CommandSpec>& t) {
    t.push_back({"console", "Domain Management", "connect to the guest console",
                 "Connect the virtual serial console for the guest.\nOn a terminal, ^] (Ctrl + ]) detaches; otherwise the input is relayed\nuntil it ends.",
                 {kDomainOpt, {"devname", OptType::String, "character device name", false, true}}, cmd_console});
}

}  // namespace vireo::cli
