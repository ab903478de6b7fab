// Host interface verbs, as virsh has them: iface-list, iface-dumpxml,
// iface-define, iface-undefine, iface-start, iface-destroy, iface-bridge,
// iface-unbridge, iface-name, iface-mac.
#include "cli/vireo/commands.hpp"
#include "cli/vireo/network_format.hpp"
#include "cli/vireo/session.hpp"
#include "util/files.hpp"

namespace vireo::cli {

namespace {

namespace ops = driver::ops;

constexpr OptSpec kInterfaceOpt{"interface", OptType::String, "interface name or MAC address", true, true};

std::optional<driver::HostInterface> find_interface(Session& s, std::string_view ref) {
    auto* d = s.conn();
    if (d == nullptr) return std::nullopt;
    auto found = d->call<ops::InterfaceLookup>({.iface = std::string(ref)});
    if (found) return *found;
    s.error(fmt::format("failed to get interface '{}'", ref), found.error());
    return std::nullopt;
}

template <class Action>
int on_interface(Session& s, const Args& a, std::string_view failed, std::string_view done, Action action) {
    auto iface = find_interface(s, a.get("interface"));
    if (!iface) return 1;
    if (auto st = action(*s.conn(), iface->name); !st) {
        s.error(fmt::format(fmt::runtime(failed), iface->name), st.error());
        return 1;
    }
    s.info("{}\n\n", fmt::format(fmt::runtime(done), iface->name));
    return 0;
}

int cmd_iface_list(Session& s, const Args& a) {
    auto* d = s.conn();
    if (d == nullptr) return 1;
    auto all = d->call<ops::InterfaceList>({});
    if (!all) {
        s.error("Failed to list interfaces", all.error());
        return 1;
    }
    const bool active = !a.has("inactive") || a.has("all");
    const bool inactive = a.has("inactive") || a.has("all");
    std::vector<driver::HostInterface> shown;
    for (auto& i : *all)
        if (i.active ? active : inactive) shown.push_back(std::move(i));
    if (a.has("json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& i : shown) out.push_back(host_interface_json(i));
        s.out("{}\n", out.dump(2));
        return 0;
    }
    s.out("{}{}", format_interface_table(shown, !s.quiet()), s.quiet() ? "" : "\n");
    return 0;
}

int cmd_iface_dumpxml(Session& s, const Args& a) {
    auto iface = find_interface(s, a.get("interface"));
    if (!iface) return 1;
    auto xml = s.conn()->call<ops::InterfaceXml>({.iface = iface->name, .inactive = a.has("inactive")});
    if (!xml) {
        s.error(fmt::format("failed to get the XML of interface {}", iface->name), xml.error());
        return 1;
    }
    s.out("{}{}\n", *xml, xml->ends_with('\n') ? "" : "\n");
    return 0;
}

int cmd_iface_define(Session& s, const Args& a) {
    const std::string file = a.get("file");
    auto xml = files::read(file);
    if (!xml) {
        s.error(fmt::format("Failed to open file '{}'", file), xml.error());
        return 1;
    }
    auto* d = s.conn();
    if (d == nullptr) return 1;
    auto iface = d->call<ops::InterfaceDefine>({.xml = *xml});
    if (!iface) {
        s.error(fmt::format("Failed to define interface from {}", file), iface.error());
        return 1;
    }
    s.info("Interface {} defined from {}\n\n", iface->name, file);
    return 0;
}

int cmd_iface_undefine(Session& s, const Args& a) {
    return on_interface(s, a, "Failed to undefine interface {}", "Interface {} undefined",
                        [](driver::Driver& d, const std::string& n) { return d.call<ops::InterfaceUndefine>({.iface = n}); });
}

int cmd_iface_start(Session& s, const Args& a) {
    return on_interface(s, a, "Failed to start interface {}", "Interface {} started",
                        [](driver::Driver& d, const std::string& n) { return d.call<ops::InterfaceStart>({.iface = n}); });
}

int cmd_iface_destroy(Session& s, const Args& a) {
    return on_interface(s, a, "Failed to destroy interface {}", "Interface {} destroyed",
                        [](driver::Driver& d, const std::string& n) { return d.call<ops::InterfaceDestroy>({.iface = n}); });
}

int cmd_iface_bridge(Session& s, const Args& a) {
    auto iface = find_interface(s, a.get("interface"));
    if (!iface) return 1;
    const std::string bridge = a.get("bridge");
    const bool no_start = a.has("no-start");
    auto st = s.conn()->call<ops::InterfaceBridge>({.iface = iface->name,
                                                    .bridge = bridge,
                                                    .stp = !a.has("no-stp"),
                                                    .delay = a.number("delay").value_or(0),
                                                    .no_start = no_start});
    if (!st) {
        s.error(fmt::format("Failed to create bridge {} with attached device {}", bridge, iface->name), st.error());
        return 1;
    }
    s.info("Created bridge {} with attached device {}\n", bridge, iface->name);
    if (!no_start) s.info("Bridge interface {} started\n", bridge);
    s.info("\n");
    return 0;
}

int cmd_iface_unbridge(Session& s, const Args& a) {
    auto br = find_interface(s, a.get("bridge"));
    if (!br) return 1;
    const bool no_start = a.has("no-start");
    auto port = s.conn()->call<ops::InterfaceUnbridge>({.iface = br->name, .no_start = no_start});
    if (!port) {
        s.error(fmt::format("Failed to detach bridge {}", br->name), port.error());
        return 1;
    }
    s.info("Device {} un-attached from bridge {}\n", *port, br->name);
    if (!no_start) s.info("Interface {} started\n", *port);
    s.info("\n");
    return 0;
}

int cmd_iface_name(Session& s, const Args& a) {
    auto iface = find_interface(s, a.get("interface"));
    if (!iface) return 1;
    s.out("{}\n\n", iface->name);
    return 0;
}

int cmd_iface_mac(Session& s, const Args& a) {
    auto iface = find_interface(s, a.get("interface"));
    if (!iface) return 1;
    s.out("{}\n\n", iface->mac);
    return 0;
}

}  // namespace

void add_interface_commands(std::vector<CommandSpec>& t) {
    const std::string_view g = "Interface";
    t.push_back({"iface-list", g, "list physical host interfaces", "Returns list of physical host interfaces.",
                 {{"inactive", OptType::Bool, "list inactive interfaces"},
                  {"all", OptType::Bool, "list inactive & active interfaces"},
                  kJsonOpt},
                 cmd_iface_list});
    t.push_back({"iface-dumpxml", g, "interface information in XML",
                 "Output the physical host interface information as an XML dump to stdout.",
                 {kInterfaceOpt, {"inactive", OptType::Bool, "show inactive defined XML"}}, cmd_iface_dumpxml});
    t.push_back({"iface-define", g, "define an inactive persistent physical host interface or modify an existing persistent one from an XML file",
                 "Define or modify a persistent physical host interface.",
                 {{"file", OptType::String, "file containing an XML interface description", true, true}}, cmd_iface_define,
                 true, true});
    t.push_back({"iface-undefine", g, "undefine a physical host interface (remove it from configuration)",
                 "undefine an interface.", {kInterfaceOpt}, cmd_iface_undefine, true, true});
    t.push_back({"iface-start", g, "start a physical host interface (enable it / \"if-up\")",
                 "start a physical host interface.", {kInterfaceOpt}, cmd_iface_start, true, true});
    t.push_back({"iface-destroy", g, "destroy a physical host interface (disable it / \"if-down\")",
                 "forcefully stop a physical host interface.", {kInterfaceOpt}, cmd_iface_destroy, true, true});
    t.push_back({"iface-bridge", g, "create a bridge device and attach an existing network device to it",
                 "bridge an existing network device: its addresses move to the new bridge.\n"
                 "Routes other than the addresses' own subnet routes are not moved.",
                 {{"interface", OptType::String, "existing interface name", true, true},
                  {"bridge", OptType::String, "new bridge device name", true, true},
                  {"no-stp", OptType::Bool, "do not enable STP for this bridge"},
                  {"delay", OptType::Number, "number of seconds to squelch traffic on newly connected ports"},
                  {"no-start", OptType::Bool, "don't start the bridge immediately"}},
                 cmd_iface_bridge, true, true});
    t.push_back({"iface-unbridge", g, "undefine a bridge device after detaching its device(s)",
                 "unbridge a network device from a bridge device, then undefine the bridge device.",
                 {{"bridge", OptType::String, "current bridge device name", true, true},
                  {"no-start", OptType::Bool, "don't start the un-attached device immediately"}},
                 cmd_iface_unbridge, true, true});
    t.push_back({"iface-name", g, "convert an interface MAC address to interface name", "",
                 {{"interface", OptType::String, "interface mac", true, true}}, cmd_iface_name});
    t.push_back({"iface-mac", g, "convert an interface name to interface MAC address", "",
                 {{"interface", OptType::String, "interface name", true, true}}, cmd_iface_mac});
}

}  // namespace vireo::cli
