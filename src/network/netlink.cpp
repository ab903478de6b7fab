// rtnetlink requests with libmnl (see netlink.hpp).
#include "network/netlink.hpp"

#include <net/if.h>  // before linux/ headers: glibc and the kernel both define IFF_*

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <system_error>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "util/fd.hpp"
#include "util/files.hpp"

namespace vireo::network {

namespace {

constexpr std::size_t kBufferSize = 1 << 16;

// One NETLINK_ROUTE socket: a request and its ACK, or a dump.
class Socket {
public:
    Socket() = default;
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    ~Socket() {
        if (nl_) mnl_socket_close(nl_);
    }

    // `groups`: the multicast groups to hear (RTMGRP_LINK for link
    // notifications), none for requests.
    Status open(unsigned groups = 0) {
        nl_ = mnl_socket_open(NETLINK_ROUTE);
        if (!nl_) return fail_errno("cannot open a netlink socket");
        if (mnl_socket_bind(nl_, groups, MNL_SOCKET_AUTOPID) < 0) return fail_errno("cannot bind a netlink socket");
        portid_ = mnl_socket_get_portid(nl_);
        return {};
    }

    [[nodiscard]] int fd() const { return mnl_socket_get_fd(nl_); }

    // Send and wait for the kernel's ACK; an error carries the kernel's errno.
    Status request(nlmsghdr* nlh, std::string_view what) {
        nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
        nlh->nlmsg_seq = ++seq_;
        return exchange(nlh, nullptr, nullptr, what);
    }

    // Send a dump request and call `each` for every message of the answer.
    Status dump(nlmsghdr* nlh, const std::function<void(const nlmsghdr*)>& each, std::string_view what) {
        return answered(nlh, NLM_F_DUMP, each, what);
    }

    // Send a request for one object (a GET without NLM_F_DUMP): `each` sees
    // its answer, then the kernel's ACK ends the exchange.
    Status get(nlmsghdr* nlh, const std::function<void(const nlmsghdr*)>& each, std::string_view what) {
        return answered(nlh, NLM_F_ACK, each, what);
    }

private:
    Status answered(nlmsghdr* nlh, std::uint16_t flags, const std::function<void(const nlmsghdr*)>& each,
                    std::string_view what) {
        nlh->nlmsg_flags |= NLM_F_REQUEST | flags;
        nlh->nlmsg_seq = ++seq_;
        return exchange(
            nlh,
            [](const nlmsghdr* m, void* data) {
                (*static_cast<const std::function<void(const nlmsghdr*)>*>(data))(m);
                return MNL_CB_OK;
            },
            const_cast<std::function<void(const nlmsghdr*)>*>(&each), what);
    }

    Status exchange(nlmsghdr* nlh, mnl_cb_t cb, void* data, std::string_view what) {
        if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) return std::unexpected(errno_error(what, errno));
        std::vector<char> buf(kBufferSize);
        for (;;) {
            const ssize_t n = mnl_socket_recvfrom(nl_, buf.data(), buf.size());
            if (n < 0) return std::unexpected(errno_error(what, errno));
            const int ret = mnl_cb_run(buf.data(), static_cast<std::size_t>(n), seq_, portid_, cb, data);
            if (ret < 0) return std::unexpected(errno_error(what, errno));
            if (ret == MNL_CB_STOP) return {};
        }
    }

    mnl_socket* nl_ = nullptr;
    unsigned portid_ = 0;
    unsigned seq_ = 0;
};

// A message being built in an aligned buffer.
struct Message {
    alignas(8) char buf[8192] = {};
    nlmsghdr* nlh;
    explicit Message(std::uint16_t type, std::uint16_t flags = 0) : nlh(mnl_nlmsg_put_header(buf)) {
        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = flags;
    }
    ifinfomsg* link_header(int index = 0) {
        auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
        ifm->ifi_family = AF_UNSPEC;
        ifm->ifi_index = index;
        return ifm;
    }
    void put_name(std::string_view name) { mnl_attr_put_strz(nlh, IFLA_IFNAME, std::string(name).c_str()); }
};

Status run(Message& m, std::string_view what) {
    Socket s;
    VIREO_TRY(s.open());
    return s.request(m.nlh, what);
}

Result<int> index_of(std::string_view name) {
    if (name.empty() || name.size() >= IFNAMSIZ) return fail(ErrorCode::InvalidArg, "invalid interface name '{}'", name);
    const unsigned idx = if_nametoindex(std::string(name).c_str());
    if (idx == 0) {
        if (errno == ENODEV || errno == ENXIO) return fail(ErrorCode::NotFound, "no network interface '{}'", name);
        return std::unexpected(errno_error(fmt::format("cannot look up interface '{}'", name), errno));
    }
    return static_cast<int>(idx);
}

Status check_name(std::string_view name) {
    if (name.empty() || name.size() >= IFNAMSIZ || name.find('/') != std::string_view::npos)
        return fail(ErrorCode::InvalidArg, "invalid interface name '{}': 1 to 15 characters, no '/'", name);
    return {};
}

// Attribute table of one nest level, indexed by type.
struct Attrs {
    std::vector<const nlattr*> at;
    explicit Attrs(std::size_t max) : at(max + 1, nullptr) {}
    static int collect(const nlattr* a, void* data) {
        auto* self = static_cast<Attrs*>(data);
        const auto type = mnl_attr_get_type(a);
        if (type < self->at.size()) self->at[type] = a;
        return MNL_CB_OK;
    }
    [[nodiscard]] const nlattr* get(std::size_t type) const { return type < at.size() ? at[type] : nullptr; }
};

LinkInfo parse_link(const nlmsghdr* nlh) {
    const auto* ifm = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
    LinkInfo l;
    l.index = ifm->ifi_index;
    l.up = (ifm->ifi_flags & IFF_UP) != 0;
    l.running = (ifm->ifi_flags & IFF_RUNNING) != 0;
    Attrs a(IFLA_MAX);
    mnl_attr_parse(nlh, sizeof(ifinfomsg), Attrs::collect, &a);
    if (auto* n = a.get(IFLA_IFNAME)) l.name = mnl_attr_get_str(n);
    if (auto* n = a.get(IFLA_MTU)) l.mtu = mnl_attr_get_u32(n);
    if (auto* n = a.get(IFLA_MASTER)) l.master = static_cast<int>(mnl_attr_get_u32(n));
    if (auto* n = a.get(IFLA_ADDRESS); n && mnl_attr_get_payload_len(n) == 6) {
        MacAddr mac;
        std::memcpy(mac.bytes.data(), mnl_attr_get_payload(n), 6);
        l.mac = mac;
    }
    if (auto* n = a.get(IFLA_STATS64); n && mnl_attr_get_payload_len(n) >= sizeof(rtnl_link_stats64)) {
        rtnl_link_stats64 st{};
        std::memcpy(&st, mnl_attr_get_payload(n), sizeof st);
        l.stats = {st.rx_bytes, st.rx_packets, st.rx_errors, st.rx_dropped, st.tx_bytes, st.tx_packets, st.tx_errors, st.tx_dropped};
    }
    if (auto* n = a.get(IFLA_LINKINFO)) {
        Attrs info(IFLA_INFO_MAX);
        mnl_attr_parse_nested(n, Attrs::collect, &info);
        if (auto* k = info.get(IFLA_INFO_KIND)) l.kind = mnl_attr_get_str(k);
    }
    return l;
}

// RTM_NEWLINK creating `name` of `kind`; `data` fills IFLA_INFO_DATA.
Status create_link(std::string_view name, std::string_view kind, const std::function<void(Message&)>& before_info,
                   const std::function<void(Message&)>& data, std::string_view what) {
    VIREO_TRY(check_name(name));
    Message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    m.link_header();
    m.put_name(name);
    if (before_info) before_info(m);
    nlattr* info = mnl_attr_nest_start(m.nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(m.nlh, IFLA_INFO_KIND, std::string(kind).c_str());
    if (data) {
        nlattr* d = mnl_attr_nest_start(m.nlh, IFLA_INFO_DATA);
        data(m);
        mnl_attr_nest_end(m.nlh, d);
    }
    mnl_attr_nest_end(m.nlh, info);
    return run(m, what);
}

// RTM_NEWLINK changing an existing link.
Status change_link(std::string_view name, const std::function<void(Message&, ifinfomsg*)>& fill, std::string_view what) {
    int index = 0;
    auto idx = index_of(name);
    if (!idx) return std::unexpected(idx.error().context(std::string(what)));
    index = *idx;
    Message m(RTM_NEWLINK);
    fill(m, m.link_header(index));
    return run(m, what);
}

}  // namespace

Result<std::vector<LinkInfo>> list_links() {
    Socket s;
    VIREO_TRY(s.open());
    Message m(RTM_GETLINK);
    m.link_header();
    std::vector<LinkInfo> out;
    VIREO_TRY(s.dump(m.nlh, [&](const nlmsghdr* nlh) { out.push_back(parse_link(nlh)); }, "cannot list network interfaces"));
    return out;
}

// One RTM_GETLINK by name, not a dump of every link: a host with a
// hundred networks and their guests' taps answers in the same time.
Result<std::optional<LinkInfo>> find_link(std::string_view name) {
    if (!check_name(name)) return std::optional<LinkInfo>();  // no link has such a name
    Socket s;
    VIREO_TRY(s.open());
    Message m(RTM_GETLINK);
    m.link_header();
    m.put_name(name);
    std::optional<LinkInfo> out;
    auto st = s.get(m.nlh, [&](const nlmsghdr* nlh) {
        if (nlh->nlmsg_type == RTM_NEWLINK) out = parse_link(nlh);
    }, fmt::format("cannot look up network interface '{}'", name));
    if (!st) {
        if (st.error().system_errno() == ENODEV) return std::optional<LinkInfo>();
        return std::unexpected(st.error());
    }
    return out;
}

Result<std::vector<AddressInfo>> list_addresses(std::string_view name) {
    int filter = 0;
    if (!name.empty()) {
        auto idx = index_of(name);
        if (!idx) return std::unexpected(idx.error());
        filter = *idx;
    }
    Socket s;
    VIREO_TRY(s.open());
    Message m(RTM_GETADDR);
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(m.nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = AF_UNSPEC;
    std::vector<AddressInfo> out;
    VIREO_TRY(s.dump(
        m.nlh,
        [&](const nlmsghdr* nlh) {
            const auto* a = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
            if (filter && static_cast<int>(a->ifa_index) != filter) return;
            if (a->ifa_family != AF_INET && a->ifa_family != AF_INET6) return;
            Attrs at(IFA_MAX);
            mnl_attr_parse(nlh, sizeof(ifaddrmsg), Attrs::collect, &at);
            const nlattr* addr = at.get(IFA_LOCAL) ? at.get(IFA_LOCAL) : at.get(IFA_ADDRESS);
            if (!addr) return;
            AddressInfo info;
            info.index = static_cast<int>(a->ifa_index);
            info.prefix = a->ifa_prefixlen;
            info.address.v6 = a->ifa_family == AF_INET6;
            const std::size_t len = info.address.v6 ? 16 : 4;
            if (mnl_attr_get_payload_len(addr) < len) return;
            std::memcpy(info.address.bytes.data(), mnl_attr_get_payload(addr), len);
            out.push_back(info);
        },
        "cannot list addresses"));
    return out;
}

Result<std::vector<NeighbourInfo>> list_neighbours() {
    Socket s;
    VIREO_TRY(s.open());
    Message m(RTM_GETNEIGH);
    auto* nd = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(m.nlh, sizeof(ndmsg)));
    nd->ndm_family = AF_UNSPEC;
    std::vector<NeighbourInfo> out;
    VIREO_TRY(s.dump(
        m.nlh,
        [&](const nlmsghdr* nlh) {
            const auto* n = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(nlh));
            if (n->ndm_family != AF_INET && n->ndm_family != AF_INET6) return;
            if (n->ndm_state & (NUD_FAILED | NUD_INCOMPLETE | NUD_NOARP)) return;
            Attrs at(NDA_MAX);
            mnl_attr_parse(nlh, sizeof(ndmsg), Attrs::collect, &at);
            const nlattr* dst = at.get(NDA_DST);
            const nlattr* ll = at.get(NDA_LLADDR);
            if (!dst || !ll || mnl_attr_get_payload_len(ll) != 6) return;
            NeighbourInfo info;
            info.index = n->ndm_ifindex;
            info.address.v6 = n->ndm_family == AF_INET6;
            const std::size_t len = info.address.v6 ? 16 : 4;
            if (mnl_attr_get_payload_len(dst) < len) return;
            std::memcpy(info.address.bytes.data(), mnl_attr_get_payload(dst), len);
            std::memcpy(info.mac.bytes.data(), mnl_attr_get_payload(ll), 6);
            out.push_back(info);
        },
        "cannot list the neighbour table"));
    return out;
}

Status create_bridge(std::string_view name, const BridgeOptions& o) {
    // The forward delay goes before STP in the request: the kernel checks
    // the delay's range only while STP is on, and libvirt's default is 0.
    return create_link(
        name, "bridge",
        [&](Message& m) {
            if (o.mtu) mnl_attr_put_u32(m.nlh, IFLA_MTU, *o.mtu);
            if (o.mac) mnl_attr_put(m.nlh, IFLA_ADDRESS, 6, o.mac->bytes.data());
        },
        [&](Message& m) {
            mnl_attr_put_u32(m.nlh, IFLA_BR_FORWARD_DELAY, static_cast<std::uint32_t>(o.delay_seconds * 100));
            mnl_attr_put_u32(m.nlh, IFLA_BR_STP_STATE, o.stp ? 1 : 0);
        },
        fmt::format("cannot create bridge '{}'", name));
}

Status create_veth(std::string_view name, std::string_view peer) {
    VIREO_TRY(check_name(peer));
    return create_link(name, "veth", {},
                       [&](Message& m) {
                           nlattr* p = mnl_attr_nest_start(m.nlh, VETH_INFO_PEER);
                           m.link_header();
                           m.put_name(peer);
                           mnl_attr_nest_end(m.nlh, p);
                       },
                       fmt::format("cannot create veth pair '{}'/'{}'", name, peer));
}

Status create_macvtap(std::string_view name, std::string_view lower, MacvtapMode mode, const std::optional<MacAddr>& mac) {
    auto lower_idx = index_of(lower);
    if (!lower_idx) return std::unexpected(lower_idx.error().context(fmt::format("cannot create macvtap '{}'", name)));
    std::uint32_t m32 = MACVLAN_MODE_VEPA;
    switch (mode) {
        case MacvtapMode::Vepa: m32 = MACVLAN_MODE_VEPA; break;
        case MacvtapMode::Bridge: m32 = MACVLAN_MODE_BRIDGE; break;
        case MacvtapMode::Private: m32 = MACVLAN_MODE_PRIVATE; break;
        case MacvtapMode::Passthru: m32 = MACVLAN_MODE_PASSTHRU; break;
    }
    return create_link(
        name, "macvtap",
        [&](Message& m) {
            mnl_attr_put_u32(m.nlh, IFLA_LINK, static_cast<std::uint32_t>(*lower_idx));
            if (mac) mnl_attr_put(m.nlh, IFLA_ADDRESS, 6, mac->bytes.data());
        },
        [&](Message& m) { mnl_attr_put_u32(m.nlh, IFLA_MACVLAN_MODE, m32); },
        fmt::format("cannot create macvtap '{}' on '{}'", name, lower));
}

Status create_vlan(std::string_view name, std::string_view lower, unsigned tag) {
    auto lower_idx = index_of(lower);
    if (!lower_idx) return std::unexpected(lower_idx.error().context(fmt::format("cannot create VLAN '{}'", name)));
    if (tag > 4095) return fail(ErrorCode::InvalidArg, "cannot create VLAN '{}': tag {} is out of range (0-4095)", name, tag);
    return create_link(
        name, "vlan", [&](Message& m) { mnl_attr_put_u32(m.nlh, IFLA_LINK, static_cast<std::uint32_t>(*lower_idx)); },
        [&](Message& m) { mnl_attr_put_u16(m.nlh, IFLA_VLAN_ID, static_cast<std::uint16_t>(tag)); },
        fmt::format("cannot create VLAN '{}' (tag {} on '{}')", name, tag, lower));
}

Status create_bond(std::string_view name, std::string_view mode, std::optional<unsigned> miimon_ms) {
    static constexpr std::string_view kModes[] = {"balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"};
    std::optional<std::uint8_t> mode_num;
    for (std::size_t i = 0; i < std::size(kModes); ++i)
        if (kModes[i] == mode) mode_num = static_cast<std::uint8_t>(i);
    if (!mode.empty() && !mode_num) return fail(ErrorCode::InvalidArg, "cannot create bond '{}': unknown mode '{}'", name, mode);
    return create_link(
        name, "bond", {},
        [&](Message& m) {
            if (mode_num) mnl_attr_put_u8(m.nlh, IFLA_BOND_MODE, *mode_num);
            if (miimon_ms) mnl_attr_put_u32(m.nlh, IFLA_BOND_MIIMON, *miimon_ms);
        },
        fmt::format("cannot create bond '{}'", name));
}

namespace {

// Reads the link notifications waiting on `watcher`: true once one says
// interface `index` is gone. RTM_DELLINK of family AF_BRIDGE only says a
// bridge port was released, so only AF_UNSPEC ones count. An error (ENOBUFS
// when notifications were dropped) means the watcher can no longer tell.
Result<bool> saw_deletion(const Socket& watcher, int index) {
    std::vector<char> buf(kBufferSize);
    for (;;) {
        const ssize_t n = ::recv(watcher.fd(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
        if (n < 0) return std::unexpected(errno_error("cannot read link notifications", errno));
        int left = static_cast<int>(n);
        for (const auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, left);
             nlh = mnl_nlmsg_next(nlh, &left)) {
            if (nlh->nlmsg_type != RTM_DELLINK) continue;
            const auto* ifm = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
            if (ifm->ifi_family == AF_UNSPEC && ifm->ifi_index == index) return true;
        }
    }
}

// What delete_link's requesting thread and delete_link share; whichever
// lets go last frees it.
struct Deletion {
    UniqueFd answered{::eventfd(0, EFD_CLOEXEC)};  // readable once `answer` is set
    std::promise<Status> answer;
};

// Sends RTM_DELLINK for `index` on `requester` from a thread of its own:
// the kernel holds the sending thread in the request until the device is
// freed, long after it was unlisted.
Result<std::future<Status>> request_deletion(const std::shared_ptr<Deletion>& deletion,
                                             std::unique_ptr<Socket> requester, int index, std::string what) {
    auto future = deletion->answer.get_future();
    try {
        std::thread([deletion, requester = std::move(requester), index, what = std::move(what)] {
            Message m(RTM_DELLINK);
            m.link_header(index);
            deletion->answer.set_value(requester->request(m.nlh, what));
            const std::uint64_t one = 1;
            (void)write_fully(deletion->answered.get(), &one, sizeof one);
        }).detach();
    } catch (const std::system_error& e) {
        return fail(ErrorCode::System, "{}: cannot start a thread: {}", what, e.what());
    }
    return future;
}

}  // namespace

// Returns once the kernel has unlisted the interface (its RTM_DELLINK
// notification: the name is free and `ip link` no longer shows it), not when
// the request itself returns: for a bridge the kernel then spends as long
// again waiting for RCU grace periods before it frees the device (~20 ms
// here), which nothing of ours waits for. The request's ACK is still read,
// on its own thread: a refused deletion returns its error.
Status delete_link(std::string_view name) {
    const std::string what = fmt::format("cannot delete interface '{}'", name);
    auto idx = index_of(name);
    if (!idx) return std::unexpected(idx.error().context(what));
    // The watcher listens before the request goes out: its notification cannot be missed.
    Socket watcher;
    VIREO_TRY(watcher.open(RTMGRP_LINK));
    auto requester = std::make_unique<Socket>();
    VIREO_TRY(requester->open());  // here: the socket belongs to this thread's network namespace
    auto deletion = std::make_shared<Deletion>();
    if (!deletion->answered) return std::unexpected(errno_error(what, errno));
    auto answer = request_deletion(deletion, std::move(requester), *idx, what);
    if (!answer) return std::unexpected(answer.error());
    std::array<pollfd, 2> fds{{{deletion->answered.get(), POLLIN, 0}, {watcher.fd(), POLLIN, 0}}};
    nfds_t watched = fds.size();
    for (;;) {
        const int n = ::poll(fds.data(), watched, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || fds[0].revents != 0) break;
        if (fds[1].revents == 0) continue;
        auto gone = saw_deletion(watcher, *idx);
        if (gone && *gone) return {};
        if (!gone) watched = 1;  // the answer decides
    }
    return answer->get();
}

Status set_link_up(std::string_view name, bool up) {
    return change_link(
        name,
        [&](Message&, ifinfomsg* ifm) {
            ifm->ifi_change = IFF_UP;
            ifm->ifi_flags = up ? IFF_UP : 0;
        },
        fmt::format("cannot set interface '{}' {}", name, up ? "up" : "down"));
}

Status set_mtu(std::string_view name, unsigned mtu) {
    return change_link(
        name, [&](Message& m, ifinfomsg*) { mnl_attr_put_u32(m.nlh, IFLA_MTU, mtu); },
        fmt::format("cannot set the MTU of interface '{}' to {}", name, mtu));
}

Status set_mac(std::string_view name, const MacAddr& mac) {
    return change_link(
        name, [&](Message& m, ifinfomsg*) { mnl_attr_put(m.nlh, IFLA_ADDRESS, 6, mac.bytes.data()); },
        fmt::format("cannot set the MAC address of interface '{}' to {}", name, mac.str()));
}

Status set_master(std::string_view port, std::string_view master) {
    std::uint32_t master_idx = 0;
    if (!master.empty()) {
        auto idx = index_of(master);
        if (!idx) return std::unexpected(idx.error().context(fmt::format("cannot attach '{}' to '{}'", port, master)));
        master_idx = static_cast<std::uint32_t>(*idx);
    }
    return change_link(
        port, [&](Message& m, ifinfomsg*) { mnl_attr_put_u32(m.nlh, IFLA_MASTER, master_idx); },
        master.empty() ? fmt::format("cannot release interface '{}' from its bridge", port)
                       : fmt::format("cannot attach interface '{}' to '{}'", port, master));
}

Status move_to_netns(std::string_view name, int netns_fd) {
    return change_link(
        name, [&](Message& m, ifinfomsg*) { mnl_attr_put_u32(m.nlh, IFLA_NET_NS_FD, static_cast<std::uint32_t>(netns_fd)); },
        fmt::format("cannot move interface '{}' to another network namespace", name));
}

namespace {

Status address_request(std::uint16_t type, std::uint16_t flags, std::string_view name, const IpAddr& address, unsigned prefix,
                       bool nodad, std::string_view what) {
    auto idx = index_of(name);
    if (!idx) return std::unexpected(idx.error().context(std::string(what)));
    if (prefix > address.bits()) return fail(ErrorCode::InvalidArg, "{}: prefix {} is too long", what, prefix);
    Message m(type, flags);
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(m.nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = address.v6 ? AF_INET6 : AF_INET;
    ifa->ifa_prefixlen = static_cast<std::uint8_t>(prefix);
    ifa->ifa_index = static_cast<unsigned>(*idx);
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    const std::size_t len = address.v6 ? 16 : 4;
    mnl_attr_put(m.nlh, IFA_LOCAL, len, address.bytes.data());
    mnl_attr_put(m.nlh, IFA_ADDRESS, len, address.bytes.data());
    if (!address.v6 && prefix < 31 && type == RTM_NEWADDR) {
        const IpAddr bcast = address.last(prefix);
        mnl_attr_put(m.nlh, IFA_BROADCAST, 4, bcast.bytes.data());
    }
    if (nodad && address.v6) ifa->ifa_flags = IFA_F_NODAD;
    return run(m, what);
}

}  // namespace

Status add_address(std::string_view name, const IpAddr& address, unsigned prefix, bool nodad) {
    return address_request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, name, address, prefix, nodad,
                           fmt::format("cannot add address {}/{} to interface '{}'", address.str(), prefix, name));
}

Status remove_address(std::string_view name, const IpAddr& address, unsigned prefix) {
    return address_request(RTM_DELADDR, 0, name, address, prefix, false,
                           fmt::format("cannot remove address {}/{} from interface '{}'", address.str(), prefix, name));
}

namespace {

const char* forwarding_path(bool v6) { return v6 ? "/proc/sys/net/ipv6/conf/all/forwarding" : "/proc/sys/net/ipv4/ip_forward"; }

}  // namespace

Result<bool> ip_forwarding(bool v6) {
    auto text = files::read(forwarding_path(v6));
    if (!text) return std::unexpected(text.error());
    return !text->empty() && (*text)[0] == '1';
}

Status set_ip_forwarding(bool v6, bool on) {
    // Not write_atomic: a sysctl is written in place.
    FILE* f = std::fopen(forwarding_path(v6), "w");
    if (!f) return fail_errno(fmt::format("cannot open {}", forwarding_path(v6)));
    const bool ok = std::fputs(on ? "1\n" : "0\n", f) >= 0;
    const bool closed = std::fclose(f) == 0;
    if (!ok || !closed) return fail_errno(fmt::format("cannot turn IP{} forwarding {}", v6 ? "v6" : "v4", on ? "on" : "off"));
    return {};
}

}  // namespace vireo::network
