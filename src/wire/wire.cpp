#include "wire/wire.hpp"

#include <array>
#include <tuple>
#include <utility>

#include "wire/wire_fields.hpp"

namespace vireo::wire {

using nlohmann::json;

namespace {


using fields::get;
using fields::missing;
using fields::optional;
using fields::plain_from_json;
using fields::required;

// The field tables of the wire structs (uuid, state and times, which need a
// conversion, are handled by hand).
using driver::DiskInfo;
using driver::DomainSummary;
using driver::InterfaceInfo;
using driver::NodeInfo;
using driver::VersionInfo;

const auto kSummaryFields = std::make_tuple(
    required("name", &DomainSummary::name), required("id", &DomainSummary::id),
    optional("reason", &DomainSummary::reason), optional("persistent", &DomainSummary::persistent),
    optional("autostart", &DomainSummary::autostart), optional("managed_save", &DomainSummary::managed_save),
    optional("title", &DomainSummary::title), optional("max_memory_kib", &DomainSummary::max_memory_kib),
    optional("memory_kib", &DomainSummary::memory_kib), optional("vcpus", &DomainSummary::vcpus),
    optional("cpu_time_ns", &DomainSummary::cpu_time_ns), optional("os_type", &DomainSummary::os_type));
const auto kNodeFields = std::make_tuple(
    required("model", &NodeInfo::model), required("memory_kib", &NodeInfo::memory_kib),
    required("cpus", &NodeInfo::cpus), optional("mhz", &NodeInfo::mhz), optional("nodes", &NodeInfo::nodes),
    optional("sockets", &NodeInfo::sockets), optional("cores", &NodeInfo::cores),
    optional("threads", &NodeInfo::threads));
const auto kVersionFields = std::make_tuple(required("library", &VersionInfo::library),
                                            optional("daemon", &VersionInfo::daemon),
                                            optional("hypervisor", &VersionInfo::hypervisor));
const auto kDiskFields = std::make_tuple(required("target", &DiskInfo::target), optional("type", &DiskInfo::type),
                                         optional("device", &DiskInfo::device),
                                         optional("source", &DiskInfo::source));
const auto kInterfaceFields = std::make_tuple(
    required("mac", &InterfaceInfo::mac), optional("name", &InterfaceInfo::name),
    optional("type", &InterfaceInfo::type), optional("source", &InterfaceInfo::source),
    optional("model", &InterfaceInfo::model));

using driver::InterfaceAddress;
using driver::InterfaceStats;
const auto kStatsFields = std::make_tuple(
    required("name", &InterfaceStats::name), optional("rx_bytes", &InterfaceStats::rx_bytes),
    optional("rx_packets", &InterfaceStats::rx_packets), optional("rx_errs", &InterfaceStats::rx_errs),
    optional("rx_drop", &InterfaceStats::rx_drop), optional("tx_bytes", &InterfaceStats::tx_bytes),
    optional("tx_packets", &InterfaceStats::tx_packets), optional("tx_errs", &InterfaceStats::tx_errs),
    optional("tx_drop", &InterfaceStats::tx_drop));
const auto kAddressFields = std::make_tuple(
    required("address", &InterfaceAddress::address), optional("name", &InterfaceAddress::name),
    optional("mac", &InterfaceAddress::mac), optional("type", &InterfaceAddress::type),
    optional("prefix", &InterfaceAddress::prefix));
using driver::SnapshotSummary;
const auto kSnapshotFields = std::make_tuple(
    required("name", &SnapshotSummary::name), optional("parent", &SnapshotSummary::parent),
    optional("state", &SnapshotSummary::state), optional("creation_time", &SnapshotSummary::creation_time),
    optional("location", &SnapshotSummary::location), optional("current", &SnapshotSummary::current));

using driver::BlockStats;
const auto kBlockStatsFields = std::make_tuple(
    optional("device", &BlockStats::device), optional("rd_req", &BlockStats::rd_req),
    optional("rd_bytes", &BlockStats::rd_bytes), optional("wr_req", &BlockStats::wr_req),
    optional("wr_bytes", &BlockStats::wr_bytes), optional("flush_operations", &BlockStats::flush_operations),
    optional("rd_total_times", &BlockStats::rd_total_times), optional("wr_total_times", &BlockStats::wr_total_times),
    optional("flush_total_times", &BlockStats::flush_total_times));
using driver::BlockInfo;
const auto kBlockInfoFields = std::make_tuple(required("device", &BlockInfo::device), optional("capacity", &BlockInfo::capacity),
                                              optional("allocation", &BlockInfo::allocation),
                                              optional("physical", &BlockInfo::physical));
using driver::GuestTime;
const auto kGuestTimeFields = std::make_tuple(required("seconds", &GuestTime::seconds), optional("nseconds", &GuestTime::nseconds));
using driver::FsInfo;
const auto kFsInfoFields = std::make_tuple(required("mountpoint", &FsInfo::mountpoint), optional("name", &FsInfo::name),
                                           optional("type", &FsInfo::type), optional("targets", &FsInfo::targets));
using driver::FsCount;
const auto kFsCountFields = std::make_tuple(required("filesystems", &FsCount::filesystems));
using driver::GuestVcpus;
const auto kGuestVcpusFields = std::make_tuple(required("vcpus", &GuestVcpus::vcpus), optional("online", &GuestVcpus::online),
                                               optional("offlinable", &GuestVcpus::offlinable));
using driver::TypedParam;
const auto kTypedParamFields = std::make_tuple(required("field", &TypedParam::field), required("type", &TypedParam::type),
                                               required("value", &TypedParam::value));
using driver::VcpuInfo;
const auto kVcpuFields = std::make_tuple(required("id", &VcpuInfo::id), optional("cpu", &VcpuInfo::cpu),
                                         optional("state", &VcpuInfo::state), optional("cpu_time_ns", &VcpuInfo::cpu_time_ns),
                                         optional("affinity", &VcpuInfo::affinity));
using driver::MemoryStat;
const auto kMemoryStatFields = std::make_tuple(required("tag", &MemoryStat::tag), required("value", &MemoryStat::value));

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

json to_json(const driver::DomainSummary& s) {
    json j = fields::to_json(s, kSummaryFields);
    j["uuid"] = s.uuid.str();
    j["state"] = driver::state_name(s.state);
    return j;
}

json to_json(const driver::NodeInfo& n) { return fields::to_json(n, kNodeFields); }

json to_json(const driver::VersionInfo& v) { return fields::to_json(v, kVersionFields); }

json to_json(const driver::DomainEvent& e) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(e.when.time_since_epoch()).count();
    json j{{"type", driver::event_name(e.type)},
           {"detail", e.detail},
           {"domain", e.domain},
           {"uuid", e.uuid.str()},
           {"time_ms", ms}};
    if (e.type == driver::EventType::MemoryDeviceSizeChange) j["size_kib"] = e.size_kib;
    return j;
}

json to_json(const driver::DiskInfo& d) { return fields::to_json(d, kDiskFields); }

json to_json(const driver::InterfaceInfo& i) { return fields::to_json(i, kInterfaceFields); }

json to_json(const driver::InterfaceStats& s) { return fields::to_json(s, kStatsFields); }

json to_json(const driver::BlockStats& s) { return fields::to_json(s, kBlockStatsFields); }

json to_json(const driver::BlockInfo& b) { return fields::to_json(b, kBlockInfoFields); }

json to_json(const driver::InterfaceAddress& a) { return fields::to_json(a, kAddressFields); }

json to_json(const driver::SnapshotSummary& s) { return fields::to_json(s, kSnapshotFields); }

json to_json(const driver::VcpuInfo& v) { return fields::to_json(v, kVcpuFields); }
json to_json(const driver::GuestTime& t) { return fields::to_json(t, kGuestTimeFields); }
json to_json(const driver::FsInfo& f) { return fields::to_json(f, kFsInfoFields); }
json to_json(const driver::FsCount& c) { return fields::to_json(c, kFsCountFields); }
json to_json(const driver::GuestVcpus& v) { return fields::to_json(v, kGuestVcpusFields); }
json to_json(const driver::TypedParam& p) { return fields::to_json(p, kTypedParamFields); }

json to_json(const driver::MemoryStat& m) { return fields::to_json(m, kMemoryStatFields); }

json to_json(const Error& e) { return json{{"code", to_string(e.code)}, {"message", e.full_message()}}; }

Result<driver::DomainSummary> summary_from_json(const json& j) {
    static constexpr std::string_view what = "domain";
    driver::DomainSummary s;
    std::string uuid, state;
    if (!get(j, "uuid", uuid)) return missing(what, "uuid");
    auto parsed = Uuid::parse(uuid);
    if (!parsed) return missing(what, "uuid");
    s.uuid = *parsed;
    if (!get(j, "state", state)) return missing(what, "state");
    auto st = driver::state_from_name(state);
    if (!st) return missing(what, "state");
    s.state = *st;
    VIREO_TRY(fields::from_json(j, what, kSummaryFields, s));
    return s;
}

Result<driver::NodeInfo> node_info_from_json(const json& j) {
    return plain_from_json<driver::NodeInfo>(j, "node info", kNodeFields);
}

Result<driver::VersionInfo> version_from_json(const json& j) {
    return plain_from_json<driver::VersionInfo>(j, "version", kVersionFields);
}

Result<driver::DomainEvent> event_from_json(const json& j) {
    static constexpr std::string_view what = "event";
    driver::DomainEvent e;
    std::string type, uuid;
    if (!j.is_object() || !get(j, "type", type)) return missing(what, "type");
    auto t = event_type_from_name(type);
    if (!t) return missing(what, "type");
    e.type = *t;
    get(j, "detail", e.detail);
    if (!get(j, "domain", e.domain)) return missing(what, "domain");
    if (get(j, "uuid", uuid)) {
        if (auto u = Uuid::parse(uuid)) e.uuid = *u;
    }
    std::int64_t ms = 0;
    if (get(j, "time_ms", ms)) e.when = std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
    get(j, "size_kib", e.size_kib);
    return e;
}

Result<driver::DiskInfo> disk_from_json(const json& j) {
    return plain_from_json<driver::DiskInfo>(j, "disk", kDiskFields);
}

Result<driver::InterfaceInfo> interface_from_json(const json& j) {
    return plain_from_json<driver::InterfaceInfo>(j, "interface", kInterfaceFields);
}

Result<driver::InterfaceStats> interface_stats_from_json(const json& j) {
    return plain_from_json<driver::InterfaceStats>(j, "interface statistics", kStatsFields);
}

Result<driver::BlockStats> block_stats_from_json(const json& j) {
    return plain_from_json<driver::BlockStats>(j, "block statistics", kBlockStatsFields);
}

Result<driver::BlockInfo> block_info_from_json(const json& j) {
    return plain_from_json<driver::BlockInfo>(j, "block info", kBlockInfoFields);
}

Result<driver::GuestTime> guest_time_from_json(const json& j) {
    return plain_from_json<driver::GuestTime>(j, "guest time", kGuestTimeFields);
}

Result<driver::FsInfo> fs_info_from_json(const json& j) {
    return plain_from_json<driver::FsInfo>(j, "filesystem", kFsInfoFields);
}

Result<driver::FsCount> fs_count_from_json(const json& j) {
    return plain_from_json<driver::FsCount>(j, "filesystem count", kFsCountFields);
}

Result<driver::GuestVcpus> guest_vcpus_from_json(const json& j) {
    return plain_from_json<driver::GuestVcpus>(j, "guest vCPUs", kGuestVcpusFields);
}

Result<driver::TypedParam> typed_param_from_json(const json& j) {
    return plain_from_json<driver::TypedParam>(j, "typed parameter", kTypedParamFields);
}

Result<driver::VcpuInfo> vcpu_info_from_json(const json& j) {
    return plain_from_json<driver::VcpuInfo>(j, "vCPU information", kVcpuFields);
}

Result<driver::MemoryStat> memory_stat_from_json(const json& j) {
    return plain_from_json<driver::MemoryStat>(j, "memory statistic", kMemoryStatFields);
}

Result<driver::InterfaceAddress> interface_address_from_json(const json& j) {
    return plain_from_json<driver::InterfaceAddress>(j, "interface address", kAddressFields);
}

Result<driver::SnapshotSummary> snapshot_from_json(const json& j) {
    return plain_from_json<driver::SnapshotSummary>(j, "domain snapshot", kSnapshotFields);
}

Error error_from_body(unsigned http_status, std::string_view body) {
    auto j = json::parse(body, nullptr, /*allow_exceptions=*/false);
    std::string code, message;
    if (j.is_object() && get(j, "code", code) && get(j, "message", message))
        return Error{error_code_from_string(code), std::move(message)};
    std::string excerpt(body.substr(0, 200));
    return Error{ErrorCode::Protocol,
                 fmt::format("vireod answered HTTP {} with an unreadable error body: '{}'", http_status, excerpt)};
}

Result<json> parse_json(std::string_view text) {
    auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return fail(ErrorCode::Protocol, "malformed JSON document: '{}'", text.substr(0, 200));
    return j;
}

unsigned http_status_for(ErrorCode code) {
    switch (code) {
        case ErrorCode::InvalidArg:
        case ErrorCode::XmlError: return 400;
        case ErrorCode::PermissionDenied: return 403;
        case ErrorCode::NoDomain:
        case ErrorCode::NoPool:
        case ErrorCode::NoVolume:
        case ErrorCode::NoNetwork:
        case ErrorCode::NotFound: return 404;
        case ErrorCode::Exists:
        case ErrorCode::InvalidState:
        case ErrorCode::Busy: return 409;
        case ErrorCode::Unsupported: return 501;
        case ErrorCode::Hypervisor:
        case ErrorCode::Connection: return 502;
        case ErrorCode::Timeout: return 504;
        default: return 500;
    }
}

std::optional<driver::EventType> event_type_from_name(std::string_view name) { return driver::event_type_from_name(name); }

std::string percent_encode(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                          c == '.' || c == '_' || c == '~';
        if (unreserved) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

std::optional<std::string> percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        if (i + 2 >= text.size()) return std::nullopt;
        int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

std::optional<std::map<std::string, std::string, std::less<>>> parse_query(std::string_view query) {
    std::map<std::string, std::string, std::less<>> out;
    while (!query.empty()) {
        auto amp = query.find('&');
        auto part = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (part.empty()) continue;
        auto eq = part.find('=');
        auto key = percent_decode(part.substr(0, eq));
        auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1));
        if (!key || !value) return std::nullopt;
        out[*key] = *value;
    }
    return out;
}

bool query_flag(const std::map<std::string, std::string, std::less<>>& query, std::string_view key) {
    auto it = query.find(key);
    if (it == query.end()) return false;
    return it->second == "1" || it->second == "true" || it->second == "yes" || it->second.empty();
}

}  // namespace vireo::wire
