// libFuzzer target for the domain XML parser: any input must either be
// refused with an error or parse into a definition whose formatted form
// parses again to the same document (a fixed point), including after
// libvirt-style address assignment. Crashes, sanitizer reports and broken
// fixed points are findings.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string_view>

#include "conf/domain.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto def = vireo::conf::parse_domain_xml(text);
    if (!def) {
        if (def.error().message.empty()) std::abort();  // every refusal explains itself
        return 0;
    }
    const std::string once = vireo::conf::format_domain_xml(*def);
    auto again = vireo::conf::parse_domain_xml(once);
    if (!again) {
        std::fprintf(stderr, "formatted output does not parse: %s\n%s\n", again.error().message.c_str(), once.c_str());
        std::abort();
    }
    if (vireo::conf::format_domain_xml(*again) != once) {
        std::fprintf(stderr, "format(parse(x)) is not a fixed point for:\n%s\n", once.c_str());
        std::abort();
    }
    // Defaults may refuse a document (its addresses conflict, no slot left),
    // as libvirt's define does; what they accept must format and parse again.
    if (!vireo::conf::assign_addresses_and_aliases(*def)) return 0;
    const std::string defined = vireo::conf::format_domain_xml(*def);
    auto redefined = vireo::conf::parse_domain_xml(defined);
    if (!redefined) {
        // Address assignment may legitimately run out of room (e.g. hundreds
        // of devices on one bus) but must never produce an invalid document
        // from a valid one.
        std::fprintf(stderr, "defined document does not parse: %s\n%s\n", redefined.error().message.c_str(), defined.c_str());
        std::abort();
    }
    (void)vireo::conf::format_domain_xml(*def, {.live = true, .id = 1});
    return 0;
}
