#include "client/wire.hpp"

#include <array>
#include <utility>

namespace vireo::wire {

using nlohmann::json;

namespace {

constexpr std::array<std::pair<driver::EventType, std::string_view>, 9> kEvents{{
    {driver::EventType::Defined, "Defined"},
    {driver::EventType::Undefined, "Undefined"},
    {driver::EventType::Started, "Started"},
    {driver::EventType::Suspended, "Suspended"},
    {driver::EventType::Resumed, "Resumed"},
    {driver::EventType::Stopped, "Stopped"},
    {driver::EventType::Shutdown, "Shutdown"},
    {driver::EventType::PmSuspended, "PMSuspended"},
    {driver::EventType::Crashed, "Crashed"},
}};

std::unexpected<Error> missing(std::string_view what, std::string_view field) {
    return fail(ErrorCode::Protocol, "malformed {} from vireod: field '{}' missing or of the wrong type", what,
                field);
}

// Typed field readers: false when the field is absent or has another type.
bool get(const json& j, const char* key, std::string& out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return false;
    out = it->get<std::string>();
    return true;
}
bool get(const json& j, const char* key, bool& out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_boolean()) return false;
    out = it->get<bool>();
    return true;
}
template <class Int>
bool get_int(const json& j, const char* key, Int& out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) return false;
    out = it->get<Int>();
    return true;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

json to_json(const driver::DomainSummary& s) {
    return json{{"name", s.name},
                {"uuid", s.uuid.str()},
                {"id", s.id},
                {"state", driver::state_name(s.state)},
                {"reason", s.reason},
                {"persistent", s.persistent},
                {"autostart", s.autostart},
                {"managed_save", s.managed_save},
                {"title", s.title},
                {"max_memory_kib", s.max_memory_kib},
                {"memory_kib", s.memory_kib},
                {"vcpus", s.vcpus},
                {"cpu_time_ns", s.cpu_time_ns},
                {"os_type", s.os_type}};
}

json to_json(const driver::NodeInfo& n) {
    return json{{"model", n.model}, {"memory_kib", n.memory_kib}, {"cpus", n.cpus},       {"mhz", n.mhz},
                {"nodes", n.nodes}, {"sockets", n.sockets},       {"cores", n.cores},     {"threads", n.threads}};
}

json to_json(const driver::VersionInfo& v) {
    return json{{"library", v.library}, {"daemon", v.daemon}, {"hypervisor", v.hypervisor}};
}

json to_json(const driver::DomainEvent& e) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(e.when.time_since_epoch()).count();
    return json{{"type", driver::event_name(e.type)},
                {"detail", e.detail},
                {"domain", e.domain},
                {"uuid", e.uuid.str()},
                {"time_ms", ms}};
}

json to_json(const driver::DiskInfo& d) {
    return json{{"type", d.type}, {"device", d.device}, {"target", d.target}, {"source", d.source}};
}

json to_json(const driver::InterfaceInfo& i) {
    return json{{"name", i.name}, {"type", i.type}, {"source", i.source}, {"model", i.model}, {"mac", i.mac}};
}

json to_json(const Error& e) { return json{{"code", to_string(e.code)}, {"message", e.full_message()}}; }

Result<driver::DomainSummary> summary_from_json(const json& j) {
    static constexpr std::string_view what = "domain";
    if (!j.is_object()) return missing(what, "(object)");
    driver::DomainSummary s;
    std::string uuid, state;
    if (!get(j, "name", s.name)) return missing(what, "name");
    if (!get(j, "uuid", uuid)) return missing(what, "uuid");
    auto parsed = Uuid::parse(uuid);
    if (!parsed) return missing(what, "uuid");
    s.uuid = *parsed;
    if (!get_int(j, "id", s.id)) return missing(what, "id");
    if (!get(j, "state", state)) return missing(what, "state");
    auto st = driver::state_from_name(state);
    if (!st) return missing(what, "state");
    s.state = *st;
    // Optional fields keep their defaults when a (newer/older) daemon omits them.
    get(j, "reason", s.reason);
    get(j, "persistent", s.persistent);
    get(j, "autostart", s.autostart);
    get(j, "managed_save", s.managed_save);
    get(j, "title", s.title);
    get_int(j, "max_memory_kib", s.max_memory_kib);
    get_int(j, "memory_kib", s.memory_kib);
    get_int(j, "vcpus", s.vcpus);
    get_int(j, "cpu_time_ns", s.cpu_time_ns);
    get(j, "os_type", s.os_type);
    return s;
}

Result<driver::NodeInfo> node_info_from_json(const json& j) {
    static constexpr std::string_view what = "node info";
    driver::NodeInfo n;
    if (!j.is_object() || !get(j, "model", n.model)) return missing(what, "model");
    if (!get_int(j, "memory_kib", n.memory_kib)) return missing(what, "memory_kib");
    if (!get_int(j, "cpus", n.cpus)) return missing(what, "cpus");
    get_int(j, "mhz", n.mhz);
    get_int(j, "nodes", n.nodes);
    get_int(j, "sockets", n.sockets);
    get_int(j, "cores", n.cores);
    get_int(j, "threads", n.threads);
    return n;
}

Result<driver::VersionInfo> version_from_json(const json& j) {
    driver::VersionInfo v;
    if (!j.is_object() || !get(j, "library", v.library)) return missing("version", "library");
    get(j, "daemon", v.daemon);
    get(j, "hypervisor", v.hypervisor);
    return v;
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
    if (get_int(j, "time_ms", ms))
        e.when = std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
    return e;
}

Result<driver::DiskInfo> disk_from_json(const json& j) {
    driver::DiskInfo d;
    if (!j.is_object() || !get(j, "target", d.target)) return missing("disk", "target");
    get(j, "type", d.type);
    get(j, "device", d.device);
    get(j, "source", d.source);
    return d;
}

Result<driver::InterfaceInfo> interface_from_json(const json& j) {
    driver::InterfaceInfo i;
    if (!j.is_object() || !get(j, "mac", i.mac)) return missing("interface", "mac");
    get(j, "name", i.name);
    get(j, "type", i.type);
    get(j, "source", i.source);
    get(j, "model", i.model);
    return i;
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

std::optional<driver::EventType> event_type_from_name(std::string_view name) {
    for (const auto& [type, text] : kEvents)
        if (text == name) return type;
    return std::nullopt;
}

std::string_view shutdown_mode_name(driver::ShutdownMode m) {
    switch (m) {
        case driver::ShutdownMode::Acpi: return "acpi";
        case driver::ShutdownMode::Agent: return "agent";
        case driver::ShutdownMode::Default: break;
    }
    return "default";
}

std::optional<driver::ShutdownMode> shutdown_mode_from_name(std::string_view name) {
    if (name.empty() || name == "default") return driver::ShutdownMode::Default;
    if (name == "acpi") return driver::ShutdownMode::Acpi;
    if (name == "agent") return driver::ShutdownMode::Agent;
    return std::nullopt;
}

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
