// The hypervisor-neutral API of vireo: what one connection can do.
//
// A Driver is a connection: a table with one handler per operation of the
// operation table (driver/ops/all.hpp). call<Op>(request) runs the handler
// installed for Op, or answers Unsupported naming the operation and the
// connection. Sub-drivers install their handlers on a connection:
//
//   test:///default         TestDriver (src/testdrv): host + domain ops, and a
//                           private pool::PoolManager for pool + volume ops
//   qemu:///session|system  client side: RemoteDriver (src/client) installs
//                           one HTTP stub per operation, derived from the table
//                           daemon side: the QEMU driver (src/qemu) installs host
//                           + domain ops, a pool::PoolManager (src/pool) pool +
//                           volume ops, the network driver (src/netdrv) network
//                           + interface ops (system daemon), on the same
//                           connection (daemon/driver_factory)
//
// so the CLI is written once against this class, and errors raised inside
// the daemon reach the client unchanged (code + message).
//
// The named methods below (start_domain, list_domains, pools().list_pools,
// ...) are one-line wrappers over call<Op> for the callers that predate the
// table; a new operation needs none: call<ops::DomainReset>({.ref = "web"}).
// Streams (console, events, volume upload/download) are operations too;
// their requests carry the callback or sink that the bytes flow through.
//
// Objects are addressed by a "reference" string as virsh does: a domain name,
// a UUID, or a numeric id of a running domain, tried in that order
// (see resolve rules in registry.hpp).
//
// Definitions travel as libvirt XML documents (src/conf parses and formats
// them); everything else is typed.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "driver/network_types.hpp"
#include "driver/ops/all.hpp"
#include "driver/pool_api.hpp"
#include "driver/pool_types.hpp"
#include "driver/types.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace vireo::driver {

// What a sub-driver installs for one operation.
template <class Op>
using Handler = std::function<Result<typename Op::Reply>(const typename Op::Request&)>;

namespace detail {
template <class L>
struct HandlerTuple;
template <class... Ops>
struct HandlerTuple<ops::List<Ops...>> {
    using type = std::tuple<Handler<Ops>...>;
};
}  // namespace detail

class Driver {
public:
    explicit Driver(std::string uri);
    virtual ~Driver();
    Driver(const Driver&) = delete;
    Driver& operator=(const Driver&) = delete;

    [[nodiscard]] const std::string& uri() const { return uri_; }

    // Run one operation. Thread-safe once the handlers are installed.
    template <class Op>
    Result<typename Op::Reply> call(const typename Op::Request& request) {
        const auto& h = std::get<ops::index_of<Op>>(handlers_);
        if (!h) return std::unexpected(unsupported(Op::info));
        return h(request);
    }

    // Install (or replace) the handler of Op. Sub-drivers do this while the
    // connection is built, before it is shared between threads.
    template <class Op>
    void on(Handler<Op> handler) {
        std::get<ops::index_of<Op>>(handlers_) = std::move(handler);
    }
    // The installed handler (empty when none), e.g. to wrap it.
    template <class Op>
    [[nodiscard]] const Handler<Op>& handler() const {
        return std::get<ops::index_of<Op>>(handlers_);
    }

    // Keep `part` (a sub-driver whose handlers are installed here) alive as
    // long as the connection; parts are destroyed after the handlers.
    void keep(std::shared_ptr<void> part) { parts_.push_back(std::move(part)); }

    // --- connection / host ---------------------------------------------------------
    Result<VersionInfo> version() { return call<ops::HostVersion>({}); }
    Result<std::string> hostname() { return call<ops::HostHostname>({}); }
    Result<NodeInfo> node_info() { return call<ops::HostNodeInfo>({}); }
    Result<std::string> capabilities_xml() { return call<ops::HostCapabilities>({}); }
    // All arguments optional (empty = default for the host).
    Result<std::string> domain_capabilities_xml(std::string_view emulator, std::string_view arch,
                                                std::string_view machine, std::string_view virttype) {
        return call<ops::HostDomainCapabilities>(
            {std::string(emulator), std::string(arch), std::string(machine), std::string(virttype)});
    }

    // --- domains: queries (never wait behind a running job) ------------------------
    Result<std::vector<DomainSummary>> list_domains() { return call<ops::DomainList>({}); }
    Result<DomainSummary> lookup_domain(std::string_view ref) { return call<ops::DomainLookup>({std::string(ref)}); }
    Result<std::string> domain_xml(std::string_view ref, bool inactive, bool security_info = false) {
        return call<ops::DomainXml>({std::string(ref), inactive, security_info});
    }
    Result<std::vector<DiskInfo>> domain_disks(std::string_view ref, bool inactive) {
        return call<ops::DomainDisks>({std::string(ref), inactive});
    }
    Result<std::vector<InterfaceInfo>> domain_interfaces(std::string_view ref, bool inactive) {
        return call<ops::DomainInterfaces>({std::string(ref), inactive});
    }

    // --- domains: definitions ---------------------------------------------------------
    Result<DomainSummary> define_domain(std::string_view xml, bool validate) {
        return call<ops::DomainDefine>({std::string(xml), validate});
    }
    Status undefine_domain(std::string_view ref, UndefineFlags f) {
        return call<ops::DomainUndefine>(
            {std::string(ref), f.managed_save, f.nvram, f.remove_all_storage, f.keep_nvram, f.tpm, f.keep_tpm,
             f.snapshots_metadata});
    }
    Result<DomainSummary> create_domain(std::string_view xml, StartFlags f) {
        return call<ops::DomainCreate>({std::string(xml), f.paused, f.force_boot});
    }
    Status set_autostart(std::string_view ref, bool enabled) {
        return call<ops::DomainSetAutostart>({std::string(ref), enabled});
    }
    Result<std::string> get_metadata(std::string_view ref, MetadataKind kind, bool inactive) {
        return call<ops::DomainGetMetadata>({std::string(ref), kind, inactive});
    }
    Status set_metadata(std::string_view ref, MetadataKind kind, std::string_view text, bool live, bool config) {
        return call<ops::DomainSetMetadata>({std::string(ref), kind, std::string(text), live, config});
    }

    // --- domains: lifecycle -------------------------------------------------------------
    Status start_domain(std::string_view ref, StartFlags f) {
        return call<ops::DomainStart>({std::string(ref), f.paused, f.force_boot});
    }
    Status shutdown_domain(std::string_view ref, ShutdownMode mode) {
        return call<ops::DomainShutdown>({std::string(ref), mode});
    }
    Status reboot_domain(std::string_view ref, ShutdownMode mode) {
        return call<ops::DomainReboot>({std::string(ref), mode});
    }
    Status reset_domain(std::string_view ref) { return call<ops::DomainReset>({std::string(ref)}); }
    Status destroy_domain(std::string_view ref, DestroyFlags f) {
        return call<ops::DomainDestroy>({std::string(ref), f.graceful});
    }
    Status suspend_domain(std::string_view ref) { return call<ops::DomainSuspend>({std::string(ref)}); }
    Status resume_domain(std::string_view ref) { return call<ops::DomainResume>({std::string(ref)}); }
    Status save_domain(std::string_view ref, std::string_view path) {
        return call<ops::DomainSave>({std::string(ref), std::string(path)});
    }
    Result<DomainSummary> restore_domain(std::string_view path, bool paused) {
        return call<ops::DomainRestore>({std::string(path), paused});
    }
    Status managed_save(std::string_view ref) { return call<ops::DomainManagedSave>({std::string(ref)}); }
    Status managed_save_remove(std::string_view ref) {
        return call<ops::DomainManagedSaveRemove>({std::string(ref)});
    }

    // --- console and events ---------------------------------------------------------------
    Result<UniqueFd> open_console(std::string_view ref, std::string_view device) {
        return call<ops::DomainConsole>({std::string(ref), std::string(device)});
    }
    Result<std::unique_ptr<Subscription>> subscribe(std::function<void(const DomainEvent&)> callback) {
        return call<ops::HostEvents>({std::move(callback)});
    }

    // --- storage ------------------------------------------------------------------------------
    // The pool and volume operations under their pool_api.hpp names.
    PoolApi& pools() { return pools_; }

private:
    Error unsupported(const ops::OpInfo& op) const;

    std::string uri_;
    std::vector<std::shared_ptr<void>> parts_;  // before handlers_: destroyed after them
    detail::HandlerTuple<ops::All>::type handlers_;
    PoolApi pools_{*this};
};

}  // namespace vireo::driver
