// docs/api/openapi.yaml from the operation table (see openapi.hpp).
#include "wire/openapi.hpp"

#include <iterator>
#include <map>
#include <vector>

#include <fmt/format.h>

#include "wire/http.hpp"

namespace vireo::wire {

namespace {

namespace ops = driver::ops;
using http::Place;

// The overview: sockets, references, formats, errors.
constexpr std::string_view kOverview = R"(The API of vireod, the vireo daemon: HTTP/1.1 + JSON on a unix socket
(WebSocket for the event stream and the serial console). Every path starts
with the version prefix /v1. `curl --unix-socket` is enough to drive it:

    S=$XDG_RUNTIME_DIR/vireo/vireo-sock          # session daemon
    S=/run/vireo/vireo-sock                      # system daemon (root / group vireo)
    curl --unix-socket $S http://localhost/v1/domains
    curl --unix-socket $S -X POST -H 'Content-Type: application/xml' \
         --data-binary @vm.xml http://localhost/v1/domains
    curl --unix-socket $S -X POST http://localhost/v1/domains/vm1/start
    curl --unix-socket $S 'http://localhost/v1/domains/vm1/xml?inactive=1'

Sockets. Session mode: `$XDG_RUNTIME_DIR/vireo/vireo-sock` (fallback
`/tmp/vireo-<uid>/vireo-sock`), mode 0600. System mode:
`/run/vireo/vireo-sock` (0660 root:vireo) and the read-only socket
`/run/vireo/vireo-sock-ro` (0666), which answers every GET and refuses
every other method (and the console) with 403 `permission-denied`.
Clients are identified with SO_PEERCRED and logged.

Domain references ({ref}) are a name, a UUID or the numeric id of a
running domain, tried in that order (as virsh), percent-encoded as one
path segment.

Definitions travel as libvirt domain XML (`application/xml`); everything
else is JSON. Boolean query flags are `1`/`true`/`yes` (or the bare key).

Errors. Every failure is an HTTP status and a JSON body
`{"code": "<code>", "message": "<text for the user>"}`. `code` is one of
vireo's error codes (src/util/error.hpp), with this status:
invalid-arg, xml-error 400; permission-denied 403; no-domain, no-pool,
no-volume, no-network, not-found 404 (also for unknown routes, with code
unsupported); exists, invalid-state, busy 409; unsupported 501;
hypervisor, connection 502; timeout 504; anything else 500. Clients use
`code` and print `message` verbatim. A job that cannot get a domain's
state change lock within 30 s fails with `busy`, naming the job that holds
it. Queries (GET) never wait behind a job; destroy and job abort do not
either (they have workers of their own).
)";

// The shared schemas and parameters the operations refer to.
constexpr std::string_view kComponents = R"(components:
  parameters:
    Ref:
      name: ref
      in: path
      required: true
      description: domain name, UUID or id (percent-encoded)
      schema: {type: string}
    Pool:
      {name: pool, in: path, required: true, description: pool name or UUID (percent-encoded), schema: {type: string}}
    Vol:
      {name: vol, in: path, required: true, description: volume name (percent-encoded), schema: {type: string}}
    Network:
      {name: network, in: path, required: true, description: network name or UUID (percent-encoded), schema: {type: string}}
    Iface:
      {name: iface, in: path, required: true, description: host interface name or MAC (percent-encoded), schema: {type: string}}
  responses:
    Error:
      description: the operation failed
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Error"}
  schemas:
    Error:
      type: object
      required: [code, message]
      properties:
        code:
          type: string
          enum: [@@CODES@@]
        message: {type: string}
      example: {code: no-domain, message: "Domain not found: no domain with matching name 'web'"}
    Version:
      type: object
      properties:
        library: {type: string}
        daemon: {type: string}
        hypervisor: {type: string, example: QEMU 7.2.0}
    NodeInfo:
      type: object
      properties:
        model: {type: string, example: x86_64}
        memory_kib: {type: integer}
        cpus: {type: integer}
        mhz: {type: integer}
        nodes: {type: integer}
        sockets: {type: integer}
        cores: {type: integer}
        threads: {type: integer}
    Domain:
      type: object
      properties:
        name: {type: string}
        uuid: {type: string}
        id: {type: integer, description: -1 when not running}
        state:
          type: string
          enum: [no state, running, idle, paused, in shutdown, shut off, crashed, pmsuspended]
        reason: {type: string, example: booted}
        persistent: {type: boolean}
        autostart: {type: boolean}
        managed_save: {type: boolean}
        title: {type: string}
        max_memory_kib: {type: integer}
        memory_kib: {type: integer}
        vcpus: {type: integer}
        cpu_time_ns: {type: integer}
        os_type: {type: string}
    Disk:
      type: object
      properties:
        type: {type: string}
        device: {type: string}
        target: {type: string}
        source: {type: string}
    Interface:
      type: object
      properties:
        name: {type: string}
        type: {type: string}
        source: {type: string}
        model: {type: string}
        mac: {type: string}
    InterfaceStats:
      type: object
      description: counters as the guest sees them (rx = received by the guest)
      properties:
        name: {type: string, example: vnet0}
        rx_bytes: {type: integer}
        rx_packets: {type: integer}
        rx_errs: {type: integer}
        rx_drop: {type: integer}
        tx_bytes: {type: integer}
        tx_packets: {type: integer}
        tx_errs: {type: integer}
        tx_drop: {type: integer}
    BlockStats:
      type: object
      description: "a disk's I/O counters since the domain started (QEMU's), or their sum over every disk"
      properties:
        device: {type: string, description: "the disk's target; empty for the sum", example: vda}
        rd_req: {type: integer}
        rd_bytes: {type: integer}
        wr_req: {type: integer}
        wr_bytes: {type: integer}
        flush_operations: {type: integer}
        rd_total_times: {type: integer, description: nanoseconds}
        wr_total_times: {type: integer, description: nanoseconds}
        flush_total_times: {type: integer, description: nanoseconds}
    BlockInfo:
      type: object
      description: "a disk's sizes in bytes, as libvirt's virDomainBlockInfo"
      properties:
        device: {type: string, example: vda}
        capacity: {type: integer, description: the size the guest sees}
        allocation: {type: integer, description: host storage in use}
        physical: {type: integer, description: the image's size on the host}
    Vcpu:
      type: object
      properties:
        id: {type: integer}
        cpu: {type: integer, description: the host CPU it last ran on}
        state: {type: string, example: running}
        cpu_time_ns: {type: integer}
        affinity: {type: string, example: 0-1}
    MemoryStat:
      type: object
      properties:
        tag: {type: string, example: actual}
        value: {type: integer, description: KiB for sizes}
    GuestTime:
      type: object
      properties:
        seconds: {type: integer, description: since the epoch}
        nseconds: {type: integer}
    FsInfo:
      type: object
      properties:
        mountpoint: {type: string, example: /mnt}
        name: {type: string, description: the guest's device, example: vdb}
        type: {type: string, example: ext4}
        targets: {type: string, description: "the domain's disks under it, comma-separated", example: vdb}
    FsCount:
      type: object
      properties:
        filesystems: {type: integer, description: how many the agent froze or thawed}
    TypedParam:
      type: object
      properties:
        field: {type: string, example: os.id}
        type: {type: string, enum: [string, int, uint, ullong, boolean]}
        value: {type: string, description: "decimal for numbers, yes/no for booleans", example: debian}
    GuestVcpus:
      type: object
      properties:
        vcpus: {type: string, description: every vCPU the guest has, example: 0-3}
        online: {type: string, example: 0-3}
        offlinable: {type: string, example: 1-3}
    InterfaceAddress:
      type: object
      properties:
        name: {type: string, example: vnet0}
        mac: {type: string}
        type: {type: string, enum: [ipv4, ipv6]}
        address: {type: string, example: 192.168.122.45}
        prefix: {type: integer}
    Snapshot:
      type: object
      properties:
        name: {type: string}
        parent: {type: string, description: the parent snapshot; empty for a root}
        state: {type: string, enum: [running, blocked, paused, shutdown, shutoff, crashed, disk-snapshot]}
        creation_time: {type: integer, description: seconds since the Unix epoch}
        location: {type: string, enum: [internal, external, none]}
        current: {type: boolean}
    Event:
      type: object
      properties:
        type:
          type: string
          enum: [Defined, Undefined, Started, Suspended, Resumed, Stopped, Shutdown, PMSuspended, Crashed,
                 DeviceRemoved, DeviceRemovalFailed, AgentLifecycle, MemoryDeviceSizeChange]
        detail:
          type: string
          example: Booted
          description: >-
            the lifecycle detail; a device's alias for DeviceRemoved, DeviceRemovalFailed and
            MemoryDeviceSizeChange; connected or disconnected for AgentLifecycle
        domain: {type: string}
        uuid: {type: string}
        time_ms: {type: integer, description: milliseconds since the Unix epoch}
        size_kib: {type: integer, description: "MemoryDeviceSizeChange only: the memory the guest has plugged, KiB"}
    Pool:
      type: object
      properties:
        name: {type: string}
        uuid: {type: string}
        type: {type: string, example: dir}
        state: {type: string, enum: [inactive, building, running, degraded, inaccessible]}
        persistent: {type: boolean}
        autostart: {type: boolean}
        capacity: {type: integer, description: bytes; 0 while inactive}
        allocation: {type: integer}
        available: {type: integer}
        target_path: {type: string}
    Volume:
      type: object
      properties:
        name: {type: string}
        pool: {type: string}
        key: {type: string}
        path: {type: string}
        type: {type: string, enum: [file, block, dir, network, netdir, ploop]}
        format: {type: string, example: qcow2}
        capacity: {type: integer, description: guest-visible bytes}
        allocation: {type: integer, description: bytes used on the host}
        physical: {type: integer, description: host file size}
    Job:
      type: object
      description: an async job (virsh domjobinfo's figures); sizes in bytes
      properties:
        id: {type: integer, description: "the id job.abort takes; 0 when status is none"}
        status: {type: string, enum: [none, bounded, unbounded, completed, failed, cancelled]}
        operation:
          type: string
          enum: [unknown, start, save, restore, migration_in, migration_out, snapshot, snapshot_revert, dump,
                 backup, snapshot_delete, volume_clone, volume_upload, volume_download, volume_wipe, block_job]
        object: {type: string, example: "domain 'web'"}
        phase: {type: string, example: writing}
        elapsed_ms: {type: integer}
        data_total: {type: integer}
        data_processed: {type: integer}
        data_remaining: {type: integer}
        memory_total: {type: integer}
        memory_processed: {type: integer}
        memory_remaining: {type: integer}
        memory_bps: {type: integer, description: bytes per second; 0 when not known}
        migration:
          type: object
          description: QEMU's migration statistics (save, managedsave); absent for other jobs
          properties:
            dirty_rate: {type: integer, description: pages per second}
            page_size: {type: integer}
            iteration: {type: integer}
            postcopy_requests: {type: integer}
            constant_pages: {type: integer}
            normal_pages: {type: integer}
            normal_bytes: {type: integer}
            downtime_ms: {type: integer, description: expected while running; the total once completed}
            setup_time_ms: {type: integer}
        error: {type: string, description: why a failed or cancelled job ended}
    Network:
      type: object
      properties:
        name: {type: string}
        uuid: {type: string}
        active: {type: boolean}
        persistent: {type: boolean}
        autostart: {type: boolean}
        bridge: {type: string, example: virbr0}
    NetworkLease:
      type: object
      properties:
        iface: {type: string, description: the network's bridge}
        expiry_time: {type: integer, description: seconds since the Unix epoch; 0 = never}
        ipv6: {type: boolean}
        mac: {type: string}
        iaid: {type: string}
        ip: {type: string}
        prefix: {type: integer}
        hostname: {type: string}
        client_id: {type: string}
    NetworkEvent:
      type: object
      properties:
        type: {type: string, enum: [Defined, Undefined, Started, Stopped]}
        network: {type: string}
        uuid: {type: string}
        time_ms: {type: integer, description: milliseconds since the Unix epoch}
    HostInterface:
      type: object
      properties:
        name: {type: string}
        mac: {type: string}
        active: {type: boolean, description: exists and is up}
)";

// A YAML scalar: plain when that is unambiguous, else double-quoted. In
// flow context (inside {...}) commas and brackets need quotes too.
std::string scalar(std::string_view s, bool flow = false) {
    bool plain = !s.empty() && s.find(": ") == std::string_view::npos && s.find(" #") == std::string_view::npos &&
                 std::string_view("-?:,[]{}#&*!|>'\"%@`").find(s.front()) == std::string_view::npos &&
                 s.back() != ':' && s.find('\n') == std::string_view::npos;
    if (plain && flow) plain = s.find_first_of(",[]{}") == std::string_view::npos;
    if (plain) return std::string(s);
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out + "\"";
}

// `text` as a block scalar ("|") indented by `indent` spaces.
std::string block(std::string_view text, int indent) {
    std::string out = "|\n";
    const std::string pad(static_cast<std::size_t>(indent), ' ');
    while (!text.empty()) {
        const auto nl = text.find('\n');
        const auto line = text.substr(0, nl);
        out += line.empty() ? "\n" : pad + std::string(line) + "\n";
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    }
    return out;
}

// The schema of a request field's type, as an inline YAML map.
template <class T>
std::string type_schema() {
    if constexpr (std::is_same_v<T, bool>)
        return "type: boolean";
    else if constexpr (std::is_same_v<T, std::uint64_t>)
        return "type: integer";
    else if constexpr (std::is_same_v<T, std::string>)
        return "type: string";
    else {
        std::string names;
        for (const auto& [v, name] : ops::EnumNames<T>::values) names += fmt::format("{}{}", names.empty() ? "" : ", ", name);
        return fmt::format("type: string, enum: [{}]", names);
    }
}

// The component schema of a reply type, and how its answer is described
// (one object, a list of them).
struct SchemaName {
    std::string_view name, one, many;
};

template <class T>
SchemaName schema_name() {
    if constexpr (std::is_same_v<T, driver::DomainSummary>)
        return {"Domain", "the domain", "domains"};
    else if constexpr (std::is_same_v<T, driver::PoolSummary>)
        return {"Pool", "the pool", "pools"};
    else if constexpr (std::is_same_v<T, driver::VolumeSummary>)
        return {"Volume", "the volume", "volumes"};
    else if constexpr (std::is_same_v<T, driver::NodeInfo>)
        return {"NodeInfo", "node info", "node infos"};
    else if constexpr (std::is_same_v<T, driver::VersionInfo>)
        return {"Version", "versions", "versions"};
    else if constexpr (std::is_same_v<T, driver::DiskInfo>)
        return {"Disk", "the disk", "disks"};
    else if constexpr (std::is_same_v<T, driver::InterfaceInfo>)
        return {"Interface", "the interface", "interfaces"};
    else if constexpr (std::is_same_v<T, driver::JobInfo>)
        return {"Job", "the job", "jobs"};
    else if constexpr (std::is_same_v<T, driver::InterfaceStats>)
        return {"InterfaceStats", "the counters", "counters"};
    else if constexpr (std::is_same_v<T, driver::InterfaceAddress>)
        return {"InterfaceAddress", "the address", "addresses"};
    else if constexpr (std::is_same_v<T, driver::BlockStats>)
        return {"BlockStats", "the counters", "counters"};
    else if constexpr (std::is_same_v<T, driver::BlockInfo>)
        return {"BlockInfo", "the sizes", "sizes"};
    else if constexpr (std::is_same_v<T, driver::VcpuInfo>)
        return {"Vcpu", "the vCPU", "vCPUs"};
    else if constexpr (std::is_same_v<T, driver::MemoryStat>)
        return {"MemoryStat", "the statistic", "statistics"};
    else if constexpr (std::is_same_v<T, driver::GuestTime>)
        return {"GuestTime", "the guest's time", "times"};
    else if constexpr (std::is_same_v<T, driver::FsInfo>)
        return {"FsInfo", "the filesystem", "filesystems"};
    else if constexpr (std::is_same_v<T, driver::FsCount>)
        return {"FsCount", "how many filesystems", "counts"};
    else if constexpr (std::is_same_v<T, driver::GuestVcpus>)
        return {"GuestVcpus", "the guest's vCPUs", "vCPU sets"};
    else if constexpr (std::is_same_v<T, driver::TypedParam>)
        return {"TypedParam", "the parameter", "libvirt's typed parameters"};
    else if constexpr (std::is_same_v<T, driver::SnapshotSummary>)
        return {"Snapshot", "the snapshot", "snapshots"};
    else if constexpr (std::is_same_v<T, driver::NetworkSummary>)
        return {"Network", "the network", "networks"};
    else if constexpr (std::is_same_v<T, driver::NetworkDhcpLease>)
        return {"NetworkLease", "the lease", "leases"};
    else if constexpr (std::is_same_v<T, driver::HostInterface>)
        return {"HostInterface", "the host interface", "host interfaces"};
    else
        static_assert(sizeof(T) == 0, "no openapi schema for this reply type");
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return out;
}

std::string_view component_parameter(std::string_view name) {
    if (name == "ref") return "Ref";
    if (name == "pool") return "Pool";
    if (name == "vol") return "Vol";
    if (name == "network") return "Network";
    if (name == "iface") return "Iface";
    return {};
}

// The parameters of an operation (path and query fields).
template <class Op>
std::string parameters() {
    std::string out;
    http::for_each_field<Op>([&](const auto& f) {
        using T = std::remove_cvref_t<decltype(typename Op::Request{}.*(f.member))>;
        const Place place = http::place_of<Op>(f);
        if (place == Place::Path) {
            if (auto ref = component_parameter(f.name); !ref.empty()) {
                out += fmt::format("        - $ref: \"#/components/parameters/{}\"\n", ref);
                return;
            }
        } else if (place != Place::Query) {
            return;
        }
        out += fmt::format("        - {{name: {}, in: {}", f.name, place == Place::Path ? "path" : "query");
        if (place == Place::Path || f.required) out += ", required: true";
        out += fmt::format(", schema: {{{}}}", type_schema<T>());
        if (!f.doc.empty()) out += fmt::format(", description: {}", scalar(f.doc, true));
        out += "}\n";
    });
    return out.empty() ? out : "      parameters:\n" + out;
}

template <class Op>
std::string request_body() {
    std::string properties, required;
    bool document = false;
    http::for_each_field<Op>([&](const auto& f) {
        using T = std::remove_cvref_t<decltype(typename Op::Request{}.*(f.member))>;
        const Place place = http::place_of<Op>(f);
        if (place == Place::Document) document = true;
        if (place != Place::Body) return;
        properties += fmt::format("                {}: {{{}", f.name, type_schema<T>());
        if (!f.doc.empty()) properties += fmt::format(", description: {}", scalar(f.doc, true));
        properties += "}\n";
        if (f.required) required += fmt::format("{}{}", required.empty() ? "" : ", ", f.name);
    });
    if (document)
        return "      requestBody:\n        required: true\n        content: {application/xml: {schema: {type: string}}}\n";
    if (properties.empty()) return {};
    std::string out = "      requestBody:\n";
    if (!required.empty()) out += "        required: true\n";
    out += "        content:\n          application/json:\n            schema:\n              type: object\n";
    if (!required.empty()) out += fmt::format("              required: [{}]\n", required);
    return out + "              properties:\n" + properties;
}

template <class Op>
std::string responses() {
    using Reply = typename Op::Reply;
    unsigned status = 200;
    if constexpr (ops::HasHttpSuccess<Op>) status = Op::http_success;
    std::string out = "      responses:\n";
    if constexpr (ops::is_stream(Op::info.kind)) {
        out += "        \"101\": {description: switching to WebSocket}\n";
    } else if constexpr (std::is_void_v<Reply>) {
        out += "        \"204\": {description: done}\n";
    } else if constexpr (std::is_same_v<Reply, std::string> && ops::HasReplyField<Op>) {
        out += fmt::format(
            "        \"{}\":\n          description: '{{\"{}\": \"...\"}}'\n          content:\n"
            "            application/json:\n              schema:\n                type: object\n"
            "                properties: {{{}: {{type: string}}}}\n",
            status, Op::reply_field, Op::reply_field);
    } else if constexpr (std::is_same_v<Reply, std::string>) {
        out += fmt::format("        \"{}\": {{description: XML document, content: {{application/xml: {{schema: "
                           "{{type: string}}}}}}}}\n",
                           status);
    } else if constexpr (std::is_same_v<Reply, driver::Screenshot>) {
        out += fmt::format("        \"{}\": {{description: the image, content: {{image/png: {{schema: "
                           "{{type: string, format: binary}}}}}}}}\n",
                           status);
    } else if constexpr (http::IsVector<Reply>::value) {
        const auto schema = schema_name<typename Reply::value_type>();
        out += fmt::format("        \"{}\":\n          description: {}\n          content:\n"
                           "            application/json:\n              schema:\n                type: array\n"
                           "                items: {{$ref: \"#/components/schemas/{}\"}}\n",
                           status, schema.many, schema.name);
    } else {
        const auto schema = schema_name<Reply>();
        out += fmt::format("        \"{}\":\n          description: {}\n          content:\n"
                           "            application/json:\n              schema: {{$ref: \"#/components/schemas/{}\"}}\n",
                           status, schema.one, schema.name);
    }
    return out + "        default: {$ref: \"#/components/responses/Error\"}\n";
}

template <class Op>
std::string operation() {
    std::string out = fmt::format("    {}:\n      operationId: {}\n      summary: {}\n", lower(ops::method_name(Op::info.method)),
                                  Op::info.name, scalar(Op::info.summary));
    if constexpr (ops::HasDescription<Op>) out += "      description: " + block(Op::description, 8);
    out += parameters<Op>();
    out += request_body<Op>();
    out += responses<Op>();
    return out;
}

std::string error_codes() {
    std::string out;
    for (int c = 0; c <= static_cast<int>(ErrorCode::OperationFailed); ++c)
        out += fmt::format("{}{}", out.empty() ? "" : ", ", to_string(static_cast<ErrorCode>(c)));
    return out;
}

}  // namespace

std::string openapi_yaml() {
    // Paths in the order the table first names them; operations in table order.
    std::vector<std::string_view> order;
    std::map<std::string_view, std::string> by_path;
    ops::for_each_op([&]<class Op>() {
        std::string_view path = Op::info.path.substr(kApiPrefix.size());
        if (!by_path.contains(path)) order.push_back(path);
        by_path[path] += operation<Op>();
    });
    std::string out = "# Generated from the operation table (src/driver/ops) by `vireod --print-openapi`;\n"
                      "# do not edit: change the declarations and regenerate.\n"
                      "openapi: 3.0.3\ninfo:\n  title: vireod API\n  version: \"1\"\n  description: ";
    out += block(kOverview, 4);
    out += "servers:\n  - url: http://localhost/v1\npaths:\n";
    for (auto path : order) out += fmt::format("  {}:\n{}", path, by_path[path]);
    std::string components(kComponents);
    components.replace(components.find("@@CODES@@"), 9, error_codes());
    return out + components;
}

}  // namespace vireo::wire
