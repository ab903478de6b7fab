#include <gtest/gtest.h>

#include "driver/driver.hpp"

using namespace vireo::driver;

TEST(DriverNames, StateNamesAreVirshStrings) {
    EXPECT_EQ(state_name(DomainState::NoState), "no state");
    EXPECT_EQ(state_name(DomainState::Running), "running");
    EXPECT_EQ(state_name(DomainState::Blocked), "idle");
    EXPECT_EQ(state_name(DomainState::Paused), "paused");
    EXPECT_EQ(state_name(DomainState::Shutdown), "in shutdown");
    EXPECT_EQ(state_name(DomainState::Shutoff), "shut off");
    EXPECT_EQ(state_name(DomainState::Crashed), "crashed");
    EXPECT_EQ(state_name(DomainState::PmSuspended), "pmsuspended");
}

TEST(DriverNames, StateFromNameRoundTripsAndAcceptsShutoff) {
    for (int i = 0; i <= 7; ++i) {
        auto s = static_cast<DomainState>(i);
        EXPECT_EQ(state_from_name(state_name(s)), s);
    }
    EXPECT_EQ(state_from_name("shutoff"), DomainState::Shutoff);
    EXPECT_EQ(state_from_name("sleeping"), std::nullopt);
}

TEST(DriverNames, EventNames) {
    EXPECT_EQ(event_name(EventType::Defined), "Defined");
    EXPECT_EQ(event_name(EventType::Undefined), "Undefined");
    EXPECT_EQ(event_name(EventType::Started), "Started");
    EXPECT_EQ(event_name(EventType::Suspended), "Suspended");
    EXPECT_EQ(event_name(EventType::Resumed), "Resumed");
    EXPECT_EQ(event_name(EventType::Stopped), "Stopped");
    EXPECT_EQ(event_name(EventType::Shutdown), "Shutdown");
    EXPECT_EQ(event_name(EventType::PmSuspended), "PMSuspended");
    EXPECT_EQ(event_name(EventType::Crashed), "Crashed");
}
