#include "driver/event_bus.hpp"

#include <algorithm>
#include <exception>
#include <mutex>
#include <vector>

#include <spdlog/spdlog.h>

namespace vireo::driver {

namespace {

// One subscriber. `call_mutex` is held while its callback runs so that
// unsubscribing can wait for a call in progress; recursive so that a callback
// may drop its own subscription (or publish) on the same thread.
struct Entry {
    std::recursive_mutex call_mutex;
    bool active = true;
    EventBus::Callback callback;
};

}  // namespace

struct EventBus::State {
    mutable std::mutex mutex;
    std::vector<std::shared_ptr<Entry>> entries;
};

namespace {

class BusSubscription final : public Subscription {
public:
    BusSubscription(std::weak_ptr<EventBus::State> state, std::shared_ptr<Entry> entry)
        : state_(std::move(state)), entry_(std::move(entry)) {}
    ~BusSubscription() override {
        if (auto state = state_.lock()) {
            std::lock_guard lk(state->mutex);
            std::erase(state->entries, entry_);
        }
        std::lock_guard call(entry_->call_mutex);
        entry_->active = false;
    }

private:
    std::weak_ptr<EventBus::State> state_;
    std::shared_ptr<Entry> entry_;
};

}  // namespace

EventBus::EventBus() : state_(std::make_shared<State>()) {}
EventBus::~EventBus() = default;

std::unique_ptr<Subscription> EventBus::subscribe(Callback callback) {
    auto entry = std::make_shared<Entry>();
    entry->callback = std::move(callback);
    {
        std::lock_guard lk(state_->mutex);
        state_->entries.push_back(entry);
    }
    return std::make_unique<BusSubscription>(state_, std::move(entry));
}

void EventBus::publish(const DomainEvent& event) {
    std::vector<std::shared_ptr<Entry>> targets;
    {
        std::lock_guard lk(state_->mutex);
        targets = state_->entries;
    }
    for (const auto& entry : targets) {
        std::lock_guard call(entry->call_mutex);
        if (!entry->active || !entry->callback) continue;
        try {
            entry->callback(event);
        } catch (const std::exception& e) {
            // A subscriber's bug must not break the driver that publishes.
            spdlog::warn("event subscriber failed on {} event for domain '{}': {}", event_name(event.type),
                         event.domain, e.what());
        }
    }
}

void EventBus::publish(EventType type, std::string detail, std::string domain, const Uuid& uuid) {
    DomainEvent ev;
    ev.type = type;
    ev.detail = std::move(detail);
    ev.domain = std::move(domain);
    ev.uuid = uuid;
    ev.when = std::chrono::system_clock::now();
    publish(ev);
}

std::size_t EventBus::subscriber_count() const {
    std::lock_guard lk(state_->mutex);
    return state_->entries.size();
}

}  // namespace vireo::driver
