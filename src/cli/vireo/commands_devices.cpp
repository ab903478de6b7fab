// Device verbs as virsh's: attach-device, detach-device, update-device,
// detach-device-alias (a device from its XML file, or by alias), attach-disk, detach-disk (a
// disk from options, or by target or source). --live/--config/--current
// (and --persistent on attach) go to the daemon, which resolves them by
// libvirt's rule (driver/impact.hpp). attach-interface, detach-interface:
// a NIC from options. Disks and NICs today: other device kinds are refused
// by the driver as not supported yet.
#include <sys/stat.h>

#include <cctype>

#include "cli/vireo/commands.hpp"
#include "cli/vireo/session.hpp"
#include "conf/xml_writer.hpp"
#include "driver/ops/domain.hpp"

namespace vireo::cli {

namespace ops = driver::ops;

namespace {

std::uint64_t detach_timeout(const Args& a) { return a.number("timeout").value_or(0) * 1000; }

// attach-device, detach-device, update-device: the domain and the device
// document of <file>, `call` with them, virsh's lines for the outcome
// ("Failed to <verb> device from <file>", "Device <done> successfully").
template <class Call>
int device_file_verb(Session& s, const Args& a, std::string_view verb, std::string_view done, Call call) {
    if (!check_impact_options(s, a)) return 1;
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::string file = a.get("file");
    auto xml = read_xml_file(s, file);
    if (!xml) return 1;
    if (auto st = call(dom->name, *xml); !st) {
        s.error(fmt::format("Failed to {} device from {}", verb, file), st.error());
        return 1;
    }
    s.info("Device {} successfully\n\n", done);
    return 0;
}

int cmd_attach_device(Session& s, const Args& a) {
    return device_file_verb(s, a, "attach", "attached", [&](const std::string& dom, const std::string& xml) {
        return s.conn()->call<ops::DomainAttachDevice>({.ref = dom, .xml = xml, .live = a.has("live"), .config = a.has("config"),
                                                        .current = a.has("current"), .persistent = a.has("persistent")});
    });
}

int cmd_detach_device(Session& s, const Args& a) {
    return device_file_verb(s, a, "detach", "detached", [&](const std::string& dom, const std::string& xml) {
        return s.conn()->call<ops::DomainDetachDevice>({.ref = dom, .xml = xml, .live = a.has("live"), .config = a.has("config"),
                                                        .current = a.has("current"), .timeout_ms = detach_timeout(a)});
    });
}

int cmd_update_device(Session& s, const Args& a) {
    return device_file_verb(s, a, "update", "updated", [&](const std::string& dom, const std::string& xml) {
        return s.conn()->call<ops::DomainUpdateDevice>({.ref = dom, .xml = xml, .live = a.has("live"), .config = a.has("config"),
                                                        .current = a.has("current"), .persistent = a.has("persistent"),
                                                        .force = a.has("force")});
    });
}

int cmd_detach_device_alias(Session& s, const Args& a) {
    if (!check_impact_options(s, a)) return 1;
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::string alias = a.get("alias");
    auto st = s.conn()->call<ops::DomainDetachDeviceAlias>({.ref = dom->name, .alias = alias, .live = a.has("live"),
                                                            .config = a.has("config"), .current = a.has("current"),
                                                            .timeout_ms = detach_timeout(a)});
    if (!st) {
        s.error(fmt::format("Failed to detach device with alias {}", alias), st.error());
        return 1;
    }
    s.info("Device detach request sent successfully\n\n");
    return 0;
}

// The <disk> virsh attach-disk writes for its options.
std::optional<std::string> disk_xml(Session& s, const Args& a) {
    const std::string source = a.get("source");
    std::string source_type = a.get("sourcetype");
    if (source_type.empty()) {
        struct stat st{};
        source_type = ::stat(source.c_str(), &st) == 0 && S_ISBLK(st.st_mode) ? "block" : "file";
    }
    if (source_type != "file" && source_type != "block") {
        s.error(fmt::format("Unknown source type: '{}'", source_type));
        return std::nullopt;
    }
    const std::string mode = a.get("mode");
    if (!mode.empty() && mode != "readonly" && mode != "shareable") {
        s.error(fmt::format("No support for {} in command 'attach-disk'", mode));
        return std::nullopt;
    }
    conf::xml::Node disk("disk");
    disk.attr("type", source_type).attr("device", a.has("type") ? a.get("type") : "disk");
    if (a.has("driver") || a.has("subdriver") || a.has("cache") || a.has("io"))
        disk.add("driver")
            .attr("name", a.get("driver"))
            .attr("type", a.get("subdriver"))
            .attr("cache", a.get("cache"))
            .attr("io", a.get("io"));
    disk.add("source").attr(source_type == "block" ? "dev" : "file", source);
    disk.add("target").attr("dev", a.get("target")).attr("bus", a.get("targetbus"));
    if (mode == "readonly") disk.add("readonly");
    if (mode == "shareable") disk.add("shareable");
    disk.add_text("serial", a.get("serial"));
    if (a.has("alias")) disk.add("alias").attr("name", a.get("alias"));
    return disk.str();
}

// attach-disk, attach-interface: the device document their options make
// (`xml`, nullopt when they were refused), printed with --print-xml, else
// attached as attach-device does; `what` is "disk" / "interface".
int attach_from_options(Session& s, const Args& a, const std::optional<std::string>& xml, std::string_view what) {
    if (!check_impact_options(s, a) || !xml) return 1;
    if (a.has("print-xml")) {
        s.out("{}", *xml);
        return 0;
    }
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    auto st = s.conn()->call<ops::DomainAttachDevice>({.ref = dom->name, .xml = *xml, .live = a.has("live"),
                                                       .config = a.has("config"), .current = a.has("current"),
                                                       .persistent = a.has("persistent")});
    if (!st) {
        s.error(fmt::format("Failed to attach {}", what), st.error());
        return 1;
    }
    std::string done(what);
    done[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(done[0])));
    s.info("{} attached successfully\n\n", done);
    return 0;
}

int cmd_attach_disk(Session& s, const Args& a) { return attach_from_options(s, a, disk_xml(s, a), "disk"); }

// virsh detach-disk: the disk whose target or source is `target`, in the
// definition the change starts from (the persistent one with --config).
int cmd_detach_disk(Session& s, const Args& a) {
    if (!check_impact_options(s, a)) return 1;
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    const std::string target = a.get("target");
    const bool inactive = a.has("config") && !a.has("live");
    auto disks = s.conn()->call<ops::DomainDisks>({.ref = dom->name, .inactive = inactive || dom->id < 0});
    if (!disks) {
        s.error("Failed to detach disk", disks.error());
        return 1;
    }
    std::string dev;
    for (const auto& d : *disks)
        if (d.target == target) dev = d.target;
    for (const auto& d : *disks)
        if (dev.empty() && d.source == target) dev = d.target;
    if (dev.empty()) {
        s.error(fmt::format("No disk found whose source path or target is {}", target));
        return 1;
    }
    conf::xml::Node disk("disk");
    disk.add("target").attr("dev", dev);
    auto st = s.conn()->call<ops::DomainDetachDevice>({.ref = dom->name, .xml = disk.str(), .live = a.has("live"),
                                                       .config = a.has("config"), .current = a.has("current"),
                                                       .persistent = a.has("persistent"), .timeout_ms = detach_timeout(a)});
    if (!st) {
        s.error("Failed to detach disk", st.error());
        return 1;
    }
    s.info("Disk detached successfully\n\n");
    return 0;
}

// The <interface> virsh attach-interface writes for its options.
std::optional<std::string> interface_xml(Session& s, const Args& a) {
    const std::string type = a.get("type");
    const std::string source = a.get("source");
    conf::xml::Node nic("interface");
    nic.attr("type", type);
    if (type == "network") {
        nic.add("source").attr("network", source);
    } else if (type == "bridge") {
        nic.add("source").attr("bridge", source);
    } else if (type == "direct") {
        nic.add("source").attr("dev", source).attr("mode", a.has("source-mode") ? a.get("source-mode") : "vepa");
    } else if (type != "user" && type != "ethernet") {
        s.error(fmt::format("No support for {} in command 'attach-interface'", type));
        return std::nullopt;
    }
    if ((type == "network" || type == "bridge" || type == "direct") && source.empty()) {
        s.error(fmt::format("an interface of type '{}' needs --source", type));
        return std::nullopt;
    }
    if (a.has("target")) nic.add("target").attr("dev", a.get("target"));
    if (a.has("mac")) nic.add("mac").attr("address", a.get("mac"));
    if (a.has("model")) nic.add("model").attr("type", a.get("model"));
    if (a.has("alias")) nic.add("alias").attr("name", a.get("alias"));
    return nic.str();
}

int cmd_attach_interface(Session& s, const Args& a) {
    return attach_from_options(s, a, interface_xml(s, a), "interface");
}

// virsh detach-interface: the NIC of --type (and --mac); the daemon picks
// it in the definition the change starts from and refuses an ambiguous one.
int cmd_detach_interface(Session& s, const Args& a) {
    if (!check_impact_options(s, a)) return 1;
    auto dom = s.domain(a.get("domain"));
    if (!dom) return 1;
    conf::xml::Node nic("interface");
    nic.attr("type", a.get("type"));
    if (a.has("mac")) nic.add("mac").attr("address", a.get("mac"));
    auto st = s.conn()->call<ops::DomainDetachDevice>({.ref = dom->name, .xml = nic.str(), .live = a.has("live"),
                                                       .config = a.has("config"), .current = a.has("current"),
                                                       .persistent = a.has("persistent"), .timeout_ms = detach_timeout(a)});
    if (!st) {
        s.error("Failed to detach interface", st.error());
        return 1;
    }
    s.info("Interface detached successfully\n\n");
    return 0;
}

constexpr OptSpec kTimeout{"timeout", OptType::Number, "seconds the guest may take to release the device (default 5)"};

}  // namespace

void add_device_commands(std::vector<CommandSpec>& t) {
    constexpr std::string_view group = "Domain Management";
    t.push_back({"attach-device", group, "attach device from an XML file",
                 "Attach device from an XML <file> (a <disk> or <interface> today).",
                 {kDomainOpt, {"file", OptType::String, "XML file", true, true}, kPersistentOpt, kConfigOpt, kLiveOpt, kCurrentOpt},
                 cmd_attach_device, true, true});
    t.push_back({"detach-device", group, "detach device from an XML file",
                 "Detach device from an XML <file> (a <disk> by its target, an <interface> by its MAC).",
                 {kDomainOpt, {"file", OptType::String, "XML file", true, true}, kConfigOpt, kLiveOpt, kCurrentOpt, kTimeout},
                 cmd_detach_device, true, true});
    t.push_back({"update-device", group, "update device from an XML file",
                 "Update device from an XML <file>: a cdrom or floppy's medium, an interface's link state (live) or "
                 "definition (config).",
                 {kDomainOpt,
                  {"file", OptType::String, "XML file", true, true},
                  kPersistentOpt,
                  kConfigOpt,
                  kLiveOpt,
                  kCurrentOpt,
                  {"force", OptType::Bool, "force device update"}},
                 cmd_update_device, true, true});
    t.push_back({"detach-device-alias", group, "detach device from an alias",
                 "Detach device identified by the given alias from a domain.",
                 {kDomainOpt, {"alias", OptType::String, "device alias", true, true}, kConfigOpt, kLiveOpt, kCurrentOpt, kTimeout},
                 cmd_detach_device_alias, true, true});
    t.push_back({"attach-disk", group, "attach disk device", "Attach new disk device.",
                 {kDomainOpt,
                  {"source", OptType::String, "source of disk device or name of network disk", true, true},
                  {"target", OptType::String, "target of disk device", true, true},
                  {"targetbus", OptType::String, "target bus of disk device"},
                  {"driver", OptType::String, "driver of disk device"},
                  {"subdriver", OptType::String, "subdriver of disk device"},
                  {"cache", OptType::String, "cache mode of disk device"},
                  {"io", OptType::String, "io policy of disk device"},
                  {"type", OptType::String, "target device type"},
                  {"mode", OptType::String, "mode of device reading and writing"},
                  {"sourcetype", OptType::String, "type of source (block|file)"},
                  {"serial", OptType::String, "serial of disk device"},
                  {"alias", OptType::String, "custom alias name of disk device"},
                  {"print-xml", OptType::Bool, "print XML document rather than attach the disk"},
                  kPersistentOpt, kConfigOpt, kLiveOpt, kCurrentOpt},
                 cmd_attach_disk, true, true});
    t.push_back({"attach-interface", group, "attach network interface", "Attach new network interface.",
                 {kDomainOpt,
                  {"type", OptType::String, "network interface type (network, bridge, direct, ethernet, user)", true, true},
                  {"source", OptType::String, "source of network interface", false, true},
                  {"target", OptType::String, "target network name"},
                  {"mac", OptType::String, "MAC address"},
                  {"model", OptType::String, "model type"},
                  {"alias", OptType::String, "custom alias name of interface device"},
                  {"source-mode", OptType::String, "mode attribute of <source/> element (direct)"},
                  {"print-xml", OptType::Bool, "print XML document rather than attach the interface"},
                  kPersistentOpt, kConfigOpt, kLiveOpt, kCurrentOpt},
                 cmd_attach_interface, true, true});
    t.push_back({"detach-interface", group, "detach network interface", "Detach network interface.",
                 {kDomainOpt, {"type", OptType::String, "network interface type", true, true},
                  {"mac", OptType::String, "MAC address"}, kPersistentOpt, kConfigOpt, kLiveOpt, kCurrentOpt, kTimeout},
                 cmd_detach_interface, true, true});
    t.push_back({"detach-disk", group, "detach disk device", "Detach disk device.",
                 {kDomainOpt, {"target", OptType::String, "target of disk device", true, true}, kPersistentOpt, kConfigOpt, kLiveOpt,
                  kCurrentOpt, kTimeout},
                 cmd_detach_disk, true, true});
}

}  // namespace vireo::cli
