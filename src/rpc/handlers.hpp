// What the procedure handlers of libvirt's remote program share: the entry of
// the procedure table (ProcDef), running a call as an operation of the
// operation table, and small reply encoders. The domain and host procedures
// are in procedures.cpp, pools and volumes in storage.cpp, networks in
// network.cpp, vCPUs and memory in vcpu_memory.cpp, the guest agent in
// agent.cpp, disks in block.cpp; find_procedure() looks in every table.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "driver/ops/all.hpp"
#include "rpc/connection.hpp"

namespace vireo::rpc {

// One served procedure. `op` is the operation it runs (its read-only rule
// applies), nullptr for the connection's own procedures. `before_open`:
// allowed before REMOTE_PROC_CONNECT_OPEN.
struct ProcDef {
    Proc proc;
    std::string_view name;
    const driver::ops::OpInfo* op;
    Status (*handler)(Connection&, Connection::Call&);
    bool before_open = false;
};

// The pool and volume procedures (storage.cpp).
std::span<const ProcDef> storage_procedures();
// The network procedures and network events (network.cpp).
std::span<const ProcDef> network_procedures();
// The vCPU and memory procedures (vcpu_memory.cpp).
std::span<const ProcDef> vcpu_memory_procedures();
// The guest agent's procedures (agent.cpp).
std::span<const ProcDef> agent_procedures();
// The disk procedures: block statistics, sizes, resize (block.cpp).
std::span<const ProcDef> block_procedures();

namespace handlers {

using Work = std::function<Result<std::string>(driver::Driver&)>;

// Run `f` as operation Op (its lane, logging, catch-all) and answer with its result.
template <class Op>
Status run(Connection& c, const Connection::Call& call, Work f) {
    c.submit(call.header, Op::info, [&d = c.driver(), f = std::move(f)] { return f(d); });
    return {};
}

inline std::string empty() { return {}; }

// Run operation Op with `req` and answer with an empty body (the shape of
// every procedure that changes something and returns nothing).
template <class Op>
Status run_empty(Connection& c, const Connection::Call& call, typename Op::Request req) {
    return run<Op>(c, call, [req = std::move(req)](driver::Driver& d) -> Result<std::string> {
        VIREO_TRY(d.call<Op>(req));
        return empty();
    });
}

inline std::string one_int(std::int32_t v) {
    XdrWriter w;
    w.i32(v);
    return w.take();
}

// A UUID argument (16 raw bytes).
inline Result<Uuid> read_uuid(XdrReader& r) {
    auto raw = r.fixed_opaque(16);
    if (!raw) return std::unexpected(raw.error());
    Uuid u;
    std::copy(raw->begin(), raw->end(), u.bytes.begin());
    return u;
}

// One pair of a listing's flags (ACTIVE|INACTIVE, PERSISTENT|TRANSIENT,
// AUTOSTART|NO_AUTOSTART, ...): with neither or both set every object is
// kept, with one only those it names.
constexpr bool keeps(std::uint32_t flags, std::uint32_t yes, std::uint32_t no, bool value) {
    if ((flags & (yes | no)) == 0 || (flags & (yes | no)) == (yes | no)) return true;
    return (flags & yes) ? value : !value;
}

// The reply of connect_list_all_*: the objects when the client asked for
// them (`put` writes one), then how many matched.
template <class T, class Put>
std::string list_all_reply(bool need_results, const std::vector<const T*>& hit, Put put) {
    XdrWriter w;
    w.u32(need_results ? static_cast<std::uint32_t>(hit.size()) : 0);
    if (need_results)
        for (const T* o : hit) put(w, *o);
    w.u32(static_cast<std::uint32_t>(hit.size()));
    return w.take();
}

// The reply of the older listings (connect_num_of_* / connect_list_*):
// their count, or at most `max` of their names.
inline std::string names_reply(std::vector<std::string> names, bool count_only, std::int32_t max) {
    if (count_only) return one_int(static_cast<std::int32_t>(names.size()));
    if (static_cast<std::int32_t>(names.size()) > max) names.resize(static_cast<std::size_t>(std::max(max, 0)));
    XdrWriter w;
    w.u32(static_cast<std::uint32_t>(names.size()));
    for (const auto& n : names) w.string(n);
    return w.take();
}

template <class T>
struct Tag {
    using type = T;
};
constexpr const driver::ops::OpInfo* op_of(auto tag) { return &decltype(tag)::type::info; }

}  // namespace handlers

}  // namespace vireo::rpc
