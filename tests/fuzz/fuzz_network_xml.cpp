// libFuzzer target for the network XML parser: any input must either be
// refused with an error or parse into a definition whose formatted form
// parses again to the same document (a fixed point), also after the
// define-time defaults (bridge name, MAC) are assigned. The texts derived
// from a definition (firewall rules, dnsmasq configuration and hosts files)
// must be producible for anything that parses. Crashes, sanitizer reports
// and broken fixed points are findings.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "conf/interface.hpp"
#include "conf/network.hpp"
#include "network/dnsmasq.hpp"
#include "network/firewall.hpp"

namespace {

void check_fixed_point(const vireo::conf::NetworkDef& def) {
    const std::string once = vireo::conf::format_network_xml(def);
    auto again = vireo::conf::parse_network_xml(once);
    if (!again) {
        std::fprintf(stderr, "formatted output does not parse: %s\n%s\n", again.error().full_message().c_str(), once.c_str());
        std::abort();
    }
    if (vireo::conf::format_network_xml(*again) != once) {
        std::fprintf(stderr, "format(parse(x)) is not a fixed point for:\n%s\n", once.c_str());
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    // The interface parser shares the readers: same rules, cheap to cover.
    if (auto iface = vireo::conf::parse_interface_xml(text)) {
        const std::string once = vireo::conf::format_interface_xml(*iface);
        auto again = vireo::conf::parse_interface_xml(once);
        if (!again || vireo::conf::format_interface_xml(*again) != once) std::abort();
    }
    auto def = vireo::conf::parse_network_xml(text);
    if (!def) {
        if (def.error().full_message().empty()) std::abort();  // every refusal explains itself
        return 0;
    }
    check_fixed_point(*def);
    if (!vireo::conf::assign_network_defaults(*def, {.bridges = {"virbr0"}, .macs = {}})) return 0;
    check_fixed_point(*def);
    (void)vireo::network::firewall_ruleset(*def);
    const auto files = vireo::network::DnsmasqFiles::in("/run/vireo/network", def->name);
    (void)vireo::network::dnsmasq_config(*def, files, "/usr/libexec/vireo-lease-helper");
    (void)vireo::network::dnsmasq_hostsfile(*def);
    (void)vireo::network::dnsmasq_addnhosts(*def);
    return 0;
}
