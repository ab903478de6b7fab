// vireo's domain facts in libvirt's numbers: the remote_nonnull_domain of a
// domain, states and their reasons (virDomainState, virDomain*Reason) and
// lifecycle events with their details (virDomainEventType, *DetailType).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "driver/types.hpp"
#include "rpc/xdr.hpp"

namespace vireo::rpc {

// remote_nonnull_domain: name, uuid (16 bytes), id (-1 when not running).
void put_domain(XdrWriter& w, const std::string& name, const Uuid& uuid, int id);
inline void put_domain(XdrWriter& w, const driver::DomainSummary& s) { put_domain(w, s.name, s.uuid, s.id); }

// A received remote_nonnull_domain.
struct DomainRef {
    std::string name;
    Uuid uuid;
    int id = -1;
    // The reference the operation table takes: the UUID (libvirt's servers
    // look domains up by UUID too).
    [[nodiscard]] std::string ref() const { return uuid.str(); }
};
Result<DomainRef> get_domain(XdrReader& r);

// virDomainState and the reason number of vireo's reason text in that state.
std::pair<int, int> state_and_reason(driver::DomainState state, std::string_view reason);

// virDomainEventType and its detail number.
std::pair<int, int> event_numbers(const driver::DomainEvent& ev);

// Device removal events have their own libvirt callbacks (not served yet):
// the lifecycle callback never carries them.
bool is_lifecycle_event(driver::EventType type);

// The body of REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE.
std::string encode_lifecycle_event(int callback_id, const driver::DomainEvent& ev);

// Whether vireod serves callbacks of virDomainEventID `event_id`.
bool event_id_served(int event_id);
// The message (procedure, body) of `ev` for a callback of family
// `event_id`; nullopt when the event is not of that family.
std::optional<std::pair<int, std::string>> encode_event(int event_id, int callback_id, const driver::DomainEvent& ev);

}  // namespace vireo::rpc
