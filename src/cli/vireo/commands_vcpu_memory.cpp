// A domain's vCPUs and memory as virsh's verbs: vcpucount, vcpuinfo,
// setvcpus, vcpupin, emulatorpin (queries read the definitions, changes go
// to the daemon), setmem, setmaxmem, dommemstat. --live/--config/--current
// as the device verbs (libvirt's rule, resolved by the daemon).
#include <cctype>
#include <optional>

#include "cli/vireo/commands.hpp"
#include "cli/vireo/pool_format.hpp"
#include "cli/vireo/session.hpp"
#include "conf/domain.hpp"
#include "driver/ops/domain.hpp"
#include "driver/ops/host.hpp"

namespace vireo::cli {

namespace ops = driver::ops;

namespace {

// The definition a query reads: the live one of a running domain unless
// --config, the persistent one otherwise.
std::optional<conf::DomainDef> definition(Session& s, const driver::DomainSummary& dom, bool config) {
    auto xml = s.conn()->call<ops::DomainXml>({.ref = dom.name, .inactive = config || dom.id < 0});
    if (!xml) {
        s.error(fmt::format("failed to get the definition of domain '{}'", dom.name), xml.error());
        return std::nullopt;
    }
    conf::ParseFlags flags;
    flags.no_validate = true;
    auto def = conf::parse_domain_xml(*xml, flags);
    if (!def) {
        s.error(fmt::format("cannot read the definition of domain '{}'", dom.name), def.error());
        return std::nullopt;
    }
    return std::move(*def);
}

// Every host CPU, as a list ("0-1"), and their number.
std::optional<unsigned> host_cpus(Session& s) {
    auto node = s.conn()->call<ops::HostNodeInfo>({});
    if (!node) {
        s.error("failed to get the host's CPUs", node.error());
        return std::nullopt;
    }
    return node->cpus;
}

std::string all_cpus(unsigned n) { return n <= 1 ? "0" : fmt::format("0-{}", n - 1); }

// virsh's affinity map: y or - per host CPU.
std::string affinity_map(const std::string& list, unsigned cpus) {
    std::string out(cpus, '-');
    if (auto l = conf::parse_cpu_list(list))
        for (unsigned c : *l)
            if (c < cpus) out[c] = 'y';
    return out;
}

// The host CPUs vCPU `id` may run on per `def`: its vcpupin, else <vcpu cpuset>, else all.
std::string vcpu_affinity(const conf::DomainDef& def, unsigned id, unsigned cpus) {
    auto list = conf::vcpu_pinning(def, id);
    return list.empty() ? all_cpus(cpus) : list;
}

int cmd_vcpucount(Session& s, const Args& a) {
    if (!check_impact_options(s, a)) return 1;
    if (a.has("guest") && a.has("config")) {
        s.error("Options --guest and --config are mutually exclusive");
        return 1;
    }
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    if (a.has("guest")) {  // the guest's own count, from its agent
        auto v = s.conn()->call<ops::DomainGuestVcpus>({.ref = dom->name});
        if (!v) {
            s.error(v.error().full_message());
            return 1;
        }
        const auto cpus = conf::parse_cpu_list(a.has("maximum") ? v->vcpus : v->online);
        s.out("{}\n\n", cpus ? cpus->size() : 0);
        return 0;
    }
    const bool running = dom->id >= 0;
    auto count_of = [&](bool maximum, bool config) -> std::optional<unsigned> {
        auto def = definition(s, *dom, config);
        if (!def) return std::nullopt;
        return maximum ? def->vcpus : def->vcpus_current.value_or(def->vcpus);
    };
    const bool any = a.has("maximum") || a.has("active") || a.has("live") || a.has("config") || a.has("current");
    if (!any) {
        for (const bool maximum : {true, false})
            for (const bool config : {true, false}) {
                if (!config && !running) continue;
                auto n = count_of(maximum, config);
                if (!n) return 1;
                s.out("{:<12} {:<12} {:>3}\n", maximum ? "maximum" : "current", config ? "config" : "live", *n);
            }
        s.out("\n");
        return 0;
    }
    const bool live = a.has("live") || (!a.has("config") && running);
    if (live && !running) {
        s.error(fmt::format("Requested operation is not valid: domain '{}' is not running", dom->name));
        return 1;
    }
    auto n = count_of(a.has("maximum"), !live);
    if (!n) return 1;
    s.out("{}\n\n", *n);
    return 0;
}

int cmd_vcpuinfo(Session& s, const Args& a) {
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto cpus = host_cpus(s);
    if (!cpus) return 1;
    auto affinity = [&](const std::string& list) { return a.has("pretty") ? list : affinity_map(list, *cpus); };
    if (dom->id < 0) {
        // As virsh: the persistent definition's vCPUs, nothing running.
        auto def = definition(s, *dom, true);
        if (!def) return 1;
        for (unsigned id = 0; id < def->vcpus_current.value_or(def->vcpus); ++id) {
            s.out("{:<15} {}\n{:<15} {}\n{:<15} {}\n", "VCPU:", id, "CPU:", "N/A", "State:", "N/A");
            s.out("{:<15} {}\n{:<15} {}\n\n", "CPU time", "N/A", "CPU Affinity:", affinity(vcpu_affinity(*def, id, *cpus)));
        }
        return 0;
    }
    auto info = s.conn()->call<ops::DomainVcpuInfo>({.ref = dom->name});
    if (!info) {
        s.error(fmt::format("failed to get the vCPUs of domain '{}'", dom->name), info.error());
        return 1;
    }
    for (const auto& v : *info) {
        s.out("{:<15} {}\n{:<15} {}\n{:<15} {}\n", "VCPU:", v.id, "CPU:", v.cpu, "State:", v.state);
        s.out("{:<15} {:.1f}s\n{:<15} {}\n\n", "CPU time:", static_cast<double>(v.cpu_time_ns) / 1e9, "CPU Affinity:",
              affinity(v.affinity));
    }
    return 0;
}

int cmd_setvcpus(Session& s, const Args& a) {
    if (!check_impact_options(s, a)) return 1;
    if (a.has("guest") && a.has("config")) {
        s.error("Options --guest and --config are mutually exclusive");
        return 1;
    }
    if (a.has("maximum") && !a.has("config")) {
        s.error("--maximum must be used with --config only");
        return 1;
    }
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const auto count = a.number("count");
    if (!count || *count == 0) {
        s.error("Invalid number of virtual CPUs");
        return 1;
    }
    auto st = s.conn()->call<ops::DomainSetVcpus>({.ref = dom->name, .count = *count, .maximum = a.has("maximum"),
                                                   .live = a.has("live"), .config = a.has("config"), .current = a.has("current"),
                                                   .guest = a.has("guest")});
    if (!st) {
        s.error(fmt::format("failed to set the vCPUs of domain '{}'", dom->name), st.error());
        return 1;
    }
    return 0;
}

// setvcpu: vCPUs enabled or disabled by id; prints nothing on success.
int cmd_setvcpu(Session& s, const Args& a) {
    if (!check_impact_options(s, a)) return 1;
    const bool enable = a.has("enable"), disable = a.has("disable");
    if (enable && disable) {
        s.error("Options --enable and --disable are mutually exclusive");
        return 1;
    }
    if (!enable && !disable) {
        s.error("one of --enable, --disable is required");
        return 1;
    }
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto st = s.conn()->call<ops::DomainSetVcpu>({.ref = dom->name, .vcpulist = a.get("vcpulist"), .enable = enable,
                                                  .live = a.has("live"), .config = a.has("config"), .current = a.has("current")});
    if (!st) {
        s.error(st.error().message);  // virsh prints only libvirt's error here
        return 1;
    }
    return 0;
}

// vcpupin and emulatorpin: a change when --cpulist is given, else the table.
int pin_verb(Session& s, const Args& a, bool vcpu) {
    if (!check_impact_options(s, a)) return 1;
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const auto which = a.number("vcpu");
    if (a.has("cpulist")) {
        if (vcpu && !which) {
            s.error("vcpupin: Missing vCPU number in pin mode.");
            return 1;
        }
        auto st = s.conn()->call<ops::DomainPinThread>({.ref = dom->name, .thread = vcpu ? "vcpu" : "emulator",
                                                        .vcpu = which.value_or(0), .cpulist = a.get("cpulist"),
                                                        .live = a.has("live"), .config = a.has("config"), .current = a.has("current")});
        if (!st) {
            s.error(st.error().full_message());  // virsh prints the reason alone
            return 1;
        }
        return 0;
    }
    const bool config = a.has("config") || (!a.has("live") && dom->id < 0);
    if (a.has("live") && dom->id < 0) {
        s.error(fmt::format("Requested operation is not valid: domain '{}' is not running", dom->name));
        return 1;
    }
    auto def = definition(s, *dom, config);
    if (!def) return 1;
    auto cpus = host_cpus(s);
    if (!cpus) return 1;
    if (!vcpu) {
        std::string list = conf::emulator_pinning(*def);
        if (list.empty()) list = all_cpus(*cpus);
        s.out("emulator: CPU Affinity\n----------------------------------\n{:>8}: {}\n\n", "*", list);
        return 0;
    }
    const unsigned count = def->vcpus;
    if (which && *which >= count) {
        s.error(fmt::format("vcpupin: Invalid vCPU number: {} (the domain has {})", *which, count));
        return 1;
    }
    s.out(" VCPU   CPU Affinity\n----------------------\n");
    for (unsigned id = 0; id < count; ++id)
        if (!which || *which == id) s.out(" {:<6} {}\n", id, vcpu_affinity(*def, id, *cpus));
    s.out("\n");
    return 0;
}

int cmd_vcpupin(Session& s, const Args& a) { return pin_verb(s, a, true); }
int cmd_emulatorpin(Session& s, const Args& a) { return pin_verb(s, a, false); }

// A size as virsh's setmem reads it: a scaled integer, KiB without a suffix.
std::optional<std::uint64_t> size_kib(Session& s, const std::string& text) {
    const bool digits = !text.empty() && std::ranges::all_of(text, [](unsigned char c) { return std::isdigit(c) != 0; });
    auto bytes = parse_size(digits ? text + "KiB" : text);
    if (!bytes || *bytes < 1024) {
        s.error(fmt::format("Invalid value of {} for memory size", text));
        return std::nullopt;
    }
    return *bytes / 1024;
}

int set_memory_verb(Session& s, const Args& a, bool maximum) {
    if (!check_impact_options(s, a)) return 1;
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto kib = size_kib(s, a.get("size"));
    if (!kib) return 1;
    auto st = s.conn()->call<ops::DomainSetMemory>({.ref = dom->name, .kib = *kib, .maximum = maximum, .live = a.has("live"),
                                                    .config = a.has("config"), .current = a.has("current")});
    if (!st) {
        s.error(maximum ? "Unable to change MaxMemorySize" : "Unable to change MemorySize", st.error());
        return 1;
    }
    return 0;
}

int cmd_setmem(Session& s, const Args& a) { return set_memory_verb(s, a, false); }
int cmd_setmaxmem(Session& s, const Args& a) { return set_memory_verb(s, a, true); }

int cmd_dommemstat(Session& s, const Args& a) {
    if (!check_impact_options(s, a)) return 1;
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    if (a.has("period")) {
        auto st = s.conn()->call<ops::DomainSetMemoryStatsPeriod>({.ref = dom->name, .seconds = a.number("period").value_or(0),
                                                                   .live = a.has("live"), .config = a.has("config"),
                                                                   .current = a.has("current")});
        if (!st) {
            s.error("Unable to change balloon collection period.", st.error());
            return 1;
        }
        return 0;
    }
    auto stats = s.conn()->call<ops::DomainMemoryStats>({.ref = dom->name});
    if (!stats) {
        s.error("Failed to get memory statistics for domain", stats.error());
        return 1;
    }
    for (const auto& m : *stats) s.out("{} {}\n", m.tag, m.value);
    return 0;
}


}  // namespace

void add_vcpu_memory_commands(std::vector<CommandSpec>& t) {
    constexpr std::string_view group = "Domain Management";
    t.push_back({"vcpucount", group, "domain vcpu counts", "Returns the number of virtual CPUs used by the domain.",
                 {kDomainOpt, {"maximum", OptType::Bool, "get maximum count of vcpus"},
                  {"active", OptType::Bool, "get number of currently active vcpus"}, kLiveOpt, kConfigOpt, kCurrentOpt,
                  {"guest", OptType::Bool, "retrieve vcpu count from the guest instead of the hypervisor"}},
                 cmd_vcpucount, true, true});
    t.push_back({"vcpuinfo", group, "detailed domain vcpu information", "Returns basic information about the domain virtual CPUs.",
                 {kDomainOpt, {"pretty", OptType::Bool, "return human readable output"}}, cmd_vcpuinfo, true, true});
    t.push_back({"setvcpus", group, "change number of virtual CPUs", "Change the number of virtual CPUs in the guest domain.",
                 {kDomainOpt, {"count", OptType::Number, "number of virtual CPUs", true, true},
                  {"maximum", OptType::Bool, "set maximum limit on next boot"}, kConfigOpt, kLiveOpt, kCurrentOpt,
                  {"guest", OptType::Bool, "modify cpu state in the guest"},
                  {"hotpluggable", OptType::Bool, "make added vcpus hot(un)pluggable"}},
                 cmd_setvcpus, true, true});
    t.push_back({"setvcpu", group, "attach/detach vcpu or groups of threads", "Add or remove vcpus",
                 {kDomainOpt, {"vcpulist", OptType::String, "ids of vcpus to manipulate", true, true},
                  {"enable", OptType::Bool, "enable cpus specified by cpumap"},
                  {"disable", OptType::Bool, "disable cpus specified by cpumap"}, kConfigOpt, kLiveOpt, kCurrentOpt},
                 cmd_setvcpu, true, true});
    t.push_back({"vcpupin", group, "control or query domain vcpu affinity", "Pin domain VCPUs to host physical CPUs.",
                 {kDomainOpt, {"vcpu", OptType::Number, "vcpu number", false, true},
                  {"cpulist", OptType::String, "host cpu number(s) to set, or omit option to query", false, true}, kConfigOpt, kLiveOpt,
                  kCurrentOpt},
                 cmd_vcpupin, true, true});
    t.push_back({"emulatorpin", group, "control or query domain emulator affinity",
                 "Pin domain emulator threads to host physical CPUs.",
                 {kDomainOpt, {"cpulist", OptType::String, "host cpu number(s) to set, or omit option to query", false, true},
                  kConfigOpt, kLiveOpt, kCurrentOpt},
                 cmd_emulatorpin, true, true});
    t.push_back({"setmem", group, "change memory allocation", "Change the current memory allocation in the guest domain.",
                 {kDomainOpt, {"size", OptType::String, "new memory size, as scaled integer (default KiB)", true, true}, kConfigOpt,
                  kLiveOpt, kCurrentOpt},
                 cmd_setmem, true, true});
    t.push_back({"setmaxmem", group, "change maximum memory limit",
                 "Change the maximum memory allocation limit in the guest domain.",
                 {kDomainOpt, {"size", OptType::String, "new maximum memory size, as scaled integer (default KiB)", true, true},
                  kConfigOpt, kLiveOpt, kCurrentOpt},
                 cmd_setmaxmem, true, true});
    t.push_back({"dommemstat", group, "get memory statistics for a domain",
                 "Get memory statistics for a running domain.",
                 {kDomainOpt, {"period", OptType::Number, "period in seconds to set collection"}, kConfigOpt, kLiveOpt, kCurrentOpt},
                 cmd_dommemstat, true, true});
}

}  // namespace vireo::cli
