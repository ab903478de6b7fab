#include "qemu/nics.hpp"

#include <cstdlib>
#include <fstream>

#include <fmt/format.h>

namespace vireo::qemu {

std::string first_free_name(std::string_view prefix, const std::set<std::string>& used) {
    for (unsigned i = 0;; ++i) {
        std::string name = fmt::format("{}{}", prefix, i);
        if (!used.contains(name)) return name;
    }
}

bool is_generated_nic_name(std::string_view name) {
    return name.starts_with("vnet") || name.starts_with("macvtap") || name.starts_with("vif");
}

network::LinkStats guest_view(const network::LinkStats& host, bool swap) {
    if (!swap) return host;
    network::LinkStats g;
    g.rx_bytes = host.tx_bytes;
    g.rx_packets = host.tx_packets;
    g.rx_errors = host.tx_errors;
    g.rx_dropped = host.tx_dropped;
    g.tx_bytes = host.rx_bytes;
    g.tx_packets = host.rx_packets;
    g.tx_errors = host.rx_errors;
    g.tx_dropped = host.rx_dropped;
    return g;
}

bool can_admin_network() {
    constexpr unsigned kCapNetAdmin = 12;
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (!line.starts_with("CapEff:")) continue;
        const unsigned long long caps = std::strtoull(line.c_str() + 7, nullptr, 16);
        return (caps >> kCapNetAdmin) & 1ULL;
    }
    return false;
}

}  // namespace vireo::qemu
