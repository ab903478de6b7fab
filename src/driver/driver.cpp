#include "driver/driver.hpp"

#include <array>
#include <utility>

namespace vireo::driver {

namespace {

constexpr std::array<std::pair<DomainState, std::string_view>, 8> kStateNames{{
    {DomainState::NoState, "no state"},
    {DomainState::Running, "running"},
    {DomainState::Blocked, "idle"},
    {DomainState::Paused, "paused"},
    {DomainState::Shutdown, "in shutdown"},
    {DomainState::Shutoff, "shut off"},
    {DomainState::Crashed, "crashed"},
    {DomainState::PmSuspended, "pmsuspended"},
}};

constexpr std::array<std::pair<EventType, std::string_view>, 13> kEventNames{{
    {EventType::Defined, "Defined"},
    {EventType::Undefined, "Undefined"},
    {EventType::Started, "Started"},
    {EventType::Suspended, "Suspended"},
    {EventType::Resumed, "Resumed"},
    {EventType::Stopped, "Stopped"},
    {EventType::Shutdown, "Shutdown"},
    {EventType::PmSuspended, "PMSuspended"},
    {EventType::Crashed, "Crashed"},
    {EventType::DeviceRemoved, "DeviceRemoved"},
    {EventType::DeviceRemovalFailed, "DeviceRemovalFailed"},
    {EventType::AgentLifecycle, "AgentLifecycle"},
    {EventType::MemoryDeviceSizeChange, "MemoryDeviceSizeChange"},
}};

}  // namespace

std::string_view state_name(DomainState s) {
    for (const auto& [state, name] : kStateNames)
        if (state == s) return name;
    return "no state";
}

std::optional<DomainState> state_from_name(std::string_view name) {
    for (const auto& [state, text] : kStateNames)
        if (text == name) return state;
    // Spellings people type that virsh never prints.
    if (name == "shutoff") return DomainState::Shutoff;
    if (name == "blocked") return DomainState::Blocked;
    return std::nullopt;
}

Driver::Driver(std::string uri) : uri_(std::move(uri)) {}

Driver::~Driver() = default;

Error Driver::unsupported(const ops::OpInfo& op) const {
    return Error{ErrorCode::Unsupported,
                 fmt::format("operation {} is not supported by the connection to {}", op.name, uri_)};
}

std::string_view event_name(EventType t) {
    for (const auto& [type, name] : kEventNames)
        if (type == t) return name;
    return "Unknown";
}

std::optional<EventType> event_type_from_name(std::string_view name) {
    for (const auto& [type, text] : kEventNames)
        if (text == name) return type;
    return std::nullopt;
}

}  // namespace vireo::driver
