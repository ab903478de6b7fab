#include "rpc/events.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "rpc/protocol.hpp"

namespace vireo::rpc {

namespace {

bool same(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

// Index of `name` in `names` (libvirt's numbering is the order), else 0 (unknown).
template <std::size_t N>
int index_in(const std::array<std::string_view, N>& names, std::string_view name) {
    for (std::size_t i = 0; i < N; ++i)
        if (same(names[i], name)) return static_cast<int>(i);
    return 0;
}

// Reasons per state, in libvirt's order (virDomainRunningReason, ...).
constexpr std::array<std::string_view, 11> kRunning{"unknown", "booted", "migrated", "restored", "from snapshot",
                                                    "unpaused", "migration canceled", "save canceled", "event wakeup",
                                                    "crashed", "post-copy"};
constexpr std::array<std::string_view, 14> kPaused{"unknown", "user", "migrating", "saving", "dumping", "I/O error",
                                                   "watchdog", "from snapshot", "shutting down", "creating snapshot",
                                                   "crashed", "starting up", "post-copy", "post-copy failed"};
constexpr std::array<std::string_view, 9> kShutoff{"unknown", "shutdown", "destroyed", "crashed", "migrated",
                                                   "saved", "failed", "from snapshot", "daemon"};
constexpr std::array<std::string_view, 2> kShutdown{"unknown", "user"};
constexpr std::array<std::string_view, 2> kCrashed{"unknown", "panicked"};

// Event details per event type, in libvirt's order.
constexpr std::array<std::string_view, 4> kDefined{"Added", "Updated", "Renamed", "Snapshot"};
constexpr std::array<std::string_view, 2> kUndefined{"Removed", "Renamed"};
constexpr std::array<std::string_view, 5> kStarted{"Booted", "Migrated", "Restored", "Snapshot", "Wakeup"};
constexpr std::array<std::string_view, 9> kSuspended{"Paused", "Migrated", "I/O Error", "Watchdog", "Restored",
                                                     "Snapshot", "API error", "Post-copy", "Post-copy Error"};
constexpr std::array<std::string_view, 4> kResumed{"Unpaused", "Migrated", "Snapshot", "Post-copy"};
constexpr std::array<std::string_view, 7> kStopped{"Shutdown", "Destroyed", "Crashed", "Migrated", "Saved",
                                                   "Failed", "Snapshot"};
constexpr std::array<std::string_view, 3> kShutdownDetail{"Finished", "Guest", "Host"};
constexpr std::array<std::string_view, 1> kCrashedDetail{"Panicked"};

}  // namespace

void put_domain(XdrWriter& w, const std::string& name, const Uuid& uuid, int id) {
    w.string(name);
    w.fixed_opaque(uuid.bytes);
    w.i32(id);
}

Result<DomainRef> get_domain(XdrReader& r) {
    DomainRef d;
    VIREO_RPC_GET(name, r.string());
    VIREO_RPC_GET(uuid, r.fixed_opaque(16));
    VIREO_RPC_GET(id, r.i32());
    d.name = std::move(name);
    std::copy(uuid.begin(), uuid.end(), d.uuid.bytes.begin());
    d.id = id;
    return d;
}

std::pair<int, int> state_and_reason(driver::DomainState state, std::string_view reason) {
    using S = driver::DomainState;
    int r = 0;
    switch (state) {
        case S::Running: r = index_in(kRunning, reason); break;
        case S::Paused: r = index_in(kPaused, reason); break;
        case S::Shutoff: r = index_in(kShutoff, reason); break;
        case S::Shutdown: r = index_in(kShutdown, reason); break;
        case S::Crashed: r = index_in(kCrashed, reason); break;
        case S::NoState:
        case S::Blocked:
        case S::PmSuspended: break;
    }
    return {static_cast<int>(state), r};
}

std::pair<int, int> event_numbers(const driver::DomainEvent& ev) {
    using E = driver::EventType;
    int d = 0;
    switch (ev.type) {
        case E::Defined: d = index_in(kDefined, ev.detail); break;
        case E::Undefined: d = index_in(kUndefined, ev.detail); break;
        case E::Started: d = index_in(kStarted, ev.detail); break;
        case E::Suspended: d = index_in(kSuspended, ev.detail); break;
        case E::Resumed: d = index_in(kResumed, ev.detail); break;
        case E::Stopped: d = index_in(kStopped, ev.detail); break;
        case E::Shutdown: d = index_in(kShutdownDetail, ev.detail); break;
        case E::Crashed: d = index_in(kCrashedDetail, ev.detail); break;
        case E::PmSuspended:
        case E::DeviceRemoved:  // device events are not lifecycle events: callers skip them
        case E::DeviceRemovalFailed:
        case E::AgentLifecycle:
        case E::MemoryDeviceSizeChange: break;
    }
    // virDomainEventType has the same order as vireo's EventType.
    return {static_cast<int>(ev.type), d};
}

bool is_lifecycle_event(driver::EventType type) {
    return type != driver::EventType::DeviceRemoved && type != driver::EventType::DeviceRemovalFailed &&
           type != driver::EventType::AgentLifecycle && type != driver::EventType::MemoryDeviceSizeChange;
}

std::string encode_lifecycle_event(int callback_id, const driver::DomainEvent& ev) {
    XdrWriter w;
    w.i32(callback_id);
    put_domain(w, ev.domain, ev.uuid, -1);
    auto [event, detail] = event_numbers(ev);
    w.i32(event);
    w.i32(detail);
    return w.take();
}

bool event_id_served(int event_id) {
    return event_id == kEventIdLifecycle || event_id == kEventIdDeviceRemoved || event_id == kEventIdDeviceRemovalFailed ||
           event_id == kEventIdAgentLifecycle || event_id == kEventIdMemoryDeviceSizeChange;
}

namespace {

// The guest agent's channel opened or closed (vireo's detail "connected" /
// "disconnected"); vireo learns it from the channel, hence the reason.
std::string encode_agent_lifecycle_event(int callback_id, const driver::DomainEvent& ev) {
    XdrWriter w;
    w.i32(callback_id);
    put_domain(w, ev.domain, ev.uuid, -1);
    w.i32(ev.detail == "connected" ? kAgentConnected : kAgentDisconnected);
    w.i32(kAgentReasonChannel);
    return w.take();
}

// A virtio-mem device's new size: its alias and the KiB the guest plugged.
std::string encode_memory_size_event(int callback_id, const driver::DomainEvent& ev) {
    XdrWriter w;
    w.i32(callback_id);
    put_domain(w, ev.domain, ev.uuid, -1);
    w.string(ev.detail);
    w.u64(ev.size_kib);
    return w.take();
}

}  // namespace

std::optional<std::pair<int, std::string>> encode_event(int event_id, int callback_id, const driver::DomainEvent& ev) {
    using E = driver::EventType;
    if (event_id == kEventIdLifecycle) {
        if (!is_lifecycle_event(ev.type)) return std::nullopt;
        return std::pair{static_cast<int>(Proc::DomainEventCallbackLifecycle), encode_lifecycle_event(callback_id, ev)};
    }
    if (event_id == kEventIdAgentLifecycle) {
        if (ev.type != E::AgentLifecycle) return std::nullopt;
        return std::pair{static_cast<int>(Proc::DomainEventCallbackAgentLifecycle),
                         encode_agent_lifecycle_event(callback_id, ev)};
    }
    if (event_id == kEventIdMemoryDeviceSizeChange) {
        if (ev.type != E::MemoryDeviceSizeChange) return std::nullopt;
        return std::pair{static_cast<int>(Proc::DomainEventMemoryDeviceSizeChange), encode_memory_size_event(callback_id, ev)};
    }
    // The device events carry the device's alias (vireo's event detail).
    const bool removed = event_id == kEventIdDeviceRemoved && ev.type == E::DeviceRemoved;
    const bool failed = event_id == kEventIdDeviceRemovalFailed && ev.type == E::DeviceRemovalFailed;
    if (!removed && !failed) return std::nullopt;
    XdrWriter w;
    w.i32(callback_id);
    put_domain(w, ev.domain, ev.uuid, -1);
    w.string(ev.detail);
    return std::pair{static_cast<int>(removed ? Proc::DomainEventCallbackDeviceRemoved
                                              : Proc::DomainEventCallbackDeviceRemovalFailed),
                     w.take()};
}

}  // namespace vireo::rpc
