#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "driver/event_bus.hpp"

using namespace vireo::driver;

TEST(EventBus, DeliversToEverySubscriberUntilUnsubscribed) {
    EventBus bus;
    std::vector<std::string> a, b;
    auto sa = bus.subscribe([&](const DomainEvent& e) { a.push_back(e.domain + ":" + e.detail); });
    auto sb = bus.subscribe([&](const DomainEvent& e) { b.push_back(e.domain + ":" + e.detail); });
    EXPECT_EQ(bus.subscriber_count(), 2u);
    bus.publish(EventType::Started, "Booted", "web", vireo::Uuid::generate());
    sb.reset();
    bus.publish(EventType::Stopped, "Destroyed", "web", vireo::Uuid::generate());
    EXPECT_EQ(a, (std::vector<std::string>{"web:Booted", "web:Destroyed"}));
    EXPECT_EQ(b, (std::vector<std::string>{"web:Booted"}));
    EXPECT_EQ(bus.subscriber_count(), 1u);
}

TEST(EventBus, SubscriptionMayOutliveTheBusAndUnsubscribeItself) {
    std::unique_ptr<vireo::driver::Subscription> sub;
    {
        EventBus bus;
        int calls = 0;
        sub = bus.subscribe([&](const DomainEvent&) {
            ++calls;
            sub.reset();  // dropping our own subscription from inside the callback
        });
        bus.publish(EventType::Defined, "Added", "x", vireo::Uuid::generate());
        bus.publish(EventType::Defined, "Added", "x", vireo::Uuid::generate());
        EXPECT_EQ(calls, 1);
        sub = bus.subscribe([](const DomainEvent&) {});
    }
    sub.reset();  // bus already gone: must not crash
}

TEST(EventBus, ConcurrentPublishersAllDelivered) {
    EventBus bus;
    std::atomic<int> count{0};
    auto sub = bus.subscribe([&](const DomainEvent&) { ++count; });
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 250; ++i) bus.publish(EventType::Resumed, "Unpaused", "d", vireo::Uuid{});
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(count.load(), 1000);
}
