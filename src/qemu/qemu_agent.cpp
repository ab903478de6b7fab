// The driver's side of the guest agent: which socket a running domain's
// agent listens on, one call at a time per domain, and the verbs built on
// its commands (qemu-agent-command, domtime, domhostname, shutdown and
// reboot --mode agent, domifaddr --source agent). The protocol is in
// agent.cpp; the connection state (the channel's <target state>) follows
// QEMU's VSERPORT_CHANGE events (qemu_instance.cpp).
#include <mutex>

#include "qemu/agent.hpp"
#include "qemu/qemu_driver_impl.hpp"

namespace vireo::qemu {

namespace {

// The agent's socket in a running domain's live definition.
Result<std::string> agent_socket(const conf::DomainDef& live) {
    for (const auto& ch : live.devices.channels) {
        if (ch.target_name != agent::kChannelName) continue;
        if (ch.type != "unix" || ch.source_path.empty())
            return fail(ErrorCode::Unsupported, "argument unsupported: the guest agent's channel must be of type 'unix'");
        // QEMU tells when the guest opens the port; an agent that never did,
        // or closed it, cannot answer: say so now rather than after a timeout.
        if (ch.target_state == "disconnected")
            return fail(ErrorCode::Timeout, "Guest agent is not responding: QEMU guest agent is not connected");
        return ch.source_path;
    }
    return fail(ErrorCode::Unsupported, "argument unsupported: QEMU guest agent is not configured");
}

}  // namespace

// Run `call` with the agent socket of the running domain `ref`, alone.
template <class F>
static auto with_agent(QemuDriverImpl& d, std::string_view ref, F call) -> decltype(call(std::string{})) {
    auto obj = d.registry.resolve(ref);
    if (!obj) return std::unexpected(obj.error());
    auto run = d.running(**obj);
    if (!run) return std::unexpected(run.error());
    auto socket = agent_socket(*run->def);
    if (!socket) return std::unexpected(socket.error());
    std::lock_guard lock(run->priv->agent_mutex);
    return call(*socket);
}

Result<std::string> QemuDriverImpl::agent_command(std::string_view ref, std::string_view json,
                                                  std::chrono::milliseconds timeout, bool wait_reply) {
    return with_agent(*this, ref, [&](const std::string& socket) -> Result<std::string> {
        if (wait_reply) return agent::execute_text(socket, json, timeout);
        auto cmd = nlohmann::json::parse(json, nullptr, false);
        if (!cmd.is_object() || !cmd.contains("execute") || !cmd["execute"].is_string())
            return fail(ErrorCode::InvalidArg, "invalid argument: the agent command must be a JSON object with \"execute\"");
        VIREO_TRY(agent::send_no_reply(socket, cmd["execute"].get<std::string>(),
                                       cmd.contains("arguments") ? cmd["arguments"] : nlohmann::json(), timeout));
        return std::string{};
    });
}

Result<driver::GuestTime> QemuDriverImpl::agent_get_time(std::string_view ref) {
    return with_agent(*this, ref, [&](const std::string& socket) -> Result<driver::GuestTime> {
        auto r = agent::execute(socket, "guest-get-time", nullptr, agent::kDefaultTimeout);
        if (!r) return std::unexpected(r.error());
        if (!r->is_number_integer()) return fail(ErrorCode::Protocol, "the guest agent's time is not a number: {}", r->dump());
        const auto ns = r->get<std::int64_t>();
        return driver::GuestTime{ns / 1'000'000'000, static_cast<std::uint64_t>(ns % 1'000'000'000)};
    });
}

Status QemuDriverImpl::agent_set_time(std::string_view ref, std::optional<std::uint64_t> ns_since_epoch) {
    return with_agent(*this, ref, [&](const std::string& socket) -> Status {
        nlohmann::json args = ns_since_epoch ? nlohmann::json{{"time", *ns_since_epoch}} : nlohmann::json();
        auto r = agent::execute(socket, "guest-set-time", args, agent::kDefaultTimeout);
        if (!r) return std::unexpected(r.error());
        return {};
    });
}

Result<std::string> QemuDriverImpl::agent_hostname(std::string_view ref) {
    return with_agent(*this, ref, [&](const std::string& socket) -> Result<std::string> {
        auto r = agent::execute(socket, "guest-get-host-name", nullptr, agent::kDefaultTimeout);
        if (!r) return std::unexpected(r.error());
        if (!r->is_object() || !r->contains("host-name") || !(*r)["host-name"].is_string())
            return fail(ErrorCode::Protocol, "the guest agent sent no host-name: {}", r->dump());
        return (*r)["host-name"].get<std::string>();
    });
}

// guest-shutdown is never answered: the guest going down (QEMU's SHUTDOWN,
// or RESET for a reboot, both from the guest) is the answer, handled as any
// shutdown the guest makes.
Status QemuDriverImpl::agent_shutdown(std::string_view ref, bool reboot) {
    return with_agent(*this, ref, [&](const std::string& socket) -> Status {
        return agent::send_no_reply(socket, "guest-shutdown", {{"mode", reboot ? "reboot" : "powerdown"}},
                                    agent::kDefaultTimeout);
    });
}

// guest-network-get-interfaces: every interface the guest has (lo
// included, as libvirt lists it), its MAC and addresses.
Result<std::vector<driver::InterfaceAddress>> QemuDriverImpl::agent_interface_addresses(std::string_view ref) {
    return with_agent(*this, ref, [&](const std::string& socket) -> Result<std::vector<driver::InterfaceAddress>> {
        auto r = agent::execute(socket, "guest-network-get-interfaces", nullptr, agent::kDefaultTimeout);
        if (!r) return std::unexpected(r.error());
        if (!r->is_array()) return fail(ErrorCode::Protocol, "the guest agent's interfaces are not a list: {}", r->dump());
        std::vector<driver::InterfaceAddress> out;
        for (const auto& nic : *r) {
            if (!nic.is_object()) continue;
            const std::string name = nic.value("name", "");
            const std::string mac = nic.value("hardware-address", "");
            const auto it = nic.find("ip-addresses");
            if (it == nic.end() || !it->is_array() || it->empty()) {
                out.push_back({name, mac, "", "", 0});
                continue;
            }
            for (const auto& a : *it) {
                if (!a.is_object()) continue;
                out.push_back({name, mac, a.value("ip-address-type", ""), a.value("ip-address", ""),
                               a.value("prefix", std::uint64_t{0})});
            }
        }
        return out;
    });
}

}  // namespace vireo::qemu
