// Host and connection verbs: uri, version, hostname, nodeinfo, capabilities,
// domcapabilities.
#include "cli/vireo/commands.hpp"
#include "cli/vireo/format.hpp"
#include "cli/vireo/session.hpp"
#include "host/validate.hpp"

namespace vireo::cli {

namespace {

int cmd_uri(Session& s, const Args&) {
    auto* d = s.conn();
    if (!d) return 1;
    s.out("{}\n\n", d->uri());
    return 0;
}

int cmd_version(Session& s, const Args& a) {
    auto* d = s.conn();
    if (!d) return 1;
    auto v = d->version();
    if (!v) {
        s.error("failed to get the hypervisor version", v.error());
        return 1;
    }
    s.out("{}\n", format_version(*v, a.has("daemon")));
    return 0;
}

int cmd_hostname(Session& s, const Args&) {
    auto* d = s.conn();
    if (!d) return 1;
    auto h = d->hostname();
    if (!h) {
        s.error("failed to get hostname", h.error());
        return 1;
    }
    s.out("{}\n\n", *h);
    return 0;
}

int cmd_nodeinfo(Session& s, const Args& a) {
    auto* d = s.conn();
    if (!d) return 1;
    auto n = d->node_info();
    if (!n) {
        s.error("failed to get node information", n.error());
        return 1;
    }
    if (a.has("json"))
        s.out("{}\n", nodeinfo_json(*n).dump(2));
    else
        s.out("{}\n", format_nodeinfo(*n));
    return 0;
}

// XML documents end with a newline; virsh prints them followed by a blank line.
void print_document(Session& s, const std::string& xml) {
    s.out("{}{}\n", xml, xml.ends_with('\n') ? "" : "\n");
}

int cmd_capabilities(Session& s, const Args&) {
    auto* d = s.conn();
    if (!d) return 1;
    auto xml = d->capabilities_xml();
    if (!xml) {
        s.error("failed to get capabilities", xml.error());
        return 1;
    }
    print_document(s, *xml);
    return 0;
}

int cmd_domcapabilities(Session& s, const Args& a) {
    auto* d = s.conn();
    if (!d) return 1;
    auto xml = d->domain_capabilities_xml(a.get("emulatorbin"), a.get("arch"), a.get("machine"), a.get("virttype"));
    if (!xml) {
        s.error("failed to get emulator capabilities", xml.error());
        return 1;
    }
    print_document(s, *xml);
    return 0;
}

// Checks this machine itself (no connection): virt-host-validate's report.
int cmd_host_validate(Session& s, const Args&) {
    const auto checks = host::run_host_checks();
    s.out("{}", host::format_host_checks(checks));
    return host::host_checks_exit_code(checks);
}

}  // namespace

void add_host_commands(std::vector<CommandSpec>& t) {
    const std::string_view group = "Host and Hypervisor";
    t.push_back({"uri", group, "print the hypervisor canonical URI", "Print the URI of the connection.", {}, cmd_uri});
    t.push_back({"version", group, "show version", "Display the library, API and hypervisor versions.",
                 {{"daemon", OptType::Bool, "report daemon version too"}}, cmd_version});
    t.push_back({"hostname", group, "print the hypervisor hostname", "", {}, cmd_hostname});
    t.push_back({"nodeinfo", group, "node information", "Returns basic information about the node.", {kJsonOpt},
                 cmd_nodeinfo});
    t.push_back({"capabilities", group, "capabilities", "Returns capabilities of hypervisor/driver.", {},
                 cmd_capabilities});
    t.push_back({"domcapabilities", group, "domain capabilities",
                 "Returns capabilities of emulator with respect to host and libvirt-style domain XML.",
                 {{"virttype", OptType::String, "virtualization type (/domain/@type)"},
                  {"emulatorbin", OptType::String, "path to emulator binary (/domain/devices/emulator)"},
                  {"arch", OptType::String, "domain architecture (/domain/os/type/@arch)"},
                  {"machine", OptType::String, "machine type (/domain/os/type/@machine)"}},
                 cmd_domcapabilities});
    t.push_back({"host-validate", group, "validate the host for virtualization",
                 "Check this machine as virt-host-validate does (hardware virtualization,\n"
                 "/dev/kvm usability, cgroups, IOMMU, access to the system daemon) and print\n"
                 "PASS/WARN/FAIL per check. Exits 1 if any check fails.",
                 {}, cmd_host_validate, false});
}

}  // namespace vireo::cli
