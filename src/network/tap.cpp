// Taps via /dev/net/tun, macvtap character devices (see tap.hpp).
#include "network/tap.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "network/netlink.hpp"
#include "util/files.hpp"
#include "util/number.hpp"

namespace vireo::network {

namespace {

Result<UniqueFd> tun_attach(const std::string& name, short flags, std::string& actual) {
    UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
    if (!fd) return std::unexpected(errno_error("cannot open /dev/net/tun", errno));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    ifr.ifr_flags = flags;
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) return std::unexpected(errno_error(fmt::format("cannot create tap device '{}'", name), errno));
    actual = ifr.ifr_name;
    return fd;
}

}  // namespace

Result<Tap> create_tap(const TapOptions& o) {
    if (o.name.empty() || o.name.size() >= IFNAMSIZ) return fail(ErrorCode::InvalidArg, "invalid tap name '{}'", o.name);
    if (o.queues == 0) return fail(ErrorCode::InvalidArg, "tap '{}' needs at least one queue", o.name);
    short flags = IFF_TAP | IFF_NO_PI;
    if (o.vnet_hdr) flags |= IFF_VNET_HDR;
    if (o.queues > 1) flags |= IFF_MULTI_QUEUE;
    if (o.exclusive) flags |= IFF_TUN_EXCL;
    Tap tap;
    std::string name = o.name;
    for (unsigned q = 0; q < o.queues; ++q) {
        std::string actual;
        // Queues after the first attach to the device the first one made.
        auto fd = tun_attach(q == 0 ? name : tap.name, q == 0 ? flags : static_cast<short>(flags & ~IFF_TUN_EXCL), actual);
        if (!fd) return std::unexpected(fd.error());
        if (q == 0) tap.name = actual;
        tap.fds.push_back(std::move(*fd));
    }
    if (o.persistent && ::ioctl(tap.fds.front().get(), TUNSETPERSIST, 1) < 0)
        return std::unexpected(errno_error(fmt::format("cannot make tap '{}' persistent", tap.name), errno));
    return tap;
}

Status unpersist_tap(std::string_view name) {
    std::string actual;
    auto fd = tun_attach(std::string(name), IFF_TAP | IFF_NO_PI, actual);
    if (!fd) {
        // A multiqueue tap refuses a single-queue attach; try it that way.
        fd = tun_attach(std::string(name), IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE, actual);
        if (!fd) return std::unexpected(fd.error().context(fmt::format("cannot remove tap '{}'", name)));
    }
    if (::ioctl(fd->get(), TUNSETPERSIST, 0) < 0) return std::unexpected(errno_error(fmt::format("cannot remove tap '{}'", name), errno));
    return {};
}

Result<std::vector<UniqueFd>> open_macvtap(std::string_view name, unsigned queues) {
    auto link = find_link(name);
    if (!link) return std::unexpected(link.error());
    if (!*link) return fail(ErrorCode::NotFound, "no macvtap interface '{}'", name);
    const std::string dev = fmt::format("/dev/tap{}", (*link)->index);
    // devtmpfs makes the node; without it (or with a stale node of a reused
    // ifindex) make it from the device number sysfs shows.
    const std::string sys = fmt::format("/sys/class/net/{}/macvtap/tap{}/dev", name, (*link)->index);
    auto numbers = files::read(sys);
    if (numbers) {
        // "<major>:<minor>\n"
        std::string_view text(*numbers);
        while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
        const auto colon = text.find(':');
        auto major_number = util::parse_number<unsigned>(text.substr(0, colon));
        auto minor_number = colon == std::string_view::npos ? std::nullopt : util::parse_number<unsigned>(text.substr(colon + 1));
        if (!major_number || !minor_number)
            return fail(ErrorCode::System, "cannot read the device number of macvtap '{}' from {}", name, sys);
        const unsigned major = *major_number, minor = *minor_number;
        struct stat st{};
        const bool exists = ::stat(dev.c_str(), &st) == 0;
        if (exists && (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(major, minor))) ::unlink(dev.c_str());
        if ((!exists || st.st_rdev != makedev(major, minor)) && ::mknod(dev.c_str(), S_IFCHR | 0600, makedev(major, minor)) < 0 && errno != EEXIST)
            return std::unexpected(errno_error(fmt::format("cannot create {} for macvtap '{}'", dev, name), errno));
    } else if (::access(dev.c_str(), F_OK) != 0) {
        return std::unexpected(numbers.error().context(fmt::format("cannot find the character device of macvtap '{}'", name)));
    }
    std::vector<UniqueFd> fds;
    for (unsigned q = 0; q < queues; ++q) {
        UniqueFd fd(::open(dev.c_str(), O_RDWR | O_CLOEXEC));
        if (!fd) return std::unexpected(errno_error(fmt::format("cannot open {} (macvtap '{}')", dev, name), errno));
        fds.push_back(std::move(fd));
    }
    return fds;
}

conf::MacAddr host_side_mac(const conf::MacAddr& guest_mac) {
    conf::MacAddr m = guest_mac;
    m.bytes[0] = 0xfe;
    return m;
}

}  // namespace vireo::network
