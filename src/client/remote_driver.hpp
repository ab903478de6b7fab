// RemoteDriver: the Driver of qemu:// URIs. Every call is one HTTP request to
// vireod over a persistent connection (see docs/api/openapi.yaml for the
// routes); errors raised in the daemon come back with their code and message
// unchanged. Thread-safe: calls from several threads are serialized on the
// one connection (open several RemoteDrivers for parallel requests).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "client/api_calls.hpp"
#include "client/http_client.hpp"
#include "client/remote_pools.hpp"
#include "client/transport.hpp"
#include "driver/driver.hpp"

namespace vireo::client {

class RemoteDriver final : public driver::Driver {
public:
    RemoteDriver(std::string uri, std::shared_ptr<Transport> transport);

    // Connect now; Connection error when the daemon cannot be reached.
    Status open();

    std::string uri() const override;
    Result<driver::VersionInfo> version() override;
    Result<std::string> hostname() override;
    Result<driver::NodeInfo> node_info() override;
    Result<std::string> capabilities_xml() override;
    Result<std::string> domain_capabilities_xml(std::string_view emulator, std::string_view arch,
                                                std::string_view machine, std::string_view virttype) override;

    Result<std::vector<driver::DomainSummary>> list_domains() override;
    Result<driver::DomainSummary> lookup_domain(std::string_view ref) override;
    Result<std::string> domain_xml(std::string_view ref, bool inactive) override;
    Result<std::vector<driver::DiskInfo>> domain_disks(std::string_view ref, bool inactive) override;
    Result<std::vector<driver::InterfaceInfo>> domain_interfaces(std::string_view ref, bool inactive) override;

    Result<driver::DomainSummary> define_domain(std::string_view xml, bool validate) override;
    Status undefine_domain(std::string_view ref, driver::UndefineFlags flags) override;
    Result<driver::DomainSummary> create_domain(std::string_view xml, driver::StartFlags flags) override;
    Status set_autostart(std::string_view ref, bool enabled) override;
    Result<std::string> get_metadata(std::string_view ref, driver::MetadataKind kind, bool inactive) override;
    Status set_metadata(std::string_view ref, driver::MetadataKind kind, std::string_view text, bool live,
                        bool config) override;

    Status start_domain(std::string_view ref, driver::StartFlags flags) override;
    Status shutdown_domain(std::string_view ref, driver::ShutdownMode mode) override;
    Status reboot_domain(std::string_view ref, driver::ShutdownMode mode) override;
    Status reset_domain(std::string_view ref) override;
    Status destroy_domain(std::string_view ref, driver::DestroyFlags flags) override;
    Status suspend_domain(std::string_view ref) override;
    Status resume_domain(std::string_view ref) override;
    Status save_domain(std::string_view ref, std::string_view path) override;
    Result<driver::DomainSummary> restore_domain(std::string_view path, bool paused) override;
    Status managed_save(std::string_view ref) override;
    Status managed_save_remove(std::string_view ref) override;

    Result<UniqueFd> open_console(std::string_view ref, std::string_view device) override;
    Result<std::unique_ptr<driver::Subscription>> subscribe(
        std::function<void(const driver::DomainEvent&)> callback) override;

    // Pool calls share this driver's connection; volume streams open their own.
    driver::PoolApi& pools() override { return pools_; }

private:
    // One exchange; non-2xx answers become the daemon's Error.
    Result<HttpResponse> call(std::string_view method, const std::string& target, std::string_view body = {},
                              std::string_view content_type = {});
    Result<driver::DomainSummary> call_summary(std::string_view method, const std::string& target,
                                               std::string_view body, std::string_view content_type);
    // "/v1/domains/<percent-encoded ref>"
    static std::string domain_path(std::string_view ref);

    std::string uri_;
    std::shared_ptr<Transport> transport_;
    std::mutex mutex_;
    HttpConnection http_;
    ApiCalls api_;  // call() with its answer decoded; shared with pools_
    RemotePools pools_;
};

}  // namespace vireo::client
