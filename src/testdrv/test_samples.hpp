// Fixed documents of the test:///default sample host (test driver only).
#pragma once

#include <string_view>

namespace vireo::testdrv::test_samples {

// The "test" domain every test:///default connection starts with.
extern const std::string_view kTestDomainXml;
// Host capabilities in libvirt's <capabilities> format.
extern const std::string_view kCapabilitiesXml;

}  // namespace vireo::testdrv::test_samples
