// nftables rules of a network through libnftables (see firewall.hpp).
#include "network/firewall.hpp"

#include <nftables/libnftables.h>

#include <memory>
#include <mutex>
#include <sstream>

#include <fmt/format.h>

namespace vireo::network {

using conf::ForwardMode;
using conf::NetworkDef;
using conf::NetworkIp;

namespace {

constexpr std::string_view kTablePrefix = "vireo_net_";

bool plain_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-'; }

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

std::string subnet(const NetworkIp& ip) {
    return fmt::format("{}/{}", ip.address.network(ip.prefix_length()).str(), ip.prefix_length());
}

// An interface name as nft reads it. Not "quoted": with <iomanip> in sight,
// quoted(std::string) would find std::quoted by argument-dependent lookup.
std::string nft_quoted(std::string_view ifname) { return fmt::format("\"{}\"", ifname); }

// The forward chain's rules for the mode.
void forward_rules(std::ostringstream& out, const NetworkDef& def) {
    const std::string br = nft_quoted(def.bridge.name);
    const std::string via_in = def.forward.dev.empty() ? "" : fmt::format("iifname {} ", nft_quoted(def.forward.dev));
    const std::string via_out = def.forward.dev.empty() ? "" : fmt::format("oifname {} ", nft_quoted(def.forward.dev));
    if (def.forward.mode == ForwardMode::Nat || def.forward.mode == ForwardMode::Route) {
        for (const auto& ip : def.ips) {
            const char* fam = ip.is_v6() ? "ip6" : "ip";
            // IPv4 behind NAT only accepts replies; IPv6 (and route) is routed both ways.
            const bool masqueraded = def.forward.mode == ForwardMode::Nat && (!ip.is_v6() || def.forward.nat.ipv6 == "yes");
            out << fmt::format("    iifname {} {}{} saddr {} accept\n", br, via_out, fam, subnet(ip));
            out << fmt::format("    {}oifname {} {} daddr {}{} accept\n", via_in, br, fam, subnet(ip),
                               masqueraded ? " ct state established,related" : "");
        }
    }
    out << fmt::format("    iifname {} oifname {} accept\n", br, br);
    out << fmt::format("    iifname {} reject\n", br);
    out << fmt::format("    oifname {} reject\n", br);
}

// Masquerading (or SNAT to the address range) of the IPv4 subnets.
void nat_rules(std::ostringstream& out, const NetworkDef& def) {
    const auto& nat = def.forward.nat;
    const std::string via = def.forward.dev.empty() ? "" : fmt::format("oifname {} ", nft_quoted(def.forward.dev));
    // libvirt's source port range when the definition names none
    const bool given = nat.port_start != 0 || nat.port_end != 0;
    const std::string ports = fmt::format(":{}-{}", given ? nat.port_start : 1024u, given ? nat.port_end : 65535u);
    std::string to;
    if (nat.address_start) {
        const auto end = nat.address_end.value_or(*nat.address_start);
        to = end == *nat.address_start ? nat.address_start->str() : fmt::format("{}-{}", nat.address_start->str(), end.str());
    }
    for (const auto& ip : def.ips) {
        if (ip.is_v6() && nat.ipv6 != "yes") continue;
        const char* fam = ip.is_v6() ? "ip6" : "ip";
        const std::string match = fmt::format("{}{} saddr {} {} daddr != {}", via, fam, subnet(ip), fam, subnet(ip));
        if (!ip.is_v6()) {
            out << fmt::format("    ip saddr {} ip daddr 224.0.0.0/24 return\n", subnet(ip));
            out << fmt::format("    ip saddr {} ip daddr 255.255.255.255 return\n", subnet(ip));
        }
        for (const char* proto : {"tcp", "udp"}) {
            if (to.empty() || ip.is_v6()) out << fmt::format("    {} meta l4proto {} masquerade to {}\n", match, proto, ports);
            else out << fmt::format("    {} meta l4proto {} snat ip to {}{}\n", match, proto, to, ports);
        }
        if (to.empty() || ip.is_v6()) out << fmt::format("    {} masquerade\n", match);
        else out << fmt::format("    {} snat ip to {}\n", match, to);
    }
}

bool has_rules(const NetworkDef& def) {
    return def.has_own_bridge() && def.forward.mode != ForwardMode::Open && !def.bridge.name.empty();
}

struct CtxDeleter {
    void operator()(nft_ctx* c) const { nft_ctx_free(c); }
};

// libnftables keeps some global state: one batch at a time.
std::mutex g_nft_mutex;

}  // namespace

std::string firewall_table(std::string_view network_name) {
    std::string out(kTablePrefix);
    for (char c : network_name) {
        if (plain_char(c)) out += c;
        else out += fmt::format("_{:02x}", static_cast<unsigned char>(c));
    }
    return out;
}

std::optional<std::string> network_of_table(std::string_view table) {
    if (!table.starts_with(kTablePrefix)) return std::nullopt;
    table.remove_prefix(kTablePrefix.size());
    std::string out;
    for (std::size_t i = 0; i < table.size(); ++i) {
        if (table[i] != '_') {
            if (!plain_char(table[i])) return std::nullopt;
            out += table[i];
            continue;
        }
        if (i + 2 >= table.size()) return std::nullopt;
        const int hi = hex_value(table[i + 1]), lo = hex_value(table[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    if (out.empty()) return std::nullopt;
    return out;
}

std::string firewall_ruleset(const NetworkDef& def) {
    if (!has_rules(def)) return {};
    const std::string table = firewall_table(def.name);
    const std::string br = nft_quoted(def.bridge.name);
    std::ostringstream out;
    // "add" then "delete" makes the delete safe when the table is missing,
    // and the whole text is one transaction: old rules are never half-gone.
    out << "add table inet " << table << "\n";
    out << "delete table inet " << table << "\n";
    out << "table inet " << table << " {\n";
    out << "  chain input {\n    type filter hook input priority filter; policy accept;\n";
    out << fmt::format("    iifname {} udp dport {{ 53, 67, 547 }} accept\n", br);
    out << fmt::format("    iifname {} tcp dport 53 accept\n", br);
    out << "  }\n";
    out << "  chain forward {\n    type filter hook forward priority filter; policy accept;\n";
    forward_rules(out, def);
    out << "  }\n";
    if (def.forward.mode == ForwardMode::Nat) {
        out << "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n";
        nat_rules(out, def);
        out << "  }\n";
    }
    out << "}\n";
    return out.str();
}

Result<std::string> nft_run(std::string_view commands) {
    std::lock_guard lock(g_nft_mutex);
    std::unique_ptr<nft_ctx, CtxDeleter> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
    if (!ctx) return fail(ErrorCode::System, "cannot initialise libnftables");
    nft_ctx_buffer_output(ctx.get());
    nft_ctx_buffer_error(ctx.get());
    const std::string text(commands);
    if (nft_run_cmd_from_buffer(ctx.get(), text.c_str()) != 0) {
        std::string err = nft_ctx_get_error_buffer(ctx.get());
        while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
        return fail(ErrorCode::OperationFailed, "nftables refused the rules: {}", err.empty() ? "unknown error" : err);
    }
    return std::string(nft_ctx_get_output_buffer(ctx.get()));
}

Status apply_firewall(const NetworkDef& def) {
    const std::string rules = firewall_ruleset(def);
    if (rules.empty()) return remove_firewall(def.name);
    auto r = nft_run(rules);
    if (!r) return std::unexpected(r.error().context(fmt::format("cannot set up the firewall rules of network '{}'", def.name)));
    return {};
}

Status remove_firewall(std::string_view network_name) {
    const std::string table = firewall_table(network_name);
    auto r = nft_run(fmt::format("add table inet {0}\ndelete table inet {0}\n", table));
    if (!r) return std::unexpected(r.error().context(fmt::format("cannot remove the firewall rules of network '{}'", network_name)));
    return {};
}

Result<std::vector<std::string>> list_firewalls() {
    auto out = nft_run("list tables inet\n");
    if (!out) return std::unexpected(out.error().context("cannot list vireo's firewall tables"));
    std::vector<std::string> names;
    std::istringstream in(*out);
    std::string word, family, table;
    while (in >> word >> family >> table) {
        if (word != "table" || family != "inet") continue;
        if (auto n = network_of_table(table)) names.push_back(*n);
    }
    return names;
}

bool needs_ip_forwarding(const NetworkDef& def, bool v6) {
    const auto m = def.forward.mode;
    if (m != ForwardMode::Nat && m != ForwardMode::Route && m != ForwardMode::Open) return false;
    for (const auto& ip : def.ips)
        if (ip.is_v6() == v6) return true;
    return false;
}

}  // namespace vireo::network
