// Event buses: fan-out of lifecycle events to subscribers, one bus per kind
// of event: EventBus for domains (DomainEvent), NetworkEventBus for virtual
// networks (NetworkEvent).
//
// Every driver owns the buses of its objects. Drivers publish() after each
// state change; clients (the CLI's `event` and `net-event` verbs, the
// daemon's event streams) subscribe().
//
// Threading: publish() and subscribe() may be called from any thread.
// Callbacks run on the publishing thread, in subscription order, and must not
// block (copy the event into a queue and return). Once the Subscription
// handle is destroyed the callback is never called again, and destruction
// waits for a call in progress on another thread to finish; destroying the
// handle from inside its own callback is allowed. A Subscription may outlive
// the bus.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "driver/driver.hpp"

namespace vireo::driver {

namespace detail {

// The bus without its event type: callbacks take the event by address.
class EventFanout {
public:
    using Erased = std::function<void(const void*)>;

    EventFanout();
    ~EventFanout();
    EventFanout(const EventFanout&) = delete;
    EventFanout& operator=(const EventFanout&) = delete;

    [[nodiscard]] std::unique_ptr<Subscription> subscribe(Erased callback);
    // Call every subscriber with `event`; `describe` names the event in the
    // log when a subscriber throws.
    void publish(const void* event, const std::function<std::string()>& describe);
    [[nodiscard]] std::size_t subscriber_count() const;

    struct State;  // shared with the Subscription handles

private:
    std::shared_ptr<State> state_;
};

std::string describe(const DomainEvent& e);
std::string describe(const NetworkEvent& e);

}  // namespace detail

template <class Event>
class BasicEventBus {
public:
    using Callback = std::function<void(const Event&)>;

    // Register a callback; it receives every event published from now on
    // until the returned handle is destroyed.
    [[nodiscard]] std::unique_ptr<Subscription> subscribe(Callback callback) {
        return fanout_.subscribe([cb = std::move(callback)](const void* e) { cb(*static_cast<const Event*>(e)); });
    }

    // Deliver an event to every current subscriber.
    void publish(const Event& event) {
        fanout_.publish(&event, [&event] { return detail::describe(event); });
    }

    // Number of live subscriptions (for tests and diagnostics).
    [[nodiscard]] std::size_t subscriber_count() const { return fanout_.subscriber_count(); }

private:
    detail::EventFanout fanout_;
};

class EventBus : public BasicEventBus<DomainEvent> {
public:
    using BasicEventBus<DomainEvent>::publish;
    // Convenience: build the event (timestamped now) and publish it.
    void publish(EventType type, std::string detail, std::string domain, const Uuid& uuid, std::uint64_t size_kib = 0);
};

class NetworkEventBus : public BasicEventBus<NetworkEvent> {
public:
    using BasicEventBus<NetworkEvent>::publish;
    // Convenience: build the event (timestamped now) and publish it.
    void publish(NetworkEventType type, std::string network, const Uuid& uuid);
};

}  // namespace vireo::driver
