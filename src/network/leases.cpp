// The lease status file and dnsmasq's script events (see leases.hpp).
#include "network/leases.hpp"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/fd.hpp"
#include "util/files.hpp"

namespace vireo::network {

using nlohmann::json;

namespace {

json to_json(const Lease& l) {
    json j = {{"ip-address", l.ip}, {"expiry-time", l.expiry_time}};
    if (!l.mac.empty()) j["mac-address"] = l.mac;
    if (!l.hostname.empty()) j["hostname"] = l.hostname;
    if (!l.client_id.empty()) j["client-id"] = l.client_id;
    if (!l.iaid.empty()) j["iaid"] = l.iaid;
    if (!l.interface.empty()) j["interface"] = l.interface;
    return j;
}

std::string str_field(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<std::vector<Lease>> parse_status(const std::string& text, const std::filesystem::path& path) {
    std::vector<Lease> out;
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) return out;
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_array()) return fail(ErrorCode::Corrupt, "lease status file {} is not a JSON array", path.string());
    for (const auto& e : j) {
        if (!e.is_object()) return fail(ErrorCode::Corrupt, "lease status file {} holds a non-object entry", path.string());
        Lease l;
        l.ip = str_field(e, "ip-address");
        l.mac = str_field(e, "mac-address");
        l.hostname = str_field(e, "hostname");
        l.client_id = str_field(e, "client-id");
        l.iaid = str_field(e, "iaid");
        l.interface = str_field(e, "interface");
        if (auto it = e.find("expiry-time"); it != e.end() && it->is_number_integer()) l.expiry_time = it->get<std::int64_t>();
        if (l.ip.empty()) return fail(ErrorCode::Corrupt, "lease status file {} has a lease without ip-address", path.string());
        out.push_back(std::move(l));
    }
    return out;
}

std::int64_t env_number(EnvLookup env, const char* name, std::int64_t fallback) {
    const char* v = env(name);
    if (!v || !*v) return fallback;
    char* end = nullptr;
    const long long n = std::strtoll(v, &end, 10);
    return end && *end == '\0' ? n : fallback;
}

std::string env_string(EnvLookup env, const char* name) {
    const char* v = env(name);
    return v ? v : "";
}

}  // namespace

Result<std::vector<Lease>> read_leases(const std::filesystem::path& status) {
    auto text = files::read(status);
    if (!text) {
        if (text.error().code == ErrorCode::NotFound) return std::vector<Lease>{};
        return std::unexpected(text.error());
    }
    return parse_status(*text, status);
}

Status apply_lease_event(const std::filesystem::path& status, const LeaseEvent& event, std::int64_t now) {
    const std::string lock_path = status.string() + ".lock";
    UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock) return fail_errno(fmt::format("cannot open {}", lock_path));
    if (::flock(lock.get(), LOCK_EX) < 0) return fail_errno(fmt::format("cannot lock {}", lock_path));
    auto leases = read_leases(status);
    if (!leases) return std::unexpected(leases.error());
    std::erase_if(*leases, [&](const Lease& l) { return l.ip == event.lease.ip || (l.expiry_time != 0 && l.expiry_time < now); });
    if (event.action != "del") leases->push_back(event.lease);
    json arr = json::array();
    for (const auto& l : *leases) arr.push_back(to_json(l));
    return files::write_atomic(status, arr.dump(2) + "\n", 0644);
}

Result<std::optional<LeaseEvent>> lease_event_from_dnsmasq(const std::vector<std::string>& args, EnvLookup env, std::int64_t now) {
    if (args.empty()) return fail(ErrorCode::InvalidArg, "no action given (dnsmasq passes add, old or del)");
    const std::string& action = args[0];
    if (action != "add" && action != "old" && action != "del") return std::optional<LeaseEvent>();
    if (args.size() < 3) return fail(ErrorCode::InvalidArg, "'{}' needs the MAC address (or DUID) and the IP address", action);
    LeaseEvent ev;
    ev.action = action;
    Lease& l = ev.lease;
    l.ip = args[2];
    if (args.size() > 3) l.hostname = args[3];
    l.interface = env_string(env, "DNSMASQ_INTERFACE");
    const bool v6 = l.ip.find(':') != std::string::npos;
    if (v6) {
        l.client_id = args[1];  // the DUID
        l.iaid = env_string(env, "DNSMASQ_IAID");
        l.mac = env_string(env, "DNSMASQ_MAC");
    } else {
        l.mac = args[1];
        l.client_id = env_string(env, "DNSMASQ_CLIENT_ID");
    }
    // DNSMASQ_LEASE_EXPIRES (0 = infinite); builds with a broken RTC give
    // only the remaining time.
    if (const char* e = env("DNSMASQ_LEASE_EXPIRES"); e && *e) l.expiry_time = env_number(env, "DNSMASQ_LEASE_EXPIRES", 0);
    else if (const char* r = env("DNSMASQ_TIME_REMAINING"); r && *r) l.expiry_time = now + env_number(env, "DNSMASQ_TIME_REMAINING", 0);
    return std::optional<LeaseEvent>(std::move(ev));
}

std::string lease_event_json(const std::string& network, const LeaseEvent& event) {
    json j = to_json(event.lease);
    j["network"] = network;
    j["action"] = event.action;
    return j.dump();
}

}  // namespace vireo::network
