// The driver's side of the guest agent: which socket a running domain's
// agent listens on, one call at a time per domain, and the verbs built on
// its commands (qemu-agent-command, domtime, domhostname, shutdown and
// reboot --mode agent, domifaddr --source agent, domfsinfo, domfsfreeze,
// domfsthaw, set-user-password, guestvcpus). The protocol is in
// agent.cpp; the connection state (the channel's <target state>) follows
// QEMU's VSERPORT_CHANGE events (qemu_instance.cpp).
#include <algorithm>
#include <mutex>
#include <ranges>

#include <fmt/format.h>

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

// How long a call may take under a guest-agent-timeout value (libvirt's):
// block has no bound, default is vireo's, nowait gives the agent no time
// beyond an immediate answer, else the seconds given.
std::chrono::milliseconds agent_timeout(int value) {
    switch (value) {
        case kAgentTimeoutBlock: return std::chrono::milliseconds(0);
        case kAgentTimeoutDefault: return agent::kDefaultTimeout;
        case kAgentTimeoutNoWait: return std::chrono::milliseconds(1);
        default: return std::chrono::seconds(value);
    }
}

}  // namespace

// What a call on a domain's agent needs: its socket, the live definition,
// and how long the call may take (the domain's guest-agent-timeout).
struct AgentCall {
    std::string socket;
    const conf::DomainDef* def = nullptr;
    std::chrono::milliseconds timeout{};
};

// Run `call` on the agent of the running domain `ref`, alone.
template <class F>
static auto with_agent(QemuDriverImpl& d, std::string_view ref, F call)
    -> decltype(call(std::declval<const AgentCall&>())) {
    auto obj = d.registry.resolve(ref);
    if (!obj) return std::unexpected(obj.error());
    auto run = d.running(**obj);
    if (!run) return std::unexpected(run.error());
    auto socket = agent_socket(*run->def);
    if (!socket) return std::unexpected(socket.error());
    std::lock_guard lock(run->priv->agent_mutex);
    return call(AgentCall{*socket, run->def.get(), agent_timeout(run->priv->agent_timeout.load())});
}

Result<std::string> QemuDriverImpl::agent_command(std::string_view ref, std::string_view json,
                                                  std::optional<std::chrono::milliseconds> timeout, bool wait_reply) {
    return with_agent(*this, ref, [&](const AgentCall& a) -> Result<std::string> {
        const auto bound = timeout.value_or(a.timeout);
        if (wait_reply) return agent::execute_text(a.socket, json, bound);
        auto cmd = nlohmann::json::parse(json, nullptr, false);
        if (!cmd.is_object() || !cmd.contains("execute") || !cmd["execute"].is_string())
            return fail(ErrorCode::InvalidArg, "invalid argument: the agent command must be a JSON object with \"execute\"");
        VIREO_TRY(agent::send_no_reply(a.socket, cmd["execute"].get<std::string>(),
                                       cmd.contains("arguments") ? cmd["arguments"] : nlohmann::json(), bound));
        return std::string{};
    });
}

Result<driver::GuestTime> QemuDriverImpl::agent_get_time(std::string_view ref) {
    return with_agent(*this, ref, [&](const AgentCall& a) -> Result<driver::GuestTime> {
        auto r = agent::execute(a.socket, "guest-get-time", nullptr, a.timeout);
        if (!r) return std::unexpected(r.error());
        if (!r->is_number_integer()) return fail(ErrorCode::Protocol, "the guest agent's time is not a number: {}", r->dump());
        const auto ns = r->get<std::int64_t>();
        return driver::GuestTime{ns / 1'000'000'000, static_cast<std::uint64_t>(ns % 1'000'000'000)};
    });
}

Status QemuDriverImpl::agent_set_time(std::string_view ref, std::optional<std::uint64_t> ns_since_epoch) {
    return with_agent(*this, ref, [&](const AgentCall& a) -> Status {
        nlohmann::json args = ns_since_epoch ? nlohmann::json{{"time", *ns_since_epoch}} : nlohmann::json();
        auto r = agent::execute(a.socket, "guest-set-time", args, a.timeout);
        if (!r) return std::unexpected(r.error());
        return {};
    });
}

Result<std::string> QemuDriverImpl::agent_hostname(std::string_view ref) {
    return with_agent(*this, ref, [&](const AgentCall& a) -> Result<std::string> {
        auto r = agent::execute(a.socket, "guest-get-host-name", nullptr, a.timeout);
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
    return with_agent(*this, ref, [&](const AgentCall& a) -> Status {
        return agent::send_no_reply(a.socket, "guest-shutdown", {{"mode", reboot ? "reboot" : "powerdown"}},
                                    a.timeout);
    });
}

// guest-network-get-interfaces: every interface the guest has (lo
// included, as libvirt lists it), its MAC and addresses.
Result<std::vector<driver::InterfaceAddress>> QemuDriverImpl::agent_interface_addresses(std::string_view ref) {
    return with_agent(*this, ref, [&](const AgentCall& a) -> Result<std::vector<driver::InterfaceAddress>> {
        auto r = agent::execute(a.socket, "guest-network-get-interfaces", nullptr, a.timeout);
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
            for (const auto& addr : *it) {
                if (!addr.is_object()) continue;
                out.push_back({name, mac, addr.value("ip-address-type", ""), addr.value("ip-address", ""),
                               addr.value("prefix", std::uint64_t{0})});
            }
        }
        return out;
    });
}

namespace {

// The domain's disk at the PCI address the agent reports for a guest disk
// ({"pci-controller": {"domain", "bus", "slot", "function"}}), as libvirt
// matches them; nullptr when none is there.
const conf::Disk* disk_at(const conf::DomainDef& def, const nlohmann::json& agent_disk) {
    const auto pci = agent_disk.find("pci-controller");
    if (pci == agent_disk.end() || !pci->is_object()) return nullptr;
    const auto is = [&](const char* key, unsigned want) { return pci->value(key, -1LL) == static_cast<long long>(want); };
    for (const auto& disk : def.devices.disks) {
        const auto& a = disk.info.address;
        if (a.type != "pci") continue;
        if (is("domain", a.domain) && is("bus", a.bus) && is("slot", a.slot) && is("function", a.function)) return &disk;
    }
    return nullptr;
}

// One filesystem of guest-get-fsinfo's answer.
driver::FsInfo fs_info(const conf::DomainDef& def, const nlohmann::json& fs) {
    driver::FsInfo out{fs.value("mountpoint", ""), fs.value("name", ""), fs.value("type", ""), ""};
    const auto disks = fs.find("disk");
    if (disks == fs.end() || !disks->is_array()) return out;
    for (const auto& d : *disks) {
        if (!d.is_object()) continue;
        if (const auto* disk = disk_at(def, d)) out.targets += (out.targets.empty() ? "" : ",") + disk->target_dev;
    }
    return out;
}

std::string base64(std::string_view in) {
    static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < in.size(); i += 3) {
        std::uint32_t v = static_cast<std::uint8_t>(in[i]) << 16;
        if (i + 1 < in.size()) v |= static_cast<std::uint8_t>(in[i + 1]) << 8;
        if (i + 2 < in.size()) v |= static_cast<std::uint8_t>(in[i + 2]);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
        out += i + 2 < in.size() ? kAlphabet[v & 63] : '=';
    }
    return out;
}

// guest-get-vcpus' answer: {logical-id, online, can-offline} per vCPU.
struct AgentVcpu {
    unsigned id = 0;
    bool online = false;
    bool offlinable = false;
};

Result<std::vector<AgentVcpu>> agent_vcpus(const AgentCall& a) {
    auto r = agent::execute(a.socket, "guest-get-vcpus", nullptr, a.timeout);
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return fail(ErrorCode::Protocol, "the guest agent's vCPUs are not a list: {}", r->dump());
    std::vector<AgentVcpu> out;
    for (const auto& v : *r) {
        if (!v.is_object() || !v.contains("logical-id") || !v["logical-id"].is_number_unsigned())
            return fail(ErrorCode::Protocol, "the guest agent sent a vCPU without its logical-id: {}", v.dump());
        out.push_back({v["logical-id"].get<unsigned>(), v.value("online", false), v.value("can-offline", false)});
    }
    return out;
}

// guest-set-vcpus with the vCPUs to change ([{logical-id, online}]); the
// agent answers how many it changed, all of them or it is an error.
Status set_agent_vcpus(const AgentCall& a, const nlohmann::json& change) {
    if (change.empty()) return {};
    auto r = agent::execute(a.socket, "guest-set-vcpus", {{"vcpus", change}}, a.timeout);
    if (!r) return std::unexpected(r.error());
    if (!r->is_number_unsigned() || r->get<std::size_t>() != change.size())
        return fail(ErrorCode::OperationFailed, "internal error: the guest agent changed {} of {} vCPUs", r->dump(), change.size());
    return {};
}

}  // namespace

// guest-get-fsinfo lists the newest mount first; libvirt (and virsh's table)
// shows them in mount order.
Result<std::vector<driver::FsInfo>> QemuDriverImpl::agent_fs_info(std::string_view ref) {
    return with_agent(*this, ref, [&](const AgentCall& a) -> Result<std::vector<driver::FsInfo>> {
        auto r = agent::execute(a.socket, "guest-get-fsinfo", nullptr, a.timeout);
        if (!r) return std::unexpected(r.error());
        if (!r->is_array()) return fail(ErrorCode::Protocol, "the guest agent's filesystems are not a list: {}", r->dump());
        std::vector<driver::FsInfo> out;
        for (auto it = r->rbegin(); it != r->rend(); ++it)
            if (it->is_object()) out.push_back(fs_info(*a.def, *it));
        return out;
    });
}

// Thawing some filesystems only is not something the agent can do (it thaws
// all it froze): refused as libvirt refuses it.
Result<driver::FsCount> QemuDriverImpl::agent_fs_freeze(std::string_view ref, std::string_view mountpoint_lines, bool thaw) {
    std::vector<std::string> mountpoints;
    for (auto line : std::views::split(mountpoint_lines, '\n'))
        if (!line.empty()) mountpoints.emplace_back(line.begin(), line.end());
    if (thaw && !mountpoints.empty())
        return fail(ErrorCode::Unsupported, "argument unsupported: specifying mountpoints is not supported");
    return with_agent(*this, ref, [&](const AgentCall& a) -> Result<driver::FsCount> {
        auto r = thaw                  ? agent::execute(a.socket, "guest-fsfreeze-thaw", nullptr, a.timeout)
                 : mountpoints.empty() ? agent::execute(a.socket, "guest-fsfreeze-freeze", nullptr, a.timeout)
                                       : agent::execute(a.socket, "guest-fsfreeze-freeze-list",
                                                        {{"mountpoints", mountpoints}}, a.timeout);
        if (!r) return std::unexpected(r.error());
        if (!r->is_number_unsigned())
            return fail(ErrorCode::Protocol, "the guest agent's count of filesystems is not a number: {}", r->dump());
        return driver::FsCount{r->get<std::uint64_t>()};
    });
}

Status QemuDriverImpl::agent_set_user_password(std::string_view ref, std::string_view user, std::string_view password,
                                               bool encrypted) {
    return with_agent(*this, ref, [&](const AgentCall& a) -> Status {
        const nlohmann::json args{{"username", user}, {"password", base64(password)}, {"crypted", encrypted}};
        auto r = agent::execute(a.socket, "guest-set-user-password", args, a.timeout);
        if (!r) return std::unexpected(r.error());
        return {};
    });
}

Result<driver::GuestVcpus> QemuDriverImpl::agent_guest_vcpus(std::string_view ref) {
    return with_agent(*this, ref, [&](const AgentCall& a) -> Result<driver::GuestVcpus> {
        auto vcpus = agent_vcpus(a);
        if (!vcpus) return std::unexpected(vcpus.error());
        std::vector<unsigned> all, online, offlinable;
        for (const auto& v : *vcpus) {
            all.push_back(v.id);
            if (v.online) online.push_back(v.id);
            if (v.offlinable) offlinable.push_back(v.id);
        }
        std::ranges::sort(all);
        std::ranges::sort(online);
        std::ranges::sort(offlinable);
        return driver::GuestVcpus{conf::format_cpu_list(all), conf::format_cpu_list(online),
                                  conf::format_cpu_list(offlinable)};
    });
}

// Every vCPU of `cpulist` must be one the guest has, and one it can take
// offline to disable it; nothing changes otherwise (libvirt's checks).
Status QemuDriverImpl::agent_set_guest_vcpus(std::string_view ref, std::string_view cpulist, bool enable) {
    const auto wanted = conf::parse_cpu_list(cpulist);
    if (!wanted || wanted->empty()) return fail(ErrorCode::InvalidArg, "invalid argument: Failed to parse bitmap '{}'", cpulist);
    return with_agent(*this, ref, [&](const AgentCall& a) -> Status {
        auto vcpus = agent_vcpus(a);
        if (!vcpus) return std::unexpected(vcpus.error());
        nlohmann::json change = nlohmann::json::array();
        std::vector<unsigned> missing;
        for (const unsigned id : *wanted) {
            const auto it = std::ranges::find(*vcpus, id, &AgentVcpu::id);
            if (it == vcpus->end()) {
                missing.push_back(id);
                continue;
            }
            if (!enable && !it->offlinable)
                return fail(ErrorCode::Unsupported, "Operation not supported: vCPU '{}' is not offlinable", id);
            if (it->online != enable) change.push_back({{"logical-id", id}, {"online", enable}});
        }
        if (!missing.empty())
            return fail(ErrorCode::InvalidArg, "invalid argument: guest is missing vCPUs '{}'", conf::format_cpu_list(missing));
        return set_agent_vcpus(a, change);
    });
}

// setvcpus --guest: `count` vCPUs online in the guest, the last offlinable
// ones taken offline, or the first offline ones brought online.
Status QemuDriverImpl::agent_set_guest_vcpu_count(std::string_view ref, std::uint64_t count) {
    return with_agent(*this, ref, [&](const AgentCall& a) -> Status {
        auto vcpus = agent_vcpus(a);
        if (!vcpus) return std::unexpected(vcpus.error());
        if (count > vcpus->size())
            return fail(ErrorCode::InvalidArg, "invalid argument: guest agent reports less cpu than requested");
        auto online = static_cast<std::uint64_t>(std::ranges::count(*vcpus, true, &AgentVcpu::online));
        nlohmann::json change = nlohmann::json::array();
        for (auto it = vcpus->rbegin(); it != vcpus->rend() && online > count; ++it) {
            if (!it->online || !it->offlinable) continue;
            change.push_back({{"logical-id", it->id}, {"online", false}});
            --online;
        }
        for (auto it = vcpus->begin(); it != vcpus->end() && online < count; ++it) {
            if (it->online) continue;
            change.push_back({{"logical-id", it->id}, {"online", true}});
            ++online;
        }
        if (online != count) return fail(ErrorCode::OperationFailed, "internal error: Cannot offline enough CPUs");
        return set_agent_vcpus(a, change);
    });
}

// guest-agent-timeout: every later agent call of the running domain is
// bounded by `value`; kept in the runtime status, so a restarted daemon
// keeps it while the domain runs.
Status QemuDriverImpl::set_agent_timeout(std::string_view ref, int value) {
    if (value < kAgentTimeoutBlock)
        return fail(ErrorCode::InvalidArg, "invalid argument: guest agent timeout '{}' is less than the minimum '{}'", value,
                    kAgentTimeoutBlock);
    auto obj = registry.resolve(ref);
    if (!obj) return std::unexpected(obj.error());
    auto run = running(**obj);
    if (!run) return std::unexpected(run.error());
    run->priv->agent_timeout = value;
    return write_status(**obj);
}

namespace {

// guestinfo's parameters, in the order libvirt adds them.
class GuestParams {
public:
    void str(std::string field, std::string value) { out_.push_back({std::move(field), "string", std::move(value)}); }
    void uint(std::string field, std::uint64_t v) { out_.push_back({std::move(field), "uint", std::to_string(v)}); }
    void ullong(std::string field, std::uint64_t v) { out_.push_back({std::move(field), "ullong", std::to_string(v)}); }
    void integer(std::string field, std::int64_t v) { out_.push_back({std::move(field), "int", std::to_string(v)}); }
    void boolean(std::string field, bool v) { out_.push_back({std::move(field), "boolean", v ? "yes" : "no"}); }
    // A string member of `j`, when the agent gave it.
    void str_if(std::string field, const nlohmann::json& j, const char* key) {
        if (const auto it = j.find(key); it != j.end() && it->is_string()) str(std::move(field), it->get<std::string>());
    }
    std::vector<driver::TypedParam> take() { return std::move(out_); }

private:
    std::vector<driver::TypedParam> out_;
};

nlohmann::json array_or_empty(const Result<nlohmann::json>& r) { return r->is_array() ? *r : nlohmann::json::array(); }

void users_params(GuestParams& p, const nlohmann::json& users) {
    p.uint("user.count", users.size());
    for (std::size_t i = 0; i < users.size(); ++i) {
        const auto& u = users[i];
        const std::string at = fmt::format("user.{}.", i);
        p.str_if(at + "name", u, "user");
        p.str_if(at + "domain", u, "domain");
        if (u.contains("login-time") && u["login-time"].is_number())
            p.ullong(at + "login-time", static_cast<std::uint64_t>(u["login-time"].get<double>() * 1000));
    }
}

void os_params(GuestParams& p, const nlohmann::json& os) {
    for (const char* key : {"id", "name", "pretty-name", "version", "version-id", "machine", "variant", "variant-id",
                            "kernel-release", "kernel-version"})
        p.str_if(std::string("os.") + key, os, key);
}

void timezone_params(GuestParams& p, const nlohmann::json& tz) {
    p.str_if("timezone.name", tz, "zone");
    if (tz.contains("offset") && tz["offset"].is_number_integer()) p.integer("timezone.offset", tz["offset"].get<std::int64_t>());
}

// Filesystems in mount order (the agent lists the newest first), each with
// the disks under it: the domain's target ("alias") where one matches.
void fs_params(GuestParams& p, const conf::DomainDef& def, const nlohmann::json& list) {
    p.uint("fs.count", list.size());
    std::size_t i = 0;
    for (auto it = list.rbegin(); it != list.rend(); ++it, ++i) {
        const auto& fs = *it;
        const std::string at = fmt::format("fs.{}.", i);
        p.str_if(at + "name", fs, "name");
        p.str_if(at + "mountpoint", fs, "mountpoint");
        p.str_if(at + "fstype", fs, "type");
        if (fs.contains("total-bytes") && fs["total-bytes"].is_number_unsigned())
            p.ullong(at + "total-bytes", fs["total-bytes"].get<std::uint64_t>());
        if (fs.contains("used-bytes") && fs["used-bytes"].is_number_unsigned())
            p.ullong(at + "used-bytes", fs["used-bytes"].get<std::uint64_t>());
        const auto disks = fs.contains("disk") && fs["disk"].is_array() ? fs["disk"] : nlohmann::json::array();
        p.uint(at + "disk.count", disks.size());
        for (std::size_t j = 0; j < disks.size(); ++j) {
            const std::string dat = fmt::format("{}disk.{}.", at, j);
            p.str_if(dat + "serial", disks[j], "serial");
            if (const auto* disk = disk_at(def, disks[j])) p.str(dat + "alias", disk->target_dev);
            p.str_if(dat + "device", disks[j], "dev");
        }
    }
}

void disk_params(GuestParams& p, const conf::DomainDef& def, const nlohmann::json& disks) {
    p.uint("disk.count", disks.size());
    for (std::size_t i = 0; i < disks.size(); ++i) {
        const auto& d = disks[i];
        const std::string at = fmt::format("disk.{}.", i);
        p.str_if(at + "name", d, "name");
        p.boolean(at + "partition", d.value("partition", false));
        if (d.contains("dependencies") && d["dependencies"].is_array()) {
            const auto& deps = d["dependencies"];
            p.uint(at + "dependency.count", deps.size());
            for (std::size_t j = 0; j < deps.size(); ++j)
                if (deps[j].is_string()) p.str(fmt::format("{}dependency.{}.name", at, j), deps[j].get<std::string>());
        }
        if (const auto addr = d.find("address"); addr != d.end() && addr->is_object()) {
            p.str_if(at + "serial", *addr, "serial");
            if (const auto* disk = disk_at(def, *addr)) p.str(at + "alias", disk->target_dev);
        }
        p.str_if(at + "guest_alias", d, "alias");
    }
}

void interface_params(GuestParams& p, const nlohmann::json& nics) {
    p.uint("if.count", nics.size());
    for (std::size_t i = 0; i < nics.size(); ++i) {
        const auto& n = nics[i];
        const std::string at = fmt::format("if.{}.", i);
        p.str_if(at + "name", n, "name");
        p.str_if(at + "hwaddr", n, "hardware-address");
        const auto addrs = n.contains("ip-addresses") && n["ip-addresses"].is_array() ? n["ip-addresses"] : nlohmann::json::array();
        p.uint(at + "addr.count", addrs.size());
        for (std::size_t j = 0; j < addrs.size(); ++j) {
            const std::string aat = fmt::format("{}addr.{}.", at, j);
            p.str_if(aat + "type", addrs[j], "ip-address-type");
            p.str_if(aat + "addr", addrs[j], "ip-address");
            p.uint(aat + "prefix", addrs[j].value("prefix", std::uint64_t{0}));
        }
    }
}

}  // namespace

// Each group is one agent command. A group asked for by name must work;
// with none named, the groups whose command this agent lacks are left out.
Result<std::vector<driver::TypedParam>> QemuDriverImpl::agent_guest_info(std::string_view ref, unsigned groups) {
    namespace gi = driver::guest_info;
    const bool report_unsupported = groups != 0;
    if (groups == 0) groups = gi::kAll;
    return with_agent(*this, ref, [&](const AgentCall& a) -> Result<std::vector<driver::TypedParam>> {
        GuestParams p;
        // Runs `command`; false when its group is to be left out.
        auto query = [&](const char* command, Result<nlohmann::json>& r) -> Status {
            r = agent::execute(a.socket, command, nullptr, a.timeout);
            if (r || (!report_unsupported && r.error().code == ErrorCode::Unsupported)) return {};
            return std::unexpected(r.error());
        };
        Result<nlohmann::json> r;
        if (groups & gi::kUsers) {
            VIREO_TRY(query("guest-get-users", r));
            if (r) users_params(p, array_or_empty(r));
        }
        if (groups & gi::kOs) {
            VIREO_TRY(query("guest-get-osinfo", r));
            if (r && r->is_object()) os_params(p, *r);
        }
        if (groups & gi::kTimezone) {
            VIREO_TRY(query("guest-get-timezone", r));
            if (r && r->is_object()) timezone_params(p, *r);
        }
        if (groups & gi::kHostname) {
            VIREO_TRY(query("guest-get-host-name", r));
            if (r && r->is_object()) p.str_if("hostname", *r, "host-name");
        }
        if (groups & gi::kFilesystem) {
            VIREO_TRY(query("guest-get-fsinfo", r));
            if (r) fs_params(p, *a.def, array_or_empty(r));
        }
        if (groups & gi::kDisks) {
            VIREO_TRY(query("guest-get-disks", r));
            if (r) disk_params(p, *a.def, array_or_empty(r));
        }
        if (groups & gi::kInterfaces) {
            VIREO_TRY(query("guest-network-get-interfaces", r));
            if (r) interface_params(p, array_or_empty(r));
        }
        return p.take();
    });
}

}  // namespace vireo::qemu
