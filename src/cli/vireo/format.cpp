#include "cli/vireo/format.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>

#include <fmt/format.h>

namespace vireo::cli {

using driver::DomainState;
using driver::DomainSummary;

namespace {

bool is_active(const DomainSummary& d) { return d.id >= 0; }

bool matches_state(const DomainSummary& d, const ListFilter& f) {
    if (!(f.state_running || f.state_paused || f.state_shutoff || f.state_other)) return true;
    switch (d.state) {
        case DomainState::Running: return f.state_running;
        case DomainState::Paused: return f.state_paused;
        case DomainState::Shutoff: return f.state_shutoff;
        default: return f.state_other;
    }
}

// A pair of opposite flags: neither or both set means "don't filter".
bool matches_pair(bool value, bool want_true, bool want_false) {
    if (want_true == want_false) return true;
    return value ? want_true : want_false;
}

std::string yes_no(bool b) { return b ? "yes" : "no"; }

}  // namespace

std::vector<DomainSummary> select_domains(std::vector<DomainSummary> all, const ListFilter& f) {
    std::vector<DomainSummary> out;
    for (auto& d : all) {
        if (is_active(d) ? !f.active : !f.inactive) continue;
        if (!matches_pair(d.persistent, f.persistent, f.transient)) continue;
        if (!matches_pair(d.autostart, f.autostart, f.no_autostart)) continue;
        if (!matches_pair(d.managed_save, f.with_managed_save, f.without_managed_save)) continue;
        if (!matches_state(d, f)) continue;
        out.push_back(std::move(d));
    }
    std::stable_sort(out.begin(), out.end(), [](const DomainSummary& a, const DomainSummary& b) {
        if (is_active(a) != is_active(b)) return is_active(a);
        if (is_active(a)) return a.id < b.id;
        return a.name < b.name;
    });
    return out;
}

std::string format_state(const DomainSummary& d, bool with_reason) {
    std::string out(driver::state_name(d.state));
    if (with_reason) out += fmt::format(" ({})", d.reason);
    return out;
}

std::string format_dominfo(const DomainSummary& d, const SecurityInfo& security) {
    std::string out;
    auto field = [&](std::string_view label, const std::string& value) {
        out += fmt::format("{:<16}{}\n", fmt::format("{}:", label), value);
    };
    field("Id", d.id >= 0 ? std::to_string(d.id) : "-");
    field("Name", d.name);
    field("UUID", d.uuid.str());
    field("OS Type", d.os_type);
    field("State", std::string(driver::state_name(d.state)));
    field("CPU(s)", std::to_string(d.vcpus));
    if (d.cpu_time_ns != 0) field("CPU time", fmt::format("{:.1f}s", static_cast<double>(d.cpu_time_ns) / 1e9));
    field("Max memory", fmt::format("{} KiB", d.max_memory_kib));
    field("Used memory", fmt::format("{} KiB", d.memory_kib));
    field("Persistent", yes_no(d.persistent));
    field("Autostart", d.autostart ? "enable" : "disable");
    field("Managed save", yes_no(d.managed_save));
    field("Security model", security.model);
    field("Security DOI", security.doi);
    if (!security.label.empty()) field("Security label", security.label + " (enforcing)");
    return out;
}

std::string format_nodeinfo(const driver::NodeInfo& n) {
    std::string out;
    auto field = [&](std::string_view label, const std::string& value) {
        out += fmt::format("{:<20} {}\n", label, value);
    };
    field("CPU model:", n.model);
    field("CPU(s):", std::to_string(n.cpus));
    field("CPU frequency:", fmt::format("{} MHz", n.mhz));
    field("CPU socket(s):", std::to_string(n.sockets));
    field("Core(s) per socket:", std::to_string(n.cores));
    field("Thread(s) per core:", std::to_string(n.threads));
    field("NUMA cell(s):", std::to_string(n.nodes));
    field("Memory size:", fmt::format("{} KiB", n.memory_kib));
    return out;
}

std::string format_version(const driver::VersionInfo& v, bool with_daemon) {
    // "QEMU 7.2.0" -> API name "QEMU"; the API version is the library's, as in virsh.
    std::string api = v.hypervisor.substr(0, v.hypervisor.find(' '));
    std::transform(api.begin(), api.end(), api.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    std::string out = fmt::format("Compiled against library: vireo {}\n", v.library);
    out += fmt::format("Using library: vireo {}\n", v.library);
    out += fmt::format("Using API: {} {}\n", api, v.library);
    out += fmt::format("Running hypervisor: {}\n", v.hypervisor);
    if (with_daemon && !v.daemon.empty()) out += fmt::format("Running against daemon: {}\n", v.daemon);
    return out;
}

std::string format_event(const driver::DomainEvent& e, bool timestamp) {
    std::string out;
    if (timestamp) {
        using namespace std::chrono;
        const auto since_epoch = e.when.time_since_epoch();
        const std::time_t secs = duration_cast<seconds>(since_epoch).count();
        const auto millis = duration_cast<milliseconds>(since_epoch).count() % 1000;
        std::tm tm{};
        gmtime_r(&secs, &tm);
        char buf[32];
        std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
        out += fmt::format("{}.{:03}+0000: ", buf, millis);
    }
    if (e.type == driver::EventType::MemoryDeviceSizeChange)
        out += fmt::format("event 'memory-device-size-change' for domain '{}': alias: {} size: {}", e.domain, e.detail,
                           e.size_kib);
    else if (e.type == driver::EventType::AgentLifecycle)
        out += fmt::format("event 'agent-lifecycle' for domain '{}': state: '{}' reason: 'channel event'", e.domain, e.detail);
    else if (e.type == driver::EventType::DeviceRemoved || e.type == driver::EventType::DeviceRemovalFailed)
        out += fmt::format("event '{}' for domain '{}': {}",
                           e.type == driver::EventType::DeviceRemoved ? "device-removed" : "device-removal-failed", e.domain,
                           e.detail);
    else
        out += fmt::format("event 'lifecycle' for domain '{}': {} {}", e.domain, driver::event_name(e.type), e.detail);
    return out;
}

nlohmann::json domain_json(const DomainSummary& d) {
    return {
        {"id", d.id >= 0 ? nlohmann::json(d.id) : nlohmann::json(nullptr)},
        {"name", d.name},
        {"uuid", d.uuid.str()},
        {"state", std::string(driver::state_name(d.state))},
        {"reason", d.reason},
        {"persistent", d.persistent},
        {"autostart", d.autostart},
        {"managed_save", d.managed_save},
        {"title", d.title},
        {"vcpus", d.vcpus},
        {"max_memory_kib", d.max_memory_kib},
        {"memory_kib", d.memory_kib},
        {"cpu_time_ns", d.cpu_time_ns},
        {"os_type", d.os_type},
    };
}

nlohmann::json nodeinfo_json(const driver::NodeInfo& n) {
    return {{"model", n.model},     {"cpus", n.cpus},       {"mhz", n.mhz},     {"sockets", n.sockets},
            {"cores", n.cores},     {"threads", n.threads}, {"nodes", n.nodes}, {"memory_kib", n.memory_kib}};
}

nlohmann::json disk_json(const driver::DiskInfo& d) {
    return {{"type", d.type}, {"device", d.device}, {"target", d.target}, {"source", d.source}};
}

nlohmann::json interface_json(const driver::InterfaceInfo& i) {
    return {{"interface", i.name}, {"type", i.type}, {"source", i.source}, {"model", i.model}, {"mac", i.mac}};
}

}  // namespace vireo::cli
