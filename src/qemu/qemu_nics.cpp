// The host side of guest NICs: checked in prepare, made at launch, undone
// when the instance ends (see qemu_driver_impl.hpp, "guest NICs").
//
//   network   a port of the virtual network (driver::NetworkPorts) names the
//             bridge; a tap vnetN joins it
//   bridge    a tap vnetN joins the existing host bridge
//   ethernet  a tap made with the <target dev> name (or vnetN), or with
//             managed='no' the existing tap of that name, used as it is
//   direct    a macvtap macvtapN on <source dev> in <source mode>
//   user      QEMU's slirp, or passt (<backend type='passt'/>) on a socket
//
// Taps are created non-persistent and handed to QEMU as descriptors: they
// go away with QEMU, whatever way it ends. Macvtaps are links of their own
// and are deleted when the instance ends (or found dead after a restart).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "network/tap.hpp"
#include "qemu/command_line.hpp"
#include "qemu/nics.hpp"
#include "qemu/qemu_driver_impl.hpp"
#include "util/path_search.hpp"

namespace vireo::qemu {

namespace fs = std::filesystem;

namespace {

constexpr const char* kVhostNet = "/dev/vhost-net";

std::string label(const conf::Interface& nic) {
    return fmt::format("interface '{}' ({}, type '{}')", nic.info.alias, nic.mac, nic.type);
}

bool is_virtio(const conf::Interface& nic) { return nic.model.empty() || nic.model == "virtio"; }

// vhost-net for a virtio tap NIC unless <driver name='qemu'> says no.
bool wants_vhost(const conf::Interface& nic) { return nic_uses_tap(nic) && is_virtio(nic) && nic.driver_name != "qemu"; }

bool vhost_available() { return ::access(kVhostNet, R_OK | W_OK) == 0; }

network::MacvtapMode macvtap_mode(std::string_view mode) {
    if (mode == "bridge") return network::MacvtapMode::Bridge;
    if (mode == "private") return network::MacvtapMode::Private;
    if (mode == "passthrough") return network::MacvtapMode::Passthru;
    return network::MacvtapMode::Vepa;
}

Result<std::optional<network::LinkInfo>> link_named(std::string_view name) { return network::find_link(name); }

// What one launch made, for undoing it.
struct Made {
    std::vector<std::string> macvtaps;
    std::vector<std::pair<std::string, std::string>> ports;  // network, mac
    std::vector<ProcessId> passt;
};

Result<fs::path> passt_binary(const QemuDriverConfig& cfg) {
    if (!cfg.passt_binary.empty()) return cfg.passt_binary;
    auto found = find_executable("passt", path_dirs({"/usr/local/bin", "/usr/bin", "/bin"}));
    if (!found)
        return fail(ErrorCode::NotFound,
                    "passt is not installed (apt-get install passt); it is needed for <backend type='passt'/>");
    return *found;
}

}  // namespace

Status QemuDriverImpl::prepare_nics(conf::DomainDef& live, LaunchPlan& plan) {
    const bool admin = can_admin_network();
    for (auto& nic : live.devices.interfaces) {
        const std::string what = label(nic);
        if (nic.type == "network" && !cfg.networks)
            return fail(ErrorCode::Unsupported,
                        "{}: this {} daemon has no virtual networks, so network '{}' cannot be joined (use "
                        "qemu:///system, or type='user' for a session guest)",
                        what, cfg.system_mode ? "system" : "session", nic.source_network);
        if (nic_uses_tap(nic) && !(nic.type == "ethernet" && nic.target_managed == "no") && !admin)
            return fail(ErrorCode::PermissionDenied,
                        "{}: this daemon cannot create network devices (it lacks CAP_NET_ADMIN); a session guest "
                        "can use type='user' (QEMU's user networking or passt)",
                        what);
        if (nic.type == "bridge") {
            auto l = link_named(nic.source_bridge);
            if (!l) return std::unexpected(l.error().context(what));
            if (!*l) return fail(ErrorCode::NotFound, "{}: bridge '{}' does not exist", what, nic.source_bridge);
            if ((*l)->kind != "bridge")
                return fail(ErrorCode::InvalidArg, "{}: '{}' is not a bridge (it is a '{}' interface)", what,
                            nic.source_bridge, (*l)->kind.empty() ? "physical" : (*l)->kind);
        } else if (nic.type == "direct") {
            auto l = link_named(nic.source_dev);
            if (!l) return std::unexpected(l.error().context(what));
            if (!*l) return fail(ErrorCode::NotFound, "{}: host interface '{}' does not exist", what, nic.source_dev);
        } else if (nic.type == "ethernet" && !nic.target_dev.empty()) {
            auto l = link_named(nic.target_dev);
            if (!l) return std::unexpected(l.error().context(what));
            if (nic.target_managed == "no") {
                if (!*l) return fail(ErrorCode::NotFound, "{}: tap '{}' does not exist (managed='no' uses an existing tap)", what, nic.target_dev);
                if ((*l)->kind != "tun") return fail(ErrorCode::InvalidArg, "{}: '{}' is not a tap device", what, nic.target_dev);
            } else if (*l && !is_generated_nic_name(nic.target_dev)) {
                return fail(ErrorCode::Exists, "{}: an interface '{}' already exists (use <target dev='{}' managed='no'/> to use an existing tap)",
                            what, nic.target_dev, nic.target_dev);
            }
        } else if (nic.type == "user" && nic.backend_type == "passt") {
            auto bin = passt_binary(cfg);
            if (!bin) return std::unexpected(bin.error().context(what));
        }
        if (nic.driver_name == "vhost" && !is_virtio(nic))
            return fail(ErrorCode::Unsupported, "{}: vhost-net is only supported for model 'virtio'", what);
        if (nic.driver_name == "vhost" && nic_uses_tap(nic) && !vhost_available())
            return fail(ErrorCode::Unsupported, "{}: <driver name='vhost'> asks for vhost-net, but {} is not available on this host",
                        what, kVhostNet);
        if (!nic_uses_tap(nic)) continue;
        const unsigned queues = nic_queues(nic);
        for (unsigned q = 0; q < queues; ++q) plan.fds.push_back({nic_tap_fd_name(nic.info.alias, q), {}});
        if (wants_vhost(nic)) {
            if (vhost_available()) {
                for (unsigned q = 0; q < queues; ++q) plan.fds.push_back({nic_vhost_fd_name(nic.info.alias, q), {}});
                nic.driver_name = "vhost";
            } else {
                // As libvirt: no vhost-net device, the virtio NIC runs in
                // QEMU's userspace; the live XML says so.
                spdlog::warn("domain '{}': {}: {} is not available; the NIC runs without vhost-net (in QEMU)",
                             plan.name, what, kVhostNet);
                nic.driver_name = "qemu";
            }
        }
    }
    return {};
}

Status QemuDriverImpl::plug_nics(LaunchPlan& plan) {
    conf::DomainDef live = *plan.live.def;
    if (live.devices.interfaces.empty()) return {};
    Made made;
    auto undo = [&] {
        for (const auto& m : made.macvtaps) (void)network::delete_link(m);
        for (const auto& [net, mac] : made.ports) cfg.networks->unplug(net, plan.name, mac);
        for (const auto& p : made.passt) (void)processes->terminate(p, std::chrono::seconds(1), false);
    };
    auto set_fd = [&](const std::string& name, UniqueFd fd) {
        // Names are unique in the plan: the first match takes the fd.
        for (auto& f : plan.fds)
            if (f.name == name) {
                f.fd = std::move(fd);
                return;
            }
    };
    // Names in use: the host's links and the taps of running domains (a
    // stopped guest's tap may linger until its QEMU has exited).
    std::set<std::string> used;
    if (auto links = network::list_links()) {
        for (const auto& l : *links) used.insert(l.name);
    }
    for (const auto& snap : registry.snapshots())
        if (snap.active())
            for (const auto& n : snap.fields.current().def->devices.interfaces)
                if (!n.target_dev.empty()) used.insert(n.target_dev);

    auto plug_one = [&](conf::Interface& nic) -> Status {
        const unsigned queues = nic_queues(nic);
        std::vector<UniqueFd> fds;
        std::string bridge;
        unsigned mtu = nic.mtu.empty() ? 0 : static_cast<unsigned>(std::stoul(nic.mtu));
        if (nic.type == "user") {
            if (nic.backend_type != "passt") return {};
            auto bin = passt_binary(cfg);
            if (!bin) return std::unexpected(bin.error());
            const std::string sock = passt_socket_path(plan.prefix, nic.info.alias);
            ::unlink(sock.c_str());
            SpawnSpec spec;
            spec.argv = {bin->string(), "--foreground", "--quiet", "--one-off", "--socket", sock, "--mac-addr", nic.mac};
            if (::geteuid() == 0) {
                // passt drops root to nobody, who could not bind a socket in
                // the daemon's private run directory.
                spec.argv.push_back("--runas");
                spec.argv.push_back("0");
            }
            spec.log_path = log_file(plan.name);
            auto proc = processes->spawn(spec);
            if (!proc) return std::unexpected(proc.error().context("cannot start passt"));
            made.passt.push_back(*proc);
            plan.passt.push_back(*proc);
            // QEMU's stream client connects once, at start: wait for the socket.
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
            while (!fs::exists(sock)) {
                if (!processes->alive(*proc))
                    return fail(ErrorCode::OperationFailed, "passt exited before it listened on {} (see {})", sock,
                                log_file(plan.name).string());
                if (std::chrono::steady_clock::now() > deadline)
                    return fail(ErrorCode::Timeout, "passt did not listen on {} within 10 s", sock);
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
            return {};
        }
        if (nic.type == "network") {
            auto port = cfg.networks->plug({.network = nic.source_network, .domain = plan.name, .mac = nic.mac});
            if (!port) return std::unexpected(port.error());
            made.ports.emplace_back(nic.source_network, nic.mac);
            bridge = port->bridge;
            nic.source_bridge = port->bridge;
            if (mtu == 0) mtu = port->mtu;
        } else if (nic.type == "bridge") {
            bridge = nic.source_bridge;
        }
        if (nic.type == "direct") {
            const std::string name = first_free_name("macvtap", used);
            auto mac = conf::MacAddr::parse(nic.mac);
            VIREO_TRY(network::create_macvtap(name, nic.source_dev, macvtap_mode(nic.source_mode), mac));
            made.macvtaps.push_back(name);
            used.insert(name);
            nic.target_dev = name;
            if (mtu) VIREO_TRY(network::set_mtu(name, mtu));
            VIREO_TRY(network::set_link_up(name, true));
            auto opened = network::open_macvtap(name, queues);
            if (!opened) return std::unexpected(opened.error());
            fds = std::move(*opened);
        } else if (nic.type == "ethernet" && nic.target_managed == "no") {
            // An existing tap, attached to as it is (libvirt's managed='no').
            // EBUSY: still attached to a QEMU that has just died (the kernel
            // releases its descriptors shortly after the process is gone), so
            // a start right after a destroy or crash waits up to 2 s for it.
            const network::TapOptions existing{.name = nic.target_dev, .queues = queues, .vnet_hdr = is_virtio(nic),
                                               .persistent = false, .exclusive = false};
            auto tap = network::create_tap(existing);
            for (int wait = 0; wait < 40 && !tap && tap.error().sys_errno == EBUSY; ++wait) {
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
                tap = network::create_tap(existing);
            }
            if (!tap) return std::unexpected(tap.error());
            fds = std::move(tap->fds);
        } else {
            // A new tap: the <target dev> name the user chose, else vnetN.
            const bool given = !nic.target_dev.empty() && !is_generated_nic_name(nic.target_dev);
            Result<network::Tap> tap = std::unexpected(Error{});
            for (int attempt = 0; attempt < 16; ++attempt) {
                const std::string name = given ? nic.target_dev : first_free_name("vnet", used);
                used.insert(name);
                tap = network::create_tap({.name = name, .queues = queues, .vnet_hdr = is_virtio(nic),
                                           .persistent = false, .exclusive = true});
                // Someone else took the name between our look and the create: the next one.
                if (tap || given || tap.error().sys_errno != EBUSY) break;
            }
            if (!tap) return std::unexpected(tap.error());
            nic.target_dev = tap->name;
            fds = std::move(tap->fds);
            if (auto mac = conf::MacAddr::parse(nic.mac)) VIREO_TRY(network::set_mac(nic.target_dev, network::host_side_mac(*mac)));
            if (mtu) VIREO_TRY(network::set_mtu(nic.target_dev, mtu));
            if (!bridge.empty()) VIREO_TRY(network::set_master(nic.target_dev, bridge));
            VIREO_TRY(network::set_link_up(nic.target_dev, true));
        }
        for (unsigned q = 0; q < fds.size(); ++q) set_fd(nic_tap_fd_name(nic.info.alias, q), std::move(fds[q]));
        if (nic.driver_name == "vhost") {
            for (unsigned q = 0; q < queues; ++q) {
                UniqueFd v(::open(kVhostNet, O_RDWR | O_CLOEXEC));
                if (!v) return std::unexpected(errno_error(fmt::format("cannot open {}", kVhostNet), errno));
                set_fd(nic_vhost_fd_name(nic.info.alias, q), std::move(v));
            }
        }
        return {};
    };

    for (auto& nic : live.devices.interfaces) {
        if (auto st = plug_one(nic); !st) {
            undo();
            return std::unexpected(st.error().context(label(nic)));
        }
    }
    for (const auto& f : plan.fds)
        if (!f.fd) {
            undo();
            return fail(ErrorCode::Internal, "no descriptor was made for '{}'", f.name);
        }
    plan.live = driver::make_definition(std::move(live));
    return {};
}

void QemuDriverImpl::unplug_nics(const std::string& domain, const conf::DomainDef& live,
                                 const std::vector<ProcessId>& passt) {
    for (const auto& nic : live.devices.interfaces) {
        if (nic.type == "network" && cfg.networks) cfg.networks->unplug(nic.source_network, domain, nic.mac);
        if (nic.type == "direct" && !nic.target_dev.empty()) {
            auto st = network::delete_link(nic.target_dev);
            if (!st && st.error().code != ErrorCode::NotFound)
                spdlog::warn("domain '{}': cannot delete macvtap '{}': {}", domain, nic.target_dev, st.error().full_message());
        }
    }
    // passt --one-off exits when QEMU goes; this is for a QEMU that never came.
    for (const auto& p : passt) (void)processes->terminate(p, std::chrono::seconds(1), false);
}

Result<std::vector<LaunchFd>> QemuDriverImpl::plug_hotplug_nic(const std::string& domain, const std::string& prefix,
                                                               const conf::DomainDef& running, conf::Interface& nic) {
    conf::DomainDef one = running;
    one.devices.interfaces = {nic};
    LaunchPlan plan;
    plan.name = domain;
    plan.prefix = prefix;
    VIREO_TRY(prepare_nics(one, plan));
    plan.live = driver::make_definition(std::move(one));
    VIREO_TRY(plug_nics(plan));
    nic = plan.live.def->devices.interfaces.front();
    return std::move(plan.fds);
}

void QemuDriverImpl::unplug_hotplug_nic(const std::string& domain, const conf::Interface& nic) {
    conf::DomainDef one;
    one.devices.interfaces = {nic};
    unplug_nics(domain, one, {});
}

void QemuDriverImpl::replug_nics(const std::string& domain, const conf::DomainDef& live) {
    if (!cfg.networks) return;
    for (const auto& nic : live.devices.interfaces) {
        if (nic.type != "network") continue;
        auto port = cfg.networks->plug({.network = nic.source_network, .domain = domain, .mac = nic.mac});
        if (!port)
            spdlog::warn("domain '{}': interface {} on network '{}': {}", domain, nic.target_dev, nic.source_network,
                         port.error().full_message());
    }
}

Status QemuDriverImpl::apply_link_states(Monitor& monitor, const conf::DomainDef& live) {
    for (const auto& nic : live.devices.interfaces)
        if (nic.link_state == "down")
            VIREO_TRY(monitor.set_link(nic.info.alias, false));
    return {};
}

std::set<std::string> QemuDriverImpl::macs_in_use(std::string_view except) {
    std::set<std::string> out;
    for (const auto& snap : registry.snapshots()) {
        if (snap.name == except) continue;
        for (const auto* d : {snap.fields.live ? &*snap.fields.live : nullptr, snap.fields.config ? &*snap.fields.config : nullptr})
            if (d && d->def)
                for (auto& mac : d->def.facts().macs) out.insert(std::move(mac));
    }
    return out;
}

std::function<bool(std::string_view)> QemuDriverImpl::mac_in_use_check() {
    auto used = std::make_shared<std::optional<std::set<std::string>>>();
    return [this, used](std::string_view mac) {
        if (!*used) *used = macs_in_use();
        return (*used)->contains(std::string(mac));
    };
}

}  // namespace vireo::qemu
