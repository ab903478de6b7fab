// vireo-lease-helper: dnsmasq's dhcp-script for vireo's networks. It
// records each lease change in the network's status file and wakes the
// daemon up; the contract is in network/leases.hpp.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "network/leases.hpp"
#include "util/fd.hpp"

using namespace vireo;

namespace {

// Best effort by design (leases.hpp): the status file already holds the change.
void notify(const char* socket_path, const std::string& message) {
    sockaddr_un addr{};
    if (std::strlen(socket_path) >= sizeof addr.sun_path) return;
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return;
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, socket_path);
    (void)::sendto(fd.get(), message.data(), message.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
}

}  // namespace

int main(int argc, char** argv) {
    const char* status = std::getenv(network::kLeaseStatusEnv);
    const char* net = std::getenv(network::kLeaseNetworkEnv);
    if (!status || !*status || !net || !*net) {
        std::fprintf(stderr, "vireo-lease-helper: %s and %s must be set (dnsmasq started by vireod sets them)\n",
                     network::kLeaseStatusEnv, network::kLeaseNetworkEnv);
        return 1;
    }
    const std::vector<std::string> args(argv + 1, argv + argc);
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    auto event = network::lease_event_from_dnsmasq(args, [](const char* n) -> const char* { return std::getenv(n); }, now);
    if (!event) {
        std::fprintf(stderr, "vireo-lease-helper: %s\n", event.error().message.c_str());
        return 1;
    }
    if (!*event) return 0;
    if (auto st = network::apply_lease_event(status, **event, now); !st) {
        std::fprintf(stderr, "vireo-lease-helper: network '%s': %s\n", net, st.error().message.c_str());
        return 1;
    }
    if (const char* sock = std::getenv(network::kLeaseNotifyEnv); sock && *sock) notify(sock, network::lease_event_json(net, **event));
    return 0;
}
