// assign_network_defaults and the default network document: what libvirt's
// network driver fills in when a network is defined.
#include <fmt/format.h>

#include "conf/network.hpp"

namespace vireo::conf {

const std::string_view kDefaultNetworkXml = R"(<network>
  <name>default</name>
  <bridge name='virbr0'/>
  <forward/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
)";

namespace {

// libvirt tries virbr0 .. virbr255 (or the user's template with %d).
constexpr unsigned kMaxBridgeIndex = 256;

Status assign_bridge_name(NetworkBridge& br, const std::set<std::string>& in_use) {
    std::string tmpl = br.name.empty() ? "virbr%d" : br.name;
    const auto pos = tmpl.find("%d");
    if (pos == std::string::npos) return {};
    if (tmpl.find('%', pos + 2) != std::string::npos || tmpl.find('%') != pos)
        return fail(ErrorCode::XmlError, "/network/bridge/@name: bridge name template '{}' may hold one %d and no other '%'", tmpl);
    for (unsigned n = 0; n < kMaxBridgeIndex; ++n) {
        std::string candidate = tmpl.substr(0, pos) + std::to_string(n) + tmpl.substr(pos + 2);
        if (candidate.size() > 15)
            return fail(ErrorCode::XmlError, "/network/bridge/@name: bridge name template '{}' gives names longer than 15 characters", tmpl);
        if (!in_use.contains(candidate)) {
            br.name = std::move(candidate);
            return {};
        }
    }
    return fail(ErrorCode::OperationFailed, "/network/bridge/@name: no free bridge name for the template '{}' ({} tried)", tmpl, kMaxBridgeIndex);
}

}  // namespace

Status assign_network_defaults(NetworkDef& def, const NetworkNamesInUse& in_use) {
    if (!def.has_own_bridge()) return {};
    VIREO_TRY(assign_bridge_name(def.bridge, in_use.bridges));
    if (!def.mac) {
        // A collision among 2^24 is unlikely; retrying keeps it impossible.
        for (int attempt = 0; attempt < 1000 && !def.mac; ++attempt) {
            MacAddr m = random_mac();
            if (!in_use.macs.contains(m)) def.mac = m;
        }
        if (!def.mac) return fail(ErrorCode::OperationFailed, "/network/mac: could not pick a MAC address not used by another network");
    }
    return {};
}

}  // namespace vireo::conf
