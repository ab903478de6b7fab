// The operation table's mechanism: what one operation declares about itself,
// and the type lists that hold every operation.
//
// Every operation a connection can run (host, domain, pool, volume, and the
// coming network, snapshot, migration, device ones) is declared once, as a
// struct in the header of its family (ops/host.hpp, ops/domain.hpp, ...):
//
//   struct DomainReset {
//       static constexpr OpInfo info{.name = "domain.reset", .method = Method::Post,
//                                    .path = "/v1/domains/{ref}/reset", .kind = Kind::Job,
//                                    .lane = Lane::Job, .read_only_allowed = false,
//                                    .libvirt_domain = LibvirtDomain::Domain,
//                                    .summary = "Hard reset (virsh reset)"};
//       struct Request {
//           std::string ref{};
//       };
//       using Reply = void;
//       static constexpr auto fields = std::tuple{field("ref", &Request::ref)};
//   };
//
// Everything else derives from that declaration:
//   - the connection (driver.hpp): Driver::call<Op>(request) runs the handler
//     a sub-driver installed for Op, or answers Unsupported;
//   - the HTTP binding (src/wire/http.hpp): the route, where each request
//     field travels, how the reply is encoded, for both the daemon (routing,
//     decoding) and the client (the stub of every operation);
//   - the daemon (src/daemon/dispatcher.hpp): the read-only check, the lane
//     (worker pool) and the logging of every call;
//   - docs/api/openapi.yaml (src/wire/openapi.hpp, `vireod --print-openapi`);
//   - a future libvirt RPC codec: OpInfo::libvirt_proc and libvirt_domain.
//
// Request fields are listed once in `fields`, each as (name, member). Where a
// field travels over HTTP is derived, never declared:
//   `{name}` in the path template          -> a path segment (percent-encoded)
//   a document field (domain/pool/volume XML) -> the request body itself
//   otherwise, GET / DELETE                 -> a query parameter
//   otherwise, POST / PUT with a document   -> a query parameter
//   otherwise, POST / PUT                   -> a member of the JSON body
// Members that are not in `fields` (the callbacks of streams) never travel.
// Every Request member has a default initializer, so that callers name only
// the fields they set: call<DomainStart>({.ref = "web", .paused = true}).
//
// Optional members of an operation, for the HTTP binding and the docs:
//   static constexpr std::string_view reply_field = "hostname";
//       a std::string reply travels as {"hostname": "..."} (else it is an
//       XML document, application/xml);
//   static constexpr unsigned http_success = 201;  (default 200, 204 for void)
//   static constexpr std::string_view description = "...";  (openapi)
#pragma once

#include <array>
#include <cstddef>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace vireo::driver::ops {

// What the operation does to the connection's objects.
enum class Kind {
    Query,        // reads; never changes anything
    Job,          // changes an object (takes its job where it has one)
    AsyncJob,     // a Job that may run long (save, restore, volume copies):
                  // libvirt's async jobs, with phase and progress to come
    QueryStream,  // a stream that only reads (events, volume download)
    JobStream,    // a stream that changes things (console input, volume upload)
};

// Where the daemon runs the operation (daemon/dispatcher.hpp). Lanes never
// share threads, so nothing queues behind a lane it is not in.
enum class Lane {
    Inline,  // memory-only queries (list, dominfo, dumpxml): answered on the
             // event loop, without a hop to a worker thread
    Query,   // other queries: the query pool, never behind a job
    Job,     // jobs: the job pool (may wait for a domain's job, may run long)
    Urgent,  // never waits behind jobs, even when jobs occupy every job
             // thread: destroy, job abort (libvirt's high-priority calls)
};

enum class Method { Get, Post, Put, Delete };

constexpr std::string_view method_name(Method m) {
    switch (m) {
        case Method::Get: return "GET";
        case Method::Post: return "POST";
        case Method::Put: return "PUT";
        case Method::Delete: return "DELETE";
    }
    return "GET";
}

// libvirt's virErrorDomain (VIR_FROM_*), same numbering: which part of
// libvirt a libvirt client sees an operation's errors come from.
enum class LibvirtDomain : int {
    None = 0,  // the connection's driver (VIR_FROM_QEMU, VIR_FROM_TEST)
    Qemu = 10,
    Test = 12,
    Remote = 13,
    Storage = 18,
    Network = 19,
    Domain = 20,
    Interface = 26,
    DomainSnapshot = 35,
};

struct OpInfo {
    std::string_view name;  // stable: "<family>.<verb>", e.g. "domain.reset"
    Method method = Method::Get;
    std::string_view path;  // "/v1/domains/{ref}/reset"; {field} = a path segment
    Kind kind = Kind::Query;
    Lane lane = Lane::Query;
    bool read_only_allowed = false;  // served on the read-only socket
    int libvirt_proc = 0;            // remote_procedure number; 0 = none yet
    LibvirtDomain libvirt_domain = LibvirtDomain::None;
    std::string_view summary;  // one line, for the docs
};

constexpr bool is_stream(Kind k) { return k == Kind::QueryStream || k == Kind::JobStream; }
constexpr bool is_query(Kind k) { return k == Kind::Query || k == Kind::QueryStream; }

// --- request fields ------------------------------------------------------------

// One field of a Request: its name on the wire and its member. A document
// field is the raw XML body; a required field must be given (strings: and
// not be empty), else the call is refused before it reaches a driver.
// Supported member types: std::string, bool, std::uint64_t, and enums with
// EnumNames.
template <class R, class T>
struct Field {
    std::string_view name;
    T R::*member;
    bool required = false;
    bool document = false;
    std::string_view doc;  // what it means, for the docs (may be empty)
};

template <class R, class T>
constexpr Field<R, T> field(std::string_view name, T R::*member, std::string_view doc = {}) {
    return {name, member, false, false, doc};
}
template <class R, class T>
constexpr Field<R, T> required(std::string_view name, T R::*member, std::string_view doc = {}) {
    return {name, member, true, false, doc};
}
template <class R, class T>
constexpr Field<R, T> document(std::string_view name, T R::*member, std::string_view doc = {}) {
    return {name, member, true, true, doc};
}

// The names of an enum's values on the wire. Specialize with
//   static constexpr std::string_view what = "shutdown mode";
//   static constexpr std::array<std::pair<E, std::string_view>, N> values{...};
template <class E>
struct EnumNames;

template <class E>
concept NamedEnum = std::is_enum_v<E> && requires { EnumNames<E>::values; };

// --- type lists ------------------------------------------------------------------

template <class... Ops>
struct List {
    static constexpr std::size_t size = sizeof...(Ops);
};

template <class... Lists>
struct Concat;
template <class... A>
struct Concat<List<A...>> {
    using type = List<A...>;
};
template <class... A, class... B, class... Rest>
struct Concat<List<A...>, List<B...>, Rest...> {
    using type = typename Concat<List<A..., B...>, Rest...>::type;
};

// Position of Op in the list (static_assert when absent).
template <class Op, class L>
struct IndexOf;
template <class Op, class... Ops>
struct IndexOf<Op, List<Ops...>> {
    static constexpr std::size_t value = [] {
        constexpr bool same[] = {std::is_same_v<Op, Ops>..., false};
        std::size_t i = 0;
        while (i < sizeof...(Ops) && !same[i]) ++i;
        return i;
    }();
    static_assert(value < sizeof...(Ops), "the operation is not in the table (ops/all.hpp)");
};

// f.template operator()<Op>() for every operation, in order.
template <class... Ops, class F>
constexpr void for_each(List<Ops...>, F&& f) {
    (f.template operator()<Ops>(), ...);
}

// f.template operator()<Op>() for the operation at `index` (nothing when
// out of range).
template <class... Ops, class F>
void visit(List<Ops...>, std::size_t index, F&& f) {
    std::size_t i = 0;
    (void)((i++ == index ? (f.template operator()<Ops>(), true) : false) || ...);
}

template <class... Ops>
constexpr std::array<const OpInfo*, sizeof...(Ops)> infos(List<Ops...>) {
    return {&Ops::info...};
}

// Optional members of an operation (see the top of this file).
template <class Op>
concept HasReplyField = requires { Op::reply_field; };
template <class Op>
concept HasHttpSuccess = requires { Op::http_success; };
template <class Op>
concept HasDescription = requires { Op::description; };

}  // namespace vireo::driver::ops
