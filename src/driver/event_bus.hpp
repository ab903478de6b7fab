// EventBus: fan-out of domain lifecycle events to subscribers.
//
// Every driver owns one. Drivers publish() after each state change; clients
// (the CLI's `event` verb, the daemon's event stream) subscribe().
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

#include "driver/driver.hpp"

namespace vireo::driver {

class EventBus {
public:
    using Callback = std::function<void(const DomainEvent&)>;

    EventBus();
    ~EventBus();
    EventBus(const EventBus&) = delete;
    EventBus& operator=(const EventBus&) = delete;

    // Register a callback; it receives every event published from now on
    // until the returned handle is destroyed.
    [[nodiscard]] std::unique_ptr<Subscription> subscribe(Callback callback);

    // Deliver an event to every current subscriber.
    void publish(const DomainEvent& event);

    // Convenience: build the event (timestamped now) and publish it.
    void publish(EventType type, std::string detail, std::string domain, const Uuid& uuid);

    // Number of live subscriptions (for tests and diagnostics).
    [[nodiscard]] std::size_t subscriber_count() const;

    struct State;  // shared with the Subscription handles

private:
    std::shared_ptr<State> state_;
};

}  // namespace vireo::driver
