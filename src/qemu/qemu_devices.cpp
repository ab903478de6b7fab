// Host resources of a domain's graphics and channels: the ports autoport
// chooses, the descriptors graphics passwords reach QEMU through, the
// sockets of unix channels (the guest agent's), made at start and released
// at the end of the instance.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "qemu/command_line.hpp"
#include "qemu/qemu_driver_impl.hpp"
#include "util/files.hpp"
#include "util/number.hpp"

namespace vireo::qemu {

namespace fs = std::filesystem;

namespace {

constexpr int kFirstPort = 5900;
constexpr int kLastPort = 65535;

// Nobody listens on `port` (IPv4 or IPv6, any address): a bind succeeds.
bool port_is_free(int port) {
    auto try_bind = [port](int family) {
        UniqueFd s(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!s) return family == AF_INET6;  // no IPv6 here: only IPv4 counts
        int one = 1;
        ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (family == AF_INET) {
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(static_cast<std::uint16_t>(port));
            a.sin_addr.s_addr = htonl(INADDR_ANY);
            return ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
        }
        ::setsockopt(s.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(static_cast<std::uint16_t>(port));
        a.sin6_addr = in6addr_any;
        return ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 || errno == EADDRNOTAVAIL;
    };
    return try_bind(AF_INET) && try_bind(AF_INET6);
}

// libvirt's short name of a domain in runtime paths: its first 20 bytes.
std::string short_name(const std::string& name) { return name.substr(0, 20); }

bool is_generated_channel(const conf::CharDev& ch) {
    return ch.type == "unix" && ch.target_type == "virtio" && !ch.target_name.empty();
}

}  // namespace

fs::path QemuDriverImpl::channel_dir() const {
    return cfg.channeldir.empty() ? cfg.rundir / "channel" / "target" : cfg.channeldir;
}

Status QemuDriverImpl::prepare_graphics(conf::DomainDef& live, LaunchPlan& plan) {
    auto& gs = live.devices.graphics;
    std::vector<int> taken;
    auto undo = [&] {
        std::lock_guard lk(ports_mutex);
        for (int p : taken) graphics_ports.erase(p);
    };
    for (std::size_t i = 0; i < gs.size(); ++i) {
        auto& g = gs[i];
        // The address it listens on when the definition gives none (the
        // command line's default), shown in the live XML as libvirt does.
        if (g.listen.empty() && (g.listens.empty() || (g.listens[0].type == "address" && g.listens[0].address.empty()))) {
            g.listen = "127.0.0.1";
            if (g.listens.empty()) g.listens.push_back({"address", "", "", ""});
            g.listens[0].address = g.listen;
        }
        if (graphics_needs_port(g)) {
            std::lock_guard lk(ports_mutex);
            int port = kFirstPort;
            while (port <= kLastPort && (graphics_ports.contains(port) || !port_is_free(port))) ++port;
            if (port > kLastPort) {
                for (int p : taken) graphics_ports.erase(p);
                return fail(ErrorCode::Internal, "Unable to find an unused port in range 'display' ({}-{})", kFirstPort, kLastPort);
            }
            graphics_ports.insert(port);
            taken.push_back(port);
            g.port = std::to_string(port);
        }
        if (!g.passwd.empty()) {
            // The password reaches QEMU's secret object through a memfd,
            // never the command line (which the log and ps show).
            UniqueFd fd(::memfd_create("vireo-graphics-secret", MFD_CLOEXEC));
            if (!fd || ::write(fd.get(), g.passwd.data(), g.passwd.size()) != static_cast<ssize_t>(g.passwd.size()) ||
                ::lseek(fd.get(), 0, SEEK_SET) != 0) {
                const int err = errno;
                undo();
                return std::unexpected(errno_error("graphics password", err));
            }
            plan.fds.push_back({graphics_secret_fd_name(i), std::move(fd)});
        }
    }
    return {};
}

Status QemuDriverImpl::prepare_channels(conf::DomainDef& live, int id) {
    for (auto& ch : live.devices.channels) VIREO_TRY(prepare_channel(ch, live.name, id));
    return {};
}

Status QemuDriverImpl::prepare_channel(conf::CharDev& ch, const std::string& domain, int id) {
    if (ch.target_type == "virtio" && !ch.target_name.empty()) ch.target_state = "disconnected";
    if (!is_generated_channel(ch) || !ch.source_path.empty()) return {};
    const fs::path dir = channel_dir() / fmt::format("domain-{}-{}", id, short_name(domain));
    const std::string path = (dir / ch.target_name).string();
    if (path.size() >= sizeof(sockaddr_un::sun_path))
        return fail(ErrorCode::Unsupported, "channel '{}': its socket path '{}' is too long for a unix socket", ch.target_name, path);
    ch.source_path = path;
    ch.source_mode = "bind";
    return {};
}

void QemuDriverImpl::release_channel(const conf::CharDev& ch) {
    const std::string base = channel_dir().string() + "/";
    if (!is_generated_channel(ch) || !ch.source_path.starts_with(base)) return;
    std::error_code ec;
    fs::remove(ch.source_path, ec);
    fs::remove(fs::path(ch.source_path).parent_path(), ec);  // once empty
}

Status QemuDriverImpl::make_channel_dirs(const conf::DomainDef& live) {
    const std::string base = channel_dir().string() + "/";
    for (const auto& ch : live.devices.channels)
        if (is_generated_channel(ch) && ch.source_path.starts_with(base))
            VIREO_TRY(files::make_dirs(fs::path(ch.source_path).parent_path(), 0750));
    return {};
}

void QemuDriverImpl::release_devices(const conf::DomainDef& live) {
    release_identity(live.name, live);
    {
        std::lock_guard lk(ports_mutex);
        for (const auto& g : live.devices.graphics)
            if (g.autoport == "yes") graphics_ports.erase(util::parse_number<int>(g.port).value_or(0));
    }
    for (const auto& ch : live.devices.channels) release_channel(ch);
}

void QemuDriverImpl::reserve_devices(const conf::DomainDef& live) {
    reserve_identity(live.name, live);
    std::lock_guard lk(ports_mutex);
    for (const auto& g : live.devices.graphics) {
        const int port = util::parse_number<int>(g.port).value_or(0);
        if (g.autoport == "yes" && port >= kFirstPort) graphics_ports.insert(port);
    }
}

Result<driver::Screenshot> QemuDriverImpl::screenshot(DomainObject& obj, const Running& run, unsigned screen) {
    // Which video and head `screen` is.
    std::string device;
    std::optional<unsigned> head;
    unsigned first = 0;
    bool found = false;
    for (const auto& v : run.def->devices.videos) {
        if (v.model_type == "none") continue;
        const unsigned heads = v.heads.empty() ? 1u : static_cast<unsigned>(std::strtoul(v.heads.c_str(), nullptr, 10));
        if (screen < first + heads) {
            if (screen != 0) {
                device = v.info.alias;
                head = screen - first;
            }
            found = true;
            break;
        }
        first += heads;
    }
    if (!found && first == 0) return fail(ErrorCode::OperationFailed, "operation failed: no screens to take screenshot from");
    if (!found) return fail(ErrorCode::InvalidArg, "invalid argument: no screen with ID '{}'", screen);
    // QEMU writes the file; it lives in the run directory only meanwhile.
    const fs::path path = run.priv->runtime_prefix + ".screendump.png";
    auto done = run.priv->monitor->screendump_png(path, device, head);
    if (!done) {
        std::error_code ec;
        fs::remove(path, ec);
        return std::unexpected(command_error(obj, run.priv, done.error()));
    }
    auto data = files::read(path);
    std::error_code ec;
    fs::remove(path, ec);
    if (!data) return std::unexpected(data.error());
    if (data->empty()) return fail(ErrorCode::OperationFailed, "operation failed: QEMU wrote an empty screenshot");
    return driver::Screenshot{"image/png", std::move(*data)};
}

Status QemuDriverImpl::send_key(DomainObject& obj, const Running& run, driver::KeyCodeset codeset, unsigned hold_ms,
                                const std::vector<unsigned>& keys) {
    std::vector<unsigned> qnums;
    for (unsigned k : keys) {
        auto q = driver::keycode_to_qnum(codeset, k);
        if (!q)
            return fail(ErrorCode::InvalidArg, "invalid argument: cannot translate keycode {} of {} codeset to qnum keycode", k,
                        driver::keycodeset_name(codeset));
        qnums.push_back(*q);
    }
    auto r = run.priv->monitor->send_key(qnums, hold_ms);
    if (!r) return std::unexpected(command_error(obj, run.priv, r.error()));
    return {};
}

}  // namespace vireo::qemu
