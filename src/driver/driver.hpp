// The hypervisor-neutral API of vireo: what one connection can do.
//
// Every connection URI resolves to one Driver:
//   test:///default           -> TestDriver, in-memory, in the client process
//   qemu:///session|system    -> RemoteDriver (src/client), which speaks HTTP to
//                                vireod, whose server calls the QemuDriver (src/qemu)
// so the CLI is written once against this interface, and errors raised inside
// the daemon reach the client unchanged (code + message).
//
// Objects are addressed by a "reference" string as virsh does: a domain name,
// a UUID, or a numeric id of a running domain, tried in that order
// (see resolve rules in registry.hpp).
//
// Definitions travel as libvirt XML documents (src/conf parses and formats
// them); everything else is typed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "driver/pool_api.hpp"
#include "driver/types.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/uuid.hpp"

namespace vireo::driver {

class Driver {
public:
    virtual ~Driver() = default;

    // --- connection / host -------------------------------------------------
    virtual std::string uri() const = 0;
    virtual Result<VersionInfo> version() = 0;
    virtual Result<std::string> hostname() = 0;
    virtual Result<NodeInfo> node_info() = 0;
    virtual Result<std::string> capabilities_xml() = 0;
    // All arguments optional (empty = default for the host).
    virtual Result<std::string> domain_capabilities_xml(std::string_view emulator, std::string_view arch,
                                                        std::string_view machine, std::string_view virttype) = 0;

    // --- domains: queries (never wait behind a running job) ----------------
    // Every domain, active and inactive, with its state, in one call.
    virtual Result<std::vector<DomainSummary>> list_domains() = 0;
    virtual Result<DomainSummary> lookup_domain(std::string_view ref) = 0;
    virtual Result<std::string> domain_xml(std::string_view ref, bool inactive) = 0;
    virtual Result<std::vector<DiskInfo>> domain_disks(std::string_view ref, bool inactive) = 0;
    virtual Result<std::vector<InterfaceInfo>> domain_interfaces(std::string_view ref, bool inactive) = 0;

    // --- domains: definitions ----------------------------------------------
    // Define or redefine (same name and uuid) a persistent domain.
    virtual Result<DomainSummary> define_domain(std::string_view xml, bool validate) = 0;
    virtual Status undefine_domain(std::string_view ref, UndefineFlags flags) = 0;
    // Create and start a transient domain (gone once it stops).
    virtual Result<DomainSummary> create_domain(std::string_view xml, StartFlags flags) = 0;
    virtual Status set_autostart(std::string_view ref, bool enabled) = 0;
    // The title / description text; empty when not set.
    virtual Result<std::string> get_metadata(std::string_view ref, MetadataKind kind, bool inactive) = 0;
    // live/config: which definition(s) to change; both false = current state's.
    virtual Status set_metadata(std::string_view ref, MetadataKind kind, std::string_view text, bool live,
                                bool config) = 0;

    // --- domains: lifecycle --------------------------------------------------
    virtual Status start_domain(std::string_view ref, StartFlags flags) = 0;
    // Request a shutdown and return at once (as virsh does).
    virtual Status shutdown_domain(std::string_view ref, ShutdownMode mode) = 0;
    virtual Status reboot_domain(std::string_view ref, ShutdownMode mode) = 0;
    virtual Status reset_domain(std::string_view ref) = 0;
    virtual Status destroy_domain(std::string_view ref, DestroyFlags flags) = 0;
    virtual Status suspend_domain(std::string_view ref) = 0;
    virtual Status resume_domain(std::string_view ref) = 0;
    // Save state to a file and stop the domain; restore starts it from the file.
    virtual Status save_domain(std::string_view ref, std::string_view path) = 0;
    virtual Result<DomainSummary> restore_domain(std::string_view path, bool paused) = 0;
    virtual Status managed_save(std::string_view ref) = 0;
    virtual Status managed_save_remove(std::string_view ref) = 0;

    // --- console and events --------------------------------------------------
    // A bidirectional byte stream to the domain's serial console (device
    // name as in virsh console, empty = first serial/console). The caller owns
    // the fd; closing it detaches.
    virtual Result<UniqueFd> open_console(std::string_view ref, std::string_view device) = 0;
    // Receive lifecycle events until the returned Subscription is destroyed.
    // The callback runs on a driver thread and must not block.
    virtual Result<std::unique_ptr<Subscription>> subscribe(std::function<void(const DomainEvent&)> callback) = 0;

    // --- storage --------------------------------------------------------------
    // The connection's storage pools and volumes (pool_api.hpp), owned by the
    // driver and valid as long as it is: a pool::PoolManager in the QEMU and
    // test drivers, the HTTP pool half in the RemoteDriver. Never fails; when
    // the pools could not be set up, every call returns why.
    virtual PoolApi& pools() = 0;
};

}  // namespace vireo::driver
