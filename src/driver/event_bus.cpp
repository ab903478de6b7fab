#include "driver/event_bus.hpp"

#include <algorithm>
#include <exception>
#include <mutex>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace vireo::driver {

namespace detail {

namespace {

// One subscriber. `call_mutex` is held while its callback runs so that
// unsubscribing can wait for a call in progress; recursive so that a callback
// may drop its own subscription (or publish) on the same thread.
struct Entry {
    std::recursive_mutex call_mutex;
    bool active = true;
    EventFanout::Erased callback;
};

}  // namespace

struct EventFanout::State {
    mutable std::mutex mutex;
    std::vector<std::shared_ptr<Entry>> entries;
};

namespace {

class BusSubscription final : public Subscription {
public:
    BusSubscription(std::weak_ptr<EventFanout::State> state, std::shared_ptr<Entry> entry)
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
    std::weak_ptr<EventFanout::State> state_;
    std::shared_ptr<Entry> entry_;
};

}  // namespace

EventFanout::EventFanout() : state_(std::make_shared<State>()) {}
EventFanout::~EventFanout() = default;

std::unique_ptr<Subscription> EventFanout::subscribe(Erased callback) {
    auto entry = std::make_shared<Entry>();
    entry->callback = std::move(callback);
    {
        std::lock_guard lk(state_->mutex);
        state_->entries.push_back(entry);
    }
    return std::make_unique<BusSubscription>(state_, std::move(entry));
}

void EventFanout::publish(const void* event, const std::function<std::string()>& describe) {
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
            spdlog::warn("event subscriber failed on {}: {}", describe(), e.what());
        }
    }
}

std::size_t EventFanout::subscriber_count() const {
    std::lock_guard lk(state_->mutex);
    return state_->entries.size();
}

std::string describe(const DomainEvent& e) {
    return fmt::format("{} event for domain '{}'", event_name(e.type), e.domain);
}

std::string describe(const NetworkEvent& e) {
    return fmt::format("{} event for network '{}'", network_event_name(e.type), e.network);
}

}  // namespace detail

void EventBus::publish(EventType type, std::string detail, std::string domain, const Uuid& uuid, std::uint64_t size_kib) {
    DomainEvent ev;
    ev.size_kib = size_kib;
    ev.type = type;
    ev.detail = std::move(detail);
    ev.domain = std::move(domain);
    ev.uuid = uuid;
    ev.when = std::chrono::system_clock::now();
    publish(ev);
}

void NetworkEventBus::publish(NetworkEventType type, std::string network, const Uuid& uuid) {
    NetworkEvent ev;
    ev.type = type;
    ev.network = std::move(network);
    ev.uuid = uuid;
    ev.when = std::chrono::system_clock::now();
    publish(ev);
}

}  // namespace vireo::driver
