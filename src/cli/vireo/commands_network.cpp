// Virtual network verbs, as virsh 9.0 has them: net-define, net-create,
// net-start, net-destroy, net-undefine, net-list, net-info, net-dumpxml,
// net-edit, net-autostart, net-uuid, net-name, net-dhcp-leases, net-update,
// net-event. Messages and tables are virsh's byte for byte.
#include <csignal>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "cli/vireo/commands.hpp"
#include "cli/vireo/network_format.hpp"
#include "cli/vireo/session.hpp"
#include "util/files.hpp"

namespace vireo::cli {

namespace {

namespace ops = driver::ops;

constexpr OptSpec kNetworkOpt{"network", OptType::String, "network name or uuid", true, true};

// The value of a wire enum (net-update's command and section) by its name.
template <class E>
std::optional<E> wire_enum(std::string_view name) {
    for (const auto& [value, text] : ops::EnumNames<E>::values)
        if (text == name) return value;
    return std::nullopt;
}

// A network by name or UUID; on failure virsh's two error lines.
std::optional<driver::NetworkSummary> find_network(Session& s, std::string_view ref) {
    auto* d = s.conn();
    if (d == nullptr) return std::nullopt;
    auto found = d->call<ops::NetworkLookup>({.network = std::string(ref)});
    if (found) return *found;
    s.error(fmt::format("failed to get network '{}'", ref), found.error());
    return std::nullopt;
}

// Run one action on a named network and print virsh's message for it.
template <class Action>
int on_network(Session& s, const Args& a, std::string_view failed, std::string_view done, Action action) {
    auto net = find_network(s, a.get("network"));
    if (!net) return 1;
    if (auto st = action(*s.conn(), net->name); !st) {
        s.error(fmt::format(fmt::runtime(failed), net->name), st.error());
        return 1;
    }
    s.info("{}\n\n", fmt::format(fmt::runtime(done), net->name));
    return 0;
}

int cmd_net_define(Session& s, const Args& a) {
    const std::string file = a.get("file");
    auto xml = read_xml_file(s, file);
    if (!xml) return 1;
    auto* d = s.conn();
    if (d == nullptr) return 1;
    auto net = d->call<ops::NetworkDefine>({.xml = *xml});
    if (!net) {
        s.error(fmt::format("Failed to define network from {}", file), net.error());
        return 1;
    }
    s.info("Network {} defined from {}\n\n", net->name, file);
    return 0;
}

int cmd_net_create(Session& s, const Args& a) {
    const std::string file = a.get("file");
    auto xml = read_xml_file(s, file);
    if (!xml) return 1;
    auto* d = s.conn();
    if (d == nullptr) return 1;
    auto net = d->call<ops::NetworkCreate>({.xml = *xml});
    if (!net) {
        s.error(fmt::format("Failed to create network from {}", file), net.error());
        return 1;
    }
    s.info("Network {} created from {}\n\n", net->name, file);
    return 0;
}

int cmd_net_start(Session& s, const Args& a) {
    return on_network(s, a, "Failed to start network {}", "Network {} started", [](driver::Driver& d, const std::string& n) {
        return d.call<ops::NetworkStart>({.network = n});
    });
}

int cmd_net_destroy(Session& s, const Args& a) {
    return on_network(s, a, "Failed to destroy network {}", "Network {} destroyed",
                      [](driver::Driver& d, const std::string& n) { return d.call<ops::NetworkDestroy>({.network = n}); });
}

int cmd_net_undefine(Session& s, const Args& a) {
    return on_network(s, a, "Failed to undefine network {}", "Network {} has been undefined",
                      [](driver::Driver& d, const std::string& n) { return d.call<ops::NetworkUndefine>({.network = n}); });
}

int cmd_net_autostart(Session& s, const Args& a) {
    const bool enable = !a.has("disable");
    return on_network(s, a, enable ? "failed to mark network {} as autostarted" : "failed to unmark network {} as autostarted",
                      enable ? "Network {} marked as autostarted" : "Network {} unmarked as autostarted",
                      [&](driver::Driver& d, const std::string& n) {
                          return d.call<ops::NetworkSetAutostart>({.network = n, .enabled = enable});
                      });
}

int cmd_net_list(Session& s, const Args& a) {
    int forms = 0;
    for (std::string_view f : {"table", "name", "uuid"}) forms += a.has(f) ? 1 : 0;
    if (forms > 1) {
        s.error("Only one argument from --table, --name and --uuid may be specified.");
        return 1;
    }
    NetworkListFilter f;
    f.active = !a.has("inactive") || a.has("all");
    f.inactive = a.has("inactive") || a.has("all");
    f.persistent = a.has("persistent");
    f.transient = a.has("transient");
    f.autostart = a.has("autostart");
    f.no_autostart = a.has("no-autostart");
    auto* d = s.conn();
    if (d == nullptr) return 1;
    auto all = d->call<ops::NetworkList>({});
    if (!all) {
        s.error("Failed to list networks", all.error());
        return 1;
    }
    auto nets = select_networks(std::move(*all), f);
    if (a.has("json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& n : nets) out.push_back(network_json(n));
        s.out("{}\n", out.dump(2));
        return 0;
    }
    if (a.has("name") || a.has("uuid")) {
        for (const auto& n : nets) s.out("{}\n", a.has("uuid") ? n.uuid.str() : n.name);
        s.out("\n");
        return 0;
    }
    // virsh ends the table with a blank line, except in quiet mode.
    s.out("{}{}", format_network_table(nets, !s.quiet()), s.quiet() ? "" : "\n");
    return 0;
}

int cmd_net_info(Session& s, const Args& a) {
    auto net = find_network(s, a.get("network"));
    if (!net) return 1;
    if (a.has("json"))
        s.out("{}\n", network_json(*net).dump(2));
    else
        s.out("{}\n", format_network_info(*net));
    return 0;
}

int cmd_net_dumpxml(Session& s, const Args& a) {
    auto net = find_network(s, a.get("network"));
    if (!net) return 1;
    auto xml = s.conn()->call<ops::NetworkXml>({.network = net->name, .inactive = a.has("inactive")});
    if (!xml) {
        s.error(fmt::format("failed to get the XML of network {}", net->name), xml.error());
        return 1;
    }
    s.out("{}{}\n", *xml, xml->ends_with('\n') ? "" : "\n");
    return 0;
}

int cmd_net_edit(Session& s, const Args& a) {
    auto net = find_network(s, a.get("network"));
    if (!net) return 1;
    auto* d = s.conn();
    auto original = d->call<ops::NetworkXml>({.network = net->name, .inactive = true});
    if (!original) {
        s.error(fmt::format("failed to get the XML of network {}", net->name), original.error());
        return 1;
    }
    XmlEdit edit;
    edit.original = std::move(*original);
    edit.name = net->name;
    edit.label = [](std::string_view name) { return fmt::format("Network {}", name); };
    edit.redefine = [d](std::string_view xml, bool /*validate*/) -> Result<std::string> {
        auto defined = d->call<ops::NetworkDefine>({.xml = std::string(xml)});
        if (!defined) return std::unexpected(defined.error());
        return defined->name;
    };
    return edit_xml(s, edit);
}

int cmd_net_uuid(Session& s, const Args& a) {
    auto net = find_network(s, a.get("network"));
    if (!net) return 1;
    s.out("{}\n\n", net->uuid.str());
    return 0;
}

// virsh net-name looks the network up by UUID only and prints one error line.
int cmd_net_name(Session& s, const Args& a) {
    const std::string ref = a.get("network");
    auto* d = s.conn();
    if (d == nullptr) return 1;
    std::optional<driver::NetworkSummary> net;
    if (Uuid::parse(ref))
        if (auto found = d->call<ops::NetworkLookup>({.network = ref}); found) net = *found;
    if (!net) {
        s.error(fmt::format("failed to get network '{}'", ref));
        return 1;
    }
    s.out("{}\n\n", net->name);
    return 0;
}

int cmd_net_dhcp_leases(Session& s, const Args& a) {
    auto net = find_network(s, a.get("network"));
    if (!net) return 1;
    auto leases = s.conn()->call<ops::NetworkDhcpLeases>({.network = net->name, .mac = a.get("mac")});
    if (!leases) {
        s.error(fmt::format("Failed to get leases info for {}", net->name), leases.error());
        return 1;
    }
    if (a.has("json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& l : *leases) out.push_back(lease_json(l));
        s.out("{}\n", out.dump(2));
        return 0;
    }
    s.out("{}{}", format_lease_table(std::move(*leases), !s.quiet()), s.quiet() ? "" : "\n");
    return 0;
}

int cmd_net_update(Session& s, const Args& a) {
    for (std::string_view other : {"live", "config"})
        if (a.has("current") && a.has(other)) {
            s.error(fmt::format("Options --current and --{} are mutually exclusive", other));
            return 1;
        }
    std::string command = a.get("command");
    if (command == "add") command = "add-last";
    auto cmd = wire_enum<driver::NetworkUpdateCommand>(command);
    if (!cmd) {
        s.error(fmt::format("unrecognized command name '{}'", a.get("command")));
        return 1;
    }
    auto section = wire_enum<driver::NetworkUpdateSection>(a.get("section"));
    if (!section) {
        s.error(fmt::format("unrecognized section name '{}'", a.get("section")));
        return 1;
    }
    // virsh: the element itself when it starts with '<', else a file holding it.
    std::string xml = a.get("xml");
    if (!xml.starts_with('<')) {
        auto text = files::read(xml);
        if (!text) {
            s.error(fmt::format("Failed to read file '{}' to update network", xml), text.error());
            return 1;
        }
        xml = std::move(*text);
    }
    auto net = find_network(s, a.get("network"));
    if (!net) return 1;
    ops::NetworkUpdate::Request r{.network = net->name,
                                  .command = *cmd,
                                  .section = *section,
                                  .xml = xml,
                                  .parent_index = a.number("parent-index").value_or(driver::kAnyParentIndex),
                                  .live = a.has("live"),
                                  .config = a.has("config")};
    if (auto st = s.conn()->call<ops::NetworkUpdate>(r); !st) {
        s.error(fmt::format("Failed to update network {}", net->name), st.error());
        return 1;
    }
    s.info("{}\n", network_update_outcome(net->name, r.live, r.config, net->active));
    return 0;
}

// --- net-event --------------------------------------------------------------------

volatile std::sig_atomic_t g_net_event_interrupted = 0;
void on_sigint(int) { g_net_event_interrupted = 1; }

struct NetEventQueue {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<driver::NetworkEvent> events;
};

int cmd_net_event(Session& s, const Args& a) {
    if (a.has("list")) {
        s.out("lifecycle\n");
        return 0;
    }
    if (!a.has("event")) {
        s.error("either --list or --event <type> is required");
        return 1;
    }
    if (a.get("event") != "lifecycle") {
        s.error(fmt::format("unknown event type {}", a.get("event")));
        return 1;
    }
    auto* d = s.conn();
    if (!d) return 1;
    std::optional<Uuid> only;
    if (a.has("network")) {
        auto net = find_network(s, a.get("network"));
        if (!net) return 1;
        only = net->uuid;
    }
    auto queue = std::make_shared<NetEventQueue>();
    auto sub = d->call<ops::NetworkEvents>({.callback = [queue](const driver::NetworkEvent& e) {
        std::lock_guard lock(queue->mutex);
        queue->events.push_back(e);
        queue->ready.notify_one();
    }});
    if (!sub) {
        s.error("failed to register for network events", sub.error());
        return 1;
    }
    g_net_event_interrupted = 0;
    auto previous = std::signal(SIGINT, on_sigint);
    using Clock = std::chrono::steady_clock;
    const auto timeout = a.number("timeout");
    const auto deadline = timeout ? Clock::now() + std::chrono::seconds(*timeout) : Clock::time_point::max();
    const bool loop = a.has("loop");
    int count = 0;
    bool timed_out = false;
    int rc = -1;
    for (bool done = false; !done;) {
        std::unique_lock lock(queue->mutex);
        // Wake up regularly to notice ^C (the handler cannot notify a condition variable).
        queue->ready.wait_for(lock, std::chrono::milliseconds(100), [&] { return !queue->events.empty(); });
        while (!queue->events.empty() && !done) {
            auto e = std::move(queue->events.front());
            queue->events.pop_front();
            if (only && !(e.uuid == *only)) continue;
            s.out("{}\n", format_network_event(e, a.has("timestamp")));
            std::fflush(stdout);
            ++count;
            done = !loop;
        }
        if (done || g_net_event_interrupted) break;
        if (auto lost = (*sub)->lost()) {
            lock.unlock();
            s.error("connection to the daemon was lost", *lost);
            rc = 1;
            break;
        }
        if (Clock::now() >= deadline) {
            timed_out = true;
            break;
        }
    }
    std::signal(SIGINT, previous);
    if (rc >= 0) return rc;
    if (timed_out) s.out("event loop timed out\n");
    s.out("events received: {}\n\n", count);
    return count > 0 ? 0 : 1;
}

}  // namespace

void add_network_commands(std::vector<CommandSpec>& t) {
    const std::string_view g = "Networking";
    const OptSpec file{"file", OptType::String, "file containing an XML network description", true, true};
    t.push_back({"net-define", g, "define an inactive persistent virtual network or modify an existing persistent one from an XML file",
                 "Define or modify a persistent virtual network.", {file}, cmd_net_define, true, true});
    t.push_back({"net-create", g, "create a network from an XML file", "Create and start a transient network.", {file},
                 cmd_net_create, true, true});
    t.push_back({"net-start", g, "start a (previously defined) inactive network", "Start a network.", {kNetworkOpt},
                 cmd_net_start, true, true});
    t.push_back({"net-destroy", g, "destroy (stop) a network",
                 "Forcefully stop a given network: its bridge, firewall rules and dnsmasq go.", {kNetworkOpt},
                 cmd_net_destroy, true, true});
    t.push_back({"net-undefine", g, "undefine a persistent network",
                 "Undefine the configuration for a persistent network (an active one keeps running, transient).",
                 {kNetworkOpt}, cmd_net_undefine, true, true});
    t.push_back({"net-list", g, "list networks", "Returns list of networks.",
                 {{"inactive", OptType::Bool, "list inactive networks"},
                  {"all", OptType::Bool, "list inactive & active networks"},
                  {"persistent", OptType::Bool, "list persistent networks"},
                  {"transient", OptType::Bool, "list transient networks"},
                  {"autostart", OptType::Bool, "list networks with autostart enabled"},
                  {"no-autostart", OptType::Bool, "list networks with autostart disabled"},
                  {"uuid", OptType::Bool, "list uuid's only"},
                  {"name", OptType::Bool, "list network names only"},
                  {"table", OptType::Bool, "list table (default)"},
                  kJsonOpt},
                 cmd_net_list});
    t.push_back({"net-info", g, "network information", "Returns basic information about the network",
                 {kNetworkOpt, kJsonOpt}, cmd_net_info});
    t.push_back({"net-dumpxml", g, "network information in XML", "Output the network information as an XML dump to stdout.",
                 {kNetworkOpt, {"inactive", OptType::Bool, "show inactive defined XML"}}, cmd_net_dumpxml});
    t.push_back({"net-edit", g, "edit XML configuration for a network",
                 "Edit the XML configuration for a network in $VISUAL or $EDITOR.\n"
                 "The result is redefined through the connection; on an error you may edit again.",
                 {kNetworkOpt}, cmd_net_edit, true, true});
    t.push_back({"net-autostart", g, "autostart a network", "Configure a network to be automatically started at boot.",
                 {kNetworkOpt, {"disable", OptType::Bool, "disable autostarting"}}, cmd_net_autostart, true, true});
    t.push_back({"net-uuid", g, "convert a network name to network UUID", "Returns UUID of a network.",
                 {{"network", OptType::String, "network name", true, true}}, cmd_net_uuid});
    t.push_back({"net-name", g, "convert a network UUID to network name", "",
                 {{"network", OptType::String, "network uuid", true, true}}, cmd_net_name});
    t.push_back({"net-dhcp-leases", g, "print lease info for a given network", "Print lease info for a given network",
                 {kNetworkOpt, {"mac", OptType::String, "MAC address"}, kJsonOpt}, cmd_net_dhcp_leases});
    t.push_back({"net-update", g, "update parts of an existing network's configuration",
                 "Add, delete or modify a static DHCP host (ip-dhcp-host), a DHCP range (ip-dhcp-range) or a DNS\n"
                 "host (dns-host). --live changes the running network (dnsmasq re-reads its hosts, or restarts\n"
                 "for ranges), --config the persistent definition; neither (--current): the current state.",
                 {kNetworkOpt,
                  {"command", OptType::String, "type of update (add-first, add-last (add), delete, or modify)", true, true},
                  {"section", OptType::String, "which section of network configuration to update", true, true},
                  {"xml", OptType::String,
                   "name of file containing xml (or, if it starts with '<', the complete xml element itself) to "
                   "add/modify, or to be matched for search",
                   true, true},
                  {"parent-index", OptType::Number, "which parent object to search through"},
                  {"config", OptType::Bool, "affect next network startup"},
                  {"live", OptType::Bool, "affect running network"},
                  {"current", OptType::Bool, "affect current state of network"}},
                 cmd_net_update, true, true});
    t.push_back({"net-event", g, "Network Events", "List event types, or wait for network events to occur",
                 {{"network", OptType::String, "filter by network name or uuid"},
                  {"event", OptType::String, "which event type to wait for"},
                  {"loop", OptType::Bool, "loop until timeout or interrupt, rather than one-shot"},
                  {"timeout", OptType::Number, "timeout seconds"},
                  {"list", OptType::Bool, "list valid event types"},
                  {"timestamp", OptType::Bool, "show timestamp for each printed event"}},
                 cmd_net_event});
}

}  // namespace vireo::cli
