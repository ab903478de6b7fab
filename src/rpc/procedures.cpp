// The procedure table: each served procedure of libvirt's remote program,
// its argument and reply layouts (decoded and encoded by hand with XdrReader
// and XdrWriter), and the operation of the operation table it runs. The
// layouts are the public protocol's; the code is ours.
#include <algorithm>
#include <array>
#include <charconv>

#include <spdlog/spdlog.h>

#include "driver/ops/all.hpp"
#include "driver/security_info.hpp"
#include "rpc/connection.hpp"
#include "rpc/events.hpp"
#include "rpc/handlers.hpp"
#include "rpc/streams.hpp"

namespace vireo::rpc {

namespace ops = driver::ops;
using driver::DomainSummary;
using Call = Connection::Call;

namespace {

using namespace handlers;

std::string domain_body(const DomainSummary& s) {
    XdrWriter w;
    put_domain(w, s);
    return w.take();
}

Result<DomainSummary> lookup(driver::Driver& d, const std::string& ref) {
    return d.call<ops::DomainLookup>({.ref = ref});
}

// "7.2.22" (after the hypervisor's name) -> 7002022, as libvirt's version numbers.
std::uint64_t version_number(std::string_view text) {
    auto sp = text.find_last_of(' ');
    if (sp != std::string_view::npos) text = text.substr(sp + 1);
    std::uint64_t parts[3] = {0, 0, 0};
    for (int i = 0; i < 3 && !text.empty(); ++i) {
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), parts[i]);
        if (ec != std::errc{}) break;
        text = text.substr(static_cast<std::size_t>(p - text.data()));
        if (!text.empty() && text.front() == '.') text.remove_prefix(1);
        else break;
    }
    return parts[0] * 1000000 + parts[1] * 1000 + parts[2];
}

// --- the connection's own procedures -------------------------------------------------

Status auth_list(Connection& c, Call& call) {
    XdrWriter w;
    w.u32(1);
    w.i32(0);  // REMOTE_AUTH_NONE: the socket's permissions and peer credentials decide
    c.reply(call.header, w.take());
    return {};
}

Status connect_open(Connection& c, Call& call) {
    VIREO_RPC_GET(name, call.args.optional_string());
    VIREO_RPC_GET(flags, call.args.u32());
    spdlog::debug("libvirt client opens {} (flags {:#x})", name.value_or("(default)"), flags);
    constexpr std::uint32_t kConnectReadOnly = 1;  // VIR_CONNECT_RO
    if (flags & kConnectReadOnly) c.make_read_only();
    c.set_opened(true);
    c.reply(call.header, empty());
    return {};
}

Status connect_close(Connection& c, Call& call) {
    c.closed();
    c.set_opened(false);
    c.reply(call.header, empty());
    return {};
}

Status supports_feature(Connection& c, Call& call) {
    VIREO_RPC_GET(feature, call.args.i32());
    c.reply(call.header, one_int(feature == kFeatureProgramKeepalive || feature == kFeatureRemoteEventCallback ||
                                 feature == kFeatureRemoteCloseCallback));
    return {};
}

Status get_type(Connection& c, Call& call) {
    XdrWriter w;
    w.string(c.driver().uri().starts_with("test") ? "TEST" : "QEMU");
    c.reply(call.header, w.take());
    return {};
}

Status get_uri(Connection& c, Call& call) {
    XdrWriter w;
    w.string(c.driver().uri());
    c.reply(call.header, w.take());
    return {};
}

Status is_secure(Connection& c, Call& call) {
    c.reply(call.header, one_int(1));  // a local unix socket
    return {};
}

// A variable array of XDR chars (one word each), with the C string's NUL
// counted as libvirt's servers send it.
void put_char_array(XdrWriter& w, std::string_view s) {
    w.u32(static_cast<std::uint32_t>(s.size() + 1));
    for (char ch : s) w.i32(static_cast<unsigned char>(ch));
    w.i32(0);
}

// The host's security model as capabilities says it ("dac" for the system
// daemon, "none" for a session one), DOI "0".
Status security_model(Connection& c, Call& call) {
    return run<ops::HostCapabilities>(c, call, [](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(caps, d.call<ops::HostCapabilities>({}));
        XdrWriter w;
        put_char_array(w, driver::secmodel_of_capabilities(caps));
        put_char_array(w, "0");
        return w.take();
    });
}

// A running domain's DAC label (+UID:+GID), enforcing; none when it has none.
Status security_label(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    return run<ops::DomainXml>(c, call, [ref = dom.ref()](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(xml, d.call<ops::DomainXml>({.ref = ref}));
        const std::string label = driver::dac_label_of_domain(xml);
        XdrWriter w;
        if (label.empty()) {
            w.u32(0);  // label<>
            w.i32(0);
        } else {
            put_char_array(w, label);
            w.i32(1);  // enforcing
        }
        return w.take();
    });
}

Status event_register(Connection& c, Call& call) {
    VIREO_RPC_GET(event_id, call.args.i32());
    VIREO_RPC_GET(has_dom, call.args.boolean());
    std::optional<std::string> uuid;
    if (has_dom) {
        VIREO_RPC_GET(dom, get_domain(call.args));
        uuid = std::string(reinterpret_cast<const char*>(dom.uuid.bytes.data()), dom.uuid.bytes.size());
    }
    if (!event_id_served(event_id)) {
        c.reply_error(call.header, {static_cast<int>(ErrNum::NoSupport), kFromRemote,
                                    fmt::format("this function is not supported by the connection driver: "
                                                "domain event {} (lifecycle and device removal events are served)",
                                                event_id)});
        return {};
    }
    auto id = c.register_event(event_id, uuid);
    if (!id) c.reply_error(call.header, to_remote_error(id.error(), kFromRemote));
    else c.reply(call.header, one_int(*id));
    return {};
}

// Close callbacks: the client's callback runs when its connection closes,
// which the client sees itself on a unix socket. The daemon would send
// REMOTE_PROC_CONNECT_EVENT_CONNECTION_CLOSED only when the hypervisor
// connection behind it closed, which vireod's driver never does while the
// daemon serves: registering is all there is to do.
Status close_callback_register(Connection& c, Call& call) {
    c.reply(call.header, empty());
    return {};
}

Status event_deregister(Connection& c, Call& call) {
    VIREO_RPC_GET(id, call.args.i32());
    if (!c.deregister(id))
        c.reply_error(call.header, {static_cast<int>(ErrNum::InvalidArg), kFromRemote,
                                    fmt::format("invalid argument: callback {} is not registered", id)});
    else c.reply(call.header, empty());
    return {};
}

// --- host ------------------------------------------------------------------------------

Status get_version(Connection& c, Call& call) {
    return run<ops::HostVersion>(c, call, [](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(v, d.call<ops::HostVersion>({}));
        XdrWriter w;
        w.u64(version_number(v.hypervisor));
        return w.take();
    });
}

Status get_lib_version(Connection& c, Call& call) {
    return run<ops::HostVersion>(c, call, [](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(v, d.call<ops::HostVersion>({}));
        XdrWriter w;
        w.u64(version_number(v.library));
        return w.take();
    });
}

Status get_hostname(Connection& c, Call& call) {
    return run<ops::HostHostname>(c, call, [](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(h, d.call<ops::HostHostname>({}));
        XdrWriter w;
        w.string(h);
        return w.take();
    });
}

Status get_capabilities(Connection& c, Call& call) {
    return run<ops::HostCapabilities>(c, call, [](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(caps, d.call<ops::HostCapabilities>({}));
        XdrWriter w;
        w.string(caps);
        return w.take();
    });
}

// virConnectGetDomainCapabilities: emulator, arch, machine and virt type
// (each optional), flags (none served).
Status get_domain_capabilities(Connection& c, Call& call) {
    VIREO_RPC_GET(emulator, call.args.optional_string());
    VIREO_RPC_GET(arch, call.args.optional_string());
    VIREO_RPC_GET(machine, call.args.optional_string());
    VIREO_RPC_GET(virttype, call.args.optional_string());
    VIREO_RPC_GET(flags, call.args.u32());
    if (flags != 0) return fail(ErrorCode::Unsupported, "domain capabilities: flags {:#x} are not supported", flags);
    ops::HostDomainCapabilities::Request req{.emulator = emulator.value_or(""), .arch = arch.value_or(""),
                                             .machine = machine.value_or(""), .virttype = virttype.value_or("")};
    return run<ops::HostDomainCapabilities>(c, call, [req](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(caps, d.call<ops::HostDomainCapabilities>(req));
        XdrWriter w;
        w.string(caps);
        return w.take();
    });
}

Status node_info(Connection& c, Call& call) {
    return run<ops::HostNodeInfo>(c, call, [](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(n, d.call<ops::HostNodeInfo>({}));
        XdrWriter w;
        // char model[32]: a fixed array of XDR chars, one word each.
        for (std::size_t i = 0; i < 32; ++i)
            w.i32(i < n.model.size() && i < 31 ? static_cast<unsigned char>(n.model[i]) : 0);
        w.u64(n.memory_kib);
        w.i32(static_cast<std::int32_t>(n.cpus));
        w.i32(static_cast<std::int32_t>(n.mhz));
        w.i32(static_cast<std::int32_t>(n.nodes));
        w.i32(static_cast<std::int32_t>(n.sockets));
        w.i32(static_cast<std::int32_t>(n.cores));
        w.i32(static_cast<std::int32_t>(n.threads));
        return w.take();
    });
}

// --- listings ----------------------------------------------------------------------------

bool active(const DomainSummary& s) { return s.id >= 0 && s.state != driver::DomainState::Shutoff; }

bool matches(const DomainSummary& s, std::uint32_t f) {
    using namespace list_flags;
    if (!keeps(f, Active, Inactive, active(s))) return false;
    if (!keeps(f, Persistent, Transient, s.persistent)) return false;
    if (!keeps(f, ManagedSave, NoManagedSave, s.managed_save)) return false;
    if (!keeps(f, Autostart, NoAutostart, s.autostart)) return false;
    if (f & (Running | Paused | Shutoff | Other)) {
        using S = driver::DomainState;
        const bool ok = ((f & Running) && s.state == S::Running) || ((f & Paused) && s.state == S::Paused) ||
                        ((f & Shutoff) && s.state == S::Shutoff) ||
                        ((f & Other) && s.state != S::Running && s.state != S::Paused && s.state != S::Shutoff);
        if (!ok) return false;
    }
    return true;
}

Status list_all_domains(Connection& c, Call& call) {
    VIREO_RPC_GET(need_results, call.args.i32());
    VIREO_RPC_GET(flags, call.args.u32());
    return run<ops::DomainList>(c, call, [need_results, flags](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(all, d.call<ops::DomainList>({}));
        std::vector<const DomainSummary*> hit;
        for (const auto& s : all)
            if (matches(s, flags)) hit.push_back(&s);
        return list_all_reply(need_results != 0, hit, [](XdrWriter& w, const DomainSummary& s) { put_domain(w, s); });
    });
}

Status num_of_domains(Connection& c, Call& call) {
    return run<ops::DomainList>(c, call, [](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(all, d.call<ops::DomainList>({}));
        return one_int(static_cast<std::int32_t>(std::ranges::count_if(all, active)));
    });
}

Status num_of_defined(Connection& c, Call& call) {
    return run<ops::DomainList>(c, call, [](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(all, d.call<ops::DomainList>({}));
        return one_int(static_cast<std::int32_t>(std::ranges::count_if(all, [](auto& s) { return !active(s); })));
    });
}

Status list_domains(Connection& c, Call& call) {
    VIREO_RPC_GET(max, call.args.i32());
    return run<ops::DomainList>(c, call, [max](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(all, d.call<ops::DomainList>({}));
        std::vector<int> ids;
        for (const auto& s : all)
            if (active(s) && static_cast<int>(ids.size()) < max) ids.push_back(s.id);
        std::ranges::sort(ids);
        XdrWriter w;
        w.u32(static_cast<std::uint32_t>(ids.size()));
        for (int id : ids) w.i32(id);
        return w.take();
    });
}

Status list_defined(Connection& c, Call& call) {
    VIREO_RPC_GET(max, call.args.i32());
    return run<ops::DomainList>(c, call, [max](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(all, d.call<ops::DomainList>({}));
        std::vector<std::string> names;
        for (const auto& s : all)
            if (!active(s)) names.push_back(s.name);
        return names_reply(std::move(names), false, max);
    });
}

// --- lookups and queries ----------------------------------------------------------------

Status lookup_by_name(Connection& c, Call& call) {
    VIREO_RPC_GET(name, call.args.string());
    return run<ops::DomainLookup>(c, call, [name](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(s, lookup(d, name));
        if (s.name != name) return fail(ErrorCode::NoDomain, "Domain not found: no domain with matching name '{}'", name);
        return domain_body(s);
    });
}

Status lookup_by_id(Connection& c, Call& call) {
    VIREO_RPC_GET(id, call.args.i32());
    return run<ops::DomainLookup>(c, call, [id](driver::Driver& d) -> Result<std::string> {
        auto s = lookup(d, std::to_string(id));
        if (!s || s->id != id || id < 0)
            return fail(ErrorCode::NoDomain, "Domain not found: no domain with matching id {}", id);
        return domain_body(*s);
    });
}

Status lookup_by_uuid(Connection& c, Call& call) {
    VIREO_RPC_GET(u, read_uuid(call.args));
    return run<ops::DomainLookup>(c, call, [u](driver::Driver& d) -> Result<std::string> {
        auto s = lookup(d, u.str());
        if (!s || s->uuid != u)
            return fail(ErrorCode::NoDomain, "Domain not found: no domain with matching uuid '{}'", u.str());
        return domain_body(*s);
    });
}

// A query answered from the domain's summary.
template <class Encode>
Status summary_query(Connection& c, Call& call, bool has_flags, Encode encode) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    if (has_flags) {
        VIREO_RPC_GET(flags, call.args.u32());
        (void)flags;
    }
    return run<ops::DomainLookup>(c, call, [ref = dom.ref(), encode](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(s, lookup(d, ref));
        XdrWriter w;
        encode(w, s);
        return w.take();
    });
}

Status get_info(Connection& c, Call& call) {
    return summary_query(c, call, false, [](XdrWriter& w, const DomainSummary& s) {
        w.u32(static_cast<std::uint32_t>(s.state));  // unsigned char, one word
        w.u64(s.max_memory_kib);
        w.u64(s.memory_kib);
        w.u32(s.vcpus);  // unsigned short, one word
        w.u64(s.cpu_time_ns);
    });
}

Status get_state(Connection& c, Call& call) {
    return summary_query(c, call, true, [](XdrWriter& w, const DomainSummary& s) {
        auto [state, reason] = state_and_reason(s.state, s.reason);
        w.i32(state);
        w.i32(reason);
    });
}

Status get_autostart(Connection& c, Call& call) {
    return summary_query(c, call, false, [](XdrWriter& w, const DomainSummary& s) { w.i32(s.autostart); });
}
Status get_os_type(Connection& c, Call& call) {
    return summary_query(c, call, false, [](XdrWriter& w, const DomainSummary& s) { w.string(s.os_type); });
}
Status get_max_memory(Connection& c, Call& call) {
    return summary_query(c, call, false, [](XdrWriter& w, const DomainSummary& s) { w.u64(s.max_memory_kib); });
}
Status is_active(Connection& c, Call& call) {
    return summary_query(c, call, false, [](XdrWriter& w, const DomainSummary& s) { w.i32(active(s)); });
}
Status is_persistent(Connection& c, Call& call) {
    return summary_query(c, call, false, [](XdrWriter& w, const DomainSummary& s) { w.i32(s.persistent); });
}
Status is_updated(Connection& c, Call& call) {
    return summary_query(c, call, false, [](XdrWriter& w, const DomainSummary&) { w.i32(0); });
}
Status has_managed_save(Connection& c, Call& call) {
    return summary_query(c, call, true, [](XdrWriter& w, const DomainSummary& s) { w.i32(s.managed_save); });
}

Status get_xml_desc(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(flags, call.args.u32());
    ops::DomainXml::Request req{.ref = dom.ref(), .inactive = (flags & kXmlInactive) != 0,
                                .security_info = (flags & kXmlSecure) != 0};
    return run<ops::DomainXml>(c, call, [req](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(xml, d.call<ops::DomainXml>(req));
        XdrWriter w;
        w.string(xml);
        return w.take();
    });
}

// --- definitions and lifecycle ------------------------------------------------------------

Status define(Connection& c, Call& call, std::string xml, std::uint32_t flags) {
    ops::DomainDefine::Request req{.xml = std::move(xml), .validate = (flags & kDefineValidate) != 0};
    return run<ops::DomainDefine>(c, call, [req](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(s, d.call<ops::DomainDefine>(req));
        return domain_body(s);
    });
}

Status define_xml(Connection& c, Call& call) {
    VIREO_RPC_GET(xml, call.args.string());
    return define(c, call, std::move(xml), 0);
}

Status define_xml_flags(Connection& c, Call& call) {
    VIREO_RPC_GET(xml, call.args.string());
    VIREO_RPC_GET(flags, call.args.u32());
    return define(c, call, std::move(xml), flags);
}

Status create_xml(Connection& c, Call& call) {
    VIREO_RPC_GET(xml, call.args.string());
    VIREO_RPC_GET(flags, call.args.u32());
    ops::DomainCreate::Request req{.xml = std::move(xml), .paused = (flags & kStartPaused) != 0,
                                   .force_boot = (flags & kStartForceBoot) != 0};
    return run<ops::DomainCreate>(c, call, [req](driver::Driver& d) -> Result<std::string> {
        VIREO_RPC_GET(s, d.call<ops::DomainCreate>(req));
        return domain_body(s);
    });
}

Status start(Connection& c, Call& call, bool with_flags) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    std::uint32_t flags = 0;
    if (with_flags) {
        VIREO_RPC_GET(f, call.args.u32());
        flags = f;
    }
    ops::DomainStart::Request req{.ref = dom.ref(), .paused = (flags & kStartPaused) != 0,
                                  .force_boot = (flags & kStartForceBoot) != 0};
    return run<ops::DomainStart>(c, call, [req, with_flags](driver::Driver& d) -> Result<std::string> {
        VIREO_TRY(d.call<ops::DomainStart>(req));
        if (!with_flags) return empty();
        VIREO_RPC_GET(s, lookup(d, req.ref));  // the reply carries the new id
        return domain_body(s);
    });
}
Status create(Connection& c, Call& call) { return start(c, call, false); }
Status create_with_flags(Connection& c, Call& call) { return start(c, call, true); }

// A domain call whose request is the domain reference and, optionally, flags.
template <class Op, class Make>
Status domain_void(Connection& c, Call& call, bool has_flags, Make make) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    std::uint32_t flags = 0;
    if (has_flags) {
        VIREO_RPC_GET(f, call.args.u32());
        flags = f;
    }
    typename Op::Request req = make(dom.ref(), flags);
    return run<Op>(c, call, [req](driver::Driver& d) -> Result<std::string> {
        VIREO_TRY(d.call<Op>(req));
        return empty();
    });
}

auto ref_only = [](auto tag) {
    using Req = typename decltype(tag)::type;
    return [](const std::string& ref, std::uint32_t) { return Req{.ref = ref}; };
};

driver::ShutdownMode mode_of(std::uint32_t flags) {
    if (flags & kShutdownAgent) return driver::ShutdownMode::Agent;
    if (flags & kShutdownAcpi) return driver::ShutdownMode::Acpi;
    return driver::ShutdownMode::Default;
}

Status destroy(Connection& c, Call& call) {
    return domain_void<ops::DomainDestroy>(c, call, false, ref_only(Tag<ops::DomainDestroy::Request>{}));
}
Status destroy_flags(Connection& c, Call& call) {
    return domain_void<ops::DomainDestroy>(c, call, true, [](std::string ref, std::uint32_t f) {
        return ops::DomainDestroy::Request{.ref = std::move(ref), .graceful = (f & kDestroyGraceful) != 0};
    });
}
Status shutdown(Connection& c, Call& call) {
    return domain_void<ops::DomainShutdown>(c, call, false, ref_only(Tag<ops::DomainShutdown::Request>{}));
}
Status shutdown_flags(Connection& c, Call& call) {
    return domain_void<ops::DomainShutdown>(c, call, true, [](std::string ref, std::uint32_t f) {
        return ops::DomainShutdown::Request{.ref = std::move(ref), .mode = mode_of(f)};
    });
}
Status reboot(Connection& c, Call& call) {
    return domain_void<ops::DomainReboot>(c, call, true, [](std::string ref, std::uint32_t f) {
        return ops::DomainReboot::Request{.ref = std::move(ref), .mode = mode_of(f)};
    });
}
Status suspend(Connection& c, Call& call) {
    return domain_void<ops::DomainSuspend>(c, call, false, ref_only(Tag<ops::DomainSuspend::Request>{}));
}
Status resume(Connection& c, Call& call) {
    return domain_void<ops::DomainResume>(c, call, false, ref_only(Tag<ops::DomainResume::Request>{}));
}
Status undefine(Connection& c, Call& call) {
    return domain_void<ops::DomainUndefine>(c, call, false, ref_only(Tag<ops::DomainUndefine::Request>{}));
}
Status undefine_flags(Connection& c, Call& call) {
    return domain_void<ops::DomainUndefine>(c, call, true, [](std::string ref, std::uint32_t f) {
        return ops::DomainUndefine::Request{.ref = std::move(ref),
                                            .managed_save = (f & kUndefineManagedSave) != 0,
                                            .nvram = (f & kUndefineNvram) != 0,
                                            .keep_nvram = (f & kUndefineKeepNvram) != 0,
                                            .tpm = (f & kUndefineTpm) != 0,
                                            .keep_tpm = (f & kUndefineKeepTpm) != 0};
    });
}
Status managed_save(Connection& c, Call& call) {
    return domain_void<ops::DomainManagedSave>(c, call, true, ref_only(Tag<ops::DomainManagedSave::Request>{}));
}
Status managed_save_remove(Connection& c, Call& call) {
    return domain_void<ops::DomainManagedSaveRemove>(c, call, true,
                                                     ref_only(Tag<ops::DomainManagedSaveRemove::Request>{}));
}

Status set_autostart(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(on, call.args.i32());
    ops::DomainSetAutostart::Request req{.ref = dom.ref(), .enabled = on != 0};
    return run_empty<ops::DomainSetAutostart>(c, call, std::move(req));
}

Status save_to(Connection& c, Call& call, const DomainRef& dom, std::string to) {
    ops::DomainSave::Request req{.ref = dom.ref(), .path = std::move(to)};
    return run_empty<ops::DomainSave>(c, call, std::move(req));
}

Status save(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(to, call.args.string());
    return save_to(c, call, dom, std::move(to));
}

Status save_flags(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(to, call.args.string());
    VIREO_RPC_GET(dxml, call.args.optional_string());
    VIREO_RPC_GET(flags, call.args.u32());
    if (dxml || flags != 0)
        return fail(ErrorCode::Unsupported, "save with an alternative XML or flags is not supported yet");
    return save_to(c, call, dom, std::move(to));
}

Status restore_from(Connection& c, Call& call, std::string from, bool paused) {
    ops::DomainRestore::Request req{.path = std::move(from), .paused = paused};
    return run_empty<ops::DomainRestore>(c, call, std::move(req));
}

Status restore(Connection& c, Call& call) {
    VIREO_RPC_GET(from, call.args.string());
    return restore_from(c, call, std::move(from), false);
}

Status restore_flags(Connection& c, Call& call) {
    VIREO_RPC_GET(from, call.args.string());
    VIREO_RPC_GET(dxml, call.args.optional_string());
    VIREO_RPC_GET(flags, call.args.u32());
    constexpr std::uint32_t kSaveRunning = 2, kSavePaused = 4;
    if (dxml || (flags & ~(kSaveRunning | kSavePaused)) != 0)
        return fail(ErrorCode::Unsupported, "restore with an alternative XML or flags is not supported yet");
    return restore_from(c, call, std::move(from), (flags & kSavePaused) != 0);
}

// --- devices ---------------------------------------------------------------------------------

// virDomainModificationImpact: 0 is "current"; update also takes
// VIR_DOMAIN_DEVICE_MODIFY_FORCE.
constexpr std::uint32_t kAffectLive = 1, kAffectConfig = 2, kDeviceModifyForce = 4;

// attach/detach (flags: live, config; without flags: live, as libvirt's
// virDomainAttachDevice).
Status device_call(Connection& c, Call& call, bool attach, bool has_flags) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(xml, call.args.string());
    std::uint32_t flags = kAffectLive;
    if (has_flags) {
        VIREO_RPC_GET(f, call.args.u32());
        flags = f;
    }
    if ((flags & ~(kAffectLive | kAffectConfig)) != 0)
        return fail(ErrorCode::Unsupported, "device flags {:#x} are not supported yet", flags);
    const bool live = (flags & kAffectLive) != 0, config = (flags & kAffectConfig) != 0;
    if (attach) {
        ops::DomainAttachDevice::Request req{.ref = dom.ref(), .xml = std::move(xml), .live = live, .config = config,
                                             .current = !live && !config};
        return run_empty<ops::DomainAttachDevice>(c, call, std::move(req));
    }
    ops::DomainDetachDevice::Request req{.ref = dom.ref(), .xml = std::move(xml), .live = live, .config = config,
                                         .current = !live && !config};
    return run_empty<ops::DomainDetachDevice>(c, call, std::move(req));
}
// virDomainUpdateDeviceFlags: a medium or an interface's link state / definition.
Status update_device_flags(Connection& c, Call& call) {
    VIREO_RPC_GET(dom, get_domain(call.args));
    VIREO_RPC_GET(xml, call.args.string());
    VIREO_RPC_GET(flags, call.args.u32());
    if ((flags & ~(kAffectLive | kAffectConfig | kDeviceModifyForce)) != 0)
        return fail(ErrorCode::Unsupported, "device flags {:#x} are not supported yet", flags);
    const bool live = (flags & kAffectLive) != 0, config = (flags & kAffectConfig) != 0;
    ops::DomainUpdateDevice::Request req{.ref = dom.ref(), .xml = std::move(xml), .live = live, .config = config,
                                         .current = !live && !config, .force = (flags & kDeviceModifyForce) != 0};
    return run_empty<ops::DomainUpdateDevice>(c, call, std::move(req));
}

Status attach_device(Connection& c, Call& call) { return device_call(c, call, true, false); }
Status attach_device_flags(Connection& c, Call& call) { return device_call(c, call, true, true); }
Status detach_device(Connection& c, Call& call) { return device_call(c, call, false, false); }
Status detach_device_flags(Connection& c, Call& call) { return device_call(c, call, false, true); }

// --- the table ------------------------------------------------------------------------------

#define VIREO_OP(T) op_of(Tag<ops::T>{})

const std::array kProcedures = std::to_array<ProcDef>({
    {Proc::AuthList, "auth_list", nullptr, auth_list, true},
    {Proc::ConnectOpen, "connect_open", nullptr, connect_open, true},
    {Proc::ConnectClose, "connect_close", nullptr, connect_close},
    {Proc::ConnectSupportsFeature, "connect_supports_feature", nullptr, supports_feature},
    {Proc::ConnectGetType, "connect_get_type", nullptr, get_type},
    {Proc::ConnectGetUri, "connect_get_uri", nullptr, get_uri},
    {Proc::ConnectIsSecure, "connect_is_secure", nullptr, is_secure},
    {Proc::NodeGetSecurityModel, "node_get_security_model", VIREO_OP(HostCapabilities), security_model},
    {Proc::DomainGetSecurityLabel, "domain_get_security_label", VIREO_OP(DomainXml), security_label},
    {Proc::ConnectDomainEventCallbackRegisterAny, "connect_domain_event_callback_register_any", nullptr,
     event_register},
    {Proc::ConnectDomainEventCallbackDeregisterAny, "connect_domain_event_callback_deregister_any", nullptr,
     event_deregister},
    {Proc::ConnectRegisterCloseCallback, "connect_register_close_callback", nullptr, close_callback_register},
    {Proc::ConnectUnregisterCloseCallback, "connect_unregister_close_callback", nullptr, close_callback_register},
    {Proc::DomainOpenConsole, "domain_open_console", VIREO_OP(DomainConsole), open_console},
    {Proc::ConnectGetVersion, "connect_get_version", VIREO_OP(HostVersion), get_version},
    {Proc::ConnectGetLibVersion, "connect_get_lib_version", VIREO_OP(HostVersion), get_lib_version},
    {Proc::ConnectGetHostname, "connect_get_hostname", VIREO_OP(HostHostname), get_hostname},
    {Proc::ConnectGetCapabilities, "connect_get_capabilities", VIREO_OP(HostCapabilities), get_capabilities},
    {Proc::ConnectGetDomainCapabilities, "connect_get_domain_capabilities", VIREO_OP(HostDomainCapabilities),
     get_domain_capabilities},
    {Proc::NodeGetInfo, "node_get_info", VIREO_OP(HostNodeInfo), node_info},
    {Proc::ConnectListAllDomains, "connect_list_all_domains", VIREO_OP(DomainList), list_all_domains},
    {Proc::ConnectNumOfDomains, "connect_num_of_domains", VIREO_OP(DomainList), num_of_domains},
    {Proc::ConnectListDomains, "connect_list_domains", VIREO_OP(DomainList), list_domains},
    {Proc::ConnectNumOfDefinedDomains, "connect_num_of_defined_domains", VIREO_OP(DomainList), num_of_defined},
    {Proc::ConnectListDefinedDomains, "connect_list_defined_domains", VIREO_OP(DomainList), list_defined},
    {Proc::DomainLookupByName, "domain_lookup_by_name", VIREO_OP(DomainLookup), lookup_by_name},
    {Proc::DomainLookupById, "domain_lookup_by_id", VIREO_OP(DomainLookup), lookup_by_id},
    {Proc::DomainLookupByUuid, "domain_lookup_by_uuid", VIREO_OP(DomainLookup), lookup_by_uuid},
    {Proc::DomainGetInfo, "domain_get_info", VIREO_OP(DomainLookup), get_info},
    {Proc::DomainGetState, "domain_get_state", VIREO_OP(DomainLookup), get_state},
    {Proc::DomainGetAutostart, "domain_get_autostart", VIREO_OP(DomainLookup), get_autostart},
    {Proc::DomainGetOsType, "domain_get_os_type", VIREO_OP(DomainLookup), get_os_type},
    {Proc::DomainGetMaxMemory, "domain_get_max_memory", VIREO_OP(DomainLookup), get_max_memory},
    {Proc::DomainIsActive, "domain_is_active", VIREO_OP(DomainLookup), is_active},
    {Proc::DomainIsPersistent, "domain_is_persistent", VIREO_OP(DomainLookup), is_persistent},
    {Proc::DomainIsUpdated, "domain_is_updated", VIREO_OP(DomainLookup), is_updated},
    {Proc::DomainHasManagedSaveImage, "domain_has_managed_save_image", VIREO_OP(DomainLookup), has_managed_save},
    {Proc::DomainGetXmlDesc, "domain_get_xml_desc", VIREO_OP(DomainXml), get_xml_desc},
    {Proc::DomainDefineXml, "domain_define_xml", VIREO_OP(DomainDefine), define_xml},
    {Proc::DomainDefineXmlFlags, "domain_define_xml_flags", VIREO_OP(DomainDefine), define_xml_flags},
    {Proc::DomainCreateXml, "domain_create_xml", VIREO_OP(DomainCreate), create_xml},
    {Proc::DomainCreate, "domain_create", VIREO_OP(DomainStart), create},
    {Proc::DomainCreateWithFlags, "domain_create_with_flags", VIREO_OP(DomainStart), create_with_flags},
    {Proc::DomainDestroy, "domain_destroy", VIREO_OP(DomainDestroy), destroy},
    {Proc::DomainDestroyFlags, "domain_destroy_flags", VIREO_OP(DomainDestroy), destroy_flags},
    {Proc::DomainShutdown, "domain_shutdown", VIREO_OP(DomainShutdown), shutdown},
    {Proc::DomainShutdownFlags, "domain_shutdown_flags", VIREO_OP(DomainShutdown), shutdown_flags},
    {Proc::DomainReboot, "domain_reboot", VIREO_OP(DomainReboot), reboot},
    {Proc::DomainSuspend, "domain_suspend", VIREO_OP(DomainSuspend), suspend},
    {Proc::DomainResume, "domain_resume", VIREO_OP(DomainResume), resume},
    {Proc::DomainUndefine, "domain_undefine", VIREO_OP(DomainUndefine), undefine},
    {Proc::DomainUndefineFlags, "domain_undefine_flags", VIREO_OP(DomainUndefine), undefine_flags},
    {Proc::DomainSetAutostart, "domain_set_autostart", VIREO_OP(DomainSetAutostart), set_autostart},
    {Proc::DomainManagedSave, "domain_managed_save", VIREO_OP(DomainManagedSave), managed_save},
    {Proc::DomainManagedSaveRemove, "domain_managed_save_remove", VIREO_OP(DomainManagedSaveRemove),
     managed_save_remove},
    {Proc::DomainSave, "domain_save", VIREO_OP(DomainSave), save},
    {Proc::DomainSaveFlags, "domain_save_flags", VIREO_OP(DomainSave), save_flags},
    {Proc::DomainRestore, "domain_restore", VIREO_OP(DomainRestore), restore},
    {Proc::DomainRestoreFlags, "domain_restore_flags", VIREO_OP(DomainRestore), restore_flags},
    {Proc::DomainAttachDevice, "domain_attach_device", VIREO_OP(DomainAttachDevice), attach_device},
    {Proc::DomainAttachDeviceFlags, "domain_attach_device_flags", VIREO_OP(DomainAttachDevice), attach_device_flags},
    {Proc::DomainDetachDevice, "domain_detach_device", VIREO_OP(DomainDetachDevice), detach_device},
    {Proc::DomainDetachDeviceFlags, "domain_detach_device_flags", VIREO_OP(DomainDetachDevice), detach_device_flags},
    {Proc::DomainUpdateDeviceFlags, "domain_update_device_flags", VIREO_OP(DomainUpdateDevice), update_device_flags},
});
#undef VIREO_OP

}  // namespace

const ProcDef* find_procedure(int number) {
    const std::array<std::span<const ProcDef>, 6> tables{kProcedures,          storage_procedures(),
                                                        network_procedures(),  vcpu_memory_procedures(),
                                                        agent_procedures(),    block_procedures()};
    for (const auto& table : tables)
        for (const auto& d : table)
            if (static_cast<int>(d.proc) == number) return &d;
    return nullptr;
}

void dispatch(Connection& c, const ProcDef& def, Call call) {
    if (!def.before_open && !c.opened()) {
        c.reply_error(call.header, {static_cast<int>(ErrNum::Rpc), kFromRpc,
                                    fmt::format("connection not open: {} needs REMOTE_PROC_CONNECT_OPEN first", def.name)});
        return;
    }
    if (c.read_only() && def.op && !def.op->read_only_allowed) {
        spdlog::info("libvirt client on a read-only socket: refused {}", def.name);
        c.reply_error(call.header, {static_cast<int>(ErrNum::OperationDenied), kFromRemote,
                                    fmt::format("operation forbidden: read only access prevents {}", def.name)});
        return;
    }
    if (auto s = def.handler(c, call); !s) {
        const bool unsupported = s.error().code == ErrorCode::Unsupported;
        c.reply_error(call.header,
                      {static_cast<int>(unsupported ? ErrNum::NoSupport : ErrNum::Rpc), kFromRpc,
                       unsupported ? fmt::format("this function is not supported by the connection driver: {}",
                                                 s.error().message)
                                   : fmt::format("cannot decode the arguments of {}: {}", def.name, s.error().message)});
    }
}

}  // namespace vireo::rpc
