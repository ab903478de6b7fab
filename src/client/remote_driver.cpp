#include "client/remote_driver.hpp"

#include <nlohmann/json.hpp>

#include "wire/summary_list.hpp"
#include "wire/wire.hpp"

#ifndef VIREO_VERSION
#define VIREO_VERSION "0.0.0"
#endif

namespace vireo::client {

using nlohmann::json;

namespace {

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kXml = "application/xml";

std::string flag(bool b) { return b ? "1" : "0"; }

std::string_view metadata_kind_name(driver::MetadataKind k) {
    return k == driver::MetadataKind::Title ? "title" : "description";
}

}  // namespace

RemoteDriver::RemoteDriver(std::string uri, std::shared_ptr<Transport> transport)
    : uri_(std::move(uri)),
      transport_(std::move(transport)),
      http_(transport_),
      api_([this](std::string_view method, const std::string& target, std::string_view body,
                  std::string_view content_type) { return call(method, target, body, content_type); }),
      pools_(api_, transport_) {}

Status RemoteDriver::open() {
    std::lock_guard lk(mutex_);
    return http_.open();
}

std::string RemoteDriver::domain_path(std::string_view ref) {
    return fmt::format("{}/domains/{}", wire::kApiPrefix, wire::percent_encode(ref));
}

Result<HttpResponse> RemoteDriver::call(std::string_view method, const std::string& target, std::string_view body,
                                        std::string_view content_type) {
    Result<HttpResponse> res;
    {
        std::lock_guard lk(mutex_);
        res = http_.request(method, target, body, content_type);
    }
    if (!res) return res;
    if (res->status >= 200 && res->status < 300) return res;
    return std::unexpected(wire::error_from_body(res->status, res->body));
}

Result<driver::DomainSummary> RemoteDriver::call_summary(std::string_view method, const std::string& target,
                                                         std::string_view body, std::string_view content_type) {
    return api_.call_decoded(wire::summary_from_json, method, target, body, content_type);
}

std::string RemoteDriver::uri() const { return uri_; }

Result<driver::VersionInfo> RemoteDriver::version() {
    auto j = api_.call_json("GET", fmt::format("{}/host/version", wire::kApiPrefix));
    if (!j) return std::unexpected(j.error());
    auto v = wire::version_from_json(*j);
    if (!v) return v;
    v->library = VIREO_VERSION;
    return v;
}

Result<std::string> RemoteDriver::hostname() {
    auto j = api_.call_json("GET", fmt::format("{}/host/hostname", wire::kApiPrefix));
    if (!j) return std::unexpected(j.error());
    if (!j->is_object() || !j->contains("hostname") || !(*j)["hostname"].is_string())
        return fail(ErrorCode::Protocol, "malformed hostname answer from vireod");
    return (*j)["hostname"].get<std::string>();
}

Result<driver::NodeInfo> RemoteDriver::node_info() {
    auto j = api_.call_json("GET", fmt::format("{}/host/nodeinfo", wire::kApiPrefix));
    if (!j) return std::unexpected(j.error());
    return wire::node_info_from_json(*j);
}

Result<std::string> RemoteDriver::capabilities_xml() {
    auto res = call("GET", fmt::format("{}/host/capabilities", wire::kApiPrefix));
    if (!res) return std::unexpected(res.error());
    return std::move(res->body);
}

Result<std::string> RemoteDriver::domain_capabilities_xml(std::string_view emulator, std::string_view arch,
                                                          std::string_view machine, std::string_view virttype) {
    auto target = fmt::format("{}/host/domcapabilities?emulator={}&arch={}&machine={}&virttype={}", wire::kApiPrefix,
                              wire::percent_encode(emulator), wire::percent_encode(arch),
                              wire::percent_encode(machine), wire::percent_encode(virttype));
    auto res = call("GET", target);
    if (!res) return std::unexpected(res.error());
    return std::move(res->body);
}

Result<std::vector<driver::DomainSummary>> RemoteDriver::list_domains() {
    // Decoded straight from the text (summary_list.hpp): no JSON tree.
    auto res = call("GET", fmt::format("{}/domains", wire::kApiPrefix));
    if (!res) return std::unexpected(res.error());
    return wire::summaries_from_json(res->body);
}

Result<driver::DomainSummary> RemoteDriver::lookup_domain(std::string_view ref) {
    return call_summary("GET", domain_path(ref), {}, {});
}

Result<std::string> RemoteDriver::domain_xml(std::string_view ref, bool inactive) {
    auto res = call("GET", fmt::format("{}/xml?inactive={}", domain_path(ref), flag(inactive)));
    if (!res) return std::unexpected(res.error());
    return std::move(res->body);
}

Result<std::vector<driver::DiskInfo>> RemoteDriver::domain_disks(std::string_view ref, bool inactive) {
    auto j = api_.call_json("GET", fmt::format("{}/disks?inactive={}", domain_path(ref), flag(inactive)));
    if (!j) return std::unexpected(j.error());
    return decode_array<driver::DiskInfo>(*j, wire::disk_from_json);
}

Result<std::vector<driver::InterfaceInfo>> RemoteDriver::domain_interfaces(std::string_view ref, bool inactive) {
    auto j = api_.call_json("GET", fmt::format("{}/interfaces?inactive={}", domain_path(ref), flag(inactive)));
    if (!j) return std::unexpected(j.error());
    return decode_array<driver::InterfaceInfo>(*j, wire::interface_from_json);
}

Result<driver::DomainSummary> RemoteDriver::define_domain(std::string_view xml, bool validate) {
    return call_summary("POST", fmt::format("{}/domains?validate={}", wire::kApiPrefix, flag(validate)), xml, kXml);
}

Status RemoteDriver::undefine_domain(std::string_view ref, driver::UndefineFlags flags) {
    return api_.call_status("DELETE", fmt::format("{}?managed_save={}&nvram={}&remove_all_storage={}",
                                                  domain_path(ref), flag(flags.managed_save), flag(flags.nvram),
                                                  flag(flags.remove_all_storage)));
}

Result<driver::DomainSummary> RemoteDriver::create_domain(std::string_view xml, driver::StartFlags flags) {
    return call_summary("POST",
                        fmt::format("{}/domains:create?paused={}&force_boot={}", wire::kApiPrefix, flag(flags.paused),
                                    flag(flags.force_boot)),
                        xml, kXml);
}

Status RemoteDriver::set_autostart(std::string_view ref, bool enabled) {
    return api_.call_status("PUT", domain_path(ref) + "/autostart", json{{"enabled", enabled}}.dump(), kJson);
}

Result<std::string> RemoteDriver::get_metadata(std::string_view ref, driver::MetadataKind kind, bool inactive) {
    auto j = api_.call_json("GET", fmt::format("{}/metadata?kind={}&inactive={}", domain_path(ref),
                                               metadata_kind_name(kind), flag(inactive)));
    if (!j) return std::unexpected(j.error());
    if (!j->is_object() || !j->contains("text") || !(*j)["text"].is_string())
        return fail(ErrorCode::Protocol, "malformed metadata answer from vireod");
    return (*j)["text"].get<std::string>();
}

Status RemoteDriver::set_metadata(std::string_view ref, driver::MetadataKind kind, std::string_view text, bool live,
                                  bool config) {
    json body{{"kind", metadata_kind_name(kind)}, {"text", text}, {"live", live}, {"config", config}};
    return api_.call_status("PUT", domain_path(ref) + "/metadata", body.dump(), kJson);
}

Status RemoteDriver::start_domain(std::string_view ref, driver::StartFlags flags) {
    json body{{"paused", flags.paused}, {"force_boot", flags.force_boot}};
    return api_.call_status("POST", domain_path(ref) + "/start", body.dump(), kJson);
}

Status RemoteDriver::shutdown_domain(std::string_view ref, driver::ShutdownMode mode) {
    return api_.call_status("POST", domain_path(ref) + "/shutdown",
                            json{{"mode", wire::shutdown_mode_name(mode)}}.dump(), kJson);
}

Status RemoteDriver::reboot_domain(std::string_view ref, driver::ShutdownMode mode) {
    return api_.call_status("POST", domain_path(ref) + "/reboot",
                            json{{"mode", wire::shutdown_mode_name(mode)}}.dump(), kJson);
}

Status RemoteDriver::reset_domain(std::string_view ref) {
    return api_.call_status("POST", domain_path(ref) + "/reset");
}

Status RemoteDriver::destroy_domain(std::string_view ref, driver::DestroyFlags flags) {
    return api_.call_status("POST", domain_path(ref) + "/destroy", json{{"graceful", flags.graceful}}.dump(), kJson);
}

Status RemoteDriver::suspend_domain(std::string_view ref) {
    return api_.call_status("POST", domain_path(ref) + "/suspend");
}

Status RemoteDriver::resume_domain(std::string_view ref) {
    return api_.call_status("POST", domain_path(ref) + "/resume");
}

Status RemoteDriver::save_domain(std::string_view ref, std::string_view path) {
    return api_.call_status("POST", domain_path(ref) + "/save", json{{"path", path}}.dump(), kJson);
}

Result<driver::DomainSummary> RemoteDriver::restore_domain(std::string_view path, bool paused) {
    return call_summary("POST", fmt::format("{}/domains:restore", wire::kApiPrefix),
                        json{{"path", path}, {"paused", paused}}.dump(), kJson);
}

Status RemoteDriver::managed_save(std::string_view ref) {
    return api_.call_status("POST", domain_path(ref) + "/managedsave");
}

Status RemoteDriver::managed_save_remove(std::string_view ref) {
    return api_.call_status("DELETE", domain_path(ref) + "/managedsave");
}

Result<UniqueFd> RemoteDriver::open_console(std::string_view ref, std::string_view device) {
    return open_console_stream(transport_,
                               fmt::format("{}/console?device={}", domain_path(ref), wire::percent_encode(device)));
}

Result<std::unique_ptr<driver::Subscription>> RemoteDriver::subscribe(
    std::function<void(const driver::DomainEvent&)> callback) {
    return open_event_stream(transport_, fmt::format("{}/events", wire::kApiPrefix),
                             [cb = std::move(callback)](std::string_view text) {
                                 auto j = wire::parse_json(text);
                                 if (!j) return;
                                 auto event = wire::event_from_json(*j);
                                 if (event) cb(*event);
                             });
}

}  // namespace vireo::client
